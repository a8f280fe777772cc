//! The stem of reports on the network (`/ronde/stem/1`): the node's side of
//! [`ronde_protocol::stem`], whose state machine decides; this module keeps
//! which peers speak the protocol (and which are relays), sends and answers
//! the requests, validates what peers send, penalises invalid senders, and
//! hands the reports to fluff back to the event loop.
//!
//! * **Own report** ([`StemService::own`]): to the machine, which sends it to
//!   this epoch's stem peer after a random delay. With no peer speaking the
//!   protocol, or with the stem off ([`NodeConfig::stem`] `None`), the
//!   event loop publishes it on the gossip as before.
//! * **A peer's stem report**: validated exactly as gossip (the cheap
//!   checks, then the signature); invalid (misbehaviour) → answered
//!   *invalid* and the sender's gossipsub application score gets
//!   −50 × strikes² (set by the event loop through `crate::mesh_score`),
//!   which puts it under the gossip threshold at the first strike and on
//!   the graylist at the second, as an invalid gossip message would; a graylisted peer gets no answer. Expired or future →
//!   *declined*, no penalty. Already stored → *taken*, dropped. Valid →
//!   *taken*, then passed on or fluffed as the machine says.
//! * **Fluff** ([`StemService::poll`]): the reports to publish now (the
//!   machine's decision, or a fail-safe that fired) go back to the event
//!   loop, which stores and publishes them like its own.
//! * **Seen through the gossip** ([`StemService::seen`]): the fail-safe of
//!   that report is cancelled.
//! * **Flags** (kind 0x02, issue 13 §2): an own flag
//!   ([`StemService::own_flag`]) takes the same stem, with the same delay
//!   and the same stem peers as a report, as soon as a phone (not only a
//!   relay) speaks the protocol. A peer's flag is checked with
//!   [`verify_flag`] at this node's flag difficulty: a bad signature or a
//!   malformed flag is *invalid* (the same penalty); expired, future or
//!   too little work is *declined*; a flag this node already handles is
//!   *declined* too (no gossip brings a flag back: a loop answered *taken*
//!   would lose it). Fluffing a flag is the event loop's: it sends it on
//!   `/ronde/flag/1` to the connected relays, or, with none, asks
//!   [`StemService::pass_on`] to send it further along the stem. A flag's
//!   fail-safe ends when its stem peer answers *taken*, at the author as at
//!   every stem peer.
//!
//! Nothing here logs a report's content, its area or that this node wrote
//! one; own and relayed reports take the same path through this module.
//!
//! [`NodeConfig::stem`]: crate::NodeConfig::stem

pub mod wire;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::gossipsub::TopicHash;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::{PeerId, StreamProtocol, Swarm};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ronde_protocol::stem::{
    Action, Candidate, Decision, Stem, StemParams, StemRequest, StemResponse,
};

use ronde_protocol::directory::{verify_flag, DirectoryError};
use ronde_protocol::{precheck_with_keys, verify_signatures, Policy, ReportId, VerifiedReport};
pub use wire::{StemCodec, StemWire, STEM_PROTOCOL};

use crate::admission::{Gate, Refused};
use crate::behaviour::{Behaviour, GRAYLIST_THRESHOLD};
use crate::config::FirstHopTap;
use crate::store::ReportStore;

/// The circuit relay v2 hop protocol: a peer that serves it is a relay.
const RELAY_HOP: &str = "/libp2p/circuit/relay/0.2.0/hop";
/// The mailbox protocol: a peer that serves it is a city relay too.
const MAILBOX: &str = "/ronde/mailbox/1";
/// Penalty per invalid stem report, squared in the count (the same as P4
/// of an area topic, `behaviour::area_topic_params`).
const INVALID_WEIGHT: f64 = -50.0;

/// What the event loop needs to judge a stem report.
pub(crate) struct Judge<'a> {
    /// The report store (what is already known).
    pub store: &'a dyn ReportStore,
    /// The validation policy.
    pub policy: &'a Policy,
    /// The city's token keys (`docs/protocol.md` §8.5).
    pub keys: &'a ronde_protocol::token::TokenKeys,
    /// Unix seconds.
    pub now: u64,
    /// The gossip's bounds on floods, applied to stem reports too.
    pub gate: &'a mut Gate,
}

