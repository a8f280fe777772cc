//! How a node is set up: where it keeps its data, where it listens, whom it
//! dials first, how hard its reports are to forge, how much it stores.
//!
//! The trusted circle's timers and a mailbox host's bounds
//! ([`CircleConfig`], [`MailboxLimits`]) live here too, below the circle
//! modules that read them (re-exported from `crate::circle`).
//!
//! [`NodeConfig::new`] gives production defaults; tests override the fields
//! they care about (`memory_transport`, `clock`, a low `difficulty` and
//! `policy.min_difficulty`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use ronde_protocol::circle::{JourneyConfig, SosConfig};
use ronde_protocol::directory::DirectoryPublicKey;
use ronde_protocol::Policy;

use crate::clock::{Clock, SystemClock};

/// The proof-of-work difficulty this node stamps its reports with
/// (about 100 ms on a phone core).
pub const DEFAULT_DIFFICULTY: u8 = ronde_protocol::pow::DEFAULT_DIFFICULTY;

/// Default bound on the number of reports kept on disk.
pub const DEFAULT_MAX_REPORTS: usize = 10_000;

/// Default proof-of-work difficulty of flags, the relays' default minimum.
pub const DEFAULT_FLAG_DIFFICULTY: u8 = 18;

/// Default period of the directory refresh.
pub const DEFAULT_DIRECTORY_REFRESH: Duration = Duration::from_secs(600);

/// Default number of areas this node follows: its own and the 8 around it.
pub const DEFAULT_MAX_AREAS: usize = 9;

/// How long a relay's circuit reservation lasts (libp2p's default): a
/// private phone renews it every 45 minutes over the connection it holds.
pub const DEFAULT_RELAY_RESERVATION_DURATION: Duration = Duration::from_secs(60 * 60);

/// The most areas any node may follow, and so the most area subscriptions
/// this node accepts from one peer. 256 areas of about 25 km² cover a large
/// metropolitan area, enough for a relay; the gossip frame limit is sized
/// so that a subscription list this long still fits in one RPC.
pub const MAX_PEER_AREAS: usize = 256;

/// Default period of the libp2p ping on each connection. The ping
/// measures the round trip behind the mesh's latency bonus
/// (docs/protocol.md §3.2; libp2p pings a connection as soon as it is
/// established, so every link has its round trip at once) and is the only
/// traffic of an idle link, so it also keeps NAT mappings alive: 4
/// minutes stays under the shortest carrier-grade NAT timeout known to us
/// (a French mobile network, under 4.5 minutes), at a quarter of the
/// bytes and radio wake-ups of the 60 s used before (see
/// docs/performance.md, "Where a phone's bytes go").
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(240);

/// The gossipsub mesh of one area topic, and when to send IDONTWANT.
///
/// Each report crosses every mesh link of every node that gets it (both
/// ways when the two ends forward it at the same moment), so the copies a
/// node receives grow with the mesh degree. In `ronde sim` (200 phones,
/// bare gossipsub on the same links), libp2p's defaults (D = 6) gave 5.0
/// duplicates per delivered report, D = 5: 4.3, D = 4: 3.2, D = 3: 1.8;
/// the price is latency, p99 357 → 550 ms from D = 6 to D = 3, still well
/// under a second. Reports are small and a phone's data plan and battery
/// matter more than 200 ms, so the default is D = 3. IDONTWANT (gossipsub
/// v1.2) does not help here: at these link latencies a copy is usually
/// on its way before the IDONTWANT arrives, and sending one to every mesh
/// peer for every report cost 0.1 MB per phone per hour for no fewer
/// duplicates; it stays at libp2p's threshold (messages of 1000 bytes or
/// more, never a report).
/// Figures in `docs/performance.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GossipTuning {
    /// Target mesh degree D.
    pub mesh_n: usize,
    /// Below this many mesh peers, the heartbeat grafts more (D_low).
    pub mesh_n_low: usize,
    /// Above this many, it prunes back to `mesh_n` (D_high).
    pub mesh_n_high: usize,
    /// Mesh peers that must be outbound connections (D_out < D_low,
    /// D_out ≤ D / 2: resists eclipse by inbound connections).
    pub mesh_outbound_min: usize,
    /// Peers outside the mesh told about recent reports (IHAVE) at each
    /// heartbeat (D_lazy). Each id is advertised at three heartbeats, 34
    /// bytes each time: at D_lazy = 6 about 600 bytes per report per node,
    /// more than the two or three copies of the report a node receives.
    pub gossip_lazy: usize,
    /// Send IDONTWANT to the mesh for every received message of at least
    /// this many bytes, so that peers do not forward a copy we already
    /// have.
    pub idontwant_threshold: usize,
    /// Of the peers kept when a mesh is pruned back to D, how many are
    /// the best-scoring ones (D_score); the others are drawn at random, so
    /// that peers who are merely close cannot fill a mesh (eclipse).
    pub retain_scores: usize,
    /// Every this many heartbeats, a mesh whose median score is under
    /// `opportunistic_graft_threshold` grafts two peers that score above
    /// that median (opportunistic grafting).
    pub opportunistic_graft_ticks: u64,
    /// See `opportunistic_graft_ticks` (score points).
    pub opportunistic_graft_threshold: u32,
    /// The application score of the fastest links, falling to 0 for slow
    /// ones (`crate::mesh_score`): what makes pruning and opportunistic
    /// grafting keep the fast links. 0: off.
    pub latency_bonus: u32,
    /// The application score of a gossip hub (`crate::mesh_score`): a
    /// relay the city's verified directory lists with the `gossip` role,
    /// or one in [`NodeConfig::gossip_hubs`]. It outscores any phone, so
    /// pruning always keeps a hub in the mesh. 0: hubs are peers like any
    /// other.
    pub hub_bonus: u32,
    /// How long one second of gossipsub's own timers lasts: 1 s, except in
    /// a simulation whose clock is dilated (`ronde sim --dilation`), where
    /// the backoffs, the IWANT follow-up time, the caches and the score
    /// decay must stretch with the heartbeat, or honest peers are punished
    /// for promises the dilated links could not keep in time.
    pub time_unit: Duration,
    /// Publish an own (or fluffed) report to every subscribed peer rather
    /// than to the mesh: libp2p's default, **off** here, since with it the
    /// first hop of a report, the city relay included, learns who wrote it
    /// (issue 13). On only to measure that (`ronde sim --flood-publish`).
    /// Applied by the node's configuration, not by [`GossipTuning::builder`]
    /// (the simulator's bare baseline keeps libp2p's default).
    pub flood_publish: bool,
}

