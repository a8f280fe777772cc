//! The adversary of issue 14 (floods of **valid** reports) and its figures.
//!
//! `--spammers F --spam-rate X` adds `round(F × --nodes)` Sybil phones
//! (on top of the honest ones) that publish valid reports at `X` times the
//! honest city-wide rate (`X / --report-every` a second, all spammers
//! together), into [`SPAM_CELLS`] cells drawn near the centre. Their proof
//! of work is computed when the plan is made, as a GPU would ahead of time,
//! so the run's CPU is not spent on it. Spam reports live
//! [`SPAM_TTL_MINUTES`] (the longest a report may), honest ones 30: under
//! the store's old rule (evict what expires soonest) spam pushed honest
//! reports out.
//!
//! A Sybil is a bare gossipsub peer that follows the spammed areas, dials
//! the phones nearest to its cells and a relay, publishes and forwards
//! nothing else.
//!
//! With `--spam-compare` (the default with spammers) the same plan runs
//! twice on Ronde: without the defences (the store's soonest-expiry
//! eviction, no bound on new reports per peer: today's values) and with
//! them, so the figures of both come from one run. `--store-capacity`
//! lowers the phones' store bound so that eviction shows at sim scale.
//!
//! Figures ([`SpamFigures`], under `ronde.spam` in the JSON):
//! `honest_delivery`, `honest_evicted`, `spam_cells_share`, the relay
//! aggregates' distortion, and what spam costs honest phones.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use ronde_node::new_reports::NewReportBound;
use ronde_node::store::Eviction;
use ronde_node::NodeConfig;
use ronde_protocol::{cell_for, Area, Category, Cell, Draft, Report, ReportId};
use serde::Serialize;

use crate::city::City;
use crate::net::{mix64, Slot};
use crate::SimError;

/// Cells the Sybils flood.
pub const SPAM_CELLS: usize = 3;
/// Lifetime of a spam report, minutes (the protocol's maximum).
pub const SPAM_TTL_MINUTES: u8 = 60;
/// Reports per cell per hour a relay counts in its aggregates before the
/// rest is suppressed as a flood.
pub const RELAY_CELL_HOUR_CAP: u64 = ronde_relay::rules::CELL_HOUR_CAP;

/// The adversary's settings.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SpamConfig {
    /// Sybil phones, as a fraction of the honest phones.
    pub fraction: f64,
    /// Their rate, in multiples of the honest city-wide rate.
    pub rate: f64,
    /// Phones' store bound (`None`: the node's default).
    pub store_capacity: Option<usize>,
    /// Run Ronde with its defences against valid floods (when false: the
    /// soonest-expiry eviction, no bound on new reports per peer).
    pub defences: bool,
    /// Also run Ronde without its defences, on the same plan.
    pub compare: bool,
}

impl Default for SpamConfig {
    fn default() -> Self {
        SpamConfig {
            fraction: 0.0,
            rate: 0.0,
            store_capacity: None,
            defences: true,
            compare: true,
        }
    }
}

impl SpamConfig {
    /// Whether there is an adversary.
    pub fn active(&self) -> bool {
        self.fraction > 0.0 && self.rate > 0.0
    }

    /// Sybil phones for `phones` honest ones.
    pub fn spammers(&self, phones: usize) -> usize {
        if self.active() {
            ((self.fraction * phones as f64).round() as usize).max(1)
        } else {
            0
        }
    }

    /// Check the numbers.
    pub fn validate(&self) -> Result<(), SimError> {
        if !(0.0..=10.0).contains(&self.fraction) || !(0.0..=100_000.0).contains(&self.rate) {
            return Err(SimError::Config(
                "--spammers must be in [0, 10] and --spam-rate in [0, 100000]".into(),
            ));
        }
        if self.store_capacity == Some(0) {
            return Err(SimError::Config("--store-capacity must be positive".into()));
        }
        Ok(())
    }

