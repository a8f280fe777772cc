//! The code agrees with the geometry, directory and switch-deposit vectors
//! in `docs/test-vectors/` (`geometry.json`, `directory.json`,
//! `switch-deposit.json`).
//!
//! Regenerate them (only when a format deliberately changes) with
//! `RONDE_WRITE_VECTORS=1 cargo test -p ronde-protocol --test more_vectors`.
//! The generators build the directory bytes with their own encoder, written
//! from docs/protocol.md §7, and check it against `Directory::sign`.

// Test helpers outside `#[test]` functions unwrap too (clippy.toml only
// covers the test functions themselves).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use ed25519_dalek::{Signer, SigningKey};
use rand::SeedableRng;
use ronde_protocol::circle::{
    envelope, mailbox_address, Alert, DeadManSwitch, Deposit, Identity, InviteToken, Message,
    MessageId, PairSecret, SwitchOwner,
};
use ronde_protocol::directory::{
    verify_directory, verify_flag, verify_heartbeat, Directory, DirectoryKey, DirectoryPublicKey,
    Flag, FlagReason, Freshness, Heartbeat, Location, Mediator, PlaceId, PlaceKind, RelayEntry,
    RelayRoles, SafePlace, DIRECTORY_SIGN_DOMAIN, HEARTBEAT_SIGN_DOMAIN,
};
use ronde_protocol::token::TokenKey;
use ronde_protocol::{cell_for, distance_to_cell_m, topics_around, Cell};
use serde::{Deserialize, Serialize};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/test-vectors")
}

/// Write `fresh` if asked to, then read the file back: the test compares
/// it with what the code generates, then checks the decoders against it.
fn sync_file<T: Serialize + for<'de> Deserialize<'de>>(name: &str, fresh: &T) -> T {
    if std::env::var_os("RONDE_WRITE_VECTORS").is_some() {
        let json = serde_json::to_string_pretty(fresh).unwrap();
        std::fs::write(dir().join(name), json + "\n").unwrap();
    }
    let text = std::fs::read_to_string(dir().join(name)).expect("run with RONDE_WRITE_VECTORS=1");
    serde_json::from_str(&text).unwrap()
}

/// The variant name of an error (`TooLong`, `BadText`, …): what the
/// vectors call `error`.
fn variant(e: &impl std::fmt::Debug) -> String {
    let s = format!("{e:?}");
    s.split(['(', ' ', '{']).next().unwrap_or("").to_owned()
}

