//! Anonymous rate-limited tokens (docs/protocol.md §8.5): issuance,
//! the token format, tokened reports, the double-spend set, and the
//! vectors in `docs/test-vectors/tokens.json`.
//!
//! Regenerate the vectors (only when the format deliberately changes) with
//! `RONDE_WRITE_VECTORS=1 cargo test -p ronde-protocol --test tokens`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ronde_protocol::token::{
    self, blind, challenge_digest, finalize, min_identities, token_nonce, IssueRequest,
    IssueResponse, Issuer, Seen, SeenTokens, Token, TokenError, TokenKey, TokenKeys, NK,
    PERIOD_SECS, TOKEN_LEN,
};
use ronde_protocol::{
    validate_batch_with_keys, validate_with, validate_with_keys, Category, Cell, Draft, Policy,
    Rejection, MAX_REPORT_SIZE,
};
use serde::{Deserialize, Serialize};

/// A period start (2026-09-21 00:00 UTC).
const PERIOD: u64 = 1_790_035_200;
const NOW: u64 = PERIOD + 3_600;

fn issuer() -> &'static Issuer {
    static I: OnceLock<Issuer> = OnceLock::new();
    I.get_or_init(|| {
        // The vectors' issuer key, if they exist (RSA key generation is the
        // slow part of these tests); else a fresh one from a fixed seed.
        if let Ok(v) = read_vectors() {
            return Issuer::from_der(PERIOD, &hex::decode(v.issuer_secret_pkcs8).unwrap()).unwrap();
        }
        Issuer::generate(PERIOD, &mut ChaCha20Rng::seed_from_u64(14)).expect("keygen")
    })
}

fn keys() -> TokenKeys {
    TokenKeys::new(vec![issuer().key().clone()])
}

fn policy() -> Policy {
    Policy {
        min_difficulty: 8,
        ..Policy::default()
    }
}

/// Issue one token for `key`'s public key, through the wire formats.
fn issue_for(key: &SigningKey, rng: &mut ChaCha20Rng) -> Token {
    let issuer = issuer();
    let (pending, blinded) = blind(issuer.key(), &key.verifying_key().to_bytes(), rng).unwrap();
    let req = IssueRequest {
        key_id: issuer.key().key_id(),
        proof: vec![1, 2, 3],
        blinded: vec![blinded],
    };
    let req = IssueRequest::from_bytes(&req.to_bytes()).unwrap();
    let sigs: Vec<[u8; NK]> = req
        .blinded
        .iter()
        .map(|m| issuer.sign(m).unwrap())
        .collect();
    let resp = IssueResponse::from_bytes(&IssueResponse::Issued(sigs).to_bytes()).unwrap();
    let IssueResponse::Issued(sigs) = resp else {
        panic!("not issued")
    };
    finalize(issuer.key(), &pending, &sigs[0]).unwrap()
}

fn draft() -> Draft {
    Draft::new(
        Category::Harassment,
        "u09tunq".parse::<Cell>().unwrap(),
        NOW,
    )
}

#[test]
fn a_tokened_report_validates_with_the_city_key_only() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let key = SigningKey::generate(&mut rng);
    let token = issue_for(&key, &mut rng);
    let report = draft().seal_with_token(&key, token).unwrap();
    let bytes = report.to_bytes();
    assert_eq!(bytes.len(), 41 + 7 + TOKEN_LEN + 64);
    assert!(bytes.len() <= MAX_REPORT_SIZE);
    let v = validate_with_keys(&bytes, NOW, &policy(), &keys()).unwrap();
    assert_eq!(v.report(), &report);
    // Without the key: unknown, ignored rather than punished.
    let e = validate_with(&bytes, NOW, &policy()).unwrap_err();
    assert_eq!(e, Rejection::UnknownTokenKey);
    assert!(!e.is_misbehaviour());
}

#[test]
fn a_token_cannot_be_moved_to_another_report_key() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let key = SigningKey::generate(&mut rng);
    let token = issue_for(&key, &mut rng);
    // Sealing with another key is refused…
    let other = SigningKey::generate(&mut rng);
    assert!(draft().seal_with_token(&other, token.clone()).is_err());
    // …and a report forged around it (the token copied from a gossiped
    // report into one signed by another key) is a bad token.
    let honest = draft().seal_with_token(&key, token).unwrap().to_bytes();
    let pk_at = 3 + 7 + 4 + 1;
    let mut forged = honest.clone();
    forged[pk_at..pk_at + 32].copy_from_slice(&other.verifying_key().to_bytes());
    assert_eq!(
        validate_with_keys(&forged, NOW, &policy(), &keys()).unwrap_err(),
        Rejection::BadToken
    );
}

