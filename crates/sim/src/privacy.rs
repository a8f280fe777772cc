//! Who can tell who wrote a report: the first-hop adversaries of issue 13,
//! measured on the run's real nodes.
//!
//! * **Spies** (`ronde sim --spies F`): a fraction F of the phones, drawn
//!   from the seed, collude. Each logs, for every report, the first peer it
//!   got it from (gossip or stem, through the node's
//!   [`NodeConfig::first_hop_tap`](ronde_node::NodeConfig::first_hop_tap)).
//!   The **first-spy estimator** guesses, for each report, that its author
//!   is the peer the *earliest* spy got it from. Reports written by a spy
//!   are left out; reports no spy saw give no guess.
//! * **A malicious relay** does the same with its own log: its guess for a
//!   report is the peer it first got it from (every relay of the run is
//!   judged, each on its own log).
//! * **Precision** is the share of guesses that name the author.
//!
//! The same figures for the same plan without the stem come from a second
//! Ronde pass (`no_stem`), which also gives the stem's latency cost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use ronde_node::config::FirstHopTap;
use ronde_protocol::ReportId;
use serde::Serialize;

use crate::net::{mix64, Slot};
use crate::peers::Clockwork;
use crate::plan::{Plan, Role};

/// The spies of a run: `⌈fraction × phones⌉` phones drawn from the seed
/// (independently of the plan's own draws).
pub fn choose_spies(plan: &Plan, fraction: f64, seed: u64) -> HashSet<Slot> {
    let mut phones: Vec<Slot> = (0..plan.roles.len() as Slot)
        .filter(|s| plan.roles[*s as usize] == Role::Phone)
        .collect();
    let n = ((fraction.clamp(0.0, 1.0) * phones.len() as f64).ceil() as usize).min(phones.len());
    let mut rng = ChaCha8Rng::seed_from_u64(mix64(seed ^ 0x5b1e_5b1e));
    phones.shuffle(&mut rng);
    phones.truncate(n);
    phones.into_iter().collect()
}

/// What the logging devices saw, shared by every device of a run.
#[derive(Default)]
pub struct FirstHops {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Which slot each peer id (every life) was.
    slots: HashMap<PeerId, Slot>,
    /// (observer, report) → (first peer it came from, model time).
    first: HashMap<(Slot, ReportId), (PeerId, f64)>,
}

impl FirstHops {
    /// The tap of the device in `slot`.
    pub fn tap(self: &Arc<Self>, slot: Slot, cw: Clockwork) -> FirstHopTap {
        let me = self.clone();
        Arc::new(move |id: ReportId, from: PeerId| {
            let t = cw.now();
            let mut g = me.inner.lock().unwrap_or_else(|e| e.into_inner());
            g.first.entry((slot, id)).or_insert((from, t));
        })
    }

    /// `peer` is the device in `slot` (for this life).
    pub fn known(&self, peer: PeerId, slot: Slot) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.slots.insert(peer, slot);
    }

    /// The figures, given each published report's author.
    pub fn judge(
        &self,
        authors: &[(ReportId, Slot)],
        spies: &HashSet<Slot>,
        relays: &[Slot],
    ) -> PrivacyView {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let slot_of = |p: &PeerId| g.slots.get(p).copied();
        let (mut relay_guesses, mut relay_right) = (0u64, 0u64);
        let (mut spy_guesses, mut spy_right) = (0u64, 0u64);
        let mut seen_by_relay = HashSet::new();
        for &(id, author) in authors {
            for &r in relays {
                if let Some((from, _)) = g.first.get(&(r, id)) {
                    relay_guesses += 1;
                    seen_by_relay.insert(id);
                    if slot_of(from) == Some(author) {
                        relay_right += 1;
                    }
                }
            }
            if spies.contains(&author) {
                continue;
            }
            let first_spy = spies
                .iter()
                .filter_map(|s| g.first.get(&(*s, id)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((from, _)) = first_spy {
                spy_guesses += 1;
                if slot_of(from) == Some(author) {
                    spy_right += 1;
                }
            }
        }
        let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
        PrivacyView {
            relay_precision: ratio(relay_right, relay_guesses),
            relay_guesses,
            spy_precision: ratio(spy_right, spy_guesses),
            spy_guesses,
            spy_fraction: 0.0,
            spies: spies.len(),
            delivery_ratio: 0.0,
            latency_p50_ms: 0.0,
            latency_p99_ms: 0.0,
        }
    }
}

/// One variant's figures (with the stem, or without).
#[derive(Debug, Clone, Serialize)]
pub struct PrivacyView {
    /// Share of a relay's guesses that named the author.
    pub relay_precision: f64,
    /// (relay, report) pairs guessed.
    pub relay_guesses: u64,
    /// Share of the first-spy guesses that named the author.
    pub spy_precision: f64,
    /// Reports by non-spies that a spy saw (each one guess).
    pub spy_guesses: u64,
    /// The fraction of phones asked to spy.
    pub spy_fraction: f64,
    /// Spies.
    pub spies: usize,
    /// Delivery of this variant (delivered / expected).
    pub delivery_ratio: f64,
    /// Its latency p50, model ms.
    pub latency_p50_ms: f64,
    /// Its latency p99, model ms.
    pub latency_p99_ms: f64,
}

/// `ronde.privacy` of the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Privacy {
    /// With the stem (or without, if the run was `--no-stem`).
    #[serde(flatten)]
    pub view: PrivacyView,
    /// Whether own reports took the stem in this pass.
    pub stem: bool,
    /// Latency p50 with the stem minus without, model ms (when both ran).
    pub stem_latency_cost_ms_p50: Option<f64>,
    /// The same at p99.
    pub stem_latency_cost_ms_p99: Option<f64>,
    /// The same plan without the stem.
    pub no_stem: Option<PrivacyView>,
}

impl Privacy {
    /// Attach the figures of the pass without the stem.
    pub fn compare(&mut self, no_stem: PrivacyView) {
        self.stem_latency_cost_ms_p50 = Some(self.view.latency_p50_ms - no_stem.latency_p50_ms);
        self.stem_latency_cost_ms_p99 = Some(self.view.latency_p99_ms - no_stem.latency_p99_ms);
        self.no_stem = Some(no_stem);
    }
}

/// The table's lines.
pub fn table(p: &Privacy) -> String {
    let mut out = String::new();
    let line = |name: &str, v: &PrivacyView| {
        format!(
            "  {name:<10} relay precision {:.3} ({} guesses), spy precision {:.3} ({} guesses, {} spies = {:.0} %), delivery {:.2} %, latency p50 {:.0} ms p99 {:.0} ms\n",
            v.relay_precision,
            v.relay_guesses,
            v.spy_precision,
            v.spy_guesses,
            v.spies,
            v.spy_fraction * 100.0,
            v.delivery_ratio * 100.0,
            v.latency_p50_ms,
            v.latency_p99_ms,
        )
    };
    out.push_str("privacy (first-hop adversaries)\n");
    out.push_str(&line(if p.stem { "stem" } else { "no stem" }, &p.view));
    if let Some(n) = &p.no_stem {
        out.push_str(&line("no stem", n));
    }
    if let (Some(a), Some(b)) = (p.stem_latency_cost_ms_p50, p.stem_latency_cost_ms_p99) {
        out.push_str(&format!(
            "  stem latency cost: p50 {a:+.0} ms, p99 {b:+.0} ms\n"
        ));
    }
    out
}
