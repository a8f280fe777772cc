//! Anonymous rate-limited tokens: Privacy Pass (RFC 9578) token type 2,
//! publicly verifiable, issued with blind RSA (RFC 9474,
//! RSABSSA-SHA384-PSS-Deterministic, RSA-2048) through the
//! `blind-rsa-signatures` crate. See `docs/protocol.md` §8.5.
//!
//! This module owns: the token's wire format ([`Token`], 354 bytes, exactly
//! RFC 9578 §5.3's `Token` structure), what a token is bound to (the
//! one-time key of the report that spends it, [`token_nonce`], and the
//! period of the key that signed it, [`challenge_digest`]), the city's
//! token keys ([`TokenKey`], [`TokenKeys`]) and the check a node makes
//! ([`TokenKeys::verify`]), the phone's side of issuance ([`blind`],
//! [`finalize`]), the issuer's ([`Issuer`]), the issuance request and
//! response ([`IssueRequest`], [`IssueResponse`]), and the bounded set of
//! token ids a node has seen ([`SeenTokens`]).
//!
//! Pure: randomness is passed in (a `rand_core` 0.6 generator, adapted to
//! the 0.10 traits the RSA crate takes), time is passed in.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;

use blind_rsa_signatures::reexports::rsa::rand_core as rc10;
use blind_rsa_signatures::{BlindSignature, BlindingResult, Deterministic, Secret, Sha384, PSS};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

use crate::cursor::{Cursor, CursorError, Put};

/// RFC 9578's token type of publicly verifiable tokens (blind RSA).
pub const TOKEN_TYPE: u16 = 0x0002;
/// Bytes of the authenticator: an RSA-2048 signature.
pub const NK: usize = 256;
/// Bytes of an encoded token: type, nonce, challenge digest, key id,
/// authenticator.
pub const TOKEN_LEN: usize = 2 + 32 + 32 + 32 + NK;
/// The issuer name of every Ronde token challenge (the city is named by the
/// key, which its signed directory lists).
pub const ISSUER_NAME: &[u8] = b"ronde";
/// A token key's period: one UTC day, starting at a multiple of it.
pub const PERIOD_SECS: u64 = 86_400;
/// N: the most tokens one issuance identity gets per period.
pub const TOKENS_PER_PERIOD: u8 = 24;
/// The RSA modulus size of token keys, bits.
pub const KEY_BITS: usize = 2048;
/// The longest SPKI a token key may have (the crate's own bound).
pub const MAX_SPKI_LEN: usize = 800;
/// Domain separator of a token's nonce.
pub const BIND_DOMAIN: &[u8] = b"ronde/token/v1/bind";
/// Domain separator of a period's redemption context.
pub const PERIOD_DOMAIN: &[u8] = b"ronde/token/v1/period";
/// Version byte of the issuance request and response.
pub const ISSUE_VERSION: u8 = 1;
/// Largest issuance request: version, key id, proof (1 + up to 64), count,
/// N blinded messages.
pub const MAX_ISSUE_REQUEST: usize =
    1 + 32 + 1 + MAX_ISSUE_PROOF + 1 + TOKENS_PER_PERIOD as usize * NK;
/// Largest issuance response.
pub const MAX_ISSUE_RESPONSE: usize = 1 + 1 + 1 + TOKENS_PER_PERIOD as usize * NK;
/// Largest issuance proof (the policy's bytes: a proof-of-work nonce, an
/// attestation handle…).
pub const MAX_ISSUE_PROOF: usize = 64;

type PublicKey = blind_rsa_signatures::PublicKey<Sha384, PSS, Deterministic>;
type SecretKey = blind_rsa_signatures::SecretKey<Sha384, PSS, Deterministic>;
type KeyPair = blind_rsa_signatures::KeyPair<Sha384, PSS, Deterministic>;

/// Why a token, a token key or an issuance message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The input ended inside a field.
    #[error("truncated")]
    Truncated,
    /// Bytes after the last field.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A token type other than 2, or an issuance version other than 1.
    #[error("unsupported token type or version {0}")]
    UnsupportedVersion(u16),
    /// Not an RSA-2048 RSASSA-PSS SHA-384 public key in SPKI form.
    #[error("not a token key")]
    BadKey,
    /// The key id is not one of the keys this node holds.
    #[error("unknown token key")]
    UnknownKey,
    /// The token is of another period than the report that carries it.
    #[error("token of another period")]
    WrongPeriod,
    /// Nonce, challenge or authenticator do not hold.
    #[error("bad token")]
    BadToken,
    /// More blinded messages than [`TOKENS_PER_PERIOD`], or none, or a
    /// proof over [`MAX_ISSUE_PROOF`].
    #[error("too many or too few items")]
    BadCount,
    /// Blinding, signing or unblinding failed.
    #[error("blind rsa failure")]
    Crypto,
}

