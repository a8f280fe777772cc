//! The devices of a run: real Ronde nodes, and bare gossipsub peers (the
//! baseline, the droppers and the flooders), behind one [`Peer`] handle.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::swarm::SwarmEvent;
use libp2p::Multiaddr;
use ronde_node::circle::{CircleConfig, InboxNotice};
use ronde_node::config::{FirstHopTap, MAX_PEER_AREAS};
use ronde_node::{GossipTuning, ManualClock, Node, NodeConfig, NodeEvent};
use ronde_protocol::circle::MessageId as CircleMessageId;
use ronde_protocol::{Area, Category, ReportId};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use crate::net::{addr_of, SimNet, Slot};
use crate::SimError;

/// The run's clock: model time is wall time since the start divided by the
/// dilation. The start is set once the devices are up
/// ([`Clockwork::start_now`]); clones share it.
#[derive(Debug, Clone)]
pub struct Clockwork {
    base: Instant,
    start_ns: Arc<AtomicU64>,
    /// Wall seconds per model second.
    pub dilation: f64,
}

impl Clockwork {
    /// A clock whose model time 0 is now (until [`Clockwork::start_now`]).
    pub fn new(dilation: f64) -> Self {
        Clockwork {
            base: Instant::now(),
            start_ns: Arc::new(AtomicU64::new(0)),
            dilation,
        }
    }

    /// Make model time 0 now.
    pub fn start_now(&self) {
        let ns = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.start_ns.store(ns, Ordering::SeqCst);
    }

    fn start(&self) -> Instant {
        self.base + Duration::from_nanos(self.start_ns.load(Ordering::SeqCst))
    }

    /// Model seconds now.
    pub fn now(&self) -> f64 {
        self.model(Instant::now())
    }

    /// Model seconds at a wall-clock instant.
    pub fn model(&self, at: Instant) -> f64 {
        let start = self.start();
        let d = if at >= start {
            (at - start).as_secs_f64()
        } else {
            -(start - at).as_secs_f64()
        };
        d / self.dilation
    }

    /// The wall-clock instant of a model time.
    pub fn wall_at(&self, model_secs: f64) -> Instant {
        self.start() + Duration::from_secs_f64(model_secs.max(0.0) * self.dilation)
    }

    /// A model duration on the wall clock.
    pub fn wall(&self, model: Duration) -> Duration {
        model.mul_f64(self.dilation)
    }
}

/// Everything observed during a run, shared by every device.
#[derive(Default)]
pub struct Recorder {
    inner: Mutex<RecInner>,
}

#[derive(Default)]
struct RecInner {
    deliveries: Vec<(ReportId, Slot, f64)>,
    lagged: u64,
}

impl Recorder {
    /// `slot` stored (or, for the baseline, received) report `id` at model
    /// time `t`.
    pub fn deliver(&self, id: ReportId, slot: Slot, t: f64) {
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        r.deliveries.push((id, slot, t));
    }

    /// Events a slow observer missed (should stay 0).
    pub fn lagged(&self, n: u64) {
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        r.lagged += n;
    }

    /// Every delivery so far, and the events missed.
    pub fn take(&self) -> (Vec<(ReportId, Slot, f64)>, u64) {
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut r.deliveries), r.lagged)
    }

    /// Number of deliveries so far.
    pub fn count(&self) -> usize {
        let r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        r.deliveries.len()
    }
}

/// How a device is set up.
pub struct PeerSetup<'a> {
    /// The network.
    pub net: &'a SimNet,
    /// Which device.
    pub slot: Slot,
    /// Its port for this life.
    pub port: u64,
    /// The run's clock.
    pub clockwork: Clockwork,
    /// Gossipsub heartbeat, model time.
    pub heartbeat: Duration,
    /// Where deliveries go.
    pub recorder: Arc<Recorder>,
    /// Store bound and flood defences of Ronde nodes ([`crate::spam`]).
    pub spam: crate::spam::SpamConfig,
    /// The mesh of this overlay (Ronde's, or the baseline's), used by the
    /// Ronde nodes and the bare peers (baseline, flooders, droppers) alike.
    pub gossip: GossipTuning,
    /// Seed of a Ronde node's stem choices (`NodeConfig::stem_seed`), drawn
    /// from the run's seed, so that a run replays with the same stems.
    pub stem_seed: u64,
    /// The node timers this run overrides.
    pub timers: NodeTimers,
    /// The gossip hubs a Ronde node knows (the run's relays, as a city's
    /// app ships them), or none.
    pub gossip_hubs: Vec<libp2p::PeerId>,
}