impl GossipTuning {
    /// A gossipsub configuration builder with this mesh, this IDONTWANT
    /// threshold, the heartbeat, and libp2p's default backoffs, IWANT
    /// follow-up time and fanout TTL in [`GossipTuning::time_unit`]. The
    /// node (`crate::behaviour::gossipsub_config`) and the simulator's bare
    /// baseline both start from it, so they differ only in what they add.
    pub fn builder(&self, heartbeat: Duration) -> libp2p::gossipsub::ConfigBuilder {
        let t = |secs: u64| self.time(secs);
        let mut b = libp2p::gossipsub::ConfigBuilder::default();
        b.heartbeat_interval(heartbeat)
            .prune_backoff(t(60))
            .unsubscribe_backoff(t(10))
            .graft_flood_threshold(t(10))
            .iwant_followup_time(t(3))
            .fanout_ttl(t(60))
            .mesh_n(self.mesh_n)
            .mesh_n_low(self.mesh_n_low)
            .mesh_n_high(self.mesh_n_high)
            .mesh_outbound_min(self.mesh_outbound_min)
            .gossip_lazy(self.gossip_lazy)
            .retain_scores(self.retain_scores)
            .opportunistic_graft_ticks(self.opportunistic_graft_ticks)
            .idontwant_message_size_threshold(self.idontwant_threshold);
        b
    }

    /// `secs` seconds in [`GossipTuning::time_unit`].
    pub fn time(&self, secs: u64) -> Duration {
        self.time_unit.mul_f64(secs as f64)
    }

    /// A mesh of degree `n` with libp2p's proportions around it (D_low =
    /// ⌈5n/6⌉, D_high = 2n, D_out = min(n/2, 2), D_lazy = n, D_score = 4,
    /// opportunistic grafting every 60 heartbeats under 3 points) and
    /// libp2p's IDONTWANT threshold, without the latency bonus: what
    /// `ronde sim --mesh-n` compares. The node's default is
    /// [`GossipTuning::default`].
    pub fn mesh(n: usize) -> GossipTuning {
        let n = n.max(1);
        GossipTuning {
            mesh_n: n,
            mesh_n_low: (5 * n).div_ceil(6),
            mesh_n_high: 2 * n,
            mesh_outbound_min: (n / 2).min(2),
            gossip_lazy: n,
            idontwant_threshold: IDONTWANT_THRESHOLD,
            retain_scores: 4,
            opportunistic_graft_ticks: 60,
            opportunistic_graft_threshold: 3,
            latency_bonus: 0,
            hub_bonus: 0,
            time_unit: Duration::from_secs(1),
            flood_publish: false,
        }
    }

    /// A phone's mesh beside a gossip hub (docs/protocol.md §3.2;
    /// [`NodeConfig::gossip_beside_hubs`]): D = 2, the hub and the fastest
    /// phone peer, kept by the hub bonus and the latency bonus (D_low 2,
    /// D_high 4, both kept peers chosen by score when a mesh is pruned).
    /// The hub carries each report to all its phones in one hop; the phone
    /// peers carry it to other hubs' phones and keep the mesh whole when a
    /// hub is away. At 1000 phones in `ronde sim`: 1.4 duplicates per
    /// delivered report and a p99 1.4 times the lower bound, where D = 3
    /// without hubs gave 3.6 times.
    pub fn around_hubs() -> GossipTuning {
        GossipTuning {
            mesh_n: DEFAULT_HUB_MESH_N,
            mesh_n_low: DEFAULT_HUB_MESH_N,
            mesh_n_high: DEFAULT_HUB_MESH_N_HIGH,
            retain_scores: DEFAULT_HUB_MESH_N,
            ..GossipTuning::default()
        }
    }

