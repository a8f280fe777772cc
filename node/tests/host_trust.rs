//! Mailbox and switch hosts are chosen by the person, never by the network
//! (issue 12 §1): a mailbox host that merely connects to a phone gets none
//! of its switches and none of its mail; a host that claims to hold a
//! switch without the receipt signed by its peer key is not counted; the
//! relays of the city's signed directory are hosts, and a switch goes to
//! two of different operators.

mod circle_support;

use std::time::Duration;

use circle_support::*;
use futures::StreamExt;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, request_response, yamux, Multiaddr, Swarm, Transport};
use ronde_node::circle::wire::{MailboxCodec, MailboxResponse, MAILBOX_PROTOCOL};
use ronde_node::circle::{SwitchHostState, SwitchStatus};
use ronde_node::ManualClock;
use ronde_protocol::directory::{RelayEntry, RelayRoles};

const IVRY: (f64, f64) = (48.815_612_3, 2.384_445_6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_host_that_merely_connects_gets_no_switch_and_no_mail() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (host, host_addr) = start_host(dirs[0].path(), &clock).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;
    alice.set_location(IVRY.0, IVRY.1).await.expect("location");

    // A rogue mailbox host connects to Alice's phone: it speaks the
    // mailbox protocol, and identify says so.
    let (rogue, _) = start_host(dirs[3].path(), &clock).await;
    let alice_addr = alice
        .listen_addrs()
        .await
        .expect("addrs")
        .into_iter()
        .next()
        .expect("alice listens");
    rogue.dial(alice_addr).await.expect("dial");
    let rogue_id = rogue.peer_id();
    eventually("the rogue to connect", || async {
        let peers = alice.connected_peers().await.ok()?;
        peers.contains(&rogue_id).then_some(())
    })
    .await;
    // Identify runs right after the connection.
    settle(1000).await;

    // A journey with its switch, then an SOS.
    alice
        .start_journey(48.82, 2.39, T0 + 1500, 600)
        .await
        .expect("journey");
    eventually("the switch to be armed", || async {
        alice
            .journey()
            .await
            .ok()
            .filter(|j| j.switch == SwitchStatus::Armed)
    })
    .await;
    alice.sos("at the bus stop").await.expect("sos");
    // The SOS goes to the contact and to the hosts; Bob may fetch it from
    // the chosen host at once, so wait for Alice's queue to empty.
    eventually("the SOS to be delivered", || async {
        let a = alice.circle_status().await.ok()?;
        let h = host.circle_status().await.ok()?;
        (a.queued == 0 && h.hosted_switches > 0).then_some(())
    })
    .await;
    settle(1500).await;

    let r = rogue.circle_status().await.expect("status");
    assert_eq!(r.hosted_switches, 0, "the rogue holds Alice's switch");
    assert_eq!(r.hosted_envelopes, 0, "the rogue holds Alice's mail");
    assert_eq!(
        alice.circle_status().await.expect("status").mailbox_hosts,
        1,
        "only the configured host is Alice's mailbox host"
    );
}

