//! The city directory: safe places and street mediators, signed by a city
//! key; heartbeats by which a place re-confirms its own listing; and the
//! anonymous flags people raise against a place.
//!
//! Everything here is pure, like the rest of the crate: times are arguments
//! (Unix seconds), randomness is an argument. The byte-exact specification
//! is the "Directory" section of `docs/protocol.md`.
//!
//! * A [`Directory`] is one document: the city's name, a `serial` that only
//!   grows, an issue and an expiry time, the [`SafePlace`]s, the
//!   [`Mediator`]s and the latest [`Heartbeat`] of each place that has a key.
//!   The city signs its canonical bytes ([`Directory::sign`]); a phone checks
//!   them with [`verify_directory`] against the city's public key it was
//!   configured with, and gets a [`VerifiedDirectory`] or a typed
//!   [`DirectoryError`].
//! * A listing expires unless it is re-confirmed: by the city (a new
//!   `verified_at`/`expires_at`) or by the place itself, which signs a
//!   [`Heartbeat`] with the key the city registered for it. [`freshness`]
//!   says whether a place is fresh, going stale or expired; a heartbeat can
//!   never keep a listing alive more than [`MAX_LISTING_AGE_SECS`] after the
//!   city last verified it.
//! * A [`Flag`] says "this place was closed / refused to help". Like a report
//!   it carries no identity: a one-time key, a proof of work and a
//!   signature.
//!
//! ```
//! use rand::SeedableRng;
//! use ronde_protocol::directory::*;
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
//! let now = 1_790_000_000;
//! let city = DirectoryKey::generate(&mut rng);
//! let place = SafePlace {
//!     id: PlaceId([1; 16]),
//!     name: "Pharmacie du Centre".into(),
//!     kind: PlaceKind::Pharmacy,
//!     location: Location::from_degrees(48.8156, 2.3844).unwrap(),
//!     opening_hours: "Mo-Sa 08:00-22:00".into(),
//!     contact: "+33 1 00 00 00 00".into(),
//!     verified_at: now,
//!     expires_at: now + 90 * 86_400,
//!     heartbeat_key: None,
//!     heartbeat_ttl_secs: 0,
//! };
//! let dir = Directory {
//!     city: "Ivry".into(),
//!     serial: 1,
//!     issued_at: now,
//!     expires_at: now + 2 * 86_400,
//!     places: vec![place],
//!     mediators: vec![],
//!     heartbeats: vec![],
//! };
//! let bytes = dir.sign(&city).unwrap();
//! let verified = verify_directory(&bytes, &city.public(), now, None).unwrap();
//! assert_eq!(verified.places_at(now).len(), 1);
//! ```

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cursor::{Cursor, CursorError};
use crate::pow::leading_zero_bits;

/// Wire version of directories, heartbeats and flags.
pub const DIRECTORY_VERSION: u8 = 1;
/// Largest encoded directory a verifier reads.
pub const MAX_DIRECTORY_SIZE: usize = 1024 * 1024;
/// Most safe places in one directory.
pub const MAX_PLACES: usize = 1024;
/// Most mediators in one directory.
pub const MAX_MEDIATORS: usize = 256;
/// Longest city name, bytes of UTF-8.
pub const MAX_CITY_LEN: usize = 64;
/// Longest name of a place or mediator, bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 96;
/// Longest opening-hours text, bytes of UTF-8.
pub const MAX_HOURS_LEN: usize = 160;
/// Longest contact text of a place, bytes of UTF-8.
pub const MAX_CONTACT_LEN: usize = 96;
/// Longest role of a mediator, bytes of UTF-8.
pub const MAX_ROLE_LEN: usize = 64;
/// Longest phone number: `+`, digits, spaces, `(`, `)`, `-` and `.`.
pub const MAX_PHONE_LEN: usize = 32;
/// Longest mediator area: a geohash prefix (empty: the whole city).
pub const MAX_AREA_LEN: usize = 7;
/// A heartbeat or city re-confirmation never keeps a listing alive longer
/// than this after the city last verified it (`verified_at`).
pub const MAX_LISTING_AGE_SECS: u64 = 366 * 86_400;
/// Longest time one heartbeat keeps a place fresh.
pub const MAX_HEARTBEAT_TTL_SECS: u32 = 30 * 86_400;
/// A place is "going stale" once less than this (or a quarter of its last
/// confirmation period, whichever is shorter) is left before it expires.
pub const STALE_WINDOW_SECS: u64 = 7 * 86_400;
/// Tolerated clock skew for times in the future.
pub const DIRECTORY_CLOCK_SKEW_SECS: u64 = 300;
/// A heartbeat older than this is refused by a relay (it cannot be a
/// place's current confirmation).
pub const MAX_HEARTBEAT_AGE_SECS: u64 = 86_400;
/// A flag observed longer ago than this is refused.
pub const MAX_FLAG_AGE_SECS: u64 = 7 * 86_400;
/// Length of an encoded flag.
pub const FLAG_LEN: usize = 1 + 16 + 1 + 4 + 32 + 1 + 8 + 64;
/// Length of an encoded heartbeat.
pub const HEARTBEAT_LEN: usize = 1 + 16 + 8 + 64;

/// Domain separator of the city's signature over a directory.
pub const DIRECTORY_SIGN_DOMAIN: &[u8] = b"ronde/directory/v1/sig";
/// Domain separator of a place's heartbeat signature.
pub const HEARTBEAT_SIGN_DOMAIN: &[u8] = b"ronde/directory/v1/heartbeat";
/// Domain separator of a flag's signature.
pub const FLAG_SIGN_DOMAIN: &[u8] = b"ronde/flag/v1/sig";
/// Domain separator of a flag's proof of work.
pub const FLAG_POW_DOMAIN: &[u8] = b"ronde/flag/v1/pow";
/// Domain separator of a flag's id.
pub const FLAG_ID_DOMAIN: &[u8] = b"ronde/flag/v1/id";

