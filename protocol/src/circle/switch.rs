//! The dead-man's switch: alerts a phone leaves with a relay when a journey
//! starts, which the relay releases to the person's contacts unless the phone
//! keeps it from doing so.
//!
//! When a journey starts, the phone seals an [`crate::circle::Message::Overdue`]
//! to each contact, draws a fresh Ed25519 key for this journey only
//! ([`SwitchOwner`]), and sends the relay a signed [`Deposit`]: the key, a
//! release time, and the sealed alerts with their mailbox addresses. Later
//! the phone may push the release time back ([`Heartbeat`]) or cancel it
//! ([`Withdraw`]); both are signed by the journey key with an increasing
//! counter. The relay ([`DeadManSwitch`]) checks every signature and counter,
//! and at the release time hands the alerts to its mailbox service
//! ([`DeadManSwitch::poll`]).
//!
//! What the relay learns: a random key, a release time, how many alerts (in
//! multiples of four: [`SwitchOwner::deposit`] pads with dummies) and to which
//! mailboxes of the current day. It cannot read the alerts (HPKE), cannot
//! forge a heartbeat or withdrawal (it lacks the key), cannot link the key to
//! an identity (fresh per journey) and cannot replay the deposit to another
//! relay (the deposit names its relay) or to itself after a withdrawal
//! (it keeps a tombstone until the deposit's own release time). A relay that
//! misbehaves can still drop the alerts or release them at the wrong time:
//! receivers ignore an overdue for a journey that already ended.
//!
//! Layouts (version 1, big-endian; `docs/circle.md` §7), each followed by a
//! 64-byte Ed25519 signature by `key` over `"ronde/switch/v1/sig" ||` the
//! bytes before it:
//!
//! ```text
//! deposit   = 0x01 || 0x01 || relay (32) || key (32) || release_at (8)
//!             || n (1) || n × (mailbox (32) || envelope (561))
//! heartbeat = 0x01 || 0x02 || key (32) || counter (8) || release_at (8)
//! withdraw  = 0x01 || 0x03 || key (32) || counter (8)
//! ```

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::circle::envelope::{ENVELOPE_VERSION, SMALL_ENVELOPE_LEN};
use crate::circle::limits::MAX_JOURNEY_SECS;
use crate::circle::wire::{DecodeError, Reader};
use crate::cursor::Put;

/// Version byte of every switch request.
pub const SWITCH_VERSION: u8 = 1;
/// Kind byte of a [`Deposit`].
pub const KIND_DEPOSIT: u8 = 1;
/// Kind byte of a [`Heartbeat`].
pub const KIND_HEARTBEAT: u8 = 2;
/// Kind byte of a [`Withdraw`].
pub const KIND_WITHDRAW: u8 = 3;
/// Domain separator of the signatures.
pub const SWITCH_SIG_DOMAIN: &[u8] = b"ronde/switch/v1/sig";
/// Domain separator of a deposit's proof of work ([`deposit_work`]).
pub const DEPOSIT_WORK_DOMAIN: &[u8] = b"ronde/switch/v1/work";
/// The proof of work a deposit carries by default: like a report's, about
/// 100 ms on one phone-class core (2¹⁸ SHA-256 on average; the deposit is
/// absorbed once, each try hashes only the nonce). Hosts require it.
pub const DEPOSIT_WORK_BITS: u8 = 18;
/// Version byte of a stored switch record ([`DeadManSwitch::record`]).
const RECORD_VERSION: u8 = 1;
/// Most alerts in a deposit.
pub const MAX_ALERTS: usize = 32;
/// Deposits are padded with dummy alerts to a multiple of this.
pub const ALERT_PAD_MULTIPLE: usize = 4;
pub use crate::circle::limits::SWITCH_SLACK_SECS;
/// A release time is at most this far after the deposit.
pub const MAX_SWITCH_HORIZON_SECS: u64 = MAX_JOURNEY_SECS + SWITCH_SLACK_SECS;
/// Length of a deposit holding `n` alerts.
pub const fn deposit_len(n: usize) -> usize {
    1 + 1 + 32 + 32 + 8 + 1 + n * (32 + SMALL_ENVELOPE_LEN) + SIG_LEN
}
/// Longest request.
pub const MAX_SWITCH_REQUEST_LEN: usize = deposit_len(MAX_ALERTS);
/// Length of a heartbeat.
pub const HEARTBEAT_LEN: usize = 1 + 1 + 32 + 8 + 8 + SIG_LEN;
/// Length of a withdrawal.
pub const WITHDRAW_LEN: usize = 1 + 1 + 32 + 8 + SIG_LEN;
const SIG_LEN: usize = 64;
const OWNER_VERSION: u8 = 1;
const OWNER_LEN: usize = 1 + 32 + 8;

