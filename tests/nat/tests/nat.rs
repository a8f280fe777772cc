//! Phones behind real NATs (Linux network namespaces, iptables routers, a
//! real `ronde relay` and real `ronde node` processes): what kind of NAT
//! each router is, AutoNAT's verdicts, circuit reservations, a report and
//! an SOS between two phones behind NAT, a phone that changes network, and
//! mDNS on one LAN. Every test needs root; without it each prints
//! `SKIPPED: …` and returns. See tests/nat/README.md.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ronde_nat_tests::net::{run_bounded, Nat, World, RELAY_IP};
use ronde_nat_tests::ronde::{eventually, Phone, Relay};
use ronde_nat_tests::scenario::*;
use ronde_nat_tests::world_or_skip;

const PROBE: &str = env!("CARGO_BIN_EXE_nat-probe");

/// The outside ports a phone's datagrams from one local port show at two
/// destinations of the public segment.
fn outside_ports(world: &World, phone_ns: &str) -> (u16, u16) {
    let listen = |port: u16| {
        Command::new("ip")
            .args(["netns", "exec", &world.public, PROBE, "listen"])
            .arg(format!("{RELAY_IP}:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nat-probe")
    };
    let (l1, l2) = (listen(5001), listen(5002));
    std::thread::sleep(Duration::from_millis(200));
    run_bounded(
        Command::new("ip").args([
            "netns",
            "exec",
            phone_ns,
            PROBE,
            "send",
            "0.0.0.0:5555",
            &format!("{RELAY_IP}:5001"),
            &format!("{RELAY_IP}:5002"),
        ]),
        Duration::from_secs(10),
    )
    .expect("nat-probe send");
    let port = |child: std::process::Child| -> u16 {
        let out = child.wait_with_output().expect("nat-probe listen");
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no datagram: {text} {:?}", out.stderr))
    };
    (port(l1), port(l2))
}

#[test]
fn the_routers_are_the_nats_they_claim() {
    let mut world = world_or_skip!();
    let home = world.home(1, Nat::EndpointIndependent);
    let carrier = world.home(2, Nat::Symmetric);
    let a = world.phone_at_home("a", &home, 2);
    let b = world.phone_at_home("b", &carrier, 2);

    let (p1, p2) = outside_ports(&world, &a.ns);
    assert_eq!(
        (p1, p2),
        (5555, 5555),
        "endpoint-independent: one outside port (the inside one) for every destination"
    );
    let (q1, q2) = outside_ports(&world, &b.ns);
    assert_ne!(q1, q2, "symmetric: another outside port per destination");
}

#[test]
fn autonat_finds_the_phones_behind_nat_private_and_the_others_public() {
    let mut world = world_or_skip!();
    let relay = Relay::start(&world);
    let home = world.home(1, Nat::EndpointIndependent);
    let carrier = world.home(2, Nat::Symmetric);
    let a = Phone::with_relay(&world.phone_at_home("a", &home, 2), &relay);
    let b = Phone::with_relay(&world.phone_at_home("b", &carrier, 2), &relay);
    let c = Phone::with_relay(&world.public_phone("c", 21), &relay);
    wait_for_verdict(&a, "private", Duration::from_secs(30));
    wait_for_verdict(&b, "private", Duration::from_secs(30));
    wait_for_verdict(&c, "public", Duration::from_secs(30));
    // The relay is public by configuration (its public addresses): it
    // never reserves a circuit and never asks.
    assert!(
        !relay.proc.log().contains("reserving a relay circuit"),
        "{}",
        relay.proc.log()
    );
}

#[test]
fn a_circuit_only_when_private_renewed_without_churn() {
    let mut world = world_or_skip!();
    let relay = Relay::start(&world);
    let home = world.home(1, Nat::EndpointIndependent);
    let a = Phone::with_relay(&world.phone_at_home("a", &home, 2), &relay);
    let c = Phone::with_relay(&world.public_phone("c", 21), &relay);
    let circuit = wait_for_circuit(&a, Duration::from_secs(30));
    // By now the public phone had the same time to decide (its AutoNAT
    // test runs at the same pace): it must hold no circuit, now or later.
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        assert_eq!(
            circuit_addr(&c),
            None,
            "a directly reachable phone holds a relay circuit:\n{}",
            c.status()
        );
        // The private phone keeps the same circuit (no churn).
        assert_eq!(circuit_addr(&a).as_deref(), Some(circuit.as_str()));
        std::thread::sleep(Duration::from_millis(500));
    }
    let reservations = a.log().matches("relay reservation accepted").count();
    assert_eq!(reservations, 1, "one reservation, no churn:\n{}", a.log());
    assert!(!a.log().contains("renewal=true") || reservations == 1);
}

