//! What a node's logs keep at the level `ronde node` runs at by default
//! (`ronde_node=info`): issue 12 §6. A seized phone's logs must not show
//! that the person made a report, where, or which areas they follow. The
//! test captures every log line of a real node that follows its areas and
//! publishes a report, then looks for any trace of either.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use ronde_node::ManualClock;
use ronde_protocol::{topics_around, Category};

const IVRY: (f64, f64) = (48.815_6, 2.384_4);
/// The filter `ronde node` uses when RUST_LOG is unset (crates/cli/src/main.rs).
const DEFAULT_FILTER: &str = "warn,libp2p_kad=error,ronde=info,ronde_node=info,ronde_relay=info";

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
async fn default_logs_do_not_show_a_report_or_the_areas_followed() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(DEFAULT_FILTER))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let clock = ManualClock::new(1_790_000_000);
    let dir = tempfile::tempdir().expect("dir");
    let node = start(dir.path(), &clock, None).await;
    node.set_location(IVRY.0, IVRY.1).await.expect("location");
    node.report(Category::PoorLighting, IVRY.0, IVRY.1, None)
        .await
        .expect("report");
    node.shutdown().await.expect("shutdown");

    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(text.contains("node started"), "the capture works: {text}");
    let areas: Vec<String> = topics_around(IVRY.0, IVRY.1)
        .expect("areas")
        .iter()
        .map(|a| a.to_string())
        .collect();
    for line in text.lines() {
        let lower = line.to_lowercase();
        assert!(
            !lower.contains("report"),
            "a log line tells that a report was made: {line}"
        );
        for area in &areas {
            assert!(
                !line.contains(area.as_str()),
                "a log line names an area ({area}): {line}"
            );
        }
    }
}
