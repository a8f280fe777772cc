//! What the API shows of the directories (`GET /v1/safe-places`,
//! `GET /v1/directory`, `POST /v1/safe-places/{id}/flag`).

use ronde_protocol::directory::{
    FlagReason, Freshness, Location, Mediator, PlaceId, PlaceKind, PlaceNear, VerifiedDirectory,
};
use serde::Serialize;

/// The signed document a node holds, in short.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectorySummary {
    /// The city's name, as signed.
    pub city: String,
    /// The city's public key (hex): the one this node was configured with.
    pub key: String,
    /// The document's serial (grows with every new signature).
    pub serial: u64,
    /// When the city signed it, Unix seconds.
    pub issued_at: u64,
    /// When it stops being valid unless a newer one arrives, Unix seconds.
    pub expires_at: u64,
}

impl DirectorySummary {
    pub(crate) fn of(d: &VerifiedDirectory, key: &str) -> DirectorySummary {
        let doc = d.directory();
        DirectorySummary {
            city: doc.city.clone(),
            key: key.to_owned(),
            serial: doc.serial,
            issued_at: doc.issued_at,
            expires_at: doc.expires_at,
        }
    }
}

/// A safe place near a point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SafePlaceView {
    /// Its id (32 hex digits): for `POST /v1/safe-places/{id}/flag`.
    pub id: PlaceId,
    /// Public name.
    pub name: String,
    /// Kind (`pharmacy`, `bar`…).
    pub kind: PlaceKind,
    /// Where it is (a public address: precise on purpose).
    pub location: Location,
    /// Opening hours, as the city wrote them.
    pub opening_hours: String,
    /// Contact, as the city wrote it.
    pub contact: String,
    /// `{status: fresh | stale, until}`: expired places are never shown.
    pub freshness: Freshness,
    /// Metres from the point asked about.
    pub distance_m: f64,
}

impl From<PlaceNear<'_>> for SafePlaceView {
    fn from(p: PlaceNear<'_>) -> Self {
        SafePlaceView {
            id: p.place.id,
            name: p.place.name.clone(),
            kind: p.place.kind,
            location: p.place.location,
            opening_hours: p.place.opening_hours.clone(),
            contact: p.place.contact.clone(),
            freshness: p.freshness,
            distance_m: (p.distance_m * 10.0).round() / 10.0,
        }
    }
}

/// `GET /v1/safe-places`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SafePlaces {
    /// The directory the places come from; `null` when this node holds no
    /// valid directory yet (no city key configured, no peer had one, or
    /// the one it had expired).
    pub directory: Option<DirectorySummary>,
    /// Places within the radius, nearest first.
    pub places: Vec<SafePlaceView>,
}

/// A street mediator or an emergency contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediatorView {
    /// Its id.
    pub id: PlaceId,
    /// Name.
    pub name: String,
    /// Role (street mediator, helpline…).
    pub role: String,
    /// Phone number.
    pub phone: String,
    /// Geohash prefix of the area covered; empty: the whole city.
    pub area: String,
    /// When they can be reached.
    pub hours: String,
    /// When the listing stops holding unless re-confirmed, Unix seconds.
    pub expires_at: u64,
}

impl From<&Mediator> for MediatorView {
    fn from(m: &Mediator) -> Self {
        MediatorView {
            id: m.id,
            name: m.name.clone(),
            role: m.role.clone(),
            phone: m.phone.clone(),
            area: m.area.clone(),
            hours: m.hours.clone(),
            expires_at: m.expires_at,
        }
    }
}

/// A directory as `GET /v1/directory` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectoryView {
    /// The document.
    #[serde(flatten)]
    pub summary: DirectorySummary,
    /// How many places it lists that are still shown now.
    pub places: usize,
    /// Mediators and emergency contacts still listed now.
    pub mediators: Vec<MediatorView>,
}

/// `GET /v1/directory`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectoryAnswer {
    /// The directory of the first configured city this node holds a valid
    /// one of; `null` when it holds none (yet).
    pub directory: Option<DirectoryView>,
}

/// `POST /v1/safe-places/{id}/flag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagSent {
    /// The place flagged.
    pub place: PlaceId,
    /// Why.
    pub reason: FlagReason,
    /// `sent`: handed to `relays` connected relays; `queued`: no relay is
    /// connected, it is kept on this device and sent when one is.
    pub status: &'static str,
    /// How many relays it was sent to now.
    pub relays: usize,
}

/// Counters and holdings, for tests and diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DirectoryStats {
    /// Directories accepted from peers (or given by the relay).
    pub accepted: u64,
    /// Directories refused (forged, expired, rolled back, malformed).
    pub refused: u64,
    /// The directories held: city key (hex) and serial.
    pub held: Vec<(String, u64)>,
    /// Flags waiting for a relay.
    pub queued_flags: usize,
    /// Connected peers that take flags (relays).
    pub flag_relays: usize,
}
