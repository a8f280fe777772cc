//! Push wake-ups with a real mailbox host, real phones and a local HTTP
//! server standing in for the UnifiedPush server (docs/circle.md §7.3):
//! a suspended phone, with no connection at all, registers its endpoint;
//! a contact's SOS makes the host POST one content-free wake-up there; the
//! app's `wake()` then fetches the mail and the SOS is delivered. And a
//! bare peer ("Mallory") that tries to register for a mailbox whose key it
//! does not hold, or to make the host post to a local address, is refused.

mod circle_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use circle_support::*;
use futures::StreamExt;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, yamux, Multiaddr, PeerId, Swarm, Transport};
use ronde_node::circle::host::push::WAKE_BODY;
use ronde_node::circle::wire::{
    MailboxCodec, MailboxRequest, MailboxResponse, Refusal, MAILBOX_PROTOCOL,
};
use ronde_node::{Lifecycle, ManualClock, NodeConfig};
use ronde_protocol::circle::{MailboxKey, SMALL_ENVELOPE_LEN};

/// One POST the endpoint received.
#[derive(Debug, Clone)]
struct Posted {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A local UnifiedPush-compatible endpoint: `POST /up/{token}` answers
/// 201 (as a push server does), `POST /gone/{token}` 410; every POST is
/// recorded.
async fn push_server() -> (String, Arc<Mutex<Vec<Posted>>>) {
    let log: Arc<Mutex<Vec<Posted>>> = Arc::default();
    let record = |log: Arc<Mutex<Vec<Posted>>>, status: StatusCode, prefix: &'static str| {
        move |Path(token): Path<String>, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                log.lock().expect("log").push(Posted {
                    path: format!("{prefix}{token}"),
                    headers,
                    body: body.to_vec(),
                });
                status
            }
        }
    };
    let app = axum::Router::new()
        .route(
            "/up/{token}",
            post(record(log.clone(), StatusCode::CREATED, "/up/")),
        )
        .route(
            "/gone/{token}",
            post(record(log.clone(), StatusCode::GONE, "/gone/")),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), log)
}

fn header<'a>(p: &'a Posted, name: &str) -> Option<&'a str> {
    p.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A mailbox host that logs the kinds of the requests it gets.
