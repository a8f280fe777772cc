//! The trusted circle's formats: identities, safety numbers, invite codes,
//! envelopes, the contact handshake, mailboxes; and no decoder panics on any
//! input.

// Test helpers outside `#[test]` functions unwrap too (clippy.toml only
// covers the test functions themselves).
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ronde_protocol::circle::envelope::{self, LARGE_ENVELOPE_LEN, SMALL_ENVELOPE_LEN};
use ronde_protocol::circle::invite::{MAX_ADDRESSES, MAX_ADDRESS_LEN, MAX_NAME_LEN};
use ronde_protocol::circle::{
    epoch_of, mailbox_address, safety_number, Circle, CircleError, ContactEvent, ContactId,
    ContactState, DecodeError, Deviation, Fix, Identity, IdentityError, Invite, InviteError,
    Message, MessageId, OpenError, PairSecret, Place, PublicIdentity, ReplayError, StatesOnly,
    EPOCH_SECS, MAX_NOTE_LEN,
};
use ronde_protocol::Cell;
use sha2::{Digest, Sha256};

const NOW: u64 = 1_790_000_000;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Alice and Bob, mutual contacts.
struct Pair {
    alice: Identity,
    bob: Identity,
    ac: Circle,
    bc: Circle,
    /// Bob as Alice knows him.
    bob_id: ContactId,
    /// Alice as Bob knows her.
    alice_id: ContactId,
    rng: ChaCha20Rng,
}

fn mutual_pair(seed: u64) -> Pair {
    let mut rng = rng(seed);
    let alice = Identity::generate(&mut rng);
    let bob = Identity::generate(&mut rng);
    let mut ac = Circle::new(alice.public().clone());
    let mut bc = Circle::new(bob.public().clone());
    let invite = ac
        .create_invite(
            "Alice",
            vec!["/ip4/10.0.0.1/tcp/4001".into()],
            NOW,
            3600,
            &mut rng,
        )
        .unwrap();
    let invite = Invite::from_code(&invite.to_code()).unwrap();
    let (alice_id, accept) = bc
        .accept_invite(&bob, &invite, "Bob", vec![], NOW, &mut rng)
        .unwrap();
    let got = ac.open(&alice, &accept, NOW + 1).unwrap();
    assert_eq!(got.event, Some(ContactEvent::Requested));
    let bob_id = got.from;
    let confirm = ac.approve(&alice, &bob_id, &mut rng).unwrap();
    let got = bc.open(&bob, &confirm, NOW + 2).unwrap();
    assert_eq!(got.event, Some(ContactEvent::BecameMutual));
    Pair {
        alice,
        bob,
        ac,
        bc,
        bob_id,
        alice_id,
        rng,
    }
}

fn sos(note: &str) -> Message {
    Message::Sos {
        sos: MessageId([3; 16]),
        at: NOW,
        place: Some(Place::point(48.8566, 2.3522, 12).unwrap()),
        note: note.into(),
    }
}

fn ack() -> Message {
    Message::Ack {
        of: MessageId([3; 16]),
    }
}

// ---------------------------------------------------------------- identity

#[test]
fn identity_bytes_round_trip() {
    let id = Identity::generate(&mut rng(1));
    let bytes = id.to_bytes();
    assert_eq!(bytes.len(), 65);
    assert_eq!(bytes[0], 1);
    let back = Identity::from_bytes(&bytes).unwrap();
    assert_eq!(back.public(), id.public());
    assert_eq!(
        Identity::from_bytes(&bytes[..64]).unwrap_err(),
        IdentityError::BadLength(64)
    );
    let mut v2 = bytes.to_vec();
    v2[0] = 2;
    assert_eq!(
        Identity::from_bytes(&v2).unwrap_err(),
        IdentityError::UnsupportedVersion(2)
    );
    // Debug never shows secrets.
    let dbg = format!("{id:?}");
    assert!(!dbg.contains(&hex::encode(&bytes[1..33])));
}

#[test]
fn public_identity_refuses_bad_keys() {
    let good = Identity::generate(&mut rng(2)).public().clone();
    let s = *good.signing_key();
    let k = *good.encryption_key();
    assert_eq!(PublicIdentity::new(s, k).unwrap(), good);
    // Small-order X25519 points: 0 and 1.
    let mut one = [0u8; 32];
    one[0] = 1;
    assert_eq!(
        PublicIdentity::new(s, [0; 32]),
        Err(IdentityError::BadEncryptionKey)
    );
    assert_eq!(
        PublicIdentity::new(s, one),
        Err(IdentityError::BadEncryptionKey)
    );
    // The Ed25519 identity point is of small order.
    assert_eq!(
        PublicIdentity::new(one, k),
        Err(IdentityError::BadSigningKey)
    );
    // Hex round trip.
    assert_eq!(good.to_string().parse::<PublicIdentity>().unwrap(), good);
}

#[test]
fn safety_numbers_match_and_differ() {
    let mut r = rng(3);
    let a = Identity::generate(&mut r);
    let b = Identity::generate(&mut r);
    let c = Identity::generate(&mut r);
    let ab = safety_number(a.public(), b.public());
    let ba = safety_number(b.public(), a.public());
    assert_eq!(ab, ba);
    assert_eq!(ab.digits().len(), 60);
    assert!(ab.digits().bytes().all(|d| d.is_ascii_digit()));
    let shown = ab.to_string();
    assert_eq!(shown.split(' ').count(), 12);
    assert!(shown.split(' ').all(|g| g.len() == 5));
    // A different key on either side changes it.
    assert_ne!(ab, safety_number(a.public(), c.public()));
    assert_ne!(ab, safety_number(c.public(), b.public()));
    // Swapping only the encryption key changes it too.
    let mallory = Identity::generate(&mut r);
    let spliced = PublicIdentity::new(
        *b.public().signing_key(),
        *mallory.public().encryption_key(),
    )
    .unwrap();
    assert_ne!(ab, safety_number(a.public(), &spliced));
}