impl From<CursorError> for TokenError {
    fn from(e: CursorError) -> Self {
        match e {
            CursorError::Truncated => TokenError::Truncated,
            CursorError::TrailingBytes(n) => TokenError::TrailingBytes(n),
        }
    }
}

/// A token's id: its nonce. Two reports spending tokens with the same id
/// spend the same token (§8.5).
pub type TokenId = [u8; 32];

/// A Privacy Pass token (RFC 9578 §5.3, type 2).
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Bound to the spending report's one-time key ([`token_nonce`]).
    pub nonce: [u8; 32],
    /// SHA-256 of the period's token challenge ([`challenge_digest`]).
    pub challenge_digest: [u8; 32],
    /// SHA-256 of the issuing key's SPKI.
    pub key_id: [u8; 32],
    /// The unblinded RSA signature over [`Token::input`].
    pub authenticator: [u8; NK],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("nonce", &hex::encode(self.nonce))
            .field("key_id", &hex::encode(self.key_id))
            .finish_non_exhaustive()
    }
}

impl Token {
    /// The canonical bytes (RFC 9578: `token_type || nonce ||
    /// challenge_digest || token_key_id || authenticator`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(TOKEN_LEN);
        self.put(&mut b);
        b
    }

    /// Append the canonical bytes to `b`.
    pub fn put(&self, b: &mut Vec<u8>) {
        b.put_u16(TOKEN_TYPE);
        b.put_slice(&self.nonce);
        b.put_slice(&self.challenge_digest);
        b.put_slice(&self.key_id);
        b.put_slice(&self.authenticator);
    }

    /// Parse exactly [`TOKEN_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Token, TokenError> {
        if bytes.len() > TOKEN_LEN {
            return Err(TokenError::TrailingBytes(bytes.len() - TOKEN_LEN));
        }
        let mut c = Cursor::<TokenError>::new(bytes);
        let t = Token::read(&mut c)?;
        c.finish()?;
        Ok(t)
    }

    /// Read a token from a cursor (inside a report).
    pub fn read<E: From<CursorError> + From<TokenError>>(
        c: &mut Cursor<'_, E>,
    ) -> Result<Token, E> {
        let ty = c.u16()?;
        if ty != TOKEN_TYPE {
            return Err(TokenError::UnsupportedVersion(ty).into());
        }
        Ok(Token {
            nonce: c.array()?,
            challenge_digest: c.array()?,
            key_id: c.array()?,
            authenticator: c.array()?,
        })
    }

    /// What the authenticator signs (RFC 9578 §5.3 `token_input`): every
    /// field but the authenticator.
    pub fn input(&self) -> Vec<u8> {
        token_input(&self.nonce, &self.challenge_digest, &self.key_id)
    }

    /// The token's id (§8.5): its nonce.
    pub fn id(&self) -> TokenId {
        self.nonce
    }
}

fn token_input(nonce: &[u8; 32], challenge: &[u8; 32], key_id: &[u8; 32]) -> Vec<u8> {
    let mut v = Vec::with_capacity(98);
    v.put_u16(TOKEN_TYPE);
    v.put_slice(nonce);
    v.put_slice(challenge);
    v.put_slice(key_id);
    v
}

/// The nonce of the token a report with one-time key `public_key` spends:
/// `SHA-256("ronde/token/v1/bind" || public_key)`. Only the holder of that
/// key can sign a report that carries the token.
pub fn token_nonce(public_key: &[u8; 32]) -> [u8; 32] {
    Sha256::new_with_prefix(BIND_DOMAIN)
        .chain_update(public_key)
        .finalize()
        .into()
}

/// The start of the period that holds `t` (Unix seconds).
pub fn period_of(t: u64) -> u64 {
    t - t % PERIOD_SECS
}

