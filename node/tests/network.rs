//! Real swarms on libp2p's in-process memory transport: propagation to
//! nearby nodes only, moving, queued publishing, catch-up sync, and a
//! hostile peer.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::{noise, yamux, Multiaddr, PeerId, Transport};
use ronde_node::behaviour::{GOSSIP_THRESHOLD, GRAYLIST_THRESHOLD};
use ronde_node::{ManualClock, NodeEvent};
use ronde_protocol::{area_of, topics_around, Category, Draft, ReportId};
use tokio::sync::{mpsc, oneshot};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_reaches_nearby_nodes_and_not_one_50_km_away() {
    let clock = ManualClock::new(T0);
    let origin = IVRY;
    let area = area_of(origin.0, origin.1).expect("area");
    // Four people near the origin (same or neighbouring area), one 50 km
    // away. Their nodes form a line, the far one at the end.
    let near = [
        origin,
        (origin.0 + 0.003, origin.1 + 0.003),
        (origin.0, origin.1 + 0.04),
        (origin.0 - 0.03, origin.1 - 0.02),
    ];
    let far = (origin.0 + 0.45, origin.1);
    for p in near {
        assert!(
            topics_around(p.0, p.1).expect("areas").contains(&area),
            "test setup"
        );
    }
    assert!(
        !topics_around(far.0, far.1).expect("areas").contains(&area),
        "test setup"
    );

    let dirs: Vec<_> = (0..5)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let mut nodes = Vec::new();
    for (i, p) in near.iter().chain([&far]).enumerate() {
        nodes.push(start(dirs[i].path(), &clock, Some(*p)).await);
    }
    for w in nodes.windows(2) {
        connect(&w[0], &w[1]).await;
    }
    for w in nodes[..4].windows(2) {
        wait_follows(&w[0], w[1].peer_id(), area).await;
        wait_follows(&w[1], w[0].peer_id(), area).await;
    }
    let mut events = nodes[3].events();

    let published = nodes[0]
        .report(Category::Harassment, origin.0, origin.1, None)
        .await
        .expect("report");
    assert!(published.published);
    for n in &nodes[1..4] {
        wait_holds(n, published.id, origin).await;
    }
    // The event stream told the last near node too.
    let ev = tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("event")
        .expect("event");
    let NodeEvent::Report(r) = ev else {
        panic!("a report event, got {ev:?}");
    };
    assert_eq!(r.id, published.id);
    assert_eq!(r.category, Category::Harassment);

    // Control: the link to the far node works (a report made in its area
    // reaches it)...
    let control = nodes[3]
        .report(Category::PoorLighting, far.0, far.1, None)
        .await
        .expect("report");
    assert!(control.published);
    wait_holds(&nodes[4], control.id, far).await;
    // ...yet it never got the report from 50 km away.
    assert_eq!(held(&nodes[4], origin).await, vec![control.id]);
    assert_eq!(nodes[4].status().await.expect("status").stored_reports, 1);
    for n in &nodes {
        n.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_updates_the_followed_areas() {
    let clock = ManualClock::new(T0);
    let (d1, d2, d3) = (tempdir(), tempdir(), tempdir());
    let paris = area_of(IVRY.0, IVRY.1).expect("area");
    let lyon = area_of(LYON.0, LYON.1).expect("area");
    let mover = start(d1.path(), &clock, Some(IVRY)).await;
    let in_paris = start(d2.path(), &clock, Some(IVRY)).await;
    let in_lyon = start(d3.path(), &clock, Some(LYON)).await;
    connect(&mover, &in_paris).await;
    connect(&mover, &in_lyon).await;
    wait_follows(&in_paris, mover.peer_id(), paris).await;

    let areas = mover.set_location(LYON.0, LYON.1).await.expect("move");
    assert_eq!(areas, topics_around(LYON.0, LYON.1).expect("areas"));
    let status = mover.status().await.expect("status");
    let paris_areas = topics_around(IVRY.0, IVRY.1).expect("areas");
    assert!(status
        .areas
        .iter()
        .all(|a| !paris_areas.iter().any(|p| p.to_string() == *a)));
    assert_eq!(status.areas.len(), areas.len());
    // The others learn it: the mover left Paris and now follows Lyon.
    eventually("the mover to leave Paris", || async {
        (!in_paris
            .peers_in_area(paris)
            .await
            .ok()?
            .contains(&mover.peer_id()))
        .then_some(())
    })
    .await;
    wait_follows(&in_lyon, mover.peer_id(), lyon).await;

    // A report in Paris no longer reaches the mover; one in Lyon does.
    let old = in_paris
        .report(Category::Following, IVRY.0, IVRY.1, None)
        .await
        .expect("report");
    assert!(!old.published, "nobody else follows Paris");
    let new = in_lyon
        .report(Category::Following, LYON.0, LYON.1, None)
        .await
        .expect("report");
    assert!(new.published);
    wait_holds(&mover, new.id, LYON).await;
    assert!(held(&mover, IVRY).await.iter().all(|id| *id != old.id));
    assert_eq!(mover.status().await.expect("status").stored_reports, 1);

    // Bad coordinates are the caller's error.
    assert!(matches!(
        mover.set_location(f64::NAN, 0.0).await,
        Err(ronde_node::NodeError::Geo(_))
    ));
    for n in [&mover, &in_paris, &in_lyon] {
        n.shutdown().await.expect("shutdown");
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_made_alone_is_published_when_a_peer_follows_its_area() {
    let clock = ManualClock::new(T0);
    let (d1, d2) = (tempdir(), tempdir());
    // Sync off, so the report can only arrive through the queued publish.
    let mut cfg = config(d1.path(), &clock, Some(IVRY));
    cfg.sync = false;
    let alone = start_with(cfg.clone()).await;
    let made = alone
        .report(Category::VerbalAggression, IVRY.0, IVRY.1, None)
        .await
        .expect("report");
    assert!(!made.published);
    assert_eq!(alone.pending_reports().await.expect("pending"), 1);
    // The queue survives a restart.
    alone.shutdown().await.expect("shutdown");
    let alone = start_with(cfg).await;
    assert_eq!(alone.pending_reports().await.expect("pending"), 1);

    let mut cfg2 = config(d2.path(), &clock, Some((IVRY.0 + 0.01, IVRY.1)));
    cfg2.sync = false;
    let peer = start_with(cfg2).await;
    assert!(held(&peer, IVRY).await.is_empty());
    connect(&peer, &alone).await;
    wait_holds(&peer, made.id, IVRY).await;
    eventually("the queue to empty", || async {
        (alone.pending_reports().await.ok()? == 0).then_some(())
    })
    .await;
    alone.shutdown().await.expect("shutdown");
    peer.shutdown().await.expect("shutdown");
}

/// `from` reports `category` at IVRY once it sees `to` following that
/// area, and `to` receives it.
async fn report_reaches(
    from: &ronde_node::Node,
    to: &ronde_node::Node,
    category: Category,
) -> ronde_node::Published {
    let area = area_of(IVRY.0, IVRY.1).expect("area");
    wait_follows(from, to.peer_id(), area).await;
    let made = from
        .report(category, IVRY.0, IVRY.1, None)
        .await
        .expect("report");
    wait_holds(to, made.id, IVRY).await;
    made
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_coming_online_catches_up_through_sync() {
    let clock = ManualClock::new(T0);
    let (d1, d2, d3) = (tempdir(), tempdir(), tempdir());
    let holder = start(d1.path(), &clock, Some(IVRY)).await;
    let author = start(d2.path(), &clock, Some(IVRY)).await;
    connect(&author, &holder).await;
    let made = report_reaches(&author, &holder, Category::Exhibitionism).await;
    assert!(made.published);
    author.shutdown().await.expect("shutdown");
    // Restarted, the holder keeps the report on disk but has no gossip
    // memory of it and nothing queued: only sync can hand it over.
    holder.shutdown().await.expect("shutdown");
    let holder = start(d1.path(), &clock, Some(IVRY)).await;
    assert_eq!(holder.pending_reports().await.expect("pending"), 0);

    let newcomer = start(d3.path(), &clock, Some(IVRY)).await;
    connect(&newcomer, &holder).await;
    wait_holds(&newcomer, made.id, IVRY).await;
    holder.shutdown().await.expect("shutdown");
    newcomer.shutdown().await.expect("shutdown");
}

/// A bare gossipsub peer, anonymous like Ronde nodes, that publishes
/// whatever bytes it is told to on whatever topic.
struct Hostile {
    peer_id: PeerId,
    commands: mpsc::Sender<HostileCmd>,
}

enum HostileCmd {
    Dial(Multiaddr),
    Publish(String, Vec<u8>, oneshot::Sender<Result<(), String>>),
    /// Publish all at once, so that they travel (and arrive) together.
    PublishMany(Vec<(String, Vec<u8>)>, oneshot::Sender<Result<(), String>>),
    PeersOn(String, oneshot::Sender<Vec<PeerId>>),
}

impl Hostile {
    fn spawn() -> Hostile {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
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
                let config = gossipsub::ConfigBuilder::default()
                    .validation_mode(ValidationMode::Anonymous)
                    .message_id_fn(|m| MessageId::from(ReportId::of(&m.data).0.to_vec()))
                    .max_transmit_size(64 * 1024)
                    .heartbeat_interval(Duration::from_millis(200))
                    .build()?;
                Ok(gossipsub::Behaviour::<gossipsub::IdentityTransform>::new(
                    MessageAuthenticity::Anonymous,
                    config,
                )?)
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let peer_id = *swarm.local_peer_id();
        let (tx, mut rx) = mpsc::channel::<HostileCmd>(16);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    cmd = rx.recv() => match cmd {
                        Some(HostileCmd::Dial(a)) => { let _ = swarm.dial(a); }
                        Some(HostileCmd::Publish(topic, data, reply)) => {
                            let res = swarm
                                .behaviour_mut()
                                .publish(IdentTopic::new(topic), data)
                                .map(|_| ())
                                .map_err(|e| e.to_string());
                            let _ = reply.send(res);
                        }
                        Some(HostileCmd::PublishMany(messages, reply)) => {
                            let mut res = Ok(());
                            for (topic, data) in messages {
                                if let Err(e) = swarm.behaviour_mut().publish(IdentTopic::new(topic), data) {
                                    res = Err(e.to_string());
                                }
                            }
                            let _ = reply.send(res);
                        }
                        Some(HostileCmd::PeersOn(topic, reply)) => {
                            let hash = IdentTopic::new(topic).hash();
                            let peers = swarm
                                .behaviour()
                                .all_peers()
                                .filter(|(_, t)| t.contains(&&hash))
                                .map(|(p, _)| *p)
                                .collect();
                            let _ = reply.send(peers);
                        }
                        None => break,
                    },
                    _ = swarm.select_next_some() => {}
                }
            }
        });
        Hostile {
            peer_id,
            commands: tx,
        }
    }

    async fn publish(&self, topic: String, data: Vec<u8>) {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(HostileCmd::Publish(topic, data, tx))
            .await
            .expect("hostile alive");
        rx.await.expect("hostile reply").expect("hostile publish");
    }

    async fn publish_many(&self, messages: Vec<(String, Vec<u8>)>) {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(HostileCmd::PublishMany(messages, tx))
            .await
            .expect("hostile alive");
        rx.await.expect("hostile reply").expect("hostile publish");
    }

    async fn peers_on(&self, topic: String) -> Vec<PeerId> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(HostileCmd::PeersOn(topic, tx))
            .await
            .expect("hostile alive");
        rx.await.expect("hostile reply")
    }
}

