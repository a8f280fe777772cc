//! Short invite codes: an invite handed over in person as ten characters
//! that can be read out or typed, instead of the whole code or its QR code
//! (`docs/circle.md` §2.3).
//!
//! The inviter draws a random [`ShortCode`] (10 Crockford base32
//! characters, 50 bits) and derives from it, with PBKDF2-HMAC-SHA256
//! ([`SHORT_CODE_ITERATIONS`] rounds, salt [`SHORT_CODE_SALT`]), 64 bytes:
//! the seed of a [`MailboxKey`] (the first 32) and a ChaCha20-Poly1305 key
//! (the last 32). It seals its full invite code into a blob the size of an
//! envelope and puts it into that key's mailbox at its mailbox hosts. The
//! invitee types the short code, derives the same keys, fetches that
//! mailbox from its own hosts (proving the key, as for any mailbox), opens
//! the blob, acknowledges (deletes) it and accepts the invite as usual;
//! the safety numbers are compared as for any invite.
//!
//! ```text
//! blob      = 0x01 (version) || ChaCha20-Poly1305(key, nonce = 12 zero bytes,
//!                                                 aad = 0x01, plaintext)
//! plaintext = length (2, big-endian) || invite code (ASCII) || zero bytes
//! ```
//!
//! The blob is exactly [`SMALL_ENVELOPE_LEN`] bytes when the code fits,
//! else [`LARGE_ENVELOPE_LEN`], so a host sees an envelope like any other.
//! A zero nonce is safe: a key seals one blob (the short code is random
//! per invite). A host holding the blob must find the code among 2⁵⁰, each
//! guess costing the PBKDF2 rounds; the invite inside expires within 15
//! minutes by default (a day at most).

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use pbkdf2::pbkdf2_hmac;
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::circle::envelope::{LARGE_ENVELOPE_LEN, SMALL_ENVELOPE_LEN};
use crate::circle::invite::MAX_CODE_CHARS;
use crate::circle::mailbox::MailboxKey;

/// Characters of a short code.
pub const SHORT_CODE_CHARS: usize = 10;
/// PBKDF2-HMAC-SHA256 rounds from a short code to its keys.
pub const SHORT_CODE_ITERATIONS: u32 = 100_000;
/// PBKDF2's salt.
pub const SHORT_CODE_SALT: &[u8] = b"ronde/circle/v1/short-invite";
/// The blob's version byte (also its AEAD associated data).
pub const BLOB_VERSION: u8 = 0x01;
const TAG_LEN: usize = 16;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Why a short code or a blob was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShortInviteError {
    /// Not ten characters of Crockford base32 (after skipping `-` and
    /// spaces).
    #[error("a short code is 10 letters and digits")]
    NotAShortCode,
    /// The blob is not an envelope-sized blob of a known version.
    #[error("not a short invite blob")]
    BadBlob,
    /// The blob does not open with this code's key (another mailbox's
    /// content, or tampered with).
    #[error("the short invite does not open with this code")]
    WrongKey,
    /// The invite code is longer than a large blob holds, or not ASCII.
    #[error("the invite code cannot be sealed into a short invite")]
    TooLong,
}

/// A short invite code: 50 random bits, shown as `ABCDE-FGHJK`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShortCode(u64);

impl fmt::Debug for ShortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShortCode(…)")
    }
}

impl ShortCode {
    /// A new random code.
    pub fn random(rng: &mut impl CryptoRngCore) -> ShortCode {
        ShortCode(rng.next_u64() >> 14)
    }

