//! OGC API – Features (Part 1: Core, GeoJSON) at `/ogc/` on the dashboard
//! listener, behind the operator token like the rest of its API, so that
//! QGIS, ArcGIS or GDAL (`ogrinfo OAPIF:…`) read the city's published
//! cells directly: one collection, `cells`, whose items are the cells of a
//! period with their counts, k-suppressed exactly as `/api/cells` and the
//! GeoJSON export (same flat properties). Filters: `bbox` (lon/lat),
//! `datetime` (local days of the city, `YYYY-MM-DD` or an interval
//! `a/b` with `..` for an open end; times of day are ignored),
//! `category` (comma-separated), `limit` (1 to 1000, default 100) and
//! `offset` for paging (the `next` link carries it).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{filter_of, rows_for, ApiError, RangeQuery};
use crate::query::{self, ExportMeta};
use crate::state::{suppression, Shared};

type St = State<Arc<Shared>>;

/// Most items in one page.
const MAX_LIMIT: usize = 1000;
/// Items in a page by default.
const DEFAULT_LIMIT: usize = 100;

const CONFORMANCE: [&str; 2] = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
];

/// The OGC routes, for the operator's router (inside its token check).
pub fn routes(router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    router
        .route("/ogc", get(landing))
        .route("/ogc/", get(landing))
        .route("/ogc/conformance", get(conformance))
        .route("/ogc/collections", get(collections))
        .route("/ogc/collections/cells", get(collection))
        .route("/ogc/collections/cells/items", get(items))
}

/// `http://host/ogc` as the client reached it (links are absolute).
fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("http://{host}/ogc")
}

fn json_answer(v: Value, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], v.to_string()).into_response()
}

async fn landing(State(s): St, headers: HeaderMap) -> Response {
    let b = base(&headers);
    json_answer(
        json!({
            "title": format!("Ronde: {}", s.config.city),
            "description": "Reports counted per cell, suppressed under k",
            "links": [
                {"href": format!("{b}/"), "rel": "self", "type": "application/json", "title": "this document"},
                {"href": format!("{b}/conformance"), "rel": "conformance", "type": "application/json", "title": "conformance"},
                {"href": format!("{b}/collections"), "rel": "data", "type": "application/json", "title": "collections"},
            ],
        }),
        "application/json",
    )
}

async fn conformance() -> Response {
    json_answer(json!({ "conformsTo": CONFORMANCE }), "application/json")
}

