//! Fuzz the codec of `/ronde/mailbox/1` (put, fetch and ack with their proofs, switch with its work, challenge; mail, refusals, challenge)
//! with the shared harness (`ronde_node_fuzz::round_trip`): never a panic;
//! what decodes re-encodes within the bound and decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ronde_node_fuzz::round_trip::<ronde_node::circle::wire::MailboxWire>(data);
});
