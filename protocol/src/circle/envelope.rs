//! Sealed envelopes: one message, from one identity, to one identity.
//!
//! ```text
//! envelope  = 0x01 || enc (32) || HPKE ciphertext of padded (bucket + 16)
//! padded    = len (2) || inner || zero bytes up to the bucket (512 or 2048)
//! inner     = 0x02 || sender signing key (32) || sender encryption key (32)
//!             || relation (16) || counter (8) || message || signature (64)
//! signature = Ed25519(sender, "ronde/circle/v1/sig" || recipient signing key
//!             || recipient encryption key || inner without signature)
//! ```
//!
//! HPKE (RFC 9180) in base mode with DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256 and ChaCha20-Poly1305; `info = "ronde/circle/v1/envelope"`,
//! `aad = 0x01` (the envelope version).
//!
//! **Why base mode and a signature inside rather than HPKE auth mode.**
//! Nothing outside the ciphertext names the sender, so the recipient learns
//! who wrote an envelope only by opening it; in auth mode it would have to
//! try every contact's key. The first message of a relation (the accept of an
//! invite) comes from a key the recipient does not know yet, which auth mode
//! cannot open at all. And the Ed25519 signature binds each message to the
//! identity whose safety number the two people compared. It covers the
//! recipient's keys, so a contact cannot re-seal a message it received to a
//! third person as if it had been sent to them. The cost: a contact can prove
//! to others that the sender signed a message (no deniability).
//!
//! Every message but an accept with long names or addresses fits the
//! 512-byte bucket, so an SOS, a position and an ack are the same 561 bytes
//! on the wire.
//!
//! The receiver rejects replays with a per-contact [`ReplayWindow`] over the
//! signed counter (the [`crate::circle::Circle`] does this).
//!
//! **Why a relation token.** Counters start at 1 in every relation, so once a
//! contact is removed and added again, envelopes of the earlier relation
//! (kept by a mailbox host, or recorded on the way) would pass the new
//! replay window: an old SOS would raise a false alarm, an old leave would
//! silently remove the contact. Every inner therefore names its relation:
//! the token of the invite whose accept created the recipient's record of the
//! sender (see [`crate::circle::Circle::open`]). Signed with the rest, it
//! ties each envelope to one relation; the token is new for every invite.

use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::circle::identity::{Identity, IdentityError, PublicIdentity, PUBLIC_IDENTITY_LEN};
use crate::circle::invite::InviteToken;
use crate::circle::message::Message;
use crate::circle::wire::DecodeError;

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

/// Version byte of the envelope (also its AAD).
pub const ENVELOPE_VERSION: u8 = 1;
/// Version byte of the signed inner plaintext (2: with the relation token;
/// 1, without it, is refused).
pub const INNER_VERSION: u8 = 2;
/// HPKE `info`.
pub const HPKE_INFO: &[u8] = b"ronde/circle/v1/envelope";
/// Domain separator of the inner signature.
pub const SIG_DOMAIN: &[u8] = b"ronde/circle/v1/sig";
/// Sizes the padded plaintext is rounded up to; the smallest that fits is
/// used.
pub const BUCKETS: [usize; 2] = [512, 2048];
const ENC_LEN: usize = 32;
const TAG_LEN: usize = 16;
const SIG_LEN: usize = 64;
const RELATION_LEN: usize = 16;
const INNER_HEADER_LEN: usize = 1 + PUBLIC_IDENTITY_LEN + RELATION_LEN + 8;
/// Length on the wire of an envelope in the small bucket (561).
pub const SMALL_ENVELOPE_LEN: usize = 1 + ENC_LEN + BUCKETS[0] + TAG_LEN;
/// Length on the wire of an envelope in the large bucket (2097).
pub const LARGE_ENVELOPE_LEN: usize = 1 + ENC_LEN + BUCKETS[1] + TAG_LEN;
/// Counters cover this many messages below the highest seen.
pub const REPLAY_WINDOW: u64 = 1024;
const WINDOW_WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// Why a message could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The message breaks a limit of the encoding.
    #[error("the message is invalid: {0}")]
    Invalid(#[from] DecodeError),
    /// Counters start at 1.
    #[error("counter 0 is not allowed")]
    ZeroCounter,
    /// HPKE refused the recipient's key (all-zero shared secret).
    #[error("the recipient's key is unusable")]
    BadRecipientKey,
}