    /// A gossip hub's mesh (a city relay with the directory's `gossip`
    /// role): every phone of an area in the mesh (D = D_low =
    /// [`HUB_MESH_N`]), no outbound quota (phones dial the relay, not the
    /// other way round), and IDONTWANT for every report, so that the
    /// phones it reached do not send it back.
    pub fn hub() -> GossipTuning {
        GossipTuning {
            mesh_n: HUB_MESH_N,
            mesh_n_low: HUB_MESH_N,
            mesh_n_high: 2 * HUB_MESH_N,
            mesh_outbound_min: 0,
            retain_scores: HUB_MESH_N,
            idontwant_threshold: 1,
            ..GossipTuning::default()
        }
    }
}

/// A phone's mesh degree beside a gossip hub ([`GossipTuning::around_hubs`]).
pub const DEFAULT_HUB_MESH_N: usize = 2;

/// A phone's D_high beside a gossip hub.
pub const DEFAULT_HUB_MESH_N_HIGH: usize = 4;

/// A gossip hub's mesh degree: more phones than one relay holds
/// connections to in one area, so that every one of them is in the mesh.
pub const HUB_MESH_N: usize = 4096;

/// The default hub bonus (`crate::mesh_score`): above the most a phone
/// scores (a latency bonus of 10 and a topic score capped at 20), below
/// the 50 points of one invalid message.
pub const DEFAULT_HUB_BONUS: u32 = 40;

/// The default IDONTWANT threshold (libp2p's): above any report.
pub const IDONTWANT_THRESHOLD: usize = 1000;

/// The default mesh degree.
pub const DEFAULT_MESH_N: usize = 3;

/// The default D_high: a mesh of 5 is pruned back to the 3 best-scoring.
pub const DEFAULT_MESH_N_HIGH: usize = 5;

/// The default latency bonus (`crate::mesh_score`).
pub const DEFAULT_LATENCY_BONUS: u32 = 10;

impl Default for GossipTuning {
    /// Ronde's mesh (issue 19 §1, docs/protocol.md §3): D = 3 kept by
    /// link speed. The latency bonus (up to 10 points) outweighs what
    /// gossip's own score gives a mesh peer in its first minutes; every
    /// 30 heartbeats a mesh whose median peer scores under 8 (a median
    /// link slower than about 100 ms round trip) grafts two peers scoring
    /// above it, and a mesh of 5 is pruned back to its 3 best. In
    /// `ronde sim` (200 phones, same run, same mesh without the bonus):
    /// 1.44 duplicates per delivered report instead of 1.56, p99 561 ms
    /// instead of 580 ms. The proportions of [`GossipTuning::mesh`] (D_high
    /// = 6, no bonus) gave 1.78 duplicates.
    fn default() -> Self {
        GossipTuning {
            mesh_n_high: DEFAULT_MESH_N_HIGH,
            retain_scores: DEFAULT_MESH_N,
            opportunistic_graft_ticks: 30,
            opportunistic_graft_threshold: 8,
            latency_bonus: DEFAULT_LATENCY_BONUS,
            hub_bonus: DEFAULT_HUB_BONUS,
            ..GossipTuning::mesh(DEFAULT_MESH_N)
        }
    }
}

