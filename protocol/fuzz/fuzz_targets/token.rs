//! Fuzz the decoders of anonymous rate-limited tokens (`ronde_protocol::token`,
//! docs/protocol.md §8.5): the token itself (354 bytes, RFC 9578 type 2),
//! the issuance request and response (`/ronde/token/1`), and a token key's
//! SPKI as the directory carries it. The first byte picks the decoder;
//! arbitrary bytes must give a clean `Ok` or `Err`, never a panic, and
//! whatever decodes must re-encode to exactly the same bytes. A decoded
//! token is also checked against the key of the test vectors with the
//! fuzzer's report key: it must never verify (the fuzzer cannot forge an
//! RSA signature).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ronde_protocol::token::{IssueRequest, IssueResponse, Token, TokenKey, TokenKeys, PERIOD_SECS};

/// The token key of `docs/test-vectors/tokens.json`.
fn vector_keys() -> Option<TokenKeys> {
    let json = include_str!("../../../docs/test-vectors/tokens.json");
    let at = json.find("\"token_key_spki\": \"")? + "\"token_key_spki\": \"".len();
    let hex = &json[at..at + json[at..].find('"')?];
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let at = json.find("\"period_start\": ")? + "\"period_start\": ".len();
    let end = at + json[at..].find(',')?;
    let period: u64 = json[at..end].trim().parse().ok()?;
    Some(TokenKeys::new(vec![TokenKey::from_spki(period, &bytes).ok()?]))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Ok(t) = Token::from_bytes(rest) {
                assert_eq!(t.to_bytes(), rest, "token decoding must be canonical");
                if let Some(keys) = vector_keys() {
                    let pk: [u8; 32] = rest[2..34].try_into().unwrap_or([0; 32]);
                    let at = keys.keys()[0].period_start() + PERIOD_SECS / 2;
                    assert!(keys.verify(&t, &pk, at).is_err(), "forged token verified");
                }
            }
        }
        1 => {
            if let Ok(r) = IssueRequest::from_bytes(rest) {
                assert_eq!(r.to_bytes(), rest, "request decoding must be canonical");
            }
        }
        2 => {
            if let Ok(r) = IssueResponse::from_bytes(rest) {
                assert_eq!(r.to_bytes(), rest, "response decoding must be canonical");
            }
        }
        _ => {
            if let Ok(k) = TokenKey::from_spki(0, rest) {
                assert_eq!(k.spki(), rest, "key decoding must be canonical");
            }
        }
    }
});
