//! The error answer of the local HTTP API and of the web app it serves:
//! [`ApiError`], a stable snake_case code and a sentence that says what to
//! do, sent as the JSON body `{"error": code, "message": sentence}`
//! ([`ErrorBody`]), and the mapping of the node's own errors onto it.
//!
//! It sits below both `api` and `webapp`, which answer with it; it imports
//! neither. Its log line carries the code only, never the message (a
//! message can quote the coordinates that were sent).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ronde_protocol::GeoError;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::NodeError;

/// An error answer: an HTTP status and a JSON body
/// `{"error": code, "message": sentence}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, snake_case (e.g. `unknown_category`).
    pub code: &'static str,
    /// A human sentence naming the problem.
    pub message: String,
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub error: String,
    /// A human sentence naming the problem.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A `422 Unprocessable Entity` with this code and message.
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The code only: messages can quote the coordinates that were sent.
        tracing::debug!(
            status = self.status.as_u16(),
            code = self.code,
            "API request refused"
        );
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<GeoError> for ApiError {
    fn from(e: GeoError) -> Self {
        let code = match e {
            GeoError::BadLatitude(_) => "bad_latitude",
            GeoError::BadLongitude(_) => "bad_longitude",
            GeoError::BadPrecision(_) => "bad_precision",
            GeoError::BadCell(_) => "bad_cell",
        };
        ApiError::invalid(code, e.to_string())
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Geo(g) => g.into(),
            NodeError::InvalidInput(msg) => ApiError::invalid("invalid_input", msg),
            NodeError::UnknownPlace(_) => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_place",
                "no directory this node holds lists this place (it may have expired, or the node has no directory of this city yet)",
            ),
            NodeError::Circle(r) => ApiError::new(
                StatusCode::from_u16(r.http_status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
                r.code(),
                r.to_string(),
            ),
            NodeError::Stopped => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "node_stopped",
                "the node is stopped or shutting down; try again once it runs",
            ),
            NodeError::Storage(StoreError::Full(detail)) => {
                tracing::warn!(error = %detail, "disk full while serving the API");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "storage_full",
                    "the node's disk is full; free some space on the device",
                )
            }
            NodeError::Storage(s) => {
                tracing::warn!(error = %s, "storage error while serving the API");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storage_error",
                    format!("the node's storage failed: {s}"),
                )
            }
            other => {
                tracing::warn!(error = %other, "node error while serving the API");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("the node failed: {other}"),
                )
            }
        }
    }
}
