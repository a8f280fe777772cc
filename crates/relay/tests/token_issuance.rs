//! Tokens end to end through a real relay (issue 14 §3, docs/protocol.md
//! §8.5): a phone node reads the token key from the relay's signed
//! directory, asks the relay's node for a batch over `/ronde/token/1`
//! (blinded messages and a proof of work), unblinds the answer, reports
//! with a token, and the relay's node takes the tokened report; a second
//! batch on the same connection is over the quota. What the relay keeps
//! is only how many tokens the connection got.

mod common;

use common::*;
use ronde_node::{Clock, ManualClock};
use ronde_protocol::directory::verify_directory;
use ronde_protocol::report::SigningKey;
use ronde_protocol::token::{blind, finalize, IssueRequest, IssueResponse};
use ronde_protocol::Category;
use ronde_relay::tokens::{solve_issue_work, PowQuota};

/// Low in tests: the relay's default is `DEFAULT_ISSUE_DIFFICULTY` (25).
const D: u8 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_gets_tokens_from_the_relay_and_reports_with_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let config = relay_config(&dir.path().join("relay"));
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    relay.set_issuance_policy(Box::new(PowQuota::new(D, 4)));

    // The token key of today, from the relay's signed directory.
    let addr = relay.public_addr().expect("public listener");
    let bytes = reqwest::get(format!("http://{addr}/directory"))
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    let city = relay.city_key();
    let verified = verify_directory(&bytes, &city, clock.now(), None).expect("directory");
    let key = verified
        .directory()
        .token_keys
        .iter()
        .find(|k| k.period_start() <= clock.now() && clock.now() < k.period_start() + 86_400)
        .cloned()
        .expect("today's token key");

    let phone = start_node(&dir.path().join("phone"), &clock).await;
    connect_to_relay(&phone, &relay).await;

    // A batch of 3: report keys drawn first, one token blinded for each.
    let mut rng = rand::rngs::OsRng;
    let seeds: Vec<[u8; 32]> = (0..3u8).map(|i| [40 + i; 32]).collect();
    let mut pending = Vec::new();
    let mut blinded = Vec::new();
    for seed in &seeds {
        let pk = SigningKey::from_bytes(seed).verifying_key().to_bytes();
        let (p, b) = blind(&key, &pk, &mut rng).expect("blind");
        pending.push(p);
        blinded.push(b);
    }
    let mut request = IssueRequest {
        key_id: key.key_id(),
        proof: vec![],
        blinded,
    };
    request.proof = solve_issue_work(&request, D, 0);
    let answer = phone
        .request_tokens(relay.node().peer_id(), request)
        .await
        .expect("an answer");
    let IssueResponse::Issued(sigs) = answer else {
        panic!("not issued: {answer:?}")
    };
    let tokens: Vec<_> = pending
        .iter()
        .zip(&sigs)
        .map(|(p, s)| finalize(&key, p, s).expect("a valid token"))
        .collect();

    // A second batch of 3 on the same connection: over the quota of 4.
    let (_, b) = blind(&key, &[9; 32], &mut rng).expect("blind");
    let mut again = IssueRequest {
        key_id: key.key_id(),
        proof: vec![],
        blinded: vec![b; 3],
    };
    again.proof = solve_issue_work(&again, D, 0);
    assert_eq!(
        phone
            .request_tokens(relay.node().peer_id(), again)
            .await
            .expect("an answer"),
        IssueResponse::QuotaUsed
    );

    // The relay's node holds the directory it signs, hence the key: the
    // phone's tokened report reaches it and is taken.
    let center = cell("w0").center();
    let published = phone
        .report_with_token(
            Category::Harassment,
            center.0,
            center.1,
            None,
            zeroize::Zeroizing::new(seeds[0]),
            tokens[0].clone(),
        )
        .await
        .expect("tokened report");
    eventually("the relay to take the tokened report", || async {
        relay
            .node()
            .nearby(center.0, center.1, 1_000.0)
            .await
            .ok()?
            .reports
            .iter()
            .any(|r| r.id == published.id && r.tokened)
            .then_some(())
    })
    .await;
    // The same token again (a second report with the same key): refused.
    assert!(phone
        .report_with_token(
            Category::Following,
            center.0,
            center.1,
            None,
            zeroize::Zeroizing::new(seeds[0]),
            tokens[0].clone(),
        )
        .await
        .is_err());
}

