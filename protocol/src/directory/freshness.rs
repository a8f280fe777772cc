//! Whether a listing still holds (`docs/protocol.md` §7.4): a place is
//! fresh, going stale or expired ([`Freshness`]) by the later of the city's
//! and its own latest confirmation, never past [`super::MAX_LISTING_AGE_SECS`]
//! after the city verified it; and the relay's check of a heartbeat a place
//! just sent ([`verify_heartbeat`]).

use serde::Serialize;

use super::entries::{Heartbeat, SafePlace};
use super::error::DirectoryError;
use super::limits::{
    DIRECTORY_CLOCK_SKEW_SECS, MAX_HEARTBEAT_AGE_SECS, MAX_LISTING_AGE_SECS, STALE_WINDOW_SECS,
};

/// Whether a listing still holds at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Freshness {
    /// Confirmed, and well within its validity.
    Fresh {
        /// When it stops holding unless re-confirmed.
        until: u64,
    },
    /// Still valid but close to expiring: the city or the place should
    /// re-confirm it.
    Stale {
        /// When it stops holding unless re-confirmed.
        until: u64,
    },
    /// No longer valid: phones do not show it.
    Expired {
        /// When it stopped holding.
        since: u64,
    },
}

impl Freshness {
    /// Whether phones may still show the place.
    pub fn is_shown(&self) -> bool {
        !matches!(self, Freshness::Expired { .. })
    }
    /// `fresh`, `stale` or `expired`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Freshness::Fresh { .. } => "fresh",
            Freshness::Stale { .. } => "stale",
            Freshness::Expired { .. } => "expired",
        }
    }
}

/// The freshness of a place at `now`, given its latest *verified* heartbeat.
///
/// The listing holds until the later of `expires_at` (the city's own
/// confirmation) and `confirmed_at + heartbeat_ttl_secs` (the place's), but
/// never past `verified_at + MAX_LISTING_AGE_SECS`. It is going stale when
/// less than a quarter of the confirmation period that gives it that time
/// (at most [`STALE_WINDOW_SECS`]) is left.
pub fn freshness(place: &SafePlace, heartbeat: Option<&Heartbeat>, now: u64) -> Freshness {
    let cap = place.verified_at.saturating_add(MAX_LISTING_AGE_SECS);
    let mut until = place.expires_at;
    let mut since = place.verified_at;
    if let (Some(hb), Some(_)) = (heartbeat, place.heartbeat_key) {
        if hb.place == place.id {
            let hb_until = hb
                .confirmed_at
                .saturating_add(u64::from(place.heartbeat_ttl_secs));
            if hb_until > until {
                until = hb_until;
                since = hb.confirmed_at;
            }
        }
    }
    let until = until.min(cap);
    if now >= until {
        return Freshness::Expired { since: until };
    }
    let window = (until.saturating_sub(since) / 4).min(STALE_WINDOW_SECS);
    if now >= until - window {
        Freshness::Stale { until }
    } else {
        Freshness::Fresh { until }
    }
}

/// Check a heartbeat a place just sent (relay side): the place has a key,
/// the signature verifies under it, and the confirmation time is within
/// [`MAX_HEARTBEAT_AGE_SECS`] before `now` and not in the future.
pub fn verify_heartbeat(hb: &Heartbeat, place: &SafePlace, now: u64) -> Result<(), DirectoryError> {
    let key = match place.heartbeat_key {
        Some(k) if place.id == hb.place => k,
        _ => return Err(DirectoryError::HeartbeatUnknownPlace),
    };
    if !hb.signature_holds(&key) {
        return Err(DirectoryError::HeartbeatBadSignature);
    }
    if hb.confirmed_at > now.saturating_add(DIRECTORY_CLOCK_SKEW_SECS) {
        return Err(DirectoryError::FromFuture);
    }
    if hb.confirmed_at.saturating_add(MAX_HEARTBEAT_AGE_SECS) < now {
        return Err(DirectoryError::HeartbeatTooOld);
    }
    Ok(())
}
