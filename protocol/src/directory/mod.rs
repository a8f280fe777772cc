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
//!   [`Mediator`]s, the latest [`Heartbeat`] of each place that has a key,
//!   and the city's relays ([`RelayEntry`]: the only mailbox and switch
//!   hosts a phone uses besides those its person chose).
//!   The city signs its canonical bytes ([`Directory::sign`]); a phone checks
//!   them with [`verify_directory`] against the city's public key it was
//!   configured with, and gets a [`VerifiedDirectory`] or a typed
//!   [`DirectoryError`].
//! * A listing expires unless it is re-confirmed: by the city (a new
//!   `verified_at`/`expires_at`) or by the place itself, which signs a
//!   [`Heartbeat`] with the key the city registered for it. [`freshness()`]
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
//!     relays: vec![],
//!     token_keys: vec![],
//! };
//! let bytes = dir.sign(&city).unwrap();
//! let verified = verify_directory(&bytes, &city.public(), now, None).unwrap();
//! assert_eq!(verified.places_at(now).len(), 1);
//! ```
//!
//! The pieces, bottom up, as the specification's sections:
//!
//! * `limits`: every size, length and time limit of the format;
//! * `error`: [`DirectoryError`];
//! * `keys`: [`DirectoryKey`], [`DirectoryPublicKey`] and [`PlaceId`];
//! * `wire`: the version byte, the writer and the byte cursor;
//! * `entries` (§7.1): [`SafePlace`], [`Mediator`], [`Heartbeat`];
//! * `relays` (§7.1): [`RelayEntry`], [`RelayRoles`];
//! * token keys (§7.2, §8.5): [`crate::token::TokenKey`], in the document;
//! * `document` (§7.2): [`Directory`] and how the city signs it;
//! * `freshness` (§7.4): [`Freshness`], [`freshness()`], [`verify_heartbeat`];
//! * `verification` (§7.3): [`verify_directory`] and [`VerifiedDirectory`];
//! * `flags` (§7.5): [`Flag`] and [`verify_flag`].

mod document;
mod entries;
mod error;
mod flags;
mod freshness;
mod keys;
mod limits;
mod relays;
mod verification;
mod wire;

pub use document::{Directory, DIRECTORY_SIGN_DOMAIN};
pub use entries::{
    Heartbeat, Location, Mediator, PlaceKind, SafePlace, HEARTBEAT_LEN, HEARTBEAT_SIGN_DOMAIN,
};
pub use error::DirectoryError;
pub use flags::{
    verify_flag, Flag, FlagReason, VerifiedFlag, FLAG_ID_DOMAIN, FLAG_LEN, FLAG_POW_DOMAIN,
    FLAG_SIGN_DOMAIN,
};
pub use freshness::{freshness, verify_heartbeat, Freshness};
pub use keys::{BadPlaceId, DirectoryKey, DirectoryPublicKey, PlaceId};
pub use limits::{
    DIRECTORY_CLOCK_SKEW_SECS, MAX_AREA_LEN, MAX_CITY_LEN, MAX_CONTACT_LEN, MAX_DIRECTORY_SIZE,
    MAX_FLAG_AGE_SECS, MAX_HEARTBEAT_AGE_SECS, MAX_HEARTBEAT_TTL_SECS, MAX_HOURS_LEN,
    MAX_LISTING_AGE_SECS, MAX_MEDIATORS, MAX_NAME_LEN, MAX_OPERATOR_LEN, MAX_PHONE_LEN, MAX_PLACES,
    MAX_RELAYS, MAX_RELAY_ADDRS, MAX_RELAY_ADDR_LEN, MAX_RELAY_PEER_LEN, MAX_ROLE_LEN,
    MAX_TOKEN_KEYS, STALE_WINDOW_SECS,
};
pub use relays::{RelayEntry, RelayRoles};
pub use verification::{verify_directory, PlaceNear, VerifiedDirectory};
pub use wire::{DIRECTORY_DOCUMENT_VERSION, DIRECTORY_VERSION};
