//! The local HTTP API over real HTTP, against a real node (memory
//! transport, temporary directory, no mDNS, difficulty 8), and the OpenAPI
//! description checked against the router.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
mod common;

use common::api::Served;
use ronde_node::api::{ERROR_CODES, ROUTES};
use ronde_node::NodeConfig;
use serde_json::{json, Value};

const IVRY: (f64, f64) = (48.8156, 2.3844);

/// A node (at Ivry) and its API on 127.0.0.1:0.
async fn start() -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = NodeConfig::for_tests(dir.path());
    config.location = Some(IVRY);
    Served::start(config).await.keeping(dir)
}

/// Stop the API and the node, checking that the API stops cleanly.
async fn stop(h: Served) {
    if let Err(e) = h.stop().await {
        panic!("the API stops cleanly: {e}");
    }
}

/// Status and parsed JSON body of a response, checking that it is JSON.
async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.expect("body");
    assert!(
        ct.starts_with("application/json"),
        "content type {ct:?} for {status}: {text}"
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

/// Checks the error shape and returns the code.
fn error_code(status: StatusCode, body: &Value) -> String {
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("error body is an object: {body}"));
    assert_eq!(
        obj.len(),
        2,
        "error body has exactly `error` and `message`: {body}"
    );
    let code = obj["error"].as_str().expect("error is a string").to_owned();
    let message = obj["message"].as_str().expect("message is a string");
    assert!(!message.is_empty());
    assert!(
        ERROR_CODES.contains(&code.as_str()),
        "code {code} is documented"
    );
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status}"
    );
    code
}