/// The phone's wallet: `Node::fetch_tokens` asks the relay for a batch
/// (keys drawn, blinded, proof of work, unblinded), and `Node::report`
/// spends a token when it holds one of today: the relay takes the report
/// as tokened and the wallet shrinks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_wallet_fetches_tokens_and_report_spends_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let config = relay_config(&dir.path().join("relay"));
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    relay.set_issuance_policy(Box::new(PowQuota::new(D, 24)));
    // The phone knows the city key and gets the directory (with the token
    // keys) from the relay over libp2p.
    let mut c = ronde_node::NodeConfig::for_tests(dir.path().join("phone"));
    c.clock = std::sync::Arc::new(clock.clone());
    c.location = Some(cell("w0").center());
    c.city_keys = vec![relay.city_key()];
    let phone = ronde_node::Node::start(c).await.expect("phone");
    connect_to_relay(&phone, &relay).await;
    let got = eventually("the directory, then a batch of tokens", || async {
        phone
            .fetch_tokens(relay.node().peer_id(), 2, D)
            .await
            .ok()
            .filter(|n| *n == 2)
    })
    .await;
    assert_eq!((got, phone.tokens_held()), (2, 2));
    let center = cell("w0").center();
    let published = phone
        .report(Category::Harassment, center.0, center.1, None)
        .await
        .expect("report");
    assert_eq!(phone.tokens_held(), 1);
    eventually("the relay to take the tokened report", || async {
        relay
            .node()
            .nearby(center.0, center.1, 1_000.0)
            .await
            .ok()?
            .reports
            .iter()
            .any(|r| r.id == published.id && r.tokened)
            .then_some(())
    })
    .await;
}

/// A restarted relay signs with the keys its directory listed before: the
/// issuer's keys are kept in `<data_dir>/token-keys` (mode 0600).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_relay_keeps_its_token_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let config = relay_config(&dir.path().join("relay"));
    write_city_key(&config);
    let keys_of = |relay: &ronde_relay::Relay| {
        let addr = relay.public_addr().expect("public listener");
        let city = relay.city_key();
        let now = clock.now();
        async move {
            let bytes = reqwest::get(format!("http://{addr}/directory"))
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body");
            verify_directory(&bytes, &city, now, None)
                .expect("directory")
                .directory()
                .token_keys
                .iter()
                .map(|k| k.key_id())
                .collect::<Vec<_>>()
        }
    };
    let relay = start_relay(config.clone(), &clock).await;
    let before = keys_of(&relay).await;
    assert_eq!(before.len(), 2);
    relay.shutdown().await.expect("stop");
    let relay = start_relay(config.clone(), &clock).await;
    assert_eq!(keys_of(&relay).await, before);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(config.data_dir.join("token-keys")).expect("key dir") {
            let mode = entry
                .expect("entry")
                .metadata()
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "a token key file is readable by others");
        }
    }
    relay.shutdown().await.expect("stop");
}

/// Issue 14 §3: a phone holds tokens without anyone asking. Connected to a
/// relay its city's directory lists, with the token key of today, the
/// phone's node fills its wallet by itself, and its next report is
/// tokened; it does not fetch again that day after spending, nor in the
/// background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_fills_its_wallet_by_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let config = relay_config(&dir.path().join("relay"));
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    relay.set_issuance_policy(Box::new(PowQuota::new(D, 24)));
    let auto = ronde_node::config::AutoTokens {
        batch: 3,
        difficulty: D,
        check_every: std::time::Duration::from_millis(200),
        backoff: std::time::Duration::from_millis(500),
    };
    let phone_at = |name: &str| {
        let mut c = ronde_node::NodeConfig::for_tests(dir.path().join(name));
        c.clock = std::sync::Arc::new(clock.clone());
        c.location = Some(cell("w0").center());
        c.city_keys = vec![relay.city_key()];
        c.auto_tokens = Some(auto.clone());
        c
    };

    // In the background: no fetch, however long it waits.
    // (It looks at its wallet every 2 s: it is in the background by then.)
    let mut c = phone_at("idle");
    c.auto_tokens = Some(ronde_node::config::AutoTokens {
        check_every: std::time::Duration::from_secs(2),
        ..auto.clone()
    });
    let idle = ronde_node::Node::start(c).await.expect("phone");
    connect_to_relay(&idle, &relay).await;
    idle.set_lifecycle(ronde_node::Lifecycle::Background)
        .await
        .expect("background");
    let phone = ronde_node::Node::start(phone_at("phone"))
        .await
        .expect("phone");
    connect_to_relay(&phone, &relay).await;
    let held = eventually("the wallet filled by itself", || async {
        (phone.tokens_held() > 0).then(|| phone.tokens_held())
    })
    .await;
    assert_eq!(held, 3, "one batch");
    let center = cell("w0").center();
    let published = phone
        .report(Category::Harassment, center.0, center.1, None)
        .await
        .expect("report");
    eventually("the relay to take the tokened report", || async {
        relay
            .node()
            .nearby(center.0, center.1, 1_000.0)
            .await
            .ok()?
            .reports
            .iter()
            .any(|r| r.id == published.id && r.tokened)
            .then_some(())
    })
    .await;
    // Long enough for both phones to have looked at their wallets again
    // (every 200 ms and every 2 s).
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(
        idle.tokens_held(),
        0,
        "a phone in the background fetched tokens"
    );
    // Spending does not bring a new fetch the same day: the relay would
    // learn that this connection just reported.
    assert_eq!(
        phone.tokens_held(),
        2,
        "the wallet was refilled after a report"
    );
}