async fn host_with_log(
    dir: &std::path::Path,
    clock: &ManualClock,
    tweak: impl FnOnce(&mut NodeConfig),
) -> (
    ronde_node::Node,
    Multiaddr,
    Arc<Mutex<Vec<(&'static str, PeerId)>>>,
) {
    let mut c = config(dir, clock);
    c.mailbox_host = true;
    let kinds: Arc<Mutex<Vec<(&'static str, PeerId)>>> = Arc::default();
    let k = kinds.clone();
    c.mailbox_tap = Some(Arc::new(move |peer, _, req| {
        let kind = match req {
            MailboxRequest::Push { .. } => "push",
            MailboxRequest::Fetch { .. } => "fetch",
            MailboxRequest::Put { .. } => "put",
            _ => "other",
        };
        k.lock().expect("kinds").push((kind, peer));
    }));
    tweak(&mut c);
    let host = start(c).await;
    let addr = host
        .listen_addrs()
        .await
        .expect("addrs")
        .into_iter()
        .next()
        .expect("the host listens")
        .with_p2p(host.peer_id())
        .expect("p2p suffix");
    (host, addr, kinds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_phone_is_woken_by_push_and_gets_the_sos() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let (_host, host_addr, kinds) = host_with_log(dirs[0].path(), &clock, |_| {}).await;
    let (server, posts) = push_server().await;
    let ada = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let cleo = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    befriend(&ada, "Ada", &cleo, "Cleo").await;

    // The app got an endpoint from its UnifiedPush distributor.
    let endpoint = format!("{server}/up/tok3n-of-ada");
    let view = ada
        .set_push_endpoint(Some(endpoint.clone()))
        .await
        .expect("push endpoint");
    assert!(view.endpoint_set);
    assert!(view.hosts >= 1, "registered with the host: {view:?}");
    eventually("the host to confirm the registration", || async {
        let v = ada.set_push_endpoint(Some(endpoint.clone())).await.ok()?;
        (v.registered >= 1 && v.pending == 0).then_some(())
    })
    .await;
    // Only Ada registers: the peer ids of her day's connections (today's,
    // and tomorrow's registered ahead, in whichever order they arrive).
    let ada_days = eventually("the registration to reach the host", || async {
        let k = kinds.lock().ok()?;
        let ids: Vec<_> = k
            .iter()
            .filter(|(kind, _)| *kind == "push")
            .map(|(_, p)| *p)
            .collect();
        (!ids.is_empty()).then_some(ids)
    })
    .await;
    assert!(!ada_days.is_empty());
    let ada_fetches = || {
        let k = kinds.lock().expect("kinds");
        let ada: Vec<_> = k
            .iter()
            .filter(|(kind, _)| *kind == "push")
            .map(|(_, p)| *p)
            .collect();
        k.iter()
            .filter(|(kind, p)| *kind == "fetch" && ada.contains(p))
            .count()
    };

    // Suspended: no connection at all, neither the main swarm's nor the
    // circle's.
    let view = ada
        .set_lifecycle(Lifecycle::Suspended)
        .await
        .expect("suspend");
    assert_eq!(view.lifecycle, Lifecycle::Suspended);
    assert_eq!(view.areas, 0);
    assert_eq!(view.kept_peer, None);
    eventually("Ada to have no connection", || async {
        let v = ada.set_lifecycle(Lifecycle::Suspended).await.ok()?;
        let peers = ada.connected_peers().await.ok()?;
        (peers.is_empty() && v.circle_connections == 0).then_some(())
    })
    .await;
    assert!(
        posts.lock().expect("posts").is_empty(),
        "no mail, no wake-up"
    );

    // Cleo's SOS goes to the host's mailbox: the host wakes Ada's
    // endpoint, with nothing in the wake-up.
    let mut events = ada.events();
    let fetches_before = ada_fetches();
    cleo.sos("help").await.expect("sos");
    let first = eventually("a wake-up at Ada's endpoint", || async {
        posts.lock().ok()?.first().cloned()
    })
    .await;
    assert_eq!(first.path, "/up/tok3n-of-ada");
    assert_eq!(first.body, WAKE_BODY, "a constant body");
    assert_eq!(header(&first, "urgency"), Some("high"));
    assert!(header(&first, "ttl").is_some_and(|t| t.parse::<u64>().is_ok()));
    // Suspended, Ada fetched nothing by herself.
    assert_eq!(ada_fetches(), fetches_before, "no poll while suspended");
    let inbox = ada.inbox(None).await.expect("inbox");
    assert!(
        !inbox.items.iter().any(is_sos),
        "the SOS waits at the host until the wake-up"
    );

    // The app's UnifiedPush receiver calls wake(): the mail is fetched
    // and the SOS delivered to the listeners.
    let woke = ada.wake().await.expect("wake");
    assert_eq!(woke.hosts, 1);
    // Answered once the fetches are done: the SOS is already in.
    assert!(woke.complete, "{woke:?}");
    assert!(woke.received >= 1, "{woke:?}");
    let inbox = ada.inbox(None).await.expect("inbox");
    assert!(
        inbox.items.iter().any(is_sos),
        "delivered when wake() returns"
    );
    let sos = next_alert(&mut events, is_sos).await;
    assert!(is_sos(&sos));
    assert!(
        ada_fetches() > fetches_before,
        "fetched by the same day's identity"
    );
    // Still suspended; the coalesced wake-ups of the SOS's re-sends are
    // at most one per gap (30 s by default): one so far.
    let v = ada
        .set_lifecycle(Lifecycle::Suspended)
        .await
        .expect("still suspended");
    assert_eq!(v.lifecycle, Lifecycle::Suspended);
    assert_eq!(posts.lock().expect("posts").len(), 1);

    // Back to the foreground: the areas and polls again.
    let v = ada
        .set_lifecycle(Lifecycle::Foreground)
        .await
        .expect("foreground");
    assert_eq!(v.lifecycle, Lifecycle::Foreground);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_suspended_across_midnight_is_still_woken() {
    // Half an hour before midnight UTC.
    let day = T0 / 86_400;
    let clock = ManualClock::new((day + 1) * 86_400 - 1800);
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let (_host, host_addr, _) = host_with_log(dirs[0].path(), &clock, |_| {}).await;
    let (server, posts) = push_server().await;
    let ada = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let cleo = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    befriend(&ada, "Ada", &cleo, "Cleo").await;
    let endpoint = format!("{server}/up/ada");
    ada.set_push_endpoint(Some(endpoint.clone()))
        .await
        .expect("push endpoint");
    eventually("the host to confirm the registrations", || async {
        let v = ada.set_push_endpoint(Some(endpoint.clone())).await.ok()?;
        (v.registered >= 1 && v.pending == 0).then_some(())
    })
    .await;
    ada.set_lifecycle(Lifecycle::Suspended)
        .await
        .expect("suspend");

    // Past midnight: Cleo's SOS goes to the new day's mailbox, which the
    // suspended phone never polled; it was registered ahead.
    clock.advance(3600);
    let mut events = ada.events();
    cleo.sos("help").await.expect("sos");
    eventually("a wake-up after midnight", || async {
        posts.lock().ok()?.first().cloned()
    })
    .await;
    ada.wake().await.expect("wake");
    next_alert(&mut events, is_sos).await;
}

/// The background mode of a phone whose push endpoint is registered
/// (issue 16 §3): the push wakes it, so it keeps no connection at all (not
/// even the one kept peer of a phone without push) and does not poll
/// every `mailbox_poll_interval`, only every `background_poll_interval`
/// (a safety net if a push is lost); a contact's SOS still wakes it and is
/// delivered. Without push, the background keeps one connection and its
/// polls (`lifecycle.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_phone_with_push_keeps_no_connection_and_polls_only_rarely() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let (host, host_addr, kinds) = host_with_log(dirs[0].path(), &clock, |_| {}).await;
    let (server, posts) = push_server().await;
    let phone = |i: usize| {
        let mut c = config_with_host(dirs[i].path(), &clock, &host_addr);
        // A bootstrap peer too: the one a phone without push would keep.
        c.bootstrap = vec![host_addr.clone()];
        c
    };
    let ada = start(phone(1)).await;
    let cleo = start(phone(2)).await;
    befriend(&ada, "Ada", &cleo, "Cleo").await;
    let endpoint = format!("{server}/up/ada-in-the-pocket");
    ada.set_push_endpoint(Some(endpoint.clone()))
        .await
        .expect("push endpoint");
    eventually("the host to confirm the registration", || async {
        let v = ada.set_push_endpoint(Some(endpoint.clone())).await.ok()?;
        (v.registered >= 1 && v.pending == 0).then_some(())
    })
    .await;
    let ada_ids: Vec<PeerId> = kinds
        .lock()
        .expect("kinds")
        .iter()
        .filter(|(kind, _)| *kind == "push")
        .map(|(_, p)| *p)
        .collect();
    let ada_fetches = || {
        kinds
            .lock()
            .expect("kinds")
            .iter()
            .filter(|(kind, p)| *kind == "fetch" && ada_ids.contains(p))
            .count()
    };

    let view = ada
        .set_lifecycle(Lifecycle::Background)
        .await
        .expect("background");
    assert_eq!(view.lifecycle, Lifecycle::Background);
    assert_eq!(view.areas, 0);
    assert_eq!(view.kept_peer, None, "push wakes it: no peer kept");
    eventually("Ada to have no connection", || async {
        let v = ada.set_lifecycle(Lifecycle::Background).await.ok()?;
        let peers = ada.connected_peers().await.ok()?;
        (peers.is_empty() && v.circle_connections == 0).then_some(())
    })
    .await;
    // Ten foreground poll periods (300 ms in tests): no fetch, and no
    // connection opened again.
    let fetches_before = ada_fetches();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ada_fetches(), fetches_before, "no poll in the background");
    assert!(ada.connected_peers().await.expect("peers").is_empty());
    let v = ada
        .set_lifecycle(Lifecycle::Background)
        .await
        .expect("still background");
    assert_eq!(v.circle_connections, 0);
    assert_eq!(v.kept_peer, None);

    // Cleo's SOS: a wake-up at the endpoint, and wake() delivers it.
    let mut events = ada.events();
    cleo.sos("help").await.expect("sos");
    eventually("a wake-up at Ada's endpoint", || async {
        posts.lock().ok()?.first().cloned()
    })
    .await;
    let woke = ada.wake().await.expect("wake");
    assert!(woke.complete && woke.received >= 1, "{woke:?}");
    next_alert(&mut events, is_sos).await;
    // The wake-up's connection closes once its fetches are done.
    eventually("Ada to have no connection again", || async {
        let v = ada.set_lifecycle(Lifecycle::Background).await.ok()?;
        (v.circle_connections == 0).then_some(())
    })
    .await;

    // Foreground: the host is a peer and the polls come back.
    ada.set_lifecycle(Lifecycle::Foreground)
        .await
        .expect("foreground");
    let after_wake = ada_fetches();
    eventually("polls again in the foreground", || async {
        (ada_fetches() > after_wake).then_some(())
    })
    .await;
    eventually("the host connected again", || async {
        let peers = ada.connected_peers().await.ok()?;
        peers.contains(&host.peer_id()).then_some(())
    })
    .await;
}

type Mallory = Swarm<request_response::Behaviour<MailboxCodec>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A bare peer speaking `/ronde/mailbox/1`, connected to `host`.
async fn mallory(host: &Multiaddr) -> Mallory {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(|key| -> Result<_, BoxError> {
            Ok(MemoryTransport::default()
                .upgrade(upgrade::Version::V1)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default()))
        })
        .expect("transport")
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                MailboxCodec::default(),
                [(MAILBOX_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.dial(host.clone()).expect("dial");
    swarm
}

/// Send `req` to `peer` and drive Mallory until the answer.
async fn ask(swarm: &mut Mallory, peer: PeerId, req: MailboxRequest) -> MailboxResponse {
    let id = swarm.behaviour_mut().send_request(&peer, req);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ev = tokio::time::timeout(left, swarm.select_next_some())
            .await
            .expect("an answer in time");
        match ev {
            SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            }) if request_id == id => return response,
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                request_id,
                error,
                ..
            }) if request_id == id => panic!("request failed: {error}"),
            _ => {}
        }
    }
}

