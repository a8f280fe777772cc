//! Street names out of a city basemap: a reader of PMTiles v3 archives
//! (header, directories, tiles; gzip or uncompressed) and of the names in
//! their Mapbox Vector Tiles, enough to say which named street, place or
//! point of interest is nearest to a point. The relay names its hotspots
//! with it in what it exports; the dashboard does the same in the browser
//! (`web/basemap.js`). Everything read is bounded: the file is the
//! operator's, but a reader never trusts a file.

use std::io::{Read, Seek, SeekFrom};

/// The largest directory or tile read, compressed or not.
const MAX_CHUNK: u64 = 8 * 1024 * 1024;
/// The largest directory or tile once decompressed.
const MAX_INFLATED: u64 = 16 * 1024 * 1024;
/// Directories nest at most this deep (root, then leaves).
const MAX_DEPTH: usize = 4;
/// Most entries in one directory.
const MAX_ENTRIES: u64 = 1_000_000;
/// The layers whose features name a street or a landmark (Protomaps and
/// OpenMapTiles schemas).
const NAME_LAYERS: [&str; 7] = [
    "roads",
    "transportation_name",
    "transportation",
    "pois",
    "poi",
    "places",
    "place",
];

/// Why an archive or a tile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PmtilesError {
    /// Reading the file failed.
    #[error("cannot read the basemap: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not what PMTiles v3 or a vector tile says.
    #[error("the basemap is not a usable PMTiles v3 archive: {0}")]
    Invalid(&'static str),
}

fn invalid<T>(why: &'static str) -> Result<T, PmtilesError> {
    Err(PmtilesError::Invalid(why))
}

/// What the reader needs of the 127-byte header.
#[derive(Debug, Clone, Copy)]
struct Header {
    root_offset: u64,
    root_length: u64,
    leaf_offset: u64,
    tile_data_offset: u64,
    internal_compression: u8,
    tile_compression: u8,
    tile_type: u8,
    max_zoom: u8,
}

/// One directory entry.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tile_id: u64,
    offset: u64,
    length: u64,
    run_length: u64,
}

/// An open archive.
pub struct Archive<R> {
    src: R,
    header: Header,
    root: Vec<Entry>,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn read_varint(b: &[u8], i: &mut usize) -> Result<u64, PmtilesError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = b.get(*i) else {
            return invalid("truncated varint");
        };
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    invalid("varint too long")
}

fn inflate(data: Vec<u8>, compression: u8) -> Result<Vec<u8>, PmtilesError> {
    match compression {
        // 0: unknown (taken as none), 1: none.
        0 | 1 => Ok(data),
        2 => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(data.as_slice())
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut out)
                .map_err(|_| PmtilesError::Invalid("bad gzip"))?;
            if out.len() as u64 > MAX_INFLATED {
                return invalid("inflates too large");
            }
            Ok(out)
        }
        _ => invalid("compression not supported (gzip or none)"),
    }
}

fn parse_directory(b: &[u8]) -> Result<Vec<Entry>, PmtilesError> {
    let mut i = 0;
    let n = read_varint(b, &mut i)?;
    if n > MAX_ENTRIES || n > b.len() as u64 {
        return invalid("too many directory entries");
    }
    let n = n as usize;
    let mut entries = vec![
        Entry {
            tile_id: 0,
            offset: 0,
            length: 0,
            run_length: 0,
        };
        n
    ];
    let mut last = 0u64;
    for e in entries.iter_mut() {
        last = last
            .checked_add(read_varint(b, &mut i)?)
            .ok_or(PmtilesError::Invalid("tile id overflow"))?;
        e.tile_id = last;
    }
    for e in entries.iter_mut() {
        e.run_length = read_varint(b, &mut i)?;
    }
    for e in entries.iter_mut() {
        e.length = read_varint(b, &mut i)?;
    }
    for k in 0..n {
        let v = read_varint(b, &mut i)?;
        entries[k].offset = if v == 0 && k > 0 {
            entries[k - 1]
                .offset
                .checked_add(entries[k - 1].length)
                .ok_or(PmtilesError::Invalid("offset overflow"))?
        } else {
            v.saturating_sub(1)
        };
    }
    if i != b.len() {
        return invalid("trailing bytes after a directory");
    }
    Ok(entries)
}

