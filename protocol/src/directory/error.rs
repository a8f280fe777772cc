//! Why a directory, heartbeat or flag was refused, or could not be made:
//! [`DirectoryError`], one type for the whole directory, with a stable
//! reason name for each fault.

use super::limits::MAX_AREA_LEN;

/// Why a directory, heartbeat or flag was refused, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Input over the size limit; nothing was parsed.
    #[error("{what} of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Input ended before the structure did.
    #[error("truncated")]
    Truncated,
    /// Bytes left after the signature.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A version this code does not speak.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// A place kind code this version does not know.
    #[error("unknown place kind {0}")]
    UnknownKind(u8),
    /// A flag reason code this version does not know.
    #[error("unknown flag reason {0}")]
    UnknownReason(u8),
    /// A text field that is empty when it must not be, not UTF-8, or holds
    /// control characters.
    #[error("field {0} is empty, not UTF-8 or contains control characters")]
    BadText(&'static str),
    /// A text field over its length limit.
    #[error("field {field} is {len} bytes, over the limit of {max}")]
    TooLong {
        /// Field name.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Latitude or longitude out of range.
    #[error("the location is not a valid latitude/longitude")]
    BadLocation,
    /// A mediator's area that is not a geohash prefix of at most 7
    /// characters.
    #[error("the area is not a geohash prefix of at most {MAX_AREA_LEN} characters")]
    BadArea,
    /// A phone number with characters other than `+0-9 ()-.`.
    #[error("the phone number may only contain +, digits, spaces, ( ) - and .")]
    BadPhone,
    /// More entries than allowed.
    #[error("{n} {what}, over the limit of {max}")]
    TooMany {
        /// What there are too many of.
        what: &'static str,
        /// How many.
        n: usize,
        /// The limit.
        max: usize,
    },
    /// Entries out of order or repeated, a flag byte other than 0 or 1, or a
    /// heartbeat TTL without a heartbeat key: the encoding would not be
    /// canonical.
    #[error("not canonical: {0}")]
    NotCanonical(&'static str),
    /// Times that contradict each other (expiry before verification, a
    /// listing valid longer than allowed…).
    #[error("invalid times: {0}")]
    BadTimes(&'static str),
    /// A key that is not a valid Ed25519 public key.
    #[error("not a valid Ed25519 public key")]
    BadKey,
    /// The city's signature does not verify under the expected key: the
    /// directory was forged or tampered with.
    #[error("bad signature: forged or tampered with")]
    BadSignature,
    /// The directory's `expires_at` is past.
    #[error("the directory expired at {0}")]
    Expired(u64),
    /// Issued (or confirmed, observed) further in the future than the
    /// tolerated clock skew.
    #[error("issued in the future")]
    FromFuture,
    /// A serial lower than one already seen: a replay of an older directory.
    #[error("serial {serial} is older than the last one seen, {last}")]
    Rollback {
        /// The serial of the document.
        serial: u64,
        /// The last serial the verifier accepted.
        last: u64,
    },
    /// A heartbeat for a place that is not listed or has no heartbeat key.
    #[error("heartbeat for a place that is unknown or has no key")]
    HeartbeatUnknownPlace,
    /// A heartbeat whose signature does not verify under the place's key.
    #[error("heartbeat signature does not verify under the place's key")]
    HeartbeatBadSignature,
    /// A heartbeat older than [`MAX_HEARTBEAT_AGE_SECS`](super::MAX_HEARTBEAT_AGE_SECS).
    #[error("heartbeat is too old")]
    HeartbeatTooOld,
    /// A flag's proof of work is under the required difficulty or does not
    /// hold.
    #[error("not enough proof of work")]
    NotEnoughWork,
    /// A relay entry that breaks a rule of its own (no role, a peer id
    /// of the wrong size, an address that is not multiaddr text).
    #[error("bad relay entry: {0}")]
    BadRelay(&'static str),
    /// A token key that is not an RSA-2048 RSASSA-PSS SHA-384 SPKI, or
    /// whose period does not start at a multiple of a day.
    #[error("bad token key")]
    BadTokenKey,
    /// A flag observed longer ago than [`MAX_FLAG_AGE_SECS`](super::MAX_FLAG_AGE_SECS).
    #[error("flag is too old")]
    FlagTooOld,
}

impl DirectoryError {
    /// A stable snake_case name, for metrics, logs and API answers.
    pub fn reason(&self) -> &'static str {
        match self {
            DirectoryError::TooLarge { .. } => "too_large",
            DirectoryError::Truncated
            | DirectoryError::TrailingBytes(_)
            | DirectoryError::UnsupportedVersion(_)
            | DirectoryError::NotCanonical(_) => "malformed",
            DirectoryError::UnknownKind(_) => "unknown_kind",
            DirectoryError::UnknownReason(_) => "unknown_reason",
            DirectoryError::BadText(_) | DirectoryError::TooLong { .. } => "bad_text",
            DirectoryError::BadLocation => "bad_location",
            DirectoryError::BadArea => "bad_area",
            DirectoryError::BadPhone => "bad_phone",
            DirectoryError::TooMany { .. } => "too_many",
            DirectoryError::BadTimes(_) => "bad_times",
            DirectoryError::BadKey => "bad_key",
            DirectoryError::BadSignature => "bad_signature",
            DirectoryError::Expired(_) => "expired",
            DirectoryError::FromFuture => "from_future",
            DirectoryError::Rollback { .. } => "rollback",
            DirectoryError::HeartbeatUnknownPlace => "unknown_place",
            DirectoryError::HeartbeatBadSignature => "bad_heartbeat_signature",
            DirectoryError::HeartbeatTooOld => "heartbeat_too_old",
            DirectoryError::NotEnoughWork => "not_enough_work",
            DirectoryError::FlagTooOld => "flag_too_old",
            DirectoryError::BadRelay(_) => "bad_relay",
            DirectoryError::BadTokenKey => "bad_token_key",
        }
    }
}
