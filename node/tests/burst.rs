//! A burst of gossip from one peer arrives whole.
//!
//! libp2p-gossipsub 0.50 checks `max_transmit_size` against everything
//! buffered on an inbound stream rather than one frame, so a burst of small
//! RPCs larger than the limit made the receiver drop the stream (and the
//! reports in it). A node that was alone while its person made reports
//! publishes its whole queue at once when a peer arrives; every one of
//! those reports must reach the peer by gossip (catch-up sync is off here,
//! so it cannot hide a loss).

mod common;

use common::*;
use ronde_node::ManualClock;
use ronde_protocol::{area_of, Category};

/// Reports queued: about 250 bytes each on the wire, 30 KiB in all, well
/// past the 8 KiB limit the node used to set.
const QUEUED: usize = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_burst_reaches_a_new_peer_by_gossip() {
    let clock = ManualClock::new(T0);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alone = start(da.path(), &clock, Some(IVRY)).await;
    let mut ids = Vec::new();
    for i in 0..QUEUED {
        // Spread over a few hundred metres of the same area.
        let at = (
            IVRY.0 + (i % 12) as f64 * 0.0004,
            IVRY.1 + (i / 12) as f64 * 0.0004,
        );
        let published = alone
            .report(Category::FeelingUnsafe, at.0, at.1, None)
            .await
            .unwrap();
        assert!(!published.published, "nobody to publish to yet");
        ids.push(published.id);
    }

    let mut cfg = config(db.path(), &clock, Some(IVRY));
    cfg.sync = false;
    let newcomer = start_with(cfg).await;
    connect(&alone, &newcomer).await;
    wait_follows(&alone, newcomer.peer_id(), area_of(IVRY.0, IVRY.1).unwrap()).await;

    eventually("every queued report at the newcomer", || async {
        let got = held(&newcomer, IVRY).await;
        ids.iter().all(|id| got.contains(id)).then_some(())
    })
    .await;
    // Still one connection: the burst did not cost the link.
    assert!(alone
        .connected_peers()
        .await
        .unwrap()
        .contains(&newcomer.peer_id()));
}
