//! The driver: set up a city of devices on the emulated network, replay the
//! plan on the (dilated) clock, check expiry, tear down, and compute the
//! figures of one overlay.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use indicatif::ProgressBar;
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use rand::seq::SliceRandom;
use rand::RngCore;
use ronde_node::{GossipTuning, ManualClock, Node};
use ronde_protocol::circle::{ContactState, MessageId};
use ronde_protocol::{topics_around, ReportId};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::city::City;
use crate::meter::ProtocolBytes;
use crate::metrics::{
    cdf_points, dijkstra, first_deliveries, BackgroundFigures, Pcts, SosFigures, SosRecord,
};
use crate::monitor::{rss_bytes, Monitor, Saturation};
use crate::net::{addr_of, FrameClassifier, LinkModel, SimNet, Slot, NOISE_FRAMING};
use crate::peers::{
    start_ronde_with, BareMode, BareNode, CircleSeen, CircleSetup, CircleTx, Clockwork,
    FirstHopSetup, Peer, PeerSetup, Recorder,
};
use crate::plan::{Event, Plan, Role, SimConfig, T0};
use crate::privacy::{choose_spies, FirstHops, Privacy};
use crate::push::{PushGateway, PUSH_BYTES, PUSH_LATENCY};
use crate::SimError;

/// Which implementation runs on the devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlay {
    /// Real Ronde nodes.
    Ronde,
    /// Bare gossipsub peers (no validation, no store, no other protocol).
    Baseline,
}

impl Overlay {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Overlay::Ronde => "ronde",
            Overlay::Baseline => "baseline",
        }
    }
}

/// Bytes per hour (model time), megabytes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Traffic {
    /// Sent, MB per hour online.
    pub sent_mb_per_hour: f64,
    /// Received, MB per hour online.
    pub recv_mb_per_hour: f64,
    /// Both, MB per hour online.
    pub total_mb_per_hour: f64,
}

/// One protocol's share of a role's traffic.
#[derive(Debug, Clone, Serialize)]
pub struct ProtocolTraffic {
    /// Its multistream-select name, [`crate::meter::UNKNOWN`], or one of
    /// the three parts of what no substream carries (`(noise framing)`,
    /// `(yamux bare headers)`, `(connections, rest)`: see
    /// [`protocol_traffic`]).
    pub protocol: String,
    /// Sent and received, MB per hour online.
    pub mb_per_hour: f64,
    /// Substreams opened per hour online (either way); for `(yamux bare
    /// headers)`, those frames per hour.
    pub streams_per_hour: f64,
}

/// One slot's bytes per protocol and Noise frames (all, bare Yamux).
type MeterSnapshot = (BTreeMap<String, ProtocolBytes>, (u64, u64));

/// Delivery in one slice of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Slice {
    /// Start of the slice (model seconds).
    pub t: f64,
    /// Expected deliveries of the reports published in it.
    pub expected: u64,
    /// Those delivered within the window.
    pub delivered: u64,
}

/// The figures of one overlay.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Which overlay.
    pub overlay: Overlay,
    /// Devices started over the run (every life counts).
    pub starts: u64,
    /// Devices that failed to start or to act.
    pub failures: u64,
    /// Reports published.
    pub reports: usize,
    /// Expected (report, receiver) pairs.
    pub expected: u64,
    /// Delivered within the window.
    pub delivered: u64,
    /// delivered / expected.
    pub delivery_ratio: f64,
    /// Misses by receivers that had come online less than 5 s before the
    /// report.
    pub missed_by_fresh_joiners: u64,
    /// Propagation latency, model ms.
    pub latency_ms: Pcts,
    /// Lower bound of the same deliveries, model ms.
    pub lower_bound_ms: Pcts,
    /// Per-delivery latency / lower bound.
    pub ratio_to_lower_bound: Pcts,
    /// Gossip transmissions of reports by honest devices.
    pub transmissions: u64,
    /// First receptions by devices online at publication.
    pub first_receptions: u64,
    /// (transmissions − first receptions) / first receptions.
    pub duplicates_per_delivery: f64,
    /// Phones' traffic.
    pub phone_traffic: Traffic,
    /// Relays' traffic.
    pub relay_traffic: Traffic,
    /// Phones' traffic by protocol, largest first, with the connections'
    /// own bytes in three parts ([`crate::meter`], [`ProtocolTraffic`]).
    pub phone_protocols: Vec<ProtocolTraffic>,
    /// Resident memory per device after start-up and warm-up, MB.
    pub memory_per_node_mb: f64,
    /// Resident memory per device at the end, MB.
    pub memory_per_node_end_mb: f64,
    /// Mean number of links per online honest device (end of warm-up).
    pub mean_degree: f64,
    /// Node events lost by a slow observer.
    pub lagged_events: u64,
    /// Reports visible on all nodes just before the expiry check.
    pub visible_before_expiry: Option<u64>,
    /// Reports visible after every report expired: must be 0.
    pub visible_after_expiry: Option<u64>,
    /// Forged or invalid flood messages stored anywhere: must be 0.
    pub forged_accepted: Option<u64>,
    /// Expired or future flood messages stored anywhere: must be 0.
    pub stale_accepted: Option<u64>,
    /// SOS between contacts (Ronde only: bare gossipsub has no circle).
    pub sos: Option<SosFigures>,
    /// Phones in the background (Ronde only, with `--background`).
    pub background: Option<BackgroundFigures>,
    /// Bytes the flooders sent (shows the attack reached the network).
    pub flooder_bytes_sent: u64,
    /// Whether the CPU distorted the figures.
    pub saturation: Saturation,
    /// Delivery over time.
    pub timeline: Vec<Slice>,
    /// Points of the latency CDF (ms, fraction).
    pub latency_cdf: Vec<(f64, f64)>,
    /// Points of the lower bound's CDF.
    pub lower_bound_cdf: Vec<(f64, f64)>,
    /// Wall-clock seconds of the whole overlay run (set-up included).
    pub wall_secs: f64,
    /// Wall-clock seconds of the set-up.
    pub setup_secs: f64,
    /// Who can tell who wrote a report (Ronde only, [`crate::privacy`]).
    pub privacy: Option<Privacy>,
    /// Floods of valid reports, when there were Sybils.
    pub spam: Option<crate::spam::SpamFigures>,
}

struct PubRecord {
    plan_idx: usize,
    id: ReportId,
    /// Lower bound to each slot, model seconds.
    lb: Vec<f64>,
}

#[derive(Default)]
struct SlotState {
    peer: Option<Peer>,
}

/// What the driver saw of one planned SOS (model seconds).
#[derive(Debug, Clone, Default)]
struct SosLive {
    befriended_at: Option<f64>,
    sent_at: Option<f64>,
    id: Option<MessageId>,
    contact_offline: bool,
}

/// The note of every simulated SOS.
const SOS_NOTE: &str = "simulated SOS";

