//! Reading aggregates, sans I/O: filters, k-suppression, hotspots, trends,
//! and the export formats (GeoJSON, CSV, HTML summary).
//!
//! **The suppression rule** (see `docs/threat-model.md`, "City relay:
//! aggregates and k-suppression"). Every answer is computed from buckets with
//! fixed boundaries (geohash cells, whole local days, fixed three-hour bands,
//! the fixed category list), after the filters are applied, then:
//!
//! 1. a cell whose filtered total is below `k` is left out entirely
//!    (a left-out cell and an empty cell look the same);
//! 2. within a shown cell, a part (a category, a band) below `k` is left
//!    out, and if the parts left out add up to between 1 and `k - 1`
//!    reports, the smallest shown parts are left out too until they add up
//!    to 0 or at least `k`, so that no subtraction inside one answer reveals
//!    fewer than `k` reports;
//! 3. a day of the city-wide trend below `k` is shown as suppressed;
//! 4. in strict mode, the atomic buckets *cell × category × local day ×
//!    band* below `k` are dropped before anything is added up, so every
//!    published number is a sum of buckets of at least `k` reports.
//!
//! Every function here is pure and takes the rows it needs; the HTTP layer
//! reads rows from the store and calls these.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use ronde_protocol::{Category, Cell};
use serde::Serialize;

use crate::rules::{band_label, format_day, BucketKey, LiveEntry, LocalTime, BANDS};

/// Longest date range a query may cover, days.
pub const MAX_RANGE_DAYS: i64 = 3_660;

/// How a query is restricted. Empty sets mean "all".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// First local day (days since 1970-01-01), inclusive.
    pub from_day: i64,
    /// Last local day, inclusive.
    pub to_day: i64,
    /// Categories to count (empty: all).
    pub categories: BTreeSet<Category>,
    /// Time-of-day bands to count, 0..8 (empty: all).
    pub bands: BTreeSet<u8>,
}

impl Filter {
    fn wants_category(&self, c: Category) -> bool {
        self.categories.is_empty() || self.categories.contains(&c)
    }
    fn wants_band(&self, b: u8) -> bool {
        self.bands.is_empty() || self.bands.contains(&b)
    }
    /// The UTC hour buckets `[first, end)` the filter's days cover.
    pub fn hour_range(&self, tz: &LocalTime) -> (i64, i64) {
        (
            tz.first_hour_of_day(self.from_day),
            tz.first_hour_of_day(self.to_day + 1),
        )
    }
}

/// The threshold and mode of suppression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppression {
    /// Smallest count ever shown.
    pub k: u64,
    /// Drop atomic buckets under `k` before adding up (see the module doc).
    pub strict: bool,
}

/// One stored aggregate row.
pub type Row = (BucketKey, u64);

/// A cell as published: only counts of at least `k`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellCount {
    /// The cell.
    pub cell: Cell,
    /// `[min_lat, min_lon, max_lat, max_lon]`.
    pub bounds: [f64; 4],
    /// `[lat, lon]` of the centre.
    pub center: [f64; 2],
    /// Reports in the cell under the filter (at least `k`).
    pub total: u64,
    /// Per-category counts that may be shown (each at least `k`); categories
    /// left out have 0 or were suppressed, indistinguishably.
    pub by_category: BTreeMap<Category, u64>,
    /// The nearest named street or landmark, from the city's basemap
    /// (`crate::maps::name_cells`); absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub near: Option<String>,
}

/// Keep the parts of a total that may be shown: each at least `k`, and
/// what is left out adds up to 0 or at least `k` (secondary suppression).
pub fn publishable_parts<K: Ord + Copy>(parts: &BTreeMap<K, u64>, k: u64) -> BTreeMap<K, u64> {
    let mut shown: BTreeMap<K, u64> = parts
        .iter()
        .filter(|(_, n)| **n >= k)
        .map(|(c, n)| (*c, *n))
        .collect();
    let total: u64 = parts.values().sum();
    loop {
        let hidden = total - shown.values().sum::<u64>();
        if hidden == 0 || hidden >= k {
            return shown;
        }
        // Leave out the smallest shown part (ties: the last key) and retry.
        let Some(smallest) = shown
            .iter()
            .min_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(c, _)| *c)
        else {
            return shown;
        };
        shown.remove(&smallest);
    }
}

fn bounds_of(cell: &Cell) -> [f64; 4] {
    let (a, b, c, d) = cell.bounds();
    [a, b, c, d]
}

