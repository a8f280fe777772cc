//! The node side of the directory, driven by the event loop (see the
//! module documentation of [`crate::directory`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::FutureExt;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::{identify, PeerId, Swarm};
use ronde_protocol::directory::{
    verify_directory, verify_flag, DirectoryPublicKey, FlagReason, PlaceId, RelayEntry, RelayRoles,
    VerifiedDirectory,
};
use tokio::sync::oneshot;

use super::store::DirectoryStore;
use super::views::{
    DirectoryAnswer, DirectoryStats, DirectorySummary, DirectoryView, FlagSent, MediatorView,
    SafePlaceView, SafePlaces,
};
use super::wire::{DirectoryRequest, DirectoryResponse, FlagVerdict, FLAG_PROTOCOL};
use super::{FlagSink, FlagSubmission, MAX_QUEUED_FLAGS, PEERS_PER_REFRESH};
use crate::behaviour::Behaviour;
use crate::clock::Clock;
use crate::config::FirstHopTap;
use crate::error::NodeError;

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// A verdict of the flag sink on its way back to the peer that sent the
/// flag.
pub(crate) type PendingVerdict = BoxFuture<'static, (ResponseChannel<FlagVerdict>, FlagVerdict)>;

/// What [`crate::Node`] asks of the directory.
pub(crate) enum DirectoryCommand {
    Set {
        city: DirectoryPublicKey,
        bytes: Vec<u8>,
        reply: Reply<u64>,
    },
    SafePlaces {
        lat: f64,
        lon: f64,
        radius_m: f64,
        reply: Reply<SafePlaces>,
    },
    Directory {
        reply: Reply<DirectoryAnswer>,
    },
    CheckPlace {
        place: PlaceId,
        reply: Reply<()>,
    },
    SubmitFlag {
        place: PlaceId,
        reason: FlagReason,
        bytes: Vec<u8>,
        reply: Reply<FlagSent>,
    },
    Stats {
        reply: Reply<DirectoryStats>,
    },
}

/// A verified directory held in memory.
struct Held {
    bytes: Vec<u8>,
    verified: VerifiedDirectory,
}

impl Held {
    fn serial(&self) -> u64 {
        self.verified.directory().serial
    }
    fn expires_at(&self) -> u64 {
        self.verified.directory().expires_at
    }
}

pub(crate) struct DirectoryService {
    store: DirectoryStore,
    clock: Arc<dyn Clock>,
    /// The configured cities, in order of preference.
    wanted: Vec<DirectoryPublicKey>,
    held: BTreeMap<DirectoryPublicKey, Held>,
    /// The highest serial ever accepted per city (rollback floor).
    floors: HashMap<DirectoryPublicKey, u64>,
    asking: HashMap<OutboundRequestId, (PeerId, DirectoryPublicKey)>,
    /// Peers that served a directory: asked first at each refresh.
    servers: HashSet<PeerId>,
    flag_sink: Option<FlagSink>,
    /// Told who sent each flag that reached this node (simulations, tests:
    /// [`crate::NodeConfig::first_hop_tap`], under the flag's id).
    tap: Option<FirstHopTap>,
    /// Connected peers that take flags (from identify).
    flag_peers: HashSet<PeerId>,
    flag_sending: HashMap<OutboundRequestId, [u8; 32]>,
    /// Verdicts of the flag sink not yet sent back.
    pub(crate) verdicts: FuturesUnordered<PendingVerdict>,
    stats: DirectoryStats,
    /// The relay entries last handed to the circle ([`Self::take_hosts`]).
    hosts_given: Option<Vec<RelayEntry>>,
}

impl DirectoryService {
    /// Load what the store holds, verifying it again at `now`.
    pub(crate) fn new(
        store: DirectoryStore,
        clock: Arc<dyn Clock>,
        wanted: Vec<DirectoryPublicKey>,
        flag_sink: Option<FlagSink>,
        tap: Option<FirstHopTap>,
    ) -> Result<DirectoryService, NodeError> {
        let now = clock.now();
        let mut held = BTreeMap::new();
        let mut floors = HashMap::new();
        for entry in store.directories()? {
            floors.insert(entry.city, entry.serial);
            if entry.bytes.is_empty() {
                continue;
            }
            match verify_directory(&entry.bytes, &entry.city, now, None) {
                Ok(verified) if verified.directory().serial == entry.serial => {
                    held.insert(
                        entry.city,
                        Held {
                            bytes: entry.bytes,
                            verified,
                        },
                    );
                }
                Ok(_) => tracing::warn!("a stored directory does not match its serial: dropped"),
                Err(e) => {
                    tracing::info!(
                        reason = e.reason(),
                        "the stored directory is no longer valid"
                    );
                    store.put(&entry.city, entry.serial, &[])?;
                }
            }
        }
        let mut wanted_unique = Vec::new();
        for k in wanted {
            if !wanted_unique.contains(&k) {
                wanted_unique.push(k);
            }
        }
        Ok(DirectoryService {
            store,
            clock,
            wanted: wanted_unique,
            held,
            floors,
            asking: HashMap::new(),
            servers: HashSet::new(),
            flag_sink,
            tap,
            flag_peers: HashSet::new(),
            flag_sending: HashMap::new(),
            verdicts: FuturesUnordered::new(),
            stats: DirectoryStats::default(),
            hosts_given: None,
        })
    }