/// Why an envelope was refused. The first group comes from [`open`]; the
/// rest from [`crate::circle::Circle::open`], which also checks who may send
/// what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not the length of any bucket.
    #[error("an envelope is {SMALL_ENVELOPE_LEN} or {LARGE_ENVELOPE_LEN} bytes, got {0}")]
    BadLength(usize),
    /// Unknown envelope or inner version.
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    /// Not sealed to this identity, or altered in transit.
    #[error("the envelope does not open with this identity (misaddressed or tampered)")]
    Decrypt,
    /// The padding is not canonical.
    #[error("bad padding")]
    BadPadding,
    /// The sender's keys are not valid.
    #[error("invalid sender key: {0}")]
    BadSender(IdentityError),
    /// The signature does not verify for this sender and recipient.
    #[error("bad signature")]
    BadSignature,
    /// The plaintext is malformed.
    #[error("malformed message: {0}")]
    Malformed(#[from] DecodeError),
    /// A replayed or too-old counter.
    #[error("replay: {0}")]
    Replay(#[from] ReplayError),
    /// The envelope belongs to another relation with this sender (an earlier
    /// one, before they were removed and added again), or an accept names a
    /// relation other than its own token.
    #[error("the envelope belongs to another relation with this contact")]
    StaleRelation,
    /// The sender is not a contact (and this is not the accept of a pending
    /// invite).
    #[error("the sender is not a contact")]
    UnknownSender,
    /// Sent from this very identity.
    #[error("the envelope comes from this identity")]
    FromSelf,
    /// The contact may not send this kind of message in the relation's
    /// current state (e.g. a position before the relation is mutual).
    #[error("message kind {kind:#04x} is not allowed from this contact now")]
    NotAllowed {
        /// The message kind.
        kind: u8,
    },
    /// An accept names no pending invite (unknown, used or revoked).
    #[error("the accepted invite is unknown or was already used")]
    UnknownInvite,
    /// An accept of an invite that has expired.
    #[error("the accepted invite has expired")]
    InviteExpired,
    /// The circle has no room for another contact.
    #[error("the circle is full")]
    CircleFull,
}

/// What [`open`] found in an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Who sealed it (the signature was verified).
    pub sender: PublicIdentity,
    /// The relation it belongs to (the token of the invite that created the
    /// recipient's record of the sender).
    pub relation: InviteToken,
    /// The sender's counter for this recipient.
    pub counter: u64,
    /// The message.
    pub message: Message,
}

fn signing_input(recipient: &PublicIdentity, unsigned: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(SIG_DOMAIN.len() + PUBLIC_IDENTITY_LEN + unsigned.len());
    v.extend_from_slice(SIG_DOMAIN);
    v.extend_from_slice(&recipient.to_bytes());
    v.extend_from_slice(unsigned);
    v
}

