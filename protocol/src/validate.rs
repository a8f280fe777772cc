//! Validation: from untrusted bytes to a [`VerifiedReport`], or a precise
//! [`Rejection`].
//!
//! Checks run cheapest first, so that garbage costs a receiver as little as
//! possible: size, structure, cell, TTL, clock, then one hash for the proof of
//! work, and only then the signature.

use crate::pow;
use crate::report::{Report, ReportId, MAX_TTL_MINUTES};

/// How far in the future a report's observation time may be (clock skew).
pub const MAX_CLOCK_SKEW_SECS: u64 = 120;

/// What the validator demands. The default is the network's policy; tests
/// lower `min_difficulty` to stay fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Reports claiming fewer leading zero bits are rejected.
    pub min_difficulty: u8,
    /// Tolerated clock skew, seconds.
    pub max_clock_skew_secs: u64,
    /// Longest TTL accepted, minutes.
    pub max_ttl_minutes: u8,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_difficulty: pow::MIN_DIFFICULTY,
            max_clock_skew_secs: MAX_CLOCK_SKEW_SECS,
            max_ttl_minutes: MAX_TTL_MINUTES,
        }
    }
}

/// Why bytes are not a valid report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// More bytes than [`crate::MAX_REPORT_SIZE`].
    #[error("report of {0} bytes is over the {max}-byte limit", max = crate::MAX_REPORT_SIZE)]
    TooLarge(usize),
    /// Not a well-formed version-1 report.
    #[error("malformed report: {0}")]
    Malformed(Malformed),
    /// Cell precision other than 6 or 7, or not a geohash.
    #[error("the cell is not a geohash of precision 6 or 7")]
    BadCell,
    /// TTL over the maximum.
    #[error("ttl is over the maximum")]
    TtlTooLong,
    /// Observed more than the tolerated skew after `now`.
    #[error("observed in the future (beyond the tolerated clock skew)")]
    FromFuture,
    /// `expires_at <= now`.
    #[error("expired")]
    Expired,
    /// Difficulty under the network minimum, or a stamp that does not hold.
    #[error("not enough proof of work")]
    NotEnoughWork,
    /// The signature does not verify (strictly) under the report's key.
    #[error("bad signature")]
    BadSignature,
}

/// The structural faults behind [`Rejection::Malformed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Input ended before the report did.
    #[error("truncated")]
    Truncated,
    /// Bytes left after the signature.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A version this code does not speak.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// A category code this version does not know.
    #[error("unknown category code {0}")]
    UnknownCategory(u8),
    /// A proof kind this version does not know.
    #[error("unsupported proof kind {0}")]
    UnsupportedProof(u8),
    /// A TTL of zero minutes.
    #[error("zero ttl")]
    ZeroTtl,
}

impl Rejection {
    /// A stable snake_case name, for metrics, logs and test vectors.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::TooLarge(_) => "too_large",
            Rejection::Malformed(_) => "malformed",
            Rejection::BadCell => "bad_cell",
            Rejection::TtlTooLong => "ttl_too_long",
            Rejection::FromFuture => "from_future",
            Rejection::Expired => "expired",
            Rejection::NotEnoughWork => "not_enough_work",
            Rejection::BadSignature => "bad_signature",
        }
    }

    /// Whether the sender is at fault. `Expired` and `FromFuture` can happen
    /// to honest peers (slow links, skewed clocks) and should be ignored
    /// rather than punished; everything else is a protocol violation.
    pub fn is_misbehaviour(&self) -> bool {
        !matches!(self, Rejection::Expired | Rejection::FromFuture)
    }
}

/// A report that passed every check, with its canonical bytes and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReport {
    report: Report,
    id: ReportId,
    bytes: Vec<u8>,
}

impl VerifiedReport {
    /// The decoded report.
    pub fn report(&self) -> &Report {
        &self.report
    }
    /// Its id.
    pub fn id(&self) -> ReportId {
        self.id
    }
    /// Its canonical bytes, as received.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// When it stops being visible, Unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.report.expires_at()
    }
    /// Whether it is still visible at `now`.
    pub fn is_live(&self, now: u64) -> bool {
        now < self.expires_at()
    }

    /// Rebuild from bytes this node verified earlier and kept in its own
    /// storage: parses the structure again but skips the proof-of-work and
    /// signature checks. Never use this on bytes from the network.
    pub fn from_trusted_bytes(bytes: Vec<u8>) -> Result<VerifiedReport, Rejection> {
        let report = Report::from_bytes(&bytes)?;
        Ok(VerifiedReport {
            report,
            id: ReportId::of(&bytes),
            bytes,
        })
    }
}

/// Validate untrusted bytes at `now` (Unix seconds) under the network policy.
pub fn validate(bytes: &[u8], now: u64) -> Result<VerifiedReport, Rejection> {
    validate_with(bytes, now, &Policy::default())
}

/// Validate untrusted bytes at `now` under `policy`.
pub fn validate_with(bytes: &[u8], now: u64, policy: &Policy) -> Result<VerifiedReport, Rejection> {
    let report = Report::from_bytes(bytes)?;
    if report.ttl_minutes() > policy.max_ttl_minutes {
        return Err(Rejection::TtlTooLong);
    }
    if report.observed_at() > now.saturating_add(policy.max_clock_skew_secs) {
        return Err(Rejection::FromFuture);
    }
    if report.expires_at() <= now {
        return Err(Rejection::Expired);
    }
    let crate::Proof::Work { difficulty, .. } = report.proof();
    if difficulty < policy.min_difficulty || !report.work_holds(bytes) {
        return Err(Rejection::NotEnoughWork);
    }
    if !report.signature_holds(bytes) {
        return Err(Rejection::BadSignature);
    }
    Ok(VerifiedReport {
        report,
        id: ReportId::of(bytes),
        bytes: bytes.to_vec(),
    })
}
