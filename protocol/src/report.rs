//! The report: what a person on the street sends, and its canonical bytes.
//!
//! Layout (version 1, all integers big-endian; see `docs/protocol.md`):
//!
//! | field          | size  | notes                                   |
//! |----------------|-------|-----------------------------------------|
//! | version        | 1     | `0x01`                                  |
//! | category       | 1     | 1..=9, see [`Category::code`]           |
//! | precision `p`  | 1     | 6 or 7                                  |
//! | cell           | `p`   | lowercase geohash characters            |
//! | observed       | 4     | minutes since the Unix epoch            |
//! | ttl            | 1     | minutes, 1..=60                         |
//! | public key     | 32    | fresh ed25519 key, used once            |
//! | proof kind     | 1     | `0x01` = proof of work, `0x02` = token  |
//! | difficulty     | 1     | kind 1: leading zero bits claimed       |
//! | nonce          | 8     | kind 1                                  |
//! | token          | 354   | kind 2 instead: RFC 9578 type-2 token   |
//! | signature      | 64    | ed25519 over everything before it       |
//!
//! A precision-7 report is 121 bytes with a proof of work, 466 with a token;
//! nothing over [`MAX_REPORT_SIZE`] is even parsed.
//!
//! Why bytes are not a valid report, [`Rejection`], lives here too: the
//! decoder gives its structural faults, [`mod@crate::validate`] the rest.

use ed25519_dalek::Signer;
/// The one-time key type reports are signed with (re-exported so that a
/// token wallet can sign with the key a token was blinded for).
pub use ed25519_dalek::SigningKey;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

use crate::category::Category;
use crate::cursor::Put;
use crate::cursor::{Cursor, CursorError};
use crate::geo::Cell;
use crate::pow;
use crate::token::{Token, TokenError, TOKEN_LEN};

/// The wire version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Hard limit on the size of an encoded report; larger input is rejected
/// before any parsing.
pub const MAX_REPORT_SIZE: usize = 512;
/// How long a report stays visible unless its author chooses otherwise.
pub const DEFAULT_TTL_MINUTES: u8 = 30;
/// The longest a report may stay visible.
pub const MAX_TTL_MINUTES: u8 = 60;
/// Domain separator of the signature input.
pub const SIGN_DOMAIN: &[u8] = b"ronde/report/v1/sig";
/// Domain separator of the report id.
pub const ID_DOMAIN: &[u8] = b"ronde/report/v1/id";
/// Proof kind: SHA-256 proof of work.
pub const PROOF_KIND_WORK: u8 = 1;
/// Proof kind: an anonymous rate-limited token (`docs/protocol.md` §8.5).
pub const PROOF_KIND_TOKEN: u8 = 2;

const SIG_LEN: usize = 64;
const NONCE_LEN: usize = 8;

/// Why bytes are not a valid report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// More bytes than [`MAX_REPORT_SIZE`].
    #[error("report of {0} bytes is over the {max}-byte limit", max = MAX_REPORT_SIZE)]
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
    /// A token of a key this node does not hold (its directory may be
    /// older or newer than the sender's): ignored, not punished.
    #[error("token of an unknown key")]
    UnknownTokenKey,
    /// A token that does not hold: wrong nonce, challenge, period or
    /// authenticator.
    #[error("bad token")]
    BadToken,
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
    /// A token whose type is not 2.
    #[error("unsupported token type {0}")]
    UnsupportedToken(u16),
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
            Rejection::UnknownTokenKey => "unknown_token_key",
            Rejection::BadToken => "bad_token",
        }
    }

    /// Whether the sender is at fault. `Expired` and `FromFuture` can happen
    /// to honest peers (slow links, skewed clocks) and should be ignored
    /// rather than punished; everything else is a protocol violation.
    pub fn is_misbehaviour(&self) -> bool {
        !matches!(
            self,
            Rejection::Expired | Rejection::FromFuture | Rejection::UnknownTokenKey
        )
    }
}

/// A report's identity: `SHA-256("ronde/report/v1/id" || canonical bytes)`.
/// Used to deduplicate and as the gossip message id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportId(pub [u8; 32]);