/// Everything [`crate::Node::start`] needs.
#[derive(Clone)]
pub struct NodeConfig {
    /// Directory of the report database (created if missing).
    pub data_dir: PathBuf,
    /// Addresses to listen on. With `memory_transport`, use `/memory/0`.
    pub listen: Vec<Multiaddr>,
    /// Peers dialed at start and added to the Kademlia routing table (their
    /// address should end with `/p2p/<peer id>` to be added to the DHT).
    pub bootstrap: Vec<Multiaddr>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// Where the person is at start, to follow the areas around it.
    pub location: Option<(f64, f64)>,
    /// What incoming reports must satisfy.
    pub policy: Policy,
    /// Proof-of-work difficulty of the reports this node makes.
    pub difficulty: u8,
    /// Bound on stored reports; when full, the most crowded cell of the
    /// most crowded area gives up its oldest report (see [`crate::store`]).
    pub max_reports: usize,
    /// How a full store chooses the report it gives up. Keep the default:
    /// the other rule exists to measure the defence against floods.
    pub eviction: crate::store::Eviction,
    /// How often the store's background thread makes recent writes
    /// durable (sled's own default, 500 ms); `None`: no such thread, only
    /// the store's explicit flushes. Keep the default: `None` is for the
    /// simulator, where thousands of stores share one process (see
    /// [`crate::store::SledStore::open_with`]).
    pub store_flush_every: Option<Duration>,
    /// Bound on the new reports each peer may bring per area per minute
    /// (see [`crate::new_reports`]); `None`: unbounded (only to measure the
    /// defence against floods).
    pub new_report_bound: Option<crate::new_reports::NewReportBound>,
    /// The rule that makes untokened reports of an area under flood need
    /// more proof of work (see [`crate::flood_guard`]); `None`: off (tests
    /// that publish many cheap reports into one area).
    pub flood_rule: Option<crate::flood_guard::FloodRule>,
    /// Most areas this node follows at once (9 on a phone; a relay may follow
    /// up to [`MAX_PEER_AREAS`]).
    pub max_areas: usize,
    /// Source of the time.
    pub clock: Arc<dyn Clock>,
    /// Use libp2p's in-process memory transport only (no TCP/QUIC): for tests.
    pub memory_transport: bool,
    /// Gossipsub heartbeat interval.
    pub heartbeat: Duration,
    /// Gossipsub's mesh and IDONTWANT settings: what one report costs on
    /// the wire against how fast it arrives (see [`GossipTuning`]).
    pub gossip: GossipTuning,
    /// How often each connection is pinged (liveness and round-trip time).
    /// Gossip and Yamux already notice most dead links; on a phone with
    /// ~16 connections a ping every 15 s (libp2p's default) costs about
    /// 0.5 MB an hour, every 60 s about a quarter of that.
    pub ping_interval: Duration,
    /// Period of Kademlia's own bootstrap (a lookup of this node's id and
    /// a refresh of its routing table), libp2p's 5 minutes by default;
    /// `None`: only the bootstrap at start and libp2p's automatic one when
    /// the routing table changes. `ronde sim --kad-bootstrap` measures
    /// what it costs a phone (docs/performance.md).
    pub kad_bootstrap_interval: Option<Duration>,
    /// How often expired reports are purged from disk.
    pub purge_interval: Duration,
    /// How often queued reports are retried and dropped once expired.
    pub pending_retry_interval: Duration,
    /// Cap on established connections (all directions).
    pub max_connections: u32,
    /// Close connections idle for this long.
    pub idle_timeout: Duration,
    /// Ask peers for the live reports they hold when following a new area
    /// (`/ronde/sync/2`, or `/1` with older peers).
    pub sync: bool,
    /// An injected raw transport, e.g. the emulated links of `ronde-sim`:
    /// when set, it replaces TCP/QUIC and `memory_transport`, and the node
    /// wraps it with Noise and Yamux exactly as it wraps the memory
    /// transport. `None` outside simulations.
    pub sim_transport: Option<SimTransportFactory>,
    /// Offer circuit relay v2 to other peers (phones behind NAT reserve a
    /// slot and are reached through this node) and answer Kademlia queries
    /// as a server. For always-on nodes such as a city relay.
    pub relay_server: bool,
    /// Addresses at which this node is reachable from outside (e.g. a city
    /// relay's public IP and port), announced as confirmed external
    /// addresses. A relay server only serves once it has one; with
    /// `relay_server` and none given, its listen addresses are used.
    pub external_addresses: Vec<Multiaddr>,
    /// Every peer can dial this node's listen addresses directly (the
    /// demo's phones on the in-process memory transport, where AutoNAT has
    /// nothing it can test): the node is public from the start and never
    /// reserves a relay circuit, as with `external_addresses`. `false` on a
    /// real phone, which learns it from AutoNAT.
    pub directly_reachable: bool,
    /// With `relay_server`: how long a circuit reservation lasts before the
    /// phone must renew it (libp2p's default, an hour; a phone renews at
    /// three quarters of it, on the same connection).
    pub relay_reservation_duration: Duration,
    /// Host mailboxes (`/ronde/mailbox/1`): keep envelopes for offline
    /// recipients and hold travellers' dead-man's switches, releasing them
    /// into the recipients' mailboxes when due. For always-on nodes.
    pub mailbox_host: bool,
    /// Mailbox hosts this node uses for its own circle (with a
    /// `/p2p/<peer id>` suffix), besides the hosts it discovers among its
    /// peers. Its contacts must use at least one of the same hosts.
    pub mailbox_peers: Vec<Multiaddr>,
    /// Gossip hubs this node was configured with (a city's app ships its
    /// relays), besides the relays the configured cities' verified
    /// directories list with the `gossip` role: they get
    /// [`GossipTuning::hub_bonus`] (docs/protocol.md §3.2).
    pub gossip_hubs: Vec<libp2p::PeerId>,
    /// The mesh that replaces [`NodeConfig::gossip`] when the node knows a
    /// gossip hub at start: one in `gossip_hubs`, or one listed by a
    /// directory of a configured city it holds from an earlier run (a
    /// phone's first run in a city keeps `gossip` until it restarts).
    /// [`GossipTuning::around_hubs`] by default; `None`: always `gossip`
    /// (a hub itself, or a measurement that sets the mesh).
    pub gossip_beside_hubs: Option<GossipTuning>,
    /// Timers and limits of the trusted circle.
    pub circle: CircleConfig,
    /// Where to keep a **stable** libp2p identity (see [`crate::peer_key`]):
    /// for always-on nodes that phones must find again after a restart (a
    /// city relay, a mailbox host). `None` (phones): a fresh peer id at
    /// every start, so that peers cannot link one session to the next.
    pub identity_file: Option<PathBuf>,
    /// Public keys of the cities whose signed directory of safe places and
    /// mediators this node fetches from its peers (`/ronde/directory/1`),
    /// verifies and keeps (see [`crate::directory`]). Empty: none.
    pub city_keys: Vec<DirectoryPublicKey>,
    /// How often the node asks connected peers for a newer directory of its
    /// cities (it also asks every peer when it connects), and drops a
    /// directory that expired.
    pub directory_refresh: Duration,
    /// Proof-of-work difficulty of the flags this node seals against a
    /// place (a relay refuses fewer bits than its `flag_min_difficulty`,
    /// 18 by default).
    pub flag_difficulty: u8,
    /// Where flags that peers send over `/ronde/flag/1` go (a city relay
    /// counts them). `None`: this node does not take flags, and does not
    /// announce the protocol.
    pub flag_sink: Option<crate::directory::FlagSink>,
    /// Where requests for anonymous tokens over `/ronde/token/1` go (a
    /// city relay's issuer, [`crate::tokens`]). `None`: this node does not
    /// issue tokens, and does not announce the protocol.
    pub token_sink: Option<crate::tokens::TokenSink>,
    /// Keep the token wallet topped up by itself ([`AutoTokens`]): `None`
    /// fetches tokens only when the embedder calls
    /// [`crate::Node::fetch_tokens`] (a relay, tests). Phones set it
    /// (`ronde node` and the phone library do, by default).
    pub auto_tokens: Option<AutoTokens>,
    /// The stem phase of this node's own reports (`/ronde/stem/1`, see
    /// [`crate::stem`]): `None` publishes them straight to the gossip, as
    /// before the stem existed (the simulator's baseline). The node always
    /// answers stem requests.
    pub stem: Option<ronde_protocol::stem::StemParams>,
    /// Seed of the stem's random choices (the epoch's stem peers, the fluff
    /// coin, the delays). `None` (the default, and the only safe choice on a
    /// real node: predictable choices would help a spy): drawn from the
    /// operating system. `ronde sim` sets one per node from its run seed,
    /// so that a run replays with the same stems.
    pub stem_seed: Option<u64>,
    /// Simulation only: told, for every report this node receives from a
    /// peer (gossip or stem), the report id and that peer, the first time
    /// and every time: what a spy would log. `None` outside simulations.
    pub first_hop_tap: Option<FirstHopTap>,
    /// Tests only, on a mailbox host: told every `/ronde/mailbox/1`
    /// request this node receives, with the peer and the connection it
    /// came on, before it is answered: the complete log a hostile host
    /// would keep. `None` outside tests.
    pub mailbox_tap: Option<MailboxTap>,
}

