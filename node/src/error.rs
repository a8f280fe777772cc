//! Errors the node reports to its callers.
//!
//! [`NodeError`] is what every [`crate::Node`] method returns. Its variants
//! are chosen so an HTTP layer can map them without parsing messages:
//! [`NodeError::Geo`], [`NodeError::InvalidInput`] and [`NodeError::Circle`]
//! are the caller's fault (4xx), [`NodeError::Stopped`] means the node is gone (503), the rest are
//! server-side failures. [`StoreError`] tells apart the storage failures an
//! operator must act on differently (another process holds the data
//! directory, the data was written by a newer version, the disk is full...).

use std::path::PathBuf;

use ronde_protocol::{GeoError, SealError};

/// Why the report store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another node in this process) has the database
    /// open.
    #[error("the data directory {path} is in use by another process")]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// The database is damaged beyond what the store skips over.
    #[error("the database is corrupt: {0}")]
    Corrupt(String),
    /// The data directory was written by a newer version of Ronde; it is
    /// left untouched.
    #[error("the data directory uses schema version {found}, this build supports up to {supported}; upgrade Ronde")]
    NewerVersion {
        /// Schema version found on disk.
        found: u32,
        /// Newest schema version this build understands.
        supported: u32,
    },
    /// The disk is full (or the quota is exhausted).
    #[error("the disk is full: {0}")]
    Full(String),
    /// Any other I/O failure.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else the storage engine reported.
    #[error("storage error: {0}")]
    Other(String),
}

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Bad coordinates or cell precision (caller's fault).
    #[error(transparent)]
    Geo(#[from] GeoError),
    /// Another invalid argument, such as a negative radius (caller's fault).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The report store failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// The report could not be stamped and signed.
    #[error("could not seal the report: {0}")]
    Seal(#[from] SealError),
    /// The node has shut down (or its event loop died).
    #[error("the node is stopped")]
    Stopped,
    /// Listening, dialing or building the network stack failed.
    #[error("network error: {0}")]
    Transport(String),
    /// A circle operation refused because of its input or the circle's
    /// state (unknown contact, bad invite code, a journey already under
    /// way...): the caller's to fix.
    #[error(transparent)]
    Circle(#[from] crate::circle::CircleRefusal),
    /// No valid directory held by this node lists this place (caller's
    /// fault, or no directory yet).
    #[error("no directory held by this node lists the place {0}")]
    UnknownPlace(ronde_protocol::directory::PlaceId),
}

impl NodeError {
    /// Whether the error is the caller's fault (an HTTP 4xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            NodeError::Geo(_)
                | NodeError::InvalidInput(_)
                | NodeError::Circle(_)
                | NodeError::UnknownPlace(_)
        )
    }
}
