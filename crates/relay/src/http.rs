//! The relay's two HTTP faces.
//!
//! **Public** ([`public_router`], `http.public_bind`), for phones and places:
//!
//! | method | path                   | what |
//! |--------|------------------------|------|
//! | GET    | `/healthz`             | `ok` |
//! | GET    | `/directory`           | the signed directory (binary, `docs/protocol.md` §Directory) |
//! | GET    | `/directory/key`       | the city's public key, hex |
//! | POST   | `/directory/heartbeat` | a place's signed heartbeat (binary) |
//! | POST   | `/flags`               | an anonymous flag against a place (binary) |
//! | GET    | `/basemap.pmtiles`     | the city basemap, whole or by `Range` ([`crate::maps`]) |
//!
//! **Operator** ([`dashboard_router`], `http.dashboard_bind`): `/healthz`,
//! the login form and its script and style are open; everything else,
//! `/metrics` included, needs the operator token, as
//! `Authorization: Bearer <token>` (what Prometheus sends) or the session
//! cookie set by the login form (`POST /login`; HttpOnly, SameSite=Strict).
//! The metrics hold exact report totals and the mailboxes and dead-man's
//! switches the relay hosts: whoever could read them without the token
//! could watch a journey start.
//!
//! | method | path | what |
//! |--------|------|------|
//! | GET    | `/`, `/app.js`, `/style.css`, `/login` | the dashboard |
//! | GET    | `/basemap.pmtiles`, `/vendor/{file}` | the basemap and the map libraries ([`crate::maps`]) |
//! | GET    | `/metrics` | Prometheus text ([`crate::metrics`]) |
//! | GET    | `/api/config` | city, k, areas, categories, bands, tiles |
//! | GET    | `/api/status` | node and store figures |
//! | GET    | `/api/live?categories=` | published cells of the reports live now |
//! | GET    | `/api/cells?from=&to=&categories=&bands=` | published cells of a date range |
//! | GET    | `/api/trend?…` | reports per local day (suppressed under k) |
//! | GET    | `/api/hotspots?…&limit=` | ranking of cells with category and time-of-day breakdown |
//! | GET    | `/api/export.geojson?…`, `/api/export.csv?…`, `/api/summary.html?…` | exports |
//! | GET    | `/ogc/…` | OGC API – Features: the `cells` collection ([`crate::ogc`]) |
//! | GET/POST | `/api/places` | list (with freshness and flags) / add |
//! | PUT/DELETE | `/api/places/{id}` | replace / remove |
//! | POST   | `/api/places/{id}/confirm` | the city re-confirms a place or mediator |
//! | GET/POST | `/api/mediators` | list / add |
//! | PUT/DELETE | `/api/mediators/{id}` | replace / remove |
//!
//! Query parameters: `from`, `to` are local days `YYYY-MM-DD` (default: the
//! last 30 days), `categories` a comma-separated list of category names,
//! `bands` a comma-separated list of time-of-day bands 0..7 (0 = 00–03 …
//! 7 = 21–24). Every count in every answer is k-suppressed
//! ([`crate::query`]). Errors are `{"error": code, "message": sentence}`.
//!
//! Nothing here logs a location, a key or a report.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use axum::{Form, Json, Router};
use ronde_protocol::directory::PlaceId;
use ronde_protocol::Category;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::directory::{flag_reason_names, DirError, MediatorInput, PlaceInput};
use crate::maps;
use crate::metrics::{render, Gauges};
use crate::query::{self, ExportMeta, Filter, MAX_RANGE_DAYS};
use crate::rules::{format_day, parse_day, BANDS};
use crate::state::{accept_flag, summary, suppression, Shared};

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const LOGIN_HTML: &str = include_str!("dashboard/login.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");

/// How long an operator's dashboard session lasts.
pub const SESSION_SECS: u64 = 12 * 3_600;
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ronde_relay_session";
/// Largest body of a heartbeat or flag.
const MAX_PUBLIC_BODY: usize = 512;
/// Largest body of an operator request.
const MAX_ADMIN_BODY: usize = 16 * 1024;

