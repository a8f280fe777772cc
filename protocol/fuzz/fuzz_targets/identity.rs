//! Fuzz the identity decoders: `PublicIdentity::from_bytes` (a contact's
//! keys, inside invites and envelopes) and `Identity::from_bytes` (the
//! secret identity file a node loads at start). Arbitrary bytes must give a
//! clean `Ok` or `Err`, never a panic, and whatever decodes must re-encode
//! to exactly the same bytes; a secret identity's public half must itself
//! decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ronde_protocol::circle::{Identity, PublicIdentity};

fuzz_target!(|data: &[u8]| {
    if let Ok(public) = PublicIdentity::from_bytes(data) {
        assert_eq!(&public.to_bytes()[..], data, "decoding must be canonical");
        let _ = public.id();
    }
    if let Ok(identity) = Identity::from_bytes(data) {
        assert_eq!(&identity.to_bytes()[..], data, "decoding must be canonical");
        let public = identity.public().to_bytes();
        assert_eq!(
            PublicIdentity::from_bytes(&public).as_ref(),
            Ok(identity.public()),
            "the public half of a loaded identity must decode"
        );
    }
});
