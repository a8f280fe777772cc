//! Errors the node reports to its callers.
//!
//! [`NodeError`] is what every [`crate::Node`] method returns. Its variants
//! are chosen so an HTTP layer can map them without parsing messages:
//! [`NodeError::Geo`], [`NodeError::InvalidInput`] and [`NodeError::Circle`]
//! are the caller's fault (4xx), [`NodeError::Stopped`] means the node is gone (503), the rest are
//! server-side failures. [`StoreError`] tells apart the storage failures an
//! operator must act on differently (another process holds the data
//! directory, the data was written by a newer version, the disk is full...).
//! [`CircleRefusal`] says why a trusted-circle operation was refused, with
//! the stable code and HTTP status the API answers with (re-exported as
//! `crate::circle::CircleRefusal`).

use std::path::PathBuf;

use ronde_protocol::{GeoError, SealError};

/// Why the report store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another node in this process) has the database
    /// open.
    #[error("the data directory {path} is in use by another process")]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// The database is damaged beyond what the store skips over.
    #[error("the database is corrupt: {0}")]
    Corrupt(String),
    /// The data directory was written by a newer version of Ronde; it is
    /// left untouched.
    #[error("the data directory uses schema version {found}, this build supports up to {supported}; upgrade Ronde")]
    NewerVersion {
        /// Schema version found on disk.
        found: u32,
        /// Newest schema version this build understands.
        supported: u32,
    },
    /// The disk is full (or the quota is exhausted).
    #[error("the disk is full: {0}")]
    Full(String),
    /// Any other I/O failure.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else the storage engine reported.
    #[error("storage error: {0}")]
    Other(String),
}

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Bad coordinates or cell precision (caller's fault).
    #[error(transparent)]
    Geo(#[from] GeoError),
    /// Another invalid argument, such as a negative radius (caller's fault).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The report store failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// The report could not be stamped and signed.
    #[error("could not seal the report: {0}")]
    Seal(#[from] SealError),
    /// The node has shut down (or its event loop died).
    #[error("the node is stopped")]
    Stopped,
    /// Listening, dialing or building the network stack failed.
    #[error("network error: {0}")]
    Transport(String),
    /// A circle operation refused because of its input or the circle's
    /// state (unknown contact, bad invite code, a journey already under
    /// way...): the caller's to fix.
    #[error(transparent)]
    Circle(#[from] CircleRefusal),
    /// No valid directory held by this node lists this place (caller's
    /// fault, or no directory yet).
    #[error("no directory held by this node lists the place {0}")]
    UnknownPlace(ronde_protocol::directory::PlaceId),
}

impl NodeError {
    /// Whether the error is the caller's fault (an HTTP 4xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            NodeError::Geo(_)
                | NodeError::InvalidInput(_)
                | NodeError::Circle(_)
                | NodeError::UnknownPlace(_)
        )
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
    /// An approval without this contact's safety number, in full.
    #[error(
        "compare the safety number with the person, digit for digit, and send it \
         as safety_number: approve only if it matches theirs"
    )]
    SafetyNumberMismatch,
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
    /// Codes are set: ending a journey or cancelling an SOS needs one.
    #[error("enter your code to do this")]
    CodeRequired,
    /// Neither the code nor the duress code.
    #[error("wrong code")]
    WrongCode,
    /// A code that cannot be set.
    #[error("{0}")]
    BadCode(String),
    /// A short invite code found no invite at this node's mailbox hosts
    /// (mistyped, expired, already used, or the two phones share no host).
    #[error(
        "no invite was found for this short code: check it, or scan the QR code or type the \
         whole code instead"
    )]
    InviteNotFound,
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
            CircleRefusal::SafetyNumberMismatch => "safety_number_mismatch",
            CircleRefusal::BadName(_) => "bad_name",
            CircleRefusal::BadNote(_) => "bad_note",
            CircleRefusal::NoContacts => "no_contacts",
            CircleRefusal::JourneyActive => "journey_active",
            CircleRefusal::NoJourney => "no_journey",
            CircleRefusal::BadEta(_) => "bad_eta",
            CircleRefusal::SosActive => "sos_active",
            CircleRefusal::NoSos => "no_sos",
            CircleRefusal::CodeRequired => "code_required",
            CircleRefusal::WrongCode => "wrong_code",
            CircleRefusal::BadCode(_) => "bad_code",
            CircleRefusal::InviteNotFound => "invite_not_found",
        }
    }

    /// The HTTP status: 404 when the thing named does not exist, 409 when
    /// the circle's state forbids it, 422 for bad input.
    pub fn http_status(&self) -> u16 {
        match self {
            CircleRefusal::UnknownContact(_)
            | CircleRefusal::NoJourney
            | CircleRefusal::NoSos
            | CircleRefusal::InviteNotFound => 404,
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
            | CircleRefusal::SafetyNumberMismatch
            | CircleRefusal::BadName(_)
            | CircleRefusal::BadNote(_)
            | CircleRefusal::BadEta(_)
            | CircleRefusal::CodeRequired
            | CircleRefusal::BadCode(_) => 422,
            CircleRefusal::WrongCode => 403,
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
        "safety_number_mismatch",
        "bad_name",
        "bad_note",
        "no_contacts",
        "journey_active",
        "no_journey",
        "bad_eta",
        "sos_active",
        "no_sos",
        "code_required",
        "wrong_code",
        "bad_code",
        "invite_not_found",
    ];
}
