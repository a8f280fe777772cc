//! The city directory between real nodes on the memory transport: a phone
//! configured with a city key fetches the signed directory from a peer
//! over `/ronde/directory/1`, keeps it across a restart, drops places as
//! they expire, and refuses forged, expired and rolled-back directories
//! sent by a hostile peer; the API's directory routes and their errors;
//! the stable peer id of an identity file.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::{noise, request_response, yamux, Multiaddr, Swarm, Transport};
use reqwest::StatusCode;
use ronde_node::directory::wire::{DirectoryCodec, DirectoryResponse, DIRECTORY_PROTOCOL};
use ronde_node::{ManualClock, Node, NodeConfig};
use ronde_protocol::directory::{
    Directory, DirectoryKey, Location, Mediator, PlaceId, PlaceKind, SafePlace,
};
use serde_json::{json, Value};

const DAY: u64 = 86_400;

fn place(id: u8, name: &str, at: (f64, f64), verified_at: u64, valid_for: u64) -> SafePlace {
    SafePlace {
        id: PlaceId([id; 16]),
        name: name.into(),
        kind: PlaceKind::Pharmacy,
        location: Location::from_degrees(at.0, at.1).expect("location"),
        opening_hours: "Mo-Sa 09:00-21:00".into(),
        contact: "+33 1 00 00 00 00".into(),
        verified_at,
        expires_at: verified_at + valid_for,
        heartbeat_key: None,
        heartbeat_ttl_secs: 0,
    }
}

/// A directory of Ivry signed by `key`: three places at 0, ~110 m and
/// ~1.1 km north of [`IVRY`] (listed out of distance order), the nearest
/// expiring after a day, the others after 30 days; one mediator.
fn signed(key: &DirectoryKey, serial: u64, issued_at: u64, valid_for: u64) -> Vec<u8> {
    let mut places = vec![
        place(3, "Far", (IVRY.0 + 0.01, IVRY.1), issued_at, 30 * DAY),
        place(1, "Here", IVRY, issued_at, DAY),
        place(2, "Near", (IVRY.0 + 0.001, IVRY.1), issued_at, 30 * DAY),
    ];
    places.sort_by_key(|p| p.id);
    Directory {
        city: "Ivry".into(),
        serial,
        issued_at,
        expires_at: issued_at + valid_for,
        places,
        mediators: vec![Mediator {
            id: PlaceId([9; 16]),
            name: "Médiateurs de nuit".into(),
            role: "street mediators".into(),
            phone: "+33 6 00 00 00 00".into(),
            area: String::new(),
            hours: "Fr-Sa 20:00-02:00".into(),
            verified_at: issued_at,
            expires_at: issued_at + 30 * DAY,
        }],
        heartbeats: vec![],
        relays: vec![],
        token_keys: vec![],
    }
    .sign(key)
    .expect("sign")
}

fn city_key() -> DirectoryKey {
    DirectoryKey::generate(&mut rand::rngs::OsRng)
}

fn phone_config(dir: &std::path::Path, clock: &ManualClock, city: &DirectoryKey) -> NodeConfig {
    let mut c = config(dir, clock, None);
    c.city_keys = vec![city.public()];
    c
}

fn names(places: &ronde_node::directory::SafePlaces) -> Vec<String> {
    places.places.iter().map(|p| p.name.clone()).collect()
}