// ------------------------------------------------------------------ invites

fn sample_invite(r: &mut ChaCha20Rng) -> Invite {
    let mut c = Circle::new(Identity::generate(r).public().clone());
    c.create_invite(
        "Zoé 🌙",
        vec![
            "/ip4/192.0.2.7/udp/4001/quic-v1".into(),
            "/dns4/relay.example/tcp/443/wss/p2p/12D3KooWExample".into(),
        ],
        NOW,
        86_400,
        r,
    )
    .unwrap()
}

#[test]
fn invite_code_round_trips() {
    let invite = sample_invite(&mut rng(4));
    let code = invite.to_code();
    assert!(code.starts_with("ronde1:"));
    assert_eq!(Invite::from_code(&code).unwrap(), invite);
    // Upper case (QR alphanumeric), grouping dashes, spaces, look-alikes.
    let qr = invite.to_qr_string();
    assert!(qr.starts_with("RONDE1:"));
    assert_eq!(Invite::from_code(&qr).unwrap(), invite);
    let body = &code["ronde1:".len()..];
    let grouped: Vec<String> = body
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let typed = format!(" ronde1:{} \n", grouped.join("-"));
    assert_eq!(Invite::from_code(&typed).unwrap(), invite);
    let lookalike = code.replace('0', "o").replace('1', "l");
    let lookalike = format!("ronde1:{}", &lookalike["ronde1:".len()..]);
    assert_eq!(Invite::from_code(&lookalike).unwrap(), invite);
    // An invite with no name and no address is short enough to type.
    let mut r = rng(5);
    let mut c = Circle::new(Identity::generate(&mut r).public().clone());
    let short = c
        .create_invite("", vec![], NOW, 600, &mut r)
        .unwrap()
        .to_code();
    assert!(short.len() < 170, "{} chars", short.len());
}

#[test]
fn invite_errors_are_specific() {
    let invite = sample_invite(&mut rng(6));
    let code = invite.to_code();
    assert_eq!(Invite::from_code("hello"), Err(InviteError::BadPrefix));
    assert_eq!(
        Invite::from_code(&code.replace("ronde1:", "ronde2:")),
        Err(InviteError::BadPrefix)
    );
    let mut with_u = code.clone();
    with_u.insert(12, 'u');
    assert!(matches!(
        Invite::from_code(&with_u),
        Err(InviteError::BadCharacter { ch: 'u', .. })
    ));
    let mut missing = code.clone();
    missing.remove(20);
    assert!(matches!(
        Invite::from_code(&missing),
        Err(InviteError::Checksum | InviteError::BadLength)
    ));
    assert_eq!(
        Invite::from_code(&"x".repeat(5000)),
        Err(InviteError::TooLong)
    );

    // A payload with a valid checksum but an unknown version.
    let mut payload = invite.payload().unwrap();
    payload[0] = 2;
    assert_eq!(
        Invite::from_code(&encode_code(&payload)),
        Err(InviteError::UnsupportedVersion(2))
    );
    // Trailing bytes after the last address.
    let mut payload = invite.payload().unwrap();
    payload.push(0);
    assert_eq!(
        Invite::from_code(&encode_code(&payload)),
        Err(InviteError::Malformed(DecodeError::TrailingBytes(1)))
    );
    // A small-order encryption key.
    let mut payload = invite.payload().unwrap();
    payload[33..65].fill(0);
    assert_eq!(
        Invite::from_code(&encode_code(&payload)),
        Err(InviteError::BadKey(IdentityError::BadEncryptionKey))
    );
}

/// Build a code around any payload (test-side reimplementation of the
/// checksum and base32, which also checks the spec).
fn encode_code(payload: &[u8]) -> String {
    let mut b = payload.to_vec();
    let h = Sha256::new_with_prefix(b"ronde/circle/v1/invite-checksum")
        .chain_update(payload)
        .finalize();
    b.extend_from_slice(&h[..4]);
    const A: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut bits = String::new();
    for byte in &b {
        bits.push_str(&format!("{byte:08b}"));
    }
    while !bits.len().is_multiple_of(5) {
        bits.push('0');
    }
    let body: String = bits
        .as_bytes()
        .chunks(5)
        .map(|c| A[usize::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap()] as char)
        .collect();
    format!("ronde1:{body}")
}

#[test]
fn test_encoder_agrees_with_crate() {
    let invite = sample_invite(&mut rng(7));
    assert_eq!(encode_code(&invite.payload().unwrap()), invite.to_code());
}