/// See [`NodeConfig::first_hop_tap`].
pub type FirstHopTap = Arc<dyn Fn(ronde_protocol::ReportId, libp2p::PeerId) + Send + Sync>;

/// See [`NodeConfig::mailbox_tap`].
pub type MailboxTap = Arc<
    dyn Fn(libp2p::PeerId, libp2p::swarm::ConnectionId, &crate::circle::wire::MailboxRequest)
        + Send
        + Sync,
>;

/// A raw, reliable, ordered byte stream of an injected transport (see
/// [`NodeConfig::sim_transport`]).
pub trait RawStream: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static {}
impl<T: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static> RawStream for T {}

/// Makes the raw transport of one node (called once per swarm built: the
/// node's, and each identity of its circle client).
pub type RawTransportFn =
    dyn Fn() -> libp2p::core::transport::Boxed<Box<dyn RawStream>> + Send + Sync + 'static;

/// Wraps the multiplexer of every connection an injected transport makes
/// (the simulator's per-protocol byte meter).
pub type MuxerWrapFn = dyn Fn(libp2p::core::muxing::StreamMuxerBox) -> libp2p::core::muxing::StreamMuxerBox
    + Send
    + Sync
    + 'static;

/// An injected transport (see [`NodeConfig::sim_transport`]): raw streams,
/// upgraded by the node with Noise and Yamux exactly as the memory
/// transport is, and optionally a wrapper around each connection's
/// multiplexer.
#[derive(Clone)]
pub struct SimTransportFactory {
    raw: Arc<RawTransportFn>,
    wrap_muxer: Option<Arc<MuxerWrapFn>>,
}

impl SimTransportFactory {
    /// Raw streams from `raw`, multiplexers left as they are.
    pub fn new(raw: Arc<RawTransportFn>) -> Self {
        SimTransportFactory {
            raw,
            wrap_muxer: None,
        }
    }

    /// The same, with every connection's multiplexer passed through `wrap`.
    pub fn with_muxer_wrap(mut self, wrap: Arc<MuxerWrapFn>) -> Self {
        self.wrap_muxer = Some(wrap);
        self
    }

