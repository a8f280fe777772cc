//! The libp2p stack of a node: transports, the combined
//! [`NetworkBehaviour`](libp2p::swarm::NetworkBehaviour), the gossipsub
//! configuration and peer-scoring parameters, the subscription filter, and
//! the `/ronde/sync/3` (and `/2`, `/1`) wire format (its codec is the generic one of
//! [`crate::codec`]).
//!
//! # Transports
//!
//! TCP and QUIC (with DNS resolution for bootstrap addresses), Noise and
//! Yamux, plus the relay client transport so a phone behind NAT can be
//! reached through a relay and then upgraded to a direct connection by
//! DCUtR. With [`NodeConfig::memory_transport`] the node uses libp2p's
//! in-process memory transport instead of TCP/QUIC (tests).
//!
//! # Roles and the trusted circle
//!
//! Every node speaks `/ronde/circle/1` (direct delivery of circle
//! envelopes); only nodes with [`NodeConfig::mailbox_host`] serve
//! `/ronde/mailbox/1` here. A node asks its mailbox hosts over other
//! connections, one identity per UTC day (`crate::circle::client::net`),
//! never from this swarm's peer id (phones take their hosts from their
//! configuration or the city's directory, not from identify).
//! Wire formats are in [`crate::circle::wire`].
//! [`NodeConfig::relay_server`] adds a circuit relay v2 server (a
//! [`Toggle`]d behaviour; it serves once the node has an external address)
//! and an AutoNAT v2 server (phones learn from it whether they are
//! reachable; `crate::reachability` reserves a circuit only when not), and
//! puts Kademlia in server mode.
//!
//! Every node also speaks `/ronde/directory/1` (it answers with the city
//! directory it holds) and sends `/ronde/flag/1`; only nodes with a
//! [`NodeConfig::flag_sink`] (relays) take flags. Wire formats are in
//! [`crate::directory::wire`].
//!
//! Every node speaks `/ronde/stem/1` ([`crate::stem`]): own reports walk a
//! stem of single peers before the gossip.
//!
//! # Gossip
//!
//! Reports travel on gossipsub, one topic per area
//! (`ronde/1/reports/<geohash-5>`). Messages are anonymous
//! ([`MessageAuthenticity::Anonymous`], [`ValidationMode::Anonymous`]): no
//! author peer id, no sequence number, no libp2p signature, so a report can
//! never be linked to the device that made it; the report carries its own
//! single-use key. The message id is the report id
//! ([`ReportId::of`] over the data, which also gives garbage a stable
//! hash-based id). Every message is validated by the event loop before it
//! is forwarded (`validate_messages`). Flood publishing is off: a node
//! publishes to its mesh peers only.
//!
//! # Peer scoring
//!
//! See [`peer_score_params`], [`area_topic_params`] and the thresholds
//! ([`GOSSIP_THRESHOLD`], [`PUBLISH_THRESHOLD`], [`GRAYLIST_THRESHOLD`]).
//! In short: honest peers never forward an invalid report (validation is
//! deterministic, and only reports that passed it are forwarded), so an
//! invalid one is strong evidence. One strike puts a peer below the gossip
//! threshold, two put it on the graylist, where everything it sends is
//! dropped unread.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::gossipsub::{
    self, IdentTopic, MaxCountSubscriptionFilter, MessageAuthenticity, MessageId, PeerScoreParams,
    PeerScoreThresholds, TopicHash, TopicScoreParams, TopicSubscriptionFilter, ValidationMode,
};
use libp2p::identity::Keypair;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    autonat, connection_limits, dcutr, identify, kad, mdns, noise, ping, relay, request_response,
    tcp, yamux, StreamProtocol, Swarm, Transport,
};
use ronde_protocol::{Area, ReportId, MAX_REPORT_SIZE};

use crate::circle::wire::{CircleCodec, CircleWire, MailboxCodec, MailboxWire};
use crate::codec::{self, invalid, Bounded, WireFormat};
use crate::config::{GossipTuning, NodeConfig, MAX_PEER_AREAS};
use crate::directory::wire::{DirectoryCodec, DirectoryWire, FlagCodec, FlagWire};
use crate::error::NodeError;
use crate::stem::wire::{StemCodec, StemWire};

/// Below this score a peer gets no IHAVE gossip from us and its IHAVE/IWANT
/// are ignored: one invalid report is enough.
pub const GOSSIP_THRESHOLD: f64 = -10.0;
/// Below this score we no longer publish our own reports to the peer.
pub const PUBLISH_THRESHOLD: f64 = -50.0;
/// Below this score every RPC from the peer is dropped unread (graylist):
/// two invalid reports, whatever good it did before.
pub const GRAYLIST_THRESHOLD: f64 = -80.0;
/// Peer exchange is only accepted from peers above this score, which only
/// long-standing, useful peers reach (PX is off by default anyway).
pub const ACCEPT_PX_THRESHOLD: f64 = 25.0;

/// Largest control part of one gossipsub RPC accepted or sent: a peer's
/// full subscription list ([`MAX_PEER_AREAS`] topics of about 27 encoded
/// bytes: about 7 KiB) and an IHAVE of [`MAX_IHAVE_LENGTH`] ids (34 bytes
/// each: about 4.4 KiB).
pub const MAX_CONTROL_SIZE: usize = 8 * 1024;
/// Gossipsub's `max_transmit_size`. A report is at most 192 bytes (about
/// 230 with its topic and protobuf framing) and an RPC carries at most
/// [`MAX_MESSAGES_PER_RPC`] of them, so 8 KiB would do for one frame; but
/// libp2p-gossipsub 0.50 checks this limit against *everything buffered*
/// on the inbound stream, not one frame (`validate_rpc_limits` is given the
/// whole read buffer), so a peer that sends a burst of small RPCs (a relay
/// forwarding ~50 reports at once) would have its stream dropped as
/// oversized. 64 KiB (libp2p's default) leaves room for a burst of about
/// 300 reports; the per-frame limits that matter are the control size and
/// the messages per RPC.
pub const MAX_TRANSMIT_SIZE: usize = 64 * 1024;
/// Most message ids in one IHAVE (gossipsub's default is 5000, which would
/// need a 170 KB frame). 128 is far above the reports an area sees within
/// the gossip window of a few heartbeats.
pub const MAX_IHAVE_LENGTH: usize = 128;
/// Most messages decoded from one RPC.
pub const MAX_MESSAGES_PER_RPC: usize = 32;