#[test]
fn invite_limits() {
    let mut r = rng(8);
    let mut c = Circle::new(Identity::generate(&mut r).public().clone());
    let long_name = "x".repeat(MAX_NAME_LEN + 1);
    assert!(matches!(
        c.create_invite(&long_name, vec![], NOW, 60, &mut r),
        Err(CircleError::Invalid(DecodeError::FieldTooLong { .. }))
    ));
    let addrs = vec!["/a".to_string(); MAX_ADDRESSES + 1];
    assert!(c.create_invite("a", addrs, NOW, 60, &mut r).is_err());
    assert!(c
        .create_invite("a", vec!["has space".into()], NOW, 60, &mut r)
        .is_err());
    assert!(c.create_invite("a\u{7}", vec![], NOW, 60, &mut r).is_err());
    // A right-to-left override could make a name display as another.
    assert!(c
        .create_invite("Ma\u{202e}ma", vec![], NOW, 60, &mut r)
        .is_err());
    assert_eq!(
        c.create_invite("a", vec![], NOW, 0, &mut r),
        Err(CircleError::BadTtl)
    );
    // The longest invite still decodes.
    let addrs = vec!["/".repeat(MAX_ADDRESS_LEN); MAX_ADDRESSES];
    let name = "é".repeat(MAX_NAME_LEN / 2);
    let big = c.create_invite(&name, addrs, NOW, 60, &mut r).unwrap();
    assert_eq!(Invite::from_code(&big.to_code()).unwrap(), big);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any single-character substitution is detected.
    #[test]
    fn invite_typo_detected(pos in any::<prop::sample::Index>(), with in 0usize..32) {
        let invite = sample_invite(&mut rng(9));
        let code = invite.to_code();
        let body: Vec<char> = code["ronde1:".len()..].chars().collect();
        let i = pos.index(body.len());
        let c = char::from(b"0123456789abcdefghjkmnpqrstvwxyz"[with]);
        prop_assume!(c != body[i]);
        let mut typo = body.clone();
        typo[i] = c;
        let typo = format!("ronde1:{}", typo.into_iter().collect::<String>());
        let err = Invite::from_code(&typo).unwrap_err();
        prop_assert!(matches!(err, InviteError::Checksum | InviteError::BadLength), "{err:?}");
    }

    /// Swapping two adjacent different characters is detected.
    #[test]
    fn invite_transposition_detected(pos in any::<prop::sample::Index>()) {
        let invite = sample_invite(&mut rng(10));
        let code = invite.to_code();
        let mut body: Vec<char> = code["ronde1:".len()..].chars().collect();
        let i = pos.index(body.len() - 1);
        prop_assume!(body[i] != body[i + 1]);
        body.swap(i, i + 1);
        let typo = format!("ronde1:{}", body.into_iter().collect::<String>());
        prop_assert!(Invite::from_code(&typo).is_err());
    }
}

// ---------------------------------------------------------------- envelopes

#[test]
fn seal_open_round_trip_and_padding() {
    let mut p = mutual_pair(20);
    let messages = vec![
        sos(&"é".repeat(MAX_NOTE_LEN / 2)),
        sos(""),
        ack(),
        Message::Position {
            journey: MessageId([1; 16]),
            fix: Fix {
                at: NOW,
                place: Place::Cell("u09tunq".parse::<Cell>().unwrap()),
            },
        },
        Message::Overdue {
            journey: MessageId([1; 16]),
            expected_arrival: NOW,
            last_seen: Some(Fix {
                at: NOW,
                place: Place::point(-33.9, 151.2, 5).unwrap(),
            }),
        },
        Message::JourneyStarted {
            journey: MessageId([1; 16]),
            started_at: NOW,
            destination: Place::point(0.0, 0.0, 0).unwrap(),
            expected_arrival: NOW + 600,
            grace_secs: 900,
            states_only: None,
        },
        Message::Arrived {
            journey: MessageId([1; 16]),
            at: NOW,
        },
        Message::JourneyCancelled {
            journey: MessageId([1; 16]),
            at: NOW,
        },
        Message::SosCancelled {
            sos: MessageId([3; 16]),
            at: NOW,
        },
    ];
    for m in messages {
        let env = p.ac.seal(&p.alice, &p.bob_id, &m, &mut p.rng).unwrap();
        // Every sharing message is the same size on the wire.
        assert_eq!(env.len(), SMALL_ENVELOPE_LEN, "{m:?}");
        let got = p.bc.open(&p.bob, &env, NOW).unwrap();
        assert_eq!(got.from, p.alice_id);
        assert_eq!(got.message, m);
        assert_eq!(got.event, None);
    }
    // The largest accept takes the large bucket.
    let big = Message::Accept {
        token: ronde_protocol::circle::InviteToken([0; 16]),
        name: "n".repeat(MAX_NAME_LEN),
        addresses: vec!["/".repeat(MAX_ADDRESS_LEN); MAX_ADDRESSES],
    };
    let env = envelope::seal(
        &p.alice,
        p.bob.public(),
        &ronde_protocol::circle::InviteToken::default(),
        99,
        &big,
        &mut p.rng,
    )
    .unwrap();
    assert_eq!(env.len(), LARGE_ENVELOPE_LEN);
    assert_eq!(envelope::open(&p.bob, &env).unwrap().message, big);
}

#[test]
fn sos_and_ack_envelopes_have_the_same_length() {
    let mut p = mutual_pair(21);
    let s =
        p.ac.seal(
            &p.alice,
            &p.bob_id,
            &sos(&"!".repeat(MAX_NOTE_LEN)),
            &mut p.rng,
        )
        .unwrap();
    let a = p.bc.seal(&p.bob, &p.alice_id, &ack(), &mut p.rng).unwrap();
    assert_eq!(s.len(), a.len());
    // A note over the limit is refused, not truncated.
    assert!(matches!(
        p.ac.seal(
            &p.alice,
            &p.bob_id,
            &sos(&"!".repeat(MAX_NOTE_LEN + 1)),
            &mut p.rng
        ),
        Err(CircleError::Seal(_))
    ));
}

#[test]
fn misaddressed_envelope_fails_cleanly() {
    let mut p = mutual_pair(22);
    let carol = Identity::generate(&mut p.rng);
    let env = envelope::seal(
        &p.alice,
        carol.public(),
        &ronde_protocol::circle::InviteToken::default(),
        1,
        &ack(),
        &mut p.rng,
    )
    .unwrap();
    assert_eq!(p.bc.open(&p.bob, &env, NOW), Err(OpenError::Decrypt));
    assert_eq!(envelope::open(&p.bob, &env), Err(OpenError::Decrypt));
    // Carol opens it, but Alice is not her contact.
    let mut cc = Circle::new(carol.public().clone());
    assert_eq!(cc.open(&carol, &env, NOW), Err(OpenError::UnknownSender));
}

