//! Fuzz the `/ronde/stem/1` decoders: never a panic, and whatever decodes
//! encodes back to the same bytes (the format is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ronde_protocol::stem::{StemRequest, StemResponse};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = StemRequest::decode(data) {
        assert_eq!(req.encode().ok().as_deref(), Some(data));
    }
    if let Ok(res) = StemResponse::decode(data) {
        assert_eq!(res.encode(), data);
    }
});