/// Protocol of the report sync request-response (`/ronde/sync/3`: the
/// request also lists the report ids the asker holds, which the answer
/// leaves out; preferred when asking).
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/ronde/sync/3");
/// The second version of the report sync (areas only, 2-byte report
/// lengths), still answered and asked for peers that know no newer one.
pub const SYNC_PROTOCOL_2: StreamProtocol = StreamProtocol::new("/ronde/sync/2");
/// The first version of the report sync (1-byte report lengths), still
/// answered and asked for peers that know no newer one: reports over 255
/// bytes (tokened ones) are left out of its answers.
pub const SYNC_PROTOCOL_1: StreamProtocol = StreamProtocol::new("/ronde/sync/1");
/// Most reports in one sync response.
pub const MAX_SYNC_REPORTS: usize = 256;
/// Most held report ids in one `/ronde/sync/3` request.
pub const MAX_SYNC_HELD: usize = 1024;
/// Bytes of a report id kept in a `/ronde/sync/3` request.
pub const HELD_ID_LEN: usize = 8;
/// Kademlia protocol name (a private DHT, not the IPFS one).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ronde/kad/1.0.0");
/// How often identify re-sends this node's information on each connection
/// (libp2p's default is 5 minutes). Changes of address or protocols are
/// pushed when they happen anyway; the periodic resend (about 700 bytes
/// each way) on a phone's ~14 connections would cost about 0.2 MB an hour
/// at 5 minutes.
pub const IDENTIFY_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// Identify protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/ronde/id/1.0.0";

#[allow(missing_docs)] // the derive generates an undocumented event enum
mod derived {
    use super::*;

    /// Every protocol a node speaks, driven by one `Swarm`.
    #[derive(libp2p::swarm::NetworkBehaviour)]
    pub struct Behaviour {
        /// Caps on connections (checked before anything else).
        pub limits: connection_limits::Behaviour,
        /// Exchange of listen addresses and supported protocols.
        pub identify: identify::Behaviour,
        /// Liveness.
        pub ping: ping::Behaviour,
        /// Peer discovery over the DHT, seeded by the bootstrap peers.
        pub kad: kad::Behaviour<kad::store::MemoryStore>,
        /// Peer discovery on the local network (config flag).
        pub mdns: Toggle<mdns::tokio::Behaviour>,
        /// Reachability through relays, for phones behind NAT.
        pub relay: relay::client::Behaviour,
        /// Hole punching: upgrade relayed connections to direct ones.
        pub dcutr: dcutr::Behaviour,
        /// Learn whether our addresses are reachable from outside.
        pub autonat: autonat::v2::client::Behaviour,
        /// The reports themselves.
        pub gossipsub: gossipsub::Behaviour<gossipsub::IdentityTransform, AreaFilter>,
        /// Catch-up on the live reports of an area (`/ronde/sync/2`, and
        /// `/1` for older peers).
        pub sync: request_response::Behaviour<SyncCodec>,
        /// Circuit relay v2 server ([`NodeConfig::relay_server`]).
        pub relay_server: Toggle<relay::Behaviour>,
        /// AutoNAT v2 server ([`NodeConfig::relay_server`]): dials back the
        /// addresses phones ask about, so they learn whether they are
        /// reachable (`crate::reachability`).
        pub autonat_server: Toggle<autonat::v2::server::Behaviour>,
        /// Direct delivery of circle envelopes (`/ronde/circle/1`).
        pub circle: request_response::Behaviour<CircleCodec>,
        /// Mailboxes and dead-man's switches (`/ronde/mailbox/1`): served
        /// with [`NodeConfig::mailbox_host`], used by every node.
        pub mailbox: request_response::Behaviour<MailboxCodec>,
        /// City directories (`/ronde/directory/1`): every node answers
        /// with the one it holds.
        pub directory: request_response::Behaviour<DirectoryCodec>,
        /// Flags against a place (`/ronde/flag/1`): taken with
        /// [`NodeConfig::flag_sink`] (relays), sent by every node.
        pub flags: request_response::Behaviour<FlagCodec>,
        /// Anonymous tokens (`/ronde/token/1`, [`crate::tokens`]): answered
        /// with [`NodeConfig::token_sink`] (relays), asked by every node.
        pub tokens: request_response::Behaviour<crate::tokens::TokenCodec>,
        /// The stem of reports before the gossip (`/ronde/stem/1`,
        /// [`crate::stem`]): every node relays.
        pub stem: request_response::Behaviour<StemCodec>,
    }
}
pub use derived::{Behaviour, BehaviourEvent};

/// Accepts only Ronde report topics (`ronde/1/reports/<area>`), for our own
/// subscriptions and for those peers announce.
#[derive(Debug, Clone, Copy, Default)]
pub struct AreaTopics;

impl TopicSubscriptionFilter for AreaTopics {
    fn can_subscribe(&mut self, topic_hash: &TopicHash) -> bool {
        Area::from_topic(topic_hash.as_str()).is_some()
    }
}

/// The subscription filter: Ronde topics only, at most [`MAX_PEER_AREAS`]
/// per peer (gossipsub's default filter would cap at 100 of any topic).
pub type AreaFilter = MaxCountSubscriptionFilter<AreaTopics>;

