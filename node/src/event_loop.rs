//! The event loop: the one task that owns the `Swarm` and the store.
//!
//! It multiplexes ten sources with `tokio::select!`: commands from
//! [`crate::Node`] handles (a bounded queue, each command with a one-shot
//! reply), swarm events, a purge timer (expired reports are deleted), a
//! retry timer (queued reports are published once a peer follows their
//! area), the circle's tick (journey and SOS deadlines on the node's clock,
//! dead-man's switches due on a mailbox host, circle retries), the
//! mailbox poll timer, the directory refresh, and the verdicts of a
//! relay's flag sink, the stem's next deadline ([`crate::stem`]), and the
//! events of the circle's own connections to mailbox hosts (one small
//! swarm per UTC day, owned by the circle's client side,
//! [`crate::circle::client::net`]). The trusted circle's and the directory's work is
//! done by their services ([`crate::circle`], [`crate::directory`]), which
//! the loop owns and hands the swarm to. The circle has two: the client
//! side (this person's circle) gets the commands and everything the
//! network says to it (its own requests to hosts go over its day swarms,
//! never over the main swarm, whose peer id publishes reports); the host
//! side, on a mailbox host only, gets the requests other nodes send to
//! `/ronde/mailbox/1` on the main swarm. Nothing in here blocks for long:
//! the proof of work of our own reports and flags is done before the
//! command is sent.
//!
//! Incoming gossip is validated here, in batches: the messages received
//! during one burst of swarm events are judged together once the burst is
//! handled. Each gets the protocol's cheap checks ([`precheck`]) and one
//! more rule, the topic must be the area topic of the report's cell; a
//! report already stored is then ignored without its signature being
//! checked; the signatures of the rest are verified in one batch
//! ([`verify_signatures`]), inline for a few reports (a phone's usual
//! case: one), on blocking threads for a burst of [`OFFLOAD_MIN`] or more
//! (a relay's), while the loop keeps serving the network: up to
//! [`verify_jobs`] batches at once, one per core, so that a relay's
//! signature checks use every core while the loop stores; the good ones are
//! stored in one transaction ([`ReportStore::insert_many`]) and announced.
//! The verdict goes back to gossipsub per message, as if each had been
//! judged alone: *accept* (stored, announced, forwarded), *reject*
//! (misbehaviour: the sender's score drops) or *ignore* (expired, from the
//! future, already known: no penalty). Sync responses take the same path,
//! inline.
//!
//! Logs never carry a location finer than an area (geohash precision 5),
//! nor report contents or keys.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::admission::{Gate, Refused};
use crate::flood_guard::FloodGuard;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, MessageAcceptance, PublishError, TopicHash};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::{DialError, SwarmEvent};
use libp2p::{identify, mdns, Multiaddr, PeerId, Swarm};
use ronde_protocol::token::{Seen, SeenTokens};
use ronde_protocol::{
    distance_to_cell_m, precheck_with_keys, verify_signatures, Area, Policy, Prechecked, Rejection,
    VerifiedReport,
};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

use crate::behaviour::{
    self, area_topic, area_topic_params, Behaviour, BehaviourEvent, SyncRequest, SyncResponse,
    MAX_SYNC_REPORTS,
};
use crate::circle::client::net::{CircleNet, NetSettings};
use crate::circle::client::store::CircleStore;
use crate::circle::client::CircleClient;
use crate::circle::host::{relay_id, HostService, MailboxHost};
use crate::circle::keyfile;
use crate::clock::Clock;
use crate::command::Command;
use crate::config::{NodeConfig, MAX_PEER_AREAS};
use crate::directory::service::{DirectoryCommand, DirectoryService};
use crate::directory::store::DirectoryStore;
use crate::directory::FlagSent;
use crate::error::NodeError;
use crate::events::{CellCount, Nearby, NearbyReport, NodeEvent, Published, Status};
use crate::mesh_score::AppScores;
use crate::new_reports::PeerBudgets;
use crate::reachability::{self, Reachability};
use crate::stem::{Judge, StemItem, StemService};
use crate::store::{Inserted, ReportStore, SledStore};

mod background;

/// Capacity of the command queue.
pub const COMMAND_QUEUE: usize = 64;
/// Capacity of the event broadcast channel. A batch of gossip announces up
/// to [`MAX_VERIFY_BATCH`] reports at once; a relay's aggregation reads
/// them in batches.
pub const EVENT_QUEUE: usize = 1024;
/// Reports whose signatures are verified off the event loop, on a blocking
/// thread, when at least this many wait; fewer are verified inline.
pub const OFFLOAD_MIN: usize = 8;
/// Most reports in one signature batch.
pub const MAX_VERIFY_BATCH: usize = 256;
/// Most signature batches verified at once off the loop (see
/// [`verify_jobs`]).
pub const MAX_VERIFY_JOBS: usize = 4;
/// While a batch is being verified off the loop, the loop stops reading the
/// network once this many more reports wait (back-pressure on the peers).
pub const VERIFY_BACKLOG: usize = 4 * MAX_VERIFY_BATCH;
/// Most peers asked for the reports of one newly followed area.
const SYNC_PEERS_PER_AREA: usize = 3;

/// Attempts per sync request (a stream can fail when a connection is busy).
const SYNC_ATTEMPTS: u8 = 2;
/// Swarm events handled in one go before the loop looks at anything else.
const EVENT_BURST: usize = 64;

/// A gossip message received during the current burst.
struct GossipIn {
    source: PeerId,
    id: gossipsub::MessageId,
    message: gossipsub::Message,
}

/// A gossip message that passed every check but the signature.
struct Awaiting {
    source: PeerId,
    id: gossipsub::MessageId,
    report: Prechecked,
}

/// Who sent what, and the verdicts on the signatures, in the same order.
struct VerifiedBatch {
    senders: Vec<(PeerId, gossipsub::MessageId)>,
    results: Vec<Result<VerifiedReport, Rejection>>,
}

/// How many signature batches this machine verifies at once off the loop:
/// one per core, at least one, at most [`MAX_VERIFY_JOBS`]. Signature
/// checks are most of a report's cost on arrival (`docs/performance.md`
/// §3): one thread for them would leave a relay's second core to the
/// store alone.
pub fn verify_jobs() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_VERIFY_JOBS)
}

/// Verify the signatures of a batch (on whatever thread calls it).
fn verify_batch(batch: Vec<Awaiting>) -> VerifiedBatch {
    let (senders, reports): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|a| ((a.source, a.id), a.report))
        .unzip();
    let results = verify_signatures(reports, &mut rand::thread_rng());
    VerifiedBatch { senders, results }
}

/// Wait for a batch being verified off the loop (never, if none is).
async fn join_verify(jobs: &mut JoinSet<VerifiedBatch>) -> Option<VerifiedBatch> {
    match jobs.join_next().await {
        Some(Ok(done)) => Some(done),
        Some(Err(e)) => {
            // The messages stay unvalidated: gossipsub forgets them
            // without penalising anyone.
            tracing::error!(error = %e, "the signature verification task failed");
            None
        }
        None => std::future::pending().await,
    }
}

