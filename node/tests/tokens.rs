//! Tokened reports between real nodes (issue 14 §3, docs/protocol.md §8.5):
//! a node checks a report's token with the token keys of its verified city
//! directory, takes a good one, rejects a forged one, ignores one of a key
//! it does not hold, and refuses a token spent twice while its first report
//! lives. Real swarms on the memory transport; a bare gossipsub peer
//! publishes what a phone (or a double spender) would.

mod common;

use std::time::Duration;

use common::*;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::{noise, yamux, Multiaddr, PeerId, Transport};
use ronde_node::{ManualClock, Node};
use ronde_protocol::directory::{Directory, DirectoryKey};
use ronde_protocol::token::{blind, finalize, Issuer, Token};
use ronde_protocol::{area_of, cell_for, Category, Draft, ReportId};
use tokio::sync::{mpsc, oneshot};

/// The period of the test vectors' token key, and a time inside it.
const PERIOD: u64 = 1_790_035_200;
const NOW: u64 = PERIOD + 3_600;

enum Cmd {
    Dial(Multiaddr),
    Publish(String, Vec<u8>, oneshot::Sender<()>),
    PeersOn(String, oneshot::Sender<Vec<PeerId>>),
}

/// A bare gossipsub peer that publishes the reports it is given.
struct Publisher(mpsc::Sender<Cmd>);

