//! Mailbox addresses: where one contact leaves envelopes for another on a
//! relay while the recipient is offline.
//!
//! Two contacts share a [`PairSecret`]:
//!
//! ```text
//! dh   = X25519(my encryption secret, their encryption key)
//! pair = HKDF-SHA256(salt = "ronde/circle/v1/pair", ikm = dh,
//!                    info = min(id_a, id_b) || max(id_a, id_b), L = 32)
//! ```
//!
//! where `id` is each side's [`crate::circle::ContactId`]. The mailbox that
//! holds envelopes *to* `recipient` during `epoch` (a UTC day, `now /
//! 86400`) has a signing key ([`MailboxKey`]) and an address, the hash of
//! its public key:
//!
//! ```text
//! seed    = HKDF-Expand(PRK = pair, info = "ronde/circle/v1/mailbox-key" || id(recipient) || epoch (8), L = 32)
//! key     = the Ed25519 key of seed (RFC 8032)
//! address = SHA-256("ronde/circle/v1/mailbox-address" || public key (32))
//! ```
//!
//! Anyone who knows the address may deposit into the mailbox; fetching and
//! acknowledging its envelopes needs a signature by the key
//! ([`crate::circle::mailbox_auth`]), which only the pair can make: a host
//! that was given the address (and the public key, with a fetch) cannot
//! read or delete the mailbox's envelopes at another host.
//!
//! Each direction has its own mailbox, and the addresses change every day:
//! a relay sees unrelated random strings and cannot tell that two mailboxes
//! belong to the same pair. A recipient polls the mailboxes of the current and
//! the previous epoch, so envelopes deposited just before midnight (and
//! dead-man alerts, addressed for the epoch they were deposited in) are still
//! collected.

use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::circle::identity::{Identity, IdentityError, PublicIdentity};

/// Length of a mailbox epoch: one day.
pub const EPOCH_SECS: u64 = 86_400;
/// HKDF salt of the pair secret.
pub const PAIR_SALT: &[u8] = b"ronde/circle/v1/pair";
/// HKDF info prefix of a mailbox key's seed.
pub const MAILBOX_KEY_INFO: &[u8] = b"ronde/circle/v1/mailbox-key";
/// Domain separator of a mailbox address (the hash of the mailbox key).
pub const MAILBOX_ADDRESS_DOMAIN: &[u8] = b"ronde/circle/v1/mailbox-address";
/// Domain separator of an invite mailbox key's seed.
pub const INVITE_MAILBOX_KEY_DOMAIN: &[u8] = b"ronde/circle/v1/invite-mailbox-key";

/// The epoch (UTC day) of `now`.
pub fn epoch_of(now: u64) -> u64 {
    now / EPOCH_SECS
}

/// The secret two contacts share to derive their mailbox addresses. Wiped
/// when dropped; cheap to recompute, so callers need not store it.
#[derive(Clone)]
pub struct PairSecret(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for PairSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairSecret(..)")
    }
}

impl PairSecret {
    /// The secret shared by `me` and `them` (the same on both sides).
    pub fn derive(me: &Identity, them: &PublicIdentity) -> Result<PairSecret, IdentityError> {
        let dh = me.agree(them)?;
        let (a, b) = (me.public().id(), them.id());
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut info = [0u8; 64];
        info[..32].copy_from_slice(&lo.0);
        info[32..].copy_from_slice(&hi.0);
        let mut out = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(PAIR_SALT), dh.as_ref())
            .expand(&info, out.as_mut())
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
        Ok(PairSecret(out))
    }

    /// The raw secret (for test vectors).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From raw bytes (for test vectors and other implementations).
    pub fn from_bytes(bytes: [u8; 32]) -> PairSecret {
        PairSecret(Zeroizing::new(bytes))
    }
}

/// The key of one mailbox: whoever holds it may fetch and acknowledge the
/// mailbox's envelopes. Wiped when dropped.
#[derive(Clone)]
pub struct MailboxKey(SigningKey);

impl std::fmt::Debug for MailboxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MailboxKey({})", hex::encode(self.address()))
    }
}

impl MailboxKey {
    /// The key of the mailbox holding envelopes to `recipient` (one of the
    /// pair) during `epoch`.
    pub fn derive(shared: &PairSecret, epoch: u64, recipient: &PublicIdentity) -> MailboxKey {
        let mut info = Vec::with_capacity(MAILBOX_KEY_INFO.len() + 40);
        info.extend_from_slice(MAILBOX_KEY_INFO);
        info.extend_from_slice(&recipient.id().0);
        info.extend_from_slice(&epoch.to_be_bytes());
        let mut seed = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::from_prk(shared.0.as_ref())
            .unwrap_or_else(|_| unreachable!("a 32-byte PRK is long enough"))
            .expand(&info, seed.as_mut())
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
        MailboxKey::from_seed(&seed)
    }

    /// The key of an invite's mailbox (where its author collects accepts):
    /// seed `SHA-256("ronde/circle/v1/invite-mailbox-key" || token)`.
    pub fn for_invite(token: &[u8; 16]) -> MailboxKey {
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            Sha256::new_with_prefix(INVITE_MAILBOX_KEY_DOMAIN)
                .chain_update(token)
                .finalize()
                .into(),
        );
        MailboxKey::from_seed(&seed)
    }

    /// From a raw 32-byte seed (for test vectors).
    pub fn from_seed(seed: &[u8; 32]) -> MailboxKey {
        MailboxKey(SigningKey::from_bytes(seed))
    }

    /// The raw seed (for test vectors).
    pub fn seed(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The public key, which a fetch shows the host.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The mailbox's address.
    pub fn address(&self) -> [u8; 32] {
        address_of_key(&self.public_key())
    }

    /// Sign `message` (see [`crate::circle::mailbox_auth`]).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

/// The address of the mailbox whose key has this public half:
/// `SHA-256("ronde/circle/v1/mailbox-address" || key)`.
pub fn address_of_key(key: &[u8; 32]) -> [u8; 32] {
    Sha256::new_with_prefix(MAILBOX_ADDRESS_DOMAIN)
        .chain_update(key)
        .finalize()
        .into()
}

/// The address of the mailbox holding envelopes to `recipient` (one of the
/// pair) during `epoch`.
pub fn mailbox_address(shared: &PairSecret, epoch: u64, recipient: &PublicIdentity) -> [u8; 32] {
    MailboxKey::derive(shared, epoch, recipient).address()
}
