//! The entries of a directory (`docs/protocol.md` §7.1): a [`SafePlace`],
//! a [`Mediator`], and a place's own [`Heartbeat`]; the limits and checks of
//! every field, and their canonical encoding.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::DirectoryError;
use super::keys::{verify_sig, DirectoryKey, DirectoryPublicKey, PlaceId, SIG_LEN};
use super::limits::{
    MAX_AREA_LEN, MAX_CONTACT_LEN, MAX_HEARTBEAT_TTL_SECS, MAX_HOURS_LEN, MAX_LISTING_AGE_SECS,
    MAX_NAME_LEN, MAX_PHONE_LEN, MAX_ROLE_LEN,
};
use super::wire::{version, Reader, DIRECTORY_VERSION};
use crate::cursor::Put;

/// Length of an encoded heartbeat.
pub const HEARTBEAT_LEN: usize = 1 + 16 + 8 + 64;
/// Domain separator of a place's heartbeat signature.
pub const HEARTBEAT_SIGN_DOMAIN: &[u8] = b"ronde/directory/v1/heartbeat";

/// What kind of place a safe place is. Codes are fixed forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaceKind {
    /// A pharmacy.
    Pharmacy,
    /// A bar or café.
    Bar,
    /// A restaurant.
    Restaurant,
    /// A shop.
    Shop,
    /// A hotel reception.
    Hotel,
    /// Transport staff (station, ticket office).
    Transport,
    /// A police station.
    Police,
    /// A hospital or health centre.
    Health,
    /// An association or community centre.
    Association,
    /// A public service (town hall, library).
    PublicService,
    /// Anything else.
    Other,
}

impl PlaceKind {
    /// Every kind, in code order.
    pub const ALL: [PlaceKind; 11] = [
        PlaceKind::Pharmacy,
        PlaceKind::Bar,
        PlaceKind::Restaurant,
        PlaceKind::Shop,
        PlaceKind::Hotel,
        PlaceKind::Transport,
        PlaceKind::Police,
        PlaceKind::Health,
        PlaceKind::Association,
        PlaceKind::PublicService,
        PlaceKind::Other,
    ];
    /// Names as used in JSON and on the command line.
    pub const NAMES: [&'static str; 11] = [
        "pharmacy",
        "bar",
        "restaurant",
        "shop",
        "hotel",
        "transport",
        "police",
        "health",
        "association",
        "public_service",
        "other",
    ];
    /// Wire code, 1..=11.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }
    /// The kind of a wire code.
    pub fn from_code(code: u8) -> Option<PlaceKind> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl fmt::Display for PlaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PlaceKind {
    type Err = DirectoryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
            .ok_or(DirectoryError::UnknownKind(0))
    }
}

/// A point, stored as integer 1e-7 degrees (about 1 cm) so that it has one
/// encoding. Safe places are public addresses: this precision is on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Location {
    lat_e7: i32,
    lon_e7: i32,
}

impl Location {
    /// From degrees; `BadLocation` if NaN, infinite or out of range.
    pub fn from_degrees(lat: f64, lon: f64) -> Result<Location, DirectoryError> {
        if !lat.is_finite() || !lon.is_finite() || lat.abs() > 90.0 || lon.abs() > 180.0 {
            return Err(DirectoryError::BadLocation);
        }
        // In range, so the products fit an i32 (max 1.8e9 < 2.147e9).
        #[allow(clippy::cast_possible_truncation)]
        let to = |d: f64| (d * 1e7).round() as i32;
        Location::from_e7(to(lat), to(lon))
    }
    /// From integer 1e-7 degrees.
    pub fn from_e7(lat_e7: i32, lon_e7: i32) -> Result<Location, DirectoryError> {
        if lat_e7.unsigned_abs() > 900_000_000 || lon_e7.unsigned_abs() > 1_800_000_000 {
            return Err(DirectoryError::BadLocation);
        }
        Ok(Location { lat_e7, lon_e7 })
    }
    /// Latitude, degrees.
    pub fn lat(&self) -> f64 {
        f64::from(self.lat_e7) / 1e7
    }
    /// Longitude, degrees.
    pub fn lon(&self) -> f64 {
        f64::from(self.lon_e7) / 1e7
    }
}

