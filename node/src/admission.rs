//! The bounds a valid-looking report must pass before this node spends a
//! signature check on it, **whichever way it came**: through the gossip
//! (`/ronde/1/reports/…`) or along the stem (`/ronde/stem/1`). One rule for
//! both, so that the stem is no way around the gossip's defences against
//! floods (docs/protocol.md §2.1 steps 4b–4d, and §3.4 "Stem report
//! received").
//!
//! In order, after the cheap checks and the dedup:
//! * a token already spent by a live report this node holds: ignored
//!   (`token_reused`; the sender may have seen only this copy);
//! * an untokened report of an area **under flood** with less work than
//!   the flood rule asks ([`crate::flood_guard`]): ignored
//!   (`flood_needs_more_work`; the sender may not see the flood);
//! * a peer's **new** reports per area and minute over the bound
//!   ([`crate::new_reports`]): ignored (`over_peer_bound`), and far over
//!   it, penalised (`far_over_peer_bound`).
//!
//! The counters live in one [`Gate`], owned by the event loop and lent to
//! the stem service for each stem request.

use libp2p::PeerId;
use ronde_protocol::token::SeenTokens;
use ronde_protocol::{Area, Proof, Report};

use crate::flood_guard::{FloodGuard, FloodRule};
use crate::new_reports::{Budget, NewReportBound, PeerBudgets};

/// Why a report was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Leave it, no penalty (the gossip's `Ignore`, the stem's `declined`).
    Ignore(&'static str),
    /// Penalise the peer that sent it (the gossip's `Reject`, the stem's
    /// `invalid`).
    Penalise(&'static str),
}

impl Refused {
    /// The stable reason, as counted in the node's status.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refused::Ignore(r) | Refused::Penalise(r) => r,
        }
    }
}

/// The node's bounds and their counters (the event loop owns one).
pub(crate) struct Gate {
    /// The ids of the tokens spent by the reports this node accepted, kept
    /// while those reports live (`docs/protocol.md` §8.5).
    pub seen_tokens: SeenTokens,
    /// The bound on new reports per peer, area and minute.
    pub new_report_bound: Option<NewReportBound>,
    /// When an area is under flood, and what untokened reports then need.
    pub flood_rule: Option<FloodRule>,
    /// The flood rule's per-area counters.
    pub flood_guard: FloodGuard,
    /// The per-peer bound's counters.
    pub budgets: PeerBudgets,
}

impl Gate {
    /// The least work an untokened report of `area` needs now: `base`, or
    /// the flood rule's difficulty while the area is under flood.
    pub(crate) fn required_difficulty(&self, area: &Area, now: u64, base: u8) -> u8 {
        match &self.flood_rule {
            Some(rule) => self.flood_guard.required(rule, area, now, base),
            None => base,
        }
    }

    /// A report was stored as new: an untokened one counts towards its
    /// area's flood.
    pub(crate) fn record_stored(&mut self, report: &Report, now: u64) {
        if let (Some(rule), None) = (&self.flood_rule, report.token()) {
            self.flood_guard.record(rule, report.cell().area(), now);
        }
    }

    /// Forget the flood counters older than the rule's window.
    pub(crate) fn purge(&mut self, now: u64) {
        if let Some(rule) = &self.flood_rule {
            self.flood_guard.purge(rule, now);
        }
    }

    /// Admit a report `source` brought that this node does not hold yet,
    /// or say why not. Counts it against the peer's bound when admitted or
    /// over it. `min_difficulty`: the network's minimum work, bits.
    pub(crate) fn admit(
        &mut self,
        source: PeerId,
        report: &Report,
        now: u64,
        min_difficulty: u8,
    ) -> Result<(), Refused> {
        if let Some(token) = report.token() {
            if self.seen_tokens.contains(&token.id(), now) {
                return Err(Refused::Ignore("token_reused"));
            }
        }
        let area = report.cell().area();
        if let Proof::Work { difficulty, .. } = report.proof() {
            if *difficulty < self.required_difficulty(&area, now, min_difficulty) {
                return Err(Refused::Ignore("flood_needs_more_work"));
            }
        }
        if let Some(bound) = &self.new_report_bound {
            match self.budgets.take(bound, source, area, now) {
                Budget::Within => {}
                Budget::Over => return Err(Refused::Ignore("over_peer_bound")),
                Budget::Abusive => return Err(Refused::Penalise("far_over_peer_bound")),
            }
        }
        Ok(())
    }
}
