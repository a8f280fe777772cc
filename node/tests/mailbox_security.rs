//! A mailbox host under attack, with real nodes and a real host on sled.
//!
//! "Mallory" is not a node but a bare libp2p peer speaking
//! `/ronde/mailbox/1`, driven by the test: it knows a mailbox address (as
//! every host the address was given to does) and tries to read and delete
//! the mail waiting there on an honest host.

mod circle_support;

use std::time::Duration;

use circle_support::*;
use futures::StreamExt;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, yamux, Multiaddr, PeerId, Swarm, Transport};
use ronde_node::circle::keyfile::identity_path;
use ronde_node::circle::wire::{
    MailboxCodec, MailboxRequest, MailboxResponse, Refusal, MAILBOX_PROTOCOL,
};
use ronde_node::circle::{relay_id, SwitchStatus};
use ronde_node::ManualClock;
use ronde_protocol::circle::{
    epoch_of, mailbox_address, Alert, Identity, MailboxKey, PairSecret, SwitchOwner,
    SMALL_ENVELOPE_LEN,
};

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

fn identity_of(dir: &std::path::Path) -> Identity {
    let bytes = std::fs::read(identity_path(dir)).expect("identity file");
    Identity::from_bytes(&bytes).expect("identity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knowing_a_mailbox_address_does_not_let_a_peer_read_or_delete_the_mail() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (host, host_addr) = start_host(dirs[0].path(), &clock).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;

    // Bob goes offline; Alice's SOS waits for him on the host.
    bob.shutdown().await.expect("bob stops");
    drop(bob);
    alice.sos("at the bus stop").await.expect("sos");
    eventually("the SOS to wait in the mailbox", || async {
        let s = host.circle_status().await.ok()?;
        (s.hosted_envelopes > 0).then_some(())
    })
    .await;

    // Mallory knows the address of Bob's mailbox and even its public key
    // (any host Bob fetched from learnt both), and asks the honest host for
    // its mail, then to delete it.
    let (a, b) = (identity_of(dirs[1].path()), identity_of(dirs[2].path()));
    let pair = PairSecret::derive(&a, b.public()).expect("pair");
    let bobs_key = MailboxKey::derive(&pair, epoch_of(T0), b.public());
    let address = mailbox_address(&pair, epoch_of(T0), b.public());
    assert_eq!(address, bobs_key.address());
    let mut m = mallory(&host_addr).await;
    let mallory_id = *m.local_peer_id();
    let unauthorized = MailboxResponse::Refused(Refusal::Unauthorized);
    let challenge = challenge_of(&mut m, host.peer_id()).await;
    let answer = ask(
        &mut m,
        host.peer_id(),
        MailboxRequest::Fetch {
            challenge,
            keys: vec![bobs_key.public_key()],
            signatures: vec![[0x42; 64]],
        },
    )
    .await;
    assert_eq!(answer, unauthorized, "Mallory read Bob's mail");
    let challenge = challenge_of(&mut m, host.peer_id()).await;
    let answer = ask(
        &mut m,
        host.peer_id(),
        MailboxRequest::Ack {
            challenge,
            keys: vec![bobs_key.public_key()],
            items: (0..8).map(|seq| (address, seq)).collect(),
            signatures: vec![[0x42; 64]],
        },
    )
    .await;
    assert_eq!(answer, unauthorized, "Mallory's ack was accepted");

    // Mallory as a host: it hands Bob a challenge the honest host issued to
    // Mallory, Bob signs his fetch for Mallory, and Mallory relays it. And
    // a fetch Bob signed for the honest host from his own peer is no use to
    // Mallory either.
    let relayed = challenge_of(&mut m, host.peer_id()).await;
    let bob_peer = PeerId::random();
    for (host_signed, client_signed) in [
        (mallory_id, bob_peer),
        (host.peer_id(), bob_peer),
        (mallory_id, mallory_id),
    ] {
        let stolen = MailboxRequest::fetch(
            relayed,
            std::slice::from_ref(&bobs_key),
            &host_signed.to_bytes(),
            &client_signed.to_bytes(),
        )
        .expect("fetch");
        assert_eq!(
            ask(&mut m, host.peer_id(), stolen).await,
            unauthorized,
            "a fetch signed for {host_signed} from {client_signed}"
        );
    }
    // A challenge is spent once, even by a refused request: a proof that
    // would have been valid (made here with Bob's key, which Mallory does
    // not have) is refused with a spent challenge.
    let spent = challenge_of(&mut m, host.peer_id()).await;
    let bad = MailboxRequest::Fetch {
        challenge: spent,
        keys: vec![bobs_key.public_key()],
        signatures: vec![[0; 64]],
    };
    assert_eq!(ask(&mut m, host.peer_id(), bad).await, unauthorized);
    let good_once = MailboxRequest::fetch(
        spent,
        std::slice::from_ref(&bobs_key),
        &host.peer_id().to_bytes(),
        &mallory_id.to_bytes(),
    )
    .expect("fetch");
    assert_eq!(ask(&mut m, host.peer_id(), good_once).await, unauthorized);
    assert!(host.circle_status().await.expect("status").hosted_envelopes > 0);

    // The SOS is still there for Bob, who fetches and acknowledges it. (The
    // host may also hold a copy of Bob's accept in the invite's mailbox,
    // left while Alice got it directly: it waits for the retention.)
    let held = host.circle_status().await.expect("status").hosted_envelopes;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    eventually("the SOS from the mailbox", || async {
        inbox_where(&bob, is_sos).await.into_iter().next()
    })
    .await;
    eventually("the SOS deleted from the host", || async {
        let s = host.circle_status().await.ok()?;
        (s.hosted_envelopes < held).then_some(())
    })
    .await;
}

async fn challenge_of(m: &mut Mallory, host: PeerId) -> [u8; 32] {
    match ask(m, host, MailboxRequest::Challenge).await {
        MailboxResponse::Challenge(c) => c,
        other => panic!("no challenge: {other:?}"),
    }
}

/// A deposit of `n` alerts (to random mailboxes) for the host `relay`.
fn junk_deposit(relay: [u8; 32], release_at: u64, n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut rng = rand::rngs::OsRng;
    let alerts = (0..n)
        .map(|_| {
            let mut mailbox = [0u8; 32];
            rng.fill_bytes(&mut mailbox);
            let mut envelope = vec![0u8; SMALL_ENVELOPE_LEN];
            rng.fill_bytes(&mut envelope);
            envelope[0] = 1;
            Alert { mailbox, envelope }
        })
        .collect();
    SwitchOwner::new(&mut rng)
        .deposit(relay, release_at, alerts, &mut rng)
        .expect("deposit")
        .to_bytes()
}

/// Mallory's switch request for `deposit`, with the work the test hosts
/// ask for (Mallory pays it: the bounds must hold against paid deposits).
fn switch_request(deposit: Vec<u8>) -> MailboxRequest {
    MailboxRequest::switch(deposit, 8)
}

/// Send every request at once and drive Mallory until all are answered;
/// how many were answered `ok`.
async fn flood(mut m: Mallory, host: PeerId, reqs: Vec<MailboxRequest>) -> usize {
    let mut waiting: std::collections::HashSet<_> = reqs
        .into_iter()
        .map(|r| m.behaviour_mut().send_request(&host, r))
        .collect();
    let mut ok = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while !waiting.is_empty() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ev = tokio::time::timeout(left, m.select_next_some())
            .await
            .expect("the flood is answered in time");
        match ev {
            SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            }) => {
                waiting.remove(&request_id);
                // A deposit taken is answered with the host's signed
                // receipt (docs/circle.md §8.1).
                ok += usize::from(matches!(
                    response,
                    MailboxResponse::Ok | MailboxResponse::Receipt(_)
                ));
            }
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                request_id, ..
            }) => {
                waiting.remove(&request_id);
            }
            _ => {}
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_deposits_neither_stalls_the_host_nor_evicts_an_honest_switch() {
    const PEERS: usize = 4;
    const PER_PEER: usize = 25;
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (host, host_addr) = start_host(dirs[0].path(), &clock).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;

    // Alice's honest switch, before the flood.
    let journey = alice
        .start_journey(48.82, 2.39, T0 + 1500, 600)
        .await
        .expect("journey");
    let release_at = journey.switch_release_at;
    eventually("the switch to be armed", || async {
        alice
            .journey()
            .await
            .ok()
            .filter(|j| j.switch == SwitchStatus::Armed)
    })
    .await;

    // Several peers deposit the largest switches they can, as fast as the
    // host answers, while the test times a request through the host's
    // event loop every 10 ms.
    let relay = relay_id(&host.peer_id());
    let mut floods = Vec::new();
    for _ in 0..PEERS {
        let mut m = mallory(&host_addr).await;
        let _ = challenge_of(&mut m, host.peer_id()).await; // connected
        let reqs = (0..PER_PEER)
            .map(|_| switch_request(junk_deposit(relay, T0 + 3600, 32)))
            .collect();
        floods.push(tokio::spawn(flood(m, host.peer_id(), reqs)));
    }
    let started = std::time::Instant::now();
    let mut worst = Duration::ZERO;
    let mut probes = 0;
    while floods.iter().any(|f| !f.is_finished()) {
        let t = std::time::Instant::now();
        host.circle_status().await.expect("status");
        worst = worst.max(t.elapsed());
        probes += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut accepted = 0;
    for f in floods {
        accepted += f.await.expect("flood task");
    }
    println!(
        "flood: {} deposits from {PEERS} peers, {accepted} accepted, in {:?}; \
         worst event-loop lag {worst:?} over {probes} probes",
        PEERS * PER_PEER,
        started.elapsed()
    );
    assert!(
        worst < Duration::from_millis(500),
        "the host's event loop stalled for {worst:?} during the flood"
    );
    // Each peer got at most its share; the rest was refused, not evicting.
    assert!(accepted <= PEERS * 16, "{accepted} flood deposits accepted");
    assert_eq!(
        host.circle_status().await.expect("status").hosted_switches,
        1 + accepted
    );
    // A deposit without its proof of work is refused before it is parsed.
    let mut m = mallory(&host_addr).await;
    let lazy = MailboxRequest::Switch {
        work: 0,
        request: junk_deposit(relay, T0 + 3600, 4),
    };
    let answer = ask(&mut m, host.peer_id(), lazy.clone()).await;
    let MailboxRequest::Switch { request, .. } = lazy else {
        unreachable!()
    };
    let paid = ronde_protocol::circle::switch::check_deposit_work(&request, 0, 8);
    if !paid {
        assert_eq!(answer, MailboxResponse::Refused(Refusal::SwitchWorkMissing));
    }

    // Alice's node dies: her switch still fires at its time.
    alice.shutdown().await.expect("stop");
    drop(alice);
    clock.set(release_at);
    eventually("the overdue alert", || async {
        inbox_where(&bob, is_overdue).await.into_iter().next()
    })
    .await;
}
