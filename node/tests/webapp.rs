//! The phone's web app as the node's API serves it: the shell and its files
//! with their content types, a strict Content-Security-Policy, cache
//! validation, the `Host` check, and the API still answering beside it.

mod common;

use common::api::Served;
use reqwest::StatusCode;
use ronde_node::webapp::{ASSETS, CONTENT_SECURITY_POLICY};
use ronde_node::NodeConfig;

/// A node and its API with the app.
async fn serve() -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    Served::start(NodeConfig::for_tests(dir.path()))
        .await
        .keeping(dir)
}

/// `GET path` with the token.
async fn get(s: &Served, path: &str) -> reqwest::Response {
    s.http.get(s.url(path)).send().await.expect("send")
}

/// Stop the API and the node, checking that the API stops cleanly.
async fn stop(s: Served) {
    if let Err(e) = s.stop().await {
        panic!("the API stops: {e}");
    }
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The headers every file of the app carries.
fn assert_hardened(resp: &reqwest::Response, path: &str) {
    let csp = header(resp, "content-security-policy");
    assert_eq!(csp, CONTENT_SECURITY_POLICY, "{path}");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{path}: {directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(header(resp, "x-content-type-options"), "nosniff", "{path}");
    assert_eq!(header(resp, "referrer-policy"), "no-referrer", "{path}");
    assert_eq!(header(resp, "x-frame-options"), "DENY", "{path}");
    assert_eq!(header(resp, "cache-control"), "no-cache", "{path}");
    assert!(header(resp, "etag").starts_with('"'), "{path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_and_its_files_are_served_with_their_types_and_csp() {
    let s = serve().await;
    let expected = [
        ("/", "text/html; charset=utf-8"),
        ("/app/", "text/html; charset=utf-8"),
        ("/app/index.html", "text/html; charset=utf-8"),
        ("/app/app.js", "text/javascript; charset=utf-8"),
        ("/app/i18n.js", "text/javascript; charset=utf-8"),
        ("/app/app.css", "text/css; charset=utf-8"),
        ("/app/manifest.webmanifest", "application/manifest+json"),
        ("/app/sw.js", "text/javascript; charset=utf-8"),
        ("/app/icon.svg", "image/svg+xml"),
        ("/app/icon-maskable.svg", "image/svg+xml"),
    ];
    for (path, ct) in expected {
        let resp = get(&s, path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&resp, "content-type"), ct, "{path}");
        assert_hardened(&resp, path);
        let body = resp.bytes().await.expect("body");
        assert!(!body.is_empty(), "{path}");
    }
    // Every embedded file is reachable under /app/.
    for a in ASSETS {
        let resp = get(&s, &format!("/app/{}", a.name)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", a.name);
    }

    // The shell loads its scripts from files, never inline.
    let html = get(&s, "/").await.text().await.expect("html");
    assert!(html.contains(r#"<script src="/app/app.js" defer></script>"#));
    assert!(html.contains(r#"<link rel="manifest" href="/app/manifest.webmanifest">"#));
    assert!(!html.contains("<script>"), "no inline script");

    // The manifest is valid JSON and makes the app installable.
    let manifest: serde_json::Value = get(&s, "/app/manifest.webmanifest")
        .await
        .json()
        .await
        .expect("manifest is JSON");
    assert_eq!(manifest["start_url"], "/");
    assert_eq!(manifest["scope"], "/");
    assert_eq!(manifest["display"], "standalone");
    let icons = manifest["icons"].as_array().expect("icons");
    assert!(!icons.is_empty());
    for icon in icons {
        let src = icon["src"].as_str().expect("src");
        assert_eq!(get(&s, src).await.status(), StatusCode::OK, "{src}");
    }

    // The service worker may control the whole origin, carries the shell's
    // version, and never caches the API.
    let sw = get(&s, "/app/sw.js").await;
    assert_eq!(header(&sw, "service-worker-allowed"), "/");
    let sw = sw.text().await.expect("sw");
    assert!(sw.contains(ronde_node::webapp::shell_version()));
    assert!(!sw.contains("__RONDE_SHELL_VERSION__"));
    assert!(sw.contains("startsWith('/v1/')"));
    // Every file the service worker caches exists.
    for path in [
        "/app/app.js",
        "/app/i18n.js",
        "/app/app.css",
        "/app/icon.svg",
    ] {
        assert!(
            sw.contains(&format!("'{path}'")),
            "{path} in the shell list"
        );
    }
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_redirects_unknown_files_and_the_host_check() {
    let s = serve().await;
    // Revalidation: the same ETag gives 304 without a body.
    let first = get(&s, "/app/app.js").await;
    let etag = header(&first, "etag");
    let again = s
        .http
        .get(format!("{}/app/app.js", s.base))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&again, "etag"), etag);
    assert!(again.bytes().await.expect("body").is_empty());
    let other = s
        .http
        .get(format!("{}/app/app.js", s.base))
        .header("If-None-Match", "\"0000\"")
        .send()
        .await
        .expect("send");
    assert_eq!(other.status(), StatusCode::OK);

    // /app redirects to /app/.
    let resp = get(&s, "/app").await;
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&resp, "location"), "/app/");

    // Unknown files: the API's JSON 404.
    for path in [
        "/app/nope.js",
        "/app/../Cargo.toml",
        "/app/a/b",
        "/index.html",
    ] {
        let resp = get(&s, path).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = resp.json().await.expect("JSON error");
        assert_eq!(body["error"], "not_found", "{path}");
    }

    // The DNS-rebinding defence covers the app too.
    let resp = s
        .http
        .get(format!("{}/", s.base))
        .header("Host", "evil.example")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = s
        .http
        .get(format!("{}/", s.base))
        .header("Host", "localhost")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);

    // Writing to the app is not a thing.
    let resp = s
        .http
        .post(format!("{}/app/app.js", s.base))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

    // The API still answers beside it.
    let resp = get(&s, "/v1/status").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(header(&resp, "content-type").starts_with("application/json"));
    stop(s).await;
}
