//! The local API's credential, as bitcoind's `.cookie`: whoever can read
//! the node's data directory may use its API, and nobody else on the
//! device.
//!
//! * At every start the node draws a random token ([`ApiAuth::create`])
//!   and writes it to `<data-dir>/api-token` ([`TOKEN_FILE`]), readable
//!   by its owner only (mode 0600), replacing the one of the last run.
//!   Every route except the web app's files and the login route requires
//!   it as `Authorization: Bearer <token>`; a missing or wrong one gets
//!   `401 unauthorized`. Tokens are compared through their SHA-256 digest
//!   in constant time.
//! * A browser cannot send that header, so the web app is opened through
//!   a one-time login URL ([`ApiAuth::login_url`], printed by the node):
//!   `GET /login?code=<code>` ([`LOGIN_PATH`]) spends the code, sets an
//!   `HttpOnly; SameSite=Strict` session cookie and redirects to the app,
//!   whose requests (the event stream included) the cookie then
//!   authenticates. A spent or unknown code gets `401 bad_login_code`.
//!   Whoever holds the credential can ask for another login link
//!   (`POST /v1/login-links`, the CLI's `ronde app`).
//!   The cookie's name carries the API's port ([`session_cookie_name`]),
//!   so that two nodes on one device do not log each other's app out.
//! * A cookie-authenticated request that changes something and that the
//!   browser marks `Sec-Fetch-Site: cross-site` is refused, on top of
//!   `SameSite=Strict` and the API's JSON-only bodies.
//!
//! Login codes and sessions live in memory only, at most
//! [`MAX_LOGIN_CODES`] and [`MAX_SESSIONS`] (the oldest goes first): a
//! restart of the node ends every session and voids every code.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::api_error::ApiError;

/// Name of the credential file in the node's data directory.
pub const TOKEN_FILE: &str = "api-token";
/// The route that spends a login code and sets the session cookie.
pub const LOGIN_PATH: &str = "/login";
/// Prefix of the session cookie's name; the API's port follows.
pub const SESSION_COOKIE_PREFIX: &str = "ronde_session_";
/// Unspent login codes kept at once; minting one more forgets the oldest.
pub const MAX_LOGIN_CODES: usize = 16;
/// Sessions kept at once; one more logs the oldest out.
pub const MAX_SESSIONS: usize = 16;
/// How long the browser keeps the session cookie, seconds (the node
/// forgets its sessions sooner, at its next restart).
pub const SESSION_COOKIE_MAX_AGE: u64 = 30 * 24 * 3_600;
/// Random bytes in a token, a login code or a session id.
const SECRET_BYTES: usize = 32;

type Digest32 = [u8; 32];

/// The API's credential and the web app's login codes and sessions.
/// Cheap to clone: clones share the same codes and sessions.
#[derive(Clone)]
pub struct ApiAuth {
    inner: Arc<Inner>,
}

struct Inner {
    token: Zeroizing<String>,
    token_digest: Digest32,
    state: Mutex<Sessions>,
    /// The node's data directory when the token was written there: where
    /// the node's API also keeps the cached basemap.
    data_dir: Option<PathBuf>,
}

#[derive(Default)]
struct Sessions {
    /// Digests of the unspent login codes, oldest first.
    codes: VecDeque<Digest32>,
    /// Digests of the live session ids, oldest first.
    sessions: VecDeque<Digest32>,
}

impl std::fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiAuth { .. }")
    }
}

impl ApiAuth {
    /// A fresh random token, written nowhere (tests, embedders that hand
    /// the token to their app another way). Prefer [`ApiAuth::create`].
    pub fn generate() -> ApiAuth {
        let token = Zeroizing::new(random_hex());
        let token_digest = digest(&token);
        ApiAuth {
            inner: Arc::new(Inner {
                token,
                token_digest,
                state: Mutex::new(Sessions::default()),
                data_dir: None,
            }),
        }
    }

    /// A fresh random token, written to `<data_dir>/api-token` (mode 0600
    /// on Unix) in place of the last run's.
    pub fn create(data_dir: &Path) -> std::io::Result<ApiAuth> {
        let token = Zeroizing::new(random_hex());
        write_token(data_dir, &token)?;
        let token_digest = digest(&token);
        Ok(ApiAuth {
            inner: Arc::new(Inner {
                token,
                token_digest,
                state: Mutex::new(Sessions::default()),
                data_dir: Some(data_dir.to_path_buf()),
            }),
        })
    }

