//! The requests a [`crate::Node`] handle sends to the event loop.
//!
//! As in rust-libp2p's `file-sharing` example, the handle turns each of
//! its methods into one [`Command`] carrying a one-shot reply channel and
//! sends it over a bounded queue; the one event loop
//! ([`crate::event_loop`]) owns the swarm and the store, does the work and
//! answers on the channel. The trusted circle's and the directory's
//! commands are defined by their services and carried here whole.

use libp2p::{Multiaddr, PeerId};
use ronde_protocol::{Area, VerifiedReport};
use tokio::sync::oneshot;

use crate::circle::client::command::CircleCommand;
use crate::directory::service::DirectoryCommand;
use crate::error::NodeError;
use crate::events::{Nearby, Published, Status};

/// Where the event loop sends the answer to one command.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// A request from a [`crate::Node`] handle.
pub(crate) enum Command {
    /// [`crate::Node::status`].
    Status { reply: Reply<Status> },
    /// Follow these areas (and remember the location, if one is given).
    SetAreas {
        areas: Vec<Area>,
        location: Option<(f64, f64)>,
        reply: Reply<Vec<Area>>,
    },
    /// Store and publish a report sealed by the handle.
    Publish {
        report: VerifiedReport,
        reply: Reply<Published>,
    },
    /// The proof of work an own untokened report of `area` needs now
    /// ([`crate::flood_guard`]).
    RequiredDifficulty {
        area: ronde_protocol::Area,
        reply: Reply<u8>,
    },
    /// [`crate::Node::nearby`].
    Nearby {
        lat: f64,
        lon: f64,
        radius_m: f64,
        reply: Reply<Nearby>,
    },
    /// [`crate::Node::dial`].
    Dial { addr: Multiaddr, reply: Reply<()> },
    /// The token keys of the valid directories held.
    /// The connected relays that the city's valid directory lists, when
    /// the node is in the foreground and that directory has a token key
    /// of today: where the wallet may be topped up.
    TokenIssuers { reply: Reply<Vec<libp2p::PeerId>> },
    TokenKeys {
        reply: Reply<ronde_protocol::token::TokenKeys>,
    },
    /// [`crate::Node::request_tokens`].
    RequestTokens {
        peer: libp2p::PeerId,
        request: ronde_protocol::token::IssueRequest,
        reply: Reply<ronde_protocol::token::IssueResponse>,
    },
    /// [`crate::Node::listen_addrs`].
    ListenAddrs { reply: Reply<Vec<Multiaddr>> },
    /// [`crate::Node::connected_peers`].
    ConnectedPeers { reply: Reply<Vec<PeerId>> },
    /// [`crate::Node::peers_in_area`].
    PeersInArea {
        area: Area,
        reply: Reply<Vec<PeerId>>,
    },
    /// [`crate::Node::peer_score`].
    PeerScore {
        peer: PeerId,
        reply: Reply<Option<f64>>,
    },
    /// [`crate::Node::pending_reports`].
    PendingCount { reply: Reply<usize> },
    /// [`crate::Node::shutdown`].
    Shutdown { reply: Reply<()> },
    /// Everything about the trusted circle.
    Circle(CircleCommand),
    /// Everything about the city directory and flags.
    Directory(DirectoryCommand),
    /// [`crate::Node::set_lifecycle`].
    SetLifecycle {
        lifecycle: crate::lifecycle::Lifecycle,
        reply: Reply<crate::lifecycle::LifecycleView>,
    },
}
