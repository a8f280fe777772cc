//! The plain records and enums that cross the boundary, and their
//! conversions from the node's views. Ids and states are the strings the
//! HTTP API shows (their serde form), so that both speak alike.

use serde::Serialize;
use serde_json::Value;

/// How to start a node (see `ronde_node::NodeConfig`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct NodeSettings {
    /// Where the node keeps its data (created if missing): the app's
    /// private files directory.
    pub data_dir: String,
    /// Multiaddresses to listen on; empty: every interface, a random TCP
    /// port. TCP only: the library is built without QUIC, and a QUIC
    /// address is refused (`invalid_input`).
    #[uniffi(default = [])]
    pub listen: Vec<String>,
    /// Peers dialled at start (with `/p2p/<peer id>`).
    #[uniffi(default = [])]
    pub bootstrap: Vec<String>,
    /// Relays, dialled at start like bootstrap peers: the first that
    /// identifies as a circuit relay is the one a phone behind NAT reserves
    /// a circuit on, and the peer kept in the background.
    #[uniffi(default = [])]
    pub relays: Vec<String>,
    /// Mailbox hosts of the circle (with `/p2p/<peer id>`); preferred as
    /// the peer kept in the background.
    #[uniffi(default = [])]
    pub mailbox_peers: Vec<String>,
    /// Public keys (hex) of the cities whose directory to fetch.
    #[uniffi(default = [])]
    pub city_keys: Vec<String>,
    /// Where the person is at start.
    #[uniffi(default = None)]
    pub location: Option<Position>,
    /// Discover peers on the local network with mDNS.
    #[uniffi(default = false)]
    pub mdns: bool,
    /// TEST KNOB: proof-of-work difficulty of reports (and the least
    /// accepted). `None`: the network's.
    #[uniffi(default = None)]
    pub pow_difficulty: Option<u8>,
    /// TEST KNOB: the circle's fast test timers (mailbox polled every
    /// 300 ms, retries every 300 ms).
    #[uniffi(default = false)]
    pub fast_timers: bool,
}

/// A position in degrees.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct Position {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// Whether the app is on screen (see `ronde_node::lifecycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Lifecycle {
    /// A full gossip node.
    Foreground,
    /// No gossip, at most one connection, to one always-on peer.
    Background,
    /// No gossip, no connection at all: woken by push (`wake`).
    Suspended,
}

impl From<Lifecycle> for ronde_node::Lifecycle {
    fn from(l: Lifecycle) -> Self {
        match l {
            Lifecycle::Foreground => ronde_node::Lifecycle::Foreground,
            Lifecycle::Background => ronde_node::Lifecycle::Background,
            Lifecycle::Suspended => ronde_node::Lifecycle::Suspended,
        }
    }
}

impl From<ronde_node::Lifecycle> for Lifecycle {
    fn from(l: ronde_node::Lifecycle) -> Self {
        match l {
            ronde_node::Lifecycle::Foreground => Lifecycle::Foreground,
            ronde_node::Lifecycle::Background => Lifecycle::Background,
            ronde_node::Lifecycle::Suspended => Lifecycle::Suspended,
        }
    }
}

/// What `set_lifecycle` answers.
#[derive(Debug, Clone, uniffi::Record)]
pub struct LifecycleState {
    /// The state now.
    pub lifecycle: Lifecycle,
    /// Areas followed (0 in the background).
    pub areas: u32,
    /// Peers connected.
    pub connected_peers: u32,
    /// The peer kept in the background.
    pub kept_peer: Option<String>,
    /// The circle's connections to its mailbox hosts (0 once suspended).
    pub circle_connections: u32,
}

/// What `set_push_endpoint` answers.
#[derive(Debug, Clone, uniffi::Record)]
pub struct PushState {
    /// Whether an endpoint is set.
    pub endpoint_set: bool,
    /// Registrations (or withdrawals) sent now: one per host and day.
    pub hosts: u32,
    /// Registrations the hosts confirmed so far (set the same endpoint
    /// again to read it).
    pub registered: u32,
    /// Registrations still awaiting a host's answer.
    pub pending: u32,
}