/// Register `endpoint` for `key`'s mailbox, properly proven.
async fn register(
    m: &mut Mallory,
    host: PeerId,
    endpoint: &str,
    key: &MailboxKey,
) -> MailboxResponse {
    let me = *m.local_peer_id();
    let c = challenge_of(m, host).await;
    let req = push_request(
        c,
        endpoint,
        std::slice::from_ref(key),
        std::slice::from_ref(key),
        host,
        me,
    );
    ask(m, host, req).await
}

async fn challenge_of(m: &mut Mallory, host: PeerId) -> [u8; 32] {
    match ask(m, host, MailboxRequest::Challenge).await {
        MailboxResponse::Challenge(c) => c,
        other => panic!("no challenge: {other:?}"),
    }
}

/// A push registration of `keys` signed by `signers` (the keys' secrets,
/// or others) for `host`, from `client`.
fn push_request(
    challenge: [u8; 32],
    endpoint: &str,
    keys: &[MailboxKey],
    signers: &[MailboxKey],
    host: PeerId,
    client: PeerId,
) -> MailboxRequest {
    let signed = MailboxRequest::push(
        challenge,
        3600,
        endpoint,
        signers,
        &host.to_bytes(),
        &client.to_bytes(),
    )
    .expect("push");
    match signed {
        MailboxRequest::Push {
            challenge,
            lifetime,
            endpoint,
            signatures,
            ..
        } => MailboxRequest::Push {
            challenge,
            lifetime,
            endpoint,
            keys: keys.iter().map(MailboxKey::public_key).collect(),
            signatures,
        },
        other => other,
    }
}

