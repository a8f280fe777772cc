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
use crate::report::{Proof, Report, ReportId, MAX_TTL_MINUTES};
use crate::signature;
use crate::token::TokenKeys;

pub use crate::report::{Malformed, Rejection};

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

/// Validate untrusted bytes at `now` under `policy`, knowing no token key
/// (a tokened report is `UnknownTokenKey`).
pub fn validate_with(bytes: &[u8], now: u64, policy: &Policy) -> Result<VerifiedReport, Rejection> {
    validate_with_keys(bytes, now, policy, &TokenKeys::none())
}

/// Validate untrusted bytes at `now` under `policy`, checking tokens with
/// the city's token `keys`.
pub fn validate_with_keys(
    bytes: &[u8],
    now: u64,
    policy: &Policy,
    keys: &TokenKeys,
) -> Result<VerifiedReport, Rejection> {
    let checked = precheck_with_keys(bytes, now, policy, keys)?;
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
/// size, structure, cell, TTL, clock, proof of work; knowing no token key.
pub fn precheck(bytes: &[u8], now: u64, policy: &Policy) -> Result<Prechecked, Rejection> {
    precheck_with_keys(bytes, now, policy, &TokenKeys::none())
}

/// [`precheck`], with the token `keys` a tokened report (proof kind 2) is
/// checked against instead of a proof of work (check 12 of §2).
pub fn precheck_with_keys(
    bytes: &[u8],
    now: u64,
    policy: &Policy,
    keys: &TokenKeys,
) -> Result<Prechecked, Rejection> {
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
    match report.proof() {
        Proof::Work { difficulty, .. } => {
            if *difficulty < policy.min_difficulty || !report.work_holds(bytes) {
                return Err(Rejection::NotEnoughWork);
            }
        }
        Proof::Token(token) => {
            keys.verify(token, report.public_key(), report.observed_at())?;
        }
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
    validate_batch_with_keys(items, now, policy, &TokenKeys::none(), rng)
}

/// [`validate_batch`] with the token `keys` of [`precheck_with_keys`].
pub fn validate_batch_with_keys<B: AsRef<[u8]>>(
    items: &[B],
    now: u64,
    policy: &Policy,
    keys: &TokenKeys,
    rng: &mut impl CryptoRngCore,
) -> Vec<Result<VerifiedReport, Rejection>> {
    let mut out: Vec<Result<VerifiedReport, Rejection>> = Vec::with_capacity(items.len());
    let mut survivors = Vec::with_capacity(items.len());
    let mut slots = Vec::with_capacity(items.len());
    for (i, bytes) in items.iter().enumerate() {
        match precheck_with_keys(bytes.as_ref(), now, policy, keys) {
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
