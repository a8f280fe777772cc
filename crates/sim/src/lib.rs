//! # ronde-sim
//!
//! A city of real Ronde nodes in one process: the same `ronde-node` code,
//! real libp2p (Noise, Yamux, gossipsub, identify, Kademlia, sync), over
//! an emulated network with per-link latency and loss ([`net`]), placed
//! over Paris with a denser centre, walking, leaving and coming back,
//! partitioned, losing a relay, under attack by flooders and droppers,
//! with pairs of contacts raising SOS to each other, some through a
//! relay's mailbox ([`plan`]). The same plan is replayed by bare gossipsub
//! peers as the baseline, so Ronde's costs come out as ratios measured in
//! the same run (the baseline has no circle: no SOS).
//!
//! Two cores run out of CPU long before a thousand phones run out of
//! network. The run's clock can be dilated (every modelled duration takes
//! `dilation` times longer on the wall clock, and measured latencies are
//! divided back), and [`monitor`] says whether the CPU was the bottleneck
//! anyway, instead of reporting overload as network latency.
//!
//! See `docs/simulation.md` for the model and `docs/performance.md` for
//! figures. The `ronde sim` command is [`cli::run`].

pub mod city;
pub mod cli;
pub mod ingest;
pub mod meter;
pub mod metrics;
pub mod monitor;
pub mod net;
pub mod output;
pub mod peers;
pub mod plan;
pub mod privacy;
pub mod push;
pub mod run;
pub mod spam;

use std::sync::Arc;

use serde::Serialize;

pub use plan::{Plan, SimConfig};
pub use run::{Outcome, Overlay};

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration does not make sense.
    #[error("bad simulation configuration: {0}")]
    Config(String),
    /// A Ronde node failed.
    #[error("node: {0}")]
    Node(#[from] ronde_node::NodeError),
    /// A coordinate was refused.
    #[error("geo: {0}")]
    Geo(#[from] ronde_protocol::GeoError),
    /// libp2p refused to build or listen.
    #[error("libp2p: {0}")]
    Libp2p(String),
    /// A simulated device had stopped.
    #[error("a simulated device stopped")]
    Stopped,
    /// Local I/O (data directories).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A step of the trusted circle did not happen in time.
    #[error("circle: {0}")]
    Circle(String),
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// The configuration, seed included.
    pub config: SimConfig,
    /// Reports planned.
    pub planned_reports: usize,
    /// SOS planned (one per pair of contacts).
    pub planned_sos: usize,
    /// Areas the city spans.
    pub city_areas: usize,
    /// Ronde's figures.
    pub ronde: Option<Outcome>,
    /// Ronde without its defences against floods of valid reports, on the
    /// same plan (with `--spammers`, unless `--no-spam-compare`).
    pub ronde_undefended: Option<Outcome>,
    /// The baseline's figures.
    pub baseline: Option<Outcome>,
    /// The targets, judged.
    pub targets: Vec<output::Target>,
}

/// Run a scenario: Ronde then the baseline (as configured), on one plan.
/// Must be called inside a Tokio multi-thread runtime.
pub async fn simulate(
    config: SimConfig,
    progress: Option<indicatif::ProgressBar>,
) -> Result<SimReport, SimError> {
    let plan = Arc::new(Plan::new(&config)?);
    let ronde_undefended = if config.ronde && config.spam.active() && config.spam.compare {
        let mut undefended = config.clone();
        undefended.spam.defences = false;
        Some(run::run_overlay(&undefended, plan.clone(), Overlay::Ronde, progress.clone()).await?)
    } else {
        None
    };
    let mut ronde = if config.ronde {
        Some(run::run_overlay(&config, plan.clone(), Overlay::Ronde, progress.clone()).await?)
    } else {
        None
    };
    // With spies, the same plan again without the stem: the privacy
    // figures and the stem's latency cost against it (issue 13).
    if config.ronde && config.stem && config.spies > 0.0 {
        let mut bare = config.clone();
        bare.stem = false;
        let without =
            run::run_overlay(&bare, plan.clone(), Overlay::Ronde, progress.clone()).await?;
        if let (Some(with), Some(view)) = (
            ronde.as_mut().and_then(|o| o.privacy.as_mut()),
            without.privacy.map(|p| p.view),
        ) {
            with.compare(view);
        }
    }
    let baseline = if config.baseline {
        Some(run::run_overlay(&config, plan.clone(), Overlay::Baseline, progress).await?)
    } else {
        None
    };
    let targets = output::judge(ronde.as_ref(), baseline.as_ref());
    Ok(SimReport {
        planned_reports: plan.reports.len(),
        planned_sos: plan.sos.len(),
        city_areas: plan.city_areas.len(),
        config,
        ronde,
        ronde_undefended,
        baseline,
        targets,
    })
}
