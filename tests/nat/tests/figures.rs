//! The figures of docs/performance.md, "Behind NAT": for each NAT type,
//! the time to the first report and to an SOS's delivery, and how many of
//! 20 hole punches (DCUtR) succeed. Measured, never asserted: run it by
//! hand, as root:
//!
//! ```sh
//! cargo build -p ronde
//! cargo test -p ronde-nat-tests --test figures -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant};

use ronde_nat_tests::net::{Nat, World};
use ronde_nat_tests::ronde::{eventually, Phone, Relay};
use ronde_nat_tests::scenario::*;

/// Hole punches tried per NAT type.
const TRIES: usize = 20;

fn name(nat: Nat) -> &'static str {
    match nat {
        Nat::EndpointIndependent => "endpoint-independent",
        Nat::Symmetric => "symmetric",
        Nat::LanOnly => "LAN only",
    }
}

/// The outcome lines a phone logged so far: (successes, failures).
fn punches(phone: &Phone) -> (usize, usize) {
    let log = phone.log();
    (
        log.matches("hole punch succeeded").count(),
        log.matches("hole punch failed").count(),
    )
}

/// A behind an endpoint-independent NAT, B behind `nat_b`.
fn measure(nat_b: Nat) {
    let mut world = match World::new() {
        Ok(w) => w,
        Err(why) => {
            println!("SKIPPED: {why}");
            return;
        }
    };
    world.stealth();
    let relay = Relay::start(&world);
    let home = world.home(1, Nat::EndpointIndependent);
    let other = world.home(2, nat_b);
    let start = Instant::now();
    let a = Phone::with_relay(&world.phone_at_home("a", &home, 2), &relay);
    let b_host = world.phone_at_home("b", &other, 2);
    let a_circuit = wait_for_circuit(&a, Duration::from_secs(60));
    let to_circuit = start.elapsed();

    // Time to the first report: B starts, A reports once B follows the
    // area through the relay, until B shows it.
    let b_start = Instant::now();
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
    let report = report_delivery(&a, &b, Duration::from_secs(60));
    let first_report = b_start.elapsed();
    pair(&a, &b);
    let sos = sos_delivery(&a, &b, Duration::from_secs(60));
    drop(b);

    // Hole punches: a fresh phone B (a fresh peer id) dials A's relayed
    // address; DCUtR runs over that circuit.
    let (mut ok, mut failed, mut none) = (0, 0, 0);
    for i in 0..TRIES {
        let before = punches(&a);
        let b = Phone::start(
            &b_host,
            &["--no-mdns", "--bootstrap", &a_circuit, &relay.addr],
        );
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            eventually(Duration::from_secs(15), "a hole punch outcome", || {
                let (s, f) = punches(&a);
                let (bs, bf) = punches(&b);
                if s > before.0 || bs > 0 {
                    Ok(true)
                } else if f > before.1 || bf > 0 {
                    Ok(false)
                } else {
                    Err(String::new())
                }
            })
        }));
        match outcome {
            Ok(true) => ok += 1,
            Ok(false) => failed += 1,
            Err(_) => none += 1,
        }
        drop(b);
        let _ = i;
    }
    println!(
        "FIGURE nat={} circuit_after_start_ms={} first_report_ms={} report_latency_ms={} sos_ms={} \
         hole_punch_ok={ok}/{TRIES} failed={failed} no_attempt={none}",
        name(nat_b),
        to_circuit.as_millis(),
        first_report.as_millis(),
        report.as_millis(),
        sos.as_millis(),
    );
}

#[test]
#[ignore = "measures figures for docs/performance.md; needs root; run by hand"]
fn figures_behind_endpoint_independent_nats() {
    measure(Nat::EndpointIndependent);
}

#[test]
#[ignore = "measures figures for docs/performance.md; needs root; run by hand"]
fn figures_behind_a_symmetric_nat() {
    measure(Nat::Symmetric);
}
