//! The aggregation rules, sans I/O: what a relay counts, into which bucket,
//! and the local calendar the buckets are read in.
//!
//! A report is counted once, in the bucket *cell × category × UTC hour* of
//! its observation, if its area is in the jurisdiction and it is still live
//! when the relay sees it. [`Rules::admit`] decides; [`Aggregator`] is the
//! whole state machine in memory (dedup while live, counts, expiry), fed
//! observations and `now` — the reference model the sled store
//! ([`crate::store`]) follows, byte for byte, and tests compare them.
//!
//! Nothing here reads a clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ronde_node::NearbyReport;
use ronde_protocol::{Area, Category, Cell, ReportId, MAX_CLOCK_SKEW_SECS};

/// Seconds in an hour.
pub const HOUR: u64 = 3_600;
/// Width of a time-of-day band, hours.
pub const BAND_HOURS: u32 = 3;
/// Number of time-of-day bands (00–03 … 21–24, local time).
pub const BANDS: u8 = 8;
/// Reports counted per cell per UTC hour, every category together; the
/// rest are counted apart as "suppressed as a flood" (issue 14). A busy
/// honest cell sees a few reports an hour; 60 (one a minute for a whole
/// hour) keeps a flood into a few cells from outweighing a city's map.
pub const CELL_HOUR_CAP: u64 = 60;

/// What the relay learns of a report: no key, no signature, no proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// The report id (for deduplication while it is live).
    pub id: ReportId,
    /// What happened.
    pub category: Category,
    /// Where.
    pub cell: Cell,
    /// When it was observed, Unix seconds.
    pub observed_at: u64,
    /// When it expires, Unix seconds.
    pub expires_at: u64,
}

impl From<&NearbyReport> for Observation {
    fn from(r: &NearbyReport) -> Self {
        Observation {
            id: r.id,
            category: r.category,
            cell: r.cell,
            observed_at: r.observed_at,
            expires_at: r.expires_at,
        }
    }
}

/// The unit of aggregation: a cell, a category, an hour (UTC hours since
/// the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketKey {
    /// UTC hours since the epoch.
    pub hour: u32,
    /// The cell.
    pub cell: Cell,
    /// The category.
    pub category: Category,
}

/// Why a report is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// Its area is not one the relay follows for its city.
    OutsideJurisdiction,
    /// It expired before the relay saw it.
    Expired,
    /// Observed too far in the future.
    FromFuture,
    /// Already counted.
    Duplicate,
    /// Its cell already counted [`Rules::cell_hour_cap`] reports in its
    /// hour: remembered (so counted once) as "suppressed as a flood".
    Flood,
}

impl Refusal {
    /// Every refusal, for metrics.
    pub const ALL: [Refusal; 5] = [
        Refusal::OutsideJurisdiction,
        Refusal::Expired,
        Refusal::FromFuture,
        Refusal::Duplicate,
        Refusal::Flood,
    ];
    /// Stable snake_case name, for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::OutsideJurisdiction => "outside_jurisdiction",
            Refusal::Expired => "expired",
            Refusal::FromFuture => "from_future",
            Refusal::Duplicate => "duplicate",
            Refusal::Flood => "suppressed_as_a_flood",
        }
    }
}

/// A report the rules accept: where to count it and until when to remember
/// its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Its bucket.
    pub key: BucketKey,
    /// Until then its id is kept to drop duplicates; then it is forgotten.
    pub forget_at: u64,
}

/// The rules of one relay: its jurisdiction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    areas: BTreeSet<Area>,
    cell_hour_cap: u64,
}

impl Rules {
    /// Rules for a jurisdiction of these areas.
    pub fn new(areas: impl IntoIterator<Item = Area>) -> Rules {
        Rules {
            areas: areas.into_iter().collect(),
            cell_hour_cap: CELL_HOUR_CAP,
        }
    }

    /// The same rules with another cap per cell per hour (at least 1).
    pub fn with_cell_hour_cap(mut self, cap: u64) -> Rules {
        self.cell_hour_cap = cap.max(1);
        self
    }

