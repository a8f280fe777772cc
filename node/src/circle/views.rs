//! What the node shows of its circle: the JSON answers of the circle API
//! and the circle events. Coordinates appear here because this is the
//! person's own device (and their contacts' end-to-end encrypted positions);
//! none of these types is ever logged.

use ronde_protocol::circle::{
    ContactId, ContactState, Deviation, Fix, JourneyState, MessageId, Notice, Place, SosState,
    StatesOnly,
};
use serde::{Deserialize, Serialize};

/// A place, readable: a point, or a cell and its centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceView {
    /// Latitude, decimal degrees (a cell's centre for a cell).
    pub lat: f64,
    /// Longitude, decimal degrees.
    pub lon: f64,
    /// Accuracy in metres, if the sender knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<u16>,
    /// The geohash cell, for a place given as a cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
}

impl From<&Place> for PlaceView {
    fn from(p: &Place) -> Self {
        let (lat, lon) = p.lat_lon();
        match p {
            Place::Point { accuracy_m, .. } => PlaceView {
                lat,
                lon,
                accuracy_m: (*accuracy_m > 0).then_some(*accuracy_m),
                cell: None,
            },
            Place::Cell(c) => PlaceView {
                lat,
                lon,
                accuracy_m: None,
                cell: Some(c.to_string()),
            },
        }
    }
}

/// A position and when it was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixView {
    /// When (Unix seconds, the sender's clock).
    pub at: u64,
    /// Where.
    #[serde(flatten)]
    pub place: PlaceView,
}

impl From<&Fix> for FixView {
    fn from(f: &Fix) -> Self {
        FixView {
            at: f.at,
            place: PlaceView::from(&f.place),
        }
    }
}

/// One contact, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    /// The local contact id (64 hex digits; never sent).
    pub id: ContactId,
    /// Their display name, as they chose it.
    pub name: String,
    /// Where the relation stands.
    pub state: ContactState,
    /// The 60 digits to compare with them, in 12 groups of 5.
    pub safety_number: String,
    /// When the relation was created (Unix seconds).
    pub since: u64,
    /// Messages to them not delivered yet.
    pub queued: usize,
}

/// `GET /v1/contacts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactList {
    /// Every contact, in id order.
    pub contacts: Vec<ContactView>,
    /// Invites created here that nobody accepted yet.
    pub pending_invites: usize,
}

/// A new invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteView {
    /// The code to hand over (`ronde1:…`, lower case).
    pub code: String,
    /// The same in upper case, for a QR code (alphanumeric mode).
    pub qr: String,
    /// The name it shows.
    pub name: String,
    /// When it stops being accepted (Unix seconds).
    pub expires_at: u64,
    /// The short code to read out or type instead (`ABCDE-FGHJK`), when
    /// the invite was left at this node's mailbox hosts; the other phone
    /// must use one of the same hosts (the city's relays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_code: Option<String>,
}

/// Someone who acknowledged an SOS or an overdue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckView {
    /// The contact.
    pub id: ContactId,
    /// Their name.
    pub name: String,
    /// When the ack arrived (Unix seconds, this node's clock).
    pub at: u64,
}

/// Where the dead-man's switch of a journey stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchStatus {
    /// No mailbox host was reachable yet: only this phone can raise the
    /// overdue alert.
    Pending,
    /// At least one host holds the sealed alerts.
    Armed,
    /// Withdrawn (the journey ended).
    Withdrawn,
    /// No host accepted it.
    Failed,
}

/// Where one host stands with the journey's switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchHostState {
    /// The deposit is on its way (or waiting for the host to be reached).
    Depositing,
    /// The host holds it: it answered with a receipt signed by its key.
    Armed,
    /// Withdrawn from this host.
    Withdrawn,
    /// The host refused it or gave no valid receipt: not counted.
    Failed,
}

/// A host of the journey's switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchHostView {
    /// Its peer id, short form (the last 8 characters, after `…`).
    pub peer: String,
    /// Who runs it, as the city's directory lists it; empty for a host the
    /// person configured (`--mailbox-peer`).
    pub operator: String,
    /// Where it stands.
    pub state: SwitchHostState,
}

/// The current (or last) journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JourneyView {
    /// The journey id.
    pub id: MessageId,
    /// Where it stands, as the person's screen shows it (a journey ended
    /// with the duress code shows arrived or cancelled).
    pub state: JourneyState,
    /// The last position lay within 100 m of the destination: ask the
    /// person whether they arrived.
    #[serde(default)]
    pub near_destination: bool,
    /// Parents' mode: only states are shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states_only: Option<StatesOnly>,
    /// The destination's name as the person gave it (kept on this device,
    /// not sent to contacts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_name: Option<String>,
    /// When it started (Unix seconds).
    pub started_at: u64,
    /// The destination.
    pub destination: PlaceView,
    /// The expected arrival (Unix seconds).
    pub expected_arrival: u64,
    /// When contacts are alerted if the person has not arrived.
    pub overdue_at: u64,
    /// When sharing stops at the latest (8 hours after the start).
    pub ends_at: u64,
    /// When the last position was shared, if any.
    pub last_position_at: Option<u64>,
    /// The dead-man's switch.
    pub switch: SwitchStatus,
    /// When the mailbox host releases the alert unless it is withdrawn.
    pub switch_release_at: u64,
    /// Where the switch is held: each host it was deposited with, in order.
    pub switch_hosts: Vec<SwitchHostView>,
    /// The contacts told about it.
    pub contacts: usize,
    /// Who acknowledged an overdue alert.
    pub acked_by: Vec<AckView>,
}

