//! [`RondeError`]: every failure of the bindings, typed by kind and
//! carrying the local HTTP API's stable code (`ronde_node::api::ERROR_CODES`),
//! so that an app sees the same codes over either.

use ronde_node::api::ApiError;
use ronde_node::NodeError;

/// A failure, with the API's stable snake_case `code` (e.g.
/// `bad_latitude`, `unknown_contact`) and a sentence saying what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum RondeError {
    /// The input was refused (HTTP 400/422 in the API): bad coordinates,
    /// category, radius, invite code, name, note...
    #[error("{code}: {message}")]
    InvalidInput {
        /// Stable code.
        code: String,
        /// What was wrong.
        message: String,
    },
    /// The request is valid but not now or not here (404/409/403): an
    /// unknown contact, a journey already under way, a wrong code...
    #[error("{code}: {message}")]
    Refused {
        /// Stable code.
        code: String,
        /// Why.
        message: String,
    },
    /// The node is stopped (`node_stopped`).
    #[error("{code}: {message}")]
    Stopped {
        /// Stable code.
        code: String,
        /// What to do.
        message: String,
    },
    /// The node's storage failed or is full (`storage_error`,
    /// `storage_full`).
    #[error("{code}: {message}")]
    Storage {
        /// Stable code.
        code: String,
        /// What failed.
        message: String,
    },
    /// Anything else (`internal`).
    #[error("{code}: {message}")]
    Internal {
        /// Stable code.
        code: String,
        /// What failed.
        message: String,
    },
}

impl RondeError {
    /// Its stable code.
    pub fn code(&self) -> &str {
        match self {
            RondeError::InvalidInput { code, .. }
            | RondeError::Refused { code, .. }
            | RondeError::Stopped { code, .. }
            | RondeError::Storage { code, .. }
            | RondeError::Internal { code, .. } => code,
        }
    }

    /// Refused input with this API code.
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        RondeError::InvalidInput {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        RondeError::Internal {
            code: "internal".to_owned(),
            message: message.into(),
        }
    }
}

impl From<ApiError> for RondeError {
    fn from(e: ApiError) -> Self {
        let code = e.code.to_owned();
        let message = e.message;
        match e.status.as_u16() {
            400 | 413 | 415 | 422 => RondeError::InvalidInput { code, message },
            503 => RondeError::Stopped { code, message },
            _ if code.starts_with("storage_") => RondeError::Storage { code, message },
            400..=499 => RondeError::Refused { code, message },
            _ => RondeError::Internal { code, message },
        }
    }
}

impl From<NodeError> for RondeError {
    fn from(e: NodeError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<ronde_protocol::GeoError> for RondeError {
    fn from(e: ronde_protocol::GeoError) -> Self {
        ApiError::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ronde_node::CircleRefusal;

    #[test]
    fn codes_are_the_apis() {
        let errors = [
            RondeError::from(NodeError::Stopped),
            RondeError::from(NodeError::InvalidInput("x".into())),
            RondeError::from(ronde_protocol::GeoError::BadLatitude(91.0)),
            RondeError::from(NodeError::Circle(CircleRefusal::BadInvite("x".into()))),
            RondeError::internal("x"),
        ];
        for e in &errors {
            assert!(
                ronde_node::api::ERROR_CODES.contains(&e.code()),
                "{e} has a code the API does not list"
            );
        }
        assert!(matches!(errors[0], RondeError::Stopped { .. }));
        assert!(matches!(errors[2], RondeError::InvalidInput { .. }));
    }
}