    /// Read a typed code: case, `-` and whitespace ignored, `i`/`l` read as
    /// `1` and `o` as `0`; exactly ten characters of Crockford base32.
    pub fn parse(text: &str) -> Result<ShortCode, ShortInviteError> {
        if text.len() > 64 {
            return Err(ShortInviteError::NotAShortCode);
        }
        let mut v: u64 = 0;
        let mut n = 0;
        for c in text.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let c = match c.to_ascii_lowercase() {
                'i' | 'l' => '1',
                'o' => '0',
                c => c,
            };
            let d = ALPHABET
                .iter()
                .position(|a| char::from(*a) == c)
                .ok_or(ShortInviteError::NotAShortCode)?;
            n += 1;
            if n > SHORT_CODE_CHARS {
                return Err(ShortInviteError::NotAShortCode);
            }
            v = (v << 5) | d as u64;
        }
        if n != SHORT_CODE_CHARS {
            return Err(ShortInviteError::NotAShortCode);
        }
        Ok(ShortCode(v))
    }

    /// The canonical lower-case form, ten characters (what PBKDF2 reads).
    pub fn canonical(&self) -> String {
        (0..SHORT_CODE_CHARS)
            .rev()
            .map(|i| char::from(ALPHABET[((self.0 >> (5 * i)) & 31) as usize]))
            .collect()
    }

    /// The keys of this code's rendezvous, at `iterations` PBKDF2 rounds
    /// ([`SHORT_CODE_ITERATIONS`] on the network; fewer only in tests).
    /// Slow on purpose: call it off any event loop.
    pub fn keys_with(&self, iterations: u32) -> RendezvousKeys {
        let mut out = Zeroizing::new([0u8; 64]);
        pbkdf2_hmac::<Sha256>(
            self.canonical().as_bytes(),
            SHORT_CODE_SALT,
            iterations.max(1),
            out.as_mut(),
        );
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&out[..32]);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&out[32..]);
        RendezvousKeys {
            mailbox: MailboxKey::from_seed(&seed),
            key,
        }
    }

    /// [`Self::keys_with`] at [`SHORT_CODE_ITERATIONS`].
    pub fn keys(&self) -> RendezvousKeys {
        self.keys_with(SHORT_CODE_ITERATIONS)
    }
}

impl fmt::Display for ShortCode {
    /// `ABCDE-FGHJK`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.canonical().to_ascii_uppercase();
        write!(f, "{}-{}", &c[..5], &c[5..])
    }
}

/// What a short code gives: the mailbox where the blob waits, and the key
/// that opens it. Wiped when dropped.
#[derive(Clone)]
pub struct RendezvousKeys {
    /// The mailbox's key (its address is where the blob is put).
    pub mailbox: MailboxKey,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for RendezvousKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RendezvousKeys({:?})", self.mailbox)
    }
}