/// Seal `message` from `sender` to `recipient`, in the relation `relation`,
/// with the sender's `counter` for that recipient. No replay bookkeeping:
/// use [`crate::circle::Circle::seal`], which keeps the counters and the
/// relation.
pub fn seal(
    sender: &Identity,
    recipient: &PublicIdentity,
    relation: &InviteToken,
    counter: u64,
    message: &Message,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, SealError> {
    if counter == 0 {
        return Err(SealError::ZeroCounter);
    }
    let body = message.to_bytes()?;
    let mut inner = Zeroizing::new(Vec::with_capacity(INNER_HEADER_LEN + body.len() + SIG_LEN));
    inner.push(INNER_VERSION);
    inner.extend_from_slice(&sender.public().to_bytes());
    inner.extend_from_slice(&relation.0);
    inner.extend_from_slice(&counter.to_be_bytes());
    inner.extend_from_slice(&body);
    let sig = sender.sign(&signing_input(recipient, &inner));
    inner.extend_from_slice(&sig);

    // Messages are at most MAX_MESSAGE_LEN, so the large bucket always fits.
    let bucket = BUCKETS
        .iter()
        .copied()
        .find(|&b| b >= 2 + inner.len())
        .unwrap_or(BUCKETS[BUCKETS.len() - 1]);
    let mut padded = Zeroizing::new(vec![0u8; bucket]);
    let len = u16::try_from(inner.len()).unwrap_or(u16::MAX);
    padded[..2].copy_from_slice(&len.to_be_bytes());
    padded[2..2 + inner.len()].copy_from_slice(&inner);

    let (enc, ct) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
        &OpModeS::Base,
        &recipient.hpke_public(),
        HPKE_INFO,
        &padded,
        &[ENVELOPE_VERSION],
        rng,
    )
    .map_err(|_| SealError::BadRecipientKey)?;
    let mut out = Vec::with_capacity(1 + ENC_LEN + ct.len());
    out.push(ENVELOPE_VERSION);
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Open an envelope sealed to `recipient`: decrypt, check the padding,
/// verify the sender's signature, parse the message. Does not check
/// counters or contacts: [`crate::circle::Circle::open`] does.
pub fn open(recipient: &Identity, bytes: &[u8]) -> Result<Opened, OpenError> {
    if bytes.len() != SMALL_ENVELOPE_LEN && bytes.len() != LARGE_ENVELOPE_LEN {
        return Err(OpenError::BadLength(bytes.len()));
    }
    if bytes[0] != ENVELOPE_VERSION {
        return Err(OpenError::UnsupportedVersion(bytes[0]));
    }
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&bytes[1..1 + ENC_LEN])
        .map_err(|_| OpenError::Decrypt)?;
    let padded = Zeroizing::new(
        hpke::single_shot_open::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &recipient.hpke_secret(),
            &enc,
            HPKE_INFO,
            &bytes[1 + ENC_LEN..],
            &[ENVELOPE_VERSION],
        )
        .map_err(|_| OpenError::Decrypt)?,
    );
    let len = usize::from(u16::from_be_bytes([padded[0], padded[1]]));
    if len > padded.len() - 2 || padded[2 + len..].iter().any(|&b| b != 0) {
        return Err(OpenError::BadPadding);
    }
    let inner = &padded[2..2 + len];
    if inner.len() < INNER_HEADER_LEN + 1 + SIG_LEN {
        return Err(DecodeError::Truncated.into());
    }
    if inner[0] != INNER_VERSION {
        return Err(OpenError::UnsupportedVersion(inner[0]));
    }
    let sender = PublicIdentity::from_bytes(&inner[1..1 + PUBLIC_IDENTITY_LEN])
        .map_err(OpenError::BadSender)?;
    let mut relation = [0u8; RELATION_LEN];
    relation
        .copy_from_slice(&inner[1 + PUBLIC_IDENTITY_LEN..1 + PUBLIC_IDENTITY_LEN + RELATION_LEN]);
    let mut c = [0u8; 8];
    c.copy_from_slice(&inner[1 + PUBLIC_IDENTITY_LEN + RELATION_LEN..INNER_HEADER_LEN]);
    let counter = u64::from_be_bytes(c);
    let (unsigned, sig) = inner.split_at(inner.len() - SIG_LEN);
    let mut signature = [0u8; SIG_LEN];
    signature.copy_from_slice(sig);
    if !sender.verify(&signing_input(recipient.public(), unsigned), &signature) {
        return Err(OpenError::BadSignature);
    }
    if counter == 0 {
        return Err(ReplayError::Zero.into());
    }
    let message = Message::from_bytes(&unsigned[INNER_HEADER_LEN..])?;
    Ok(Opened {
        sender,
        relation: InviteToken(relation),
        counter,
        message,
    })
}

/// Why a counter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Counters start at 1.
    #[error("counter 0 is never valid")]
    Zero,
    /// This counter was already accepted.
    #[error("message {0} was already received")]
    Duplicate(u64),
    /// Too far below the highest counter accepted to tell.
    #[error("message {counter} is too old (latest is {highest})")]
    TooOld {
        /// The counter refused.
        counter: u64,
        /// The highest counter accepted so far.
        highest: u64,
    },
}

/// The receiver's memory of one contact's counters: the highest accepted and
/// which of the [`REPLAY_WINDOW`] below it were seen (RFC 6479 style). Messages
/// may arrive out of order within the window; anything seen or older is
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ReplayWindow {
    highest: u64,
    bits: [u64; WINDOW_WORDS],
}

impl ReplayWindow {
    /// A window that has seen nothing.
    pub fn new() -> ReplayWindow {
        ReplayWindow::default()
    }

    /// The highest counter accepted (0 if none).
    pub fn highest(&self) -> u64 {
        self.highest
    }

