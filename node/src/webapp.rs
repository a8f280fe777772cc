//! The phone's web app, served by the node's local API.
//!
//! The app is a handful of static files under `node/web/`, embedded in the
//! binary with `include_bytes!` so that the node needs nothing else on disk.
//! [`router`] serves them:
//!
//! | path                         | what                                     |
//! |------------------------------|------------------------------------------|
//! | `/`, `/app/`                 | `index.html`, the app's shell            |
//! | `/app`                       | redirect to `/app/`                      |
//! | `/app/<file>`                | the other files of [`ASSETS`]            |
//!
//! Every answer carries a strict Content-Security-Policy
//! ([`CONTENT_SECURITY_POLICY`]: scripts, styles and connections to this
//! origin only, no inline script, no framing), `nosniff`, no referrer, an
//! `ETag` and `Cache-Control: no-cache` (revalidated at each load, which
//! costs one local round trip; the service worker keeps the shell for
//! offline use). An unknown file under `/app/` is a JSON `404 not_found`
//! like the API's.
//!
//! The service worker (`/app/sw.js`) is served with
//! `Service-Worker-Allowed: /` so that it controls the whole origin; it
//! caches the shell only and never touches `/v1/` (the reports). Its cache
//! name carries a hash of every embedded file ([`shell_version`]), so a new
//! node binary replaces the cached shell.
//!
//! These files hold no data and open without the API's credential; the
//! app's calls to `/v1/` carry the session cookie of the login URL the
//! node printed, and on `401 unauthorized` the app says to open it.
//!
//! Merge it into the API's router *before* the API's layers, so that the
//! `Host` check (DNS rebinding) covers these files too.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::api_error::ApiError;

/// The Content-Security-Policy of every file of the app: nothing but this
/// origin, no inline script or style element, no `eval`, no framing, no
/// plugins. Images may also be `data:` (the map library tests the
/// browser's image formats with one).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
     script-src 'self'; \
     style-src 'self'; \
     img-src 'self' data:; \
     font-src 'self'; \
     connect-src 'self'; \
     manifest-src 'self'; \
     worker-src 'self'; \
     base-uri 'none'; \
     form-action 'none'; \
     frame-ancestors 'none'";

/// What the app may ask of the browser.
pub const PERMISSIONS_POLICY: &str =
    "geolocation=(self), camera=(), microphone=(), payment=(), usb=(), interest-cohort=()";

/// Placeholder in `sw.js` replaced by [`shell_version`].
const VERSION_PLACEHOLDER: &str = "__RONDE_SHELL_VERSION__";

/// One embedded file of the app.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Its name under `/app/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

/// The shell page.
pub const INDEX_HTML: &[u8] = include_bytes!("../web/index.html");

/// Every file served under `/app/` (besides the shell at `/app/`).
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: INDEX_HTML,
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/app.js"),
    },
    Asset {
        name: "i18n.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/i18n.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/app.css"),
    },
    Asset {
        name: "manifest.webmanifest",
        content_type: "application/manifest+json",
        body: include_bytes!("../web/manifest.webmanifest"),
    },
    Asset {
        name: "sw.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/sw.js"),
    },
    Asset {
        // qrcode-generator 1.4.4 (MIT, see web/qrcode.LICENSE.txt): the
        // invite's QR code.
        name: "qrcode.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/qrcode.js"),
    },
    Asset {
        name: "qrcode.LICENSE.txt",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../web/qrcode.LICENSE.txt"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../web/icon.svg"),
    },
    Asset {
        name: "icon-maskable.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../web/icon-maskable.svg"),
    },
    Asset {
        name: "basemap.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/basemap.js"),
    },
    // The map libraries, vendored from the npm registry (web/vendor/README.md).
    Asset {
        name: "vendor/maplibre-gl-csp.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/vendor/maplibre-gl-csp.js"),
    },
    Asset {
        name: "vendor/maplibre-gl-csp-worker.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/vendor/maplibre-gl-csp-worker.js"),
    },
    Asset {
        name: "vendor/maplibre-gl.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/vendor/maplibre-gl.css"),
    },
    Asset {
        name: "vendor/pmtiles.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/vendor/pmtiles.js"),
    },
];

/// FNV-1a, 64 bits: enough to tell two versions of a file apart.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separates `ab` + `c` from `a` + `bc`.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A hash of every embedded file: the version of the cached shell.
pub fn shell_version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let bodies: Vec<&[u8]> = ASSETS.iter().map(|a| a.body).collect();
        format!("{:016x}", fnv1a(&bodies))
    });
    VERSION.as_str()
}

/// The bytes served for `asset`: `sw.js` gets the shell version.
fn served_body(asset: &Asset) -> &'static [u8] {
    static SW: LazyLock<Vec<u8>> = LazyLock::new(|| {
        let sw = ASSETS
            .iter()
            .find(|a| a.name == "sw.js")
            .map(|a| String::from_utf8_lossy(a.body).into_owned())
            .unwrap_or_default();
        sw.replace(VERSION_PLACEHOLDER, shell_version())
            .into_bytes()
    });
    if asset.name == "sw.js" {
        SW.as_slice()
    } else {
        asset.body
    }
}

/// The router of the app's files. Generic over the state so that it merges
/// into any router, e.g. the API's before its state is given.
///
/// It has no fallback (the API's answers unknown paths).
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(index))
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .route("/app/", get(index))
        .route("/app/{*file}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == "index.html") {
        Some(a) => respond(a, &headers),
        None => not_found(),
    }
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => respond(a, &headers),
        None => not_found(),
    }
}

fn not_found() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such file in the app; the app starts at /",
    )
    .into_response()
}

fn etag_of(asset: &Asset) -> String {
    format!("\"{:016x}\"", fnv1a(&[served_body(asset)]))
}

/// Whether an `If-None-Match` header names this entity tag.
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn respond(asset: &Asset, req: &HeaderMap) -> Response {
    let etag = etag_of(asset);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    if asset.name == "sw.js" {
        headers.insert(
            HeaderName::from_static("service-worker-allowed"),
            HeaderValue::from_static("/"),
        );
    }
    if matches_etag(req, &etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (StatusCode::OK, headers, served_body(asset)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_worker_gets_the_shell_version() {
        let sw = ASSETS.iter().find(|a| a.name == "sw.js").copied();
        let served = sw.map(|a| String::from_utf8_lossy(served_body(&a)).into_owned());
        let served = served.unwrap_or_default();
        assert!(served.contains(shell_version()), "{served}");
        assert!(!served.contains(VERSION_PLACEHOLDER));
    }

    #[test]
    fn etags_match() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(matches_etag(&h, "\"a\""));
        assert!(matches_etag(&h, "\"b\""));
        assert!(!matches_etag(&h, "\"c\""));
        assert!(!matches_etag(&HeaderMap::new(), "\"a\""));
    }

    #[test]
    fn no_inline_script_in_the_shell() {
        let html = String::from_utf8_lossy(INDEX_HTML);
        for (i, _) in html.match_indices("<script") {
            let tag_end = html[i..].find('>').map(|e| i + e).unwrap_or(html.len());
            assert!(
                html[i..tag_end].contains("src="),
                "inline script at byte {i}"
            );
        }
        // No inline event handler: ` on<letters>=`.
        for (i, _) in html.match_indices(" on") {
            let rest = &html[i + 3..];
            let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            assert!(
                letters == 0 || rest.as_bytes().get(letters) != Some(&b'='),
                "inline event handler at byte {i}"
            );
        }
        assert!(!html.contains("style="), "no inline style attribute");
    }
}
