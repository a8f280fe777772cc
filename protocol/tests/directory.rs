//! The city directory: signing and verification, forged, tampered, expired
//! and replayed documents, freshness through heartbeats, and anonymous flags.

#![allow(clippy::unwrap_used)]

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ronde_protocol::directory::*;

const NOW: u64 = 1_790_000_000;
const DAY: u64 = 86_400;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn place(id: u8, key: Option<DirectoryPublicKey>) -> SafePlace {
    SafePlace {
        id: PlaceId([id; 16]),
        name: format!("Pharmacie n°{id}"),
        kind: PlaceKind::Pharmacy,
        location: Location::from_degrees(48.8156, 2.3844).unwrap(),
        opening_hours: "Mo-Sa 08:00-22:00".into(),
        contact: "+33 1 00 00 00 00".into(),
        verified_at: NOW,
        expires_at: NOW + 90 * DAY,
        heartbeat_key: key,
        heartbeat_ttl_secs: if key.is_some() { 7 * 86_400 } else { 0 },
    }
}

fn mediator(id: u8) -> Mediator {
    Mediator {
        id: PlaceId([id; 16]),
        name: "Équipe de nuit".into(),
        role: "street mediators".into(),
        phone: "+33 6 00 00 00 00".into(),
        area: "u09tv".into(),
        hours: "Th-Sa 21:00-03:00".into(),
        verified_at: NOW,
        expires_at: NOW + 30 * DAY,
    }
}

fn directory(places: Vec<SafePlace>) -> Directory {
    Directory {
        city: "Ivry-sur-Seine".into(),
        serial: 10,
        issued_at: NOW,
        expires_at: NOW + 2 * DAY,
        places,
        mediators: vec![mediator(1), mediator(2)],
        heartbeats: vec![],
        relays: vec![],
        token_keys: vec![],
    }
}

#[test]
fn a_signed_directory_verifies_and_round_trips() {
    let city = DirectoryKey::generate(&mut rng(1));
    let place_key = DirectoryKey::generate(&mut rng(2));
    let mut dir = directory(vec![place(1, None), place(2, Some(place_key.public()))]);
    dir.heartbeats = vec![Heartbeat::sign(PlaceId([2; 16]), NOW - 60, &place_key)];
    let bytes = dir.sign(&city).unwrap();
    let v = verify_directory(&bytes, &city.public(), NOW + 10, Some(9)).unwrap();
    assert_eq!(v.directory(), &dir);
    assert_eq!(v.places_at(NOW).len(), 2);
    assert_eq!(v.mediators_at(NOW).len(), 2);
    // The encoding is canonical: decoding and re-signing gives the same bytes.
    assert_eq!(
        Directory::decode_unverified(&bytes)
            .unwrap()
            .sign(&city)
            .unwrap(),
        bytes
    );
    // Locations survive at 1e-7 degrees.
    let p = &v.directory().places[0];
    assert!((p.location.lat() - 48.8156).abs() < 1e-7);
    assert!((p.location.lon() - 2.3844).abs() < 1e-7);
}

#[test]
fn a_directory_signed_by_another_key_is_rejected_as_forged() {
    let city = DirectoryKey::generate(&mut rng(1));
    let forger = DirectoryKey::generate(&mut rng(3));
    let bytes = directory(vec![place(1, None)]).sign(&forger).unwrap();
    assert_eq!(
        verify_directory(&bytes, &city.public(), NOW, None),
        Err(DirectoryError::BadSignature)
    );
}

#[test]
fn every_single_byte_change_is_rejected() {
    let city = DirectoryKey::generate(&mut rng(1));
    let bytes = directory(vec![place(1, None)]).sign(&city).unwrap();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut t = bytes.clone();
            t[i] ^= flip;
            assert!(
                verify_directory(&t, &city.public(), NOW, None).is_err(),
                "flipping bit {flip:#x} of byte {i} was accepted"
            );
        }
    }
    // Truncated or extended input is malformed, not accepted.
    assert_eq!(
        verify_directory(&bytes[..bytes.len() - 1], &city.public(), NOW, None),
        Err(DirectoryError::Truncated)
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        verify_directory(&longer, &city.public(), NOW, None),
        Err(DirectoryError::TrailingBytes(1))
    );
}