/// Why a switch request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwitchError {
    /// Malformed bytes.
    #[error("malformed request: {0}")]
    Malformed(#[from] DecodeError),
    /// The signature does not verify under the key the request names.
    #[error("bad signature")]
    BadSignature,
    /// The key is not a valid Ed25519 key.
    #[error("bad switch key")]
    BadKey,
    /// An alert's envelope is not a small envelope.
    #[error("an alert must be a {SMALL_ENVELOPE_LEN}-byte envelope")]
    BadAlert,
    /// No alert, or over [`MAX_ALERTS`].
    #[error("a deposit holds 1 to {MAX_ALERTS} alerts")]
    AlertCount,
    /// The deposit is addressed to another relay.
    #[error("this deposit is for another relay")]
    WrongRelay,
    /// The release time is not in the future.
    #[error("the release time has passed")]
    ReleaseInPast,
    /// The release time is beyond [`MAX_SWITCH_HORIZON_SECS`] after the
    /// deposit.
    #[error("the release time is later than {max}")]
    ReleaseTooLate {
        /// The latest allowed.
        max: u64,
    },
    /// A deposit with this key exists, or existed (withdrawn or released).
    #[error("this switch was already deposited")]
    AlreadyDeposited,
    /// No deposit with this key.
    #[error("no such switch")]
    UnknownSwitch,
    /// A counter not above the last one accepted (a replay).
    #[error("counter {counter} is not above {last}")]
    StaleCounter {
        /// The counter refused.
        counter: u64,
        /// The last accepted.
        last: u64,
    },
    /// The release time is reached: the alerts go out.
    #[error("too late: the switch is due")]
    AlreadyDue,
    /// The relay holds as many switches as it accepts.
    #[error("the relay is full")]
    Full,
    /// The counter reached 2⁶⁴ − 1.
    #[error("the switch counter is exhausted")]
    CounterExhausted,
}

/// One sealed alert and the mailbox it goes to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// The mailbox address (see [`crate::circle::mailbox`]).
    pub mailbox: [u8; 32],
    /// A small envelope ([`SMALL_ENVELOPE_LEN`] bytes).
    pub envelope: Vec<u8>,
}

/// A deposit whose signature was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposit {
    relay: [u8; 32],
    key: [u8; 32],
    release_at: u64,
    alerts: Vec<Alert>,
    signature: [u8; SIG_LEN],
}

/// A heartbeat whose signature was checked: "release at `release_at`
/// instead".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    key: [u8; 32],
    counter: u64,
    release_at: u64,
    signature: [u8; SIG_LEN],
}

/// A withdrawal whose signature was checked: "never release".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdraw {
    key: [u8; 32],
    counter: u64,
    signature: [u8; SIG_LEN],
}

/// Any switch request, as the relay receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchRequest {
    /// A deposit.
    Deposit(Deposit),
    /// A heartbeat.
    Heartbeat(Heartbeat),
    /// A withdrawal.
    Withdraw(Withdraw),
}

