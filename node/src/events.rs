//! What a node tells: the answers of [`crate::Node`]'s report methods
//! ([`Status`], [`Published`], [`Nearby`]) and the [`NodeEvent`]s it
//! broadcasts to its subscribers.
//!
//! Plain data, shared by the handle that returns them, the event loop that
//! makes them and the services that announce events; it imports none of
//! them.

use ronde_protocol::{Category, Cell, ReportId};
use serde::Serialize;

use crate::circle::views::InboxItem;

/// What [`Node::status`](crate::Node::status) reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// This node's libp2p identity (fresh at every start, unless the node
    /// keeps one in [`NodeConfig::identity_file`](crate::NodeConfig::identity_file)).
    pub peer_id: String,
    /// Addresses the node listens on.
    pub listen_addrs: Vec<String>,
    /// Number of peers with at least one open connection.
    pub connected_peers: usize,
    /// Areas (geohash precision 5) whose reports the node follows.
    pub areas: Vec<String>,
    /// Reports currently in the store (live ones; expired ones are
    /// purged periodically and never served).
    pub stored_reports: usize,
    /// Gossiped messages this node refused since it started, by reason: the
    /// protocol's rejection reasons (`bad_signature`, `expired`, …),
    /// `wrong_topic`, and `over_peer_bound` / `far_over_peer_bound` (see
    /// [`crate::new_reports`]). Only reasons seen so far appear.
    pub gossip_refused: std::collections::BTreeMap<&'static str, u64>,
    /// Reports received in catch-up sync answers since the node started
    /// (new or not: what a leaner sync saves shows here).
    pub sync_reports_received: u64,
    /// Where the node is (`--at`, `PUT /v1/location`), if it knows: shown
    /// to the local caller only, never logged or sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// A position in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Location {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// What [`Node::report`](crate::Node::report) returns.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// The id of the new report.
    pub id: ReportId,
    /// The cell it names.
    pub cell: Cell,
    /// When it stops being visible, Unix seconds.
    pub expires_at: u64,
    /// `true` if it was sent to at least one peer; `false` if no peer
    /// follows its area yet: it is then queued (on disk) and sent as soon as
    /// one does, until it expires.
    pub published: bool,
}

/// A live report as shown to the app.
#[derive(Debug, Clone, Serialize)]
pub struct NearbyReport {
    /// Report id.
    pub id: ReportId,
    /// What happened.
    pub category: Category,
    /// Where (geohash cell).
    pub cell: Cell,
    /// Centre of the cell, `[lat, lon]`.
    pub center: [f64; 2],
    /// When it was observed, Unix seconds.
    pub observed_at: u64,
    /// When it stops being visible, Unix seconds.
    pub expires_at: u64,
    /// Seconds since it was observed.
    pub age_secs: u64,
    /// Metres from the query point (for [`NodeEvent`]s: from the node's
    /// current location, or 0 if none is set) to the nearest point of the
    /// cell.
    pub distance_m: f64,
    /// Whether it spends an anonymous token (docs/protocol.md §8.5).
    pub tokened: bool,
}

/// Number of live reports in one cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellCount {
    /// The cell.
    pub cell: Cell,
    /// Its centre, `[lat, lon]`.
    pub center: [f64; 2],
    /// How many live reports name it.
    pub reports: usize,
    /// How many of them spend a token.
    pub tokened: usize,
    /// A lower bound on how many issuance identities made them: with at
    /// most N tokens per identity per day, k tokened reports of one day
    /// come from at least ⌈k/N⌉; the largest such bound over the days the
    /// reports fall in (0: no tokened report). It counts identities
    /// (connections, attested devices), not people, and says nothing of
    /// the untokened reports (docs/protocol.md §8.4).
    pub min_people: u64,
}

/// What [`Node::nearby`](crate::Node::nearby) returns.
#[derive(Debug, Clone, Serialize)]
pub struct Nearby {
    /// Live reports within the radius, newest first.
    pub reports: Vec<NearbyReport>,
    /// The same reports counted per cell, most reports first.
    pub cells: Vec<CellCount>,
}

/// Something the node tells its subscribers about.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeEvent {
    /// A new live report was stored (received from a peer or made here).
    Report(NearbyReport),
    /// A contact raised an SOS or is overdue (or their dead-man's switch
    /// fired): show it now. Also in the inbox.
    Alert(InboxItem),
    /// Anything else from the circle: a contact request, a journey started,
    /// a position, an arrival, an ack of my SOS... Also in the inbox.
    Circle(InboxItem),
}