#[test]
fn tampering_a_field_breaks_the_signature() {
    let city = DirectoryKey::generate(&mut rng(1));
    let bytes = directory(vec![place(1, None)]).sign(&city).unwrap();
    // Change the place's name in place, keeping the structure valid.
    let needle = "Pharmacie n°1".as_bytes();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let mut t = bytes.clone();
    t[at] = b'Q';
    assert!(
        Directory::decode_unverified(&t).is_ok(),
        "still well formed"
    );
    assert_eq!(
        verify_directory(&t, &city.public(), NOW, None),
        Err(DirectoryError::BadSignature)
    );
}

#[test]
fn expired_future_and_replayed_directories_are_rejected() {
    let city = DirectoryKey::generate(&mut rng(1));
    let dir = directory(vec![place(1, None)]);
    let bytes = dir.sign(&city).unwrap();
    assert_eq!(
        verify_directory(&bytes, &city.public(), dir.expires_at, None),
        Err(DirectoryError::Expired(dir.expires_at))
    );
    assert!(verify_directory(&bytes, &city.public(), dir.expires_at - 1, None).is_ok());
    assert_eq!(
        verify_directory(&bytes, &city.public(), NOW - 3600, None),
        Err(DirectoryError::FromFuture)
    );
    assert_eq!(
        verify_directory(&bytes, &city.public(), NOW, Some(11)),
        Err(DirectoryError::Rollback {
            serial: 10,
            last: 11
        })
    );
    assert!(verify_directory(&bytes, &city.public(), NOW, Some(10)).is_ok());
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let city = DirectoryKey::generate(&mut rng(1));
    let big = vec![1u8; MAX_DIRECTORY_SIZE + 1];
    assert!(matches!(
        verify_directory(&big, &city.public(), NOW, None),
        Err(DirectoryError::TooLarge { .. })
    ));
    assert!(matches!(
        Heartbeat::from_bytes(&[1u8; HEARTBEAT_LEN + 1]),
        Err(DirectoryError::TooLarge { .. })
    ));
    assert!(matches!(
        verify_flag(&[1u8; FLAG_LEN + 1], NOW, 0),
        Err(DirectoryError::TooLarge { .. })
    ));
}

#[test]
fn signing_refuses_what_the_format_cannot_hold() {
    let city = DirectoryKey::generate(&mut rng(1));
    let mut d = directory(vec![place(2, None), place(1, None)]);
    assert!(matches!(
        d.sign(&city),
        Err(DirectoryError::NotCanonical(_))
    ));
    d.places = vec![place(1, None), place(1, None)];
    assert!(matches!(
        d.sign(&city),
        Err(DirectoryError::NotCanonical(_))
    ));

    let mut p = place(1, None);
    p.name = "x".repeat(MAX_NAME_LEN + 1);
    assert!(matches!(p.check(), Err(DirectoryError::TooLong { .. })));
    p.name = "bad\nname".into();
    assert_eq!(p.check(), Err(DirectoryError::BadText("name")));
    p.name = "  ".into();
    assert_eq!(p.check(), Err(DirectoryError::BadText("name")));
    let mut p = place(1, None);
    p.expires_at = p.verified_at + MAX_LISTING_AGE_SECS + 1;
    assert!(matches!(p.check(), Err(DirectoryError::BadTimes(_))));
    let mut p = place(1, None);
    p.heartbeat_ttl_secs = 60;
    assert!(matches!(p.check(), Err(DirectoryError::NotCanonical(_))));

    let mut m = mediator(1);
    m.phone = "call me".into();
    assert_eq!(m.check(), Err(DirectoryError::BadPhone));
    let mut m = mediator(1);
    m.area = "U09".into();
    assert_eq!(m.check(), Err(DirectoryError::BadArea));
    assert!(Location::from_degrees(91.0, 0.0).is_err());
    assert!(Location::from_degrees(0.0, f64::NAN).is_err());
}

#[test]
fn entries_round_trip_alone() {
    let key = DirectoryKey::generate(&mut rng(4));
    let p = place(7, Some(key.public()));
    assert_eq!(SafePlace::from_bytes(&p.to_bytes().unwrap()).unwrap(), p);
    let m = mediator(7);
    assert_eq!(Mediator::from_bytes(&m.to_bytes().unwrap()).unwrap(), m);
    let hb = Heartbeat::sign(p.id, NOW, &key);
    assert_eq!(Heartbeat::from_bytes(&hb.to_bytes()).unwrap(), hb);
    assert_eq!(hb.to_bytes().len(), HEARTBEAT_LEN);
}

