//! Fuzz the codec of `/ronde/sync/2` and `/ronde/sync/1` (areas; report
//! encodings with 2-byte and 1-byte lengths) with the shared harness
//! (`ronde_node_fuzz::round_trip_on`): never a panic; what decodes
//! re-encodes within the bound and decodes to the same value. Bit 1 of the
//! first byte picks the version (bit 0 the side, as in the harness).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ronde_node::behaviour::{SyncWire, SYNC_PROTOCOL, SYNC_PROTOCOL_1};

fuzz_target!(|data: &[u8]| {
    let v1 = data.first().is_some_and(|b| b & 2 != 0);
    let protocol = if v1 { SYNC_PROTOCOL_1 } else { SYNC_PROTOCOL };
    ronde_node_fuzz::round_trip_on::<SyncWire>(&protocol, data);
});