    /// Set a Ronde node's store bound and defences.
    pub fn apply(&self, c: &mut NodeConfig, phone: bool) {
        if let (Some(n), true) = (self.store_capacity, phone) {
            c.max_reports = n;
        }
        if !self.defences {
            c.eviction = Eviction::SoonestExpiry;
            c.new_report_bound = None;
        } else {
            c.eviction = Eviction::CrowdedFirst;
            c.new_report_bound = Some(NewReportBound::DEFAULT);
        }
    }
}

/// A planned spam report.
#[derive(Debug, Clone)]
pub struct PlannedSpam {
    /// When (model seconds).
    pub t: f64,
    /// Which Sybil.
    pub spammer: Slot,
    /// On which area's topic.
    pub area: Area,
    /// The sealed report.
    pub bytes: Vec<u8>,
}

/// The adversary's plan.
#[derive(Debug, Clone, Default)]
pub struct SpamPlan {
    /// The flooded cells.
    pub cells: Vec<Cell>,
    /// Their areas (what the Sybils follow).
    pub areas: Vec<Area>,
    /// The reports, by time.
    pub reports: Vec<PlannedSpam>,
    /// Their ids.
    pub ids: HashSet<ReportId>,
}

/// When and how the Sybils publish.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// The run's seed.
    pub seed: u64,
    /// The first Sybil's slot.
    pub first: Slot,
    /// How many Sybils.
    pub spammers: usize,
    /// From when to when (model seconds).
    pub from: f64,
    /// Until when.
    pub to: f64,
    /// Mean time between two honest reports city-wide (seconds).
    pub honest_every: f64,
    /// Proof-of-work difficulty.
    pub difficulty: u8,
    /// Unix time of model time 0.
    pub t0: u64,
}

/// Plan the spam of `s.spammers` Sybils.
pub fn plan(cfg: &SpamConfig, city: &City, s: &Schedule) -> Result<SpamPlan, SimError> {
    let Schedule {
        seed,
        first,
        spammers,
        from,
        to,
        honest_every,
        difficulty,
        t0,
    } = *s;
    if spammers == 0 {
        return Ok(SpamPlan::default());
    }
    let mut rng = ChaCha20Rng::seed_from_u64(mix64(seed ^ mix64(14)));
    let mut cells = Vec::new();
    while cells.len() < SPAM_CELLS {
        let p = city.sample(&mut rng);
        let c = cell_for(p.0, p.1, 7).map_err(|e| SimError::Config(format!("spam cell: {e}")))?;
        if !cells.contains(&c) {
            cells.push(c);
        }
    }
    let mut areas: Vec<Area> = cells.iter().map(|c| c.area()).collect();
    areas.sort();
    areas.dedup();
    let every = honest_every / cfg.rate.max(1e-9);
    let mut reports = Vec::new();
    let mut ids = HashSet::new();
    let mut t = from + exp(&mut rng, every);
    while t < to {
        let cell = *cells.choose(&mut rng).unwrap_or(&cells[0]);
        let category = *Category::ALL
            .choose(&mut rng)
            .unwrap_or(&Category::Harassment);
        let bytes = Draft::new(category, cell, t0 + t as u64)
            .with_ttl(SPAM_TTL_MINUTES)
            .seal(difficulty, &mut rng)
            .map(|r| r.to_bytes())
            .map_err(|e| SimError::Config(format!("sealing spam: {e}")))?;
        ids.insert(ReportId::of(&bytes));
        reports.push(PlannedSpam {
            t,
            spammer: first + rng.gen_range(0..spammers as Slot),
            area: cell.area(),
            bytes,
        });
        t += exp(&mut rng, every);
    }
    Ok(SpamPlan {
        cells,
        areas,
        reports,
        ids,
    })
}

fn exp(rng: &mut impl Rng, mean: f64) -> f64 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    -mean * u.ln()
}

/// What one honest device holds at the end of the run.
pub struct Holding {
    /// Which device.
    pub slot: Slot,
    /// A phone (else a relay).
    pub phone: bool,
    /// Its live reports: id and cell.
    pub reports: Vec<(ReportId, Cell)>,
}

