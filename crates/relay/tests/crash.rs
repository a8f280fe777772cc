//! The real `ronde-relay` binary over TCP: `init` writes a private key and
//! a valid configuration; `kill -9` during ingestion loses no acknowledged
//! aggregate and counts nothing twice; SIGTERM loses nothing at all.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ronde_node::{Node, NodeConfig};
use ronde_protocol::{Area, Category, Cell};
use ronde_relay::config::RelayConfig;
use ronde_relay::rules::format_day;

const BIN: &str = env!("CARGO_BIN_EXE_ronde-relay");
const DEADLINE: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Setup {
    config: PathBuf,
    token: String,
    dashboard: String,
    p2p: String,
    log: PathBuf,
}

fn init(dir: &Path) -> Setup {
    let config = dir.join("relay.toml");
    let data = dir.join("data");
    let out = Command::new(BIN)
        .args([
            "init",
            "--city",
            "Crashville",
            "--prefix",
            "u09tv",
            "--time-zone",
            "UTC",
            "--data-dir",
        ])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run init");
    assert!(out.status.success(), "init failed: {out:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [data.join("city.key"), config.clone()] {
            let mode = std::fs::metadata(&f).expect("written").permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is readable by others", f.display());
        }
    }
    // A second init does not overwrite.
    let again = Command::new(BIN)
        .args(["init", "--city", "X", "--prefix", "u09tv", "--config"])
        .arg(&config)
        .output()
        .expect("run init");
    assert!(!again.status.success());
    // A time zone the tz database does not know is refused.
    let bad = Command::new(BIN)
        .args([
            "init",
            "--city",
            "X",
            "--prefix",
            "u09tv",
            "--time-zone",
            "Europe/Ivry",
            "--config",
        ])
        .arg(dir.join("other.toml"))
        .arg("--data-dir")
        .arg(dir.join("other-data"))
        .output()
        .expect("run init");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("time_zone") && err.contains("Europe/Ivry"),
        "{err}"
    );

    let (p2p_port, dash_port) = (free_port(), free_port());
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text
        .replace(
            r#"listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]"#,
            &format!(r#"listen = ["/ip4/127.0.0.1/tcp/{p2p_port}"]"#),
        )
        .replace("0.0.0.0:8080", "")
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{dash_port}"))
        .replace("k = 3", "k = 1");
    std::fs::write(&config, &text).expect("write config");
    let parsed = RelayConfig::load(&config).expect("the edited config is valid");
    assert_eq!(parsed.aggregates.k, 1);
    Setup {
        token: parsed.http.operator_token,
        config,
        dashboard: format!("http://127.0.0.1:{dash_port}"),
        p2p: format!("/ip4/127.0.0.1/tcp/{p2p_port}"),
        log: dir.join("relay.log"),
    }
}

fn spawn(s: &Setup) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&s.log)
        .expect("log file");
    Command::new(BIN)
        .arg("--config")
        .arg(&s.config)
        .env("RUST_LOG", "warn,ronde_relay=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn the relay")
}