fn signing_input(unsigned: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(SWITCH_SIG_DOMAIN.len() + unsigned.len());
    v.extend_from_slice(SWITCH_SIG_DOMAIN);
    v.extend_from_slice(unsigned);
    v
}

fn verify(key: &[u8; 32], unsigned: &[u8], sig: &[u8; SIG_LEN]) -> Result<(), SwitchError> {
    let vk = VerifyingKey::from_bytes(key).map_err(|_| SwitchError::BadKey)?;
    vk.verify_strict(&signing_input(unsigned), &Signature::from_bytes(sig))
        .map_err(|_| SwitchError::BadSignature)
}

fn header(r: &mut Reader<'_>, kind: u8) -> Result<(), DecodeError> {
    let v = r.u8()?;
    if v != SWITCH_VERSION {
        return Err(DecodeError::UnsupportedVersion(v));
    }
    let k = r.u8()?;
    if k != kind {
        return Err(DecodeError::UnknownKind(k));
    }
    Ok(())
}

/// Split off and check the trailing signature.
fn signed(bytes: &[u8]) -> Result<(&[u8], [u8; SIG_LEN]), DecodeError> {
    if bytes.len() < SIG_LEN {
        return Err(DecodeError::Truncated);
    }
    let (unsigned, sig) = bytes.split_at(bytes.len() - SIG_LEN);
    let mut s = [0u8; SIG_LEN];
    s.copy_from_slice(sig);
    Ok((unsigned, s))
}

impl Deposit {
    /// The relay it is addressed to.
    pub fn relay(&self) -> &[u8; 32] {
        &self.relay
    }
    /// The journey's switch key (also the deposit's name).
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }
    /// When to release.
    pub fn release_at(&self) -> u64 {
        self.release_at
    }
    /// The sealed alerts (real and dummy, indistinguishable).
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(deposit_len(self.alerts.len()));
        b.put_u8(SWITCH_VERSION);
        b.put_u8(KIND_DEPOSIT);
        b.put_slice(&self.relay);
        b.put_slice(&self.key);
        b.put_u64(self.release_at);
        // At most MAX_ALERTS, checked when built or parsed.
        b.put_u8(u8::try_from(self.alerts.len()).unwrap_or(u8::MAX));
        for a in &self.alerts {
            b.put_slice(&a.mailbox);
            b.put_slice(&a.envelope);
        }
        b
    }

    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.unsigned_bytes();
        b.put_slice(&self.signature);
        b
    }

    /// Parse and verify.
    pub fn from_bytes(bytes: &[u8]) -> Result<Deposit, SwitchError> {
        if bytes.len() > MAX_SWITCH_REQUEST_LEN {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_SWITCH_REQUEST_LEN,
            }
            .into());
        }
        let (unsigned, signature) = signed(bytes)?;
        let mut r = Reader::new(unsigned);
        header(&mut r, KIND_DEPOSIT)?;
        let relay = r.array()?;
        let key = r.array()?;
        let release_at = r.u64()?;
        let n = usize::from(r.u8()?);
        if n == 0 || n > MAX_ALERTS {
            return Err(SwitchError::AlertCount);
        }
        let mut alerts = Vec::with_capacity(n);
        for _ in 0..n {
            let mailbox = r.array()?;
            let envelope = r.take(SMALL_ENVELOPE_LEN)?.to_vec();
            if envelope[0] != ENVELOPE_VERSION {
                return Err(SwitchError::BadAlert);
            }
            alerts.push(Alert { mailbox, envelope });
        }
        r.finish()?;
        verify(&key, unsigned, &signature)?;
        Ok(Deposit {
            relay,
            key,
            release_at,
            alerts,
            signature,
        })
    }
}

