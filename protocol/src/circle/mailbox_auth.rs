//! Proof of a mailbox secret: what a client shows a host to fetch or
//! acknowledge (delete) a mailbox's envelopes, and the host's single-use
//! challenges.
//!
//! Every mailbox has an Ed25519 key derived from the pair secret
//! ([`MailboxKey`]) and its address is the hash of the public key, so the
//! address alone (which every host given it learns) does not let anyone
//! read or delete the mailbox. A fetch or an acknowledgement names the
//! public keys of its mailboxes and carries, for each, a signature over
//!
//! ```text
//! "ronde/mailbox/v1/auth" || len(host) (1) || host || len(client) (1) || client || request
//! ```
//!
//! where `host` and `client` are the libp2p peer ids (their byte encoding)
//! of the host asked and of the peer asking, as the host sees the
//! connection, and `request` is the request's bytes before its signatures,
//! which begin with a 32-byte challenge the host issued to this client
//! ([`Challenges`]). So a signature
//!
//! * proves the key (only the pair derives it);
//! * is good once, at one host, from one peer: a host that saw it cannot
//!   replay it to itself (the challenge is spent), to another host (its
//!   peer id is signed, and that host never issued the challenge) nor from
//!   another peer (the client's peer id is signed);
//! * covers the whole request: which mailboxes, and which envelopes an
//!   acknowledgement deletes.
//!
//! The host keeps each challenge at most [`CHALLENGE_TTL_SECS`], at most
//! [`MAX_CHALLENGES_PER_PEER`] per peer (a new one drops the peer's oldest)
//! and [`MAX_CHALLENGES`] in all (a new one drops the oldest of all), so
//! requesting challenges costs the host bounded memory. Time and
//! randomness are passed in.

use std::collections::HashMap;

use ed25519_dalek::{Signature, VerifyingKey};
use rand_core::CryptoRngCore;

use crate::circle::mailbox::MailboxKey;

/// Domain separator of the signed message.
pub const AUTH_DOMAIN: &[u8] = b"ronde/mailbox/v1/auth";
/// Length of a challenge.
pub const CHALLENGE_LEN: usize = 32;
/// How long a challenge stays redeemable.
pub const CHALLENGE_TTL_SECS: u64 = 60;
/// Most challenges outstanding for one peer.
pub const MAX_CHALLENGES_PER_PEER: usize = 4;
/// Most challenges outstanding in all.
pub const MAX_CHALLENGES: usize = 4096;
/// Longest peer id the signed message may name.
pub const MAX_PEER_ID_LEN: usize = 255;

/// Why a proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A peer id over [`MAX_PEER_ID_LEN`] bytes.
    #[error("peer id too long")]
    PeerIdTooLong,
    /// Not as many signatures as keys.
    #[error("one signature per key")]
    Count,
    /// A key that is not a valid Ed25519 key.
    #[error("bad mailbox key")]
    BadKey,
    /// A signature that does not verify (strictly).
    #[error("bad mailbox signature")]
    BadSignature,
}

/// The message each key signs.
pub fn auth_message(host: &[u8], client: &[u8], request: &[u8]) -> Result<Vec<u8>, AuthError> {
    let h = u8::try_from(host.len()).map_err(|_| AuthError::PeerIdTooLong)?;
    let c = u8::try_from(client.len()).map_err(|_| AuthError::PeerIdTooLong)?;
    let mut m =
        Vec::with_capacity(AUTH_DOMAIN.len() + 2 + host.len() + client.len() + request.len());
    m.extend_from_slice(AUTH_DOMAIN);
    m.push(h);
    m.extend_from_slice(host);
    m.push(c);
    m.extend_from_slice(client);
    m.extend_from_slice(request);
    Ok(m)
}

/// Each key's signature of `request` (the bytes before the signatures)
/// for `host`, asked by `client`.
pub fn sign(
    keys: &[MailboxKey],
    host: &[u8],
    client: &[u8],
    request: &[u8],
) -> Result<Vec<[u8; 64]>, AuthError> {
    let m = auth_message(host, client, request)?;
    Ok(keys.iter().map(|k| k.sign(&m)).collect())
}

/// Check that every key signed `request` for `host`, asked by `client`
/// (strict Ed25519 verification, one signature at a time).
pub fn verify(
    keys: &[[u8; 32]],
    signatures: &[[u8; 64]],
    host: &[u8],
    client: &[u8],
    request: &[u8],
) -> Result<(), AuthError> {
    if keys.len() != signatures.len() {
        return Err(AuthError::Count);
    }
    let m = auth_message(host, client, request)?;
    for (k, s) in keys.iter().zip(signatures) {
        let vk = VerifyingKey::from_bytes(k).map_err(|_| AuthError::BadKey)?;
        vk.verify_strict(&m, &Signature::from_bytes(s))
            .map_err(|_| AuthError::BadSignature)?;
    }
    Ok(())
}

