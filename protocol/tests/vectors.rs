//! The code agrees with every test vector in `docs/test-vectors/`.
//!
//! Regenerate the files (only when the format deliberately changes) with
//! `RONDE_WRITE_VECTORS=1 cargo test -p ronde-protocol --test vectors`.

use std::path::PathBuf;

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signer, SigningKey};
use rand::SeedableRng;
use ronde_protocol::report::SIGN_DOMAIN;
use ronde_protocol::{
    pow, validate, validate_batch, Category, Cell, Draft, Policy, Rejection, ReportId,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

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

/// A report whose signature was made by hand to test the edges of the
/// signature rule (docs/protocol.md §1.6).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Crafted {
    name: String,
    construction: String,
    now: u64,
    bytes: String,
    /// "valid", or the rejection reason.
    expected: String,
    /// The verdict of a ZIP-215 verifier on the signature alone: "valid"
    /// or "invalid" (see [`zip215_holds`]).
    zip215: String,
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
    let ronde_protocol::Proof::Work { nonce, .. } = *report.proof() else {
        unreachable!()
    };
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
        inv("too_large", "too_large", NOW, hex::encode(vec![1u8; 513])),
        inv("empty", "malformed", NOW, String::new()),
        inv("truncated", "malformed", NOW, with(&|b| b.truncate(120))),
        inv("trailing_byte", "malformed", NOW, with(&|b| b.push(0))),
        inv("unknown_version", "malformed", NOW, with(&|b| b[0] = 2)),
        inv("unknown_category", "malformed", NOW, with(&|b| b[1] = 10)),
        inv(
            "unknown_proof_kind",
            "malformed",
            NOW,
            with(&|b| b[kind] = 3),
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

/// `bytes` (a valid precision-7 vector) with another public key, stamped
/// again at the network minimum from nonce 0, and signed by `sign` over the
/// signing input.
fn with_key_and_signature(
    bytes: &[u8],
    key: [u8; 32],
    sign: &dyn Fn(&[u8]) -> [u8; 64],
) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let p = usize::from(b[2]);
    b[8 + p..40 + p].copy_from_slice(&key);
    let prefix_len = b.len() - 64 - 8;
    let (nonce, _) = pow::solve(&b[..prefix_len], pow::MIN_DIFFICULTY, 0);
    b[prefix_len..prefix_len + 8].copy_from_slice(&nonce.to_be_bytes());
    let n = b.len();
    let input = [SIGN_DOMAIN, &b[..n - 64]].concat();
    let sig = sign(&input);
    b[n - 64..].copy_from_slice(&sig);
    b
}

fn challenge(r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> Scalar {
    let h = Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(msg)
        .finalize();
    Scalar::from_bytes_mod_order_wide(&h.into())
}

/// A signature by hand: `R = rB + tr`, `S = r + k·a` (mod L), with the
/// key `A = aB + ta` given by the caller; `k` from the encodings.
fn sign_by_hand(a: Scalar, key: [u8; 32], r: Scalar, tr: EdwardsPoint, msg: &[u8]) -> [u8; 64] {
    let r_enc = (EdwardsPoint::mul_base(&r) + tr).compress().to_bytes();
    let s = r + challenge(&r_enc, &key, msg) * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_enc);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// The group order L = 2^252 + 27742317777372353535851937790883648493,
/// little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// 32 little-endian bytes plus L.
fn plus_l(s: &[u8]) -> [u8; 32] {
    let l = L;
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s[i]) + u16::from(l[i]) + carry;
        out[i] = (v & 0xff) as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 256 bits (S < L < 2^253)");
    out
}

/// The first alias `y + p` (y < 19) that decodes to a curve point that is
/// not of small order.
fn alias_of_a_point() -> [u8; 32] {
    (2u8..19)
        .map(y_plus_p)
        .find(|b| {
            CompressedEdwardsY(*b)
                .decompress()
                .is_some_and(|p| !p.is_small_order())
        })
        .expect("some alias y + p decodes to a point of large order")
}

/// The crafted signature vectors: the cases where Ed25519 verifiers
/// disagree, and the rule's verdict on each.
fn crafted(base: &[u8]) -> Vec<Crafted> {
    let t8 = EIGHT_TORSION[1];
    let a = Scalar::from_bytes_mod_order_wide(&[3; 64]);
    let r = Scalar::from_bytes_mod_order_wide(&[4; 64]);
    let zero = EdwardsPoint::default();
    let enc = |p: EdwardsPoint| p.compress().to_bytes();
    let v = |name: &str, construction: &str, bytes: Vec<u8>, expected: &str| Crafted {
        name: name.into(),
        construction: construction.into(),
        now: NOW,
        zip215: if zip215_holds(&bytes) {
            "valid"
        } else {
            "invalid"
        }
        .into(),
        bytes: hex::encode(bytes),
        expected: expected.into(),
    };
    let mut out = Vec::new();

    // A key with a torsion component, signed consistently; the nonce is
    // the first r + i whose challenge is not a multiple of 8, so that a
    // cofactorless verifier refuses it.
    let key = enc(EdwardsPoint::mul_base(&a) + t8);
    let bytes = (0u64..)
        .map(|i| {
            let ri = r + Scalar::from(i);
            with_key_and_signature(base, key, &|m| sign_by_hand(a, key, ri, zero, m))
        })
        .find(|b| {
            let n = b.len();
            let r_enc: [u8; 32] = b[n - 64..n - 32].try_into().expect("32");
            let input = [SIGN_DOMAIN, &b[..n - 64]].concat();
            !challenge(&r_enc, &key, &input).as_bytes()[0].is_multiple_of(8)
        })
        .expect("a nonce");
    out.push(v(
        "key_with_torsion_component",
        "A = aB + T (T of order 8), R = rB, S = r + k·a; k not a multiple of 8, so only the cofactored equation holds",
        bytes,
        "valid",
    ));
    let bytes = with_key_and_signature(base, enc(EdwardsPoint::mul_base(&a)), &|m| {
        sign_by_hand(a, enc(EdwardsPoint::mul_base(&a)), r, t8, m)
    });
    out.push(v(
        "r_with_torsion_component",
        "A = aB, R = rB + T (T of order 8), S = r + k·a: only the cofactored equation holds",
        bytes,
        "valid",
    ));
    let key = enc(t8);
    let bytes = with_key_and_signature(base, key, &|m| sign_by_hand(Scalar::ZERO, key, r, zero, m));
    out.push(v(
        "small_order_key",
        "A = T (order 8), R = rB, S = r: the cofactored equation holds, the key is of small order",
        bytes,
        "bad_signature",
    ));
    let key = enc(EdwardsPoint::mul_base(&a));
    let bytes = with_key_and_signature(base, key, &|m| sign_by_hand(a, key, Scalar::ZERO, t8, m));
    out.push(v(
        "small_order_r",
        "A = aB, R = T (order 8), S = k·a: the cofactored equation holds, R is of small order",
        bytes,
        "bad_signature",
    ));
    let signer = SigningKey::from_bytes(&[5; 32]);
    let key = signer.verifying_key().to_bytes();
    let bytes = with_key_and_signature(base, key, &|m| {
        let mut sig = signer.sign(m).to_bytes();
        let wide = plus_l(&sig[32..]);
        sig[32..].copy_from_slice(&wide);
        sig
    });
    out.push(v(
        "s_not_canonical",
        "an honest Ed25519 signature with S replaced by S + L",
        bytes,
        "bad_signature",
    ));
    let alias = alias_of_a_point();
    let bytes = with_key_and_signature(base, alias, &|m| signer.sign(m).to_bytes());
    out.push(v(
        "key_not_canonical",
        "A encoded with y + p (y < 19), a point of large order; refused for its encoding",
        bytes,
        "bad_signature",
    ));
    let bytes = with_key_and_signature(base, key, &|m| {
        let mut sig = signer.sign(m).to_bytes();
        sig[..32].copy_from_slice(&alias);
        sig
    });
    out.push(v(
        "r_not_canonical",
        "R encoded with y + p (y < 19); refused for its encoding",
        bytes,
        "bad_signature",
    ));
    let bytes = with_key_and_signature(base, key, &|m| {
        let mut sig = signer.sign(m).to_bytes();
        let r_pt = CompressedEdwardsY(sig[..32].try_into().expect("32"))
            .decompress()
            .expect("R");
        sig[..32].copy_from_slice(&enc(r_pt + t8));
        sig
    });
    out.push(v(
        "r_moved_by_torsion",
        "an honest signature with T (order 8) added to R by a third party: k changes, the equation fails",
        bytes,
        "bad_signature",
    ));

    // What a ZIP-215 verifier accepts and this rule refuses: the cofactored
    // equation holds, but an encoding is not canonical or a point is of
    // small order.
    let identity_y_plus_p = y_plus_p(1);
    let bytes = with_key_and_signature(base, identity_y_plus_p, &|_| {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&identity_y_plus_p);
        sig
    });
    out.push(v(
        "identity_key_and_r_encoded_y_plus_p",
        "A = R = the identity encoded with y = 1 + p, S = 0: the cofactored equation holds for any message; A and R are not canonical and of small order",
        bytes,
        "bad_signature",
    ));
    let key = enc(EdwardsPoint::mul_base(&a));
    let order_4 = y_plus_p(0);
    let bytes = with_key_and_signature(base, key, &|m| {
        let k = challenge(&order_4, &key, m);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&order_4);
        sig[32..].copy_from_slice((k * a).as_bytes());
        sig
    });
    out.push(v(
        "order_4_r_encoded_y_plus_p",
        "A = aB, R = a point of order 4 encoded with y = 0 + p, S = k·a: the cofactored equation holds; R is not canonical and of small order",
        bytes,
        "bad_signature",
    ));
    let mut identity_sign_bit = [0u8; 32];
    identity_sign_bit[0] = 1;
    identity_sign_bit[31] = 0x80;
    let bytes = with_key_and_signature(base, identity_sign_bit, &|m| {
        sign_by_hand(Scalar::ZERO, identity_sign_bit, r, zero, m)
    });
    out.push(v(
        "identity_key_sign_bit_set",
        "A = the identity encoded with y = 1 and the sign bit set (x = 0), R = rB, S = r: even the cofactorless equation holds; A is not canonical and of small order",
        bytes,
        "bad_signature",
    ));
    let identity = enc(zero);
    let bytes = with_key_and_signature(base, identity, &|m| {
        sign_by_hand(Scalar::ZERO, identity, r, zero, m)
    });
    out.push(v(
        "identity_key",
        "A = the identity, canonically encoded, R = rB, S = r: even the cofactorless equation holds; A is of small order",
        bytes,
        "bad_signature",
    ));
    out
}

