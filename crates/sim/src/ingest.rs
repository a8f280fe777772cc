//! `ronde sim --ingest`: how fast a node takes in reports from the
//! network, against how fast this machine verifies their signatures, and
//! how much memory a node holding 10,000 live reports uses.
//!
//! 1. `n` reports are sealed from the seed, in the nine areas around the
//!    city centre.
//! 2. On the same reports, in the same process, one core: ed25519 batch
//!    verification (batches of 64), strict single verification (what the
//!    protocol does), and the protocol's whole `validate_with`.
//! 3. A Ronde node (the same code as phones and relays: the per-report
//!    path does not depend on how many areas a node follows) receives them
//!    all over gossip from a feeder (a bare gossipsub peer) on a
//!    zero-latency emulated link: decrypt, decode, dedup, validate, store,
//!    announce. Ingest rate = reports / time from the first publication to
//!    the last report stored.
//! 4. A second feeder sends the same reports again: the node's gossipsub
//!    drops them by message id before the node sees them, so no signature
//!    is checked twice. The CPU time per duplicate, against the CPU time
//!    per new report, shows it.
//! 5. Memory: resident set size of the process before the node starts and
//!    after the ingest (an upper bound: it includes the feeders' caches and
//!    the gossip caches of a burst), and, in a fresh process running this
//!    same program as a probe, the growth when a node starts on the full
//!    store and is asked for every report (the node alone).

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{Signature, VerifyingKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use ronde_node::ManualClock;
use ronde_protocol::report::SIGN_DOMAIN;
use ronde_protocol::{cell_for, topics_around, validate_with, Category, Draft, Policy, Report};
use serde::Serialize;
use tokio::time::Instant;

use crate::city::City;
use crate::monitor::rss_bytes;
use crate::net::{addr_of, FrameClassifier, LinkModel, SimNet};
use crate::peers::{start_ronde, BareMode, BareNode, Clockwork, Peer, PeerSetup, Recorder};
use crate::plan::T0;
use crate::SimError;

/// What `--ingest` measured.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    /// Reports sent.
    pub reports: usize,
    /// Reports the node stored.
    pub stored: usize,
    /// Reports the node still held after a restart.
    pub held_after_restart: usize,
    /// Reports stored per second (decrypt, decode, dedup, verify, store).
    pub ingest_per_sec: f64,
    /// ed25519 batch verification, signatures per second (one core).
    pub batch_verify_per_sec: f64,
    /// ed25519 strict single verification, per second (one core).
    pub single_verify_per_sec: f64,
    /// `ronde_protocol::validate_with`, reports per second (one core).
    pub validate_per_sec: f64,
    /// ingest / batch verification.
    pub ingest_vs_batch_verify: f64,
    /// ingest / validation.
    pub ingest_vs_validate: f64,
    /// Process CPU ms per new report during the ingest (node and feeder).
    pub cpu_ms_per_new_report: f64,
    /// Process CPU ms per duplicate during the second pass.
    pub cpu_ms_per_duplicate: f64,
    /// RSS growth from before the node started to after the ingest, MB
    /// (includes the feeder's gossip caches).
    pub rss_during_ingest_mb: f64,
    /// RSS growth of a fresh process when a node starts on the full store
    /// and is asked for every report, MB.
    pub rss_node_with_store_mb: f64,
    /// RSS of that fresh process before the node started (runtime,
    /// allocator, binary), MB.
    pub rss_fresh_process_mb: f64,
    /// Resident set size of the whole process at the end, MB.
    pub rss_process_mb: f64,
}

fn process_cpu() -> f64 {
    // utime + stime of this process in seconds.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ut: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((ut + st) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Wait until the process has been nearly idle for half a second (at most
/// `limit`).
async fn settle(limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut quiet = 0;
    let mut last = process_cpu();
    while Instant::now() < deadline && quiet < 3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = process_cpu();
        quiet = if now - last < 0.03 { quiet + 1 } else { 0 };
        last = now;
    }
}

fn seal_reports(n: usize, seed: u64, difficulty: u8) -> Result<Vec<Report>, SimError> {
    let city = City::paris();
    let areas = topics_around(city.center.0, city.center.1)?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let p = City::offset(
            city.center,
            rng.gen_range(-6000.0..6000.0),
            rng.gen_range(-6000.0..6000.0),
        );
        let cell = cell_for(p.0, p.1, 7)?;
        if !areas.contains(&cell.area()) {
            continue;
        }
        let category = Category::ALL[rng.gen_range(0..Category::ALL.len())];
        let r = Draft::new(category, cell, T0)
            .seal(difficulty, &mut rng)
            .map_err(|e| SimError::Config(format!("sealing: {e}")))?;
        out.push(r);
    }
    Ok(out)
}

fn rate(n: usize, f: impl FnOnce()) -> f64 {
    let t = std::time::Instant::now();
    f();
    n as f64 / t.elapsed().as_secs_f64().max(1e-9)
}

