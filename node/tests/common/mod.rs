//! Helpers shared by the integration tests: node start-up on the memory
//! transport, a node's local API with its credential ([`api`]), connecting
//! nodes, and waiting for a condition with a deadline.

#![allow(dead_code)]

pub mod api;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use ronde_node::{ManualClock, Node, NodeConfig};
use ronde_protocol::{Area, Category, Draft, ReportId, VerifiedReport};

/// The tests' "now" (Unix seconds, a whole minute).
pub const T0: u64 = 1_790_000_040;
/// Ivry-sur-Seine, near Paris.
pub const IVRY: (f64, f64) = (48.8156, 2.3844);
/// Lyon, about 390 km away.
pub const LYON: (f64, f64) = (45.7640, 4.8357);
/// How long any condition may take.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A test configuration on the memory transport with a manual clock.
pub fn config(dir: &Path, clock: &ManualClock, location: Option<(f64, f64)>) -> NodeConfig {
    let mut c = NodeConfig::for_tests(dir);
    c.clock = Arc::new(clock.clone());
    c.location = location;
    c
}

/// Start a node, panicking with the error if it fails.
pub async fn start(dir: &Path, clock: &ManualClock, location: Option<(f64, f64)>) -> Node {
    start_with(config(dir, clock, location)).await
}

/// Start a node from a configuration.
pub async fn start_with(config: NodeConfig) -> Node {
    // `RUST_LOG=ronde_node=debug cargo test` shows the nodes' logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    match Node::start(config).await {
        Ok(n) => n,
        Err(e) => panic!("node did not start: {e}"),
    }
}

/// Poll `f` every 50 ms until it returns `Some`, or panic after
/// [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Dial `b` from `a` and wait until both see the connection.
pub async fn connect(a: &Node, b: &Node) {
    let addrs = b.listen_addrs().await.expect("listen addrs");
    let addr = addrs.first().expect("b listens").clone();
    a.dial(addr).await.expect("dial");
    let (pa, pb) = (a.peer_id(), b.peer_id());
    eventually("a connection", || async {
        let a_sees = a.connected_peers().await.ok()?.contains(&pb);
        let b_sees = b.connected_peers().await.ok()?.contains(&pa);
        (a_sees && b_sees).then_some(())
    })
    .await;
}

/// Wait until `node` knows that `peer` follows `area`.
pub async fn wait_follows(node: &Node, peer: PeerId, area: Area) {
    eventually("a peer's subscription", || async {
        node.peers_in_area(area)
            .await
            .ok()?
            .contains(&peer)
            .then_some(())
    })
    .await;
}

/// The ids of the live reports a node holds within 100 km of a point.
pub async fn held(node: &Node, at: (f64, f64)) -> Vec<ReportId> {
    let nearby = node.nearby(at.0, at.1, 100_000.0).await.expect("nearby");
    nearby.reports.iter().map(|r| r.id).collect()
}

/// Wait until `node` holds report `id` (near `at`).
pub async fn wait_holds(node: &Node, id: ReportId, at: (f64, f64)) {
    eventually("a report to arrive", || async {
        node.nearby(at.0, at.1, 100_000.0)
            .await
            .ok()?
            .reports
            .iter()
            .any(|r| r.id == id)
            .then_some(())
    })
    .await;
}

/// A sealed, valid report (difficulty 8) observed at `now` near `at`.
pub fn make_report(at: (f64, f64), now: u64, category: Category) -> VerifiedReport {
    let cell = ronde_protocol::cell_for(at.0, at.1, 7).expect("cell");
    let report = Draft::new(category, cell, now)
        .seal(8, &mut rand::rngs::OsRng)
        .expect("seal");
    VerifiedReport::from_trusted_bytes(report.to_bytes()).expect("parse")
}