impl From<ronde_node::circle::PushView> for PushState {
    fn from(v: ronde_node::circle::PushView) -> Self {
        PushState {
            endpoint_set: v.endpoint_set,
            hosts: count(v.hosts),
            registered: count(v.registered),
            pending: count(v.pending),
        }
    }
}

/// What `wake` answers, once its fetches are done.
#[derive(Debug, Clone, uniffi::Record)]
pub struct WakeState {
    /// Mailbox hosts asked for mail.
    pub hosts: u32,
    /// Every fetch finished before the deadline (25 s).
    pub complete: bool,
    /// Envelopes taken from the mailboxes meanwhile.
    pub received: u32,
}

impl From<ronde_node::circle::WakeView> for WakeState {
    fn from(v: ronde_node::circle::WakeView) -> Self {
        WakeState {
            hosts: count(v.hosts),
            complete: v.complete,
            received: count(v.received),
        }
    }
}

impl From<ronde_node::LifecycleView> for LifecycleState {
    fn from(v: ronde_node::LifecycleView) -> Self {
        LifecycleState {
            lifecycle: v.lifecycle.into(),
            areas: count(v.areas),
            connected_peers: count(v.connected_peers),
            kept_peer: v.kept_peer,
            circle_connections: count(v.circle_connections),
        }
    }
}

/// The node's state (`GET /v1/status`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct NodeStatus {
    /// This session's peer id.
    pub peer_id: String,
    /// Addresses listened on.
    pub listen_addrs: Vec<String>,
    /// Peers connected.
    pub connected_peers: u32,
    /// Areas followed.
    pub areas: Vec<String>,
    /// Live reports stored.
    pub stored_reports: u64,
}

impl From<ronde_node::Status> for NodeStatus {
    fn from(s: ronde_node::Status) -> Self {
        NodeStatus {
            peer_id: s.peer_id,
            listen_addrs: s.listen_addrs,
            connected_peers: count(s.connected_peers),
            areas: s.areas,
            stored_reports: s.stored_reports as u64,
        }
    }
}

/// A report made (`POST /v1/reports`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct Published {
    /// Report id (hex).
    pub id: String,
    /// Its cell (geohash).
    pub cell: String,
    /// When it stops being visible, Unix seconds.
    pub expires_at: u64,
    /// Sent to at least one peer (else queued until one follows its area).
    pub published: bool,
}

impl From<ronde_node::Published> for Published {
    fn from(p: ronde_node::Published) -> Self {
        Published {
            id: text(&p.id),
            cell: text(&p.cell),
            expires_at: p.expires_at,
            published: p.published,
        }
    }
}

/// A live report near a point.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NearbyReport {
    /// Report id (hex).
    pub id: String,
    /// What happened (`harassment`, `poor_lighting`, ...).
    pub category: String,
    /// Where (geohash cell).
    pub cell: String,
    /// Centre of the cell.
    pub center: Position,
    /// When observed, Unix seconds.
    pub observed_at: u64,
    /// When it stops being visible, Unix seconds.
    pub expires_at: u64,
    /// Seconds since observed.
    pub age_secs: u64,
    /// Metres from the query point (for listeners: from the node's
    /// location) to the cell.
    pub distance_m: f64,
}

impl From<ronde_node::NearbyReport> for NearbyReport {
    fn from(r: ronde_node::NearbyReport) -> Self {
        NearbyReport {
            id: text(&r.id),
            category: text(&r.category),
            cell: text(&r.cell),
            center: Position {
                lat: r.center[0],
                lon: r.center[1],
            },
            observed_at: r.observed_at,
            expires_at: r.expires_at,
            age_secs: r.age_secs,
            distance_m: r.distance_m,
        }
    }
}

/// Live reports in one cell.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CellCount {
    /// The cell.
    pub cell: String,
    /// Its centre.
    pub center: Position,
    /// How many.
    pub reports: u32,
}