const SIG_LEN: usize = 64;

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
    /// A heartbeat older than [`MAX_HEARTBEAT_AGE_SECS`].
    #[error("heartbeat is too old")]
    HeartbeatTooOld,
    /// A flag's proof of work is under the required difficulty or does not
    /// hold.
    #[error("not enough proof of work")]
    NotEnoughWork,
    /// A flag observed longer ago than [`MAX_FLAG_AGE_SECS`].
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
        }
    }
}

// ---------------------------------------------------------------------------
// Keys and ids
// ---------------------------------------------------------------------------

/// A secret signing key: the city's (signs directories) or a place's (signs
/// heartbeats). Its `Debug` shows only the public half.
pub struct DirectoryKey(SigningKey);

/// The public half of a [`DirectoryKey`], 32 bytes, shown as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DirectoryPublicKey(pub [u8; 32]);

impl DirectoryKey {
    /// A fresh key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> DirectoryKey {
        DirectoryKey(SigningKey::generate(rng))
    }
    /// The key of a 32-byte secret (as written by [`DirectoryKey::to_bytes`]).
    pub fn from_bytes(secret: &[u8; 32]) -> DirectoryKey {
        DirectoryKey(SigningKey::from_bytes(secret))
    }
    /// The 32-byte secret. Keep it in a file only its owner can read.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// The public half.
    pub fn public(&self) -> DirectoryPublicKey {
        DirectoryPublicKey(self.0.verifying_key().to_bytes())
    }
    fn sign(&self, domain: &[u8], msg: &[u8]) -> [u8; SIG_LEN] {
        let mut input = Vec::with_capacity(domain.len() + msg.len());
        input.extend_from_slice(domain);
        input.extend_from_slice(msg);
        self.0.sign(&input).to_bytes()
    }
}

impl fmt::Debug for DirectoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DirectoryKey(public {})", self.public())
    }
}

fn verify_sig(key: &[u8; 32], domain: &[u8], msg: &[u8], sig: &[u8; SIG_LEN]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(key) else {
        return false;
    };
    let mut input = Vec::with_capacity(domain.len() + msg.len());
    input.extend_from_slice(domain);
    input.extend_from_slice(msg);
    vk.verify_strict(&input, &Signature::from_bytes(sig))
        .is_ok()
}

impl DirectoryPublicKey {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Whether the bytes are a valid Ed25519 point (not of small order).
    pub fn is_valid(&self) -> bool {
        VerifyingKey::from_bytes(&self.0)
            .map(|k| !k.is_weak())
            .unwrap_or(false)
    }
}

impl fmt::Display for DirectoryPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for DirectoryPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DirectoryPublicKey({})", self.to_hex())
    }
}

impl FromStr for DirectoryPublicKey {
    type Err = DirectoryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut a = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut a).map_err(|_| DirectoryError::BadKey)?;
        let k = DirectoryPublicKey(a);
        if k.is_valid() {
            Ok(k)
        } else {
            Err(DirectoryError::BadKey)
        }
    }
}

/// The id of a place or mediator: 16 random bytes chosen by the city, shown
/// as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaceId(pub [u8; 16]);

impl PlaceId {
    /// A fresh random id.
    pub fn generate(rng: &mut impl CryptoRngCore) -> PlaceId {
        let mut a = [0u8; 16];
        rng.fill_bytes(&mut a);
        PlaceId(a)
    }
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for PlaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PlaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlaceId({})", self.to_hex())
    }
}

/// A string that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an id is 32 hexadecimal digits")]
pub struct BadPlaceId;

impl FromStr for PlaceId {
    type Err = BadPlaceId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut a = [0u8; 16];
        hex::decode_to_slice(s, &mut a).map_err(|_| BadPlaceId)?;
        Ok(PlaceId(a))
    }
}

macro_rules! serde_via_str {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_str!(PlaceId);
serde_via_str!(DirectoryPublicKey);

// ---------------------------------------------------------------------------
// Entries
// ---------------------------------------------------------------------------

/// What kind of place a safe place is. Codes are fixed forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaceKind {
    /// A pharmacy.
    Pharmacy,
    /// A bar or café.
    Bar,
    /// A restaurant.
    Restaurant,
    /// A shop.
    Shop,
    /// A hotel reception.
    Hotel,
    /// Transport staff (station, ticket office).
    Transport,
    /// A police station.
    Police,
    /// A hospital or health centre.
    Health,
    /// An association or community centre.
    Association,
    /// A public service (town hall, library).
    PublicService,
    /// Anything else.
    Other,
}

impl PlaceKind {
    /// Every kind, in code order.
    pub const ALL: [PlaceKind; 11] = [
        PlaceKind::Pharmacy,
        PlaceKind::Bar,
        PlaceKind::Restaurant,
        PlaceKind::Shop,
        PlaceKind::Hotel,
        PlaceKind::Transport,
        PlaceKind::Police,
        PlaceKind::Health,
        PlaceKind::Association,
        PlaceKind::PublicService,
        PlaceKind::Other,
    ];
    /// Names as used in JSON and on the command line.
    pub const NAMES: [&'static str; 11] = [
        "pharmacy",
        "bar",
        "restaurant",
        "shop",
        "hotel",
        "transport",
        "police",
        "health",
        "association",
        "public_service",
        "other",
    ];
    /// Wire code, 1..=11.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }
    /// The kind of a wire code.
    pub fn from_code(code: u8) -> Option<PlaceKind> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl fmt::Display for PlaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PlaceKind {
    type Err = DirectoryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
            .ok_or(DirectoryError::UnknownKind(0))
    }
}