    /// The data directory given to [`ApiAuth::create`]; `None` for
    /// [`ApiAuth::generate`] (then the API keeps no basemap).
    pub fn data_dir(&self) -> Option<&Path> {
        self.inner.data_dir.as_deref()
    }

    /// The token, for `Authorization: Bearer <token>`.
    pub fn token(&self) -> &str {
        &self.inner.token
    }

    /// A new one-time login code for the web app.
    pub fn login_code(&self) -> String {
        let code = random_hex();
        if let Ok(mut s) = self.inner.state.lock() {
            push_bounded(&mut s.codes, digest(&code), MAX_LOGIN_CODES);
        }
        code
    }

    /// A new one-time login URL of the web app on the API at `base`
    /// (e.g. `http://127.0.0.1:7300`).
    pub fn login_url(&self, base: &str) -> String {
        format!(
            "{}{LOGIN_PATH}?code={}",
            base.trim_end_matches('/'),
            self.login_code()
        )
    }

    /// Whether `presented` is the token.
    fn token_matches(&self, presented: &str) -> bool {
        ct_eq(&digest(presented), &self.inner.token_digest)
    }

    /// Spend a login code: a new session id, or `None` if the code is
    /// unknown or spent.
    fn redeem(&self, code: &str) -> Option<String> {
        let presented = digest(code);
        let mut s = self.inner.state.lock().ok()?;
        let at = find_ct(&s.codes, &presented)?;
        s.codes.remove(at);
        let session = random_hex();
        push_bounded(&mut s.sessions, digest(&session), MAX_SESSIONS);
        Some(session)
    }

    /// Whether `id` is a live session.
    fn session_valid(&self, id: &str) -> bool {
        let presented = digest(id);
        self.inner
            .state
            .lock()
            .is_ok_and(|s| find_ct(&s.sessions, &presented).is_some())
    }
}

/// Write `token` to `<data_dir>/api-token`, owner-only, replacing any
/// earlier file at once (written beside it, then renamed over it).
pub fn write_token(data_dir: &Path, token: &str) -> std::io::Result<PathBuf> {
    let path = data_dir.join(TOKEN_FILE);
    let tmp = data_dir.join(format!("{TOKEN_FILE}.new"));
    // A leftover of a crash, or something planted: never write through it.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Read the token a running node wrote to `<data_dir>/api-token`.
pub fn read_token(data_dir: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(data_dir.join(TOKEN_FILE))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the api-token file is empty",
        ));
    }
    Ok(token.to_owned())
}

/// The session cookie's name for an API reached as `host` (a `Host`
/// header): the prefix and the port, `80` when none is given.
pub fn session_cookie_name(host: Option<&str>) -> String {
    let port = host
        .and_then(|h| h.rsplit_once(':'))
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("80");
    format!("{SESSION_COOKIE_PREFIX}{port}")
}

fn host_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|v| v.to_str().ok())
}

/// The value of cookie `name` among the request's cookies.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in
/// any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Whether `path` is open without the credential: the web app's files
/// and the login route.
fn is_public(path: &str) -> bool {
    if path.split('/').any(|seg| seg == ".." || seg == ".") {
        return false;
    }
    path == "/" || path == "/app" || path.starts_with("/app/") || path == LOGIN_PATH
}

/// Middleware: every route but the public ones requires the token or a
/// session cookie.
pub(crate) async fn require_credential(
    State(auth): State<ApiAuth>,
    req: Request,
    next: Next,
) -> Response {
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let by_token = bearer(headers).is_some_and(|t| auth.token_matches(t));
    let by_cookie = !by_token
        && cookie(headers, &session_cookie_name(host_of(headers)))
            .is_some_and(|id| auth.session_valid(id));
    // A cookie-authenticated change must come from the app itself.
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
    let changes = req.method() != Method::GET && req.method() != Method::HEAD;
    if by_token || (by_cookie && !(changes && cross_site)) {
        return next.run(req).await;
    }
    tracing::debug!("API request without a valid credential");
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this API needs the node's credential: send `Authorization: Bearer <token>` with the \
         token the node wrote to api-token in its data directory, or open the app through the \
         login link the node printed",
    )
    .into_response()
}

/// The query of `GET /login`.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    code: String,
}

/// Answer of `POST /v1/login-links`.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct LoginLink {
    /// `/login?code=…`, to append to the API's base URL.
    path: String,
}

/// `POST /v1/login-links`: a new one-time login link (for whoever holds
/// the credential already: the CLI's `ronde app`, an app that lost its
/// cookie's browser).
pub(crate) async fn post_login_link(
    State(auth): State<ApiAuth>,
) -> (StatusCode, axum::Json<LoginLink>) {
    let path = format!("{LOGIN_PATH}?code={}", auth.login_code());
    (StatusCode::CREATED, axum::Json(LoginLink { path }))
}