/// Live reports near a point (`GET /v1/reports`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct Nearby {
    /// Newest first.
    pub reports: Vec<NearbyReport>,
    /// Per cell, most reports first.
    pub cells: Vec<CellCount>,
}

impl From<ronde_node::Nearby> for Nearby {
    fn from(n: ronde_node::Nearby) -> Self {
        Nearby {
            reports: n.reports.into_iter().map(Into::into).collect(),
            cells: n
                .cells
                .into_iter()
                .map(|c| CellCount {
                    cell: text(&c.cell),
                    center: Position {
                        lat: c.center[0],
                        lon: c.center[1],
                    },
                    reports: count(c.reports),
                })
                .collect(),
        }
    }
}

/// A single-use invite to show (as a QR code) or send.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Invite {
    /// The code to give.
    pub code: String,
    /// The QR payload (the code as a link the app opens).
    pub qr: String,
    /// The name it shows.
    pub name: String,
    /// When it expires, Unix seconds.
    pub expires_at: u64,
    /// The short code to read out or type instead (`ABCDE-FGHJK`), when
    /// the invite was left at this node's mailbox hosts (the other phone
    /// must use one of the same hosts).
    pub short_code: Option<String>,
}

impl From<ronde_node::circle::views::InviteView> for Invite {
    fn from(v: ronde_node::circle::views::InviteView) -> Self {
        Invite {
            code: v.code,
            qr: v.qr,
            name: v.name,
            expires_at: v.expires_at,
            short_code: v.short_code,
        }
    }
}

/// A contact.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Contact {
    /// Contact id (hex).
    pub id: String,
    /// Their name.
    pub name: String,
    /// `awaiting_their_approval`, `awaiting_my_approval` or `mutual`.
    pub state: String,
    /// The safety number to compare with them before approving.
    pub safety_number: String,
    /// Since when, Unix seconds.
    pub since: u64,
    /// Messages waiting to reach them.
    pub queued: u32,
}

impl From<ronde_node::circle::views::ContactView> for Contact {
    fn from(v: ronde_node::circle::views::ContactView) -> Self {
        let j = json(&v);
        Contact {
            id: field(&j, "id"),
            name: v.name,
            state: field(&j, "state"),
            safety_number: v.safety_number,
            since: v.since,
            queued: count(v.queued),
        }
    }
}

/// A journey (mine).
#[derive(Debug, Clone, uniffi::Record)]
pub struct Journey {
    /// Journey id (hex).
    pub id: String,
    /// `active`, `overdue`, `arrived`, `cancelled` or `expired`.
    pub state: String,
    /// Started, Unix seconds.
    pub started_at: u64,
    /// Expected arrival, Unix seconds.
    pub expected_arrival: u64,
    /// Overdue from, Unix seconds.
    pub overdue_at: u64,
    /// Contacts told.
    pub contacts: u32,
    /// Names of the contacts who acknowledged it.
    pub acked_by: Vec<String>,
    /// The last position lay within 100 m of the destination: ask the
    /// person whether they arrived.
    pub near_destination: bool,
    /// Parents' mode: only states are shared.
    pub states_only: Option<StatesOnly>,
    /// The destination's name as the person gave it (kept on this device).
    pub destination_name: Option<String>,
    /// The destination.
    pub destination: Position,
    /// The dead-man's switch: `pending`, `armed`, `withdrawn` or `failed`.
    pub switch: String,
}

/// Parents' mode of a journey: only "started", "arrived", "deviated" and
/// "overdue" are shared, never a trail of positions unless an alert fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct StatesOnly {
    /// How far from the straight corridor to the destination counts as a
    /// deviation (metres, at least 1).
    pub corridor_m: u16,
    /// How long without moving counts as a deviation (seconds, at least 1).
    pub stop_secs: u32,
}

impl From<StatesOnly> for ronde_protocol::circle::StatesOnly {
    fn from(s: StatesOnly) -> Self {
        ronde_protocol::circle::StatesOnly {
            corridor_m: s.corridor_m,
            stop_secs: s.stop_secs,
        }
    }
}