/// The spam-cost proof a report carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// SHA-256 proof of work (kind `0x01`).
    Work {
        /// Leading zero bits the stamp claims.
        difficulty: u8,
        /// The nonce that achieves them.
        nonce: u64,
    },
    /// An anonymous rate-limited token (kind `0x02`), bound to the report's
    /// one-time key.
    Token(Box<Token>),
}

/// A decoded report. Holding one says nothing about its validity: use
/// [`mod@crate::validate`] to get a [`crate::VerifiedReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    category: Category,
    cell: Cell,
    observed_minute: u32,
    ttl_minutes: u8,
    public_key: [u8; 32],
    proof: Proof,
    signature: [u8; SIG_LEN],
}

/// What a person reports, before it is stamped and signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draft {
    /// What happened.
    pub category: Category,
    /// Where.
    pub cell: Cell,
    /// When, in minutes since the Unix epoch (already rounded).
    pub observed_minute: u32,
    /// How long the report stays visible, in minutes (1..=60).
    pub ttl_minutes: u8,
}

/// Why a draft could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// TTL of 0 or over [`MAX_TTL_MINUTES`].
    #[error("ttl of {0} minutes is outside 1..={MAX_TTL_MINUTES}")]
    BadTtl(u8),
    /// Difficulty over [`pow::MAX_SEAL_DIFFICULTY`].
    #[error("difficulty {0} is over the maximum of {max}", max = pow::MAX_SEAL_DIFFICULTY)]
    DifficultyTooHigh(u8),
    /// The observation time does not fit the format (after year 10 000).
    #[error("observation time is out of range")]
    TimeOutOfRange,
    /// The token is not bound to the signing key.
    #[error("the token is not bound to this key")]
    TokenNotForKey,
}

impl Draft {
    /// A draft observed at `now` (Unix seconds, rounded down to the minute)
    /// with the default TTL of 30 minutes.
    pub fn new(category: Category, cell: Cell, now: u64) -> Draft {
        Draft {
            category,
            cell,
            observed_minute: u32::try_from(now / 60).unwrap_or(u32::MAX),
            ttl_minutes: DEFAULT_TTL_MINUTES,
        }
    }

    /// The same draft with another TTL.
    pub fn with_ttl(self, ttl_minutes: u8) -> Draft {
        Draft {
            ttl_minutes,
            ..self
        }
    }

    /// Stamp and sign the draft with a fresh key drawn from `rng`, which is
    /// dropped afterwards. The nonce search starts at a random point so that
    /// two reports share no nonce bytes. This costs `2^difficulty` hashes on
    /// average: run it off any event loop.
    pub fn seal(&self, difficulty: u8, rng: &mut impl CryptoRngCore) -> Result<Report, SealError> {
        let key = SigningKey::generate(rng);
        let start = rng.next_u64();
        self.seal_with(&key, difficulty, start)
    }

    /// Stamp and sign with a given key and nonce start. Real reports must use
    /// [`Draft::seal`]; this exists for test vectors and other
    /// implementations' interop tests.
    pub fn seal_with(
        &self,
        key: &SigningKey,
        difficulty: u8,
        nonce_start: u64,
    ) -> Result<Report, SealError> {
        if self.ttl_minutes == 0 || self.ttl_minutes > MAX_TTL_MINUTES {
            return Err(SealError::BadTtl(self.ttl_minutes));
        }
        if difficulty > pow::MAX_SEAL_DIFFICULTY {
            return Err(SealError::DifficultyTooHigh(difficulty));
        }
        if self.observed_minute == u32::MAX {
            return Err(SealError::TimeOutOfRange);
        }
        let mut report = Report {
            category: self.category,
            cell: self.cell,
            observed_minute: self.observed_minute,
            ttl_minutes: self.ttl_minutes,
            public_key: key.verifying_key().to_bytes(),
            proof: Proof::Work {
                difficulty,
                nonce: 0,
            },
            signature: [0; SIG_LEN],
        };
        let bytes = report.to_bytes();
        let (nonce, _) = pow::solve(report.work_prefix(&bytes), difficulty, nonce_start);
        report.proof = Proof::Work { difficulty, nonce };
        let bytes = report.to_bytes();
        report.signature = key
            .sign(&signing_input(report.signed_part(&bytes)))
            .to_bytes();
        Ok(report)
    }
}

