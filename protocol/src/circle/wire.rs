//! The circle's wire helpers, below every format of the circle: the
//! [`DecodeError`] all its decoders share, the byte cursor they read with
//! ([`Reader`], the crate's cursor with circle errors), and the rules for
//! text fields (`len u8 || UTF-8`, no control characters).

use crate::cursor::{Cursor, CursorError};

/// Why bytes could not be decoded. Shared by every decoder of the circle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than the format allows; nothing was parsed.
    #[error("{len} bytes is over the limit of {max}")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The input ends in the middle of a field.
    #[error("truncated input")]
    Truncated,
    /// Bytes are left after the last field.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A version this implementation does not know.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// A message, place or request kind this implementation does not know.
    #[error("unknown kind {0:#04x}")]
    UnknownKind(u8),
    /// A variable-length field is over its limit.
    #[error("{field} is {len} bytes long, over the limit of {max}")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A text field is not valid UTF-8 or contains control characters.
    #[error("{0} is not acceptable text")]
    BadText(&'static str),
    /// A field holds a value outside its range.
    #[error("bad value for {0}")]
    BadValue(&'static str),
}

/// The crate's byte cursor, reading the circle's formats: its faults
/// come out as [`DecodeError`]s.
pub(crate) type Reader<'a> = Cursor<'a, DecodeError>;

impl From<CursorError> for DecodeError {
    fn from(e: CursorError) -> Self {
        match e {
            CursorError::Truncated => DecodeError::Truncated,
            CursorError::TrailingBytes(n) => DecodeError::TrailingBytes(n),
        }
    }
}

impl Reader<'_> {
    /// A boolean byte: exactly 0 or 1.
    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::BadValue(field)),
        }
    }
}

/// Text of at most `max` bytes, valid UTF-8, without control characters
/// (but `\n` if `allow_newlines`) or bidirectional overrides.
pub(crate) fn check_text(
    s: &str,
    field: &'static str,
    max: usize,
    allow_newlines: bool,
) -> Result<(), DecodeError> {
    if s.len() > max {
        return Err(DecodeError::FieldTooLong {
            field,
            len: s.len(),
            max,
        });
    }
    // Control characters, and the bidirectional overrides that can make
    // a name display as another.
    let bad = |c: char| {
        (c.is_control() && !(allow_newlines && c == '\n'))
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if s.chars().any(bad) {
        return Err(DecodeError::BadText(field));
    }
    Ok(())
}

/// Bytes that must be text passing [`check_text`].
pub(crate) fn text<'a>(
    bytes: &'a [u8],
    field: &'static str,
    max: usize,
    allow_newlines: bool,
) -> Result<&'a str, DecodeError> {
    let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::BadText(field))?;
    check_text(s, field, max, allow_newlines)?;
    Ok(s)
}

/// A length known to fit a byte (over 255 would give 255, which no
/// decoder accepts for these fields).
pub(crate) fn len_u8(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// `len u8 || UTF-8`, refusing over `max` bytes.
pub(crate) fn read_short_text(
    r: &mut Reader<'_>,
    field: &'static str,
    max: usize,
) -> Result<String, DecodeError> {
    let len = usize::from(r.u8()?);
    if len > max {
        return Err(DecodeError::FieldTooLong { field, len, max });
    }
    let bytes = r.take(len)?;
    Ok(std::str::from_utf8(bytes)
        .map_err(|_| DecodeError::BadText(field))?
        .to_owned())
}
