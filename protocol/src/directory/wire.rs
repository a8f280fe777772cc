//! The directory's canonical encoding, shared by entries, documents,
//! heartbeats and flags: the version byte, and the crate's byte cursor with
//! [`DirectoryError`]s ([`Reader`]), which reads `u8 length || UTF-8`
//! strings too. They are written with the crate's writer,
//! [`Put`](crate::cursor::Put).

use super::error::DirectoryError;
use crate::cursor::{Cursor, CursorError};

/// Wire version of heartbeats, flags and single entries.
pub const DIRECTORY_VERSION: u8 = 1;
/// Wire version of the signed directory document: 3 since it carries the
/// city's token keys (version 2 had none, version 1 no relays either; both
/// are refused).
pub const DIRECTORY_DOCUMENT_VERSION: u8 = 3;

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

/// The version byte of a document, which must be
/// [`DIRECTORY_DOCUMENT_VERSION`].
pub(super) fn document_version(r: &mut Reader<'_>) -> Result<(), DirectoryError> {
    match r.u8()? {
        DIRECTORY_DOCUMENT_VERSION => Ok(()),
        v => Err(DirectoryError::UnsupportedVersion(v)),
    }
}