/// A point, stored as integer 1e-7 degrees (about 1 cm) so that it has one
/// encoding. Safe places are public addresses: this precision is on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location {
    lat_e7: i32,
    lon_e7: i32,
}

impl Location {
    /// From degrees; `BadLocation` if NaN, infinite or out of range.
    pub fn from_degrees(lat: f64, lon: f64) -> Result<Location, DirectoryError> {
        if !lat.is_finite() || !lon.is_finite() || lat.abs() > 90.0 || lon.abs() > 180.0 {
            return Err(DirectoryError::BadLocation);
        }
        // In range, so the products fit an i32 (max 1.8e9 < 2.147e9).
        #[allow(clippy::cast_possible_truncation)]
        let to = |d: f64| (d * 1e7).round() as i32;
        Location::from_e7(to(lat), to(lon))
    }
    /// From integer 1e-7 degrees.
    pub fn from_e7(lat_e7: i32, lon_e7: i32) -> Result<Location, DirectoryError> {
        if lat_e7.unsigned_abs() > 900_000_000 || lon_e7.unsigned_abs() > 1_800_000_000 {
            return Err(DirectoryError::BadLocation);
        }
        Ok(Location { lat_e7, lon_e7 })
    }
    /// Latitude, degrees.
    pub fn lat(&self) -> f64 {
        f64::from(self.lat_e7) / 1e7
    }
    /// Longitude, degrees.
    pub fn lon(&self) -> f64 {
        f64::from(self.lon_e7) / 1e7
    }
}

#[derive(Serialize, Deserialize)]
struct LatLon {
    lat: f64,
    lon: f64,
}

impl Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        LatLon {
            lat: self.lat(),
            lon: self.lon(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = LatLon::deserialize(d)?;
        Location::from_degrees(p.lat, p.lon).map_err(serde::de::Error::custom)
    }
}

/// A place that has agreed to take in someone who feels unsafe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafePlace {
    /// Its id.
    pub id: PlaceId,
    /// Its public name.
    pub name: String,
    /// What kind of place.
    pub kind: PlaceKind,
    /// Where it is.
    pub location: Location,
    /// Opening hours, free text (OpenStreetMap `opening_hours` syntax
    /// recommended), may be empty.
    pub opening_hours: String,
    /// How to reach it (phone, address), may be empty.
    pub contact: String,
    /// When the city last verified it, Unix seconds.
    pub verified_at: u64,
    /// Until when the city's verification holds, Unix seconds.
    pub expires_at: u64,
    /// The key with which the place signs its own heartbeats, if the city
    /// registered one.
    pub heartbeat_key: Option<DirectoryPublicKey>,
    /// How long one heartbeat keeps the place fresh (0 if no key).
    pub heartbeat_ttl_secs: u32,
}

/// A street mediator or an emergency contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mediator {
    /// Its id.
    pub id: PlaceId,
    /// Name (of a person, a team or a service).
    pub name: String,
    /// Role, e.g. "street mediator", "helpline".
    pub role: String,
    /// Phone number.
    pub phone: String,
    /// Where they work: a geohash prefix (empty: the whole city).
    pub area: String,
    /// When they can be reached, free text, may be empty.
    pub hours: String,
    /// When the city last verified the entry.
    pub verified_at: u64,
    /// Until when the entry holds.
    pub expires_at: u64,
}

/// A place's own confirmation that its listing still holds, signed with its
/// registered heartbeat key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// The place.
    pub place: PlaceId,
    /// When the place confirmed, Unix seconds.
    pub confirmed_at: u64,
    /// Signature by the place's heartbeat key.
    pub signature: [u8; SIG_LEN],
}

/// The whole directory of a city.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// The city's name.
    pub city: String,
    /// Grows with every new document; verifiers refuse a lower one.
    pub serial: u64,
    /// When this document was signed.
    pub issued_at: u64,
    /// After this, the document is refused: fetch a newer one.
    pub expires_at: u64,
    /// Safe places, sorted by id, no duplicates.
    pub places: Vec<SafePlace>,
    /// Mediators, sorted by id, no duplicates.
    pub mediators: Vec<Mediator>,
    /// The latest heartbeat of places that have a key, sorted by place id,
    /// at most one per place.
    pub heartbeats: Vec<Heartbeat>,
}

// ---------------------------------------------------------------------------
// Field checks
// ---------------------------------------------------------------------------

fn check_text(
    field: &'static str,
    s: &str,
    max: usize,
    allow_empty: bool,
) -> Result<(), DirectoryError> {
    if s.len() > max {
        return Err(DirectoryError::TooLong {
            field,
            len: s.len(),
            max,
        });
    }
    if (!allow_empty && s.trim().is_empty()) || s.chars().any(char::is_control) {
        return Err(DirectoryError::BadText(field));
    }
    Ok(())
}

fn check_phone(s: &str) -> Result<(), DirectoryError> {
    check_text("phone", s, MAX_PHONE_LEN, false)?;
    if !s
        .chars()
        .all(|c| c.is_ascii_digit() || "+ ()-.".contains(c))
    {
        return Err(DirectoryError::BadPhone);
    }
    Ok(())
}

fn check_area(s: &str) -> Result<(), DirectoryError> {
    const ALPHABET: &str = "0123456789bcdefghjkmnpqrstuvwxyz";
    if s.len() > MAX_AREA_LEN || !s.chars().all(|c| ALPHABET.contains(c)) {
        return Err(DirectoryError::BadArea);
    }
    Ok(())
}

