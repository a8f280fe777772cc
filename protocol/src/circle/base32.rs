//! Crockford base32, lowercase, no padding, most significant bit first.
//!
//! Decoding is forgiving where a person typing a code would be: upper and
//! lower case are the same, `i`/`l` read as `1` and `o` as `0`, and `-` and
//! whitespace are skipped. It is strict where it matters: any other
//! character is refused and the unused low bits of the last character must
//! be zero, so each byte string has exactly one spelling (modulo the above).

/// The 32 digits, in value order.
pub(crate) const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Why a string is not base32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base32Error {
    /// A character outside the alphabet, at this character index of the input.
    BadCharacter(char, usize),
    /// The last character has non-zero unused bits, or the length cannot be
    /// the encoding of whole bytes.
    NonCanonical,
}

pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

fn value(c: char) -> Option<u32> {
    let c = c.to_ascii_lowercase();
    let c = match c {
        'i' | 'l' => '1',
        'o' => '0',
        c => c,
    };
    ALPHABET
        .iter()
        .position(|&a| char::from(a) == c)
        .and_then(|p| u32::try_from(p).ok())
}

pub(crate) fn decode(s: &str) -> Result<Vec<u8>, Base32Error> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut digits = 0usize;
    for (i, c) in s.chars().enumerate() {
        if c == '-' || c.is_whitespace() {
            continue;
        }
        let v = value(c).ok_or(Base32Error::BadCharacter(c, i))?;
        digits += 1;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A canonical encoding of n bytes has ceil(8n/5) digits: at most 4
    // leftover bits, all zero.
    if bits >= 5 || acc != 0 || digits != (out.len() * 8).div_ceil(5) {
        return Err(Base32Error::NonCanonical);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for n in 0usize..40 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let s = encode(&bytes);
            assert_eq!(s.len(), (n * 8).div_ceil(5));
            assert_eq!(decode(&s).unwrap(), bytes);
            assert_eq!(decode(&s.to_uppercase()).unwrap(), bytes);
        }
    }

    #[test]
    fn forgiving_and_strict() {
        assert_eq!(decode("0o-O 0").unwrap(), decode("0000").unwrap());
        assert_eq!(decode("1iIlL111").unwrap(), decode("11111111").unwrap());
        assert_eq!(decode("u0"), Err(Base32Error::BadCharacter('u', 0)));
        // "01" encodes 0b00000_00001: a non-zero unused bit.
        assert_eq!(decode("01"), Err(Base32Error::NonCanonical));
        // One digit cannot be a whole byte.
        assert_eq!(decode("0"), Err(Base32Error::NonCanonical));
    }
}