// ---------------------------------------------------------------------------
// Geometry (docs/protocol.md §4)
// ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct CellFor {
    name: String,
    lat: f64,
    lon: f64,
    precision: u8,
    /// The cell, or null when refused.
    cell: Option<String>,
    /// The error (`BadLatitude`, `BadLongitude`, `BadPrecision`), or null.
    error: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct TopicsAround {
    name: String,
    lat: f64,
    lon: f64,
    areas: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct DistanceToCell {
    name: String,
    lat: f64,
    lon: f64,
    cell: String,
    /// Metres, rounded to the millimetre.
    distance_m: f64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Geometry {
    description: String,
    cell_for: Vec<CellFor>,
    topics_around: Vec<TopicsAround>,
    distance_to_cell: Vec<DistanceToCell>,
}

fn geometry() -> Geometry {
    let cell = |name: &str, lat: f64, lon: f64, precision: u8| {
        let r = cell_for(lat, lon, precision);
        CellFor {
            name: name.into(),
            lat,
            lon,
            precision,
            cell: r.as_ref().ok().map(ToString::to_string),
            error: r.as_ref().err().map(variant),
        }
    };
    // The bounds of u09tvqx: (48.85894775390625, 2.349700927734375) to
    // (48.860321044921875, 2.35107421875).
    let b: Cell = "u09tvqx".parse().unwrap();
    let (min_lat, min_lon, max_lat, max_lon) = b.bounds();
    let cell_for = vec![
        cell("paris_precision_7", 48.8566, 2.3522, 7),
        cell("paris_precision_6", 48.8566, 2.3522, 6),
        cell("ivry", 48.8156, 2.3844, 7),
        cell("new_york", 40.7128, -74.006, 7),
        cell("sydney", -33.8688, 151.2093, 6),
        cell("south_west_corner_belongs_to_the_cell", min_lat, min_lon, 7),
        cell("west_edge_belongs_to_the_cell", 48.8595, min_lon, 7),
        cell("south_edge_belongs_to_the_cell", min_lat, 2.3500, 7),
        cell("north_edge_belongs_to_the_cell_north", max_lat, 2.3500, 7),
        cell("east_edge_belongs_to_the_cell_east", 48.8595, max_lon, 7),
        cell(
            "north_east_corner_belongs_to_the_cell_north_east",
            max_lat,
            max_lon,
            7,
        ),
        cell("origin", 0.0, 0.0, 7),
        cell("longitude_180_is_longitude_minus_180", 0.0, 180.0, 7),
        cell("longitude_minus_180", 0.0, -180.0, 7),
        cell("latitude_90_lands_in_the_southernmost_row", 90.0, 0.0, 7),
        cell("latitude_minus_90", -90.0, 0.0, 7),
        cell("latitude_over_90", 90.5, 0.0, 7),
        cell("longitude_under_minus_180", 0.0, -180.1, 7),
        cell("precision_8", 48.8566, 2.3522, 8),
        cell("precision_5", 48.8566, 2.3522, 5),
        cell("precision_checked_before_coordinates", 91.0, 0.0, 8),
    ];
    let around = |name: &str, lat: f64, lon: f64| TopicsAround {
        name: name.into(),
        lat,
        lon,
        areas: topics_around(lat, lon)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    let topics_around = vec![
        around("paris", 48.8566, 2.3522),
        around("ivry", 48.8156, 2.3844),
        around("origin", 0.0, 0.0),
        around("antimeridian", 0.0, 179.99),
        around("northernmost_row_wraps_to_the_southernmost", 89.99, 0.0),
        around("southernmost_row_wraps_to_the_northernmost", -89.99, 0.0),
        around("latitude_90", 90.0, 0.0),
    ];
    let distance = |name: &str, lat: f64, lon: f64, cell: &str| {
        let c: Cell = cell.parse().unwrap();
        let d = distance_to_cell_m(lat, lon, &c).unwrap();
        DistanceToCell {
            name: name.into(),
            lat,
            lon,
            cell: cell.into(),
            distance_m: (d * 1000.0).round() / 1000.0,
        }
    };
    let distance_to_cell = vec![
        distance("inside", 48.8595, 2.3505, "u09tvqx"),
        distance("on_the_north_edge", max_lat, 2.3505, "u09tvqx"),
        distance("north_of_the_cell", 48.8703, 2.3505, "u09tvqx"),
        distance("south_west_of_the_cell", 48.85, 2.34, "u09tvqx"),
        distance("east_of_a_precision_6_cell", 48.8566, 2.4, "u09tvq"),
        distance("ten_kilometres_south", 48.7595, 2.3505, "u09tvqx"),
        distance("across_the_antimeridian", 0.01, 179.99, "8000000"),
    ];
    Geometry {
        description: "Geometry helpers (docs/protocol.md §4): cell_for(lat, lon, precision) \
                      gives `cell` or refuses with `error`; topics_around(lat, lon) gives \
                      `areas` in order; distance_to_cell(lat, lon, cell) gives `distance_m` \
                      (compare within 1 mm)."
            .into(),
        cell_for,
        topics_around,
        distance_to_cell,
    }
}

#[test]
fn geometry_vectors() {
    let fresh = geometry();
    let file: Geometry = sync_file("geometry.json", &fresh);
    assert_eq!(file, fresh, "geometry.json no longer matches the code");
    for v in &file.cell_for {
        match cell_for(v.lat, v.lon, v.precision) {
            Ok(c) => assert_eq!(Some(c.to_string()), v.cell, "{}", v.name),
            Err(e) => assert_eq!(Some(variant(&e)), v.error, "{}", v.name),
        }
    }
    for v in &file.topics_around {
        let got: Vec<String> = topics_around(v.lat, v.lon)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, v.areas, "{}", v.name);
    }
    for v in &file.distance_to_cell {
        let d = distance_to_cell_m(v.lat, v.lon, &v.cell.parse().unwrap()).unwrap();
        assert!((d - v.distance_m).abs() <= 0.001, "{}: {d}", v.name);
    }
}

// ---------------------------------------------------------------------------
// Directory, heartbeats and flags (docs/protocol.md §7)
// ---------------------------------------------------------------------------

const NOW: u64 = 1_790_000_000;
const DAY: u64 = 86_400;
const CITY_SECRET: [u8; 32] = [0x10; 32];
const PLACE_SECRET: [u8; 32] = [0x20; 32];

/// A place as raw fields: strings as bytes, the option flag as a byte, so
/// that a vector can break any of them.
#[derive(Clone)]
struct RawPlace {
    id: [u8; 16],
    kind: u8,
    name: Vec<u8>,
    lat_e7: i32,
    lon_e7: i32,
    hours: Vec<u8>,
    contact: Vec<u8>,
    verified_at: u64,
    expires_at: u64,
    has_key: u8,
    key: [u8; 32],
    ttl: u32,
}

#[derive(Clone)]
struct RawMediator {
    id: [u8; 16],
    name: Vec<u8>,
    role: Vec<u8>,
    phone: Vec<u8>,
    area: Vec<u8>,
    hours: Vec<u8>,
    verified_at: u64,
    expires_at: u64,
}

#[derive(Clone)]
struct RawDirectory {
    version: u8,
    city: Vec<u8>,
    serial: u64,
    issued_at: u64,
    expires_at: u64,
    /// The count written before the places (normally their number).
    n_places: Option<u16>,
    places: Vec<RawPlace>,
    mediators: Vec<RawMediator>,
    heartbeats: Vec<([u8; 16], u64, [u8; 64])>,
    relays: Vec<RawRelay>,
    /// Token keys: period start and SPKI bytes.
    token_keys: Vec<(u64, Vec<u8>)>,
}

/// The token key of `tokens.json` (docs/protocol.md §8.5): its period and
/// SPKI.
fn token_key() -> (u64, Vec<u8>) {
    let text = std::fs::read_to_string(dir().join("tokens.json")).expect("tokens.json");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    (
        v["period_start"].as_u64().unwrap(),
        hex::decode(v["token_key_spki"].as_str().unwrap()).unwrap(),
    )
}

/// A relay entry as raw fields.
#[derive(Clone)]
struct RawRelay {
    peer: Vec<u8>,
    roles: u8,
    operator: Vec<u8>,
    addrs: Vec<Vec<u8>>,
}

fn text(out: &mut Vec<u8>, s: &[u8]) {
    out.push(u8::try_from(s.len()).unwrap());
    out.extend_from_slice(s);
}

impl RawDirectory {
    fn body(&self) -> Vec<u8> {
        let mut b = vec![self.version];
        text(&mut b, &self.city);
        b.extend(self.serial.to_be_bytes());
        b.extend(self.issued_at.to_be_bytes());
        b.extend(self.expires_at.to_be_bytes());
        let n = self
            .n_places
            .unwrap_or(u16::try_from(self.places.len()).unwrap());
        b.extend(n.to_be_bytes());
        for p in &self.places {
            b.extend(p.id);
            b.push(p.kind);
            text(&mut b, &p.name);
            b.extend(p.lat_e7.to_be_bytes());
            b.extend(p.lon_e7.to_be_bytes());
            text(&mut b, &p.hours);
            text(&mut b, &p.contact);
            b.extend(p.verified_at.to_be_bytes());
            b.extend(p.expires_at.to_be_bytes());
            b.push(p.has_key);
            if p.has_key == 1 {
                b.extend(p.key);
            }
            b.extend(p.ttl.to_be_bytes());
        }
        b.extend(u16::try_from(self.mediators.len()).unwrap().to_be_bytes());
        for m in &self.mediators {
            b.extend(m.id);
            for s in [&m.name, &m.role, &m.phone, &m.area, &m.hours] {
                text(&mut b, s);
            }
            b.extend(m.verified_at.to_be_bytes());
            b.extend(m.expires_at.to_be_bytes());
        }
        b.extend(u16::try_from(self.heartbeats.len()).unwrap().to_be_bytes());
        for (id, at, sig) in &self.heartbeats {
            b.extend(id);
            b.extend(at.to_be_bytes());
            b.extend(sig);
        }
        b.push(u8::try_from(self.relays.len()).unwrap());
        for r in &self.relays {
            text(&mut b, &r.peer);
            b.push(r.roles);
            text(&mut b, &r.operator);
            b.push(u8::try_from(r.addrs.len()).unwrap());
            for a in &r.addrs {
                text(&mut b, a);
            }
        }
        b.push(u8::try_from(self.token_keys.len()).unwrap());
        for (period, spki) in &self.token_keys {
            b.extend(period.to_be_bytes());
            b.extend(u16::try_from(spki.len()).unwrap().to_be_bytes());
            b.extend(spki);
        }
        b
    }

    /// The body followed by the city's signature over
    /// `"ronde/directory/v1/sig" || body`.
    fn signed(&self) -> Vec<u8> {
        let mut b = self.body();
        let sig = SigningKey::from_bytes(&CITY_SECRET)
            .sign(&[DIRECTORY_SIGN_DOMAIN, &b].concat())
            .to_bytes();
        b.extend(sig);
        b
    }
}

/// A heartbeat signature by `secret` (docs/protocol.md §7.1).
fn heartbeat_sig(secret: &[u8; 32], id: [u8; 16], confirmed_at: u64) -> [u8; 64] {
    let mut m = HEARTBEAT_SIGN_DOMAIN.to_vec();
    m.push(1);
    m.extend(id);
    m.extend(confirmed_at.to_be_bytes());
    SigningKey::from_bytes(secret).sign(&m).to_bytes()
}

fn place_key() -> [u8; 32] {
    SigningKey::from_bytes(&PLACE_SECRET)
        .verifying_key()
        .to_bytes()
}

/// The valid document: a place with a key and a heartbeat that extends it
/// (fresh), one without a key near its expiry (stale), one at the edges of
/// the latitude/longitude bounds whose 366 days have passed (expired), and
/// a mediator that shares the first place's id.
fn raw_directory() -> RawDirectory {
    let a = RawPlace {
        id: [1; 16],
        kind: 1,
        name: "Pharmacie du Centre".into(),
        lat_e7: 488_156_000,
        lon_e7: 23_844_000,
        hours: "Mo-Sa 08:00-22:00".into(),
        contact: "+33 1 00 00 00 00".into(),
        verified_at: NOW - 30 * DAY,
        expires_at: NOW + DAY,
        has_key: 1,
        key: place_key(),
        ttl: 7 * 86_400,
    };
    let b = RawPlace {
        id: [2; 16],
        kind: 2,
        name: "Le Bar du Port".into(),
        lat_e7: 488_200_000,
        lon_e7: 23_900_000,
        hours: String::new().into(),
        contact: String::new().into(),
        verified_at: NOW - 100 * DAY,
        expires_at: NOW + 2 * DAY,
        has_key: 0,
        key: [0; 32],
        ttl: 0,
    };
    let c = RawPlace {
        id: [3; 16],
        kind: 11,
        name: "Station polaire".into(),
        lat_e7: 900_000_000,
        lon_e7: -1_800_000_000,
        hours: "24/7".into(),
        contact: String::new().into(),
        verified_at: NOW - 400 * DAY,
        expires_at: NOW - 400 * DAY + 366 * DAY,
        has_key: 0,
        key: [0; 32],
        ttl: 0,
    };
    let m = RawMediator {
        id: [1; 16],
        name: "Médiation de nuit".into(),
        role: "street mediators".into(),
        phone: "+33 (1) 23-45.67".into(),
        area: "u09t".into(),
        hours: String::new().into(),
        verified_at: NOW - 10 * DAY,
        expires_at: NOW + 100 * DAY,
    };
    let hb_at = NOW - 7_200;
    // Two relays of two operators: the city's (mailbox, switch, circuit,
    // bootstrap) and an association's (mailbox and switch, and a role bit
    // this version does not know, kept and ignored).
    let city_relay = RawRelay {
        peer: [&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20][..], &[0x31; 32]].concat(),
        roles: 0x0f,
        operator: "Ville d'Ivry".into(),
        addrs: vec![
            "/ip4/192.0.2.10/tcp/4001".into(),
            "/ip4/192.0.2.10/udp/4001/quic-v1".into(),
        ],
    };
    let association_relay = RawRelay {
        peer: [&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20][..], &[0x42; 32]].concat(),
        roles: 0x83,
        operator: "Nuits Solidaires".into(),
        addrs: vec!["/dns4/relay.example.org/tcp/4001".into()],
    };
    RawDirectory {
        version: 3,
        city: "Ivry-sur-Seine".into(),
        serial: 7,
        issued_at: NOW - 3_600,
        expires_at: NOW + 47 * 3_600,
        n_places: None,
        places: vec![a, b, c],
        mediators: vec![m],
        heartbeats: vec![([1; 16], hb_at, heartbeat_sig(&PLACE_SECRET, [1; 16], hb_at))],
        relays: vec![city_relay, association_relay],
        token_keys: vec![token_key()],
    }
}

