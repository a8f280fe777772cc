//! The city directory's routes of the local HTTP API (a child module of
//! [`crate::api`], sharing its error answers and body readers).
//!
//! | method | path                         | what |
//! |--------|------------------------------|------|
//! | GET    | `/v1/safe-places`            | `?lat=&lon=&radius_m=` (default 5 km, at most 50 km) → `{directory, places}`, nearest first |
//! | GET    | `/v1/directory`              | `{directory: {city, key, serial, issued_at, expires_at, places, mediators} | null}` |
//! | POST   | `/v1/safe-places/{id}/flag`  | `{reason}` → 202 `{place, reason, status: sent | queued, relays}` |
//!
//! "No directory yet" is not an error: both GETs answer 200 with
//! `directory: null` (and no places), so that the app can say so. Only a
//! valid, verified directory is ever shown; expired places never are.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use ronde_protocol::directory::{FlagReason, PlaceId};
use serde::Deserialize;

use super::{query_pairs, ApiError, AppState, JsonBody, NearbyQuery};
use crate::directory::{DirectoryAnswer, FlagSent, SafePlaces};

/// Search radius of `GET /v1/safe-places` when none is given, metres.
pub const DEFAULT_PLACES_RADIUS_M: f64 = 5_000.0;
/// Largest search radius of `GET /v1/safe-places`, metres (a city).
pub const MAX_PLACES_RADIUS_M: f64 = 50_000.0;

/// The directory's routes.
pub(super) fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/v1/safe-places", get(get_safe_places))
        .route("/v1/safe-places/{id}/flag", post(post_flag))
        .route("/v1/directory", get(get_directory))
}

/// Body of `POST /v1/safe-places/{id}/flag`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagBody {
    reason: String,
}

fn parse_place_id(s: &str) -> Result<PlaceId, ApiError> {
    s.parse::<PlaceId>().map_err(|_| {
        ApiError::invalid(
            "bad_place_id",
            "a place id is 32 hex digits, as `GET /v1/safe-places` gives it",
        )
    })
}

fn parse_reason(s: &str) -> Result<FlagReason, ApiError> {
    FlagReason::ALL
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = FlagReason::ALL.iter().map(|r| r.as_str()).collect();
            ApiError::invalid(
                "unknown_reason",
                format!("unknown reason {s:?}; use one of: {}", names.join(", ")),
            )
        })
}

async fn get_safe_places(
    State(s): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<SafePlaces>, ApiError> {
    let q = NearbyQuery::parse_with(
        &query_pairs(query)?,
        DEFAULT_PLACES_RADIUS_M,
        MAX_PLACES_RADIUS_M,
    )?;
    Ok(Json(s.node.safe_places(q.lat, q.lon, q.radius_m).await?))
}

async fn get_directory(State(s): State<AppState>) -> Result<Json<DirectoryAnswer>, ApiError> {
    Ok(Json(s.node.directory().await?))
}

async fn post_flag(
    State(s): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<FlagBody>,
) -> Result<(StatusCode, Json<FlagSent>), ApiError> {
    let Path(id) = id.map_err(|r| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("the path could not be read: {}", r.body_text()),
        )
    })?;
    let place = parse_place_id(&id)?;
    let reason = parse_reason(&body.reason)?;
    let sent = s.node.flag_place(place, reason).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_reasons() {
        assert_eq!(
            parse_place_id("zz").map_err(|e| e.code),
            Err("bad_place_id")
        );
        assert!(parse_place_id(&"ab".repeat(16)).is_ok());
        assert_eq!(parse_reason("closed").ok(), Some(FlagReason::Closed));
        let e = parse_reason("rude").err();
        assert_eq!(e.as_ref().map(|e| e.code), Some("unknown_reason"));
        assert!(e.is_some_and(|e| e.message.contains("refused_help")));
    }
}