fn check_validity(verified_at: u64, expires_at: u64) -> Result<(), DirectoryError> {
    if expires_at <= verified_at {
        return Err(DirectoryError::BadTimes(
            "expires_at is not after verified_at",
        ));
    }
    if expires_at - verified_at > MAX_LISTING_AGE_SECS {
        return Err(DirectoryError::BadTimes(
            "a listing may not be valid longer than 366 days",
        ));
    }
    Ok(())
}

impl SafePlace {
    /// Check every field against the limits of the format.
    pub fn check(&self) -> Result<(), DirectoryError> {
        check_text("name", &self.name, MAX_NAME_LEN, false)?;
        check_text("opening_hours", &self.opening_hours, MAX_HOURS_LEN, true)?;
        check_text("contact", &self.contact, MAX_CONTACT_LEN, true)?;
        check_validity(self.verified_at, self.expires_at)?;
        match self.heartbeat_key {
            Some(k) if !k.is_valid() => return Err(DirectoryError::BadKey),
            Some(_) if self.heartbeat_ttl_secs == 0 => {
                return Err(DirectoryError::BadTimes(
                    "a heartbeat key needs a heartbeat ttl",
                ))
            }
            None if self.heartbeat_ttl_secs != 0 => {
                return Err(DirectoryError::NotCanonical(
                    "a heartbeat ttl without a heartbeat key",
                ))
            }
            _ => {}
        }
        if self.heartbeat_ttl_secs > MAX_HEARTBEAT_TTL_SECS {
            return Err(DirectoryError::BadTimes("heartbeat ttl over 30 days"));
        }
        Ok(())
    }
}

impl Mediator {
    /// Check every field against the limits of the format.
    pub fn check(&self) -> Result<(), DirectoryError> {
        check_text("name", &self.name, MAX_NAME_LEN, false)?;
        check_text("role", &self.role, MAX_ROLE_LEN, false)?;
        check_phone(&self.phone)?;
        check_area(&self.area)?;
        check_text("hours", &self.hours, MAX_HOURS_LEN, true)?;
        check_validity(self.verified_at, self.expires_at)
    }
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    /// A string already checked to be at most 255 bytes.
    fn str(&mut self, s: &str) {
        self.u8(u8::try_from(s.len()).unwrap_or(u8::MAX));
        self.bytes(s.as_bytes());
    }
}

/// The crate's byte cursor, reading directories, heartbeats and flags: its
/// faults come out as [`DirectoryError`]s.
type Reader<'a> = Cursor<'a, DirectoryError>;

impl From<CursorError> for DirectoryError {
    fn from(e: CursorError) -> Self {
        match e {
            CursorError::Truncated => DirectoryError::Truncated,
            CursorError::TrailingBytes(n) => DirectoryError::TrailingBytes(n),
        }
    }
}

impl Reader<'_> {
    /// A string: `u8 length || UTF-8 bytes`.
    fn str(&mut self, field: &'static str) -> Result<String, DirectoryError> {
        let n = usize::from(self.u8()?);
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DirectoryError::BadText(field))
    }
}

fn encode_place(w: &mut Writer, p: &SafePlace) {
    w.bytes(&p.id.0);
    w.u8(p.kind.code());
    w.str(&p.name);
    w.i32(p.location.lat_e7);
    w.i32(p.location.lon_e7);
    w.str(&p.opening_hours);
    w.str(&p.contact);
    w.u64(p.verified_at);
    w.u64(p.expires_at);
    match p.heartbeat_key {
        Some(k) => {
            w.u8(1);
            w.bytes(&k.0);
        }
        None => w.u8(0),
    }
    w.u32(p.heartbeat_ttl_secs);
}

fn decode_place(r: &mut Reader<'_>) -> Result<SafePlace, DirectoryError> {
    let id = PlaceId(r.array()?);
    let code = r.u8()?;
    let kind = PlaceKind::from_code(code).ok_or(DirectoryError::UnknownKind(code))?;
    let name = r.str("name")?;
    let lat = r.i32()?;
    let lon = r.i32()?;
    let location = Location::from_e7(lat, lon)?;
    let opening_hours = r.str("opening_hours")?;
    let contact = r.str("contact")?;
    let verified_at = r.u64()?;
    let expires_at = r.u64()?;
    let heartbeat_key = match r.u8()? {
        0 => None,
        1 => Some(DirectoryPublicKey(r.array()?)),
        _ => {
            return Err(DirectoryError::NotCanonical(
                "option flag other than 0 or 1",
            ))
        }
    };
    let heartbeat_ttl_secs = r.u32()?;
    let p = SafePlace {
        id,
        name,
        kind,
        location,
        opening_hours,
        contact,
        verified_at,
        expires_at,
        heartbeat_key,
        heartbeat_ttl_secs,
    };
    p.check()?;
    Ok(p)
}

fn encode_mediator(w: &mut Writer, m: &Mediator) {
    w.bytes(&m.id.0);
    w.str(&m.name);
    w.str(&m.role);
    w.str(&m.phone);
    w.str(&m.area);
    w.str(&m.hours);
    w.u64(m.verified_at);
    w.u64(m.expires_at);
}

fn decode_mediator(r: &mut Reader<'_>) -> Result<Mediator, DirectoryError> {
    let m = Mediator {
        id: PlaceId(r.array()?),
        name: r.str("name")?,
        role: r.str("role")?,
        phone: r.str("phone")?,
        area: r.str("area")?,
        hours: r.str("hours")?,
        verified_at: r.u64()?,
        expires_at: r.u64()?,
    };
    m.check()?;
    Ok(m)
}

