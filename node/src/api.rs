//! The local HTTP API that the app on the same device talks to.
//!
//! It is a thin JSON layer over [`Node`]: every handler checks its input,
//! calls one method of the handle and turns the answer (or the error) into
//! JSON. It binds to `127.0.0.1` by default and is meant for the same device
//! only; the routes are described in `docs/openapi.yaml`.
//!
//! | method | path          | what                                              |
//! |--------|---------------|---------------------------------------------------|
//! | GET    | `/login`      | `?code=` → the web app's session cookie, on to `/app/` |
//! | POST   | `/v1/login-links` | → 201 `{path}`: a new one-time login link of the web app |
//! | GET    | `/v1/status`  | peer id, listen addresses, peers, areas, store size |
//! | PUT    | `/v1/location`| `{lat, lon}` → the gossip areas now followed      |
//! | POST   | `/v1/reports` | `{category, lat, lon, precision?}` → 201          |
//! | GET    | `/v1/reports` | `?lat=&lon=&radius_m=` → live reports near a point |
//! | GET    | `/v1/events`  | server-sent events: new nearby reports, circle alerts and messages |
//! | GET    | `/v1/basemap.pmtiles` | the cached city basemap (`Range` supported); `POST /v1/basemap/fetch` `{url}` caches it (`basemap_api.rs`) |
//!
//! The trusted circle's routes (contacts, journeys, SOS, inbox) are listed
//! in `circle_api.rs`; the city directory's in `directory_api.rs`:
//!
//! | method | path                         | what |
//! |--------|------------------------------|------|
//! | GET    | `/v1/safe-places`            | `?lat=&lon=&radius_m=` → safe places nearest first, with freshness and distance |
//! | GET    | `/v1/directory`              | the city, serial, times, mediators and emergency contacts (`directory: null` when none yet) |
//! | POST   | `/v1/safe-places/{id}/flag`  | `{reason}` → 202: an anonymous flag, sealed and sent to the relays |
//!
//! Every error is a JSON object `{"error": "<code>", "message": "<sentence>"}`
//! (see [`ApiError`]), including axum's own rejections, unknown routes and
//! wrong methods.
//!
//! Every route but the web app's files and `/login` needs the node's
//! credential (`api_auth.rs`, [`ApiAuth`]): the token the node writes to
//! `<data-dir>/api-token` at every start, sent as `Authorization: Bearer`,
//! or the session cookie that a one-time login URL sets for the web app.
//! Anything else gets `401 unauthorized`.
//!
//! Two cheap defences against web pages that try to reach a local API: a
//! request whose `Host` header is a domain name other than `localhost` is
//! refused (DNS rebinding), before the credential is even looked at, and
//! request bodies must be sent as `application/json`, which a cross-site
//! form cannot do without a CORS preflight that this API never answers.
//!
//! The API never logs coordinates or report contents.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRef, FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use ronde_protocol::{Category, GeoError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

pub use crate::api_error::{ApiError, ErrorBody};
use crate::Node;

#[path = "api_auth.rs"]
mod auth;
#[path = "basemap_api.rs"]
mod basemap_api;
#[path = "circle_api.rs"]
mod circle_api;
#[path = "directory_api.rs"]
mod directory_api;

pub use auth::{
    read_token, session_cookie_name, write_token, ApiAuth, LOGIN_PATH, MAX_LOGIN_CODES,
    MAX_SESSIONS, SESSION_COOKIE_MAX_AGE, SESSION_COOKIE_PREFIX, TOKEN_FILE,
};
pub use directory_api::{DEFAULT_PLACES_RADIUS_M, MAX_PLACES_RADIUS_M};

/// Largest request body accepted, in bytes. The largest valid body is a
/// report of well under 200 bytes.
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// Search radius of `GET /v1/reports` when none is given, metres.
pub const DEFAULT_RADIUS_M: f64 = 2_000.0;
/// Largest search radius of `GET /v1/reports`, metres.
pub const MAX_RADIUS_M: f64 = 10_000.0;
/// Interval of the keep-alive comments on `GET /v1/events`.
pub const SSE_KEEP_ALIVE_SECS: u64 = 15;