async fn wait_serial(node: &Node, serial: u64) {
    eventually("the directory to arrive", || async {
        let d = node.directory().await.ok()?.directory?;
        (d.summary.serial == serial).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_fetches_verifies_keeps_and_expires_the_directory_of_its_city() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let clock = ManualClock::new(T0);
    let city = city_key();

    // Any node holding a verified directory serves it: here a plain node.
    let server = start(dirs[0].path(), &clock, None).await;
    let s1 = server
        .set_directory(city.public(), signed(&city, 10, T0, 2 * DAY))
        .await
        .expect("the server holds it");
    assert_eq!(s1, 10);
    // The wrong key is refused by `set_directory` too.
    assert!(server
        .set_directory(city_key().public(), signed(&city, 11, T0, 2 * DAY))
        .await
        .is_err());

    let phone = start_with(phone_config(dirs[1].path(), &clock, &city)).await;
    let none = phone
        .safe_places(IVRY.0, IVRY.1, 5_000.0)
        .await
        .expect("places");
    assert!(none.directory.is_none() && none.places.is_empty());
    connect(&phone, &server).await;
    wait_serial(&phone, 10).await;

    let places = phone
        .safe_places(IVRY.0, IVRY.1, 5_000.0)
        .await
        .expect("places");
    assert_eq!(names(&places), ["Here", "Near", "Far"], "nearest first");
    assert!(places.places[1].distance_m > 100.0 && places.places[1].distance_m < 120.0);
    assert_eq!(
        places.directory.as_ref().map(|d| d.city.as_str()),
        Some("Ivry")
    );
    let within = phone
        .safe_places(IVRY.0, IVRY.1, 500.0)
        .await
        .expect("places");
    assert_eq!(names(&within), ["Here", "Near"], "the radius holds");
    let dir = phone.directory().await.expect("directory").directory;
    let dir = dir.expect("a directory");
    assert_eq!(dir.mediators.len(), 1);
    assert_eq!(dir.places, 3);

    // A newer directory reaches the phone through the periodic refresh.
    server
        .set_directory(city.public(), signed(&city, 12, T0, 2 * DAY))
        .await
        .expect("newer");
    wait_serial(&phone, 12).await;

    // "Here" expires after a day: the phone stops showing it, by its clock.
    clock.advance(DAY + 60);
    let places = phone
        .safe_places(IVRY.0, IVRY.1, 5_000.0)
        .await
        .expect("places");
    assert_eq!(names(&places), ["Near", "Far"]);

    // Restart: the directory is still there, with no peer at all.
    phone.shutdown().await.expect("shutdown");
    let phone = start_with(phone_config(dirs[1].path(), &clock, &city)).await;
    let places = phone
        .safe_places(IVRY.0, IVRY.1, 5_000.0)
        .await
        .expect("places");
    assert_eq!(names(&places), ["Near", "Far"]);
    assert_eq!(places.directory.map(|d| d.serial), Some(12));

    // Past the document's own expiry, nothing is shown.
    clock.advance(DAY);
    let places = phone
        .safe_places(IVRY.0, IVRY.1, 5_000.0)
        .await
        .expect("places");
    assert!(places.directory.is_none() && places.places.is_empty());
    assert!(phone.directory().await.expect("dir").directory.is_none());

    phone.shutdown().await.expect("shutdown");
    server.shutdown().await.expect("shutdown");
}

/// A hostile peer: answers every directory request with whatever bytes the
/// test puts in `answer`.
async fn rogue(answer: Arc<Mutex<Vec<u8>>>) -> (Multiaddr, tokio::task::JoinHandle<()>) {
    let mut swarm: Swarm<request_response::Behaviour<DirectoryCodec>> =
        libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_other_transport(|key| {
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    MemoryTransport::default()
                        .upgrade(upgrade::Version::V1)
                        .authenticate(noise::Config::new(key)?)
                        .multiplex(yamux::Config::default()),
                )
            })
            .expect("transport")
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    DirectoryCodec::default(),
                    [(DIRECTORY_PROTOCOL, request_response::ProtocolSupport::Full)],
                    request_response::Config::default(),
                )
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
    swarm
        .listen_on("/memory/0".parse().expect("addr"))
        .expect("listen");
    let peer = *swarm.local_peer_id();
    let addr = loop {
        if let libp2p::swarm::SwarmEvent::NewListenAddr { address, .. } =
            swarm.select_next_some().await
        {
            break address;
        }
    };
    let task = tokio::spawn(async move {
        loop {
            if let libp2p::swarm::SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            }) = swarm.select_next_some().await
            {
                let bytes = answer.lock().map(|a| a.clone()).unwrap_or_default();
                let _ = swarm
                    .behaviour_mut()
                    .send_response(channel, DirectoryResponse::Directory(bytes));
            }
        }
    });
    (addr.with(libp2p::multiaddr::Protocol::P2p(peer)), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_rolled_back_directories_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = ManualClock::new(T0);
    let city = city_key();
    let other = city_key();
    let answer = Arc::new(Mutex::new(signed(&other, 50, T0, 2 * DAY)));
    let (addr, task) = rogue(answer.clone()).await;

    let phone = start_with(phone_config(dir.path(), &clock, &city)).await;
    phone.dial(addr).await.expect("dial");
    let refused = |n: u64| {
        let phone = phone.clone();
        async move {
            eventually("a refusal", || async {
                (phone.directory_stats().await.ok()?.refused >= n).then_some(())
            })
            .await
        }
    };
    let shown = || async {
        let p = phone
            .safe_places(IVRY.0, IVRY.1, 5_000.0)
            .await
            .expect("places");
        (p.directory.map(|d| d.serial), p.places.len())
    };

    // Signed by another key: refused, never shown.
    refused(1).await;
    assert_eq!(shown().await, (None, 0));

    // Signed by the city, but expired.
    let before = phone.directory_stats().await.expect("stats").refused;
    *answer.lock().expect("lock") = signed(&city, 60, T0 - 3 * DAY, DAY);
    refused(before + 1).await;
    assert_eq!(shown().await, (None, 0));

    // Tampered with after signing (one byte of a name changed).
    let mut tampered = signed(&city, 61, T0, 2 * DAY);
    if let Some(i) = tampered.windows(4).position(|w| w == b"Near") {
        tampered[i] = b'F';
    }
    let before = phone.directory_stats().await.expect("stats").refused;
    *answer.lock().expect("lock") = tampered;
    refused(before + 1).await;
    assert_eq!(shown().await, (None, 0));

    // A genuine one is taken.
    *answer.lock().expect("lock") = signed(&city, 70, T0, 2 * DAY);
    wait_serial(&phone, 70).await;
    assert_eq!(shown().await, (Some(70), 3));

    // An older genuine one, replayed, is refused as a rollback, even
    // after a restart.
    phone.shutdown().await.expect("shutdown");
    let phone = start_with(phone_config(dir.path(), &clock, &city)).await;
    *answer.lock().expect("lock") = signed(&city, 65, T0, 3 * DAY);
    let (addr2, task2) = rogue(answer.clone()).await;
    phone.dial(addr2).await.expect("dial");
    eventually("the rollback to be refused", || async {
        (phone.directory_stats().await.ok()?.refused >= 1).then_some(())
    })
    .await;
    let p = phone
        .safe_places(IVRY.0, IVRY.1, 5_000.0)
        .await
        .expect("places");
    assert_eq!(p.directory.map(|d| d.serial), Some(70));

    phone.shutdown().await.expect("shutdown");
    task.abort();
    task2.abort();
}