impl SafePlace {
    /// Canonical bytes of this listing alone (as inside a directory, with a
    /// version byte in front), e.g. for storage.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DirectoryError> {
        self.check()?;
        let mut w = Writer(vec![DIRECTORY_VERSION]);
        encode_place(&mut w, self);
        Ok(w.0)
    }
    /// Parse bytes written by [`SafePlace::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<SafePlace, DirectoryError> {
        let mut r = Reader::new(bytes);
        version(&mut r)?;
        let p = decode_place(&mut r)?;
        r.finish()?;
        Ok(p)
    }
}

impl Mediator {
    /// Canonical bytes of this entry alone (with a version byte in front).
    pub fn to_bytes(&self) -> Result<Vec<u8>, DirectoryError> {
        self.check()?;
        let mut w = Writer(vec![DIRECTORY_VERSION]);
        encode_mediator(&mut w, self);
        Ok(w.0)
    }
    /// Parse bytes written by [`Mediator::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Mediator, DirectoryError> {
        let mut r = Reader::new(bytes);
        version(&mut r)?;
        let m = decode_mediator(&mut r)?;
        r.finish()?;
        Ok(m)
    }
}

fn version(r: &mut Reader<'_>) -> Result<(), DirectoryError> {
    match r.u8()? {
        DIRECTORY_VERSION => Ok(()),
        v => Err(DirectoryError::UnsupportedVersion(v)),
    }
}

fn heartbeat_message(place: &PlaceId, confirmed_at: u64) -> [u8; 25] {
    let mut m = [0u8; 25];
    m[0] = DIRECTORY_VERSION;
    m[1..17].copy_from_slice(&place.0);
    m[17..].copy_from_slice(&confirmed_at.to_be_bytes());
    m
}

impl Heartbeat {
    /// A place's confirmation at `confirmed_at`, signed with its key.
    pub fn sign(place: PlaceId, confirmed_at: u64, key: &DirectoryKey) -> Heartbeat {
        let signature = key.sign(
            HEARTBEAT_SIGN_DOMAIN,
            &heartbeat_message(&place, confirmed_at),
        );
        Heartbeat {
            place,
            confirmed_at,
            signature,
        }
    }
    /// Canonical bytes: version, place id, confirmed_at, signature
    /// ([`HEARTBEAT_LEN`] bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = heartbeat_message(&self.place, self.confirmed_at).to_vec();
        v.extend_from_slice(&self.signature);
        v
    }
    /// Parse (structure only; see [`verify_heartbeat`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Heartbeat, DirectoryError> {
        if bytes.len() > HEARTBEAT_LEN {
            return Err(DirectoryError::TooLarge {
                what: "heartbeat",
                len: bytes.len(),
                max: HEARTBEAT_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        version(&mut r)?;
        let hb = Heartbeat {
            place: PlaceId(r.array()?),
            confirmed_at: r.u64()?,
            signature: r.array()?,
        };
        r.finish()?;
        Ok(hb)
    }
    /// Whether the signature verifies (strictly) under `key`.
    pub fn signature_holds(&self, key: &DirectoryPublicKey) -> bool {
        verify_sig(
            &key.0,
            HEARTBEAT_SIGN_DOMAIN,
            &heartbeat_message(&self.place, self.confirmed_at),
            &self.signature,
        )
    }
}

/// Check a heartbeat a place just sent (relay side): the place has a key,
/// the signature verifies under it, and the confirmation time is within
/// [`MAX_HEARTBEAT_AGE_SECS`] before `now` and not in the future.
pub fn verify_heartbeat(hb: &Heartbeat, place: &SafePlace, now: u64) -> Result<(), DirectoryError> {
    let key = match place.heartbeat_key {
        Some(k) if place.id == hb.place => k,
        _ => return Err(DirectoryError::HeartbeatUnknownPlace),
    };
    if !hb.signature_holds(&key) {
        return Err(DirectoryError::HeartbeatBadSignature);
    }
    if hb.confirmed_at > now.saturating_add(DIRECTORY_CLOCK_SKEW_SECS) {
        return Err(DirectoryError::FromFuture);
    }
    if hb.confirmed_at.saturating_add(MAX_HEARTBEAT_AGE_SECS) < now {
        return Err(DirectoryError::HeartbeatTooOld);
    }
    Ok(())
}

fn sorted_unique<T>(items: &[T], key: impl Fn(&T) -> PlaceId) -> bool {
    items.windows(2).all(|w| key(&w[0]) < key(&w[1]))
}

impl Directory {
    /// Check limits, order and every entry; the checks [`Directory::sign`]
    /// and the decoder share.
    pub fn check(&self) -> Result<(), DirectoryError> {
        check_text("city", &self.city, MAX_CITY_LEN, false)?;
        if self.expires_at <= self.issued_at {
            return Err(DirectoryError::BadTimes(
                "expires_at is not after issued_at",
            ));
        }
        for (what, n, max) in [
            ("places", self.places.len(), MAX_PLACES),
            ("mediators", self.mediators.len(), MAX_MEDIATORS),
            ("heartbeats", self.heartbeats.len(), MAX_PLACES),
        ] {
            if n > max {
                return Err(DirectoryError::TooMany { what, n, max });
            }
        }
        if !sorted_unique(&self.places, |p| p.id) {
            return Err(DirectoryError::NotCanonical(
                "places not sorted by id or repeated",
            ));
        }
        if !sorted_unique(&self.mediators, |m| m.id) {
            return Err(DirectoryError::NotCanonical(
                "mediators not sorted by id or repeated",
            ));
        }
        if !sorted_unique(&self.heartbeats, |h| h.place) {
            return Err(DirectoryError::NotCanonical(
                "heartbeats not sorted by place or repeated",
            ));
        }
        for p in &self.places {
            p.check()?;
        }
        for m in &self.mediators {
            m.check()?;
        }
        for hb in &self.heartbeats {
            let place = self
                .place(&hb.place)
                .ok_or(DirectoryError::HeartbeatUnknownPlace)?;
            let key = place
                .heartbeat_key
                .ok_or(DirectoryError::HeartbeatUnknownPlace)?;
            if !hb.signature_holds(&key) {
                return Err(DirectoryError::HeartbeatBadSignature);
            }
            if hb.confirmed_at > self.issued_at.saturating_add(DIRECTORY_CLOCK_SKEW_SECS) {
                return Err(DirectoryError::FromFuture);
            }
        }
        Ok(())
    }

    /// The place with this id.
    pub fn place(&self, id: &PlaceId) -> Option<&SafePlace> {
        self.places
            .binary_search_by(|p| p.id.cmp(id))
            .ok()
            .and_then(|i| self.places.get(i))
    }

    /// The heartbeat of the place with this id.
    pub fn heartbeat(&self, id: &PlaceId) -> Option<&Heartbeat> {
        self.heartbeats
            .binary_search_by(|h| h.place.cmp(id))
            .ok()
            .and_then(|i| self.heartbeats.get(i))
    }

    fn body(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(256 + 300 * self.places.len()));
        w.u8(DIRECTORY_VERSION);
        w.str(&self.city);
        w.u64(self.serial);
        w.u64(self.issued_at);
        w.u64(self.expires_at);
        // Counts were checked to be at most MAX_PLACES (< u16::MAX).
        let n = |len: usize| u16::try_from(len).unwrap_or(u16::MAX);
        w.u16(n(self.places.len()));
        for p in &self.places {
            encode_place(&mut w, p);
        }
        w.u16(n(self.mediators.len()));
        for m in &self.mediators {
            encode_mediator(&mut w, m);
        }
        w.u16(n(self.heartbeats.len()));
        for h in &self.heartbeats {
            w.bytes(&h.place.0);
            w.u64(h.confirmed_at);
            w.bytes(&h.signature);
        }
        w.0
    }

    /// Check, encode and sign with the city key: the bytes a relay serves.
    pub fn sign(&self, city: &DirectoryKey) -> Result<Vec<u8>, DirectoryError> {
        self.check()?;
        let mut bytes = self.body();
        let sig = city.sign(DIRECTORY_SIGN_DOMAIN, &bytes);
        bytes.extend_from_slice(&sig);
        if bytes.len() > MAX_DIRECTORY_SIZE {
            return Err(DirectoryError::TooLarge {
                what: "directory",
                len: bytes.len(),
                max: MAX_DIRECTORY_SIZE,
            });
        }
        Ok(bytes)
    }

    /// Parse signed bytes without checking the city's signature or any time.
    /// Only for tools that inspect a directory; phones use
    /// [`verify_directory`].
    pub fn decode_unverified(bytes: &[u8]) -> Result<Directory, DirectoryError> {
        decode_directory(bytes).map(|(d, _)| d)
    }
}

