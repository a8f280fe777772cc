//! The city basemap end to end: the relay serves the operator's PMTiles
//! file whole and by byte ranges; a phone's node fetches it whole once,
//! keeps it in its data directory and serves it to its web app by byte
//! ranges behind the API credential; a file that is not PMTiles is refused
//! and never replaces the cache.

mod common;

use common::*;
use ronde_node::{ManualClock, Node, NodeConfig};

/// A stand-in PMTiles v3 file: the magic, the version, then known bytes.
fn fake_pmtiles() -> Vec<u8> {
    let mut b = b"PMTiles\x03".to_vec();
    b.extend((0..20_000u32).map(|i| (i % 251) as u8));
    b
}

#[tokio::test]
async fn relay_serves_the_basemap_and_a_phone_caches_it_whole() {
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = relay_config(dir.path());
    config.map.basemap = "city.pmtiles".into();
    let bytes = fake_pmtiles();
    std::fs::write(dir.path().join("city.pmtiles"), &bytes).expect("write basemap");
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    let public = format!(
        "http://{}/basemap.pmtiles",
        relay.public_addr().expect("a public listener")
    );
    let client = reqwest::Client::new();

    // Whole, then a range, then a suffix range, then an unsatisfiable one.
    let res = client.get(&public).send().await.expect("get");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    assert_eq!(res.bytes().await.expect("body").as_ref(), bytes.as_slice());
    let res = client
        .get(&public)
        .header("range", "bytes=100-199")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 100-199/{}", bytes.len()).as_str()
    );
    assert_eq!(res.bytes().await.expect("body").as_ref(), &bytes[100..200]);
    let res = client
        .get(&public)
        .header("range", "bytes=-10")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.bytes().await.expect("body").as_ref(),
        &bytes[bytes.len() - 10..]
    );
    let res = client
        .get(&public)
        .header("range", format!("bytes={}-", bytes.len()))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 416);

    // The dashboard's copy needs the operator token; the libraries do not.
    let (c, base) = dashboard(&relay);
    let res = c
        .get(format!("{base}/basemap.pmtiles"))
        .send()
        .await
        .expect("get");
    assert_ne!(res.status(), 200, "the dashboard's basemap needs the token");
    let (status, _) = get_authed(&relay, "/basemap.pmtiles").await;
    assert_eq!(status, 200);
    let res = c
        .get(format!("{base}/vendor/maplibre-gl-csp.js"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 200);
    let cfg = get_json(&relay, "/api/config").await;
    assert_eq!(cfg["basemap"], true);

    // A phone: nothing cached yet, then the whole file once, then ranges.
    let phone_dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(NodeConfig::for_tests(phone_dir.path()))
        .await
        .expect("phone starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let api = format!("http://{}", listener.local_addr().expect("addr"));
    let auth = ronde_node::api::ApiAuth::create(phone_dir.path()).expect("api-token");
    let token = auth.token().to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ronde_node::api::serve(listener, node, auth, async move {
        let _ = rx.await;
    }));
    let res = client
        .get(format!("{api}/v1/basemap.pmtiles"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 404);
    let res = client
        .get(format!("{api}/v1/basemap.pmtiles"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 401, "the cached basemap needs the credential");

    // Not a PMTiles file: refused, nothing cached.
    let res = client
        .post(format!("{api}/v1/basemap/fetch"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "url": format!("{base}/vendor/pmtiles.js") }))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 502);
    assert!(!phone_dir.path().join("basemap.pmtiles").exists());

    let res = client
        .post(format!("{api}/v1/basemap/fetch"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "url": public }))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["bytes"], bytes.len());
    let state: serde_json::Value = client
        .get(format!("{api}/v1/basemap"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(state["cached"], true);
    let res = client
        .get(format!("{api}/v1/basemap.pmtiles"))
        .bearer_auth(&token)
        .header("range", "bytes=0-15")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.expect("body").as_ref(), &bytes[..16]);
    let _ = tx.send(());
    relay.shutdown().await.expect("stops");
}

/// The relay names its published cells by their nearest street from the
/// basemap (real OpenStreetMap streets, node/tests/data) in what it
/// answers and exports: the hotspots, the cells, the GeoJSON, the OGC API
/// and the summary for the city's services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cells_are_named_by_their_street_in_every_answer() {
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().expect("tempdir");
    let area = "u0x1v";
    let mut config = relay_config_in(&dir.path().join("relay"), area);
    std::fs::create_dir_all(&config.data_dir).expect("data dir");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../node/tests/data/kirchberg.pmtiles"
        ),
        config.data_dir.join("city.pmtiles"),
    )
    .expect("basemap");
    config.map.basemap = "city.pmtiles".into();
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    let hot: ronde_protocol::Cell = "u0x1v4u".parse().expect("cell");
    let node = start_node_at(&dir.path().join("node"), &clock, hot).await;
    connect_to_relay_in(&node, &relay, area).await;
    publish(&node, hot, ronde_protocol::Category::PoorLighting, 3).await;
    wait_counted(&relay, 3).await;

    let h = get_json(&relay, "/api/hotspots").await;
    assert_eq!(h["hotspots"][0]["cell"], "u0x1v4u");
    assert_eq!(h["hotspots"][0]["near"], "Haydnstraße");
    let c = get_json(&relay, "/api/cells").await;
    assert_eq!(c["cells"][0]["near"], "Haydnstraße");
    let g = get_json(&relay, "/api/export.geojson").await;
    assert_eq!(g["features"][0]["properties"]["near"], "Haydnstraße");
    let o = get_json(&relay, "/ogc/collections/cells/items").await;
    assert_eq!(o["features"][0]["properties"]["near"], "Haydnstraße");
    let (status, html) = get_authed(&relay, "/api/summary.html?lang=fr").await;
    assert_eq!(status, 200);
    assert!(html.contains("Haydnstraße (u0x1v4u)"), "{html}");
    node.shutdown().await.expect("node");
    relay.shutdown().await.expect("relay");
}