#[test]
fn replayed_and_old_envelopes_rejected() {
    let mut p = mutual_pair(23);
    let e1 = p.ac.seal(&p.alice, &p.bob_id, &ack(), &mut p.rng).unwrap();
    let e2 = p.ac.seal(&p.alice, &p.bob_id, &ack(), &mut p.rng).unwrap();
    // Out of order is fine…
    p.bc.open(&p.bob, &e2, NOW).unwrap();
    let r1 = p.bc.open(&p.bob, &e1, NOW).unwrap();
    // …a replay is not.
    assert_eq!(
        p.bc.open(&p.bob, &e1, NOW),
        Err(OpenError::Replay(ReplayError::Duplicate(r1.counter)))
    );
    assert!(matches!(
        p.bc.open(&p.bob, &e2, NOW),
        Err(OpenError::Replay(ReplayError::Duplicate(_)))
    ));
    // A counter far below the latest is too old.
    let rel = p.bc.contact(&p.alice_id).unwrap().relation();
    let old = envelope::seal(&p.alice, p.bob.public(), &rel, 3, &ack(), &mut p.rng).unwrap();
    let far = envelope::seal(&p.alice, p.bob.public(), &rel, 5000, &ack(), &mut p.rng).unwrap();
    p.bc.open(&p.bob, &far, NOW).unwrap();
    assert_eq!(
        p.bc.open(&p.bob, &old, NOW),
        Err(OpenError::Replay(ReplayError::TooOld {
            counter: 3,
            highest: 5000
        }))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Flipping any bit of an envelope makes it fail, without panicking.
    #[test]
    fn tampered_envelope_rejected(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut p = mutual_pair(24);
        let env = p.ac.seal(&p.alice, &p.bob_id, &sos("help"), &mut p.rng).unwrap();
        let mut bad = env.clone();
        let i = pos.index(bad.len());
        bad[i] ^= 1 << bit;
        let before = p.bc.clone();
        let err = p.bc.open(&p.bob, &bad, NOW).unwrap_err();
        prop_assert!(matches!(err, OpenError::Decrypt | OpenError::UnsupportedVersion(_)), "{err:?}");
        // A refused envelope changes nothing; the genuine one still opens.
        prop_assert_eq!(&p.bc, &before);
        prop_assert!(p.bc.open(&p.bob, &env, NOW).is_ok());
    }
}

// ---------------------------------------------------------------- handshake

#[test]
fn sharing_needs_mutual_acceptance() {
    let mut r = rng(30);
    let alice = Identity::generate(&mut r);
    let bob = Identity::generate(&mut r);
    let mut ac = Circle::new(alice.public().clone());
    let mut bc = Circle::new(bob.public().clone());
    let invite = ac
        .create_invite("Alice", vec![], NOW, 3600, &mut r)
        .unwrap();
    let (alice_id, accept) = bc
        .accept_invite(
            &bob,
            &invite,
            "Bob",
            vec!["/ip4/1.2.3.4/tcp/1".into()],
            NOW,
            &mut r,
        )
        .unwrap();
    assert_eq!(
        bc.contact(&alice_id).unwrap().state,
        ContactState::AwaitingTheirApproval
    );
    assert_eq!(bc.contact(&alice_id).unwrap().name, "Alice");
    // Bob cannot share yet.
    assert_eq!(
        bc.seal(&bob, &alice_id, &sos("x"), &mut r),
        Err(CircleError::NotMutual)
    );
    let got = ac.open(&alice, &accept, NOW).unwrap();
    let bob_id = got.from;
    assert_eq!(got.event, Some(ContactEvent::Requested));
    let c = ac.contact(&bob_id).unwrap();
    assert_eq!(c.state, ContactState::AwaitingMyApproval);
    assert_eq!(c.name, "Bob");
    assert_eq!(c.addresses, vec!["/ip4/1.2.3.4/tcp/1".to_string()]);
    // Both sides see the same safety number before approving.
    assert_eq!(
        safety_number(alice.public(), &c.identity),
        safety_number(bob.public(), &bc.contact(&alice_id).unwrap().identity)
    );
    // Alice cannot share before approving either.
    assert_eq!(
        ac.seal(&alice, &bob_id, &ack(), &mut r),
        Err(CircleError::NotMutual)
    );
    // And a sharing message Bob forces through is refused by Alice.
    let rel = ac.contact(&bob_id).unwrap().relation();
    let forced = envelope::seal(&bob, alice.public(), &rel, 2, &ack(), &mut r).unwrap();
    assert_eq!(
        ac.open(&alice, &forced, NOW),
        Err(OpenError::NotAllowed { kind: 0x30 })
    );
    // The accept replayed is refused.
    assert!(matches!(
        ac.open(&alice, &accept, NOW),
        Err(OpenError::Replay(ReplayError::Duplicate(1)))
    ));
    let confirm = ac.approve(&alice, &bob_id, &mut r).unwrap();
    assert_eq!(ac.contact(&bob_id).unwrap().state, ContactState::Mutual);
    let got = bc.open(&bob, &confirm, NOW).unwrap();
    assert_eq!(got.event, Some(ContactEvent::BecameMutual));
    assert_eq!(bc.contact(&alice_id).unwrap().state, ContactState::Mutual);
    // Now both ways work.
    let e = bc.seal(&bob, &alice_id, &sos("x"), &mut r).unwrap();
    assert_eq!(ac.open(&alice, &e, NOW).unwrap().message, sos("x"));
    let e = ac.seal(&alice, &bob_id, &ack(), &mut r).unwrap();
    assert_eq!(bc.open(&bob, &e, NOW).unwrap().message, ack());
    // Handshake messages cannot be pushed through `seal`.
    assert_eq!(
        ac.seal(&alice, &bob_id, &Message::Confirm, &mut r),
        Err(CircleError::NotAllowed(0x02))
    );
}

#[test]
fn invites_are_single_use_and_expire() {
    let mut r = rng(31);
    let alice = Identity::generate(&mut r);
    let bob = Identity::generate(&mut r);
    let carol = Identity::generate(&mut r);
    let mut ac = Circle::new(alice.public().clone());
    let mut bc = Circle::new(bob.public().clone());
    let mut cc = Circle::new(carol.public().clone());
    let invite = ac.create_invite("Alice", vec![], NOW, 600, &mut r).unwrap();
    assert_eq!(invite.expires_at % 60, 0);
    assert!(invite.expires_at >= NOW + 600);
    let (_, from_bob) = bc
        .accept_invite(&bob, &invite, "Bob", vec![], NOW, &mut r)
        .unwrap();
    let (_, from_carol) = cc
        .accept_invite(&carol, &invite, "Carol", vec![], NOW, &mut r)
        .unwrap();
    ac.open(&alice, &from_bob, NOW).unwrap();
    assert_eq!(
        ac.open(&alice, &from_carol, NOW),
        Err(OpenError::UnknownInvite)
    );
    // Expired: refused on both sides.
    let late = ac.create_invite("Alice", vec![], NOW, 60, &mut r).unwrap();
    let erin = Identity::generate(&mut r);
    let mut ec = Circle::new(erin.public().clone());
    assert_eq!(
        ec.accept_invite(&erin, &late, "Erin", vec![], late.expires_at, &mut r),
        Err(CircleError::InviteExpired)
    );
    let (_, env) = ec
        .accept_invite(&erin, &late, "Erin", vec![], NOW, &mut r)
        .unwrap();
    assert!(matches!(
        ac.open(&alice, &env, late.expires_at),
        Err(OpenError::UnknownInvite | OpenError::InviteExpired)
    ));
    // Revoked.
    let revoked = ac.create_invite("Alice", vec![], NOW, 600, &mut r).unwrap();
    assert!(ac.revoke_invite(&revoked.token));
    let dave = Identity::generate(&mut r);
    let mut dc = Circle::new(dave.public().clone());
    let (_, env) = dc
        .accept_invite(&dave, &revoked, "Dave", vec![], NOW, &mut r)
        .unwrap();
    assert_eq!(ac.open(&alice, &env, NOW), Err(OpenError::UnknownInvite));
    // Own invite.
    assert_eq!(
        ac.accept_invite(&alice, &invite, "me", vec![], NOW, &mut r),
        Err(CircleError::OwnInvite)
    );
}

#[test]
fn crossed_invites_become_mutual() {
    let mut r = rng(32);
    let alice = Identity::generate(&mut r);
    let bob = Identity::generate(&mut r);
    let mut ac = Circle::new(alice.public().clone());
    let mut bc = Circle::new(bob.public().clone());
    let ia = ac.create_invite("Alice", vec![], NOW, 600, &mut r).unwrap();
    let ib = bc.create_invite("Bob", vec![], NOW, 600, &mut r).unwrap();
    let (bob_id, to_bob) = ac
        .accept_invite(&alice, &ib, "Alice", vec![], NOW, &mut r)
        .unwrap();
    let (alice_id, to_alice) = bc
        .accept_invite(&bob, &ia, "Bob", vec![], NOW, &mut r)
        .unwrap();
    assert_eq!(
        ac.open(&alice, &to_alice, NOW).unwrap().event,
        Some(ContactEvent::BecameMutual)
    );
    assert_eq!(
        bc.open(&bob, &to_bob, NOW).unwrap().event,
        Some(ContactEvent::BecameMutual)
    );
    assert_eq!(ac.contact(&bob_id).unwrap().state, ContactState::Mutual);
    assert_eq!(bc.contact(&alice_id).unwrap().state, ContactState::Mutual);
    // Each record was made by a different accept; sharing flows both ways.
    let e = ac.seal(&alice, &bob_id, &ack(), &mut r).unwrap();
    bc.open(&bob, &e, NOW).unwrap();
    let e = bc.seal(&bob, &alice_id, &ack(), &mut r).unwrap();
    ac.open(&alice, &e, NOW).unwrap();
}

#[test]
fn crossed_invites_with_one_accept_lost_recover() {
    let mut r = rng(38);
    let alice = Identity::generate(&mut r);
    let bob = Identity::generate(&mut r);
    let mut ac = Circle::new(alice.public().clone());
    let mut bc = Circle::new(bob.public().clone());
    let ia = ac.create_invite("Alice", vec![], NOW, 600, &mut r).unwrap();
    let ib = bc.create_invite("Bob", vec![], NOW, 600, &mut r).unwrap();
    let (bob_id, _lost) = ac
        .accept_invite(&alice, &ib, "Alice", vec![], NOW, &mut r)
        .unwrap();
    let (alice_id, to_alice) = bc
        .accept_invite(&bob, &ia, "Bob", vec![], NOW, &mut r)
        .unwrap();
    // Alice's accept to Bob is lost: she is mutual, he still waits.
    assert_eq!(
        ac.open(&alice, &to_alice, NOW).unwrap().event,
        Some(ContactEvent::BecameMutual)
    );
    // Bob resends his accept; Alice answers with a confirm he can open.
    let again = bc
        .resend_accept(&bob, &alice_id, "Bob", vec![], &mut r)
        .unwrap();
    assert_eq!(
        ac.open(&alice, &again, NOW).unwrap().event,
        Some(ContactEvent::AcceptRepeated)
    );
    let confirm = ac.approve(&alice, &bob_id, &mut r).unwrap();
    assert_eq!(
        bc.open(&bob, &confirm, NOW).unwrap().event,
        Some(ContactEvent::BecameMutual)
    );
    let e = bc.seal(&bob, &alice_id, &ack(), &mut r).unwrap();
    ac.open(&alice, &e, NOW).unwrap();
    let e = ac.seal(&alice, &bob_id, &ack(), &mut r).unwrap();
    bc.open(&bob, &e, NOW).unwrap();
}

#[test]
fn envelopes_of_an_earlier_relation_are_refused_after_re_adding() {
    let mut p = mutual_pair(39);
    let old_sos =
        p.ac.seal(&p.alice, &p.bob_id, &sos("old"), &mut p.rng)
            .unwrap();
    let old_leave =
        p.ac.seal(&p.alice, &p.bob_id, &Message::Leave, &mut p.rng)
            .unwrap();
    let old_confirm = p.ac.approve(&p.alice, &p.bob_id, &mut p.rng).unwrap();
    p.bc.open(&p.bob, &old_sos, NOW).unwrap();
    // Both forget each other, then Alice invites Bob again.
    p.ac.remove(&p.bob_id).unwrap();
    p.bc.remove(&p.alice_id).unwrap();
    let invite =
        p.ac.create_invite("Alice", vec![], NOW, 600, &mut p.rng)
            .unwrap();
    let (_, accept) =
        p.bc.accept_invite(&p.bob, &invite, "Bob", vec![], NOW, &mut p.rng)
            .unwrap();
    p.ac.open(&p.alice, &accept, NOW).unwrap();
    let confirm = p.ac.approve(&p.alice, &p.bob_id, &mut p.rng).unwrap();
    p.bc.open(&p.bob, &confirm, NOW).unwrap();
    // Counters restarted at 1, yet nothing of the earlier relation opens.
    for old in [&old_sos, &old_leave, &old_confirm] {
        assert_eq!(p.bc.open(&p.bob, old, NOW), Err(OpenError::StaleRelation));
    }
    assert_eq!(
        p.bc.contact(&p.alice_id).unwrap().state,
        ContactState::Mutual
    );
    // An accept of the earlier relation replayed to Alice is refused too.
    assert!(p.ac.open(&p.alice, &accept, NOW).is_err());
    let fresh =
        p.ac.seal(&p.alice, &p.bob_id, &sos("new"), &mut p.rng)
            .unwrap();
    assert_eq!(p.bc.open(&p.bob, &fresh, NOW).unwrap().message, sos("new"));
}

#[test]
fn lost_confirm_recovers() {
    let mut r = rng(33);
    let alice = Identity::generate(&mut r);
    let bob = Identity::generate(&mut r);
    let mut ac = Circle::new(alice.public().clone());
    let mut bc = Circle::new(bob.public().clone());
    let invite = ac.create_invite("Alice", vec![], NOW, 600, &mut r).unwrap();
    let (alice_id, accept) = bc
        .accept_invite(&bob, &invite, "Bob", vec![], NOW, &mut r)
        .unwrap();
    let bob_id = ac.open(&alice, &accept, NOW).unwrap().from;
    let _lost = ac.approve(&alice, &bob_id, &mut r).unwrap();
    let again = bc
        .resend_accept(&bob, &alice_id, "Bob", vec![], &mut r)
        .unwrap();
    let got = ac.open(&alice, &again, NOW).unwrap();
    assert_eq!(got.event, Some(ContactEvent::AcceptRepeated));
    let confirm = ac.approve(&alice, &bob_id, &mut r).unwrap();
    assert_eq!(
        bc.open(&bob, &confirm, NOW).unwrap().event,
        Some(ContactEvent::BecameMutual)
    );
    assert_eq!(
        bc.resend_accept(&bob, &alice_id, "Bob", vec![], &mut r),
        Err(CircleError::NotAllowed(0x01))
    );
}

#[test]
fn removal_and_leave() {
    let mut p = mutual_pair(34);
    // Bob leaves, telling Alice.
    let bye = p.bc.leave(&p.bob, &p.alice_id, &mut p.rng).unwrap();
    assert!(p.bc.contact(&p.alice_id).is_none());
    let got = p.ac.open(&p.alice, &bye, NOW).unwrap();
    assert_eq!(got.event, Some(ContactEvent::Left));
    assert!(p.ac.contact(&p.bob_id).is_none());
    // Nothing more from Bob is accepted.
    let e = envelope::seal(
        &p.bob,
        p.alice.public(),
        &ronde_protocol::circle::InviteToken::default(),
        1000,
        &ack(),
        &mut p.rng,
    )
    .unwrap();
    assert_eq!(p.ac.open(&p.alice, &e, NOW), Err(OpenError::UnknownSender));

    // Silent removal.
    let mut p = mutual_pair(35);
    let e = p.bc.seal(&p.bob, &p.alice_id, &ack(), &mut p.rng).unwrap();
    assert!(p.ac.remove(&p.bob_id).is_some());
    assert_eq!(p.ac.open(&p.alice, &e, NOW), Err(OpenError::UnknownSender));
    assert_eq!(
        p.ac.seal(&p.alice, &p.bob_id, &ack(), &mut p.rng),
        Err(CircleError::UnknownContact)
    );
}

#[test]
fn wrong_identity_is_refused() {
    let mut p = mutual_pair(36);
    assert_eq!(
        p.ac.seal(&p.bob, &p.bob_id, &ack(), &mut p.rng),
        Err(CircleError::WrongIdentity)
    );
    let e = p.ac.seal(&p.alice, &p.bob_id, &ack(), &mut p.rng).unwrap();
    // Alice opening with her own circle an envelope meant for Bob.
    assert_eq!(p.ac.open(&p.alice, &e, NOW), Err(OpenError::Decrypt));
    // An envelope from oneself.
    let own = envelope::seal(
        &p.alice,
        p.alice.public(),
        &ronde_protocol::circle::InviteToken::default(),
        1,
        &ack(),
        &mut p.rng,
    )
    .unwrap();
    assert_eq!(p.ac.open(&p.alice, &own, NOW), Err(OpenError::FromSelf));
}

#[test]
fn circle_persists_as_json() {
    let mut p = mutual_pair(37);
    let e = p.ac.seal(&p.alice, &p.bob_id, &ack(), &mut p.rng).unwrap();
    p.bc.open(&p.bob, &e, NOW).unwrap();
    let json = serde_json::to_string(&p.bc).unwrap();
    let back: Circle = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p.bc);
    // The replay window survived.
    let mut back = back;
    assert!(matches!(
        back.open(&p.bob, &e, NOW),
        Err(OpenError::Replay(_))
    ));
}