/// Run the ingest measurement with `n` reports.
pub async fn run(n: usize, seed: u64, difficulty: u8) -> Result<IngestReport, SimError> {
    let reports = seal_reports(n, seed, difficulty)?;
    let bytes: Vec<Vec<u8>> = reports.iter().map(|r| r.to_bytes()).collect();

    // Signature and validation rates on the same reports.
    let msgs: Vec<Vec<u8>> = bytes
        .iter()
        .map(|b| {
            let mut m = SIGN_DOMAIN.to_vec();
            m.extend_from_slice(&b[..b.len() - 64]);
            m
        })
        .collect();
    let sigs: Vec<Signature> = reports
        .iter()
        .map(|r| Signature::from_bytes(r.signature()))
        .collect();
    let keys: Vec<VerifyingKey> = reports
        .iter()
        .filter_map(|r| VerifyingKey::from_bytes(r.public_key()).ok())
        .collect();
    if keys.len() != n {
        return Err(SimError::Config("a sealed report has a bad key".into()));
    }
    let mut ok = true;
    let batch_verify_per_sec = rate(n, || {
        for i in (0..n).step_by(64) {
            let j = (i + 64).min(n);
            let m: Vec<&[u8]> = msgs[i..j].iter().map(|m| m.as_slice()).collect();
            ok &= ed25519_dalek::verify_batch(&m, &sigs[i..j], &keys[i..j]).is_ok();
        }
    });
    let single_verify_per_sec = rate(n, || {
        for i in 0..n {
            ok &= keys[i].verify_strict(&msgs[i], &sigs[i]).is_ok();
        }
    });
    let policy = Policy {
        min_difficulty: difficulty,
        ..Policy::default()
    };
    let validate_per_sec = rate(n, || {
        for b in &bytes {
            ok &= validate_with(b, T0, &policy).is_ok();
        }
    });
    if !ok {
        return Err(SimError::Config("a sealed report does not verify".into()));
    }

    // The node and its feeders on zero-latency links.
    let model = LinkModel {
        latency_min: Duration::ZERO,
        latency_max: Duration::ZERO,
        ..LinkModel::default()
    };
    let net = SimNet::new(model, vec![true; 3], FrameClassifier::ronde());
    let cw = Clockwork::new(1.0);
    cw.start_now();
    let clock = ManualClock::new(T0 + 60);
    let recorder = Arc::new(Recorder::default());
    let dir = tempfile::Builder::new().prefix("ronde-ingest-").tempdir()?;
    let setup = |slot, port| PeerSetup {
        net: &net,
        slot,
        port,
        clockwork: cw.clone(),
        heartbeat: Duration::from_secs(1),
        recorder: recorder.clone(),
        gossip: Default::default(),
    };
    let center = City::paris().center;
    let rss0 = rss_bytes().unwrap_or(0);
    let node_port = net.alloc_port();
    let node = start_ronde(
        &setup(0, node_port),
        dir.path(),
        &clock,
        difficulty,
        Some(center),
        None,
    )
    .await?;
    let feed = |slot: u32| -> Result<BareNode, SimError> {
        let port = net.alloc_port();
        BareNode::start(&setup(slot, port), BareMode::Flooder, &[])
    };
    let first = feed(1)?;
    let n_node = node.node().ok_or(SimError::Stopped)?.clone();

    let wait_connected = |count: usize| {
        let n_node = n_node.clone();
        async move {
            for _ in 0..100 {
                if n_node.connected_peers().await.map(|p| p.len()).unwrap_or(0) >= count {
                    // Let the subscriptions cross.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(SimError::Config("the feeder did not connect".into()))
        }
    };
    dial_bare(&first, node_port)?;
    wait_connected(1).await?;

    // Pass 1: new reports, at most WINDOW in flight. libp2p-gossipsub
    // 0.50.1 checks the size limit against everything buffered on the
    // inbound stream, not one frame: more than 8 KiB (Ronde's limit, 54
    // reports) waiting at once and the node drops the stream. A window of
    // 48 reports keeps the node busy without tripping it.
    const WINDOW: usize = 48;
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    let stall = Instant::now() + Duration::from_secs(120);
    for (i, (r, b)) in reports.iter().zip(&bytes).enumerate() {
        while recorder.count() + WINDOW <= i && Instant::now() < stall {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        first.publish(r.cell().area(), b.clone())?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while recorder.count() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = t0.elapsed().as_secs_f64();
    let stored = recorder.count();
    settle(Duration::from_secs(5)).await;
    let cpu1 = process_cpu();
    let rss1 = rss_bytes().unwrap_or(0);

    // Pass 2: the same reports again, from a fresh feeder.
    let second = feed(2)?;
    dial_bare(&second, node_port)?;
    wait_connected(2).await?;
    settle(Duration::from_secs(5)).await;
    let cpu2 = process_cpu();
    // Paced (no events for duplicates to wait on): 16 every 10 ms.
    for (k, (r, b)) in reports.iter().zip(&bytes).enumerate() {
        second.publish(r.cell().area(), b.clone())?;
        if k % 16 == 15 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    settle(Duration::from_secs(60)).await;
    let cpu3 = process_cpu();
    let dup_stored = recorder.count() - stored;

    Peer::Bare(first).shutdown().await;
    Peer::Bare(second).shutdown().await;
    node.shutdown().await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The node alone, in a fresh process, restarted on its full store
    // and asked for every report: its resident memory, with nothing else
    // (no feeder, no freed memory of this process to reuse).
    let (held, rss_node_with_store_mb, rss_child_base_mb) = match hold_in_child(dir.path()) {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(error = %e, "could not measure the node in a fresh process");
            (0, f64::NAN, f64::NAN)
        }
    };
    let rss3 = rss_bytes().unwrap_or(0);
    if dup_stored > 0 {
        tracing::warn!(dup_stored, "duplicates were stored twice");
    }

    let ingest = stored as f64 / took.max(1e-9);
    let mb = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1e6;
    Ok(IngestReport {
        reports: n,
        stored,
        held_after_restart: held,
        ingest_per_sec: ingest,
        batch_verify_per_sec,
        single_verify_per_sec,
        validate_per_sec,
        ingest_vs_batch_verify: ingest / batch_verify_per_sec,
        ingest_vs_validate: ingest / validate_per_sec,
        cpu_ms_per_new_report: 1e3 * (cpu1 - cpu0) / stored.max(1) as f64,
        cpu_ms_per_duplicate: 1e3 * (cpu3 - cpu2) / n.max(1) as f64,
        rss_during_ingest_mb: mb(rss0, rss1),
        rss_node_with_store_mb,
        rss_fresh_process_mb: rss_child_base_mb,
        rss_process_mb: rss3 as f64 / 1e6,
    })
}

fn dial_bare(b: &BareNode, port: u64) -> Result<(), SimError> {
    b.dial(addr_of(port))
}

/// The ingest table.
pub fn table(r: &IngestReport) -> String {
    format!(
        "ronde sim --ingest: {} reports, {} stored ({} still held after a restart)\n\
         \x20 ed25519 batch verify      {:>10.0} /s (one core)\n\
         \x20 ed25519 strict verify     {:>10.0} /s\n\
         \x20 validate_with             {:>10.0} /s\n\
         \x20 node ingest               {:>10.0} /s  = {:.0} % of batch verify (target ≥ 70 %), {:.0} % of validate\n\
         \x20 CPU per new report        {:>10.3} ms (node + feeder)\n\
         \x20 CPU per duplicate         {:>10.3} ms (dropped by message id before validation)\n\
         \x20 RSS growth during ingest  {:>10.1} MB (node + feeder caches)\n\
         \x20 RSS of a node holding them {:>9.1} MB (fresh process, node started on the store, all read; target ≤ 30 MB)\n\
         \x20   process before the node  {:>9.1} MB (runtime, allocator, binary)\n\
         \x20 process RSS               {:>10.1} MB\n",
        r.reports,
        r.stored,
        r.held_after_restart,
        r.batch_verify_per_sec,
        r.single_verify_per_sec,
        r.validate_per_sec,
        r.ingest_per_sec,
        100.0 * r.ingest_vs_batch_verify,
        100.0 * r.ingest_vs_validate,
        r.cpu_ms_per_new_report,
        r.cpu_ms_per_duplicate,
        r.rss_during_ingest_mb,
        r.rss_node_with_store_mb,
        r.rss_fresh_process_mb,
        r.rss_process_mb
    )
}

/// Environment variable that turns this process into the memory probe of
/// [`hold_in_child`].
pub const HOLD_STORE_ENV: &str = "RONDE_SIM_HOLD_STORE";

/// Run this same program again with [`HOLD_STORE_ENV`] set: it starts a
/// node on `dir`, reads every report, and prints what it held and its RSS
/// before and after. Returns (held, growth MB, base MB).
fn hold_in_child(dir: &std::path::Path) -> Result<(usize, f64, f64), SimError> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(HOLD_STORE_ENV, dir)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("hold-store "))
        .ok_or_else(|| SimError::Config(format!("the memory probe said {text:?}")))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    match v.as_slice() {
        [held, before, after] => Ok((*held as usize, (after - before) / 1e6, before / 1e6)),
        _ => Err(SimError::Config(format!("the memory probe said {line:?}"))),
    }
}

/// The memory probe (see [`hold_in_child`]): print
/// `hold-store <held> <rss before> <rss after>` and return.
pub fn hold_store_probe(dir: std::path::PathBuf) -> Result<(), SimError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let before = rss_bytes().unwrap_or(0);
        let center = City::paris().center;
        let mut c = ronde_node::NodeConfig::for_tests(&dir);
        c.clock = Arc::new(ManualClock::new(T0 + 60));
        c.location = Some(center);
        c.policy.min_difficulty = 8;
        let node = ronde_node::Node::start(c).await?;
        let held = node
            .nearby(center.0, center.1, 100_000.0)
            .await
            .map(|n| n.reports.len())
            .unwrap_or(0);
        let after = rss_bytes().unwrap_or(0);
        node.shutdown().await?;
        println!("hold-store {held} {before} {after}");
        Ok(())
    })
}