impl Draft {
    /// Sign with `key` and spend `token` on the report instead of a proof
    /// of work. The token must have been blinded for this key
    /// ([`crate::token::blind`]); the key is the report's one-time key.
    pub fn seal_with_token(&self, key: &SigningKey, token: Token) -> Result<Report, SealError> {
        if self.ttl_minutes == 0 || self.ttl_minutes > MAX_TTL_MINUTES {
            return Err(SealError::BadTtl(self.ttl_minutes));
        }
        if self.observed_minute == u32::MAX {
            return Err(SealError::TimeOutOfRange);
        }
        let public_key = key.verifying_key().to_bytes();
        if token.nonce != crate::token::token_nonce(&public_key) {
            return Err(SealError::TokenNotForKey);
        }
        let mut report = Report {
            category: self.category,
            cell: self.cell,
            observed_minute: self.observed_minute,
            ttl_minutes: self.ttl_minutes,
            public_key,
            proof: Proof::Token(Box::new(token)),
            signature: [0; SIG_LEN],
        };
        let bytes = report.to_bytes();
        report.signature = key
            .sign(&signing_input(report.signed_part(&bytes)))
            .to_bytes();
        Ok(report)
    }
}

fn signing_input(signed: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(SIGN_DOMAIN.len() + signed.len());
    v.extend_from_slice(SIGN_DOMAIN);
    v.extend_from_slice(signed);
    v
}

impl Report {
    /// What happened.
    pub fn category(&self) -> Category {
        self.category
    }
    /// Where.
    pub fn cell(&self) -> Cell {
        self.cell
    }
    /// When it was observed, Unix seconds (a whole minute).
    pub fn observed_at(&self) -> u64 {
        u64::from(self.observed_minute) * 60
    }
    /// How long it stays visible, in minutes.
    pub fn ttl_minutes(&self) -> u8 {
        self.ttl_minutes
    }
    /// When it stops being visible, Unix seconds. A report is live while
    /// `now < expires_at()`.
    pub fn expires_at(&self) -> u64 {
        self.observed_at() + u64::from(self.ttl_minutes) * 60
    }
    /// The single-use public key that signed it.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }
    /// Its spam-cost proof.
    pub fn proof(&self) -> &Proof {
        &self.proof
    }
    /// The token it spends, if it carries one.
    pub fn token(&self) -> Option<&Token> {
        match &self.proof {
            Proof::Token(t) => Some(t),
            Proof::Work { .. } => None,
        }
    }
    /// Its signature.
    pub fn signature(&self) -> &[u8; SIG_LEN] {
        &self.signature
    }