#[test]
fn a_place_that_stops_confirming_goes_stale_then_expires() {
    let key = DirectoryKey::generate(&mut rng(5));
    let mut p = place(1, Some(key.public()));
    p.expires_at = NOW + 10 * DAY;
    // City confirmation alone: fresh, then stale in its last quarter, then
    // expired.
    assert_eq!(
        freshness(&p, None, NOW),
        Freshness::Fresh {
            until: NOW + 10 * DAY
        }
    );
    assert_eq!(
        freshness(&p, None, NOW + 8 * DAY),
        Freshness::Stale {
            until: NOW + 10 * DAY
        }
    );
    assert_eq!(
        freshness(&p, None, NOW + 10 * DAY),
        Freshness::Expired {
            since: NOW + 10 * DAY
        }
    );
    // A heartbeat on day 9 keeps it fresh for its ttl (7 days) from then…
    let hb = Heartbeat::sign(p.id, NOW + 9 * DAY, &key);
    assert_eq!(
        freshness(&p, Some(&hb), NOW + 10 * DAY),
        Freshness::Fresh {
            until: NOW + 16 * DAY
        }
    );
    // …and when the place stops sending them, the listing expires.
    assert!(!freshness(&p, Some(&hb), NOW + 16 * DAY).is_shown());
    // Heartbeats never keep a listing past a year after the city verified it.
    let late = Heartbeat::sign(p.id, NOW + 365 * DAY, &key);
    assert_eq!(
        freshness(&p, Some(&late), NOW + MAX_LISTING_AGE_SECS),
        Freshness::Expired {
            since: NOW + MAX_LISTING_AGE_SECS
        }
    );
    // A place without a key cannot be kept alive by a heartbeat.
    let keyless = place(1, None);
    assert_eq!(
        freshness(&keyless, Some(&hb), NOW + 95 * DAY),
        Freshness::Expired {
            since: NOW + 90 * DAY
        }
    );
}

#[test]
fn a_verified_directory_hides_expired_places_and_mediators() {
    let city = DirectoryKey::generate(&mut rng(1));
    let mut short = place(2, None);
    short.expires_at = NOW + DAY;
    let mut dir = directory(vec![place(1, None), short]);
    dir.mediators[1].expires_at = NOW + DAY;
    let bytes = dir.sign(&city).unwrap();
    let v = verify_directory(&bytes, &city.public(), NOW + DAY + 1, None).unwrap();
    let shown: Vec<_> = v
        .places_at(NOW + DAY + 1)
        .iter()
        .map(|(p, _)| p.id)
        .collect();
    assert_eq!(shown, vec![PlaceId([1; 16])]);
    assert_eq!(
        v.freshness(&PlaceId([2; 16]), NOW + DAY + 1),
        Some(Freshness::Expired { since: NOW + DAY })
    );
    assert_eq!(v.mediators_at(NOW + DAY + 1).len(), 1);
}

#[test]
fn forged_heartbeats_are_rejected() {
    let city = DirectoryKey::generate(&mut rng(1));
    let key = DirectoryKey::generate(&mut rng(6));
    let other = DirectoryKey::generate(&mut rng(7));
    let p = place(1, Some(key.public()));

    let good = Heartbeat::sign(p.id, NOW, &key);
    assert_eq!(verify_heartbeat(&good, &p, NOW + 60), Ok(()));
    let forged = Heartbeat::sign(p.id, NOW, &other);
    assert_eq!(
        verify_heartbeat(&forged, &p, NOW),
        Err(DirectoryError::HeartbeatBadSignature)
    );
    let mut moved = good;
    moved.confirmed_at += 1;
    assert_eq!(
        verify_heartbeat(&moved, &p, NOW),
        Err(DirectoryError::HeartbeatBadSignature)
    );
    assert_eq!(
        verify_heartbeat(&good, &p, NOW + 2 * DAY),
        Err(DirectoryError::HeartbeatTooOld)
    );
    assert_eq!(
        verify_heartbeat(&good, &p, NOW - 3600),
        Err(DirectoryError::FromFuture)
    );
    assert_eq!(
        verify_heartbeat(&good, &place(1, None), NOW),
        Err(DirectoryError::HeartbeatUnknownPlace)
    );

    // A directory carrying a forged heartbeat is refused even when the city
    // signed it.
    let mut dir = directory(vec![p]);
    dir.heartbeats = vec![forged];
    assert_eq!(dir.sign(&city), Err(DirectoryError::HeartbeatBadSignature));
}

