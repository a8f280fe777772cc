//! The stem phase of a report, sans-IO: who a report goes to before the
//! gossip starts, and the `/ronde/stem/1` wire format.
//!
//! Gossip alone tells a report's first hop who wrote it: the author is the
//! first to send it to anyone. In the manner of Dandelion++ (Fanti et al.,
//! arXiv 1805.11060; the parameters are those of Waku's 44/WAKU2-DANDELION
//! where they fit, see [`StemParams`]), a report first walks a random path
//! of single peers, the **stem**, and only then spreads by gossip (the
//! **fluff**), from a peer that is usually not its author.
//!
//! [`Stem`] is the state machine of one node. The node tells it what
//! happens and pulls [`Action`]s out of it:
//!
//! * [`Stem::own`]: this person's report. It always goes on the stem.
//! * [`Stem::relayed`]: a peer sent a report along the stem and the node
//!   validated it. With probability [`StemParams::fluff_probability`] the
//!   node fluffs it; otherwise it passes it on along the stem. A report
//!   already handled (a loop) is dropped.
//! * Either way the decision waits a random delay, uniform in
//!   `[0, max_delay]`, the **same for own and relayed reports**, and the
//!   stem peer is chosen **the same way for both** (an own report is routed
//!   as if it came in on an edge of its own), so a peer cannot tell one from
//!   the other by when or where it arrives. Then [`Stem::poll_action`] gives
//!   [`Action::Send`] or [`Action::Fluff`].
//! * **Stem peers.** Per epoch ([`StemParams::epoch`]) the node picks
//!   [`StemParams::stem_peers`] peers at random among its candidates (the
//!   node gives, per report, the peers that can take it: those that follow
//!   its area; a report none of the epoch's peers can take starts a new
//!   epoch), never
//!   a relay when any other peer is a candidate (the city relay sees almost
//!   every phone: it must not be the one who learns where a report comes
//!   from). Each incoming edge (and the own edge) is mapped, on first use in
//!   the epoch, to one of them at random; a report is never sent back to the
//!   peer it came from. A stem peer that disconnects, refuses or fails
//!   ([`Stem::failed`]) is dropped from the epoch and the report goes to
//!   another at once; with none left, it is fluffed.
//! * **Fail-safe.** Every node that sends a report along the stem arms a
//!   timer, uniform in `[failsafe_min, failsafe_max]`; if the report has not
//!   come back through the gossip ([`Stem::seen`]) when it fires, the node
//!   fluffs it itself ([`Action::Fluff`]). The author's timer is what
//!   guarantees delivery when a stem peer swallows a report.
//! * **Memory.** A handled report is remembered for [`MEMORY`] (loops are
//!   dropped), at most [`MAX_ENTRIES`] of them; past that a relayed report is
//!   declined ([`Decision::Declined`]) and an own one fluffed at once.
//!
//! * **Flags.** The machine is the same for a flag against a safe place
//!   (its flag id as the key): the node fluffs it by sending it to the
//!   relays, or, with none, asks [`Stem::pass_on`] to send it further; and
//!   since no gossip brings a flag back, the node calls [`Stem::seen`] when
//!   the next stem peer answers *taken* (docs/protocol.md §3.4).
//!
//! Time is a monotonic reading (`now`, a [`Duration`] since any origin the
//! caller keeps); randomness comes in as an argument.
//!
//! The wire format ([`StemRequest`], [`StemResponse`]) is specified in
//! docs/protocol.md §3.4 with vectors.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use rand_core::RngCore;

use crate::cursor::{CursorError, Put};
use crate::directory::FLAG_LEN;
use crate::report::{ReportId, MAX_REPORT_SIZE};

/// How long a handled report is remembered (loops within it are dropped).
/// Ten minutes: far longer than any stem walk, a third of a report's life.
pub const MEMORY: Duration = Duration::from_secs(600);
/// Most reports remembered at once. A phone handles a few per minute; a
/// peer that sends more is declined rather than growing the table.
pub const MAX_ENTRIES: usize = 1024;
/// Most re-routes of one report after failed sends before it is fluffed.
pub const MAX_REROUTES: u8 = 3;

/// The parameters of the stem.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StemParams {
    /// Probability that a node fluffs a report it got along the stem
    /// (Waku's q is 0.2, a stem of 5 hops on average; Ronde takes 0.5, 2
    /// hops on average: see [`StemParams::default`]).
    pub fluff_probability: f64,
    /// Stem peers picked per epoch (Waku: 2).
    pub stem_peers: usize,
    /// Length of an epoch (Waku: 10 minutes). A longer one gives an
    /// observer fewer fresh paths to correlate; a shorter one recovers
    /// sooner from a spy picked as stem peer.
    pub epoch: Duration,
    /// Largest random delay before a report is passed on (Waku: 100 ms).
    pub max_delay: Duration,
    /// Shortest fail-safe.
    pub failsafe_min: Duration,
    /// Longest fail-safe.
    pub failsafe_max: Duration,
}

