//! Push wake-ups through a real city relay (docs/circle.md §7.3): two
//! phones use the relay as their mailbox host; one registers a UnifiedPush
//! endpoint (a local HTTP server standing in for the push server) and is
//! suspended, with no connection at all; the other's SOS makes the relay
//! POST one constant wake-up there; `wake()` then brings the SOS.

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::*;
use ronde_node::circle::InboxNotice;
use ronde_node::{Lifecycle, ManualClock, Node, NodeConfig, NodeEvent};
use ronde_protocol::circle::ContactState;
use ronde_relay::{Relay, StartOptions};

/// The POSTs received: (path, urgency header, body).
type Posts = Arc<Mutex<Vec<(String, Option<String>, Vec<u8>)>>>;

async fn push_server() -> (String, Posts) {
    let posts: Posts = Arc::default();
    let log = posts.clone();
    let app = axum::Router::new().route(
        "/up/{token}",
        post(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                async move {
                    let urgency = headers
                        .get("urgency")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    log.lock().expect("posts").push((
                        uri.path().to_owned(),
                        urgency,
                        body.to_vec(),
                    ));
                    StatusCode::CREATED
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), posts)
}

async fn phone(dir: &std::path::Path, clock: &ManualClock, relay: &libp2p::Multiaddr) -> Node {
    let mut c = NodeConfig::for_tests(dir);
    c.clock = Arc::new(clock.clone());
    c.mailbox_peers = vec![relay.clone()];
    Node::start(c).await.expect("phone starts")
}

async fn state_of(node: &Node, name: &str) -> Option<(String, ContactState)> {
    node.contacts()
        .await
        .ok()?
        .contacts
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| (c.id.to_hex(), c.state))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_wakes_a_suspended_phone_when_its_contact_sends_an_sos() {
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = relay_config(&dir.path().join("relay"));
    write_city_key(&config);
    let options = StartOptions {
        clock: Arc::new(clock.clone()),
        node_tweak: Some(Box::new(|c: &mut NodeConfig| {
            test_node(c);
            // The test's push server is a local plain-http one.
            c.circle.mailbox_limits.push.allow_local = true;
        })),
    };
    let relay = Relay::start(config, options).await.expect("relay starts");
    let relay_addr = relay
        .node()
        .listen_addrs()
        .await
        .expect("addrs")
        .into_iter()
        .next()
        .expect("the relay listens")
        .with_p2p(relay.node().peer_id())
        .expect("p2p");
    let (server, posts) = push_server().await;
    let ada = phone(&dir.path().join("ada"), &clock, &relay_addr).await;
    let cleo = phone(&dir.path().join("cleo"), &clock, &relay_addr).await;

    // Ada invites Cleo, who accepts; Ada approves.
    let invite = ada
        .create_invite(Some("Ada".into()), 3600)
        .await
        .expect("invite");
    cleo.accept_invite(&invite.code, Some("Cleo".into()))
        .await
        .expect("accept");
    let (cleo_id, _) = eventually("Cleo's accept at Ada", || async {
        state_of(&ada, "Cleo")
            .await
            .filter(|(_, s)| *s == ContactState::AwaitingMyApproval)
    })
    .await;
    ada.approve_contact(&cleo_id).await.expect("approve");
    eventually("the relation mutual at Cleo", || async {
        state_of(&cleo, "Ada")
            .await
            .filter(|(_, s)| *s == ContactState::Mutual)
    })
    .await;

    // Ada registers her endpoint with the relay, then is suspended.
    let endpoint = format!("{server}/up/ada-token");
    eventually("the relay to take Ada's registration", || async {
        let v = ada.set_push_endpoint(Some(endpoint.clone())).await.ok()?;
        (v.registered >= 1 && v.pending == 0).then_some(())
    })
    .await;
    let v = ada
        .set_lifecycle(Lifecycle::Suspended)
        .await
        .expect("suspend");
    assert_eq!(v.lifecycle, Lifecycle::Suspended);
    eventually("Ada to have no connection", || async {
        let v = ada.set_lifecycle(Lifecycle::Suspended).await.ok()?;
        (v.connected_peers == 0 && v.circle_connections == 0).then_some(())
    })
    .await;

    let mut events = ada.events();
    cleo.sos("help").await.expect("sos");
    let (path, urgency, body) = eventually("the relay's wake-up", || async {
        posts.lock().ok()?.first().cloned()
    })
    .await;
    assert_eq!(path, "/up/ada-token");
    assert_eq!(urgency.as_deref(), Some("high"));
    assert_eq!(body, ronde_node::circle::host::push::WAKE_BODY);

    ada.wake().await.expect("wake");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the SOS in time")
            .expect("events");
        if let NodeEvent::Alert(item) = ev {
            if matches!(item.notice, InboxNotice::Sos { .. }) {
                break;
            }
        }
    }
}
