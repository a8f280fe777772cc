//! The one byte cursor every decoder of Ronde reads with: reports, the
//! circle's wire formats and the city directory here, and the node's
//! request-response formats.
//!
//! A [`Cursor`] walks a byte slice front to back: fixed-size big-endian
//! integers, byte arrays and slices, and at the end [`Cursor::finish`], which
//! refuses trailing bytes. It only knows two faults, [`CursorError`]: the
//! input ended in the middle of a field, or bytes were left after the last
//! one. Each format names its own error type `E` (the cursor is a
//! `Cursor<'_, E>`), which says how those two faults read in that format
//! through `From<CursorError>`; every other check (versions, kinds, text,
//! limits) stays with the format.
//!
//! Beside it, [`Put`] is the one writer: the same fields, appended to a
//! `Vec<u8>` (the shape of `bytes::BufMut`).

use std::marker::PhantomData;

/// What the cursor itself can find wrong with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// The input ends in the middle of a field.
    #[error("truncated")]
    Truncated,
    /// This many bytes are left after the last field.
    #[error("trailing bytes")]
    TrailingBytes(usize),
}

/// Reads canonical big-endian fields from a byte slice; its faults come out
/// as the caller's error type `E`.
pub struct Cursor<'a, E> {
    rest: &'a [u8],
    error: PhantomData<fn() -> E>,
}

impl<'a, E: From<CursorError>> Cursor<'a, E> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor {
            rest: bytes,
            error: PhantomData,
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], E> {
        if self.rest.len() < n {
            return Err(CursorError::Truncated.into());
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes, as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], E> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// Every byte left (none may follow).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, E> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, E> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, E> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, E> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A big-endian two's-complement `i32`.
    pub fn i32(&mut self) -> Result<i32, E> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// The end of the input: refuses any byte left over.
    pub fn finish(self) -> Result<(), E> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CursorError::TrailingBytes(self.rest.len()).into())
        }
    }
}

/// Appends canonical big-endian fields to a byte buffer: the writing side
/// of [`Cursor`].
pub trait Put {
    /// One byte.
    fn put_u8(&mut self, v: u8);
    /// A big-endian `u16`.
    fn put_u16(&mut self, v: u16);
    /// A big-endian `u32`.
    fn put_u32(&mut self, v: u32);
    /// A big-endian `u64`.
    fn put_u64(&mut self, v: u64);
    /// A big-endian two's-complement `i32`.
    fn put_i32(&mut self, v: i32);
    /// Bytes as they are.
    fn put_slice(&mut self, b: &[u8]);
    /// `u8 length || UTF-8 bytes`, for a string the caller checked to be at
    /// most 255 bytes (a longer one gets the length 255, which no decoder
    /// accepts).
    fn put_short_str(&mut self, s: &str);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_slice(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
    fn put_short_str(&mut self, s: &str) {
        self.put_u8(u8::try_from(s.len()).unwrap_or(u8::MAX));
        self.put_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Plain<'a> = Cursor<'a, CursorError>;

    #[test]
    fn reads_big_endian_fields_in_order() {
        let bytes = [1, 0, 2, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xfe, 9, 9];
        let mut r = Plain::new(&bytes);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(2));
        assert_eq!(r.u32(), Ok(3));
        assert_eq!(r.i32(), Ok(-2));
        assert_eq!(r.array::<2>(), Ok([9, 9]));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn refuses_short_input_and_trailing_bytes() {
        let mut r = Plain::new(&[0; 7]);
        assert_eq!(r.u64(), Err(CursorError::Truncated));
        // A failed read consumes nothing.
        assert_eq!(r.take(7).map(<[u8]>::len), Ok(7));
        let mut r = Plain::new(&[0; 3]);
        assert_eq!(r.u8(), Ok(0));
        assert_eq!(r.finish(), Err(CursorError::TrailingBytes(2)));
    }

    #[test]
    fn what_put_writes_the_cursor_reads() {
        let mut b = Vec::new();
        b.put_u8(1);
        b.put_u16(2);
        b.put_u32(3);
        b.put_i32(-2);
        b.put_u64(4);
        b.put_short_str("ab");
        b.put_slice(&[9]);
        let mut r = Plain::new(&b);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(2));
        assert_eq!(r.u32(), Ok(3));
        assert_eq!(r.i32(), Ok(-2));
        assert_eq!(r.u64(), Ok(4));
        assert_eq!(r.u8(), Ok(2));
        assert_eq!(r.take(2), Ok(&b"ab"[..]));
        assert_eq!(r.array::<1>(), Ok([9]));
        assert_eq!(r.finish(), Ok(()));
    }
}
