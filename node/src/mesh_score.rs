//! The gossipsub application score of each peer: the one place that sets
//! it (`gossipsub::Behaviour::set_application_score` keeps one number per
//! peer, so two writers would overwrite each other).
//!
//! It adds two things:
//!
//! * **A bonus for a fast link** (issue 19 §1), from the ping's round-trip
//!   time: [`GossipTuning::latency_bonus`] points at
//!   [`FAST_RTT`] or less, falling linearly to 0 at [`SLOW_RTT`] and
//!   beyond, measured in model time (`GossipTuning::time_unit`). When a
//!   mesh grows past D_high, gossipsub keeps the `retain_scores`
//!   best-scoring peers, and opportunistic grafting brings in peers that
//!   score above the mesh's median: the mesh drifts towards the fast
//!   links, so a small mesh stays fast. **A slow link costs nothing**: the
//!   bonus is never negative, so a phone on a slow network is grafted like
//!   any other when a mesh is short, is never pruned for a negative score,
//!   and still gets every report (from its own mesh and through IHAVE);
//!   it is only less often kept when a mesh has more peers than it needs.
//! * **A bonus for a gossip hub** (docs/protocol.md §3.2):
//!   [`GossipTuning::hub_bonus`] points for a peer the city chose as a hub
//!   (a relay its verified directory lists with the `gossip` role) or the
//!   node was configured with. It is above the most a phone can score, so
//!   pruning keeps a hub in every mesh, and the hub passes each report to
//!   all of its phones in one hop. Being a hub is given, never claimed: a
//!   peer that says it is one gets nothing.
//! * **The stem's penalty** ([`crate::stem`]): −50 × strikes² for invalid
//!   stem reports, as an invalid gossip message costs.
//!
//! The round-trip time is smoothed (half the old value, half the new), so
//! that one slow ping does not swing a mesh.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::{PeerId, Swarm};

use crate::behaviour::Behaviour;
use crate::config::GossipTuning;

/// Round-trip time (model time) at or below which a link gets the whole
/// bonus.
pub const FAST_RTT: Duration = Duration::from_millis(40);
/// Round-trip time (model time) at or above which a link gets no bonus.
pub const SLOW_RTT: Duration = Duration::from_millis(340);

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    /// Smoothed round-trip time, in model seconds.
    rtt: Option<f64>,
    /// The stem's penalty (≤ 0).
    penalty: f64,
}

/// Every connected peer's application score, and the penalised ones'.
#[derive(Debug)]
pub(crate) struct AppScores {
    peers: HashMap<PeerId, Entry>,
    /// The most bonus points (0: no latency bonus).
    bonus: f64,
    /// The gossip hubs the node was configured with.
    configured: HashSet<PeerId>,
    /// Those and the directory's: the peers that get the hub bonus.
    hubs: HashSet<PeerId>,
    hub_bonus: f64,
    /// Seconds of wall time per model second.
    time_unit: f64,
}

impl AppScores {
    pub(crate) fn new(tuning: &GossipTuning, hubs: &[PeerId]) -> AppScores {
        let configured: HashSet<PeerId> = hubs.iter().copied().collect();
        AppScores {
            hubs: configured.clone(),
            configured,
            peers: HashMap::new(),
            bonus: f64::from(tuning.latency_bonus),
            hub_bonus: f64::from(tuning.hub_bonus),
            time_unit: tuning.time_unit.as_secs_f64().max(f64::MIN_POSITIVE),
        }
    }

    /// A ping to `peer` came back after `rtt` (wall time).
    pub(crate) fn on_rtt(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, rtt: Duration) {
        if self.bonus <= 0.0 {
            return;
        }
        let model = rtt.as_secs_f64() / self.time_unit;
        let e = self.peers.entry(peer).or_default();
        e.rtt = Some(match e.rtt {
            Some(old) => (old + model) / 2.0,
            None => model,
        });
        self.apply(swarm, peer);
    }

    /// The configured cities' directories now list `listed` as gossip hubs:
    /// every peer that became or stopped being a hub is scored again.
    pub(crate) fn set_directory_hubs(&mut self, swarm: &mut Swarm<Behaviour>, listed: Vec<PeerId>) {
        let mut hubs = self.configured.clone();
        hubs.extend(listed);
        if hubs == self.hubs {
            return;
        }
        let changed: Vec<PeerId> = self.hubs.symmetric_difference(&hubs).copied().collect();
        self.hubs = hubs;
        for peer in changed {
            self.apply(swarm, peer);
        }
    }

    /// `peer` has its first connection: a hub gets its bonus at once,
    /// before any ping.
    pub(crate) fn on_connected(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        if self.hubs.contains(&peer) {
            self.apply(swarm, peer);
        }
    }

    /// The stem's penalty for `peer` (replaces the previous one).
    pub(crate) fn penalise(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, penalty: f64) {
        self.peers.entry(peer).or_default().penalty = penalty.min(0.0);
        self.apply(swarm, peer);
    }

    /// `peer` has no connection left: its round-trip time is forgotten (a
    /// new connection may take another path); a penalty is kept, as
    /// gossipsub keeps the score of a disconnected peer.
    pub(crate) fn on_disconnected(&mut self, peer: &PeerId) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.rtt = None;
            if e.penalty == 0.0 {
                self.peers.remove(peer);
            }
        }
    }

    /// The score of `peer` now.
    pub(crate) fn score(&self, peer: &PeerId) -> f64 {
        let hub = if self.hubs.contains(peer) {
            self.hub_bonus
        } else {
            0.0
        };
        hub + self.peers.get(peer).map_or(0.0, |e| {
            e.penalty + e.rtt.map_or(0.0, |rtt| latency_bonus(self.bonus, rtt))
        })
    }

    fn apply(&self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        let score = self.score(&peer);
        swarm
            .behaviour_mut()
            .gossipsub
            .set_application_score(&peer, score);
    }
}

/// The bonus of a link whose round trip takes `rtt` model seconds: `max`
/// at [`FAST_RTT`] or less, 0 at [`SLOW_RTT`] or more, linear between.
pub fn latency_bonus(max: f64, rtt: f64) -> f64 {
    let fast = FAST_RTT.as_secs_f64();
    let slow = SLOW_RTT.as_secs_f64();
    if !rtt.is_finite() {
        return 0.0;
    }
    max * ((slow - rtt) / (slow - fast)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bonus_falls_from_fast_to_slow_and_is_never_negative() {
        assert_eq!(latency_bonus(10.0, 0.010), 10.0);
        assert_eq!(latency_bonus(10.0, 0.040), 10.0);
        assert!((latency_bonus(10.0, 0.190) - 5.0).abs() < 1e-9);
        assert_eq!(latency_bonus(10.0, 0.340), 0.0);
        assert_eq!(latency_bonus(10.0, 5.0), 0.0);
        assert_eq!(latency_bonus(10.0, f64::NAN), 0.0);
        assert_eq!(latency_bonus(0.0, 0.010), 0.0);
    }
}