#[test]
fn a_tampered_or_misplaced_token_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let key = SigningKey::generate(&mut rng);
    let token = issue_for(&key, &mut rng);
    let pk = key.verifying_key().to_bytes();
    let k = keys();
    assert!(k.verify(&token, &pk, NOW).is_ok());
    let mut t = token.clone();
    t.authenticator[100] ^= 1;
    assert_eq!(k.verify(&t, &pk, NOW), Err(TokenError::BadToken));
    let mut t = token.clone();
    t.challenge_digest = challenge_digest(PERIOD + PERIOD_SECS);
    assert_eq!(k.verify(&t, &pk, NOW), Err(TokenError::BadToken));
    // A report of the next day cannot spend yesterday's token.
    assert_eq!(
        k.verify(&token, &pk, PERIOD + PERIOD_SECS),
        Err(TokenError::WrongPeriod)
    );
    let mut t = token;
    t.key_id[0] ^= 1;
    assert_eq!(k.verify(&t, &pk, NOW), Err(TokenError::UnknownKey));
}

#[test]
fn the_token_format_is_exact() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let key = SigningKey::generate(&mut rng);
    let token = issue_for(&key, &mut rng);
    let b = token.to_bytes();
    assert_eq!(b.len(), TOKEN_LEN);
    assert_eq!(&b[..2], &[0, 2]);
    assert_eq!(Token::from_bytes(&b).unwrap(), token);
    assert_eq!(
        Token::from_bytes(&b[..TOKEN_LEN - 1]),
        Err(TokenError::Truncated)
    );
    let mut long = b.clone();
    long.push(0);
    assert_eq!(Token::from_bytes(&long), Err(TokenError::TrailingBytes(1)));
    let mut other = b;
    other[1] = 1;
    assert_eq!(
        Token::from_bytes(&other),
        Err(TokenError::UnsupportedVersion(1))
    );
    assert_eq!(token.id(), token_nonce(&key.verifying_key().to_bytes()));
}

/// The double spend: the same token on two different reports (one key, two
/// reports). Each validates alone; the node's seen-set refuses the second.
#[test]
fn a_token_spent_twice_is_refused_while_live() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let key = SigningKey::generate(&mut rng);
    let token = issue_for(&key, &mut rng);
    let first = draft().seal_with_token(&key, token.clone()).unwrap();
    let second = Draft {
        category: Category::Following,
        ..draft()
    }
    .seal_with_token(&key, token)
    .unwrap();
    assert_ne!(first.id(), second.id());
    let k = keys();
    let a = validate_with_keys(&first.to_bytes(), NOW, &policy(), &k).unwrap();
    let b = validate_with_keys(&second.to_bytes(), NOW, &policy(), &k).unwrap();
    let mut seen = SeenTokens::new(10);
    let ta = a.report().token().unwrap().id();
    let tb = b.report().token().unwrap().id();
    assert_eq!(seen.insert(ta, a.expires_at(), NOW), Seen::New);
    assert_eq!(seen.insert(tb, b.expires_at(), NOW + 60), Seen::Reused);
    // Once the report that spent it expired, the id is forgotten (the
    // token's own period bounds any later spend: WrongPeriod).
    assert_eq!(seen.insert(tb, b.expires_at(), a.expires_at()), Seen::New);
}

#[test]
fn the_seen_set_is_bounded_and_fails_closed() {
    let mut seen = SeenTokens::new(2);
    assert_eq!(seen.insert([1; 32], NOW + 60, NOW), Seen::New);
    assert_eq!(seen.insert([2; 32], NOW + 120, NOW), Seen::New);
    assert_eq!(seen.insert([3; 32], NOW + 60, NOW), Seen::Full);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen.insert([1; 32], NOW + 60, NOW + 1), Seen::Reused);
    assert_eq!(seen.insert([3; 32], NOW + 200, NOW + 60), Seen::New);
    assert!(!seen.contains(&[1; 32], NOW + 60));
}

#[test]
fn batch_and_single_agree_on_tokened_reports() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let key = SigningKey::generate(&mut rng);
    let good = draft()
        .seal_with_token(&key, issue_for(&key, &mut rng))
        .unwrap()
        .to_bytes();
    let mut bad = good.clone();
    bad[100] ^= 1;
    let pow = draft().seal(8, &mut rng).unwrap().to_bytes();
    let items = vec![good, bad, pow];
    let k = keys();
    let batch: Vec<_> = validate_batch_with_keys(&items, NOW, &policy(), &k, &mut rng)
        .into_iter()
        .map(|r| r.map(|v| v.id()))
        .collect();
    let single: Vec<_> = items
        .iter()
        .map(|b| validate_with_keys(b, NOW, &policy(), &k).map(|v| v.id()))
        .collect();
    assert_eq!(batch, single);
    assert!(batch[0].is_ok() && batch[2].is_ok());
    assert_eq!(batch[1], Err(Rejection::BadToken));
}