impl Heartbeat {
    /// The switch it moves.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }
    /// Its counter.
    pub fn counter(&self) -> u64 {
        self.counter
    }
    /// The new release time.
    pub fn release_at(&self) -> u64 {
        self.release_at
    }
    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEARTBEAT_LEN);
        b.put_u8(SWITCH_VERSION);
        b.put_u8(KIND_HEARTBEAT);
        b.put_slice(&self.key);
        b.put_u64(self.counter);
        b.put_u64(self.release_at);
        b
    }
    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.unsigned_bytes();
        b.put_slice(&self.signature);
        b
    }
    /// Parse and verify.
    pub fn from_bytes(bytes: &[u8]) -> Result<Heartbeat, SwitchError> {
        if bytes.len() != HEARTBEAT_LEN {
            return Err(length_error(bytes.len(), HEARTBEAT_LEN));
        }
        let (unsigned, signature) = signed(bytes)?;
        let mut r = Reader::new(unsigned);
        header(&mut r, KIND_HEARTBEAT)?;
        let key = r.array()?;
        let counter = r.u64()?;
        let release_at = r.u64()?;
        r.finish()?;
        verify(&key, unsigned, &signature)?;
        Ok(Heartbeat {
            key,
            counter,
            release_at,
            signature,
        })
    }
}

impl Withdraw {
    /// The switch it withdraws.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }
    /// Its counter.
    pub fn counter(&self) -> u64 {
        self.counter
    }
    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(WITHDRAW_LEN);
        b.put_u8(SWITCH_VERSION);
        b.put_u8(KIND_WITHDRAW);
        b.put_slice(&self.key);
        b.put_u64(self.counter);
        b
    }
    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.unsigned_bytes();
        b.put_slice(&self.signature);
        b
    }
    /// Parse and verify.
    pub fn from_bytes(bytes: &[u8]) -> Result<Withdraw, SwitchError> {
        if bytes.len() != WITHDRAW_LEN {
            return Err(length_error(bytes.len(), WITHDRAW_LEN));
        }
        let (unsigned, signature) = signed(bytes)?;
        let mut r = Reader::new(unsigned);
        header(&mut r, KIND_WITHDRAW)?;
        let key = r.array()?;
        let counter = r.u64()?;
        r.finish()?;
        verify(&key, unsigned, &signature)?;
        Ok(Withdraw {
            key,
            counter,
            signature,
        })
    }
}

fn length_error(len: usize, want: usize) -> SwitchError {
    if len < want {
        DecodeError::Truncated.into()
    } else {
        DecodeError::TrailingBytes(len - want).into()
    }
}

impl SwitchRequest {
    /// Parse and verify any request (dispatching on the kind byte).
    pub fn from_bytes(bytes: &[u8]) -> Result<SwitchRequest, SwitchError> {
        if bytes.len() > MAX_SWITCH_REQUEST_LEN {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_SWITCH_REQUEST_LEN,
            }
            .into());
        }
        let mut r = Reader::new(bytes);
        let v = r.u8()?;
        if v != SWITCH_VERSION {
            return Err(DecodeError::UnsupportedVersion(v).into());
        }
        match r.u8()? {
            KIND_DEPOSIT => Deposit::from_bytes(bytes).map(SwitchRequest::Deposit),
            KIND_HEARTBEAT => Heartbeat::from_bytes(bytes).map(SwitchRequest::Heartbeat),
            KIND_WITHDRAW => Withdraw::from_bytes(bytes).map(SwitchRequest::Withdraw),
            k => Err(DecodeError::UnknownKind(k).into()),
        }
    }

    /// The switch key it names.
    pub fn key(&self) -> &[u8; 32] {
        match self {
            SwitchRequest::Deposit(d) => d.key(),
            SwitchRequest::Heartbeat(h) => h.key(),
            SwitchRequest::Withdraw(w) => w.key(),
        }
    }

    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            SwitchRequest::Deposit(d) => d.to_bytes(),
            SwitchRequest::Heartbeat(h) => h.to_bytes(),
            SwitchRequest::Withdraw(w) => w.to_bytes(),
        }
    }
}

