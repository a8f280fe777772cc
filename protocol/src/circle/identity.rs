//! A device's long-term identity in the trusted circle.
//!
//! An [`Identity`] is two secret keys: an Ed25519 key that signs everything
//! the device says to its contacts, and an X25519 key that its contacts
//! encrypt to (HPKE) and that derives per-pair mailbox secrets. Neither is
//! ever used for anonymous reports: reports are signed by one-time keys.
//!
//! The secret identity serializes to 65 bytes (`0x01 || ed25519 secret ||
//! x25519 secret`), for the node to keep in a file readable only by itself.
//! Secrets are wiped from memory when dropped.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

/// Version byte of the serialized secret identity.
pub const IDENTITY_VERSION: u8 = 1;
/// Length of the serialized secret identity.
pub const SECRET_IDENTITY_LEN: usize = 65;
/// Length of a public identity: Ed25519 key then X25519 key.
pub const PUBLIC_IDENTITY_LEN: usize = 64;
/// Domain separator of [`ContactId`].
pub const CONTACT_ID_DOMAIN: &[u8] = b"ronde/circle/v1/contact-id";
/// Domain separator of the safety-number fingerprint.
pub const SAFETY_NUMBER_DOMAIN: &[u8] = b"ronde/circle/v1/safety-number";
/// SHA-512 iterations of the safety-number fingerprint (as Signal).
pub const SAFETY_NUMBER_ITERATIONS: usize = 5200;

/// Why an identity could not be loaded or a public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not 65 bytes.
    #[error("a secret identity is {SECRET_IDENTITY_LEN} bytes, got {0}")]
    BadLength(usize),
    /// Unknown version byte.
    #[error("unsupported identity version {0}")]
    UnsupportedVersion(u8),
    /// The Ed25519 public key is not a valid point or is of small order.
    #[error("the signing key is not a valid Ed25519 public key")]
    BadSigningKey,
    /// The X25519 public key is of small order (would give an all-zero
    /// shared secret).
    #[error("the encryption key is not a valid X25519 public key")]
    BadEncryptionKey,
    /// A shared secret with this key was all zeros.
    #[error("key agreement with this contact failed")]
    KeyAgreement,
}

/// A device's secret identity. Its `Debug` shows only the public half.
pub struct Identity {
    signing: SigningKey,
    kem: StaticSecret,
    public: PublicIdentity,
}

/// The public half of an [`Identity`]: what contacts know of a device.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicIdentity {
    signing: [u8; 32],
    kem: [u8; 32],
}

/// How this device names a contact locally: `SHA-256(domain || signing key
/// || encryption key)`. Never sent on the wire in the clear.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactId(pub [u8; 32]);