/// An outstanding sync request.
struct SyncAsk {
    areas: Vec<Area>,
    attempt: u8,
}

/// Most token ids a node remembers (`docs/protocol.md` §8.5): each lives at
/// most 61 minutes, so this bounds the tokened reports a node takes per
/// hour; about 12 MB at most.
const MAX_SEEN_TOKENS: usize = 100_000;

struct EventLoop {
    swarm: Swarm<Behaviour>,
    store: Box<dyn ReportStore>,
    clock: std::sync::Arc<dyn Clock>,
    policy: Policy,
    /// Gossiped messages refused since start, by reason (for `Status`).
    gossip_refused: BTreeMap<&'static str, u64>,
    sync_reports_received: u64,
    /// Spent tokens, the flood rule and the per-peer bound, with their
    /// counters: what a report must pass, gossip or stem.
    gate: Gate,
    /// Gossip received during the current burst of swarm events.
    gossip_in: Vec<GossipIn>,
    /// Gossip waiting for its signatures to be verified.
    verify_queue: Vec<Awaiting>,
    /// The batches being verified off the loop.
    verify_jobs: JoinSet<VerifiedBatch>,
    /// Most batches verified at once ([`verify_jobs`]).
    max_verify_jobs: usize,
    max_areas: usize,
    sync: bool,
    /// Followed areas, in the order they were given (own area first).
    areas: Vec<Area>,
    location: Option<(f64, f64)>,
    events: broadcast::Sender<NodeEvent>,
    /// Which (peer, area) pairs were already asked for a sync, and how many
    /// peers were asked per area, since it was followed.
    synced: HashSet<(PeerId, Area)>,
    sync_asked: HashMap<Area, usize>,
    /// Areas to ask each peer for, sent as one request per peer once the
    /// current burst of events is handled.
    sync_queue: HashMap<PeerId, Vec<Area>>,
    /// Areas whose first sync ask is under way, and the peers to ask next,
    /// once it is answered, for what the first peer did not have
    /// (`/ronde/sync/3` leaves out the reports the asker then holds).
    sync_later: HashMap<Area, Vec<PeerId>>,
    sync_inflight: HashMap<OutboundRequestId, SyncAsk>,
    /// Bootstrap peers and the address they were given with.
    bootstrap_peers: HashMap<PeerId, Multiaddr>,
    /// AutoNAT's verdict and the relay circuit held when private.
    reach: Reachability,
    /// Inbound connections by peer, to drop those of a peer that moved.
    moved: reachability::MovedPeers,
    /// Announce every listen address as external (a relay server given no
    /// external address).
    listen_is_external: bool,
    /// The trusted circle's client side: contacts, journeys, SOS, their
    /// delivery.
    circle: CircleClient,
    /// The trusted circle's host side: the mailboxes and switches this
    /// node hosts for others (with `mailbox_host`).
    mailbox_host: Option<HostService>,
    /// The city directories and the flags.
    directories: DirectoryService,
    /// `/ronde/token/1`: asking a relay for tokens, answering as one.
    tokens: crate::tokens::TokenService,
    /// The stem of reports before the gossip (`/ronde/stem/1`).
    stem: StemService,
    /// Each peer's gossipsub application score: its link's speed, whether
    /// it is a gossip hub, the stem's penalty.
    scores: AppScores,
    /// Tests only: the log of the mailbox requests this node hosts.
    mailbox_tap: Option<crate::config::MailboxTap>,
    /// Foreground or background (`event_loop/background.rs`).
    background: background::Background,
}

/// `config` as a build without [`QUIC`](crate::config::QUIC) can follow
/// it (unchanged in a build with it): a QUIC listen address is refused
/// (the person asked to be reachable there and would not be); a QUIC
/// bootstrap or mailbox address is left out, with a warning, when the same
/// peer is also given with another address (a relay is often given with
/// both its TCP and QUIC addresses: the TCP one is kept and dialled), and
/// refused when it is all the node has to reach that peer.
fn without_quic(mut config: NodeConfig) -> Result<NodeConfig, NodeError> {
    use crate::config::{is_quic, QUIC};
    if QUIC {
        return Ok(config);
    }
    if let Some(a) = config.listen.iter().find(|a| is_quic(a)) {
        return Err(NodeError::InvalidInput(format!(
            "cannot listen on {a}: this node is built without QUIC (the phone \
             library speaks TCP only); listen on a TCP address such as /ip4/0.0.0.0/tcp/0"
        )));
    }
    for list in [&mut config.bootstrap, &mut config.mailbox_peers] {
        let reachable: HashSet<PeerId> = list
            .iter()
            .filter(|a| !is_quic(a))
            .filter_map(|a| split_peer(a).1)
            .collect();
        let unreachable = |a: &Multiaddr| split_peer(a).1.is_none_or(|p| !reachable.contains(&p));
        if let Some(a) = list.iter().find(|a| is_quic(a) && unreachable(a)) {
            return Err(NodeError::InvalidInput(format!(
                "cannot dial {a}: this node is built without QUIC (the phone library \
                 speaks TCP only); give this peer's TCP address"
            )));
        }
        list.retain(|a| {
            let keep = !is_quic(a);
            if !keep {
                tracing::warn!(addr = %a, "QUIC address skipped: this node speaks TCP only");
            }
            keep
        });
    }
    Ok(config)
}

