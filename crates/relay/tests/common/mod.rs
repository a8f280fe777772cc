//! Helpers shared by the relay's integration tests: a relay on the memory
//! transport with a manual clock, reporter nodes, HTTP with the operator
//! token, and a deadline-bounded wait.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ronde_node::{ManualClock, Node, NodeConfig};
use ronde_protocol::{Area, Category, Cell};
use ronde_relay::config::RelayConfig;
use ronde_relay::{Relay, StartOptions};

/// The tests' "now": 2026-09-21 20:14 UTC (a whole minute).
pub const T0: u64 = 1_790_021_640;
/// The operator token of test relays.
pub const TOKEN: &str = "test-operator-token-0123456789";
/// The jurisdiction of test relays (Ivry-sur-Seine and around).
pub const AREA: &str = "u09tv";
/// How long any condition may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A cell of the test area: `u09tv` followed by two characters.
pub fn cell(suffix: &str) -> Cell {
    format!("{AREA}{suffix}").parse().expect("a test cell")
}

/// A relay configuration for tests: the area `u09tv`, loopback HTTP on
/// free ports, k = 3, UTC.
pub fn relay_config(data_dir: &Path) -> RelayConfig {
    relay_config_in(data_dir, AREA)
}

/// The same with another jurisdiction (one geohash-5 area).
pub fn relay_config_in(data_dir: &Path, area: &str) -> RelayConfig {
    let text = ronde_relay::config::TEMPLATE
        .replace("{city}", "Testville")
        .replace("{data_dir}", data_dir.to_str().expect("utf-8 path"))
        .replace("{prefixes}", &format!("\"{area}\""))
        .replace("{bbox}", "")
        .replace("{token}", TOKEN)
        .replace("time_zone = \"Europe/Paris\"", "time_zone = \"UTC\"")
        .replace("0.0.0.0:8080", "127.0.0.1:0")
        .replace("127.0.0.1:8081", "127.0.0.1:0")
        .replace("flag_min_difficulty = 18", "flag_min_difficulty = 8");
    RelayConfig::parse(&text).expect("test config parses")
}

/// Write a city key for a configuration.
pub fn write_city_key(config: &RelayConfig) {
    ronde_relay::keys::create_key(&config.key_path()).expect("city key");
}

fn init_logs() {
    // `RUST_LOG=ronde_relay=debug cargo test` shows the logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The node settings of tests: memory transport, difficulty 8, fast timers.
pub fn test_node(c: &mut NodeConfig) {
    c.listen = "/memory/0".parse().into_iter().collect();
    c.memory_transport = true;
    c.mdns = false;
    c.difficulty = 8;
    c.policy.min_difficulty = 8;
    c.heartbeat = Duration::from_millis(200);
    c.purge_interval = Duration::from_millis(500);
    c.pending_retry_interval = Duration::from_millis(300);
    // The tests publish many reports at 8 bits into one area from phones
    // that, like `NodeConfig::for_tests`, do not raise their work under a
    // flood; the relay's cell cap is what they check, not the flood rule
    // (node/tests/tokens.rs and node/tests/stem.rs check that).
    c.flood_rule = None;
}

/// Start a relay on the memory transport with a manual clock.
pub async fn start_relay(config: RelayConfig, clock: &ManualClock) -> Relay {
    init_logs();
    let options = StartOptions {
        clock: Arc::new(clock.clone()),
        node_tweak: Some(Box::new(test_node)),
    };
    match Relay::start(config, options).await {
        Ok(r) => r,
        Err(e) => panic!("relay did not start: {e}"),
    }
}

/// Start a phone-like node following the test area.
pub async fn start_node(dir: &Path, clock: &ManualClock) -> Node {
    start_node_at(dir, clock, cell("w0")).await
}

/// Start a phone-like node at the centre of a cell.
pub async fn start_node_at(dir: &Path, clock: &ManualClock, at: Cell) -> Node {
    init_logs();
    let mut c = NodeConfig::for_tests(dir);
    c.clock = Arc::new(clock.clone());
    c.location = Some(at.center());
    match Node::start(c).await {
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

/// Connect a node to the relay and wait until each knows the other follows
/// the test area.
pub async fn connect_to_relay(node: &Node, relay: &Relay) {
    connect_to_relay_in(node, relay, AREA).await
}

/// The same for another area.
pub async fn connect_to_relay_in(node: &Node, relay: &Relay, area: &str) {
    let addr = relay
        .node()
        .listen_addrs()
        .await
        .expect("relay addrs")
        .first()
        .cloned()
        .expect("the relay listens");
    node.dial(addr).await.expect("dial");
    let area: Area = area.parse().expect("area");
    let relay_id = relay.node().peer_id();
    eventually("the relay to follow the area", || async {
        node.peers_in_area(area)
            .await
            .ok()?
            .contains(&relay_id)
            .then_some(())
    })
    .await;
}

/// Publish `n` reports of a category in a cell from a node.
pub async fn publish(node: &Node, cell: Cell, category: Category, n: usize) {
    let (lat, lon) = cell.center();
    for _ in 0..n {
        let p = node
            .report(category, lat, lon, Some(cell.precision()))
            .await
            .expect("report");
        assert_eq!(p.cell, cell);
    }
}

/// Wait until the relay has counted `n` reports since it started.
pub async fn wait_counted(relay: &Relay, n: u64) {
    let m = &relay.shared().metrics;
    eventually("the relay to count the reports", || async {
        let got = m.acknowledged.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            got <= n,
            "counted {got} reports, more than the {n} published"
        );
        (got == n).then_some(())
    })
    .await;
}

/// An HTTP client and the relay's dashboard base URL.
pub fn dashboard(relay: &Relay) -> (reqwest::Client, String) {
    (
        reqwest::Client::new(),
        format!("http://{}", relay.dashboard_addr()),
    )
}

/// GET a dashboard path with the operator token; the status and body.
pub async fn get_authed(relay: &Relay, path: &str) -> (u16, String) {
    let (client, base) = dashboard(relay);
    let res = client
        .get(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

/// GET a dashboard JSON path with the operator token, expecting 200.
pub async fn get_json(relay: &Relay, path: &str) -> serde_json::Value {
    let (status, body) = get_authed(relay, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
}