/// The RFC 9578 `TokenChallenge` of a period: `token_type (2) ||
/// issuer_name (2-byte length || "ronde") || redemption_context (1-byte
/// length || SHA-256("ronde/token/v1/period" || period_start (8))) ||
/// origin_info (2-byte length, empty)`.
pub fn token_challenge(period_start: u64) -> Vec<u8> {
    let context: [u8; 32] = Sha256::new_with_prefix(PERIOD_DOMAIN)
        .chain_update(period_start.to_be_bytes())
        .finalize()
        .into();
    let mut v = Vec::with_capacity(2 + 2 + ISSUER_NAME.len() + 1 + 32 + 2);
    v.put_u16(TOKEN_TYPE);
    v.put_u16(ISSUER_NAME.len() as u16);
    v.put_slice(ISSUER_NAME);
    v.put_u8(32);
    v.put_slice(&context);
    v.put_u16(0);
    v
}

/// SHA-256 of [`token_challenge`].
pub fn challenge_digest(period_start: u64) -> [u8; 32] {
    Sha256::digest(token_challenge(period_start)).into()
}

/// One token key of the city: the period it signs for and its public key.
#[derive(Clone)]
pub struct TokenKey {
    period_start: u64,
    spki: Vec<u8>,
    key_id: [u8; 32],
    key: PublicKey,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("period_start", &self.period_start)
            .field("key_id", &hex::encode(self.key_id))
            .finish_non_exhaustive()
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        self.period_start == other.period_start && self.spki == other.spki
    }
}
impl Eq for TokenKey {}

impl TokenKey {
    /// A key from its SPKI (RFC 9578 §6.5: RSASSA-PSS, SHA-384, MGF1
    /// SHA-384, salt 48) for the period starting at `period_start`, which
    /// must be a multiple of [`PERIOD_SECS`]. Refused (`BadKey`) unless it
    /// is exactly such a key of [`KEY_BITS`] bits, re-encoding to the same
    /// bytes.
    pub fn from_spki(period_start: u64, spki: &[u8]) -> Result<TokenKey, TokenError> {
        if spki.len() > MAX_SPKI_LEN || !period_start.is_multiple_of(PERIOD_SECS) {
            return Err(TokenError::BadKey);
        }
        let key = PublicKey::from_spki(spki).map_err(|_| TokenError::BadKey)?;
        let modulus = key.components().n();
        let first = modulus
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(modulus.len());
        let bits = (modulus.len() - first) * 8
            - modulus.get(first).map_or(0, |b| b.leading_zeros() as usize);
        if bits != KEY_BITS || key.to_spki().ok().as_deref() != Some(spki) {
            return Err(TokenError::BadKey);
        }
        Ok(TokenKey {
            period_start,
            key_id: Sha256::digest(spki).into(),
            spki: spki.to_vec(),
            key,
        })
    }

    /// The start of its period.
    pub fn period_start(&self) -> u64 {
        self.period_start
    }
    /// Its SPKI bytes.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }
    /// Its id: SHA-256 of the SPKI.
    pub fn key_id(&self) -> [u8; 32] {
        self.key_id
    }
}

/// The token keys a node verifies with (those of its verified city
/// directory). Empty: every token is of an unknown key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenKeys {
    keys: Vec<TokenKey>,
}

impl TokenKeys {
    /// No keys.
    pub fn none() -> TokenKeys {
        TokenKeys::default()
    }
    /// These keys.
    pub fn new(keys: Vec<TokenKey>) -> TokenKeys {
        TokenKeys { keys }
    }
    /// The keys held.
    pub fn keys(&self) -> &[TokenKey] {
        &self.keys
    }
    /// The key with this id.
    pub fn get(&self, key_id: &[u8; 32]) -> Option<&TokenKey> {
        self.keys.iter().find(|k| &k.key_id == key_id)
    }

    /// Check a token carried by a report with one-time key `public_key`
    /// observed at `observed_at` (Unix seconds), in this order: the key is
    /// held (`UnknownKey`); the report's observation lies in the key's
    /// period (`WrongPeriod`); the nonce is [`token_nonce`] of the key, the
    /// challenge digest is the period's, the authenticator is a valid
    /// RSA-PSS signature of [`Token::input`] under the key (`BadToken`).
    pub fn verify(
        &self,
        token: &Token,
        public_key: &[u8; 32],
        observed_at: u64,
    ) -> Result<TokenId, TokenError> {
        let key = self.get(&token.key_id).ok_or(TokenError::UnknownKey)?;
        if period_of(observed_at) != key.period_start {
            return Err(TokenError::WrongPeriod);
        }
        if token.nonce != token_nonce(public_key)
            || token.challenge_digest != challenge_digest(key.period_start)
        {
            return Err(TokenError::BadToken);
        }
        let sig = blind_rsa_signatures::Signature(token.authenticator.to_vec());
        key.key
            .verify(&sig, None, token.input())
            .map_err(|_| TokenError::BadToken)?;
        Ok(token.id())
    }
}