// ---------------------------------------------------------------- mailboxes

#[test]
fn mailboxes_agree_rotate_and_differ_by_direction() {
    let p = mutual_pair(40);
    let epoch = epoch_of(NOW);
    let a_out = p.ac.outbound_mailbox(&p.alice, &p.bob_id, epoch).unwrap();
    let b_in = p.bc.inbound_mailbox(&p.bob, &p.alice_id, epoch).unwrap();
    assert_eq!(a_out, b_in);
    let b_out = p.bc.outbound_mailbox(&p.bob, &p.alice_id, epoch).unwrap();
    assert_eq!(
        b_out,
        p.ac.inbound_mailbox(&p.alice, &p.bob_id, epoch).unwrap()
    );
    assert_ne!(a_out, b_out);
    let tomorrow =
        p.ac.outbound_mailbox(&p.alice, &p.bob_id, epoch + 1)
            .unwrap();
    assert_ne!(a_out, tomorrow);
    // The pair secret is symmetric.
    let s1 = PairSecret::derive(&p.alice, p.bob.public()).unwrap();
    let s2 = PairSecret::derive(&p.bob, p.alice.public()).unwrap();
    assert_eq!(s1.as_bytes(), s2.as_bytes());
    assert_eq!(mailbox_address(&s1, epoch, p.bob.public()), a_out);
    // Bob polls today's and yesterday's.
    let poll = p.bc.mailboxes_to_poll(&p.bob, NOW);
    assert!(poll.contains(&a_out));
    let yesterday =
        p.ac.outbound_mailbox(&p.alice, &p.bob_id, epoch - 1)
            .unwrap();
    assert!(poll.contains(&yesterday));
    assert_eq!(epoch_of(EPOCH_SECS * 3 + 5), 3);
    // A third person gets other mailboxes.
    let mut r = rng(41);
    let carol = Identity::generate(&mut r);
    let s3 = PairSecret::derive(&p.alice, carol.public()).unwrap();
    assert_ne!(mailbox_address(&s3, epoch, carol.public()), a_out);
}

