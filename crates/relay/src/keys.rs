//! The city's signing key on disk: 64 hex digits and a newline, in a file
//! only the relay's user may read (mode 0600).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ronde_protocol::directory::DirectoryKey;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold 64 hex digits.
    #[error("key file {0} does not hold a key (64 hexadecimal digits)")]
    Malformed(PathBuf),
    /// The file is readable by other users.
    #[error("key file {0} is readable by other users; run: chmod 600 {0}")]
    TooOpen(PathBuf),
    /// The file exists and would be overwritten.
    #[error("key file {0} already exists; refusing to overwrite it (move it away first)")]
    Exists(PathBuf),
}

/// Read a key file, refusing one that others can read.
pub fn load_key(path: &Path) -> Result<DirectoryKey, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen(path.to_owned()));
        }
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret)
        .map_err(|_| KeyError::Malformed(path.to_owned()))?;
    let key = DirectoryKey::from_bytes(&secret);
    secret.fill(0);
    Ok(key)
}

/// Write a fresh key to a new file with mode 0600 (never overwriting).
pub fn create_key(path: &Path) -> Result<DirectoryKey, KeyError> {
    let key = DirectoryKey::generate(&mut rand::rngs::OsRng);
    write_key(path, &key)?;
    Ok(key)
}

/// Write a key to a new file with mode 0600 (never overwriting).
pub fn write_key(path: &Path, key: &DirectoryKey) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        return Err(KeyError::Exists(path.to_owned()));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    writeln!(f, "{}", hex::encode(key.to_bytes())).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/city.key");
        let key = create_key(&path).expect("create");
        assert_eq!(load_key(&path).expect("load").public(), key.public());
        assert!(matches!(create_key(&path), Err(KeyError::Exists(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            assert!(matches!(load_key(&path), Err(KeyError::TooOpen(_))));
        }
        let bad = dir.path().join("bad.key");
        write_key(&bad, &key).expect("write");
        std::fs::write(&bad, "nothex\n").expect("overwrite");
        assert!(matches!(load_key(&bad), Err(KeyError::Malformed(_))));
    }
}
