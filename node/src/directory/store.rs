//! The directories and the flag outbox in sled.
//!
//! * `directories`: city key (32) → serial (8, big-endian) ‖ the signed
//!   bytes. The serial is the highest this node ever accepted for the city
//!   and stays when the bytes are dropped (the directory expired): a
//!   restart never lowers it, so an older directory replayed later is
//!   refused ([`ronde_protocol::directory::DirectoryError::Rollback`]).
//! * `flag_outbox`: flag id (32) → the flag's bytes, until a relay took it.
//!
//! Only verified directories are written, and they are verified again when
//! loaded; an entry that does not parse is skipped and logged, never a
//! panic.

use std::path::{Path, PathBuf};

use ronde_protocol::directory::DirectoryPublicKey;

use crate::error::StoreError;
use crate::store::map_sled;

/// A directory entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDirectory {
    /// The city.
    pub city: DirectoryPublicKey,
    /// The highest serial accepted.
    pub serial: u64,
    /// The signed bytes of that serial (empty once dropped).
    pub bytes: Vec<u8>,
}

/// A flag waiting for a relay: its id and its bytes.
pub type QueuedFlag = ([u8; 32], Vec<u8>);

/// The directory trees.
pub struct DirectoryStore {
    path: PathBuf,
    directories: sled::Tree,
    outbox: sled::Tree,
}

impl DirectoryStore {
    /// Open the trees in `db` (at `path`, for error messages).
    pub fn open(db: &sled::Db, path: &Path) -> Result<DirectoryStore, StoreError> {
        let tree = |name: &str| db.open_tree(name).map_err(|e| map_sled(path, e));
        Ok(DirectoryStore {
            path: path.to_path_buf(),
            directories: tree("directories")?,
            outbox: tree("flag_outbox")?,
        })
    }

    fn err(&self, e: sled::Error) -> StoreError {
        map_sled(&self.path, e)
    }

    /// Every stored entry that parses.
    pub fn directories(&self) -> Result<Vec<StoredDirectory>, StoreError> {
        let mut out = Vec::new();
        for item in self.directories.iter() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let (Ok(city), Some((serial, bytes))) =
                (<[u8; 32]>::try_from(k.as_ref()), v.split_first_chunk::<8>())
            else {
                tracing::warn!("skipping a directory entry that does not parse");
                continue;
            };
            out.push(StoredDirectory {
                city: DirectoryPublicKey(city),
                serial: u64::from_be_bytes(*serial),
                bytes: bytes.to_vec(),
            });
        }
        Ok(out)
    }

    /// Keep `bytes` as the directory of `city` at `serial` (empty bytes:
    /// only the serial).
    pub fn put(
        &self,
        city: &DirectoryPublicKey,
        serial: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let mut v = Vec::with_capacity(8 + bytes.len());
        v.extend_from_slice(&serial.to_be_bytes());
        v.extend_from_slice(bytes);
        self.directories
            .insert(city.0, v)
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Queue a flag.
    pub fn queue_flag(&self, id: &[u8; 32], bytes: &[u8]) -> Result<(), StoreError> {
        self.outbox.insert(id, bytes).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forget a queued flag.
    pub fn remove_flag(&self, id: &[u8; 32]) -> Result<(), StoreError> {
        self.outbox.remove(id).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every queued flag.
    pub fn flags(&self) -> Result<Vec<QueuedFlag>, StoreError> {
        let mut out = Vec::new();
        for item in self.outbox.iter() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            match <[u8; 32]>::try_from(k.as_ref()) {
                Ok(id) => out.push((id, v.to_vec())),
                Err(_) => tracing::warn!("skipping a queued flag whose key does not parse"),
            }
        }
        Ok(out)
    }

    /// Number of queued flags.
    pub fn flag_count(&self) -> usize {
        self.outbox.len()
    }
}