/// What walks the stem: a validated report or a verified flag.
#[derive(Debug, Clone)]
pub(crate) enum StemItem {
    /// A report.
    Report(VerifiedReport),
    /// A flag against a safe place (docs/protocol.md §7.5).
    Flag {
        /// Its flag id (the machine's key).
        id: [u8; 32],
        /// Its bytes (exactly 127).
        bytes: Vec<u8>,
    },
}

impl StemItem {
    fn id(&self) -> ReportId {
        match self {
            StemItem::Report(r) => r.id(),
            StemItem::Flag { id, .. } => ReportId(*id),
        }
    }

    fn request(&self) -> StemRequest {
        match self {
            StemItem::Report(r) => StemRequest::Report(r.bytes().to_vec()),
            StemItem::Flag { bytes, .. } => StemRequest::Flag(bytes.clone()),
        }
    }
}

/// The node's side of the stem (see the module documentation).
pub(crate) struct StemService {
    machine: Stem<PeerId, StemItem>,
    /// Whether own reports take the stem.
    own_on_stem: bool,
    origin: tokio::time::Instant,
    /// Peers that speak `/ronde/stem/1`, and whether each is a relay.
    speakers: HashMap<PeerId, bool>,
    inflight: HashMap<OutboundRequestId, (StemItem, PeerId)>,
    strikes: HashMap<PeerId, u32>,
    /// Penalties set since the event loop last took them
    /// ([`StemService::take_penalties`]).
    penalties: Vec<(PeerId, f64)>,
    tap: Option<FirstHopTap>,
    /// The least proof of work a flag along the stem must carry (this
    /// node's own, [`crate::NodeConfig::flag_difficulty`]).
    flag_difficulty: u8,
    /// The stem's random choices ([`crate::NodeConfig::stem_seed`]).
    rng: ChaCha20Rng,
}

impl StemService {
    /// A service with `params` (`None`: own reports skip the stem, but
    /// peers' stem reports are still relayed).
    pub fn new(
        params: Option<StemParams>,
        tap: Option<FirstHopTap>,
        flag_difficulty: u8,
        seed: Option<u64>,
    ) -> Self {
        StemService {
            machine: Stem::new(params.unwrap_or_default()),
            own_on_stem: params.is_some(),
            origin: tokio::time::Instant::now(),
            speakers: HashMap::new(),
            inflight: HashMap::new(),
            strikes: HashMap::new(),
            penalties: Vec::new(),
            tap,
            flag_difficulty,
            rng: match seed {
                Some(seed) => ChaCha20Rng::seed_from_u64(seed),
                None => ChaCha20Rng::from_entropy(),
            },
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// The connected peers that speak the stem and can take `item`: for a
    /// report, those that follow its area; for a flag, all of them.
    fn candidates(
        swarm: &Swarm<Behaviour>,
        speakers: &HashMap<PeerId, bool>,
        item: &StemItem,
    ) -> Vec<Candidate<PeerId>> {
        let report = match item {
            StemItem::Report(r) => r,
            StemItem::Flag { .. } => {
                return speakers
                    .iter()
                    .filter(|(p, _)| swarm.is_connected(p))
                    .map(|(&peer, &relay)| Candidate { peer, relay })
                    .collect();
            }
        };
        let topic = TopicHash::from_raw(report.report().cell().topic());
        let followers: HashSet<PeerId> = swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&topic))
            .map(|(p, _)| *p)
            .collect();
        speakers
            .iter()
            .filter(|(p, _)| followers.contains(p) && swarm.is_connected(p))
            .map(|(&peer, &relay)| Candidate { peer, relay })
            .collect()
    }