    /// The authenticated, multiplexed transport for identity `key`.
    pub fn upgraded(
        &self,
        key: &libp2p::identity::Keypair,
    ) -> Result<
        libp2p::core::transport::Boxed<(libp2p::PeerId, libp2p::core::muxing::StreamMuxerBox)>,
        Box<dyn std::error::Error + Send + Sync>,
    > {
        use libp2p::core::muxing::StreamMuxerBox;
        use libp2p::core::{upgrade, Transport};
        let wrap = self.wrap_muxer.clone();
        Ok((self.raw)()
            .upgrade(upgrade::Version::V1)
            .authenticate(libp2p::noise::Config::new(key)?)
            .multiplex(libp2p::yamux::Config::default())
            .map(move |(peer, muxer), _| {
                let muxer = StreamMuxerBox::new(muxer);
                let muxer = match &wrap {
                    Some(wrap) => wrap(muxer),
                    None => muxer,
                };
                (peer, muxer)
            })
            .boxed())
    }
}

/// Whether this build speaks QUIC: ronde-node's `quic` feature, on by
/// default, off in the phone library (crates/ffi). Without it the node
/// listens and dials on TCP only: a QUIC listen address is refused at
/// start, a QUIC bootstrap or mailbox address is skipped when the same
/// peer is given with another address and refused when not, and a peer's
/// QUIC addresses learnt later are never dialled (its TCP ones are).
pub const QUIC: bool = cfg!(feature = "quic");

/// Whether `addr` is a QUIC address (`/udp/<port>/quic-v1`, or the draft
/// `/quic`).
pub fn is_quic(addr: &Multiaddr) -> bool {
    addr.iter()
        .any(|p| matches!(p, Protocol::QuicV1 | Protocol::Quic))
}

impl NodeConfig {
    /// The mesh this node starts with: [`NodeConfig::gossip_beside_hubs`]
    /// (keeping `gossip`'s time unit and flood publishing) when it knows a
    /// gossip hub, configured or `listed` by a directory it holds; else
    /// [`NodeConfig::gossip`].
    pub fn mesh_at_start(&self, listed: bool) -> GossipTuning {
        match self.gossip_beside_hubs {
            Some(beside) if listed || !self.gossip_hubs.is_empty() => GossipTuning {
                time_unit: self.gossip.time_unit,
                flood_publish: self.gossip.flood_publish,
                ..beside
            },
            _ => self.gossip,
        }
    }

    /// Production defaults: listen on every interface on a random TCP port
    /// and, if this build speaks [`QUIC`], a random QUIC port; mDNS on, the
    /// system clock, the network policy and difficulty.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let listen: &[&str] = if QUIC {
            &["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"]
        } else {
            &["/ip4/0.0.0.0/tcp/0"]
        };
        let listen = listen.iter().filter_map(|s| s.parse().ok()).collect();
        NodeConfig {
            data_dir: data_dir.into(),
            listen,
            bootstrap: Vec::new(),
            mdns: true,
            location: None,
            policy: Policy::default(),
            difficulty: DEFAULT_DIFFICULTY,
            max_reports: DEFAULT_MAX_REPORTS,
            eviction: crate::store::Eviction::default(),
            store_flush_every: Some(crate::store::DEFAULT_FLUSH_EVERY),
            new_report_bound: Some(crate::new_reports::NewReportBound::DEFAULT),
            flood_rule: Some(crate::flood_guard::FloodRule::default()),
            max_areas: DEFAULT_MAX_AREAS,
            clock: Arc::new(SystemClock),
            memory_transport: false,
            heartbeat: Duration::from_secs(1),
            gossip: GossipTuning::default(),
            ping_interval: DEFAULT_PING_INTERVAL,
            kad_bootstrap_interval: Some(Duration::from_secs(300)),
            purge_interval: Duration::from_secs(30),
            pending_retry_interval: Duration::from_secs(10),
            max_connections: 64,
            idle_timeout: Duration::from_secs(120),
            sync: true,
            sim_transport: None,
            relay_server: false,
            external_addresses: Vec::new(),
            directly_reachable: false,
            relay_reservation_duration: DEFAULT_RELAY_RESERVATION_DURATION,
            mailbox_host: false,
            mailbox_peers: Vec::new(),
            gossip_hubs: Vec::new(),
            gossip_beside_hubs: Some(GossipTuning::around_hubs()),
            circle: CircleConfig::default(),
            identity_file: None,
            city_keys: Vec::new(),
            directory_refresh: DEFAULT_DIRECTORY_REFRESH,
            flag_difficulty: DEFAULT_FLAG_DIFFICULTY,
            flag_sink: None,
            token_sink: None,
            auto_tokens: None,
            stem: Some(ronde_protocol::stem::StemParams::default()),
            stem_seed: None,
            first_hop_tap: None,
            mailbox_tap: None,
        }
    }

    /// A configuration for tests: in-process memory transport on
    /// `/memory/0`, no mDNS, difficulty and minimum difficulty 8 (flags
    /// too), a short heartbeat, fast circle timers, a directory refresh
    /// every 500 ms. Override `clock` as needed.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        let mut c = NodeConfig::new(data_dir);
        c.listen = "/memory/0".parse().into_iter().collect();
        c.memory_transport = true;
        c.mdns = false;
        c.difficulty = 8;
        c.policy.min_difficulty = 8;
        c.heartbeat = Duration::from_millis(200);
        c.purge_interval = Duration::from_millis(500);
        c.pending_retry_interval = Duration::from_millis(500);
        c.circle = CircleConfig::for_tests();
        c.directory_refresh = Duration::from_millis(500);
        c.flag_difficulty = 8;
        // Tests publish many reports at 8 bits into one area.
        c.flood_rule = None;
        c
    }
}