/// The encoding of `y + p` (`y < 19`) with the sign bit clear.
fn y_plus_p(y: u8) -> [u8; 32] {
    let mut b = [0xffu8; 32];
    b[0] = 0xed + y;
    b[31] = 0x7f;
    b
}

/// The signature of report `bytes` under the ZIP-215 rule: `A` and `R`
/// decoded leniently (any `y`, reduced mod p; `x = 0` with the sign bit
/// set), small-order points allowed, `S < L`, `k` over the bytes as
/// received, and the cofactored equation `[8]([S]B − R − [k]A) = 0`.
fn zip215_holds(bytes: &[u8]) -> bool {
    let n = bytes.len();
    let p = usize::from(bytes[2]);
    let a_enc: [u8; 32] = bytes[8 + p..40 + p].try_into().expect("32");
    let r_enc: [u8; 32] = bytes[n - 64..n - 32].try_into().expect("32");
    let s_enc: [u8; 32] = bytes[n - 32..].try_into().expect("32");
    let (Some(a), Some(r)) = (
        CompressedEdwardsY(a_enc).decompress(),
        CompressedEdwardsY(r_enc).decompress(),
    ) else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_enc)) else {
        return false;
    };
    let input = [SIGN_DOMAIN, &bytes[..n - 64]].concat();
    let k = challenge(&r_enc, &a_enc, &input);
    (EdwardsPoint::mul_base(&s) - r - k * a)
        .mul_by_cofactor()
        .is_identity()
}

