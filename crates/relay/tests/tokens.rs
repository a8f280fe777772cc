//! The relay's token issuer (issue 14 §3, docs/protocol.md §8.5): a phone
//! gets a batch under the proof-of-work-and-quota policy, spends a token on
//! a report that any node verifies with the relay's published key; the
//! policy refuses a bad proof and a second batch on the same connection;
//! and what the relay keeps of an issuance cannot be linked to the report
//! that spends the token.

use ed25519_dalek::SigningKey;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ronde_protocol::token::{
    blind, finalize, IssueRequest, IssueResponse, Issuer, PendingToken, Token, TokenKeys,
    PERIOD_SECS,
};
use ronde_protocol::{cell_for, validate_with_keys, Category, Draft, Policy};
use ronde_relay::tokens::{solve_issue_work, Identity, PowQuota, TokenIssuer};

const PERIOD: u64 = 1_790_035_200;
const NOW: u64 = PERIOD + 3_600;
/// Low in tests: the demo's is `DEFAULT_ISSUE_DIFFICULTY`.
const D: u8 = 8;

/// The test key of `docs/test-vectors/tokens.json`.
fn vector_issuer() -> Issuer {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/test-vectors/tokens.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("tokens.json")).expect("json");
    let der = hex::decode(v["issuer_secret_pkcs8"].as_str().expect("key")).expect("hex");
    Issuer::from_der(PERIOD, &der).expect("issuer")
}

fn relay() -> TokenIssuer {
    let mut t = TokenIssuer::new(Box::new(PowQuota::new(D, 24)));
    t.insert_key(vector_issuer());
    t
}

/// What a phone does: draw `n` report keys, blind a token for each, prove
/// the work. Returns the keys, what to keep, and the request's bytes.
fn phone_request(
    relay: &TokenIssuer,
    n: usize,
    rng: &mut ChaCha20Rng,
) -> (Vec<SigningKey>, Vec<PendingToken>, Vec<u8>) {
    let key = relay.token_keys()[0].clone();
    let mut keys = Vec::new();
    let mut pending = Vec::new();
    let mut blinded = Vec::new();
    for _ in 0..n {
        let k = SigningKey::generate(rng);
        let (p, b) = blind(&key, &k.verifying_key().to_bytes(), rng).expect("blind");
        keys.push(k);
        pending.push(p);
        blinded.push(b);
    }
    let mut req = IssueRequest {
        key_id: key.key_id(),
        proof: vec![],
        blinded,
    };
    req.proof = solve_issue_work(&req, D, 0);
    (keys, pending, req.to_bytes())
}

fn tokens(relay: &TokenIssuer, pending: &[PendingToken], response: &[u8]) -> Vec<Token> {
    let key = relay.token_keys()[0].clone();
    let IssueResponse::Issued(sigs) = IssueResponse::from_bytes(response).expect("response") else {
        panic!("not issued: {:?}", IssueResponse::from_bytes(response))
    };
    pending
        .iter()
        .zip(&sigs)
        .map(|(p, s)| finalize(&key, p, s).expect("finalize"))
        .collect()
}

fn report(key: &SigningKey, token: Token) -> Vec<u8> {
    let cell = cell_for(48.8156, 2.3844, 7).expect("cell");
    Draft::new(Category::Harassment, cell, NOW)
        .seal_with_token(key, token)
        .expect("seal")
        .to_bytes()
}

#[test]
fn a_phone_gets_a_batch_and_any_node_verifies_its_reports() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut relay = relay();
    let (keys, pending, req) = phone_request(&relay, 24, &mut rng);
    let resp = relay.handle(&Identity("conn-1".into()), &req, NOW);
    let toks = tokens(&relay, &pending, &resp);
    assert_eq!(toks.len(), 24);
    let node_keys = TokenKeys::new(relay.token_keys());
    for (k, t) in keys.iter().zip(toks) {
        validate_with_keys(&report(k, t), NOW, &Policy::default(), &node_keys)
            .expect("a node verifies the tokened report");
    }
}

