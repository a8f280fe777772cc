//! The trusted circle's HTTP routes, over real HTTP against real nodes on
//! the memory transport: the whole flow (invite, accept, approve, SOS with
//! its alert event and ack, journey, removal), then bad input.

mod circle_support;
mod common;

use std::time::Duration;

use circle_support::{eventually, settle, T0};
use common::api::{json_of, Served};
use futures::StreamExt;
use reqwest::StatusCode;
use ronde_node::api::{ERROR_CODES, ROUTES};
use ronde_node::{ManualClock, NodeConfig};
use serde_json::{json, Value};

const IVRY: (f64, f64) = (48.8156, 2.3844);

type Harness = Served;

/// A node on `clock` and its API.
async fn start(clock: &ManualClock) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = NodeConfig::for_tests(dir.path());
    config.clock = std::sync::Arc::new(clock.clone());
    let node = circle_support::start(config).await;
    Served::serve(node, dir.path()).await.keeping(dir)
}

/// Checks the error shape and returns the code.
fn error_code(status: StatusCode, body: &Value) -> String {
    assert!(status.is_client_error(), "{status}: {body}");
    let obj = body.as_object().expect("an object");
    assert_eq!(obj.len(), 2, "{body}");
    let code = obj["error"].as_str().expect("error").to_owned();
    assert!(!obj["message"].as_str().expect("message").is_empty());
    assert!(ERROR_CODES.contains(&code.as_str()), "{code} is documented");
    code
}