#[test]
fn issuance_messages_are_bounded() {
    let req = IssueRequest {
        key_id: [7; 32],
        proof: vec![9; 8],
        blinded: vec![[1; NK]; 24],
    };
    let b = req.to_bytes();
    assert_eq!(IssueRequest::from_bytes(&b).unwrap(), req);
    let mut long = b.clone();
    long.push(0);
    assert!(IssueRequest::from_bytes(&long).is_err());
    let too_many = IssueRequest {
        blinded: vec![[1; NK]; 25],
        ..req.clone()
    };
    assert_eq!(
        IssueRequest::from_bytes(&too_many.to_bytes()),
        Err(TokenError::BadCount)
    );
    let mut v2 = b;
    v2[0] = 2;
    assert_eq!(
        IssueRequest::from_bytes(&v2),
        Err(TokenError::UnsupportedVersion(2))
    );
    for r in [
        IssueResponse::Refused,
        IssueResponse::QuotaUsed,
        IssueResponse::UnknownKey,
        IssueResponse::Unavailable,
        IssueResponse::Issued(vec![[3; NK]; 2]),
        IssueResponse::Issued(vec![[4; NK]; 24]),
    ] {
        assert_eq!(IssueResponse::from_bytes(&r.to_bytes()).unwrap(), r);
    }
    assert!(IssueResponse::from_bytes(&[1, 5]).is_err());
    assert!(IssueResponse::from_bytes(&[1, 1, 0]).is_err());
}

/// The issuer learns only blinded messages: the token a phone spends
/// shares no bytes with anything the issuer saw or sent, so nothing the
/// issuer keeps (the request, its answer, the connection it came on) can
/// be matched to the report that carries it.
#[test]
fn the_issuer_sees_nothing_of_the_spent_token() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let issuer = issuer();
    let key = SigningKey::generate(&mut rng);
    let pk = key.verifying_key().to_bytes();
    let (pending, blinded) = blind(issuer.key(), &pk, &mut rng).unwrap();
    let sig = issuer.sign(&blinded).unwrap();
    let token = finalize(issuer.key(), &pending, &sig).unwrap();
    let report = draft()
        .seal_with_token(&key, token.clone())
        .unwrap()
        .to_bytes();
    for seen in [&blinded[..], &sig[..]] {
        for w in seen.windows(16) {
            assert!(
                !report.windows(16).any(|r| r == w),
                "a 16-byte window of what the issuer saw is in the report"
            );
        }
    }
    // Blinding the same token input twice gives unrelated messages.
    let (_, again) = blind(issuer.key(), &pk, &mut rng).unwrap();
    assert_ne!(again, blinded);
}

#[test]
fn corroboration_lower_bound() {
    assert_eq!(min_identities(0), 0);
    assert_eq!(min_identities(1), 1);
    assert_eq!(min_identities(24), 1);
    assert_eq!(min_identities(25), 2);
    assert_eq!(min_identities(49), 3);
}

#[test]
fn a_token_key_must_be_an_rsa_2048_pss_sha384_spki() {
    let spki = issuer().key().spki().to_vec();
    assert!(TokenKey::from_spki(PERIOD, &spki).is_ok());
    assert_eq!(
        TokenKey::from_spki(PERIOD + 1, &spki),
        Err(TokenError::BadKey)
    );
    for i in [0, 10, 30, spki.len() - 1] {
        let mut bad = spki.clone();
        bad[i] ^= 0x40;
        if let Ok(k) = TokenKey::from_spki(PERIOD, &bad) {
            // A flip inside the modulus gives another (useless) key; it
            // must then re-encode to the bytes read.
            assert_eq!(k.spki(), &bad[..]);
        }
    }
    assert!(TokenKey::from_spki(PERIOD, &spki[..spki.len() - 1]).is_err());
    assert!(TokenKey::from_spki(PERIOD, &[0u8; 801]).is_err());
}