impl Identity {
    /// A fresh identity.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Identity {
        let signing = SigningKey::generate(rng);
        let mut kem_bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(kem_bytes.as_mut());
        Identity::from_parts(signing, StaticSecret::from(*kem_bytes))
    }

    fn from_parts(signing: SigningKey, kem: StaticSecret) -> Identity {
        let public = PublicIdentity {
            signing: signing.verifying_key().to_bytes(),
            kem: XPublic::from(&kem).to_bytes(),
        };
        Identity {
            signing,
            kem,
            public,
        }
    }

    /// The public half.
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// The secret bytes: `0x01 || ed25519 secret (32) || x25519 secret (32)`.
    /// Wiped when dropped. Store them in a file only the node can read.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(SECRET_IDENTITY_LEN));
        v.push(IDENTITY_VERSION);
        v.extend_from_slice(self.signing.as_bytes());
        v.extend_from_slice(self.kem.as_bytes());
        v
    }

    /// Load the secret bytes written by [`Identity::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Identity, IdentityError> {
        if bytes.len() != SECRET_IDENTITY_LEN {
            return Err(IdentityError::BadLength(bytes.len()));
        }
        if bytes[0] != IDENTITY_VERSION {
            return Err(IdentityError::UnsupportedVersion(bytes[0]));
        }
        let mut sk = Zeroizing::new([0u8; 32]);
        sk.copy_from_slice(&bytes[1..33]);
        let mut xk = Zeroizing::new([0u8; 32]);
        xk.copy_from_slice(&bytes[33..65]);
        Ok(Identity::from_parts(
            SigningKey::from_bytes(&sk),
            StaticSecret::from(*xk),
        ))
    }

    /// Ed25519 signature of `msg`.
    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }

    /// The HPKE private key.
    pub(crate) fn hpke_secret(&self) -> <hpke::kem::X25519HkdfSha256 as hpke::Kem>::PrivateKey {
        let bytes = Zeroizing::new(self.kem.to_bytes());
        <<hpke::kem::X25519HkdfSha256 as hpke::Kem>::PrivateKey as hpke::Deserializable>::from_bytes(
            bytes.as_ref(),
        )
        // 32 bytes is the only length checked; cannot fail.
        .unwrap_or_else(|_| unreachable!("an X25519 secret is 32 bytes"))
    }

    /// Raw X25519 with a contact's encryption key; refuses an all-zero
    /// result.
    pub(crate) fn agree(
        &self,
        their: &PublicIdentity,
    ) -> Result<Zeroizing<[u8; 32]>, IdentityError> {
        let shared = self.kem.diffie_hellman(&XPublic::from(their.kem));
        if !shared.was_contributory() {
            return Err(IdentityError::KeyAgreement);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl PublicIdentity {
    /// A public identity from its two keys. Refuses an invalid or
    /// small-order Ed25519 key and a small-order X25519 key.
    pub fn new(signing: [u8; 32], kem: [u8; 32]) -> Result<PublicIdentity, IdentityError> {
        let vk = VerifyingKey::from_bytes(&signing).map_err(|_| IdentityError::BadSigningKey)?;
        if vk.is_weak() {
            return Err(IdentityError::BadSigningKey);
        }
        // A clamped scalar is a multiple of the cofactor, so any small-order
        // point gives the all-zero output.
        let mut probe = StaticSecret::from([0x5a; 32])
            .diffie_hellman(&XPublic::from(kem))
            .to_bytes();
        let zero = probe == [0u8; 32];
        probe.zeroize();
        if zero {
            return Err(IdentityError::BadEncryptionKey);
        }
        Ok(PublicIdentity { signing, kem })
    }

    /// The Ed25519 public key.
    pub fn signing_key(&self) -> &[u8; 32] {
        &self.signing
    }

    /// The X25519 public key.
    pub fn encryption_key(&self) -> &[u8; 32] {
        &self.kem
    }

    /// The 64 canonical bytes: signing key then encryption key.
    pub fn to_bytes(&self) -> [u8; PUBLIC_IDENTITY_LEN] {
        let mut b = [0u8; PUBLIC_IDENTITY_LEN];
        b[..32].copy_from_slice(&self.signing);
        b[32..].copy_from_slice(&self.kem);
        b
    }

    /// Parse and validate 64 canonical bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicIdentity, IdentityError> {
        if bytes.len() != PUBLIC_IDENTITY_LEN {
            return Err(IdentityError::BadLength(bytes.len()));
        }
        let mut s = [0u8; 32];
        let mut k = [0u8; 32];
        s.copy_from_slice(&bytes[..32]);
        k.copy_from_slice(&bytes[32..]);
        PublicIdentity::new(s, k)
    }

    /// The local name of this identity.
    pub fn id(&self) -> ContactId {
        ContactId(
            Sha256::new_with_prefix(CONTACT_ID_DOMAIN)
                .chain_update(self.signing)
                .chain_update(self.kem)
                .finalize()
                .into(),
        )
    }

    /// Strict Ed25519 verification of `sig` over `msg`.
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        VerifyingKey::from_bytes(&self.signing)
            .map(|vk| vk.verify_strict(msg, &Signature::from_bytes(sig)).is_ok())
            .unwrap_or(false)
    }

    /// The HPKE public key.
    pub(crate) fn hpke_public(&self) -> <hpke::kem::X25519HkdfSha256 as hpke::Kem>::PublicKey {
        <<hpke::kem::X25519HkdfSha256 as hpke::Kem>::PublicKey as hpke::Deserializable>::from_bytes(
            &self.kem,
        )
        .unwrap_or_else(|_| unreachable!("an X25519 public key is 32 bytes"))
    }

    /// 30 digits that only depend on this identity.
    fn fingerprint_digits(&self) -> String {
        let mut h: [u8; 64] = Sha512::new_with_prefix(SAFETY_NUMBER_DOMAIN)
            .chain_update(self.signing)
            .chain_update(self.kem)
            .finalize()
            .into();
        for _ in 1..SAFETY_NUMBER_ITERATIONS {
            h = Sha512::new_with_prefix(h)
                .chain_update(self.signing)
                .chain_update(self.kem)
                .finalize()
                .into();
        }
        let mut out = String::with_capacity(30);
        for chunk in h[..30].chunks_exact(5) {
            let mut n = [0u8; 8];
            n[3..].copy_from_slice(chunk);
            out.push_str(&format!("{:05}", u64::from_be_bytes(n) % 100_000));
        }
        out
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicIdentity({})", &hex::encode(self.to_bytes())[..16])
    }
}

impl fmt::Display for PublicIdentity {
    /// 128 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_bytes()))
    }
}

impl FromStr for PublicIdentity {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut b = [0u8; PUBLIC_IDENTITY_LEN];
        hex::decode_to_slice(s, &mut b).map_err(|_| IdentityError::BadLength(s.len() / 2))?;
        PublicIdentity::from_bytes(&b)
    }
}

impl serde::Serialize for PublicIdentity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for PublicIdentity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

crate::hex_id::hex_id!(ContactId, BadContactId, "contact id");

/// Sixty digits two people read to each other (or compare as a QR code) to
/// be sure each holds the other's real keys. The same on both phones.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SafetyNumber(String);

impl SafetyNumber {
    /// The 60 digits without spaces.
    pub fn digits(&self) -> &str {
        &self.0
    }
    /// The 12 groups of 5 digits.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        (0..12).map(move |i| &self.0[i * 5..i * 5 + 5])
    }
}

impl fmt::Display for SafetyNumber {
    /// 12 groups of 5 digits separated by spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.groups().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(g)?;
        }
        Ok(())
    }
}

impl fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafetyNumber({self})")
    }
}

/// The safety number of two identities; `safety_number(a, b) ==
/// safety_number(b, a)`. Each identity gives 30 digits (an iterated SHA-512
/// fingerprint of both its keys); the smaller string comes first.
pub fn safety_number(a: &PublicIdentity, b: &PublicIdentity) -> SafetyNumber {
    let da = a.fingerprint_digits();
    let db = b.fingerprint_digits();
    let (first, second) = if da <= db { (da, db) } else { (db, da) };
    SafetyNumber(first + &second)
}
