//! The city: where people are, where they walk, and which gossip areas
//! cover it.
//!
//! Population is a 2-D Gaussian around the centre (denser downtown),
//! clipped at three standard deviations. Walkers follow the random-waypoint
//! model: walk in a straight line to a point drawn from the same
//! distribution at walking speed, pause, and go again.

use rand::Rng;
use ronde_protocol::geo::haversine_m;
use ronde_protocol::{area_of, Area};

/// Metres per degree of latitude.
const M_PER_DEG_LAT: f64 = 111_320.0;

/// A city: a centre and a spread.
#[derive(Debug, Clone, Copy)]
pub struct City {
    /// Centre, (lat, lon).
    pub center: (f64, f64),
    /// Standard deviation of the population, metres.
    pub sigma_m: f64,
}

impl City {
    /// Paris, centred on the Île de la Cité, σ = 3 km (Ivry-sur-Seine,
    /// 48.8156 N 2.3844 E, is about 1.6 σ south-east).
    pub fn paris() -> City {
        City {
            center: (48.8566, 2.3522),
            sigma_m: 3_000.0,
        }
    }

    /// The point `(dx, dy)` metres east and north of `from`.
    pub fn offset(from: (f64, f64), dx_m: f64, dy_m: f64) -> (f64, f64) {
        let lat = from.0 + dy_m / M_PER_DEG_LAT;
        let lon = from.1 + dx_m / (M_PER_DEG_LAT * from.0.to_radians().cos());
        (lat, lon)
    }

    /// A person's position: Gaussian around the centre, within 3 σ.
    pub fn sample(&self, rng: &mut impl Rng) -> (f64, f64) {
        loop {
            // Box–Muller.
            let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
            let u2: f64 = rng.gen();
            let r = (-2.0 * u1.ln()).sqrt();
            let (dx, dy) = (
                r * (std::f64::consts::TAU * u2).cos(),
                r * (std::f64::consts::TAU * u2).sin(),
            );
            if dx * dx + dy * dy <= 9.0 {
                return City::offset(self.center, dx * self.sigma_m, dy * self.sigma_m);
            }
        }
    }

    /// A point at `frac` of the way from `a` to `b` (fine at city scale).
    pub fn lerp(a: (f64, f64), b: (f64, f64), frac: f64) -> (f64, f64) {
        (a.0 + (b.0 - a.0) * frac, a.1 + (b.1 - a.1) * frac)
    }

    /// Great-circle distance in metres.
    pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
        haversine_m(a.0, a.1, b.0, b.1)
    }

    /// The gossip areas (geohash-5) that cover the populated disc
    /// (radius 3 σ), sorted; what a relay of the city follows.
    pub fn areas(&self) -> Vec<Area> {
        let r = 3.0 * self.sigma_m;
        let step = 500.0;
        let n = (r / step).ceil() as i64;
        let mut areas = Vec::new();
        for i in -n..=n {
            for j in -n..=n {
                let (dx, dy) = (i as f64 * step, j as f64 * step);
                if dx * dx + dy * dy > (r + step) * (r + step) {
                    continue;
                }
                let p = City::offset(self.center, dx, dy);
                if let Ok(a) = area_of(p.0, p.1) {
                    areas.push(a);
                }
            }
        }
        areas.sort();
        areas.dedup();
        areas
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn population_is_denser_downtown_and_bounded() {
        let city = City::paris();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let pts: Vec<_> = (0..4000).map(|_| city.sample(&mut rng)).collect();
        let within = |k: f64| {
            pts.iter()
                .filter(|p| City::distance_m(**p, city.center) <= k * city.sigma_m)
                .count() as f64
                / pts.len() as f64
        };
        // A 2-D Gaussian has 39 % of its mass within 1 σ, 86 % within 2 σ.
        assert!((within(1.0) - 0.39).abs() < 0.04, "{}", within(1.0));
        assert!((within(2.0) - 0.87).abs() < 0.04, "{}", within(2.0));
        assert!(within(3.05) == 1.0);
    }

    #[test]
    fn city_areas_cover_every_person() {
        let city = City::paris();
        let areas = city.areas();
        assert!(areas.len() >= 9 && areas.len() <= 64, "{}", areas.len());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for _ in 0..1000 {
            let p = city.sample(&mut rng);
            let a = area_of(p.0, p.1).expect("area");
            assert!(areas.contains(&a));
        }
    }

    #[test]
    fn offset_moves_by_the_right_distance() {
        let c = City::paris().center;
        let p = City::offset(c, 300.0, 400.0);
        assert!((City::distance_m(c, p) - 500.0).abs() < 2.0);
    }
}
