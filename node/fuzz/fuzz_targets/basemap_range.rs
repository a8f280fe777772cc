//! Fuzz the basemap's `Range` header parser (`ronde_node::basemap::
//! parse_range`, what the web app's map library sends): never a panic, and
//! a range it accepts lies inside the file, first byte before last.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let len = u64::from_le_bytes(data[..8].try_into().expect("8 bytes")) >> (data[0] % 64);
    let Ok(value) = std::str::from_utf8(&data[8..]) else {
        return;
    };
    if let Some((start, end)) = ronde_node::basemap::parse_range(value, len) {
        assert!(
            start <= end && end < len,
            "{value:?} of {len}: {start}-{end}"
        );
    }
});
