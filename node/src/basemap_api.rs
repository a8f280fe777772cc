//! The basemap's routes of the local HTTP API (a child module of
//! [`crate::api`]): the web app reads the cached city basemap from here, so
//! its map works offline and no relay learns where the person looks.
//!
//! | method | path                  | what |
//! |--------|-----------------------|------|
//! | GET    | `/v1/basemap`         | `{cached, bytes}`: whether a basemap is cached (the app asks before loading the map libraries) |
//! | GET    | `/v1/basemap.pmtiles` | the cached PMTiles file, with `Range` support; 404 `no_basemap` when none |
//! | POST   | `/v1/basemap/fetch`   | `{url}` (a relay's `/basemap.pmtiles`) → `{bytes}`: fetch the whole file once and cache it |
//!
//! Both need the node's credential, like every other route.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, JsonBody};
use crate::basemap::{self, BasemapError};

/// The basemap's routes.
pub(super) fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/v1/basemap", get(get_state))
        .route("/v1/basemap.pmtiles", get(get_basemap))
        .route("/v1/basemap/fetch", post(post_fetch))
}

/// Body of `POST /v1/basemap/fetch`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchBody {
    url: String,
}

/// Answer of `GET /v1/basemap`.
#[derive(Debug, Clone, Serialize)]
struct CacheState {
    cached: bool,
    bytes: u64,
}

/// Answer of `POST /v1/basemap/fetch`.
#[derive(Debug, Clone, Serialize)]
struct Fetched {
    bytes: u64,
}

fn no_cache() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no_data_dir",
        "This node keeps no files, so it cannot keep a basemap.",
    )
}

async fn get_state(State(s): State<AppState>) -> Json<CacheState> {
    let bytes = match s.auth.data_dir() {
        Some(dir) => tokio::fs::metadata(basemap::cached_path(dir))
            .await
            .map(|m| m.len())
            .unwrap_or(0),
        None => 0,
    };
    Json(CacheState {
        cached: bytes > 0,
        bytes,
    })
}

async fn get_basemap(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(dir) = s.auth.data_dir() else {
        return axum::response::IntoResponse::into_response(no_cache());
    };
    basemap::serve_file(&basemap::cached_path(dir), &headers).await
}

async fn post_fetch(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<FetchBody>,
) -> Result<Json<Fetched>, ApiError> {
    let dir = s.auth.data_dir().ok_or_else(no_cache)?;
    if !(body.url.starts_with("http://") || body.url.starts_with("https://"))
        || body.url.len() > 2048
    {
        return Err(ApiError::invalid(
            "invalid_url",
            "Give the relay's basemap address, starting with http:// or https://.",
        ));
    }
    match basemap::fetch_into(dir, &body.url).await {
        Ok(bytes) => Ok(Json(Fetched { bytes })),
        Err(BasemapError::Io(_)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "basemap_unwritable",
            "The basemap could not be saved on this device; check its free space.",
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "basemap_fetch_failed",
            e.to_string(),
        )),
    }
}