/// Published cells of per-(cell, category) counts: cells under `k` are left
/// out, category parts suppressed as [`publishable_parts`]. Most reports
/// first, then by cell.
pub fn cell_table(
    counts: impl IntoIterator<Item = (Cell, Category, u64)>,
    k: u64,
) -> Vec<CellCount> {
    let mut per_cell: BTreeMap<Cell, BTreeMap<Category, u64>> = BTreeMap::new();
    for (cell, cat, n) in counts {
        if n > 0 {
            *per_cell.entry(cell).or_default().entry(cat).or_insert(0) += n;
        }
    }
    let mut out: Vec<CellCount> = per_cell
        .into_iter()
        .filter_map(|(cell, parts)| {
            let total: u64 = parts.values().sum();
            if total < k.max(1) {
                return None;
            }
            let (lat, lon) = cell.center();
            Some(CellCount {
                cell,
                bounds: bounds_of(&cell),
                center: [lat, lon],
                total,
                by_category: publishable_parts(&parts, k),
                near: None,
            })
        })
        .collect();
    out.sort_by(|a, b| b.total.cmp(&a.total).then(a.cell.cmp(&b.cell)));
    out
}

/// The rows a filter selects, each with its local day and band; in strict
/// mode only those whose atomic bucket (cell, category, day, band) holds at
/// least `k` reports.
pub fn select(
    rows: &[Row],
    filter: &Filter,
    tz: &LocalTime,
    sup: Suppression,
) -> Vec<(BucketKey, i64, u8, u64)> {
    let picked: Vec<(BucketKey, i64, u8, u64)> = rows
        .iter()
        .filter(|(key, n)| *n > 0 && filter.wants_category(key.category))
        .map(|(key, n)| {
            (
                *key,
                tz.day_of_hour(key.hour),
                tz.band_of_hour(key.hour),
                *n,
            )
        })
        .filter(|(_, day, band, _)| {
            (filter.from_day..=filter.to_day).contains(day) && filter.wants_band(*band)
        })
        .collect();
    if !sup.strict {
        return picked;
    }
    let mut atomic: BTreeMap<(Cell, Category, i64, u8), u64> = BTreeMap::new();
    for (key, day, band, n) in &picked {
        *atomic
            .entry((key.cell, key.category, *day, *band))
            .or_insert(0) += n;
    }
    picked
        .into_iter()
        .filter(|(key, day, band, _)| {
            atomic
                .get(&(key.cell, key.category, *day, *band))
                .is_some_and(|n| *n >= sup.k)
        })
        .collect()
}

/// The published cells of a date range.
pub fn cells(rows: &[Row], filter: &Filter, tz: &LocalTime, sup: Suppression) -> Vec<CellCount> {
    cell_table(
        select(rows, filter, tz, sup)
            .into_iter()
            .map(|(key, _, _, n)| (key.cell, key.category, n)),
        sup.k,
    )
}

/// The published cells of the reports live now.
pub fn live_cells(live: &[LiveEntry], categories: &BTreeSet<Category>, k: u64) -> Vec<CellCount> {
    cell_table(
        live.iter()
            .filter(|e| categories.is_empty() || categories.contains(&e.category))
            .map(|e| (e.cell, e.category, 1)),
        k,
    )
}

/// One day of the city-wide trend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// `YYYY-MM-DD`, local.
    pub day: String,
    /// Reports in the jurisdiction that day under the filter; `None` when
    /// fewer than `k` (suppressed).
    pub total: Option<u64>,
}

/// Reports per local day over the filter's range, city-wide.
pub fn trend(rows: &[Row], filter: &Filter, tz: &LocalTime, sup: Suppression) -> Vec<DayCount> {
    let mut per_day: BTreeMap<i64, u64> = BTreeMap::new();
    for (_, day, _, n) in select(rows, filter, tz, sup) {
        *per_day.entry(day).or_insert(0) += n;
    }
    (filter.from_day..=filter.to_day)
        .map(|day| {
            let n = per_day.get(&day).copied().unwrap_or(0);
            DayCount {
                day: format_day(day),
                total: (n >= sup.k && n > 0).then_some(n),
            }
        })
        .collect()
}

/// A cell in the hotspot ranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hotspot {
    /// 1 for the cell with most reports.
    pub rank: usize,
    /// The cell and its published counts.
    #[serde(flatten)]
    pub cell: CellCount,
    /// Published counts per time-of-day band (label `21-24` → count).
    pub by_band: BTreeMap<String, u64>,
}