/// The same document through the crate's own types.
fn typed_directory() -> Directory {
    let r = raw_directory();
    let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    Directory {
        city: s(&r.city),
        serial: r.serial,
        issued_at: r.issued_at,
        expires_at: r.expires_at,
        places: r
            .places
            .iter()
            .map(|p| SafePlace {
                id: PlaceId(p.id),
                name: s(&p.name),
                kind: PlaceKind::from_code(p.kind).unwrap(),
                location: Location::from_e7(p.lat_e7, p.lon_e7).unwrap(),
                opening_hours: s(&p.hours),
                contact: s(&p.contact),
                verified_at: p.verified_at,
                expires_at: p.expires_at,
                heartbeat_key: (p.has_key == 1).then_some(DirectoryPublicKey(p.key)),
                heartbeat_ttl_secs: p.ttl,
            })
            .collect(),
        mediators: r
            .mediators
            .iter()
            .map(|m| Mediator {
                id: PlaceId(m.id),
                name: s(&m.name),
                role: s(&m.role),
                phone: s(&m.phone),
                area: s(&m.area),
                hours: s(&m.hours),
                verified_at: m.verified_at,
                expires_at: m.expires_at,
            })
            .collect(),
        heartbeats: r
            .heartbeats
            .iter()
            .map(|(id, at, _)| {
                Heartbeat::sign(PlaceId(*id), *at, &DirectoryKey::from_bytes(&PLACE_SECRET))
            })
            .collect(),
        relays: r
            .relays
            .iter()
            .map(|x| RelayEntry {
                peer: x.peer.clone(),
                roles: RelayRoles(x.roles),
                operator: s(&x.operator),
                addrs: x.addrs.iter().map(|a| s(a)).collect(),
            })
            .collect(),
        token_keys: r
            .token_keys
            .iter()
            .map(|(p, spki)| TokenKey::from_spki(*p, spki).unwrap())
            .collect(),
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct PlaceFreshness {
    id: String,
    /// `fresh`, `stale` or `expired`.
    status: String,
    /// When the listing stops holding (`expired`: stopped).
    until: u64,
}

fn place_freshness(id: &PlaceId, f: Freshness) -> PlaceFreshness {
    let until = match f {
        Freshness::Fresh { until } | Freshness::Stale { until } => until,
        Freshness::Expired { since } => since,
    };
    PlaceFreshness {
        id: id.to_hex(),
        status: f.as_str().into(),
        until,
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct ValidDirectory {
    now: u64,
    last_serial: Option<u64>,
    bytes: String,
    serial: u64,
    /// Every listed place's freshness at `now`, in id order.
    places: Vec<PlaceFreshness>,
    /// Ids of the places a phone shows at `now`.
    shown: Vec<String>,
    /// Ids of the mediators whose entry holds at `now`.
    mediators_shown: Vec<String>,
    /// The relays listed, in order, as decoded.
    relays: Vec<RelayVector>,
    /// The token keys listed, in order: period start and key id (hex).
    token_keys: Vec<(u64, String)>,
}

/// A listed relay: its peer id bytes (hex), role bits, the roles this
/// version knows, operator and addresses.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct RelayVector {
    peer: String,
    roles: u8,
    known_roles: Vec<String>,
    operator: String,
    addrs: Vec<String>,
}

/// A refusal: `error` is the `DirectoryError` variant, `reason` its stable
/// snake_case name.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Refused {
    name: String,
    now: u64,
    last_serial: Option<u64>,
    bytes: String,
    error: String,
    reason: String,
}

/// A heartbeat sent to a relay, checked against a listed place at `now`;
/// `error` null means accepted.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct HeartbeatVector {
    name: String,
    place: String,
    now: u64,
    bytes: String,
    error: Option<String>,
    reason: Option<String>,
}

/// A flag checked with `verify_flag(bytes, now, min_difficulty)`; `error`
/// null means accepted, with id `id`.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct FlagVector {
    name: String,
    now: u64,
    min_difficulty: u8,
    bytes: String,
    id: Option<String>,
    error: Option<String>,
    reason: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct DirectoryVectors {
    description: String,
    city_secret: String,
    city_key: String,
    place_key_secret: String,
    place_key: String,
    directory: ValidDirectory,
    invalid_directories: Vec<Refused>,
    heartbeats: Vec<HeartbeatVector>,
    flags: Vec<FlagVector>,
}

fn city_key() -> DirectoryPublicKey {
    DirectoryKey::from_bytes(&CITY_SECRET).public()
}

fn refused(name: &str, now: u64, last: Option<u64>, bytes: Vec<u8>) -> Refused {
    let e = verify_directory(&bytes, &city_key(), now, last)
        .err()
        .unwrap_or_else(|| panic!("{name} was accepted"));
    Refused {
        name: name.into(),
        now,
        last_serial: last,
        bytes: hex::encode(bytes),
        error: variant(&e),
        reason: e.reason().into(),
    }
}

fn invalid_directories() -> Vec<Refused> {
    let base = raw_directory();
    let with = |f: &dyn Fn(&mut RawDirectory)| {
        let mut d = base.clone();
        f(&mut d);
        d.signed()
    };
    let place = |f: &dyn Fn(&mut RawPlace)| with(&|d| f(&mut d.places[0]));
    let mediator = |f: &dyn Fn(&mut RawMediator)| with(&|d| f(&mut d.mediators[0]));
    let relay = |f: &dyn Fn(&mut RawRelay)| with(&|d| f(&mut d.relays[0]));
    let signed = base.signed();
    let v = |name: &str, bytes: Vec<u8>| refused(name, NOW, None, bytes);
    vec![
        // 2. Structure, in the order the decoder meets it.
        v("truncated", signed[..signed.len() - 1].to_vec()),
        v("trailing_byte", [signed.as_slice(), &[0]].concat()),
        v("version_1", with(&|d| d.version = 1)),
        v("version_2", with(&|d| d.version = 2)),
        v("version_4", with(&|d| d.version = 4)),
        v("city_not_utf8", with(&|d| d.city = vec![0x49, 0xff])),
        v("places_over_1024", with(&|d| d.n_places = Some(1025))),
        v("unknown_kind_12", place(&|p| p.kind = 12)),
        v("kind_0", place(&|p| p.kind = 0)),
        v("name_not_utf8", place(&|p| p.name = vec![0xc3, 0x28])),
        v("latitude_over_90", place(&|p| p.lat_e7 = 900_000_001)),
        v(
            "longitude_under_minus_180",
            place(&|p| p.lon_e7 = -1_800_000_001),
        ),
        v("option_flag_2", place(&|p| p.has_key = 2)),
        v("name_97_bytes", place(&|p| p.name = vec![b'a'; 97])),
        v("name_blank", place(&|p| p.name = " \u{a0} ".into())),
        v("name_empty", place(&|p| p.name = Vec::new())),
        v(
            "name_with_a_control_character",
            place(&|p| p.name = "Bar\u{7}".into()),
        ),
        v(
            "contact_with_a_newline",
            place(&|p| p.contact = "a\nb".into()),
        ),
        v(
            "hours_with_c1_control",
            place(&|p| p.hours = "Mo\u{85}".into()),
        ),
        v(
            "expires_at_equals_verified_at",
            place(&|p| p.expires_at = p.verified_at),
        ),
        v(
            "listing_valid_366_days_and_1_second",
            place(&|p| p.expires_at = p.verified_at + 366 * DAY + 1),
        ),
        v(
            "heartbeat_key_of_small_order",
            place(&|p| {
                p.key = [0; 32];
                p.key[0] = 1;
            }),
        ),
        v("heartbeat_key_without_ttl", place(&|p| p.ttl = 0)),
        v(
            "heartbeat_ttl_over_30_days",
            place(&|p| p.ttl = 30 * 86_400 + 1),
        ),
        v("heartbeat_ttl_without_key", with(&|d| d.places[1].ttl = 60)),
        v(
            "phone_with_a_letter",
            mediator(&|m| m.phone = "+33 1 a".into()),
        ),
        v("phone_empty", mediator(&|m| m.phone = Vec::new())),
        v("phone_33_bytes", mediator(&|m| m.phone = vec![b'1'; 33])),
        v("area_not_geohash", mediator(&|m| m.area = "u09ta".into())),
        v(
            "area_8_characters",
            mediator(&|m| m.area = "u09tvqxy".into()),
        ),
        v("area_upper_case", mediator(&|m| m.area = "U09T".into())),
        v("role_blank", mediator(&|m| m.role = "  ".into())),
        v("relay_without_a_role", relay(&|r| r.roles = 0)),
        v("relay_peer_id_empty", relay(&|r| r.peer = Vec::new())),
        v("relay_peer_id_65_bytes", relay(&|r| r.peer = vec![1; 65])),
        v("relay_operator_blank", relay(&|r| r.operator = " ".into())),
        v("relay_without_an_address", relay(&|r| r.addrs.clear())),
        v(
            "relay_with_9_addresses",
            relay(&|r| r.addrs = vec!["/ip4/192.0.2.1/tcp/1".into(); 9]),
        ),
        v(
            "relay_address_not_multiaddr_text",
            relay(&|r| r.addrs[0] = "192.0.2.1:4001".into()),
        ),
        v(
            "relays_over_64",
            with(&|d| {
                let r = d.relays[0].clone();
                d.relays = (0..65u8)
                    .map(|i| RawRelay {
                        peer: vec![i],
                        ..r.clone()
                    })
                    .collect();
            }),
        ),
        v(
            "token_key_not_an_spki",
            with(&|d| d.token_keys[0].1 = vec![0x30; 40]),
        ),
        v(
            "token_key_period_not_a_day",
            with(&|d| d.token_keys[0].0 += 1),
        ),
        v(
            "token_keys_over_4",
            with(&|d| {
                let (p, k) = d.token_keys[0].clone();
                d.token_keys = (0..5).map(|i| (p + i * 86_400, k.clone())).collect();
            }),
        ),
        // 3. The city's signature.
        v("signature_flipped", {
            let mut b = signed.clone();
            *b.last_mut().unwrap() ^= 1;
            b
        }),
        v("signed_by_another_key", {
            let mut b = base.body();
            let sig = SigningKey::from_bytes(&[0x11; 32])
                .sign(&[DIRECTORY_SIGN_DOMAIN, &b].concat())
                .to_bytes();
            b.extend(sig);
            b
        }),
        // 4-6. Times and serial.
        refused(
            "issued_301_s_ahead",
            base.issued_at - 301,
            None,
            signed.clone(),
        ),
        refused("expires_at_now", base.expires_at, None, signed.clone()),
        refused("rollback", NOW, Some(base.serial + 1), signed.clone()),
        // 7. The checks of the whole document, after the signature.
        v("city_65_bytes", with(&|d| d.city = vec![b'a'; 65])),
        v("city_blank", with(&|d| d.city = " ".into())),
        v(
            "expires_at_equals_issued_at",
            with(&|d| {
                d.issued_at = NOW + 100;
                d.expires_at = NOW + 100;
            }),
        ),
        v("places_out_of_order", with(&|d| d.places.swap(0, 1))),
        v("relays_out_of_order", with(&|d| d.relays.swap(0, 1))),
        v(
            "token_keys_repeated",
            with(&|d| d.token_keys.push(d.token_keys[0].clone())),
        ),
        v(
            "relays_repeated",
            with(&|d| d.relays[1].peer = d.relays[0].peer.clone()),
        ),
        v(
            "places_repeated",
            with(&|d| d.places[1].id = d.places[0].id),
        ),
        v(
            "mediators_out_of_order",
            with(&|d| {
                let mut m = d.mediators[0].clone();
                m.id = [0; 16];
                d.mediators.push(m);
            }),
        ),
        v(
            "heartbeats_out_of_order",
            with(&|d| {
                let at = d.heartbeats[0].1;
                d.places[1].has_key = 1;
                d.places[1].key = place_key();
                d.places[1].ttl = 3_600;
                // Place 2's heartbeat before place 1's.
                d.heartbeats
                    .insert(0, ([2; 16], at, heartbeat_sig(&PLACE_SECRET, [2; 16], at)));
            }),
        ),
        v(
            "heartbeat_for_an_unlisted_place",
            with(&|d| {
                let at = d.heartbeats[0].1;
                d.heartbeats[0] = ([9; 16], at, heartbeat_sig(&PLACE_SECRET, [9; 16], at));
            }),
        ),
        v(
            "heartbeat_for_a_place_without_key",
            with(&|d| {
                let at = d.heartbeats[0].1;
                d.heartbeats[0] = ([2; 16], at, heartbeat_sig(&PLACE_SECRET, [2; 16], at));
            }),
        ),
        v(
            "heartbeat_signed_by_another_key",
            with(&|d| {
                let at = d.heartbeats[0].1;
                d.heartbeats[0].2 = heartbeat_sig(&[0x21; 32], [1; 16], at);
            }),
        ),
        v(
            "heartbeat_301_s_after_issue",
            with(&|d| {
                let at = d.issued_at + 301;
                d.heartbeats[0] = ([1; 16], at, heartbeat_sig(&PLACE_SECRET, [1; 16], at));
            }),
        ),
    ]
}

fn heartbeat_vectors() -> Vec<HeartbeatVector> {
    let place = typed_directory().places[0].clone();
    let hb = |name: &str, now: u64, bytes: Vec<u8>| {
        let r = Heartbeat::from_bytes(&bytes).and_then(|h| verify_heartbeat(&h, &place, now));
        HeartbeatVector {
            name: name.into(),
            place: place.id.to_hex(),
            now,
            bytes: hex::encode(bytes),
            error: r.as_ref().err().map(variant),
            reason: r.as_ref().err().map(|e| e.reason().to_owned()),
        }
    };
    let bytes = |secret: &[u8; 32], id: [u8; 16], at: u64| {
        let mut b = vec![1u8];
        b.extend(id);
        b.extend(at.to_be_bytes());
        b.extend(heartbeat_sig(secret, id, at));
        b
    };
    let good = bytes(&PLACE_SECRET, [1; 16], NOW - 60);
    vec![
        hb("valid", NOW, good.clone()),
        hb("one_day_old", NOW + DAY - 60, good.clone()),
        hb("one_day_and_1_second_old", NOW + DAY - 59, good.clone()),
        hb("300_s_ahead", NOW - 360, good.clone()),
        hb("301_s_ahead", NOW - 361, good.clone()),
        hb(
            "signed_by_another_key",
            NOW,
            bytes(&[0x21; 32], [1; 16], NOW - 60),
        ),
        hb(
            "for_another_place",
            NOW,
            bytes(&PLACE_SECRET, [2; 16], NOW - 60),
        ),
        hb("truncated", NOW, good[..88].to_vec()),
        hb("one_byte_too_many", NOW, [good.as_slice(), &[0]].concat()),
        hb("version_2", NOW, {
            let mut b = good.clone();
            b[0] = 2;
            b
        }),
    ]
}

fn flag_vectors() -> Vec<FlagVector> {
    const DIFFICULTY: u8 = 12;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let flag = Flag::seal(
        PlaceId([1; 16]),
        FlagReason::Closed,
        NOW,
        DIFFICULTY,
        &mut rng,
    );
    let other = Flag::seal(
        PlaceId([2; 16]),
        FlagReason::WrongInformation,
        NOW,
        DIFFICULTY,
        &mut rng,
    );
    let good = flag.to_bytes();
    let at = flag.observed_at();
    let f = |name: &str, now: u64, min: u8, bytes: Vec<u8>| {
        let r = verify_flag(&bytes, now, min);
        FlagVector {
            name: name.into(),
            now,
            min_difficulty: min,
            bytes: hex::encode(bytes),
            id: r.as_ref().ok().map(|v| hex::encode(v.id)),
            error: r.as_ref().err().map(variant),
            reason: r.as_ref().err().map(|e| e.reason().to_owned()),
        }
    };
    let with = |g: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        g(&mut b);
        b
    };
    vec![
        f("closed", NOW, DIFFICULTY, good.clone()),
        f("wrong_information", NOW, DIFFICULTY, other.to_bytes()),
        f("observed_120_s_ahead", at - 120, DIFFICULTY, good.clone()),
        f(
            "observed_7_days_ago",
            at + 7 * DAY,
            DIFFICULTY,
            good.clone(),
        ),
        f("too_large", NOW, DIFFICULTY, with(&|b| b.push(0))),
        f("truncated", NOW, DIFFICULTY, with(&|b| b.truncate(126))),
        f("version_2", NOW, DIFFICULTY, with(&|b| b[0] = 2)),
        f("reason_4", NOW, DIFFICULTY, with(&|b| b[17] = 4)),
        f("reason_0", NOW, DIFFICULTY, with(&|b| b[17] = 0)),
        f("observed_121_s_ahead", at - 121, DIFFICULTY, good.clone()),
        f(
            "observed_7_days_and_1_second_ago",
            at + 7 * DAY + 1,
            DIFFICULTY,
            good.clone(),
        ),
        f(
            "difficulty_under_the_minimum",
            NOW,
            DIFFICULTY + 1,
            good.clone(),
        ),
        f(
            "stamp_does_not_hold",
            NOW,
            DIFFICULTY,
            with(&|b| b[54] = 40),
        ),
        f("signature_flipped", NOW, DIFFICULTY, with(&|b| b[126] ^= 1)),
    ]
}