fn cells_collection(s: &Shared, b: &str) -> Value {
    let [s_, w, n, e] = s.config.jurisdiction.bbox.unwrap_or_else(|| areas_bbox(s));
    json!({
        "id": "cells",
        "title": "Cells",
        "description": format!(
            "Reports per cell of a period (default: the last 30 days), each count at least k = {}; \
             datetime filters by the city's local days",
            s.config.aggregates.k
        ),
        "itemType": "feature",
        "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
        "extent": {"spatial": {"bbox": [[w, s_, e, n]], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
        "links": [
            {"href": format!("{b}/collections/cells"), "rel": "self", "type": "application/json"},
            {"href": format!("{b}/collections/cells/items"), "rel": "items", "type": "application/geo+json"},
        ],
    })
}

fn areas_bbox(s: &Shared) -> [f64; 4] {
    let mut bb: [f64; 4] = [90.0, 180.0, -90.0, -180.0];
    for a in s.areas.iter() {
        let (a0, a1, a2, a3) = a.bounds();
        bb = [bb[0].min(a0), bb[1].min(a1), bb[2].max(a2), bb[3].max(a3)];
    }
    bb
}

async fn collections(State(s): St, headers: HeaderMap) -> Response {
    let b = base(&headers);
    json_answer(
        json!({
            "collections": [cells_collection(&s, &b)],
            "links": [{"href": format!("{b}/collections"), "rel": "self", "type": "application/json"}],
        }),
        "application/json",
    )
}

async fn collection(State(s): St, headers: HeaderMap) -> Response {
    json_answer(cells_collection(&s, &base(&headers)), "application/json")
}

/// Query parameters of the items.
#[derive(Debug, Default, Deserialize)]
pub struct ItemsQuery {
    bbox: Option<String>,
    datetime: Option<String>,
    category: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
    /// GDAL and others ask for a format; only GeoJSON is served.
    #[serde(rename = "f")]
    _format: Option<String>,
}

/// `a/b`, `a` or open ends `..` into the `from`/`to` local days.
fn days_of(datetime: &str) -> Result<(Option<String>, Option<String>), ApiError> {
    let day = |p: &str| -> Result<Option<String>, ApiError> {
        let p = p.trim();
        if p.is_empty() || p == ".." {
            return Ok(None);
        }
        let d = p.get(..10).unwrap_or(p);
        if crate::rules::parse_day(d).is_none() {
            return Err(ApiError::bad(
                "bad_datetime",
                "datetime is a date or date-time (RFC 3339), or an interval a/b with .. for an open end",
            ));
        }
        Ok(Some(d.to_owned()))
    };
    match datetime.split_once('/') {
        Some((a, b)) => Ok((day(a)?, day(b)?)),
        None => {
            let d = day(datetime)?;
            Ok((d.clone(), d))
        }
    }
}

fn bbox_of(text: &str) -> Result<[f64; 4], ApiError> {
    let bad = || ApiError::bad("bad_bbox", "bbox is min_lon,min_lat,max_lon,max_lat");
    let v: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    match v.as_slice() {
        [a, b, c, d] if a <= c && b <= d && v.iter().all(|x| x.is_finite()) => Ok([*a, *b, *c, *d]),
        _ => Err(bad()),
    }
}

async fn items(
    State(s): St,
    headers: HeaderMap,
    Query(q): Query<ItemsQuery>,
) -> Result<Response, ApiError> {
    let (from, to) = match &q.datetime {
        Some(d) => days_of(d)?,
        None => (None, None),
    };
    let range = RangeQuery {
        from,
        to,
        categories: q.category.clone(),
        ..RangeQuery::default()
    };
    let f = filter_of(&s, &range)?;
    let bbox = q.bbox.as_deref().map(bbox_of).transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad(
            "bad_limit",
            format!("limit is 1 to {MAX_LIMIT}"),
        ));
    }
    let offset = q.offset.unwrap_or(0);
    let rows = rows_for(&s, &f)?;
    let sup = suppression(&s);
    let mut cells = query::cells(&rows, &f, &s.config.local_time(), sup);
    // Stable order for paging: by cell.
    cells.sort_by_key(|c| c.cell);
    if let Some([w, so, e, n]) = bbox {
        cells.retain(|c| {
            let [cs, cw, cn, ce] = c.bounds;
            cs <= n && cn >= so && cw <= e && ce >= w
        });
    }
    let matched = cells.len();
    let mut page: Vec<_> = cells.into_iter().skip(offset).take(limit).collect();
    crate::maps::name_cells(&s, &mut page);
    let meta = ExportMeta::new(&s.config.city, &f, sup);
    let mut fc = query::geojson(&meta, &page);
    if let Some(features) = fc["features"].as_array_mut() {
        for feat in features {
            let id = feat["properties"]["cell"].clone();
            feat["id"] = id;
        }
    }
    let b = base(&headers);
    let mut params: Vec<String> = Vec::new();
    for (k, v) in [
        ("bbox", &q.bbox),
        ("datetime", &q.datetime),
        ("category", &q.category),
    ] {
        if let Some(v) = v {
            params.push(format!("{k}={}", urlencode(v)));
        }
    }
    params.push(format!("limit={limit}"));
    let link = |off: usize| {
        format!(
            "{b}/collections/cells/items?{}&offset={off}",
            params.join("&")
        )
    };
    let mut links =
        vec![json!({"href": link(offset), "rel": "self", "type": "application/geo+json"})];
    if offset + page.len() < matched {
        links.push(
            json!({"href": link(offset + page.len()), "rel": "next", "type": "application/geo+json"}),
        );
    }
    fc["numberMatched"] = matched.into();
    fc["numberReturned"] = page.len().into();
    fc["links"] = links.into();
    Ok(json_answer(fc, "application/geo+json"))
}

/// Percent-encode a query value (all but unreserved characters).
fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_and_bboxes_parse() {
        assert_eq!(
            days_of("2026-09-01/2026-09-30").ok(),
            Some((Some("2026-09-01".into()), Some("2026-09-30".into())))
        );
        assert_eq!(
            days_of("2026-09-01T00:00:00Z/..").ok(),
            Some((Some("2026-09-01".into()), None))
        );
        assert_eq!(
            days_of("2026-09-21").ok(),
            Some((Some("2026-09-21".into()), Some("2026-09-21".into())))
        );
        assert!(days_of("yesterday").is_err());
        assert_eq!(
            bbox_of("2.3,48.8,2.4,48.9").ok(),
            Some([2.3, 48.8, 2.4, 48.9])
        );
        assert!(bbox_of("2.4,48.8,2.3,48.9").is_err());
        assert!(bbox_of("1,2,3").is_err());
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