/// The phone's side of one journey's switch: the journey key and its
/// counter. Persist it (secret) until the journey ends, to be able to
/// withdraw after a restart.
pub struct SwitchOwner {
    key: SigningKey,
    counter: u64,
}

impl std::fmt::Debug for SwitchOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchOwner")
            .field("key", &hex::encode(self.public_key()))
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl SwitchOwner {
    /// A fresh journey key.
    pub fn new(rng: &mut impl CryptoRngCore) -> SwitchOwner {
        SwitchOwner {
            key: SigningKey::generate(rng),
            counter: 0,
        }
    }

    /// The journey key's public half.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The deposit for `relay` (the relay's identifier, as the node defines
    /// it), releasing `alerts` at `release_at`. Pads the alerts with dummies
    /// (a real X25519 point and random bytes, to a random mailbox) to a
    /// multiple of [`ALERT_PAD_MULTIPLE`], so the relay cannot count
    /// contacts exactly.
    pub fn deposit(
        &self,
        relay: [u8; 32],
        release_at: u64,
        mut alerts: Vec<Alert>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Deposit, SwitchError> {
        if alerts.is_empty() || alerts.len() > MAX_ALERTS {
            return Err(SwitchError::AlertCount);
        }
        if alerts
            .iter()
            .any(|a| a.envelope.len() != SMALL_ENVELOPE_LEN || a.envelope[0] != ENVELOPE_VERSION)
        {
            return Err(SwitchError::BadAlert);
        }
        while !alerts.len().is_multiple_of(ALERT_PAD_MULTIPLE) {
            alerts.push(dummy_alert(rng));
        }
        // Shuffle so the dummies are not always last (Fisher–Yates).
        for i in (1..alerts.len()).rev() {
            let j = usize::try_from(rng.next_u64() % (i as u64 + 1)).unwrap_or(0);
            alerts.swap(i, j);
        }
        let mut d = Deposit {
            relay,
            key: self.public_key(),
            release_at,
            alerts,
            signature: [0; SIG_LEN],
        };
        d.signature = self
            .key
            .sign(&signing_input(&d.unsigned_bytes()))
            .to_bytes();
        Ok(d)
    }

    fn next_counter(&mut self) -> Result<u64, SwitchError> {
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or(SwitchError::CounterExhausted)?;
        Ok(self.counter)
    }

    /// Move the release time to `release_at`.
    pub fn heartbeat(&mut self, release_at: u64) -> Result<Heartbeat, SwitchError> {
        let mut h = Heartbeat {
            key: self.public_key(),
            counter: self.next_counter()?,
            release_at,
            signature: [0; SIG_LEN],
        };
        h.signature = self
            .key
            .sign(&signing_input(&h.unsigned_bytes()))
            .to_bytes();
        Ok(h)
    }

    /// Withdraw the switch.
    pub fn withdraw(&mut self) -> Result<Withdraw, SwitchError> {
        let mut w = Withdraw {
            key: self.public_key(),
            counter: self.next_counter()?,
            signature: [0; SIG_LEN],
        };
        w.signature = self
            .key
            .sign(&signing_input(&w.unsigned_bytes()))
            .to_bytes();
        Ok(w)
    }

    /// Secret bytes: `0x01 || secret key (32) || counter (8)`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(OWNER_LEN));
        v.push(OWNER_VERSION);
        v.extend_from_slice(self.key.as_bytes());
        v.extend_from_slice(&self.counter.to_be_bytes());
        v
    }

    /// Load bytes written by [`SwitchOwner::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<SwitchOwner, DecodeError> {
        if bytes.len() != OWNER_LEN {
            return Err(if bytes.len() < OWNER_LEN {
                DecodeError::Truncated
            } else {
                DecodeError::TrailingBytes(bytes.len() - OWNER_LEN)
            });
        }
        if bytes[0] != OWNER_VERSION {
            return Err(DecodeError::UnsupportedVersion(bytes[0]));
        }
        let mut sk = Zeroizing::new([0u8; 32]);
        sk.copy_from_slice(&bytes[1..33]);
        let mut c = [0u8; 8];
        c.copy_from_slice(&bytes[33..41]);
        Ok(SwitchOwner {
            key: SigningKey::from_bytes(&sk),
            counter: u64::from_be_bytes(c),
        })
    }
}