type St = State<Arc<Shared>>;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        tracing::debug!(
            status = self.status.as_u16(),
            code = self.code,
            "request refused"
        );
        (
            self.status,
            Json(ErrorBody {
                error: self.code,
                message: &self.message,
            }),
        )
            .into_response()
    }
}

impl From<DirError> for ApiError {
    fn from(e: DirError) -> Self {
        match e {
            DirError::Invalid(d) => ApiError::bad(d.reason(), d.to_string()),
            DirError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            DirError::Full(_) => {
                ApiError::new(StatusCode::CONFLICT, "directory_full", e.to_string())
            }
            DirError::Store(s) => s.into(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::warn!(error = %e, "storage error while serving");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            "the relay's storage failed; see its logs",
        )
    }
}

// ---------------------------------------------------------------------------
// Public
// ---------------------------------------------------------------------------

/// The public router: health, the signed directory, heartbeats, flags.
pub fn public_router(shared: Arc<Shared>) -> Router {
    maps::basemap_route(Router::new())
        .route("/healthz", get(healthz))
        .route("/directory", get(get_directory))
        .route("/directory/key", get(get_directory_key))
        .route("/directory/heartbeat", post(post_heartbeat))
        .route("/flags", post(post_flag))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_PUBLIC_BODY))
        .layer(middleware::from_fn(security_headers))
        .with_state(shared)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn get_directory(State(s): St) -> Response {
    let bytes = s.directory.signed();
    let serial = s.store.directory_serial().unwrap_or(0);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::HeaderName::from_static("x-ronde-directory-serial"),
                HeaderValue::from(serial),
            ),
        ],
        bytes.as_ref().clone(),
    )
        .into_response()
}

async fn get_directory_key(State(s): St) -> String {
    format!("{}\n", s.directory.public_key())
}

async fn post_heartbeat(State(s): St, body: Bytes) -> Result<StatusCode, ApiError> {
    match s.directory.accept_heartbeat(&body, s.clock.now()) {
        Ok(new) => {
            if new {
                s.metrics.heartbeats.fetch_add(1, Ordering::Relaxed);
            }
            Ok(if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            })
        }
        Err(e) => {
            s.metrics.directory_refused.fetch_add(1, Ordering::Relaxed);
            Err(e.into())
        }
    }
}

async fn post_flag(State(s): St, body: Bytes) -> Result<StatusCode, ApiError> {
    match accept_flag(&s, body.to_vec()).await {
        Some(Ok(true)) => Ok(StatusCode::CREATED),
        Some(Ok(false)) => Ok(StatusCode::OK),
        Some(Err(e)) => Err(e.into()),
        None => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "flag check failed",
        )),
    }
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    res
}

// ---------------------------------------------------------------------------
// Operator
// ---------------------------------------------------------------------------

/// The operator's router: dashboard, JSON API, exports, metrics.
pub fn dashboard_router(shared: Arc<Shared>) -> Router {
    let api = crate::ogc::routes(maps::basemap_route(Router::new()))
        .route("/api/config", get(api_config))
        .route("/api/status", get(api_status))
        .route("/api/live", get(api_live))
        .route("/api/cells", get(api_cells))
        .route("/api/trend", get(api_trend))
        .route("/api/hotspots", get(api_hotspots))
        .route("/api/export.geojson", get(export_geojson))
        .route("/api/export.csv", get(export_csv))
        .route("/api/summary.html", get(export_summary))
        .route("/api/places", get(list_places).post(add_place))
        .route("/api/places/{id}", put(update_place).delete(remove_entry))
        .route("/api/places/{id}/confirm", post(confirm_entry))
        .route("/api/mediators", get(list_mediators).post(add_mediator))
        .route(
            "/api/mediators/{id}",
            put(update_mediator).delete(remove_entry),
        )
        .route("/metrics", get(metrics))
        .route("/", get(index))
        .route("/logout", post(logout))
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            require_operator,
        ));
    maps::vendor_route(Router::new())
        .merge(api)
        .route("/healthz", get(healthz))
        .route("/login", get(login_page).post(login))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            dashboard_headers,
        ))
        .layer(middleware::from_fn(security_headers))
        .with_state(shared)
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::new_with_prefix(b"ronde-relay/token")
        .chain_update(s.as_bytes())
        .finalize()
        .into()
}

