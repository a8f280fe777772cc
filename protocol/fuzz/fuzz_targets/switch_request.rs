//! Fuzz the dead-man's-switch decoders a relay runs on what any peer sends
//! (`SwitchRequest::from_bytes`, `Deposit`/`Heartbeat`/`Withdraw::from_bytes`,
//! then `DeadManSwitch::handle` and `poll`), and the phone's secret switch
//! file (`SwitchOwner::from_bytes`). Every call must give a clean `Ok` or
//! `Err`, never a panic; a request that decodes must re-encode to exactly
//! the same bytes, decode the same way through its own kind's decoder, and
//! a saved switch owner must re-encode to the same bytes.
//!
//! Requests are signed, and a fuzzer cannot forge a signature. So the first
//! byte picks how the rest is used: bit 0 clear, as is; bit 0 set, as the
//! unsigned part of a request whose key field the harness overwrites with a
//! fixed journey key and which it signs with that key, so that everything
//! behind the signature check is fuzzed too; bit 1 set (with bit 0), the
//! deposit also names the host's relay, so that the host accepts it.
//! Then bytes 1..9 of the rest, if any, are the host's clock offset.
#![no_main]

use ed25519_dalek::{Signer, SigningKey};
use libfuzzer_sys::fuzz_target;
use ronde_protocol::circle::switch::{
    KIND_DEPOSIT, KIND_HEARTBEAT, KIND_WITHDRAW, SWITCH_SIG_DOMAIN,
};
use ronde_protocol::circle::{
    DeadManSwitch, Deposit, Heartbeat, SwitchOwner, SwitchRequest, Withdraw,
};

const NOW: u64 = 1_790_000_000;
const RELAY: [u8; 32] = [0x52; 32];

/// Where the journey key sits in a request of this kind.
fn key_offset(kind: u8) -> Option<usize> {
    match kind {
        KIND_DEPOSIT => Some(2 + 32),
        KIND_HEARTBEAT | KIND_WITHDRAW => Some(2),
        _ => None,
    }
}

fn signed(unsigned: &[u8], name_relay: bool) -> Vec<u8> {
    let key = SigningKey::from_bytes(&[0x4b; 32]);
    let mut bytes = unsigned.to_vec();
    if let Some(at) = bytes.get(1).copied().and_then(key_offset) {
        if let Some(field) = bytes.get_mut(at..at + 32) {
            field.copy_from_slice(key.verifying_key().as_bytes());
        }
    }
    if name_relay && bytes.get(1) == Some(&KIND_DEPOSIT) {
        if let Some(field) = bytes.get_mut(2..34) {
            field.copy_from_slice(&RELAY);
        }
    }
    let mut input = SWITCH_SIG_DOMAIN.to_vec();
    input.extend_from_slice(&bytes);
    bytes.extend_from_slice(&key.sign(&input).to_bytes());
    bytes
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if let Ok(owner) = SwitchOwner::from_bytes(rest) {
        assert_eq!(&owner.to_bytes()[..], rest, "decoding must be canonical");
    }
    let bytes = if mode & 1 == 1 {
        signed(rest, mode & 2 == 2)
    } else {
        rest.to_vec()
    };
    let request = SwitchRequest::from_bytes(&bytes);
    if let Ok(request) = &request {
        assert_eq!(request.to_bytes(), bytes, "decoding must be canonical");
        match request {
            SwitchRequest::Deposit(d) => assert_eq!(Deposit::from_bytes(&bytes).as_ref(), Ok(d)),
            SwitchRequest::Heartbeat(h) => {
                assert_eq!(Heartbeat::from_bytes(&bytes).as_ref(), Ok(h))
            }
            SwitchRequest::Withdraw(w) => assert_eq!(Withdraw::from_bytes(&bytes).as_ref(), Ok(w)),
        }
    }
    // Each kind's own decoder never panics either, whatever the kind byte.
    let _ = Deposit::from_bytes(&bytes);
    let _ = Heartbeat::from_bytes(&bytes);
    let _ = Withdraw::from_bytes(&bytes);

    let offset = rest.get(1..9).map_or(0, |b| {
        u64::from_be_bytes(b.try_into().unwrap_or([0; 8])) % 100_000
    });
    let now = NOW + offset;
    let mut host = DeadManSwitch::new(RELAY, 4);
    let handled = host.handle(&bytes, now);
    if request.is_err() {
        assert!(
            handled.is_err(),
            "the host must refuse what does not decode"
        );
    }
    let _ = host.next_release();
    let _ = host.poll(now + 365 * 86_400);
    assert!(host.is_empty(), "every switch is released by then");
});
