//! The directory's canonical encoding, shared by entries, documents,
//! heartbeats and flags: the version byte, a [`Writer`] of big-endian fields
//! and `u8 length || UTF-8` strings, and the crate's byte cursor with
//! [`DirectoryError`]s ([`Reader`]).

use super::error::DirectoryError;
use crate::cursor::{Cursor, CursorError};

/// Wire version of directories, heartbeats and flags.
pub const DIRECTORY_VERSION: u8 = 1;

/// Writes canonical big-endian fields into its buffer.
pub(super) struct Writer(pub(super) Vec<u8>);

impl Writer {
    pub(super) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(super) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(super) fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    /// A string already checked to be at most 255 bytes.
    pub(super) fn str(&mut self, s: &str) {
        self.u8(u8::try_from(s.len()).unwrap_or(u8::MAX));
        self.bytes(s.as_bytes());
    }
}

/// The crate's byte cursor, reading directories, heartbeats and flags: its
/// faults come out as [`DirectoryError`]s.
pub(super) type Reader<'a> = Cursor<'a, DirectoryError>;

impl From<CursorError> for DirectoryError {
    fn from(e: CursorError) -> Self {
        match e {
            CursorError::Truncated => DirectoryError::Truncated,
            CursorError::TrailingBytes(n) => DirectoryError::TrailingBytes(n),
        }
    }
}

impl Reader<'_> {
    /// A string: `u8 length || UTF-8 bytes`.
    pub(super) fn str(&mut self, field: &'static str) -> Result<String, DirectoryError> {
        let n = usize::from(self.u8()?);
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DirectoryError::BadText(field))
    }
}

/// The version byte, which must be [`DIRECTORY_VERSION`].
pub(super) fn version(r: &mut Reader<'_>) -> Result<(), DirectoryError> {
    match r.u8()? {
        DIRECTORY_VERSION => Ok(()),
        v => Err(DirectoryError::UnsupportedVersion(v)),
    }
}