fn directory_vectors() -> DirectoryVectors {
    let raw = raw_directory();
    let bytes = raw.signed();
    let last = Some(raw.serial);
    let verified = verify_directory(&bytes, &city_key(), NOW, last).unwrap();
    let d = verified.directory();
    DirectoryVectors {
        description: "City directory vectors (docs/protocol.md §7). Secrets are for testing \
                      only. `directory` verifies with verify_directory(bytes, city_key, now, \
                      last_serial) and lists `relays` (role bits this version does not know \
                      are kept and ignored) and `token_keys` (period start, key id: the key \
                      of tokens.json); each of `invalid_directories` is refused with `error`. \
                      `heartbeats` are checked by a relay against place `place` of the valid \
                      directory, `flags` with verify_flag(bytes, now, min_difficulty)."
            .into(),
        city_secret: hex::encode(CITY_SECRET),
        city_key: city_key().to_hex(),
        place_key_secret: hex::encode(PLACE_SECRET),
        place_key: hex::encode(place_key()),
        directory: ValidDirectory {
            now: NOW,
            last_serial: last,
            bytes: hex::encode(&bytes),
            serial: d.serial,
            places: d
                .places
                .iter()
                .map(|p| place_freshness(&p.id, verified.freshness(&p.id, NOW).unwrap()))
                .collect(),
            shown: verified
                .places_at(NOW)
                .iter()
                .map(|(p, _)| p.id.to_hex())
                .collect(),
            mediators_shown: verified
                .mediators_at(NOW)
                .iter()
                .map(|m| m.id.to_hex())
                .collect(),
            relays: d
                .relays
                .iter()
                .map(|r| RelayVector {
                    peer: hex::encode(&r.peer),
                    roles: r.roles.0,
                    known_roles: r.roles.names().iter().map(|n| (*n).to_owned()).collect(),
                    operator: r.operator.clone(),
                    addrs: r.addrs.clone(),
                })
                .collect(),
            token_keys: d
                .token_keys
                .iter()
                .map(|k| (k.period_start(), hex::encode(k.key_id())))
                .collect(),
        },
        invalid_directories: invalid_directories(),
        heartbeats: heartbeat_vectors(),
        flags: flag_vectors(),
    }
}