impl From<ronde_protocol::circle::StatesOnly> for StatesOnly {
    fn from(s: ronde_protocol::circle::StatesOnly) -> Self {
        StatesOnly {
            corridor_m: s.corridor_m,
            stop_secs: s.stop_secs,
        }
    }
}

impl From<ronde_node::circle::views::JourneyView> for Journey {
    fn from(v: ronde_node::circle::views::JourneyView) -> Self {
        let j = json(&v);
        Journey {
            id: field(&j, "id"),
            state: field(&j, "state"),
            started_at: v.started_at,
            expected_arrival: v.expected_arrival,
            overdue_at: v.overdue_at,
            contacts: count(v.contacts),
            acked_by: v.acked_by.into_iter().map(|a| a.name).collect(),
            near_destination: v.near_destination,
            states_only: v.states_only.map(Into::into),
            destination_name: v.destination_name,
            destination: Position {
                lat: v.destination.lat,
                lon: v.destination.lon,
            },
            switch: field(&j, "switch"),
        }
    }
}

/// The circle service (`GET /v1/circle`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct CircleStatus {
    /// This node's public identity (128 hex digits).
    pub identity: String,
    /// Contacts, all states.
    pub contacts: u32,
    /// Messages waiting for delivery.
    pub queued: u32,
    /// Mailbox and switch hosts known.
    pub mailbox_hosts: u32,
    /// Whether the person set a code and a duress code (then ending a
    /// journey or cancelling an SOS needs one of them).
    pub codes: bool,
}

impl From<ronde_node::circle::views::CircleStatus> for CircleStatus {
    fn from(v: ronde_node::circle::views::CircleStatus) -> Self {
        CircleStatus {
            identity: v.identity,
            contacts: count(v.contacts),
            queued: count(v.queued),
            mailbox_hosts: count(v.mailbox_hosts),
            codes: v.codes,
        }
    }
}

/// A contact's journey as this phone follows it
/// (`GET /v1/circle/journeys`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct SharedJourney {
    /// Journey id (hex).
    pub journey: String,
    /// Who is travelling: their contact id (hex).
    pub from_id: String,
    /// Their name.
    pub from_name: String,
    /// `on_the_way`, `arrived`, `cancelled`, `overdue`, `deviated`,
    /// `duress`, ... (the API's `state`).
    pub state: String,
    /// Why it deviated (`off_route` or `stopped`), for `deviated`.
    pub deviation: Option<String>,
    /// Where to.
    pub destination: Position,
    /// Expected arrival (their clock), after any added time.
    pub expected_arrival: u64,
    /// When they become overdue.
    pub overdue_at: u64,
    /// Parents' mode: only states are shared, no path.
    pub states_only: bool,
    /// The last position known.
    pub last_position: Option<Position>,
    /// When that position was taken (their clock).
    pub last_position_at: Option<u64>,
    /// Positions since the start, oldest first.
    pub path: Vec<Position>,
    /// The inbox item of its latest alert, to acknowledge.
    pub alert_item: Option<u64>,
}

impl From<ronde_node::circle::shared::SharedJourney> for SharedJourney {
    fn from(v: ronde_node::circle::shared::SharedJourney) -> Self {
        let j = json(&v);
        SharedJourney {
            journey: field(&j, "journey"),
            from_id: field(&j, "from"),
            from_name: v.from_name,
            state: field(&j, "state"),
            deviation: v.deviation.map(|d| text(&d)),
            destination: Position {
                lat: v.destination.lat,
                lon: v.destination.lon,
            },
            expected_arrival: v.expected_arrival,
            overdue_at: v.overdue_at,
            states_only: v.states_only,
            last_position_at: v.last_position.as_ref().map(|f| f.at),
            last_position: v.last_position.map(|f| Position {
                lat: f.place.lat,
                lon: f.place.lon,
            }),
            path: v
                .path
                .into_iter()
                .map(|f| Position {
                    lat: f.place.lat,
                    lon: f.place.lon,
                })
                .collect(),
            alert_item: v.alert_item,
        }
    }
}

