//! Fuzz the codec of `/ronde/sync/3`, `/ronde/sync/2` and `/ronde/sync/1`
//! (areas, with an area count and held report ids on `/3`; report
//! encodings with 2-byte and 1-byte lengths) with the shared harness
//! (`ronde_node_fuzz::round_trip_on`): never a panic; what decodes
//! re-encodes within the bound and decodes to the same value. Bits 1 and 2
//! of the first byte pick the version (bit 0 the side, as in the harness).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ronde_node::behaviour::{SyncWire, SYNC_PROTOCOL, SYNC_PROTOCOL_1, SYNC_PROTOCOL_2};

fuzz_target!(|data: &[u8]| {
    let protocol = match data.first().map(|b| (b >> 1) & 3) {
        Some(1) => SYNC_PROTOCOL_1,
        Some(2) => SYNC_PROTOCOL_2,
        _ => SYNC_PROTOCOL,
    };
    ronde_node_fuzz::round_trip_on::<SyncWire>(&protocol, data);
});
