//! The demo's relay offers circuit relay (issue 15 §4) and its slots are
//! not churned: over a run longer than the phones' 15 s wait for an
//! AutoNAT verdict, no phone reserves a circuit (every phone reaches every
//! other on the memory transport), so the relay accepts no reservation,
//! denies none, and no peer reserves twice. The relay's and the phones'
//! logs are captured and counted.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ronde_demo::{Demo, DemoArgs, Narrator};

/// Longer than `NO_VERDICT_AFTER` (15 s), after which a phone with no
/// verdict would reserve.
const RUN: Duration = Duration::from_secs(25);

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_serves_circuits_and_no_phone_churns_its_slots() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "warn,ronde_node=info,ronde_node::reachability=debug",
        ))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let args = DemoArgs {
        phones: 12,
        seed: 5,
        dashboard: "127.0.0.1:0".parse().expect("addr"),
        app: "127.0.0.1:0".parse().expect("addr"),
        speed: 60,
        duration: Some(RUN),
        tiles: String::new(),
        ..DemoArgs::default()
    };
    let demo = Demo::start(&args, Narrator::keep())
        .await
        .expect("the demo starts");
    demo.run(std::future::pending())
        .await
        .expect("the demo runs");

    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(text.contains("node started"), "the capture works: {text}");
    let reserving = text.matches("reserving a relay circuit").count();
    let accepted: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("relay server") && l.contains("ReservationReqAccepted"))
        .collect();
    let denied = text
        .lines()
        .filter(|l| l.contains("relay server") && l.contains("ReservationReqDenied"))
        .count();
    let mut by_peer: HashMap<&str, usize> = HashMap::new();
    for line in &accepted {
        let peer = line
            .split("src_peer_id: ")
            .nth(1)
            .and_then(|s| s.split([',', ' ']).next())
            .unwrap_or("?");
        *by_peer.entry(peer).or_default() += 1;
    }
    println!(
        "{} phones, {} s: {reserving} reservations asked, {} accepted, {denied} denied",
        args.phones,
        RUN.as_secs(),
        accepted.len()
    );
    assert!(
        by_peer.values().all(|n| *n <= 1),
        "a peer reserved more than once: {by_peer:?}"
    );
    assert_eq!(denied, 0, "the relay denied reservations");
    assert_eq!(
        reserving, 0,
        "demo phones reserved circuits they do not need"
    );
    assert!(accepted.is_empty(), "{accepted:?}");
}