impl Default for StemParams {
    /// Waku's stem peers, epoch and delay. A hop here costs a stream
    /// negotiation and 20–150 ms each way (about 0.3 s), so Waku's q = 0.2
    /// (5 hops on average, 10 or more one time in 9) made reports wait
    /// seconds: in the 50-node city simulation 7–12 % of deliveries fell
    /// outside a 5 s window. q = 0.5 (2 hops on average, 6 or more one time
    /// in 32) keeps the stem short; the fail-safe, 2.5–3.5 s, outlasts
    /// stems of up to about 8 hops, so it rarely fires at the author (it is
    /// what publishes a report a stem peer swallowed). The privacy cost of
    /// the shorter stem is not measured yet (issue 13 §5).
    fn default() -> Self {
        StemParams {
            fluff_probability: 0.5,
            stem_peers: 2,
            epoch: Duration::from_secs(600),
            max_delay: Duration::from_millis(100),
            failsafe_min: Duration::from_millis(2500),
            failsafe_max: Duration::from_millis(3500),
        }
    }
}

impl StemParams {
    /// Every duration multiplied by `k` (the simulator's time dilation).
    pub fn scaled(self, k: f64) -> StemParams {
        StemParams {
            epoch: self.epoch.mul_f64(k),
            max_delay: self.max_delay.mul_f64(k),
            failsafe_min: self.failsafe_min.mul_f64(k),
            failsafe_max: self.failsafe_max.mul_f64(k),
            ..self
        }
    }
}

/// A peer the node could send a stem message to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<P> {
    /// The peer.
    pub peer: P,
    /// Whether it is a relay (used only when no other peer is a candidate).
    pub relay: bool,
}

/// What the machine decided about a report it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Taken: an [`Action`] follows after the delay.
    Taken,
    /// Already handled (a loop, or it came back through the gossip): dropped.
    Known,
    /// The table is full: not taken (the sender should route elsewhere).
    Declined,
}

