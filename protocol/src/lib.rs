//! # ronde-protocol
//!
//! The pure core of Ronde: the wire format of anonymous reports, their
//! signing and proof of work, their validation, and the geohash cells and
//! gossip areas they are bucketed into.
//!
//! This crate does no I/O. It never reads the clock (every function that
//! needs the time takes `now`, in Unix seconds) and never touches the OS
//! random generator (every function that needs randomness takes a
//! `&mut impl CryptoRngCore`). That makes everything here deterministic
//! under test and usable from any runtime.
//!
//! The byte-exact specification lives in `docs/protocol.md`; test vectors in
//! `docs/test-vectors/` are checked against this code by `tests/vectors.rs`.
//!
//! ```
//! use rand::SeedableRng;
//! use ronde_protocol::{cell_for, validate_with, Category, Draft, Policy};
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
//! let now = 1_790_000_000;
//! let cell = cell_for(48.8156, 2.3844, 7).unwrap();
//! let draft = Draft::new(Category::PoorLighting, cell, now);
//! // Tests use a low difficulty; real nodes use `pow::DEFAULT_DIFFICULTY`.
//! let report = draft.seal(8, &mut rng).unwrap();
//! let policy = Policy { min_difficulty: 8, ..Policy::default() };
//! let verified = validate_with(&report.to_bytes(), now, &policy).unwrap();
//! assert_eq!(verified.report().category(), Category::PoorLighting);
//! ```

pub mod category;
pub mod circle;
pub mod cursor;
pub mod directory;
pub mod geo;
mod hex_id;
pub mod pow;
pub mod report;
mod signature;
pub mod stem;
pub mod token;
pub mod validate;

pub use category::{Category, UnknownCategory};
pub use geo::{
    area_of, cell_for, distance_to_cell_m, topic_for_area, topics_around, Area, Cell, GeoError,
    AREA_PRECISION, DEFAULT_CELL_PRECISION, TOPIC_PREFIX,
};
pub use report::{
    Draft, Proof, Report, ReportId, SealError, DEFAULT_TTL_MINUTES, MAX_REPORT_SIZE,
    MAX_TTL_MINUTES, VERSION,
};
pub use validate::{
    precheck, precheck_with_keys, validate, validate_batch, validate_batch_with_keys,
    validate_with, validate_with_keys, verify_signatures, Malformed, Policy, Prechecked, Rejection,
    VerifiedReport, MAX_CLOCK_SKEW_SECS,
};