/// The Hilbert tile id of z/x/y (the PMTiles v3 numbering).
fn tile_id(z: u8, x: u64, y: u64) -> u64 {
    let mut acc: u64 = 0;
    for t in 0..z {
        acc += 1u64 << (2 * u32::from(t));
    }
    let (mut x, mut y) = (x, y);
    let mut d = 0u64;
    let mut s = (1u64 << z) / 2;
    while s > 0 {
        let rx = u64::from(x & s > 0);
        let ry = u64::from(y & s > 0);
        d += s * s * ((3 * rx) ^ ry);
        // Rotate the quadrant (as the PMTiles reference code does, whose
        // `n` is the current `s`; only the low bits matter after).
        if ry == 0 {
            if rx == 1 {
                x = (s - 1).wrapping_sub(x);
                y = (s - 1).wrapping_sub(y);
            }
            std::mem::swap(&mut x, &mut y);
        }
        s /= 2;
    }
    acc + d
}

fn find(entries: &[Entry], id: u64) -> Option<Entry> {
    // The last entry whose id is at most `id`.
    let k = entries.partition_point(|e| e.tile_id <= id);
    let e = *entries.get(k.checked_sub(1)?)?;
    if e.run_length == 0 || id - e.tile_id < e.run_length {
        Some(e)
    } else {
        None
    }
}

impl<R: Read + Seek> Archive<R> {
    /// Open an archive: its header and root directory.
    pub fn open(mut src: R) -> Result<Archive<R>, PmtilesError> {
        let mut h = [0u8; 127];
        src.seek(SeekFrom::Start(0))?;
        src.read_exact(&mut h)
            .map_err(|_| PmtilesError::Invalid("shorter than a header"))?;
        if !crate::basemap::is_pmtiles_v3(&h) {
            return invalid("not PMTiles v3");
        }
        let header = Header {
            root_offset: u64_at(&h, 8),
            root_length: u64_at(&h, 16),
            leaf_offset: u64_at(&h, 40),
            tile_data_offset: u64_at(&h, 56),
            internal_compression: h[97],
            tile_compression: h[98],
            tile_type: h[99],
            max_zoom: h[101],
        };
        if header.tile_type != 1 {
            return invalid("not vector tiles");
        }
        if header.max_zoom > 24 {
            return invalid("zoom over 24");
        }
        let mut a = Archive {
            src,
            header,
            root: Vec::new(),
        };
        let raw = a.read_at(header.root_offset, header.root_length)?;
        a.root = parse_directory(&inflate(raw, header.internal_compression)?)?;
        Ok(a)
    }

    /// The most detailed zoom of the archive.
    pub fn max_zoom(&self) -> u8 {
        self.header.max_zoom
    }

    fn read_at(&mut self, offset: u64, length: u64) -> Result<Vec<u8>, PmtilesError> {
        if length > MAX_CHUNK {
            return invalid("a chunk is too large");
        }
        self.src.seek(SeekFrom::Start(offset))?;
        let mut b = vec![0u8; length as usize];
        self.src
            .read_exact(&mut b)
            .map_err(|_| PmtilesError::Invalid("a chunk lies past the end"))?;
        Ok(b)
    }