fn area_filter() -> AreaFilter {
    MaxCountSubscriptionFilter {
        filter: AreaTopics,
        max_subscribed_topics: MAX_PEER_AREAS,
        max_subscriptions_per_request: MAX_PEER_AREAS,
    }
}

/// The gossipsub message id: the report id of the data.
pub fn message_id(message: &gossipsub::Message) -> MessageId {
    MessageId::from(ReportId::of(&message.data).0.to_vec())
}

/// The gossip topic of an area.
pub fn area_topic(area: &Area) -> IdentTopic {
    IdentTopic::new(area.topic())
}

/// Global peer-score parameters.
///
/// * Topic scores (P1–P4) are set per area topic by [`area_topic_params`]
///   when the node subscribes, since areas are dynamic.
/// * `topic_score_cap` = 20: the positive score a peer can bank is small,
///   so good behaviour cannot buy room for invalid reports (two of them
///   cost 200).
/// * The application score (`crate::mesh_score`, weight 1): a bonus of up
///   to +10 for a fast link (so that the mesh keeps fast peers) and the
///   stem's penalty. With the topic cap, a peer banks at most +30: one
///   invalid report (−50) still puts it under the gossip threshold.
/// * P6, IP colocation: weight −5 over a threshold of 16 peers per IP.
///   Phones sit behind carrier-grade NAT, so many honest peers share an
///   IP; the threshold is high, and only beyond ~20 peers on one IP does
///   the penalty reach the graylist. It still limits how much of our
///   connection budget one host can fill with Sybils.
/// * P7, behaviour penalty (broken IWANT promises, GRAFT during backoff):
///   weight −1 per offence squared past 10, decaying over 10 minutes. A
///   broken promise is a message asked with IWANT that did not come within
///   3 s; a phone whose link stalls for a few seconds breaks several at
///   once through no fault of its own, so one stall must not push it under
///   the gossip threshold (it takes about 14 offences within 10 minutes,
///   and about 19 to reach the graylist, a few more for a peer with a good
///   record), while a peer that keeps advertising what it does not send
///   still ends there.
/// * Scores decay every second and are kept for an hour after a
///   disconnection, so a punished peer cannot reconnect to a clean slate.
pub fn peer_score_params(time_unit: Duration) -> PeerScoreParams {
    let t = |secs: u64| time_unit.mul_f64(secs as f64);
    PeerScoreParams {
        topics: HashMap::new(),
        topic_score_cap: 20.0,
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: -5.0,
        ip_colocation_factor_threshold: 16.0,
        behaviour_penalty_weight: -1.0,
        behaviour_penalty_threshold: 10.0,
        // Decay factors are per decay interval: both scale together.
        behaviour_penalty_decay: gossipsub::score_parameter_decay(Duration::from_secs(600)),
        decay_interval: t(1),
        retain_score: t(3600),
        ..PeerScoreParams::default()
    }
}

/// Score parameters of one area topic.
///
/// * P1, time in mesh: +0.01 per second, capped at +6 (10 minutes).
/// * P2, first deliveries: +1 per report first received from the peer,
///   capped at +10, decaying over 30 minutes (a report's lifetime).
/// * P3/P3b, mesh delivery rate: **off**. Reports are rare and bursty; a
///   quiet area would make every honest mesh peer look like it withholds
///   messages.
/// * P4, invalid messages: −50 × count², decaying over an hour. Honest
///   peers only forward reports they validated, and validation is
///   deterministic (expired and future-dated reports are *ignored*, not
///   rejected, so clock skew is not punished); so a rejected message (bad
///   signature, not enough work, garbage, oversized, wrong area) is strong
///   evidence. One puts the sender at −50 + at most +20 = −30 or less:
///   below [`GOSSIP_THRESHOLD`]. A second one gives −200 + at most +20:
///   below [`GRAYLIST_THRESHOLD`], whatever good the peer did before.
pub fn area_topic_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 600.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(1800)),
        first_message_deliveries_cap: 10.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -50.0,
        invalid_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(
            3600,
        )),
        ..TopicScoreParams::default()
    }
}

/// The score thresholds (see the constants).
pub fn peer_score_thresholds(tuning: &GossipTuning) -> PeerScoreThresholds {
    PeerScoreThresholds {
        gossip_threshold: GOSSIP_THRESHOLD,
        publish_threshold: PUBLISH_THRESHOLD,
        graylist_threshold: GRAYLIST_THRESHOLD,
        accept_px_threshold: ACCEPT_PX_THRESHOLD,
        opportunistic_graft_threshold: f64::from(tuning.opportunistic_graft_threshold),
    }
}

