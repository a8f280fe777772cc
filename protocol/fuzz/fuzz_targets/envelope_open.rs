//! Fuzz the opening of circle envelopes, what a phone runs on every
//! envelope any peer or mailbox host hands it: `circle::open` (decrypt,
//! padding, sender, signature, message) and `Circle::open` (counters,
//! contacts, handshake rules), for a fixed recipient identity. Every call
//! must give a clean `Ok` or `Err`, never a panic.
//!
//! A fuzzer cannot forge an HPKE ciphertext or a signature, so the first
//! byte picks how the rest is used:
//!
//! * 0: as the envelope, as is;
//! * 1: as the padded plaintext (length, inner bytes, padding), which the
//!   harness encrypts to the recipient, so that the padding and inner
//!   header checks are fuzzed;
//! * 2: as a relation token (16 bytes), a counter (8 bytes) and a message
//!   body, which the harness signs
//!   as a fixed sender, pads and encrypts, so that everything behind the
//!   signature is fuzzed. Then `open` must succeed exactly when the counter
//!   is not 0 and the body decodes as a `Message`, and give that message.
//!
//! Envelopes of modes 1 and 2 are also opened by the recipient's circle in
//! two states: one with a pending invite (a stranger's `Accept`) and one
//! where the sender is a mutual contact.
#![no_main]

use std::sync::OnceLock;

use ed25519_dalek::{Signer, SigningKey};
use hpke::{Deserializable, OpModeS, Serializable};
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ronde_protocol::circle::envelope::{ENVELOPE_VERSION, HPKE_INFO, INNER_VERSION, SIG_DOMAIN};
use ronde_protocol::circle::{open, Circle, Identity, Invite, Message, BUCKETS};

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

const NOW: u64 = 1_790_000_000;

/// A fixed identity: version byte, Ed25519 secret, X25519 secret.
fn identity(seed: u8) -> Identity {
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&[seed; 32]);
    bytes.extend_from_slice(&[seed ^ 0xff; 32]);
    Identity::from_bytes(&bytes).expect("a valid identity file")
}

struct Fixture {
    recipient: Identity,
    sender: Identity,
    /// The recipient's circle with one pending invite.
    inviting: Circle,
    /// The recipient's circle where the sender is a mutual contact.
    mutual: Circle,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let recipient = identity(0x42);
        let sender = identity(0x41);
        let mut inviting = Circle::new(recipient.public().clone());
        let mut sender_circle = Circle::new(sender.public().clone());
        let code = inviting
            .create_invite("Bob", vec![], NOW, 3600, &mut rng)
            .expect("an invite")
            .to_code();
        let invite = Invite::from_code(&code).expect("its code");
        let mut mutual = inviting.clone();
        let (_, accept) = sender_circle
            .accept_invite(&sender, &invite, "Alice", vec![], NOW, &mut rng)
            .expect("accepted");
        let got = mutual.open(&recipient, &accept, NOW).expect("the accept");
        mutual
            .approve(&recipient, &got.from, &mut rng)
            .expect("approved");
        Fixture {
            recipient,
            sender,
            inviting,
            mutual,
        }
    })
}

/// Encrypt `padded` to the recipient as an envelope.
fn encrypt(f: &Fixture, padded: &[u8]) -> Vec<u8> {
    let key = <Kem as hpke::Kem>::PublicKey::from_bytes(f.recipient.public().encryption_key())
        .expect("a valid public key");
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let (enc, ct) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
        &OpModeS::Base,
        &key,
        HPKE_INFO,
        padded,
        &[ENVELOPE_VERSION],
        &mut rng,
    )
    .expect("sealed");
    let mut out = vec![ENVELOPE_VERSION];
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ct);
    out
}

/// Pad to the smallest bucket that fits, or `None` if none does.
fn pad(plaintext: &[u8]) -> Option<Vec<u8>> {
    let bucket = BUCKETS.iter().copied().find(|&b| b >= plaintext.len())?;
    let mut padded = plaintext.to_vec();
    padded.resize(bucket, 0);
    Some(padded)
}

/// Relation, counter and body, signed by the sender, length-prefixed.
fn signed_inner(f: &Fixture, relation: &[u8], counter: &[u8], body: &[u8]) -> Vec<u8> {
    let mut inner = vec![INNER_VERSION];
    inner.extend_from_slice(&f.sender.public().to_bytes());
    inner.extend_from_slice(relation);
    inner.extend_from_slice(counter);
    inner.extend_from_slice(body);
    let mut input = SIG_DOMAIN.to_vec();
    input.extend_from_slice(&f.recipient.public().to_bytes());
    input.extend_from_slice(&inner);
    let secret = f.sender.to_bytes();
    let key = SigningKey::from_bytes(secret[1..33].try_into().expect("32 bytes"));
    inner.extend_from_slice(&key.sign(&input).to_bytes());
    let len = u16::try_from(inner.len()).unwrap_or(u16::MAX);
    let mut plaintext = len.to_be_bytes().to_vec();
    plaintext.extend_from_slice(&inner);
    plaintext
}

fn circles(f: &Fixture, envelope: &[u8]) {
    for circle in [&f.inviting, &f.mutual] {
        let mut circle = circle.clone();
        let _ = circle.open(&f.recipient, envelope, NOW);
        // The same envelope twice: a replay the second time if it was taken.
        let _ = circle.open(&f.recipient, envelope, NOW);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    match mode % 3 {
        0 => {
            let _ = open(&f.recipient, rest);
        }
        1 => {
            let Some(padded) = pad(rest) else { return };
            let envelope = encrypt(f, &padded);
            let _ = open(&f.recipient, &envelope);
            circles(f, &envelope);
        }
        _ => {
            if rest.len() < 24 {
                return;
            }
            let (relation, rest) = rest.split_at(16);
            let (counter, body) = rest.split_at(8);
            let Some(padded) = pad(&signed_inner(f, relation, counter, body)) else {
                return;
            };
            let envelope = encrypt(f, &padded);
            let opened = open(&f.recipient, &envelope);
            let counter = u64::from_be_bytes(counter.try_into().unwrap_or([0; 8]));
            match (Message::from_bytes(body), counter) {
                (Ok(message), 1..) => {
                    let opened = opened.expect("a signed envelope with a valid message opens");
                    assert_eq!(opened.message, message);
                    assert_eq!(opened.counter, counter);
                    assert_eq!(&opened.relation.0[..], relation);
                    assert_eq!(&opened.sender, f.sender.public());
                }
                _ => assert!(opened.is_err(), "counter 0 or an invalid body is refused"),
            }
            circles(f, &envelope);
        }
    }
});
