//! The code agrees with `docs/test-vectors/circle-vectors.json`.
//!
//! Regenerate it (only when a format deliberately changes) with
//! `RONDE_WRITE_VECTORS=1 cargo test -p ronde-protocol --test circle_vectors`.
//!
//! Deterministic outputs (codes, safety numbers, mailbox addresses, message
//! encodings, heartbeats and withdrawals) must match byte for byte.
//! Envelopes use a random HPKE ephemeral key, so another implementation
//! checks them by opening them with the recipient's secret.

// Test helpers outside `#[test]` functions unwrap too (clippy.toml only
// covers the test functions themselves).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use rand::SeedableRng;
use ronde_protocol::circle::{
    address_of_key, envelope, mailbox_address, mailbox_auth, safety_number, Deviation, Fix,
    Identity, Invite, InviteToken, MailboxKey, Message, MessageId, PairSecret, Place,
    PublicIdentity, StatesOnly, SwitchOwner,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct IdentityVector {
    secret: String,
    public: String,
    contact_id: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct InviteVector {
    token: String,
    expires_at: u64,
    name: String,
    addresses: Vec<String>,
    payload: String,
    code: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct MailboxVector {
    epoch: u64,
    to_alice: String,
    to_bob: String,
    to_alice_key: String,
    to_bob_key: String,
}

/// Bob proves the keys of his two mailboxes to a host (docs/circle.md §7).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct MailboxAuthVector {
    host: String,
    client: String,
    challenge: String,
    request: String,
    signatures: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct MessageVector {
    message: Message,
    bytes: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct EnvelopeVector {
    from: String,
    to: String,
    relation: String,
    counter: u64,
    message: Message,
    envelope: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct SwitchVector {
    owner_secret: String,
    key: String,
    heartbeat_release_at: u64,
    heartbeat: String,
    withdraw: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Vectors {
    description: String,
    alice: IdentityVector,
    bob: IdentityVector,
    safety_number: String,
    invite: InviteVector,
    pair_secret: String,
    mailboxes: Vec<MailboxVector>,
    mailbox_auth: MailboxAuthVector,
    messages: Vec<MessageVector>,
    envelopes: Vec<EnvelopeVector>,
    switch: SwitchVector,
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/test-vectors/circle-vectors.json")
}

fn identity(seed: u8) -> Identity {
    let mut b = vec![1u8];
    b.extend((0..64).map(|i| seed.wrapping_mul(31).wrapping_add(i)));
    Identity::from_bytes(&b).unwrap()
}

fn id_vector(i: &Identity) -> IdentityVector {
    IdentityVector {
        secret: hex::encode(&*i.to_bytes()),
        public: i.public().to_string(),
        contact_id: i.public().id().to_hex(),
    }
}

const EPOCH: u64 = 20_717; // 2026-09-21

fn messages() -> Vec<Message> {
    let j = MessageId([0x11; 16]);
    let s = MessageId([0x22; 16]);
    let point = Place::Point {
        lat_e7: 488_566_000,
        lon_e7: 23_522_000,
        accuracy_m: 12,
    };
    vec![
        Message::Accept {
            token: InviteToken([0x33; 16]),
            name: "Bob".into(),
            addresses: vec!["/ip4/192.0.2.1/tcp/4001".into()],
        },
        Message::Confirm,
        Message::Leave,
        Message::JourneyStarted {
            journey: j,
            started_at: 1_790_000_000,
            destination: Place::Cell("u09tunq".parse().unwrap()),
            expected_arrival: 1_790_001_800,
            grace_secs: 900,
            states_only: None,
        },
        Message::Position {
            journey: j,
            fix: Fix {
                at: 1_790_000_300,
                place: point,
            },
        },
        Message::Arrived {
            journey: j,
            at: 1_790_001_700,
        },
        Message::JourneyCancelled {
            journey: j,
            at: 1_790_000_400,
        },
        Message::Overdue {
            journey: j,
            expected_arrival: 1_790_001_800,
            last_seen: Some(Fix {
                at: 1_790_000_300,
                place: point,
            }),
        },
        Message::Overdue {
            journey: j,
            expected_arrival: 1_790_001_800,
            last_seen: None,
        },
        Message::Sos {
            sos: s,
            at: 1_790_000_500,
            place: Some(point),
            note: "Suivie, rue des Lilas".into(),
        },
        Message::Sos {
            sos: s,
            at: 1_790_000_500,
            place: None,
            note: String::new(),
        },
        Message::SosCancelled {
            sos: s,
            at: 1_790_000_900,
        },
        Message::Ack { of: s },
        Message::JourneyStarted {
            journey: j,
            started_at: 1_790_000_000,
            destination: point,
            expected_arrival: 1_790_001_800,
            grace_secs: 900,
            states_only: Some(StatesOnly {
                corridor_m: 300,
                stop_secs: 600,
            }),
        },
        Message::Deviated {
            journey: j,
            reason: Deviation::OffRoute,
            fix: Fix {
                at: 1_790_000_600,
                place: point,
            },
        },
        Message::Duress {
            of: s,
            at: 1_790_000_700,
        },
    ]
}

fn generate() -> Vectors {
    let alice = identity(1);
    let bob = identity(2);
    let invite = Invite {
        identity: alice.public().clone(),
        token: InviteToken([0x33; 16]),
        expires_at: 1_790_086_380,
        name: "Alice".into(),
        addresses: vec!["/ip4/192.0.2.7/udp/4001/quic-v1".into()],
    };
    let pair = PairSecret::derive(&alice, bob.public()).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(42);
    let envelopes = [
        (&alice, &bob, 1, messages()[0].clone()),
        (&bob, &alice, 7, messages()[9].clone()),
        (&alice, &bob, 8, messages()[12].clone()),
    ]
    .into_iter()
    .map(|(from, to, counter, message)| EnvelopeVector {
        from: from.public().to_string(),
        to: to.public().to_string(),
        relation: hex::encode(invite.token.0),
        counter,
        envelope: hex::encode(
            envelope::seal(
                from,
                to.public(),
                &invite.token,
                counter,
                &message,
                &mut rng,
            )
            .unwrap(),
        ),
        message,
    })
    .collect();
    let mut owner_bytes = vec![1u8];
    owner_bytes.extend([0x44; 32]);
    owner_bytes.extend(0u64.to_be_bytes());
    let mut owner = SwitchOwner::from_bytes(&owner_bytes).unwrap();
    Vectors {
        description: "Trusted-circle test vectors (docs/circle.md). Secrets are \
                      for testing only. Envelopes have a random ephemeral key: \
                      check them by opening with the recipient's secret."
            .into(),
        alice: id_vector(&alice),
        bob: id_vector(&bob),
        safety_number: safety_number(alice.public(), bob.public()).to_string(),
        invite: InviteVector {
            token: hex::encode(invite.token.0),
            expires_at: invite.expires_at,
            name: invite.name.clone(),
            addresses: invite.addresses.clone(),
            payload: hex::encode(invite.payload().unwrap()),
            code: invite.to_code(),
        },
        pair_secret: hex::encode(pair.as_bytes()),
        mailboxes: [EPOCH, EPOCH + 1]
            .into_iter()
            .map(|epoch| MailboxVector {
                epoch,
                to_alice: hex::encode(mailbox_address(&pair, epoch, alice.public())),
                to_bob: hex::encode(mailbox_address(&pair, epoch, bob.public())),
                to_alice_key: hex::encode(
                    MailboxKey::derive(&pair, epoch, alice.public()).public_key(),
                ),
                to_bob_key: hex::encode(
                    MailboxKey::derive(&pair, epoch, bob.public()).public_key(),
                ),
            })
            .collect(),
        mailbox_auth: mailbox_auth(&pair, bob.public()),
        messages: messages()
            .into_iter()
            .map(|m| MessageVector {
                bytes: hex::encode(m.to_bytes().unwrap()),
                message: m,
            })
            .collect(),
        envelopes,
        switch: SwitchVector {
            owner_secret: hex::encode(&*owner.to_bytes()),
            key: hex::encode(owner.public_key()),
            heartbeat_release_at: 1_790_003_000,
            heartbeat: hex::encode(owner.heartbeat(1_790_003_000).unwrap().to_bytes()),
            withdraw: hex::encode(owner.withdraw().unwrap().to_bytes()),
        },
    }
}

#[test]
fn circle_vectors() {
    let fresh = generate();
    if std::env::var_os("RONDE_WRITE_VECTORS").is_some() {
        let json = serde_json::to_string_pretty(&fresh).unwrap();
        std::fs::write(path(), json + "\n").unwrap();
    }
    let text = std::fs::read_to_string(path()).expect("run with RONDE_WRITE_VECTORS=1");
    let file: Vectors = serde_json::from_str(&text).unwrap();

    // Deterministic parts: byte for byte.
    assert_eq!(file.alice, fresh.alice);
    assert_eq!(file.bob, fresh.bob);
    assert_eq!(file.safety_number, fresh.safety_number);
    assert_eq!(file.invite, fresh.invite);
    assert_eq!(file.pair_secret, fresh.pair_secret);
    assert_eq!(file.mailboxes, fresh.mailboxes);
    assert_eq!(file.mailbox_auth, fresh.mailbox_auth);
    for m in &file.mailboxes {
        let key: [u8; 32] = hex::decode(&m.to_bob_key).unwrap().try_into().unwrap();
        assert_eq!(hex::encode(address_of_key(&key)), m.to_bob);
    }
    let a = &file.mailbox_auth;
    let keys: Vec<[u8; 32]> = file
        .mailboxes
        .iter()
        .map(|m| hex::decode(&m.to_bob_key).unwrap().try_into().unwrap())
        .collect();
    let sigs: Vec<[u8; 64]> = a
        .signatures
        .iter()
        .map(|s| hex::decode(s).unwrap().try_into().unwrap())
        .collect();
    let (host, client, request) = (
        hex::decode(&a.host).unwrap(),
        hex::decode(&a.client).unwrap(),
        hex::decode(&a.request).unwrap(),
    );
    mailbox_auth::verify(&keys, &sigs, &host, &client, &request).unwrap();
    assert!(mailbox_auth::verify(&keys, &sigs, &client, &host, &request).is_err());
    assert_eq!(file.messages, fresh.messages);
    assert_eq!(file.switch, fresh.switch);

    // Decoders agree with the file.
    let invite = Invite::from_code(&file.invite.code).unwrap();
    assert_eq!(invite.name, file.invite.name);
    for m in &file.messages {
        assert_eq!(
            Message::from_bytes(&hex::decode(&m.bytes).unwrap()).unwrap(),
            m.message
        );
    }
    let secrets = [
        identity_from_hex(&file.alice.secret),
        identity_from_hex(&file.bob.secret),
    ];
    for e in &file.envelopes {
        let to: PublicIdentity = e.to.parse().unwrap();
        let me = secrets.iter().find(|s| s.public() == &to).unwrap();
        let opened = envelope::open(me, &hex::decode(&e.envelope).unwrap()).unwrap();
        assert_eq!(opened.sender.to_string(), e.from);
        assert_eq!(opened.counter, e.counter);
        assert_eq!(hex::encode(opened.relation.0), e.relation);
        assert_eq!(opened.message, e.message);
    }
    let hb = ronde_protocol::circle::Heartbeat::from_bytes(
        &hex::decode(&file.switch.heartbeat).unwrap(),
    )
    .unwrap();
    assert_eq!(hb.release_at(), file.switch.heartbeat_release_at);
    assert_eq!(hb.counter(), 1);
}

/// Bob's fetch of his mailboxes of `EPOCH` and `EPOCH + 1` from a host,
/// as `/ronde/mailbox/1` lays it out (`0x02 || challenge || n || n × key`,
/// the bytes the signatures cover), and the signatures.
fn mailbox_auth(pair: &PairSecret, bob: &PublicIdentity) -> MailboxAuthVector {
    let keys: Vec<MailboxKey> = [EPOCH, EPOCH + 1]
        .into_iter()
        .map(|e| MailboxKey::derive(pair, e, bob))
        .collect();
    // Two Ed25519 peer ids' bytes (identity multihash of the protobuf key).
    let host =
        hex::decode("002408011220aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
            .unwrap();
    let client =
        hex::decode("002408011220bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
            .unwrap();
    let challenge = [0x5c; 32];
    let mut request = vec![0x02];
    request.extend_from_slice(&challenge);
    request.push(keys.len() as u8);
    for k in &keys {
        request.extend_from_slice(&k.public_key());
    }
    let signatures = mailbox_auth::sign(&keys, &host, &client, &request).unwrap();
    MailboxAuthVector {
        host: hex::encode(host),
        client: hex::encode(client),
        challenge: hex::encode(challenge),
        request: hex::encode(request),
        signatures: signatures.iter().map(hex::encode).collect(),
    }
}

fn identity_from_hex(h: &str) -> Identity {
    Identity::from_bytes(&hex::decode(h).unwrap()).unwrap()
}