/// Constant-time comparison of a presented token with the operator's.
fn token_matches(shared: &Shared, presented: &str) -> bool {
    let (a, b) = (
        digest(presented),
        digest(&shared.config.http.operator_token),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn cookie_session(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn session_valid(shared: &Shared, id: &str) -> bool {
    let now = shared.clock.now();
    match shared.sessions.lock() {
        Ok(mut s) => {
            s.retain(|_, exp| *exp > now);
            s.contains_key(id)
        }
        Err(_) => false,
    }
}

async fn require_operator(State(s): St, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = match bearer {
        Some(t) => token_matches(&s, t.trim()),
        None => cookie_session(headers).is_some_and(|id| session_valid(&s, &id)),
    };
    // A cookie-authenticated change must come from the dashboard itself.
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site");
    let changes = req.method() != Method::GET && req.method() != Method::HEAD;
    if ok && !(changes && cross_site && bearer.is_none()) {
        return next.run(req).await;
    }
    if req.uri().path() == "/" {
        return Redirect::to("/login").into_response();
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "log in on the dashboard or send Authorization: Bearer <operator token>",
    )
    .into_response()
}

fn tile_origin(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .map(|r| ("https://", r))
        .or_else(|| url.strip_prefix("http://").map(|r| ("http://", r)))?;
    let host = rest.1.split('/').next()?;
    if host.is_empty() || host.contains(['{', '}', ' ', ';', '\'', '"']) {
        // A placeholder in the host ({s}.tile…): allow the scheme.
        return Some(rest.0.trim_end_matches("//").to_owned());
    }
    Some(format!("{}{}", rest.0, host))
}

async fn dashboard_headers(State(s): St, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let img = match tile_origin(&s.config.http.tile_url) {
        Some(o) => format!("'self' data: {o}"),
        None => "'self' data:".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src {img} blob:; connect-src 'self'; worker-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert("content-security-policy", v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn html(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn index() -> Response {
    html(INDEX_HTML)
}

#[derive(Deserialize)]
struct LoginQuery {
    failed: Option<String>,
}

async fn login_page(Query(q): Query<LoginQuery>, headers: HeaderMap) -> Response {
    let french = prefers_french(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    let mut page = if q.failed.is_some() {
        LOGIN_HTML.replace(
            "<!--FAILED-->",
            "<p class=\"error\" role=\"alert\">Wrong token.</p>",
        )
    } else {
        LOGIN_HTML.to_owned()
    };
    if french {
        for (en, fr) in LOGIN_FR {
            page = page.replace(en, fr);
        }
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// The login page in French (the dashboard itself switches in the browser).
const LOGIN_FR: [(&str, &str); 7] = [
    ("<html lang=\"en\">", "<html lang=\"fr\">"),
    ("Ronde relay: log in", "Relais Ronde : connexion"),
    ("<h1>Ronde relay</h1>", "<h1>Relais Ronde</h1>"),
    (
        "The city's dashboard. Log in with the operator token",
        "Le tableau de bord de la ville. Connectez-vous avec le jeton d'opérateur",
    ),
    ("Operator token</label>", "Jeton d'opérateur</label>"),
    ("Log in</button>", "Se connecter</button>"),
    ("Wrong token.", "Jeton incorrect."),
];

/// Whether an `Accept-Language` list names French before English.
fn prefers_french(accept: &str) -> bool {
    for tag in accept.split(',') {
        let lang = tag.split(';').next().unwrap_or("").trim();
        let base = lang.split('-').next().unwrap_or("").to_ascii_lowercase();
        match base.as_str() {
            "fr" => return true,
            "en" => return false,
            _ => {}
        }
    }
    false
}

async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

async fn style_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE_CSS,
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(s): St, Form(form): Form<LoginForm>) -> Response {
    if !token_matches(&s, form.token.trim()) {
        // Slow down guessing.
        tokio::time::sleep(Duration::from_millis(400)).await;
        tracing::info!("dashboard login refused");
        return Redirect::to("/login?failed=1").into_response();
    }
    let mut id = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    let id = hex::encode(id);
    if let Ok(mut sessions) = s.sessions.lock() {
        sessions.insert(id.clone(), s.clock.now() + SESSION_SECS);
    }
    let cookie =
        format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_SECS}");
    let mut res = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

async fn logout(State(s): St, headers: HeaderMap) -> Response {
    if let (Some(id), Ok(mut sessions)) = (cookie_session(&headers), s.sessions.lock()) {
        sessions.remove(&id);
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "ronde_relay_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    res
}

async fn metrics(State(s): St) -> Response {
    let now = s.clock.now();
    let status = s.node.status().await.ok();
    let g = Gauges {
        peers: status.as_ref().map_or(0, |st| st.connected_peers as u64),
        areas: s.areas.len() as u64,
        node_reports: status.as_ref().map_or(0, |st| st.stored_reports as u64),
        gossip_refused: status.map(|st| st.gossip_refused).unwrap_or_default(),
        live_reports: s.store.live_len() as u64,
        aggregate_rows: s.store.rows_len() as u64,
        store_bytes: s.store.size_on_disk(),
        places: s.directory.freshness_counts(now).unwrap_or_default(),
        mediators: s.directory.mediators().map(|m| m.len() as u64).unwrap_or(0),
        flags_kept: s.store.flags_len() as u64,
        directory_serial: s.store.directory_serial().unwrap_or(0),
        mailbox: match s.node.circle_status().await {
            Ok(c) if c.hosting => Some((c.hosted_envelopes as u64, c.hosted_switches as u64)),
            _ => None,
        },
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&s.metrics, &g),
    )
        .into_response()
}

#[derive(Serialize)]
struct AreaView {
    area: String,
    bounds: [f64; 4],
}

#[derive(Serialize)]
struct ConfigView {
    city: String,
    k: u64,
    strict: bool,
    /// The city's time zone (IANA name, or `UTC+h` for a fixed offset).
    time_zone: String,
    /// Its offset now, whole hours (what the dashboard showed before).
    utc_offset_hours: i64,
    today: String,
    areas: Vec<AreaView>,
    bbox: [f64; 4],
    categories: Vec<&'static str>,
    bands: Vec<String>,
    flag_reasons: Vec<&'static str>,
    tile_url: String,
    tile_attribution: String,
    directory_key: String,
    /// Whether `/basemap.pmtiles` has a file to serve.
    basemap: bool,
}

async fn api_config(State(s): St) -> Json<ConfigView> {
    let mut bbox = [90.0f64, 180.0, -90.0, -180.0];
    let areas = s
        .areas
        .iter()
        .map(|a| {
            let (la, lo, lb, lob) = a.bounds();
            bbox = [
                bbox[0].min(la),
                bbox[1].min(lo),
                bbox[2].max(lb),
                bbox[3].max(lob),
            ];
            AreaView {
                area: a.to_string(),
                bounds: [la, lo, lb, lob],
            }
        })
        .collect();
    Json(ConfigView {
        city: s.config.city.clone(),
        k: s.config.aggregates.k,
        strict: s.config.aggregates.strict,
        time_zone: s.config.local_time().name(),
        utc_offset_hours: s
            .config
            .local_time()
            .offset_secs(i64::try_from(s.clock.now()).unwrap_or(0))
            / 3600,
        today: format_day(s.config.local_time().day_of(s.clock.now())),
        areas,
        bbox,
        categories: Category::NAMES.to_vec(),
        bands: query::band_labels(),
        flag_reasons: flag_reason_names(),
        tile_url: s.config.http.tile_url.clone(),
        tile_attribution: s.config.http.tile_attribution.clone(),
        directory_key: s.directory.public_key().to_hex(),
        basemap: s.config.basemap_path().is_some_and(|p| p.is_file()),
    })
}

#[derive(Serialize)]
struct StatusView {
    peer_id: String,
    listen_addrs: Vec<String>,
    connected_peers: usize,
    areas: usize,
    node_reports: usize,
    live_reports: usize,
    aggregate_rows: usize,
    store_bytes: u64,
    reports_accepted: u64,
    reports_acknowledged: u64,
    directory_serial: u64,
    /// Reports not counted (every retained hour) because their cell had
    /// reached its cap for the hour.
    suppressed_as_flood: u64,
}

async fn api_status(State(s): St) -> Result<Json<StatusView>, ApiError> {
    let st = s.node.status().await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "node_stopped",
            e.to_string(),
        )
    })?;
    Ok(Json(StatusView {
        peer_id: st.peer_id,
        listen_addrs: st.listen_addrs,
        connected_peers: st.connected_peers,
        areas: s.areas.len(),
        node_reports: st.stored_reports,
        live_reports: s.store.live_len(),
        aggregate_rows: s.store.rows_len(),
        store_bytes: s.store.size_on_disk(),
        reports_accepted: s.metrics.accepted.load(Ordering::Relaxed),
        reports_acknowledged: s.metrics.acknowledged.load(Ordering::Relaxed),
        directory_serial: s.store.directory_serial()?,
        suppressed_as_flood: s
            .store
            .suppressed(0, i64::from(u32::MAX))?
            .iter()
            .map(|(_, n)| n)
            .sum(),
    }))
}

/// Query parameters of the aggregate endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// First local day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last local day, inclusive.
    pub to: Option<String>,
    /// Comma-separated category names.
    pub categories: Option<String>,
    /// Comma-separated bands 0..7.
    pub bands: Option<String>,
    /// Most hotspots returned.
    pub limit: Option<usize>,
    /// The summary's language: `fr` or `en` (the default).
    pub lang: Option<String>,
}

fn categories_of(q: &Option<String>) -> Result<BTreeSet<Category>, ApiError> {
    let mut set = BTreeSet::new();
    for name in q.iter().flat_map(|s| s.split(',')).map(str::trim) {
        if name.is_empty() {
            continue;
        }
        set.insert(
            name.parse::<Category>()
                .map_err(|e| ApiError::bad("unknown_category", e.to_string()))?,
        );
    }
    Ok(set)
}

pub(crate) fn filter_of(s: &Shared, q: &RangeQuery) -> Result<Filter, ApiError> {
    let tz = &s.config.local_time();
    let today = tz.day_of(s.clock.now());
    let day = |v: &Option<String>, field: &str, default: i64| match v.as_deref() {
        None | Some("") => Ok(default),
        Some(d) => parse_day(d)
            .ok_or_else(|| ApiError::bad("bad_date", format!("{field} must be a date YYYY-MM-DD"))),
    };
    let to_day = day(&q.to, "to", today)?;
    let from_day = day(&q.from, "from", to_day - 29)?;
    if from_day > to_day {
        return Err(ApiError::bad("bad_range", "from is after to"));
    }
    if to_day - from_day >= MAX_RANGE_DAYS {
        return Err(ApiError::bad(
            "bad_range",
            format!("a range covers at most {MAX_RANGE_DAYS} days"),
        ));
    }
    let mut bands = BTreeSet::new();
    for b in q.bands.iter().flat_map(|s| s.split(',')).map(str::trim) {
        if b.is_empty() {
            continue;
        }
        let n: u8 =
            b.parse().ok().filter(|n| *n < BANDS).ok_or_else(|| {
                ApiError::bad("bad_band", "bands are numbers 0 (00-03) to 7 (21-24)")
            })?;
        bands.insert(n);
    }
    Ok(Filter {
        from_day,
        to_day,
        categories: categories_of(&q.categories)?,
        bands,
    })
}

pub(crate) fn rows_for(s: &Shared, f: &Filter) -> Result<Vec<query::Row>, ApiError> {
    let (a, b) = f.hour_range(&s.config.local_time());
    Ok(s.store.rows(a, b)?)
}

#[derive(Serialize)]
struct CellsAnswer {
    from: String,
    to: String,
    k: u64,
    cells: Vec<query::CellCount>,
    /// Reports of the period suppressed as a flood (city-wide).
    suppressed_as_flood: u64,
}

async fn api_cells(
    State(s): St,
    Query(q): Query<RangeQuery>,
) -> Result<Json<CellsAnswer>, ApiError> {
    let f = filter_of(&s, &q)?;
    let rows = rows_for(&s, &f)?;
    let mut cells = query::cells(&rows, &f, &s.config.local_time(), suppression(&s));
    maps::name_cells(&s, &mut cells);
    Ok(Json(CellsAnswer {
        from: format_day(f.from_day),
        to: format_day(f.to_day),
        k: s.config.aggregates.k,
        cells,
        suppressed_as_flood: {
            let (a, b) = f.hour_range(&s.config.local_time());
            s.store.suppressed(a, b)?.iter().map(|(_, n)| n).sum()
        },
    }))
}

#[derive(Serialize)]
struct LiveAnswer {
    now: u64,
    k: u64,
    cells: Vec<query::CellCount>,
}

async fn api_live(State(s): St, Query(q): Query<RangeQuery>) -> Result<Json<LiveAnswer>, ApiError> {
    let now = s.clock.now();
    let cats = categories_of(&q.categories)?;
    let live = s.store.live(now)?;
    Ok(Json(LiveAnswer {
        now,
        k: s.config.aggregates.k,
        cells: query::live_cells(&live, &cats, s.config.aggregates.k),
    }))
}

#[derive(Serialize)]
struct TrendAnswer {
    k: u64,
    days: Vec<query::DayCount>,
}

async fn api_trend(
    State(s): St,
    Query(q): Query<RangeQuery>,
) -> Result<Json<TrendAnswer>, ApiError> {
    let f = filter_of(&s, &q)?;
    let rows = rows_for(&s, &f)?;
    Ok(Json(TrendAnswer {
        k: s.config.aggregates.k,
        days: query::trend(&rows, &f, &s.config.local_time(), suppression(&s)),
    }))
}

#[derive(Serialize)]
struct HotspotsAnswer {
    k: u64,
    hotspots: Vec<query::Hotspot>,
}

async fn api_hotspots(
    State(s): St,
    Query(q): Query<RangeQuery>,
) -> Result<Json<HotspotsAnswer>, ApiError> {
    let f = filter_of(&s, &q)?;
    let rows = rows_for(&s, &f)?;
    let limit = q.limit.unwrap_or(20).clamp(1, 500);
    let mut hotspots = query::hotspots(&rows, &f, &s.config.local_time(), suppression(&s), limit);
    maps::name_hotspots(&s, &mut hotspots);
    Ok(Json(HotspotsAnswer {
        k: s.config.aggregates.k,
        hotspots,
    }))
}

fn attachment(content_type: &'static str, name: String, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut res = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

async fn export_geojson(State(s): St, Query(q): Query<RangeQuery>) -> Result<Response, ApiError> {
    let f = filter_of(&s, &q)?;
    let rows = rows_for(&s, &f)?;
    let sup = suppression(&s);
    let mut cells = query::cells(&rows, &f, &s.config.local_time(), sup);
    maps::name_cells(&s, &mut cells);
    let mut meta = ExportMeta::new(&s.config.city, &f, sup);
    let (a, b) = f.hour_range(&s.config.local_time());
    meta.suppressed_as_flood = s.store.suppressed(a, b)?.iter().map(|(_, n)| n).sum();
    let body = query::geojson(&meta, &cells).to_string();
    Ok(attachment(
        "application/geo+json",
        format!("ronde-{}-{}.geojson", meta.from, meta.to),
        body,
    ))
}

async fn export_csv(State(s): St, Query(q): Query<RangeQuery>) -> Result<Response, ApiError> {
    let f = filter_of(&s, &q)?;
    let rows = rows_for(&s, &f)?;
    let body = query::csv(&rows, &f, &s.config.local_time(), suppression(&s));
    Ok(attachment(
        "text/csv; charset=utf-8",
        format!(
            "ronde-{}-{}.csv",
            format_day(f.from_day),
            format_day(f.to_day)
        ),
        body,
    ))
}

async fn export_summary(State(s): St, Query(q): Query<RangeQuery>) -> Result<Response, ApiError> {
    let f = filter_of(&s, &q)?;
    let html = summary(&s, &f, query::Lang::from_param(q.lang.as_deref()))?;
    let mut res = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    res.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    Ok(res)
}

fn parse_id(id: &str) -> Result<PlaceId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "ids are 32 hex digits"))
}

/// A JSON body, with the JSON content type required (a cross-site form
/// cannot send one) and a clear error otherwise.
struct JsonBody<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "bad_body", e.to_string()))?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad("invalid_json", e.to_string()))
    }
}