/// Invite on `a`, accept on `b`, approve on `a`, over HTTP.
async fn befriend(a: &Harness, a_name: &str, b: &Harness, b_name: &str) {
    let (s, invite) = a
        .post("/v1/contacts/invites", json!({"name": a_name}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{invite}");
    let code = invite["code"].as_str().expect("code");
    let (s, accepted) = b
        .post("/v1/contacts/accept", json!({"code": code, "name": b_name}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{accepted}");
    let safety = eventually("the contact request", || async {
        let (_, list) = a.get("/v1/contacts").await;
        list["contacts"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == json!(b_name) && c["state"] == json!("awaiting_my_approval"))
            .map(|c| c["safety_number"].clone())
    })
    .await;
    let (s, approved) = a
        .post(
            &format!("/v1/contacts/{b_name}/approve"),
            json!({ "safety_number": safety }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{approved}");
    eventually("mutual", || async {
        let (_, list) = b.get("/v1/contacts").await;
        list["contacts"]
            .as_array()?
            .iter()
            .any(|c| c["name"] == json!(a_name) && c["state"] == json!("mutual"))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circle_over_http() {
    let clock = ManualClock::new(T0);
    let a = start(&clock).await;
    let b = start(&clock).await;

    let (s, circle) = a.get("/v1/circle").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(circle["identity"].as_str().map(str::len), Some(128));
    assert_eq!(circle["contacts"], json!(0));

    let (s, invite) = a
        .post(
            "/v1/contacts/invites",
            json!({"name": "Alice", "ttl_secs": 600}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{invite}");
    let code = invite["code"].as_str().expect("code").to_owned();
    assert!(code.starts_with("ronde1:"), "{code}");
    assert_eq!(invite["qr"], json!(code.to_uppercase()));
    assert_eq!(invite["name"], json!("Alice"));
    assert!(invite["expires_at"].as_u64().expect("expiry") >= T0 + 600);

    let (s, accepted) = b
        .post("/v1/contacts/accept", json!({"code": code, "name": "Bob"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{accepted}");
    assert_eq!(accepted["name"], json!("Alice"));
    assert_eq!(accepted["state"], json!("awaiting_their_approval"));
    let safety = accepted["safety_number"].as_str().expect("sn").to_owned();
    assert_eq!(safety.split(' ').count(), 12);
    // The invite is single use.
    let (s, again) = b.post("/v1/contacts/accept", json!({"code": code})).await;
    assert_eq!(error_code(s, &again), "already_contact");

    let bob = eventually("Bob's request", || async {
        let (_, list) = a.get("/v1/contacts").await;
        list["contacts"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(bob["state"], json!("awaiting_my_approval"));
    assert_eq!(bob["safety_number"], json!(safety));
    // Approve by id prefix.
    let prefix = &bob["id"].as_str().expect("id")[..10];
    let (s, approved) = a
        .post(
            &format!("/v1/contacts/{prefix}/approve"),
            json!({ "safety_number": bob["safety_number"] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{approved}");
    assert_eq!(approved["state"], json!("mutual"));
    eventually("Bob to be mutual", || async {
        let (_, list) = b.get("/v1/contacts").await;
        (list["contacts"][0]["state"] == json!("mutual")).then_some(())
    })
    .await;
    // Bob's inbox tells him.
    let (_, inbox) = b.get("/v1/inbox").await;
    assert!(
        inbox["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| i["kind"] == json!("contact_mutual")),
        "{inbox}"
    );

    // SOS: an `alert` event at Bob, then the ack back to Alice.
    let resp = b.http.get(b.url("/v1/events")).send().await.expect("send");
    let mut stream = resp.bytes_stream();
    let (s, sos) = a.post("/v1/sos", json!({"note": "help"})).await;
    assert_eq!(s, StatusCode::CREATED, "{sos}");
    assert_eq!(sos["state"], json!("active"));
    assert_eq!(sos["recipients"][0]["name"], json!("Bob"));
    let (s, again) = a.post("/v1/sos", json!({})).await;
    assert_eq!(error_code(s, &again), "sos_active");
    let mut text = String::new();
    let event = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
            if let Some(ev) = text.split("\n\n").find(|e| e.contains("event: alert")) {
                return ev.to_owned();
            }
        }
        String::new()
    })
    .await
    .expect("an alert event");
    let data: Value = serde_json::from_str(
        event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("data"),
    )
    .expect("JSON");
    assert_eq!(data["type"], json!("alert"));
    assert_eq!(data["kind"], json!("sos"));
    assert_eq!(data["note"], json!("help"));
    assert_eq!(data["from_name"], json!("Alice"));
    assert_eq!(data["alert"], json!(true));
    let item = data["id"].as_u64().expect("id");
    let (s, acked) = b
        .post("/v1/inbox/ack", json!({"ids": [item, 999_999]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{acked}");
    assert_eq!(acked["acked"], json!([item]));
    eventually("the ack", || async {
        let (_, sos) = a.get("/v1/sos").await;
        (sos["acknowledged"] == json!(true)).then_some(())
    })
    .await;
    let (_, inbox) = b.get(&format!("/v1/inbox?since={}", item - 1)).await;
    assert_eq!(inbox["items"][0]["seen"], json!(true), "{inbox}");
    let (s, cancelled) = a.post_empty("/v1/sos/cancel").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cancelled["state"], json!("cancelled"));

    // Journey.
    let (s, _) = json_of(
        a.http
            .put(a.url("/v1/location"))
            .json(&json!({"lat": IVRY.0, "lon": IVRY.1}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, j) = a
        .post(
            "/v1/journey",
            json!({"lat": 48.82, "lon": 2.39, "eta_secs": 1500}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    assert_eq!(j["state"], json!("active"));
    assert_eq!(j["expected_arrival"], json!(T0 + 1500));
    assert_eq!(
        j["overdue_at"],
        json!(T0 + 1500 + 900),
        "15 minutes of grace"
    );
    assert_eq!(j["contacts"], json!(1));
    let (s, again) = a
        .post(
            "/v1/journey",
            json!({"lat": 48.82, "lon": 2.39, "eta_secs": 1500}),
        )
        .await;
    assert_eq!(error_code(s, &again), "journey_active");
    let (s, now) = a.get("/v1/journey").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(now["id"], j["id"]);
    eventually("Bob to see the journey and a position", || async {
        let (_, inbox) = b.get("/v1/inbox").await;
        let items = inbox["items"].as_array()?.clone();
        let started = items.iter().any(|i| i["kind"] == json!("journey_started"));
        let position = items.iter().any(|i| i["kind"] == json!("position"));
        (started && position).then_some(())
    })
    .await;
    let (s, done) = a.post_empty("/v1/journey/arrived").await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["state"], json!("arrived"));
    let (s, again) = a.post_empty("/v1/journey/arrived").await;
    assert_eq!(error_code(s, &again), "no_journey");

    // Removal, then the contact is unknown.
    let (s, removed) = a.delete("/v1/contacts/bob?notify=true").await;
    assert_eq!(s, StatusCode::OK, "{removed}");
    assert_eq!(removed["name"], json!("Bob"));
    let (s, gone) = a.delete("/v1/contacts/bob").await;
    assert_eq!(error_code(s, &gone), "unknown_contact");
    // Bob was told (the leave) and forgets Alice.
    eventually("Bob to learn he was removed", || async {
        let (_, list) = b.get("/v1/contacts").await;
        list["contacts"].as_array()?.is_empty().then_some(())
    })
    .await;
    drop(stream);
    let _ = a.stop().await;
    let _ = b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_circle_input_gets_a_json_error() {
    let clock = ManualClock::new(T0);
    let a = start(&clock).await;
    let other = start(&clock).await;

    // Alone, with nobody in the circle.
    let (_, own) = a.post("/v1/contacts/invites", json!({"name": "Me"})).await;
    let own = own["code"].as_str().expect("code").to_owned();
    let (_, theirs) = other.post("/v1/contacts/invites", json!({})).await;
    let theirs = theirs["code"].as_str().expect("code").to_owned();
    // A typo: one character changed in the middle.
    let mut typo: Vec<char> = theirs.chars().collect();
    let mid = typo.len() / 2;
    typo[mid] = if typo[mid] == 'a' { 'b' } else { 'a' };
    let typo: String = typo.into_iter().collect();

    let cases: Vec<(&str, (StatusCode, Value), &str)> = vec![
        (
            "not a code",
            a.post("/v1/contacts/accept", json!({"code": "hello"}))
                .await,
            "bad_invite",
        ),
        (
            "bad characters",
            a.post("/v1/contacts/accept", json!({"code": "ronde1:!!!"}))
                .await,
            "bad_invite",
        ),
        (
            "a typo",
            a.post("/v1/contacts/accept", json!({"code": typo})).await,
            "bad_invite",
        ),
        (
            "own invite",
            a.post("/v1/contacts/accept", json!({"code": own})).await,
            "own_invite",
        ),
        (
            "no code",
            a.post("/v1/contacts/accept", json!({"name": "x"})).await,
            "missing_field",
        ),
        (
            "name too long",
            a.post("/v1/contacts/invites", json!({"name": "x".repeat(65)}))
                .await,
            "bad_name",
        ),
        (
            "name with a control character",
            a.post("/v1/contacts/invites", json!({"name": "a\u{7}b"}))
                .await,
            "bad_name",
        ),
        (
            "ttl 0",
            a.post("/v1/contacts/invites", json!({"ttl_secs": 0})).await,
            "invalid_field",
        ),
        (
            "ttl over a week",
            a.post("/v1/contacts/invites", json!({"ttl_secs": 700_000}))
                .await,
            "invalid_field",
        ),
        (
            "approve unknown",
            a.post_empty("/v1/contacts/nobody/approve").await,
            "unknown_contact",
        ),
        (
            "remove unknown",
            a.delete("/v1/contacts/nobody").await,
            "unknown_contact",
        ),
        (
            "journey without contacts",
            a.post(
                "/v1/journey",
                json!({"lat": 48.8, "lon": 2.3, "eta_secs": 600}),
            )
            .await,
            "no_contacts",
        ),
        (
            "journey without arrival time",
            a.post("/v1/journey", json!({"lat": 48.8, "lon": 2.3}))
                .await,
            "missing_field",
        ),
        (
            "journey with two arrival times",
            a.post(
                "/v1/journey",
                json!({"lat": 48.8, "lon": 2.3, "eta_secs": 600, "expected_arrival": T0 + 600}),
            )
            .await,
            "invalid_field",
        ),
        (
            "journey latitude",
            a.post(
                "/v1/journey",
                json!({"lat": 91, "lon": 2.3, "eta_secs": 600}),
            )
            .await,
            "bad_latitude",
        ),
        (
            "sos without contacts",
            a.post("/v1/sos", json!({"note": "x"})).await,
            "no_contacts",
        ),
        ("no sos", a.get("/v1/sos").await, "no_sos"),
        (
            "cancel no sos",
            a.post_empty("/v1/sos/cancel").await,
            "no_sos",
        ),
        ("no journey", a.get("/v1/journey").await, "no_journey"),
        (
            "arrived without journey",
            a.post_empty("/v1/journey/arrived").await,
            "no_journey",
        ),
        (
            "ack nothing",
            a.post("/v1/inbox/ack", json!({"ids": []})).await,
            "invalid_field",
        ),
        (
            "inbox since text",
            a.get("/v1/inbox?since=x").await,
            "invalid_field",
        ),
        (
            "inbox unknown param",
            a.get("/v1/inbox?limit=3").await,
            "unknown_field",
        ),
        (
            "notify maybe",
            a.delete("/v1/contacts/x?notify=maybe").await,
            "invalid_field",
        ),
    ];
    for (what, (status, body), want) in cases {
        assert_eq!(error_code(status, &body), want, "{what}: {body}");
    }
    // A typo says so.
    let (_, body) = a.post("/v1/contacts/accept", json!({"code": typo})).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("typo"),
        "{body}"
    );
    // Actions need the JSON content type, so a web page cannot trigger them.
    for path in [
        "/v1/sos",
        "/v1/sos/cancel",
        "/v1/journey/cancel",
        "/v1/contacts/invites",
    ] {
        let resp = a
            .http
            .post(a.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("a=b")
            .send()
            .await
            .expect("send");
        let (status, body) = json_of(resp).await;
        assert_eq!(
            error_code(status, &body),
            "unsupported_media_type",
            "{path}"
        );
    }

    // Too many open invites (16 at most).
    let mut last = (StatusCode::CREATED, Value::Null);
    for _ in 0..16 {
        last = a
            .post("/v1/contacts/invites", json!({"ttl_secs": 60}))
            .await;
        if last.0 != StatusCode::CREATED {
            break;
        }
    }
    assert_eq!(error_code(last.0, &last.1), "too_many_invites");

    // An expired invite (and Ann's short invites expire too).
    let (_, short) = other
        .post(
            "/v1/contacts/invites",
            json!({"name": "Otto", "ttl_secs": 60}),
        )
        .await;
    clock.advance(3600);
    let (s, body) = a
        .post("/v1/contacts/accept", json!({"code": short["code"]}))
        .await;
    assert_eq!(error_code(s, &body), "invite_expired");

    // Approving someone whose invite I accepted is theirs to do.
    let (_, invite) = a.post("/v1/contacts/invites", json!({"name": "Ann"})).await;
    let code = invite["code"].as_str().expect("code");
    let (s, body) = other
        .post("/v1/contacts/accept", json!({"code": code, "name": "Otto"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = other.post_empty("/v1/contacts/ann/approve").await;
    assert_eq!(error_code(s, &body), "not_awaiting_approval");
    let otto = eventually("Otto's request", || async {
        let (_, list) = a.get("/v1/contacts").await;
        list["contacts"]
            .as_array()?
            .iter()
            .find(|c| c["state"] == json!("awaiting_my_approval"))
            .cloned()
    })
    .await;
    let (s, body) = a
        .post(
            "/v1/contacts/otto/approve",
            json!({ "safety_number": otto["safety_number"] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // With a contact: bad arrival times and notes.
    let cases: Vec<(&str, (StatusCode, Value), &str)> = vec![
        (
            "eta over 8 hours",
            a.post(
                "/v1/journey",
                json!({"lat": 48.8, "lon": 2.3, "eta_secs": 9 * 3600}),
            )
            .await,
            "bad_eta",
        ),
        (
            "eta in the past",
            a.post(
                "/v1/journey",
                json!({"lat": 48.8, "lon": 2.3, "expected_arrival": T0 - 1}),
            )
            .await,
            "bad_eta",
        ),
        (
            "grace over an hour",
            a.post(
                "/v1/journey",
                json!({"lat": 48.8, "lon": 2.3, "eta_secs": 600, "grace_secs": 7200}),
            )
            .await,
            "bad_eta",
        ),
        (
            "note too long",
            a.post("/v1/sos", json!({"note": "x".repeat(281)})).await,
            "bad_note",
        ),
    ];
    for (what, (status, body), want) in cases {
        assert_eq!(error_code(status, &body), want, "{what}: {body}");
    }
    // Nothing was started by all that.
    assert_eq!(a.get("/v1/journey").await.0, StatusCode::NOT_FOUND);
    assert_eq!(a.get("/v1/sos").await.0, StatusCode::NOT_FOUND);
    settle(100).await;
    let _ = a.stop().await;
    let _ = other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_circle_route_answers() {
    let clock = ManualClock::new(T0);
    let a = start(&clock).await;
    let b = start(&clock).await;
    befriend(&a, "Ann", &b, "Ben").await;
    let (_, inbox) = b.get("/v1/inbox").await;
    let item = inbox["items"][0]["id"].as_u64().expect("an item");
    // In an order where each succeeds.
    let steps: Vec<(&str, &str, Option<Value>)> = vec![
        ("GET", "/v1/circle", None),
        ("GET", "/v1/contacts", None),
        ("POST", "/v1/contacts/invites", Some(json!({}))),
        (
            "POST",
            "/v1/journey",
            Some(json!({"lat": 48.8, "lon": 2.3, "eta_secs": 600})),
        ),
        ("GET", "/v1/journey", None),
        ("POST", "/v1/journey/arrived", None),
        (
            "POST",
            "/v1/journey",
            Some(json!({"lat": 48.8, "lon": 2.3, "eta_secs": 600})),
        ),
        ("POST", "/v1/journey/extend", Some(json!({"add_secs": 300}))),
        ("POST", "/v1/journey/cancel", None),
        ("POST", "/v1/sos", None),
        ("GET", "/v1/sos", None),
        ("POST", "/v1/sos/cancel", None),
        ("GET", "/v1/inbox", None),
        ("GET", "/v1/circle/journeys", None),
        (
            "PUT",
            "/v1/circle/codes",
            Some(json!({"code": "2468", "duress_code": "1357"})),
        ),
        ("DELETE", "/v1/circle/codes", Some(json!({"code": "2468"}))),
        ("POST", "/v1/contacts/{contact}/approve", None),
        ("DELETE", "/v1/contacts/{contact}", None),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (method, path, body) in steps {
        let url = a.url(&path.replace("{contact}", "ben"));
        let req = match (method, body) {
            ("GET", _) => a.http.get(url),
            ("PUT", Some(b)) => a.http.put(url).json(&b),
            ("DELETE", Some(b)) => a.http.delete(url).json(&b),
            ("DELETE", _) => a.http.delete(url),
            (_, Some(b)) => a.http.post(url).json(&b),
            (_, None) => a.http.post(url).header("content-type", "application/json"),
        };
        let (status, body) = json_of(req.send().await.expect("send")).await;
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        seen.insert((method, path));
    }
    // The ack is Ben's to give.
    let (s, _) = b.post("/v1/inbox/ack", json!({"ids": [item]})).await;
    assert!(s.is_success());
    seen.insert(("POST", "/v1/inbox/ack"));
    let (s, _) = b.post("/v1/contacts/accept", json!({"code": "x"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    seen.insert(("POST", "/v1/contacts/accept"));
    let circle_routes: std::collections::BTreeSet<(&str, &str)> = ROUTES
        .iter()
        .copied()
        .filter(|(_, p)| {
            [
                "/v1/circle",
                "/v1/contacts",
                "/v1/journey",
                "/v1/sos",
                "/v1/inbox",
            ]
            .iter()
            .any(|c| p.starts_with(c))
        })
        .collect();
    assert_eq!(seen, circle_routes, "every circle route was exercised");
    let _ = a.stop().await;
    let _ = b.stop().await;
}

/// Issue 12 §3: an invite code is a secret for minutes, not a day. A code
/// seen over someone's shoulder or photographed from a screen sixteen
/// minutes later must no longer make its viewer a contact, and nobody can
/// ask for a code that lasts longer than a day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_expire_after_fifteen_minutes_by_default() {
    let clock = ManualClock::new(T0);
    let a = start(&clock).await;
    let b = start(&clock).await;

    let (s, invite) = a
        .post("/v1/contacts/invites", json!({"name": "Alice"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{invite}");
    let code = invite["code"].as_str().expect("code").to_owned();
    let expires_at = invite["expires_at"].as_u64().expect("expires_at");
    assert!(
        expires_at <= T0 + 15 * 60 + 60,
        "the default lifetime is 15 minutes (rounded up to a minute): expires {}s after creation",
        expires_at - T0
    );
    clock.advance(16 * 60);
    let (s, body) = b
        .post(
            "/v1/contacts/accept",
            json!({"code": code, "name": "Mallory"}),
        )
        .await;
    assert_eq!(error_code(s, &body), "invite_expired", "{body}");

    // Longer lifetimes are refused past a day; a day is allowed.
    let (s, body) = a
        .post(
            "/v1/contacts/invites",
            json!({"name": "Alice", "ttl_secs": 86_400 + 1}),
        )
        .await;
    assert_eq!(error_code(s, &body), "invalid_field", "{body}");
    let (s, body) = a
        .post(
            "/v1/contacts/invites",
            json!({"name": "Alice", "ttl_secs": 86_400}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

/// Issue 12 §3: approving is where a phished invite is caught (a stranger
/// who accepted the code has another safety number). An app may not approve
/// without the person having compared it: the approval must carry the
/// safety number, in full, and it must be this contact's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_needs_the_compared_safety_number() {
    let clock = ManualClock::new(T0);
    let a = start(&clock).await;
    let b = start(&clock).await;
    let (_, invite) = a
        .post("/v1/contacts/invites", json!({"name": "Alice"}))
        .await;
    let code = invite["code"].as_str().expect("code");
    let (s, body) = b
        .post("/v1/contacts/accept", json!({"code": code, "name": "Bob"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let bob = eventually("Bob's request", || async {
        let (_, list) = a.get("/v1/contacts").await;
        list["contacts"].as_array()?.first().cloned()
    })
    .await;
    let safety = bob["safety_number"]
        .as_str()
        .expect("safety number")
        .to_owned();

    // Without the number, with part of it, or with another: refused.
    let mut wrong = safety.clone().into_bytes();
    let last = wrong.len() - 1;
    wrong[last] = if wrong[last] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).expect("digits");
    for body in [
        json!({}),
        json!({"safety_number": &safety[..safety.len() / 2]}),
        json!({"safety_number": wrong}),
    ] {
        let (s, answer) = a.post("/v1/contacts/bob/approve", body.clone()).await;
        assert_eq!(
            error_code(s, &answer),
            "safety_number_mismatch",
            "{body} -> {answer}"
        );
    }
    let (_, list) = a.get("/v1/contacts").await;
    assert_eq!(list["contacts"][0]["state"], json!("awaiting_my_approval"));

    // The number as shown (groups and spaces are fine) approves.
    let (s, approved) = a
        .post("/v1/contacts/bob/approve", json!({"safety_number": safety}))
        .await;
    assert_eq!(s, StatusCode::OK, "{approved}");
    assert_eq!(approved["state"], json!("mutual"));
}

/// `PUT` or `DELETE` with a JSON body and the token.
async fn send_json(
    a: &Harness,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    json_of(
        a.http
            .request(method, a.url(path))
            .json(&body)
            .send()
            .await
            .expect("send"),
    )
    .await
}

/// The first inbox item of `kind` at `b`, waited for.
async fn inbox_item(b: &Harness, kind: &str, after: u64) -> Value {
    eventually(kind, || async {
        let (_, inbox) = b.get("/v1/inbox").await;
        inbox["items"]
            .as_array()?
            .iter()
            .find(|i| i["kind"] == json!(kind) && i["id"].as_u64() > Some(after))
            .cloned()
    })
    .await
}

/// Issue 18 §4: the duress code, end to end over HTTP between two real
/// nodes. Once codes are set, ending a journey or cancelling an SOS needs
/// one; the duress code answers exactly as the code does, while the
/// contact gets a duress alert and the journey keeps sharing positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duress_code_seems_to_cancel_while_the_alert_goes_on() {
    let clock = ManualClock::new(T0);
    // Alice's switch is held by a host she chose, so the screen has a host
    // to lie about.
    let host_dir = tempfile::tempdir().expect("tempdir");
    let (_host, host) = circle_support::start_host(host_dir.path(), &clock).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let node =
        circle_support::start(circle_support::config_with_host(dir.path(), &clock, &host)).await;
    let a = Served::serve(node, dir.path()).await.keeping(dir);
    let b = start(&clock).await;
    befriend(&a, "Alice", &b, "Bob").await;

    // Codes: 4 to 12 digits, different; changing them needs the code.
    let put = reqwest::Method::PUT;
    let (s, e) = send_json(
        &a,
        put.clone(),
        "/v1/circle/codes",
        json!({"code": "12", "duress_code": "1357"}),
    )
    .await;
    assert_eq!(error_code(s, &e), "bad_code");
    let (s, e) = send_json(
        &a,
        put.clone(),
        "/v1/circle/codes",
        json!({"code": "1357", "duress_code": "1357"}),
    )
    .await;
    assert_eq!(error_code(s, &e), "bad_code");
    let (s, set) = send_json(
        &a,
        put.clone(),
        "/v1/circle/codes",
        json!({"code": "2468", "duress_code": "1357"}),
    )
    .await;
    assert_eq!((s, set), (StatusCode::OK, json!({"codes": true})));
    let (_, circle) = a.get("/v1/circle").await;
    assert_eq!(circle["codes"], json!(true));
    let (s, e) = send_json(
        &a,
        put.clone(),
        "/v1/circle/codes",
        json!({"code": "1111", "duress_code": "2222"}),
    )
    .await;
    assert_eq!(error_code(s, &e), "code_required");
    let (s, e) = send_json(
        &a,
        put.clone(),
        "/v1/circle/codes",
        json!({"code": "1111", "duress_code": "2222", "current_code": "1357"}),
    )
    .await;
    assert_eq!(
        (s, error_code(s, &e)),
        (StatusCode::FORBIDDEN, "wrong_code".into())
    );

    // A journey, "cancelled" under duress.
    let (s, _) = send_json(
        &a,
        put.clone(),
        "/v1/location",
        json!({"lat": IVRY.0, "lon": IVRY.1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, j) = a
        .post(
            "/v1/journey",
            json!({"lat": 48.82, "lon": 2.39, "eta_secs": 1500}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    let started = inbox_item(&b, "journey_started", 0).await;
    eventually("the switch held", || async {
        let (_, now) = a.get("/v1/journey").await;
        (now["switch"] == json!("armed")).then_some(())
    })
    .await;
    let (s, e) = a.post_empty("/v1/journey/cancel").await;
    assert_eq!(error_code(s, &e), "code_required");
    let (s, e) = a.post("/v1/journey/cancel", json!({"code": "0000"})).await;
    assert_eq!(
        (s, error_code(s, &e)),
        (StatusCode::FORBIDDEN, "wrong_code".into())
    );
    let (s, shown) = a.post("/v1/journey/cancel", json!({"code": "1357"})).await;
    assert_eq!(s, StatusCode::OK, "{shown}");
    assert_eq!(shown["state"], json!("cancelled"));
    let (_, now) = a.get("/v1/journey").await;
    assert_eq!(now["state"], json!("cancelled"));
    // Nor does the switch, or any of its hosts, tell the truth on screen.
    assert_eq!(now["switch"], json!("withdrawn"), "{now}");
    let hosts = now["switch_hosts"].as_array().expect("switch_hosts");
    assert!(!hosts.is_empty(), "{now}");
    assert!(
        hosts.iter().all(|h| h["state"] == json!("withdrawn")),
        "a host is shown holding the switch after a duress cancel: {now}"
    );
    // As after a real cancel, there is nothing left to cancel, even with
    // the duress code again.
    let (s, e) = a.post("/v1/journey/cancel", json!({"code": "1357"})).await;
    assert_eq!(error_code(s, &e), "no_journey");

    // Bob is alerted, and not told it was cancelled.
    let duress = inbox_item(&b, "duress", started["id"].as_u64().unwrap_or(0)).await;
    assert_eq!(duress["alert"], json!(true));
    assert_eq!(duress["of"], j["id"]);
    // Positions go on: the next one reaches Bob.
    clock.advance(301);
    let pos = inbox_item(&b, "position", duress["id"].as_u64().unwrap_or(0)).await;
    assert_eq!(pos["journey"], j["id"]);
    let (_, inbox) = b.get("/v1/inbox").await;
    assert!(
        !inbox["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| i["kind"] == json!("journey_cancelled")),
        "Bob was told the journey was cancelled: {inbox}"
    );
    // The real code ends it for good: the all-clear.
    let (s, done) = a.post("/v1/journey/cancel", json!({"code": "2468"})).await;
    assert_eq!((s, &done["state"]), (StatusCode::OK, &json!("cancelled")));
    inbox_item(&b, "journey_cancelled", pos["id"].as_u64().unwrap_or(0)).await;

    // An SOS "cancelled" under duress is still alive; raising it again shows it.
    let (s, sos) = a.post("/v1/sos", json!({"note": "help"})).await;
    assert_eq!(s, StatusCode::CREATED, "{sos}");
    let (s, shown) = a.post("/v1/sos/cancel", json!({"code": "1357"})).await;
    assert_eq!((s, &shown["state"]), (StatusCode::OK, &json!("cancelled")));
    let (_, status) = a.get("/v1/sos").await;
    assert_eq!(status["state"], json!("cancelled"));
    let d = inbox_item(&b, "duress", duress["id"].as_u64().unwrap_or(0)).await;
    assert_eq!(d["of"], sos["id"]);
    let (s, again) = a.post("/v1/sos", json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    assert_eq!(
        (&again["id"], &again["state"]),
        (&sos["id"], &json!("active"))
    );
    let (s, over) = a.post("/v1/sos/cancel", json!({"code": "2468"})).await;
    assert_eq!((s, &over["state"]), (StatusCode::OK, &json!("cancelled")));
    inbox_item(&b, "sos_cancelled", d["id"].as_u64().unwrap_or(0)).await;

    // Removing the codes needs the code.
    let del = reqwest::Method::DELETE;
    let (s, e) = send_json(&a, del.clone(), "/v1/circle/codes", json!({"code": "1357"})).await;
    assert_eq!(error_code(s, &e), "wrong_code");
    let (s, cleared) = send_json(&a, del, "/v1/circle/codes", json!({"code": "2468"})).await;
    assert_eq!((s, cleared), (StatusCode::OK, json!({"codes": false})));
}

/// Issue 18 §5: parents' mode over HTTP: the parent sees the journey start
/// in parents' mode, no position while the child keeps to the corridor,
/// then a deviation alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_mode_shares_states_not_positions() {
    let clock = ManualClock::new(T0);
    let child = start(&clock).await;
    let parent = start(&clock).await;
    befriend(&child, "Léa", &parent, "Maman").await;
    let put = reqwest::Method::PUT;
    let here = |lat: f64, lon: f64| json!({"lat": lat, "lon": lon});
    let (s, _) = send_json(&child, put.clone(), "/v1/location", here(48.8000, 2.3800)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = child
        .post(
            "/v1/journey",
            json!({"lat": 48.81, "lon": 2.38, "eta_secs": 1800, "states_only": {"corridor_m": 50, "stop_secs": 600}}),
        )
        .await;
    assert_eq!(error_code(s, &e), "invalid_input");
    let (s, j) = child
        .post(
            "/v1/journey",
            json!({"lat": 48.81, "lon": 2.38, "eta_secs": 1800, "states_only": {"corridor_m": 300, "stop_secs": 600}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    assert_eq!(
        j["states_only"],
        json!({"corridor_m": 300, "stop_secs": 600})
    );
    let started = inbox_item(&parent, "journey_started", 0).await;
    assert_eq!(started["states_only"], json!(true));
    // On the way, inside the corridor, through several position intervals.
    for step in 1..=3u32 {
        let (s, _) = send_json(
            &child,
            put.clone(),
            "/v1/location",
            here(48.8000 + 0.002 * f64::from(step), 2.3810),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        clock.advance(301);
        settle(700).await;
    }
    // Off the corridor: a deviation alert, then positions.
    let (s, _) = send_json(&child, put.clone(), "/v1/location", here(48.8050, 2.3950)).await;
    assert_eq!(s, StatusCode::OK);
    clock.advance(301);
    let dev = inbox_item(&parent, "deviated", started["id"].as_u64().unwrap_or(0)).await;
    assert_eq!(
        (&dev["reason"], &dev["alert"]),
        (&json!("off_route"), &json!(true))
    );
    let (_, inbox) = parent.get("/v1/inbox").await;
    let positions_before = inbox["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == json!("position") && i["id"].as_u64() < dev["id"].as_u64())
        .count();
    assert_eq!(
        positions_before, 0,
        "positions were shared before any alert: {inbox}"
    );
}

/// Issue 18 §1: "add time" moves the expected arrival (the contact is
/// told, the switch follows), the destination keeps the name it was given
/// (on this device only), and what cannot be extended is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_time_and_a_named_destination() {
    let clock = ManualClock::new(T0);
    let a = start(&clock).await;
    let b = start(&clock).await;
    befriend(&a, "Alice", &b, "Bob").await;
    let (s, j) = a
        .post(
            "/v1/journey",
            json!({"lat": 48.82, "lon": 2.39, "eta_secs": 1200, "destination_name": "Pharmacie des Lilas"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    assert_eq!(j["destination_name"], json!("Pharmacie des Lilas"));
    let eta = j["expected_arrival"].as_u64().expect("eta");
    let started = inbox_item(&b, "journey_started", 0).await;
    // The name stays on Alice's phone.
    assert!(!started.to_string().contains("Pharmacie"), "{started}");

    let (s, e) = a
        .post(
            "/v1/journey/extend",
            json!({"add_secs": 600, "eta_secs": 60}),
        )
        .await;
    assert_eq!(error_code(s, &e), "invalid_field");
    let (s, longer) = a.post("/v1/journey/extend", json!({"add_secs": 600})).await;
    assert_eq!(s, StatusCode::OK, "{longer}");
    assert_eq!(longer["expected_arrival"], json!(eta + 600));
    assert_eq!(longer["destination_name"], json!("Pharmacie des Lilas"));
    assert!(longer["switch_release_at"].as_u64() > j["switch_release_at"].as_u64());
    let changed = inbox_item(&b, "journey_changed", started["id"].as_u64().unwrap_or(0)).await;
    assert_eq!(changed["expected_arrival"], json!(eta + 600));
    // Beyond 8 hours: refused, with the latest arrival allowed.
    let (s, e) = a
        .post("/v1/journey/extend", json!({"add_secs": 9 * 3600}))
        .await;
    assert_eq!(error_code(s, &e), "bad_eta");
    // Once overdue, it is too late.
    clock.advance(1200 + 600 + 900 + 1);
    eventually("overdue", || async {
        let (_, j) = a.get("/v1/journey").await;
        (j["state"] == json!("overdue")).then_some(())
    })
    .await;
    let (s, e) = a.post("/v1/journey/extend", json!({"add_secs": 600})).await;
    assert_eq!(error_code(s, &e), "bad_eta");
}

/// Issue 18 §2: a contact's journey as Bob's map draws it, over HTTP
/// between two real nodes: state, destination, expected arrival (after
/// added time), the path since the start and the last position; then the
/// arrival.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contacts_journey_is_there_for_the_map() {
    let clock = ManualClock::new(T0);
    let a = start(&clock).await;
    let b = start(&clock).await;
    befriend(&a, "Alice", &b, "Bob").await;
    let (_, none) = b.get("/v1/circle/journeys").await;
    assert_eq!(none, json!({"journeys": []}));

    let put = reqwest::Method::PUT;
    let (s, _) = send_json(
        &a,
        put.clone(),
        "/v1/location",
        json!({"lat": IVRY.0, "lon": IVRY.1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, j) = a
        .post(
            "/v1/journey",
            json!({"lat": 48.82, "lon": 2.39, "eta_secs": 1500}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    let mut last = inbox_item(&b, "journey_started", 0).await;
    for step in 1..=2 {
        clock.advance(301);
        let (s, _) = send_json(
            &a,
            put.clone(),
            "/v1/location",
            json!({"lat": IVRY.0 - 0.002 * f64::from(step), "lon": IVRY.1}),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        last = inbox_item(&b, "position", last["id"].as_u64().unwrap_or(0)).await;
    }
    let (s, shared) = b.get("/v1/circle/journeys").await;
    assert_eq!(s, StatusCode::OK, "{shared}");
    let seen = &shared["journeys"][0];
    assert_eq!(seen["journey"], j["id"], "{shared}");
    assert_eq!(seen["from_name"], json!("Alice"));
    assert_eq!(seen["state"], json!("on_the_way"));
    assert_eq!(seen["expected_arrival"], j["expected_arrival"]);
    assert_eq!(seen["destination"]["lat"], json!(48.82));
    let path = seen["path"].as_array().expect("path");
    assert!(path.len() >= 2, "{shared}");
    assert_eq!(seen["last_position"], last["fix"], "{shared}");
    // Alice's own journey is not among those shared with her.
    let (_, mine) = a.get("/v1/circle/journeys").await;
    assert_eq!(mine, json!({"journeys": []}));

    // Added time moves the expected arrival on Bob's side.
    let (s, longer) = a.post("/v1/journey/extend", json!({"add_secs": 600})).await;
    assert_eq!(s, StatusCode::OK, "{longer}");
    eventually("the new arrival", || async {
        let (_, shared) = b.get("/v1/circle/journeys").await;
        (shared["journeys"][0]["expected_arrival"] == longer["expected_arrival"]).then_some(())
    })
    .await;
    let (s, _) = a.post_empty("/v1/journey/arrived").await;
    assert_eq!(s, StatusCode::OK);
    eventually("the arrival", || async {
        let (_, shared) = b.get("/v1/circle/journeys").await;
        let j = &shared["journeys"][0];
        (j["state"] == json!("arrived") && j["ended_at"].is_u64()).then_some(())
    })
    .await;
}

/// Issue 18 §4, the screen after a duress end: it must show what a real
/// end shows, field for field, and keep showing it while the journey goes
/// on underneath. Here the switch has no host (none configured), and
/// positions keep flowing under duress: a switch shown "withdrawn" where a
/// real end shows it still "pending", or a release time or last position
/// that keeps moving after the "end", tells whoever holds the phone that
/// the duress code was used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duress_end_looks_like_a_real_end_on_screen() {
    let clock = ManualClock::new(T0);
    let a = start(&clock).await;
    let b = start(&clock).await;
    befriend(&a, "Alice", &b, "Bob").await;
    let put = reqwest::Method::PUT;
    let (s, _) = send_json(
        &a,
        put.clone(),
        "/v1/circle/codes",
        json!({"code": "2468", "duress_code": "1357"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = send_json(
        &a,
        put.clone(),
        "/v1/location",
        json!({"lat": IVRY.0, "lon": IVRY.1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // The same journey twice: ended with the code, then with the duress
    // code; each seen right after its end and again 10 minutes later.
    let mut seen = Vec::new();
    let mut last_inbox = 0;
    for code in ["2468", "1357"] {
        let (s, j) = a
            .post(
                "/v1/journey",
                json!({"lat": 48.82, "lon": 2.39, "eta_secs": 1500}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{j}");
        let started = inbox_item(&b, "journey_started", last_inbox).await;
        last_inbox = started["id"].as_u64().unwrap_or(0);
        clock.advance(60);
        let (s, shown) = a.post("/v1/journey/cancel", json!({"code": code})).await;
        assert_eq!(s, StatusCode::OK, "{shown}");
        settle(500).await;
        let (_, right_after) = a.get("/v1/journey").await;
        for _ in 0..2 {
            clock.advance(301);
            settle(500).await;
        }
        if code == "1357" {
            // Underneath, the journey goes on: Bob gets positions.
            inbox_item(&b, "position", last_inbox).await;
        }
        let (_, later) = a.get("/v1/journey").await;
        seen.push((right_after, later));
        // The real code ends the duress journey for good.
        if code == "1357" {
            let (s, _) = a.post("/v1/journey/cancel", json!({"code": "2468"})).await;
            assert_eq!(s, StatusCode::OK);
        }
    }

    // Times are compared as offsets from the journey's start; ids differ.
    let shown = |v: &Value| -> Value {
        let start = v["started_at"].as_u64().unwrap_or(0);
        let mut out = serde_json::Map::new();
        for (k, x) in v.as_object().expect("a journey view") {
            let x = match x.as_u64() {
                Some(t) if k.ends_with("_at") || k == "expected_arrival" => {
                    json!(t.saturating_sub(start))
                }
                _ => x.clone(),
            };
            if k != "id" {
                out.insert(k.clone(), x);
            }
        }
        Value::Object(out)
    };
    let (real, duress) = (&seen[0], &seen[1]);
    assert_eq!(
        shown(&duress.0),
        shown(&real.0),
        "right after the end, the duress journey's view differs from a real end's"
    );
    assert_eq!(
        shown(&duress.1),
        shown(&real.1),
        "10 minutes after the end, the duress journey's view differs from a real end's"
    );
}

/// The same for an SOS: after a duress cancel, the screen shows what a
/// real cancel shows, while underneath the SOS goes on (it is resent and
/// follows the person's position).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duress_cancel_of_an_sos_looks_like_a_real_cancel_on_screen() {
    let clock = ManualClock::new(T0);
    let a = start(&clock).await;
    let b = start(&clock).await;
    befriend(&a, "Alice", &b, "Bob").await;
    let put = reqwest::Method::PUT;
    let (s, _) = send_json(
        &a,
        put.clone(),
        "/v1/circle/codes",
        json!({"code": "2468", "duress_code": "1357"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let here = |lat: f64, lon: f64| json!({"lat": lat, "lon": lon});
    let mut seen = Vec::new();
    for code in ["2468", "1357"] {
        let (s, _) = send_json(&a, put.clone(), "/v1/location", here(IVRY.0, IVRY.1)).await;
        assert_eq!(s, StatusCode::OK);
        let (s, sos) = a.post("/v1/sos", json!({"note": "help"})).await;
        assert_eq!(s, StatusCode::CREATED, "{sos}");
        settle(500).await;
        clock.advance(30);
        let (s, shown) = a.post("/v1/sos/cancel", json!({"code": code})).await;
        assert_eq!(s, StatusCode::OK, "{shown}");
        settle(500).await;
        let (_, right_after) = a.get("/v1/sos").await;
        // The person moves on, time passes.
        let (s, _) = send_json(&a, put.clone(), "/v1/location", here(48.8200, 2.3900)).await;
        assert_eq!(s, StatusCode::OK);
        for _ in 0..4 {
            clock.advance(120);
            settle(300).await;
        }
        let (_, later) = a.get("/v1/sos").await;
        seen.push((right_after, later));
        if code == "1357" {
            let (s, _) = a.post("/v1/sos/cancel", json!({"code": "2468"})).await;
            assert_eq!(s, StatusCode::OK);
        }
    }
    let shown = |v: &Value| -> Value {
        let start = v["raised_at"].as_u64().unwrap_or(0);
        let mut out = serde_json::Map::new();
        for (k, x) in v.as_object().expect("an SOS view") {
            let x = match k.as_str() {
                "id" => continue,
                "raised_at" => json!(0),
                "recipients" => json!(x.as_array().map(|r| r
                    .iter()
                    .map(|r| json!({
                        "name": r["name"],
                        "acked_after": r["acked_at"].as_u64().map(|t| t.saturating_sub(start)),
                    }))
                    .collect::<Vec<_>>())),
                _ => x.clone(),
            };
            out.insert(k.clone(), x);
        }
        Value::Object(out)
    };
    let (real, duress) = (&seen[0], &seen[1]);
    assert_eq!(
        shown(&duress.0),
        shown(&real.0),
        "right after the cancel, the duress SOS's view differs from a real cancel's"
    );
    assert_eq!(
        shown(&duress.1),
        shown(&real.1),
        "8 minutes after the cancel, the duress SOS's view differs from a real cancel's"
    );
}
