//! The trusted circle in the node: contacts, journeys, SOS, their delivery
//! and the mailbox service, around the pure core of
//! [`ronde_protocol::circle`].
//!
//! The protocol crate decides everything that can be decided without I/O
//! (invites, the handshake, sealing and opening envelopes, replay windows,
//! mailbox addresses, the journey and SOS state machines, the dead-man's
//! switch). This module adds what needs a disk, a clock and a network:
//!
//! * [`keyfile`]: the long-term identity in `<data_dir>/circle-identity`
//!   (mode 0600), created once, never deleted.
//! * [`store`]: the circle, the outbox of sealed envelopes and the inbox in
//!   sled, changed in single transactions (a counter is persisted with the
//!   envelope it sealed, before anything is sent).
//! * [`wire`]: the request-response protocols `/ronde/circle/1` (direct
//!   delivery) and `/ronde/mailbox/1` (store-and-forward, dead-man's
//!   switch) and their bounded codecs.
//! * [`mailbox`]: the host side of `/ronde/mailbox/1`: bounded mailboxes of
//!   ciphertext with a retention period, and the hosted switches.
//! * `service`: the node side, driven by the event loop: it seals, queues
//!   and delivers (directly when the contact's node is reachable, else to
//!   the mailbox hosts), polls mailboxes, opens what arrives, runs the
//!   journey and SOS machines on the node's clock, and arms, pushes back
//!   and withdraws the journey's switch.
//! * [`views`]: what the API shows.
//!
//! The libp2p peer id stays fresh at every start: contacts find each other
//! through the addresses of the invite and of their accept, through the
//! peer an envelope arrived from, and through mailboxes, never through a
//! stable network identity.

pub mod keyfile;
pub mod mailbox;
pub(crate) mod service;
pub mod store;
pub mod views;
pub mod wire;

use std::time::Duration;

use ronde_protocol::circle::{JourneyConfig, SosConfig};

pub use mailbox::{relay_id, MailboxHost, MailboxLimits};
pub use views::{
    AckView, CircleStatus, ContactList, ContactView, FixView, Inbox, InboxItem, InboxNotice,
    InviteView, JourneyView, PlaceView, SosRecipient, SosView, SwitchStatus,
};

/// Default lifetime of an invite: a day.
pub const DEFAULT_INVITE_TTL_SECS: u64 = 86_400;

/// Tunables of the circle service (see [`crate::NodeConfig::circle`]).
#[derive(Debug, Clone)]
pub struct CircleConfig {
    /// How often the node looks at its clock for journey and SOS deadlines,
    /// due switches and retries.
    pub tick: Duration,
    /// How often the node fetches its mailboxes from the hosts it knows.
    pub mailbox_poll_interval: Duration,
    /// How long an envelope that no path took waits before the next try.
    pub retry_interval: Duration,
    /// Timeout of one request (direct delivery or mailbox).
    pub request_timeout: Duration,
    /// Bounds of the mailboxes this node hosts (with
    /// [`crate::NodeConfig::mailbox_host`]).
    pub mailbox_limits: MailboxLimits,
    /// Journeys: position interval, optional silence timeout.
    pub journey: JourneyConfig,
    /// SOS re-sends.
    pub sos: SosConfig,
}

impl Default for CircleConfig {
    fn default() -> Self {
        CircleConfig {
            tick: Duration::from_secs(1),
            mailbox_poll_interval: Duration::from_secs(30),
            retry_interval: Duration::from_secs(15),
            request_timeout: Duration::from_secs(10),
            mailbox_limits: MailboxLimits::default(),
            journey: JourneyConfig::default(),
            sos: SosConfig::default(),
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
            ..CircleConfig::default()
        }
    }
}

