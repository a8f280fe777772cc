//! Invite codes: how a person hands their identity to someone they trust.
//!
//! ```text
//! ronde1:<Crockford base32 of (payload || checksum)>
//! ```
//!
//! The payload (version 1, big-endian; `docs/circle.md` §2):
//!
//! | field          | size    | notes                                        |
//! |----------------|---------|----------------------------------------------|
//! | version        | 1       | `0x01`                                       |
//! | signing key    | 32      | Ed25519                                      |
//! | encryption key | 32      | X25519                                       |
//! | token          | 16      | random; names this invite, single use        |
//! | expires        | 4       | minutes since the Unix epoch                 |
//! | name length    | 1       | ≤ 64                                         |
//! | name           | n       | UTF-8, no control characters                 |
//! | address count  | 1       | ≤ 4                                          |
//! | address        | 1 + n   | length (1..=200) then printable ASCII        |
//!
//! The checksum is the first 4 bytes of `SHA-256("ronde/circle/v1/invite-checksum"
//! || payload)`, so a mistyped code fails with [`InviteError::Checksum`]
//! (a random error slips through with probability 2⁻³²).
//!
//! Decoding ignores case, `-` and whitespace and reads `i`/`l` as `1` and
//! `o` as `0`. [`Invite::to_qr_string`] gives the upper-case form, which QR
//! codes store compactly in alphanumeric mode.

use std::fmt;

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

use crate::circle::base32::{self, Base32Error};
use crate::circle::identity::{IdentityError, PublicIdentity};
use crate::circle::mailbox::MailboxKey;
use crate::circle::wire::{check_text, read_short_text, DecodeError, Reader};
use crate::cursor::Put;

/// What every invite code starts with.
pub const INVITE_PREFIX: &str = "ronde1:";
/// Version byte of the payload.
pub const INVITE_VERSION: u8 = 1;
/// Longest display name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 64;
/// Most addresses an invite or accept carries.
pub const MAX_ADDRESSES: usize = 4;
/// Longest address, in bytes.
pub const MAX_ADDRESS_LEN: usize = 200;
/// Longest payload (without checksum).
pub const MAX_INVITE_PAYLOAD: usize =
    1 + 64 + 16 + 4 + 1 + MAX_NAME_LEN + 1 + MAX_ADDRESSES * (1 + MAX_ADDRESS_LEN);
/// Longest string [`Invite::from_code`] looks at.
pub const MAX_CODE_CHARS: usize = 4096;
/// Domain separator of the checksum.
pub const CHECKSUM_DOMAIN: &[u8] = b"ronde/circle/v1/invite-checksum";
const CHECKSUM_LEN: usize = 4;

/// The random token that names one invite. The author keeps it to
/// recognise the [`crate::circle::Message::Accept`] that answers it. It
/// also names the relation that accept creates (every envelope of it
/// carries the token, see [`crate::circle::envelope`]); the all-zero token
/// is the relation of contacts made before envelopes carried one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InviteToken(pub [u8; 16]);

impl InviteToken {
    /// A fresh token.
    pub fn random(rng: &mut impl CryptoRngCore) -> InviteToken {
        let mut t = [0u8; 16];
        rng.fill_bytes(&mut t);
        InviteToken(t)
    }
}

impl serde::Serialize for InviteToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for InviteToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut t = [0u8; 16];
        hex::decode_to_slice(&s, &mut t).map_err(serde::de::Error::custom)?;
        Ok(InviteToken(t))
    }
}

impl fmt::Debug for InviteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InviteToken({})", hex::encode(self.0))
    }
}

/// A decoded invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The author's identity.
    pub identity: PublicIdentity,
    /// Names this invite.
    pub token: InviteToken,
    /// After this time (Unix seconds, a whole minute) the author refuses
    /// accepts.
    pub expires_at: u64,
    /// The author's display name, as they chose it (not verified).
    pub name: String,
    /// How to reach the author: opaque multiaddr strings.
    pub addresses: Vec<String>,
}

/// Why an invite code was refused. The messages are meant for the person
/// who typed the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// Does not start with `ronde1:`.
    #[error("this is not a Ronde invite code (it should start with \"{INVITE_PREFIX}\")")]
    BadPrefix,
    /// A character that cannot appear in a code.
    #[error("the character {ch:?} at position {position} cannot appear in an invite code")]
    BadCharacter {
        /// The character.
        ch: char,
        /// Its index (in characters) in the input.
        position: usize,
    },
    /// Too long to be an invite code.
    #[error("the code is too long to be an invite code")]
    TooLong,
    /// Too short, or a character missing or extra.
    #[error("the code is incomplete or has a character too many or too few")]
    BadLength,
    /// The checksum does not match: a character was mistyped.
    #[error("the code has a typo: please check it character by character")]
    Checksum,
    /// A version this app does not know.
    #[error("this invite was made by a newer version of Ronde (format {0})")]
    UnsupportedVersion(u8),
    /// A field is malformed (after the checksum matched).
    #[error("the invite is malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// A key in the invite is not valid.
    #[error("the invite holds an invalid key: {0}")]
    BadKey(#[from] IdentityError),
}

/// A display name: ≤ 64 bytes, no control characters.
pub(crate) fn check_name(name: &str) -> Result<(), DecodeError> {
    check_text(name, "name", MAX_NAME_LEN, false)
}

/// A count-prefixed list of at most [`MAX_ADDRESSES`] addresses, each a
/// short text that passes [`check_address`].
pub(crate) fn read_addresses(r: &mut Reader<'_>) -> Result<Vec<String>, DecodeError> {
    let n = usize::from(r.u8()?);
    if n > MAX_ADDRESSES {
        return Err(DecodeError::FieldTooLong {
            field: "addresses",
            len: n,
            max: MAX_ADDRESSES,
        });
    }
    let mut addresses = Vec::with_capacity(n);
    for _ in 0..n {
        let a = read_short_text(r, "address", MAX_ADDRESS_LEN)?;
        check_address(&a)?;
        addresses.push(a);
    }
    Ok(addresses)
}