/// Connect a fresh hostile peer to `node` and wait until it sees the
/// node follow `topics`.
async fn hostile_peer(node: &ronde_node::Node, topics: &[String]) -> Hostile {
    let hostile = Hostile::spawn();
    let addr = node.listen_addrs().await.expect("addrs")[0].clone();
    hostile
        .commands
        .send(HostileCmd::Dial(addr))
        .await
        .expect("dial");
    for t in topics {
        eventually(
            "the hostile peer to see the node's subscriptions",
            || async {
                hostile
                    .peers_on(t.clone())
                    .await
                    .contains(&node.peer_id())
                    .then_some(())
            },
        )
        .await;
    }
    hostile
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_peer_gets_nothing_through_and_is_graylisted() {
    let clock = ManualClock::new(T0);
    let (d1, d2) = (tempdir(), tempdir());
    let node = start(d1.path(), &clock, Some(IVRY)).await;
    let honest = start(d2.path(), &clock, Some(IVRY)).await;
    connect(&honest, &node).await;
    let area = area_of(IVRY.0, IVRY.1).expect("area");
    wait_follows(&node, honest.peer_id(), area).await;
    wait_follows(&honest, node.peer_id(), area).await;
    let topic = area.topic();
    let other_topic = topics_around(IVRY.0, IVRY.1).expect("areas")[1].topic();
    let topics = [topic.clone(), other_topic.clone()];

    let cell = ronde_protocol::cell_for(IVRY.0, IVRY.1, 7).expect("cell");
    let sealed = |now: u64, difficulty: u8| {
        Draft::new(Category::Following, cell, now)
            .seal(difficulty, &mut rand::rngs::OsRng)
            .expect("seal")
            .to_bytes()
    };
    let mut forged = make_report(IVRY, T0, Category::Following).bytes().to_vec();
    if let Some(last) = forged.last_mut() {
        *last ^= 0x01;
    }
    let mut oversized = make_report(IVRY, T0, Category::Following).bytes().to_vec();
    oversized.resize(ronde_protocol::report::MAX_REPORT_SIZE + 1, 0);
    // (name, topic, bytes, whether the sender is at fault)
    let bad: Vec<(&str, String, Vec<u8>, bool)> = vec![
        ("expired", topic.clone(), sealed(T0 - 3600, 8), false),
        ("future", topic.clone(), sealed(T0 + 3600, 8), false),
        ("forged", topic.clone(), forged, true),
        (
            "garbage",
            topic.clone(),
            b"definitely not a report".to_vec(),
            true,
        ),
        (
            "wrong topic",
            other_topic.clone(),
            make_report(IVRY, T0, Category::PhysicalAggression)
                .bytes()
                .to_vec(),
            true,
        ),
        ("not enough work", topic.clone(), sealed(T0, 4), true),
        ("oversized", topic.clone(), oversized, true),
    ];
    let mut bad_ids: Vec<ReportId> = bad.iter().map(|(_, _, b, _)| ReportId::of(b)).collect();
    let mut markers = Vec::new();

    // Each bad message comes from a fresh peer and is followed by a valid
    // marker report: once the node holds the marker, it has judged the bad
    // message (one stream, processed in order).
    for (name, t, bytes, misbehaviour) in bad {
        let hostile = hostile_peer(&node, &topics).await;
        hostile.publish(t, bytes).await;
        let marker = make_report(IVRY, T0, Category::FeelingUnsafe);
        hostile
            .publish(topic.clone(), marker.bytes().to_vec())
            .await;
        wait_holds(&node, marker.id(), IVRY).await;
        markers.push(marker.id());
        let score = node
            .peer_score(hostile.peer_id)
            .await
            .expect("score")
            .expect("known");
        if misbehaviour {
            assert!(
                score < GOSSIP_THRESHOLD,
                "{name}: score {score} not penalised"
            );
        } else {
            assert!(
                score >= 0.0,
                "{name}: score {score} penalised for an honest mistake"
            );
        }
    }

    // One peer that keeps at it is graylisted.
    let hostile = hostile_peer(&node, &topics).await;
    for i in 0..3u8 {
        let junk = vec![0xff, i, 0, 1, 2, 3];
        bad_ids.push(ReportId::of(&junk));
        hostile.publish(topic.clone(), junk).await;
    }
    let huge = vec![0x01; 10_000]; // over the frame limit: dropped by the codec
    bad_ids.push(ReportId::of(&huge));
    hostile.publish(topic.clone(), huge).await;
    let score = eventually("the hostile peer to be graylisted", || async {
        let s = node.peer_score(hostile.peer_id).await.ok()??;
        (s < GRAYLIST_THRESHOLD).then_some(s)
    })
    .await;
    assert!(score < GRAYLIST_THRESHOLD);
    // The honest peer's standing is untouched.
    let honest_score = node
        .peer_score(honest.peer_id())
        .await
        .expect("score")
        .expect("known");
    assert!(honest_score >= 0.0, "honest score {honest_score}");

    // Every refusal is counted by reason in the status (relays export it).
    let refused = node.status().await.expect("status").gossip_refused;
    for reason in [
        "expired",
        "from_future",
        "bad_signature",
        "malformed",
        "wrong_topic",
        "not_enough_work",
        "too_large",
    ] {
        assert!(
            refused.get(reason).copied().unwrap_or(0) >= 1,
            "{reason} not counted: {refused:?}"
        );
    }
    assert!(honest
        .status()
        .await
        .expect("status")
        .gossip_refused
        .is_empty());

    // The node keeps serving, and its own reports still travel.
    let after = node
        .report(Category::OtherHazard, IVRY.0, IVRY.1, None)
        .await
        .expect("report");
    assert!(after.published);
    wait_holds(&honest, after.id, IVRY).await;

    // Nothing bad was stored, served or forwarded: both hold exactly the
    // markers and the node's own report.
    let mut want = markers.clone();
    want.push(after.id);
    want.sort();
    for n in [&node, &honest] {
        let mut ids = held(n, IVRY).await;
        ids.sort();
        assert_eq!(ids, want);
        assert!(ids.iter().all(|id| !bad_ids.contains(id)));
        assert_eq!(n.status().await.expect("status").stored_reports, want.len());
    }
    node.shutdown().await.expect("shutdown");
    honest.shutdown().await.expect("shutdown");
}

/// Gossip is judged in batches (one per burst of swarm events, its
/// signatures verified together, off the event loop when there are many):
/// each message of a burst that mixes valid, forged, expired, future and
/// wrong-topic reports still gets its own verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_mixing_good_and_bad_reports_gives_each_message_its_verdict() {
    let clock = ManualClock::new(T0);
    let (d1, d2) = (tempdir(), tempdir());
    let node = start(d1.path(), &clock, Some(IVRY)).await;
    let honest = start(d2.path(), &clock, Some(IVRY)).await;
    connect(&honest, &node).await;
    let area = area_of(IVRY.0, IVRY.1).expect("area");
    wait_follows(&node, honest.peer_id(), area).await;
    wait_follows(&honest, node.peer_id(), area).await;
    let topic = area.topic();
    let other_topic = topics_around(IVRY.0, IVRY.1).expect("areas")[1].topic();

    let cell = ronde_protocol::cell_for(IVRY.0, IVRY.1, 7).expect("cell");
    let sealed = |now: u64| {
        Draft::new(Category::Harassment, cell, now)
            .seal(8, &mut rand::rngs::OsRng)
            .expect("seal")
            .to_bytes()
    };
    let valid = || make_report(IVRY, T0, Category::Following).bytes().to_vec();
    let forged = || {
        let mut b = valid();
        // A bit of S: the proof of work still holds, the signature not.
        b[100] ^= 0x02;
        b
    };
    // Two peers each send a burst of valid reports with one they are at
    // fault for in the middle (two would graylist a peer, and gossipsub
    // would drop the rest of its burst), and reports that are merely late
    // or early. (topic, bytes, verdict): a accept, r reject, i ignore.
    let burst = |bad: (String, Vec<u8>)| {
        let mut mix: Vec<(String, Vec<u8>, char)> = Vec::new();
        for i in 0..12 {
            mix.push((topic.clone(), valid(), 'a'));
            match i {
                2 | 9 => mix.push((topic.clone(), sealed(T0 - 3600), 'i')),
                5 => mix.push((bad.0.clone(), bad.1.clone(), 'r')),
                7 => mix.push((topic.clone(), sealed(T0 + 3600), 'i')),
                _ => {}
            }
        }
        mix
    };
    let forged_mix = burst((topic.clone(), forged()));
    let wrong_mix = burst((other_topic.clone(), valid()));
    let all: Vec<&(String, Vec<u8>, char)> = forged_mix.iter().chain(&wrong_mix).collect();
    let accepted: Vec<ReportId> = all
        .iter()
        .filter(|m| m.2 == 'a')
        .map(|m| ReportId::of(&m.1))
        .collect();
    let refused: Vec<ReportId> = all
        .iter()
        .filter(|m| m.2 != 'a')
        .map(|m| ReportId::of(&m.1))
        .collect();

    let topics = [topic.clone(), other_topic.clone()];
    let forger = hostile_peer(&node, &topics).await;
    let misfiler = hostile_peer(&node, &topics).await;
    let strip = |mix: &[(String, Vec<u8>, char)]| {
        mix.iter()
            .map(|(t, b, _)| (t.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    let (a, b) = (strip(&forged_mix), strip(&wrong_mix));
    tokio::join!(forger.publish_many(a), misfiler.publish_many(b));
    // Another peer sends good reports and some that are merely late: it is
    // not penalised.
    let polite = hostile_peer(&node, std::slice::from_ref(&topic)).await;
    let mut polite_mix = Vec::new();
    let mut polite_ok = Vec::new();
    for i in 0..10 {
        if i % 3 == 0 {
            polite_mix.push((topic.clone(), sealed(T0 - 3600)));
        }
        let v = valid();
        polite_ok.push(ReportId::of(&v));
        polite_mix.push((topic.clone(), v));
    }
    polite.publish_many(polite_mix).await;

    for id in accepted.iter().chain(&polite_ok) {
        wait_holds(&node, *id, IVRY).await;
    }
    // Accepted means forwarded: the honest peer gets exactly those.
    for id in accepted.iter().chain(&polite_ok) {
        wait_holds(&honest, *id, IVRY).await;
    }
    let mut want: Vec<ReportId> = accepted.iter().chain(&polite_ok).copied().collect();
    want.sort();
    for n in [&node, &honest] {
        let mut ids = held(n, IVRY).await;
        ids.sort();
        assert_eq!(ids, want);
        assert!(ids.iter().all(|id| !refused.contains(id)));
    }
    // One refusal per refused message, by reason.
    let refusals = node.status().await.expect("status").gossip_refused;
    let expected: std::collections::BTreeMap<&str, u64> = [
        ("bad_signature", 1),
        ("wrong_topic", 1),
        ("expired", 2 + 2 + 4),
        ("from_future", 1 + 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(refusals, expected);
    // Nothing bad was forwarded to the honest peer.
    assert!(honest
        .status()
        .await
        .expect("status")
        .gossip_refused
        .is_empty());
    let score = |p: PeerId| {
        let node = &node;
        async move { node.peer_score(p).await.expect("score").expect("known") }
    };
    for (name, peer) in [("forger", forger.peer_id), ("misfiler", misfiler.peer_id)] {
        let s = score(peer).await;
        assert!(s < GOSSIP_THRESHOLD, "{name}: score {s} not penalised");
    }
    let polite_score = score(polite.peer_id).await;
    assert!(polite_score >= 0.0, "polite score {polite_score}");
    node.shutdown().await.expect("shutdown");
    honest.shutdown().await.expect("shutdown");
}

#[cfg(feature = "quic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_talk_over_loopback_tcp_and_quic() {
    let clock = ManualClock::new(T0);
    let (d1, d2) = (tempdir(), tempdir());
    let cfg = |dir: &std::path::Path| {
        let mut c = config(dir, &clock, Some(IVRY));
        c.memory_transport = false;
        c.listen = ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        c
    };
    let a = start_with(cfg(d1.path())).await;
    let b = start_with(cfg(d2.path())).await;
    let addrs = b.listen_addrs().await.expect("addrs");
    assert_eq!(addrs.len(), 2, "one TCP and one QUIC address: {addrs:?}");
    // Dial over QUIC; TCP is exercised by the other direction.
    let quic = addrs
        .iter()
        .find(|a| a.to_string().contains("quic"))
        .expect("quic")
        .clone();
    a.dial(quic).await.expect("dial");
    let tcp_a = a
        .listen_addrs()
        .await
        .expect("addrs")
        .into_iter()
        .find(|x| x.to_string().contains("tcp"));
    b.dial(tcp_a.expect("tcp")).await.expect("dial");
    let made = report_reaches(&a, &b, Category::Following).await;
    assert!(made.published);
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
}

/// Built without QUIC, as the phone library builds the node (`cargo test
/// -p ronde-node --no-default-features --test network`): a QUIC listen
/// address is refused, so is a peer given only by a QUIC address, and a
/// peer given by both is reached over TCP.
#[cfg(not(feature = "quic"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_quic_a_node_speaks_tcp_only() {
    let clock = ManualClock::new(T0);
    let (d1, d2, d3, d4) = (tempdir(), tempdir(), tempdir(), tempdir());
    let tcp = |dir: &std::path::Path| {
        let mut c = config(dir, &clock, Some(IVRY));
        c.memory_transport = false;
        c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")];
        c
    };
    let refused = |c: ronde_node::NodeConfig, what: &'static str| async move {
        let err = ronde_node::Node::start(c).await.err().expect(what);
        assert!(
            matches!(err, ronde_node::NodeError::InvalidInput(_)),
            "{what}: {err}"
        );
    };
    let mut c = tcp(d1.path());
    c.listen
        .push("/ip4/127.0.0.1/udp/0/quic-v1".parse().expect("addr"));
    refused(c, "QUIC listen refused").await;

    let b = start_with(tcp(d2.path())).await;
    let tcp_b = b.listen_addrs().await.expect("addrs")[0]
        .clone()
        .with_p2p(b.peer_id())
        .expect("p2p");
    let quic_b: Multiaddr = format!("/ip4/127.0.0.1/udp/9/quic-v1/p2p/{}", b.peer_id())
        .parse()
        .expect("addr");
    let mut c = tcp(d3.path());
    c.bootstrap = vec![quic_b.clone()];
    refused(c, "QUIC-only peer refused").await;

    let mut c = tcp(d4.path());
    c.bootstrap = vec![quic_b, tcp_b];
    let a = start_with(c).await;
    report_reaches(&a, &b, Category::Following).await;
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
}

/// Issue 19 §2: a node joining an area asks one peer first, then the
/// others with the ids it then holds, so no report comes twice. A holds
/// r1 and r2, B holds r1, r2 and r3; the newcomer meets both at once and
/// must receive 3 reports in sync answers, not 5 (it received 5 when every
/// peer sent everything).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_peer_sends_only_what_the_first_did_not() {
    let clock = ManualClock::new(T0);
    let (da, db, dw, dn) = (tempdir(), tempdir(), tempdir(), tempdir());
    let area = area_of(IVRY.0, IVRY.1).expect("area");
    let a = start(da.path(), &clock, Some(IVRY)).await;
    let b = start(db.path(), &clock, Some(IVRY)).await;
    let author = start(dw.path(), &clock, Some(IVRY)).await;
    // Stemmed, a report is published by one of A and B: they gossip it
    // to each other.
    connect(&author, &a).await;
    connect(&author, &b).await;
    connect(&a, &b).await;
    wait_follows(&a, b.peer_id(), area).await;
    wait_follows(&b, a.peer_id(), area).await;
    wait_follows(&author, a.peer_id(), area).await;
    wait_follows(&author, b.peer_id(), area).await;
    wait_follows(&a, author.peer_id(), area).await;
    wait_follows(&b, author.peer_id(), area).await;
    let mut ids = Vec::new();
    for category in [Category::Exhibitionism, Category::Harassment] {
        let made = author
            .report(category, IVRY.0, IVRY.1, None)
            .await
            .expect("report");
        wait_holds(&a, made.id, IVRY).await;
        wait_holds(&b, made.id, IVRY).await;
        ids.push(made.id);
    }
    // A goes away (keeping its store); r3 reaches B alone.
    a.shutdown().await.expect("shutdown");
    let r3 = author
        .report(Category::Following, IVRY.0, IVRY.1, None)
        .await
        .expect("report");
    wait_holds(&b, r3.id, IVRY).await;
    ids.push(r3.id);
    author.shutdown().await.expect("shutdown");
    let a = start(da.path(), &clock, Some(IVRY)).await;
    assert_eq!(held(&a, IVRY).await.len(), 2);

    let newcomer = start(dn.path(), &clock, Some(IVRY)).await;
    connect(&newcomer, &a).await;
    connect(&newcomer, &b).await;
    for id in &ids {
        wait_holds(&newcomer, *id, IVRY).await;
    }
    // Both peers are asked (the second once the first has answered).
    let received = eventually("both sync answers", || async {
        let n = newcomer.status().await.ok()?.sync_reports_received;
        (n >= 3).then_some(n)
    })
    .await;
    assert_eq!(received, 3, "reports received in sync answers");
    for n in [newcomer, a, b] {
        n.shutdown().await.expect("shutdown");
    }
}

/// Issue 19 §1: a peer's link speed enters its gossipsub score (the ping's
/// round trip, `mesh_score`), so that pruning and opportunistic grafting
/// keep the fast links; with the bonus off, the score is only gossip's.
/// In-process links are as fast as links get: the whole bonus. (That a
/// slow link never lowers a score is `mesh_score`'s unit test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_link_raises_the_peer_score() {
    let clock = ManualClock::new(T0);
    let (d1, d2, d3) = (tempdir(), tempdir(), tempdir());
    let with_bonus = |dir: &std::path::Path, bonus: u32| {
        let mut c = config(dir, &clock, Some(IVRY));
        c.gossip.latency_bonus = bonus;
        c
    };
    let a = start_with(with_bonus(d1.path(), 10)).await;
    let b = start_with(with_bonus(d2.path(), 0)).await;
    let c = start_with(with_bonus(d3.path(), 0)).await;
    connect(&a, &b).await;
    connect(&c, &b).await;
    let area = area_of(IVRY.0, IVRY.1).expect("area");
    wait_follows(&a, b.peer_id(), area).await;
    wait_follows(&c, b.peer_id(), area).await;
    let score = eventually("the ping to raise B's score at A", || async {
        let s = a.peer_score(b.peer_id()).await.ok()??;
        (s >= 5.0).then_some(s)
    })
    .await;
    assert!(score <= 10.0 + 20.0, "the bonus and the topic cap: {score}");
    // Without the bonus, the same link scores what gossip alone gives
    // (time in the mesh: a hundredth of a point a second).
    let plain = c
        .peer_score(b.peer_id())
        .await
        .expect("score")
        .expect("known");
    assert!((0.0..1.0).contains(&plain), "{plain}");
    for n in [a, b, c] {
        n.shutdown().await.expect("shutdown");
    }
}