/// The `limit` cells with most reports over the filter, with their
/// published breakdown by category and by time of day.
pub fn hotspots(
    rows: &[Row],
    filter: &Filter,
    tz: &LocalTime,
    sup: Suppression,
    limit: usize,
) -> Vec<Hotspot> {
    let selected = select(rows, filter, tz, sup);
    let mut bands: BTreeMap<Cell, BTreeMap<u8, u64>> = BTreeMap::new();
    for (key, _, band, n) in &selected {
        *bands.entry(key.cell).or_default().entry(*band).or_insert(0) += n;
    }
    let table = cell_table(
        selected
            .iter()
            .map(|(key, _, _, n)| (key.cell, key.category, *n)),
        sup.k,
    );
    table
        .into_iter()
        .take(limit)
        .enumerate()
        .map(|(i, cell)| {
            let by_band = bands
                .get(&cell.cell)
                .map(|b| publishable_parts(b, sup.k))
                .unwrap_or_default()
                .into_iter()
                .map(|(b, n)| (band_label(b), n))
                .collect();
            Hotspot {
                rank: i + 1,
                cell,
                by_band,
            }
        })
        .collect()
}

/// Every band's label, in order.
pub fn band_labels() -> Vec<String> {
    (0..BANDS).map(band_label).collect()
}

/// What an export says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportMeta {
    /// The city.
    pub city: String,
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, inclusive.
    pub to: String,
    /// Categories counted (names).
    pub categories: Vec<String>,
    /// Bands counted (labels).
    pub bands: Vec<String>,
    /// The suppression threshold.
    pub k: u64,
    /// Whether strict suppression was applied.
    pub strict: bool,
    /// Reports of the period not counted because their cell had reached
    /// its cap for the hour: "suppressed as a flood" (city-wide total).
    pub suppressed_as_flood: u64,
}

impl ExportMeta {
    /// Describe a filter.
    pub fn new(city: &str, filter: &Filter, sup: Suppression) -> ExportMeta {
        let categories = if filter.categories.is_empty() {
            Category::ALL.iter().map(|c| c.to_string()).collect()
        } else {
            filter.categories.iter().map(|c| c.to_string()).collect()
        };
        let bands = if filter.bands.is_empty() {
            band_labels()
        } else {
            filter.bands.iter().map(|b| band_label(*b)).collect()
        };
        ExportMeta {
            city: city.to_owned(),
            from: format_day(filter.from_day),
            to: format_day(filter.to_day),
            categories,
            bands,
            k: sup.k,
            strict: sup.strict,
            suppressed_as_flood: 0,
        }
    }
}

/// A GeoJSON FeatureCollection: one Polygon per published cell (a closed
/// ring of its corners, `[lon, lat]`), with flat properties that GIS tools
/// style directly: `cell`, `total` and one property per category, every
/// category in every feature, `null` when suppressed or zero.
pub fn geojson(meta: &ExportMeta, cells: &[CellCount]) -> serde_json::Value {
    let features: Vec<serde_json::Value> = cells
        .iter()
        .map(|c| {
            let [s, w, n, e] = c.bounds;
            let mut props = serde_json::Map::new();
            props.insert("cell".into(), c.cell.as_str().into());
            props.insert("near".into(), c.near.clone().into());
            props.insert("total".into(), c.total.into());
            for cat in Category::ALL {
                let n = c.by_category.get(&cat).copied();
                props.insert(cat.to_string(), n.into());
            }
            serde_json::json!({
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
                },
                "properties": props,
            })
        })
        .collect();
    serde_json::json!({
        "type": "FeatureCollection",
        "ronde": meta,
        "features": features,
    })
}