/// The gossipsub configuration (see the module documentation).
pub fn gossipsub_config(
    heartbeat: Duration,
    tuning: &GossipTuning,
) -> Result<gossipsub::Config, NodeError> {
    tuning
        .builder(heartbeat)
        .validation_mode(ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(message_id)
        .max_transmit_size(MAX_TRANSMIT_SIZE)
        .max_control_message_size(MAX_CONTROL_SIZE)
        .max_control_messages_sent(MAX_IHAVE_LENGTH)
        .max_publish_messages(MAX_MESSAGES_PER_RPC)
        // An own report would otherwise go to every subscribed peer at
        // once, the city relay included, telling it who wrote it; it
        // takes the stem first (`crate::stem`), and whoever fluffs it
        // sends it to its mesh only.
        .flood_publish(tuning.flood_publish)
        // Long enough that a report circulating for a while is not
        // re-validated; the store catches later duplicates.
        .duplicate_cache_time(tuning.time(300))
        .build()
        .map_err(|e| NodeError::Transport(format!("gossipsub config: {e}")))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Behaviour {
    fn new(
        key: &Keypair,
        relay: relay::client::Behaviour,
        config: &NodeConfig,
    ) -> Result<Self, BoxError> {
        let peer_id = key.public().to_peer_id();
        let mut gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
            MessageAuthenticity::Anonymous,
            gossipsub_config(config.heartbeat, &config.gossip)?,
            area_filter(),
        )?;
        gossipsub.with_peer_score(
            peer_score_params(config.gossip.time_unit),
            peer_score_thresholds(&config.gossip),
        )?;

        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config.set_query_timeout(Duration::from_secs(30));
        kad_config.set_periodic_bootstrap_interval(config.kad_bootstrap_interval);
        let mut kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        if config.relay_server {
            // Always-on and reachable: answer DHT queries.
            kad.set_mode(Some(kad::Mode::Server));
        }

        // Local discovery is a convenience: if the platform refuses the
        // multicast socket, run without it rather than not at all.
        let mdns = if config.mdns {
            match mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(error = %e, "mDNS unavailable; local discovery is off");
                    None
                }
            }
        } else {
            None
        };

        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_established_per_peer(Some(2))
            .with_max_pending_incoming(Some(16))
            .with_max_pending_outgoing(Some(16));

        let sync = codec::behaviour::<SyncWire>(
            request_response::ProtocolSupport::Full,
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(10))
                .with_max_concurrent_streams(16),
        );

        let circle = codec::behaviour::<CircleWire>(
            request_response::ProtocolSupport::Full,
            request_response::Config::default()
                .with_request_timeout(config.circle.request_timeout)
                .with_max_concurrent_streams(32),
        );
        // The client side's requests go over the circle's own connections
        // (`circle::client::net`), never from this swarm's peer id.
        let mailbox_support = if config.mailbox_host {
            request_response::ProtocolSupport::Inbound
        } else {
            request_response::ProtocolSupport::Outbound
        };
        let mailbox = codec::behaviour::<MailboxWire>(
            mailbox_support,
            request_response::Config::default()
                .with_request_timeout(config.circle.request_timeout)
                .with_max_concurrent_streams(32),
        );
        let relay_server = config.relay_server.then(|| {
            let relay_config = relay::Config {
                reservation_duration: config.relay_reservation_duration,
                ..relay::Config::default()
            };
            relay::Behaviour::new(peer_id, relay_config)
        });
        let directory = codec::behaviour::<DirectoryWire>(
            request_response::ProtocolSupport::Full,
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(30))
                .with_max_concurrent_streams(16),
        );
        let flag_support = if config.flag_sink.is_some() {
            request_response::ProtocolSupport::Full
        } else {
            request_response::ProtocolSupport::Outbound
        };
        let flags = codec::behaviour::<FlagWire>(
            flag_support,
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(10))
                .with_max_concurrent_streams(16),
        );

        let token_support = if config.token_sink.is_some() {
            request_response::ProtocolSupport::Full
        } else {
            request_response::ProtocolSupport::Outbound
        };
        let tokens = codec::behaviour::<crate::tokens::TokenWire>(
            token_support,
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(20))
                .with_max_concurrent_streams(8),
        );

        let stem = codec::behaviour::<StemWire>(
            request_response::ProtocolSupport::Full,
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(10))
                .with_max_concurrent_streams(16),
        );

        Ok(Behaviour {
            limits: connection_limits::Behaviour::new(limits),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_interval(IDENTIFY_INTERVAL)
                    .with_agent_version(format!("ronde/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(config.ping_interval)),
            kad,
            mdns: Toggle::from(mdns),
            relay,
            dcutr: dcutr::Behaviour::new(peer_id),
            autonat: autonat::v2::client::Behaviour::default(),
            gossipsub,
            sync,
            relay_server: Toggle::from(relay_server),
            autonat_server: Toggle::from(
                config
                    .relay_server
                    .then(autonat::v2::server::Behaviour::default),
            ),
            circle,
            mailbox,
            directory,
            flags,
            tokens,
            stem,
        })
    }
}

/// Build the swarm for `config` with identity `keypair`.
pub fn build_swarm(config: &NodeConfig, keypair: Keypair) -> Result<Swarm<Behaviour>, NodeError> {
    fn t(e: impl std::fmt::Display) -> NodeError {
        NodeError::Transport(e.to_string())
    }
    let idle = config.idle_timeout;
    let swarm = if let Some(factory) = &config.sim_transport {
        // An injected raw transport (simulation), upgraded like the memory one.
        libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_other_transport(|key| factory.upgraded(key))
            .map_err(t)?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(t)?
            .with_behaviour(|key, relay| Behaviour::new(key, relay, config))
            .map_err(t)?
            .with_swarm_config(|c| crate::config::swarm_config(c, idle))
            .build()
    } else if config.memory_transport {
        libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_other_transport(|key| -> Result<_, BoxError> {
                Ok(MemoryTransport::default()
                    .upgrade(upgrade::Version::V1)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default()))
            })
            .map_err(t)?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(t)?
            .with_behaviour(|key, relay| Behaviour::new(key, relay, config))
            .map_err(t)?
            .with_swarm_config(|c| crate::config::swarm_config(c, idle))
            .build()
    } else {
        let builder = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(t)?;
        // QUIC besides TCP, unless built without it (the phone library).
        #[cfg(feature = "quic")]
        let builder = builder.with_quic();
        builder
            .with_dns()
            .map_err(t)?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(t)?
            .with_behaviour(|key, relay| Behaviour::new(key, relay, config))
            .map_err(t)?
            .with_swarm_config(|c| crate::config::swarm_config(c, idle))
            .build()
    };
    Ok(swarm)
}

/// A report id cut to its first [`HELD_ID_LEN`] bytes, as a
/// `/ronde/sync/3` request lists the reports the asker already holds.
pub type HeldId = [u8; HELD_ID_LEN];

/// The [`HeldId`] of a report id.
pub fn held_id(id: &ronde_protocol::ReportId) -> HeldId {
    let mut h = [0u8; HELD_ID_LEN];
    h.copy_from_slice(&id.0[..HELD_ID_LEN]);
    h
}