/// Adapts a `rand_core` 0.6 generator to the 0.10 traits the RSA crate
/// takes.
struct Rng10<'a, R>(&'a mut R);

impl<R: CryptoRngCore> rc10::TryRng for Rng10<'_, R> {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}
impl<R: CryptoRngCore> rc10::TryCryptoRng for Rng10<'_, R> {}

/// What the phone keeps between asking for a token and receiving it.
#[derive(Clone)]
pub struct PendingToken {
    nonce: [u8; 32],
    key_id: [u8; 32],
    challenge_digest: [u8; 32],
    secret: Vec<u8>,
    blind_message: Vec<u8>,
}

/// Blind a token for the report key `public_key` under `key`: returns what
/// to keep and the blinded message (`NK` bytes) to send to the issuer.
pub fn blind(
    key: &TokenKey,
    public_key: &[u8; 32],
    rng: &mut impl CryptoRngCore,
) -> Result<(PendingToken, [u8; NK]), TokenError> {
    let nonce = token_nonce(public_key);
    let challenge = challenge_digest(key.period_start);
    let input = token_input(&nonce, &challenge, &key.key_id);
    let r = key
        .key
        .blind(&mut Rng10(rng), input)
        .map_err(|_| TokenError::Crypto)?;
    let blinded: [u8; NK] = r
        .blind_message
        .0
        .as_slice()
        .try_into()
        .map_err(|_| TokenError::Crypto)?;
    Ok((
        PendingToken {
            nonce,
            key_id: key.key_id,
            challenge_digest: challenge,
            secret: r.secret.0,
            blind_message: r.blind_message.0,
        },
        blinded,
    ))
}

/// Unblind the issuer's answer into a token; checks that it verifies.
pub fn finalize(
    key: &TokenKey,
    pending: &PendingToken,
    blind_signature: &[u8; NK],
) -> Result<Token, TokenError> {
    if pending.key_id != key.key_id {
        return Err(TokenError::UnknownKey);
    }
    let result = BlindingResult {
        blind_message: blind_rsa_signatures::BlindMessage(pending.blind_message.clone()),
        secret: Secret(pending.secret.clone()),
        msg_randomizer: None,
    };
    let input = token_input(&pending.nonce, &pending.challenge_digest, &pending.key_id);
    let sig = key
        .key
        .finalize(&BlindSignature(blind_signature.to_vec()), &result, input)
        .map_err(|_| TokenError::BadToken)?;
    let authenticator: [u8; NK] = sig
        .0
        .as_slice()
        .try_into()
        .map_err(|_| TokenError::Crypto)?;
    Ok(Token {
        nonce: pending.nonce,
        challenge_digest: pending.challenge_digest,
        key_id: pending.key_id,
        authenticator,
    })
}

/// A city's issuer for one period: its secret key.
#[derive(Clone)]
pub struct Issuer {
    secret: SecretKey,
    key: TokenKey,
}

impl Issuer {
    /// A fresh RSA-2048 key for the period that starts at `period_start`
    /// (slow: a prime search).
    pub fn generate(period_start: u64, rng: &mut impl CryptoRngCore) -> Result<Issuer, TokenError> {
        let kp = KeyPair::generate(&mut Rng10(rng), KEY_BITS).map_err(|_| TokenError::Crypto)?;
        Issuer::from_parts(period_start, kp.sk)
    }

    /// An issuer from its secret key's PKCS#8 DER.
    pub fn from_der(period_start: u64, der: &[u8]) -> Result<Issuer, TokenError> {
        let sk = SecretKey::from_der(der).map_err(|_| TokenError::BadKey)?;
        Issuer::from_parts(period_start, sk)
    }

    fn from_parts(period_start: u64, sk: SecretKey) -> Result<Issuer, TokenError> {
        let spki = sk
            .public_key()
            .and_then(|pk| pk.to_spki())
            .map_err(|_| TokenError::BadKey)?;
        Ok(Issuer {
            key: TokenKey::from_spki(period_start, &spki)?,
            secret: sk,
        })
    }