#[test]
fn pending_invite_mailbox_is_polled() {
    let mut r = rng(42);
    let alice = Identity::generate(&mut r);
    let mut ac = Circle::new(alice.public().clone());
    let invite = ac.create_invite("A", vec![], NOW, 600, &mut r).unwrap();
    assert!(ac
        .mailboxes_to_poll(&alice, NOW)
        .contains(&invite.mailbox_address()));
    assert!(!ac
        .mailboxes_to_poll(&alice, invite.expires_at)
        .contains(&invite.mailbox_address()));
}

#[test]
fn every_mailbox_to_poll_belongs_to_one_day() {
    let p = mutual_pair(43);
    let epoch = epoch_of(NOW);
    let mut r = rng(43);
    let mut bc = p.bc.clone();
    // An invite made just before midnight stays with its day after it.
    let midnight = (epoch + 1) * EPOCH_SECS;
    let invite = bc
        .create_invite("B", vec![], midnight - 60, 600, &mut r)
        .unwrap();
    let keys = bc.mailbox_keys_to_poll(&p.bob, midnight + 60);
    let day_of = |address: [u8; 32]| {
        keys.iter()
            .find(|(_, k)| k.address() == address)
            .map(|(d, _)| *d)
    };
    let to_bob = |e| p.ac.outbound_mailbox(&p.alice, &p.bob_id, e).unwrap();
    assert_eq!(day_of(to_bob(epoch + 1)), Some(epoch + 1));
    assert_eq!(day_of(to_bob(epoch)), Some(epoch));
    assert_eq!(day_of(invite.mailbox_address()), Some(epoch));
    assert_eq!(keys.len(), 3);
}

