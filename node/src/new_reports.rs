//! How many **new** reports each peer may bring per area per minute: the
//! bound gossip validation applies to valid reports (issue 14), and the
//! counters behind it ([`PeerBudgets`]).
//!
//! Only reports this node did not hold yet count: a duplicate costs a store
//! lookup, not a signature check, so forwarding what everyone already has
//! is never held against a peer. The count is per neighbour (the peer the
//! message came from, not its anonymous author), per area, per minute of the
//! node's clock (fixed windows, `now / 60`).
//!
//! * Up to [`NewReportBound::per_minute`] new reports: judged as usual.
//! * Beyond it, up to [`NewReportBound::penalise_over`]: ignored (not
//!   stored, not forwarded, no penalty). A busy honest forwarder that
//!   overshoots once loses only the overshoot, which catch-up sync brings
//!   back later from another peer.
//! * Beyond `penalise_over`: rejected, so gossipsub's score counts them as
//!   invalid messages and graylists a peer that keeps at it.
//!
//! The defaults are chosen so that relays and busy honest peers stay far
//! below the bound (docs/protocol.md, "Floods of valid reports").

use std::collections::HashMap;

use libp2p::PeerId;
use ronde_protocol::Area;

/// The bound on new reports per peer, per area, per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewReportBound {
    /// New reports a peer may bring into one area in one minute.
    pub per_minute: u32,
    /// Above this many in a minute, the excess is rejected (penalised), not
    /// only ignored.
    pub penalise_over: u32,
}

impl NewReportBound {
    /// 1200 a minute (20 a second) per peer per area, penalised above 4800.
    /// An honest area sees a few reports a minute even in a crowded city
    /// centre; a relay forwarding every report of an area, including a
    /// flood spread over many Sybil peers, stays under it unless the flood
    /// itself exceeds 20 valid reports a second in that area, and then
    /// is only ignored, never penalised, below 80 a second.
    pub const DEFAULT: NewReportBound = NewReportBound {
        per_minute: 1200,
        penalise_over: 4800,
    };
}

impl Default for NewReportBound {
    fn default() -> Self {
        NewReportBound::DEFAULT
    }
}

/// What to do with one new report from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Within the bound: judge it as usual.
    Within,
    /// Over the bound: ignore it.
    Over,
    /// Far over the bound: reject it (the peer is penalised).
    Abusive,
}

/// The counters of one node.
#[derive(Debug, Default)]
pub struct PeerBudgets {
    /// The minute counted (`now / 60`); older counters are dropped when it
    /// changes, so the map holds one minute's worth at most.
    minute: u64,
    counts: HashMap<(PeerId, Area), u32>,
}

impl PeerBudgets {
    /// Count one new report from `peer` in `area` at `now` (seconds), and
    /// say what to do with it.
    pub fn take(&mut self, bound: &NewReportBound, peer: PeerId, area: Area, now: u64) -> Budget {
        let minute = now / 60;
        if minute != self.minute {
            self.minute = minute;
            self.counts.clear();
        }
        let n = self.counts.entry((peer, area)).or_default();
        *n = n.saturating_add(1);
        if *n <= bound.per_minute {
            Budget::Within
        } else if *n <= bound.penalise_over.max(bound.per_minute) {
            Budget::Over
        } else {
            Budget::Abusive
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_and_area_has_its_own_budget_per_minute() {
        let bound = NewReportBound {
            per_minute: 2,
            penalise_over: 3,
        };
        let (a, b) = (PeerId::random(), PeerId::random());
        let paris = ronde_protocol::area_of(48.85, 2.35).expect("area");
        let lyon = ronde_protocol::area_of(45.76, 4.83).expect("area");
        let mut budgets = PeerBudgets::default();
        let t = 60 * 1000;
        let got: Vec<Budget> = (0..4).map(|_| budgets.take(&bound, a, paris, t)).collect();
        assert_eq!(
            got,
            [
                Budget::Within,
                Budget::Within,
                Budget::Over,
                Budget::Abusive
            ]
        );
        assert_eq!(budgets.take(&bound, b, paris, t + 59), Budget::Within);
        assert_eq!(budgets.take(&bound, a, lyon, t + 59), Budget::Within);
        // A new minute, a new budget.
        assert_eq!(budgets.take(&bound, a, paris, t + 60), Budget::Within);
    }
}
