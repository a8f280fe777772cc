//! Floods of valid reports (issue 14): the bound on new reports each peer
//! may bring per area per minute, with real swarms on the memory transport.
//! One peer over the bound gets its excess ignored; other peers, and a
//! peer forwarding many honest reports under the default bound, lose
//! nothing.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::{noise, yamux, Multiaddr, PeerId, Transport};
use ronde_node::new_reports::NewReportBound;
use ronde_node::{ManualClock, Node};
use ronde_protocol::{area_of, Category, ReportId};
use tokio::sync::{mpsc, oneshot};

enum Cmd {
    Dial(Multiaddr),
    PublishMany(Vec<(String, Vec<u8>)>, oneshot::Sender<()>),
    PeersOn(String, oneshot::Sender<Vec<PeerId>>),
}

/// A bare gossipsub peer that publishes valid reports it was given (as a
/// flooder with precomputed proof of work would).
struct Flooder(mpsc::Sender<Cmd>);

impl Flooder {
    async fn connect(node: &Node, topic: &str) -> Flooder {
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
                    .max_transmit_size(256 * 1024)
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
                        Some(Cmd::PublishMany(messages, reply)) => {
                            for (topic, data) in messages {
                                let _ = swarm.behaviour_mut().publish(IdentTopic::new(topic), data);
                            }
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
        let f = Flooder(tx);
        let addr = node.listen_addrs().await.expect("addrs")[0].clone();
        f.0.send(Cmd::Dial(addr)).await.expect("dial");
        eventually("the flooder to see the node follow the area", || async {
            let (tx, rx) = oneshot::channel();
            f.0.send(Cmd::PeersOn(topic.to_string(), tx)).await.ok()?;
            rx.await.ok()?.contains(&node.peer_id()).then_some(())
        })
        .await;
        f
    }

    async fn publish(&self, topic: &str, reports: &[Vec<u8>]) {
        let (tx, rx) = oneshot::channel();
        let msgs = reports
            .iter()
            .map(|r| (topic.to_string(), r.clone()))
            .collect();
        self.0
            .send(Cmd::PublishMany(msgs, tx))
            .await
            .expect("alive");
        rx.await.expect("published");
    }
}

/// Valid reports spread over a few hundred metres around Ivry.
fn valid_reports(n: usize, now: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let at = (
                IVRY.0 + (i % 8) as f64 * 0.0003,
                IVRY.1 + (i / 8 % 8) as f64 * 0.0003,
            );
            make_report(at, now, Category::Following).bytes().to_vec()
        })
        .collect()
}

async fn held_count(node: &Node) -> usize {
    node.nearby(IVRY.0, IVRY.1, 5_000.0)
        .await
        .map(|n| n.reports.len())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_the_bound_gets_its_excess_ignored_and_others_are_unaffected() {
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), &clock, Some(IVRY));
    cfg.sync = false;
    cfg.new_report_bound = Some(NewReportBound {
        per_minute: 10,
        penalise_over: 20,
    });
    let node = start_with(cfg).await;
    let topic = area_of(IVRY.0, IVRY.1).expect("area").topic();

    let flooder = Flooder::connect(&node, &topic).await;
    flooder.publish(&topic, &valid_reports(30, T0)).await;
    eventually("the node to take the flooder's first reports", || async {
        (held_count(&node).await >= 10).then_some(())
    })
    .await;
    // Give the rest of the flood every chance to be stored.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        held_count(&node).await,
        10,
        "one peer brought more new reports into the area in a minute than the bound"
    );

    // Another peer in the same minute has its own budget.
    let other = Flooder::connect(&node, &topic).await;
    let honest = valid_reports(3, T0 + 1);
    other.publish(&topic, &honest).await;
    eventually("another peer's reports", || async {
        (held_count(&node).await == 13).then_some(())
    })
    .await;

    // A new minute, a new budget.
    clock.advance(60);
    other.publish(&topic, &valid_reports(5, T0 + 61)).await;
    eventually("the next minute's reports", || async {
        (held_count(&node).await == 18).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_forwarder_under_the_default_bound_loses_nothing() {
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), &clock, Some(IVRY));
    cfg.sync = false;
    let node = start_with(cfg).await;
    let topic = area_of(IVRY.0, IVRY.1).expect("area").topic();
    // A relay forwarding a busy minute of an area: 300 new reports at once,
    // a hundred times the honest rate of a crowded area.
    let relay = Flooder::connect(&node, &topic).await;
    relay.publish(&topic, &valid_reports(300, T0)).await;
    eventually("every forwarded report", || async {
        (held_count(&node).await == 300).then_some(())
    })
    .await;
}