/// A sync request: "send me the live reports you hold in these areas"
/// (1 to [`MAX_PEER_AREAS`] of them), "but not those whose ids start with
/// these" (`held`, sorted, at most [`MAX_SYNC_HELD`]; sent on
/// `/ronde/sync/3` only, older versions carry the areas alone).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncRequest {
    /// The areas asked for.
    pub areas: Vec<Area>,
    /// Ids (cut) of the reports the asker holds in those areas, ascending,
    /// without repeats.
    pub held: Vec<HeldId>,
}

impl SyncRequest {
    /// A request for `areas`, holding nothing.
    pub fn areas(areas: Vec<Area>) -> Self {
        Self {
            areas,
            held: Vec::new(),
        }
    }

    /// A request for `areas` that leaves out the reports with these ids
    /// (sorted, repeats removed, the first [`MAX_SYNC_HELD`] kept: give
    /// the most useful first).
    pub fn holding(areas: Vec<Area>, ids: impl IntoIterator<Item = HeldId>) -> Self {
        let mut held: Vec<HeldId> = ids.into_iter().take(MAX_SYNC_HELD).collect();
        held.sort_unstable();
        held.dedup();
        Self { areas, held }
    }

    /// Whether a report with this id is one the asker holds.
    pub fn holds(&self, id: &ronde_protocol::ReportId) -> bool {
        self.held.binary_search(&held_id(id)).is_ok()
    }
}

/// A sync response: up to [`MAX_SYNC_REPORTS`] report encodings, each to be
/// validated like any report from the network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncResponse(pub Vec<Vec<u8>>);

/// Wire format of `/ronde/sync/3` (and `/ronde/sync/2`, `/ronde/sync/1`).
///
/// * Request on `/3`: the number of areas (2 bytes, big-endian, 1 to
///   [`MAX_PEER_AREAS`]), the 5 ASCII bytes of each area geohash, then 0 to
///   [`MAX_SYNC_HELD`] held ids of [`HELD_ID_LEN`] bytes each, strictly
///   ascending, to the end of the stream.
/// * Request on `/2` and `/1`: the 5 ASCII bytes of each area geohash,
///   concatenated: 1 to [`MAX_PEER_AREAS`] areas, nothing else.
/// * Response on `/3` and `/2`: a sequence of `len: u16` (big-endian) ‖ `len` bytes
///   of report, at most [`MAX_SYNC_REPORTS`] of them, each 1 to
///   [`MAX_SYNC_REPORT_LEN`] ([`MAX_REPORT_SIZE`]) bytes; the stream then
///   ends.
/// * Response on `/1`: the same with `len: u8`, each report at most
///   [`MAX_SYNC1_REPORT_LEN`] (255) bytes: tokened reports (466 bytes,
///   docs/protocol.md §8.5) are left out of `/1` answers.
///
/// Reads are bounded ([`Bounded`]): anything longer is an error and the
/// stream is dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncWire;

/// Codec of `/ronde/sync/3`, `/ronde/sync/2` and `/ronde/sync/1`.
pub type SyncCodec = Bounded<SyncWire>;

const AREA_LEN: usize = ronde_protocol::AREA_PRECISION;
const MAX_SYNC2_REQUEST_BYTES: usize = AREA_LEN * MAX_PEER_AREAS;
const MAX_SYNC_REQUEST_BYTES: usize = 2 + MAX_SYNC2_REQUEST_BYTES + HELD_ID_LEN * MAX_SYNC_HELD;
/// Longest report in a `/ronde/sync/2` response: the longest report.
pub const MAX_SYNC_REPORT_LEN: usize = MAX_REPORT_SIZE;
/// Longest report in a `/ronde/sync/1` response: what its length byte can
/// say (and never more than a report may be).
pub const MAX_SYNC1_REPORT_LEN: usize = if MAX_REPORT_SIZE < 255 {
    MAX_REPORT_SIZE
} else {
    255
};
const MAX_SYNC_RESPONSE_BYTES: usize = MAX_SYNC_REPORTS * (2 + MAX_SYNC_REPORT_LEN);
const _: () = assert!(MAX_SYNC_REPORT_LEN <= u16::MAX as usize);

fn decode_areas(buf: &[u8]) -> std::io::Result<Vec<Area>> {
    if buf.is_empty() || !buf.len().is_multiple_of(AREA_LEN) || buf.len() > MAX_SYNC2_REQUEST_BYTES
    {
        return Err(invalid("bad sync request length"));
    }
    let mut areas = Vec::with_capacity(buf.len() / AREA_LEN);
    for chunk in buf.chunks(AREA_LEN) {
        let s = std::str::from_utf8(chunk).map_err(|_| invalid("area is not ASCII"))?;
        let area = s.parse::<Area>().map_err(|_| invalid("not an area"))?;
        if !areas.contains(&area) {
            areas.push(area);
        }
    }
    Ok(areas)
}

fn encode_areas(areas: &[Area]) -> Vec<u8> {
    areas
        .iter()
        .take(MAX_PEER_AREAS)
        .flat_map(|a| a.as_str().bytes())
        .collect()
}

/// Decode a `/ronde/sync/2` or `/ronde/sync/1` request body (areas only).
pub fn decode_sync_request(buf: &[u8]) -> std::io::Result<SyncRequest> {
    Ok(SyncRequest::areas(decode_areas(buf)?))
}

/// Encode a `/ronde/sync/2` or `/ronde/sync/1` request body: the areas
/// (past [`MAX_PEER_AREAS`] left out); the held ids are not sent.
pub fn encode_sync_request(req: &SyncRequest) -> Vec<u8> {
    encode_areas(&req.areas)
}