    /// When [`StemService::poll`] next has something to do.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.machine.poll_timeout().map(|d| self.origin + d)
    }

    /// A peer told its protocols.
    pub fn on_identify(&mut self, peer: PeerId, protocols: &[StreamProtocol]) {
        if protocols.contains(&STEM_PROTOCOL) {
            let relay = protocols
                .iter()
                .any(|p| p.as_ref() == RELAY_HOP || p.as_ref() == MAILBOX);
            self.speakers.insert(peer, relay);
        } else {
            self.speakers.remove(&peer);
        }
    }

    /// A peer's last connection closed.
    pub fn on_disconnected(&mut self, peer: &PeerId) {
        self.speakers.remove(peer);
        self.machine.disconnected(peer);
    }

    /// The report came through the gossip: tell the spy tap (simulations)
    /// and cancel its fail-safe.
    pub fn seen(&mut self, id: &ReportId, from: PeerId) {
        if let Some(tap) = &self.tap {
            tap(*id, from);
        }
        self.machine.seen(id);
    }

    /// This person's report: `true` if it went on the stem, `false` if the
    /// caller must publish it (stem off, or no peer speaks it).
    pub fn own(&mut self, swarm: &Swarm<Behaviour>, report: &VerifiedReport) -> bool {
        if !self.own_on_stem {
            return false;
        }
        let item = StemItem::Report(report.clone());
        let candidates = Self::candidates(swarm, &self.speakers, &item);
        if candidates.is_empty() {
            return false;
        }
        let now = self.now();
        self.machine
            .own(now, &mut self.rng, report.id(), item, &candidates);
        true
    }

    /// This person's flag (verified, id `id`): `true` if it went on the
    /// stem, `false` if the caller must send it to the relays itself (stem
    /// off, or no phone speaks it: a relay as stem peer would learn no
    /// less than a relay taking it directly).
    pub fn own_flag(&mut self, swarm: &Swarm<Behaviour>, id: [u8; 32], bytes: Vec<u8>) -> bool {
        if !self.own_on_stem {
            return false;
        }
        let item = StemItem::Flag { id, bytes };
        let candidates = Self::candidates(swarm, &self.speakers, &item);
        if !candidates.iter().any(|c| !c.relay) {
            return false;
        }
        let now = self.now();
        self.machine
            .own(now, &mut self.rng, ReportId(id), item, &candidates);
        true
    }

    /// A flag this node fluffed could go to no relay: send it further
    /// along the stem. `false`: it cannot go on (no candidate, or its
    /// re-routes are spent), and the caller keeps it for the next relay.
    pub fn pass_on(&mut self, swarm: &Swarm<Behaviour>, id: [u8; 32], bytes: Vec<u8>) -> bool {
        let item = StemItem::Flag { id, bytes };
        let candidates = Self::candidates(swarm, &self.speakers, &item);
        let now = self.now();
        self.machine
            .pass_on(now, &mut self.rng, &ReportId(id), &candidates)
    }

    /// Send what is due; return the reports and flags to fluff now.
    pub fn poll(&mut self, swarm: &mut Swarm<Behaviour>) -> Vec<StemItem> {
        let now = self.now();
        let mut fluff = Vec::new();
        while let Some(action) = self.machine.poll_action(now) {
            match action {
                Action::Send { to, item } => {
                    let req = item.request();
                    let rid = swarm.behaviour_mut().stem.send_request(&to, req);
                    self.inflight.insert(rid, (item, to));
                }
                Action::Fluff { item } => fluff.push(item),
            }
        }
        fluff
    }

    /// An event of `/ronde/stem/1`.
    pub fn on_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        judge: Judge<'_>,
        ev: request_response::Event<StemRequest, StemResponse>,
    ) {
        match ev {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let graylisted = swarm
                    .behaviour()
                    .gossipsub
                    .peer_score(&peer)
                    .is_some_and(|s| s < GRAYLIST_THRESHOLD);
                if graylisted {
                    // Dropped unread, like its gossip.
                    return;
                }
                let verdict = self.on_request(swarm, judge, peer, request);
                if swarm
                    .behaviour_mut()
                    .stem
                    .send_response(channel, verdict)
                    .is_err()
                {
                    tracing::debug!(%peer, "a stem sender went away");
                }
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some((item, to)) = self.inflight.remove(&request_id) else {
                    return;
                };
                if response != StemResponse::Taken {
                    tracing::debug!(%peer, ?response, "a stem peer did not take a report");
                    self.failed(swarm, &item, to);
                } else if let StemItem::Flag { .. } = item {
                    // No gossip brings a flag back: *taken* ends its
                    // fail-safe (docs/protocol.md §3.4).
                    self.machine.seen(&item.id());
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "stem request failed");
                if let Some((item, to)) = self.inflight.remove(&request_id) {
                    self.failed(swarm, &item, to);
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "a stem request from a peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Judge a peer's stem request and hand a valid report to the machine.
    fn on_request(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        judge: Judge<'_>,
        peer: PeerId,
        request: StemRequest,
    ) -> StemResponse {
        let bytes = match request {
            StemRequest::Report(bytes) => bytes,
            StemRequest::Flag(bytes) => return self.on_flag(swarm, &judge, peer, bytes),
        };
        if let Some(tap) = &self.tap {
            tap(ReportId::of(&bytes), peer);
        }
        let pre = match precheck_with_keys(&bytes, judge.now, judge.policy, judge.keys) {
            Ok(p) => p,
            Err(rej) if rej.is_misbehaviour() => return self.penalise(peer, rej.reason()),
            Err(_) => return StemResponse::Declined,
        };
        let id = pre.id();
        if self.machine.knows(&id) || matches!(judge.store.contains(&id), Ok(true)) {
            return StemResponse::Taken;
        }
        match judge
            .gate
            .admit(peer, pre.report(), judge.now, judge.policy.min_difficulty)
        {
            Ok(()) => {}
            Err(Refused::Ignore(reason)) => {
                tracing::debug!(%peer, reason, "a stem report declined");
                return StemResponse::Declined;
            }
            Err(Refused::Penalise(reason)) => return self.penalise(peer, reason),
        }
        let report = match verify_signatures(vec![pre], &mut rand::thread_rng()).pop() {
            Some(Ok(r)) => r,
            Some(Err(rej)) => return self.penalise(peer, rej.reason()),
            None => return StemResponse::Declined,
        };
        let item = StemItem::Report(report);
        let candidates = Self::candidates(swarm, &self.speakers, &item);
        let now = self.now();
        match self
            .machine
            .relayed(now, &mut self.rng, id, item, peer, &candidates)
        {
            Decision::Taken | Decision::Known => StemResponse::Taken,
            Decision::Declined => StemResponse::Declined,
        }
    }

    /// Judge a peer's flag along the stem and hand a valid one to the
    /// machine (docs/protocol.md §3.4).
    fn on_flag(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        judge: &Judge<'_>,
        peer: PeerId,
        bytes: Vec<u8>,
    ) -> StemResponse {
        let id = match verify_flag(&bytes, judge.now, self.flag_difficulty) {
            Ok(v) => v.id,
            Err(
                DirectoryError::FromFuture
                | DirectoryError::FlagTooOld
                | DirectoryError::NotEnoughWork,
            ) => return StemResponse::Declined,
            Err(e) => return self.penalise(peer, e.reason()),
        };
        if let Some(tap) = &self.tap {
            tap(ReportId(id), peer);
        }
        if self.machine.knows(&ReportId(id)) {
            // A loop: *taken* would end the fail-safe of a flag nobody
            // delivers; the sender routes it elsewhere.
            return StemResponse::Declined;
        }
        let item = StemItem::Flag { id, bytes };
        let candidates = Self::candidates(swarm, &self.speakers, &item);
        let now = self.now();
        match self
            .machine
            .relayed(now, &mut self.rng, ReportId(id), item, peer, &candidates)
        {
            Decision::Taken => StemResponse::Taken,
            Decision::Known | Decision::Declined => StemResponse::Declined,
        }
    }

    /// A send failed or was not taken: route the item elsewhere.
    fn failed(&mut self, swarm: &Swarm<Behaviour>, item: &StemItem, to: PeerId) {
        let candidates = Self::candidates(swarm, &self.speakers, item);
        let now = self.now();
        self.machine
            .failed(now, &mut self.rng, &item.id(), to, &candidates);
    }

    /// An invalid stem report: the same cost as an invalid gossip message.
    fn penalise(&mut self, peer: PeerId, reason: &'static str) -> StemResponse {
        let n = self.strikes.entry(peer).or_default();
        *n += 1;
        let score = INVALID_WEIGHT * f64::from(*n) * f64::from(*n);
        tracing::debug!(%peer, reason, "invalid stem report");
        self.penalties.push((peer, score));
        StemResponse::Invalid
    }

    /// The penalties of invalid stem senders since the last call, for the
    /// event loop to put into their application score
    /// (`crate::mesh_score`).
    pub fn take_penalties(&mut self) -> Vec<(PeerId, f64)> {
        std::mem::take(&mut self.penalties)
    }
}