/// Start a node: open the store, build the swarm, listen, dial, follow the
/// configured location, then spawn the event loop.
pub(crate) async fn spawn(
    config: NodeConfig,
) -> Result<(mpsc::Sender<Command>, broadcast::Sender<NodeEvent>, PeerId), NodeError> {
    if config.max_areas == 0 || config.max_areas > MAX_PEER_AREAS {
        return Err(NodeError::InvalidInput(format!(
            "max_areas must be between 1 and {MAX_PEER_AREAS}"
        )));
    }
    let mut config = without_quic(config)?;
    let data_dir = config.data_dir.clone();
    let (max_reports, eviction, flush) = (
        config.max_reports,
        config.eviction,
        config.store_flush_every,
    );
    let store = tokio::task::spawn_blocking(move || {
        SledStore::open_with(&data_dir, max_reports, eviction, flush)
    })
    .await
    .map_err(|e| NodeError::Transport(format!("store task failed: {e}")))??;
    let data_dir = config.data_dir.clone();
    let identity = tokio::task::spawn_blocking(move || keyfile::load_or_create(&data_dir))
        .await
        .map_err(|e| NodeError::Transport(format!("identity task failed: {e}")))??;

    // A fresh identity at every start: a stable peer id would let peers
    // follow a phone from one session to the next. Only always-on nodes
    // (relays, mailbox hosts) keep one in a file.
    let keypair = match config.identity_file.clone() {
        Some(path) => tokio::task::spawn_blocking(move || crate::peer_key::load_or_create(&path))
            .await
            .map_err(|e| NodeError::Transport(format!("peer key task failed: {e}")))??,
        None => libp2p::identity::Keypair::generate_ed25519(),
    };
    let peer_id = keypair.public().to_peer_id();
    let (events, _) = broadcast::channel(EVENT_QUEUE);
    let directories = DirectoryService::new(
        DirectoryStore::open(store.database(), store.path())?,
        config.clock.clone(),
        config.city_keys.clone(),
        config.flag_sink.clone(),
        config.first_hop_tap.clone(),
    )?;
    // A node that knows a gossip hub at start (configured, or listed by a
    // directory it holds from an earlier run) keeps the smaller mesh
    // beside it (docs/protocol.md §3.2).
    config.gossip = config.mesh_at_start(!directories.gossip_hubs().is_empty());
    let mailbox_host = if config.mailbox_host {
        let hosted = MailboxHost::open(
            store.database(),
            store.path(),
            config.circle.mailbox_limits,
            relay_id(&peer_id),
        )?;
        let push = crate::circle::host::push::PushRegistry::open(store.database(), store.path())?;
        Some(HostService::new(
            hosted,
            config.clock.clone(),
            keypair.clone(),
            config.circle.mailbox_limits,
            Some(push),
        ))
    } else {
        None
    };
    let circle = {
        let circle_store = CircleStore::open(store.database(), store.path())?;
        CircleClient::new(
            identity,
            circle_store,
            config.clock.clone(),
            events.clone(),
            config.circle.clone(),
            peer_id,
            &config.mailbox_peers,
            CircleNet::new(NetSettings::of(&config)),
        )?
    };
    let mut swarm = behaviour::build_swarm(&config, keypair)?;

    let mut listeners = HashSet::new();
    for addr in &config.listen {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::Transport(format!("cannot listen on {addr}: {e}")))?;
        listeners.insert(id);
    }

    let mut el = EventLoop {
        swarm,
        store: Box::new(store),
        clock: config.clock.clone(),
        policy: config.policy,
        gossip_refused: BTreeMap::new(),
        sync_reports_received: 0,
        gate: Gate {
            seen_tokens: SeenTokens::new(MAX_SEEN_TOKENS),
            new_report_bound: config.new_report_bound,
            flood_rule: config.flood_rule,
            flood_guard: FloodGuard::default(),
            budgets: PeerBudgets::default(),
        },
        gossip_in: Vec::new(),
        verify_queue: Vec::new(),
        verify_jobs: JoinSet::new(),
        max_verify_jobs: verify_jobs(),
        max_areas: config.max_areas,
        sync: config.sync,
        areas: Vec::new(),
        location: None,
        events: events.clone(),
        synced: HashSet::new(),
        sync_asked: HashMap::new(),
        sync_queue: HashMap::new(),
        sync_later: HashMap::new(),
        sync_inflight: HashMap::new(),
        bootstrap_peers: HashMap::new(),
        moved: reachability::MovedPeers::default(),
        reach: Reachability::new(
            config.relay_server
                || config.directly_reachable
                || !config.external_addresses.is_empty(),
        ),
        listen_is_external: config.relay_server && config.external_addresses.is_empty(),
        circle,
        mailbox_host,
        directories,
        tokens: crate::tokens::TokenService::new(config.token_sink.clone()),
        stem: StemService::new(
            config.stem,
            config.first_hop_tap.clone(),
            config.flag_difficulty,
            config.stem_seed,
        ),
        scores: AppScores::new(&config.gossip, &config.gossip_hubs),
        mailbox_tap: config.mailbox_tap.clone(),
        background: background::Background::new(&config.mailbox_peers),
    };
    for addr in &config.external_addresses {
        el.swarm.add_external_address(addr.clone());
    }

    // Wait until every listener has an address, so that `listen_addrs`
    // right after `start` gives real ones.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !listeners.is_empty() {
        let event = tokio::time::timeout_at(deadline, el.swarm.select_next_some())
            .await
            .map_err(|_| NodeError::Transport("timed out waiting for listen addresses".into()))?;
        match &event {
            SwarmEvent::NewListenAddr { listener_id, .. } => {
                listeners.remove(listener_id);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } if listeners.contains(listener_id) => {
                let why = match reason {
                    Ok(()) => "closed".to_owned(),
                    Err(e) => e.to_string(),
                };
                return Err(NodeError::Transport(format!("listener failed: {why}")));
            }
            SwarmEvent::ListenerError { listener_id, error } if listeners.contains(listener_id) => {
                return Err(NodeError::Transport(format!("listener failed: {error}")));
            }
            _ => {}
        }
        el.on_swarm_event(event);
    }

    for addr in &config.bootstrap {
        el.add_bootstrap(addr.clone());
    }
    if !el.bootstrap_peers.is_empty() {
        if let Err(e) = el.swarm.behaviour_mut().kad.bootstrap() {
            tracing::debug!(error = %e, "kademlia bootstrap not started");
        }
    }

    // Whatever expired while the node was off goes now, before anything
    // can be served.
    el.purge();

    if let Some((lat, lon)) = config.location {
        let areas = ronde_protocol::topics_around(lat, lon)?;
        el.set_areas(areas, Some((lat, lon)))?;
    }

    el.use_directory_relays();
    let own_mail = el.mailbox_host.as_mut().map(HostService::store_mut);
    el.circle.start(&mut el.swarm, own_mail);

    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let timers = Timers {
        purge: config.purge_interval,
        retry: config.pending_retry_interval,
        circle_tick: config.circle.tick,
        mailbox_poll: config.circle.mailbox_poll_interval,
        directory: config.directory_refresh,
    };
    tokio::spawn(el.run(rx, timers));
    tracing::info!(%peer_id, "node started");
    Ok((tx, events, peer_id))
}

/// Strip a trailing `/p2p/<id>` and return the id.
fn split_peer(addr: &Multiaddr) -> (Multiaddr, Option<PeerId>) {
    let mut base = addr.clone();
    match base.pop() {
        Some(Protocol::P2p(peer)) => (base, Some(peer)),
        _ => (addr.clone(), None),
    }
}

/// The loop's timer periods.
struct Timers {
    purge: std::time::Duration,
    retry: std::time::Duration,
    circle_tick: std::time::Duration,
    mailbox_poll: std::time::Duration,
    directory: std::time::Duration,
}

/// Sleep until `at` (forever if `None`).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn interval(period: std::time::Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval(period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

fn to_nearby(r: &VerifiedReport, now: u64, from: Option<(f64, f64)>) -> NearbyReport {
    let rep = r.report();
    let cell = rep.cell();
    let (clat, clon) = cell.center();
    let distance_m = from
        .and_then(|(lat, lon)| distance_to_cell_m(lat, lon, &cell).ok())
        .unwrap_or(0.0);
    NearbyReport {
        id: r.id(),
        category: rep.category(),
        cell,
        center: [clat, clon],
        observed_at: rep.observed_at(),
        expires_at: rep.expires_at(),
        age_secs: now.saturating_sub(rep.observed_at()),
        distance_m,
        tokened: rep.token().is_some(),
    }
}