    /// Length of the canonical encoding.
    pub fn encoded_len(&self) -> usize {
        let proof = match self.proof {
            Proof::Work { .. } => 1 + NONCE_LEN,
            Proof::Token(_) => TOKEN_LEN,
        };
        3 + usize::from(self.cell.precision()) + 4 + 1 + 32 + 1 + proof + SIG_LEN
    }

    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.encoded_len());
        b.put_u8(VERSION);
        b.put_u8(self.category.code());
        b.put_u8(self.cell.precision());
        b.put_slice(self.cell.as_str().as_bytes());
        b.put_u32(self.observed_minute);
        b.put_u8(self.ttl_minutes);
        b.put_slice(&self.public_key);
        match &self.proof {
            Proof::Work { difficulty, nonce } => {
                b.put_u8(PROOF_KIND_WORK);
                b.put_u8(*difficulty);
                b.put_u64(*nonce);
            }
            Proof::Token(token) => {
                b.put_u8(PROOF_KIND_TOKEN);
                token.put(&mut b);
            }
        }
        b.put_slice(&self.signature);
        b
    }

    /// The id of the report (hash of its canonical bytes).
    pub fn id(&self) -> ReportId {
        ReportId::of(&self.to_bytes())
    }

    /// Bytes covered by the signature: everything but the signature.
    pub(crate) fn signed_part<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[..bytes.len() - SIG_LEN]
    }

    /// Bytes covered by the proof of work, before the nonce.
    pub(crate) fn work_prefix<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[..bytes.len() - SIG_LEN - NONCE_LEN]
    }

    /// Whether the proof of work holds for this report's bytes (one hash).
    pub(crate) fn work_holds(&self, bytes: &[u8]) -> bool {
        match self.proof {
            Proof::Work { difficulty, nonce } => {
                pow::check(self.work_prefix(bytes), nonce, difficulty)
            }
            Proof::Token(_) => false,
        }
    }

    /// Check the encodings of the signature and key and compute the
    /// challenge (§1.6); `None` means the signature cannot hold.
    pub(crate) fn parse_signature(&self, bytes: &[u8]) -> Option<crate::signature::Parsed> {
        crate::signature::parse(
            &self.public_key,
            &self.signature,
            &[SIGN_DOMAIN, self.signed_part(bytes)],
        )
    }

    /// Parse canonical bytes. Checks structure only (size, version, category,
    /// cell, proof kind, no trailing bytes); [`mod@crate::validate`] checks the
    /// rest.
    pub fn from_bytes(bytes: &[u8]) -> Result<Report, Rejection> {
        if bytes.len() > MAX_REPORT_SIZE {
            return Err(Rejection::TooLarge(bytes.len()));
        }
        let mut r = Cursor::<Rejection>::new(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(Rejection::Malformed(Malformed::UnsupportedVersion(version)));
        }
        let code = r.u8()?;
        let category = Category::from_code(code)
            .ok_or(Rejection::Malformed(Malformed::UnknownCategory(code)))?;
        let precision = r.u8()?;
        if !(crate::geo::MIN_CELL_PRECISION..=crate::geo::MAX_CELL_PRECISION).contains(&precision) {
            return Err(Rejection::BadCell);
        }
        let cell_bytes = r.take(usize::from(precision))?;
        let cell = std::str::from_utf8(cell_bytes)
            .ok()
            .and_then(|s| s.parse::<Cell>().ok())
            .ok_or(Rejection::BadCell)?;
        let observed_minute = u32::from_be_bytes(r.array()?);
        let ttl_minutes = r.u8()?;
        if ttl_minutes == 0 {
            return Err(Rejection::Malformed(Malformed::ZeroTtl));
        }
        let public_key = r.array()?;
        let proof = match r.u8()? {
            PROOF_KIND_WORK => {
                let difficulty = r.u8()?;
                let nonce = u64::from_be_bytes(r.array()?);
                Proof::Work { difficulty, nonce }
            }
            PROOF_KIND_TOKEN => Proof::Token(Box::new(Token::read(&mut r)?)),
            other => return Err(Rejection::Malformed(Malformed::UnsupportedProof(other))),
        };
        let signature = r.array()?;
        r.finish()?;
        Ok(Report {
            category,
            cell,
            observed_minute,
            ttl_minutes,
            public_key,
            proof,
            signature,
        })
    }
}

/// How a token's structural fault reads inside a report: only its type can
/// be wrong, the cursor reports the rest.
impl From<TokenError> for Rejection {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::UnsupportedVersion(t) => {
                Rejection::Malformed(Malformed::UnsupportedToken(t))
            }
            TokenError::Truncated => Rejection::Malformed(Malformed::Truncated),
            TokenError::TrailingBytes(n) => Rejection::Malformed(Malformed::TrailingBytes(n)),
            TokenError::UnknownKey => Rejection::UnknownTokenKey,
            _ => Rejection::BadToken,
        }
    }
}

/// How the cursor's two faults read as a report rejection.
impl From<CursorError> for Rejection {
    fn from(e: CursorError) -> Self {
        Rejection::Malformed(match e {
            CursorError::Truncated => Malformed::Truncated,
            CursorError::TrailingBytes(n) => Malformed::TrailingBytes(n),
        })
    }
}

impl ReportId {
    /// The id of canonical report bytes.
    pub fn of(bytes: &[u8]) -> ReportId {
        ReportId(
            Sha256::new_with_prefix(ID_DOMAIN)
                .chain_update(bytes)
                .finalize()
                .into(),
        )
    }
}

crate::hex_id::hex_id!(ReportId, BadReportId, "report id");
