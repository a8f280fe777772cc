//! Fuzz the decoder and verifier of anonymous flags against a place
//! (`directory::verify_flag`, what a relay runs on every flag a phone
//! sends): arbitrary bytes at an arbitrary time must give a clean `Ok` or
//! `Err`, never a panic, and a flag that verifies must re-encode to exactly
//! the same bytes (canonical encoding), be at most `MAX_FLAG_AGE_SECS` old
//! and not from the future.
//!
//! A flag is signed by a one-time key, which a fuzzer cannot forge. So the
//! first byte picks how the rest is used: even, as is; odd, as the unsigned
//! part of a flag whose key field the harness overwrites with a fixed key
//! and which it signs, so that the checks behind the signature are fuzzed
//! too. Bytes 1..9 of the input are the verifier's clock; the minimum
//! difficulty is 0 so that the fuzzer gets past the proof of work.
#![no_main]

use ed25519_dalek::{Signer, SigningKey};
use libfuzzer_sys::fuzz_target;
use ronde_protocol::directory::{verify_flag, FLAG_LEN, FLAG_SIGN_DOMAIN, MAX_FLAG_AGE_SECS};
use ronde_protocol::MAX_CLOCK_SKEW_SECS;

/// Where the one-time key sits: version, place id, reason, minute.
const KEY_AT: usize = 1 + 16 + 1 + 4;

fn signed(unsigned: &[u8]) -> Vec<u8> {
    let key = SigningKey::from_bytes(&[0x46; 32]);
    let mut bytes = unsigned.to_vec();
    if let Some(field) = bytes.get_mut(KEY_AT..KEY_AT + 32) {
        field.copy_from_slice(key.verifying_key().as_bytes());
    }
    let mut input = FLAG_SIGN_DOMAIN.to_vec();
    input.extend_from_slice(&bytes);
    bytes.extend_from_slice(&key.sign(&input).to_bytes());
    bytes
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (head, rest) = data.split_at(9);
    let now = u64::from_be_bytes(head[1..9].try_into().unwrap_or([0; 8]));
    let bytes = if head[0] % 2 == 1 {
        signed(rest)
    } else {
        rest.to_vec()
    };
    if let Ok(verified) = verify_flag(&bytes, now, 0) {
        assert_eq!(bytes.len(), FLAG_LEN);
        assert_eq!(
            verified.flag.to_bytes(),
            bytes,
            "decoding must be canonical"
        );
        let at = verified.flag.observed_at();
        assert!(
            at <= now.saturating_add(MAX_CLOCK_SKEW_SECS),
            "from the future"
        );
        assert!(at.saturating_add(MAX_FLAG_AGE_SECS) >= now, "too old");
    }
});