#[test]
fn the_policy_refuses_a_bad_proof_and_a_second_batch_of_a_connection() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut relay = relay();
    let conn = Identity("conn-1".into());
    // No work: refused.
    let (_, _, req) = phone_request(&relay, 4, &mut rng);
    let mut lazy = IssueRequest::from_bytes(&req).expect("request");
    lazy.proof = vec![0; 8];
    if !matches!(
        IssueResponse::from_bytes(&relay.handle(&conn, &lazy.to_bytes(), NOW)),
        Ok(IssueResponse::Refused)
    ) {
        // The zero nonce happened to hold at this low difficulty: try another.
        lazy.proof = vec![0xff; 8];
        assert_eq!(
            IssueResponse::from_bytes(&relay.handle(&conn, &lazy.to_bytes(), NOW)),
            Ok(IssueResponse::Refused)
        );
    }
    // 20 then 4: granted; one more: the quota of 24 is used.
    for n in [20, 4] {
        let (_, _, req) = phone_request(&relay, n, &mut rng);
        assert!(matches!(
            IssueResponse::from_bytes(&relay.handle(&conn, &req, NOW)),
            Ok(IssueResponse::Issued(s)) if s.len() == n
        ));
    }
    let (_, _, req) = phone_request(&relay, 1, &mut rng);
    assert_eq!(
        IssueResponse::from_bytes(&relay.handle(&conn, &req, NOW)),
        Ok(IssueResponse::QuotaUsed)
    );
    // Another connection has its own quota.
    assert!(matches!(
        IssueResponse::from_bytes(&relay.handle(&Identity("conn-2".into()), &req, NOW)),
        Ok(IssueResponse::Issued(_))
    ));
    // Tokens of tomorrow are not issued today (the key is today's).
    let (_, _, req) = phone_request(&relay, 1, &mut rng);
    assert_eq!(
        IssueResponse::from_bytes(&relay.handle(&conn, &req, NOW + PERIOD_SECS)),
        Ok(IssueResponse::UnknownKey)
    );
    assert_eq!(relay.records().iter().map(|r| r.count).sum::<u32>(), 25);
}

/// The relay learns which connection received tokens, never which report
/// used one: all it keeps is (identity, period, count); the bytes it saw
/// (requests, its answers) share nothing with the report that spends a
/// token (besides the day's key id, common to every token of the day); and
/// RFC 9474 blinding makes a blinded message independent of the token it
/// becomes (the token input times a uniformly random `r^e mod n`), so the
/// relay's view is the same whichever connection a token came from.
#[test]
fn the_relay_learns_who_got_tokens_never_which_report_used_one() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut relay = relay();
    let mut seen_by_relay: Vec<Vec<u8>> = Vec::new();
    let mut spent = Vec::new();
    for conn in ["alice-connection", "bob-connection"] {
        let (keys, pending, req) = phone_request(&relay, 3, &mut rng);
        let resp = relay.handle(&Identity(conn.into()), &req, NOW);
        // What the relay saw and sent besides the period's key id (which
        // every token of the day carries): blinded messages, a proof of
        // work, blind signatures.
        let parsed = IssueRequest::from_bytes(&req).expect("request");
        seen_by_relay.extend(parsed.blinded.iter().map(|m| m.to_vec()));
        seen_by_relay.push(parsed.proof.clone());
        if let Ok(IssueResponse::Issued(sigs)) = IssueResponse::from_bytes(&resp) {
            seen_by_relay.extend(sigs.iter().map(|s| s.to_vec()));
        }
        let toks = tokens(&relay, &pending, &resp);
        spent.push(report(&keys[1], toks[1].clone()));
    }
    let records = relay.records();
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!((r.period, r.count), (PERIOD, 3));
    }
    let record_text = format!("{records:?}");
    for report in &spent {
        for seen in &seen_by_relay {
            for w in seen.windows(8) {
                assert!(
                    !report.windows(8).any(|r| r == w),
                    "8 bytes the relay saw at issuance appear in a spent report"
                );
            }
        }
        // Nothing of the report in what the relay keeps.
        for w in report.windows(8) {
            assert!(!record_text.contains(&hex::encode(w)));
        }
    }
}

#[test]
fn rotation_keeps_today_and_tomorrow() {
    let mut relay = TokenIssuer::new(Box::new(PowQuota::new(D, 24)));
    assert!(relay.rotate(NOW).expect("keys"));
    let periods: Vec<u64> = relay
        .token_keys()
        .iter()
        .map(|k| k.period_start())
        .collect();
    assert_eq!(periods, [PERIOD, PERIOD + PERIOD_SECS]);
    assert!(!relay.rotate(NOW + 60).expect("keys"));
    assert!(relay.rotate(NOW + PERIOD_SECS).expect("keys"));
    let periods: Vec<u64> = relay
        .token_keys()
        .iter()
        .map(|k| k.period_start())
        .collect();
    assert_eq!(periods, [PERIOD + PERIOD_SECS, PERIOD + 2 * PERIOD_SECS]);
}