fn decode_directory(bytes: &[u8]) -> Result<(Directory, [u8; SIG_LEN]), DirectoryError> {
    if bytes.len() > MAX_DIRECTORY_SIZE {
        return Err(DirectoryError::TooLarge {
            what: "directory",
            len: bytes.len(),
            max: MAX_DIRECTORY_SIZE,
        });
    }
    let mut r = Reader::new(bytes);
    version(&mut r)?;
    let city = r.str("city")?;
    let serial = r.u64()?;
    let issued_at = r.u64()?;
    let expires_at = r.u64()?;
    let count = |r: &mut Reader<'_>, what: &'static str, max: usize| {
        let n = usize::from(r.u16()?);
        if n > max {
            return Err(DirectoryError::TooMany { what, n, max });
        }
        Ok(n)
    };
    let n = count(&mut r, "places", MAX_PLACES)?;
    let mut places = Vec::with_capacity(n);
    for _ in 0..n {
        places.push(decode_place(&mut r)?);
    }
    let n = count(&mut r, "mediators", MAX_MEDIATORS)?;
    let mut mediators = Vec::with_capacity(n);
    for _ in 0..n {
        mediators.push(decode_mediator(&mut r)?);
    }
    let n = count(&mut r, "heartbeats", MAX_PLACES)?;
    let mut heartbeats = Vec::with_capacity(n);
    for _ in 0..n {
        heartbeats.push(Heartbeat {
            place: PlaceId(r.array()?),
            confirmed_at: r.u64()?,
            signature: r.array()?,
        });
    }
    let sig = r.array()?;
    r.finish()?;
    Ok((
        Directory {
            city,
            serial,
            issued_at,
            expires_at,
            places,
            mediators,
            heartbeats,
        },
        sig,
    ))
}

/// A directory whose city signature, times and entries were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDirectory {
    directory: Directory,
}

