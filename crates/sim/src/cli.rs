//! `ronde sim`: the command-line face of the simulator.
//!
//! [`SimArgs`] is a `clap::Args` the `ronde` binary mounts as its `sim`
//! subcommand; [`run`] builds its own Tokio runtime (call it outside any
//! runtime), prints the seed first, shows a progress bar on stderr, prints
//! the table on stdout and writes `sim-<seed>.json` and `sim-<seed>.svg`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::plan::SimConfig;
use ronde_node::GossipTuning;

/// Parse `150ms`, `10s`, `2m`, `1.5s`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("{s:?}: add a unit (ms, s, m, h)"))?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: {num:?} is not a number"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    if !secs.is_finite() || !(0.0..=1e7).contains(&secs) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parse `20ms..150ms` (or one value for a fixed latency).
pub fn parse_latency(s: &str) -> Result<(Duration, Duration), String> {
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (parse_duration(a)?, parse_duration(b)?);
            if a > b {
                return Err(format!("{s:?}: the smallest latency comes first"));
            }
            Ok((a, b))
        }
        None => parse_duration(s).map(|d| (d, d)),
    }
}

/// Parse `60s+30s` (start + length).
pub fn parse_window(s: &str) -> Result<(Duration, Duration), String> {
    let (a, b) = s
        .split_once('+')
        .ok_or_else(|| format!("{s:?}: write START+LENGTH, e.g. 60s+30s"))?;
    Ok((parse_duration(a)?, parse_duration(b)?))
}

/// Parse `LAT,LON`.
pub fn parse_point(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?}: write LAT,LON"))?;
    let lat: f64 = a
        .trim()
        .parse()
        .map_err(|_| format!("{a:?} is not a number"))?;
    let lon: f64 = b
        .trim()
        .parse()
        .map_err(|_| format!("{b:?} is not a number"))?;
    ronde_protocol::area_of(lat, lon).map_err(|e| e.to_string())?;
    Ok((lat, lon))
}

