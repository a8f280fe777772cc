//! A 50-device city (46 phones, 2 relays, a flooder, a dropper) of real
//! Ronde nodes over emulated links with latency, loss, churn and walkers:
//! reports reach the phones around them, nothing is visible once expired,
//! no forged, garbage, expired or future report is accepted anywhere, and
//! every SOS between contacts is delivered, those to a contact that was
//! offline when it was raised through a relay's mailbox once it came back.

use std::time::Duration;

use ronde_sim::{simulate, SimConfig};

#[test]
fn a_city_of_fifty_nodes_delivers_expires_refuses_forgeries_and_carries_sos() {
    let cfg = SimConfig {
        phones: 46,
        relays: 2,
        flooders: 1,
        droppers: 1,
        prefill: Some(40),
        seed: 2024,
        warmup: Duration::from_secs(8),
        duration: Duration::from_secs(20),
        window: Duration::from_secs(5),
        report_every: Duration::from_secs(1),
        flood_every: Duration::from_millis(500),
        churn_per_min: 0.10,
        offline_mean: Duration::from_secs(10),
        loss: 0.01,
        sos_pairs: 4,
        baseline: false,
        progress: false,
        workers: 2,
        ..SimConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rep = rt.block_on(simulate(cfg, None)).expect("simulation");
    eprintln!("{}", ronde_sim::output::table(&rep));
    let r = rep.ronde.expect("ronde ran");

    assert!(r.reports >= 10, "only {} reports", r.reports);
    assert!(r.expected >= 10 * 30, "only {} expected pairs", r.expected);
    assert!(
        r.delivery_ratio >= 0.99,
        "delivery {:.4} ({} of {})",
        r.delivery_ratio,
        r.delivered,
        r.expected
    );
    assert!(r.latency_ms.p50 > 0.0 && r.latency_ms.p50 >= r.lower_bound_ms.p50);
    // Expiry: reports were visible, and none is once they all expired.
    assert!(r.visible_before_expiry.unwrap_or(0) > 0);
    assert_eq!(r.visible_after_expiry, Some(0));
    // The flooder did reach the network, and nothing it sent was kept.
    assert!(r.flooder_bytes_sent > 10_000, "{}", r.flooder_bytes_sent);
    assert_eq!(r.forged_accepted, Some(0));
    assert_eq!(r.stale_accepted, Some(0));
    assert_eq!(r.lagged_events, 0);

    // SOS: 4 pairs became contacts through the real handshake in the
    // warm-up; every SOS reached its contact, and the two raised while
    // the contact's node was down reached it after it came back (its next
    // life has a fresh peer id nobody knows: only the relays' mailboxes
    // can carry it).
    let sos = r.sos.as_ref().expect("Ronde measures SOS");
    assert_eq!(sos.planned, 4);
    assert_eq!(sos.befriended, 4, "{:#?}", sos.records);
    assert_eq!(sos.sent, 4, "{:#?}", sos.records);
    assert_eq!(sos.delivered, 4, "{:#?}", sos.records);
    assert_eq!(sos.planned_offline, 2);
    assert_eq!(sos.to_offline, 2, "{:#?}", sos.records);
    assert_eq!(sos.via_mailbox, 2, "{:#?}", sos.records);
    assert!(sos.all_delivered());
    for rec in &sos.records {
        let (Some(sent), Some(got)) = (rec.sent_at, rec.delivered_at) else {
            panic!("{rec:?}");
        };
        assert!(got > sent, "{rec:?}");
        if rec.contact_offline {
            let back = rec.rejoined_at.expect("the contact came back");
            assert!(back > sent && got >= back, "{rec:?}");
        }
    }
    assert_eq!(sos.delivery_ms.n, 2);
    assert!(sos.delivery_ms.p50 > 0.0 && sos.delivery_ms.max < 5_000.0);
    assert_eq!(sos.after_rejoin_ms.n, 2);
    assert!(sos.after_rejoin_ms.p50 > 0.0);
    // The contacts acknowledged, and the senders heard it.
    assert_eq!(sos.acked, 4, "{:#?}", sos.records);
    assert!(rep
        .targets
        .iter()
        .any(|t| t.name.starts_with("SOS delivered") && t.met == Some(true)));
}