fn post_report(h: &Served, body: Value) -> reqwest::RequestBuilder {
    h.http.post(h.url("/v1/reports")).json(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_location() {
    let h = start().await;
    let (status, body) = json_of(h.http.get(h.url("/v1/status")).send().await.expect("send")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["peer_id"], json!(h.node.peer_id().to_string()));
    assert_eq!(body["areas"].as_array().map(Vec::len), Some(9));
    assert_eq!(body["connected_peers"], json!(0));
    assert_eq!(body["stored_reports"], json!(0));
    assert!(body["listen_addrs"].is_array());

    let resp = h
        .http
        .put(h.url("/v1/location"))
        .json(&json!({"lat": 51.5007, "lon": -0.1246}))
        .send()
        .await;
    let (status, body) = json_of(resp.expect("send")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let areas = body["areas"].as_array().expect("areas");
    assert_eq!(areas.len(), 9);
    assert_eq!(areas[0], json!("gcpuv"));
    stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_shows_in_nearby_reports() {
    let h = start().await;
    let resp = post_report(
        &h,
        json!({"category": "poor_lighting", "lat": IVRY.0, "lon": IVRY.1}),
    )
    .send()
    .await;
    let (status, published) = json_of(resp.expect("send")).await;
    assert_eq!(status, StatusCode::CREATED, "{published}");
    let id = published["id"].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 64);
    let cell = published["cell"].as_str().expect("cell").to_owned();
    assert_eq!(cell.len(), 7);
    assert!(published["expires_at"].as_u64().is_some());
    assert_eq!(published["published"], json!(false), "no peer yet");

    // A coarser one, 6 characters.
    let resp = post_report(
        &h,
        json!({"category": "harassment", "lat": IVRY.0, "lon": IVRY.1, "precision": 6}),
    );
    let (status, coarse) = json_of(resp.send().await.expect("send")).await;
    assert_eq!(status, StatusCode::CREATED, "{coarse}");
    assert_eq!(coarse["cell"].as_str().map(str::len), Some(6));

    let url = format!(
        "{}?lat={}&lon={}&radius_m=500",
        h.url("/v1/reports"),
        IVRY.0,
        IVRY.1
    );
    let (status, nearby) = json_of(h.http.get(url).send().await.expect("send")).await;
    assert_eq!(status, StatusCode::OK, "{nearby}");
    let reports = nearby["reports"].as_array().expect("reports");
    assert_eq!(reports.len(), 2, "{nearby}");
    let mine = reports
        .iter()
        .find(|r| r["id"] == json!(id))
        .expect("the report is there");
    assert_eq!(mine["category"], json!("poor_lighting"));
    assert_eq!(mine["cell"], json!(cell));
    assert_eq!(mine["distance_m"], json!(0.0));
    for key in ["center", "observed_at", "expires_at", "age_secs"] {
        assert!(!mine[key].is_null(), "{key} in {mine}");
    }
    let cells = nearby["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 2);
    assert!(cells.iter().all(|c| c["reports"] == json!(1)), "{nearby}");

    // Far away: nothing; default radius works.
    let url = format!("{}?lat=51.5007&lon=-0.1246", h.url("/v1/reports"));
    let (status, far) = json_of(h.http.get(url).send().await.expect("send")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(far["reports"], json!([]));
    assert_eq!(far["cells"], json!([]));
    stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_json_error() {
    let h = start().await;
    let raw = |body: &'static str| {
        h.http
            .post(h.url("/v1/reports"))
            .header("content-type", "application/json")
            .body(body)
    };
    let (lat, lon) = IVRY;
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            "truncated JSON",
            raw(r#"{"category": "harassment""#),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "empty body",
            raw(""),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "NaN is not JSON",
            raw(r#"{"category":"harassment","lat":NaN,"lon":2}"#),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "missing field",
            post_report(&h, json!({"category": "harassment", "lat": lat})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
        ),
        (
            "unknown field",
            post_report(
                &h,
                json!({"category": "harassment", "lat": lat, "lon": lon, "name": "me"}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
        ),
        (
            "wrong type",
            post_report(
                &h,
                json!({"category": "harassment", "lat": "48.8", "lon": lon}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "not an object",
            post_report(&h, json!(["harassment", lat, lon])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "latitude out of range",
            post_report(
                &h,
                json!({"category": "harassment", "lat": 91.0, "lon": lon}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_latitude",
        ),
        (
            "longitude out of range",
            post_report(
                &h,
                json!({"category": "harassment", "lat": lat, "lon": -180.5}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_longitude",
        ),
        (
            "precision 8",
            post_report(
                &h,
                json!({"category": "harassment", "lat": lat, "lon": lon, "precision": 8}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_precision",
        ),
        (
            "no content type",
            h.http
                .post(h.url("/v1/reports"))
                .body(r#"{"category":"harassment","lat":1,"lon":2}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "form content type",
            h.http
                .post(h.url("/v1/reports"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("category=harassment&lat=1&lon=2"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "huge body",
            post_report(
                &h,
                json!({"category": "x".repeat(10_000), "lat": lat, "lon": lon}),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "location NaN-like",
            h.http
                .put(h.url("/v1/location"))
                .json(&json!({"lat": 1e300, "lon": 0})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_latitude",
        ),
        (
            "location missing lon",
            h.http.put(h.url("/v1/location")).json(&json!({"lat": 1})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
        ),
        (
            "query NaN",
            h.http.get(h.url("/v1/reports?lat=NaN&lon=2")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_latitude",
        ),
        (
            "query lon",
            h.http.get(h.url("/v1/reports?lat=1&lon=200")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_longitude",
        ),
        (
            "query missing",
            h.http.get(h.url("/v1/reports?lat=1")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
        ),
        (
            "query empty",
            h.http.get(h.url("/v1/reports")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
        ),
        (
            "query text",
            h.http.get(h.url("/v1/reports?lat=north&lon=2")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "query unknown",
            h.http.get(h.url("/v1/reports?lat=1&lon=2&zoom=3")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
        ),
        (
            "radius 0",
            h.http.get(h.url("/v1/reports?lat=1&lon=2&radius_m=0")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_radius",
        ),
        (
            "radius huge",
            h.http.get(h.url("/v1/reports?lat=1&lon=2&radius_m=50000")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_radius",
        ),
        (
            "radius -1",
            h.http.get(h.url("/v1/reports?lat=1&lon=2&radius_m=-1")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_radius",
        ),
        (
            "unknown route",
            h.http.get(h.url("/v1/nope")),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "wrong method",
            h.http.delete(h.url("/v1/status")),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "rebound host",
            h.http
                .get(h.url("/v1/status"))
                .header("host", "evil.example:7300"),
            StatusCode::FORBIDDEN,
            "forbidden_host",
        ),
    ];
    for (what, req, want_status, want_code) in cases {
        let (status, body) = json_of(req.send().await.expect("send")).await;
        assert_eq!(status, want_status, "{what}: {body}");
        assert_eq!(error_code(status, &body), want_code, "{what}: {body}");
    }

    // Field errors name the field.
    let resp = post_report(
        &h,
        json!({"category": "harassment", "lat": "48.8", "lon": lon}),
    )
    .send()
    .await;
    let (_, body) = json_of(resp.expect("send")).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`lat`"),
        "{body}"
    );
    let resp = post_report(&h, json!({"category": "harassment", "lat": lat}))
        .send()
        .await;
    let (_, body) = json_of(resp.expect("send")).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`lon`"),
        "{body}"
    );

    // An unknown category names the valid ones.
    let resp = post_report(&h, json!({"category": "theft", "lat": lat, "lon": lon}))
        .send()
        .await;
    let (status, body) = json_of(resp.expect("send")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(status, &body), "unknown_category");
    let message = body["message"].as_str().unwrap_or_default();
    for name in ronde_protocol::Category::NAMES {
        assert!(message.contains(name), "{message}");
    }

    // Nothing was stored by all that.
    let (_, status) = json_of(h.http.get(h.url("/v1/status")).send().await.expect("send")).await;
    assert_eq!(status["stored_reports"], json!(0));
    stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_new_reports() {
    let h = start().await;
    let resp = h.http.get(h.url("/v1/events")).send().await.expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let mut stream = resp.bytes_stream();

    let resp = post_report(
        &h,
        json!({"category": "following", "lat": IVRY.0, "lon": IVRY.1}),
    )
    .send()
    .await;
    let (status, published) = json_of(resp.expect("send")).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = published["id"].as_str().expect("id").to_owned();

    let data = wait_for_report_event(&mut stream, &id).await;
    assert_eq!(data["type"], json!("report"));
    assert_eq!(data["id"], json!(id));
    assert_eq!(data["category"], json!("following"));

    // Shutting the server down ends the open stream instead of hanging.
    stop(h).await;
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while stream.next().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the event stream ends on shutdown");
}

/// Reads server-sent events until one named `report` carries `id`.
async fn wait_for_report_event(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin),
    id: &str,
) -> Value {
    let mut text = String::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
            if let Some(ev) = text
                .split("\n\n")
                .find(|e| e.contains("event: report") && e.contains(id))
            {
                return Some(ev.to_owned());
            }
        }
        None
    })
    .await;
    let event = found
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no report event for {id} in {text:?}"));
    let data = event
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("data line");
    serde_json::from_str(data).expect("JSON data")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_reports_from_peers() {
    let a = start().await;
    let b = start().await;
    let addr = a
        .node
        .listen_addrs()
        .await
        .expect("addrs")
        .into_iter()
        .next()
        .expect("an address");
    b.node.dial(addr).await.expect("dial");

    let resp = b.http.get(b.url("/v1/events")).send().await.expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.bytes_stream();

    let resp = post_report(
        &a,
        json!({"category": "exhibitionism", "lat": IVRY.0, "lon": IVRY.1}),
    )
    .send()
    .await;
    let (status, published) = json_of(resp.expect("send")).await;
    assert_eq!(status, StatusCode::CREATED, "{published}");
    let id = published["id"].as_str().expect("id").to_owned();

    let data = wait_for_report_event(&mut stream, &id).await;
    assert_eq!(data["category"], json!("exhibitionism"));
    assert_eq!(
        data["distance_m"],
        json!(0.0),
        "measured from B's location, the same point"
    );

    // And B lists it.
    let url = format!("{}?lat={}&lon={}", b.url("/v1/reports"), IVRY.0, IVRY.1);
    let (_, nearby) = json_of(b.http.get(url).send().await.expect("send")).await;
    assert!(
        nearby["reports"]
            .as_array()
            .expect("reports")
            .iter()
            .any(|r| r["id"] == json!(id)),
        "{nearby}"
    );
    drop(stream);
    stop(b).await;
    stop(a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_is_503() {
    let h = start().await;
    h.node.shutdown().await.expect("shutdown");
    let (status, body) = json_of(h.http.get(h.url("/v1/status")).send().await.expect("send")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(status, &body), "node_stopped");
    let resp = post_report(
        &h,
        json!({"category": "harassment", "lat": IVRY.0, "lon": IVRY.1}),
    )
    .send()
    .await;
    let (status, body) = json_of(resp.expect("send")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    stop(h).await;
}

fn openapi() -> serde_yaml::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("docs/openapi.yaml");
    serde_yaml::from_str(&text).expect("docs/openapi.yaml parses as YAML")
}

#[test]
fn openapi_describes_exactly_the_routes_and_error_codes() {
    let doc = openapi();
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1"), "OpenAPI 3.1, got {version:?}");
    let paths = doc["paths"].as_mapping().expect("paths");
    let mut described = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("path string");
        for (method, op) in item.as_mapping().expect("path item") {
            let method = method.as_str().expect("method");
            if ["get", "put", "post", "delete", "patch", "head", "options"].contains(&method) {
                assert!(
                    op["operationId"].is_string(),
                    "{method} {path} has an operationId"
                );
                assert!(
                    op["responses"].is_mapping(),
                    "{method} {path} has responses"
                );
                described.insert((method.to_uppercase(), path.to_owned()));
            }
        }
    }
    let routed: BTreeSet<_> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        described, routed,
        "docs/openapi.yaml and api::ROUTES differ"
    );

    let codes: BTreeSet<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]
        ["enum"]
        .as_sequence()
        .expect("Error.error enum")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let ours: BTreeSet<&str> = ERROR_CODES.iter().copied().collect();
    assert_eq!(
        codes, ours,
        "the error codes of docs/openapi.yaml and api::ERROR_CODES differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers() {
    let h = start().await;
    // The circle's routes need contacts first: node/tests/circle_api.rs.
    let circle = [
        "/v1/circle",
        "/v1/contacts",
        "/v1/journey",
        "/v1/sos",
        "/v1/inbox",
    ];
    // Flagging needs a directory listing the place: node/tests/directory.rs.
    for (method, path) in ROUTES
        .iter()
        .filter(|(_, p)| !circle.iter().any(|c| p.starts_with(c)))
        .filter(|(_, p)| !p.ends_with("/flag"))
        // The basemap needs a relay to fetch it from: crates/relay/tests/basemap.rs.
        .filter(|(_, p)| !p.starts_with("/v1/basemap."))
        .filter(|(_, p)| !p.starts_with("/v1/basemap/"))
        // The login needs a code: node/tests/api_credentials.rs.
        .filter(|(_, p)| *p != "/login")
    {
        let url = h.url(path);
        let req = match *method {
            "GET" if *path == "/v1/reports" || *path == "/v1/safe-places" => {
                h.http.get(format!("{url}?lat=1&lon=2"))
            }
            "GET" => h.http.get(url),
            "PUT" => h.http.put(url).json(&json!({"lat": IVRY.0, "lon": IVRY.1})),
            "POST" => h
                .http
                .post(url)
                .json(&json!({"category": "harassment", "lat": IVRY.0, "lon": IVRY.1})),
            other => panic!("no request for method {other}"),
        };
        let resp = req.send().await.expect("send");
        assert!(
            resp.status().is_success(),
            "{method} {path}: {}",
            resp.status()
        );
    }
    stop(h).await;
}