/// The host's outstanding challenges: each issued to one peer, redeemable
/// once, within [`CHALLENGE_TTL_SECS`].
#[derive(Debug, Default)]
pub struct Challenges {
    /// challenge → (peer, issued at, issue number)
    issued: HashMap<[u8; CHALLENGE_LEN], (Vec<u8>, u64, u64)>,
    next: u64,
}

impl Challenges {
    /// None outstanding.
    pub fn new() -> Challenges {
        Challenges::default()
    }

    /// How many are outstanding.
    pub fn len(&self) -> usize {
        self.issued.len()
    }

    /// Whether none is outstanding.
    pub fn is_empty(&self) -> bool {
        self.issued.is_empty()
    }

    fn drop_oldest(&mut self, of_peer: Option<&[u8]>) {
        let oldest = self
            .issued
            .iter()
            .filter(|(_, (p, _, _))| of_peer.is_none_or(|q| p == q))
            .min_by_key(|(_, (_, _, n))| *n)
            .map(|(c, _)| *c);
        if let Some(c) = oldest {
            self.issued.remove(&c);
        }
    }

    /// A fresh challenge for `peer`.
    pub fn issue(
        &mut self,
        peer: &[u8],
        now: u64,
        rng: &mut impl CryptoRngCore,
    ) -> [u8; CHALLENGE_LEN] {
        self.issued
            .retain(|_, (_, at, _)| now < at.saturating_add(CHALLENGE_TTL_SECS) && *at <= now);
        if self.issued.values().filter(|(p, _, _)| p == peer).count() >= MAX_CHALLENGES_PER_PEER {
            self.drop_oldest(Some(peer));
        }
        if self.issued.len() >= MAX_CHALLENGES {
            self.drop_oldest(None);
        }
        let mut c = [0u8; CHALLENGE_LEN];
        rng.fill_bytes(&mut c);
        self.next += 1;
        self.issued.insert(c, (peer.to_vec(), now, self.next));
        c
    }

    /// Spend `challenge` if it was issued to `peer` and has not expired;
    /// whether it was. A challenge named by another peer stays (that peer
    /// cannot have seen it from the host).
    pub fn redeem(&mut self, peer: &[u8], challenge: &[u8; CHALLENGE_LEN], now: u64) -> bool {
        match self.issued.get(challenge) {
            Some((p, at, _)) if p == peer => {
                let fresh = *at <= now && now < at.saturating_add(CHALLENGE_TTL_SECS);
                self.issued.remove(challenge);
                fresh
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_challenge_is_spent_once_by_its_peer_within_its_time() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let mut ch = Challenges::new();
        let c = ch.issue(b"alice", 100, &mut rng);
        assert!(!ch.redeem(b"mallory", &c, 100), "another peer");
        assert!(ch.redeem(b"alice", &c, 159));
        assert!(!ch.redeem(b"alice", &c, 159), "spent");
        let late = ch.issue(b"alice", 200, &mut rng);
        assert!(!ch.redeem(b"alice", &late, 260), "expired");
        assert!(ch.is_empty());
    }

    #[test]
    fn challenges_are_bounded_per_peer_and_in_all() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let mut ch = Challenges::new();
        let first = ch.issue(b"p", 0, &mut rng);
        for _ in 0..MAX_CHALLENGES_PER_PEER {
            ch.issue(b"p", 0, &mut rng);
        }
        assert_eq!(ch.len(), MAX_CHALLENGES_PER_PEER);
        assert!(!ch.redeem(b"p", &first, 0), "the oldest was dropped");
        for i in 0..MAX_CHALLENGES as u32 + 10 {
            ch.issue(&i.to_be_bytes(), 1, &mut rng);
        }
        assert_eq!(ch.len(), MAX_CHALLENGES);
    }

    #[test]
    fn a_signature_is_bound_to_host_client_request_and_key() {
        let k = MailboxKey::from_seed(&[7; 32]);
        let other = MailboxKey::from_seed(&[8; 32]);
        let sigs = sign(std::slice::from_ref(&k), b"host", b"client", b"req").expect("sign");
        let pk = [k.public_key()];
        assert_eq!(verify(&pk, &sigs, b"host", b"client", b"req"), Ok(()));
        for (h, c, r) in [
            (&b"host2"[..], &b"client"[..], &b"req"[..]),
            (b"host", b"client2", b"req"),
            (b"host", b"client", b"req2"),
            // The lengths are framed: moving a byte between fields fails.
            (b"hos", b"tclient", b"req"),
        ] {
            assert_eq!(
                verify(&pk, &sigs, h, c, r),
                Err(AuthError::BadSignature),
                "{h:?} {c:?} {r:?}"
            );
        }
        assert_eq!(
            verify(&[other.public_key()], &sigs, b"host", b"client", b"req"),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&pk, &[], b"host", b"client", b"req"),
            Err(AuthError::Count)
        );
        assert_eq!(
            auth_message(&[0; 256], b"c", b""),
            Err(AuthError::PeerIdTooLong)
        );
    }
}