#[test]
fn directory_vectors_agree_with_the_code() {
    // The independent encoder writes what the crate signs.
    let typed = typed_directory()
        .sign(&DirectoryKey::from_bytes(&CITY_SECRET))
        .unwrap();
    assert_eq!(hex::encode(typed), hex::encode(raw_directory().signed()));

    let fresh = directory_vectors();
    let file: DirectoryVectors = sync_file("directory.json", &fresh);
    assert_eq!(file, fresh, "directory.json no longer matches the code");

    let key: DirectoryPublicKey = file.city_key.parse().unwrap();
    let v = &file.directory;
    let verified =
        verify_directory(&hex::decode(&v.bytes).unwrap(), &key, v.now, v.last_serial).unwrap();
    assert_eq!(verified.directory().serial, v.serial);
    for p in &v.places {
        let id: PlaceId = p.id.parse().unwrap();
        let f = verified.freshness(&id, v.now).unwrap();
        assert_eq!(&place_freshness(&id, f), p, "{}", p.id);
    }
    let relays = &verified.directory().relays;
    assert_eq!(relays.len(), v.relays.len());
    for (r, want) in relays.iter().zip(&v.relays) {
        assert_eq!(hex::encode(&r.peer), want.peer);
        assert_eq!(r.roles.0, want.roles);
        assert_eq!(r.roles.names(), want.known_roles);
        assert_eq!((&r.operator, &r.addrs), (&want.operator, &want.addrs));
    }
    let keys: Vec<(u64, String)> = verified
        .directory()
        .token_keys
        .iter()
        .map(|k| (k.period_start(), hex::encode(k.key_id())))
        .collect();
    assert_eq!(keys, v.token_keys);
    let statuses: Vec<&str> = v.places.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["fresh", "stale", "expired"]);

    let mut errors = std::collections::BTreeSet::new();
    for r in &file.invalid_directories {
        let e = verify_directory(&hex::decode(&r.bytes).unwrap(), &key, r.now, r.last_serial)
            .expect_err(&r.name);
        assert_eq!(variant(&e), r.error, "{}", r.name);
        assert_eq!(e.reason(), r.reason, "{}", r.name);
        errors.insert(variant(&e));
    }
    // Every structure error a signed directory can give, but TooLarge (a
    // 1 MiB vector), and every later check.
    for e in [
        "Truncated",
        "TrailingBytes",
        "UnsupportedVersion",
        "UnknownKind",
        "BadText",
        "TooLong",
        "BadLocation",
        "BadPhone",
        "BadArea",
        "BadTimes",
        "BadKey",
        "TooMany",
        "NotCanonical",
        "BadSignature",
        "FromFuture",
        "Expired",
        "Rollback",
        "HeartbeatUnknownPlace",
        "HeartbeatBadSignature",
        "BadRelay",
        "BadTokenKey",
    ] {
        assert!(errors.contains(e), "no vector for {e}");
    }

    let place = verified.directory().places[0].clone();
    for h in &file.heartbeats {
        assert_eq!(h.place, place.id.to_hex());
        let r = Heartbeat::from_bytes(&hex::decode(&h.bytes).unwrap())
            .and_then(|hb| verify_heartbeat(&hb, &place, h.now));
        assert_eq!(r.as_ref().err().map(variant), h.error, "{}", h.name);
    }
    for f in &file.flags {
        let r = verify_flag(&hex::decode(&f.bytes).unwrap(), f.now, f.min_difficulty);
        assert_eq!(r.as_ref().err().map(variant), f.error, "{}", f.name);
        assert_eq!(r.ok().map(|v| hex::encode(v.id)), f.id, "{}", f.name);
    }
}