/// Every route of the API as `(method, path)`; `docs/openapi.yaml` describes
/// exactly these (a test checks it).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/login"),
    ("POST", "/v1/login-links"),
    ("GET", "/v1/status"),
    ("PUT", "/v1/location"),
    ("POST", "/v1/reports"),
    ("GET", "/v1/reports"),
    ("GET", "/v1/events"),
    ("GET", "/v1/circle"),
    ("GET", "/v1/contacts"),
    ("POST", "/v1/contacts/invites"),
    ("POST", "/v1/contacts/accept"),
    ("POST", "/v1/contacts/{contact}/approve"),
    ("DELETE", "/v1/contacts/{contact}"),
    ("POST", "/v1/journey"),
    ("GET", "/v1/journey"),
    ("POST", "/v1/journey/arrived"),
    ("POST", "/v1/journey/cancel"),
    ("POST", "/v1/sos"),
    ("GET", "/v1/sos"),
    ("POST", "/v1/journey/extend"),
    ("POST", "/v1/sos/cancel"),
    ("PUT", "/v1/circle/codes"),
    ("DELETE", "/v1/circle/codes"),
    ("GET", "/v1/inbox"),
    ("POST", "/v1/inbox/ack"),
    ("GET", "/v1/circle/journeys"),
    ("GET", "/v1/safe-places"),
    ("POST", "/v1/safe-places/{id}/flag"),
    ("GET", "/v1/directory"),
    ("GET", "/v1/basemap"),
    ("GET", "/v1/basemap.pmtiles"),
    ("POST", "/v1/basemap/fetch"),
];

/// Every `error` code this API answers with; `docs/openapi.yaml` lists
/// exactly these (a test checks it).
pub const ERROR_CODES: &[&str] = &[
    "malformed_json",
    "missing_field",
    "unknown_field",
    "invalid_field",
    "unknown_category",
    "bad_latitude",
    "bad_longitude",
    "bad_precision",
    "bad_cell",
    "bad_radius",
    "invalid_input",
    "bad_query",
    "bad_body",
    "unsupported_media_type",
    "body_too_large",
    "forbidden_host",
    "unauthorized",
    "bad_login_code",
    "not_found",
    "method_not_allowed",
    "node_stopped",
    "storage_full",
    "storage_error",
    "internal",
    "unknown_contact",
    "ambiguous_contact",
    "bad_invite",
    "invite_expired",
    "own_invite",
    "already_contact",
    "circle_full",
    "too_many_invites",
    "not_awaiting_approval",
    "safety_number_mismatch",
    "bad_name",
    "bad_note",
    "no_contacts",
    "journey_active",
    "no_journey",
    "bad_eta",
    "sos_active",
    "no_sos",
    "code_required",
    "wrong_code",
    "bad_code",
    "invite_not_found",
    "bad_place_id",
    "unknown_place",
    "unknown_reason",
    "no_basemap",
    "no_data_dir",
    "invalid_url",
    "basemap_fetch_failed",
    "basemap_unwritable",
    "basemap_unreadable",
];

/// A JSON request body, read with this API's own error answers: the
/// content type must be JSON, the body must parse, and fields must match.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(req, state).await?;
        parse_object(&bytes).map(JsonBody)
    }
}

/// Like [`JsonBody`], for requests whose fields are all optional: the
/// content type must still be JSON (so that a web page cannot send it
/// without a CORS preflight), but the body may be empty.
#[derive(Debug, Clone)]
pub struct JsonOrEmpty<T>(pub T);

impl<T, S> FromRequest<S> for JsonOrEmpty<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonOrEmpty(T::default()));
        }
        parse_object(&bytes).map(JsonOrEmpty)
    }
}

/// The body of a request that must be sent as JSON.
async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON, sent with `Content-Type: application/json`",
        ));
    }
    Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is over the {MAX_BODY_BYTES}-byte limit"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("the request body could not be read: {}", r.body_text()),
            )
        }
    })
}