impl Publisher {
    async fn connect(node: &Node, topic: &str) -> Publisher {
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
        let (tx, mut rx) = mpsc::channel::<Cmd>(16);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    cmd = rx.recv() => match cmd {
                        Some(Cmd::Dial(a)) => { let _ = swarm.dial(a); }
                        Some(Cmd::Publish(topic, data, reply)) => {
                            let _ = swarm.behaviour_mut().publish(IdentTopic::new(topic), data);
                            let _ = reply.send(());
                        }
                        Some(Cmd::PeersOn(topic, reply)) => {
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
        let p = Publisher(tx);
        let addr = node.listen_addrs().await.expect("addrs")[0].clone();
        p.0.send(Cmd::Dial(addr)).await.expect("dial");
        eventually("the publisher to see the node follow the area", || async {
            let (tx, rx) = oneshot::channel();
            p.0.send(Cmd::PeersOn(topic.to_string(), tx)).await.ok()?;
            rx.await.ok()?.contains(&node.peer_id()).then_some(())
        })
        .await;
        p
    }

    async fn publish(&self, topic: &str, report: &[u8]) {
        let (tx, rx) = oneshot::channel();
        self.0
            .send(Cmd::Publish(topic.to_string(), report.to_vec(), tx))
            .await
            .expect("alive");
        rx.await.expect("published");
    }
}

/// The issuer of `docs/test-vectors/tokens.json` (a test key).
fn issuer() -> Issuer {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/test-vectors/tokens.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("tokens.json")).expect("json");
    assert_eq!(v["period_start"].as_u64(), Some(PERIOD));
    let der = hex::decode(v["issuer_secret_pkcs8"].as_str().expect("key")).expect("hex");
    Issuer::from_der(PERIOD, &der).expect("issuer")
}

fn token_for(issuer: &Issuer, key: &SigningKey) -> Token {
    let mut rng = rand::rngs::OsRng;
    let (pending, blinded) =
        blind(issuer.key(), &key.verifying_key().to_bytes(), &mut rng).expect("blind");
    finalize(
        issuer.key(),
        &pending,
        &issuer.sign(&blinded).expect("sign"),
    )
    .expect("finalize")
}

fn draft(category: Category) -> Draft {
    Draft::new(category, cell_for(IVRY.0, IVRY.1, 7).expect("cell"), NOW)
}

async fn held(node: &Node) -> usize {
    node.nearby(IVRY.0, IVRY.1, 5_000.0)
        .await
        .map(|n| n.reports.len())
        .unwrap_or(0)
}

async fn refused(node: &Node, reason: &str) -> u64 {
    node.status()
        .await
        .ok()
        .and_then(|s| s.gossip_refused.get(reason).copied())
        .unwrap_or(0)
}

/// A node holding a city directory that lists the issuer's key.
async fn node_with_token_key(dir: &std::path::Path, clock: &ManualClock, issuer: &Issuer) -> Node {
    node_with_key(dir, clock, issuer, false).await
}

/// The same, asking its peers for catch-up (`sync`) or not.
async fn node_with_key(
    dir: &std::path::Path,
    clock: &ManualClock,
    issuer: &Issuer,
    sync: bool,
) -> Node {
    let city = DirectoryKey::from_bytes(&[0x21; 32]);
    let signed = Directory {
        city: "Ivry".into(),
        serial: 1,
        issued_at: NOW - 60,
        expires_at: NOW + 86_400,
        places: vec![],
        mediators: vec![],
        heartbeats: vec![],
        relays: vec![],
        token_keys: vec![issuer.key().clone()],
    }
    .sign(&city)
    .expect("sign");
    let mut cfg = config(dir, clock, Some(IVRY));
    cfg.sync = sync;
    cfg.city_keys = vec![city.public()];
    let node = start_with(cfg).await;
    node.set_directory(city.public(), signed)
        .await
        .expect("directory");
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_spent_twice_is_refused_and_a_forged_one_rejected() {
    let clock = ManualClock::new(NOW);
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = issuer();
    let node = node_with_token_key(dir.path(), &clock, &issuer).await;
    let topic = area_of(IVRY.0, IVRY.1).expect("area").topic();
    let phone = Publisher::connect(&node, &topic).await;

    // A tokened report: taken.
    let key = SigningKey::from_bytes(&[7; 32]);
    let token = token_for(&issuer, &key);
    let first = draft(Category::Harassment)
        .seal_with_token(&key, token.clone())
        .expect("seal");
    phone.publish(&topic, &first.to_bytes()).await;
    eventually("the tokened report", || async {
        (held(&node).await == 1).then_some(())
    })
    .await;

    // The same token on another report (same one-time key): refused while
    // the first lives.
    let second = draft(Category::Following)
        .seal_with_token(&key, token)
        .expect("seal");
    assert_ne!(first.id(), second.id());
    phone.publish(&topic, &second.to_bytes()).await;
    eventually("the double spend to be refused", || async {
        (refused(&node, "token_reused").await == 1).then_some(())
    })
    .await;
    assert_eq!(held(&node).await, 1, "a token was spent twice");

    // A forged token (its authenticator flipped): rejected as bad_token.
    let key3 = SigningKey::from_bytes(&[9; 32]);
    let mut forged = token_for(&issuer, &key3);
    forged.authenticator[17] ^= 1;
    let third = draft(Category::Harassment)
        .seal_with_token(&key3, forged)
        .expect("seal");
    phone.publish(&topic, &third.to_bytes()).await;
    eventually("the forged token to be rejected", || async {
        (refused(&node, "bad_token").await == 1).then_some(())
    })
    .await;

    // Another good token from the same phone: taken (the seen-set holds
    // token ids, not connections).
    let key4 = SigningKey::from_bytes(&[11; 32]);
    let fourth = draft(Category::Harassment)
        .seal_with_token(&key4, token_for(&issuer, &key4))
        .expect("seal");
    phone.publish(&topic, &fourth.to_bytes()).await;
    eventually("another tokened report", || async {
        (held(&node).await == 2).then_some(())
    })
    .await;
}

/// Issue 14: a tokened report (466 bytes) did not fit `/ronde/sync/1`'s
/// length byte, so a node coming online never caught it up; `/ronde/sync/2`
/// carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokened_report_is_caught_up_by_sync() {
    let clock = ManualClock::new(NOW);
    let (d1, d2) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let issuer = issuer();
    let holder = node_with_token_key(d1.path(), &clock, &issuer).await;
    let topic = area_of(IVRY.0, IVRY.1).expect("area").topic();
    let phone = Publisher::connect(&holder, &topic).await;
    let key = SigningKey::from_bytes(&[13; 32]);
    let report = draft(Category::Harassment)
        .seal_with_token(&key, token_for(&issuer, &key))
        .expect("seal");
    assert!(report.to_bytes().len() > 255, "a tokened report");
    phone.publish(&topic, &report.to_bytes()).await;
    eventually("the holder to take the tokened report", || async {
        (held(&holder).await == 1).then_some(())
    })
    .await;

    let plain = draft(Category::Following)
        .seal(8, &mut rand::rngs::OsRng)
        .expect("seal");
    phone.publish(&topic, &plain.to_bytes()).await;
    eventually("the holder to take the plain report", || async {
        (held(&holder).await == 2).then_some(())
    })
    .await;

    // A newcomer that asks for catch-up: only sync can hand the reports
    // over (they were published before the newcomer was there).
    let newcomer = node_with_key(d2.path(), &clock, &issuer, true).await;
    connect(&newcomer, &holder).await;
    wait_holds(&newcomer, report.id(), IVRY).await;
    wait_holds(&newcomer, plain.id(), IVRY).await;

    // An older peer that speaks only `/ronde/sync/1` is still answered,
    // without the tokened report (its length does not fit one byte).
    let area = area_of(IVRY.0, IVRY.1).expect("area");
    let answer = ask_sync1(&holder, area).await;
    assert_eq!(answer, vec![plain.to_bytes().to_vec()]);
    newcomer.shutdown().await.expect("shutdown");
    holder.shutdown().await.expect("shutdown");
}

/// Ask `node` for an area's reports as a peer that knows only
/// `/ronde/sync/1` would.
async fn ask_sync1(node: &Node, area: ronde_protocol::Area) -> Vec<Vec<u8>> {
    use libp2p::request_response::{self, ProtocolSupport};
    use ronde_node::behaviour::{SyncCodec, SyncRequest, SYNC_PROTOCOL_1};
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
            request_response::Behaviour::with_codec(
                SyncCodec::default(),
                [(SYNC_PROTOCOL_1, ProtocolSupport::Outbound)],
                request_response::Config::default(),
            )
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let addr = node.listen_addrs().await.expect("addrs")[0].clone();
    swarm.behaviour_mut().send_request_with_addresses(
        &node.peer_id(),
        SyncRequest::areas(vec![area]),
        vec![addr],
    );
    let wait = async {
        loop {
            match swarm.select_next_some().await {
                libp2p::swarm::SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { response, .. },
                    ..
                }) => return response.0,
                libp2p::swarm::SwarmEvent::Behaviour(
                    request_response::Event::OutboundFailure { error, .. },
                ) => panic!("sync/1 request failed: {error}"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("an answer on /ronde/sync/1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_key_ignores_tokened_reports() {
    let clock = ManualClock::new(NOW);
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = issuer();
    let mut cfg = config(dir.path(), &clock, Some(IVRY));
    cfg.sync = false;
    let node = start_with(cfg).await;
    let topic = area_of(IVRY.0, IVRY.1).expect("area").topic();
    let phone = Publisher::connect(&node, &topic).await;
    let key = SigningKey::from_bytes(&[7; 32]);
    let report = draft(Category::Harassment)
        .seal_with_token(&key, token_for(&issuer, &key))
        .expect("seal");
    phone.publish(&topic, &report.to_bytes()).await;
    eventually("the unknown key to be counted", || async {
        (refused(&node, "unknown_token_key").await == 1).then_some(())
    })
    .await;
    assert_eq!(held(&node).await, 0);
}

/// docs/protocol.md §8.6: once an area has had more untokened new reports
/// than the threshold in the window, its untokened reports need the
/// flood difficulty; tokened reports and other areas are judged as usual,
/// and the flood clears after the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_flood_untokened_reports_need_more_work_and_tokened_ones_do_not() {
    use ronde_node::flood_guard::FloodRule;
    let clock = ManualClock::new(NOW);
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = issuer();
    let city = DirectoryKey::from_bytes(&[0x21; 32]);
    let signed = Directory {
        city: "Ivry".into(),
        serial: 1,
        issued_at: NOW - 60,
        expires_at: NOW + 86_400,
        places: vec![],
        mediators: vec![],
        heartbeats: vec![],
        relays: vec![],
        token_keys: vec![issuer.key().clone()],
    }
    .sign(&city)
    .expect("sign");
    let mut cfg = config(dir.path(), &clock, Some(IVRY));
    cfg.sync = false;
    cfg.city_keys = vec![city.public()];
    // Tests seal at 8 bits: a flood needs 12 here (22 over 18 in the network).
    cfg.flood_rule = Some(FloodRule {
        threshold: 5,
        window_minutes: 10,
        difficulty: 12,
    });
    let node = start_with(cfg).await;
    node.set_directory(city.public(), signed)
        .await
        .expect("directory");
    let topic = area_of(IVRY.0, IVRY.1).expect("area").topic();
    let flooder = Publisher::connect(&node, &topic).await;
    let cheap = |i: u64, at: u64| {
        let cell = cell_for(IVRY.0 + i as f64 * 0.0003, IVRY.1, 7).expect("cell");
        Draft::new(Category::Following, cell, at)
            .seal(8, &mut rand::rngs::OsRng)
            .expect("seal")
            .to_bytes()
    };
    // Six cheap reports: the sixth makes it a flood (more than five).
    for i in 0..6 {
        flooder.publish(&topic, &cheap(i, NOW)).await;
    }
    eventually("the first six", || async {
        (held(&node).await == 6).then_some(())
    })
    .await;
    // A seventh at 8 bits: ignored.
    flooder.publish(&topic, &cheap(6, NOW)).await;
    eventually("a cheap report to be ignored under flood", || async {
        (refused(&node, "flood_needs_more_work").await == 1).then_some(())
    })
    .await;
    // One with the flood's 12 bits: taken.
    let cell = cell_for(IVRY.0, IVRY.1, 7).expect("cell");
    let dear = Draft::new(Category::Harassment, cell, NOW)
        .seal(12, &mut rand::rngs::OsRng)
        .expect("seal");
    flooder.publish(&topic, &dear.to_bytes()).await;
    eventually("a report with the flood's work", || async {
        (held(&node).await == 7).then_some(())
    })
    .await;
    // A tokened report: no proof of work at all, taken.
    let key = SigningKey::from_bytes(&[5; 32]);
    let tokened = draft(Category::Harassment)
        .seal_with_token(&key, token_for(&issuer, &key))
        .expect("seal");
    flooder.publish(&topic, &tokened.to_bytes()).await;
    eventually("a tokened report under flood", || async {
        (held(&node).await == 8).then_some(())
    })
    .await;
    assert_eq!(refused(&node, "flood_needs_more_work").await, 1);
    // The node's own report in the flooded area is sealed with the
    // flood's work, so that its neighbours take it.
    node.report(Category::PoorLighting, IVRY.0, IVRY.1, None)
        .await
        .expect("own report");
    // Eleven minutes later, with nothing new, the flood is over.
    clock.advance(11 * 60);
    flooder.publish(&topic, &cheap(7, NOW + 11 * 60)).await;
    eventually("a cheap report after the flood", || async {
        node.nearby(IVRY.0, IVRY.1, 5_000.0)
            .await
            .ok()?
            .reports
            .iter()
            .any(|r| r.observed_at == (NOW + 11 * 60) / 60 * 60)
            .then_some(())
    })
    .await;
}

/// docs/protocol.md §8.4: the API counts a cell's live reports, how many
/// are tokened, and the lower bound ⌈k/N⌉ on the identities behind them
/// (N = 24 a day): 25 tokened reports in one cell, plus an untokened one,
/// come from at least 2 identities.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cell_shows_its_count_and_a_lower_bound_on_the_people_behind_it() {
    let clock = ManualClock::new(NOW);
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = issuer();
    let node = node_with_token_key(dir.path(), &clock, &issuer).await;
    let topic = area_of(IVRY.0, IVRY.1).expect("area").topic();
    let phone = Publisher::connect(&node, &topic).await;
    for i in 0..25u8 {
        let key = SigningKey::from_bytes(&[100 + i; 32]);
        let r = draft(Category::Harassment)
            .seal_with_token(&key, token_for(&issuer, &key))
            .expect("seal");
        phone.publish(&topic, &r.to_bytes()).await;
    }
    let cheap = draft(Category::Following)
        .seal(8, &mut rand::rngs::OsRng)
        .expect("seal");
    phone.publish(&topic, &cheap.to_bytes()).await;
    let cell = eventually("26 reports in the cell", || async {
        let n = node.nearby(IVRY.0, IVRY.1, 1_000.0).await.ok()?;
        n.cells.into_iter().find(|c| c.reports == 26)
    })
    .await;
    assert_eq!((cell.tokened, cell.min_people), (25, 2));
    let json = serde_json::to_value(&cell).expect("json");
    assert_eq!(json["min_people"], 2);
    assert_eq!(json["tokened"], 25);
}
