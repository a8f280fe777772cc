//! Verification of a directory a phone fetched (`docs/protocol.md` §7.3):
//! [`verify_directory`] checks size, structure, the city's signature, times,
//! serial and heartbeats, in that order, and gives a [`VerifiedDirectory`],
//! which answers what a phone may show (places at a time, near a point, with
//! their freshness).

use serde::Serialize;

use super::document::{decode_directory, Directory, DIRECTORY_SIGN_DOMAIN};
use super::entries::{Location, Mediator, SafePlace};
use super::error::DirectoryError;
use super::freshness::{freshness, Freshness};
use super::keys::{verify_sig, DirectoryPublicKey, PlaceId, SIG_LEN};
use super::limits::DIRECTORY_CLOCK_SKEW_SECS;

/// A directory whose city signature, times and entries were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDirectory {
    directory: Directory,
}

/// Verify untrusted directory bytes against the city's public key at `now`.
///
/// Checks, in order: size, structure (canonical encoding and field limits),
/// the city's signature (strict Ed25519), the issue time (not in the future
/// beyond [`DIRECTORY_CLOCK_SKEW_SECS`]), the expiry, the serial against
/// `last_serial` (the highest serial this verifier accepted before, if any),
/// and every heartbeat's signature under its place's key.
pub fn verify_directory(
    bytes: &[u8],
    city: &DirectoryPublicKey,
    now: u64,
    last_serial: Option<u64>,
) -> Result<VerifiedDirectory, DirectoryError> {
    let (directory, sig) = decode_directory(bytes)?;
    let body = &bytes[..bytes.len() - SIG_LEN];
    if !verify_sig(&city.0, DIRECTORY_SIGN_DOMAIN, body, &sig) {
        return Err(DirectoryError::BadSignature);
    }
    if directory.issued_at > now.saturating_add(DIRECTORY_CLOCK_SKEW_SECS) {
        return Err(DirectoryError::FromFuture);
    }
    if directory.expires_at <= now {
        return Err(DirectoryError::Expired(directory.expires_at));
    }
    if let Some(last) = last_serial {
        if directory.serial < last {
            return Err(DirectoryError::Rollback {
                serial: directory.serial,
                last,
            });
        }
    }
    directory.check()?;
    Ok(VerifiedDirectory { directory })
}

/// A place near a point, as [`VerifiedDirectory::places_near`] returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaceNear<'a> {
    /// The listing.
    pub place: &'a SafePlace,
    /// Fresh or going stale.
    pub freshness: Freshness,
    /// Great-circle distance from the point, metres.
    pub distance_m: f64,
}

impl VerifiedDirectory {
    /// The checked document.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }
    /// The freshness of a listed place at `now`.
    pub fn freshness(&self, id: &PlaceId, now: u64) -> Option<Freshness> {
        let place = self.directory.place(id)?;
        Some(freshness(place, self.directory.heartbeat(id), now))
    }
    /// The places a phone may show at `now` (fresh or going stale), with
    /// their freshness.
    pub fn places_at(&self, now: u64) -> Vec<(&SafePlace, Freshness)> {
        self.directory
            .places
            .iter()
            .map(|p| (p, freshness(p, self.directory.heartbeat(&p.id), now)))
            .filter(|(_, f)| f.is_shown())
            .collect()
    }
    /// The places a phone may show within `radius_m` metres of a point,
    /// nearest first (what `GET /v1/safe-places` answers).
    pub fn places_near(
        &self,
        lat: f64,
        lon: f64,
        radius_m: f64,
        now: u64,
    ) -> Result<Vec<PlaceNear<'_>>, DirectoryError> {
        Location::from_degrees(lat, lon)?;
        if !radius_m.is_finite() || radius_m < 0.0 {
            return Err(DirectoryError::BadLocation);
        }
        let mut out: Vec<PlaceNear<'_>> = self
            .places_at(now)
            .into_iter()
            .map(|(place, freshness)| PlaceNear {
                distance_m: crate::geo::haversine_m(
                    lat,
                    lon,
                    place.location.lat(),
                    place.location.lon(),
                ),
                place,
                freshness,
            })
            .filter(|p| p.distance_m <= radius_m)
            .collect();
        out.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
        Ok(out)
    }

    /// The city's token keys, to verify tokened reports with (§8.5).
    pub fn token_keys(&self) -> crate::token::TokenKeys {
        crate::token::TokenKeys::new(self.directory().token_keys.clone())
    }

    /// The mediators whose entry still holds at `now`.
    pub fn mediators_at(&self, now: u64) -> Vec<&Mediator> {
        self.directory
            .mediators
            .iter()
            .filter(|m| now < m.expires_at)
            .collect()
    }
}