// ----------------------------------------------------------------- messages

fn arb_place() -> impl Strategy<Value = Place> {
    prop_oneof![
        (
            -900_000_000i32..=900_000_000,
            -1_800_000_000i32..=1_800_000_000,
            any::<u16>()
        )
            .prop_map(|(lat_e7, lon_e7, accuracy_m)| Place::Point {
                lat_e7,
                lon_e7,
                accuracy_m
            }),
        "[0-9b-hjkmnp-z]{6,7}".prop_map(|s| Place::Cell(s.parse().unwrap())),
    ]
}

fn arb_id() -> impl Strategy<Value = MessageId> {
    any::<[u8; 16]>().prop_map(MessageId)
}

fn arb_fix() -> impl Strategy<Value = Fix> {
    (any::<u64>(), arb_place()).prop_map(|(at, place)| Fix { at, place })
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<[u8; 16]>(),
            "[a-zA-Zé ]{0,20}",
            prop::collection::vec("[!-~]{1,40}", 0..=4)
        )
            .prop_map(|(t, name, addresses)| Message::Accept {
                token: ronde_protocol::circle::InviteToken(t),
                name,
                addresses
            }),
        Just(Message::Confirm),
        Just(Message::Leave),
        (
            arb_id(),
            any::<u64>(),
            arb_place(),
            any::<u64>(),
            any::<u32>(),
            prop::option::of((1u16.., 1u32..))
        )
            .prop_map(
                |(journey, started_at, destination, expected_arrival, grace_secs, so)| {
                    Message::JourneyStarted {
                        journey,
                        started_at,
                        destination,
                        expected_arrival,
                        grace_secs,
                        states_only: so.map(|(corridor_m, stop_secs)| StatesOnly {
                            corridor_m,
                            stop_secs,
                        }),
                    }
                }
            ),
        (arb_id(), any::<bool>(), arb_fix()).prop_map(|(journey, off, fix)| {
            Message::Deviated {
                journey,
                reason: if off {
                    Deviation::OffRoute
                } else {
                    Deviation::Stopped
                },
                fix,
            }
        }),
        (arb_id(), any::<u64>()).prop_map(|(of, at)| Message::Duress { of, at }),
        (arb_id(), arb_fix()).prop_map(|(journey, fix)| Message::Position { journey, fix }),
        (arb_id(), any::<u64>()).prop_map(|(journey, at)| Message::Arrived { journey, at }),
        (arb_id(), any::<u64>())
            .prop_map(|(journey, at)| Message::JourneyCancelled { journey, at }),
        (arb_id(), any::<u64>(), prop::option::of(arb_fix())).prop_map(
            |(journey, expected_arrival, last_seen)| Message::Overdue {
                journey,
                expected_arrival,
                last_seen
            }
        ),
        (
            arb_id(),
            any::<u64>(),
            prop::option::of(arb_place()),
            "[^\\p{Cc}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}]{0,70}"
        )
            .prop_filter("note fits", |(_, _, _, n)| n.len() <= MAX_NOTE_LEN)
            .prop_map(|(sos, at, place, note)| Message::Sos {
                sos,
                at,
                place,
                note
            }),
        (arb_id(), any::<u64>()).prop_map(|(sos, at)| Message::SosCancelled { sos, at }),
        arb_id().prop_map(|of| Message::Ack { of }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn message_encoding_round_trips(m in arb_message()) {
        let bytes = m.to_bytes().unwrap();
        prop_assert_eq!(Message::from_bytes(&bytes).unwrap(), m.clone());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert_eq!(Message::from_bytes(&longer), Err(DecodeError::TrailingBytes(1)));
        // Every truncation is refused.
        for n in 0..bytes.len() {
            prop_assert!(Message::from_bytes(&bytes[..n]).is_err());
        }
        // JSON (for the node's API) round-trips too.
        let json = serde_json::to_string(&m).unwrap();
        prop_assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), m);
    }
}