/// `ronde sim`: a city of real Ronde nodes over an emulated network, and
/// bare gossipsub on the same plan as the baseline. Durations are model
/// time; with `--dilation D` the run takes D times longer on the wall
/// clock and latencies are divided back.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Phones (relays, flooders and droppers come on top).
    #[arg(long, default_value_t = 200)]
    pub nodes: usize,
    /// Relays: follow every area of the city, accept many connections.
    #[arg(long, default_value_t = 4)]
    pub relays: usize,
    /// Seed of everything the simulator draws (printed; random if absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Reporting period (after the warm-up).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time for meshes to form before the first report.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// How long each report is followed (and the drain at the end).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub window: Duration,
    /// One-way link latency range, uniform per pair of devices.
    #[arg(long, default_value = "20ms..150ms", value_parser = parse_latency)]
    pub latency: (Duration, Duration),
    /// Probability that a segment is lost (costs a retransmission timeout).
    #[arg(long, default_value_t = 0.01)]
    pub loss: f64,
    /// Fraction of online phones leaving per minute (they come back later
    /// as new peers).
    #[arg(long, default_value_t = 0.10)]
    pub churn: f64,
    /// Mean time offline before coming back.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub offline: Duration,
    /// Fraction of phones walking (1.4 m/s, random waypoints).
    #[arg(long, default_value_t = 0.3)]
    pub walkers: f64,
    /// Mean time between two reports city-wide.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub report_every: Duration,
    /// Split the city west/east: START+LENGTH, e.g. 60s+30s.
    #[arg(long, value_parser = parse_window)]
    pub partition: Option<(Duration, Duration)>,
    /// Kill a relay for good at this time.
    #[arg(long, value_parser = parse_duration)]
    pub relay_failure: Option<Duration>,
    /// Peers flooding forged, garbage, expired and future reports.
    #[arg(long, default_value_t = 2)]
    pub flooders: usize,
    /// Mean time between two floods of one flooder.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub flood_every: Duration,
    /// Peers joining meshes and forwarding nothing.
    #[arg(long, default_value_t = 2)]
    pub droppers: usize,
    /// Live reports in the city when measuring starts (default: 30 minutes
    /// of reports at --report-every, at most 2000), so that stores and
    /// sync are in steady state.
    #[arg(long)]
    pub prefill: Option<usize>,
    /// Phones each phone dials (nearby ones).
    #[arg(long, default_value_t = 6)]
    pub peers: usize,
    /// Relays each phone dials.
    #[arg(long, default_value_t = 1)]
    pub relay_links: usize,
    /// Gossipsub heartbeat (model time).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Wall-clock seconds per model second (≥ 1): gives the CPU room.
    #[arg(long, default_value_t = 1.0)]
    pub dilation: f64,
    /// Skip the bare gossipsub baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Run only the baseline.
    #[arg(long, conflicts_with = "no_baseline")]
    pub baseline_only: bool,
    /// Gossipsub mesh degree D instead of the node's default, with
    /// libp2p's proportions (low = ⌈5D/6⌉, high = 2D) and no latency
    /// bonus unless the flags below add them, for Ronde and (unless
    /// --baseline-mesh-n) the baseline.
    #[arg(long)]
    pub mesh_n: Option<usize>,
    /// D_high (prune back to D above it) instead of 2D.
    #[arg(long)]
    pub mesh_high: Option<usize>,
    /// Period of the Ronde nodes' Kademlia bootstrap, model time (0s:
    /// none after the one at start) instead of the node's default (5 min,
    /// not dilated).
    #[arg(long, value_parser = parse_duration)]
    pub kad_bootstrap: Option<Duration>,
    /// The Ronde nodes' ping of every connection, model time, instead of
    /// the node's default (4 min).
    #[arg(long, value_parser = parse_duration)]
    pub ping_interval: Option<Duration>,
    /// The Ronde nodes' foreground mailbox poll, model time, instead of
    /// the node's default (30 s).
    #[arg(long, value_parser = parse_duration)]
    pub mailbox_poll: Option<Duration>,
    /// The application score of the fastest links (0: no latency bonus)
    /// instead of the node's default (docs/protocol.md §3.2).
    #[arg(long)]
    pub latency_bonus: Option<u32>,
    /// Opportunistic grafting every this many heartbeats instead of the
    /// node's default.
    #[arg(long)]
    pub graft_ticks: Option<u64>,
    /// Median mesh score under which opportunistic grafting brings in
    /// better peers, instead of the node's default.
    #[arg(long)]
    pub graft_threshold: Option<u32>,
    /// Peers kept by score when a mesh is pruned (D_score) instead of the
    /// node's default.
    #[arg(long)]
    pub retain_scores: Option<usize>,
    /// Send IDONTWANT for messages of at least this many bytes instead of
    /// the node's default (1000, libp2p's: never for a report; 100: for
    /// every report).
    #[arg(long)]
    pub idontwant: Option<usize>,
    /// Baseline only: gossipsub mesh degree D instead of Ronde's (e.g. 6,
    /// libp2p's default, with --baseline-idontwant 1000).
    #[arg(long)]
    pub baseline_mesh_n: Option<usize>,
    /// Baseline only: send IDONTWANT for messages of at least this many
    /// bytes instead of Ronde's (libp2p's default, 1000, is above a
    /// report's size).
    #[arg(long)]
    pub baseline_idontwant: Option<usize>,
    /// Pairs of phones made contacts in the warm-up (invite, accept,
    /// approve); one of each raises an SOS during the run. Every other
    /// SOS goes to a contact that is offline then and comes back later:
    /// it can only get it from a relay's mailbox. Ronde only (the baseline
    /// has no circle); 0 for none.
    #[arg(long = "sos", default_value_t = 4)]
    pub sos_pairs: usize,
    /// City centre.
    #[arg(long, default_value = "48.8566,2.3522", value_parser = parse_point)]
    pub center: (f64, f64),
    /// Spread of the population (standard deviation), km.
    #[arg(long, default_value_t = 3.0)]
    pub sigma_km: f64,
    /// Tokio worker threads (default: the cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Where the JSON and SVG go.
    #[arg(long, default_value = "sim-out")]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Exit with an error if a target is missed.
    #[arg(long)]
    pub strict: bool,
    /// Fraction of phones that collude as spies: each logs the first peer
    /// every report reached it from, and the first-spy estimator guesses
    /// the author (`ronde.privacy` in the JSON). Above 0, Ronde runs a
    /// second time on the same plan without the stem
    /// (`ronde.privacy.no_stem`).
    #[arg(long, default_value_t = 0.0)]
    pub spies: f64,
    /// Fraction of phones in the background from late in the warm-up: no
    /// area, no report, one contact, a push endpoint registered with the
    /// relays (the SOS contacts that are not away too). Their bytes,
    /// radio wake-ups and SOS times are `ronde.background` in the JSON.
    #[arg(long, default_value_t = 0.0)]
    pub background: f64,
    /// The background phones' safety poll (default: the node's, 15 min),
    /// to see it in a short run.
    #[arg(long, value_parser = parse_duration)]
    pub background_poll: Option<Duration>,
    /// Ronde's relays are not gossip hubs: phones keep a mesh of D = 3
    /// among all their peers (the mesh before session 10), instead of
    /// D = 2 beside a hub relay that passes each report to all its phones.
    #[arg(long)]
    pub no_hubs: bool,
    /// Ronde's own reports skip the stem and go straight to the gossip.
    #[arg(long)]
    pub no_stem: bool,
    /// Ronde publishes to every subscribed peer (gossipsub's flood
    /// publishing, libp2p's default and Ronde's before issue 13).
    #[arg(long)]
    pub flood_publish: bool,
    /// Instead of a city: measure a node's ingest rate against ed25519
    /// verification, and its memory with `--ingest-reports` reports.
    #[arg(long)]
    pub ingest: bool,
    /// Sybil phones flooding valid reports, as a fraction of --nodes (on
    /// top of them), e.g. 0.2 (issue 14).
    #[arg(long, default_value_t = 0.0)]
    pub spammers: f64,
    /// The Sybils' rate, all together, in multiples of the honest
    /// city-wide rate (1 / --report-every), e.g. 100.
    #[arg(long, default_value_t = 100.0)]
    pub spam_rate: f64,
    /// Phones' store bound (reports), instead of the node's default: a
    /// small one shows eviction at sim scale.
    #[arg(long)]
    pub store_capacity: Option<usize>,
    /// With --spammers: run Ronde with its defences only (by default it
    /// also runs without them, on the same plan, as the baseline).
    #[arg(long)]
    pub no_spam_compare: bool,
    /// Reports for `--ingest`.
    #[arg(long, default_value_t = 10_000)]
    pub ingest_reports: usize,
}

