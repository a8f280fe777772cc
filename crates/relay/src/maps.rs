//! The city basemap and the map libraries, over HTTP.
//!
//! | listener | method | path | what |
//! |----------|--------|------|------|
//! | public   | GET | `/basemap.pmtiles` | the operator's PMTiles extract (`[map] basemap`), whole or by `Range`; 404 `no_basemap` when none |
//! | operator | GET | `/basemap.pmtiles` | the same, for the dashboard's map (needs the operator token) |
//! | operator | GET | `/vendor/{file}` | MapLibre GL JS and pmtiles, vendored (open, like `/app.js`) |
//!
//! Phones fetch the whole file once through their node and keep it
//! (`ronde_node::basemap`): they never ask for single tiles, which would
//! tell the relay where the person looks. Byte ranges serve the
//! dashboard's reader. The file itself is public map data, which is why the
//! public listener serves it without a token.
//!
//! [`name_cells`] names published cells by their nearest street or
//! landmark from the same file, for the API, the exports, the OGC API and
//! the summary (`ronde_node::pmtiles` reads it).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ronde_node::basemap::serve_file;
use ronde_node::pmtiles::Archive;
use ronde_node::webapp::ASSETS;

use crate::query::{CellCount, Hotspot};
use crate::state::Shared;

type St = State<Arc<Shared>>;

/// The files the dashboard may load under `/vendor/`, and their names
/// among the node app's assets (`basemap.js` is Ronde's own glue, shared
/// with the phone app).
const VENDORED: [(&str, &str); 5] = [
    ("maplibre-gl-csp.js", "vendor/maplibre-gl-csp.js"),
    (
        "maplibre-gl-csp-worker.js",
        "vendor/maplibre-gl-csp-worker.js",
    ),
    ("maplibre-gl.css", "vendor/maplibre-gl.css"),
    ("pmtiles.js", "vendor/pmtiles.js"),
    ("basemap.js", "basemap.js"),
];

/// `GET /basemap.pmtiles`, for either listener's router.
pub fn basemap_route(router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    router.route("/basemap.pmtiles", get(basemap))
}

/// `GET /vendor/{file}`.
pub fn vendor_route(router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    router.route("/vendor/{file}", get(vendor))
}

async fn basemap(State(s): St, headers: HeaderMap) -> Response {
    match s.config.basemap_path() {
        Some(path) => {
            let mut res = serve_file(&path, &headers).await;
            // A city map changes rarely; let readers keep it for a day.
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            );
            res
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "error": "no_basemap",
                "message": "This relay has no basemap: set [map] basemap in relay.toml.",
            })),
        )
            .into_response(),
    }
}

async fn vendor(Path(file): Path<String>) -> Response {
    let asset = VENDORED
        .iter()
        .find(|(v, _)| *v == file)
        .and_then(|(_, name)| ASSETS.iter().find(|a| a.name == *name));
    match asset {
        Some(a) => ([(header::CONTENT_TYPE, a.content_type)], a.body).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": "not_found", "message": "no such file"})),
        )
            .into_response(),
    }
}

/// How far from a cell's centre a street or landmark may be to name it.
const NAME_WITHIN_M: f64 = 300.0;

/// Name cells by the nearest named street or landmark of the city's
/// basemap (within 300 m of their centre), read from the file itself; a
/// cell stays unnamed without a basemap or when the file cannot be read
/// (said once in the log). Reads a few small tiles per cell from disk.
pub fn name_cells(s: &Shared, cells: &mut [CellCount]) {
    let Some(path) = s.config.basemap_path() else {
        return;
    };
    if cells.is_empty() {
        return;
    }
    let archive = std::fs::File::open(&path)
        .map_err(ronde_node::pmtiles::PmtilesError::from)
        .and_then(|f| Archive::open(std::io::BufReader::new(f)));
    let mut archive = match archive {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(path = %path.display(), "the basemap names no cell: {e}");
            return;
        }
    };
    for c in cells.iter_mut() {
        let (lat, lon) = c.cell.center();
        match archive.name_near(lat, lon, NAME_WITHIN_M) {
            Ok(n) => c.near = n,
            Err(e) => {
                tracing::warn!(path = %path.display(), "the basemap names no cell: {e}");
                return;
            }
        }
    }
}

/// [`name_cells`] for hotspots.
pub fn name_hotspots(s: &Shared, hot: &mut [Hotspot]) {
    let mut cells: Vec<CellCount> = hot.iter().map(|h| h.cell.clone()).collect();
    name_cells(s, &mut cells);
    for (h, c) in hot.iter_mut().zip(cells) {
        h.cell.near = c.near;
    }
}
