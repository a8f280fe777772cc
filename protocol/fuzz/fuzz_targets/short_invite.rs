//! Fuzz the short invite decoders (docs/circle.md §2.1): `ShortCode::parse`
//! (what a person types, so any string) and `RendezvousKeys::open` (a blob
//! fetched from a mailbox host, so any bytes). Either must give a clean
//! `Ok` or `Err`, never a panic. A code that parses prints back to itself;
//! a blob that opens was sealed by the same key, and sealing what it held
//! gives the same blob (one spelling per content).
//!
//! Input: the first byte picks what the rest is: even, a typed code
//! (UTF-8, else skipped); odd, a blob opened with a fixed key (one PBKDF2
//! round, for speed: the rounds do not change the format).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ronde_protocol::circle::short_invite::{RendezvousKeys, ShortCode};

fn keys() -> &'static RendezvousKeys {
    static KEYS: OnceLock<RendezvousKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        ShortCode::parse("ABCDE-FGHJK")
            .expect("a valid code")
            .keys_with(1)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    if first % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        if let Ok(code) = ShortCode::parse(text) {
            assert_eq!(ShortCode::parse(&code.to_string()), Ok(code));
            assert_eq!(ShortCode::parse(&code.canonical()), Ok(code));
        }
    } else {
        // Seal the input as a code too, to reach `open`'s success path.
        if let Ok(text) = std::str::from_utf8(rest) {
            if let Ok(blob) = keys().seal(text) {
                assert_eq!(keys().open(&blob).as_deref(), Ok(text));
            }
        }
        if let Ok(code) = keys().open(rest) {
            assert_eq!(keys().seal(&code).as_deref(), Ok(rest), "canonical");
        }
    }
});