impl EventLoop {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, timers: Timers) {
        let mut purge_timer = interval(timers.purge);
        let mut retry_timer = interval(timers.retry);
        let mut circle_timer = interval(timers.circle_tick);
        let mut mailbox_timer = interval(timers.mailbox_poll);
        let mut directory_timer = interval(timers.directory);
        let shutdown_reply = loop {
            let stem_due = self.stem.deadline();
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown { reply }) => break Some(reply),
                    Some(cmd) => self.on_command(cmd),
                    None => break None,
                },
                event = self.swarm.select_next_some(),
                    if self.verify_queue.len() < VERIFY_BACKLOG =>
                {
                    self.on_swarm_event(event);
                    // Handle what is already there (e.g. the burst of
                    // `Subscribed` events of one peer) before acting on it.
                    for _ in 0..EVENT_BURST {
                        match self.swarm.next().now_or_never() {
                            Some(Some(event)) => self.on_swarm_event(event),
                            _ => break,
                        }
                    }
                }
                _ = purge_timer.tick() => self.purge(),
                _ = retry_timer.tick() => {
                    self.retry_pending(None);
                    if !self.background.is_background() {
                        self.reach.tick(&mut self.swarm);
                    }
                }
                _ = circle_timer.tick() => {
                    self.use_directory_relays();
                    self.circle.tick(&mut self.swarm, self.location);
                    self.background_tick();
                    if let Some(host) = self.mailbox_host.as_mut() {
                        host.tick();
                    }
                }
                _ = mailbox_timer.tick() => {
                    let own_mail = self.mailbox_host.as_mut().map(HostService::store_mut);
                    self.circle.poll_mailboxes(&mut self.swarm, own_mail);
                }
                _ = directory_timer.tick() => self.directories.tick(&mut self.swarm),
                Some((channel, verdict)) = self.directories.verdicts.next(),
                    if !self.directories.verdicts.is_empty() =>
                {
                    self.directories.on_verdict(&mut self.swarm, channel, verdict);
                }
                Some((channel, answer)) = self.tokens.answers.next(),
                    if !self.tokens.answers.is_empty() =>
                {
                    self.tokens.on_answer(&mut self.swarm, channel, answer);
                }
                Some(done) = join_verify(&mut self.verify_jobs), if !self.verify_jobs.is_empty() => {
                    self.finish_gossip(done);
                }
                ev = self.circle.next_net_event() => {
                    self.circle.on_net_event(&mut self.swarm, ev);
                }
                _ = sleep_until(stem_due), if stem_due.is_some() => {}
            }
            self.flush_gossip();
            self.poll_stem();
            self.flush_sync();
        };
        let result = self
            .store
            .flush()
            .and_then(|()| self.circle.flush())
            .map_err(NodeError::from);
        if let Err(e) = &result {
            tracing::error!(error = %e, "could not flush the store on shutdown");
        }
        // Drop the swarm (closing connections) and the store (releasing the
        // database lock) before answering, so a restart can reopen it.
        drop(self);
        tracing::info!("node stopped");
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(result);
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::SetAreas {
                areas,
                location,
                reply,
            } => {
                let result = self.set_areas_in_lifecycle(areas, location);
                if let (Ok(_), Some(here)) = (&result, location) {
                    self.circle.on_location(&mut self.swarm, here);
                }
                let _ = reply.send(result);
            }
            Command::Publish { report, reply } => {
                let _ = reply.send(self.publish_own(report));
            }
            Command::RequiredDifficulty { area, reply } => {
                let needed = self.gate.required_difficulty(
                    &area,
                    self.clock.now(),
                    self.policy.min_difficulty,
                );
                let _ = reply.send(Ok(needed));
            }
            Command::Nearby {
                lat,
                lon,
                radius_m,
                reply,
            } => {
                let _ = reply.send(self.nearby(lat, lon, radius_m));
            }
            Command::TokenIssuers { reply } => {
                let now = self.clock.now();
                let today = ronde_protocol::token::period_of(now);
                let keyed = self
                    .directories
                    .token_keys(now)
                    .keys()
                    .iter()
                    .any(|k| k.period_start() == today);
                let peers = if keyed && self.background.is_foreground() {
                    self.directories
                        .listed_relays()
                        .into_iter()
                        .filter(|p| self.swarm.is_connected(p))
                        .collect()
                } else {
                    Vec::new()
                };
                let _ = reply.send(Ok(peers));
            }
            Command::TokenKeys { reply } => {
                let _ = reply.send(Ok(self.directories.token_keys(self.clock.now())));
            }
            Command::RequestTokens {
                peer,
                request,
                reply,
            } => self.tokens.ask(&mut self.swarm, peer, request, reply),
            Command::Dial { addr, reply } => {
                let res = self
                    .swarm
                    .dial(addr)
                    .map_err(|e| NodeError::Transport(format!("dial failed: {e}")));
                let _ = reply.send(res);
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(Ok(self.swarm.listeners().cloned().collect()));
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(Ok(self.swarm.connected_peers().copied().collect()));
            }
            Command::PeersInArea { area, reply } => {
                let topic = TopicHash::from_raw(area.topic());
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&topic))
                    .map(|(p, _)| *p)
                    .collect();
                let _ = reply.send(Ok(peers));
            }
            Command::PeerScore { peer, reply } => {
                let _ = reply.send(Ok(self.swarm.behaviour().gossipsub.peer_score(&peer)));
            }
            Command::PendingCount { reply } => {
                let now = self.clock.now();
                let _ = reply.send(self.store.pending(now).map(|p| p.len()).map_err(Into::into));
            }
            Command::Shutdown { reply } => {
                // Handled in `run`; unreachable here, answer anyway.
                let _ = reply.send(Ok(()));
            }
            Command::Circle(cmd) => {
                let hosted = self.mailbox_host.as_ref().map(HostService::store);
                self.circle
                    .on_command(cmd, &mut self.swarm, self.location, hosted)
            }
            Command::Directory(DirectoryCommand::SubmitFlag {
                place,
                reason,
                bytes,
                reply,
            }) => {
                // An own flag takes the stem like an own report (issue 13 §2).
                match self.directories.own_flag_id(&bytes) {
                    Ok(id) if self.stem.own_flag(&self.swarm, id, bytes.clone()) => {
                        let _ = reply.send(Ok(FlagSent {
                            place,
                            reason,
                            status: "sent",
                            relays: 0,
                        }));
                    }
                    _ => self.directories.on_command(
                        &mut self.swarm,
                        DirectoryCommand::SubmitFlag {
                            place,
                            reason,
                            bytes,
                            reply,
                        },
                    ),
                }
            }
            Command::Directory(cmd) => self.directories.on_command(&mut self.swarm, cmd),
            Command::SetLifecycle { lifecycle, reply } => {
                let _ = reply.send(self.set_lifecycle(lifecycle));
            }
        }
    }

    fn status(&self) -> Result<Status, NodeError> {
        let now = self.clock.now();
        Ok(Status {
            peer_id: self.swarm.local_peer_id().to_string(),
            listen_addrs: self.swarm.listeners().map(|a| a.to_string()).collect(),
            connected_peers: self.swarm.connected_peers().count(),
            areas: self.areas.iter().map(|a| a.to_string()).collect(),
            stored_reports: self.store.live_count(now)?,
            gossip_refused: self.gossip_refused.clone(),
            sync_reports_received: self.sync_reports_received,
            location: self
                .location
                .map(|(lat, lon)| crate::events::Location { lat, lon }),
        })
    }

    fn add_bootstrap(&mut self, addr: Multiaddr) {
        let (base, peer) = split_peer(&addr);
        if let Some(peer) = peer {
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, base.clone());
            self.bootstrap_peers.insert(peer, base);
        }
        if let Err(e) = self.swarm.dial(addr.clone()) {
            tracing::warn!(%addr, error = %e, "could not dial a bootstrap peer");
        }
    }

    /// Follow exactly `areas`: subscribe to the new ones (with their score
    /// parameters), unsubscribe from the others.
    fn set_areas(
        &mut self,
        areas: Vec<Area>,
        location: Option<(f64, f64)>,
    ) -> Result<Vec<Area>, NodeError> {
        let mut wanted = Vec::new();
        for a in areas {
            if !wanted.contains(&a) {
                wanted.push(a);
            }
        }
        if wanted.len() > self.max_areas {
            return Err(NodeError::InvalidInput(format!(
                "{} areas asked, this node follows at most {}",
                wanted.len(),
                self.max_areas
            )));
        }
        let old = std::mem::take(&mut self.areas);
        for a in old.iter().filter(|a| !wanted.contains(a)) {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .unsubscribe(&area_topic(a));
            self.sync_asked.remove(a);
            self.sync_later.remove(a);
            self.synced.retain(|(_, area)| area != a);
        }
        let mut added = Vec::new();
        for a in wanted.iter().filter(|a| !old.contains(a)) {
            let topic = area_topic(a);
            let gs = &mut self.swarm.behaviour_mut().gossipsub;
            if let Err(e) = gs.set_topic_params(topic.clone(), area_topic_params()) {
                tracing::warn!(error = e, "could not set topic score parameters");
            }
            if let Err(e) = gs.subscribe(&topic) {
                // Roll back to a consistent state: what we are subscribed to.
                let subscribed: Vec<Area> = gs
                    .topics()
                    .filter_map(|t| Area::from_topic(t.as_str()))
                    .collect();
                self.areas = subscribed;
                return Err(NodeError::Transport(format!("could not subscribe: {e:?}")));
            }
            added.push(*a);
        }
        self.areas = wanted.clone();
        self.location = location;
        // Which areas are followed says where the person is: never logged.
        tracing::debug!(count = self.areas.len(), "following areas");
        for a in added {
            self.sync_area(a);
        }
        Ok(wanted)
    }

    /// Ask connected peers that follow `area` for its live reports.
    fn sync_area(&mut self, area: Area) {
        if !self.sync {
            return;
        }
        let topic = TopicHash::from_raw(area.topic());
        let peers: Vec<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&topic))
            .map(|(p, _)| *p)
            .collect();
        for peer in peers {
            self.maybe_sync(peer, area);
        }
    }

    fn maybe_sync(&mut self, peer: PeerId, area: Area) {
        if !self.sync || !self.areas.contains(&area) {
            return;
        }
        let asked = self.sync_asked.get(&area).copied().unwrap_or(0);
        if asked >= SYNC_PEERS_PER_AREA || !self.synced.insert((peer, area)) {
            return;
        }
        self.sync_asked.insert(area, asked + 1);
        match self.sync_later.get_mut(&area) {
            // The first ask is under way: this peer is asked once it is
            // answered, for what that one did not have.
            Some(later) => later.push(peer),
            None => {
                if asked == 0 {
                    self.sync_later.insert(area, Vec::new());
                }
                self.sync_queue.entry(peer).or_default().push(area);
            }
        }
    }

    /// The first sync ask for these areas is over (answered, or failed for
    /// good): ask the peers that waited for it.
    fn sync_next(&mut self, areas: &[Area]) {
        for a in areas {
            for peer in self.sync_later.remove(a).unwrap_or_default() {
                if self.swarm.is_connected(&peer) && self.areas.contains(a) {
                    self.sync_queue.entry(peer).or_default().push(*a);
                } else {
                    self.synced.remove(&(peer, *a));
                    if let Some(n) = self.sync_asked.get_mut(a) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
        }
    }

    /// Ids of the live reports this node holds in `areas`, those that
    /// expire last first (the ones a responder would send first).
    fn held_ids(&self, areas: &[Area]) -> Vec<behaviour::HeldId> {
        let now = self.clock.now();
        let mut held: Vec<VerifiedReport> = areas
            .iter()
            .filter_map(|a| self.store.live_in_area(a, now).ok())
            .flatten()
            .collect();
        held.sort_by_key(|r| std::cmp::Reverse(r.expires_at()));
        held.iter()
            .take(behaviour::MAX_SYNC_HELD)
            .map(|r| behaviour::held_id(&r.id()))
            .collect()
    }

    /// Send the queued sync requests, one per peer.
    fn flush_sync(&mut self) {
        for (peer, areas) in std::mem::take(&mut self.sync_queue) {
            self.send_sync(peer, areas, 1);
        }
    }

    fn send_sync(&mut self, peer: PeerId, areas: Vec<Area>, attempt: u8) {
        let req = SyncRequest::holding(areas.clone(), self.held_ids(&areas));
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, req);
        tracing::debug!(%peer, areas = areas.len(), "asked a peer for the live reports of areas");
        self.sync_inflight.insert(id, SyncAsk { areas, attempt });
    }

    /// A sync request failed: retry it, or forget it so a later
    /// subscription from another peer can serve instead.
    fn sync_failed(&mut self, peer: PeerId, ask: SyncAsk) {
        if ask.attempt < SYNC_ATTEMPTS && self.swarm.is_connected(&peer) {
            let areas: Vec<Area> = ask
                .areas
                .into_iter()
                .filter(|a| self.areas.contains(a))
                .collect();
            if !areas.is_empty() {
                self.send_sync(peer, areas, ask.attempt + 1);
            }
            return;
        }
        self.sync_next(&ask.areas);
        for a in ask.areas {
            self.synced.remove(&(peer, a));
            if let Some(n) = self.sync_asked.get_mut(&a) {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// Store and announce a report; `true` if it is new.
    fn store_new(&mut self, report: &VerifiedReport, now: u64) -> Result<bool, NodeError> {
        let outcome = self.store.insert(report, now)?;
        Ok(self.announce(report, outcome, now))
    }

    fn publish_own(&mut self, report: VerifiedReport) -> Result<Published, NodeError> {
        let now = self.clock.now();
        let cell = report.report().cell();
        if let Some(token) = report.report().token() {
            // A token spends once, here too.
            if self
                .gate
                .seen_tokens
                .insert(token.id(), report.expires_at(), now)
                != Seen::New
            {
                return Err(NodeError::InvalidInput(
                    "this token was already spent on a live report".into(),
                ));
            }
        }
        self.store_new(&report, now)?;
        // On the stem if a peer that follows the area speaks it (else
        // published, or queued, as before).
        let published = self.stem.own(&self.swarm, &report) || self.try_publish(&report)?;
        // Not logged at any level: a line would prove on a seized phone that
        // the person made a report (and where).
        if !published {
            self.store.add_pending(&report)?;
        }
        Ok(Published {
            id: report.id(),
            cell,
            expires_at: report.expires_at(),
            published,
        })
    }

    /// Publish on the report's area topic: `Ok(true)` if sent to at least
    /// one peer, `Ok(false)` if nobody could take it yet.
    fn try_publish(&mut self, report: &VerifiedReport) -> Result<bool, NodeError> {
        let topic = area_topic(&report.report().cell().area());
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, report.bytes().to_vec())
        {
            Ok(_) => Ok(true),
            // Already sent (e.g. a retry racing a success): done.
            Err(PublishError::Duplicate) => Ok(true),
            Err(PublishError::NoPeersSubscribedToTopic) | Err(PublishError::AllQueuesFull(_)) => {
                Ok(false)
            }
            Err(e) => Err(NodeError::Transport(format!("publish failed: {e}"))),
        }
    }

    /// Publish the queued reports (of one topic, or all).
    fn retry_pending(&mut self, topic: Option<&TopicHash>) {
        let now = self.clock.now();
        let pending = match self.store.pending(now) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "could not read the pending queue");
                return;
            }
        };
        for report in pending {
            let cell = report.report().cell();
            if topic.is_some_and(|t| t.as_str() != cell.topic()) {
                continue;
            }
            match self.try_publish(&report) {
                Ok(true) => {
                    if let Err(e) = self.store.remove_pending(&report.id()) {
                        tracing::debug!(error = %e, "could not dequeue queued gossip");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "could not publish queued gossip"),
            }
        }
    }

    fn purge(&mut self) {
        let now = self.clock.now();
        self.gate.purge(now);
        match self.store.purge_expired(now) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired reports deleted"),
            Err(e) => tracing::error!(error = %e, "could not purge expired reports"),
        }
    }

    fn nearby(&self, lat: f64, lon: f64, radius_m: f64) -> Result<Nearby, NodeError> {
        let now = self.clock.now();
        let mut reports = Vec::new();
        for r in self.store.live(now)? {
            let d = distance_to_cell_m(lat, lon, &r.report().cell())?;
            if d <= radius_m {
                reports.push(to_nearby(&r, now, Some((lat, lon))));
            }
        }
        reports.sort_by(|a, b| b.observed_at.cmp(&a.observed_at).then(a.id.cmp(&b.id)));
        // Per cell: count, centre, tokened reports per token period.
        type PerCell = (usize, [f64; 2], BTreeMap<u64, u64>);
        let mut counts: BTreeMap<ronde_protocol::Cell, PerCell> = BTreeMap::new();
        for r in &reports {
            let c = counts
                .entry(r.cell)
                .or_insert((0, r.center, BTreeMap::new()));
            c.0 += 1;
            if r.tokened {
                *c.2.entry(ronde_protocol::token::period_of(r.observed_at))
                    .or_default() += 1;
            }
        }
        let mut cells: Vec<CellCount> = counts
            .into_iter()
            .map(|(cell, (reports, center, tokened))| CellCount {
                cell,
                center,
                reports,
                tokened: usize::try_from(tokened.values().sum::<u64>()).unwrap_or(usize::MAX),
                min_people: tokened
                    .values()
                    .map(|k| ronde_protocol::token::min_identities(*k))
                    .max()
                    .unwrap_or(0),
            })
            .collect();
        cells.sort_by(|a, b| b.reports.cmp(&a.reports).then(a.cell.cmp(&b.cell)));
        Ok(Nearby { reports, cells })
    }

    /// Publish the reports the stem says to fluff now (own reports whose
    /// fail-safe fired included), as [`Self::publish_own`] would; send the
    /// flags to fluff to the connected relays (with none, further along the
    /// stem; with no stem left either, into the outbox for the next relay).
    fn poll_stem(&mut self) {
        for item in self.stem.poll(&mut self.swarm) {
            let report = match item {
                StemItem::Report(report) => report,
                StemItem::Flag { id, bytes } => {
                    if !self.directories.fluff_flag(&mut self.swarm, id, &bytes)
                        && !self.stem.pass_on(&self.swarm, id, bytes.clone())
                    {
                        self.directories.keep_flag(id, &bytes);
                    }
                    continue;
                }
            };
            let now = self.clock.now();
            if let Err(e) = self.store_new(&report, now) {
                tracing::error!(error = %e, "could not store a report from the stem");
            }
            match self.try_publish(&report) {
                Ok(true) => {}
                Ok(false) => {
                    if let Err(e) = self.store.add_pending(&report) {
                        tracing::debug!(error = %e, "could not queue a report from the stem");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "could not fluff a report"),
            }
        }
    }

    /// The relays the configured cities' directories list now: the circle's
    /// mailbox and switch hosts, and the gossip hubs' bonus.
    fn use_directory_relays(&mut self) {
        if let Some(hosts) = self.directories.take_hosts() {
            self.circle.set_directory_hosts(&mut self.swarm, &hosts);
        }
        let hubs = self.directories.gossip_hubs();
        self.scores.set_directory_hubs(&mut self.swarm, hubs);
    }

    /// Keep a gossiped message for the batch judged after this burst.
    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
        self.stem
            .seen(&ronde_protocol::ReportId::of(&message.data), source);
        self.gossip_in.push(GossipIn {
            source,
            id,
            message,
        });
    }

    fn report_verdict(
        &mut self,
        source: &PeerId,
        id: &gossipsub::MessageId,
        verdict: MessageAcceptance,
    ) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, verdict);
    }

    fn refused(&mut self, source: &PeerId, rej: &Rejection) -> MessageAcceptance {
        tracing::debug!(peer = %source, reason = rej.reason(), "invalid report");
        *self.gossip_refused.entry(rej.reason()).or_default() += 1;
        verdict_of(rej)
    }

    /// Judge the gossip of the burst just handled: the cheap checks, the
    /// topic and the dedup now; the signatures of the rest in one batch,
    /// inline or off the loop.
    fn flush_gossip(&mut self) {
        if self.gossip_in.is_empty() {
            self.dispatch_verify();
            return;
        }
        let now = self.clock.now();
        let keys = self.directories.token_keys(now);
        for GossipIn {
            source,
            id,
            message,
        } in std::mem::take(&mut self.gossip_in)
        {
            let report = match precheck_with_keys(&message.data, now, &self.policy, &keys) {
                Ok(r) => r,
                Err(rej) => {
                    let verdict = self.refused(&source, &rej);
                    self.report_verdict(&source, &id, verdict);
                    continue;
                }
            };
            let cell = report.report().cell();
            if message.topic.as_str() != cell.topic() {
                tracing::debug!(peer = %source, area = %cell.area(), "report on the wrong area topic");
                *self.gossip_refused.entry("wrong_topic").or_default() += 1;
                self.report_verdict(&source, &id, MessageAcceptance::Reject);
                continue;
            }
            match self.store.contains(&report.id()) {
                Ok(true) => {
                    // Already stored, hence already verified.
                    self.report_verdict(&source, &id, MessageAcceptance::Ignore);
                    continue;
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "could not look a report up"),
            }
            if let Err(refused) =
                self.gate
                    .admit(source, report.report(), now, self.policy.min_difficulty)
            {
                *self.gossip_refused.entry(refused.reason()).or_default() += 1;
                let verdict = match refused {
                    Refused::Ignore(_) => MessageAcceptance::Ignore,
                    Refused::Penalise(_) => MessageAcceptance::Reject,
                };
                self.report_verdict(&source, &id, verdict);
                continue;
            }
            self.verify_queue.push(Awaiting { source, id, report });
        }
        self.dispatch_verify();
    }

    /// Verify the queued signatures: off the loop, in batches of up to
    /// [`MAX_VERIFY_BATCH`], while fewer than `max_verify_jobs` are being
    /// verified; inline if only a few wait and nothing is being verified.
    /// While batches are being verified, a few waiting reports wait for
    /// more (or for a batch to finish) rather than go out alone.
    fn dispatch_verify(&mut self) {
        while !self.verify_queue.is_empty() && self.verify_jobs.len() < self.max_verify_jobs {
            let busy = !self.verify_jobs.is_empty();
            if busy && self.verify_queue.len() < OFFLOAD_MIN {
                return;
            }
            let n = self.verify_queue.len().min(MAX_VERIFY_BATCH);
            let batch: Vec<Awaiting> = self.verify_queue.drain(..n).collect();
            if batch.len() >= OFFLOAD_MIN {
                self.verify_jobs.spawn_blocking(move || verify_batch(batch));
            } else {
                let done = verify_batch(batch);
                // This verifies what has queued meanwhile, if anything.
                self.finish_gossip(done);
                return;
            }
        }
    }

    /// Store the verified reports of a batch in one go, announce the new
    /// ones, report every verdict, and start on the next batch.
    fn finish_gossip(&mut self, done: VerifiedBatch) {
        // Keep the verifying threads busy while this batch is stored.
        if self.verify_queue.len() >= OFFLOAD_MIN {
            self.dispatch_verify();
        }
        let now = self.clock.now();
        let mut good = Vec::with_capacity(done.results.len());
        let mut senders = Vec::with_capacity(done.results.len());
        for ((source, id), res) in done.senders.into_iter().zip(done.results) {
            match res {
                Ok(report) => {
                    if let Some(token) = report.report().token() {
                        // Two spends of one token in the same batch, or a
                        // set full of live ids: the later one is ignored.
                        let reason =
                            match self
                                .gate
                                .seen_tokens
                                .insert(token.id(), report.expires_at(), now)
                            {
                                Seen::New => None,
                                Seen::Reused => Some("token_reused"),
                                Seen::Full => Some("token_set_full"),
                            };
                        if let Some(reason) = reason {
                            *self.gossip_refused.entry(reason).or_default() += 1;
                            self.report_verdict(&source, &id, MessageAcceptance::Ignore);
                            continue;
                        }
                    }
                    good.push(report);
                    senders.push((source, id));
                }
                Err(rej) => {
                    let verdict = self.refused(&source, &rej);
                    self.report_verdict(&source, &id, verdict);
                }
            }
        }
        let stored = self.store_batch(&good, now);
        for ((source, id), new) in senders.iter().zip(stored) {
            let verdict = match new {
                Some(true) => MessageAcceptance::Accept,
                Some(false) => MessageAcceptance::Ignore,
                // Our storage failing is not the sender's fault: the report
                // is valid, let it travel on.
                None => MessageAcceptance::Accept,
            };
            self.report_verdict(source, id, verdict);
        }
        self.dispatch_verify();
    }

    /// Store verified reports in one batch and announce the new ones. Per
    /// report: `Some(true)` new, `Some(false)` not kept (duplicate, expired,
    /// no room), `None` if the store failed.
    fn store_batch(&mut self, reports: &[VerifiedReport], now: u64) -> Vec<Option<bool>> {
        if reports.is_empty() {
            return Vec::new();
        }
        let outcomes = match self.store.insert_many(reports, now) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, reports = reports.len(), "could not store reports");
                return vec![None; reports.len()];
            }
        };
        reports
            .iter()
            .zip(outcomes)
            .map(|(report, outcome)| Some(self.announce(report, outcome, now)))
            .collect()
    }

    /// Announce a report the store just took; `true` if it is new.
    fn announce(&mut self, report: &VerifiedReport, outcome: Inserted, now: u64) -> bool {
        match outcome {
            Inserted::Stored { evicted } => {
                if let Some(old) = evicted {
                    tracing::debug!(%old, "store full: evicted a report of the most crowded cell");
                }
                tracing::debug!(area = %report.report().cell().area(), "report stored");
                self.gate.record_stored(report.report(), now);
                let ev = to_nearby(report, now, self.location);
                // No receiver is fine.
                let _ = self.events.send(NodeEvent::Report(ev));
                true
            }
            Inserted::Duplicate | Inserted::Expired => false,
            Inserted::NoRoom => {
                tracing::debug!("store full of longer-lived reports: not keeping a report");
                false
            }
        }
    }

    /// Store the reports of a sync response, in order, up to the first
    /// that the peer should not have sent (another area, or invalid other
    /// than by time): that one and the rest are dropped. The signatures are
    /// verified in one batch, inline (a response holds at most
    /// [`MAX_SYNC_REPORTS`]); reports already stored are not verified again.
    fn on_sync_response(&mut self, peer: PeerId, areas: &[Area], res: SyncResponse) {
        let now = self.clock.now();
        let keys = self.directories.token_keys(now);
        let mut checked = Vec::new();
        self.sync_reports_received += res.0.len().min(MAX_SYNC_REPORTS) as u64;
        for bytes in res.0.iter().take(MAX_SYNC_REPORTS) {
            match precheck_with_keys(bytes, now, &self.policy, &keys) {
                Ok(r) if areas.contains(&r.report().cell().area()) => {
                    if !matches!(self.store.contains(&r.id()), Ok(true)) {
                        checked.push(r);
                    }
                }
                Ok(_) => {
                    tracing::debug!(%peer, "sync response with a report from another area: dropped");
                    break;
                }
                Err(rej) if rej.is_misbehaviour() => {
                    tracing::debug!(%peer, reason = rej.reason(), "sync response with an invalid report: dropped");
                    break;
                }
                Err(_) => {}
            }
        }
        let mut good = Vec::with_capacity(checked.len());
        for res in verify_signatures(checked, &mut rand::thread_rng()) {
            match res {
                Ok(r) => good.push(r),
                Err(rej) => {
                    tracing::debug!(%peer, reason = rej.reason(), "sync response with an invalid report: dropped");
                    break;
                }
            }
        }
        let new = self
            .store_batch(&good, now)
            .into_iter()
            .filter(|n| *n == Some(true))
            .count();
        tracing::debug!(%peer, new, "sync response");
    }

    fn on_sync_request(&mut self, req: &SyncRequest) -> SyncResponse {
        let now = self.clock.now();
        let mut reports = Vec::new();
        for area in &req.areas {
            match self.store.live_in_area(area, now) {
                // Those the asker holds are left out (`/ronde/sync/3`).
                Ok(r) => reports.extend(r.into_iter().filter(|r| !req.holds(&r.id()))),
                Err(e) => {
                    tracing::error!(error = %e, "could not read reports for a sync request");
                }
            }
        }
        // Keep those that stay visible the longest if over the limit.
        reports.sort_by_key(|r| std::cmp::Reverse(r.expires_at()));
        reports.truncate(MAX_SYNC_REPORTS);
        SyncResponse(reports.into_iter().map(|r| r.bytes().to_vec()).collect())
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(ev)) => self.on_gossipsub(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Circle(ev)) => {
                self.circle.on_circle_event(&mut self.swarm, ev)
            }
            // Other nodes' requests go to the host side, the answers to this
            // node's own requests to the client side.
            SwarmEvent::Behaviour(BehaviourEvent::Mailbox(request_response::Event::Message {
                peer,
                connection_id,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
            })) => {
                if let Some(tap) = &self.mailbox_tap {
                    tap(peer, connection_id, &request);
                }
                HostService::answer(
                    self.mailbox_host.as_mut(),
                    &mut self.swarm,
                    (peer, self.moved.ip_of_connection(&peer, connection_id)),
                    request,
                    channel,
                )
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mailbox(
                request_response::Event::InboundFailure { peer, error, .. },
            )) => tracing::debug!(%peer, %error, "an incoming mailbox request failed"),
            // This node sends no mailbox request over the main swarm (the
            // circle's go over its own connections, `circle::client::net`).
            SwarmEvent::Behaviour(BehaviourEvent::Mailbox(ev)) => {
                tracing::trace!(event = ?ev, "mailbox event")
            }
            SwarmEvent::Behaviour(BehaviourEvent::Directory(ev)) => {
                self.directories.on_directory_event(&mut self.swarm, ev)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Tokens(ev)) => {
                self.tokens.on_event(&mut self.swarm, ev)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Flags(ev)) => {
                self.directories.on_flag_event(&mut self.swarm, ev)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Stem(ev)) => {
                let now = self.clock.now();
                let keys = self.directories.token_keys(now);
                let judge = Judge {
                    store: self.store.as_ref(),
                    policy: &self.policy,
                    keys: &keys,
                    now,
                    gate: &mut self.gate,
                };
                self.stem.on_event(&mut self.swarm, judge, ev);
                for (peer, penalty) in self.stem.take_penalties() {
                    self.scores.penalise(&mut self.swarm, peer, penalty);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(libp2p::ping::Event {
                peer,
                result: Ok(rtt),
                ..
            })) => self.scores.on_rtt(&mut self.swarm, peer, rtt),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if info.protocols.contains(&behaviour::KAD_PROTOCOL) {
                    for addr in info.listen_addrs.iter().take(8) {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, addr.clone());
                    }
                }
                let bootstrap = self.bootstrap_peers.get(&peer_id).cloned();
                self.reach.on_identify(
                    &mut self.swarm,
                    peer_id,
                    &info.protocols,
                    bootstrap.as_ref(),
                );
                self.stem.on_identify(peer_id, &info.protocols);
                self.directories
                    .on_identify(&mut self.swarm, peer_id, &info);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    if !self.swarm.is_connected(&peer) {
                        tracing::debug!(%peer, "peer found on the local network");
                        let _ = self.swarm.dial(addr.with_p2p(peer).unwrap_or_else(|a| a));
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(ev)) => {
                self.reach.on_autonat(&mut self.swarm, &ev)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(ev)) => self.reach.on_relay_client(&ev),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(ev)) => reachability::on_dcutr(&ev),
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(ev)) => {
                reachability::on_relay_server(&ev)
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                self.reach.on_confirmed(&mut self.swarm, address)
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                self.reach.on_expired(&mut self.swarm, &address)
            }
            SwarmEvent::ListenerClosed { listener_id, .. } => {
                self.reach.on_listener_closed(&mut self.swarm, listener_id)
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.reach.on_address_gone(&mut self.swarm, &address)
            }
            SwarmEvent::Behaviour(other) => tracing::trace!(event = ?other, "behaviour event"),
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                let relayed = address.iter().any(|p| matches!(p, Protocol::P2pCircuit));
                if self.listen_is_external && !relayed {
                    self.swarm.add_external_address(address);
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                tracing::debug!(peer = %peer_id, connections = num_established.get(), "connected");
                self.moved
                    .on_established(&mut self.swarm, peer_id, connection_id, &endpoint);
                if self.background_refuses(peer_id) {
                    return;
                }
                if num_established.get() == 1 {
                    self.scores.on_connected(&mut self.swarm, peer_id);
                    self.circle.on_connected(&mut self.swarm, peer_id);
                    self.directories.on_connected(&mut self.swarm, peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.moved.on_closed(peer_id, connection_id);
                tracing::debug!(peer = %peer_id, connections = num_established, "disconnected");
                if num_established == 0 {
                    self.synced.retain(|(p, _)| *p != peer_id);
                    self.directories.on_disconnected(&peer_id);
                    self.stem.on_disconnected(&peer_id);
                    self.scores.on_disconnected(&peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                let peer = peer_id.map(|p| p.to_string()).unwrap_or_default();
                match error {
                    DialError::DialPeerConditionFalse(_) => {}
                    e => tracing::debug!(%peer, error = %e, "dial failed"),
                }
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(error = %error, "listener error");
            }
            other => tracing::trace!(event = ?other, "swarm event"),
        }
    }

    fn on_gossipsub(&mut self, ev: gossipsub::Event) {
        match ev {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => self.on_gossip(propagation_source, message_id, message),
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::debug!(peer = %peer_id, "peer follows an area");
                self.retry_pending(Some(&topic));
                if let Some(area) = Area::from_topic(topic.as_str()) {
                    self.maybe_sync(peer_id, area);
                }
            }
            other => tracing::trace!(event = ?other, "gossipsub event"),
        }
    }

    fn on_sync(&mut self, ev: request_response::Event<SyncRequest, SyncResponse>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let res = self.on_sync_request(&request);
                    if self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, res)
                        .is_err()
                    {
                        tracing::debug!(%peer, "sync requester went away");
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(ask) = self.sync_inflight.remove(&request_id) {
                        self.on_sync_response(peer, &ask.areas, response);
                        self.sync_next(&ask.areas);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "sync request failed");
                if let Some(ask) = self.sync_inflight.remove(&request_id) {
                    self.sync_failed(peer, ask);
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "sync request from a peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}

/// Gossipsub verdict for a protocol rejection.
fn verdict_of(rej: &Rejection) -> MessageAcceptance {
    if rej.is_misbehaviour() {
        MessageAcceptance::Reject
    } else {
        MessageAcceptance::Ignore
    }
}