/// Decode a `/ronde/sync/3` request body: area count, areas, held ids.
pub fn decode_sync3_request(buf: &[u8]) -> std::io::Result<SyncRequest> {
    if buf.len() > MAX_SYNC_REQUEST_BYTES {
        return Err(invalid("sync request over the size limit"));
    }
    let (count, rest) = match buf {
        [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
        _ => return Err(invalid("cut sync request")),
    };
    if count == 0 || count > MAX_PEER_AREAS || rest.len() < count * AREA_LEN {
        return Err(invalid("bad area count in sync request"));
    }
    let (areas, ids) = rest.split_at(count * AREA_LEN);
    let areas = decode_areas(areas)?;
    if !ids.len().is_multiple_of(HELD_ID_LEN) || ids.len() / HELD_ID_LEN > MAX_SYNC_HELD {
        return Err(invalid("bad held ids in sync request"));
    }
    let mut held: Vec<HeldId> = Vec::with_capacity(ids.len() / HELD_ID_LEN);
    for chunk in ids.chunks_exact(HELD_ID_LEN) {
        let mut id = [0u8; HELD_ID_LEN];
        id.copy_from_slice(chunk);
        if held.last().is_some_and(|last| *last >= id) {
            return Err(invalid("held ids in sync request not ascending"));
        }
        held.push(id);
    }
    Ok(SyncRequest { areas, held })
}

/// Encode a `/ronde/sync/3` request body (areas past [`MAX_PEER_AREAS`]
/// and held ids past [`MAX_SYNC_HELD`] left out; the held ids sorted,
/// without repeats). An empty area list is an error.
pub fn encode_sync3_request(req: &SyncRequest) -> std::io::Result<Vec<u8>> {
    let areas = encode_areas(&req.areas);
    let count = u16::try_from(areas.len() / AREA_LEN).map_err(|_| invalid("too many areas"))?;
    if count == 0 {
        return Err(invalid("sync request without areas"));
    }
    let mut held = req.held.clone();
    held.sort_unstable();
    held.dedup();
    held.truncate(MAX_SYNC_HELD);
    let mut buf = Vec::with_capacity(2 + areas.len() + held.len() * HELD_ID_LEN);
    buf.extend_from_slice(&count.to_be_bytes());
    buf.extend_from_slice(&areas);
    for id in &held {
        buf.extend_from_slice(id);
    }
    Ok(buf)
}

/// Decode a `/ronde/sync/2` response body: 2-byte big-endian lengths.
pub fn decode_sync_response(buf: &[u8]) -> std::io::Result<SyncResponse> {
    if buf.len() > MAX_SYNC_RESPONSE_BYTES {
        return Err(invalid("sync response over the size limit"));
    }
    let mut rest = buf;
    let mut reports = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = match rest {
            [hi, lo, tail @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), tail),
            _ => return Err(invalid("cut length in sync response")),
        };
        if len == 0 || len > MAX_SYNC_REPORT_LEN || tail.len() < len {
            return Err(invalid("bad report length in sync response"));
        }
        if reports.len() == MAX_SYNC_REPORTS {
            return Err(invalid("too many reports in sync response"));
        }
        let (report, tail) = tail.split_at(len);
        reports.push(report.to_vec());
        rest = tail;
    }
    Ok(SyncResponse(reports))
}

/// Encode a `/ronde/sync/2` response body (empty reports, reports over
/// [`MAX_SYNC_REPORT_LEN`] and those past [`MAX_SYNC_REPORTS`] are left
/// out).
pub fn encode_sync_response(res: &SyncResponse) -> Vec<u8> {
    let mut buf = Vec::new();
    for r in res.0.iter().take(MAX_SYNC_REPORTS) {
        if let Ok(len) = u16::try_from(r.len()) {
            if !r.is_empty() && r.len() <= MAX_SYNC_REPORT_LEN {
                buf.extend_from_slice(&len.to_be_bytes());
                buf.extend_from_slice(r);
            }
        }
    }
    buf
}

/// Decode a `/ronde/sync/1` response body: 1-byte lengths.
pub fn decode_sync1_response(buf: &[u8]) -> std::io::Result<SyncResponse> {
    let mut rest = buf;
    let mut reports = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len);
        if len == 0 || len > MAX_SYNC1_REPORT_LEN || tail.len() < len {
            return Err(invalid("bad report length in sync response"));
        }
        if reports.len() == MAX_SYNC_REPORTS {
            return Err(invalid("too many reports in sync response"));
        }
        let (report, tail) = tail.split_at(len);
        reports.push(report.to_vec());
        rest = tail;
    }
    Ok(SyncResponse(reports))
}

/// Encode a `/ronde/sync/1` response body (reports over
/// [`MAX_SYNC1_REPORT_LEN`], tokened ones, and those past
/// [`MAX_SYNC_REPORTS`] are left out).
pub fn encode_sync1_response(res: &SyncResponse) -> Vec<u8> {
    let mut buf = Vec::new();
    for r in res.0.iter().take(MAX_SYNC_REPORTS) {
        if let Ok(len) = u8::try_from(r.len()) {
            if r.len() <= MAX_SYNC1_REPORT_LEN {
                buf.push(len);
                buf.extend_from_slice(r);
            }
        }
    }
    buf
}

impl WireFormat for SyncWire {
    const PROTOCOL: StreamProtocol = SYNC_PROTOCOL;
    const OLDER: &'static [StreamProtocol] = &[SYNC_PROTOCOL_2, SYNC_PROTOCOL_1];
    const MAX_REQUEST: usize = MAX_SYNC_REQUEST_BYTES;
    const MAX_RESPONSE: usize = MAX_SYNC_RESPONSE_BYTES;
    type Request = SyncRequest;
    type Response = SyncResponse;

