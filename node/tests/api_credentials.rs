//! The local API's credential, tested as another app on the device would
//! attack it: a real node and its API on 127.0.0.1, and an attacker
//! ("Mum") whose invite the person's node must not accept on the word of
//! whoever reaches the port. Without the token, with a wrong one, or with
//! a replayed login code, nothing happens; with the token written to the
//! data directory, or the session cookie of a login URL, the API works.

mod common;

use common::api::{client, json_of, Served};
use reqwest::StatusCode;
use ronde_node::api::{read_token, SESSION_COOKIE_PREFIX, TOKEN_FILE};
use ronde_node::{Node, NodeConfig};
use serde_json::json;

/// Accept `code` on `served` as someone holding these request headers.
fn accept(
    served: &Served,
    http: &reqwest::Client,
    code: &str,
    headers: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut req = http
        .post(served.url("/v1/contacts/accept"))
        .json(&json!({ "code": code }));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_app_cannot_accept_an_invite_without_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let person = Served::start(NodeConfig::for_tests(dir.path())).await;
    let mum_dir = tempfile::tempdir().expect("tempdir");
    let mum = Node::start(NodeConfig::for_tests(mum_dir.path()))
        .await
        .expect("attacker starts");
    let invite = mum
        .create_invite(Some("Mum".into()), 600)
        .await
        .expect("invite");
    let stranger = client(None);

    // No credential, a wrong token, another scheme, a forged cookie: 401
    // with the usual body, and nothing happened.
    let forged = format!(
        "{SESSION_COOKIE_PREFIX}{}=00",
        person.base.rsplit(':').next().unwrap_or("")
    );
    for headers in [
        vec![],
        vec![("authorization", "Bearer 00000000")],
        vec![("authorization", "Bearer ")],
        vec![("authorization", "Basic bXVtOm11bQ==")],
        vec![("cookie", forged.as_str())],
    ] {
        let (status, body) = json_of(
            accept(&person, &stranger, &invite.code, &headers)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
        assert_eq!(body["error"], json!("unauthorized"), "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("api-token"), "says what to do: {message}");
    }
    let contacts = person.node.contacts().await.expect("contacts");
    assert!(contacts.contacts.is_empty(), "the invite was not accepted");

    // Reads too, the event stream and unknown routes included.
    for path in [
        "/v1/status",
        "/v1/events",
        "/v1/inbox",
        "/v1/circle",
        "/v1/nope",
    ] {
        let resp = stranger.get(person.url(path)).send().await.expect("send");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // The Host check still comes first.
    let resp = stranger
        .get(person.url("/v1/status"))
        .header("host", "evil.example")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // The app's files need no credential: they hold no data.
    let resp = stranger
        .get(person.url("/app/"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);

    // The token the node wrote to its data directory works.
    let token = read_token(dir.path()).expect("the node wrote <data-dir>/api-token");
    assert_eq!(token, person.auth.token());
    let bearer = format!("Bearer {token}");
    let (status, body) = json_of(
        accept(
            &person,
            &stranger,
            &invite.code,
            &[("authorization", bearer.as_str())],
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let _ = person.stop().await;
    let _ = mum.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_file_is_owner_only_and_new_at_every_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Served::start(NodeConfig::for_tests(dir.path())).await;
    let file = dir.path().join(TOKEN_FILE);
    let mode = std::fs::metadata(&file)
        .expect("api-token")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let old = first.auth.token().to_owned();
    let _ = first.stop().await;

    let second = Served::start(NodeConfig::for_tests(dir.path())).await;
    assert_ne!(second.auth.token(), old);
    assert_eq!(
        read_token(dir.path()).ok().as_deref(),
        Some(second.auth.token())
    );
    let mode = std::fs::metadata(&file)
        .expect("api-token")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    // The last run's token is refused.
    let resp = client(Some(&old))
        .get(second.url("/v1/status"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let _ = second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_code_opens_the_app_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let person = Served::start(NodeConfig::for_tests(dir.path())).await;
    let mum_dir = tempfile::tempdir().expect("tempdir");
    let mum = Node::start(NodeConfig::for_tests(mum_dir.path()))
        .await
        .expect("attacker starts");
    let invite = mum
        .create_invite(Some("Mum".into()), 600)
        .await
        .expect("invite");
    let browser = client(None);
    let login = person.login_url();

    // The person opens the URL the node printed: a cookie, on to the app.
    let resp = browser.get(&login).send().await.expect("send");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/app/")
    );
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attr), "{attr} in {set_cookie}");
    }
    let session = set_cookie.split(';').next().expect("name=value").to_owned();
    assert!(session.starts_with(SESSION_COOKIE_PREFIX), "{session}");

    // The cookie authenticates the app's calls, the event stream included.
    let with_cookie = |path: &str| {
        browser
            .get(person.url(path))
            .header("cookie", session.as_str())
    };
    assert_eq!(
        with_cookie("/v1/status")
            .send()
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
    let events = with_cookie("/v1/events").send().await.expect("send");
    assert_eq!(events.status(), StatusCode::OK);
    drop(events);

    // Another app replays the login code it saw: refused, no cookie.
    let resp = browser.get(&login).send().await.expect("send");
    assert!(resp.headers().get("set-cookie").is_none());
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], json!("bad_login_code"));
    let (status, _) = json_of(
        browser
            .get(person.url("/login?code=00"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // … nor does the code itself stand in for the token or the cookie.
    let code = login.rsplit('=').next().unwrap_or_default();
    let bearer = format!("Bearer {code}");
    let fake_session = format!("{}={code}", session.split('=').next().unwrap_or_default());
    for headers in [
        vec![("authorization", bearer.as_str())],
        vec![("cookie", fake_session.as_str())],
    ] {
        let (status, body) = json_of(
            accept(&person, &browser, &invite.code, &headers)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
    }
    // A cross-site page cannot use the person's cookie to change anything.
    let (status, _) = json_of(
        accept(
            &person,
            &browser,
            &invite.code,
            &[
                ("cookie", session.as_str()),
                ("sec-fetch-site", "cross-site"),
            ],
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(person
        .node
        .contacts()
        .await
        .expect("contacts")
        .contacts
        .is_empty());

    // The app itself can.
    let (status, body) = json_of(
        accept(
            &person,
            &browser,
            &invite.code,
            &[
                ("cookie", session.as_str()),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Whoever holds the credential gets a new login link; nobody else.
    let (status, _) = json_of(
        browser
            .post(person.url("/v1/login-links"))
            .json(&json!({}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = person.post("/v1/login-links", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let path = body["path"].as_str().expect("path");
    assert!(path.starts_with("/login?code="), "{path}");
    let first = browser.get(person.url(path)).send().await.expect("send");
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let again = browser.get(person.url(path)).send().await.expect("send");
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);

    let _ = person.stop().await;
    let _ = mum.shutdown().await;
}