impl RendezvousKeys {
    /// Seal the full invite `code` into a blob.
    pub fn seal(&self, code: &str) -> Result<Vec<u8>, ShortInviteError> {
        if !code.is_ascii() || code.len() > MAX_CODE_CHARS {
            return Err(ShortInviteError::TooLong);
        }
        let len = if 1 + 2 + code.len() + TAG_LEN <= SMALL_ENVELOPE_LEN {
            SMALL_ENVELOPE_LEN
        } else if 1 + 2 + code.len() + TAG_LEN <= LARGE_ENVELOPE_LEN {
            LARGE_ENVELOPE_LEN
        } else {
            return Err(ShortInviteError::TooLong);
        };
        let mut plain = Zeroizing::new(vec![0u8; len - 1 - TAG_LEN]);
        let n = u16::try_from(code.len()).map_err(|_| ShortInviteError::TooLong)?;
        plain[..2].copy_from_slice(&n.to_be_bytes());
        plain[2..2 + code.len()].copy_from_slice(code.as_bytes());
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&[0u8; 12]),
                Payload {
                    msg: &plain,
                    aad: &[BLOB_VERSION],
                },
            )
            .map_err(|_| ShortInviteError::TooLong)?;
        let mut blob = Vec::with_capacity(len);
        blob.push(BLOB_VERSION);
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    /// Open a blob: the full invite code inside.
    pub fn open(&self, blob: &[u8]) -> Result<String, ShortInviteError> {
        if blob.len() != SMALL_ENVELOPE_LEN && blob.len() != LARGE_ENVELOPE_LEN {
            return Err(ShortInviteError::BadBlob);
        }
        if blob[0] != BLOB_VERSION {
            return Err(ShortInviteError::BadBlob);
        }
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(
                    Nonce::from_slice(&[0u8; 12]),
                    Payload {
                        msg: &blob[1..],
                        aad: &[BLOB_VERSION],
                    },
                )
                .map_err(|_| ShortInviteError::WrongKey)?,
        );
        let n = usize::from(u16::from_be_bytes([plain[0], plain[1]]));
        let body = plain.get(2..2 + n).ok_or(ShortInviteError::BadBlob)?;
        if plain[2 + n..].iter().any(|b| *b != 0) {
            return Err(ShortInviteError::BadBlob);
        }
        let code = std::str::from_utf8(body).map_err(|_| ShortInviteError::BadBlob)?;
        if !code.is_ascii() {
            return Err(ShortInviteError::BadBlob);
        }
        Ok(code.to_owned())
    }

    /// The ChaCha20-Poly1305 key (for test vectors).
    pub fn sealing_key(&self) -> &[u8; 32] {
        &self.key
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(self.key.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }

    #[test]
    fn a_code_reads_back_however_it_is_typed() {
        let c = ShortCode::random(&mut rng());
        let shown = c.to_string();
        assert_eq!(shown.len(), 11);
        assert_eq!(ShortCode::parse(&shown), Ok(c));
        assert_eq!(ShortCode::parse(&shown.to_lowercase()), Ok(c));
        let spaced: String = c.canonical().chars().flat_map(|x| [x, ' ']).collect();
        assert_eq!(ShortCode::parse(&spaced), Ok(c));
        assert_eq!(
            ShortCode::parse("0O1IL-abcde").map(|c| c.canonical()),
            Ok("00111abcde".to_owned())
        );
        for bad in [
            "",
            "ABCDE-FGHJ",
            "ABCDE-FGHJKM",
            "ABCDE-FGHJU",
            "ronde1:abc",
        ] {
            assert_eq!(
                ShortCode::parse(bad),
                Err(ShortInviteError::NotAShortCode),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_sealed_invite_opens_only_with_its_code() {
        let c = ShortCode::random(&mut rng());
        let k = c.keys_with(10);
        let code = "ronde1:abcdefghjk0123456789";
        let blob = k.seal(code).expect("seal");
        assert_eq!(blob.len(), SMALL_ENVELOPE_LEN);
        assert_eq!(k.open(&blob).as_deref(), Ok(code));
        let other = ShortCode::parse("ZZZZZ-ZZZZZ").expect("code").keys_with(10);
        assert_eq!(other.open(&blob), Err(ShortInviteError::WrongKey));
        let mut tampered = blob.clone();
        tampered[40] ^= 1;
        assert_eq!(k.open(&tampered), Err(ShortInviteError::WrongKey));
        let mut v2 = blob.clone();
        v2[0] = 2;
        assert_eq!(k.open(&v2), Err(ShortInviteError::BadBlob));
        assert_eq!(k.open(&blob[1..]), Err(ShortInviteError::BadBlob));
        // A long code takes a large blob.
        let long = format!("ronde1:{}", "a".repeat(1500));
        let blob = k.seal(&long).expect("seal");
        assert_eq!(blob.len(), LARGE_ENVELOPE_LEN);
        assert_eq!(k.open(&blob), Ok(long));
        assert_eq!(k.seal(&"a".repeat(3000)), Err(ShortInviteError::TooLong));
    }

    #[test]
    fn the_keys_depend_on_the_code_only() {
        let c = ShortCode::parse("ABCDE-FGHJK").expect("code");
        assert_eq!(
            c.keys_with(10).mailbox.address(),
            ShortCode::parse("abcde fghjk")
                .expect("code")
                .keys_with(10)
                .mailbox
                .address()
        );
        assert_ne!(
            c.keys_with(10).mailbox.address(),
            c.keys_with(11).mailbox.address()
        );
    }
}