    fn encode_request(req: &SyncRequest) -> std::io::Result<Vec<u8>> {
        encode_sync3_request(req)
    }
    fn decode_request(buf: &[u8]) -> std::io::Result<SyncRequest> {
        decode_sync3_request(buf)
    }
    fn encode_request_on(protocol: &StreamProtocol, req: &SyncRequest) -> std::io::Result<Vec<u8>> {
        if *protocol == SYNC_PROTOCOL {
            encode_sync3_request(req)
        } else {
            Ok(encode_sync_request(req))
        }
    }
    fn decode_request_on(protocol: &StreamProtocol, buf: &[u8]) -> std::io::Result<SyncRequest> {
        if *protocol == SYNC_PROTOCOL {
            decode_sync3_request(buf)
        } else {
            decode_sync_request(buf)
        }
    }
    fn encode_response(res: &SyncResponse) -> std::io::Result<Vec<u8>> {
        Ok(encode_sync_response(res))
    }
    fn decode_response(buf: &[u8]) -> std::io::Result<SyncResponse> {
        decode_sync_response(buf)
    }
    fn encode_response_on(
        protocol: &StreamProtocol,
        res: &SyncResponse,
    ) -> std::io::Result<Vec<u8>> {
        if *protocol == SYNC_PROTOCOL_1 {
            Ok(encode_sync1_response(res))
        } else {
            Ok(encode_sync_response(res))
        }
    }
    fn decode_response_on(protocol: &StreamProtocol, buf: &[u8]) -> std::io::Result<SyncResponse> {
        if *protocol == SYNC_PROTOCOL_1 {
            decode_sync1_response(buf)
        } else {
            decode_sync_response(buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_parameters_are_valid() {
        assert!(peer_score_params(Duration::from_secs(1)).validate().is_ok());
        assert!(area_topic_params().validate().is_ok());
        assert!(peer_score_thresholds(&GossipTuning::default())
            .validate()
            .is_ok());
        assert!(gossipsub_config(Duration::from_secs(1), &GossipTuning::default()).is_ok());
        for n in 1..=12 {
            assert!(
                gossipsub_config(Duration::from_secs(1), &GossipTuning::mesh(n)).is_ok(),
                "mesh {n}"
            );
        }
    }

    #[test]
    fn two_invalid_messages_graylist_even_a_good_peer() {
        let p = area_topic_params();
        let best = peer_score_params(Duration::from_secs(1)).topic_score_cap;
        let one = best + p.topic_weight * p.invalid_message_deliveries_weight;
        let two = best + p.topic_weight * p.invalid_message_deliveries_weight * 4.0;
        assert!(one < GOSSIP_THRESHOLD && one > GRAYLIST_THRESHOLD);
        assert!(two < GRAYLIST_THRESHOLD);
    }

    #[test]
    fn area_filter_accepts_only_report_topics() {
        let mut f = AreaTopics;
        assert!(f.can_subscribe(&TopicHash::from_raw("ronde/1/reports/u09tv")));
        assert!(!f.can_subscribe(&TopicHash::from_raw("ronde/1/reports/u09t")));
        assert!(!f.can_subscribe(&TopicHash::from_raw("other")));
    }

    #[test]
    fn sync_request_round_trips_and_rejects_bad_input() {
        let areas: Vec<Area> = ["u09tv", "u09tw"]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let req = SyncRequest::areas(areas.clone());
        assert_eq!(
            decode_sync_request(&encode_sync_request(&req)).ok(),
            Some(req)
        );
        let req = SyncRequest::holding(areas.clone(), [[9u8; 8], [1u8; 8], [9u8; 8]]);
        assert_eq!(req.held, vec![[1u8; 8], [9u8; 8]]);
        let bytes = encode_sync3_request(&req).expect("encode");
        assert_eq!(decode_sync3_request(&bytes).ok(), Some(req.clone()));
        // Trailing bytes (a cut id), ids out of order or repeated, no area,
        // an area count past the areas, too many ids: all refused.
        let mut cut = bytes.clone();
        cut.push(0);
        assert!(decode_sync3_request(&cut).is_err());
        let mut swapped = bytes[..12].to_vec();
        swapped.extend_from_slice(&[9u8; 8]);
        swapped.extend_from_slice(&[1u8; 8]);
        assert!(decode_sync3_request(&swapped).is_err());
        let mut repeated = bytes[..12].to_vec();
        repeated.extend_from_slice(&[1u8; 8]);
        repeated.extend_from_slice(&[1u8; 8]);
        assert!(decode_sync3_request(&repeated).is_err());
        assert!(decode_sync3_request(&[0, 0]).is_err());
        assert!(decode_sync3_request(b"\0\x03u09tvu09tw").is_err());
        assert!(encode_sync3_request(&SyncRequest::default()).is_err());
        let mut many = bytes[..12].to_vec();
        for i in 0..=MAX_SYNC_HELD as u64 {
            many.extend_from_slice(&i.to_be_bytes());
        }
        assert!(decode_sync3_request(&many).is_err());
        // An areas-only (`/2`) request is not a `/3` one.
        assert!(decode_sync3_request(b"u09tvu09tw").is_err());
        assert!(decode_sync_request(b"").is_err());
        assert!(decode_sync_request(b"u09tvu09t").is_err());
        assert!(decode_sync_request(b"u09ta").is_err());
        assert!(decode_sync_request(&b"u09tv".repeat(MAX_PEER_AREAS + 1)).is_err());
    }

    /// The code agrees with `docs/test-vectors/sync.json`.
    #[test]
    fn sync_vectors() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/test-vectors/sync.json")).expect("json");
        let hex = |x: &serde_json::Value| hex::decode(x.as_str().expect("hex")).expect("hex");
        let reports = |x: &serde_json::Value| {
            SyncResponse(x.as_array().expect("reports").iter().map(hex).collect())
        };
        let protocol = |x: &serde_json::Value| match x.as_str() {
            Some("/ronde/sync/1") => SYNC_PROTOCOL_1,
            Some("/ronde/sync/2") => SYNC_PROTOCOL_2,
            Some("/ronde/sync/3") => SYNC_PROTOCOL,
            other => panic!("unknown protocol {other:?}"),
        };
        for r in v["requests"].as_array().expect("requests") {
            let areas = r["areas"]
                .as_array()
                .expect("areas")
                .iter()
                .map(|a| a.as_str().expect("area").parse().expect("area"))
                .collect();
            let req = SyncRequest::areas(areas);
            assert_eq!(encode_sync_request(&req), hex(&r["request"]));
            assert_eq!(decode_sync_request(&hex(&r["request"])).ok(), Some(req));
        }
        for r in v["requests3"].as_array().expect("requests3") {
            let areas = r["areas"]
                .as_array()
                .expect("areas")
                .iter()
                .map(|a| a.as_str().expect("area").parse().expect("area"))
                .collect();
            let held = r["held"]
                .as_array()
                .expect("held")
                .iter()
                .map(|h| <HeldId>::try_from(hex(h).as_slice()).expect("8 bytes"))
                .collect();
            let req = SyncRequest { areas, held };
            let bytes = hex(&r["request"]);
            assert_eq!(
                SyncWire::encode_request_on(&SYNC_PROTOCOL, &req).expect("encode"),
                bytes
            );
            assert_eq!(
                SyncWire::decode_request_on(&SYNC_PROTOCOL, &bytes).ok(),
                Some(req)
            );
        }
        for r in v["invalid_requests3"]
            .as_array()
            .expect("invalid_requests3")
        {
            assert!(
                SyncWire::decode_request_on(&SYNC_PROTOCOL, &hex(&r["request"])).is_err(),
                "{}",
                r["why"]
            );
        }
        for r in v["responses"].as_array().expect("responses") {
            let (p, res, bytes) = (
                protocol(&r["protocol"]),
                reports(&r["reports"]),
                hex(&r["response"]),
            );
            assert_eq!(
                SyncWire::encode_response_on(&p, &res).expect("encode"),
                bytes
            );
            assert_eq!(SyncWire::decode_response_on(&p, &bytes).ok(), Some(res));
        }
        let left = &v["left_out_of_sync1"];
        assert_eq!(
            SyncWire::encode_response_on(&SYNC_PROTOCOL_1, &reports(&left["reports"]))
                .expect("encode"),
            hex(&left["response"])
        );
        for r in v["invalid"].as_array().expect("invalid") {
            let bytes = hex(&r["response"]);
            assert!(
                SyncWire::decode_response_on(&protocol(&r["protocol"]), &bytes).is_err(),
                "{}",
                r["why"]
            );
        }
    }

    #[test]
    fn sync1_response_round_trips_and_leaves_tokened_reports_out() {
        let res = SyncResponse(vec![vec![1, 2, 3], vec![4; MAX_SYNC1_REPORT_LEN]]);
        assert_eq!(
            decode_sync1_response(&encode_sync1_response(&res)).ok(),
            Some(res)
        );
        // A report too long for the length byte (a tokened one) is left out.
        let tokened = SyncResponse(vec![vec![6; MAX_SYNC1_REPORT_LEN + 1], vec![7; 121]]);
        assert_eq!(
            decode_sync1_response(&encode_sync1_response(&tokened)).ok(),
            Some(SyncResponse(vec![vec![7; 121]]))
        );
        assert!(decode_sync1_response(&[5, 1, 2]).is_err());
        // An empty report is no report: refused, as on /2 and /3.
        assert!(decode_sync1_response(&[0]).is_err());
        assert!(decode_sync1_response(&[1, 7, 0]).is_err());
        assert!(decode_sync1_response(&[200; 200]).is_err());
        let too_many = vec![0u8; MAX_SYNC_REPORTS + 1];
        assert!(decode_sync1_response(&too_many).is_err());
    }

    #[test]
    fn sync2_response_round_trips_and_rejects_bad_lengths() {
        let res = SyncResponse(vec![
            vec![1, 2, 3],
            vec![4; 466],
            vec![5; MAX_SYNC_REPORT_LEN],
        ]);
        let bytes = encode_sync_response(&res);
        assert_eq!(&bytes[..5], &[0, 3, 1, 2, 3]);
        assert_eq!(&bytes[5..7], &[0x01, 0xd2]);
        assert_eq!(decode_sync_response(&bytes).ok(), Some(res));
        // Over the longest report, or empty: left out, and refused.
        let long = SyncResponse(vec![vec![6; MAX_SYNC_REPORT_LEN + 1], vec![], vec![7; 9]]);
        assert_eq!(
            decode_sync_response(&encode_sync_response(&long)).ok(),
            Some(SyncResponse(vec![vec![7; 9]]))
        );
        let mut over = vec![0x02, 0x01];
        over.extend_from_slice(&[0; 513]);
        assert!(decode_sync_response(&over).is_err(), "513 bytes");
        assert!(decode_sync_response(&[0, 0]).is_err(), "empty report");
        assert!(decode_sync_response(&[0, 3, 1, 2]).is_err(), "cut report");
        assert!(
            decode_sync_response(&[0, 1, 9, 0]).is_err(),
            "trailing byte"
        );
        let mut too_many = Vec::new();
        for _ in 0..=MAX_SYNC_REPORTS {
            too_many.extend_from_slice(&[0, 1, 9]);
        }
        assert!(decode_sync_response(&too_many).is_err());
        // Each version reads its own framing.
        let one = SyncResponse(vec![vec![8; 3]]);
        let on1 = SyncWire::encode_response_on(&SYNC_PROTOCOL_1, &one).expect("v1");
        assert_eq!(on1, vec![3, 8, 8, 8]);
        assert_eq!(
            SyncWire::decode_response_on(&SYNC_PROTOCOL_1, &on1).ok(),
            Some(one.clone())
        );
        let on2 = SyncWire::encode_response_on(&SYNC_PROTOCOL, &one).expect("v2");
        assert_eq!(on2, vec![0, 3, 8, 8, 8]);
        assert!(SyncWire::decode_response_on(&SYNC_PROTOCOL, &on1).is_err());
    }
}
