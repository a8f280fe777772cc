//! Foreground and background with real nodes (`ronde_node::lifecycle`): a
//! phone that goes to the background leaves its areas and keeps one
//! connection, to its mailbox host; an SOS from a contact still reaches it
//! there; back in the foreground it follows its areas again and catches up
//! on a report made while it was away.

mod circle_support;

use std::collections::HashSet;

use circle_support::*;
use ronde_node::{Lifecycle, ManualClock};
use ronde_protocol::Category;

const LAT: f64 = 48.8156;
const LON: f64 = 2.3844;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_keeps_one_connection_and_foreground_catches_up() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let (host, host_addr) = start_host(dirs[0].path(), &clock).await;
    let phone = |i: usize| {
        let mut c = config_with_host(dirs[i].path(), &clock, &host_addr);
        c.bootstrap = vec![host_addr.clone()];
        c
    };
    let ada = start(phone(1)).await;
    let cleo = start(phone(2)).await;
    for n in [&host, &ada, &cleo] {
        n.set_location(LAT, LON).await.expect("location");
    }
    befriend(&ada, "Ada", &cleo, "Cleo").await;

    // A phone-to-phone connection besides the host.
    let cleo_addr = cleo.listen_addrs().await.expect("addrs")[0]
        .clone()
        .with_p2p(cleo.peer_id())
        .expect("p2p");
    ada.dial(cleo_addr).await.expect("dial");
    eventually("Ada to be connected to the host and Cleo", || async {
        let peers: HashSet<_> = ada.connected_peers().await.ok()?.into_iter().collect();
        (peers.contains(&host.peer_id()) && peers.contains(&cleo.peer_id())).then_some(())
    })
    .await;

    // Background: no areas, one connection kept, to the mailbox host.
    let view = ada
        .set_lifecycle(Lifecycle::Background)
        .await
        .expect("background");
    assert_eq!(view.lifecycle, Lifecycle::Background);
    assert_eq!(view.areas, 0);
    assert_eq!(view.kept_peer, Some(host.peer_id().to_string()));
    eventually("Ada to keep only the host", || async {
        let peers = ada.connected_peers().await.ok()?;
        (peers == vec![host.peer_id()]).then_some(())
    })
    .await;
    assert!(ada.status().await.expect("status").areas.is_empty());
    // A new position in the background (a journey under way) is kept for
    // later, not followed.
    let areas = ada.set_location(LAT, LON).await.expect("location");
    assert_eq!(areas.len(), 9);
    assert!(ada.status().await.expect("status").areas.is_empty());

    // A report made meanwhile, and an SOS: the SOS still reaches Ada, in
    // the background, through the host's mailbox.
    let mut events = ada.events();
    let missed = cleo
        .report(Category::Harassment, LAT, LON, None)
        .await
        .expect("report");
    cleo.sos("help").await.expect("sos");
    next_alert(&mut events, is_sos).await;
    // Cleo's attempts to deliver directly were closed: still one peer.
    eventually("Ada to still keep only the host", || async {
        let peers = ada.connected_peers().await.ok()?;
        peers.iter().all(|p| *p == host.peer_id()).then_some(())
    })
    .await;

    // The report, published before the SOS, did not come by gossip: Ada
    // follows no area.
    let near = ada.nearby(LAT, LON, 2_000.0).await.expect("nearby");
    assert!(near.reports.iter().all(|r| r.id != missed.id));

    // Foreground: the areas again, and the report made meanwhile (the
    // sync with the host, which follows the area).
    let view = ada
        .set_lifecycle(Lifecycle::Foreground)
        .await
        .expect("foreground");
    assert_eq!(view.lifecycle, Lifecycle::Foreground);
    assert_eq!(view.areas, 9);
    assert_eq!(view.kept_peer, None);
    eventually("the missed report to reach Ada", || async {
        let near = ada.nearby(LAT, LON, 2_000.0).await.ok()?;
        near.reports.iter().any(|r| r.id == missed.id).then_some(())
    })
    .await;
    // Setting the same state again changes nothing.
    let again = ada
        .set_lifecycle(Lifecycle::Foreground)
        .await
        .expect("foreground again");
    assert_eq!(again.areas, 9);
}