/// Verify untrusted directory bytes against the city's public key at `now`.
///
/// Checks, in order: size, structure (canonical encoding and field limits),
/// the city's signature (strict Ed25519), the issue time (not in the future
/// beyond [`DIRECTORY_CLOCK_SKEW_SECS`]), the expiry, the serial against
/// `last_serial` (the highest serial this verifier accepted before, if any),
/// and every heartbeat's signature under its place's key.
pub fn verify_directory(
    bytes: &[u8],
    city: &DirectoryPublicKey,
    now: u64,
    last_serial: Option<u64>,
) -> Result<VerifiedDirectory, DirectoryError> {
    let (directory, sig) = decode_directory(bytes)?;
    let body = &bytes[..bytes.len() - SIG_LEN];
    if !verify_sig(&city.0, DIRECTORY_SIGN_DOMAIN, body, &sig) {
        return Err(DirectoryError::BadSignature);
    }
    if directory.issued_at > now.saturating_add(DIRECTORY_CLOCK_SKEW_SECS) {
        return Err(DirectoryError::FromFuture);
    }
    if directory.expires_at <= now {
        return Err(DirectoryError::Expired(directory.expires_at));
    }
    if let Some(last) = last_serial {
        if directory.serial < last {
            return Err(DirectoryError::Rollback {
                serial: directory.serial,
                last,
            });
        }
    }
    directory.check()?;
    Ok(VerifiedDirectory { directory })
}

/// Whether a listing still holds at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Freshness {
    /// Confirmed, and well within its validity.
    Fresh {
        /// When it stops holding unless re-confirmed.
        until: u64,
    },
    /// Still valid but close to expiring: the city or the place should
    /// re-confirm it.
    Stale {
        /// When it stops holding unless re-confirmed.
        until: u64,
    },
    /// No longer valid: phones do not show it.
    Expired {
        /// When it stopped holding.
        since: u64,
    },
}

impl Freshness {
    /// Whether phones may still show the place.
    pub fn is_shown(&self) -> bool {
        !matches!(self, Freshness::Expired { .. })
    }
    /// `fresh`, `stale` or `expired`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Freshness::Fresh { .. } => "fresh",
            Freshness::Stale { .. } => "stale",
            Freshness::Expired { .. } => "expired",
        }
    }
}

/// The freshness of a place at `now`, given its latest *verified* heartbeat.
///
/// The listing holds until the later of `expires_at` (the city's own
/// confirmation) and `confirmed_at + heartbeat_ttl_secs` (the place's), but
/// never past `verified_at + MAX_LISTING_AGE_SECS`. It is going stale when
/// less than a quarter of the confirmation period that gives it that time
/// (at most [`STALE_WINDOW_SECS`]) is left.
pub fn freshness(place: &SafePlace, heartbeat: Option<&Heartbeat>, now: u64) -> Freshness {
    let cap = place.verified_at.saturating_add(MAX_LISTING_AGE_SECS);
    let mut until = place.expires_at;
    let mut since = place.verified_at;
    if let (Some(hb), Some(_)) = (heartbeat, place.heartbeat_key) {
        if hb.place == place.id {
            let hb_until = hb
                .confirmed_at
                .saturating_add(u64::from(place.heartbeat_ttl_secs));
            if hb_until > until {
                until = hb_until;
                since = hb.confirmed_at;
            }
        }
    }
    let until = until.min(cap);
    if now >= until {
        return Freshness::Expired { since: until };
    }
    let window = (until.saturating_sub(since) / 4).min(STALE_WINDOW_SECS);
    if now >= until - window {
        Freshness::Stale { until }
    } else {
        Freshness::Fresh { until }
    }
}

/// A place near a point, as [`VerifiedDirectory::places_near`] returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaceNear<'a> {
    /// The listing.
    pub place: &'a SafePlace,
    /// Fresh or going stale.
    pub freshness: Freshness,
    /// Great-circle distance from the point, metres.
    pub distance_m: f64,
}

impl VerifiedDirectory {
    /// The checked document.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }
    /// The freshness of a listed place at `now`.
    pub fn freshness(&self, id: &PlaceId, now: u64) -> Option<Freshness> {
        let place = self.directory.place(id)?;
        Some(freshness(place, self.directory.heartbeat(id), now))
    }
    /// The places a phone may show at `now` (fresh or going stale), with
    /// their freshness.
    pub fn places_at(&self, now: u64) -> Vec<(&SafePlace, Freshness)> {
        self.directory
            .places
            .iter()
            .map(|p| (p, freshness(p, self.directory.heartbeat(&p.id), now)))
            .filter(|(_, f)| f.is_shown())
            .collect()
    }
    /// The places a phone may show within `radius_m` metres of a point,
    /// nearest first (what `GET /v1/safe-places` answers).
    pub fn places_near(
        &self,
        lat: f64,
        lon: f64,
        radius_m: f64,
        now: u64,
    ) -> Result<Vec<PlaceNear<'_>>, DirectoryError> {
        Location::from_degrees(lat, lon)?;
        if !radius_m.is_finite() || radius_m < 0.0 {
            return Err(DirectoryError::BadLocation);
        }
        let mut out: Vec<PlaceNear<'_>> = self
            .places_at(now)
            .into_iter()
            .map(|(place, freshness)| PlaceNear {
                distance_m: crate::geo::haversine_m(
                    lat,
                    lon,
                    place.location.lat(),
                    place.location.lon(),
                ),
                place,
                freshness,
            })
            .filter(|p| p.distance_m <= radius_m)
            .collect();
        out.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
        Ok(out)
    }

    /// The mediators whose entry still holds at `now`.
    pub fn mediators_at(&self, now: u64) -> Vec<&Mediator> {
        self.directory
            .mediators
            .iter()
            .filter(|m| now < m.expires_at)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

/// Why someone flags a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagReason {
    /// It was closed during its listed opening hours.
    Closed,
    /// It refused to help.
    RefusedHelp,
    /// The listing is wrong (moved, wrong address, wrong phone).
    WrongInformation,
}

impl FlagReason {
    /// Every reason, in code order.
    pub const ALL: [FlagReason; 3] = [
        FlagReason::Closed,
        FlagReason::RefusedHelp,
        FlagReason::WrongInformation,
    ];
    /// Wire code, 1..=3.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }
    /// The reason of a wire code.
    pub fn from_code(code: u8) -> Option<FlagReason> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagReason::Closed => "closed",
            FlagReason::RefusedHelp => "refused_help",
            FlagReason::WrongInformation => "wrong_information",
        }
    }
}