/// A node's API on 127.0.0.1:0, its credential written to `data_dir`.
async fn serve_api(
    node: &Node,
    data_dir: &std::path::Path,
) -> (String, reqwest::Client, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let auth = ronde_node::api::ApiAuth::create(data_dir).expect("api-token");
    let http = common::api::client(Some(auth.token()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ronde_node::api::serve(
        listener,
        node.clone(),
        auth,
        async move {
            let _ = rx.await;
        },
    ));
    (base, http, tx)
}

async fn call(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("send");
    let status = resp.status();
    let body = resp.json::<Value>().await.expect("JSON");
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_the_directory_and_checks_flags() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let clock = ManualClock::new(T0);
    let city = city_key();
    let phone = start_with(phone_config(dirs[0].path(), &clock, &city)).await;
    let (base, http, stop) = serve_api(&phone, dirs[0].path()).await;
    let get = |path: &str| http.get(format!("{base}{path}"));
    let flag = |id: &str, body: Value| {
        http.post(format!("{base}/v1/safe-places/{id}/flag"))
            .json(&body)
    };

    // No directory yet: 200 with `directory: null`, not an error.
    let (s, b) = call(get("/v1/safe-places?lat=48.8156&lon=2.3844")).await;
    assert_eq!(
        (s, &b),
        (StatusCode::OK, &json!({"directory": null, "places": []}))
    );
    let (s, b) = call(get("/v1/directory")).await;
    assert_eq!((s, &b), (StatusCode::OK, &json!({"directory": null})));
    let here = PlaceId([1; 16]).to_hex();
    let (s, b) = call(flag(&here, json!({"reason": "closed"}))).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_place"))
    );

    let server = start(dirs[1].path(), &clock, None).await;
    server
        .set_directory(city.public(), signed(&city, 10, T0, 2 * DAY))
        .await
        .expect("held");
    connect(&phone, &server).await;
    wait_serial(&phone, 10).await;

    let (s, b) = call(get("/v1/safe-places?lat=48.8156&lon=2.3844&radius_m=500")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["directory"]["city"], "Ivry");
    assert_eq!(b["directory"]["serial"], 10);
    let first = &b["places"][0];
    assert_eq!(first["name"], "Here");
    assert_eq!(first["id"], here);
    assert_eq!(first["kind"], "pharmacy");
    let lat = first["location"]["lat"].as_f64().unwrap_or(f64::NAN);
    assert!((lat - IVRY.0).abs() < 1e-6, "{first}");
    assert_eq!(first["freshness"]["status"], "fresh");
    assert!(first["freshness"]["until"].is_u64());
    assert_eq!(first["distance_m"].as_f64(), Some(0.0));
    assert_eq!(b["places"].as_array().map(Vec::len), Some(2));
    let (s, b) = call(get("/v1/directory")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["directory"]["mediators"][0]["role"], "street mediators");
    assert_eq!(b["directory"]["expires_at"], T0 + 2 * DAY);

    // Bad input: the API's JSON errors.
    for (path, code) in [
        ("/v1/safe-places?lat=91&lon=2", "bad_latitude"),
        ("/v1/safe-places?lat=48&lon=2&radius_m=50001", "bad_radius"),
        ("/v1/safe-places?lon=2", "missing_field"),
        ("/v1/safe-places?lat=48&lon=2&zoom=1", "unknown_field"),
    ] {
        let (s, b) = call(get(path)).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{path}: {b}"
        );
    }
    for (id, body, status, code) in [
        ("xyz", json!({"reason": "closed"}), 422, "bad_place_id"),
        (
            here.as_str(),
            json!({"reason": "rude"}),
            422,
            "unknown_reason",
        ),
        (here.as_str(), json!({}), 422, "missing_field"),
        (
            here.as_str(),
            json!({"reason": "closed", "x": 1}),
            422,
            "unknown_field",
        ),
        (
            &PlaceId([7; 16]).to_hex(),
            json!({"reason": "closed"}),
            404,
            "unknown_place",
        ),
    ] {
        let (s, b) = call(flag(id, body)).await;
        assert_eq!(
            (s.as_u16(), b["error"].as_str()),
            (status, Some(code)),
            "{b}"
        );
    }

    // No relay among the peers, but a peer that speaks the stem: the flag
    // is sealed and goes along the stem to it (docs/protocol.md §3.4), not
    // into the phone's outbox; that peer, with no relay and no other stem
    // peer, keeps it in its own outbox for the next relay.
    let (s, b) = call(flag(&here, json!({"reason": "refused_help"}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b["status"], "sent");
    assert_eq!(b["reason"], "refused_help");
    assert_eq!(b["relays"], 0);
    eventually("the stem peer to keep the flag for a relay", || async {
        (server.directory_stats().await.ok()?.queued_flags == 1).then_some(())
    })
    .await;
    assert_eq!(
        phone.directory_stats().await.expect("stats").queued_flags,
        0
    );

    let _ = stop.send(());
    phone.shutdown().await.expect("shutdown");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_file_keeps_the_peer_id_and_phones_change_theirs() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = ManualClock::new(T0);
    let key_file = dir.path().join("peer-key");
    let mut c = config(&dir.path().join("host"), &clock, None);
    c.identity_file = Some(key_file.clone());
    let a = start_with(c.clone()).await;
    let id = a.peer_id();
    a.shutdown().await.expect("shutdown");
    let b = start_with(c).await;
    assert_eq!(b.peer_id(), id, "same peer id after a restart");
    b.shutdown().await.expect("shutdown");
    assert!(key_file.exists());

    let p = config(&dir.path().join("phone"), &clock, None);
    let a = start_with(p.clone()).await;
    let first = a.peer_id();
    a.shutdown().await.expect("shutdown");
    let b = start_with(p).await;
    assert_ne!(b.peer_id(), first, "a phone takes a fresh peer id");
    b.shutdown().await.expect("shutdown");

    // A corrupt file stops the node and is left as it was.
    std::fs::write(&key_file, b"RPK\x01short").expect("write");
    let mut c = config(&dir.path().join("host"), &clock, None);
    c.identity_file = Some(key_file.clone());
    let err = Node::start(c).await.err().map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("peer-key")),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&key_file).expect("read"), b"RPK\x01short");
}