fn dummy_alert(rng: &mut impl CryptoRngCore) -> Alert {
    let mut mailbox = [0u8; 32];
    rng.fill_bytes(&mut mailbox);
    let mut envelope = vec![0u8; SMALL_ENVELOPE_LEN];
    envelope[0] = ENVELOPE_VERSION;
    let mut secret = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(secret.as_mut());
    let point = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret));
    envelope[1..33].copy_from_slice(point.as_bytes());
    rng.fill_bytes(&mut envelope[33..]);
    Alert { mailbox, envelope }
}

/// A proof-of-work stamp for `request` (a deposit's bytes) of `bits`: a
/// nonce with `SHA-256("ronde/switch/v1/work" || request || nonce (8))`
/// starting with `bits` zero bits. It is bound to the deposit's bytes,
/// which name the relay and a fresh key: one stamp, one deposit, one relay.
pub fn deposit_work(request: &[u8], bits: u8, start: u64) -> u64 {
    crate::pow::solve_in(DEPOSIT_WORK_DOMAIN, request, bits, start).0
}

/// Whether `nonce` is a stamp of at least `bits` for `request`.
pub fn check_deposit_work(request: &[u8], nonce: u64, bits: u8) -> bool {
    crate::pow::check_in(DEPOSIT_WORK_DOMAIN, request, nonce, bits)
}

/// What [`DeadManSwitch::poll`] hands to the relay's mailbox service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The switch key.
    pub key: [u8; 32],
    /// When it was due.
    pub release_at: u64,
    /// Put each envelope in its mailbox.
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Entry {
    release_at: u64,
    deposited_at: u64,
    counter: u64,
    alerts: Vec<Alert>,
}

/// A switch key as a map key (hex in serde, so JSON maps work).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key([u8; 32]);

impl serde::Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        let mut k = [0u8; 32];
        hex::decode_to_slice(&s, &mut k).map_err(serde::de::Error::custom)?;
        Ok(Key(k))
    }
}

/// The relay's side: every deposited switch, with injected time.
/// Serializable, for the relay to persist (a switch lost in a restart never
/// fires).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadManSwitch {
    relay: [u8; 32],
    max_entries: usize,
    entries: BTreeMap<Key, Entry>,
    /// Keys withdrawn or released, until the release time their deposit
    /// signed (after which a replayed deposit is refused anyway).
    tombstones: BTreeMap<Key, u64>,
}

impl DeadManSwitch {
    /// A relay named `relay` that holds at most `max_entries` switches
    /// (live ones plus tombstones).
    pub fn new(relay: [u8; 32], max_entries: usize) -> DeadManSwitch {
        DeadManSwitch {
            relay,
            max_entries,
            entries: BTreeMap::new(),
            tombstones: BTreeMap::new(),
        }
    }

    /// How many switches are live.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no switch is live.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The identifier deposits must name.
    pub fn relay(&self) -> &[u8; 32] {
        &self.relay
    }

    /// Change the identifier new deposits must name, keeping every live
    /// switch and tombstone: for a relay whose name changed between two
    /// runs (a node that derives it from a fresh network identity). The
    /// tombstones still refuse a withdrawn deposit replayed to this relay,
    /// and deposits for the old name are refused from now on.
    pub fn set_relay(&mut self, relay: [u8; 32]) {
        self.relay = relay;
    }