/// Parse a JSON object into `T`, with this API's error codes.
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Through a `Value` first: serde would also read a struct from a
    // JSON array of its fields, which this API does not accept.
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(json_error)?;
    if !value.is_object() {
        return Err(ApiError::invalid(
            "invalid_field",
            "the request body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        let code = if text.starts_with("missing field") {
            "missing_field"
        } else if text.starts_with("unknown field") {
            "unknown_field"
        } else {
            "invalid_field"
        };
        let message = if path == "." || code != "invalid_field" {
            format!("the JSON body does not fit this request: {text}")
        } else {
            format!("the JSON body does not fit this request: field `{path}`: {text}")
        };
        ApiError::invalid(code, message)
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A body that does not parse as JSON at all.
fn json_error(e: serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "malformed_json",
        format!("the request body is not valid JSON: {e}"),
    )
}

fn check_coordinates(lat: f64, lon: f64) -> Result<(), ApiError> {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(GeoError::BadLatitude(lat).into());
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return Err(GeoError::BadLongitude(lon).into());
    }
    Ok(())
}

fn parse_category(s: &str) -> Result<Category, ApiError> {
    s.parse::<Category>()
        .map_err(|e| ApiError::invalid("unknown_category", e.to_string()))
}

fn check_precision(p: Option<i64>) -> Result<Option<u8>, ApiError> {
    match p {
        None => Ok(None),
        Some(p @ (6 | 7)) => Ok(u8::try_from(p).ok()),
        Some(p) => Err(ApiError::invalid(
            "bad_precision",
            format!("cell precision {p} is not allowed; use 6 (about 1 km) or 7 (about 150 m)"),
        )),
    }
}

fn check_radius(r: f64, max: f64) -> Result<f64, ApiError> {
    if r.is_finite() && r > 0.0 && r <= max {
        Ok(r)
    } else {
        Err(ApiError::invalid(
            "bad_radius",
            format!(
                "radius_m {r} is not allowed; use a number of metres above 0 and at most {max}"
            ),
        ))
    }
}

#[derive(Clone)]
struct AppState {
    node: Node,
    auth: ApiAuth,
    /// Turns true when the server shuts down; `None` when nobody will say.
    shutdown: Option<watch::Receiver<bool>>,
}

impl FromRef<AppState> for ApiAuth {
    fn from_ref(s: &AppState) -> ApiAuth {
        s.auth.clone()
    }
}

/// Body of `PUT /v1/location`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LocationBody {
    lat: f64,
    lon: f64,
}

/// Body of `POST /v1/reports`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    category: String,
    lat: f64,
    lon: f64,
    #[serde(default)]
    precision: Option<i64>,
}

/// Answer of `PUT /v1/location`.
#[derive(Debug, Clone, Serialize)]
struct AreasBody {
    areas: Vec<String>,
}

/// The router of the API over `node`, guarded by `auth`, without a
/// shutdown signal for the event streams (they end when the node's event
/// channel closes). Prefer [`serve`], which ends them on shutdown.
pub fn router(node: Node, auth: ApiAuth) -> Router {
    router_with(node, auth, None)
}

fn router_with(node: Node, auth: ApiAuth, shutdown: Option<watch::Receiver<bool>>) -> Router {
    let router = Router::new()
        .route(LOGIN_PATH, get(auth::login))
        .route("/v1/login-links", axum::routing::post(post_login_link))
        .route("/v1/status", get(get_status))
        .route("/v1/location", axum::routing::put(put_location))
        .route("/v1/reports", get(get_reports).post(post_report))
        .route("/v1/events", get(get_events));
    basemap_api::routes(directory_api::routes(circle_api::routes(router)))
        .merge(crate::webapp::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            auth.clone(),
            auth::require_credential,
        ))
        .layer(middleware::from_fn(check_host))
        .with_state(AppState {
            node,
            auth,
            shutdown,
        })
}