    /// Its secret key as PKCS#8 DER (to store it).
    pub fn to_der(&self) -> Result<Vec<u8>, TokenError> {
        self.secret.to_der().map_err(|_| TokenError::Crypto)
    }

    /// Its public key.
    pub fn key(&self) -> &TokenKey {
        &self.key
    }

    /// Sign one blinded message. The issuer sees only the blinded bytes:
    /// nothing it keeps links the signature to the token it becomes.
    pub fn sign(&self, blinded: &[u8; NK]) -> Result<[u8; NK], TokenError> {
        let sig = self
            .secret
            .blind_sign(blinded)
            .map_err(|_| TokenError::Crypto)?;
        sig.0.as_slice().try_into().map_err(|_| TokenError::Crypto)
    }
}

/// A request for a batch of tokens (`/ronde/token/1`, §8.5):
/// `0x01 || key_id (32) || proof_len (1) || proof (0..=64) || count (1,
/// 1..=24) || count × blinded message (256)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    /// The key (so the period) the tokens are asked for.
    pub key_id: [u8; 32],
    /// What the issuance policy asks for (a proof-of-work nonce…).
    pub proof: Vec<u8>,
    /// The blinded messages.
    pub blinded: Vec<[u8; NK]>,
}

impl IssueRequest {
    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(1 + 32 + 1 + self.proof.len() + 1 + self.blinded.len() * NK);
        b.put_u8(ISSUE_VERSION);
        b.put_slice(&self.key_id);
        b.put_u8(self.proof.len() as u8);
        b.put_slice(&self.proof);
        b.put_u8(self.blinded.len() as u8);
        for m in &self.blinded {
            b.put_slice(m);
        }
        b
    }

    /// Parse, bounded: at most [`MAX_ISSUE_REQUEST`] bytes, 1..=24
    /// messages, a proof of at most 64 bytes, nothing after.
    pub fn from_bytes(bytes: &[u8]) -> Result<IssueRequest, TokenError> {
        if bytes.len() > MAX_ISSUE_REQUEST {
            return Err(TokenError::BadCount);
        }
        let mut c = Cursor::<TokenError>::new(bytes);
        let v = c.u8()?;
        if v != ISSUE_VERSION {
            return Err(TokenError::UnsupportedVersion(v.into()));
        }
        let key_id = c.array()?;
        let plen = usize::from(c.u8()?);
        if plen > MAX_ISSUE_PROOF {
            return Err(TokenError::BadCount);
        }
        let proof = c.take(plen)?.to_vec();
        let n = c.u8()?;
        if n == 0 || n > TOKENS_PER_PERIOD {
            return Err(TokenError::BadCount);
        }
        let mut blinded = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            blinded.push(c.array()?);
        }
        c.finish()?;
        Ok(IssueRequest {
            key_id,
            proof,
            blinded,
        })
    }
}

/// Domain separator of the issuance proof of work (the demo's policy).
pub const ISSUE_POW_DOMAIN: &[u8] = b"ronde/token/v1/issue-pow";

/// What the issuance proof of work covers: `key_id || blinded messages`.
/// The blinded messages are fresh random values, so a proof is good for
/// one request only.
pub fn issue_work_prefix(request: &IssueRequest) -> Vec<u8> {
    let mut v = Vec::with_capacity(32 + request.blinded.len() * NK);
    v.extend_from_slice(&request.key_id);
    for m in &request.blinded {
        v.extend_from_slice(m);
    }
    v
}

/// Solve the issuance proof of work of `difficulty` bits, searching from
/// `start`: the 8 proof bytes (a big-endian nonce such that
/// `SHA-256("ronde/token/v1/issue-pow" || key_id || blinded messages ||
/// nonce)` has `difficulty` leading zero bits).
pub fn solve_issue_work(request: &IssueRequest, difficulty: u8, start: u64) -> Vec<u8> {
    let (nonce, _) = crate::pow::solve_in(
        ISSUE_POW_DOMAIN,
        &issue_work_prefix(request),
        difficulty,
        start,
    );
    nonce.to_be_bytes().to_vec()
}

/// Whether the request's proof is an issuance proof of work of
/// `difficulty` bits.
pub fn issue_work_holds(request: &IssueRequest, difficulty: u8) -> bool {
    let Ok(nonce) = <[u8; 8]>::try_from(request.proof.as_slice()) else {
        return false;
    };
    crate::pow::check_in(
        ISSUE_POW_DOMAIN,
        &issue_work_prefix(request),
        u64::from_be_bytes(nonce),
        difficulty,
    )
}

