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
//! where `id` is each side's [`crate::circle::ContactId`]. The address of the
//! mailbox that holds envelopes *to* `recipient` during `epoch` (a UTC day,
//! `now / 86400`) is
//!
//! ```text
//! HKDF-Expand(PRK = pair, info = "ronde/circle/v1/mailbox" || id(recipient) || epoch (8), L = 32)
//! ```
//!
//! Each direction has its own mailbox, and the addresses change every day:
//! a relay sees unrelated random strings and cannot tell that two mailboxes
//! belong to the same pair. A recipient polls the mailboxes of the current and
//! the previous epoch, so envelopes deposited just before midnight (and
//! dead-man alerts, addressed for the epoch they were deposited in) are still
//! collected.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::circle::identity::{Identity, IdentityError, PublicIdentity};

/// Length of a mailbox epoch: one day.
pub const EPOCH_SECS: u64 = 86_400;
/// HKDF salt of the pair secret.
pub const PAIR_SALT: &[u8] = b"ronde/circle/v1/pair";
/// HKDF info prefix of a mailbox address.
pub const MAILBOX_INFO: &[u8] = b"ronde/circle/v1/mailbox";

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

/// The address of the mailbox holding envelopes to `recipient` (one of the
/// pair) during `epoch`.
pub fn mailbox_address(shared: &PairSecret, epoch: u64, recipient: &PublicIdentity) -> [u8; 32] {
    let mut info = Vec::with_capacity(MAILBOX_INFO.len() + 40);
    info.extend_from_slice(MAILBOX_INFO);
    info.extend_from_slice(&recipient.id().0);
    info.extend_from_slice(&epoch.to_be_bytes());
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::from_prk(shared.0.as_ref())
        .unwrap_or_else(|_| unreachable!("a 32-byte PRK is long enough"))
        .expand(&info, &mut out)
        .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
    out
}