impl fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The location is deliberately left out: it must never reach a log.
        f.debug_struct("NodeConfig")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("mdns", &self.mdns)
            .field("location", &self.location.map(|_| "<set>"))
            .field("policy", &self.policy)
            .field("difficulty", &self.difficulty)
            .field("max_reports", &self.max_reports)
            .field("eviction", &self.eviction)
            .field("store_flush_every", &self.store_flush_every)
            .field("new_report_bound", &self.new_report_bound)
            .field("flood_rule", &self.flood_rule)
            .field("max_areas", &self.max_areas)
            .field("memory_transport", &self.memory_transport)
            .field("heartbeat", &self.heartbeat)
            .field("gossip", &self.gossip)
            .field("ping_interval", &self.ping_interval)
            .field("kad_bootstrap_interval", &self.kad_bootstrap_interval)
            .field("purge_interval", &self.purge_interval)
            .field("max_connections", &self.max_connections)
            .field("sync", &self.sync)
            .field("relay_server", &self.relay_server)
            .field("external_addresses", &self.external_addresses)
            .field("directly_reachable", &self.directly_reachable)
            .field(
                "relay_reservation_duration",
                &self.relay_reservation_duration,
            )
            .field("mailbox_host", &self.mailbox_host)
            .field("mailbox_peers", &self.mailbox_peers)
            .field("gossip_hubs", &self.gossip_hubs)
            .field("gossip_beside_hubs", &self.gossip_beside_hubs)
            .field("circle", &self.circle)
            .field("identity_file", &self.identity_file)
            .field("city_keys", &self.city_keys)
            .field("directory_refresh", &self.directory_refresh)
            .field("flag_difficulty", &self.flag_difficulty)
            .field("flag_sink", &self.flag_sink.as_ref().map(|_| "<set>"))
            .field("token_sink", &self.token_sink.as_ref().map(|_| "<set>"))
            .field("auto_tokens", &self.auto_tokens)
            .field("stem", &self.stem)
            .field("stem_seed", &self.stem_seed.map(|_| "<set>"))
            .field(
                "first_hop_tap",
                &self.first_hop_tap.as_ref().map(|_| "<set>"),
            )
            .field("mailbox_tap", &self.mailbox_tap.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

/// Tunables of the trusted circle (see [`NodeConfig::circle`]).
#[derive(Debug, Clone)]
pub struct CircleConfig {
    /// How often the node looks at its clock for journey and SOS deadlines,
    /// due switches and retries.
    pub tick: Duration,
    /// How often the node fetches its mailboxes from the hosts it knows.
    pub mailbox_poll_interval: Duration,
    /// How often it fetches them in the background once its push endpoint
    /// is registered (the push wakes it for mail; this poll only catches a
    /// lost push). Default 15 minutes: four radio wake-ups an hour.
    pub background_poll_interval: Duration,
    /// How long an envelope that no path took waits before the next try.
    pub retry_interval: Duration,
    /// Timeout of one request (direct delivery or mailbox).
    pub request_timeout: Duration,
    /// Bounds of the mailboxes this node hosts (with
    /// [`NodeConfig::mailbox_host`]).
    pub mailbox_limits: MailboxLimits,
    /// Journeys: position interval, optional silence timeout.
    pub journey: JourneyConfig,
    /// SOS re-sends.
    pub sos: SosConfig,
    /// Inbox items that carry a contact's position (a journey's destination
    /// and positions, an overdue alert's last position, an SOS and its
    /// updates) are deleted this long after their journey or SOS ended
    /// (seconds; see `circle::client::inbox`). Default a day.
    pub inbox_position_retention_secs: u64,
}

impl Default for CircleConfig {
    fn default() -> Self {
        CircleConfig {
            tick: Duration::from_secs(1),
            mailbox_poll_interval: Duration::from_secs(30),
            background_poll_interval: Duration::from_secs(15 * 60),
            retry_interval: Duration::from_secs(15),
            request_timeout: Duration::from_secs(10),
            mailbox_limits: MailboxLimits::default(),
            journey: JourneyConfig::default(),
            sos: SosConfig::default(),
            inbox_position_retention_secs: 86_400,
        }
    }
}

impl CircleConfig {
    /// Fast timers for tests.
    pub fn for_tests() -> Self {
        CircleConfig {
            tick: Duration::from_millis(100),
            mailbox_poll_interval: Duration::from_millis(300),
            retry_interval: Duration::from_millis(300),
            request_timeout: Duration::from_secs(5),
            // Cheap work, so that debug builds deposit quickly.
            mailbox_limits: MailboxLimits {
                deposit_work_bits: 8,
                // The tests' push endpoints are local HTTP servers.
                push: crate::circle::host::PushSettings {
                    allow_local: true,
                    ..Default::default()
                },
                ..MailboxLimits::default()
            },
            ..CircleConfig::default()
        }
    }
}

/// Bounds of a mailbox host (with [`NodeConfig::mailbox_host`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxLimits {
    /// Envelopes are deleted this long after they were stored (seconds).
    pub retention_secs: u64,
    /// Most envelopes waiting in one mailbox.
    pub max_per_mailbox: usize,
    /// Most bytes of envelopes held in all.
    pub max_bytes: u64,
    /// Most dead-man's switches held (live ones plus tombstones).
    pub max_switches: usize,
    /// Most switches (live ones plus tombstones) deposited by one peer id.
    pub max_switches_per_peer: usize,
    /// Most switches deposited from one network: an IPv4 /24 or an IPv6
    /// /48, as the host sees the connection (peers that reach it through a
    /// relay count under the relay's).
    pub max_switches_per_network: usize,
    /// The proof of work (leading zero bits) a deposit must carry; this
    /// node also stamps its own deposits with it
    /// (`ronde_protocol::circle::switch::DEPOSIT_WORK_BITS` by default).
    pub deposit_work_bits: u8,
    /// Push wake-ups: registrations taken, their bounds, the pacing of
    /// the wake-ups (docs/circle.md §7.3).
    pub push: crate::circle::host::PushSettings,
}