/// Reservations of 8 s, renewed at 6 s: over 20 s the private phone
/// renews its one reservation on the same connection (the relay counts one
/// new reservation and the rest renewals, the circuit address never
/// changes) and a phone that dials the circuit afterwards reaches it.
#[test]
fn a_private_phone_renews_its_circuit_reservation_without_churn() {
    const RESERVATION_SECS: u64 = 8;
    let mut world = world_or_skip!();
    let relay = Relay::with_reservations_of(&world, RESERVATION_SECS);
    let home = world.home(1, Nat::EndpointIndependent);
    let a = Phone::with_relay(&world.phone_at_home("a", &home, 2), &relay);
    let circuit = wait_for_circuit(&a, Duration::from_secs(30));
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        assert_eq!(
            circuit_addr(&a).as_deref(),
            Some(circuit.as_str()),
            "the circuit changed:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The phone's side: one reservation, then renewals.
    let log = a.log();
    let accepted: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("relay reservation accepted"))
        .collect();
    let new = accepted
        .iter()
        .filter(|l| l.contains("renewal=false"))
        .count();
    let renewed = accepted
        .iter()
        .filter(|l| l.contains("renewal=true"))
        .count();
    assert_eq!(new, 1, "one reservation, no churn:\n{log}");
    assert!(renewed >= 2, "renewed every 6 s:\n{log}");
    // The relay's side: the same, for this peer.
    let relay_log = relay.proc.log();
    let from_a: Vec<&str> = relay_log
        .lines()
        .filter(|l| l.contains("ReservationReqAccepted") && l.contains(&a.peer_id))
        .collect();
    assert_eq!(
        from_a
            .iter()
            .filter(|l| l.contains("renewed: false"))
            .count(),
        1,
        "{relay_log}"
    );
    assert!(
        from_a
            .iter()
            .filter(|l| l.contains("renewed: true"))
            .count()
            >= 2,
        "{relay_log}"
    );
    assert!(!relay_log.contains("ReservationReqDenied"), "{relay_log}");
    // Still reachable through it: a phone dials the circuit, and the
    // relay reports the circuit accepted by A (its STOP answered).
    let b = Phone::start(
        &world.public_phone("b", 22),
        &["--no-mdns", "--bootstrap", &relay.addr, &circuit],
    );
    let over_circuit = format!("dst_peer_id: PeerId(\"{}\")", a.peer_id);
    // (A drops unasked packets: B can only have reached it over the
    // circuit, perhaps upgraded since by a hole punch.)
    let b_reached_a = format!("connected peer={}", a.peer_id);
    eventually(
        Duration::from_secs(20),
        "a circuit to A after its renewals",
        || {
            let log = relay.proc.log();
            let ok = log
                .lines()
                .any(|l| l.contains("CircuitReqAccepted") && l.contains(&over_circuit));
            if ok || b.log().contains(&b_reached_a) {
                Ok(())
            } else {
                Err(format!("{}\n{log}", b.status()))
            }
        },
    );
    println!("{renewed} renewals of one reservation in 20 s, reached through it afterwards");
}

#[test]
fn a_report_from_a_reaches_b_through_the_relay() {
    let mut world = world_or_skip!();
    let relay = Relay::start(&world);
    let home = world.home(1, Nat::EndpointIndependent);
    let carrier = world.home(2, Nat::Symmetric);
    let a = Phone::with_relay(&world.phone_at_home("a", &home, 2), &relay);
    let b = Phone::with_relay(&world.phone_at_home("b", &carrier, 2), &relay);
    for p in [&a, &b] {
        eventually(Duration::from_secs(15), "the phone connects", || {
            if p.connected_peers() >= 1 {
                Ok(())
            } else {
                Err(p.status())
            }
        });
    }
    let took = report_delivery(&a, &b, Duration::from_secs(30));
    println!("report A -> B: {} ms", took.as_millis());
}

/// Two phones behind `nat_a` and `nat_b`, paired; B dials A's circuit.
fn sos_between(nat_a: Nat, nat_b: Nat) -> (Duration, bool) {
    let mut world = World::new().expect("checked by the caller");
    let relay = Relay::start(&world);
    let home = world.home(1, nat_a);
    let other = world.home(2, nat_b);
    let a = Phone::with_relay(&world.phone_at_home("a", &home, 2), &relay);
    let a_circuit = wait_for_circuit(&a, Duration::from_secs(30));
    let b_host = world.phone_at_home("b", &other, 2);
    let b = Phone::start(
        &b_host,
        &[
            "--no-mdns",
            "--bootstrap",
            &relay.addr,
            &a_circuit,
            "--mailbox-peer",
            &relay.addr,
        ],
    );
    pair(&a, &b);
    let took = sos_delivery(&a, &b, Duration::from_secs(30));
    let direct = hole_punched(&a) || hole_punched(&b);
    drop((a, b, relay));
    (took, direct)
}

