//! Fuzz the report decoder and validator: arbitrary bytes at an arbitrary
//! time must give a clean `Ok` or `Err`, never a panic, and anything that
//! decodes must re-encode to exactly the same bytes (canonical encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ronde_protocol::{validate_with, Policy, Report};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (now, bytes) = data.split_at(8);
    let now = u64::from_be_bytes(now.try_into().unwrap_or([0; 8]));
    let policy = Policy {
        min_difficulty: 0,
        ..Policy::default()
    };
    let _ = validate_with(bytes, now, &policy);
    if let Ok(report) = Report::from_bytes(bytes) {
        assert_eq!(report.to_bytes(), bytes, "decoding must be canonical");
    }
});
