//! Flags (`docs/protocol.md` §7.5): an anonymous [`Flag`] against a place
//! (closed, refused to help, wrongly listed), with a one-time key, a proof
//! of work and a signature like a report's, and [`verify_flag`].

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::DirectoryError;
use super::keys::{PlaceId, SIG_LEN};
use super::limits::MAX_FLAG_AGE_SECS;
use super::wire::{version, Reader, DIRECTORY_VERSION};
use crate::cursor::Put;
use crate::pow::leading_zero_bits;
use crate::validate::MAX_CLOCK_SKEW_SECS;

/// Length of an encoded flag.
pub const FLAG_LEN: usize = 1 + 16 + 1 + 4 + 32 + 1 + 8 + 64;
/// Domain separator of a flag's signature.
pub const FLAG_SIGN_DOMAIN: &[u8] = b"ronde/flag/v1/sig";
/// Domain separator of a flag's proof of work.
pub const FLAG_POW_DOMAIN: &[u8] = b"ronde/flag/v1/pow";
/// Domain separator of a flag's id.
pub const FLAG_ID_DOMAIN: &[u8] = b"ronde/flag/v1/id";

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
        let mut w = Vec::with_capacity(FLAG_LEN);
        w.put_u8(DIRECTORY_VERSION);
        w.put_slice(&self.place.0);
        w.put_u8(self.reason.code());
        w.put_u32(self.observed_minute);
        w.put_slice(&self.public_key);
        w.put_u8(self.difficulty);
        w.put_u64(self.nonce);
        w.put_slice(&self.signature);
        w
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
    if flag.observed_at() > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
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