#[test]
fn an_sos_behind_endpoint_independent_nats() {
    drop(world_or_skip!());
    let (took, direct) = sos_between(Nat::EndpointIndependent, Nat::EndpointIndependent);
    println!(
        "SOS A -> B behind endpoint-independent NATs: {} ms, hole punched: {direct}",
        took.as_millis()
    );
}

#[test]
fn an_sos_behind_a_symmetric_nat_goes_over_the_circuit() {
    drop(world_or_skip!());
    let (took, direct) = sos_between(Nat::EndpointIndependent, Nat::Symmetric);
    println!(
        "SOS A -> B, B behind a symmetric NAT: {} ms, hole punched: {direct}",
        took.as_millis()
    );
}

#[test]
fn a_phone_that_changes_network_is_reachable_again_within_10_s() {
    let mut world = world_or_skip!();
    let relay = Relay::start(&world);
    let wifi = world.home(1, Nat::EndpointIndependent);
    let cellular = world.home(2, Nat::Symmetric);
    let mut host = world.phone_at_home("a", &wifi, 2);
    let a = Phone::with_relay(&host, &relay);
    let before = wait_for_circuit(&a, Duration::from_secs(30));
    world.move_phone(&mut host, &cellular, 7);
    let moved = Instant::now();
    // Reachable again: a circuit on the relay from the new network, and
    // the relay's connection to it (the one the circuit runs over) alive.
    eventually(
        Duration::from_secs(10),
        "a circuit again after the move",
        || {
            let log = a.log();
            let again = log.matches("relay reservation accepted").count() >= 2;
            if again {
                Ok(())
            } else {
                Err(format!("{}\n{log}", a.status()))
            }
        },
    );
    // And subscribed to its areas again: the relay closed the phone's
    // dead connection and took its subscriptions on the new one.
    let follows = format!("peer follows an area peer={}", a.peer_id);
    eventually(
        Duration::from_secs(10),
        "subscribed again after the move",
        || {
            let log = relay.proc.log();
            match log.split_once("the peer moved: closing its old connection") {
                Some((_, after)) if after.contains(&follows) => Ok(()),
                _ => Err(log),
            }
        },
    );
    assert!(
        moved.elapsed() < Duration::from_secs(10),
        "{} ms",
        moved.elapsed().as_millis()
    );
    let again = moved.elapsed();
    // And gossip reaches it there: a report from a phone that starts now.
    let b = Phone::with_relay(&world.public_phone("b", 22), &relay);
    let took = report_delivery(&b, &a, Duration::from_secs(20));
    println!(
        "reachable again {} ms after the move (circuit {before}); a report reached it in {} ms",
        again.as_millis(),
        took.as_millis()
    );
}

/// Issue 15: a phone holds a circuit only while it is private. Behind the
/// NAT it reserves one; moved onto the public segment, AutoNAT finds its
/// new address reachable and the phone releases the circuit.
#[test]
fn a_phone_that_becomes_reachable_releases_its_circuit() {
    let mut world = world_or_skip!();
    let relay = Relay::start(&world);
    let home = world.home(1, Nat::EndpointIndependent);
    let mut host = world.phone_at_home("a", &home, 2);
    let a = Phone::with_relay(&host, &relay);
    let circuit = wait_for_circuit(&a, Duration::from_secs(30));
    world.move_phone_public(&mut host, 30);
    let moved = Instant::now();
    eventually(
        Duration::from_secs(60),
        "the circuit released once reachable",
        || {
            let log = a.log();
            if log.contains("public: relay circuit released") && circuit_addr(&a).is_none() {
                Ok(())
            } else {
                Err(format!(
                    "{}
{log}",
                    a.status()
                ))
            }
        },
    );
    println!(
        "circuit {circuit} released {} ms after the phone became reachable",
        moved.elapsed().as_millis()
    );
}

#[test]
fn two_phones_on_one_lan_find_each_other_by_mdns() {
    let mut world = world_or_skip!();
    let lan = world.home(3, Nat::LanOnly);
    let a = Phone::start(&world.phone_at_home("a", &lan, 2), &[]);
    let b = Phone::start(&world.phone_at_home("b", &lan, 3), &[]);
    for p in [&a, &b] {
        eventually(
            Duration::from_secs(20),
            "the phones find each other",
            || {
                if p.connected_peers() >= 1 {
                    Ok(())
                } else {
                    Err(p.status())
                }
            },
        );
    }
    report_delivery(&a, &b, Duration::from_secs(20));
}