/// Someone an SOS was sent to.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SosRecipient {
    /// Contact id (hex).
    pub id: String,
    /// Their name.
    pub name: String,
    /// When they acknowledged it, Unix seconds.
    pub acked_at: Option<u64>,
}

/// My SOS.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Sos {
    /// SOS id (hex).
    pub id: String,
    /// `active` or `cancelled`.
    pub state: String,
    /// Raised, Unix seconds.
    pub raised_at: u64,
    /// The note.
    pub note: String,
    /// Times sent.
    pub sends: u32,
    /// Someone acknowledged it.
    pub acknowledged: bool,
    /// Who it went to, and who acknowledged.
    pub recipients: Vec<SosRecipient>,
}

impl From<ronde_node::circle::views::SosView> for Sos {
    fn from(v: ronde_node::circle::views::SosView) -> Self {
        let j = json(&v);
        let recipients = match j.get("recipients") {
            Some(Value::Array(rs)) => rs
                .iter()
                .map(|r| SosRecipient {
                    id: field(r, "id"),
                    name: field(r, "name"),
                    acked_at: r.get("acked_at").and_then(Value::as_u64),
                })
                .collect(),
            _ => Vec::new(),
        };
        Sos {
            id: field(&j, "id"),
            state: field(&j, "state"),
            raised_at: v.raised_at,
            note: v.note,
            sends: v.sends,
            acknowledged: v.acknowledged,
            recipients,
        }
    }
}

/// What a contact told, or what happened to a relation (`GET /v1/inbox`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct InboxItem {
    /// Item id (to acknowledge it).
    pub id: u64,
    /// Received, Unix seconds.
    pub received_at: u64,
    /// Who it is from: their contact id (hex). (`from` is a keyword in
    /// Python.)
    pub from_id: String,
    /// Their name.
    pub from_name: String,
    /// An SOS or an overdue alert: show it now.
    pub alert: bool,
    /// Already seen (acknowledged).
    pub seen: bool,
    /// What it is: `sos`, `sos_acked`, `contact_request`,
    /// `journey_started`, ... (the API's `kind`).
    pub kind: String,
    /// The notice as the API's JSON (the item's `kind` and the fields of
    /// that kind), for the details of each kind.
    pub notice_json: String,
}

impl From<ronde_node::circle::views::InboxItem> for InboxItem {
    fn from(v: ronde_node::circle::views::InboxItem) -> Self {
        let j = json(&v);
        let notice = json(&v.notice);
        InboxItem {
            id: v.id,
            received_at: v.received_at,
            from_id: field(&j, "from"),
            from_name: v.from_name,
            alert: v.alert,
            seen: v.seen,
            kind: field(&notice, "kind"),
            notice_json: notice.to_string(),
        }
    }
}

/// A safe place near a point (`GET /v1/safe-places`).
#[derive(Debug, Clone, uniffi::Record)]
pub struct SafePlace {
    /// Place id (hex).
    pub id: String,
    /// Its name.
    pub name: String,
    /// `pharmacy`, `bar`, ...
    pub kind: String,
    /// Where it is.
    pub location: Position,
    /// Opening hours, as listed.
    pub opening_hours: String,
    /// How to reach it.
    pub contact: String,
    /// Metres away.
    pub distance_m: f64,
}

impl From<ronde_node::directory::SafePlaceView> for SafePlace {
    fn from(v: ronde_node::directory::SafePlaceView) -> Self {
        SafePlace {
            id: text(&v.id),
            name: v.name,
            kind: text(&v.kind),
            location: Position {
                lat: v.location.lat(),
                lon: v.location.lon(),
            },
            opening_hours: v.opening_hours,
            contact: v.contact,
            distance_m: v.distance_m,
        }
    }
}

/// A value's serde form as text: a string as it is, anything else as
/// JSON.
fn text<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn field(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A count as a `u32`, saturating.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
