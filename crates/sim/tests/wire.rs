//! The wire count of report transmissions (how duplicates are measured)
//! checked against a topology where the exact number is known: on a line
//! 0 — 1 — 2, every report published by 0 crosses each link exactly once
//! (gossipsub never sends a message back to the peer it came from, and
//! every peer is in the mesh, so there is no gossip to pull it twice).

use std::sync::Arc;
use std::time::Duration;

use ronde_node::ManualClock;
use ronde_protocol::{area_of, cell_for, Category, Draft, ReportId};
use ronde_sim::meter::UNKNOWN;
use ronde_sim::net::{addr_of, FrameClassifier, LinkModel, SimNet};
use ronde_sim::peers::{start_ronde, BareMode, BareNode, Clockwork, Peer, PeerSetup, Recorder};
use ronde_sim::plan::T0;

const AT: (f64, f64) = (48.8156, 2.3844);
const K: usize = 5;

struct Line {
    net: SimNet,
    recorder: Arc<Recorder>,
    peers: Vec<Peer>,
    _dir: tempfile::TempDir,
}

async fn line(ronde: bool) -> Line {
    let model = LinkModel {
        latency_min: Duration::from_millis(5),
        latency_max: Duration::from_millis(20),
        seed: 1,
        ..LinkModel::default()
    };
    let net = SimNet::new(model, vec![true; 3], FrameClassifier::ronde());
    let cw = Clockwork::new(1.0);
    cw.start_now();
    let recorder = Arc::new(Recorder::default());
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().expect("tempdir");
    let area = area_of(AT.0, AT.1).expect("area");
    let mut peers = Vec::new();
    let mut ports = Vec::new();
    for slot in 0..3u32 {
        let port = net.alloc_port();
        ports.push(port);
        let setup = PeerSetup {
            net: &net,
            slot,
            port,
            clockwork: cw.clone(),
            heartbeat: Duration::from_millis(200),
            recorder: recorder.clone(),
            spam: Default::default(),
            gossip: Default::default(),
            stem_seed: u64::from(slot),
            timers: Default::default(),
            gossip_hubs: Vec::new(),
        };
        let peer = if ronde {
            start_ronde(
                &setup,
                &dir.path().join(slot.to_string()),
                &clock,
                8,
                Some(AT),
                None,
            )
            .await
            .expect("node")
        } else {
            Peer::Bare(BareNode::start(&setup, BareMode::Baseline, &[area]).expect("bare"))
        };
        peers.push(peer);
    }
    peers[0].dial(addr_of(ports[1])).await.expect("dial");
    peers[1].dial(addr_of(ports[2])).await.expect("dial");
    // Meshes form within a few heartbeats.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Line {
        net,
        recorder,
        peers,
        _dir: dir,
    }
}

async fn publish_k(line: &Line) -> Vec<ReportId> {
    let cell = cell_for(AT.0, AT.1, 7).expect("cell");
    let mut ids = Vec::new();
    for i in 0..K {
        let bytes = Draft::new(Category::ALL[i], cell, T0)
            .seal(8, &mut rand::rngs::OsRng)
            .expect("seal")
            .to_bytes();
        let id = line.peers[0]
            .report(Category::ALL[i], AT, &bytes, cell.area())
            .await
            .expect("publish");
        ids.push(id);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    ids
}

async fn check(ronde: bool) {
    let line = line(ronde).await;
    // The classifier goes by frame length: a frame of the connection's
    // start (identify, which lists the node's protocols) may have a
    // report's length. A few such frames at most, before any report.
    let before = line.net.report_frames();
    assert!(
        before <= 4,
        "{before} frames classified as reports before any report"
    );
    let ids = publish_k(&line).await;
    let (deliveries, _) = line.recorder.take();
    for id in &ids {
        for slot in 1..3u32 {
            assert!(
                deliveries.iter().any(|(d, s, _)| d == id && *s == slot),
                "slot {slot} did not get a report"
            );
        }
    }
    // Two links, each crossed once per report.
    assert_eq!(line.net.report_frames() - before, 2 * K as u64);
    // Bytes by protocol: the middle node's gossipsub substreams carried
    // every report in and out, every substream's protocol was read, and
    // the substreams carried less than the wire (Noise and Yamux are on
    // the wire only).
    let meter = line.net.meter(1).snapshot();
    let gossip: u64 = meter
        .iter()
        .filter(|(name, _)| name.starts_with("/meshsub/"))
        .map(|(_, b)| b.sent + b.recv)
        .sum();
    assert!(
        gossip >= 2 * K as u64 * 121,
        "gossipsub carried {gossip} bytes"
    );
    assert!(!meter.contains_key(UNKNOWN), "unread substreams: {meter:?}");
    assert_eq!(meter.contains_key("/ipfs/id/1.0.0"), ronde, "{meter:?}");
    let carried: u64 = meter.values().map(|b| b.sent + b.recv).sum();
    let (sent, recv) = line.net.bytes(1);
    assert!(carried < sent + recv, "{carried} of {} bytes", sent + recv);
    for p in line.peers {
        p.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_gossipsub_transmissions_are_counted_exactly() {
    check(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ronde_transmissions_are_counted_exactly() {
    check(true).await;
}