async fn wait_up(s: &Setup, child: &mut Child) {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&s.log).unwrap_or_default();
            panic!("the relay exited with {status}:\n{log}");
        }
        if let Ok(r) = reqwest::get(format!("{}/healthz", s.dashboard)).await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(start.elapsed() < DEADLINE, "the relay did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metric(s: &Setup, name: &str) -> Option<u64> {
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", s.dashboard))
        .bearer_auth(&s.token)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn wait_metric(s: &Setup, name: &str, at_least: u64) -> u64 {
    let start = Instant::now();
    loop {
        if let Some(v) = metric(s, name).await.filter(|v| *v >= at_least) {
            return v;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{name} never reached {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Total reports in the aggregates (k = 1, so nothing is hidden) and the
/// number of live report ids the relay remembers.
async fn totals(s: &Setup) -> (u64, u64) {
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        / 86_400;
    let client = reqwest::Client::new();
    let cells: serde_json::Value = client
        .get(format!(
            "{}/api/cells?from={}&to={}",
            s.dashboard,
            format_day(today - 1),
            format_day(today + 1)
        ))
        .bearer_auth(&s.token)
        .send()
        .await
        .expect("cells")
        .json()
        .await
        .expect("json");
    let total = cells["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| c["total"].as_u64().expect("total"))
        .sum();
    let status: serde_json::Value = client
        .get(format!("{}/api/status", s.dashboard))
        .bearer_auth(&s.token)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    (total, status["live_reports"].as_u64().expect("live"))
}

async fn reporter(dir: &Path, relay: &str) -> Node {
    let cell: Cell = "u09tvw0".parse().expect("cell");
    let mut c = NodeConfig::new(dir);
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")];
    c.mdns = false;
    c.location = Some(cell.center());
    let node = Node::start(c).await.expect("reporter starts");
    connect(&node, relay).await;
    node
}

async fn connect(node: &Node, relay: &str) {
    node.dial(relay.parse().expect("relay addr"))
        .await
        .expect("dial");
    let area: Area = "u09tv".parse().expect("area");
    let start = Instant::now();
    while node.peers_in_area(area).await.expect("peers").is_empty() {
        assert!(
            start.elapsed() < DEADLINE,
            "the relay never followed the area"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publish reports (real proof of work) until told to stop; returns how
/// many were made.
fn publish_until(
    node: Node,
    stop: Arc<AtomicBool>,
    made: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let cells = ["u09tvw0", "u09tvw1", "u09tvw2", "u09tvx5"];
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let cell: Cell = cells[i % cells.len()].parse().expect("cell");
            let (lat, lon) = cell.center();
            let cat = Category::ALL[i % Category::ALL.len()];
            if node.report(cat, lat, lon, None).await.is_ok() {
                made.fetch_add(1, Ordering::Relaxed);
            }
            i += 1;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingestion_keeps_every_acknowledged_aggregate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = init(dir.path());
    let mut relay = spawn(&s);
    wait_up(&s, &mut relay).await;

    let node = reporter(&dir.path().join("reporter"), &s.p2p).await;
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let publisher = publish_until(node.clone(), stop.clone(), made.clone());

    // Let it ingest for a while, read what it acknowledged, and kill it in
    // the middle of the stream.
    wait_metric(&s, "ronde_relay_reports_acknowledged_total", 15).await;
    let acked = metric(&s, "ronde_relay_reports_acknowledged_total")
        .await
        .expect("metrics");
    relay.kill().expect("kill -9");
    let killed = relay.wait().expect("wait");
    assert!(!killed.success());
    stop.store(true, Ordering::Relaxed);
    publisher.await.expect("publisher");
    let published = made.load(Ordering::Relaxed);
    assert!(
        published >= acked,
        "{published} published, {acked} acknowledged"
    );

    // Restart on the same data: the store opens, every acknowledged report
    // is still counted, none twice, and ids and counts agree (each was
    // written with its count in one transaction).
    let mut relay = spawn(&s);
    wait_up(&s, &mut relay).await;
    wait_metric(&s, "ronde_relay_catch_ups_total", 1).await;
    let (total, live_ids) = totals(&s).await;
    assert!(
        total >= acked,
        "only {total} reports counted after the crash, {acked} were acknowledged"
    );
    assert!(total <= published, "{total} counted, {published} published");
    assert_eq!(
        total, live_ids,
        "every counted report has its id, and no more"
    );

    // Graceful stop: more reports, wait until the relay is idle, SIGTERM,
    // restart: exactly the same counts.
    let accepted = metric(&s, "ronde_relay_reports_accepted_total")
        .await
        .expect("metrics");
    connect(&node, &s.p2p).await;
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = publish_until(node.clone(), stop.clone(), made.clone());
    wait_metric(&s, "ronde_relay_reports_accepted_total", accepted + 10).await;
    stop.store(true, Ordering::Relaxed);
    publisher.await.expect("publisher");
    let mut before = totals(&s).await;
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let now = totals(&s).await;
        if now == before {
            break;
        }
        before = now;
        assert!(start.elapsed() < DEADLINE, "the relay never went idle");
    }
    assert!(before.0 >= total + 10);
    let term = Command::new("kill")
        .args(["-TERM", &relay.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let start = Instant::now();
    let status = loop {
        if let Some(st) = relay.try_wait().expect("wait") {
            break st;
        }
        assert!(start.elapsed() < DEADLINE, "SIGTERM did not stop the relay");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = std::fs::read_to_string(&s.log).unwrap_or_default();
    assert!(status.success(), "exit {status} after SIGTERM:\n{log}");
    assert!(log.contains("everything is on disk"), "{log}");

    let mut relay = spawn(&s);
    wait_up(&s, &mut relay).await;
    wait_metric(&s, "ronde_relay_catch_ups_total", 1).await;
    assert_eq!(totals(&s).await, before, "a clean stop loses nothing");
    relay.kill().expect("kill");
    let _ = relay.wait();
    node.shutdown().await.expect("reporter");
}

/// `ronde-relay check` says whether the configured basemap is a PMTiles v3
/// file, and fails when it is not.
#[test]
fn check_reports_the_basemap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = init(dir.path());
    let check = |config: &Path| {
        Command::new(BIN)
            .arg("--config")
            .arg(config)
            .arg("check")
            .output()
            .expect("run check")
    };
    let out = check(&s.config);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("basemap: none"));

    let text = std::fs::read_to_string(&s.config).expect("config");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../node/tests/data/kirchberg.pmtiles"
    );
    let with = dir.path().join("with.toml");
    std::fs::write(
        &with,
        text.replace("basemap = \"\"", &format!("basemap = {fixture:?}")),
    )
    .expect("write");
    let out = check(&with);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("kirchberg.pmtiles (3 kB, PMTiles v3)"),
        "{said}"
    );

    let bad = dir.path().join("bad.toml");
    let not_tiles = s.config.display().to_string();
    std::fs::write(
        &bad,
        text.replace("basemap = \"\"", &format!("basemap = {not_tiles:?}")),
    )
    .expect("write");
    let out = check(&bad);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a PMTiles v3 file"),
        "{out:?}"
    );
}