/// Why the node refused a circle operation: the caller's input or the
/// circle's state, never a failure of the node. Each has a stable code
/// (the API's `error`) and an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CircleRefusal {
    /// No contact matches.
    #[error("no contact matches {0:?}; see the contact list")]
    UnknownContact(String),
    /// Several contacts match.
    #[error("{0:?} matches several contacts; use more of the contact id")]
    AmbiguousContact(String),
    /// The invite code does not decode.
    #[error("this is not a valid invite code: {0}")]
    BadInvite(String),
    /// The invite has expired.
    #[error("this invite has expired; ask for a new one")]
    InviteExpired,
    /// The invite is this node's own.
    #[error("this is your own invite; give it to the person you trust")]
    OwnInvite,
    /// Already in the circle.
    #[error("this person is already in your circle")]
    AlreadyContact,
    /// 32 contacts.
    #[error("your circle is full (32 contacts); remove someone first")]
    CircleFull,
    /// 16 invites pending.
    #[error("too many open invites (16); wait for them to be used or to expire")]
    TooManyInvites,
    /// Approving a contact who has not accepted one of my invites.
    #[error("this contact is waiting for their own approval, not yours")]
    NotAwaitingApproval,
    /// A display name over 64 bytes or with control characters.
    #[error("invalid name: {0}")]
    BadName(String),
    /// An SOS note over 280 bytes or with control characters.
    #[error("invalid note: {0}")]
    BadNote(String),
    /// No mutual contact to tell.
    #[error("nobody in your circle has accepted yet: there is nobody to alert")]
    NoContacts,
    /// A journey is under way.
    #[error("a journey is already under way; end it (arrived or cancel) first")]
    JourneyActive,
    /// No journey under way.
    #[error("no journey is under way")]
    NoJourney,
    /// The arrival time is refused.
    #[error("{0}")]
    BadEta(String),
    /// An SOS is active.
    #[error("an SOS is already active; it is re-sent until someone acknowledges it")]
    SosActive,
    /// No SOS.
    #[error("no SOS is active")]
    NoSos,
}

impl CircleRefusal {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            CircleRefusal::UnknownContact(_) => "unknown_contact",
            CircleRefusal::AmbiguousContact(_) => "ambiguous_contact",
            CircleRefusal::BadInvite(_) => "bad_invite",
            CircleRefusal::InviteExpired => "invite_expired",
            CircleRefusal::OwnInvite => "own_invite",
            CircleRefusal::AlreadyContact => "already_contact",
            CircleRefusal::CircleFull => "circle_full",
            CircleRefusal::TooManyInvites => "too_many_invites",
            CircleRefusal::NotAwaitingApproval => "not_awaiting_approval",
            CircleRefusal::BadName(_) => "bad_name",
            CircleRefusal::BadNote(_) => "bad_note",
            CircleRefusal::NoContacts => "no_contacts",
            CircleRefusal::JourneyActive => "journey_active",
            CircleRefusal::NoJourney => "no_journey",
            CircleRefusal::BadEta(_) => "bad_eta",
            CircleRefusal::SosActive => "sos_active",
            CircleRefusal::NoSos => "no_sos",
        }
    }

    /// The HTTP status: 404 when the thing named does not exist, 409 when
    /// the circle's state forbids it, 422 for bad input.
    pub fn http_status(&self) -> u16 {
        match self {
            CircleRefusal::UnknownContact(_) | CircleRefusal::NoJourney | CircleRefusal::NoSos => {
                404
            }
            CircleRefusal::AmbiguousContact(_)
            | CircleRefusal::AlreadyContact
            | CircleRefusal::CircleFull
            | CircleRefusal::TooManyInvites
            | CircleRefusal::NotAwaitingApproval
            | CircleRefusal::NoContacts
            | CircleRefusal::JourneyActive
            | CircleRefusal::SosActive => 409,
            CircleRefusal::BadInvite(_)
            | CircleRefusal::InviteExpired
            | CircleRefusal::OwnInvite
            | CircleRefusal::BadName(_)
            | CircleRefusal::BadNote(_)
            | CircleRefusal::BadEta(_) => 422,
        }
    }

    /// Every code, for the API's list.
    pub const CODES: &'static [&'static str] = &[
        "unknown_contact",
        "ambiguous_contact",
        "bad_invite",
        "invite_expired",
        "own_invite",
        "already_contact",
        "circle_full",
        "too_many_invites",
        "not_awaiting_approval",
        "bad_name",
        "bad_note",
        "no_contacts",
        "journey_active",
        "no_journey",
        "bad_eta",
        "sos_active",
        "no_sos",
    ];
}