    /// The earliest release time, to schedule the next [`poll`](Self::poll).
    pub fn next_release(&self) -> Option<u64> {
        self.entries.values().map(|e| e.release_at).min()
    }

    /// Parse, verify and apply any request.
    pub fn handle(&mut self, bytes: &[u8], now: u64) -> Result<(), SwitchError> {
        self.apply(SwitchRequest::from_bytes(bytes)?, now)
    }

    /// Apply a parsed and verified request.
    pub fn apply(&mut self, request: SwitchRequest, now: u64) -> Result<(), SwitchError> {
        match request {
            SwitchRequest::Deposit(d) => self.deposit(d, now),
            SwitchRequest::Heartbeat(h) => self.heartbeat(&h, now),
            SwitchRequest::Withdraw(w) => self.withdraw(&w, now),
        }
    }

    /// Every live switch's key and tombstone's key (to persist them one
    /// record each).
    pub fn keys(&self) -> Vec<[u8; 32]> {
        let mut k: Vec<[u8; 32]> = self.entries.keys().map(|k| k.0).collect();
        k.extend(self.tombstones.keys().map(|k| k.0));
        k.sort_unstable();
        k.dedup();
        k
    }

    /// The stored form of the live switch `key`, if any:
    /// `0x01 || release_at (8) || deposited_at (8) || counter (8) || n (1)
    /// || n × (mailbox (32) || envelope (561))`. A heartbeat changes one
    /// record; nothing else is rewritten.
    pub fn record(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        let e = self.entries.get(&Key(*key))?;
        let mut b = Vec::with_capacity(26 + e.alerts.len() * (32 + SMALL_ENVELOPE_LEN));
        b.put_u8(RECORD_VERSION);
        b.put_u64(e.release_at);
        b.put_u64(e.deposited_at);
        b.put_u64(e.counter);
        b.put_u8(u8::try_from(e.alerts.len()).unwrap_or(u8::MAX));
        for a in &e.alerts {
            b.put_slice(&a.mailbox);
            b.put_slice(&a.envelope);
        }
        Some(b)
    }

    /// Whether `key` is held, live or as a tombstone.
    pub fn holds(&self, key: &[u8; 32]) -> bool {
        let k = Key(*key);
        self.entries.contains_key(&k) || self.tombstones.contains_key(&k)
    }

    /// Until when the tombstone of `key` refuses its deposit, if it has one.
    pub fn tombstone(&self, key: &[u8; 32]) -> Option<u64> {
        self.tombstones.get(&Key(*key)).copied()
    }

    /// Put back (or remove, with `None`) the live switch `key` from its
    /// [`record`](Self::record), and its tombstone: to load a relay's
    /// records, or undo a change its storage refused.
    pub fn restore(
        &mut self,
        key: &[u8; 32],
        record: Option<&[u8]>,
        tombstone: Option<u64>,
    ) -> Result<(), DecodeError> {
        let k = Key(*key);
        match record {
            Some(bytes) => {
                let mut r = Reader::new(bytes);
                let v = r.u8()?;
                if v != RECORD_VERSION {
                    return Err(DecodeError::UnsupportedVersion(v));
                }
                let release_at = r.u64()?;
                let deposited_at = r.u64()?;
                let counter = r.u64()?;
                let n = usize::from(r.u8()?);
                let mut alerts = Vec::with_capacity(n.min(MAX_ALERTS));
                for _ in 0..n {
                    let mailbox = r.array()?;
                    let envelope = r.take(SMALL_ENVELOPE_LEN)?.to_vec();
                    alerts.push(Alert { mailbox, envelope });
                }
                r.finish()?;
                self.entries.insert(
                    k,
                    Entry {
                        release_at,
                        deposited_at,
                        counter,
                        alerts,
                    },
                );
            }
            None => {
                self.entries.remove(&k);
            }
        }
        match tombstone {
            Some(until) => self.tombstones.insert(k, until),
            None => self.tombstones.remove(&k),
        };
        Ok(())
    }

