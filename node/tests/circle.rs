//! The trusted circle between real nodes on the memory transport: the
//! handshake, SOS delivered directly and through a mailbox host, the
//! dead-man's switch of a traveller whose node dies, and what the mailbox
//! host keeps on disk.

mod circle_support;

use circle_support::*;
use ronde_node::circle::{InboxItem, InboxNotice, SwitchStatus};
use ronde_node::ManualClock;
use ronde_protocol::circle::{ContactState, JourneyState, SosState};

const IVRY: (f64, f64) = (48.815_612_3, 2.384_445_6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sos_reaches_an_online_contact_and_the_sender_sees_the_ack() {
    let clock = ManualClock::new(T0);
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let alice = start(config(da.path(), &clock)).await;
    let bob = start(config(db.path(), &clock)).await;
    let (bob_at_alice, _) = befriend(&alice, "Alice", &bob, "Bob").await;
    alice.set_location(IVRY.0, IVRY.1).await.expect("location");

    let mut events = bob.events();
    let started = tokio::time::Instant::now();
    let sos = alice.sos("at the bus stop").await.expect("sos");
    assert_eq!(sos.recipients.len(), 1);
    assert!(!sos.acknowledged);
    let alert = next_alert(&mut events, is_sos).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "delivered within seconds: {:?}",
        started.elapsed()
    );
    assert_eq!(alert.from_name, "Alice");
    match &alert.notice {
        InboxNotice::Sos {
            note,
            place,
            sos: id,
            ..
        } => {
            assert_eq!(note, "at the bus stop");
            assert_eq!(*id, sos.id);
            let p = place.as_ref().expect("the SOS carries the location");
            assert!((p.lat - IVRY.0).abs() < 1e-6 && (p.lon - IVRY.1).abs() < 1e-6);
        }
        other => panic!("not an SOS: {other:?}"),
    }
    // Not acknowledged until Bob has seen it: re-sent to him after 20 s
    // (same id and place: Bob's node shows it once).
    settle(500).await;
    let status = alice.sos_status().await.expect("status");
    assert!(!status.acknowledged);
    assert_eq!(status.sends, 1);
    clock.advance(20);
    eventually("a re-send", || async {
        let s = alice.sos_status().await.ok()?;
        (s.sends == 2).then_some(())
    })
    .await;
    // Shown once all the same.
    settle(300).await;
    assert_eq!(inbox_where(&bob, is_sos).await.len(), 1);

    // Bob sees it: Alice learns who acknowledged.
    let acked = bob.ack_inbox(vec![alert.id]).await.expect("ack");
    assert_eq!(acked, vec![alert.id]);
    let status = eventually("the ack to reach Alice", || async {
        alice.sos_status().await.ok().filter(|s| s.acknowledged)
    })
    .await;
    assert_eq!(status.recipients[0].id, bob_at_alice);
    assert_eq!(status.recipients[0].name, "Bob");
    assert!(status.recipients[0].acked_at.is_some());
    let acks = inbox_where(&alice, |i| matches!(i.notice, InboxNotice::Acked { .. })).await;
    assert_eq!(acks.len(), 1);
    // Acknowledged: no more re-sends, however long it lasts.
    clock.advance(3600);
    settle(800).await;
    assert_eq!(alice.sos_status().await.expect("status").sends, 2);

    // Cancelling tells Bob.
    let cancelled = alice.cancel_sos().await.expect("cancel");
    assert_eq!(cancelled.state, SosState::Cancelled);
    eventually("the cancel to reach Bob", || async {
        let n = inbox_where(&bob, |i| {
            matches!(i.notice, InboxNotice::SosCancelled { .. })
        })
        .await;
        (!n.is_empty()).then_some(())
    })
    .await;
    // One SOS in Bob's inbox: the same id is shown once.
    assert_eq!(inbox_where(&bob, is_sos).await.len(), 1);
    alice.shutdown().await.expect("shutdown");
    bob.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_contact_gets_the_sos_from_the_mailbox_and_the_host_keeps_no_plaintext() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (host, host_addr) = start_host(dirs[0].path(), &clock).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;
    alice.set_location(IVRY.0, IVRY.1).await.expect("location");

    // Bob goes offline.
    bob.shutdown().await.expect("bob stops");
    drop(bob);
    const NOTE: &str = "followed near the old lighthouse 7734";
    alice.sos(NOTE).await.expect("sos");
    eventually("the SOS to wait in the mailbox", || async {
        let s = host.circle_status().await.ok()?;
        (s.hosted_envelopes > 0).then_some(())
    })
    .await;
    eventually("Alice's queue to empty", || async {
        let s = alice.circle_status().await.ok()?;
        (s.queued == 0).then_some(())
    })
    .await;

    // Bob comes back: the SOS is in the mailbox. (The host may also hold a
    // copy of Bob's accept in the invite's mailbox, left while Alice got it
    // directly: it waits for the host's retention.)
    let held = host.circle_status().await.expect("status").hosted_envelopes;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    let mut events = bob.events();
    let got = eventually("the SOS from the mailbox", || async {
        inbox_where(&bob, is_sos).await.into_iter().next()
    })
    .await;
    assert_eq!(got.from_name, "Alice");
    assert!(matches!(&got.notice, InboxNotice::Sos { note, .. } if note == NOTE));
    // Fetched mail is deleted from the host.
    eventually("the SOS deleted from the host", || async {
        let s = host.circle_status().await.ok()?;
        (s.hosted_envelopes < held).then_some(())
    })
    .await;
    // Bob acknowledges; Alice hears of it.
    bob.ack_inbox(vec![got.id]).await.expect("ack");
    eventually("the ack", || async {
        alice.sos_status().await.ok().filter(|s| s.acknowledged)
    })
    .await;
    drop(events.try_recv());

    // On disk, the host holds no plaintext: neither the note nor the
    // coordinates. Alice's own store, read the same way, does hold the note
    // (her SOS record): the search would find it.
    host.shutdown().await.expect("stop");
    alice.shutdown().await.expect("stop");
    bob.shutdown().await.expect("stop");
    let host_bytes = all_bytes(dirs[0].path());
    assert!(!host_bytes.is_empty());
    let lat_e7 = (IVRY.0 * 1e7).round() as i32;
    let lon_e7 = (IVRY.1 * 1e7).round() as i32;
    let needles: Vec<Vec<u8>> = vec![
        NOTE.as_bytes().to_vec(),
        b"lighthouse".to_vec(),
        b"48.8156".to_vec(),
        b"2.38444".to_vec(),
        lat_e7.to_string().into_bytes(),
        lon_e7.to_string().into_bytes(),
        lat_e7.to_be_bytes().to_vec(),
        lon_e7.to_be_bytes().to_vec(),
        b"Alice".to_vec(),
        b"Bob".to_vec(),
    ];
    for n in &needles {
        assert!(
            !contains(&host_bytes, n),
            "the host's files contain {:?}",
            String::from_utf8_lossy(n)
        );
    }
    assert!(
        contains(&all_bytes(dirs[1].path()), NOTE.as_bytes()),
        "control: the search finds the note in Alice's own store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_travellers_switch_alerts_the_circle_at_the_right_time() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (host, host_addr) = start_host(dirs[0].path(), &clock).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;
    alice.set_location(IVRY.0, IVRY.1).await.expect("location");

    // A 25-minute walk with 10 minutes of grace.
    let journey = alice
        .start_journey(48.82, 2.39, T0 + 1500, 600)
        .await
        .expect("journey");
    assert_eq!(journey.state, JourneyState::Active);
    let release_at = T0 + 1500 + 600 + 120;
    assert_eq!(journey.switch_release_at, release_at);
    eventually("the switch to be armed", || async {
        alice
            .journey()
            .await
            .ok()
            .filter(|j| j.switch == SwitchStatus::Armed)
    })
    .await;
    eventually("Bob to hear of the journey", || async {
        let n = inbox_where(&bob, |i| {
            matches!(i.notice, InboxNotice::JourneyStarted { .. })
        })
        .await;
        (!n.is_empty()).then_some(())
    })
    .await;
    let host_status = host.circle_status().await.expect("status");
    assert_eq!(host_status.hosted_switches, 1);

    // Alice's node dies mid-journey.
    alice.shutdown().await.expect("stop");
    drop(alice);

    // Overdue time passes, and the switch's slack but for a second: nothing.
    clock.set(release_at - 1);
    settle(1500).await;
    assert!(
        inbox_where(&bob, is_overdue).await.is_empty(),
        "no alert before the release time"
    );

    // The release time: the host puts the alert in Bob's mailbox.
    clock.set(release_at);
    let alert = eventually("the overdue alert", || async {
        inbox_where(&bob, is_overdue).await.into_iter().next()
    })
    .await;
    assert!(alert.alert);
    assert_eq!(alert.from_name, "Alice");
    match alert.notice {
        InboxNotice::Overdue {
            expected_arrival, ..
        } => assert_eq!(expected_arrival, T0 + 1500),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        host.circle_status().await.expect("status").hosted_switches,
        0
    );
    // Released once: no second alert.
    settle(1000).await;
    assert_eq!(inbox_where(&bob, is_overdue).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arrival_withdraws_the_switch_and_nobody_is_alerted() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (host, host_addr) = start_host(dirs[0].path(), &clock).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;

    alice
        .start_journey(48.82, 2.39, T0 + 600, 300)
        .await
        .expect("journey");
    eventually("the switch to be armed", || async {
        alice
            .journey()
            .await
            .ok()
            .filter(|j| j.switch == SwitchStatus::Armed)
    })
    .await;
    // A second journey cannot start while one is under way.
    assert!(alice
        .start_journey(48.82, 2.39, T0 + 600, 300)
        .await
        .is_err());
    clock.set(T0 + 300);
    let done = alice.arrived().await.expect("arrived");
    assert_eq!(done.state, JourneyState::Arrived);
    eventually("the switch to be withdrawn", || async {
        let s = host.circle_status().await.ok()?;
        (s.hosted_switches == 0).then_some(())
    })
    .await;
    eventually("Bob to hear of the arrival", || async {
        let n = inbox_where(&bob, |i| matches!(i.notice, InboxNotice::Arrived { .. })).await;
        (!n.is_empty()).then_some(())
    })
    .await;
    // Long after the release time: no alert from anyone.
    clock.set(T0 + 3600);
    settle(1500).await;
    assert!(inbox_where(&bob, is_overdue).await.is_empty());
    let j = alice.journey().await.expect("journey");
    assert_eq!(j.switch, SwitchStatus::Withdrawn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circle_and_the_queue_survive_a_restart() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (host, host_addr) = start_host(dirs[0].path(), &clock).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;
    let before = alice.circle_status().await.expect("status").identity;

    // Bob offline, the host too: Alice's SOS can go nowhere and waits.
    bob.shutdown().await.expect("stop");
    host.shutdown().await.expect("stop");
    drop((bob, host));
    alice.sos("queued").await.expect("sos");
    settle(800).await;
    assert!(alice.circle_status().await.expect("status").queued >= 1);
    alice.shutdown().await.expect("stop");
    drop(alice);

    // Everything comes back: same identity, same contact, and the queued
    // SOS goes out.
    let (_host, host_addr2) = start_host(dirs[0].path(), &clock).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr2)).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr2)).await;
    let status = alice.circle_status().await.expect("status");
    assert_eq!(status.identity, before);
    // The inbox survived too (Bob's request).
    let requests = inbox_where(&alice, |i| {
        matches!(i.notice, InboxNotice::ContactRequest { .. })
    })
    .await;
    assert_eq!(requests.len(), 1);
    assert_eq!(
        contact_state(&alice, "Bob").await.map(|(_, s)| s),
        Some(ContactState::Mutual)
    );
    eventually("the queued SOS to arrive", || async {
        inbox_where(&bob, is_sos).await.into_iter().next()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_removed_mid_journey_is_not_alerted_by_the_switch() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (host, host_addr) = start_host(dirs[0].path(), &clock).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    let carol = start(config_with_host(dirs[3].path(), &clock, &host_addr)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;
    befriend(&alice, "Alice", &carol, "Carol").await;

    alice
        .start_journey(48.82, 2.39, T0 + 600, 300)
        .await
        .expect("journey");
    let release_at = T0 + 600 + 300 + 120;
    eventually("the switch to be armed", || async {
        alice
            .journey()
            .await
            .ok()
            .filter(|j| j.switch == SwitchStatus::Armed)
    })
    .await;
    // Alice removes Carol, silently, mid-journey: the switch is replaced by
    // one that holds no alert for Carol.
    alice.remove_contact("Carol", false).await.expect("remove");
    eventually("the switch to be re-armed", || async {
        let j = alice.journey().await.ok()?;
        let h = host.circle_status().await.ok()?;
        (j.switch == SwitchStatus::Armed && h.hosted_switches == 1).then_some(())
    })
    .await;
    settle(500).await;
    assert_eq!(
        host.circle_status().await.expect("status").hosted_switches,
        1
    );

    // Alice's node dies; the switch fires.
    alice.shutdown().await.expect("stop");
    drop(alice);
    clock.set(release_at);
    eventually("Bob's alert", || async {
        inbox_where(&bob, is_overdue).await.into_iter().next()
    })
    .await;
    settle(1500).await;
    assert!(
        inbox_where(&carol, is_overdue).await.is_empty(),
        "a removed contact receives nothing new"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_identity_stops_the_node_and_is_left_alone() {
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().expect("dir");
    let node = start(config(dir.path(), &clock)).await;
    let identity = node.circle_status().await.expect("status").identity;
    node.shutdown().await.expect("stop");
    drop(node);
    let path = dir.path().join("circle-identity");
    let bytes = std::fs::read(&path).expect("the identity file");
    assert_eq!(bytes.len(), 65);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by the node's user only");
    }
    // The identity is not in the reports' data: restart gives the same.
    let node = start(config(dir.path(), &clock)).await;
    assert_eq!(
        node.circle_status().await.expect("status").identity,
        identity
    );
    node.shutdown().await.expect("stop");
    drop(node);

    std::fs::write(&path, b"garbage").expect("write");
    let err = ronde_node::Node::start(config(dir.path(), &clock))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&err, ronde_node::NodeError::Storage(ronde_node::StoreError::Corrupt(m)) if m.contains("circle-identity")),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).expect("still there"), b"garbage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_server_lets_a_peer_listen_through_it() {
    let clock = ManualClock::new(T0);
    let (dr, dp) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let mut c = config(dr.path(), &clock);
    c.relay_server = true;
    let relay = start(c).await;
    let addr = relay
        .listen_addrs()
        .await
        .expect("addrs")
        .into_iter()
        .next()
        .expect("listens")
        .with_p2p(relay.peer_id())
        .expect("p2p");
    let mut c = config(dp.path(), &clock);
    c.bootstrap = vec![addr];
    let phone = start(c).await;
    eventually("a relayed listen address", || async {
        let addrs = phone.listen_addrs().await.ok()?;
        addrs
            .iter()
            .any(|a| a.to_string().contains("/p2p-circuit"))
            .then_some(())
    })
    .await;

    // Control: without the relay server, no relayed address.
    let (dn, dq) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let plain = start(config(dn.path(), &clock)).await;
    let addr = plain
        .listen_addrs()
        .await
        .expect("addrs")
        .into_iter()
        .next()
        .expect("listens")
        .with_p2p(plain.peer_id())
        .expect("p2p");
    let mut c = config(dq.path(), &clock);
    c.bootstrap = vec![addr];
    let other = start(c).await;
    settle(1500).await;
    let addrs = other.listen_addrs().await.expect("addrs");
    assert!(
        !addrs.iter().any(|a| a.to_string().contains("/p2p-circuit")),
        "{addrs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_waits_in_the_invite_mailbox_while_the_inviter_is_offline() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (_host, host_addr) = start_host(dirs[0].path(), &clock).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    let invite = alice
        .create_invite(Some("Alice".into()), 3600)
        .await
        .expect("invite");
    // Alice goes offline before Bob accepts: her invite's addresses are
    // dead (and her next peer id will differ).
    alice.shutdown().await.expect("stop");
    drop(alice);
    bob.accept_invite(&invite.code, Some("Bob".into()))
        .await
        .expect("accept");
    eventually("the accept to leave Bob's queue", || async {
        let s = bob.circle_status().await.ok()?;
        (s.queued == 0).then_some(())
    })
    .await;

    // Alice comes back and finds the accept in her invite's mailbox.
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let (bob_at_alice, _) = eventually("Bob's request", || async {
        contact_state(&alice, "Bob")
            .await
            .filter(|(_, s)| *s == ContactState::AwaitingMyApproval)
    })
    .await;
    alice
        .approve_contact(&bob_at_alice.to_hex())
        .await
        .expect("approve");
    eventually("Bob to be mutual", || async {
        contact_state(&bob, "Alice")
            .await
            .filter(|(_, s)| *s == ContactState::Mutual)
    })
    .await;
}

/// Issue 12 §6: a contact's positions do not stay on the phone. An SOS
/// carries where its sender was; a day after it was cancelled the item is
/// gone from the contact's inbox (the cancellation, with no position, stays).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_leave_the_inbox_a_day_after_the_sos_ended() {
    let clock = ManualClock::new(T0);
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let alice = start(config(da.path(), &clock)).await;
    let bob = start(config(db.path(), &clock)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;
    alice.set_location(IVRY.0, IVRY.1).await.expect("location");
    let mut events = bob.events();
    alice.sos("at the station").await.expect("sos");
    next_alert(&mut events, is_sos).await;
    alice.cancel_sos().await.expect("cancel");
    let with_place = |i: &InboxItem| matches!(&i.notice, InboxNotice::Sos { place: Some(_), .. });
    let cancelled = |i: &InboxItem| matches!(&i.notice, InboxNotice::SosCancelled { .. });
    eventually("the cancellation", || async {
        (!inbox_where(&bob, cancelled).await.is_empty()).then_some(())
    })
    .await;

    // Kept while it may still matter...
    clock.advance(12 * 3600);
    settle(500).await;
    assert_eq!(inbox_where(&bob, with_place).await.len(), 1);
    // ...gone a day after the SOS ended.
    clock.advance(12 * 3600 + 120);
    eventually("the SOS's position to be deleted", || async {
        inbox_where(&bob, with_place).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(inbox_where(&bob, cancelled).await.len(), 1);
}
