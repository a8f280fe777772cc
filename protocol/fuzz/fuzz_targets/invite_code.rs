//! Fuzz the invite decoders: `Invite::from_code` (the `ronde1:…` text a
//! person types, pastes or scans, so any string) and `Invite::from_payload`
//! (the bytes under the base32). Either must give a clean `Ok` or `Err`,
//! never a panic. An invite that decodes must be valid, its payload must be
//! exactly the bytes it came from (canonical), and its code, lower or upper
//! case, must decode back to the same invite.
//!
//! Input: the first byte picks what the rest is: even, a code (UTF-8, else
//! skipped); odd, a payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ronde_protocol::circle::Invite;

fn round_trips(invite: &Invite) {
    assert_eq!(invite.validate(), Ok(()), "a decoded invite must be valid");
    let code = invite.to_code();
    assert_eq!(
        Invite::from_code(&code).as_ref(),
        Ok(invite),
        "code round trip"
    );
    assert_eq!(
        Invite::from_code(&invite.to_qr_string()).as_ref(),
        Ok(invite),
        "QR code round trip"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Ok(code) = std::str::from_utf8(rest) else {
            return;
        };
        if let Ok(invite) = Invite::from_code(code) {
            round_trips(&invite);
        }
    } else if let Ok(invite) = Invite::from_payload(rest) {
        assert_eq!(
            invite.payload().as_deref(),
            Ok(rest),
            "decoding must be canonical"
        );
        round_trips(&invite);
    }
});