struct World {
    cfg: SimConfig,
    plan: Arc<Plan>,
    overlay: Overlay,
    net: SimNet,
    cw: Clockwork,
    clock: ManualClock,
    recorder: Arc<Recorder>,
    monitor: Arc<Monitor>,
    slots: Vec<tokio::sync::Mutex<SlotState>>,
    /// Current port of each slot, 0 while offline.
    ports: Vec<AtomicU64>,
    data_dir: Option<PathBuf>,
    pubs: Mutex<Vec<PubRecord>>,
    starts: AtomicU64,
    failures: AtomicU64,
    /// Bytes (sent, received) of each slot at the end of the warm-up.
    bytes_at_warm: Mutex<Vec<(u64, u64)>>,
    /// Each slot's bytes per protocol and Noise frames (all, bare Yamux)
    /// at the end of the warm-up.
    protocols_at_warm: Mutex<Vec<MeterSnapshot>>,
    /// Radio wake-ups of each slot at the end of the warm-up.
    wakeups_at_warm: Mutex<Vec<u64>>,
    /// The push gateway background phones register (Ronde, with
    /// background phones).
    push: Option<PushGateway>,
    /// Push wake-ups delivered after the warm-up.
    pushes: AtomicU64,
    /// Report transmissions at the end of the warm-up (the prefill's).
    frames_at_warm: AtomicU64,
    /// The relays' mailbox addresses (`/memory/<port>/p2p/<id>`), known
    /// once they are up.
    relay_hosts: Mutex<Vec<Multiaddr>>,
    /// Where nodes report SOS alerts and acks.
    circle_tx: CircleTx,
    /// What they reported.
    circle_seen: Mutex<Vec<(Slot, CircleSeen, f64)>>,
    /// Each planned SOS, as it went.
    sos_live: Mutex<Vec<SosLive>>,
    /// When each slot (re)joined after the start (model seconds).
    joins: Mutex<Vec<Vec<f64>>>,
    /// What the spies and relays logged of each report's first hop.
    first_hops: Arc<FirstHops>,
    /// The spying phones.
    spies: std::collections::HashSet<Slot>,
}

impl World {
    fn port(&self, slot: Slot) -> u64 {
        self.ports
            .get(slot as usize)
            .map(|p| p.load(Ordering::SeqCst))
            .unwrap_or(0)
    }

    fn role(&self, slot: Slot) -> Role {
        self.plan.roles[slot as usize]
    }