impl Default for MailboxLimits {
    fn default() -> Self {
        MailboxLimits {
            retention_secs: 3 * 86_400,
            max_per_mailbox: 256,
            max_bytes: 256 * 1024 * 1024,
            max_switches: 1_000,
            max_switches_per_peer: 16,
            max_switches_per_network: 128,
            deposit_work_bits: ronde_protocol::circle::switch::DEPOSIT_WORK_BITS,
            push: crate::circle::host::PushSettings::default(),
        }
    }
}

/// How a phone fills its wallet of anonymous tokens (docs/protocol.md
/// §8.5) without being asked: once per day (token period), in the
/// foreground, as soon as the city's valid directory has a token key of
/// today and a relay that directory lists is connected, it asks that relay
/// for `batch` tokens, paying the issuance proof of work of `difficulty`
/// bits off the event loop. Never again that day, however many it spends:
/// a fetch that followed spending would tell the relay that this
/// connection just reported. A refusal, an error or an empty answer waits
/// `backoff` before the next try.
#[derive(Debug, Clone)]
pub struct AutoTokens {
    /// Tokens asked for each day (1..=24).
    pub batch: u8,
    /// The issuance proof of work the city's relays ask (25 bits by
    /// default, about 10 s on a phone).
    pub difficulty: u8,
    /// How often the node looks whether it can fetch.
    pub check_every: Duration,
    /// The wait after a failed or refused fetch.
    pub backoff: Duration,
}

impl Default for AutoTokens {
    fn default() -> AutoTokens {
        AutoTokens {
            batch: 8,
            // The city relay's default policy (`ronde_relay::tokens`).
            difficulty: 25,
            check_every: Duration::from_secs(60),
            backoff: Duration::from_secs(15 * 60),
        }
    }
}

/// The swarm settings of every Ronde swarm (the main one and the circle's
/// daily ones): connections idle for `idle` close, and substreams negotiate
/// their protocol in 0 round trips when the opener proposes one protocol
/// (multistream-select's `V1Lazy`: the proposal and the first request go
/// out together, and the answer confirms the protocol). Every request of a
/// request-response protocol opens a substream, so each stem hop, mailbox
/// fetch or sync request saves a round trip. The bytes on the wire are
/// those of `V1`; only the opener waits less. A peer that does not speak
/// the protocol makes the request fail when its answer is read instead of
/// before it is sent, which the node treats as any failed request.
pub(crate) fn swarm_config(c: libp2p::swarm::Config, idle: Duration) -> libp2p::swarm::Config {
    c.with_idle_connection_timeout(idle)
        .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_knows_a_hub_starts_with_the_mesh_beside_it() {
        let mut c = NodeConfig::new("/nonexistent");
        c.gossip.time_unit = Duration::from_secs(8);
        assert_eq!(c.mesh_at_start(false), c.gossip, "no hub: D = 3");
        let beside = c.mesh_at_start(true);
        assert_eq!(beside.mesh_n, DEFAULT_HUB_MESH_N, "a listed hub");
        assert_eq!(beside.time_unit, Duration::from_secs(8));
        c.gossip_hubs = vec![libp2p::PeerId::random()];
        assert_eq!(
            c.mesh_at_start(false).mesh_n,
            DEFAULT_HUB_MESH_N,
            "a configured hub"
        );
        // A hub itself, or a measurement that sets the mesh, keeps its own.
        c.gossip_beside_hubs = None;
        assert_eq!(c.mesh_at_start(true), c.gossip);
    }
}