#[derive(Serialize, Deserialize)]
struct LatLon {
    lat: f64,
    lon: f64,
}

impl Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        LatLon {
            lat: self.lat(),
            lon: self.lon(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = LatLon::deserialize(d)?;
        Location::from_degrees(p.lat, p.lon).map_err(serde::de::Error::custom)
    }
}

/// A place that has agreed to take in someone who feels unsafe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafePlace {
    /// Its id.
    pub id: PlaceId,
    /// Its public name.
    pub name: String,
    /// What kind of place.
    pub kind: PlaceKind,
    /// Where it is.
    pub location: Location,
    /// Opening hours, free text (OpenStreetMap `opening_hours` syntax
    /// recommended), may be empty.
    pub opening_hours: String,
    /// How to reach it (phone, address), may be empty.
    pub contact: String,
    /// When the city last verified it, Unix seconds.
    pub verified_at: u64,
    /// Until when the city's verification holds, Unix seconds.
    pub expires_at: u64,
    /// The key with which the place signs its own heartbeats, if the city
    /// registered one.
    pub heartbeat_key: Option<DirectoryPublicKey>,
    /// How long one heartbeat keeps the place fresh (0 if no key).
    pub heartbeat_ttl_secs: u32,
}

/// A street mediator or an emergency contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mediator {
    /// Its id.
    pub id: PlaceId,
    /// Name (of a person, a team or a service).
    pub name: String,
    /// Role, e.g. "street mediator", "helpline".
    pub role: String,
    /// Phone number.
    pub phone: String,
    /// Where they work: a geohash prefix (empty: the whole city).
    pub area: String,
    /// When they can be reached, free text, may be empty.
    pub hours: String,
    /// When the city last verified the entry.
    pub verified_at: u64,
    /// Until when the entry holds.
    pub expires_at: u64,
}

/// A place's own confirmation that its listing still holds, signed with its
/// registered heartbeat key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// The place.
    pub place: PlaceId,
    /// When the place confirmed, Unix seconds.
    pub confirmed_at: u64,
    /// Signature by the place's heartbeat key.
    pub signature: [u8; SIG_LEN],
}

/// A text field: at most `max` bytes, no control characters, and not blank
/// unless `allow_empty`.
pub(super) fn check_text(
    field: &'static str,
    s: &str,
    max: usize,
    allow_empty: bool,
) -> Result<(), DirectoryError> {
    if s.len() > max {
        return Err(DirectoryError::TooLong {
            field,
            len: s.len(),
            max,
        });
    }
    if (!allow_empty && s.trim().is_empty()) || s.chars().any(char::is_control) {
        return Err(DirectoryError::BadText(field));
    }
    Ok(())
}

fn check_phone(s: &str) -> Result<(), DirectoryError> {
    check_text("phone", s, MAX_PHONE_LEN, false)?;
    if !s
        .chars()
        .all(|c| c.is_ascii_digit() || "+ ()-.".contains(c))
    {
        return Err(DirectoryError::BadPhone);
    }
    Ok(())
}

fn check_area(s: &str) -> Result<(), DirectoryError> {
    const ALPHABET: &str = "0123456789bcdefghjkmnpqrstuvwxyz";
    if s.len() > MAX_AREA_LEN || !s.chars().all(|c| ALPHABET.contains(c)) {
        return Err(DirectoryError::BadArea);
    }
    Ok(())
}