// Test-first note: these hostile tests were written with the feature, as
// the registration did not exist before (there was nothing to refuse);
// the proof is the mailbox protocol's (docs/circle.md §7.1), whose own
// hostile tests are in mailbox_security.rs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_needs_the_key_of_every_mailbox_and_the_wake_up_names_none() {
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().expect("tempdir");
    let (host, host_addr, _) = host_with_log(dir.path(), &clock, |_| {}).await;
    let host_id = host.peer_id();
    let (server, posts) = push_server().await;
    let mut m = mallory(&host_addr).await;
    let me = *m.local_peer_id();
    let victim = MailboxKey::from_seed(&[0x51; 32]);
    let own = MailboxKey::from_seed(&[0x0a; 32]);
    let endpoint = format!("{server}/up/mallory");

    // The victim's key, signed by Mallory's own: refused.
    let c = challenge_of(&mut m, host_id).await;
    let req = push_request(
        c,
        &endpoint,
        std::slice::from_ref(&victim),
        std::slice::from_ref(&own),
        host_id,
        me,
    );
    assert_eq!(
        ask(&mut m, host_id, req).await,
        MailboxResponse::Refused(Refusal::Unauthorized)
    );
    // The victim's key among a proven one: refused whole.
    let c = challenge_of(&mut m, host_id).await;
    let req = push_request(
        c,
        &endpoint,
        &[own.clone(), victim.clone()],
        &[own.clone(), own.clone()],
        host_id,
        me,
    );
    assert_eq!(
        ask(&mut m, host_id, req).await,
        MailboxResponse::Refused(Refusal::Unauthorized)
    );
    // A proof made for another client peer id: refused.
    let c = challenge_of(&mut m, host_id).await;
    let req = push_request(
        c,
        &endpoint,
        std::slice::from_ref(&own),
        std::slice::from_ref(&own),
        host_id,
        PeerId::random(),
    );
    assert_eq!(
        ask(&mut m, host_id, req).await,
        MailboxResponse::Refused(Refusal::Unauthorized)
    );
    // A challenge not issued: refused.
    let req = push_request(
        [7; 32],
        &endpoint,
        std::slice::from_ref(&own),
        std::slice::from_ref(&own),
        host_id,
        me,
    );
    assert_eq!(
        ask(&mut m, host_id, req).await,
        MailboxResponse::Refused(Refusal::Unauthorized)
    );

    // Mail for the victim wakes nobody.
    let envelope = vec![1u8; SMALL_ENVELOPE_LEN];
    let put = MailboxRequest::Put {
        mailbox: victim.address(),
        envelope: envelope.clone(),
    };
    assert_eq!(ask(&mut m, host_id, put).await, MailboxResponse::Ok);

    // Its own key, properly proven: taken; mail there wakes the endpoint,
    // and the wake-up names neither the mailbox nor its key.
    let c = challenge_of(&mut m, host_id).await;
    let req = push_request(
        c,
        &endpoint,
        std::slice::from_ref(&own),
        std::slice::from_ref(&own),
        host_id,
        me,
    );
    assert_eq!(ask(&mut m, host_id, req).await, MailboxResponse::Ok);
    let put = MailboxRequest::Put {
        mailbox: own.address(),
        envelope,
    };
    assert_eq!(ask(&mut m, host_id, put).await, MailboxResponse::Ok);
    let got = eventually("the wake-up", || async {
        posts.lock().ok()?.first().cloned()
    })
    .await;
    assert_eq!(got.path, "/up/mallory", "only its own endpoint, once");
    assert_eq!(got.body, WAKE_BODY);
    let secrets: Vec<Vec<u8>> = vec![own.address().to_vec(), own.public_key().to_vec()];
    let mut seen = got.body.clone();
    seen.extend(got.path.as_bytes());
    for (k, v) in &got.headers {
        seen.extend(k.as_bytes());
        seen.extend(v.as_bytes());
    }
    for s in &secrets {
        let hex = hex::encode(s);
        assert!(
            !seen.windows(s.len()).any(|w| w == s.as_slice()),
            "raw bytes in the wake-up"
        );
        assert!(
            !String::from_utf8_lossy(&seen).contains(&hex),
            "hex in the wake-up"
        );
    }
    assert_eq!(
        posts.lock().expect("posts").len(),
        1,
        "the victim's mail woke nobody"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_posts_only_to_public_https_endpoints_and_forgets_gone_ones() {
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().expect("tempdir");
    // A host as deployed: local and plain-http endpoints refused.
    let (host, host_addr, _) = host_with_log(dir.path(), &clock, |c| {
        c.circle.mailbox_limits.push.allow_local = false;
    })
    .await;
    let host_id = host.peer_id();
    let mut m = mallory(&host_addr).await;
    let me = *m.local_peer_id();
    let own = MailboxKey::from_seed(&[0x0b; 32]);
    for bad in [
        "http://push.example.org/up/x",
        "https://127.0.0.1/up/x",
        "https://localhost/up/x",
        "https://10.0.0.7/up/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/up/x",
    ] {
        let c = challenge_of(&mut m, host_id).await;
        let req = push_request(
            c,
            bad,
            std::slice::from_ref(&own),
            std::slice::from_ref(&own),
            host_id,
            me,
        );
        assert_eq!(
            ask(&mut m, host_id, req).await,
            MailboxResponse::Refused(Refusal::PushEndpoint),
            "{bad}"
        );
    }
    let c = challenge_of(&mut m, host_id).await;
    let req = push_request(
        c,
        "https://push.example.org/up/x",
        std::slice::from_ref(&own),
        std::slice::from_ref(&own),
        host_id,
        me,
    );
    assert_eq!(ask(&mut m, host_id, req).await, MailboxResponse::Ok);
    drop(host);

    // A push server that answers 410: the registration is dropped. Seen
    // through the bound of one registration per endpoint here: another
    // peer cannot register the same endpoint until the host forgot it.
    let dir = tempfile::tempdir().expect("tempdir");
    let (host, host_addr, _) = host_with_log(dir.path(), &clock, |c| {
        c.circle.mailbox_limits.push.max_per_endpoint = 1;
    })
    .await;
    let host_id = host.peer_id();
    let (server, posts) = push_server().await;
    let gone = format!("{server}/gone/old");
    let mut m = mallory(&host_addr).await;
    assert_eq!(
        register(&mut m, host_id, &gone, &own).await,
        MailboxResponse::Ok
    );
    let mut m2 = mallory(&host_addr).await;
    assert_eq!(
        register(&mut m2, host_id, &gone, &own).await,
        MailboxResponse::Refused(Refusal::PushQuota),
        "one registration per endpoint"
    );
    let put = MailboxRequest::Put {
        mailbox: own.address(),
        envelope: vec![1; SMALL_ENVELOPE_LEN],
    };
    assert_eq!(ask(&mut m, host_id, put).await, MailboxResponse::Ok);
    eventually("the wake-up answered 410", || async {
        (posts.lock().ok()?.len() == 1).then_some(())
    })
    .await;
    let mut answers = Vec::new();
    for _ in 0..200 {
        let a = register(&mut m2, host_id, &gone, &own).await;
        if a == MailboxResponse::Ok {
            break;
        }
        answers.push(a);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        answers.len() < 200,
        "the gone endpoint was never forgotten: {:?}",
        answers.last()
    );
}
