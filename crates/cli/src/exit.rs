//! Exit codes (documented in `ronde --help`).

use ronde_node::error::StoreError;
use ronde_node::NodeError;

/// Any other failure.
pub const FAILURE: u8 = 1;
/// Usage error or invalid input.
pub const USAGE: u8 = 2;
/// Storage problem: locked, corrupt, newer version, disk full.
pub const STORAGE: u8 = 3;
/// The node is unreachable or stopped.
pub const UNREACHABLE: u8 = 4;

/// An error that chose its exit code itself.
#[derive(Debug)]
pub struct Coded {
    /// The exit code.
    pub code: u8,
    /// What to tell the person.
    pub message: String,
}

impl Coded {
    /// An error with this exit code and message.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Coded {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// The exit code of a failed command.
///
/// `anyhow`'s `downcast_ref` sees through every layer of context, so a
/// [`Coded`] given as context, or a [`NodeError`] under any context, decides.
pub fn code_of(err: &anyhow::Error) -> u8 {
    if let Some(c) = err.downcast_ref::<Coded>() {
        return c.code;
    }
    if let Some(e) = err.downcast_ref::<NodeError>() {
        return match e {
            NodeError::Storage(_) => STORAGE,
            NodeError::Geo(_) | NodeError::InvalidInput(_) | NodeError::Circle(_) => USAGE,
            NodeError::Stopped => UNREACHABLE,
            _ => FAILURE,
        };
    }
    for cause in err.chain() {
        if cause.downcast_ref::<StoreError>().is_some() {
            return STORAGE;
        }
        if let Some(e) = cause.downcast_ref::<reqwest::Error>() {
            if e.is_connect() || e.is_timeout() {
                return UNREACHABLE;
            }
        }
    }
    FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn storage_errors_map_to_3_through_context() {
        let locked = NodeError::Storage(StoreError::Locked {
            path: "/tmp/x".into(),
        });
        let err = Err::<(), _>(locked).context("could not start the node");
        assert_eq!(err.err().map(|e| code_of(&e)), Some(STORAGE));
        let full = NodeError::Storage(StoreError::Full("no space".into()));
        assert_eq!(code_of(&anyhow::Error::from(full)), STORAGE);
    }

    #[test]
    fn other_errors() {
        assert_eq!(
            code_of(&anyhow::Error::from(NodeError::Stopped)),
            UNREACHABLE
        );
        assert_eq!(code_of(&anyhow::Error::from(Coded::new(USAGE, "x"))), USAGE);
        assert_eq!(code_of(&anyhow::anyhow!("boom")), FAILURE);
        let ctx = Err::<(), _>(anyhow::anyhow!("inner"))
            .context(Coded::new(UNREACHABLE, "x"))
            .context("outer");
        assert_eq!(ctx.err().map(|e| code_of(&e)), Some(UNREACHABLE));
    }
}
