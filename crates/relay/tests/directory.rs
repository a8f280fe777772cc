//! The directory through a real relay: the operator adds a place and a
//! mediator; the public `/directory` verifies under the city key and fails
//! under any other; a place's heartbeats keep it fresh and forged ones are
//! refused; a place that stops confirming goes stale, then expired, and
//! leaves the signed directory; anonymous flags are counted once.

mod common;

use common::*;
use rand::SeedableRng;
use ronde_node::{Clock, ManualClock};
use ronde_protocol::directory::{
    verify_directory, DirectoryError, DirectoryKey, DirectoryPublicKey, Flag, FlagReason,
    Freshness, Heartbeat, PlaceId, RelayRoles,
};

const DAY: u64 = 86_400;

async fn public_get(relay: &ronde_relay::Relay, path: &str) -> (u16, Vec<u8>) {
    let addr = relay.public_addr().expect("public listener");
    let res = reqwest::get(format!("http://{addr}{path}"))
        .await
        .expect("get");
    let status = res.status().as_u16();
    (status, res.bytes().await.expect("body").to_vec())
}

async fn public_post(relay: &ronde_relay::Relay, path: &str, body: Vec<u8>) -> (u16, String) {
    let addr = relay.public_addr().expect("public listener");
    let res = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("post");
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

async fn admin(
    relay: &ronde_relay::Relay,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let (client, base) = dashboard(relay);
    let res = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

fn place_status(views: &serde_json::Value, id: &str) -> String {
    views
        .as_array()
        .expect("places")
        .iter()
        .find(|v| v["id"] == id)
        .map(|v| {
            v["freshness"]["status"]
                .as_str()
                .expect("status")
                .to_owned()
        })
        .unwrap_or_else(|| panic!("place {id} not listed: {views}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_serves_a_signed_directory_with_fresh_stale_and_expired_places() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let mut config = relay_config(&dir.path().join("relay"));
    // Listings hold one day after the city confirms them, seven days after
    // the place's own heartbeat.
    config.directory.listing_validity_days = 1;
    config.directory.heartbeat_ttl_days = 7;
    // Another relay of the city, run by an association.
    let other_relay = libp2p::PeerId::random();
    config.directory.operator = "Ville de Testville".into();
    config.directory.relays = vec![ronde_relay::config::ListedRelay {
        peer_id: other_relay.to_string(),
        operator: "Nuits Solidaires".into(),
        addresses: vec!["/ip4/192.0.2.7/tcp/4001".into()],
        roles: vec!["mailbox".into(), "switch".into()],
    }];
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let place_key = DirectoryKey::generate(&mut rng);

    // The city key, as phones are configured with it.
    let (status, key) = public_get(&relay, "/directory/key").await;
    assert_eq!(status, 200);
    let city: DirectoryPublicKey = String::from_utf8(key)
        .expect("utf-8")
        .trim()
        .parse()
        .expect("a public key");

    let (status, place) = admin(
        &relay,
        reqwest::Method::POST,
        "/api/places",
        serde_json::json!({
            "name": "Pharmacie de la Mairie",
            "kind": "pharmacy",
            "lat": 48.8156, "lon": 2.3844,
            "opening_hours": "Mo-Sa 09:00-21:00",
            "contact": "+33 1 00 00 00 00",
            "heartbeat_key": place_key.public().to_hex(),
        }),
    )
    .await;
    assert_eq!(status, 201, "{place}");
    let id_hex = place["id"].as_str().expect("id").to_owned();
    let id: PlaceId = id_hex.parse().expect("place id");
    let (status, m) = admin(
        &relay,
        reqwest::Method::POST,
        "/api/mediators",
        serde_json::json!({"name": "Équipe de nuit", "role": "street mediators", "phone": "+33 6 00 00 00 00", "area": "u09tv"}),
    )
    .await;
    assert_eq!(status, 201, "{m}");
    // Bad input is refused with the reason.
    let (status, err) = admin(
        &relay,
        reqwest::Method::POST,
        "/api/mediators",
        serde_json::json!({"name": "X", "role": "y", "phone": "call me"}),
    )
    .await;
    assert_eq!((status, err["error"].as_str()), (422, Some("bad_phone")));

    // The public directory verifies under the city key and lists both.
    let (status, bytes) = public_get(&relay, "/directory").await;
    assert_eq!(status, 200);
    let v = verify_directory(&bytes, &city, clock.now(), None).expect("verifies");
    assert_eq!(v.directory().city, "Testville");
    assert_eq!(v.places_at(clock.now()).len(), 1);
    assert_eq!(v.mediators_at(clock.now()).len(), 1);
    // It lists the token issuer's keys of today and tomorrow (§8.5).
    let day = clock.now() - clock.now() % DAY;
    let periods: Vec<u64> = v
        .directory()
        .token_keys
        .iter()
        .map(|k| k.period_start())
        .collect();
    assert_eq!(periods, [day, day + DAY]);
    // It lists this relay (the phones' mailbox and switch hosts) and the
    // other one configured, under their operators.
    let relays = &v.directory().relays;
    assert_eq!(relays.len(), 2);
    let own = relays
        .iter()
        .find(|r| r.peer == relay.node().peer_id().to_bytes())
        .expect("the relay lists itself");
    assert_eq!(own.operator, "Ville de Testville");
    assert!(own.roles.has(RelayRoles::MAILBOX) && own.roles.has(RelayRoles::SWITCH));
    assert!(
        own.roles.has(RelayRoles::GOSSIP),
        "a relay is a gossip hub by default, and says so"
    );
    assert!(!own.addrs.is_empty());
    let listed = relays
        .iter()
        .find(|r| r.peer == other_relay.to_bytes())
        .expect("the configured relay is listed");
    assert_eq!(listed.operator, "Nuits Solidaires");
    assert_eq!(listed.roles.names(), ["mailbox", "switch"]);
    let first_serial = v.directory().serial;
    // …and under no other key; tampered bytes fail too.
    let other = DirectoryKey::generate(&mut rng).public();
    assert_eq!(
        verify_directory(&bytes, &other, clock.now(), None),
        Err(DirectoryError::BadSignature)
    );
    let mut tampered = bytes.clone();
    let at = tampered
        .windows(6)
        .position(|w| w == b"Mairie")
        .expect("name in the bytes");
    tampered[at] = b'X';
    assert_eq!(
        verify_directory(&tampered, &city, clock.now(), None),
        Err(DirectoryError::BadSignature)
    );

    // Half a day later the place confirms itself; a forged heartbeat and a
    // heartbeat for an unknown place are refused.
    clock.advance(DAY / 2);
    let forged = Heartbeat::sign(id, clock.now(), &DirectoryKey::generate(&mut rng));
    let (status, body) = public_post(&relay, "/directory/heartbeat", forged.to_bytes()).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("bad_heartbeat_signature"), "{body}");
    let unknown = Heartbeat::sign(PlaceId([7; 16]), clock.now(), &place_key);
    let (status, _) = public_post(&relay, "/directory/heartbeat", unknown.to_bytes()).await;
    assert_eq!(status, 422);
    let (status, _) = public_post(&relay, "/directory/heartbeat", vec![1, 2, 3]).await;
    assert_eq!(status, 422);
    let hb = Heartbeat::sign(id, clock.now(), &place_key);
    let (status, _) = public_post(&relay, "/directory/heartbeat", hb.to_bytes()).await;
    assert_eq!(status, 201);
    let (status, _) = public_post(&relay, "/directory/heartbeat", hb.to_bytes()).await;
    assert_eq!(status, 200, "a replay is not new");

    // Past the city's one-day listing, the heartbeat keeps it fresh.
    clock.advance(3 * DAY);
    let views = get_json(&relay, "/api/places").await;
    assert_eq!(place_status(&views, &id_hex), "fresh");
    // (The relay re-signs every hour of real time; the manual clock jumped.)
    relay
        .shared()
        .directory
        .rebuild(clock.now())
        .expect("re-sign");
    let (_, bytes) = public_get(&relay, "/directory").await;
    let v = verify_directory(&bytes, &city, clock.now(), Some(first_serial)).expect("verifies");
    assert!(v.directory().serial > first_serial);
    assert!(matches!(
        v.freshness(&id, clock.now()),
        Some(Freshness::Fresh { .. })
    ));

    // The place stops confirming: six days after its heartbeat it is going
    // stale (the dashboard lists it), after seven it has expired.
    clock.set(T0 + DAY / 2 + 6 * DAY);
    let views = get_json(&relay, "/api/places").await;
    assert_eq!(place_status(&views, &id_hex), "stale");
    relay
        .shared()
        .directory
        .rebuild(clock.now())
        .expect("re-sign");
    let (_, bytes) = public_get(&relay, "/directory").await;
    let v = verify_directory(&bytes, &city, clock.now(), None).expect("verifies");
    assert!(matches!(
        v.freshness(&id, clock.now()),
        Some(Freshness::Stale { .. })
    ));
    // An old document is refused once it has expired (48 hours).
    let old = bytes.clone();
    assert!(matches!(
        verify_directory(&old, &city, clock.now() + 2 * DAY, None),
        Err(DirectoryError::Expired(_))
    ));

    clock.set(T0 + DAY / 2 + 7 * DAY);
    let views = get_json(&relay, "/api/places").await;
    assert_eq!(place_status(&views, &id_hex), "expired");
    relay
        .shared()
        .directory
        .rebuild(clock.now())
        .expect("re-sign");
    let (_, bytes) = public_get(&relay, "/directory").await;
    let v = verify_directory(&bytes, &city, clock.now(), None).expect("verifies");
    assert!(
        v.directory().place(&id).is_none(),
        "an expired place is not served"
    );
    assert!(v.places_at(clock.now()).is_empty());
    // A replay of the document that still listed it is refused by a phone
    // that has seen the newer one.
    assert!(matches!(
        verify_directory(&old, &city, clock.now(), Some(v.directory().serial)),
        Err(DirectoryError::Rollback { .. })
    ));

    // The city re-confirms it: fresh again, back in the directory.
    let (status, _) = admin(
        &relay,
        reqwest::Method::POST,
        &format!("/api/places/{id_hex}/confirm"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 204);
    let (_, bytes) = public_get(&relay, "/directory").await;
    let v = verify_directory(&bytes, &city, clock.now(), None).expect("verifies");
    assert!(v.directory().place(&id).is_some());

    // Flags: anonymous, stamped, counted once; refused for unknown places.
    let flag = Flag::seal(id, FlagReason::RefusedHelp, clock.now(), 8, &mut rng);
    let (status, _) = public_post(&relay, "/flags", flag.to_bytes()).await;
    assert_eq!(status, 201);
    let (status, _) = public_post(&relay, "/flags", flag.to_bytes()).await;
    assert_eq!(status, 200);
    let weak = Flag::seal(id, FlagReason::Closed, clock.now(), 2, &mut rng);
    let (status, body) = public_post(&relay, "/flags", weak.to_bytes()).await;
    assert_eq!(status, 422, "{body}");
    let stray = Flag::seal(
        PlaceId([3; 16]),
        FlagReason::Closed,
        clock.now(),
        8,
        &mut rng,
    );
    let (status, _) = public_post(&relay, "/flags", stray.to_bytes()).await;
    assert_eq!(status, 404);
    let views = get_json(&relay, "/api/places").await;
    let mine = views
        .as_array()
        .expect("places")
        .iter()
        .find(|v| v["id"] == id_hex.as_str())
        .expect("listed");
    assert_eq!(mine["flags"], serde_json::json!({"refused_help": 1}));

    // Removal.
    let (status, _) = admin(
        &relay,
        reqwest::Method::DELETE,
        &format!("/api/places/{id_hex}"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 204);
    let (_, bytes) = public_get(&relay, "/directory").await;
    let v = verify_directory(&bytes, &city, clock.now(), None).expect("verifies");
    assert!(v.directory().places.is_empty());
    relay.shutdown().await.expect("shutdown");
}