/// Serve the API on `listener` until `shutdown` completes, then stop
/// accepting, end the open event streams and wait for requests in flight.
/// Every route but the app's files and the login requires `auth`'s token
/// or a session it opened (see [`ApiAuth`]).
///
/// Bind the listener yourself (e.g. `TcpListener::bind("127.0.0.1:7300")`)
/// so that you can read its local address first, which matters for port 0;
/// create the credential with [`ApiAuth::create`] in the node's data
/// directory, so that the app and the CLI find it.
pub async fn serve<F>(
    listener: TcpListener,
    node: Node,
    auth: ApiAuth,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = watch::channel(false);
    let app = router_with(node, auth, Some(rx));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Ends every SSE stream, so that graceful shutdown does not wait
            // for clients that never hang up.
            let _ = tx.send(true);
        })
        .await
}

async fn check_host(req: Request, next: Next) -> Response {
    if let Some(host) = req.headers().get(header::HOST) {
        let ok = host.to_str().map(host_is_local).unwrap_or(false);
        if !ok {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_host",
                "this API answers only requests addressed to localhost or an IP address",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Whether a `Host` header names this device by IP or as `localhost`, not
/// by a domain name that could have been rebound to it.
fn host_is_local(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, _)) => return ip.parse::<std::net::Ipv6Addr>().is_ok(),
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<IpAddr>().is_ok()
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see docs/openapi.yaml for the routes of this API",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not answer this HTTP method",
    )
}

/// `POST /v1/login-links`: a JSON POST like every action, whatever its
/// (ignored) object.
async fn post_login_link(
    State(s): State<AppState>,
    JsonOrEmpty(_): JsonOrEmpty<serde_json::Map<String, serde_json::Value>>,
) -> impl IntoResponse {
    auth::post_login_link(State(s.auth)).await
}

async fn get_status(State(s): State<AppState>) -> Result<Json<crate::Status>, ApiError> {
    Ok(Json(s.node.status().await?))
}

async fn put_location(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<LocationBody>,
) -> Result<Json<AreasBody>, ApiError> {
    check_coordinates(body.lat, body.lon)?;
    let areas = s.node.set_location(body.lat, body.lon).await?;
    Ok(Json(AreasBody {
        areas: areas.iter().map(|a| a.to_string()).collect(),
    }))
}

async fn post_report(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<ReportBody>,
) -> Result<(StatusCode, Json<crate::Published>), ApiError> {
    let category = parse_category(&body.category)?;
    check_coordinates(body.lat, body.lon)?;
    let precision = check_precision(body.precision)?;
    let published = s
        .node
        .report(category, body.lat, body.lon, precision)
        .await?;
    Ok((StatusCode::CREATED, Json(published)))
}

/// The query of `GET /v1/reports`, read by hand for precise errors.
struct NearbyQuery {
    lat: f64,
    lon: f64,
    radius_m: f64,
}

impl NearbyQuery {
    fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        Self::parse_with(pairs, DEFAULT_RADIUS_M, MAX_RADIUS_M)
    }

    /// `lat`, `lon` and an optional `radius_m` (`default`, at most `max`).
    fn parse_with(pairs: &[(String, String)], default: f64, max: f64) -> Result<Self, ApiError> {
        let (mut lat, mut lon, mut radius) = (None, None, None);
        for (k, v) in pairs {
            let slot = match k.as_str() {
                "lat" => &mut lat,
                "lon" => &mut lon,
                "radius_m" => &mut radius,
                other => {
                    return Err(ApiError::invalid(
                        "unknown_field",
                        format!("unknown query parameter `{other}`; expected `lat`, `lon` and optionally `radius_m`"),
                    ))
                }
            };
            if slot.is_some() {
                return Err(ApiError::invalid(
                    "invalid_field",
                    format!("query parameter `{k}` is given more than once"),
                ));
            }
            let n = v.trim().parse::<f64>().map_err(|_| {
                ApiError::invalid(
                    "invalid_field",
                    format!("query parameter `{k}` must be a number, not {v:?}"),
                )
            })?;
            *slot = Some(n);
        }
        let missing = |name: &str| {
            ApiError::invalid(
                "missing_field",
                format!("query parameter `{name}` is required (e.g. ?lat=48.8156&lon=2.3844)"),
            )
        };
        let lat = lat.ok_or_else(|| missing("lat"))?;
        let lon = lon.ok_or_else(|| missing("lon"))?;
        check_coordinates(lat, lon)?;
        let radius_m = check_radius(radius.unwrap_or(default), max)?;
        Ok(NearbyQuery { lat, lon, radius_m })
    }
}

