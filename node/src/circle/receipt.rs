//! The receipt a mailbox host gives for a dead-man's-switch deposit: proof,
//! signed with the host's libp2p identity key, that the host that was
//! asked took this switch (its journey key) with this release time.
//!
//! ```text
//! receipt   = switch key (32) || release_at (8) || signature (64)      104 bytes
//! signature = Ed25519-Sign(host's libp2p key,
//!               "ronde/switch/v1/receipt" || len (1) || host peer id bytes
//!               || switch key || release_at)
//! ```
//!
//! The phone checks it against the peer id it sent the deposit to (an
//! Ed25519 peer id inlines its public key), the journey key and the release
//! time it deposited; a host that answers without a valid receipt is not
//! counted as holding the switch. A receipt does not prove that the host
//! will release the alert on time: only that the host the phone chose, and
//! no other, answered for it.

use libp2p::identity::{Keypair, PublicKey};
use libp2p::PeerId;

/// Domain separator of a receipt's signature.
pub const RECEIPT_DOMAIN: &[u8] = b"ronde/switch/v1/receipt";
/// Length of an encoded receipt.
pub const RECEIPT_LEN: usize = 32 + 8 + 64;
/// The multihash code of an identity hash (a peer id that inlines its key).
const IDENTITY_MULTIHASH: u64 = 0;

/// A host's receipt for a switch deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchReceipt {
    /// The journey key of the deposited switch.
    pub key: [u8; 32],
    /// The release time deposited.
    pub release_at: u64,
    /// The host's signature.
    pub signature: [u8; 64],
}

fn message(host: &PeerId, key: &[u8; 32], release_at: u64) -> Vec<u8> {
    let peer = host.to_bytes();
    let mut m = Vec::with_capacity(RECEIPT_DOMAIN.len() + 1 + peer.len() + 40);
    m.extend_from_slice(RECEIPT_DOMAIN);
    // A peer id is at most 64 bytes (libp2p's multihash bound).
    m.push(u8::try_from(peer.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(&peer);
    m.extend_from_slice(key);
    m.extend_from_slice(&release_at.to_be_bytes());
    m
}

/// The public key a peer id inlines (Ed25519 peer ids do), if any.
pub fn public_key_of(peer: &PeerId) -> Option<PublicKey> {
    let mh: &libp2p::multihash::Multihash<64> = peer.as_ref();
    if mh.code() != IDENTITY_MULTIHASH {
        return None;
    }
    PublicKey::try_decode_protobuf(mh.digest()).ok()
}

impl SwitchReceipt {
    /// The receipt of the host whose key is `keypair` for a deposit of
    /// `key` released at `release_at`; `None` if the key is not Ed25519.
    pub fn sign(keypair: &Keypair, key: [u8; 32], release_at: u64) -> Option<SwitchReceipt> {
        let host = keypair.public().to_peer_id();
        let sig = keypair.sign(&message(&host, &key, release_at)).ok()?;
        Some(SwitchReceipt {
            key,
            release_at,
            signature: sig.try_into().ok()?,
        })
    }

    /// Whether this is `host`'s receipt for exactly this deposit.
    pub fn holds(&self, host: &PeerId, key: &[u8; 32], release_at: u64) -> bool {
        if &self.key != key || self.release_at != release_at {
            return false;
        }
        public_key_of(host)
            .is_some_and(|pk| pk.verify(&message(host, key, release_at), &self.signature))
    }

    /// The [`RECEIPT_LEN`] bytes.
    pub fn to_bytes(&self) -> [u8; RECEIPT_LEN] {
        let mut b = [0u8; RECEIPT_LEN];
        b[..32].copy_from_slice(&self.key);
        b[32..40].copy_from_slice(&self.release_at.to_be_bytes());
        b[40..].copy_from_slice(&self.signature);
        b
    }

    /// Parse exactly [`RECEIPT_LEN`] bytes.
    pub fn from_bytes(b: &[u8]) -> Option<SwitchReceipt> {
        if b.len() != RECEIPT_LEN {
            return None;
        }
        Some(SwitchReceipt {
            key: b.get(..32)?.try_into().ok()?,
            release_at: u64::from_be_bytes(b.get(32..40)?.try_into().ok()?),
            signature: b.get(40..)?.try_into().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_holds_only_for_its_host_key_and_time() {
        let host = Keypair::generate_ed25519();
        let other = Keypair::generate_ed25519();
        let id = host.public().to_peer_id();
        let r = SwitchReceipt::sign(&host, [7; 32], 1_000).expect("ed25519");
        assert!(r.holds(&id, &[7; 32], 1_000));
        assert_eq!(SwitchReceipt::from_bytes(&r.to_bytes()), Some(r));
        assert!(!r.holds(&other.public().to_peer_id(), &[7; 32], 1_000));
        assert!(!r.holds(&id, &[8; 32], 1_000));
        assert!(!r.holds(&id, &[7; 32], 1_001));
        let forged = SwitchReceipt::sign(&other, [7; 32], 1_000).expect("ed25519");
        assert!(!forged.holds(&id, &[7; 32], 1_000), "signed by another key");
        let mut flipped = r;
        flipped.signature[0] ^= 1;
        assert!(!flipped.holds(&id, &[7; 32], 1_000));
        assert!(SwitchReceipt::from_bytes(&[0; RECEIPT_LEN - 1]).is_none());
        assert!(SwitchReceipt::from_bytes(&[0; RECEIPT_LEN + 1]).is_none());
        // A peer id that does not inline a key (a hash) has no receipt.
        assert!(!r.holds(&PeerId::random(), &[7; 32], 1_000));
    }
}