    /// Reports counted per cell per UTC hour (every category together)
    /// before the rest is suppressed as a flood.
    pub fn cell_hour_cap(&self) -> u64 {
        self.cell_hour_cap
    }

    /// The areas of the jurisdiction.
    pub fn areas(&self) -> impl Iterator<Item = &Area> {
        self.areas.iter()
    }

    /// Whether a report may be counted at `now`, and where (deduplication
    /// is the caller's: it needs the state).
    pub fn admit(&self, obs: &Observation, now: u64) -> Result<Admission, Refusal> {
        if !self.areas.contains(&obs.cell.area()) {
            return Err(Refusal::OutsideJurisdiction);
        }
        if obs.expires_at <= now {
            return Err(Refusal::Expired);
        }
        if obs.observed_at > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(Refusal::FromFuture);
        }
        Ok(Admission {
            key: BucketKey {
                hour: u32::try_from(obs.observed_at / HOUR).unwrap_or(u32::MAX),
                cell: obs.cell,
                category: obs.category,
            },
            forget_at: obs.expires_at,
        })
    }
}

/// A live report as the relay keeps it until it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveEntry {
    /// Where.
    pub cell: Cell,
    /// What.
    pub category: Category,
    /// When it was observed.
    pub observed_at: u64,
    /// When it expires (and is forgotten).
    pub expires_at: u64,
}

/// The aggregation state machine in memory: feed it observations and `now`,
/// read counts. The sled store implements exactly these transitions.
#[derive(Debug, Clone)]
pub struct Aggregator {
    rules: Rules,
    live: HashMap<ReportId, LiveEntry>,
    counts: BTreeMap<BucketKey, u64>,
    /// (counted, suppressed) per (hour, cell).
    cell_hours: BTreeMap<(u32, Cell), (u64, u64)>,
}

impl Aggregator {
    /// An empty state.
    pub fn new(rules: Rules) -> Aggregator {
        Aggregator {
            rules,
            live: HashMap::new(),
            counts: BTreeMap::new(),
            cell_hours: BTreeMap::new(),
        }
    }

    /// Count a report, or say why not.
    pub fn ingest(&mut self, obs: &Observation, now: u64) -> Result<BucketKey, Refusal> {
        let adm = self.rules.admit(obs, now)?;
        if self.live.contains_key(&obs.id) {
            return Err(Refusal::Duplicate);
        }
        self.live.insert(
            obs.id,
            LiveEntry {
                cell: obs.cell,
                category: obs.category,
                observed_at: obs.observed_at,
                expires_at: adm.forget_at,
            },
        );
        let ch = self
            .cell_hours
            .entry((adm.key.hour, adm.key.cell))
            .or_default();
        if ch.0 >= self.rules.cell_hour_cap {
            ch.1 += 1;
            return Err(Refusal::Flood);
        }
        ch.0 += 1;
        *self.counts.entry(adm.key).or_insert(0) += 1;
        Ok(adm.key)
    }

    /// Reports suppressed as a flood, per (hour, cell).
    pub fn suppressed(&self) -> BTreeMap<(u32, Cell), u64> {
        self.cell_hours
            .iter()
            .filter(|(_, (_, s))| *s > 0)
            .map(|(k, (_, s))| (*k, *s))
            .collect()
    }

    /// Forget the ids of reports expired at `now`; returns how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let before = self.live.len();
        self.live.retain(|_, e| e.expires_at > now);
        before - self.live.len()
    }

    /// Every bucket and its count.
    pub fn counts(&self) -> &BTreeMap<BucketKey, u64> {
        &self.counts
    }

    /// The live reports at `now`.
    pub fn live(&self, now: u64) -> Vec<LiveEntry> {
        self.live
            .values()
            .filter(|e| e.expires_at > now)
            .copied()
            .collect()
    }
}

/// The city's local time, in which days and time-of-day bands are read:
/// an IANA time zone (`Europe/Paris`, daylight saving time followed, via
/// `jiff`), or a fixed offset from UTC in whole hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    tz: jiff::tz::TimeZone,
}

impl Default for LocalTime {
    fn default() -> Self {
        LocalTime::fixed(0)
    }
}