    /// The relays with the mailbox or switch role listed by the valid
    /// directories of the configured cities, when they changed since the
    /// last call: the circle's directory hosts.
    pub(crate) fn take_hosts(&mut self) -> Option<Vec<RelayEntry>> {
        let hosts: Vec<RelayEntry> = self
            .listed()
            .filter(|r| r.roles.has(RelayRoles::MAILBOX) || r.roles.has(RelayRoles::SWITCH))
            .cloned()
            .collect();
        if self.hosts_given.as_ref() == Some(&hosts) {
            return None;
        }
        self.hosts_given = Some(hosts.clone());
        Some(hosts)
    }

    /// The relays (any role) listed by the valid directories of the
    /// configured cities: the peers a phone asks for anonymous tokens.
    pub(crate) fn listed_relays(&self) -> Vec<PeerId> {
        self.listed().filter_map(relay_peer).collect()
    }

    /// The relays the valid directories of the configured cities list with
    /// the `gossip` role: the gossip hubs (docs/protocol.md §3.2).
    pub(crate) fn gossip_hubs(&self) -> Vec<PeerId> {
        self.listed()
            .filter(|r| r.roles.has(RelayRoles::GOSSIP))
            .filter_map(relay_peer)
            .collect()
    }

    /// The relays listed by the directories of the configured cities valid
    /// now (a directory the node was merely given for another city lists
    /// none).
    fn listed(&self) -> impl Iterator<Item = &RelayEntry> + '_ {
        self.valid(self.clock.now())
            .into_iter()
            .filter(|(k, _)| self.wanted.contains(k))
            .flat_map(|(_, h)| h.verified.directory().relays.iter())
    }

    /// The held directories, configured cities first, valid at `now`.
    /// The token keys of the directories held and valid at `now`
    /// (`docs/protocol.md` §8.5): what tokened reports are checked against.
    pub(crate) fn token_keys(&self, now: u64) -> ronde_protocol::token::TokenKeys {
        ronde_protocol::token::TokenKeys::new(
            self.valid(now)
                .iter()
                .flat_map(|(_, h)| h.verified.directory().token_keys.iter().cloned())
                .collect(),
        )
    }

    fn valid(&self, now: u64) -> Vec<(&DirectoryPublicKey, &Held)> {
        let mut out: Vec<(&DirectoryPublicKey, &Held)> = Vec::new();
        for k in &self.wanted {
            if let Some(h) = self.held.get_key_value(k) {
                out.push(h);
            }
        }
        for (k, h) in &self.held {
            if !self.wanted.contains(k) {
                out.push((k, h));
            }
        }
        out.retain(|(_, h)| h.expires_at() > now);
        out
    }

    pub(crate) fn on_command(&mut self, swarm: &mut Swarm<Behaviour>, cmd: DirectoryCommand) {
        match cmd {
            DirectoryCommand::Set { city, bytes, reply } => {
                let _ = reply.send(self.set(city, bytes));
            }
            DirectoryCommand::SafePlaces {
                lat,
                lon,
                radius_m,
                reply,
            } => {
                let _ = reply.send(self.safe_places(lat, lon, radius_m));
            }
            DirectoryCommand::Directory { reply } => {
                let _ = reply.send(Ok(self.directory()));
            }
            DirectoryCommand::CheckPlace { place, reply } => {
                let _ = reply.send(self.check_place(&place));
            }
            DirectoryCommand::SubmitFlag {
                place,
                reason,
                bytes,
                reply,
            } => {
                let _ = reply.send(self.submit_flag(swarm, place, reason, bytes));
            }
            DirectoryCommand::Stats { reply } => {
                let mut stats = self.stats.clone();
                stats.held = self
                    .held
                    .iter()
                    .map(|(k, h)| (k.to_hex(), h.serial()))
                    .collect();
                stats.queued_flags = self.store.flag_count();
                stats.flag_relays = self.flag_peers.len();
                let _ = reply.send(Ok(stats));
            }
        }
    }

    /// Keep a directory given by the embedder (a relay's own), verified
    /// like any other.
    fn set(&mut self, city: DirectoryPublicKey, bytes: Vec<u8>) -> Result<u64, NodeError> {
        let now = self.clock.now();
        let floor = self.floors.get(&city).copied();
        let verified = verify_directory(&bytes, &city, now, floor)
            .map_err(|e| NodeError::InvalidInput(format!("the directory was refused: {e}")))?;
        let serial = verified.directory().serial;
        self.keep(city, bytes, verified)?;
        Ok(serial)
    }

    /// Store and hold a verified directory if it is newer than the one
    /// held. Returns whether it was.
    fn keep(
        &mut self,
        city: DirectoryPublicKey,
        bytes: Vec<u8>,
        verified: VerifiedDirectory,
    ) -> Result<bool, NodeError> {
        let serial = verified.directory().serial;
        if self.held.get(&city).is_some_and(|h| h.serial() >= serial) {
            return Ok(false);
        }
        self.store.put(&city, serial, &bytes)?;
        let floor = self.floors.entry(city).or_insert(serial);
        *floor = (*floor).max(serial);
        self.held.insert(city, Held { bytes, verified });
        self.stats.accepted += 1;
        Ok(true)
    }

    fn safe_places(&self, lat: f64, lon: f64, radius_m: f64) -> Result<SafePlaces, NodeError> {
        let now = self.clock.now();
        let valid = self.valid(now);
        let mut places: Vec<SafePlaceView> = Vec::new();
        for (_, h) in &valid {
            let near = h
                .verified
                .places_near(lat, lon, radius_m, now)
                .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
            places.extend(near.into_iter().map(SafePlaceView::from));
        }
        places.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
        Ok(SafePlaces {
            directory: valid
                .first()
                .map(|(k, h)| DirectorySummary::of(&h.verified, &k.to_hex())),
            places,
        })
    }

    fn directory(&self) -> DirectoryAnswer {
        let now = self.clock.now();
        let directory = self.valid(now).first().map(|(k, h)| DirectoryView {
            summary: DirectorySummary::of(&h.verified, &k.to_hex()),
            places: h.verified.places_at(now).len(),
            mediators: h
                .verified
                .mediators_at(now)
                .into_iter()
                .map(MediatorView::from)
                .collect(),
        });
        DirectoryAnswer { directory }
    }

    fn check_place(&self, place: &PlaceId) -> Result<(), NodeError> {
        let now = self.clock.now();
        // Only a place the phone shows (listed and not expired).
        let listed = self.valid(now).iter().any(|(_, h)| {
            h.verified
                .freshness(place, now)
                .is_some_and(|f| f.is_shown())
        });
        if listed {
            Ok(())
        } else {
            Err(NodeError::UnknownPlace(*place))
        }
    }

    fn submit_flag(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        place: PlaceId,
        reason: FlagReason,
        bytes: Vec<u8>,
    ) -> Result<FlagSent, NodeError> {
        let now = self.clock.now();
        let id = verify_flag(&bytes, now, 0)
            .map_err(|e| NodeError::InvalidInput(format!("the sealed flag does not verify: {e}")))?
            .id;
        if self.store.flag_count() >= MAX_QUEUED_FLAGS {
            return Err(NodeError::InvalidInput(format!(
                "{MAX_QUEUED_FLAGS} flags are already waiting for a relay; try again once this device reaches one"
            )));
        }
        self.store.queue_flag(&id, &bytes)?;
        let peers: Vec<PeerId> = self.flag_peers.iter().copied().collect();
        let mut relays = 0;
        for peer in peers {
            self.send_flag(swarm, peer, id, bytes.clone());
            relays += 1;
        }
        tracing::debug!(relays, "flag sealed");
        Ok(FlagSent {
            place,
            reason,
            status: if relays > 0 { "sent" } else { "queued" },
            relays,
        })
    }

    /// The id of an own flag about to take the stem, if it verifies.
    pub(crate) fn own_flag_id(&self, bytes: &[u8]) -> Result<[u8; 32], NodeError> {
        verify_flag(bytes, self.clock.now(), 0)
            .map(|v| v.id)
            .map_err(|e| NodeError::InvalidInput(format!("the sealed flag does not verify: {e}")))
    }

    /// Fluff a flag that came along the stem (or an own flag whose stem
    /// failed): send it on `/ronde/flag/1` to every connected relay that
    /// takes flags, and to this node's own flag sink if it is a relay.
    /// `false` if there is none (docs/protocol.md §3.4: pass it on).
    pub(crate) fn fluff_flag(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        id: [u8; 32],
        bytes: &[u8],
    ) -> bool {
        let mut given = false;
        if let Some(sink) = &self.flag_sink {
            let (reply, _) = oneshot::channel();
            given = sink
                .try_send(FlagSubmission {
                    bytes: bytes.to_vec(),
                    reply,
                })
                .is_ok();
        }
        let peers: Vec<PeerId> = self.flag_peers.iter().copied().collect();
        for peer in peers {
            self.send_flag(swarm, peer, id, bytes.to_vec());
            given = true;
        }
        given
    }

    /// A flag from the stem that no relay and no stem peer could take:
    /// into the outbox, sent to the next relay that connects (dropped if
    /// the outbox is full).
    pub(crate) fn keep_flag(&mut self, id: [u8; 32], bytes: &[u8]) {
        if self.store.flag_count() >= MAX_QUEUED_FLAGS {
            tracing::debug!("the flag outbox is full: a flag from the stem dropped");
            return;
        }
        if let Err(e) = self.store.queue_flag(&id, bytes) {
            tracing::error!(error = %e, "could not queue a flag from the stem");
        }
    }

    fn send_flag(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        id: [u8; 32],
        bytes: Vec<u8>,
    ) {
        let rid = swarm.behaviour_mut().flags.send_request(&peer, bytes);
        self.flag_sending.insert(rid, id);
    }

    /// Send the queued flags (not already on their way) to the relays
    /// connected now; drop those too old to be counted.
    fn send_outbox(&mut self, swarm: &mut Swarm<Behaviour>) {
        if self.flag_peers.is_empty() {
            return;
        }
        let queued = match self.store.flags() {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(error = %e, "could not read the flag outbox");
                return;
            }
        };
        let now = self.clock.now();
        let sending: HashSet<[u8; 32]> = self.flag_sending.values().copied().collect();
        let peers: Vec<PeerId> = self.flag_peers.iter().copied().collect();
        for (id, bytes) in queued {
            if verify_flag(&bytes, now, 0).is_err() {
                tracing::debug!("dropping a queued flag that can no longer be counted");
                if let Err(e) = self.store.remove_flag(&id) {
                    tracing::error!(error = %e, "could not drop a queued flag");
                }
                continue;
            }
            if sending.contains(&id) {
                continue;
            }
            for peer in &peers {
                self.send_flag(swarm, *peer, id, bytes.clone());
            }
        }
    }

    fn ask(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, city: DirectoryPublicKey) {
        if self.asking.values().any(|(p, c)| *p == peer && *c == city) {
            return;
        }
        let serial = self.held.get(&city).map(|h| h.serial()).unwrap_or(0);
        let rid = swarm
            .behaviour_mut()
            .directory
            .send_request(&peer, DirectoryRequest { city, serial });
        self.asking.insert(rid, (peer, city));
    }

    /// A first connection to `peer`: ask it for our cities' directories.
    pub(crate) fn on_connected(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        for city in self.wanted.clone() {
            self.ask(swarm, peer, city);
        }
    }

    /// The last connection to `peer` closed.
    pub(crate) fn on_disconnected(&mut self, peer: &PeerId) {
        self.flag_peers.remove(peer);
        self.servers.remove(peer);
    }

    pub(crate) fn on_identify(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        info: &identify::Info,
    ) {
        if peer == *swarm.local_peer_id() || !info.protocols.contains(&FLAG_PROTOCOL) {
            return;
        }
        if self.flag_peers.insert(peer) {
            tracing::debug!(%peer, "found a relay that takes flags");
            self.send_outbox(swarm);
        }
    }

    /// The refresh: drop expired directories, ask a few peers for newer
    /// ones, retry the flag outbox.
    pub(crate) fn tick(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = self.clock.now();
        let expired: Vec<DirectoryPublicKey> = self
            .held
            .iter()
            .filter(|(_, h)| h.expires_at() <= now)
            .map(|(k, _)| *k)
            .collect();
        for city in expired {
            if let Some(h) = self.held.remove(&city) {
                tracing::info!(serial = h.serial(), "a directory expired: dropped");
                if let Err(e) = self.store.put(&city, h.serial(), &[]) {
                    tracing::error!(error = %e, "could not drop an expired directory");
                }
            }
        }
        if !self.wanted.is_empty() {
            let mut peers: Vec<PeerId> = self
                .servers
                .iter()
                .filter(|p| swarm.is_connected(p))
                .copied()
                .collect();
            for p in swarm.connected_peers() {
                if !peers.contains(p) {
                    peers.push(*p);
                }
            }
            peers.truncate(PEERS_PER_REFRESH);
            for city in self.wanted.clone() {
                for peer in &peers {
                    self.ask(swarm, *peer, city);
                }
            }
        }
        self.send_outbox(swarm);
    }

    pub(crate) fn on_directory_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ev: request_response::Event<DirectoryRequest, DirectoryResponse>,
    ) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let res = self.answer(&request);
                    if swarm
                        .behaviour_mut()
                        .directory
                        .send_response(channel, res)
                        .is_err()
                    {
                        tracing::debug!(%peer, "directory asker went away");
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((from, city)) = self.asking.remove(&request_id) {
                        if let DirectoryResponse::Directory(bytes) = response {
                            self.on_directory(from, city, bytes);
                        }
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::trace!(%peer, %error, "directory request failed");
                self.asking.remove(&request_id);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "directory request from a peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// What to answer a peer asking for a city's directory.
    fn answer(&self, req: &DirectoryRequest) -> DirectoryResponse {
        let now = self.clock.now();
        match self.held.get(&req.city) {
            Some(h) if h.serial() > req.serial && h.expires_at() > now => {
                DirectoryResponse::Directory(h.bytes.clone())
            }
            _ => DirectoryResponse::NotNewer,
        }
    }

    /// A directory a peer sent for a city we asked about.
    fn on_directory(&mut self, peer: PeerId, city: DirectoryPublicKey, bytes: Vec<u8>) {
        let now = self.clock.now();
        let floor = self.floors.get(&city).copied();
        match verify_directory(&bytes, &city, now, floor) {
            Ok(verified) => {
                let serial = verified.directory().serial;
                match self.keep(city, bytes, verified) {
                    Ok(true) => {
                        self.servers.insert(peer);
                        tracing::info!(%peer, serial, "new directory of a city");
                    }
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "could not keep a directory"),
                }
            }
            Err(e) => {
                self.stats.refused += 1;
                tracing::info!(%peer, reason = e.reason(), "refused a directory");
            }
        }
    }

    pub(crate) fn on_flag_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ev: request_response::Event<Vec<u8>, FlagVerdict>,
    ) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_flag_request(swarm, peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some(id) = self.flag_sending.remove(&request_id) else {
                        return;
                    };
                    tracing::debug!(%peer, verdict = ?response, "a relay answered a flag");
                    if response != FlagVerdict::Unavailable {
                        if let Err(e) = self.store.remove_flag(&id) {
                            tracing::error!(error = %e, "could not dequeue a flag");
                        }
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "flag request failed");
                self.flag_sending.remove(&request_id);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "flag from a peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_flag_request(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        bytes: Vec<u8>,
        channel: ResponseChannel<FlagVerdict>,
    ) {
        if let Some(tap) = &self.tap {
            if let Ok(v) = verify_flag(&bytes, self.clock.now(), 0) {
                tap(ronde_protocol::ReportId(v.id), peer);
            }
        }
        let Some(sink) = &self.flag_sink else {
            let _ = swarm
                .behaviour_mut()
                .flags
                .send_response(channel, FlagVerdict::Unavailable);
            return;
        };
        let (tx, rx) = oneshot::channel();
        match sink.try_send(FlagSubmission { bytes, reply: tx }) {
            Ok(()) => {
                self.verdicts.push(
                    async move {
                        let verdict = rx.await.unwrap_or(FlagVerdict::Unavailable);
                        (channel, verdict)
                    }
                    .boxed(),
                );
            }
            Err(_) => {
                tracing::debug!(%peer, "the flag queue is full: flag not taken");
                let _ = swarm
                    .behaviour_mut()
                    .flags
                    .send_response(channel, FlagVerdict::Unavailable);
            }
        }
    }

    /// Send the flag sink's verdict back to the peer.
    pub(crate) fn on_verdict(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        channel: ResponseChannel<FlagVerdict>,
        verdict: FlagVerdict,
    ) {
        if swarm
            .behaviour_mut()
            .flags
            .send_response(channel, verdict)
            .is_err()
        {
            tracing::debug!("a flag sender went away before its verdict");
        }
    }
}

/// The peer id of a listed relay, if its bytes are one.
fn relay_peer(r: &RelayEntry) -> Option<PeerId> {
    PeerId::from_bytes(&r.peer).ok()
}
