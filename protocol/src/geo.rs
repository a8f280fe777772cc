//! Where: geohash cells for reports, coarse areas for gossip topics, and
//! distances.
//!
//! A report names a [`Cell`] of precision 7 (about 150 m × 150 m) or 6 (about
//! 1.2 km × 0.6 km, for more privacy); nothing finer is ever sent. Reports are
//! gossiped on the topic of their [`Area`], the precision-5 prefix of their
//! cell (about 4.9 km × 4.9 km). A phone subscribes to the area it stands in
//! and the eight around it, so that it sees reports across a nearby border.

use std::fmt;
use std::str::FromStr;

use geohash::Coord;

/// Precision of the gossip areas (geohash characters).
pub const AREA_PRECISION: usize = 5;
/// Precision of a report's cell unless the person asks for a coarser one.
pub const DEFAULT_CELL_PRECISION: u8 = 7;
/// The coarsest cell a report may name.
pub const MIN_CELL_PRECISION: u8 = 6;
/// The finest cell a report may name.
pub const MAX_CELL_PRECISION: u8 = 7;
/// Prefix of every report topic; the area follows it.
pub const TOPIC_PREFIX: &str = "ronde/1/reports/";

const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Why a coordinate or a cell was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeoError {
    /// Latitude is NaN, infinite or outside [-90, 90].
    #[error("latitude {0} is not a number between -90 and 90")]
    BadLatitude(f64),
    /// Longitude is NaN, infinite or outside [-180, 180].
    #[error("longitude {0} is not a number between -180 and 180")]
    BadLongitude(f64),
    /// A cell precision other than 6 or 7 was asked for.
    #[error("cell precision {0} is not allowed; use 6 (about 1 km) or 7 (about 150 m)")]
    BadPrecision(u8),
    /// A string that is not a geohash of the expected length.
    #[error("{0:?} is not a valid geohash cell")]
    BadCell(String),
}

/// A report's location: a geohash of precision 6 or 7, lowercase.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    bytes: [u8; MAX_CELL_PRECISION as usize],
    len: u8,
}

/// A gossip area: a geohash of precision 5.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Area([u8; AREA_PRECISION]);

fn check_lat_lon(lat: f64, lon: f64) -> Result<(), GeoError> {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(GeoError::BadLatitude(lat));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return Err(GeoError::BadLongitude(lon));
    }
    Ok(())
}

fn encode(lat: f64, lon: f64, precision: usize) -> Result<String, GeoError> {
    check_lat_lon(lat, lon)?;
    geohash::encode(Coord { x: lon, y: lat }, precision).map_err(|_| GeoError::BadLatitude(lat))
}

/// The cell of precision `precision` (6 or 7) that contains the point.
pub fn cell_for(lat: f64, lon: f64, precision: u8) -> Result<Cell, GeoError> {
    if !(MIN_CELL_PRECISION..=MAX_CELL_PRECISION).contains(&precision) {
        return Err(GeoError::BadPrecision(precision));
    }
    let s = encode(lat, lon, usize::from(precision))?;
    Cell::from_str(&s)
}

/// The gossip area that contains the point.
pub fn area_of(lat: f64, lon: f64) -> Result<Area, GeoError> {
    let s = encode(lat, lon, AREA_PRECISION)?;
    Area::from_str(&s)
}

/// The gossip topic of an area, e.g. `ronde/1/reports/u09tv`.
pub fn topic_for_area(area: Area) -> String {
    format!("{TOPIC_PREFIX}{area}")
}

/// The areas a person at this point should follow: the area of the point
/// and its eight neighbours, the point's own area first (deduplicated, though
/// geohash neighbours never coincide: north of the northernmost row they wrap
/// to the southernmost, so nine always come back; docs/protocol.md §1.2).
pub fn topics_around(lat: f64, lon: f64) -> Result<Vec<Area>, GeoError> {
    let own = area_of(lat, lon)?;
    let mut areas = vec![own];
    if let Ok(n) = geohash::neighbors(own.as_str()) {
        for s in [n.n, n.ne, n.e, n.se, n.s, n.sw, n.w, n.nw] {
            if let Ok(a) = Area::from_str(&s) {
                if !areas.contains(&a) {
                    areas.push(a);
                }
            }
        }
    }
    Ok(areas)
}