/// The issuer's answer: `0x01 || status (1) || [count (1) || count × blind
/// signature (256)]` (the count and signatures only when `status` is 0,
/// issued; 1: refused by the policy; 2: quota used; 3: unknown key; 4:
/// unavailable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueResponse {
    /// The blind signatures, in the order of the request.
    Issued(Vec<[u8; NK]>),
    /// The policy's proof does not hold.
    Refused,
    /// This identity had its tokens for the period.
    QuotaUsed,
    /// Not a key this issuer holds.
    UnknownKey,
    /// The issuer cannot answer now.
    Unavailable,
}

impl IssueResponse {
    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![ISSUE_VERSION];
        match self {
            IssueResponse::Issued(sigs) => {
                b.put_u8(0);
                b.put_u8(sigs.len() as u8);
                for s in sigs {
                    b.put_slice(s);
                }
            }
            IssueResponse::Refused => b.put_u8(1),
            IssueResponse::QuotaUsed => b.put_u8(2),
            IssueResponse::UnknownKey => b.put_u8(3),
            IssueResponse::Unavailable => b.put_u8(4),
        }
        b
    }

    /// Parse, bounded like the request.
    pub fn from_bytes(bytes: &[u8]) -> Result<IssueResponse, TokenError> {
        if bytes.len() > MAX_ISSUE_RESPONSE {
            return Err(TokenError::BadCount);
        }
        let mut c = Cursor::<TokenError>::new(bytes);
        let v = c.u8()?;
        if v != ISSUE_VERSION {
            return Err(TokenError::UnsupportedVersion(v.into()));
        }
        let r = match c.u8()? {
            0 => {
                let n = c.u8()?;
                if n == 0 || n > TOKENS_PER_PERIOD {
                    return Err(TokenError::BadCount);
                }
                let mut sigs = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    sigs.push(c.array()?);
                }
                IssueResponse::Issued(sigs)
            }
            1 => IssueResponse::Refused,
            2 => IssueResponse::QuotaUsed,
            3 => IssueResponse::UnknownKey,
            4 => IssueResponse::Unavailable,
            other => return Err(TokenError::UnsupportedVersion(other.into())),
        };
        c.finish()?;
        Ok(r)
    }
}

/// The token ids a node has seen on reports it accepted, each kept until
/// the report that spent it expires, at most `capacity` of them. A token id
/// already held is a reuse; when the set is full of live ids, a new one is
/// refused (fail closed: forgetting one would let it be spent again).
#[derive(Debug, Clone)]
pub struct SeenTokens {
    capacity: usize,
    until: HashMap<TokenId, u64>,
    by_expiry: BTreeSet<(u64, TokenId)>,
}

/// What [`SeenTokens::insert`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// New: recorded.
    New,
    /// Already spent on a live report.
    Reused,
    /// Full of live ids: not recorded.
    Full,
}

impl SeenTokens {
    /// An empty set holding at most `capacity` ids.
    pub fn new(capacity: usize) -> SeenTokens {
        SeenTokens {
            capacity,
            until: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// Whether `id` is held (and not expired at `now`).
    pub fn contains(&self, id: &TokenId, now: u64) -> bool {
        self.until.get(id).is_some_and(|u| now < *u)
    }

    /// Record `id`, spent by a report that expires at `expires_at`.
    pub fn insert(&mut self, id: TokenId, expires_at: u64, now: u64) -> Seen {
        self.purge(now);
        if self.until.contains_key(&id) {
            return Seen::Reused;
        }
        if self.until.len() >= self.capacity {
            return Seen::Full;
        }
        self.until.insert(id, expires_at);
        self.by_expiry.insert((expires_at, id));
        Seen::New
    }

    /// Forget ids whose report expired at `now`.
    pub fn purge(&mut self, now: u64) {
        while let Some(&(u, id)) = self.by_expiry.first() {
            if u > now {
                break;
            }
            self.by_expiry.pop_first();
            self.until.remove(&id);
        }
    }

    /// How many ids are held.
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

/// Lower bound on the issuance identities behind `k` tokened reports of
/// one period: ⌈k / N⌉ (§8.4).
pub fn min_identities(k: u64) -> u64 {
    k.div_ceil(u64::from(TOKENS_PER_PERIOD))
}