/// CSV: a header, then one line per cell × local day × 3-hour band ×
/// category: `cell,min_lat,min_lon,max_lat,max_lon,day,band,category,count`
/// (`day` is `YYYY-MM-DD` in the city's time zone, `band` like `21-24`).
/// A line is there only when its count is at least `k`, and what a cell's
/// left-out lines add up to is 0 or at least `k` ([`publishable_parts`]),
/// so no line, nor the difference with a cell's published total, tells a
/// count under `k`. Cells, then days, bands and categories in order.
pub fn csv(rows: &[Row], filter: &Filter, tz: &LocalTime, sup: Suppression) -> String {
    let mut per_cell: BTreeMap<Cell, BTreeMap<(i64, u8, Category), u64>> = BTreeMap::new();
    for (key, day, band, n) in select(rows, filter, tz, sup) {
        *per_cell
            .entry(key.cell)
            .or_default()
            .entry((day, band, key.category))
            .or_insert(0) += n;
    }
    let mut out = String::from("cell,min_lat,min_lon,max_lat,max_lon,day,band,category,count\n");
    for (cell, parts) in per_cell {
        if parts.values().sum::<u64>() < sup.k.max(1) {
            continue;
        }
        let [a, b, c, d] = bounds_of(&cell);
        for ((day, band, cat), n) in publishable_parts(&parts, sup.k) {
            let _ = writeln!(
                out,
                "{cell},{a:.6},{b:.6},{c:.6},{d:.6},{},{},{cat},{n}",
                format_day(day),
                band_label(band)
            );
        }
    }
    out
}

/// Escape text for HTML.
pub fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A place in the summary's list of places to follow up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceLine {
    /// Its name.
    pub name: String,
    /// `fresh`, `stale` or `expired`.
    pub status: &'static str,
    /// Flags received recently.
    pub flags: u64,
}

/// The language of the HTML summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// French.
    Fr,
}

impl Lang {
    /// `fr` is French; anything else English.
    pub fn from_param(p: Option<&str>) -> Lang {
        match p {
            Some(l) if l.eq_ignore_ascii_case("fr") => Lang::Fr,
            _ => Lang::En,
        }
    }
    fn pick(self, en: &'static str, fr: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Fr => fr,
        }
    }
}

