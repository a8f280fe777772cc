//! The code agrees with every test vector in `docs/test-vectors/`.
//!
//! Regenerate the files (only when the format deliberately changes) with
//! `RONDE_WRITE_VECTORS=1 cargo test -p ronde-protocol --test vectors`.

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use ronde_protocol::{pow, validate, Category, Cell, Draft, ReportId};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Valid {
    name: String,
    secret_key: String,
    public_key: String,
    category: Category,
    cell: String,
    observed_minute: u32,
    ttl_minutes: u8,
    difficulty: u8,
    nonce_start: u64,
    nonce: u64,
    now: u64,
    bytes: String,
    id: String,
    expires_at: u64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Invalid {
    name: String,
    reason: String,
    now: u64,
    bytes: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct File<T> {
    description: String,
    policy: String,
    vectors: Vec<T>,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/test-vectors")
}

const MINUTE: u32 = 29_833_333; // 2026-09-21T15:53Z
const NOW: u64 = MINUTE as u64 * 60 + 30;

fn make_valid(name: &str, seed: u8, category: Category, cell: &str, ttl: u8) -> Valid {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let cell: Cell = cell.parse().expect("vector cell");
    let draft = Draft {
        category,
        cell,
        observed_minute: MINUTE,
        ttl_minutes: ttl,
    };
    let nonce_start = u64::from(seed) << 40;
    let report = draft
        .seal_with(&key, pow::MIN_DIFFICULTY, nonce_start)
        .expect("seal");
    let ronde_protocol::Proof::Work { nonce, .. } = report.proof();
    let bytes = report.to_bytes();
    Valid {
        name: name.into(),
        secret_key: hex::encode(key.to_bytes()),
        public_key: hex::encode(report.public_key()),
        category,
        cell: cell.to_string(),
        observed_minute: MINUTE,
        ttl_minutes: ttl,
        difficulty: pow::MIN_DIFFICULTY,
        nonce_start,
        nonce,
        now: NOW,
        id: ReportId::of(&bytes).to_hex(),
        expires_at: report.expires_at(),
        bytes: hex::encode(&bytes),
    }
}

fn generate() -> (File<Valid>, File<Invalid>) {
    let valid = vec![
        make_valid(
            "harassment_precision_7",
            1,
            Category::Harassment,
            "u09tvqx",
            30,
        ),
        make_valid(
            "poor_lighting_precision_6",
            2,
            Category::PoorLighting,
            "u09tvq",
            30,
        ),
        make_valid("following_ttl_60", 3, Category::Following, "u09tvw0", 60),
        make_valid("other_hazard_ttl_1", 4, Category::OtherHazard, "gcpvj0d", 1),
    ];
    let base = hex::decode(&valid[0].bytes).expect("hex");
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.clone();
        f(&mut b);
        hex::encode(b)
    };
    let inv = |name: &str, reason: &str, now: u64, bytes: String| Invalid {
        name: name.into(),
        reason: reason.into(),
        now,
        bytes,
    };
    // Offsets in a precision-7 report.
    let (ttl, kind, diff) = (14, 47, 48);
    let low_work = {
        let key = SigningKey::from_bytes(&[9; 32]);
        let cell: Cell = "u09tvqx".parse().expect("cell");
        let d = Draft {
            category: Category::Harassment,
            cell,
            observed_minute: MINUTE,
            ttl_minutes: 30,
        };
        hex::encode(d.seal_with(&key, 8, 0).expect("seal").to_bytes())
    };
    let expiry = valid[0].expires_at;
    let invalid = vec![
        inv("too_large", "too_large", NOW, hex::encode(vec![1u8; 193])),
        inv("empty", "malformed", NOW, String::new()),
        inv("truncated", "malformed", NOW, with(&|b| b.truncate(120))),
        inv("trailing_byte", "malformed", NOW, with(&|b| b.push(0))),
        inv("unknown_version", "malformed", NOW, with(&|b| b[0] = 2)),
        inv("unknown_category", "malformed", NOW, with(&|b| b[1] = 10)),
        inv(
            "unknown_proof_kind",
            "malformed",
            NOW,
            with(&|b| b[kind] = 2),
        ),
        inv("zero_ttl", "malformed", NOW, with(&|b| b[ttl] = 0)),
        inv("precision_8", "bad_cell", NOW, with(&|b| b[2] = 8)),
        inv("cell_not_geohash", "bad_cell", NOW, with(&|b| b[3] = b'a')),
        inv("ttl_61", "ttl_too_long", NOW, with(&|b| b[ttl] = 61)),
        inv(
            "from_the_future",
            "from_future",
            u64::from(MINUTE) * 60 - 121,
            valid[0].bytes.clone(),
        ),
        inv("expired", "expired", expiry, valid[0].bytes.clone()),
        inv("difficulty_under_minimum", "not_enough_work", NOW, low_work),
        inv(
            "stamp_does_not_hold",
            "not_enough_work",
            NOW,
            with(&|b| b[diff] = 30),
        ),
        inv(
            "signature_flipped",
            "bad_signature",
            NOW,
            with(&|b| *b.last_mut().expect("non-empty") ^= 1),
        ),
        // A forger changes the category and pays for a new stamp, but cannot re-sign.
        inv(
            "category_changed_and_restamped",
            "bad_signature",
            NOW,
            with(&|b| {
                b[1] = Category::PhysicalAggression.code();
                let prefix_len = b.len() - 64 - 8;
                let (nonce, _) = pow::solve(&b[..prefix_len], pow::MIN_DIFFICULTY, 0);
                b[prefix_len..prefix_len + 8].copy_from_slice(&nonce.to_be_bytes());
            }),
        ),
    ];
    let policy = format!(
        "network default: min_difficulty {}, max clock skew 120 s, max ttl 60 min",
        pow::MIN_DIFFICULTY
    );
    (
        File {
            description: "Valid version-1 reports. Re-sealing the fields with secret_key, difficulty and nonce_start must give exactly these bytes and id; validate(bytes, now) must accept them.".into(),
            policy: policy.clone(),
            vectors: valid,
        },
        File {
            description: "Invalid reports: validate(bytes, now) must reject each with the given reason (checks run in the order of docs/protocol.md).".into(),
            policy,
            vectors: invalid,
        },
    )
}

fn read<T: for<'de> Deserialize<'de>>(name: &str) -> File<T> {
    let text = std::fs::read_to_string(dir().join(name)).expect("vector file exists");
    serde_json::from_str(&text).expect("vector file parses")
}

#[test]
fn vectors_agree_with_the_code() {
    let (valid, invalid) = generate();
    if std::env::var_os("RONDE_WRITE_VECTORS").is_some() {
        std::fs::create_dir_all(dir()).expect("mkdir");
        let write = |n: &str, s: String| std::fs::write(dir().join(n), s + "\n").expect("write");
        write(
            "valid.json",
            serde_json::to_string_pretty(&valid).expect("json"),
        );
        write(
            "invalid.json",
            serde_json::to_string_pretty(&invalid).expect("json"),
        );
    }
    let on_disk_valid: File<Valid> = read("valid.json");
    let on_disk_invalid: File<Invalid> = read("invalid.json");
    assert_eq!(
        on_disk_valid, valid,
        "valid.json no longer matches the code"
    );
    assert_eq!(
        on_disk_invalid, invalid,
        "invalid.json no longer matches the code"
    );

    for v in &on_disk_valid.vectors {
        let bytes = hex::decode(&v.bytes).expect("hex");
        let r = validate(&bytes, v.now).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(r.id().to_hex(), v.id, "{}", v.name);
        assert_eq!(r.expires_at(), v.expires_at, "{}", v.name);
        assert_eq!(r.report().category(), v.category, "{}", v.name);
        assert_eq!(r.report().cell().as_str(), v.cell, "{}", v.name);
        assert_eq!(
            hex::encode(r.report().public_key()),
            v.public_key,
            "{}",
            v.name
        );
    }
    let mut reasons = std::collections::BTreeSet::new();
    for v in &on_disk_invalid.vectors {
        let bytes = hex::decode(&v.bytes).expect("hex");
        let err = validate(&bytes, v.now).expect_err(&v.name);
        assert_eq!(err.reason(), v.reason, "{}: {err}", v.name);
        reasons.insert(err.reason());
    }
    let all = [
        "too_large",
        "malformed",
        "bad_cell",
        "ttl_too_long",
        "from_future",
        "expired",
        "not_enough_work",
        "bad_signature",
    ];
    assert_eq!(
        reasons,
        all.into_iter().collect(),
        "one invalid vector per rejection reason"
    );
}