fn check_validity(verified_at: u64, expires_at: u64) -> Result<(), DirectoryError> {
    if expires_at <= verified_at {
        return Err(DirectoryError::BadTimes(
            "expires_at is not after verified_at",
        ));
    }
    if expires_at - verified_at > MAX_LISTING_AGE_SECS {
        return Err(DirectoryError::BadTimes(
            "a listing may not be valid longer than 366 days",
        ));
    }
    Ok(())
}

impl SafePlace {
    /// Check every field against the limits of the format.
    pub fn check(&self) -> Result<(), DirectoryError> {
        check_text("name", &self.name, MAX_NAME_LEN, false)?;
        check_text("opening_hours", &self.opening_hours, MAX_HOURS_LEN, true)?;
        check_text("contact", &self.contact, MAX_CONTACT_LEN, true)?;
        check_validity(self.verified_at, self.expires_at)?;
        match self.heartbeat_key {
            Some(k) if !k.is_valid() => return Err(DirectoryError::BadKey),
            Some(_) if self.heartbeat_ttl_secs == 0 => {
                return Err(DirectoryError::BadTimes(
                    "a heartbeat key needs a heartbeat ttl",
                ))
            }
            None if self.heartbeat_ttl_secs != 0 => {
                return Err(DirectoryError::NotCanonical(
                    "a heartbeat ttl without a heartbeat key",
                ))
            }
            _ => {}
        }
        if self.heartbeat_ttl_secs > MAX_HEARTBEAT_TTL_SECS {
            return Err(DirectoryError::BadTimes("heartbeat ttl over 30 days"));
        }
        Ok(())
    }
}

impl Mediator {
    /// Check every field against the limits of the format.
    pub fn check(&self) -> Result<(), DirectoryError> {
        check_text("name", &self.name, MAX_NAME_LEN, false)?;
        check_text("role", &self.role, MAX_ROLE_LEN, false)?;
        check_phone(&self.phone)?;
        check_area(&self.area)?;
        check_text("hours", &self.hours, MAX_HOURS_LEN, true)?;
        check_validity(self.verified_at, self.expires_at)
    }
}

pub(super) fn encode_place(w: &mut Vec<u8>, p: &SafePlace) {
    w.put_slice(&p.id.0);
    w.put_u8(p.kind.code());
    w.put_short_str(&p.name);
    w.put_i32(p.location.lat_e7);
    w.put_i32(p.location.lon_e7);
    w.put_short_str(&p.opening_hours);
    w.put_short_str(&p.contact);
    w.put_u64(p.verified_at);
    w.put_u64(p.expires_at);
    match p.heartbeat_key {
        Some(k) => {
            w.put_u8(1);
            w.put_slice(&k.0);
        }
        None => w.put_u8(0),
    }
    w.put_u32(p.heartbeat_ttl_secs);
}

pub(super) fn decode_place(r: &mut Reader<'_>) -> Result<SafePlace, DirectoryError> {
    let id = PlaceId(r.array()?);
    let code = r.u8()?;
    let kind = PlaceKind::from_code(code).ok_or(DirectoryError::UnknownKind(code))?;
    let name = r.str("name")?;
    let lat = r.i32()?;
    let lon = r.i32()?;
    let location = Location::from_e7(lat, lon)?;
    let opening_hours = r.str("opening_hours")?;
    let contact = r.str("contact")?;
    let verified_at = r.u64()?;
    let expires_at = r.u64()?;
    let heartbeat_key = match r.u8()? {
        0 => None,
        1 => Some(DirectoryPublicKey(r.array()?)),
        _ => {
            return Err(DirectoryError::NotCanonical(
                "option flag other than 0 or 1",
            ))
        }
    };
    let heartbeat_ttl_secs = r.u32()?;
    let p = SafePlace {
        id,
        name,
        kind,
        location,
        opening_hours,
        contact,
        verified_at,
        expires_at,
        heartbeat_key,
        heartbeat_ttl_secs,
    };
    p.check()?;
    Ok(p)
}

