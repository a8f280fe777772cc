//! Every limit of the directory format in one place (`docs/protocol.md`
//! §7): sizes, counts and field lengths, and the time limits of listings,
//! heartbeats and flags.

/// Largest encoded directory a verifier reads.
pub const MAX_DIRECTORY_SIZE: usize = 1024 * 1024;
/// Most safe places in one directory.
pub const MAX_PLACES: usize = 1024;
/// Most mediators in one directory.
pub const MAX_MEDIATORS: usize = 256;
/// Most relays in one directory.
pub const MAX_RELAYS: usize = 64;
/// Most token keys in one directory (the current period's and the next,
/// with room for a rotation).
pub const MAX_TOKEN_KEYS: usize = 4;
/// Longest relay peer id, bytes (a libp2p multihash).
pub const MAX_RELAY_PEER_LEN: usize = 64;
/// Most addresses of one relay.
pub const MAX_RELAY_ADDRS: usize = 8;
/// Longest relay address (multiaddr text), bytes.
pub const MAX_RELAY_ADDR_LEN: usize = 128;
/// Longest operator name of a relay, bytes of UTF-8.
pub const MAX_OPERATOR_LEN: usize = 64;
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
