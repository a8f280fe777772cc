//! Foreground and background: what a phone's node keeps running when its
//! app is on screen and when it is not.
//!
//! In the **foreground** the node is a full gossip node: it follows the
//! areas around the person, is a mesh member of their topics and keeps
//! whatever connections gossip, Kademlia and the circle open. A phone
//! cannot afford that in its pocket (iOS closes a suspended app's sockets,
//! Android's Doze defers the network), so in the **background** the node
//! leaves every gossip topic and closes every connection but one, to one
//! always-on peer: a mailbox host it was configured with, else its relay,
//! else a bootstrap peer. Connections to anyone else, in or out, are closed
//! as soon as they open. The circle still works (mail is fetched from the
//! mailbox hosts every `mailbox_poll_interval`; an SOS sent goes to them).
//! **With push** (the app set its UnifiedPush endpoint and a mailbox host
//! confirmed it for today's mailboxes) the background keeps no connection
//! at all: the host's wake-up, through the app's [`crate::Node::wake`],
//! fetches the mail, and the node polls by itself only every
//! `background_poll_interval` (15 minutes), in case a push was lost; what
//! the person sends still goes out at once. Back in the
//! **foreground** the node follows its areas again, dials its bootstrap
//! peers, and catches up on the reports it missed with the sync protocol
//! (`/ronde/sync/1`), as when it first joins an area.
//!
//! **Suspended** is the background without even the one connection: no
//! gossip, every connection closed (the main swarm's and the circle's),
//! no mailbox polls and no retries. The phone relies on push: its
//! UnifiedPush endpoint, registered with its mailbox hosts
//! ([`crate::Node::set_push_endpoint`]), is woken when mail arrives, and the
//! app then calls [`crate::Node::wake`], which fetches the mail (and sends
//! what waits) once; the node stays suspended.
//!
//! The switch itself is done by the event loop (`event_loop/background.rs`);
//! this module holds the public types.

use serde::{Deserialize, Serialize};

/// Whether the app is on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// A full gossip node.
    #[default]
    Foreground,
    /// No gossip, at most one connection, to one always-on peer (none once
    /// push can wake the phone).
    Background,
    /// No gossip, no connection: woken by push ([`crate::Node::wake`]).
    Suspended,
}

/// What [`crate::Node::set_lifecycle`] answers: the state the node is in
/// now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleView {
    /// The lifecycle state now.
    pub lifecycle: Lifecycle,
    /// Number of areas followed (0 in the background).
    pub areas: usize,
    /// Peers with at least one open connection (at most 1 in the background,
    /// once the closes asked for are done).
    pub connected_peers: usize,
    /// The one peer kept in the background, if any.
    pub kept_peer: Option<String>,
    /// Connections of the circle to its mailbox hosts (one identity per
    /// day): 0 once suspended.
    pub circle_connections: usize,
}