pub(super) fn encode_mediator(w: &mut Vec<u8>, m: &Mediator) {
    w.put_slice(&m.id.0);
    w.put_short_str(&m.name);
    w.put_short_str(&m.role);
    w.put_short_str(&m.phone);
    w.put_short_str(&m.area);
    w.put_short_str(&m.hours);
    w.put_u64(m.verified_at);
    w.put_u64(m.expires_at);
}

pub(super) fn decode_mediator(r: &mut Reader<'_>) -> Result<Mediator, DirectoryError> {
    let m = Mediator {
        id: PlaceId(r.array()?),
        name: r.str("name")?,
        role: r.str("role")?,
        phone: r.str("phone")?,
        area: r.str("area")?,
        hours: r.str("hours")?,
        verified_at: r.u64()?,
        expires_at: r.u64()?,
    };
    m.check()?;
    Ok(m)
}

impl SafePlace {
    /// Canonical bytes of this listing alone (as inside a directory, with a
    /// version byte in front), e.g. for storage.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DirectoryError> {
        self.check()?;
        let mut w = vec![DIRECTORY_VERSION];
        encode_place(&mut w, self);
        Ok(w)
    }
    /// Parse bytes written by [`SafePlace::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<SafePlace, DirectoryError> {
        let mut r = Reader::new(bytes);
        version(&mut r)?;
        let p = decode_place(&mut r)?;
        r.finish()?;
        Ok(p)
    }
}

impl Mediator {
    /// Canonical bytes of this entry alone (with a version byte in front).
    pub fn to_bytes(&self) -> Result<Vec<u8>, DirectoryError> {
        self.check()?;
        let mut w = vec![DIRECTORY_VERSION];
        encode_mediator(&mut w, self);
        Ok(w)
    }
    /// Parse bytes written by [`Mediator::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Mediator, DirectoryError> {
        let mut r = Reader::new(bytes);
        version(&mut r)?;
        let m = decode_mediator(&mut r)?;
        r.finish()?;
        Ok(m)
    }
}

fn heartbeat_message(place: &PlaceId, confirmed_at: u64) -> [u8; 25] {
    let mut m = [0u8; 25];
    m[0] = DIRECTORY_VERSION;
    m[1..17].copy_from_slice(&place.0);
    m[17..].copy_from_slice(&confirmed_at.to_be_bytes());
    m
}

impl Heartbeat {
    /// A place's confirmation at `confirmed_at`, signed with its key.
    pub fn sign(place: PlaceId, confirmed_at: u64, key: &DirectoryKey) -> Heartbeat {
        let signature = key.sign(
            HEARTBEAT_SIGN_DOMAIN,
            &heartbeat_message(&place, confirmed_at),
        );
        Heartbeat {
            place,
            confirmed_at,
            signature,
        }
    }
    /// Canonical bytes: version, place id, confirmed_at, signature
    /// ([`HEARTBEAT_LEN`] bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = heartbeat_message(&self.place, self.confirmed_at).to_vec();
        v.extend_from_slice(&self.signature);
        v
    }
    /// Parse (structure only; see [`verify_heartbeat`](super::verify_heartbeat)).
    pub fn from_bytes(bytes: &[u8]) -> Result<Heartbeat, DirectoryError> {
        if bytes.len() > HEARTBEAT_LEN {
            return Err(DirectoryError::TooLarge {
                what: "heartbeat",
                len: bytes.len(),
                max: HEARTBEAT_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        version(&mut r)?;
        let hb = Heartbeat {
            place: PlaceId(r.array()?),
            confirmed_at: r.u64()?,
            signature: r.array()?,
        };
        r.finish()?;
        Ok(hb)
    }
    /// Whether the signature verifies (strictly) under `key`.
    pub fn signature_holds(&self, key: &DirectoryPublicKey) -> bool {
        verify_sig(
            &key.0,
            HEARTBEAT_SIGN_DOMAIN,
            &heartbeat_message(&self.place, self.confirmed_at),
            &self.signature,
        )
    }
}
