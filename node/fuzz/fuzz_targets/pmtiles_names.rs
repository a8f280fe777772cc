//! Fuzz the basemap reader (`ronde_node::pmtiles`): any bytes as a PMTiles
//! archive, then as a vector tile; never a panic, whatever they hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut a) = ronde_node::pmtiles::Archive::open(std::io::Cursor::new(data)) {
        let _ = a.name_near(48.8156, 2.3844, 300.0);
    }
    let _ = ronde_node::pmtiles::decode_names(data);
});
