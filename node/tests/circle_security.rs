//! A hostile or removed contact against a real node. "Carol" is not a node
//! but a bare libp2p peer speaking `/ronde/circle/1`, driven by the test
//! with `ronde_protocol::circle` directly: it makes a real invite, receives
//! Bob's real accept and confirms it, then sends Bob envelopes that are
//! legitimate, replayed, tampered with, or sealed to someone else, and
//! finally keeps sending after Bob removed it.

mod circle_support;

use std::time::Duration;

use circle_support::*;
use futures::StreamExt;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, yamux, Multiaddr, PeerId, Swarm, Transport};
use rand::rngs::OsRng;
use ronde_node::circle::wire::{CircleCodec, Delivery, CIRCLE_PROTOCOL};
use ronde_node::circle::InboxNotice;
use ronde_node::ManualClock;
use ronde_protocol::circle::{
    seal, Circle, ContactEvent, ContactId, ContactState, Identity, InviteToken, Message, MessageId,
};

type Rogue = Swarm<request_response::Behaviour<CircleCodec>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn rogue() -> (Rogue, Multiaddr) {
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
                CircleCodec::default(),
                [(CIRCLE_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm
        .listen_on("/memory/0".parse().expect("addr"))
        .expect("listen");
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    let peer = *swarm.local_peer_id();
    (swarm, addr.with_p2p(peer).expect("p2p"))
}

type Incoming = (PeerId, Vec<u8>, ResponseChannel<Delivery>);

/// Drive the rogue until a request arrives (or `wait` passes).
async fn next_request(swarm: &mut Rogue, wait: Duration) -> Option<Incoming> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ev = tokio::time::timeout(left, swarm.select_next_some())
            .await
            .ok()?;
        if let SwarmEvent::Behaviour(request_response::Event::Message {
            peer,
            message:
                request_response::Message::Request {
                    request, channel, ..
                },
            ..
        }) = ev
        {
            return Some((peer, request, channel));
        }
    }
}

/// Send an envelope to `peer` and drive the rogue until the answer.
async fn deliver(swarm: &mut Rogue, peer: PeerId, envelope: Vec<u8>) -> Delivery {
    let id: OutboundRequestId = swarm.behaviour_mut().send_request(&peer, envelope);
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
            }) if request_id == id => panic!("delivery failed: {error}"),
            _ => {}
        }
    }
}

fn sos(id: u8, note: &str) -> Message {
    Message::Sos {
        sos: MessageId([id; 16]),
        at: T0,
        place: None,
        note: note.to_owned(),
    }
}