impl SimArgs {
    /// The configuration these arguments describe, with this seed.
    pub fn config(&self, seed: u64) -> SimConfig {
        let workers = self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        let mut gossip = self.mesh_n.map(GossipTuning::mesh).unwrap_or_else(|| {
            if self.no_hubs {
                GossipTuning::default()
            } else {
                GossipTuning::around_hubs()
            }
        });
        if let Some(h) = self.mesh_high {
            gossip.mesh_n_high = h.max(gossip.mesh_n);
        }
        if let Some(t) = self.idontwant {
            gossip.idontwant_threshold = t;
        }
        if let Some(b) = self.latency_bonus {
            gossip.latency_bonus = b;
        }
        if let Some(t) = self.graft_ticks {
            gossip.opportunistic_graft_ticks = t.max(1);
        }
        if let Some(t) = self.graft_threshold {
            gossip.opportunistic_graft_threshold = t;
        }
        if let Some(r) = self.retain_scores {
            gossip.retain_scores = r;
        }
        gossip.flood_publish = self.flood_publish;
        let baseline_gossip = (self.baseline_mesh_n.is_some() || self.baseline_idontwant.is_some())
            .then(|| {
                let mut g = self
                    .baseline_mesh_n
                    .map(GossipTuning::mesh)
                    .unwrap_or(gossip);
                if let Some(t) = self.baseline_idontwant {
                    g.idontwant_threshold = t;
                }
                g
            });
        SimConfig {
            phones: self.nodes,
            relays: self.relays,
            seed,
            warmup: self.warmup,
            duration: self.duration,
            window: self.window,
            latency_min: self.latency.0,
            latency_max: self.latency.1,
            loss: self.loss,
            churn_per_min: self.churn,
            offline_mean: self.offline,
            walkers: self.walkers,
            report_every: self.report_every,
            partition: self.partition,
            relay_failure: self.relay_failure,
            flooders: self.flooders,
            flood_every: self.flood_every,
            droppers: self.droppers,
            prefill: self.prefill,
            peers: self.peers,
            relay_links: self.relay_links,
            heartbeat: self.heartbeat,
            dilation: self.dilation,
            ronde: !self.baseline_only,
            baseline: !self.no_baseline,
            gossip,
            baseline_gossip,
            center: self.center,
            sigma_km: self.sigma_km,
            sos_pairs: self.sos_pairs,
            workers,
            progress: !self.no_progress,
            spies: self.spies,
            background: self.background,
            background_poll: self.background_poll,
            stem: !self.no_stem,
            hubs: !self.no_hubs,
            timers: crate::peers::NodeTimers {
                kad_bootstrap: self.kad_bootstrap,
                ping: self.ping_interval,
                mailbox_poll: self.mailbox_poll,
            },
            spam: crate::spam::SpamConfig {
                fraction: self.spammers,
                rate: self.spam_rate,
                store_capacity: self.store_capacity,
                defences: true,
                compare: !self.no_spam_compare,
            },
            ..SimConfig::default()
        }
    }
}

