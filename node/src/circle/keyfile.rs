//! The node's long-term circle identity on disk.
//!
//! `<data_dir>/circle-identity` ([`IDENTITY_FILE`]) holds the 65 secret
//! bytes of [`Identity::to_bytes`], readable and writable by the node's
//! user only (mode 0600 on Unix). It is created on the first start and
//! loaded afterwards; it is **never** deleted or overwritten by the node. A
//! file that cannot be read or does not parse stops the node with a
//! [`StoreError`] naming it, and is left as it is: losing it would mean new
//! safety numbers and a circle to rebuild, so the person decides.
//!
//! The identity is only used for the circle (sealing and opening envelopes,
//! mailbox addresses). Reports are signed with one-time keys and the libp2p
//! peer id is fresh at every start: neither can be linked to it.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use ronde_protocol::circle::Identity;
use zeroize::Zeroizing;

use crate::error::StoreError;

/// Name of the identity file in the data directory.
pub const IDENTITY_FILE: &str = "circle-identity";

/// The identity file of a data directory.
pub fn identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join(IDENTITY_FILE)
}

/// Load the identity of `data_dir`, creating it (mode 0600) on the first
/// start. Blocking.
pub fn load_or_create(data_dir: &Path) -> Result<Identity, StoreError> {
    let path = identity_path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            tighten_permissions(&path)?;
            Identity::from_bytes(&bytes).map_err(|e| {
                StoreError::Corrupt(format!(
                    "the circle identity {} does not load ({e}); it was left untouched. \
                     Restore it from a backup, or move it away to start with a new identity \
                     (contacts will then see a new safety number)",
                    path.display()
                ))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
        Err(e) => Err(StoreError::Io(std::io::Error::new(
            e.kind(),
            format!("cannot read the circle identity {}: {e}", path.display()),
        ))),
    }
}

fn create(path: &Path) -> Result<Identity, StoreError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let identity = Identity::generate(&mut OsRng);
    let mut options = std::fs::OpenOptions::new();
    // `create_new`: never replace a file that appeared meanwhile.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        StoreError::Io(std::io::Error::new(
            e.kind(),
            format!("cannot create the circle identity {}: {e}", path.display()),
        ))
    })?;
    file.write_all(&identity.to_bytes())?;
    file.sync_all()?;
    tracing::info!("created a new circle identity");
    Ok(identity)
}

/// Make the file readable by its owner only, if it was not (warns).
fn tighten_permissions(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the circle identity was readable by other users; restricting it to its owner"
            );
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create(dir.path()).expect("created");
        let b = load_or_create(dir.path()).expect("loaded");
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(identity_path(dir.path()))
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_identity_is_an_error_and_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = identity_path(dir.path());
        std::fs::write(&path, b"not an identity").expect("write");
        let err = load_or_create(dir.path()).err();
        assert!(
            matches!(&err, Some(StoreError::Corrupt(m)) if m.contains("circle-identity")),
            "{err:?}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"not an identity");
    }

    #[cfg(unix)]
    #[test]
    fn loose_permissions_are_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        load_or_create(dir.path()).expect("created");
        let path = identity_path(dir.path());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        load_or_create(dir.path()).expect("loaded");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