// ---------------------------------------------------------------------------
// Switch deposit (docs/circle.md §8)
// ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct AlertVector {
    mailbox: String,
    envelope: String,
}

/// A relay rule applied to the deposit: `relay` is the relay's own
/// identifier, `error` null means accepted.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct DepositCheck {
    name: String,
    relay: String,
    now: u64,
    bytes: String,
    error: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct DepositVectors {
    description: String,
    owner_secret: String,
    key: String,
    relay: String,
    release_at: u64,
    /// The real alerts, before padding with dummies and shuffling.
    alerts: Vec<AlertVector>,
    deposit: String,
    checks: Vec<DepositCheck>,
}

fn identity(seed: u8) -> Identity {
    let mut b = vec![1u8];
    b.extend((0..64).map(|i| seed.wrapping_mul(31).wrapping_add(i)));
    Identity::from_bytes(&b).unwrap()
}

fn deposit_vectors() -> DepositVectors {
    let (alice, bob) = (identity(1), identity(2));
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
    let release_at = NOW + 3_600;
    let overdue = Message::Overdue {
        journey: MessageId([0x11; 16]),
        expected_arrival: NOW + 3_600 - 120 - 900,
        last_seen: None,
    };
    let pair = PairSecret::derive(&alice, bob.public()).unwrap();
    let alert = Alert {
        mailbox: mailbox_address(&pair, NOW / 86_400, bob.public()),
        envelope: envelope::seal(
            &alice,
            bob.public(),
            &InviteToken([0x33; 16]),
            3,
            &overdue,
            &mut rng,
        )
        .unwrap(),
    };
    let mut owner_bytes = vec![1u8];
    owner_bytes.extend([0x55; 32]);
    owner_bytes.extend(0u64.to_be_bytes());
    let owner = SwitchOwner::from_bytes(&owner_bytes).unwrap();
    let relay = [0x66; 32];
    let deposit = owner
        .deposit(relay, release_at, vec![alert.clone()], &mut rng)
        .unwrap()
        .to_bytes();
    let check = |name: &str, relay: [u8; 32], now: u64, bytes: &[u8], twice: bool| {
        let mut s = DeadManSwitch::new(relay, 16);
        let mut r = s.handle(bytes, now);
        if twice {
            r = s.handle(bytes, now);
        }
        DepositCheck {
            name: name.into(),
            relay: hex::encode(relay),
            now,
            bytes: hex::encode(bytes),
            error: r.err().as_ref().map(variant),
        }
    };
    let flipped = {
        let mut b = deposit.clone();
        *b.last_mut().unwrap() ^= 1;
        b
    };
    let horizon = ronde_protocol::circle::switch::MAX_SWITCH_HORIZON_SECS;
    let checks = vec![
        check("accepted", relay, NOW, &deposit, false),
        check(
            "release_at_the_horizon",
            relay,
            release_at - horizon,
            &deposit,
            false,
        ),
        check(
            "release_past_the_horizon",
            relay,
            release_at - horizon - 1,
            &deposit,
            false,
        ),
        check("release_at_now", relay, release_at, &deposit, false),
        check("another_relay", [0x67; 32], NOW, &deposit, false),
        check("deposited_twice", relay, NOW, &deposit, true),
        check("signature_flipped", relay, NOW, &flipped, false),
        check(
            "no_alert",
            relay,
            NOW,
            &{
                let mut b = deposit[..74].to_vec();
                b.push(0);
                b.extend(&deposit[deposit.len() - 64..]);
                b
            },
            false,
        ),
        check(
            "alert_not_an_envelope",
            relay,
            NOW,
            &{
                let mut b = deposit.clone();
                b[75 + 32] = 2;
                b
            },
            false,
        ),
    ];
    DepositVectors {
        description: "A dead-man's switch deposit (docs/circle.md §8): one real alert, \
                      padded with dummies to 4 and shuffled (the dummies come from this \
                      generator's seeded randomness: check the deposit by parsing and \
                      verifying it, not by re-making it). Each check hands `bytes` to a \
                      relay whose identifier is `relay` at `now`; `error` null means \
                      accepted."
            .into(),
        owner_secret: hex::encode(&*owner.to_bytes()),
        key: hex::encode(owner.public_key()),
        relay: hex::encode(relay),
        release_at,
        alerts: vec![AlertVector {
            mailbox: hex::encode(alert.mailbox),
            envelope: hex::encode(&alert.envelope),
        }],
        deposit: hex::encode(&deposit),
        checks,
    }
}

