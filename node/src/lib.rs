//! # ronde-node
//!
//! The node every phone runs: it gossips signed, anonymized reports of what
//! happened nearby over libp2p, keeps the live ones in sled, forgets them when
//! they expire, and serves them to the app on the same device over a local
//! HTTP API.
//!
//! The runtime follows rust-libp2p's `file-sharing` example: [`Node`] is a
//! cloneable handle that sends commands, each with its reply channel, to one
//! event loop that owns the `Swarm` and the store. Protocol rules (what a
//! valid report is, which areas to follow, the trusted circle's formats and
//! state machines) come from `ronde-protocol`; this crate only adds I/O
//! around them.
//!
//! Besides reports, the node carries a person's **trusted circle**
//! ([`circle`]): contacts, journeys and SOS, end-to-end encrypted, delivered
//! directly or through mailbox hosts, with a dead-man's switch held by a
//! host during journeys.
//!
//! It also keeps the **city directory** ([`directory`]): the signed list of
//! safe places and street mediators, fetched from peers over
//! `/ronde/directory/1` and verified against the city key it was given,
//! and sends anonymous flags against a place to the city's relays.
//! Always-on nodes (relays, mailbox hosts) keep a stable peer id in a file
//! ([`peer_key`]); phones take a fresh one at every start.
//!
//! A phone's app puts the node in the **background** when it leaves the
//! screen ([`lifecycle`], [`Node::set_lifecycle`]): no gossip, one
//! connection kept; back in the foreground it catches up. Apps embed the
//! node through the UniFFI bindings of `crates/ffi` (`docs/mobile.md`).

mod admission;
pub mod api;
pub mod api_error;
pub mod basemap;
pub mod behaviour;
pub mod circle;
pub mod clock;
pub mod codec;
mod command;
pub mod config;
pub mod directory;
pub mod error;
pub mod event_loop;
pub mod events;
pub mod flood_guard;
pub mod handle;
pub mod lifecycle;
mod mesh_score;
pub mod new_reports;
pub mod peer_key;
pub mod pmtiles;
mod reachability;
pub mod stem;
pub mod store;
pub mod tokens;
pub mod webapp;

pub use circle::CircleRefusal;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{GossipTuning, NodeConfig};
pub use error::{NodeError, StoreError};
pub use events::{CellCount, Nearby, NearbyReport, NodeEvent, Published, Status};
pub use handle::Node;
pub use lifecycle::{Lifecycle, LifecycleView};