/// The pairs of a query string, or this API's `bad_query` error.
fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    let Query(pairs) = query.map_err(|r| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("the query string could not be read: {}", r.body_text()),
        )
    })?;
    Ok(pairs)
}

async fn get_reports(
    State(s): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<crate::Nearby>, ApiError> {
    let q = NearbyQuery::parse(&query_pairs(query)?)?;
    Ok(Json(s.node.nearby(q.lat, q.lon, q.radius_m).await?))
}

async fn get_events(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let shutdown = s.shutdown.clone();
    let stopped = async move {
        match shutdown {
            Some(mut rx) => {
                // An error means the server is gone, which is a stop too.
                let _ = rx.wait_for(|stop| *stop).await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let stream = BroadcastStream::new(s.node.events())
        .map(|item| {
            let event = match item {
                Ok(ev) => {
                    let name = match &ev {
                        crate::NodeEvent::Report(_) => "report",
                        crate::NodeEvent::Alert(_) => "alert",
                        crate::NodeEvent::Circle(_) => "circle",
                    };
                    Event::default()
                        .event(name)
                        .json_data(&ev)
                        .unwrap_or_else(|_| Event::default().comment("unserializable event"))
                }
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "an event stream lagged behind");
                    Event::default()
                        .event("lagged")
                        .data(format!("{{\"type\":\"lagged\",\"missed\":{missed}}}"))
                }
            };
            Ok(event)
        })
        .take_until(Box::pin(stopped));
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(SSE_KEEP_ALIVE_SECS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "localhost",
            "localhost:7300",
            "127.0.0.1",
            "127.0.0.1:7300",
            "[::1]:7300",
            "[::1]",
            "app.localhost:1",
            "10.0.0.2",
        ] {
            assert!(host_is_local(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7300",
            "localhost.evil.example",
            "[nonsense]",
            "127.0.0.1.nip.io:80",
        ] {
            assert!(!host_is_local(bad), "{bad}");
        }
    }

    #[test]
    fn query_parsing() {
        let q = |s: &[(&str, &str)]| {
            NearbyQuery::parse(
                &s.iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        let ok = q(&[("lat", "48.8"), ("lon", "2.3")]).map(|q| q.radius_m);
        assert_eq!(ok, Ok(DEFAULT_RADIUS_M));
        let code = |r: Result<NearbyQuery, ApiError>| r.err().map(|e| e.code);
        assert_eq!(code(q(&[("lat", "48.8")])), Some("missing_field"));
        assert_eq!(
            code(q(&[("lat", "NaN"), ("lon", "2")])),
            Some("bad_latitude")
        );
        assert_eq!(
            code(q(&[("lat", "1"), ("lon", "inf")])),
            Some("bad_longitude")
        );
        assert_eq!(
            code(q(&[("lat", "x"), ("lon", "2")])),
            Some("invalid_field")
        );
        assert_eq!(
            code(q(&[("lat", "1"), ("lon", "2"), ("radius_m", "0")])),
            Some("bad_radius")
        );
        assert_eq!(
            code(q(&[("lat", "1"), ("lon", "2"), ("radius_m", "10001")])),
            Some("bad_radius")
        );
        assert_eq!(
            code(q(&[("lat", "1"), ("lon", "2"), ("zoom", "3")])),
            Some("unknown_field")
        );
        assert_eq!(
            code(q(&[("lat", "1"), ("lat", "1"), ("lon", "2")])),
            Some("invalid_field")
        );
    }

    #[test]
    fn precision_and_category() {
        assert_eq!(check_precision(None), Ok(None));
        assert_eq!(check_precision(Some(6)), Ok(Some(6)));
        assert_eq!(
            check_precision(Some(8)).map_err(|e| e.code),
            Err("bad_precision")
        );
        assert_eq!(
            check_precision(Some(-300)).map_err(|e| e.code),
            Err("bad_precision")
        );
        let e = parse_category("theft")
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(
            e.contains("poor_lighting") && e.contains("harassment"),
            "{e}"
        );
    }
}
