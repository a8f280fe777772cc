//! A stable libp2p identity on disk, for always-on nodes only.
//!
//! A phone takes a **fresh** peer id at every start (see
//! `docs/threat-model.md`, "Unlinkable sessions"): a stable one would let
//! any peer recognise the same device from one session to the next. A city
//! relay or a mailbox host is the opposite: phones dial it by an address
//! ending in `/p2p/<peer id>`, keep it as a mailbox host and a bootstrap
//! peer, and must find it again after a restart. Such a node sets
//! [`crate::NodeConfig::identity_file`] (the relay and `ronde node
//! --mailbox-host`/`--relay-server` use `<data_dir>/peer-key`).
//!
//! # The file
//!
//! ```text
//! "RPK" (3) || version 0x01 (1) || Ed25519 secret key (32)      36 bytes
//! ```
//!
//! It is created on the first start (mode 0600 on Unix, `create_new`, so a
//! file that appeared meanwhile is never replaced), loaded afterwards, and
//! **never** overwritten or deleted by the node. A file of another length,
//! magic or version stops the node with [`StoreError::Corrupt`] naming it,
//! and is left as it is: the operator decides (restore it from a backup, or
//! move it away to take a new peer id, which every phone that knew the old
//! one will have to learn).

use std::io::Write;
use std::path::Path;

use libp2p::identity::Keypair;
use zeroize::Zeroizing;

use crate::error::StoreError;

/// The usual name of the file in a data directory.
pub const PEER_KEY_FILE: &str = "peer-key";
/// The file's first bytes.
pub const PEER_KEY_MAGIC: &[u8; 3] = b"RPK";
/// The file format this build writes and reads.
pub const PEER_KEY_VERSION: u8 = 1;
/// Length of the file.
pub const PEER_KEY_LEN: usize = 3 + 1 + 32;

/// Load the keypair of `path`, creating the file (mode 0600) if there is
/// none. Blocking.
pub fn load_or_create(path: &Path) -> Result<Keypair, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            tighten_permissions(path)?;
            decode(&bytes).map_err(|why| {
                StoreError::Corrupt(format!(
                    "the peer key {} does not load ({why}); it was left untouched. Restore it \
                     from a backup, or move it away to start with a new peer id (phones that \
                     know this node by its old one will not find it)",
                    path.display()
                ))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(StoreError::Io(std::io::Error::new(
            e.kind(),
            format!("cannot read the peer key {}: {e}", path.display()),
        ))),
    }
}

fn decode(bytes: &[u8]) -> Result<Keypair, String> {
    if bytes.len() < 4 || &bytes[..3] != PEER_KEY_MAGIC {
        return Err("not a Ronde peer key file".into());
    }
    if bytes[3] != PEER_KEY_VERSION {
        return Err(format!(
            "format version {} (this build reads version {PEER_KEY_VERSION})",
            bytes[3]
        ));
    }
    if bytes.len() != PEER_KEY_LEN {
        return Err(format!("{} bytes instead of {PEER_KEY_LEN}", bytes.len()));
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&bytes[4..]);
    Keypair::ed25519_from_bytes(&mut secret[..]).map_err(|e| e.to_string())
}

fn encode(keypair: &Keypair) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let ed = keypair
        .clone()
        .try_into_ed25519()
        .map_err(|e| StoreError::Other(format!("not an Ed25519 keypair: {e}")))?;
    let secret = ed.secret();
    let mut out = Zeroizing::new(Vec::with_capacity(PEER_KEY_LEN));
    out.extend_from_slice(PEER_KEY_MAGIC);
    out.push(PEER_KEY_VERSION);
    out.extend_from_slice(secret.as_ref());
    Ok(out)
}

fn create(path: &Path) -> Result<Keypair, StoreError> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let keypair = Keypair::generate_ed25519();
    let bytes = encode(&keypair)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        StoreError::Io(std::io::Error::new(
            e.kind(),
            format!("cannot create the peer key {}: {e}", path.display()),
        ))
    })?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    tracing::info!(peer_id = %keypair.public().to_peer_id(), "created a new peer key");
    Ok(keypair)
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
                "the peer key was readable by other users; restricting it to its owner"
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
    fn created_once_then_loaded_with_the_same_peer_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join(PEER_KEY_FILE);
        let a = load_or_create(&path).expect("created");
        let on_disk = std::fs::read(&path).expect("read");
        assert_eq!(on_disk.len(), PEER_KEY_LEN);
        assert_eq!(&on_disk[..4], b"RPK\x01");
        let b = load_or_create(&path).expect("loaded");
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        assert_eq!(
            std::fs::read(&path).expect("read"),
            on_disk,
            "not rewritten"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it_and_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(PEER_KEY_FILE);
        let good = {
            load_or_create(&path).expect("created");
            std::fs::read(&path).expect("read")
        };
        let mut wrong_version = good.clone();
        wrong_version[3] = 2;
        let cases: [(&[u8], &str); 4] = [
            (b"garbage", "not a Ronde peer key"),
            (&good[..20], "20 bytes"),
            (&wrong_version, "version 2"),
            (b"", "not a Ronde peer key"),
        ];
        for (bytes, why) in cases {
            std::fs::write(&path, bytes).expect("write");
            let err = load_or_create(&path).err();
            assert!(
                matches!(&err, Some(StoreError::Corrupt(m)) if m.contains(PEER_KEY_FILE) && m.contains(why)),
                "{why}: {err:?}"
            );
            assert_eq!(std::fs::read(&path).expect("read"), bytes, "left alone");
        }
    }
}