/// What the node must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<P, T> {
    /// Send `item` along the stem to `to` (`/ronde/stem/1`).
    Send {
        /// The stem peer.
        to: P,
        /// The report.
        item: T,
    },
    /// Start the gossip of `item` (and keep it: it is now public).
    Fluff {
        /// The report.
        item: T,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next<P> {
    Send(P),
    Fluff,
}

#[derive(Debug)]
struct Entry<P, T> {
    item: T,
    /// The edge it came in on (`None`: this node's own).
    from: Option<P>,
    /// What to do, and when (`None` once done).
    pending: Option<(Duration, Next<P>)>,
    /// When to fluff it if the gossip has not brought it back.
    failsafe: Option<Duration>,
    /// When to forget it.
    forget_at: Duration,
    reroutes: u8,
}

/// The stem state machine of one node (see the module documentation).
/// `P` is a peer, `T` the report as the node keeps it.
#[derive(Debug)]
pub struct Stem<P, T> {
    params: StemParams,
    epoch_ends: Option<Duration>,
    peers: Vec<P>,
    routes: HashMap<Option<P>, P>,
    /// Peers that failed a send this epoch: not picked again before the
    /// next one.
    shunned: Vec<P>,
    entries: HashMap<ReportId, Entry<P, T>>,
}

/// A uniform draw in `[0, 1)`.
fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniform duration in `[lo, hi]`.
fn between(rng: &mut impl RngCore, lo: Duration, hi: Duration) -> Duration {
    let hi = hi.max(lo);
    lo + (hi - lo).mul_f64(unit(rng))
}

/// A uniform index below `n` (`n > 0`).
fn index(rng: &mut impl RngCore, n: usize) -> usize {
    (unit(rng) * n as f64) as usize % n.max(1)
}

impl<P: Copy + Eq + Hash, T: Clone> Stem<P, T> {
    /// A machine with no epoch yet.
    pub fn new(params: StemParams) -> Self {
        Stem {
            params,
            epoch_ends: None,
            peers: Vec::new(),
            routes: HashMap::new(),
            shunned: Vec::new(),
            entries: HashMap::new(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &StemParams {
        &self.params
    }

    /// This epoch's stem peers (empty before the first report).
    pub fn stem_peers(&self) -> &[P] {
        &self.peers
    }

    /// Reports remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no report is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `id` is being handled or was, recently.
    pub fn knows(&self, id: &ReportId) -> bool {
        self.entries.contains_key(id)
    }

    /// This person's report: on the stem, after the delay. `Known` if it
    /// was already given; an own report is never declined (with a full
    /// table, or no candidate, it is fluffed).
    pub fn own(
        &mut self,
        now: Duration,
        rng: &mut impl RngCore,
        id: ReportId,
        item: T,
        candidates: &[Candidate<P>],
    ) -> Decision {
        if self.entries.contains_key(&id) {
            return Decision::Known;
        }
        self.forget_old(now);
        let next = if self.entries.len() >= MAX_ENTRIES {
            Next::Fluff
        } else {
            self.route(now, rng, None, candidates)
        };
        self.insert(now, rng, id, item, None, next);
        Decision::Taken
    }

    /// A report a peer sent along the stem, already validated by the node.
    pub fn relayed(
        &mut self,
        now: Duration,
        rng: &mut impl RngCore,
        id: ReportId,
        item: T,
        from: P,
        candidates: &[Candidate<P>],
    ) -> Decision {
        if self.entries.contains_key(&id) {
            return Decision::Known;
        }
        self.forget_old(now);
        if self.entries.len() >= MAX_ENTRIES {
            return Decision::Declined;
        }
        let next = if unit(rng) < self.params.fluff_probability {
            Next::Fluff
        } else {
            self.route(now, rng, Some(from), candidates)
        };
        self.insert(now, rng, id, item, Some(from), next);
        Decision::Taken
    }

    /// The report came through the gossip (or is otherwise public), or,
    /// for a flag, which no gossip brings back, the stem peer answered
    /// *taken* (docs/protocol.md §3.4): nothing more to do for it,
    /// fail-safe included. It stays remembered, so a
    /// stem copy arriving later is dropped.
    pub fn seen(&mut self, id: &ReportId) {
        if let Some(e) = self.entries.get_mut(id) {
            e.pending = None;
            e.failsafe = None;
        }
    }

    /// Sending `id` to `to` failed (refused, timed out, disconnected): `to`
    /// leaves this epoch's stem peers, and the report goes to another one
    /// at once, or is fluffed.
    pub fn failed(
        &mut self,
        now: Duration,
        rng: &mut impl RngCore,
        id: &ReportId,
        to: P,
        candidates: &[Candidate<P>],
    ) {
        self.peers.retain(|p| *p != to);
        self.routes.retain(|_, p| *p != to);
        if !self.shunned.contains(&to) {
            self.shunned.push(to);
        }
        let Some(from) = self.entries.get(id).map(|e| e.from) else {
            return;
        };
        let rest: Vec<Candidate<P>> = candidates
            .iter()
            .copied()
            .filter(|c| c.peer != to)
            .collect();
        let reroutes = self.entries.get(id).map_or(MAX_REROUTES, |e| e.reroutes);
        let next = if reroutes >= MAX_REROUTES {
            Next::Fluff
        } else {
            self.route(now, rng, from, &rest)
        };
        if let Some(e) = self.entries.get_mut(id) {
            if e.failsafe.is_none() && e.pending.is_none() {
                // Already seen in the gossip: nothing to do.
                return;
            }
            e.reroutes += 1;
            e.pending = Some((now, next));
        }
    }

    /// The item could not be fluffed where it stands (a flag at a node
    /// connected to no relay, docs/protocol.md §3.4): pass it on along the
    /// stem at once instead, to the peer its edge maps to, as a report
    /// that is not fluffed would go. `false` when it cannot go on (no
    /// candidate, or [`MAX_REROUTES`] re-routes spent): nothing more is
    /// scheduled for it and the caller keeps it.
    pub fn pass_on(
        &mut self,
        now: Duration,
        rng: &mut impl RngCore,
        id: &ReportId,
        candidates: &[Candidate<P>],
    ) -> bool {
        let Some((from, reroutes)) = self.entries.get(id).map(|e| (e.from, e.reroutes)) else {
            return false;
        };
        let next = if reroutes >= MAX_REROUTES {
            Next::Fluff
        } else {
            self.route(now, rng, from, candidates)
        };
        let failsafe = now + between(rng, self.params.failsafe_min, self.params.failsafe_max);
        let Some(e) = self.entries.get_mut(id) else {
            return false;
        };
        match next {
            Next::Send(to) => {
                e.reroutes += 1;
                e.pending = Some((now, Next::Send(to)));
                e.failsafe = Some(failsafe);
                true
            }
            Next::Fluff => {
                e.pending = None;
                e.failsafe = None;
                false
            }
        }
    }

    /// A peer disconnected: it is no longer a stem peer.
    pub fn disconnected(&mut self, peer: &P) {
        self.peers.retain(|p| p != peer);
        self.routes
            .retain(|k, p| p != peer && k.as_ref() != Some(peer));
    }

    /// The next instant [`Stem::poll_action`] has something to give.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.entries
            .values()
            .flat_map(|e| [e.pending.map(|(at, _)| at), e.failsafe])
            .flatten()
            .min()
    }

    /// The next thing to do at `now`, if any is due.
    pub fn poll_action(&mut self, now: Duration) -> Option<Action<P, T>> {
        for e in self.entries.values_mut() {
            if let Some((at, next)) = e.pending {
                if at <= now {
                    e.pending = None;
                    return Some(match next {
                        Next::Send(to) => Action::Send {
                            to,
                            item: e.item.clone(),
                        },
                        Next::Fluff => {
                            e.failsafe = None;
                            Action::Fluff {
                                item: e.item.clone(),
                            }
                        }
                    });
                }
            }
            if e.failsafe.is_some_and(|at| at <= now) {
                e.failsafe = None;
                e.pending = None;
                return Some(Action::Fluff {
                    item: e.item.clone(),
                });
            }
        }
        None
    }

    fn insert(
        &mut self,
        now: Duration,
        rng: &mut impl RngCore,
        id: ReportId,
        item: T,
        from: Option<P>,
        next: Next<P>,
    ) {
        let at = now + between(rng, Duration::ZERO, self.params.max_delay);
        let failsafe = matches!(next, Next::Send(_))
            .then(|| at + between(rng, self.params.failsafe_min, self.params.failsafe_max));
        self.entries.insert(
            id,
            Entry {
                item,
                from,
                pending: Some((at, next)),
                failsafe,
                forget_at: now + MEMORY,
                reroutes: 0,
            },
        );
    }

    fn forget_old(&mut self, now: Duration) {
        self.entries
            .retain(|_, e| e.forget_at > now || e.pending.is_some() || e.failsafe.is_some());
    }

    /// The stem peer for a report that came in on edge `from`, or fluff.
    fn route(
        &mut self,
        now: Duration,
        rng: &mut impl RngCore,
        from: Option<P>,
        candidates: &[Candidate<P>],
    ) -> Next<P> {
        let any_phone = candidates.iter().any(|c| !c.relay);
        let chose_relay = self
            .peers
            .iter()
            .any(|p| candidates.iter().any(|c| c.peer == *p && c.relay));
        let usable = |peers: &[P]| -> Vec<P> {
            peers
                .iter()
                .copied()
                .filter(|p| candidates.iter().any(|c| c.peer == *p))
                .collect()
        };
        let mut usable_now = usable(&self.peers);
        let expired = self.epoch_ends.is_none_or(|end| now >= end);
        if expired {
            self.shunned.clear();
        }
        if expired || usable_now.is_empty() || (any_phone && chose_relay) {
            self.new_epoch(now, rng, candidates);
            usable_now = usable(&self.peers);
        }
        let mapped = self.routes.get(&from).copied();
        let to = match mapped {
            Some(p) if Some(p) != from && usable_now.contains(&p) => Some(p),
            _ => {
                let ok: Vec<P> = usable_now
                    .iter()
                    .copied()
                    .filter(|p| Some(*p) != from)
                    .collect();
                let p = (!ok.is_empty()).then(|| ok[index(rng, ok.len())]);
                if let Some(p) = p {
                    self.routes.insert(from, p);
                }
                p
            }
        };
        match to {
            Some(p) => Next::Send(p),
            None => Next::Fluff,
        }
    }

    fn new_epoch(&mut self, now: Duration, rng: &mut impl RngCore, candidates: &[Candidate<P>]) {
        let fresh: Vec<Candidate<P>> = candidates
            .iter()
            .copied()
            .filter(|c| !self.shunned.contains(&c.peer))
            .collect();
        let any_phone = fresh.iter().any(|c| !c.relay);
        let mut pool: Vec<P> = fresh
            .iter()
            .filter(|c| !c.relay || !any_phone)
            .map(|c| c.peer)
            .collect();
        let mut chosen = Vec::new();
        while chosen.len() < self.params.stem_peers.max(1) && !pool.is_empty() {
            let i = index(rng, pool.len());
            chosen.push(pool.swap_remove(i));
        }
        self.peers = chosen;
        self.routes.clear();
        self.epoch_ends = Some(now + self.params.epoch);
    }
}

// ---------------------------------------------------------------------------
// Wire format of `/ronde/stem/1`.

/// Version byte of a stem request.
pub const STEM_VERSION: u8 = 1;
/// Kind byte: a report (docs/protocol.md §1.4).
pub const KIND_REPORT: u8 = 0x01;
/// Kind byte: a flag against a safe place (docs/protocol.md, flags).
pub const KIND_FLAG: u8 = 0x02;
/// Longest stem request: version, kind, the longest body.
pub const MAX_STEM_REQUEST: usize = 2 + if MAX_REPORT_SIZE > FLAG_LEN {
    MAX_REPORT_SIZE
} else {
    FLAG_LEN
};
/// Length of a stem response.
pub const STEM_RESPONSE_LEN: usize = 1;

/// What travels along the stem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StemRequest {
    /// A report's canonical bytes (1 to [`MAX_REPORT_SIZE`]).
    Report(Vec<u8>),
    /// A sealed flag's bytes (exactly [`FLAG_LEN`]).
    Flag(Vec<u8>),
}

/// The stem peer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StemResponse {
    /// Valid and taken (passed on, fluffed, or already known).
    Taken = 0,
    /// Invalid: the sender is penalised.
    Invalid = 1,
    /// Valid or not judged, but not taken (busy, expired, a flag already
    /// handled, or a flag at an older node): route it elsewhere. No
    /// penalty.
    Declined = 2,
}

/// Why stem bytes do not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StemWireError {
    /// Empty, truncated, or bytes left over.
    #[error("malformed stem message")]
    Malformed,
    /// A version this node does not speak.
    #[error("unknown stem version {0}")]
    UnknownVersion(u8),
    /// A kind this node does not know.
    #[error("unknown stem kind {0}")]
    UnknownKind(u8),
    /// A body of the wrong length for its kind.
    #[error("bad stem body length {0}")]
    BadLength(usize),
}