#[test]
fn switch_deposit_vectors() {
    let fresh = deposit_vectors();
    let file: DepositVectors = sync_file("switch-deposit.json", &fresh);
    // Everything but the envelope of the real alert (HPKE is randomised
    // by the generator's seeded rng, so it is stable too) must match.
    assert_eq!(
        file, fresh,
        "switch-deposit.json no longer matches the code"
    );

    let bytes = hex::decode(&file.deposit).unwrap();
    assert_eq!(bytes.len(), 1 + 1 + 32 + 32 + 8 + 1 + 4 * (32 + 561) + 64);
    let d = Deposit::from_bytes(&bytes).unwrap();
    assert_eq!(hex::encode(d.key()), file.key);
    assert_eq!(hex::encode(d.relay()), file.relay);
    assert_eq!(d.release_at(), file.release_at);
    assert_eq!(d.alerts().len(), 4);
    for a in &file.alerts {
        assert!(
            d.alerts()
                .iter()
                .any(|b| hex::encode(b.mailbox) == a.mailbox
                    && hex::encode(&b.envelope) == a.envelope)
        );
    }
    for c in &file.checks {
        let relay: [u8; 32] = hex::decode(&c.relay).unwrap().try_into().unwrap();
        let mut s = DeadManSwitch::new(relay, 16);
        let b = hex::decode(&c.bytes).unwrap();
        let mut r = s.handle(&b, c.now);
        if c.name == "deposited_twice" {
            r = s.handle(&b, c.now);
        }
        assert_eq!(r.err().as_ref().map(variant), c.error, "{}", c.name);
    }
}
