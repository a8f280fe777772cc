//! The city directory in the node: fetching, verifying, keeping and
//! re-serving the signed directory of safe places and mediators, and
//! sending anonymous flags against a place to the relays.
//!
//! The formats and every check are in [`ronde_protocol::directory`]
//! (`docs/protocol.md` §7); this module adds the network, the disk and the
//! clock:
//!
//! * [`wire`]: the request-response protocols `/ronde/directory/1` (fetch
//!   a city's directory from any peer holding a newer one) and
//!   `/ronde/flag/1` (give a relay a flag), with bounded codecs.
//! * [`store`]: the directories (and the highest serial ever accepted per
//!   city, against rollbacks) and the outbox of flags, in sled.
//! * `service`: driven by the event loop. A node configured with city keys
//!   ([`crate::NodeConfig::city_keys`]) asks every peer it connects to, and
//!   a few connected peers every [`crate::NodeConfig::directory_refresh`],
//!   for a directory newer than the one it holds; it verifies what comes
//!   back with [`ronde_protocol::directory::verify_directory`] against the
//!   configured key, its clock and the highest serial it accepted, keeps
//!   the newest, drops it once expired, and never shows anything else.
//!   Every node answers with the directory it holds: it is signed, so the
//!   asker trusts the city, not the peer. A relay hands its node the
//!   directory it signs ([`crate::Node::set_directory`]).
//! * [`views`]: what `GET /v1/safe-places` and `GET /v1/directory` show.
//!
//! Flags: [`crate::Node::flag_place`] seals a [`Flag`] (a one-time key and
//! a proof of work, no identity) off the event loop, queues it on disk and
//! sends it to every connected peer that announces `/ronde/flag/1` (city
//! relays, found through identify), until one of them counted it, refused
//! it or it is too old. A relay's node passes the flags it receives to its
//! [`FlagSink`] and answers with the relay's [`FlagVerdict`].
//!
//! Logs never carry a place's location, a flag's contents or a key.
//!
//! [`Flag`]: ronde_protocol::directory::Flag

pub(crate) mod service;
pub mod store;
pub mod views;
pub mod wire;

use tokio::sync::{mpsc, oneshot};

pub use views::{
    DirectoryAnswer, DirectoryStats, DirectorySummary, DirectoryView, FlagSent, MediatorView,
    SafePlaceView, SafePlaces,
};
pub use wire::{FlagVerdict, DIRECTORY_PROTOCOL, FLAG_PROTOCOL};

/// Most flags waiting on disk for a relay.
pub const MAX_QUEUED_FLAGS: usize = 64;
/// Most connected peers asked for a directory at each refresh.
pub const PEERS_PER_REFRESH: usize = 3;

/// A flag a peer sent over `/ronde/flag/1`, handed to the node's
/// [`FlagSink`]: check it, count it, and say what was done with it.
#[derive(Debug)]
pub struct FlagSubmission {
    /// The flag's bytes (exactly 127; not verified yet).
    pub bytes: Vec<u8>,
    /// Where the verdict goes (dropping it answers
    /// [`FlagVerdict::Unavailable`]).
    pub reply: oneshot::Sender<FlagVerdict>,
}

/// Where a node that takes flags (a city relay) sends them: see
/// [`crate::NodeConfig::flag_sink`]. When the queue is full, the sender is
/// told [`FlagVerdict::Unavailable`] and tries again later.
pub type FlagSink = mpsc::Sender<FlagSubmission>;