/// An address: 1..=200 bytes of printable ASCII without spaces.
pub(crate) fn check_address(a: &str) -> Result<(), DecodeError> {
    if a.is_empty() || a.len() > MAX_ADDRESS_LEN {
        return Err(DecodeError::FieldTooLong {
            field: "address",
            len: a.len(),
            max: MAX_ADDRESS_LEN,
        });
    }
    if !a.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DecodeError::BadText("address"));
    }
    Ok(())
}

fn checksum(payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let h = Sha256::new_with_prefix(CHECKSUM_DOMAIN)
        .chain_update(payload)
        .finalize();
    let mut c = [0u8; CHECKSUM_LEN];
    c.copy_from_slice(&h[..CHECKSUM_LEN]);
    c
}

impl Invite {
    /// Checks the limits on name and addresses.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_name(&self.name)?;
        if self.addresses.len() > MAX_ADDRESSES {
            return Err(DecodeError::FieldTooLong {
                field: "addresses",
                len: self.addresses.len(),
                max: MAX_ADDRESSES,
            });
        }
        self.addresses.iter().try_for_each(|a| check_address(a))?;
        if !self.expires_at.is_multiple_of(60) || self.expires_at / 60 > u64::from(u32::MAX) {
            return Err(DecodeError::BadValue("expires"));
        }
        Ok(())
    }

    /// The payload bytes (without checksum).
    pub fn payload(&self) -> Result<Vec<u8>, DecodeError> {
        self.validate()?;
        let mut b = Vec::with_capacity(128);
        b.put_u8(INVITE_VERSION);
        b.put_slice(&self.identity.to_bytes());
        b.put_slice(&self.token.0);
        let minutes = u32::try_from(self.expires_at / 60).unwrap_or(u32::MAX);
        b.put_u32(minutes);
        b.put_short_str(&self.name);
        b.put_u8(u8::try_from(self.addresses.len()).unwrap_or(u8::MAX));
        for a in &self.addresses {
            b.put_short_str(a);
        }
        Ok(b)
    }

    /// The code, lower case: `ronde1:…`. Invites built by
    /// [`crate::circle::Circle::create_invite`] are always valid; an invite
    /// built by hand with over-long fields gives an empty code body, which no
    /// decoder accepts.
    pub fn to_code(&self) -> String {
        let mut b = self.payload().unwrap_or_default();
        if !b.is_empty() {
            let c = checksum(&b);
            b.put_slice(&c);
        }
        format!("{INVITE_PREFIX}{}", base32::encode(&b))
    }

    /// The code in upper case (`RONDE1:…`), for a QR code in alphanumeric
    /// mode.
    pub fn to_qr_string(&self) -> String {
        self.to_code().to_ascii_uppercase()
    }

    /// Decode a code, typed or scanned.
    pub fn from_code(code: &str) -> Result<Invite, InviteError> {
        if code.len() > MAX_CODE_CHARS {
            return Err(InviteError::TooLong);
        }
        let code = code.trim();
        let body = match code.get(..INVITE_PREFIX.len()) {
            Some(p) if p.eq_ignore_ascii_case(INVITE_PREFIX) => &code[INVITE_PREFIX.len()..],
            _ => return Err(InviteError::BadPrefix),
        };
        let bytes = base32::decode(body).map_err(|e| match e {
            Base32Error::BadCharacter(ch, i) => InviteError::BadCharacter {
                ch,
                position: i + INVITE_PREFIX.len(),
            },
            Base32Error::NonCanonical => InviteError::BadLength,
        })?;
        if bytes.len() > MAX_INVITE_PAYLOAD + CHECKSUM_LEN {
            return Err(InviteError::TooLong);
        }
        if bytes.len() < 1 + CHECKSUM_LEN {
            return Err(InviteError::BadLength);
        }
        let (payload, check) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if checksum(payload) != check {
            return Err(InviteError::Checksum);
        }
        Invite::from_payload(payload)
    }

    /// Parse the payload bytes (without checksum).
    pub fn from_payload(payload: &[u8]) -> Result<Invite, InviteError> {
        if payload.len() > MAX_INVITE_PAYLOAD {
            return Err(InviteError::TooLong);
        }
        let mut r = Reader::new(payload);
        let version = r.u8()?;
        if version != INVITE_VERSION {
            return Err(InviteError::UnsupportedVersion(version));
        }
        let identity = PublicIdentity::from_bytes(r.take(64)?)?;
        let token = InviteToken(r.array()?);
        let expires_at = u64::from(r.u32()?) * 60;
        let name = read_short_text(&mut r, "name", MAX_NAME_LEN)?;
        check_name(&name)?;
        let addresses = read_addresses(&mut r)?;
        r.finish()?;
        Ok(Invite {
            identity,
            token,
            expires_at,
            name,
            addresses,
        })
    }

    /// Whether the invite has expired at `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// The mailbox where the author collects accepts of this invite (for
    /// when the acceptor cannot dial the author directly):
    /// the address of [`MailboxKey::for_invite`]. Only holders of the
    /// invite know it, and only they can fetch from it.
    pub fn mailbox_address(&self) -> [u8; 32] {
        invite_mailbox(&self.token)
    }
}

/// The mailbox address of an invite token (see [`Invite::mailbox_address`]).
pub fn invite_mailbox(token: &InviteToken) -> [u8; 32] {
    MailboxKey::for_invite(&token.0).address()
}