/// A hostile mailbox host: answers every request with a bare "ok" (it
/// claims to hold the switch, gives no receipt).
async fn ok_sayer() -> (Multiaddr, tokio::task::JoinHandle<()>) {
    let mut swarm: Swarm<request_response::Behaviour<MailboxCodec>> =
        libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_other_transport(|key| {
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    MemoryTransport::default()
                        .upgrade(upgrade::Version::V1)
                        .authenticate(noise::Config::new(key)?)
                        .multiplex(yamux::Config::default()),
                )
            })
            .expect("transport")
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    MailboxCodec::default(),
                    [(MAILBOX_PROTOCOL, request_response::ProtocolSupport::Full)],
                    request_response::Config::default(),
                )
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
    swarm
        .listen_on("/memory/0".parse().expect("addr"))
        .expect("listen");
    let peer = *swarm.local_peer_id();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    let task = tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            }) = swarm.select_next_some().await
            {
                let _ = swarm
                    .behaviour_mut()
                    .send_response(channel, MailboxResponse::Ok);
            }
        }
    });
    (addr.with(Protocol::P2p(peer)), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_says_ok_without_a_receipt_does_not_hold_the_switch() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (fake, task) = ok_sayer().await;
    let alice = start(config_with_host(dirs[0].path(), &clock, &fake)).await;
    let bob = start(config(dirs[1].path(), &clock)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;

    alice
        .start_journey(48.82, 2.39, T0 + 1500, 600)
        .await
        .expect("journey");
    // Long enough for the deposit to be answered (and retried).
    settle(3000).await;
    let j = alice.journey().await.expect("journey");
    assert_ne!(
        j.switch,
        SwitchStatus::Armed,
        "a bare 'ok' counted as holding the switch"
    );
    task.abort();
}

/// A mailbox host and its directory entry (its memory address, `roles`,
/// run by `operator`).
async fn listed_host(
    dir: &std::path::Path,
    clock: &ManualClock,
    roles: RelayRoles,
    operator: &str,
) -> (ronde_node::Node, RelayEntry) {
    let (host, addr) = start_host(dir, clock).await;
    let mut base = addr.clone();
    base.pop();
    let entry = RelayEntry {
        peer: host.peer_id().to_bytes(),
        roles,
        operator: operator.into(),
        addrs: vec![base.to_string()],
    };
    (host, entry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_goes_to_two_listed_relays_of_different_operators() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..6).map(|_| tempfile::tempdir().expect("dir")).collect();
    let both = RelayRoles::MAILBOX.with(RelayRoles::SWITCH);
    let (city_a, a) = listed_host(dirs[0].path(), &clock, both, "Ville").await;
    let (city_b, b) = listed_host(dirs[1].path(), &clock, both, "Ville").await;
    let (assoc, c) = listed_host(dirs[2].path(), &clock, both, "Nuits Solidaires").await;
    // Listed, but only as a circuit relay: never a mailbox or switch host.
    let (circuit, d) = listed_host(dirs[3].path(), &clock, RelayRoles::CIRCUIT, "Ville").await;
    let (city, signed) = city_directory(vec![a, b, c, d]);
    city_a
        .set_directory(city.public(), signed)
        .await
        .expect("the relay serves its directory");

    let mut c = config(dirs[4].path(), &clock);
    c.city_keys = vec![city.public()];
    let alice = start(c).await;
    let bob = start(config(dirs[5].path(), &clock)).await;
    alice.dial(listen_addr(&city_a).await).await.expect("dial");
    eventually("the directory's hosts", || async {
        let s = alice.circle_status().await.ok()?;
        (s.mailbox_hosts == 3).then_some(())
    })
    .await;
    befriend(&alice, "Alice", &bob, "Bob").await;

    alice
        .start_journey(48.82, 2.39, T0 + 1500, 600)
        .await
        .expect("journey");
    let j = eventually("the switch to be held by two hosts", || async {
        let j = alice.journey().await.ok()?;
        let armed = j
            .switch_hosts
            .iter()
            .filter(|h| h.state == SwitchHostState::Armed)
            .count();
        (armed == 2).then_some(j)
    })
    .await;
    assert_eq!(j.switch, SwitchStatus::Armed);
    let mut operators: Vec<&str> = j.switch_hosts.iter().map(|h| h.operator.as_str()).collect();
    operators.sort_unstable();
    assert_eq!(operators, ["Nuits Solidaires", "Ville"], "two operators");
    assert_eq!(
        assoc.circle_status().await.expect("status").hosted_switches,
        1
    );
    let city_held = city_a
        .circle_status()
        .await
        .expect("status")
        .hosted_switches
        + city_b
            .circle_status()
            .await
            .expect("status")
            .hosted_switches;
    assert_eq!(city_held, 1, "one switch with the city's relays");
    let s = circuit.circle_status().await.expect("status");
    assert_eq!(
        (s.hosted_switches, s.hosted_envelopes),
        (0, 0),
        "a circuit-only relay hosts nothing"
    );
    assert!(j.switch_hosts.iter().all(|h| h.peer.starts_with('…')));
}