/// Great-circle distance in metres from a point to the nearest point of a
/// cell (0 inside the cell).
pub fn distance_to_cell_m(lat: f64, lon: f64, cell: &Cell) -> Result<f64, GeoError> {
    check_lat_lon(lat, lon)?;
    let (min_lat, min_lon, max_lat, max_lon) = cell.bounds();
    let near_lat = lat.clamp(min_lat, max_lat);
    let near_lon = lon.clamp(min_lon, max_lon);
    Ok(haversine_m(lat, lon, near_lat, near_lon))
}

/// Distance in metres from point `p` to the segment `a`–`b` (all as
/// (lat, lon) in degrees), on a local flat projection centred on `p`:
/// accurate to well under 1 % for the few kilometres of a walk, not for
/// continents.
pub fn distance_to_segment_m(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let k = EARTH_RADIUS_M.to_radians();
    let cos = p.0.to_radians().cos();
    let xy = |q: (f64, f64)| {
        let mut dlon = q.1 - p.1;
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        (dlon * k * cos, (q.0 - p.0) * k)
    };
    let ((ax, ay), (bx, by)) = (xy(a), xy(b));
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (nx, ny) = (ax + t * dx, ay + t * dy);
    (nx * nx + ny * ny).sqrt()
}

/// Great-circle distance in metres between two points.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

fn is_geohash(s: &[u8]) -> bool {
    s.iter().all(|b| ALPHABET.contains(b))
}

/// Bounds of a geohash string as (min_lat, min_lon, max_lat, max_lon).
fn bounds_of(s: &str) -> (f64, f64, f64, f64) {
    match geohash::decode_bbox(s) {
        Ok(r) => (r.min().y, r.min().x, r.max().y, r.max().x),
        // Unreachable for the validated strings of Cell and Area.
        Err(_) => (-90.0, -180.0, 90.0, 180.0),
    }
}

impl Cell {
    /// The geohash string of the cell.
    pub fn as_str(&self) -> &str {
        // Only ASCII from ALPHABET is ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// Number of geohash characters (6 or 7).
    pub fn precision(&self) -> u8 {
        self.len
    }

    /// The gossip area that contains this cell.
    pub fn area(&self) -> Area {
        let mut a = [0u8; AREA_PRECISION];
        a.copy_from_slice(&self.bytes[..AREA_PRECISION]);
        Area(a)
    }

    /// The gossip topic this cell's reports are published on.
    pub fn topic(&self) -> String {
        topic_for_area(self.area())
    }

    /// Centre of the cell as (lat, lon).
    pub fn center(&self) -> (f64, f64) {
        let (a, b, c, d) = self.bounds();
        ((a + c) / 2.0, (b + d) / 2.0)
    }

    /// Bounds as (min_lat, min_lon, max_lat, max_lon).
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        bounds_of(self.as_str())
    }
}

impl FromStr for Cell {
    type Err = GeoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let len = u8::try_from(b.len()).map_err(|_| GeoError::BadCell(s.into()))?;
        if !(MIN_CELL_PRECISION..=MAX_CELL_PRECISION).contains(&len) || !is_geohash(b) {
            return Err(GeoError::BadCell(s.into()));
        }
        let mut bytes = [0u8; MAX_CELL_PRECISION as usize];
        bytes[..b.len()].copy_from_slice(b);
        Ok(Cell { bytes, len })
    }
}

impl Area {
    /// The geohash string of the area.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The gossip topic of this area.
    pub fn topic(&self) -> String {
        topic_for_area(*self)
    }

    /// The area named by a topic string, if it is a Ronde report topic.
    pub fn from_topic(topic: &str) -> Option<Area> {
        topic.strip_prefix(TOPIC_PREFIX)?.parse().ok()
    }

    /// Bounds as (min_lat, min_lon, max_lat, max_lon).
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        bounds_of(self.as_str())
    }
}

impl FromStr for Area {
    type Err = GeoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != AREA_PRECISION || !is_geohash(b) {
            return Err(GeoError::BadCell(s.into()));
        }
        let mut a = [0u8; AREA_PRECISION];
        a.copy_from_slice(b);
        Ok(Area(a))
    }
}