/// `GET /login?code=…`: spend the code, set the session cookie, open the
/// app.
pub(crate) async fn login(
    State(auth): State<ApiAuth>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let code = query.map(|Query(q)| q.code).unwrap_or_default();
    let Some(session) = auth.redeem(code.trim()) else {
        tracing::info!("web app login refused");
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_login_code",
            "this login link is unknown or was already used (each one opens the app once); \
             `ronde app` (or a restart of the node) gives a new one",
        )
        .into_response();
    };
    let cookie = format!(
        "{}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_COOKIE_MAX_AGE}",
        session_cookie_name(host_of(&headers))
    );
    let mut res = Redirect::to("/app/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

fn random_hex() -> String {
    let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    hex::encode(bytes.as_ref())
}

fn digest(secret: &str) -> Digest32 {
    Sha256::new_with_prefix(b"ronde-node/api-credential")
        .chain_update(secret.as_bytes())
        .finalize()
        .into()
}

/// Constant-time equality of two digests.
fn ct_eq(a: &Digest32, b: &Digest32) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The place of `d` in `set`, every entry compared in constant time.
fn find_ct(set: &VecDeque<Digest32>, d: &Digest32) -> Option<usize> {
    let mut found = None;
    for (i, e) in set.iter().enumerate() {
        if ct_eq(e, d) {
            found = Some(i);
        }
    }
    found
}

fn push_bounded(set: &mut VecDeque<Digest32>, d: Digest32, max: usize) {
    while set.len() >= max {
        set.pop_front();
    }
    set.push_back(d);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_codes_are_spent_once() {
        let auth = ApiAuth::generate();
        let code = auth.login_code();
        let session = auth.redeem(&code).expect("a fresh code logs in");
        assert!(auth.session_valid(&session));
        assert!(auth.redeem(&code).is_none(), "a spent code is refused");
        assert!(auth.redeem("").is_none());
        assert!(!auth.session_valid(&code));
        assert!(!auth.session_valid(auth.token()));
    }

    #[test]
    fn codes_and_sessions_are_bounded() {
        let auth = ApiAuth::generate();
        let first = auth.login_code();
        for _ in 0..MAX_LOGIN_CODES {
            auth.login_code();
        }
        assert!(
            auth.redeem(&first).is_none(),
            "the oldest code is forgotten"
        );
        let sessions: Vec<String> = (0..=MAX_SESSIONS)
            .filter_map(|_| auth.redeem(&auth.login_code()))
            .collect();
        assert!(!auth.session_valid(&sessions[0]));
        assert!(sessions[1..].iter().all(|s| auth.session_valid(s)));
    }

    #[test]
    fn tokens_match_exactly() {
        let auth = ApiAuth::generate();
        assert_eq!(auth.token().len(), 2 * SECRET_BYTES);
        assert!(auth.token_matches(auth.token()));
        assert!(!auth.token_matches(&auth.token()[1..]));
        assert!(!auth.token_matches(""));
        assert!(!auth.token_matches(ApiAuth::generate().token()));
    }

    #[test]
    fn headers_are_read() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc "),
        );
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ronde_session_7300=xyz; b=2"),
        );
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7300"));
        assert_eq!(bearer(&h), Some("abc"));
        assert_eq!(session_cookie_name(host_of(&h)), "ronde_session_7300");
        assert_eq!(cookie(&h, "ronde_session_7300"), Some("xyz"));
        assert_eq!(cookie(&h, "ronde_session_7301"), None);
        assert_eq!(session_cookie_name(Some("[::1]")), "ronde_session_80");
        assert_eq!(session_cookie_name(None), "ronde_session_80");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn only_the_app_and_the_login_are_public() {
        for p in ["/", "/app", "/app/", "/app/app.js", "/login"] {
            assert!(is_public(p), "{p}");
        }
        for p in [
            "/v1/status",
            "/v1",
            "/login/x",
            "/nope",
            "//v1/status",
            "/v1/../app/",
            "/app/../v1/status",
        ] {
            assert!(!is_public(p), "{p}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_token_file_is_owner_only_and_new_at_every_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let a = ApiAuth::create(dir.path()).expect("create");
        let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read_token(dir.path()).ok().as_deref(), Some(a.token()));
        let b = ApiAuth::create(dir.path()).expect("again");
        assert_ne!(a.token(), b.token());
        assert_eq!(read_token(dir.path()).ok().as_deref(), Some(b.token()));
    }
}