/// Node timers a run can override, model time; `None` keeps the node's
/// default (dilated like every production timer, except Kademlia's
/// bootstrap, which is libp2p's own).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct NodeTimers {
    /// Kademlia's periodic bootstrap (zero: none after the one at start).
    pub kad_bootstrap: Option<Duration>,
    /// The ping of every connection (`NodeConfig::ping_interval`).
    pub ping: Option<Duration>,
    /// The foreground mailbox poll (`CircleConfig::mailbox_poll_interval`).
    pub mailbox_poll: Option<Duration>,
}

/// What a Ronde node's trusted circle showed, as the simulation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircleSeen {
    /// An SOS alert was shown (`NodeEvent::Alert`); `item` is its inbox
    /// item, to acknowledge.
    Sos {
        /// The SOS.
        sos: CircleMessageId,
        /// Its inbox item.
        item: u64,
    },
    /// A contact acknowledged this node's SOS (or overdue alert).
    Acked {
        /// What they acknowledged.
        of: CircleMessageId,
    },
}

/// Where nodes send what their circle showed: (slot, what, model time).
pub type CircleTx = mpsc::UnboundedSender<(Slot, CircleSeen, f64)>;

/// The trusted circle of a Ronde node in a run.
#[derive(Debug, Clone, Default)]
pub struct CircleSetup {
    /// Host mailboxes and dead-man's switches (the city's relays).
    pub mailbox_host: bool,
    /// Mailbox hosts this node uses for its own circle, `/p2p/` suffixed
    /// (a city's app would ship its relays).
    pub mailbox_peers: Vec<Multiaddr>,
    /// Where SOS alerts and acks are reported.
    pub seen: Option<CircleTx>,
    /// The background's safety poll (model time; `None`: the node's
    /// default).
    pub background_poll: Option<Duration>,
}

/// What a Ronde node of a run does about the first hop of reports.
#[derive(Clone)]
pub struct FirstHopSetup {
    /// Own reports take the stem (`/ronde/stem/1`), with its timers dilated.
    pub stem: bool,
    /// Where this node logs the first peer of each report (spies, relays).
    pub tap: Option<FirstHopTap>,
}

impl Default for FirstHopSetup {
    fn default() -> Self {
        FirstHopSetup {
            stem: true,
            tap: None,
        }
    }
}

/// The circle's production timers, dilated.
pub fn circle_config(cw: &Clockwork) -> CircleConfig {
    let d = CircleConfig::default();
    CircleConfig {
        tick: cw.wall(d.tick),
        mailbox_poll_interval: cw.wall(d.mailbox_poll_interval),
        background_poll_interval: cw.wall(d.background_poll_interval),
        retry_interval: cw.wall(d.retry_interval),
        request_timeout: cw.wall(d.request_timeout),
        // The run's push gateway is on loopback (`crate::push`).
        mailbox_limits: ronde_node::config::MailboxLimits {
            push: ronde_node::circle::host::PushSettings {
                allow_local: true,
                min_gap_secs: cw
                    .wall(Duration::from_secs(d.mailbox_limits.push.min_gap_secs))
                    .as_secs(),
                ..d.mailbox_limits.push
            },
            ..d.mailbox_limits
        },
        ..d
    }
}

/// A running device.
pub enum Peer {
    /// A real Ronde node.
    Ronde(Node),
    /// A bare gossipsub peer.
    Bare(BareNode),
}