// ---- vectors ----

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Vectors {
    description: String,
    period_start: u64,
    issuer_secret_pkcs8: String,
    token_key_spki: String,
    token_key_id: String,
    challenge: String,
    challenge_digest: String,
    tokens: Vec<TokenVector>,
    reports: Vec<ReportVector>,
    issue_request: String,
    issue_response: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct TokenVector {
    name: String,
    /// The report one-time key the token is bound to (hex).
    report_public_key: String,
    observed_at: u64,
    bytes: String,
    /// "valid" or the `TokenError` variant.
    expected: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct ReportVector {
    name: String,
    secret_key: String,
    now: u64,
    bytes: String,
    /// "valid" or the rejection reason.
    expected: String,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/test-vectors")
}

fn read_vectors() -> Result<Vectors, String> {
    let text = std::fs::read_to_string(dir().join("tokens.json")).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn variant(e: &impl std::fmt::Debug) -> String {
    let s = format!("{e:?}");
    s.split(['(', ' ', '{']).next().unwrap_or("").to_owned()
}

fn verdict(r: Result<[u8; 32], TokenError>) -> String {
    match r {
        Ok(_) => "valid".into(),
        Err(e) => variant(&e),
    }
}

fn fresh_vectors() -> Vectors {
    let mut rng = ChaCha20Rng::seed_from_u64(1414);
    let issuer = issuer();
    let key = SigningKey::from_bytes(&[0x42; 32]);
    let pk = key.verifying_key().to_bytes();
    let token = issue_for(&key, &mut rng);
    let mut tokens = vec![TokenVector {
        name: "valid".into(),
        report_public_key: hex::encode(pk),
        observed_at: NOW,
        bytes: hex::encode(token.to_bytes()),
        expected: "valid".into(),
    }];
    let mut push = |name: &str, pk: [u8; 32], at: u64, t: Vec<u8>, expected: &str| {
        tokens.push(TokenVector {
            name: name.into(),
            report_public_key: hex::encode(pk),
            observed_at: at,
            bytes: hex::encode(t),
            expected: expected.into(),
        })
    };
    let b = token.to_bytes();
    let mut t = b.clone();
    t[2 + 32 + 32 + 32 + 5] ^= 1;
    push("authenticator_flipped", pk, NOW, t, "BadToken");
    push("other_report_key", [0x11; 32], NOW, b.clone(), "BadToken");
    push(
        "report_of_next_period",
        pk,
        PERIOD + PERIOD_SECS,
        b.clone(),
        "WrongPeriod",
    );
    push(
        "report_of_previous_period",
        pk,
        PERIOD - 60,
        b.clone(),
        "WrongPeriod",
    );
    let mut t = b.clone();
    t[2 + 32 + 32] ^= 1;
    push("unknown_key_id", pk, NOW, t, "UnknownKey");
    let mut t = b.clone();
    t[2 + 32] ^= 1;
    push("challenge_of_nothing", pk, NOW, t, "BadToken");
    let mut t = b.clone();
    t[1] = 1;
    push("token_type_1", pk, NOW, t, "UnsupportedVersion");
    push(
        "truncated",
        pk,
        NOW,
        b[..TOKEN_LEN - 1].to_vec(),
        "Truncated",
    );
    let mut t = b.clone();
    t.push(0);
    push("trailing_byte", pk, NOW, t, "TrailingBytes");

    let report = draft().seal_with_token(&key, token.clone()).unwrap();
    let rb = report.to_bytes();
    let mut reports = vec![ReportVector {
        name: "tokened_report".into(),
        secret_key: hex::encode(key.to_bytes()),
        now: NOW,
        bytes: hex::encode(&rb),
        expected: "valid".into(),
    }];
    let mut bad = rb.clone();
    bad[60] ^= 1;
    reports.push(ReportVector {
        name: "token_flipped_in_report".into(),
        secret_key: hex::encode(key.to_bytes()),
        now: NOW,
        bytes: hex::encode(&bad),
        expected: "bad_token".into(),
    });
    let mut bad = rb.clone();
    let sig_at = bad.len() - 10;
    bad[sig_at] ^= 1;
    reports.push(ReportVector {
        name: "signature_flipped".into(),
        secret_key: hex::encode(key.to_bytes()),
        now: NOW,
        bytes: hex::encode(&bad),
        expected: "bad_signature".into(),
    });
    let mut bad = rb.clone();
    bad.push(0);
    reports.push(ReportVector {
        name: "trailing_byte".into(),
        secret_key: hex::encode(key.to_bytes()),
        now: NOW,
        bytes: hex::encode(&bad),
        expected: "malformed".into(),
    });
    let mut bad = rb.clone();
    bad.truncate(rb.len() - 1);
    reports.push(ReportVector {
        name: "truncated".into(),
        secret_key: hex::encode(key.to_bytes()),
        now: NOW,
        bytes: hex::encode(&bad),
        expected: "malformed".into(),
    });
    let issued_for_other = issue_for(&SigningKey::from_bytes(&[0x43; 32]), &mut rng);
    let mut moved = rb.clone();
    moved[48..48 + TOKEN_LEN].copy_from_slice(&issued_for_other.to_bytes());
    reports.push(ReportVector {
        name: "token_of_another_key".into(),
        secret_key: hex::encode(key.to_bytes()),
        now: NOW,
        bytes: hex::encode(&moved),
        expected: "bad_token".into(),
    });

    let (_, blinded) = blind(issuer.key(), &pk, &mut rng).unwrap();
    let req = IssueRequest {
        key_id: issuer.key().key_id(),
        proof: 77u64.to_be_bytes().to_vec(),
        blinded: vec![blinded],
    };
    let resp = IssueResponse::Issued(vec![issuer.sign(&blinded).unwrap()]);
    Vectors {
        description: "Privacy Pass tokens (RFC 9578 type 2) of docs/protocol.md §8.5: the \
            issuer's test key (PKCS#8, never a real key) and its SPKI, id and period; the \
            period's TokenChallenge and digest; tokens checked with TokenKeys::verify against \
            report_public_key and observed_at (expected: valid or the TokenError variant); \
            tokened reports checked with validate_with_keys at now under the vector key \
            (expected: valid or the rejection reason); one issuance request and its answer."
            .into(),
        period_start: PERIOD,
        issuer_secret_pkcs8: hex::encode(issuer.to_der().unwrap()),
        token_key_spki: hex::encode(issuer.key().spki()),
        token_key_id: hex::encode(issuer.key().key_id()),
        challenge: hex::encode(token::token_challenge(PERIOD)),
        challenge_digest: hex::encode(challenge_digest(PERIOD)),
        tokens,
        reports,
        issue_request: hex::encode(req.to_bytes()),
        issue_response: hex::encode(resp.to_bytes()),
    }
}

#[test]
fn token_vectors() {
    if std::env::var_os("RONDE_WRITE_VECTORS").is_some() {
        let json = serde_json::to_string_pretty(&fresh_vectors()).unwrap();
        std::fs::write(dir().join("tokens.json"), json + "\n").unwrap();
    }
    let v = read_vectors().expect("run with RONDE_WRITE_VECTORS=1");
    let key =
        TokenKey::from_spki(v.period_start, &hex::decode(&v.token_key_spki).unwrap()).unwrap();
    assert_eq!(hex::encode(key.key_id()), v.token_key_id);
    assert_eq!(
        hex::encode(token::token_challenge(v.period_start)),
        v.challenge
    );
    assert_eq!(
        hex::encode(challenge_digest(v.period_start)),
        v.challenge_digest
    );
    let issuer = Issuer::from_der(
        v.period_start,
        &hex::decode(&v.issuer_secret_pkcs8).unwrap(),
    )
    .unwrap();
    assert_eq!(issuer.key(), &key);
    let keys = TokenKeys::new(vec![key]);
    for t in &v.tokens {
        let pk: [u8; 32] = hex::decode(&t.report_public_key)
            .unwrap()
            .try_into()
            .unwrap();
        let got = Token::from_bytes(&hex::decode(&t.bytes).unwrap())
            .and_then(|tok| keys.verify(&tok, &pk, t.observed_at));
        assert_eq!(verdict(got), t.expected, "token vector {}", t.name);
    }
    for r in &v.reports {
        let got = validate_with_keys(&hex::decode(&r.bytes).unwrap(), r.now, &policy(), &keys);
        let got = match got {
            Ok(_) => "valid".to_owned(),
            Err(e) => e.reason().to_owned(),
        };
        assert_eq!(got, r.expected, "report vector {}", r.name);
    }
    let req = IssueRequest::from_bytes(&hex::decode(&v.issue_request).unwrap()).unwrap();
    assert_eq!(hex::encode(req.to_bytes()), v.issue_request);
    let resp = IssueResponse::from_bytes(&hex::decode(&v.issue_response).unwrap()).unwrap();
    assert_eq!(hex::encode(resp.to_bytes()), v.issue_response);
    // Blind RSA signing is deterministic: the issuer's answer is reproducible.
    let IssueResponse::Issued(sigs) = resp else {
        panic!("vector response is not Issued")
    };
    assert_eq!(issuer.sign(&req.blinded[0]).unwrap(), sigs[0]);
}
