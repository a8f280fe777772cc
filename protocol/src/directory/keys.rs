//! Keys and ids of the directory: the city's and the places' signing keys
//! ([`DirectoryKey`], [`DirectoryPublicKey`], signatures with a domain
//! separator, checked strictly) and the ids of places and mediators
//! ([`PlaceId`]), with their hex and serde forms.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use super::error::DirectoryError;

/// Length of an Ed25519 signature.
pub(super) const SIG_LEN: usize = 64;

/// A secret signing key: the city's (signs directories) or a place's (signs
/// heartbeats). Its `Debug` shows only the public half.
pub struct DirectoryKey(SigningKey);

/// The public half of a [`DirectoryKey`], 32 bytes, shown as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DirectoryPublicKey(pub [u8; 32]);

impl DirectoryKey {
    /// A fresh key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> DirectoryKey {
        DirectoryKey(SigningKey::generate(rng))
    }
    /// The key of a 32-byte secret (as written by [`DirectoryKey::to_bytes`]).
    pub fn from_bytes(secret: &[u8; 32]) -> DirectoryKey {
        DirectoryKey(SigningKey::from_bytes(secret))
    }
    /// The 32-byte secret. Keep it in a file only its owner can read.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// The public half.
    pub fn public(&self) -> DirectoryPublicKey {
        DirectoryPublicKey(self.0.verifying_key().to_bytes())
    }
    /// Sign `domain || msg`.
    pub(super) fn sign(&self, domain: &[u8], msg: &[u8]) -> [u8; SIG_LEN] {
        let mut input = Vec::with_capacity(domain.len() + msg.len());
        input.extend_from_slice(domain);
        input.extend_from_slice(msg);
        self.0.sign(&input).to_bytes()
    }
}

impl fmt::Debug for DirectoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DirectoryKey(public {})", self.public())
    }
}

/// Whether `sig` is a strict Ed25519 signature by `key` over `domain || msg`.
pub(super) fn verify_sig(key: &[u8; 32], domain: &[u8], msg: &[u8], sig: &[u8; SIG_LEN]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(key) else {
        return false;
    };
    let mut input = Vec::with_capacity(domain.len() + msg.len());
    input.extend_from_slice(domain);
    input.extend_from_slice(msg);
    vk.verify_strict(&input, &Signature::from_bytes(sig))
        .is_ok()
}

impl DirectoryPublicKey {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Whether the bytes are a valid Ed25519 point (not of small order).
    pub fn is_valid(&self) -> bool {
        VerifyingKey::from_bytes(&self.0)
            .map(|k| !k.is_weak())
            .unwrap_or(false)
    }
}

impl fmt::Display for DirectoryPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for DirectoryPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DirectoryPublicKey({})", self.to_hex())
    }
}

impl FromStr for DirectoryPublicKey {
    type Err = DirectoryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut a = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut a).map_err(|_| DirectoryError::BadKey)?;
        let k = DirectoryPublicKey(a);
        if k.is_valid() {
            Ok(k)
        } else {
            Err(DirectoryError::BadKey)
        }
    }
}

/// The id of a place or mediator: 16 random bytes chosen by the city, shown
/// as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaceId(pub [u8; 16]);

impl PlaceId {
    /// A fresh random id.
    pub fn generate(rng: &mut impl CryptoRngCore) -> PlaceId {
        let mut a = [0u8; 16];
        rng.fill_bytes(&mut a);
        PlaceId(a)
    }
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for PlaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PlaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlaceId({})", self.to_hex())
    }
}

/// A string that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an id is 32 hexadecimal digits")]
pub struct BadPlaceId;

impl FromStr for PlaceId {
    type Err = BadPlaceId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut a = [0u8; 16];
        hex::decode_to_slice(s, &mut a).map_err(|_| BadPlaceId)?;
        Ok(PlaceId(a))
    }
}

macro_rules! serde_via_str {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_via_str!(PlaceId);

serde_via_str!(DirectoryPublicKey);