#[test]
fn flags_are_anonymous_stamped_and_checked() {
    let place = PlaceId([9; 16]);
    let a = Flag::seal(place, FlagReason::Closed, NOW, 8, &mut rng(10));
    let b = Flag::seal(place, FlagReason::Closed, NOW, 8, &mut rng(11));
    assert_ne!(a.public_key, b.public_key, "one-time keys");
    let bytes = a.to_bytes();
    assert_eq!(bytes.len(), FLAG_LEN);
    let v = verify_flag(&bytes, NOW + 60, 8).unwrap();
    assert_eq!(v.flag, a);
    assert_ne!(v.id, verify_flag(&b.to_bytes(), NOW, 8).unwrap().id);

    assert_eq!(
        verify_flag(&bytes, NOW, 20),
        Err(DirectoryError::NotEnoughWork)
    );
    assert_eq!(
        verify_flag(&bytes, NOW + MAX_FLAG_AGE_SECS + 120, 8),
        Err(DirectoryError::FlagTooOld)
    );
    assert_eq!(
        verify_flag(&bytes, NOW - 3600, 8),
        Err(DirectoryError::FromFuture)
    );
    let mut t = bytes.clone();
    t[17] = 1 + FlagReason::ALL.len() as u8;
    assert!(matches!(
        verify_flag(&t, NOW, 8),
        Err(DirectoryError::UnknownReason(_))
    ));
    // Changing the reason from "closed" to "refused help" breaks the stamp
    // or the signature.
    let mut t = bytes.clone();
    t[17] = FlagReason::RefusedHelp.code();
    assert!(matches!(
        verify_flag(&t, NOW, 8),
        Err(DirectoryError::NotEnoughWork | DirectoryError::BadSignature)
    ));
    let mut t = bytes.clone();
    let last = t.len() - 1;
    t[last] ^= 1;
    assert_eq!(verify_flag(&t, NOW, 0), Err(DirectoryError::BadSignature));
}

#[test]
fn json_views_use_names_and_hex() {
    let p = place(1, None);
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["kind"], "pharmacy");
    assert_eq!(json["id"], "01".repeat(16));
    assert!((json["location"]["lat"].as_f64().unwrap() - 48.8156).abs() < 1e-9);
    let back: SafePlace = serde_json::from_value(json).unwrap();
    assert_eq!(back, p);
    assert_eq!(
        "public_service".parse::<PlaceKind>(),
        Ok(PlaceKind::PublicService)
    );
}

#[test]
fn places_near_a_point_come_nearest_first() {
    let city = DirectoryKey::generate(&mut rng(1));
    let mut far = place(2, None);
    far.location = Location::from_degrees(48.8456, 2.3844).unwrap(); // ~3.3 km north
    let mut near = place(3, None);
    near.location = Location::from_degrees(48.8166, 2.3844).unwrap(); // ~110 m
    let bytes = directory(vec![place(1, None), far, near])
        .sign(&city)
        .unwrap();
    let v = verify_directory(&bytes, &city.public(), NOW, None).unwrap();
    let got: Vec<(PlaceId, u32)> = v
        .places_near(48.8156, 2.3844, 1_000.0, NOW)
        .unwrap()
        .iter()
        .map(|p| (p.place.id, p.distance_m.round() as u32))
        .collect();
    assert_eq!(got, vec![(PlaceId([1; 16]), 0), (PlaceId([3; 16]), 111)]);
    assert_eq!(
        v.places_near(48.8156, 2.3844, 5_000.0, NOW).unwrap().len(),
        3
    );
    assert!(v.places_near(f64::NAN, 0.0, 10.0, NOW).is_err());
    assert!(v.places_near(0.0, 0.0, -1.0, NOW).is_err());
}