    fn slot(counter: u64) -> (usize, u64) {
        let i = counter % REPLAY_WINDOW;
        // i < 1024, so i / 64 < 16.
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// Whether `counter` would be accepted; changes nothing.
    pub fn check(&self, counter: u64) -> Result<(), ReplayError> {
        if counter == 0 {
            return Err(ReplayError::Zero);
        }
        if counter > self.highest {
            return Ok(());
        }
        if self.highest - counter >= REPLAY_WINDOW {
            return Err(ReplayError::TooOld {
                counter,
                highest: self.highest,
            });
        }
        let (w, m) = Self::slot(counter);
        if self.bits[w] & m != 0 {
            return Err(ReplayError::Duplicate(counter));
        }
        Ok(())
    }

    /// Check `counter` and remember it. Call only once the message is
    /// authenticated.
    pub fn accept(&mut self, counter: u64) -> Result<(), ReplayError> {
        self.check(counter)?;
        if counter > self.highest {
            if counter - self.highest >= REPLAY_WINDOW {
                self.bits = [0; WINDOW_WORDS];
            } else {
                for c in self.highest + 1..counter {
                    let (w, m) = Self::slot(c);
                    self.bits[w] &= !m;
                }
            }
            self.highest = counter;
        }
        let (w, m) = Self::slot(counter);
        self.bits[w] |= m;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circle::MessageId;
    use rand::SeedableRng;

    /// Bob re-encrypts the plaintext Alice sealed to him for Carol, hoping
    /// Carol takes it as sent by Alice to her: the signature covers the
    /// recipient, so it fails.
    #[test]
    fn forwarded_plaintext_fails_signature() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let alice = Identity::generate(&mut rng);
        let bob = Identity::generate(&mut rng);
        let carol = Identity::generate(&mut rng);
        let msg = Message::Ack {
            of: MessageId([1; 16]),
        };
        let env = seal(
            &alice,
            bob.public(),
            &InviteToken([7; 16]),
            5,
            &msg,
            &mut rng,
        )
        .unwrap();
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&env[1..33]).unwrap();
        let padded = hpke::single_shot_open::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &bob.hpke_secret(),
            &enc,
            HPKE_INFO,
            &env[33..],
            &[ENVELOPE_VERSION],
        )
        .unwrap();
        let (enc2, ct2) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
            &OpModeS::Base,
            &carol.public().hpke_public(),
            HPKE_INFO,
            &padded,
            &[ENVELOPE_VERSION],
            &mut rng,
        )
        .unwrap();
        let mut forged = vec![ENVELOPE_VERSION];
        forged.extend_from_slice(&enc2.to_bytes());
        forged.extend_from_slice(&ct2);
        assert_eq!(open(&carol, &forged), Err(OpenError::BadSignature));
        // Bob himself opens the original fine.
        assert_eq!(open(&bob, &env).unwrap().sender, *alice.public());
    }

    /// Non-zero padding is refused even under a valid AEAD.
    #[test]
    fn non_zero_padding_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(10);
        let alice = Identity::generate(&mut rng);
        let mut padded = vec![0u8; BUCKETS[0]];
        padded[2] = 1;
        padded[BUCKETS[0] - 1] = 1;
        let (enc, ct) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
            &OpModeS::Base,
            &alice.public().hpke_public(),
            HPKE_INFO,
            &padded,
            &[ENVELOPE_VERSION],
            &mut rng,
        )
        .unwrap();
        let mut env = vec![ENVELOPE_VERSION];
        env.extend_from_slice(&enc.to_bytes());
        env.extend_from_slice(&ct);
        assert_eq!(open(&alice, &env), Err(OpenError::BadPadding));
    }

    #[test]
    fn replay_window_slides() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.accept(0), Err(ReplayError::Zero));
        w.accept(5).unwrap();
        w.accept(3).unwrap();
        assert_eq!(w.accept(3), Err(ReplayError::Duplicate(3)));
        assert_eq!(w.accept(5), Err(ReplayError::Duplicate(5)));
        w.accept(4).unwrap();
        w.accept(5 + REPLAY_WINDOW - 1).unwrap();
        // 5 is still inside the window and seen; 6 inside and unseen.
        assert_eq!(w.check(5), Err(ReplayError::Duplicate(5)));
        w.accept(6).unwrap();
        // 4 fell out.
        assert_eq!(
            w.check(4),
            Err(ReplayError::TooOld {
                counter: 4,
                highest: 5 + REPLAY_WINDOW - 1
            })
        );
        // A jump past the whole window forgets everything below.
        w.accept(10 * REPLAY_WINDOW).unwrap();
        w.accept(10 * REPLAY_WINDOW - 1).unwrap();
        assert!(w.check(9 * REPLAY_WINDOW).is_err());
        w.accept(9 * REPLAY_WINDOW + 1).unwrap();
    }
}
