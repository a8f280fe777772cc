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
use ronde_node::ManualClock;
use ronde_protocol::circle::{epoch_of, mailbox_address, Identity, MailboxKey, PairSecret};

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

    // The SOS is still there for Bob, who fetches and acknowledges it.
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    eventually("the SOS from the mailbox", || async {
        inbox_where(&bob, is_sos).await.into_iter().next()
    })
    .await;
    eventually("the mailbox to be emptied", || async {
        let s = host.circle_status().await.ok()?;
        (s.hosted_envelopes == 0).then_some(())
    })
    .await;
}

async fn challenge_of(m: &mut Mallory, host: PeerId) -> [u8; 32] {
    match ask(m, host, MailboxRequest::Challenge).await {
        MailboxResponse::Challenge(c) => c,
        other => panic!("no challenge: {other:?}"),
    }
}
