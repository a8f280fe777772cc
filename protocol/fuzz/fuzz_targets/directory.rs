//! Fuzz the city directory's decoders: the whole signed document
//! (`Directory::decode_unverified`, and `verify_directory` against a fixed
//! city key, what a phone runs on what a relay serves) and its parts
//! (`SafePlace`, `Mediator` and `Heartbeat::from_bytes`, with
//! `verify_heartbeat`, what a relay runs on a place's heartbeat). Every call
//! must give a clean `Ok` or `Err`, never a panic, and:
//!
//! * a directory that decodes and passes its own checks re-encodes to the
//!   same body (canonical encoding);
//! * a verified directory decodes the same way unverified, re-signs to
//!   exactly the same bytes, and answers `places_at`, `places_near`,
//!   `mediators_at` and `freshness` at any time without a panic; each of
//!   its relay entries passes its own checks and names its roles;
//! * a place, mediator or heartbeat that decodes re-encodes to the same
//!   bytes.
//!
//! The city's signature cannot be forged by a fuzzer, so the harness also
//! signs the input as a directory body with the fixed city key, and signs a
//! heartbeat with a fixed place key for the place id and time in the input.
//! Input: bytes 0..8 are the verifier's clock, the rest the bytes.
#![no_main]

use ed25519_dalek::{Signer, SigningKey};
use libfuzzer_sys::fuzz_target;
use ronde_protocol::directory::{
    verify_directory, verify_heartbeat, Directory, DirectoryKey, Heartbeat, Location, Mediator,
    PlaceId, PlaceKind, SafePlace, DIRECTORY_CLOCK_SKEW_SECS, DIRECTORY_SIGN_DOMAIN,
    MAX_HEARTBEAT_AGE_SECS,
};

const CITY_SEED: [u8; 32] = [0x43; 32];
const PLACE_SEED: [u8; 32] = [0x50; 32];
const SIG_LEN: usize = 64;

fn signed_by_city(body: &[u8]) -> Vec<u8> {
    let key = SigningKey::from_bytes(&CITY_SEED);
    let mut input = DIRECTORY_SIGN_DOMAIN.to_vec();
    input.extend_from_slice(body);
    let mut bytes = body.to_vec();
    bytes.extend_from_slice(&key.sign(&input).to_bytes());
    bytes
}

fn directory(bytes: &[u8], now: u64) {
    if let Ok(d) = Directory::decode_unverified(bytes) {
        if d.check().is_ok() {
            let again = d.sign(&DirectoryKey::from_bytes(&CITY_SEED));
            if let Ok(again) = again {
                let body = bytes.len() - SIG_LEN;
                assert_eq!(&again[..body], &bytes[..body], "decoding must be canonical");
            }
        }
    }
    let city = DirectoryKey::from_bytes(&CITY_SEED);
    let signed = signed_by_city(bytes);
    for last_serial in [None, Some(now % 4)] {
        let Ok(verified) = verify_directory(&signed, &city.public(), now, last_serial) else {
            continue;
        };
        let d = verified.directory();
        assert_eq!(Directory::decode_unverified(&signed).as_ref(), Ok(d));
        assert_eq!(
            d.sign(&city).as_deref(),
            Ok(&signed[..]),
            "re-signing must give the same bytes"
        );
        for r in &d.relays {
            assert!(r.check().is_ok(), "a verified relay entry holds");
            assert!(r.roles.names().len() <= 4);
        }
        for at in [now, d.issued_at, d.expires_at, u64::MAX, 0] {
            let _ = verified.places_at(at);
            let _ = verified.mediators_at(at);
            for p in &d.places {
                assert!(verified.freshness(&p.id, at).is_some());
                let (lat, lon) = (p.location.lat(), p.location.lon());
                let near = verified.places_near(lat, lon, 1_000.0, at);
                assert!(near.is_ok(), "a listed place's location is valid");
            }
        }
    }
}

fn parts(bytes: &[u8], now: u64) {
    if let Ok(place) = SafePlace::from_bytes(bytes) {
        if let Ok(again) = place.to_bytes() {
            assert_eq!(again, bytes, "decoding must be canonical");
        }
    }
    if let Ok(mediator) = Mediator::from_bytes(bytes) {
        assert_eq!(
            mediator.to_bytes().as_deref(),
            Ok(bytes),
            "decoding must be canonical"
        );
    }
    let place_key = DirectoryKey::from_bytes(&PLACE_SEED);
    let id = PlaceId(
        bytes
            .get(..16)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 16]),
    );
    let place = SafePlace {
        id,
        name: "Pharmacie".into(),
        kind: PlaceKind::Pharmacy,
        location: Location::from_e7(488_156_000, 23_844_000).expect("a valid location"),
        opening_hours: String::new(),
        contact: String::new(),
        verified_at: 1_790_000_000,
        expires_at: 1_790_000_000 + 86_400,
        heartbeat_key: Some(place_key.public()),
        heartbeat_ttl_secs: 86_400,
    };
    if let Ok(hb) = Heartbeat::from_bytes(bytes) {
        assert_eq!(hb.to_bytes(), bytes, "decoding must be canonical");
        let _ = verify_heartbeat(&hb, &place, now);
    }
    let at = bytes
        .get(16..24)
        .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
    let hb = Heartbeat::sign(id, at, &place_key);
    assert_eq!(Heartbeat::from_bytes(&hb.to_bytes()), Ok(hb));
    let verdict = verify_heartbeat(&hb, &place, now);
    let fresh = at <= now.saturating_add(DIRECTORY_CLOCK_SKEW_SECS)
        && at.saturating_add(MAX_HEARTBEAT_AGE_SECS) >= now;
    assert_eq!(
        verdict.is_ok(),
        fresh,
        "a signed heartbeat holds when its time does"
    );
    let _ = ronde_protocol::directory::freshness(&place, Some(&hb), now);
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (now, bytes) = data.split_at(8);
    let now = u64::from_be_bytes(now.try_into().unwrap_or([0; 8]));
    directory(bytes, now);
    parts(bytes, now);
});