/// Start a Ronde node: the sim transport, a shared manual clock, the
/// simulation's difficulty, timers dilated.
pub async fn start_ronde(
    setup: &PeerSetup<'_>,
    dir: &Path,
    clock: &ManualClock,
    difficulty: u8,
    location: Option<(f64, f64)>,
    relay_areas: Option<&[Area]>,
) -> Result<Peer, SimError> {
    start_ronde_with(
        setup,
        dir,
        clock,
        difficulty,
        location,
        relay_areas,
        CircleSetup::default(),
        FirstHopSetup::default(),
    )
    .await
}

/// [`start_ronde`] with a trusted circle (mailbox hosting, the hosts to
/// use, and where to report SOS alerts and acks) and a first-hop setup.
#[allow(clippy::too_many_arguments)]
pub async fn start_ronde_with(
    setup: &PeerSetup<'_>,
    dir: &Path,
    clock: &ManualClock,
    difficulty: u8,
    location: Option<(f64, f64)>,
    relay_areas: Option<&[Area]>,
    circle: CircleSetup,
    first_hop: FirstHopSetup,
) -> Result<Peer, SimError> {
    let cw = setup.clockwork.clone();
    let mut c = NodeConfig::for_tests(dir);
    c.listen = vec![addr_of(setup.port)];
    c.memory_transport = false;
    c.sim_transport = Some(setup.net.factory(setup.slot));
    c.clock = Arc::new(clock.clone());
    c.location = location;
    c.difficulty = difficulty;
    c.policy.min_difficulty = difficulty;
    c.heartbeat = cw.wall(setup.heartbeat);
    c.gossip = setup.gossip;
    c.gossip.time_unit = cw.wall(Duration::from_secs(1));
    c.gossip_hubs = setup.gossip_hubs.clone();
    // The run sets each device's mesh itself (`SimConfig::hubs`).
    c.gossip_beside_hubs = None;
    // Production timers, dilated.
    c.ping_interval = cw.wall(setup.timers.ping.unwrap_or(c.ping_interval));
    if let Some(every) = setup.timers.kad_bootstrap {
        c.kad_bootstrap_interval = (!every.is_zero()).then(|| cw.wall(every));
    }
    c.purge_interval = cw.wall(Duration::from_secs(30));
    c.pending_retry_interval = cw.wall(Duration::from_secs(10));
    c.idle_timeout = cw.wall(Duration::from_secs(120));
    // No background flush thread per store: thousands of them in one
    // process made crossbeam-epoch's global advance walk thousands of
    // threads at every wake-up (a fifth of the CPU at 2 000 nodes). The
    // node still flushes when it stops.
    c.store_flush_every = None;
    c.circle = circle_config(&cw);
    if let Some(every) = setup.timers.mailbox_poll {
        c.circle.mailbox_poll_interval = cw.wall(every);
    }
    if let Some(every) = circle.background_poll {
        c.circle.background_poll_interval = cw.wall(every);
    }
    c.mailbox_host = circle.mailbox_host;
    c.mailbox_peers = circle.mailbox_peers;
    c.stem = first_hop
        .stem
        .then(|| ronde_protocol::stem::StemParams::default().scaled(cw.dilation));
    c.stem_seed = Some(setup.stem_seed);
    c.first_hop_tap = first_hop.tap;
    setup.spam.apply(&mut c, relay_areas.is_none());
    if relay_areas.is_some() {
        c.max_areas = MAX_PEER_AREAS;
        c.max_connections = 4096;
    }
    let node = Node::start(c).await?;
    if let Some(areas) = relay_areas {
        node.set_areas(areas.to_vec()).await?;
    }
    // Every stored report (own or received) is a delivery; SOS alerts and
    // acks go to the circle's observer.
    let mut events = node.events();
    let recorder = setup.recorder.clone();
    let slot = setup.slot;
    let seen = circle.seen;
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(NodeEvent::Report(r)) => recorder.deliver(r.id, slot, cw.now()),
                Ok(NodeEvent::Alert(item)) => {
                    if let (InboxNotice::Sos { sos, .. }, Some(tx)) = (&item.notice, &seen) {
                        let what = CircleSeen::Sos {
                            sos: *sos,
                            item: item.id,
                        };
                        let _ = tx.send((slot, what, cw.now()));
                    }
                }
                Ok(NodeEvent::Circle(item)) => {
                    if let (InboxNotice::Acked { of }, Some(tx)) = (&item.notice, &seen) {
                        let _ = tx.send((slot, CircleSeen::Acked { of: *of }, cw.now()));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => recorder.lagged(n),
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    Ok(Peer::Ronde(node))
}

impl Peer {
    /// Dial a device.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), SimError> {
        match self {
            Peer::Ronde(n) => Ok(n.dial(addr).await?),
            Peer::Bare(b) => b.send(BareCmd::Dial(addr)),
        }
    }

    /// Move (follow the areas around a point).
    pub async fn set_location(&self, at: (f64, f64)) -> Result<(), SimError> {
        match self {
            Peer::Ronde(n) => n.set_location(at.0, at.1).await.map(|_| ())?,
            Peer::Bare(b) => {
                let areas = ronde_protocol::topics_around(at.0, at.1)?;
                b.send(BareCmd::Areas(areas))?;
            }
        }
        Ok(())
    }

    /// Make a report: a Ronde node seals its own; a bare peer publishes the
    /// planned bytes. Returns the report id.
    pub async fn report(
        &self,
        category: Category,
        at: (f64, f64),
        bytes: &[u8],
        area: Area,
    ) -> Result<ReportId, SimError> {
        match self {
            Peer::Ronde(n) => Ok(n.report(category, at.0, at.1, None).await?.id),
            Peer::Bare(b) => {
                let (tx, rx) = oneshot::channel();
                b.send(BareCmd::Publish(area.topic(), bytes.to_vec(), Some(tx)))?;
                rx.await.map_err(|_| SimError::Stopped)?;
                Ok(ReportId::of(bytes))
            }
        }
    }

    /// Stop the device (its connections close).
    pub async fn shutdown(self) {
        match self {
            Peer::Ronde(n) => {
                if let Err(e) = n.shutdown().await {
                    tracing::debug!(error = %e, "node shutdown");
                }
            }
            Peer::Bare(b) => b.shutdown().await,
        }
    }

    /// The Ronde node, if it is one.
    pub fn node(&self) -> Option<&Node> {
        match self {
            Peer::Ronde(n) => Some(n),
            Peer::Bare(_) => None,
        }
    }
}

/// What a bare gossipsub peer does with messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareMode {
    /// The baseline: forward at once, no validation; every first reception
    /// is a delivery.
    Baseline,
    /// Joins meshes, never validates, so never forwards anything.
    Dropper,
    /// Publishes what it is told to (floods); forwards nothing.
    Flooder,
}