async fn list_places(State(s): St) -> Result<Response, ApiError> {
    Ok(Json(s.directory.place_views(s.clock.now())?).into_response())
}

async fn add_place(
    State(s): St,
    JsonBody(input): JsonBody<PlaceInput>,
) -> Result<Response, ApiError> {
    let p = s.directory.add_place(&input, s.clock.now())?;
    Ok((StatusCode::CREATED, Json(p)).into_response())
}

async fn update_place(
    State(s): St,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<PlaceInput>,
) -> Result<Response, ApiError> {
    let p = s
        .directory
        .update_place(parse_id(&id)?, &input, s.clock.now())?;
    Ok(Json(p).into_response())
}

async fn remove_entry(State(s): St, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    s.directory.remove(parse_id(&id)?, s.clock.now())?;
    Ok(StatusCode::NO_CONTENT)
}

async fn confirm_entry(State(s): St, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    s.directory.confirm(parse_id(&id)?, s.clock.now())?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_mediators(State(s): St) -> Result<Response, ApiError> {
    Ok(Json(s.directory.mediators()?).into_response())
}

async fn add_mediator(
    State(s): St,
    JsonBody(input): JsonBody<MediatorInput>,
) -> Result<Response, ApiError> {
    let m = s.directory.add_mediator(&input, s.clock.now())?;
    Ok((StatusCode::CREATED, Json(m)).into_response())
}

async fn update_mediator(
    State(s): St,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<MediatorInput>,
) -> Result<Response, ApiError> {
    let m = s
        .directory
        .update_mediator(parse_id(&id)?, &input, s.clock.now())?;
    Ok(Json(m).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_page_speaks_the_browsers_first_language() {
        assert!(prefers_french("fr-FR,fr;q=0.9,en;q=0.8"));
        assert!(prefers_french("de-DE, fr;q=0.5"));
        assert!(!prefers_french("en-US,fr;q=0.5"));
        assert!(!prefers_french(""));
        let mut page = LOGIN_HTML.replace("<!--FAILED-->", "Wrong token.");
        for (en, fr) in LOGIN_FR {
            assert!(page.contains(en), "{en} is on the page");
            page = page.replace(en, fr);
        }
    }

    #[test]
    fn tile_origins_for_the_csp() {
        assert_eq!(
            tile_origin("https://tile.openstreetmap.org/{z}/{x}/{y}.png").as_deref(),
            Some("https://tile.openstreetmap.org")
        );
        assert_eq!(
            tile_origin("https://{s}.tile.example/{z}/{x}/{y}.png").as_deref(),
            Some("https:")
        );
        assert_eq!(tile_origin(""), None);
        assert_eq!(tile_origin("javascript:alert(1)"), None);
    }

    #[test]
    fn session_cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ronde_relay_session=abc; b=2"),
        );
        assert_eq!(cookie_session(&h).as_deref(), Some("abc"));
    }
}
