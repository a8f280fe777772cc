//! The demo's own basemap (`crates/demo/data/helsinki.pmtiles`): it
//! decodes with the relay's reader, covers the demo city, and its streets
//! carry their real names.

use ronde_demo::city::{City, CENTRE, STATION};
use ronde_demo::demo::BASEMAP;
use ronde_node::pmtiles::{decode_names, Archive};

/// The z/x/y of the tile holding a point (Web Mercator).
fn tile_of(z: u8, lat: f64, lon: f64) -> (u64, u64) {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor() as u64;
    let r = lat.to_radians();
    let y =
        ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor() as u64;
    (x, y)
}

#[test]
fn the_demo_basemap_decodes_and_names_its_streets() {
    let mut a = Archive::open(std::io::Cursor::new(BASEMAP)).expect("opens");
    assert_eq!(a.max_zoom(), 14);
    // Street names are in the most detailed tile under the centre.
    let (x, y) = tile_of(14, CENTRE.0, CENTRE.1);
    let tile = a.tile(14, x, y).expect("reads").expect("the centre's tile");
    let layers = decode_names(&tile).expect("decodes");
    let streets: Vec<&str> = layers
        .iter()
        .filter(|l| l.name == "transportation_name")
        .flat_map(|l| l.features.iter().map(|f| f.name.as_str()))
        .collect();
    for street in ["Mannerheimintie", "Kaivokatu", "Aleksanterinkatu"] {
        assert!(streets.contains(&street), "{street} not in {streets:?}");
    }
    // The relay names a place of the city by its nearest street or
    // landmark, as the dashboard does for hotspots.
    let near_station = a
        .name_near(STATION.0, STATION.1, 150.0)
        .expect("reads")
        .expect("something named by the station");
    assert!(!near_station.is_empty());
    // Every hotspot of the demo city has a name from the basemap.
    for h in &City::helsinki().hotspots {
        let name = a.name_near(h.at.0, h.at.1, 150.0).expect("reads");
        assert!(name.is_some(), "nothing named near {}", h.name);
    }
    // Lower zooms are there too (the dashboard opens on the whole city).
    let (x, y) = tile_of(10, CENTRE.0, CENTRE.1);
    assert!(a.tile(10, x, y).expect("reads").is_some());
}