/// A self-contained HTML summary a city can send to its services: period,
/// published totals, the trend, the top hotspots and places to follow up,
/// in English or French.
pub fn summary_html(
    meta: &ExportMeta,
    hot: &[Hotspot],
    days: &[DayCount],
    places: &[PlaceLine],
    lang: Lang,
) -> String {
    let e = html_escape;
    let l = |en, fr| lang.pick(en, fr);
    let mut h = String::new();
    let head = l(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Ronde summary: {city}, {from} to {to}</title>{style}</head><body>\
         <h1>Street safety reports: {city}</h1>\
         <p>Period: <b>{from}</b> to <b>{to}</b> (local days). Categories: {cats}. Times of day: {bands}.</p>\
         <p class=\"muted\">Counts of anonymous reports made with Ronde. No count below {k} is shown: \
         a cell, a category or a day with fewer reports is left out{strict}. A report says what \
         happened, in which cell of about 150 m, and at which minute; never who made it.</p>",
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">\
         <title>Synthèse Ronde : {city}, du {from} au {to}</title>{style}</head><body>\
         <h1>Signalements de sécurité dans la rue : {city}</h1>\
         <p>Période : du <b>{from}</b> au <b>{to}</b> (jours locaux). Catégories : {cats}. Heures du jour : {bands}.</p>\
         <p class=\"muted\">Nombres de signalements anonymes faits avec Ronde. Aucun nombre inférieur à {k} \
         n'est montré : une cellule, une catégorie ou un jour qui en a moins est omis{strict}. Un signalement \
         dit ce qui s'est passé, dans quelle cellule d'environ 150 m et à quelle minute ; jamais qui l'a fait.</p>",
    );
    let strict = if meta.strict {
        l(
            " (strict mode: also per cell, category, day and time of day)",
            " (mode strict : aussi par cellule, catégorie, jour et heure du jour)",
        )
    } else {
        ""
    };
    h.push_str(
        &head
            .replace(
                "{style}",
                "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;color:#222}\
                 table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
                 .muted{color:#666}</style>",
            )
            .replace("{city}", &e(&meta.city))
            .replace("{from}", &e(&meta.from))
            .replace("{to}", &e(&meta.to))
            .replace("{cats}", &e(&meta.categories.join(", ")))
            .replace("{bands}", &e(&meta.bands.join(", ")))
            .replace("{k}", &meta.k.to_string())
            .replace("{strict}", strict),
    );
    let shown: u64 = days.iter().filter_map(|d| d.total).sum();
    let n = days.iter().filter(|d| d.total.is_some()).count();
    h.push_str(
        &l(
            "<h2>Overview</h2><p>Reports on the days shown: <b>{shown}</b> \
             ({n} of {all} days above the threshold).</p>",
            "<h2>Vue d'ensemble</h2><p>Signalements des jours montrés : <b>{shown}</b> \
             ({n} jours sur {all} au-dessus du seuil).</p>",
        )
        .replace("{shown}", &shown.to_string())
        .replace("{n}", &n.to_string())
        .replace("{all}", &days.len().to_string()),
    );
    if meta.suppressed_as_flood > 0 {
        h.push_str(
            &l(
                "<p>Suppressed as a flood: <b>{n}</b> reports beyond a cell's cap for an hour \
                 were not counted.</p>",
                "<p>Écartés comme afflux : <b>{n}</b> signalements au-delà du plafond horaire \
                 d'une cellule n'ont pas été comptés.</p>",
            )
            .replace("{n}", &meta.suppressed_as_flood.to_string()),
        );
    }
    h.push_str(l("<h2>Hotspots</h2>", "<h2>Points chauds</h2>"));
    if hot.is_empty() {
        h.push_str(l(
            "<p>No cell reaches the threshold in this period.</p>",
            "<p>Aucune cellule n'atteint le seuil sur cette période.</p>",
        ));
    } else {
        h.push_str(l(
            "<table><tr><th>#</th><th>where</th><th>centre</th><th>reports</th>\
             <th>by category</th><th>by time of day</th></tr>",
            "<table><tr><th>#</th><th>lieu</th><th>centre</th><th>signalements</th>\
             <th>par catégorie</th><th>par heure du jour</th></tr>",
        ));
        for s in hot {
            let cats: Vec<String> = s
                .cell
                .by_category
                .iter()
                .map(|(c, n)| format!("{c}: {n}"))
                .collect();
            let bands: Vec<String> = s.by_band.iter().map(|(b, n)| format!("{b}: {n}")).collect();
            let place = match &s.cell.near {
                Some(n) => format!("{} ({})", e(n), e(s.cell.cell.as_str())),
                None => e(s.cell.cell.as_str()),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.4}, {:.4}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                s.rank,
                place,
                s.cell.center[0],
                s.cell.center[1],
                s.cell.total,
                e(&cats.join(", ")),
                e(&bands.join(", "))
            );
        }
        h.push_str("</table>");
    }
    h.push_str(l(
        "<h2>Reports per day</h2><table><tr><th>day</th><th>reports</th></tr>",
        "<h2>Signalements par jour</h2><table><tr><th>jour</th><th>signalements</th></tr>",
    ));
    for d in days {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td></tr>",
            e(&d.day),
            d.total.map(|n| n.to_string()).unwrap_or_else(|| format!(
                "{} {}",
                l("fewer than", "moins de"),
                meta.k
            ))
        );
    }
    h.push_str(l(
        "</table><h2>Safe places to follow up</h2>",
        "</table><h2>Lieux sûrs à suivre</h2>",
    ));
    if places.is_empty() {
        h.push_str(l(
            "<p>Every safe place is fresh and unflagged.</p>",
            "<p>Tous les lieux sûrs sont à jour et sans signalement.</p>",
        ));
    } else {
        h.push_str(l(
            "<table><tr><th>place</th><th>status</th><th>recent flags</th></tr>",
            "<table><tr><th>lieu</th><th>état</th><th>signalements récents</th></tr>",
        ));
        for p in places {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&p.name),
                p.status,
                p.flags
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hour: u32, cell: &str, cat: Category) -> BucketKey {
        BucketKey {
            hour,
            cell: cell.parse().expect("cell"),
            category: cat,
        }
    }

    fn utc() -> LocalTime {
        LocalTime::fixed(0)
    }

    fn all_days() -> Filter {
        Filter {
            from_day: 0,
            to_day: 100,
            categories: BTreeSet::new(),
            bands: BTreeSet::new(),
        }
    }

    #[test]
    fn secondary_suppression_leaves_no_small_remainder() {
        let parts: BTreeMap<u8, u64> = [(1, 5), (2, 2)].into_iter().collect();
        // 2 < k is hidden; total 7 minus 5 would reveal it: hide 5 too.
        assert!(publishable_parts(&parts, 3).is_empty());
        let parts: BTreeMap<u8, u64> = [(1, 5), (2, 4), (3, 1), (4, 2)].into_iter().collect();
        // Hidden 1 + 2 = 3 >= k: the others stay.
        assert_eq!(
            publishable_parts(&parts, 3),
            [(1, 5), (2, 4)].into_iter().collect()
        );
        let parts: BTreeMap<u8, u64> = [(1, 5), (2, 4), (3, 1)].into_iter().collect();
        // Hidden 1: hide the smallest shown (4) → hidden 5.
        assert_eq!(publishable_parts(&parts, 3), [(1, 5)].into_iter().collect());
    }

    #[test]
    fn cells_under_k_are_left_out_after_filtering() {
        let rows = vec![
            (key(10, "u09tvw1", Category::Harassment), 2),
            (key(11, "u09tvw1", Category::Following), 1),
            (key(10, "u09tvw2", Category::Harassment), 1),
        ];
        let sup = Suppression {
            k: 3,
            strict: false,
        };
        let all = cells(&rows, &all_days(), &utc(), sup);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].total, 3);
        // Both categories are under k and hidden together (3 >= k).
        assert!(all[0].by_category.is_empty());
        // Filtering to one category drops the cell: 2 < k.
        let mut f = all_days();
        f.categories.insert(Category::Harassment);
        assert!(cells(&rows, &f, &utc(), sup).is_empty());
        // Strict mode: every atomic bucket is under k, nothing is shown.
        let strict = Suppression { k: 3, strict: true };
        assert!(cells(&rows, &all_days(), &utc(), strict).is_empty());
        assert_eq!(
            cells(
                &rows,
                &all_days(),
                &utc(),
                Suppression { k: 1, strict: true }
            )
            .len(),
            2
        );
    }

    #[test]
    fn exports_agree() {
        let rows = vec![
            (key(10, "u09tvw1", Category::Harassment), 4),
            (key(11, "u09tvw1", Category::Following), 3),
        ];
        let sup = Suppression {
            k: 3,
            strict: false,
        };
        let cs = cells(&rows, &all_days(), &utc(), sup);
        let meta = ExportMeta::new("Ivry", &all_days(), sup);
        let g = geojson(&meta, &cs);
        assert_eq!(g["features"][0]["properties"]["total"], 7);
        // Flat properties, every category in every feature.
        let p = &g["features"][0]["properties"];
        assert_eq!(p["harassment"], 4);
        assert_eq!(p["following"], 3);
        assert!(p["exhibitionism"].is_null());
        assert_eq!(
            p.as_object().map(|o| o.len()),
            Some(3 + Category::ALL.len())
        );
        // CSV: one line per cell, local day, band and category.
        let text = csv(&rows, &all_days(), &utc(), sup);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "cell,min_lat,min_lon,max_lat,max_lon,day,band,category,count"
        );
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].starts_with("u09tvw1,"), "{text}");
        assert!(
            lines[1].ends_with(",1970-01-01,09-12,harassment,4"),
            "{text}"
        );
        assert!(
            lines[2].ends_with(",1970-01-01,09-12,following,3"),
            "{text}"
        );
        // Lines under k are left out, and what is left out of a cell adds
        // up to 0 or at least k: 2 + 1 = 3 hidden here.
        let split = vec![
            (key(10, "u09tvw1", Category::Harassment), 4),
            (key(20, "u09tvw1", Category::Harassment), 2),
            (key(22, "u09tvw1", Category::Following), 1),
            (key(10, "u09tvw2", Category::Harassment), 2),
        ];
        let text = csv(&split, &all_days(), &utc(), sup);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains(",09-12,harassment,4"), "{text}");
        // In Paris (UTC+1 in January) hour 20 UTC is in the 21-24 band.
        let paris = LocalTime::zone("Europe/Paris").expect("Paris");
        let text = csv(
            &[(key(20, "u09tvw1", Category::Harassment), 3)],
            &all_days(),
            &paris,
            sup,
        );
        assert!(text.ends_with(",1970-01-01,21-24,harassment,3\n"), "{text}");
        let html = summary_html(
            &meta,
            &hotspots(&rows, &all_days(), &utc(), sup, 5),
            &[],
            &[],
            Lang::En,
        );
        assert!(html.contains("u09tvw1") && html.contains("No count below 3"));
        let fr = summary_html(
            &meta,
            &hotspots(&rows, &all_days(), &utc(), sup, 5),
            &[],
            &[],
            Lang::Fr,
        );
        assert!(fr.contains("<html lang=\"fr\">") && fr.contains("Aucun nombre inférieur à 3"));
        assert!(fr.contains("Points chauds") && fr.contains("u09tvw1") && !fr.contains("Hotspots"));
        assert_eq!(Lang::from_param(Some("FR")), Lang::Fr);
        assert_eq!(Lang::from_param(Some("de")), Lang::En);
        assert_eq!(
            html_escape("<a href='x'>&"),
            "&lt;a href=&#39;x&#39;&gt;&amp;"
        );
    }
}
