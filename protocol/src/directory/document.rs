//! The directory document (`docs/protocol.md` §7.2): a city's
//! [`Directory`] of places, mediators and heartbeats, its limits and
//! canonical order, and how the city signs it. Verifying one is
//! [`super::verify_directory`]'s job.

use super::entries::{
    check_text, decode_mediator, decode_place, encode_mediator, encode_place, Heartbeat, Mediator,
    SafePlace,
};
use super::error::DirectoryError;
use super::keys::{DirectoryKey, PlaceId, SIG_LEN};
use super::limits::{
    DIRECTORY_CLOCK_SKEW_SECS, MAX_CITY_LEN, MAX_DIRECTORY_SIZE, MAX_MEDIATORS, MAX_PLACES,
    MAX_RELAYS, MAX_TOKEN_KEYS,
};
use super::relays::{decode_relay, encode_relay, RelayEntry};
use super::wire::{document_version, Reader, DIRECTORY_DOCUMENT_VERSION};
use crate::cursor::Put;
use crate::token::TokenKey;

/// Domain separator of the city's signature over a directory.
pub const DIRECTORY_SIGN_DOMAIN: &[u8] = b"ronde/directory/v1/sig";

/// The whole directory of a city.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// The city's name.
    pub city: String,
    /// Grows with every new document; verifiers refuse a lower one.
    pub serial: u64,
    /// When this document was signed.
    pub issued_at: u64,
    /// After this, the document is refused: fetch a newer one.
    pub expires_at: u64,
    /// Safe places, sorted by id, no duplicates.
    pub places: Vec<SafePlace>,
    /// Mediators, sorted by id, no duplicates.
    pub mediators: Vec<Mediator>,
    /// The latest heartbeat of places that have a key, sorted by place id,
    /// at most one per place.
    pub heartbeats: Vec<Heartbeat>,
    /// The city's relays, sorted by peer id bytes, no duplicates.
    pub relays: Vec<RelayEntry>,
    /// The city's token keys (`docs/protocol.md` §8.5), sorted by period
    /// start, one per period: nodes verify tokened reports with them.
    pub token_keys: Vec<TokenKey>,
}

fn sorted_unique<T>(items: &[T], key: impl Fn(&T) -> PlaceId) -> bool {
    items.windows(2).all(|w| key(&w[0]) < key(&w[1]))
}

impl Directory {
    /// Check limits, order and every entry; the checks [`Directory::sign`]
    /// and the decoder share.
    pub fn check(&self) -> Result<(), DirectoryError> {
        check_text("city", &self.city, MAX_CITY_LEN, false)?;
        if self.expires_at <= self.issued_at {
            return Err(DirectoryError::BadTimes(
                "expires_at is not after issued_at",
            ));
        }
        for (what, n, max) in [
            ("places", self.places.len(), MAX_PLACES),
            ("mediators", self.mediators.len(), MAX_MEDIATORS),
            ("heartbeats", self.heartbeats.len(), MAX_PLACES),
            ("relays", self.relays.len(), MAX_RELAYS),
            ("token_keys", self.token_keys.len(), MAX_TOKEN_KEYS),
        ] {
            if n > max {
                return Err(DirectoryError::TooMany { what, n, max });
            }
        }
        if !sorted_unique(&self.places, |p| p.id) {
            return Err(DirectoryError::NotCanonical(
                "places not sorted by id or repeated",
            ));
        }
        if !sorted_unique(&self.mediators, |m| m.id) {
            return Err(DirectoryError::NotCanonical(
                "mediators not sorted by id or repeated",
            ));
        }
        if !sorted_unique(&self.heartbeats, |h| h.place) {
            return Err(DirectoryError::NotCanonical(
                "heartbeats not sorted by place or repeated",
            ));
        }
        if !self.relays.windows(2).all(|w| w[0].peer < w[1].peer) {
            return Err(DirectoryError::NotCanonical(
                "relays not sorted by peer id or repeated",
            ));
        }
        if !self
            .token_keys
            .windows(2)
            .all(|w| w[0].period_start() < w[1].period_start())
        {
            return Err(DirectoryError::NotCanonical(
                "token keys not sorted by period or repeated",
            ));
        }
        for p in &self.places {
            p.check()?;
        }
        for m in &self.mediators {
            m.check()?;
        }
        for r in &self.relays {
            r.check()?;
        }
        for hb in &self.heartbeats {
            let place = self
                .place(&hb.place)
                .ok_or(DirectoryError::HeartbeatUnknownPlace)?;
            let key = place
                .heartbeat_key
                .ok_or(DirectoryError::HeartbeatUnknownPlace)?;
            if !hb.signature_holds(&key) {
                return Err(DirectoryError::HeartbeatBadSignature);
            }
            if hb.confirmed_at > self.issued_at.saturating_add(DIRECTORY_CLOCK_SKEW_SECS) {
                return Err(DirectoryError::FromFuture);
            }
        }
        Ok(())
    }

    /// The place with this id.
    pub fn place(&self, id: &PlaceId) -> Option<&SafePlace> {
        self.places
            .binary_search_by(|p| p.id.cmp(id))
            .ok()
            .and_then(|i| self.places.get(i))
    }

    /// The heartbeat of the place with this id.
    pub fn heartbeat(&self, id: &PlaceId) -> Option<&Heartbeat> {
        self.heartbeats
            .binary_search_by(|h| h.place.cmp(id))
            .ok()
            .and_then(|i| self.heartbeats.get(i))
    }

