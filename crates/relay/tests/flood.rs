//! Issue 14: a flood of valid reports into one cell counts at most
//! `CELL_HOUR_CAP` reports in that cell's hour; the rest is shown to the
//! operator as "suppressed as a flood" (status, cells, GeoJSON export,
//! metrics), never in the cell's count.

mod common;

use common::*;
use ronde_node::ManualClock;
use ronde_protocol::Category;
use ronde_relay::rules::CELL_HOUR_CAP;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_into_one_cell_is_capped_and_shown_as_suppressed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let config = relay_config(&dir.path().join("relay"));
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    let node = start_node(&dir.path().join("node"), &clock).await;
    connect_to_relay(&node, &relay).await;

    let flooded = cell("w0");
    let over = 7u64;
    publish(
        &node,
        flooded,
        Category::Harassment,
        (CELL_HOUR_CAP + over) as usize,
    )
    .await;
    publish(&node, cell("w1"), Category::Following, 3).await;
    wait_counted(&relay, CELL_HOUR_CAP + 3).await;
    eventually("the excess to be suppressed", || async {
        let s = get_json(&relay, "/api/status").await;
        (s["suppressed_as_flood"].as_u64() == Some(over)).then_some(())
    })
    .await;

    let cells = get_json(&relay, "/api/cells").await;
    assert_eq!(cells["suppressed_as_flood"].as_u64(), Some(over));
    let total = cells["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .find(|c| c["cell"].as_str() == Some(flooded.as_str()))
        .and_then(|c| c["total"].as_u64());
    assert_eq!(
        total,
        Some(CELL_HOUR_CAP),
        "the flooded cell counts the cap"
    );
    let (status, geojson) = get_authed(&relay, "/api/export.geojson").await;
    assert_eq!(status, 200);
    let geojson: serde_json::Value = serde_json::from_str(&geojson).expect("json");
    assert_eq!(geojson["ronde"]["suppressed_as_flood"].as_u64(), Some(over));
    let (_, metrics) = get_authed(&relay, "/metrics").await;
    assert!(
        metrics.contains("suppressed_as_a_flood"),
        "metrics name the refusal"
    );
}