// ------------------------------------------------------------ no-panic fuzz

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2200)) {
        let _ = Message::from_bytes(&bytes);
        let _ = Invite::from_payload(&bytes);
        let _ = Identity::from_bytes(&bytes);
        let _ = PublicIdentity::from_bytes(&bytes);
        let _ = ronde_protocol::circle::SwitchRequest::from_bytes(&bytes);
        let _ = ronde_protocol::circle::Deposit::from_bytes(&bytes);
        let _ = ronde_protocol::circle::Heartbeat::from_bytes(&bytes);
        let _ = ronde_protocol::circle::Withdraw::from_bytes(&bytes);
        let _ = ronde_protocol::circle::SwitchOwner::from_bytes(&bytes);
        let _ = String::from_utf8(bytes.clone()).map(|s| Invite::from_code(&s));
    }

    #[test]
    fn message_decoder_never_panics_on_plausible_input(
        kind in prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x10, 0x11, 0x12, 0x13, 0x14, 0x20, 0x21, 0x30, 0x31]),
        rest in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut b = vec![kind];
        b.extend_from_slice(&rest);
        let _ = Message::from_bytes(&b);
    }

    #[test]
    fn invite_decoder_never_panics(s in "(ronde1:|RONDE1:)?[0-9a-zA-Z \\-]{0,300}", u in "\\PC{0,50}") {
        let _ = Invite::from_code(&s);
        let _ = Invite::from_code(&u);
        let _ = Invite::from_code(&format!("ronde1:{u}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random bytes of an envelope's exact length: refused cleanly, circle
    /// unchanged.
    #[test]
    fn envelope_open_never_panics(
        mut small in prop::collection::vec(any::<u8>(), SMALL_ENVELOPE_LEN),
        large in prop::collection::vec(any::<u8>(), LARGE_ENVELOPE_LEN),
        other in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut p = mutual_pair(50);
        let before = p.bc.clone();
        small[0] = 1;
        prop_assert!(p.bc.open(&p.bob, &small, NOW).is_err());
        prop_assert!(p.bc.open(&p.bob, &large, NOW).is_err());
        prop_assert!(p.bc.open(&p.bob, &other, NOW).is_err());
        prop_assert_eq!(p.bc, before);
    }
}