macro_rules! display_as_str {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.as_str())
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
display_as_str!(Cell);
display_as_str!(Area);

#[cfg(test)]
mod tests {
    use super::*;

    const IVRY: (f64, f64) = (48.8156, 2.3844);

    #[test]
    fn cell_of_a_known_point() {
        let c = cell_for(IVRY.0, IVRY.1, 7).unwrap();
        assert_eq!(c.precision(), 7);
        assert_eq!(
            c.as_str(),
            geohash::encode(
                Coord {
                    x: IVRY.1,
                    y: IVRY.0
                },
                7
            )
            .unwrap()
        );
        assert_eq!(c.area().as_str(), &c.as_str()[..5]);
        assert_eq!(c.topic(), format!("ronde/1/reports/{}", &c.as_str()[..5]));
        let (lat, lon) = c.center();
        assert!((lat - IVRY.0).abs() < 0.001 && (lon - IVRY.1).abs() < 0.001);
        assert_eq!(distance_to_cell_m(IVRY.0, IVRY.1, &c).unwrap(), 0.0);
    }

    #[test]
    fn bad_coordinates_are_clear_errors() {
        assert!(matches!(
            cell_for(f64::NAN, 0.0, 7),
            Err(GeoError::BadLatitude(_))
        ));
        assert!(matches!(
            cell_for(0.0, f64::INFINITY, 7),
            Err(GeoError::BadLongitude(_))
        ));
        assert!(matches!(
            cell_for(90.5, 0.0, 7),
            Err(GeoError::BadLatitude(_))
        ));
        assert!(matches!(
            cell_for(0.0, -180.1, 7),
            Err(GeoError::BadLongitude(_))
        ));
        assert_eq!(cell_for(0.0, 0.0, 8), Err(GeoError::BadPrecision(8)));
        assert_eq!(cell_for(0.0, 0.0, 5), Err(GeoError::BadPrecision(5)));
        assert!(cell_for(90.0, 180.0, 6).is_ok());
        assert!(topics_around(f64::NEG_INFINITY, 0.0).is_err());
    }

    #[test]
    fn cells_reject_bad_strings() {
        for s in ["", "u09tv", "u09tvw12", "U09TVWX", "u09tvwa", "u09tv w"] {
            assert!(s.parse::<Cell>().is_err(), "{s:?}");
        }
        assert!("u09tvw".parse::<Cell>().is_ok());
        assert!("u09tvwx".parse::<Cell>().is_ok());
        assert_eq!(
            Area::from_topic("ronde/1/reports/u09tv").map(|a| a.to_string()),
            Some("u09tv".into())
        );
        assert_eq!(Area::from_topic("ronde/2/reports/u09tv"), None);
        assert_eq!(Area::from_topic("ronde/1/reports/u09t"), None);
    }

    #[test]
    fn nine_areas_around_a_city_point() {
        let areas = topics_around(IVRY.0, IVRY.1).unwrap();
        assert_eq!(areas.len(), 9);
        assert_eq!(areas[0], area_of(IVRY.0, IVRY.1).unwrap());
        // A point 3 km east is in one of them; a point 50 km away is not.
        assert!(areas.contains(&area_of(IVRY.0, IVRY.1 + 0.04).unwrap()));
        assert!(!areas.contains(&area_of(IVRY.0 + 0.45, IVRY.1).unwrap()));
    }

    #[test]
    fn topics_near_the_pole_are_deduplicated() {
        let areas = topics_around(90.0, 0.0).unwrap();
        assert!(!areas.is_empty() && areas.len() <= 9);
        let mut sorted = areas.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), areas.len());
    }

    #[test]
    fn distance_grows_away_from_a_cell() {
        let c = cell_for(IVRY.0, IVRY.1, 7).unwrap();
        let near = distance_to_cell_m(IVRY.0 + 0.01, IVRY.1, &c).unwrap();
        let far = distance_to_cell_m(IVRY.0 + 0.1, IVRY.1, &c).unwrap();
        assert!(near > 900.0 && near < 1_200.0, "{near}");
        assert!(far > 10_000.0 && far < 11_500.0, "{far}");
    }
}