/// A command to a bare peer.
pub enum BareCmd {
    /// Dial.
    Dial(Multiaddr),
    /// Follow exactly these areas.
    Areas(Vec<Area>),
    /// Publish bytes on a topic; the reply says it was handed to gossipsub.
    Publish(String, Vec<u8>, Option<oneshot::Sender<()>>),
    /// Stop.
    Shutdown(oneshot::Sender<()>),
}

/// A bare gossipsub peer: the same libp2p gossipsub, Noise and Yamux over
/// the same transport, the same mesh parameters as Ronde's unless told
/// otherwise, anonymous messages with the
/// report id as message id, and nothing else.
pub struct BareNode {
    tx: mpsc::UnboundedSender<BareCmd>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The baseline's gossipsub configuration: libp2p's defaults but for what
/// the wire format needs (anonymous messages, the report id as message id)
/// and the mesh `tuning` (by default the same as Ronde's, so that the
/// ratio measures Ronde's own overhead rather than a different mesh).
pub fn bare_gossipsub_config(
    heartbeat_wall: Duration,
    validate: bool,
    tuning: &GossipTuning,
) -> Result<gossipsub::Config, BoxError> {
    let mut b = tuning.builder(heartbeat_wall);
    b.duplicate_cache_time(tuning.time(60))
        .validation_mode(ValidationMode::Anonymous)
        .message_id_fn(ronde_node::behaviour::message_id);
    if validate {
        b.validate_messages();
    }
    Ok(b.build()?)
}

impl BareNode {
    /// Start a bare peer following `areas`.
    pub fn start(
        setup: &PeerSetup<'_>,
        mode: BareMode,
        areas: &[Area],
    ) -> Result<BareNode, SimError> {
        let transport = setup.net.factory(setup.slot);
        let hb = setup.clockwork.wall(setup.heartbeat);
        let idle = setup.clockwork.wall(Duration::from_secs(120));
        let mut tuning = setup.gossip;
        tuning.time_unit = setup.clockwork.wall(Duration::from_secs(1));
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_other_transport(|key| transport.upgraded(key))
            .map_err(|e| SimError::Libp2p(e.to_string()))?
            .with_behaviour(|_| -> Result<_, BoxError> {
                let config = bare_gossipsub_config(hb, mode != BareMode::Baseline, &tuning)?;
                Ok(gossipsub::Behaviour::<gossipsub::IdentityTransform>::new(
                    MessageAuthenticity::Anonymous,
                    config,
                )?)
            })
            .map_err(|e| SimError::Libp2p(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build();
        swarm
            .listen_on(addr_of(setup.port))
            .map_err(|e| SimError::Libp2p(e.to_string()))?;
        let mut followed: Vec<Area> = Vec::new();
        let subscribe = |swarm: &mut libp2p::Swarm<gossipsub::Behaviour>,
                         followed: &mut Vec<Area>,
                         areas: &[Area]| {
            for a in followed.iter().filter(|a| !areas.contains(a)) {
                swarm
                    .behaviour_mut()
                    .unsubscribe(&IdentTopic::new(a.topic()));
            }
            for a in areas.iter().filter(|a| !followed.contains(a)) {
                if let Err(e) = swarm.behaviour_mut().subscribe(&IdentTopic::new(a.topic())) {
                    tracing::debug!(error = %e, "bare subscribe");
                }
            }
            *followed = areas.to_vec();
        };
        subscribe(&mut swarm, &mut followed, areas);
        let (tx, mut rx) = mpsc::unbounded_channel::<BareCmd>();
        let recorder = setup.recorder.clone();
        let slot = setup.slot;
        let cw = setup.clockwork.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    cmd = rx.recv() => match cmd {
                        Some(BareCmd::Dial(a)) => {
                            if let Err(e) = swarm.dial(a) {
                                tracing::debug!(error = %e, "bare dial");
                            }
                        }
                        Some(BareCmd::Areas(a)) => subscribe(&mut swarm, &mut followed, &a),
                        Some(BareCmd::Publish(topic, data, reply)) => {
                            if mode == BareMode::Baseline {
                                recorder.deliver(ReportId::of(&data), slot, cw.now());
                            }
                            if let Err(e) = swarm.behaviour_mut().publish(IdentTopic::new(topic), data) {
                                tracing::debug!(error = %e, "bare publish");
                            }
                            if let Some(r) = reply {
                                let _ = r.send(());
                            }
                        }
                        Some(BareCmd::Shutdown(reply)) => {
                            drop(swarm);
                            let _ = reply.send(());
                            break;
                        }
                        None => break,
                    },
                    ev = swarm.select_next_some() => {
                        if let SwarmEvent::Behaviour(gossipsub::Event::Message { message_id, .. }) = ev {
                            if mode == BareMode::Baseline {
                                if let Ok(id) = <[u8; 32]>::try_from(message_id.0.as_slice()) {
                                    recorder.deliver(ReportId(id), slot, cw.now());
                                }
                            }
                        }
                    }
                }
            }
        });
        Ok(BareNode { tx })
    }

    fn send(&self, cmd: BareCmd) -> Result<(), SimError> {
        self.tx.send(cmd).map_err(|_| SimError::Stopped)
    }

    /// Dial a device.
    pub fn dial(&self, addr: Multiaddr) -> Result<(), SimError> {
        self.send(BareCmd::Dial(addr))
    }

    /// Publish bytes on an area's topic (floods).
    pub fn publish(&self, area: Area, bytes: Vec<u8>) -> Result<(), SimError> {
        self.send(BareCmd::Publish(area.topic(), bytes, None))
    }

    async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(BareCmd::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}