/// The figures of the adversary, for one run.
#[derive(Debug, Clone, Serialize)]
pub struct SpamFigures {
    /// Whether the defences were on.
    pub defences: bool,
    /// Sybil phones.
    pub spammers: usize,
    /// Spam reports published.
    pub spam_reports: usize,
    /// Honest reports delivered within the window / expected (the run's
    /// delivery ratio: only honest receivers and honest reports count).
    pub honest_delivery: f64,
    /// Honest live reports that reached a phone and were no longer in its
    /// store at the end (pushed out), summed over the phones online then.
    pub honest_evicted: u64,
    /// Honest live reports held by those phones at the end.
    pub honest_held: u64,
    /// Of the cells that show at least one report on an honest phone's map
    /// at the end (all phones together), the share that show spam.
    pub spam_cells_share: f64,
    /// Of the reports on honest phones' maps at the end, the share of spam.
    pub spam_report_share: f64,
    /// A relay's aggregates without a cap: spam counted / honest counted
    /// (reports the relay held at the end, bucketed per cell and hour).
    pub relay_distortion_uncapped: f64,
    /// The same with the relays' per-cell, per-hour cap
    /// ([`RELAY_CELL_HOUR_CAP`]).
    pub relay_distortion_capped: f64,
    /// Reports the cap suppressed as a flood in that relay's aggregates.
    pub relay_suppressed: u64,
    /// Spam reports honest phones stored (each verified once: signature
    /// and proof of work), per phone-hour online.
    pub spam_verified_per_phone_hour: f64,
    /// CPU honest phones spent verifying spam, ms per phone-hour (the
    /// above × the verification cost measured in this process).
    pub spam_cpu_ms_per_phone_hour: f64,
    /// Bytes of spam honest phones received, MB per phone-hour: spam
    /// stored × the run's report frames per stored report (every report,
    /// spam included, every honest device) × a report frame.
    pub spam_mb_per_phone_hour: f64,
    /// Spam messages honest devices ignored or rejected for exceeding the
    /// bound on new reports per peer.
    pub over_peer_bound: u64,
}

/// Everything the figures are computed from.
pub struct Inputs<'a> {
    /// The spam plan.
    pub plan: &'a SpamPlan,
    /// Its settings.
    pub cfg: &'a SpamConfig,
    /// Sybils.
    pub spammers: usize,
    /// Every (report, device, time) stored.
    pub deliveries: &'a [(ReportId, Slot, f64)],
    /// Whether a slot is an honest phone.
    pub is_phone: &'a dyn Fn(Slot) -> bool,
    /// Honest reports and when they expire (Unix seconds).
    pub honest: &'a HashMap<ReportId, u64>,
    /// What honest devices hold at the end.
    pub holdings: &'a [Holding],
    /// The clock at the end (Unix seconds).
    pub now: u64,
    /// The run's delivery ratio.
    pub honest_delivery: f64,
    /// Report frames sent by honest devices after the warm-up.
    pub transmissions: u64,
    /// End of the warm-up (model seconds).
    pub since: f64,
    /// Honest phone-hours online after the warm-up.
    pub phone_hours: f64,
    /// Bytes of one report frame.
    pub frame_bytes: usize,
    /// Sum of the honest devices' `over_peer_bound` refusals.
    pub over_peer_bound: u64,
}