fn read<T: for<'de> Deserialize<'de>>(name: &str) -> File<T> {
    let text = std::fs::read_to_string(dir().join(name)).expect("vector file exists");
    serde_json::from_str(&text).expect("vector file parses")
}

#[test]
fn vectors_agree_with_the_code() {
    let (valid, invalid) = generate();
    let signatures = File {
        description: "Reports whose signatures were made by hand at the edges of the signature rule (docs/protocol.md §1.6: cofactored equation, canonical S, A and R, small-order A and R refused). validate(bytes, now) must accept those expected \"valid\" and reject the others with the given reason; batch and single verification must agree.".into(),
        policy: valid.policy.clone(),
        vectors: crafted(&hex::decode(&valid.vectors[0].bytes).expect("hex")),
    };
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
        write(
            "signatures.json",
            serde_json::to_string_pretty(&signatures).expect("json"),
        );
    }
    let on_disk_signatures: File<Crafted> = read("signatures.json");
    assert_eq!(
        on_disk_signatures, signatures,
        "signatures.json no longer matches the code"
    );
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

    // Crafted signatures: the single check gives the expected verdict, and
    // batches give the same, whatever the batch's other reports and its
    // random coefficients.
    let mut expected = Vec::new();
    let mut inputs = Vec::new();
    for v in &on_disk_signatures.vectors {
        let bytes = hex::decode(&v.bytes).expect("hex");
        let verdict = match validate(&bytes, v.now) {
            Ok(_) => "valid",
            Err(e) => e.reason(),
        };
        assert_eq!(verdict, v.expected, "{}", v.name);
        let zip215 = if zip215_holds(&bytes) {
            "valid"
        } else {
            "invalid"
        };
        assert_eq!(zip215, v.zip215, "{}: ZIP-215 verdict", v.name);
        expected.push(v.expected.clone());
        inputs.push(bytes);
    }
    for v in &on_disk_valid.vectors {
        expected.push("valid".into());
        inputs.push(hex::decode(&v.bytes).expect("hex"));
    }
    let now = on_disk_signatures.vectors[0].now;
    for seed in 0..4 {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let got: Vec<String> = validate_batch(&inputs, now, &Policy::default(), &mut rng)
            .iter()
            .map(|r| match r {
                Ok(_) => "valid".to_owned(),
                Err(e) => e.reason().to_owned(),
            })
            .collect();
        assert_eq!(got, expected, "batch with seed {seed}");
        // Only the valid ones, in one batch: it holds as a whole.
        let good: Vec<&Vec<u8>> = inputs
            .iter()
            .zip(&expected)
            .filter(|(_, e)| *e == "valid")
            .map(|(b, _)| b)
            .collect();
        assert!(validate_batch(&good, now, &Policy::default(), &mut rng)
            .iter()
            .all(|r| r.is_ok()));
    }
    assert!(on_disk_signatures
        .vectors
        .iter()
        .any(|v| v.expected == Rejection::BadSignature.reason()));
    // The canonical-encoding and small-order checks are tested by vectors
    // that a ZIP-215 verifier accepts: without those checks they would pass.
    for name in [
        "small_order_key",
        "small_order_r",
        "identity_key_and_r_encoded_y_plus_p",
        "order_4_r_encoded_y_plus_p",
        "identity_key_sign_bit_set",
        "identity_key",
    ] {
        let v = on_disk_signatures
            .vectors
            .iter()
            .find(|v| v.name == name)
            .expect(name);
        assert_eq!(
            (v.zip215.as_str(), v.expected.as_str()),
            ("valid", "bad_signature"),
            "{name}"
        );
    }
}
