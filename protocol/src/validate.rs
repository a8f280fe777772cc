//! Validation: from untrusted bytes to a [`VerifiedReport`], or a precise
//! [`Rejection`].
//!
//! Checks run cheapest first, so that garbage costs a receiver as little as
//! possible: size, structure, cell, TTL, clock, then one hash for the proof of
//! work, and only then the signature.
//!
//! One report: [`validate`] / [`validate_with`]. Many at once (a burst of
//! gossip, a sync response): [`validate_batch`], which runs the same checks
//! in the same order on each report and verifies the signatures of those
//! that pass the others in one batch, with the same verdicts as one by one;
//! or, to do something between the cheap checks and the signatures (a node
//! skips the reports it already holds), [`precheck`] then
//! [`verify_signatures`].

use rand_core::CryptoRngCore;

use crate::pow;
use crate::report::{Report, ReportId, MAX_TTL_MINUTES};
use crate::signature;

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
    /// The signature does not hold under the report's key (the cofactored
    /// rule of `docs/protocol.md` §1.6), or an encoding in it is not
    /// acceptable.
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
    let checked = precheck(bytes, now, policy)?;
    match checked.report.parse_signature(&checked.bytes) {
        Some(sig) if signature::verify_one(&sig) => Ok(checked.into_verified()),
        _ => Err(Rejection::BadSignature),
    }
}

/// A report that passed every check but the signature (checks 1 to 12 of
/// `docs/protocol.md` §2). Only [`verify_signatures`] turns it into a
/// [`VerifiedReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prechecked {
    report: Report,
    id: ReportId,
    bytes: Vec<u8>,
}

impl Prechecked {
    /// The decoded report (its signature not yet checked).
    pub fn report(&self) -> &Report {
        &self.report
    }
    /// Its id.
    pub fn id(&self) -> ReportId {
        self.id
    }
    /// Its bytes, as received.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn into_verified(self) -> VerifiedReport {
        VerifiedReport {
            report: self.report,
            id: self.id,
            bytes: self.bytes,
        }
    }
}

/// Every check but the signature, in the order of `docs/protocol.md` §2:
/// size, structure, cell, TTL, clock, proof of work.
pub fn precheck(bytes: &[u8], now: u64, policy: &Policy) -> Result<Prechecked, Rejection> {
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
    Ok(Prechecked {
        id: ReportId::of(bytes),
        report,
        bytes: bytes.to_vec(),
    })
}

/// The last check, on many reports at once: their signatures are verified
/// in one batch (§1.6), and one by one only if the batch fails, to find
/// which do not hold. One result per report, in order; the verdicts are
/// those [`validate_with`] gives (but for a probability of about 2^-128
/// per batch, whatever the signers did). `rng` draws the batch's random
/// coefficients: it must be a cryptographic generator the senders cannot
/// predict.
pub fn verify_signatures(
    items: Vec<Prechecked>,
    rng: &mut impl CryptoRngCore,
) -> Vec<Result<VerifiedReport, Rejection>> {
    let parsed: Vec<Option<signature::Parsed>> = items
        .iter()
        .map(|c| c.report.parse_signature(&c.bytes))
        .collect();
    let holds = signature::verify_all(&parsed, rng);
    items
        .into_iter()
        .zip(holds)
        .map(|(c, ok)| {
            if ok {
                Ok(c.into_verified())
            } else {
                Err(Rejection::BadSignature)
            }
        })
        .collect()
}

/// Validate many untrusted reports at `now` under `policy`: the checks of
/// [`precheck`] on each, then the signatures of those that passed, in one
/// batch ([`verify_signatures`]). One result per input, in order, with the
/// same [`Rejection`] values as [`validate_with`].
pub fn validate_batch<B: AsRef<[u8]>>(
    items: &[B],
    now: u64,
    policy: &Policy,
    rng: &mut impl CryptoRngCore,
) -> Vec<Result<VerifiedReport, Rejection>> {
    let mut out: Vec<Result<VerifiedReport, Rejection>> = Vec::with_capacity(items.len());
    let mut survivors = Vec::with_capacity(items.len());
    let mut slots = Vec::with_capacity(items.len());
    for (i, bytes) in items.iter().enumerate() {
        match precheck(bytes.as_ref(), now, policy) {
            Ok(c) => {
                survivors.push(c);
                slots.push(i);
                // Filled in below.
                out.push(Err(Rejection::BadSignature));
            }
            Err(rej) => out.push(Err(rej)),
        }
    }
    for (i, res) in slots.into_iter().zip(verify_signatures(survivors, rng)) {
        out[i] = res;
    }
    out
}