/// One recipient of an SOS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SosRecipient {
    /// The contact.
    pub id: ContactId,
    /// Their name.
    pub name: String,
    /// When they acknowledged it, if they did.
    pub acked_at: Option<u64>,
}

/// The current (or last) SOS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SosView {
    /// The SOS id.
    pub id: MessageId,
    /// Active or cancelled.
    pub state: SosState,
    /// When it was raised (Unix seconds).
    pub raised_at: u64,
    /// The note sent with it.
    pub note: String,
    /// Where the person was, if the node knew.
    pub place: Option<PlaceView>,
    /// How many times it was sent to everyone (re-sends until an ack).
    pub sends: u32,
    /// Whether anyone acknowledged it.
    pub acknowledged: bool,
    /// Everyone it was sent to, and who acknowledged it.
    pub recipients: Vec<SosRecipient>,
}

/// What a contact told, or what happened to a relation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InboxNotice {
    /// Someone accepted one of my invites: compare the safety number, then
    /// approve or remove them.
    ContactRequest {
        /// The safety number to compare.
        safety_number: String,
    },
    /// The relation became mutual: sharing flows.
    ContactMutual,
    /// The contact left my circle (they were removed).
    ContactLeft,
    /// A contact started a journey.
    JourneyStarted {
        /// The journey.
        journey: MessageId,
        /// Where to.
        destination: PlaceView,
        /// Expected arrival (their clock).
        expected_arrival: u64,
        /// When they become overdue.
        overdue_at: u64,
        /// Parents' mode: only its states (started, arrived, deviated,
        /// overdue) will be shared, no positions unless an alert fires.
        #[serde(default)]
        states_only: bool,
    },
    /// A contact changed the expected arrival of a journey.
    JourneyChanged {
        /// The journey.
        journey: MessageId,
        /// The new expected arrival.
        expected_arrival: u64,
        /// When they become overdue.
        overdue_at: u64,
    },
    /// Where a contact on a journey is.
    Position {
        /// The journey.
        journey: MessageId,
        /// The position.
        fix: FixView,
    },
    /// A contact arrived.
    Arrived {
        /// The journey.
        journey: MessageId,
    },
    /// A contact ended a journey without arriving.
    JourneyCancelled {
        /// The journey.
        journey: MessageId,
    },
    /// A contact is overdue, or their phone fell silent: alert.
    Overdue {
        /// The journey.
        journey: MessageId,
        /// When they expected to arrive.
        expected_arrival: u64,
        /// Their last known position.
        last_seen: Option<FixView>,
    },
    /// A contact on a parents'-mode journey left its corridor or stopped:
    /// alert.
    Deviated {
        /// The journey.
        journey: MessageId,
        /// `off_route` or `stopped`.
        reason: Deviation,
        /// Where and when.
        fix: FixView,
    },
    /// A contact "cancelled" an SOS or "ended" a journey with their duress
    /// code: their screen shows it cancelled, but they may be under
    /// coercion. Alert.
    Duress {
        /// The SOS or journey.
        of: MessageId,
        /// When (their clock).
        at: u64,
    },
    /// A contact raised an SOS: alert.
    Sos {
        /// The SOS (acknowledge this item to tell them you saw it).
        sos: MessageId,
        /// When it was raised (their clock).
        at: u64,
        /// Where they are, if known.
        place: Option<PlaceView>,
        /// Their note.
        note: String,
    },
    /// A new position for an SOS.
    SosUpdated {
        /// The SOS.
        sos: MessageId,
        /// Where they are now.
        place: Option<PlaceView>,
    },
    /// A contact cancelled their SOS.
    SosCancelled {
        /// The SOS.
        sos: MessageId,
    },
    /// A contact acknowledged my SOS or overdue alert.
    Acked {
        /// What they acknowledged.
        of: MessageId,
    },
}