impl From<CursorError> for StemWireError {
    fn from(_: CursorError) -> Self {
        StemWireError::Malformed
    }
}

impl StemRequest {
    /// The body's kind byte and bytes.
    fn parts(&self) -> (u8, &[u8]) {
        match self {
            StemRequest::Report(b) => (KIND_REPORT, b),
            StemRequest::Flag(b) => (KIND_FLAG, b),
        }
    }

    /// The report id of a report body (`None` for a flag).
    pub fn report_id(&self) -> Option<ReportId> {
        match self {
            StemRequest::Report(b) => Some(ReportId::of(b)),
            StemRequest::Flag(_) => None,
        }
    }

    /// `version ‖ kind ‖ body`; fails on a body of the wrong length.
    pub fn encode(&self) -> Result<Vec<u8>, StemWireError> {
        let (kind, body) = self.parts();
        check_body(kind, body.len())?;
        let mut out = Vec::with_capacity(2 + body.len());
        out.put_u8(STEM_VERSION);
        out.put_u8(kind);
        out.put_slice(body);
        Ok(out)
    }

    /// Exactly one request; refuses other versions, unknown kinds, bodies
    /// of the wrong length (nothing is left over: the body is the rest).
    pub fn decode(bytes: &[u8]) -> Result<StemRequest, StemWireError> {
        if bytes.len() > MAX_STEM_REQUEST {
            return Err(StemWireError::BadLength(bytes.len()));
        }
        let mut c = crate::cursor::Cursor::<StemWireError>::new(bytes);
        let version = c.u8()?;
        if version != STEM_VERSION {
            return Err(StemWireError::UnknownVersion(version));
        }
        let kind = c.u8()?;
        let body = c.rest();
        c.finish()?;
        check_body(kind, body.len())?;
        Ok(match kind {
            KIND_REPORT => StemRequest::Report(body.to_vec()),
            _ => StemRequest::Flag(body.to_vec()),
        })
    }
}

fn check_body(kind: u8, len: usize) -> Result<(), StemWireError> {
    let ok = match kind {
        KIND_REPORT => (1..=MAX_REPORT_SIZE).contains(&len),
        KIND_FLAG => len == FLAG_LEN,
        k => return Err(StemWireError::UnknownKind(k)),
    };
    if ok {
        Ok(())
    } else {
        Err(StemWireError::BadLength(len))
    }
}

impl StemResponse {
    /// The one byte.
    pub fn encode(self) -> Vec<u8> {
        vec![self as u8]
    }

    /// Exactly one known byte.
    pub fn decode(bytes: &[u8]) -> Result<StemResponse, StemWireError> {
        match bytes {
            [0] => Ok(StemResponse::Taken),
            [1] => Ok(StemResponse::Invalid),
            [2] => Ok(StemResponse::Declined),
            [v] => Err(StemWireError::UnknownKind(*v)),
            _ => Err(StemWireError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests;