impl LocalTime {
    /// A fixed offset, whole hours east of UTC (-12..=14; clamped to ±25).
    pub fn fixed(offset_hours: i32) -> LocalTime {
        let h = i8::try_from(offset_hours.clamp(-25, 25)).unwrap_or(0);
        LocalTime {
            tz: jiff::tz::TimeZone::fixed(jiff::tz::offset(h)),
        }
    }

    /// An IANA time zone by name, from the system's time zone database (or
    /// the one built in when the system has none).
    pub fn zone(name: &str) -> Result<LocalTime, jiff::Error> {
        Ok(LocalTime {
            tz: jiff::tz::TimeZone::get(name)?,
        })
    }

    /// The zone's IANA name, or `UTC+h` for a fixed offset.
    pub fn name(&self) -> String {
        match self.tz.iana_name() {
            Some(n) => n.to_owned(),
            None => {
                let s = self.offset_secs(0);
                format!("UTC{}{}", if s >= 0 { "+" } else { "-" }, s.abs() / 3600)
            }
        }
    }

    /// Seconds east of UTC at a Unix time.
    pub fn offset_secs(&self, unix: i64) -> i64 {
        match jiff::Timestamp::from_second(unix) {
            Ok(t) => i64::from(self.tz.to_offset(t).seconds()),
            Err(_) => 0,
        }
    }

    /// The local hour count (hours since 1970-01-01 00:00 local) of a UTC
    /// hour bucket.
    fn local_hour(&self, utc_hour: u32) -> i64 {
        let unix = i64::from(utc_hour) * 3600;
        (unix + self.offset_secs(unix)).div_euclid(3600)
    }
    /// The local day (days since 1970-01-01 local) of a UTC hour bucket.
    pub fn day_of_hour(&self, utc_hour: u32) -> i64 {
        self.local_hour(utc_hour).div_euclid(24)
    }
    /// The time-of-day band (0..8: 00–03 … 21–24 local) of a UTC hour bucket.
    pub fn band_of_hour(&self, utc_hour: u32) -> u8 {
        // rem_euclid(24) / 3 is in 0..8.
        u8::try_from(self.local_hour(utc_hour).rem_euclid(24) / i64::from(BAND_HOURS)).unwrap_or(0)
    }
    /// The local day of a Unix time.
    pub fn day_of(&self, unix: u64) -> i64 {
        self.day_of_hour(u32::try_from(unix / HOUR).unwrap_or(u32::MAX))
    }
    /// The first UTC hour bucket of a local day (a day of 23 or 25 hours
    /// when the clocks change).
    pub fn first_hour_of_day(&self, day: i64) -> i64 {
        let midnight = day * 86_400;
        // The offset at local midnight: that at a first guess, then again.
        let guess = midnight - self.offset_secs(midnight);
        (midnight - self.offset_secs(guess)).div_euclid(3600)
    }
}

