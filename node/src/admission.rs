//! The bounds a valid-looking report must pass before this node spends a
//! signature check on it, **whichever way it came**: through the gossip
//! (`/ronde/1/reports/…`) or along the stem (`/ronde/stem/1`). One rule for
//! both, so that the stem is no way around the gossip's defences against
//! floods (docs/protocol.md §3.4, "A stem peer's checks").
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
//! The counters are the event loop's; this module borrows them for one
//! decision.

use libp2p::PeerId;
use ronde_protocol::token::SeenTokens;
use ronde_protocol::{Proof, Report};

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

/// The node's counters, borrowed for one decision.
pub(crate) struct Admission<'a> {
    /// Tokens spent by the live reports this node holds.
    pub seen_tokens: &'a SeenTokens,
    /// The flood rule and its per-area counters, if the rule is on.
    pub flood: Option<(&'a FloodRule, &'a FloodGuard)>,
    /// The per-peer bound and its counters, if the bound is on.
    pub bound: Option<(&'a NewReportBound, &'a mut PeerBudgets)>,
    /// The network's minimum work, bits.
    pub min_difficulty: u8,
}

impl Admission<'_> {
    /// Admit a report `source` brought that this node does not hold yet,
    /// or say why not. Counts it against the peer's bound when admitted or
    /// over it.
    pub(crate) fn admit(
        &mut self,
        source: PeerId,
        report: &Report,
        now: u64,
    ) -> Result<(), Refused> {
        if let Some(token) = report.token() {
            if self.seen_tokens.contains(&token.id(), now) {
                return Err(Refused::Ignore("token_reused"));
            }
        }
        let area = report.cell().area();
        if let (Some((rule, guard)), Proof::Work { difficulty, .. }) = (&self.flood, report.proof())
        {
            if *difficulty < guard.required(rule, &area, now, self.min_difficulty) {
                return Err(Refused::Ignore("flood_needs_more_work"));
            }
        }
        if let Some((bound, budgets)) = &mut self.bound {
            match budgets.take(bound, source, area, now) {
                Budget::Within => {}
                Budget::Over => return Err(Refused::Ignore("over_peer_bound")),
                Budget::Abusive => return Err(Refused::Penalise("far_over_peer_bound")),
            }
        }
        Ok(())
    }
}
