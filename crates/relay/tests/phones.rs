//! The directory reaching phones, end to end, over libp2p: a real relay
//! and real phone nodes on the memory transport. A phone configured with
//! the city key gets the relay's signed directory from it and its API lists
//! the places nearest first; a place that stops being confirmed leaves the
//! phone once it expires while the relay's dashboard shows it stale, then
//! expired; a flag posted on the phone's API is counted by the relay
//! (flags reach the dashboard), and a phone away from any relay gets the
//! directory from another phone and queues its flag until it meets one;
//! the relay keeps its peer id across restarts.

mod common;

use std::sync::Arc;

use common::*;
use ronde_node::{ManualClock, Node, NodeConfig};
use ronde_protocol::directory::DirectoryPublicKey;
use serde_json::{json, Value};

const DAY: u64 = 86_400;
/// Where the phone is: the test area, near the first place.
const HERE: (f64, f64) = (48.8156, 2.3844);

async fn admin(
    relay: &ronde_relay::Relay,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
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
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn add_place(relay: &ronde_relay::Relay, name: &str, lat: f64, lon: f64) -> String {
    let (status, p) = admin(
        relay,
        reqwest::Method::POST,
        "/api/places",
        json!({"name": name, "kind": "pharmacy", "lat": lat, "lon": lon,
               "opening_hours": "Mo-Sa 09:00-21:00"}),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    p["id"].as_str().expect("id").to_owned()
}

/// A phone: a test node that knows the city key, with its API.
struct Phone {
    node: Node,
    api: String,
    /// Sends the API's token.
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Phone {
    async fn start(dir: &std::path::Path, clock: &ManualClock, city: DirectoryPublicKey) -> Phone {
        let mut c = NodeConfig::for_tests(dir);
        c.clock = Arc::new(clock.clone());
        c.city_keys = vec![city];
        let node = Node::start(c).await.expect("phone starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let api = format!("http://{}", listener.local_addr().expect("addr"));
        let auth = ronde_node::api::ApiAuth::create(dir).expect("api-token");
        let mut headers = reqwest::header::HeaderMap::new();
        let bearer = format!("Bearer {}", auth.token());
        headers.insert(
            reqwest::header::AUTHORIZATION,
            bearer.parse().expect("header"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(ronde_node::api::serve(
            listener,
            node.clone(),
            auth,
            async move {
                let _ = rx.await;
            },
        ));
        Phone {
            node,
            api,
            http,
            stop: Some(tx),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.expect("JSON")
    }

    async fn places(&self) -> Value {
        self.get(&format!("/v1/safe-places?lat={}&lon={}", HERE.0, HERE.1))
            .await
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.node.shutdown().await.expect("phone stops");
    }
}

fn names(places: &Value) -> Vec<String> {
    places["places"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn dashboard_place<'a>(views: &'a Value, id: &str) -> &'a Value {
    views
        .as_array()
        .expect("places")
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("place {id} not listed: {views}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_get_the_directory_over_libp2p_and_their_flags_reach_the_relay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let mut config = relay_config(&dir.path().join("relay"));
    // Listings hold one day after the city verified them.
    config.directory.listing_validity_days = 1;
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    let city = relay.shared().directory.public_key();

    // Three places, added out of distance order: ~1.1 km, here, ~220 m.
    let far = add_place(&relay, "Gare RER", HERE.0 + 0.01, HERE.1).await;
    let here = add_place(&relay, "Pharmacie de la Mairie", HERE.0, HERE.1).await;
    let near = add_place(&relay, "Café des Sports", HERE.0 + 0.002, HERE.1).await;
    let (status, m) = admin(
        &relay,
        reqwest::Method::POST,
        "/api/mediators",
        json!({"name": "Équipe de nuit", "role": "street mediators", "phone": "+33 6 00 00 00 00"}),
    )
    .await;
    assert_eq!(status, 201, "{m}");

    // The phone knows only the city key; the directory comes from the
    // relay's node over /ronde/directory/1.
    let phone = Phone::start(&dir.path().join("phone"), &clock, city).await;
    assert_eq!(
        phone.places().await,
        json!({"directory": null, "places": []})
    );
    connect_to_relay_node(&phone.node, &relay).await;
    let places = eventually("the directory to reach the phone", || async {
        let p = phone.places().await;
        (names(&p).len() == 3).then_some(p)
    })
    .await;
    assert_eq!(
        names(&places),
        ["Pharmacie de la Mairie", "Café des Sports", "Gare RER"],
        "nearest first"
    );
    assert_eq!(places["directory"]["city"], "Testville");
    assert_eq!(places["directory"]["key"], city.to_hex());
    assert_eq!(places["places"][0]["id"], here.as_str());
    assert_eq!(places["places"][0]["freshness"]["status"], "fresh");
    let d1 = places["places"][1]["distance_m"].as_f64().unwrap_or(0.0);
    assert!((200.0..250.0).contains(&d1), "{d1}");
    let directory = phone.get("/v1/directory").await;
    assert_eq!(
        directory["directory"]["mediators"][0]["name"],
        "Équipe de nuit"
    );
    assert_eq!(directory["directory"]["places"], 3);

    // A flag on the phone reaches the relay's counts, over libp2p (once the
    // phone knows, from identify, that this peer takes flags).
    eventually("the phone to see a relay that takes flags", || async {
        (phone.node.directory_stats().await.ok()?.flag_relays == 1).then_some(())
    })
    .await;
    let res = phone
        .http
        .post(format!("{}/v1/safe-places/{near}/flag", phone.api))
        .json(&json!({"reason": "closed"}))
        .send()
        .await
        .expect("flag");
    assert_eq!(res.status(), 202);
    let sent: Value = res.json().await.expect("JSON");
    assert_eq!(
        (sent["status"].as_str(), sent["relays"].as_u64()),
        (Some("sent"), Some(1)),
        "{sent}"
    );
    eventually("the relay to count the flag", || async {
        let views = get_json(&relay, "/api/places").await;
        (dashboard_place(&views, &near)["flags"] == json!({"closed": 1})).then_some(())
    })
    .await;
    // The counter goes up just after the store took the flag (the check
    // runs on a blocking thread): the dashboard can show it first.
    eventually("the relay's flag counter", || async {
        (relay
            .shared()
            .metrics
            .flags
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1)
            .then_some(())
    })
    .await;
    eventually("the phone's outbox to empty", || async {
        (phone.node.directory_stats().await.ok()?.queued_flags == 0).then_some(())
    })
    .await;

    // A second phone gets the directory from the first one (any node holding
    // a signed directory passes it on); with no relay among its peers, its
    // flag goes along the stem to the first phone (docs/protocol.md §3.4),
    // which delivers it to the relay.
    let other = Phone::start(&dir.path().join("phone2"), &clock, city).await;
    let first_addr = phone
        .node
        .listen_addrs()
        .await
        .expect("addrs")
        .first()
        .cloned()
        .expect("the phone listens");
    other.node.dial(first_addr).await.expect("dial");
    eventually("the directory to pass from phone to phone", || async {
        (names(&other.places().await).len() == 3).then_some(())
    })
    .await;
    let res = other
        .http
        .post(format!("{}/v1/safe-places/{far}/flag", other.api))
        .json(&json!({"reason": "wrong_information"}))
        .send()
        .await
        .expect("flag");
    assert_eq!(res.status(), 202);
    let queued: Value = res.json().await.expect("JSON");
    assert_eq!(queued["status"], "sent", "{queued}");
    eventually("the flag to be counted", || async {
        let views = get_json(&relay, "/api/places").await;
        (dashboard_place(&views, &far)["flags"] == json!({"wrong_information": 1})).then_some(())
    })
    .await;
    other.stop().await;

    // Twenty hours later the city re-confirms two places, not the one here:
    // the relay signs a new directory and the phone picks it up; the
    // dashboard shows the unconfirmed place going stale.
    let first_serial = places["directory"]["serial"].as_u64().unwrap_or(0);
    clock.advance(20 * 3_600);
    for id in [&far, &near] {
        let (status, _) = admin(
            &relay,
            reqwest::Method::POST,
            &format!("/api/places/{id}/confirm"),
            json!({}),
        )
        .await;
        assert_eq!(status, 204);
    }
    let views = get_json(&relay, "/api/places").await;
    assert_eq!(
        dashboard_place(&views, &here)["freshness"]["status"],
        "stale"
    );
    assert_eq!(
        dashboard_place(&views, &near)["freshness"]["status"],
        "fresh"
    );
    eventually("the new directory to reach the phone", || async {
        let p = phone.places().await;
        (p["directory"]["serial"].as_u64()? > first_serial).then_some(())
    })
    .await;
    let places = phone.places().await;
    assert_eq!(places["places"][0]["name"], "Pharmacie de la Mairie");
    assert_eq!(places["places"][0]["freshness"]["status"], "stale");

    // A day after its verification, the place here has expired: the phone
    // no longer shows it (by its own clock, without asking anyone), and the
    // dashboard says so.
    clock.set(T0 + DAY + 60);
    let places = phone.places().await;
    assert_eq!(names(&places), ["Café des Sports", "Gare RER"]);
    let views = get_json(&relay, "/api/places").await;
    assert_eq!(
        dashboard_place(&views, &here)["freshness"]["status"],
        "expired"
    );
    // Flagging a place the phone no longer shows is refused.
    let res = phone
        .http
        .post(format!("{}/v1/safe-places/{here}/flag", phone.api))
        .json(&json!({"reason": "closed"}))
        .send()
        .await
        .expect("flag");
    assert_eq!(res.status(), 404);

    phone.stop().await;
    relay.shutdown().await.expect("relay stops");
}

/// Dial the relay's node from a phone (which follows no area, so
/// `connect_to_relay` would wait for a subscription that never comes).
async fn connect_to_relay_node(node: &Node, relay: &ronde_relay::Relay) {
    let addr = relay
        .node()
        .listen_addrs()
        .await
        .expect("relay addrs")
        .first()
        .cloned()
        .expect("the relay listens");
    node.dial(addr).await.expect("dial");
    let relay_id = relay.node().peer_id();
    eventually("a connection to the relay", || async {
        node.connected_peers()
            .await
            .ok()?
            .contains(&relay_id)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_keeps_its_peer_id_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let config = relay_config(&dir.path().join("relay"));
    write_city_key(&config);
    let key_file = config.peer_key_path();

    let relay = start_relay(config.clone(), &clock).await;
    let id = relay.node().peer_id();
    relay.shutdown().await.expect("stops");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("the peer key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let bytes = std::fs::read(&key_file).expect("read");

    let relay = start_relay(config, &clock).await;
    assert_eq!(relay.node().peer_id(), id, "same peer id after a restart");
    relay.shutdown().await.expect("stops");
    assert_eq!(
        std::fs::read(&key_file).expect("read"),
        bytes,
        "never rewritten"
    );
}