fn fresh_seed() -> u64 {
    use rand::RngCore;
    rand::rngs::OsRng.next_u64() >> 16
}

/// Run `ronde sim`. Builds its own runtime: call it outside any.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    // `--ingest` runs this program again as a memory probe.
    if let Some(dir) = std::env::var_os(crate::ingest::HOLD_STORE_ENV) {
        return Ok(crate::ingest::hold_store_probe(dir.into())?);
    }
    let seed = args.seed.unwrap_or_else(fresh_seed);
    eprintln!("ronde sim: seed {seed} (replay with --seed {seed})");
    let cfg = args.config(seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.workers)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    if args.ingest {
        let rep = runtime
            .block_on(crate::ingest::run(
                args.ingest_reports,
                seed,
                cfg.difficulty,
            ))
            .context("the ingest measurement failed")?;
        print!("{}", crate::ingest::table(&rep));
        let path = args.out.join(format!("ingest-{seed}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&rep)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }

    cfg.validate()?;
    let progress = if cfg.progress {
        let pb = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {percent:>3}% {msg}")
        {
            pb.set_style(style.progress_chars("=> "));
        }
        Some(pb)
    } else {
        None
    };
    let rep = runtime
        .block_on(crate::simulate(cfg, progress.clone()))
        .with_context(|| format!("the simulation failed (seed {seed})"))?;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    print!("{}", crate::output::table(&rep));
    if let Some(p) = rep.ronde.as_ref().and_then(|o| o.privacy.as_ref()) {
        print!("{}", crate::privacy::table(p));
    }
    let json = args.out.join(format!("sim-{seed}.json"));
    std::fs::write(&json, serde_json::to_vec_pretty(&rep)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    let svg = args.out.join(format!("sim-{seed}.svg"));
    std::fs::write(&svg, crate::output::svg(&rep))
        .with_context(|| format!("cannot write {}", svg.display()))?;
    eprintln!("wrote {} and {}", json.display(), svg.display());
    // Let the runtime's leftover tasks go without waiting on them.
    runtime.shutdown_timeout(Duration::from_secs(2));
    if args.strict {
        let missed: Vec<&str> = rep
            .targets
            .iter()
            .filter(|t| t.met == Some(false))
            .map(|t| t.name.as_str())
            .collect();
        if !missed.is_empty() {
            anyhow::bail!("targets missed (seed {seed}): {}", missed.join(", "));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn durations_and_ranges_parse() {
        assert_eq!(parse_duration("150ms"), Ok(Duration::from_millis(150)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1y").is_err());
        assert_eq!(
            parse_latency("20ms..150ms"),
            Ok((Duration::from_millis(20), Duration::from_millis(150)))
        );
        assert!(parse_latency("150ms..20ms").is_err());
        assert_eq!(
            parse_window("60s+30s"),
            Ok((Duration::from_secs(60), Duration::from_secs(30)))
        );
        assert!(parse_point("48.8,2.3").is_ok());
        assert!(parse_point("95,2").is_err());
    }

    #[test]
    fn arguments_map_to_the_config() {
        let cmd = Cmd::try_parse_from([
            "sim",
            "--nodes",
            "1000",
            "--seed",
            "7",
            "--dilation",
            "4",
            "--partition",
            "60s+30s",
            "--no-baseline",
            "--sos",
            "6",
        ])
        .expect("parse");
        let cfg = cmd.sim.config(7);
        assert_eq!(cfg.phones, 1000);
        assert_eq!(cfg.dilation, 4.0);
        assert_eq!(cfg.sos_pairs, 6);
        assert!(!cfg.baseline && cfg.ronde);
        assert_eq!(
            cfg.partition,
            Some((Duration::from_secs(60), Duration::from_secs(30)))
        );
        assert!(cfg.validate().is_ok());
        assert!(Cmd::try_parse_from(["sim", "--latency", "1s..1ms"]).is_err());
    }
}