/// Compute the figures.
pub fn figures(i: &Inputs<'_>) -> SpamFigures {
    let spam = &i.plan.ids;
    // Honest live reports each phone got, and what it still holds.
    let mut got: HashMap<Slot, HashSet<ReportId>> = HashMap::new();
    let mut spam_stored = 0u64;
    for (id, slot, _) in i.deliveries {
        if !(i.is_phone)(*slot) {
            continue;
        }
        if spam.contains(id) {
            spam_stored += 1;
        } else if i.honest.get(id).is_some_and(|exp| *exp > i.now) {
            got.entry(*slot).or_default().insert(*id);
        }
    }
    let (mut evicted, mut held) = (0u64, 0u64);
    let mut cells: HashMap<Cell, bool> = HashMap::new();
    let (mut shown, mut shown_spam) = (0u64, 0u64);
    for h in i.holdings.iter().filter(|h| h.phone) {
        let ids: HashSet<ReportId> = h.reports.iter().map(|(id, _)| *id).collect();
        if let Some(g) = got.get(&h.slot) {
            evicted += g.iter().filter(|id| !ids.contains(id)).count() as u64;
            held += g.iter().filter(|id| ids.contains(id)).count() as u64;
        }
        for (id, cell) in &h.reports {
            let is_spam = spam.contains(id);
            *cells.entry(*cell).or_default() |= is_spam;
            shown += 1;
            shown_spam += u64::from(is_spam);
        }
    }
    let share = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
    let spam_cells = cells.values().filter(|s| **s).count() as u64;
    // A relay's aggregates: what the first relay held, per cell and hour.
    let relay = i.holdings.iter().find(|h| !h.phone);
    let (mut d_raw, mut d_cap, mut suppressed) = (0.0, 0.0, 0u64);
    if let Some(r) = relay {
        let mut per: HashMap<Cell, (u64, u64)> = HashMap::new();
        for (id, cell) in &r.reports {
            let e = per.entry(*cell).or_default();
            if spam.contains(id) {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        let (mut s_raw, mut h_raw, mut s_cap, mut h_cap) = (0u64, 0u64, 0u64, 0u64);
        for (s, h) in per.values() {
            s_raw += s;
            h_raw += h;
            // The cap keeps the first reports counted: honest ones first
            // if they came first; at most the cap either way. Counted
            // pessimistically for the honest side: spam fills the cap
            // first.
            let sc = (*s).min(RELAY_CELL_HOUR_CAP);
            let hc = (*h).min(RELAY_CELL_HOUR_CAP - sc);
            s_cap += sc;
            h_cap += hc;
            suppressed += s + h - sc - hc;
        }
        d_raw = share(s_raw, h_raw);
        d_cap = share(s_cap, h_cap);
    }
    let verify_ms = verify_cost_ms(i.plan);
    let per_hour = |x: f64| {
        if i.phone_hours > 0.0 {
            x / i.phone_hours
        } else {
            0.0
        }
    };
    let verified = per_hour(spam_stored as f64);
    // Frames per stored report, over every report and honest device.
    let stored_since = i.deliveries.iter().filter(|d| d.2 >= i.since).count();
    let copies = if stored_since == 0 {
        0.0
    } else {
        i.transmissions as f64 / stored_since as f64
    };
    SpamFigures {
        defences: i.cfg.defences,
        spammers: i.spammers,
        spam_reports: i.plan.reports.len(),
        honest_delivery: i.honest_delivery,
        honest_evicted: evicted,
        honest_held: held,
        spam_cells_share: share(spam_cells, cells.len() as u64),
        spam_report_share: share(shown_spam, shown),
        relay_distortion_uncapped: d_raw,
        relay_distortion_capped: d_cap,
        relay_suppressed: suppressed,
        spam_verified_per_phone_hour: verified,
        spam_cpu_ms_per_phone_hour: verified * verify_ms,
        spam_mb_per_phone_hour: verified * copies * i.frame_bytes as f64 / 1e6,
        over_peer_bound: i.over_peer_bound,
    }
}

/// What verifying one report costs here, ms (parse, proof of work,
/// signature), measured on up to 200 of the spam reports.
fn verify_cost_ms(plan: &SpamPlan) -> f64 {
    let sample: Vec<&[u8]> = plan
        .reports
        .iter()
        .take(200)
        .map(|r| r.bytes.as_slice())
        .collect();
    if sample.is_empty() {
        return 0.0;
    }
    let policy = ronde_protocol::Policy {
        min_difficulty: 0,
        ..ronde_protocol::Policy::default()
    };
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let start = std::time::Instant::now();
    for b in &sample {
        let now = Report::from_bytes(b).map_or(0, |r| r.observed_at());
        if let Ok(p) = ronde_protocol::precheck(b, now, &policy) {
            let _ = ronde_protocol::verify_signatures(vec![p], &mut rng);
        }
    }
    start.elapsed().as_secs_f64() * 1e3 / sample.len() as f64
}

/// The spam section of the table: one column per run.
pub fn table(runs: &[(&str, &SpamFigures)]) -> String {
    let mut s = String::new();
    if runs.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nfloods of valid reports: {} Sybil phones, {} spam reports into {} cells",
        runs[0].1.spammers, runs[0].1.spam_reports, SPAM_CELLS
    );
    let _ = write!(s, "  {:<44}", "");
    for (name, _) in runs {
        let _ = write!(s, "{name:>14}");
    }
    let _ = writeln!(s);
    type Row = (&'static str, fn(&SpamFigures) -> String);
    let rows: [Row; 12] = [
        ("honest delivery", |f| {
            format!("{:.2} %", 100.0 * f.honest_delivery)
        }),
        ("honest live reports evicted (phones)", |f| {
            f.honest_evicted.to_string()
        }),
        ("honest live reports held (phones)", |f| {
            f.honest_held.to_string()
        }),
        ("map cells showing spam", |f| {
            format!("{:.1} %", 100.0 * f.spam_cells_share)
        }),
        ("reports on maps that are spam", |f| {
            format!("{:.1} %", 100.0 * f.spam_report_share)
        }),
        ("relay aggregates: spam / honest, no cap", |f| {
            format!("{:.2}", f.relay_distortion_uncapped)
        }),
        ("relay aggregates: spam / honest, capped", |f| {
            format!("{:.2}", f.relay_distortion_capped)
        }),
        ("relay: suppressed as a flood", |f| {
            f.relay_suppressed.to_string()
        }),
        ("spam verified per phone-hour", |f| {
            format!("{:.0}", f.spam_verified_per_phone_hour)
        }),
        ("spam CPU, ms per phone-hour", |f| {
            format!("{:.0}", f.spam_cpu_ms_per_phone_hour)
        }),
        ("spam bytes, MB per phone-hour", |f| {
            format!("{:.2}", f.spam_mb_per_phone_hour)
        }),
        ("over the per-peer bound (ignored/rejected)", |f| {
            f.over_peer_bound.to_string()
        }),
    ];
    for (label, f) in rows {
        let _ = write!(s, "  {label:<44}");
        for (_, fig) in runs {
            let _ = write!(s, "{:>14}", f(fig));
        }
        let _ = writeln!(s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spam_plan_is_valid_and_at_the_asked_rate() {
        let cfg = SpamConfig {
            fraction: 0.2,
            rate: 100.0,
            ..SpamConfig::default()
        };
        assert_eq!(cfg.spammers(200), 40);
        let sched = Schedule {
            seed: 7,
            first: 300,
            spammers: 40,
            from: 20.0,
            to: 80.0,
            honest_every: 10.0,
            difficulty: 8,
            t0: 1_790_000_040,
        };
        let p = plan(&cfg, &City::paris(), &sched).expect("plan");
        // 100 × one report per 10 s for 60 s: about 600.
        assert!((450..750).contains(&p.reports.len()), "{}", p.reports.len());
        assert!(p.cells.len() == SPAM_CELLS);
        assert_eq!(p.ids.len(), p.reports.len());
        for r in p.reports.iter().take(20) {
            let rep = Report::from_bytes(&r.bytes).expect("valid");
            assert_eq!(rep.ttl_minutes(), SPAM_TTL_MINUTES);
            assert!(p.cells.contains(&rep.cell()));
            assert!((300..340).contains(&r.spammer));
        }
    }
}
