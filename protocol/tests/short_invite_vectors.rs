//! Vectors of short invite codes (docs/circle.md §2.1,
//! `docs/test-vectors/short-invite.json`): from a typed code to its
//! canonical form, its PBKDF2 output (mailbox key seed and sealing key),
//! the mailbox's address and a sealed invite.
//!
//! Regenerate them (only when the format deliberately changes) with
//! `RONDE_WRITE_VECTORS=1 cargo test -p ronde-protocol --test short_invite_vectors`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use ronde_protocol::circle::short_invite::{ShortCode, SHORT_CODE_ITERATIONS};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Vectors {
    description: String,
    iterations: u32,
    cases: Vec<Case>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Case {
    typed: String,
    canonical: String,
    shown: String,
    mailbox_seed: String,
    mailbox_address: String,
    sealing_key: String,
    invite_code: String,
    blob: String,
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/test-vectors/short-invite.json")
}

fn make() -> Vectors {
    let invite = "ronde1:0123456789abcdefghjkmnpqrstvwxyz0123456789abcdefghjkmnpqrstvwxyz";
    let cases = ["abcde-fghjk", "0O1IL 23456", "zzzzzzzzzz"]
        .iter()
        .map(|typed| {
            let code = ShortCode::parse(typed).unwrap();
            let keys = code.keys_with(SHORT_CODE_ITERATIONS);
            Case {
                typed: (*typed).to_owned(),
                canonical: code.canonical(),
                shown: code.to_string(),
                mailbox_seed: hex::encode(keys.mailbox.seed()),
                mailbox_address: hex::encode(keys.mailbox.address()),
                sealing_key: hex::encode(keys.sealing_key()),
                invite_code: invite.to_owned(),
                blob: hex::encode(keys.seal(invite).unwrap()),
            }
        })
        .collect();
    Vectors {
        description: "Short invite codes (docs/circle.md §2.1): PBKDF2-HMAC-SHA256(canonical \
                      code, salt \"ronde/circle/v1/short-invite\", iterations) gives 64 bytes: \
                      mailbox_seed (first 32, an Ed25519 seed: the mailbox key of §7) and \
                      sealing_key (last 32, ChaCha20-Poly1305); blob = 0x01 || \
                      ChaCha20-Poly1305(sealing_key, 12 zero bytes, aad 0x01, length (2) || \
                      invite_code || zero padding), 561 bytes."
            .to_owned(),
        iterations: SHORT_CODE_ITERATIONS,
        cases,
    }
}

#[test]
fn short_invite_vectors() {
    let fresh = make();
    if std::env::var_os("RONDE_WRITE_VECTORS").is_some() {
        std::fs::write(path(), serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(path()).expect("run with RONDE_WRITE_VECTORS=1");
    let stored: Vectors = serde_json::from_str(&text).unwrap();
    assert_eq!(stored, fresh);
    for c in &stored.cases {
        let keys = ShortCode::parse(&c.typed)
            .unwrap()
            .keys_with(stored.iterations);
        let blob = hex::decode(&c.blob).unwrap();
        assert_eq!(blob.len(), 561);
        assert_eq!(keys.open(&blob).unwrap(), c.invite_code);
    }
}
