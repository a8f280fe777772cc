//! The demo's directory: a few safe places and street mediators, added the
//! way an operator does (through the relay's directory service, signed by
//! the demo city key), with places that confirm themselves by heartbeat and
//! one whose heartbeat stopped six days ago: it is going stale.
//!
//! The places are illustrative: each stands at a real address of the
//! basemap's streets (central Helsinki, OpenStreetMap data), named by what
//! it is and its street, but nobody there agreed to be listed and nothing is
//! said about the real shops and offices at those addresses. The phone
//! numbers are from the French range reserved for fiction (01 99 00); the
//! hours are invented.

use ronde_protocol::directory::{
    verify_heartbeat, DirectoryError, DirectoryKey, Heartbeat, Location, PlaceId, PlaceKind,
    SafePlace,
};
use ronde_relay::directory::{DirError, DirectoryService, MediatorInput, PlaceInput};
use ronde_relay::server::Shared;

use crate::city::City;

const DAY: u64 = 86_400;

/// A place that confirms itself, and its key.
pub struct Confirming {
    /// The place.
    pub id: PlaceId,
    /// Its heartbeat key.
    pub key: DirectoryKey,
}

/// What was listed.
pub struct Seeded {
    /// Places that keep sending heartbeats.
    pub confirming: Vec<Confirming>,
    /// How many places.
    pub places: usize,
    /// How many mediators.
    pub mediators: usize,
    /// The name of the place going stale.
    pub stale: &'static str,
}

struct DemoPlace {
    name: &'static str,
    kind: PlaceKind,
    /// Latitude and longitude: a real address, from the OpenStreetMap data
    /// of the basemap.
    at: (f64, f64),
    hours: &'static str,
    contact: &'static str,
    heartbeat: bool,
}

const PLACES: &[DemoPlace] = &[
    DemoPlace {
        name: "Pharmacy, Mannerheimintie 5 (demo)",
        kind: PlaceKind::Pharmacy,
        at: (60.16950, 24.93970),
        hours: "Mo-Sa 08:30-20:30",
        contact: "+33 1 99 00 10 01",
        heartbeat: true,
    },
    DemoPlace {
        name: "Café-bar, Kaisaniemenkatu 4 (demo)",
        kind: PlaceKind::Bar,
        at: (60.17153, 24.94721),
        hours: "Tu-Su 07:00-01:00",
        contact: "+33 1 99 00 10 02",
        heartbeat: true,
    },
    DemoPlace {
        name: "Central Station help point, Kaivokatu 1 (demo)",
        kind: PlaceKind::Transport,
        at: (60.17132, 24.94146),
        hours: "Mo-Su 05:30-00:30",
        contact: "",
        heartbeat: false,
    },
    DemoPlace {
        name: "Library welcome desk, Fabianinkatu 35 (demo)",
        kind: PlaceKind::PublicService,
        at: (60.17040, 24.94939),
        hours: "Tu-Sa 10:00-19:00",
        contact: "+33 1 99 00 10 04",
        heartbeat: false,
    },
];

/// The place whose heartbeat stopped.
const STALE: DemoPlace = DemoPlace {
    name: "Night shop, Mikonkatu 13 (demo)",
    kind: PlaceKind::Shop,
    at: (60.17044, 24.94551),
    hours: "Mo-Su 18:00-02:00",
    contact: "+33 1 99 00 10 05",
    heartbeat: true,
};

fn input(p: &DemoPlace, key: Option<&DirectoryKey>) -> PlaceInput {
    let (lat, lon) = p.at;
    PlaceInput {
        name: p.name.into(),
        kind: p.kind,
        lat,
        lon,
        opening_hours: p.hours.into(),
        contact: p.contact.into(),
        heartbeat_key: key.map(|k| k.public()),
    }
}

/// List the demo's places and mediators at `now` and re-sign.
///
/// The stale place was verified by the city 100 days ago (its 90-day
/// listing has run out) and kept listed by its own heartbeats, the last of
/// which came 6 days ago: with a 7-day heartbeat lifetime it is now going
/// stale, and expires tomorrow unless it confirms again. It is written to
/// the relay's store as it would stand after those 100 days (signing a
/// document at each past step would only make expired ones).
pub fn seed(shared: &Shared, city: &City, now: u64) -> Result<Seeded, DirError> {
    let dir = &shared.directory;
    let settings = &shared.config.directory;
    let mut rng = rand::rngs::OsRng;
    let key = DirectoryKey::generate(&mut rng);
    let verified = now.saturating_sub(100 * DAY);
    let last_beat = now.saturating_sub(6 * DAY);
    let i = input(&STALE, Some(&key));
    let stale = SafePlace {
        id: PlaceId::generate(&mut rng),
        name: i.name,
        kind: i.kind,
        location: Location::from_degrees(i.lat, i.lon)?,
        opening_hours: i.opening_hours,
        contact: i.contact,
        verified_at: verified,
        expires_at: verified + u64::from(settings.listing_validity_days) * DAY,
        heartbeat_key: i.heartbeat_key,
        heartbeat_ttl_secs: settings.heartbeat_ttl_days.saturating_mul(86_400),
    };
    stale.check()?;
    let hb = Heartbeat::sign(stale.id, last_beat, &key);
    verify_heartbeat(&hb, &stale, last_beat)?;
    shared.store.put_place(&stale)?;
    shared.store.put_heartbeat(&hb)?;

    let mut confirming = Vec::new();
    for p in PLACES {
        let key = p.heartbeat.then(|| DirectoryKey::generate(&mut rng));
        let place = dir.add_place(&input(p, key.as_ref()), now)?;
        if let Some(key) = key {
            dir.accept_heartbeat(&Heartbeat::sign(place.id, now, &key).to_bytes(), now)?;
            confirming.push(Confirming { id: place.id, key });
        }
    }
    let area = ronde_protocol::area_of(city.centre.0, city.centre.1)
        .map_err(|_| DirError::Invalid(DirectoryError::BadLocation))?
        .to_string();
    let mediators = [
        MediatorInput {
            name: "Night mediators (demo)".into(),
            role: "street mediators".into(),
            phone: "+33 1 99 00 20 20".into(),
            area,
            hours: "Th-Sa 20:00-02:00".into(),
        },
        MediatorInput {
            name: "Youth listening point (demo)".into(),
            role: "youth workers".into(),
            phone: "+33 6 39 98 00 42".into(),
            area: String::new(),
            hours: "Mo-Fr 14:00-19:00".into(),
        },
    ];
    for m in &mediators {
        dir.add_mediator(m, now)?;
    }
    dir.rebuild(now)?;
    Ok(Seeded {
        confirming,
        places: PLACES.len() + 1,
        mediators: mediators.len(),
        stale: STALE.name,
    })
}

/// The confirming places send a fresh heartbeat.
pub fn beat(dir: &DirectoryService, places: &[Confirming], now: u64) -> Result<(), DirError> {
    for p in places {
        dir.accept_heartbeat(&Heartbeat::sign(p.id, now, &p.key).to_bytes(), now)?;
    }
    Ok(())
}