    fn body(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(256 + 300 * self.places.len());
        w.put_u8(DIRECTORY_DOCUMENT_VERSION);
        w.put_short_str(&self.city);
        w.put_u64(self.serial);
        w.put_u64(self.issued_at);
        w.put_u64(self.expires_at);
        // Counts were checked to be at most MAX_PLACES (< u16::MAX).
        let n = |len: usize| u16::try_from(len).unwrap_or(u16::MAX);
        w.put_u16(n(self.places.len()));
        for p in &self.places {
            encode_place(&mut w, p);
        }
        w.put_u16(n(self.mediators.len()));
        for m in &self.mediators {
            encode_mediator(&mut w, m);
        }
        w.put_u16(n(self.heartbeats.len()));
        for h in &self.heartbeats {
            w.put_slice(&h.place.0);
            w.put_u64(h.confirmed_at);
            w.put_slice(&h.signature);
        }
        // At most MAX_RELAYS (64).
        w.put_u8(u8::try_from(self.relays.len()).unwrap_or(u8::MAX));
        for r in &self.relays {
            encode_relay(&mut w, r);
        }
        // At most MAX_TOKEN_KEYS (4), each SPKI at most 800 bytes.
        w.put_u8(u8::try_from(self.token_keys.len()).unwrap_or(u8::MAX));
        for k in &self.token_keys {
            w.put_u64(k.period_start());
            w.put_u16(u16::try_from(k.spki().len()).unwrap_or(u16::MAX));
            w.put_slice(k.spki());
        }
        w
    }

    /// Check, encode and sign with the city key: the bytes a relay serves.
    pub fn sign(&self, city: &DirectoryKey) -> Result<Vec<u8>, DirectoryError> {
        self.check()?;
        let mut bytes = self.body();
        let sig = city.sign(DIRECTORY_SIGN_DOMAIN, &bytes);
        bytes.extend_from_slice(&sig);
        if bytes.len() > MAX_DIRECTORY_SIZE {
            return Err(DirectoryError::TooLarge {
                what: "directory",
                len: bytes.len(),
                max: MAX_DIRECTORY_SIZE,
            });
        }
        Ok(bytes)
    }

    /// Parse signed bytes without checking the city's signature or any time.
    /// Only for tools that inspect a directory; phones use
    /// [`verify_directory`](super::verify_directory).
    pub fn decode_unverified(bytes: &[u8]) -> Result<Directory, DirectoryError> {
        decode_directory(bytes).map(|(d, _)| d)
    }
}

/// Parse signed bytes into the document and the city's signature (structure
/// and field checks only).
pub(super) fn decode_directory(bytes: &[u8]) -> Result<(Directory, [u8; SIG_LEN]), DirectoryError> {
    if bytes.len() > MAX_DIRECTORY_SIZE {
        return Err(DirectoryError::TooLarge {
            what: "directory",
            len: bytes.len(),
            max: MAX_DIRECTORY_SIZE,
        });
    }
    let mut r = Reader::new(bytes);
    document_version(&mut r)?;
    let city = r.str("city")?;
    let serial = r.u64()?;
    let issued_at = r.u64()?;
    let expires_at = r.u64()?;
    let count = |r: &mut Reader<'_>, what: &'static str, max: usize| {
        let n = usize::from(r.u16()?);
        if n > max {
            return Err(DirectoryError::TooMany { what, n, max });
        }
        Ok(n)
    };
    let n = count(&mut r, "places", MAX_PLACES)?;
    let mut places = Vec::with_capacity(n);
    for _ in 0..n {
        places.push(decode_place(&mut r)?);
    }
    let n = count(&mut r, "mediators", MAX_MEDIATORS)?;
    let mut mediators = Vec::with_capacity(n);
    for _ in 0..n {
        mediators.push(decode_mediator(&mut r)?);
    }
    let n = count(&mut r, "heartbeats", MAX_PLACES)?;
    let mut heartbeats = Vec::with_capacity(n);
    for _ in 0..n {
        heartbeats.push(Heartbeat {
            place: PlaceId(r.array()?),
            confirmed_at: r.u64()?,
            signature: r.array()?,
        });
    }
    let n = usize::from(r.u8()?);
    if n > MAX_RELAYS {
        return Err(DirectoryError::TooMany {
            what: "relays",
            n,
            max: MAX_RELAYS,
        });
    }
    let mut relays = Vec::with_capacity(n);
    for _ in 0..n {
        relays.push(decode_relay(&mut r)?);
    }
    let n = usize::from(r.u8()?);
    if n > MAX_TOKEN_KEYS {
        return Err(DirectoryError::TooMany {
            what: "token_keys",
            n,
            max: MAX_TOKEN_KEYS,
        });
    }
    let mut token_keys = Vec::with_capacity(n);
    for _ in 0..n {
        let period_start = r.u64()?;
        let len = usize::from(r.u16()?);
        let spki = r.take(len)?;
        token_keys.push(
            TokenKey::from_spki(period_start, spki).map_err(|_| DirectoryError::BadTokenKey)?,
        );
    }
    let sig = r.array()?;
    r.finish()?;
    Ok((
        Directory {
            city,
            serial,
            issued_at,
            expires_at,
            places,
            mediators,
            heartbeats,
            relays,
            token_keys,
        },
        sig,
    ))
}