    /// The keys of the live switches due at `now`.
    pub fn due(&self, now: u64) -> Vec<[u8; 32]> {
        self.entries
            .iter()
            .filter(|(_, e)| e.release_at <= now)
            .map(|(k, _)| k.0)
            .collect()
    }

    /// How many deposits the relay counts against its capacity (live
    /// switches and tombstones).
    pub fn held(&self) -> usize {
        self.tombstones.len()
            + self
                .entries
                .keys()
                .filter(|k| !self.tombstones.contains_key(*k))
                .count()
    }

    /// Accept a deposit.
    pub fn deposit(&mut self, d: Deposit, now: u64) -> Result<(), SwitchError> {
        if d.relay != self.relay {
            return Err(SwitchError::WrongRelay);
        }
        if d.release_at <= now {
            return Err(SwitchError::ReleaseInPast);
        }
        let max = now.saturating_add(MAX_SWITCH_HORIZON_SECS);
        if d.release_at > max {
            return Err(SwitchError::ReleaseTooLate { max });
        }
        self.tombstones.retain(|_, until| now < *until);
        let key = Key(d.key);
        if self.entries.contains_key(&key) || self.tombstones.contains_key(&key) {
            return Err(SwitchError::AlreadyDeposited);
        }
        if self.held() >= self.max_entries {
            return Err(SwitchError::Full);
        }
        self.entries.insert(
            key,
            Entry {
                release_at: d.release_at,
                deposited_at: now,
                counter: 0,
                alerts: d.alerts,
            },
        );
        // Until the signed release time, the same bytes must not be accepted
        // again once this entry is gone.
        self.tombstones.insert(key, d.release_at);
        Ok(())
    }

    fn live_entry(
        &mut self,
        key: &[u8; 32],
        counter: u64,
        now: u64,
    ) -> Result<&mut Entry, SwitchError> {
        let e = self
            .entries
            .get_mut(&Key(*key))
            .ok_or(SwitchError::UnknownSwitch)?;
        if now >= e.release_at {
            return Err(SwitchError::AlreadyDue);
        }
        if counter <= e.counter {
            return Err(SwitchError::StaleCounter {
                counter,
                last: e.counter,
            });
        }
        Ok(e)
    }

    /// Move a switch's release time.
    pub fn heartbeat(&mut self, h: &Heartbeat, now: u64) -> Result<(), SwitchError> {
        let e = self.live_entry(&h.key, h.counter, now)?;
        if h.release_at <= now {
            return Err(SwitchError::ReleaseInPast);
        }
        let max = e.deposited_at.saturating_add(MAX_SWITCH_HORIZON_SECS);
        if h.release_at > max {
            return Err(SwitchError::ReleaseTooLate { max });
        }
        e.counter = h.counter;
        e.release_at = h.release_at;
        Ok(())
    }

    /// Withdraw a switch: its alerts are dropped, never released.
    pub fn withdraw(&mut self, w: &Withdraw, now: u64) -> Result<(), SwitchError> {
        self.live_entry(&w.key, w.counter, now)?;
        self.entries.remove(&Key(w.key));
        Ok(())
    }

    /// Every switch due at `now`, removed from the relay, earliest first.
    pub fn poll(&mut self, now: u64) -> Vec<Release> {
        self.tombstones.retain(|_, until| now < *until);
        let due: Vec<Key> = self
            .entries
            .iter()
            .filter(|(_, e)| e.release_at <= now)
            .map(|(k, _)| *k)
            .collect();
        let mut out: Vec<Release> = due
            .into_iter()
            .filter_map(|key| {
                self.entries.remove(&key).map(|e| Release {
                    key: key.0,
                    release_at: e.release_at,
                    alerts: e.alerts,
                })
            })
            .collect();
        out.sort_by_key(|r| (r.release_at, r.key));
        out
    }
}
