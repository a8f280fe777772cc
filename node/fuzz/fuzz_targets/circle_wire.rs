//! Fuzz the codec of `/ronde/circle/1` (an envelope; a delivery verdict)
//! with the shared harness (`ronde_node_fuzz::round_trip`): never a panic;
//! what decodes re-encodes within the bound and decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ronde_node_fuzz::round_trip::<ronde_node::circle::wire::CircleWire>(data);
});