    fn fail(&self, what: &str, e: &SimError) {
        tracing::debug!(what, error = %e, "simulated device failed");
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The Ronde node running in a slot, if any.
    async fn node_of(&self, slot: Slot) -> Option<Node> {
        let st = self.slots.get(slot as usize)?.lock().await;
        st.peer.as_ref().and_then(|p| p.node()).cloned()
    }

    fn sos_live(&self) -> std::sync::MutexGuard<'_, Vec<SosLive>> {
        self.sos_live.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn start_slot(&self, slot: Slot, t: f64) -> Result<(), SimError> {
        let role = self.role(slot);
        if self.overlay == Overlay::Baseline && role == Role::Flooder {
            return Ok(());
        }
        let mut st = self.slots[slot as usize].lock().await;
        if st.peer.is_some() {
            return Ok(());
        }
        let port = self.net.alloc_port();
        let hubs = self.overlay == Overlay::Ronde && self.cfg.hubs;
        let mut gossip = match self.overlay {
            Overlay::Ronde => self.cfg.gossip,
            Overlay::Baseline => self.cfg.baseline_gossip.unwrap_or(self.cfg.gossip),
        };
        if hubs && role == Role::Relay {
            gossip = GossipTuning {
                latency_bonus: gossip.latency_bonus,
                hub_bonus: gossip.hub_bonus,
                ..GossipTuning::hub()
            };
        }
        let gossip_hubs = if hubs && role == Role::Phone {
            self.relay_hosts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter_map(|a| match a.iter().last() {
                    Some(Protocol::P2p(p)) => Some(p),
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        let setup = PeerSetup {
            net: &self.net,
            slot,
            port,
            clockwork: self.cw.clone(),
            heartbeat: self.cfg.heartbeat,
            recorder: self.recorder.clone(),
            spam: self.cfg.spam,
            gossip,
            stem_seed: Plan::rng_for(self.cfg.seed ^ 0x57E4, slot, t).next_u64(),
            timers: self.cfg.timers,
            gossip_hubs,
        };
        let pos = self.plan.position(slot, t);
        let city_areas = &self.plan.city_areas;
        let peer = match (self.overlay, role) {
            (Overlay::Ronde, Role::Phone | Role::Relay) => {
                let dir = self
                    .data_dir
                    .as_ref()
                    .map(|d| d.join(format!("n{slot}")))
                    .ok_or_else(|| SimError::Config("no data directory".into()))?;
                let (loc, areas) = if role == Role::Relay {
                    (None, Some(city_areas.as_slice()))
                } else {
                    (Some(pos), None)
                };
                // Relays host mailboxes; the phones of SOS pairs use the
                // city's relays as their mailbox hosts, as a city's app
                // would (the others only find the relays they link to).
                let circle = CircleSetup {
                    mailbox_host: role == Role::Relay,
                    mailbox_peers: if self.plan.has_contacts(slot) {
                        self.relay_hosts
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .clone()
                    } else {
                        Vec::new()
                    },
                    seen: Some(self.circle_tx.clone()),
                    background_poll: self.cfg.background_poll,
                };
                let logs = role == Role::Relay || self.spies.contains(&slot);
                let first_hop = FirstHopSetup {
                    stem: self.cfg.stem,
                    tap: logs.then(|| self.first_hops.tap(slot, self.cw.clone())),
                };
                let peer = start_ronde_with(
                    &setup,
                    &dir,
                    &self.clock,
                    self.cfg.difficulty,
                    loc,
                    areas,
                    circle,
                    first_hop,
                )
                .await?;
                if let Some(node) = peer.node() {
                    self.first_hops.known(node.peer_id(), slot);
                }
                peer
            }
            (Overlay::Baseline, Role::Phone) => Peer::Bare(BareNode::start(
                &setup,
                BareMode::Baseline,
                &topics_around(pos.0, pos.1)?,
            )?),
            (Overlay::Baseline, Role::Relay) => {
                Peer::Bare(BareNode::start(&setup, BareMode::Baseline, city_areas)?)
            }
            (_, Role::Dropper) => {
                Peer::Bare(BareNode::start(&setup, BareMode::Dropper, city_areas)?)
            }
            (_, Role::Flooder | Role::Seeder) => {
                Peer::Bare(BareNode::start(&setup, BareMode::Flooder, &[])?)
            }
            (_, Role::Spammer) => Peer::Bare(BareNode::start(
                &setup,
                BareMode::Flooder,
                &self.plan.spam.areas,
            )?),
        };
        st.peer = Some(peer);
        self.ports[slot as usize].store(port, Ordering::SeqCst);
        self.starts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn stop_slot(&self, slot: Slot) {
        let peer = {
            let mut st = self.slots[slot as usize].lock().await;
            self.ports[slot as usize].store(0, Ordering::SeqCst);
            st.peer.take()
        };
        if let Some(p) = peer {
            p.shutdown().await;
        }
    }

    async fn dial(&self, from: Slot, to: Slot) {
        let port = self.port(to);
        if port == 0 || from == to {
            return;
        }
        let st = self.slots[from as usize].lock().await;
        if let Some(p) = &st.peer {
            if let Err(e) = p.dial(addr_of(port)).await {
                self.fail("dial", &e);
            }
        }
    }

    fn online_of(&self, role: Role) -> Vec<Slot> {
        (0..self.plan.roles.len() as Slot)
            .filter(|s| self.role(*s) == role && self.port(*s) != 0)
            .collect()
    }

    /// Whether `slot` is a background phone gone to the background by
    /// `t`: nobody dials it (its app would not be reachable), and it
    /// dials nobody by itself.
    fn in_background(&self, slot: Slot, t: f64) -> bool {
        self.plan.background_at(slot).is_some_and(|at| t >= at)
    }

    /// Whom `slot` dials when it comes online at `t` (or tops up), given
    /// the devices it is already linked to.
    fn targets(&self, slot: Slot, t: f64, linked: &HashSet<Slot>, want: usize) -> Vec<Slot> {
        let mut rng = Plan::rng_for(self.cfg.seed, slot, t);
        let here = self.plan.position(slot, t);
        let mut out = Vec::new();
        let role = self.role(slot);
        if matches!(role, Role::Phone | Role::Spammer) && self.cfg.relay_links > 0 {
            let has_relay = linked.iter().any(|s| self.role(*s) == Role::Relay);
            if !has_relay {
                let mut relays = self.online_of(Role::Relay);
                relays.sort_by(|a, b| {
                    let da = City::distance_m(here, self.plan.position(*a, t));
                    let db = City::distance_m(here, self.plan.position(*b, t));
                    da.total_cmp(&db)
                });
                out.extend(relays.into_iter().take(self.cfg.relay_links));
            }
        }
        let mut phones: Vec<Slot> = self
            .online_of(Role::Phone)
            .into_iter()
            .filter(|s| *s != slot && !linked.contains(s) && !self.in_background(*s, t))
            .collect();
        match role {
            Role::Phone | Role::Spammer => {
                // Nearby people, with some randomness: a random choice among
                // the 3 × `want` nearest. Each distance is computed once (a
                // comparison sort computing two per comparison made the
                // driver's link maintenance take most of a second at 2000
                // phones); the sort is stable, so ties keep slot order.
                let mut near: Vec<(f64, Slot)> = phones
                    .iter()
                    .map(|s| (City::distance_m(here, self.plan.position(*s, t)), *s))
                    .collect();
                near.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut phones: Vec<Slot> =
                    near.into_iter().take(3 * want).map(|(_, s)| s).collect();
                phones.shuffle(&mut rng);
                out.extend(phones.into_iter().take(want));
            }
            Role::Flooder | Role::Dropper => {
                phones.shuffle(&mut rng);
                out.extend(phones.into_iter().take(want));
            }
            // The seeder feeds the relays, which follow every area.
            Role::Seeder => out.extend(self.online_of(Role::Relay)),
            Role::Relay => {}
        }
        out
    }

    fn adjacency(&self) -> Vec<HashSet<Slot>> {
        let mut adj = vec![HashSet::new(); self.plan.roles.len()];
        for (a, b, _) in self.net.links() {
            adj[a as usize].insert(b);
            adj[b as usize].insert(a);
        }
        adj
    }

    /// Lower bound from `origin` at model time `t` for reports of `area`.
    fn lower_bound(&self, origin: Slot, t: f64, area: &ronde_protocol::Area) -> Vec<f64> {
        let edges: Vec<(Slot, Slot, f64)> = self
            .net
            .links()
            .into_iter()
            .map(|(a, b, l)| (a, b, l.as_secs_f64()))
            .collect();
        dijkstra(self.plan.roles.len(), &edges, origin, |s| {
            s == origin
                || (self.plan.is_honest(s)
                    && self.port(s) != 0
                    && self.plan.areas_at(s, t).contains(area))
        })
    }
}

fn data_root() -> Result<tempfile::TempDir, SimError> {
    let shm = std::path::Path::new("/dev/shm");
    let b = {
        let mut b = tempfile::Builder::new();
        b.prefix("ronde-sim-");
        b
    };
    if shm.is_dir() {
        if let Ok(d) = b.tempdir_in(shm) {
            return Ok(d);
        }
    }
    Ok(b.tempdir()?)
}

/// Run one overlay on the plan.
pub async fn run_overlay(
    cfg: &SimConfig,
    plan: Arc<Plan>,
    overlay: Overlay,
    progress: Option<ProgressBar>,
) -> Result<Outcome, SimError> {
    let wall0 = std::time::Instant::now();
    let rss0 = rss_bytes().unwrap_or(0);
    let n = plan.roles.len();
    let model = LinkModel {
        latency_min: cfg.latency_min,
        latency_max: cfg.latency_max,
        loss: cfg.loss,
        dilation: cfg.dilation,
        seed: cfg.seed,
        ..LinkModel::default()
    };
    let honest = (0..n as Slot).map(|s| plan.is_honest(s)).collect();
    let net = SimNet::new(model, honest, FrameClassifier::ronde());
    let data = if overlay == Overlay::Ronde {
        Some(data_root()?)
    } else {
        None
    };
    let cw = Clockwork::new(cfg.dilation);
    let (circle_tx, mut circle_rx) = mpsc::unbounded_channel();
    let (push_tx, mut push_rx) = mpsc::unbounded_channel();
    let push = if overlay == Overlay::Ronde && plan.background.iter().any(Option::is_some) {
        Some(PushGateway::start(push_tx).await?)
    } else {
        None
    };
    let world = Arc::new(World {
        cfg: cfg.clone(),
        plan: plan.clone(),
        overlay,
        net: net.clone(),
        cw: cw.clone(),
        clock: ManualClock::new(T0),
        recorder: Arc::new(Recorder::default()),
        monitor: Arc::new(Monitor::default()),
        slots: (0..n).map(|_| tokio::sync::Mutex::default()).collect(),
        ports: (0..n).map(|_| AtomicU64::new(0)).collect(),
        data_dir: data.as_ref().map(|d| d.path().to_path_buf()),
        pubs: Mutex::new(Vec::new()),
        starts: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        bytes_at_warm: Mutex::new(vec![(0, 0); n]),
        protocols_at_warm: Mutex::new(vec![(BTreeMap::new(), (0, 0)); n]),
        wakeups_at_warm: Mutex::new(vec![0; n]),
        push,
        pushes: AtomicU64::new(0),
        frames_at_warm: AtomicU64::new(0),
        relay_hosts: Mutex::new(Vec::new()),
        circle_tx,
        circle_seen: Mutex::new(Vec::new()),
        sos_live: Mutex::new(vec![SosLive::default(); plan.sos.len()]),
        joins: Mutex::new(vec![Vec::new(); n]),
        first_hops: Arc::new(FirstHops::default()),
        spies: choose_spies(&plan, cfg.spies, cfg.seed),
    });
    if plan.city_areas.len() > ronde_node::config::MAX_PEER_AREAS {
        return Err(SimError::Config(format!(
            "the city spans {} areas, more than a relay can follow ({})",
            plan.city_areas.len(),
            ronde_node::config::MAX_PEER_AREAS
        )));
    }

    // Set-up: start everyone online at 0 (relays first), then dial.
    if let Some(pb) = &progress {
        pb.set_message(format!("{}: starting {n} devices", overlay.name()));
    }
    let mut order: Vec<Slot> = (0..n as Slot).filter(|s| plan.is_online(*s, 0.0)).collect();
    order.sort_by_key(|s| (world.role(*s) != Role::Relay, *s));
    // Relays first, so that phones can be given their addresses.
    let (first, then): (Vec<Slot>, Vec<Slot>) = order
        .iter()
        .copied()
        .partition(|s| world.role(*s) == Role::Relay);
    for (i, batch) in [first, then].into_iter().enumerate() {
        let results: Vec<Result<(), SimError>> = futures::stream::iter(batch)
            .map(|s| {
                let w = world.clone();
                async move { w.start_slot(s, 0.0).await }
            })
            .buffer_unordered(cfg.start_batch)
            .collect()
            .await;
        for r in results {
            if let Err(e) = r {
                return Err(SimError::Config(format!("a device did not start: {e}")));
            }
        }
        if i > 0 || overlay != Overlay::Ronde {
            continue;
        }
        let mut hosts = Vec::new();
        for relay in world.online_of(Role::Relay) {
            if let Some(node) = world.node_of(relay).await {
                hosts.push(addr_of(world.port(relay)).with(Protocol::P2p(node.peer_id())));
            }
        }
        *world.relay_hosts.lock().unwrap_or_else(|e| e.into_inner()) = hosts;
    }
    // Relays form a full mesh; everyone else dials on its `Connect` event.
    let relays = world.online_of(Role::Relay);
    let mut dials: Vec<(Slot, Slot)> = Vec::new();
    for (i, a) in relays.iter().enumerate() {
        for b in &relays[..i] {
            dials.push((*a, *b));
        }
    }
    futures::stream::iter(dials)
        .map(|(a, b)| {
            let w = world.clone();
            async move { w.dial(a, b).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let setup_secs = wall0.elapsed().as_secs_f64();

    // What the circles show (queued until now): recorded, and an SOS alert
    // is acknowledged at once (a person who looks), which stops the
    // sender's re-sends.
    let circle_task = {
        let w = world.clone();
        tokio::spawn(async move {
            while let Some((slot, what, t)) = circle_rx.recv().await {
                w.circle_seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((slot, what, t));
                if let CircleSeen::Sos { item, .. } = what {
                    let w = w.clone();
                    tokio::spawn(async move {
                        let Some(node) = w.node_of(slot).await else {
                            return;
                        };
                        if let Err(e) = node.ack_inbox(vec![item]).await {
                            w.fail("ack", &e.into());
                        }
                    });
                }
            }
        })
    };
    // Push wake-ups: delivered to the phone a push server's latency after
    // the host's POST; its app then calls wake().
    let push_task = {
        let w = world.clone();
        tokio::spawn(async move {
            while let Some(slot) = push_rx.recv().await {
                let w = w.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(w.cw.wall(PUSH_LATENCY)).await;
                    w.net.outside_delivery(slot, PUSH_BYTES);
                    if w.cw.now() >= w.cfg.warmup.as_secs_f64() {
                        w.pushes.fetch_add(1, Ordering::Relaxed);
                    }
                    let Some(node) = w.node_of(slot).await else {
                        return;
                    };
                    if let Err(e) = node.wake().await {
                        w.fail("wake", &e.into());
                    }
                });
            }
        })
    };
    // The clock starts.
    cw.start_now();
    let _probes = world.monitor.start(cw.clone());
    let clock_task = {
        let (cw, clock) = (cw.clone(), world.clock.clone());
        tokio::spawn(async move {
            loop {
                clock.set(T0 + cw.now().max(0.0) as u64);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let progress_task = progress.clone().map(|pb| {
        let w = world.clone();
        tokio::spawn(async move {
            pb.set_length((w.cfg.end() * 10.0) as u64);
            pb.set_position(0);
            loop {
                let t = w.cw.now().max(0.0);
                pb.set_position((t * 10.0) as u64);
                let online = w
                    .ports
                    .iter()
                    .filter(|p| p.load(Ordering::Relaxed) != 0)
                    .count();
                let reports = w.pubs.lock().map(|p| p.len()).unwrap_or(0);
                pb.set_message(format!(
                    "{} t={t:.0}s online {online} reports {reports} deliveries {} lag {:.0} ms",
                    w.overlay.name(),
                    w.recorder.count(),
                    w.monitor.last_lag()
                ));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    });

    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut rss_warm = 0u64;
    let mut degree_warm = 0.0;
    let warm = cfg.warmup.as_secs_f64();
    let mut warm_done = false;
    let mut events = plan.events.iter().peekable();
    loop {
        let next_t = events.peek().map(|(t, _)| *t);
        if !warm_done && next_t.is_none_or(|t| t >= warm) {
            tokio::time::sleep_until(cw.wall_at(warm)).await;
            rss_warm = rss_bytes().unwrap_or(0);
            *world
                .bytes_at_warm
                .lock()
                .unwrap_or_else(|e| e.into_inner()) =
                (0..n as Slot).map(|s| net.bytes(s)).collect();
            *world
                .protocols_at_warm
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = (0..n as Slot)
                .map(|s| (net.meter(s).snapshot(), net.frames(s)))
                .collect();
            *world
                .wakeups_at_warm
                .lock()
                .unwrap_or_else(|e| e.into_inner()) =
                (0..n as Slot).map(|s| net.wakeups(s)).collect();
            world
                .frames_at_warm
                .store(net.report_frames(), Ordering::SeqCst);
            let adj = world.adjacency();
            let online: Vec<Slot> = (0..n as Slot)
                .filter(|s| plan.is_honest(*s) && world.port(*s) != 0)
                .collect();
            degree_warm = online
                .iter()
                .map(|s| adj[*s as usize].len() as f64)
                .sum::<f64>()
                / online.len().max(1) as f64;
            warm_done = true;
            continue;
        }
        let Some((t, ev)) = events.next() else { break };
        let at = cw.wall_at(*t);
        tokio::time::sleep_until(at).await;
        world
            .monitor
            .late(tokio::time::Instant::now().saturating_duration_since(at));
        while tasks.try_join_next().is_some() {}
        let w = world.clone();
        let t = *t;
        match *ev {
            Event::Report(i) => {
                let r = &plan.reports[i];
                let lb = w.lower_bound(r.phone, t, &r.cell.area());
                tasks.spawn(async move {
                    let r = &w.plan.reports[i];
                    let st = w.slots[r.phone as usize].lock().await;
                    let Some(peer) = &st.peer else { return };
                    match peer.report(r.category, r.at, &r.bytes, r.cell.area()).await {
                        Ok(id) => {
                            let mut pubs = w.pubs.lock().unwrap_or_else(|e| e.into_inner());
                            pubs.push(PubRecord {
                                plan_idx: i,
                                id,
                                lb,
                            });
                        }
                        Err(e) => w.fail("report", &e),
                    }
                });
            }
            Event::Leave(s) | Event::RelayFail(s) => {
                tasks.spawn(async move { w.stop_slot(s).await });
            }
            Event::Join(s) => {
                tasks.spawn(async move {
                    if let Some(j) = w
                        .joins
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(s as usize)
                    {
                        j.push(w.cw.now());
                    }
                    if let Err(e) = w.start_slot(s, t).await {
                        w.fail("join", &e);
                        return;
                    }
                    for target in w.targets(s, t, &HashSet::new(), w.cfg.peers) {
                        w.dial(s, target).await;
                    }
                });
            }
            Event::Connect(s) => {
                tasks.spawn(async move {
                    let linked = w.adjacency().swap_remove(s as usize);
                    for target in w.targets(s, t, &linked, w.cfg.peers) {
                        w.dial(s, target).await;
                    }
                });
            }
            Event::Move(s, p) => {
                tasks.spawn(async move {
                    let st = w.slots[s as usize].lock().await;
                    if let Some(peer) = &st.peer {
                        if let Err(e) = peer.set_location(p).await {
                            w.fail("move", &e);
                        }
                    }
                });
            }
            Event::PartitionStart => w.net.set_partition(Some(w.plan.sides.clone())),
            Event::PartitionEnd => w.net.set_partition(None),
            Event::Flood(i) => {
                tasks.spawn(async move {
                    let f = &w.plan.floods[i];
                    let st = w.slots[f.flooder as usize].lock().await;
                    if let Some(Peer::Bare(b)) = &st.peer {
                        if let Err(e) = b.publish(f.area, f.bytes.clone()) {
                            w.fail("flood", &e);
                        }
                    }
                });
            }
            Event::Seed(i) => {
                tasks.spawn(async move {
                    let seeder = w.plan.roles.iter().position(|r| *r == Role::Seeder);
                    let Some(seeder) = seeder else { return };
                    let st = w.slots[seeder].lock().await;
                    if let Some(Peer::Bare(b)) = &st.peer {
                        let (area, bytes) = &w.plan.seeds[i];
                        if let Err(e) = b.publish(*area, bytes.clone()) {
                            w.fail("seed", &e);
                        }
                    }
                });
            }
            Event::Maintain => maintain(&world, t, &mut tasks),
            Event::Befriend(i) if overlay == Overlay::Ronde => {
                tasks.spawn(async move {
                    match befriend(&w, i).await {
                        Ok(at) => {
                            if let Some(l) = w.sos_live().get_mut(i) {
                                l.befriended_at = Some(at);
                            }
                        }
                        Err(e) => w.fail("befriend", &e),
                    }
                });
            }
            Event::Sos(i) if overlay == Overlay::Ronde => {
                tasks.spawn(async move {
                    let p = &w.plan.sos[i];
                    let Some(node) = w.node_of(p.sender).await else {
                        w.fail("sos", &SimError::Stopped);
                        return;
                    };
                    let offline = w.port(p.contact) == 0;
                    let at = w.cw.now();
                    match node.sos(SOS_NOTE).await {
                        Ok(view) => {
                            if let Some(l) = w.sos_live().get_mut(i) {
                                l.sent_at = Some(at);
                                l.id = Some(view.id);
                                l.contact_offline = offline;
                            }
                        }
                        Err(e) => w.fail("sos", &e.into()),
                    }
                });
            }
            Event::BefriendPair(i) if overlay == Overlay::Ronde => {
                tasks.spawn(async move {
                    let Some(&(phone, friend, _)) = w.plan.background_pairs.get(i) else {
                        return;
                    };
                    let deadline = w.cfg.warmup.as_secs_f64();
                    if let Err(e) = befriend_slots(&w, friend, phone, deadline).await {
                        w.fail("befriend", &e);
                    }
                });
            }
            Event::Background(slot) if overlay == Overlay::Ronde => {
                tasks.spawn(async move {
                    let (Some(node), Some(gw)) = (w.node_of(slot).await, w.push.as_ref()) else {
                        return;
                    };
                    // As a person puts the phone away once their contact
                    // is made: the handshake done (or the warm-up over).
                    let _ = until(&w, w.cfg.warmup.as_secs_f64(), "a contact", || async {
                        let contacts = node.contacts().await.ok()?.contacts;
                        contacts
                            .iter()
                            .any(|c| c.state == ContactState::Mutual)
                            .then_some(())
                    })
                    .await;
                    if let Err(e) = node.set_push_endpoint(Some(gw.endpoint(slot))).await {
                        w.fail("push endpoint", &e.into());
                    }
                    tracing::debug!(slot, "a phone goes to the background");
                    if let Err(e) = node.set_lifecycle(ronde_node::Lifecycle::Background).await {
                        w.fail("background", &e.into());
                    }
                });
            }
            // The baseline has no circle (and its background phones simply
            // stop following their areas).
            Event::Befriend(_) | Event::Sos(_) | Event::BefriendPair(_) | Event::Background(_) => {}
            Event::Spam(i) => {
                tasks.spawn(async move {
                    let Some(r) = w.plan.spam.reports.get(i) else {
                        return;
                    };
                    let st = w.slots[r.spammer as usize].lock().await;
                    if let Some(Peer::Bare(b)) = &st.peer {
                        if let Err(e) = b.publish(r.area, r.bytes.clone()) {
                            w.fail("spam", &e);
                        }
                    }
                });
            }
        }
    }
    tokio::time::sleep_until(cw.wall_at(cfg.end())).await;
    let t_end = cw.now();
    while tasks.join_next().await.is_some() {}
    let rss_end = rss_bytes().unwrap_or(0);
    // The SOS as they stand at the end (before the clock jumps).
    let sos = (overlay == Overlay::Ronde).then(|| SosFigures::of(sos_records(&world)));
    let background = (overlay == Overlay::Ronde && plan.background.iter().any(Option::is_some))
        .then(|| background_figures(&world, t_end, sos.as_ref()));

    // Expiry: what is visible now, then after every report expired.
    let spam_end = if overlay == Overlay::Ronde && cfg.spam.active() {
        Some(spam_end(&world).await)
    } else {
        None
    };
    let (visible_before, visible_after) = if overlay == Overlay::Ronde {
        let before = count_visible(&world).await;
        // Every report of the run expires 30 minutes after its minute
        // (spam: 60).
        let ttl_min = if cfg.spam.active() {
            u64::from(crate::spam::SPAM_TTL_MINUTES)
        } else {
            30
        };
        world
            .clock
            .set(T0 + cfg.end().ceil() as u64 + (ttl_min + 1) * 60 + 60);
        clock_task.abort();
        let after = count_visible(&world).await;
        (Some(before), Some(after))
    } else {
        clock_task.abort();
        (None, None)
    };
    if let Some(t) = progress_task {
        t.abort();
    }
    let saturation = world
        .monitor
        .summary(warm, t_end, cfg.dilation, cfg.workers);

    // Tear down.
    circle_task.abort();
    push_task.abort();
    let all: Vec<Slot> = (0..n as Slot).collect();
    futures::stream::iter(all)
        .map(|s| {
            let w = world.clone();
            async move { w.stop_slot(s).await }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;

    let started = order.len().max(1) as f64;
    let mem = |rss: u64| rss.saturating_sub(rss0) as f64 / started / 1e6;
    let mut out = figures(&world, overlay, saturation, spam_end);
    out.memory_per_node_mb = mem(rss_warm);
    out.memory_per_node_end_mb = mem(rss_end);
    out.mean_degree = degree_warm;
    out.visible_before_expiry = visible_before;
    out.visible_after_expiry = visible_after;
    out.sos = sos;
    out.background = background;
    out.setup_secs = setup_secs;
    out.wall_secs = wall0.elapsed().as_secs_f64();
    drop(world);
    drop(data);
    Ok(out)
}

/// Make the two phones of planned SOS `i` mutual contacts through the
/// real handshake: the sender invites, the contact accepts, the sender
/// approves once the accept arrived, and the contact hears the confirm.
/// Gives up at the SOS's planned time. Returns when it was done.
async fn befriend(w: &World, i: usize) -> Result<f64, SimError> {
    let p = w
        .plan
        .sos
        .get(i)
        .ok_or_else(|| SimError::Config(format!("no planned SOS {i}")))?;
    befriend_slots(w, p.sender, p.contact, p.t).await
}

/// `inviter` invites `acceptor`, which accepts; `inviter` approves and
/// `acceptor` hears the confirm. Gives up at model time `deadline`.
async fn befriend_slots(
    w: &World,
    inviter: Slot,
    acceptor: Slot,
    deadline: f64,
) -> Result<f64, SimError> {
    let a = w.node_of(inviter).await.ok_or(SimError::Stopped)?;
    let b = w.node_of(acceptor).await.ok_or(SimError::Stopped)?;
    let invite = a
        .create_invite(Some(format!("phone {inviter}")), 3600)
        .await?;
    b.accept_invite(&invite.code, Some(format!("phone {acceptor}")))
        .await?;
    let requested = until(w, deadline, "the accept", || async {
        a.contacts()
            .await
            .ok()?
            .contacts
            .into_iter()
            .find(|c| c.state == ContactState::AwaitingMyApproval)
            .map(|c| c.id)
    })
    .await?;
    a.approve_contact(&requested.to_hex()).await?;
    until(w, deadline, "the confirm", || async {
        b.contacts()
            .await
            .ok()?
            .contacts
            .into_iter()
            .find(|c| c.state == ContactState::Mutual)
            .map(|_| ())
    })
    .await?;
    Ok(w.cw.now())
}

/// Poll `f` until it gives something, or fail at model time `deadline`.
async fn until<T, F, Fut>(w: &World, deadline: f64, what: &str, mut f: F) -> Result<T, SimError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if w.cw.now() > deadline {
            return Err(SimError::Circle(format!("{what} did not arrive in time")));
        }
        tokio::time::sleep(w.cw.wall(Duration::from_millis(50))).await;
    }
}

/// What happened to each planned SOS: the driver's notes and what the
/// nodes' circles showed.
fn sos_records(world: &World) -> Vec<SosRecord> {
    let live = world.sos_live().clone();
    let seen = world
        .circle_seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let joins = world
        .joins
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let first = |slot: Slot, f: &dyn Fn(&CircleSeen) -> bool| {
        seen.iter()
            .filter(|(s, what, _)| *s == slot && f(what))
            .map(|(_, _, t)| *t)
            .min_by(f64::total_cmp)
    };
    world
        .plan
        .sos
        .iter()
        .zip(live)
        .map(|(p, l)| {
            let (delivered_at, acked_at) = match l.id {
                Some(id) => (
                    first(
                        p.contact,
                        &|w| matches!(w, CircleSeen::Sos { sos, .. } if *sos == id),
                    ),
                    first(
                        p.sender,
                        &|w| matches!(w, CircleSeen::Acked { of } if *of == id),
                    ),
                ),
                None => (None, None),
            };
            let rejoined_at = match (l.contact_offline, l.sent_at) {
                (true, Some(sent)) => joins
                    .get(p.contact as usize)
                    .and_then(|j| j.iter().copied().find(|t| *t >= sent)),
                _ => None,
            };
            SosRecord {
                sender: p.sender,
                contact: p.contact,
                planned_at: p.t,
                planned_offline: p.offline.is_some(),
                contact_background: world.plan.is_background(p.contact),
                befriended_at: l.befriended_at,
                sent_at: l.sent_at,
                contact_offline: l.contact_offline,
                rejoined_at,
                delivered_at,
                acked_at,
            }
        })
        .collect()
}

/// Every online device below its target degree dials more peers; relays
/// keep their full mesh.
fn maintain(world: &Arc<World>, t: f64, tasks: &mut JoinSet<()>) {
    let adj = world.adjacency();
    let want = world.cfg.peers;
    for s in 0..world.plan.roles.len() as Slot {
        if world.port(s) == 0 || world.in_background(s, t) {
            continue;
        }
        let linked = &adj[s as usize];
        let targets = match world.role(s) {
            Role::Phone | Role::Spammer => {
                let phones = linked
                    .iter()
                    .filter(|x| world.role(**x) == Role::Phone)
                    .count();
                let has_relay = linked.iter().any(|x| world.role(*x) == Role::Relay);
                let short = want.saturating_sub(phones);
                if phones >= want.div_ceil(2) && (has_relay || world.cfg.relay_links == 0) {
                    continue;
                }
                world.targets(s, t, linked, short)
            }
            Role::Relay => world
                .online_of(Role::Relay)
                .into_iter()
                .filter(|r| *r < s && !linked.contains(r))
                .collect(),
            Role::Flooder | Role::Dropper | Role::Seeder => continue,
        };
        for target in targets {
            let w = world.clone();
            tasks.spawn(async move { w.dial(s, target).await });
        }
    }
}

/// Reports visible on every online Ronde node (anywhere within 100 km).
async fn count_visible(world: &Arc<World>) -> u64 {
    let center = world.cfg.center;
    let slots: Vec<Slot> = (0..world.plan.roles.len() as Slot).collect();
    let counts: Vec<u64> = futures::stream::iter(slots)
        .map(|s| {
            let w = world.clone();
            async move {
                let st = w.slots[s as usize].lock().await;
                match st.peer.as_ref().and_then(|p| p.node()) {
                    Some(node) => node
                        .nearby(center.0, center.1, 100_000.0)
                        .await
                        .map(|n| n.reports.len() as u64)
                        .unwrap_or(0),
                    None => 0,
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    counts.iter().sum()
}

/// Bytes per hour online of a role, from the end of the warm-up (set-up
/// and mesh formation excluded) to the end of the run.
fn traffic(world: &World, role: Role) -> Traffic {
    let at_warm = world
        .bytes_at_warm
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let (mut sent, mut recv, mut hours) = (0u64, 0u64, 0f64);
    for (s, h) in counted(world, role) {
        let (a, b) = world.net.bytes(s);
        let (a0, b0) = at_warm.get(s as usize).copied().unwrap_or((0, 0));
        sent += a.saturating_sub(a0);
        recv += b.saturating_sub(b0);
        hours += h;
    }
    let per = |b: u64| {
        if hours > 0.0 {
            b as f64 / 1e6 / hours
        } else {
            0.0
        }
    };
    Traffic {
        sent_mb_per_hour: per(sent),
        recv_mb_per_hour: per(recv),
        total_mb_per_hour: per(sent + recv),
    }
}

/// The foreground devices of `role`, each with its hours online from the
/// end of the warm-up to the end of the run: what the traffic figures
/// are counted over.
fn counted(world: &World, role: Role) -> impl Iterator<Item = (Slot, f64)> + '_ {
    let end = world.cfg.end();
    let warm = world.cfg.warmup.as_secs_f64();
    (0..world.plan.roles.len() as Slot)
        .filter(move |&s| world.role(s) == role && !world.plan.is_background(s))
        .map(move |s| {
            let online = world.plan.online[s as usize]
                .iter()
                .map(|(from, to)| (to.min(end) - from.max(warm)).max(0.0))
                .sum::<f64>();
            (s, online / 3600.0)
        })
}

/// A role's bytes per protocol per hour online, over the same span and
/// devices as [`traffic`], largest first. What the wire carried beyond the
/// substreams is split in three: `(noise framing)`, 18 bytes per Noise
/// frame; `(yamux bare headers)`, the 12 bytes of each frame that carried
/// nothing else (pings and pongs, window updates, opening and closing
/// flags); `(connections, rest)`, the Noise handshakes, the negotiation of
/// Noise and Yamux, and the Yamux headers of data frames.
fn protocol_traffic(world: &World, role: Role) -> Vec<ProtocolTraffic> {
    let bytes0 = world
        .bytes_at_warm
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let protocols0 = world
        .protocols_at_warm
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut sums: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut wire, mut frames, mut bare, mut hours) = (0u64, 0u64, 0u64, 0f64);
    for (s, h) in counted(world, role) {
        let (a, b) = world.net.bytes(s);
        let (a0, b0) = bytes0.get(s as usize).copied().unwrap_or((0, 0));
        wire += a.saturating_sub(a0) + b.saturating_sub(b0);
        let (before, (f0, y0)) = protocols0.get(s as usize).cloned().unwrap_or_default();
        let (f, y) = world.net.frames(s);
        frames += f.saturating_sub(f0);
        bare += y.saturating_sub(y0);
        for (name, now) in world.net.meter(s).snapshot() {
            let was = before.get(&name).copied().unwrap_or_default();
            let e = sums.entry(name).or_default();
            e.0 += (now.sent + now.recv).saturating_sub(was.sent + was.recv);
            e.1 += now.streams.saturating_sub(was.streams);
        }
        hours += h;
    }
    if hours <= 0.0 {
        return Vec::new();
    }
    let carried: u64 = sums.values().map(|(b, _)| b).sum();
    let noise = frames * NOISE_FRAMING as u64;
    let headers = bare * FrameClassifier::YAMUX_HEADER as u64;
    let rest = wire.saturating_sub(carried + noise + headers);
    sums.insert("(noise framing)".into(), (noise, 0));
    sums.insert("(yamux bare headers)".into(), (headers, bare));
    sums.insert("(connections, rest)".into(), (rest, 0));
    let mut out: Vec<ProtocolTraffic> = sums
        .into_iter()
        .map(|(protocol, (bytes, streams))| ProtocolTraffic {
            protocol,
            mb_per_hour: bytes as f64 / 1e6 / hours,
            streams_per_hour: streams as f64 / hours,
        })
        .collect();
    out.sort_by(|a, b| b.mb_per_hour.total_cmp(&a.mb_per_hour));
    out
}

/// The background phones' bytes and radio wake-ups per hour, from the
/// end of the warm-up to `t_end` (model seconds), and their SOS.
fn background_figures(world: &World, t_end: f64, sos: Option<&SosFigures>) -> BackgroundFigures {
    let warm = world.cfg.warmup.as_secs_f64();
    let hours = ((t_end - warm) / 3600.0).max(1e-9);
    let bytes0 = world
        .bytes_at_warm
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let wake0 = world
        .wakeups_at_warm
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let (mut mb, mut wakeups) = (Vec::new(), Vec::new());
    let (mut mb_alerted, mut wakeups_alerted) = (Vec::new(), Vec::new());
    for s in 0..world.plan.roles.len() as Slot {
        if !world.plan.is_background(s) {
            continue;
        }
        let alerted = world.plan.sos.iter().any(|p| p.contact == s);
        let (mb, wakeups) = if alerted {
            (&mut mb_alerted, &mut wakeups_alerted)
        } else {
            (&mut mb, &mut wakeups)
        };
        let (a, b) = world.net.bytes(s);
        let (a0, b0) = bytes0.get(s as usize).copied().unwrap_or((0, 0));
        let bytes = a.saturating_sub(a0) + b.saturating_sub(b0);
        mb.push(bytes as f64 / 1e6 / hours);
        let w0 = wake0.get(s as usize).copied().unwrap_or(0);
        wakeups.push(world.net.wakeups(s).saturating_sub(w0) as f64 / hours);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    BackgroundFigures {
        phones: mb.len(),
        mb_per_hour: mean(&mb),
        mb_per_hour_max: max(&mb),
        wakeups_per_hour: mean(&wakeups),
        wakeups_per_hour_max: max(&wakeups),
        alerted_phones: mb_alerted.len(),
        alerted_mb_per_hour: mean(&mb_alerted),
        alerted_wakeups_per_hour: mean(&wakeups_alerted),
        pushes: world.pushes.load(Ordering::Relaxed),
        sos_ms: sos.map(|s| s.background_delivery_ms).unwrap_or_default(),
        sos_sent: sos.map_or(0, |s| s.to_background),
    }
}

/// What the spam figures need from the end of a run: what honest devices
/// hold, the clock, and the refusals over the per-peer bound.
struct SpamEnd {
    holdings: Vec<crate::spam::Holding>,
    now: u64,
    over_peer_bound: u64,
}

async fn spam_end(world: &Arc<World>) -> SpamEnd {
    let center = world.cfg.center;
    let mut holdings = Vec::new();
    let mut over = 0u64;
    for s in 0..world.plan.roles.len() as Slot {
        let role = world.role(s);
        if !matches!(role, Role::Phone | Role::Relay) {
            continue;
        }
        let Some(node) = world.node_of(s).await else {
            continue;
        };
        if let Ok(st) = node.status().await {
            over += ["over_peer_bound", "far_over_peer_bound"]
                .iter()
                .filter_map(|k| st.gossip_refused.get(k))
                .sum::<u64>();
        }
        if let Ok(n) = node.nearby(center.0, center.1, 100_000.0).await {
            holdings.push(crate::spam::Holding {
                slot: s,
                phone: role == Role::Phone,
                reports: n.reports.iter().map(|r| (r.id, r.cell)).collect(),
            });
        }
    }
    SpamEnd {
        holdings,
        now: ronde_node::Clock::now(&world.clock),
        over_peer_bound: over,
    }
}

/// Honest phone-hours online after the warm-up.
fn phone_hours(world: &World) -> f64 {
    let (end, warm) = (world.cfg.end(), world.cfg.warmup.as_secs_f64());
    (0..world.plan.roles.len())
        .filter(|s| world.plan.roles[*s] == Role::Phone)
        .map(|s| {
            world.plan.online[s]
                .iter()
                .map(|(from, to)| (to.min(end) - from.max(warm)).max(0.0))
                .sum::<f64>()
        })
        .sum::<f64>()
        / 3600.0
}

fn figures(
    world: &World,
    overlay: Overlay,
    mut saturation: Saturation,
    spam_end: Option<SpamEnd>,
) -> Outcome {
    let plan = &world.plan;
    let cfg = &world.cfg;
    let window = cfg.window.as_secs_f64();
    let (deliveries, lagged) = world.recorder.take();
    let firsts = first_deliveries(&deliveries);
    let pubs = std::mem::take(&mut *world.pubs.lock().unwrap_or_else(|e| e.into_inner()));
    let partition = cfg
        .partition
        .map(|(a, d)| (a.as_secs_f64(), (a + d).as_secs_f64()));

    let mut latencies = Vec::new();
    let mut bounds = Vec::new();
    let mut ratios = Vec::new();
    let (mut expected, mut delivered, mut fresh_missed, mut first_rx) = (0u64, 0u64, 0u64, 0u64);
    let slice_len = (cfg.duration.as_secs_f64() / 20.0).max(5.0);
    let mut slices: HashMap<u64, (u64, u64)> = HashMap::new();
    let empty = HashMap::new();
    for p in &pubs {
        let r = &plan.reports[p.plan_idx];
        let area = r.cell.area();
        let got = firsts.get(&p.id).unwrap_or(&empty);
        // Publication: when the author stored it; else the planned time.
        let t0 = got.get(&r.phone).copied().unwrap_or(r.t);
        let split = partition.is_some_and(|(a, b)| a < r.t + window && r.t < b);
        let slice = ((r.t - cfg.warmup.as_secs_f64()).max(0.0) / slice_len) as u64;
        for (&s, _) in got.iter() {
            if s != r.phone && plan.is_online(s, r.t) && plan.is_honest(s) {
                first_rx += 1;
            }
        }
        for s in 0..plan.roles.len() as Slot {
            if s == r.phone
                || !plan.is_honest(s)
                || !plan.online_through(s, r.t, r.t + window)
                || !plan.follows_through(s, &area, r.t, r.t + window)
                || (split && plan.sides[s as usize] != plan.sides[r.phone as usize])
            {
                continue;
            }
            expected += 1;
            let e = slices.entry(slice).or_default();
            e.0 += 1;
            match got.get(&s) {
                Some(&t) if t - t0 <= window => {
                    delivered += 1;
                    e.1 += 1;
                    let lat = (t - t0).max(0.0) * 1e3;
                    latencies.push(lat);
                    let lb = p.lb.get(s as usize).copied().unwrap_or(f64::INFINITY) * 1e3;
                    if lb.is_finite() {
                        bounds.push(lb);
                        if lb > 0.0 {
                            ratios.push(lat / lb);
                        }
                    }
                }
                _ => {
                    let joined = plan.online[s as usize]
                        .iter()
                        .any(|(a, b)| *a <= r.t && r.t < *b && r.t - a < 5.0 && *a > 0.0);
                    if joined {
                        fresh_missed += 1;
                    }
                }
            }
        }
    }
    let flood_ids: HashMap<ReportId, crate::plan::FloodKind> = plan
        .floods
        .iter()
        .map(|f| (ReportId::of(&f.bytes), f.kind))
        .collect();
    let (forged, stale) = if overlay == Overlay::Ronde {
        let mut forged = 0u64;
        let mut stale = 0u64;
        for (id, _, _) in &deliveries {
            match flood_ids.get(id) {
                Some(crate::plan::FloodKind::Forged | crate::plan::FloodKind::Garbage) => {
                    forged += 1
                }
                Some(_) => stale += 1,
                None => {}
            }
        }
        (Some(forged), Some(stale))
    } else {
        (None, None)
    };
    // Transmissions after the warm-up (the prefill's happen before).
    let transmissions = world
        .net
        .report_frames()
        .saturating_sub(world.frames_at_warm.load(Ordering::SeqCst));
    let latency_ms = Pcts::of(&mut latencies);
    let lower_bound_ms = Pcts::of(&mut bounds);
    saturation.judge(latency_ms.p50, cfg.dilation);
    let mut timeline: Vec<Slice> = slices
        .into_iter()
        .map(|(k, (e, d))| Slice {
            t: cfg.warmup.as_secs_f64() + k as f64 * slice_len,
            expected: e,
            delivered: d,
        })
        .collect();
    timeline.sort_by(|a, b| a.t.total_cmp(&b.t));
    let delivery_ratio = if expected > 0 {
        delivered as f64 / expected as f64
    } else {
        0.0
    };
    let privacy = (overlay == Overlay::Ronde).then(|| {
        let authors: Vec<(ReportId, Slot)> = pubs
            .iter()
            .map(|p| (p.id, plan.reports[p.plan_idx].phone))
            .collect();
        let relays: Vec<Slot> = (0..plan.roles.len() as Slot)
            .filter(|s| plan.roles[*s as usize] == Role::Relay)
            .collect();
        let mut view = world.first_hops.judge(&authors, &world.spies, &relays);
        view.spy_fraction = cfg.spies;
        view.delivery_ratio = delivery_ratio;
        view.latency_p50_ms = latency_ms.p50;
        view.latency_p99_ms = latency_ms.p99;
        Privacy {
            view,
            stem: cfg.stem,
            stem_latency_cost_ms_p50: None,
            stem_latency_cost_ms_p99: None,
            no_stem: None,
        }
    });
    let duplicates_per_delivery = if first_rx > 0 {
        transmissions.saturating_sub(first_rx) as f64 / first_rx as f64
    } else {
        0.0
    };
    let spam = spam_end.map(|end| {
        let mut honest: HashMap<ReportId, u64> = pubs.iter().map(|p| (p.id, u64::MAX)).collect();
        for (_, bytes) in &plan.seeds {
            if let Ok(r) = ronde_protocol::Report::from_bytes(bytes) {
                honest.insert(ReportId::of(bytes), r.expires_at());
            }
        }
        let is_phone = |s: Slot| plan.roles.get(s as usize) == Some(&Role::Phone);
        crate::spam::figures(&crate::spam::Inputs {
            plan: &plan.spam,
            cfg: &cfg.spam,
            spammers: cfg.spammers(),
            deliveries: &deliveries,
            is_phone: &is_phone,
            honest: &honest,
            holdings: &end.holdings,
            now: end.now,
            honest_delivery: delivery_ratio,
            transmissions,
            since: cfg.warmup.as_secs_f64(),
            phone_hours: phone_hours(world),
            frame_bytes: FrameClassifier::ronde().unit(),
            over_peer_bound: end.over_peer_bound,
        })
    });
    Outcome {
        overlay,
        starts: world.starts.load(Ordering::Relaxed),
        failures: world.failures.load(Ordering::Relaxed),
        reports: pubs.len(),
        expected,
        delivered,
        delivery_ratio,
        missed_by_fresh_joiners: fresh_missed,
        latency_cdf: cdf_points(&latencies, 100),
        lower_bound_cdf: cdf_points(&bounds, 100),
        latency_ms,
        lower_bound_ms,
        ratio_to_lower_bound: Pcts::of(&mut ratios),
        transmissions,
        first_receptions: first_rx,
        duplicates_per_delivery,
        phone_traffic: traffic(world, Role::Phone),
        relay_traffic: traffic(world, Role::Relay),
        phone_protocols: protocol_traffic(world, Role::Phone),
        memory_per_node_mb: 0.0,
        memory_per_node_end_mb: 0.0,
        mean_degree: 0.0,
        lagged_events: lagged,
        visible_before_expiry: None,
        visible_after_expiry: None,
        forged_accepted: forged,
        stale_accepted: stale,
        sos: None,
        background: None,
        flooder_bytes_sent: (0..plan.roles.len() as Slot)
            .filter(|s| plan.roles[*s as usize] == Role::Flooder)
            .map(|s| world.net.bytes(s).0)
            .sum(),
        saturation,
        timeline,
        wall_secs: 0.0,
        setup_secs: 0.0,
        privacy,
        spam,
    }
}
