//! OGC API – Features at `/ogc/`, read by GDAL's own client (`ogrinfo`
//! and `ogr2ogr` with the OAPIF driver, Debian's `gdal-bin`): the landing
//! page, conformance, the `cells` collection and its items with bbox,
//! datetime and category filters and paging; the same k-suppression and
//! operator token as the rest of the dashboard's API.
//!
//! Without `ogrinfo` the GDAL half says so loudly and is skipped, unless
//! `CI` is set: CI installs `gdal-bin` (.ci/run).

mod common;

use std::process::Command;

use common::*;
use ronde_node::ManualClock;
use ronde_protocol::Category;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdal_reads_the_cells_through_ogc_api_features() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let config = relay_config(&dir.path().join("relay"));
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    let node = start_node(&dir.path().join("node"), &clock).await;
    connect_to_relay(&node, &relay).await;
    let (a, b, c) = (cell("w0"), cell("w5"), cell("x1"));
    publish(&node, a, Category::Harassment, 3).await;
    publish(&node, b, Category::Following, 4).await;
    publish(&node, c, Category::Harassment, 2).await;
    wait_counted(&relay, 9).await;
    let (client, base) = dashboard(&relay);

    // The token is needed, as for the rest of the API.
    let res = client
        .get(format!("{base}/ogc/"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 401);
    let landing = get_json(&relay, "/ogc/").await;
    assert!(landing["links"]
        .as_array()
        .expect("links")
        .iter()
        .any(|l| l["rel"] == "data"));
    let conf = get_json(&relay, "/ogc/conformance").await;
    assert!(conf["conformsTo"]
        .to_string()
        .contains("ogcapi-features-1/1.0/conf/core"));
    let items = get_json(&relay, "/ogc/collections/cells/items").await;
    assert_eq!(items["numberMatched"], 2, "C is under k: {items}");
    // Paging: one at a time, with a next link.
    let page = get_json(&relay, "/ogc/collections/cells/items?limit=1").await;
    assert_eq!(page["numberReturned"], 1);
    let next = page["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["rel"] == "next")
        .and_then(|l| l["href"].as_str())
        .expect("a next link")
        .to_owned();
    let rest = next.split("/ogc/").nth(1).expect("path");
    let page2 = get_json(&relay, &format!("/ogc/{rest}")).await;
    assert_eq!(page2["numberReturned"], 1);
    assert_ne!(page["features"][0]["id"], page2["features"][0]["id"]);
    // Category, bbox and datetime filters.
    let h = get_json(&relay, "/ogc/collections/cells/items?category=following").await;
    assert_eq!(h["numberMatched"], 1);
    assert_eq!(h["features"][0]["properties"]["following"], 4);
    let (s, w, n, e) = a.bounds();
    let only_a = get_json(
        &relay,
        &format!(
            "/ogc/collections/cells/items?bbox={},{},{},{}",
            w + 1e-6,
            s + 1e-6,
            e - 1e-6,
            n - 1e-6
        ),
    )
    .await;
    assert_eq!(only_a["numberMatched"], 1);
    assert_eq!(only_a["features"][0]["id"], a.as_str());
    let january = get_json(
        &relay,
        "/ogc/collections/cells/items?datetime=2026-01-01/2026-01-31",
    )
    .await;
    assert_eq!(january["numberMatched"], 0);
    let (status, _) = get_authed(&relay, "/ogc/collections/cells/items?bbox=1,2,3").await;
    assert_eq!(status, 422);

    // GDAL's own client.
    let ogc = format!("OAPIF:{base}/ogc/");
    let header = format!("Authorization: Bearer {TOKEN}");
    let present = Command::new("ogrinfo").arg("--version").output().is_ok();
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install gdal-bin (ogrinfo)"
        );
        eprintln!("\n\n*** SKIPPED the GDAL half: ogrinfo is absent (apt-get install -y gdal-bin) ***\n\n");
    } else {
        let (ogc2, header2) = (ogc.clone(), header.clone());
        let out = tokio::task::spawn_blocking(move || {
            Command::new("ogrinfo")
                .args([
                    "-ro",
                    "-al",
                    "--config",
                    "GDAL_HTTP_HEADERS",
                    &header2,
                    &ogc2,
                ])
                .output()
                .expect("run ogrinfo")
        })
        .await
        .expect("ogrinfo");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("Layer name: cells"), "{text}");
        assert!(text.contains("Feature Count: 2"), "{text}");
        assert!(
            text.contains(a.as_str()) && text.contains(b.as_str()),
            "{text}"
        );
        assert!(!text.contains(c.as_str()), "under k: {text}");
        // ogr2ogr to CSV with GDAL's own filters: a bbox around A.
        let csv = dir.path().join("cells.csv");
        let csv2 = csv.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("ogr2ogr")
                .args(["--config", "GDAL_HTTP_HEADERS", &header])
                .args(["-f", "CSV"])
                .arg(&csv2)
                .arg(&ogc)
                .arg("cells")
                .args([
                    "-spat",
                    &(w + 1e-6).to_string(),
                    &(s + 1e-6).to_string(),
                    &(e - 1e-6).to_string(),
                    &(n - 1e-6).to_string(),
                ])
                .output()
                .expect("run ogr2ogr")
        })
        .await
        .expect("ogr2ogr");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&csv).expect("csv");
        assert_eq!(text.lines().count(), 2, "a header and A: {text}");
        assert!(
            text.contains(a.as_str()) && text.contains("harassment"),
            "{text}"
        );
    }

    node.shutdown().await.expect("node");
    relay.shutdown().await.expect("relay");
}