async fn carols_sos_notes(bob: &ronde_node::Node) -> Vec<String> {
    inbox_where(bob, is_sos)
        .await
        .into_iter()
        .filter(|i| i.from_name == "Carol")
        .filter_map(|i| match i.notice {
            InboxNotice::Sos { note, .. } => Some(note),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_replayed_misaddressed_and_removed_senders_are_refused() {
    let clock = ManualClock::new(T0);
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let alice = start(config(da.path(), &clock)).await;
    let bob = start(config(db.path(), &clock)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;

    // Carol, a bare peer with a real identity, invites Bob.
    let (mut swarm, carol_addr) = rogue().await;
    let carol = Identity::generate(&mut OsRng);
    let mut carol_circle = Circle::new(carol.public().clone());
    let invite = carol_circle
        .create_invite("Carol", vec![carol_addr.to_string()], T0, 3600, &mut OsRng)
        .expect("invite");
    bob.accept_invite(&invite.to_code(), None)
        .await
        .expect("accept");
    let (bob_peer, accept, channel) = next_request(&mut swarm, DEADLINE)
        .await
        .expect("Bob's accept arrives directly");
    let got = carol_circle
        .open(&carol, &accept, T0)
        .expect("the accept opens");
    assert_eq!(got.event, Some(ContactEvent::Requested));
    let bob_id: ContactId = got.from;
    let _ = swarm
        .behaviour_mut()
        .send_response(channel, Delivery::Accepted);
    let confirm = carol_circle
        .approve(&carol, &bob_id, &mut OsRng)
        .expect("approve");
    assert_eq!(
        deliver(&mut swarm, bob_peer, confirm).await,
        Delivery::Accepted
    );
    eventually("Carol to be mutual at Bob", || async {
        contact_state(&bob, "Carol")
            .await
            .filter(|(_, s)| *s == ContactState::Mutual)
    })
    .await;

    // A legitimate SOS is accepted, once.
    let legit = carol_circle
        .seal(&carol, &bob_id, &sos(1, "legit"), &mut OsRng)
        .expect("seal");
    assert_eq!(
        deliver(&mut swarm, bob_peer, legit.clone()).await,
        Delivery::Accepted
    );
    assert_eq!(
        deliver(&mut swarm, bob_peer, legit.clone()).await,
        Delivery::Refused,
        "a replay is refused"
    );

    // Any altered byte is refused, and does not burn the real one.
    let second = carol_circle
        .seal(&carol, &bob_id, &sos(2, "second"), &mut OsRng)
        .expect("seal");
    for i in [0, 1, 40, 300, second.len() - 1] {
        let mut bad = second.clone();
        bad[i] ^= 0x20;
        assert_eq!(
            deliver(&mut swarm, bob_peer, bad).await,
            Delivery::Refused,
            "tampered at byte {i}"
        );
    }
    assert_eq!(
        deliver(&mut swarm, bob_peer, second).await,
        Delivery::Accepted
    );

    // Sealed by Carol to someone else: Bob cannot open it.
    let dave = Identity::generate(&mut OsRng);
    let misaddressed = seal(
        &carol,
        dave.public(),
        &InviteToken::default(),
        1000,
        &sos(3, "for dave"),
        &mut OsRng,
    )
    .expect("seal");
    assert_eq!(
        deliver(&mut swarm, bob_peer, misaddressed).await,
        Delivery::Refused
    );
    // A stranger's envelope (a valid seal to Bob from an identity Bob does
    // not know) is refused too.
    let stranger = Identity::generate(&mut OsRng);
    let unknown = seal(
        &stranger,
        &bob_public(&carol_circle, &bob_id),
        &InviteToken::default(),
        1,
        &sos(4, "hi"),
        &mut OsRng,
    )
    .expect("seal");
    assert_eq!(
        deliver(&mut swarm, bob_peer, unknown).await,
        Delivery::Refused
    );

    settle(300).await;
    assert_eq!(carols_sos_notes(&bob).await, vec!["legit", "second"]);

    // Control: while Carol is a contact, Bob's SOS reaches her.
    bob.sos("bob needs help").await.expect("sos");
    let (_, env, ch) = next_request(&mut swarm, DEADLINE)
        .await
        .expect("Bob's SOS reaches Carol");
    let opened = carol_circle.open(&carol, &env, T0).expect("opens");
    assert!(matches!(opened.message, Message::Sos { ref note, .. } if note == "bob needs help"));
    let _ = swarm.behaviour_mut().send_response(ch, Delivery::Accepted);
    bob.cancel_sos().await.expect("cancel");
    let (_, env, ch) = next_request(&mut swarm, DEADLINE)
        .await
        .expect("the cancel reaches Carol");
    assert!(matches!(
        carol_circle.open(&carol, &env, T0).expect("opens").message,
        Message::SosCancelled { .. }
    ));
    let _ = swarm.behaviour_mut().send_response(ch, Delivery::Accepted);

    // Bob removes Carol without telling her.
    bob.remove_contact("carol", false).await.expect("remove");
    assert!(contact_state(&bob, "Carol").await.is_none());
    // Whatever Carol sends now is refused...
    let after = carol_circle
        .seal(&carol, &bob_id, &sos(5, "after removal"), &mut OsRng)
        .expect("seal");
    assert_eq!(
        deliver(&mut swarm, bob_peer, after).await,
        Delivery::Refused
    );
    assert_eq!(carols_sos_notes(&bob).await, vec!["legit", "second"]);
    // ...and Bob's next SOS reaches Alice but nothing reaches Carol.
    let mut alice_events = alice.events();
    bob.sos("second emergency").await.expect("sos");
    next_alert(
        &mut alice_events,
        |i| matches!(&i.notice, InboxNotice::Sos { note, .. } if note == "second emergency"),
    )
    .await;
    assert!(
        next_request(&mut swarm, Duration::from_secs(2))
            .await
            .is_none(),
        "a removed contact receives nothing new"
    );
    let status = bob.sos_status().await.expect("status");
    assert_eq!(status.recipients.len(), 1);
    assert_eq!(status.recipients[0].name, "Alice");
}

fn bob_public(circle: &Circle, bob: &ContactId) -> ronde_protocol::circle::PublicIdentity {
    circle.contact(bob).expect("Bob").identity.clone()
}

/// Carol (a bare peer) invites Bob and confirms his accept; returns Bob's
/// peer and his id in Carol's circle once the relation is mutual at Bob.
async fn carol_befriends_bob(
    bob: &ronde_node::Node,
    swarm: &mut Rogue,
    carol: &Identity,
    carol_circle: &mut Circle,
    carol_addr: &Multiaddr,
) -> (PeerId, ContactId) {
    let invite = carol_circle
        .create_invite("Carol", vec![carol_addr.to_string()], T0, 3600, &mut OsRng)
        .expect("invite");
    bob.accept_invite(&invite.to_code(), None)
        .await
        .expect("accept");
    let (bob_peer, accept, channel) = next_request(swarm, DEADLINE)
        .await
        .expect("Bob's accept arrives directly");
    let got = carol_circle
        .open(carol, &accept, T0)
        .expect("the accept opens");
    let bob_id: ContactId = got.from;
    let _ = swarm
        .behaviour_mut()
        .send_response(channel, Delivery::Accepted);
    let confirm = carol_circle
        .approve(carol, &bob_id, &mut OsRng)
        .expect("approve");
    assert_eq!(deliver(swarm, bob_peer, confirm).await, Delivery::Accepted);
    eventually("Carol to be mutual at Bob", || async {
        contact_state(bob, "Carol")
            .await
            .filter(|(_, s)| *s == ContactState::Mutual)
    })
    .await;
    (bob_peer, bob_id)
}

/// Issue 12 §3: envelopes of an earlier relation (kept by a mailbox host, or
/// recorded on the way) must not replay into a later one. Counters restart
/// at 1 when a contact is removed and added again, so without a relation
/// binding an old SOS (a false alarm) or an old leave (silently removing the
/// contact again) would be accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_of_an_earlier_relation_do_not_replay_after_re_adding() {
    let clock = ManualClock::new(T0);
    let db = tempfile::tempdir().expect("dir");
    let bob = start(config(db.path(), &clock)).await;
    let (mut swarm, carol_addr) = rogue().await;
    let carol = Identity::generate(&mut OsRng);
    let mut carol_circle = Circle::new(carol.public().clone());

    // The first relation: an SOS Bob receives, and a leave recorded but
    // never sent (as a host that kept it would have it).
    let (bob_peer, bob_id) =
        carol_befriends_bob(&bob, &mut swarm, &carol, &mut carol_circle, &carol_addr).await;
    let old_sos = carol_circle
        .seal(&carol, &bob_id, &sos(1, "old alarm"), &mut OsRng)
        .expect("seal");
    let old_leave = carol_circle
        .seal(&carol, &bob_id, &Message::Leave, &mut OsRng)
        .expect("seal");
    assert_eq!(
        deliver(&mut swarm, bob_peer, old_sos.clone()).await,
        Delivery::Accepted
    );

    // Both forget each other, then make a new relation.
    bob.remove_contact("carol", false).await.expect("remove");
    assert!(carol_circle.remove(&bob_id).is_some());
    let (bob_peer, bob_id) =
        carol_befriends_bob(&bob, &mut swarm, &carol, &mut carol_circle, &carol_addr).await;

    // The earlier relation's envelopes are refused...
    assert_eq!(
        deliver(&mut swarm, bob_peer, old_sos).await,
        Delivery::Refused,
        "an SOS of the earlier relation is refused"
    );
    assert_eq!(
        deliver(&mut swarm, bob_peer, old_leave).await,
        Delivery::Refused,
        "a leave of the earlier relation is refused"
    );
    settle(300).await;
    assert_eq!(
        contact_state(&bob, "Carol").await.map(|(_, s)| s),
        Some(ContactState::Mutual),
        "Carol is still Bob's contact"
    );
    // ...and the new relation works.
    let fresh = carol_circle
        .seal(&carol, &bob_id, &sos(2, "new alarm"), &mut OsRng)
        .expect("seal");
    assert_eq!(
        deliver(&mut swarm, bob_peer, fresh).await,
        Delivery::Accepted
    );
    settle(300).await;
    let notes = carols_sos_notes(&bob).await;
    assert_eq!(
        notes.iter().filter(|n| *n == "old alarm").count(),
        1,
        "the old alarm was shown once, in the earlier relation: {notes:?}"
    );
    assert!(notes.iter().any(|n| n == "new alarm"), "{notes:?}");
}
