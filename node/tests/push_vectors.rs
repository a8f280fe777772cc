//! The vectors of push registrations and wake-ups (docs/circle.md §7.3,
//! `docs/test-vectors/push.json`).
//!
//! Regenerate them (only when the format deliberately changes) with
//! `RONDE_WRITE_VECTORS=1 cargo test -p ronde-node --test push_vectors`.
//! The request's bytes are built here by hand from the document, compared
//! with the node's encoder, decoded, and their proof checked.

use std::path::PathBuf;

use libp2p::identity::Keypair;
use ronde_node::circle::host::push::{registration_id, WAKE_BODY, WAKE_TTL_SECS};
use ronde_node::circle::wire::{
    decode_mailbox_request, encode_mailbox_request, MailboxRequest, Refusal,
};
use ronde_protocol::circle::mailbox_auth;
use ronde_protocol::circle::MailboxKey;
use serde_json::{json, Value};

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/test-vectors/push.json")
}

fn peer(seed: u8) -> Vec<u8> {
    Keypair::ed25519_from_bytes([seed; 32])
        .expect("key")
        .public()
        .to_peer_id()
        .to_bytes()
}

fn fresh() -> Value {
    let seeds = [[0x11u8; 32], [0x22u8; 32]];
    let keys: Vec<MailboxKey> = seeds.iter().map(MailboxKey::from_seed).collect();
    let (host, client) = (peer(1), peer(2));
    let challenge = [0x5au8; 32];
    let lifetime: u32 = 129_600;
    let endpoint = "https://push.example.org/up/AbCdEf012345";

    // By hand, from docs/circle.md §7.3.
    let mut unsigned = vec![0x06];
    unsigned.extend_from_slice(&challenge);
    unsigned.extend_from_slice(&lifetime.to_be_bytes());
    unsigned.extend_from_slice(&(endpoint.len() as u16).to_be_bytes());
    unsigned.extend_from_slice(endpoint.as_bytes());
    unsigned.push(keys.len() as u8);
    for k in &keys {
        unsigned.extend_from_slice(&k.public_key());
    }
    let signatures = mailbox_auth::sign(&keys, &host, &client, &unsigned).expect("sign");
    let mut request = unsigned.clone();
    for s in &signatures {
        request.extend_from_slice(s);
    }
    let made =
        MailboxRequest::push(challenge, lifetime, endpoint, &keys, &host, &client).expect("push");
    assert_eq!(encode_mailbox_request(&made).expect("encode"), request);

    json!({
        "description": "A push registration (docs/circle.md §7.3): two mailbox keys proven for one host and client, and the wake-up a host posts.",
        "keys": seeds.iter().zip(&keys).map(|(s, k)| json!({
            "seed": hex::encode(s),
            "public": hex::encode(k.public_key()),
            "address": hex::encode(k.address()),
        })).collect::<Vec<_>>(),
        "host": hex::encode(&host),
        "client": hex::encode(&client),
        "challenge": hex::encode(challenge),
        "lifetime": lifetime,
        "endpoint": endpoint,
        "unsigned": hex::encode(&unsigned),
        "signatures": signatures.iter().map(hex::encode).collect::<Vec<_>>(),
        "request": hex::encode(&request),
        "registration_id": hex::encode(registration_id(&client)),
        "refusals": {
            "push_endpoint": Refusal::PushEndpoint.code(),
            "push_quota": Refusal::PushQuota.code(),
            "push_unavailable": Refusal::PushUnavailable.code(),
        },
        "wake": {
            "method": "POST",
            "headers": {
                "TTL": WAKE_TTL_SECS.to_string(),
                "Urgency": "high",
                "Content-Type": "application/octet-stream",
            },
            "body": String::from_utf8_lossy(WAKE_BODY),
        },
    })
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("hex")
}

#[test]
fn push_vectors_match_the_code() {
    let fresh = fresh();
    if std::env::var_os("RONDE_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&fresh).expect("json");
        std::fs::write(path(), text + "\n").expect("write");
    }
    let text = std::fs::read_to_string(path()).expect("run with RONDE_WRITE_VECTORS=1");
    let stored: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        stored, fresh,
        "the vectors changed: regenerate only on purpose"
    );

    // The stored request decodes and proves the stored keys' mailboxes
    // for the stored host and client only.
    let req = decode_mailbox_request(&hex_of(&stored["request"])).expect("decodes");
    let (host, client) = (hex_of(&stored["host"]), hex_of(&stored["client"]));
    let (_, addrs) = req.proven_mailboxes(&host, &client).expect("proven");
    let want: Vec<Vec<u8>> = stored["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| hex_of(&k["address"]))
        .collect();
    assert_eq!(addrs.iter().map(|a| a.to_vec()).collect::<Vec<_>>(), want);
    assert!(req.proven_mailboxes(&client, &host).is_err());
    let MailboxRequest::Push {
        lifetime, endpoint, ..
    } = req
    else {
        panic!("not a push registration");
    };
    assert_eq!(u64::from(lifetime), stored["lifetime"].as_u64().expect("n"));
    assert_eq!(endpoint, stored["endpoint"].as_str().expect("s"));
}