    /// The (decompressed) vector tile z/x/y, or `None` when the archive
    /// has none there.
    pub fn tile(&mut self, z: u8, x: u64, y: u64) -> Result<Option<Vec<u8>>, PmtilesError> {
        if z > self.header.max_zoom || x >> z != 0 || y >> z != 0 {
            return Ok(None);
        }
        let id = tile_id(z, x, y);
        let mut dir = self.root.clone();
        for _ in 0..MAX_DEPTH {
            let Some(e) = find(&dir, id) else {
                return Ok(None);
            };
            if e.run_length > 0 {
                let at = self
                    .header
                    .tile_data_offset
                    .checked_add(e.offset)
                    .ok_or(PmtilesError::Invalid("offset overflow"))?;
                let raw = self.read_at(at, e.length)?;
                return inflate(raw, self.header.tile_compression).map(Some);
            }
            let at = self
                .header
                .leaf_offset
                .checked_add(e.offset)
                .ok_or(PmtilesError::Invalid("offset overflow"))?;
            let raw = self.read_at(at, e.length)?;
            dir = parse_directory(&inflate(raw, self.header.internal_compression)?)?;
        }
        invalid("directories nest too deep")
    }

    /// The name of the street, place or point of interest nearest to
    /// (`lat`, `lon`) within `max_m` metres, from the most detailed tiles.
    pub fn name_near(
        &mut self,
        lat: f64,
        lon: f64,
        max_m: f64,
    ) -> Result<Option<String>, PmtilesError> {
        if !(lat.is_finite() && lon.is_finite() && lat.abs() < 85.0 && lon.abs() <= 180.0) {
            return Ok(None);
        }
        let z = self.header.max_zoom;
        let n = (1u64 << z) as f64;
        let kx = 111_320.0 * lat.to_radians().cos();
        let ky = 110_540.0;
        let tile_x = |lo: f64| (((lo + 180.0) / 360.0) * n).floor().clamp(0.0, n - 1.0) as u64;
        let tile_y = |la: f64| {
            let r = la.clamp(-85.0, 85.0).to_radians();
            (((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0) * n)
                .floor()
                .clamp(0.0, n - 1.0) as u64
        };
        let (dlat, dlon) = (max_m / ky, max_m / kx);
        let mut best: Option<(f64, String)> = None;
        for tx in tile_x(lon - dlon)..=tile_x(lon + dlon) {
            for ty in tile_y(lat + dlat)..=tile_y(lat - dlat) {
                let Some(bytes) = self.tile(z, tx, ty)? else {
                    continue;
                };
                for layer in decode_names(&bytes)? {
                    if !NAME_LAYERS.contains(&layer.name.as_str()) {
                        continue;
                    }
                    let ext = f64::from(layer.extent.max(1));
                    let to_m = |(x, y): (i64, i64)| {
                        let wx = (tx as f64 + x as f64 / ext) / n;
                        let wy = (ty as f64 + y as f64 / ext) / n;
                        let la = (std::f64::consts::PI * (1.0 - 2.0 * wy))
                            .sinh()
                            .atan()
                            .to_degrees();
                        ((wx * 360.0 - 180.0 - lon) * kx, (la - lat) * ky)
                    };
                    for f in layer.features {
                        for part in &f.parts {
                            let pts: Vec<(f64, f64)> = part.iter().map(|p| to_m(*p)).collect();
                            for k in 0..pts.len() {
                                let d = if k == 0 {
                                    pts[0].0.hypot(pts[0].1)
                                } else {
                                    seg_dist(pts[k - 1], pts[k])
                                };
                                if d <= max_m && best.as_ref().is_none_or(|(bd, _)| d < *bd) {
                                    best = Some((d, f.name.clone()));
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(best.map(|(_, n)| n))
    }
}

/// Distance from the origin to the segment a–b.
fn seg_dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (vx, vy) = (b.0 - a.0, b.1 - a.1);
    let len = vx * vx + vy * vy;
    let t = if len > 0.0 {
        (-(a.0 * vx + a.1 * vy) / len).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (a.0 + t * vx).hypot(a.1 + t * vy)
}

/// A layer of a vector tile, with its named features only.
#[derive(Debug, Default)]
pub struct NamedLayer {
    /// The layer's name.
    pub name: String,
    /// Tile units across.
    pub extent: u32,
    /// Its features that have a name.
    pub features: Vec<NamedFeature>,
}

/// A named feature: its name and its geometry's parts in tile units.
#[derive(Debug, Default)]
pub struct NamedFeature {
    /// `name`, or else `name:latin` or `name_int` (tilemaker's).
    pub name: String,
    /// Points, lines or rings, in tile units.
    pub parts: Vec<Vec<(i64, i64)>>,
}

/// One protobuf field: its number, and its value (varint, or the bytes of
/// a length-delimited field); other wire types are skipped.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Other,
}

fn fields(b: &[u8]) -> impl Iterator<Item = Result<(u64, Field<'_>), PmtilesError>> + '_ {
    let mut i = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || i >= b.len() {
            return None;
        }
        let r = (|| {
            let key = read_varint(b, &mut i)?;
            let (num, wire) = (key >> 3, key & 7);
            let f = match wire {
                0 => Field::Varint(read_varint(b, &mut i)?),
                1 | 5 => {
                    let w = if wire == 1 { 8 } else { 4 };
                    if i + w > b.len() {
                        return invalid("truncated field");
                    }
                    i += w;
                    Field::Other
                }
                2 => {
                    let n = read_varint(b, &mut i)?;
                    if n > (b.len() - i) as u64 {
                        return invalid("truncated field");
                    }
                    let s = &b[i..i + n as usize];
                    i += n as usize;
                    Field::Bytes(s)
                }
                _ => return invalid("bad wire type"),
            };
            Ok((num, f))
        })();
        failed = r.is_err();
        Some(r)
    })
}

fn packed(b: &[u8]) -> Result<Vec<u64>, PmtilesError> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        out.push(read_varint(b, &mut i)?);
    }
    Ok(out)
}

/// The layers of a vector tile with their named features (only string
/// values are read; geometry commands MoveTo, LineTo, ClosePath).
pub fn decode_names(tile: &[u8]) -> Result<Vec<NamedLayer>, PmtilesError> {
    let mut layers = Vec::new();
    for f in fields(tile) {
        let (3, Field::Bytes(lb)) = f? else { continue };
        let mut layer = NamedLayer {
            extent: 4096,
            ..NamedLayer::default()
        };
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        let mut raw = Vec::new();
        for f in fields(lb) {
            match f? {
                (1, Field::Bytes(s)) => layer.name = String::from_utf8_lossy(s).into_owned(),
                (5, Field::Varint(v)) => layer.extent = u32::try_from(v).unwrap_or(4096),
                (3, Field::Bytes(s)) => keys.push(String::from_utf8_lossy(s).into_owned()),
                (4, Field::Bytes(vb)) => {
                    let mut v = None;
                    for f in fields(vb) {
                        if let (1, Field::Bytes(s)) = f? {
                            v = Some(String::from_utf8_lossy(s).into_owned());
                        }
                    }
                    values.push(v);
                }
                (2, Field::Bytes(fb)) => raw.push(fb),
                _ => {}
            }
        }
        for fb in raw {
            let (mut tags, mut geom) = (Vec::new(), Vec::new());
            for f in fields(fb) {
                match f? {
                    (2, Field::Bytes(s)) => tags = packed(s)?,
                    (4, Field::Bytes(s)) => geom = packed(s)?,
                    _ => {}
                }
            }
            let mut name = None;
            for want in ["name", "name:latin", "name_int"] {
                for pair in tags.chunks_exact(2) {
                    let key = keys.get(pair[0] as usize);
                    let val = values.get(pair[1] as usize).and_then(|v| v.as_ref());
                    if let (Some(k), Some(v)) = (key, val) {
                        if k == want && !v.is_empty() {
                            name = Some(v.clone());
                            break;
                        }
                    }
                }
                if name.is_some() {
                    break;
                }
            }
            let Some(name) = name else { continue };
            layer.features.push(NamedFeature {
                name,
                parts: geometry(&geom),
            });
        }
        layers.push(layer);
    }
    Ok(layers)
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn geometry(g: &[u64]) -> Vec<Vec<(i64, i64)>> {
    let (mut x, mut y) = (0i64, 0i64);
    let mut parts: Vec<Vec<(i64, i64)>> = Vec::new();
    let mut i = 0;
    while i < g.len() {
        let (cmd, count) = (g[i] & 7, g[i] >> 3);
        i += 1;
        if cmd == 7 {
            if let Some(p) = parts.last_mut() {
                if let Some(first) = p.first().copied() {
                    p.push(first);
                }
            }
            continue;
        }
        for _ in 0..count {
            if i + 1 >= g.len() {
                return parts;
            }
            x = x.wrapping_add(zigzag(g[i]));
            y = y.wrapping_add(zigzag(g[i + 1]));
            i += 2;
            if cmd == 1 {
                parts.push(vec![(x, y)]);
            } else if let Some(p) = parts.last_mut() {
                p.push((x, y));
            }
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_ids_follow_the_hilbert_curve() {
        // Values from the PMTiles specification's examples.
        assert_eq!(tile_id(0, 0, 0), 0);
        assert_eq!(tile_id(1, 0, 0), 1);
        assert_eq!(tile_id(1, 0, 1), 2);
        assert_eq!(tile_id(1, 1, 1), 3);
        assert_eq!(tile_id(1, 1, 0), 4);
        assert_eq!(tile_id(2, 0, 0), 5);
    }

    #[test]
    fn names_come_from_the_real_streets_of_the_tests_extract() {
        let bytes = include_bytes!("../tests/data/kirchberg.pmtiles");
        let mut a = Archive::open(std::io::Cursor::new(bytes.to_vec())).expect("opens");
        assert_eq!(a.max_zoom(), 14);
        // On Haydnstraße, and near Goethestraße.
        assert_eq!(
            a.name_near(48.13557, 10.06987, 300.0)
                .expect("reads")
                .as_deref(),
            Some("Haydnstraße")
        );
        assert_eq!(
            a.name_near(48.13543, 10.07077, 300.0)
                .expect("reads")
                .as_deref(),
            Some("Goethestraße")
        );
        // Nothing named within 300 m of a field 2 km away.
        assert_eq!(a.name_near(48.155, 10.0695, 300.0).expect("reads"), None);
        // A cut file is an error, never a panic.
        let cut = bytes[..bytes.len() / 2].to_vec();
        let r = Archive::open(std::io::Cursor::new(cut))
            .and_then(|mut a| a.name_near(48.13557, 10.06987, 300.0));
        assert!(r.is_err(), "{r:?}");
    }

    /// A quick stand-in for the fuzz target (node/fuzz `pmtiles_names`):
    /// 3000 deterministic mutations of the real extract (bytes flipped,
    /// cut, or decompressed tiles garbled) never panic.
    #[test]
    fn mutated_archives_never_panic() {
        let bytes = include_bytes!("../tests/data/kirchberg.pmtiles").to_vec();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let tile = {
            let mut a = Archive::open(std::io::Cursor::new(bytes.clone())).expect("opens");
            a.tile(14, 8650, 5686)
                .expect("reads")
                .expect("the zoom-14 tile")
        };
        assert!(decode_names(&tile)
            .expect("decodes")
            .iter()
            .any(|l| l.name == "transportation_name"));
        for _ in 0..3000 {
            let mut b = bytes.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            if next() % 5 == 0 {
                b.truncate((next() as usize) % b.len());
            }
            if let Ok(mut a) = Archive::open(std::io::Cursor::new(b)) {
                let _ = a.name_near(48.13557, 10.06987, 300.0);
            }
            let mut t = tile.clone();
            let i = (next() as usize) % t.len();
            t[i] = next() as u8;
            let _ = decode_names(&t);
        }
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        assert!(Archive::open(std::io::Cursor::new(b"PMTiles\x03".to_vec())).is_err());
        assert!(decode_names(&[0x1a, 0xff, 0xff]).is_err());
        assert!(parse_directory(&[5, 1]).is_err());
        assert_eq!(geometry(&[9, 4]), Vec::<Vec<(i64, i64)>>::new());
    }
}