/// Label of a band, e.g. `21-24`.
pub fn band_label(band: u8) -> String {
    let start = u32::from(band) * BAND_HOURS;
    format!("{:02}-{:02}", start, start + BAND_HOURS)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number, as `(year, month, day)`.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A day number as `YYYY-MM-DD`.
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A `YYYY-MM-DD` date as a day number; `None` if it is not a valid date.
pub fn parse_day(s: &str) -> Option<i64> {
    let mut it = s.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let y: i64 = y.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    let d: u32 = d.parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let day = days_from_civil(y, m, d);
    // Reject 2025-02-30 and the like.
    (civil_from_days(day) == (y, m, d)).then_some(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(n: u8, cell: &str, cat: Category, at: u64) -> Observation {
        Observation {
            id: ReportId([n; 32]),
            category: cat,
            cell: cell.parse().expect("cell"),
            observed_at: at,
            expires_at: at + 1_800,
        }
    }

    #[test]
    fn admits_counts_once_and_forgets_at_expiry() {
        let area: Area = "u09tv".parse().expect("area");
        let mut agg = Aggregator::new(Rules::new([area]));
        let t = 1_790_000_000;
        let a = obs(1, "u09tvw1", Category::Harassment, t);
        let key = agg.ingest(&a, t + 10).expect("counted");
        assert_eq!(key.hour, u32::try_from(t / HOUR).expect("hour"));
        assert_eq!(agg.ingest(&a, t + 20), Err(Refusal::Duplicate));
        assert_eq!(
            agg.ingest(&obs(2, "u09tuw1", Category::Harassment, t), t),
            Err(Refusal::OutsideJurisdiction)
        );
        assert_eq!(
            agg.ingest(&obs(3, "u09tvw1", Category::Harassment, t), t + 1_800),
            Err(Refusal::Expired)
        );
        assert_eq!(
            agg.ingest(&obs(4, "u09tvw1", Category::Harassment, t + 600), t),
            Err(Refusal::FromFuture)
        );
        assert_eq!(agg.counts().get(&key), Some(&1));
        assert_eq!(agg.live(t + 100).len(), 1);
        assert_eq!(agg.expire(t + 1_800), 1);
        assert!(agg.live(t + 1_800).is_empty());
        // The aggregate stays after the raw report is forgotten.
        assert_eq!(agg.counts().get(&key), Some(&1));
    }

    #[test]
    fn calendar_round_trips_and_rejects_bad_dates() {
        for day in [-1000, 0, 1, 19_000, 20_717, 100_000] {
            assert_eq!(parse_day(&format_day(day)), Some(day));
        }
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(parse_day("2026-09-21"), Some(days_from_civil(2026, 9, 21)));
        for bad in [
            "2025-02-30",
            "2025-13-01",
            "2025-1-01",
            "x",
            "2025-01-01-1",
            "",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn bands_and_days_follow_the_local_offset() {
        let paris = LocalTime::fixed(2);
        // 2026-06-01 20:00 UTC is 22:00 in Paris (summer): band 21-24.
        let hour = u32::try_from(days_from_civil(2026, 6, 1) * 24 + 20).expect("hour");
        assert_eq!(paris.band_of_hour(hour), 7);
        assert_eq!(band_label(7), "21-24");
        assert_eq!(paris.day_of_hour(hour), days_from_civil(2026, 6, 1));
        // 23:00 UTC is 01:00 the next day in Paris.
        assert_eq!(paris.day_of_hour(hour + 3), days_from_civil(2026, 6, 2));
        assert_eq!(paris.band_of_hour(hour + 3), 0);
        let west = LocalTime::fixed(-5);
        assert_eq!(west.day_of_hour(hour + 3), days_from_civil(2026, 6, 1));
    }

    #[test]
    fn the_paris_time_zone_follows_daylight_saving_time() {
        let paris = LocalTime::zone("Europe/Paris").expect("the tz database knows Paris");
        assert_eq!(paris.name(), "Europe/Paris");
        // 20:00 UTC is 22:00 in June (UTC+2), 21:00 in January (UTC+1).
        let june = u32::try_from(days_from_civil(2026, 6, 1) * 24 + 20).expect("hour");
        let january = u32::try_from(days_from_civil(2026, 1, 15) * 24 + 20).expect("hour");
        assert_eq!(paris.band_of_hour(june), 7);
        assert_eq!(paris.band_of_hour(january), 7);
        assert_eq!(
            paris.band_of_hour(january + 3),
            0,
            "23:00 UTC is midnight in winter"
        );
        assert_eq!(paris.day_of_hour(january + 3), days_from_civil(2026, 1, 16));
        assert_eq!(paris.day_of_hour(june + 2), days_from_civil(2026, 6, 2));
        // A local day starts at 23:00 UTC in winter, 22:00 in summer, and
        // the day the clocks go forward (2026-03-29) lasts 23 hours.
        let d = days_from_civil(2026, 1, 16);
        assert_eq!(paris.first_hour_of_day(d), d * 24 - 1);
        let d = days_from_civil(2026, 6, 2);
        assert_eq!(paris.first_hour_of_day(d), d * 24 - 2);
        let spring = days_from_civil(2026, 3, 29);
        assert_eq!(
            paris.first_hour_of_day(spring + 1) - paris.first_hour_of_day(spring),
            23
        );
        assert_eq!(LocalTime::fixed(1).name(), "UTC+1");
        assert!(LocalTime::zone("Europe/Ivry").is_err());
    }
}
