//! Fuzz the decoder of what contacts say to each other
//! (`circle::Message::from_bytes`, the plaintext inside every envelope):
//! arbitrary bytes must give a clean `Ok` or `Err`, never a panic, and a
//! message that decodes must validate and re-encode to exactly the same
//! bytes (canonical encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ronde_protocol::circle::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::from_bytes(data) {
        assert_eq!(
            message.validate(),
            Ok(()),
            "a decoded message must be valid"
        );
        assert_eq!(
            message.to_bytes().as_deref(),
            Ok(data),
            "decoding must be canonical"
        );
    }
});