/// An anonymous flag against a place: no identity, a one-time key, a proof
/// of work like a report's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// The place.
    pub place: PlaceId,
    /// Why.
    pub reason: FlagReason,
    /// When, minutes since the Unix epoch.
    pub observed_minute: u32,
    /// One-time public key.
    pub public_key: [u8; 32],
    /// Claimed leading zero bits of the proof of work.
    pub difficulty: u8,
    /// Proof-of-work nonce.
    pub nonce: u64,
    /// Signature by the one-time key.
    pub signature: [u8; SIG_LEN],
}

fn flag_pow_hash(prefix: &[u8], nonce: u64) -> [u8; 32] {
    Sha256::new_with_prefix(FLAG_POW_DOMAIN)
        .chain_update(prefix)
        .chain_update(nonce.to_be_bytes())
        .finalize()
        .into()
}

impl Flag {
    /// Make a flag: a fresh key from `rng` (dropped afterwards) and a proof
    /// of work of `difficulty` bits (about `2^difficulty` hashes: run it off
    /// any event loop). `now` is rounded down to the minute.
    pub fn seal(
        place: PlaceId,
        reason: FlagReason,
        now: u64,
        difficulty: u8,
        rng: &mut impl CryptoRngCore,
    ) -> Flag {
        let key = SigningKey::generate(rng);
        let mut flag = Flag {
            place,
            reason,
            observed_minute: u32::try_from(now / 60).unwrap_or(u32::MAX),
            public_key: key.verifying_key().to_bytes(),
            difficulty,
            nonce: rng.next_u64(),
            signature: [0; SIG_LEN],
        };
        let bytes = flag.to_bytes();
        let prefix = &bytes[..FLAG_LEN - SIG_LEN - 8];
        let mut nonce = flag.nonce;
        while leading_zero_bits(&flag_pow_hash(prefix, nonce)) < u32::from(difficulty) {
            nonce = nonce.wrapping_add(1);
        }
        flag.nonce = nonce;
        let bytes = flag.to_bytes();
        let mut input = FLAG_SIGN_DOMAIN.to_vec();
        input.extend_from_slice(&bytes[..FLAG_LEN - SIG_LEN]);
        flag.signature = key.sign(&input).to_bytes();
        flag
    }

    /// Canonical bytes ([`FLAG_LEN`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(FLAG_LEN));
        w.u8(DIRECTORY_VERSION);
        w.bytes(&self.place.0);
        w.u8(self.reason.code());
        w.u32(self.observed_minute);
        w.bytes(&self.public_key);
        w.u8(self.difficulty);
        w.u64(self.nonce);
        w.bytes(&self.signature);
        w.0
    }

    /// When it was observed, Unix seconds.
    pub fn observed_at(&self) -> u64 {
        u64::from(self.observed_minute) * 60
    }
}

/// A flag that passed [`verify_flag`], with its id
/// (`SHA-256("ronde/flag/v1/id" || bytes)`, for deduplication).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedFlag {
    /// The flag.
    pub flag: Flag,
    /// Its id.
    pub id: [u8; 32],
}

/// Verify untrusted flag bytes at `now`: structure, age (at most
/// [`MAX_FLAG_AGE_SECS`], not in the future), proof of work of at least
/// `min_difficulty` bits, then the signature.
pub fn verify_flag(
    bytes: &[u8],
    now: u64,
    min_difficulty: u8,
) -> Result<VerifiedFlag, DirectoryError> {
    if bytes.len() > FLAG_LEN {
        return Err(DirectoryError::TooLarge {
            what: "flag",
            len: bytes.len(),
            max: FLAG_LEN,
        });
    }
    let mut r = Reader::new(bytes);
    version(&mut r)?;
    let place = PlaceId(r.array()?);
    let code = r.u8()?;
    let reason = FlagReason::from_code(code).ok_or(DirectoryError::UnknownReason(code))?;
    let observed_minute = r.u32()?;
    let public_key = r.array()?;
    let difficulty = r.u8()?;
    let nonce = r.u64()?;
    let signature = r.array()?;
    r.finish()?;
    let flag = Flag {
        place,
        reason,
        observed_minute,
        public_key,
        difficulty,
        nonce,
        signature,
    };
    if flag.observed_at() > now.saturating_add(crate::MAX_CLOCK_SKEW_SECS) {
        return Err(DirectoryError::FromFuture);
    }
    if flag.observed_at().saturating_add(MAX_FLAG_AGE_SECS) < now {
        return Err(DirectoryError::FlagTooOld);
    }
    let prefix = &bytes[..FLAG_LEN - SIG_LEN - 8];
    if difficulty < min_difficulty
        || leading_zero_bits(&flag_pow_hash(prefix, nonce)) < u32::from(difficulty)
    {
        return Err(DirectoryError::NotEnoughWork);
    }
    let mut input = FLAG_SIGN_DOMAIN.to_vec();
    input.extend_from_slice(&bytes[..FLAG_LEN - SIG_LEN]);
    let ok = VerifyingKey::from_bytes(&public_key)
        .map(|k| {
            k.verify_strict(&input, &Signature::from_bytes(&signature))
                .is_ok()
        })
        .unwrap_or(false);
    if !ok {
        return Err(DirectoryError::BadSignature);
    }
    Ok(VerifiedFlag {
        flag,
        id: Sha256::new_with_prefix(FLAG_ID_DOMAIN)
            .chain_update(bytes)
            .finalize()
            .into(),
    })
}