impl InboxNotice {
    /// The notice of a [`Notice`] (its sender goes in the item).
    pub fn of(n: &Notice) -> InboxNotice {
        match n {
            Notice::JourneyStarted {
                journey,
                destination,
                expected_arrival,
                overdue_at,
                states_only,
                ..
            } => InboxNotice::JourneyStarted {
                journey: *journey,
                destination: destination.into(),
                expected_arrival: *expected_arrival,
                overdue_at: *overdue_at,
                states_only: states_only.is_some(),
            },
            Notice::Deviated {
                journey,
                reason,
                fix,
                ..
            } => InboxNotice::Deviated {
                journey: *journey,
                reason: *reason,
                fix: fix.into(),
            },
            Notice::Duress { of, at, .. } => InboxNotice::Duress { of: *of, at: *at },
            Notice::JourneyChanged {
                journey,
                expected_arrival,
                overdue_at,
                ..
            } => InboxNotice::JourneyChanged {
                journey: *journey,
                expected_arrival: *expected_arrival,
                overdue_at: *overdue_at,
            },
            Notice::Position { journey, fix, .. } => InboxNotice::Position {
                journey: *journey,
                fix: fix.into(),
            },
            Notice::Arrived { journey, .. } => InboxNotice::Arrived { journey: *journey },
            Notice::JourneyCancelled { journey, .. } => {
                InboxNotice::JourneyCancelled { journey: *journey }
            }
            Notice::Overdue {
                journey,
                expected_arrival,
                last_seen,
                ..
            } => InboxNotice::Overdue {
                journey: *journey,
                expected_arrival: *expected_arrival,
                last_seen: last_seen.as_ref().map(FixView::from),
            },
            Notice::Sos {
                sos,
                at,
                place,
                note,
                ..
            } => InboxNotice::Sos {
                sos: *sos,
                at: *at,
                place: place.as_ref().map(PlaceView::from),
                note: note.clone(),
            },
            Notice::SosUpdated { sos, place, .. } => InboxNotice::SosUpdated {
                sos: *sos,
                place: place.as_ref().map(PlaceView::from),
            },
            Notice::SosCancelled { sos, .. } => InboxNotice::SosCancelled { sos: *sos },
            Notice::Acked { of, .. } => InboxNotice::Acked { of: *of },
        }
    }

    /// Whether it needs the person's attention now (SOS, overdue,
    /// deviation, duress).
    pub fn is_alert(&self) -> bool {
        matches!(
            self,
            InboxNotice::Sos { .. }
                | InboxNotice::Overdue { .. }
                | InboxNotice::Deviated { .. }
                | InboxNotice::Duress { .. }
        )
    }

    /// The journey or SOS to acknowledge once the person saw it.
    pub fn ackable(&self) -> Option<MessageId> {
        match self {
            InboxNotice::Sos { sos, .. } => Some(*sos),
            InboxNotice::Overdue { journey, .. } | InboxNotice::Deviated { journey, .. } => {
                Some(*journey)
            }
            InboxNotice::Duress { of, .. } => Some(*of),
            _ => None,
        }
    }
}

/// One item of the inbox, and of the `alert` / `circle` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxItem {
    /// Its number in this node's inbox (increasing).
    pub id: u64,
    /// When it arrived (Unix seconds, this node's clock).
    pub received_at: u64,
    /// Who it is from.
    pub from: ContactId,
    /// Their name when it arrived.
    pub from_name: String,
    /// An SOS or overdue alert.
    pub alert: bool,
    /// The person acknowledged it (`POST /v1/inbox/ack`); for an alert, the
    /// sender was told.
    pub seen: bool,
    /// What it says.
    #[serde(flatten)]
    pub notice: InboxNotice,
}

/// `GET /v1/inbox`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbox {
    /// Oldest first.
    pub items: Vec<InboxItem>,
}

/// State of the circle service, for status answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircleStatus {
    /// This node's public identity (128 hex digits).
    pub identity: String,
    /// Contacts, all states.
    pub contacts: usize,
    /// Messages waiting for delivery.
    pub queued: usize,
    /// Mailbox and switch hosts: configured, or relays of the city's
    /// signed directory (never a peer that merely connected).
    pub mailbox_hosts: usize,
    /// Whether this node hosts mailboxes.
    pub hosting: bool,
    /// Envelopes held for others (when hosting).
    pub hosted_envelopes: usize,
    /// Live dead-man's switches held for others (when hosting).
    pub hosted_switches: usize,
    /// Whether the person set a code and a duress code (then ending a
    /// journey or cancelling an SOS needs one of them).
    #[serde(default)]
    pub codes: bool,
}

/// Whether codes are set (the answer of setting or removing them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodesView {
    /// Codes are set.
    pub codes: bool,
}

/// The push wake-ups, as [`crate::Node::set_push_endpoint`] answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushView {
    /// Whether an endpoint is set.
    pub endpoint_set: bool,
    /// Mailbox hosts asked to register it now (one request per host and
    /// per day of mailboxes).
    pub hosts: usize,
    /// Registrations the hosts confirmed so far (one per host and day).
    pub registered: usize,
    /// Registrations still awaiting a host's answer.
    pub pending: usize,
}

/// What [`crate::Node::wake`] did, once its fetches are done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakeView {
    /// Mailbox hosts asked for mail.
    pub hosts: usize,
    /// Every fetch (and its acknowledgement) was answered or failed before
    /// the deadline (25 s); `false`: some were still under way.
    pub complete: bool,
    /// Envelopes taken from the mailboxes meanwhile.
    pub received: usize,
}
