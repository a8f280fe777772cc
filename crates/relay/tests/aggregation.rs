//! A real relay and real nodes on the memory transport: reports published by
//! several nodes are aggregated exactly; cells, categories and days under k
//! are suppressed in the API, the dashboard's data and every export; the
//! GeoJSON and CSV exports agree with the cells; raw reports are forgotten
//! at expiry while aggregates stay; a restart counts nothing twice;
//! `/metrics` is valid Prometheus text, and only for the operator.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use ronde_node::ManualClock;
use ronde_protocol::{Category, Cell};

/// What the three nodes publish (k = 3):
/// * A: 4 harassment + 3 following = 7 → shown, both categories shown;
/// * B: 3 poor lighting + 1 following = 4 → shown, but the lone "following"
///   would be revealed by subtraction, so no category is shown;
/// * C: 2 harassment → hidden;
/// * D: 1 following → hidden.
fn plan() -> Vec<(usize, Cell, Category, usize)> {
    vec![
        (0, cell("w0"), Category::Harassment, 2),
        (1, cell("w0"), Category::Harassment, 2),
        (2, cell("w0"), Category::Following, 3),
        (1, cell("w1"), Category::PoorLighting, 3),
        (0, cell("w1"), Category::Following, 1),
        (2, cell("w2"), Category::Harassment, 2),
        (0, cell("w3"), Category::Following, 1),
    ]
}

const PUBLISHED: u64 = 14;

fn cells_of(v: &serde_json::Value) -> BTreeMap<String, (u64, BTreeMap<String, u64>)> {
    v["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| {
            let by: BTreeMap<String, u64> = c["by_category"]
                .as_object()
                .expect("by_category")
                .iter()
                .map(|(k, n)| (k.clone(), n.as_u64().expect("count")))
                .collect();
            (
                c["cell"].as_str().expect("cell").to_owned(),
                (c["total"].as_u64().expect("total"), by),
            )
        })
        .collect()
}

fn m(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_from_several_nodes_are_aggregated_exactly_and_suppressed_under_k() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let config = relay_config(&dir.path().join("relay"));
    write_city_key(&config);
    let relay = start_relay(config.clone(), &clock).await;

    let mut nodes = Vec::new();
    for i in 0..3 {
        let n = start_node(&dir.path().join(format!("node{i}")), &clock).await;
        connect_to_relay(&n, &relay).await;
        nodes.push(n);
    }
    for (who, cell, cat, n) in plan() {
        publish(&nodes[who], cell, cat, n).await;
    }
    wait_counted(&relay, PUBLISHED).await;

    let (a, b, c, d) = (cell("w0"), cell("w1"), cell("w2"), cell("w3"));
    let want_all = BTreeMap::from([
        (
            a.to_string(),
            (7, m(&[("harassment", 4), ("following", 3)])),
        ),
        (b.to_string(), (4, m(&[]))),
    ]);

    // Exact per-bucket counts in the store (the operator never sees these).
    let rows = relay.shared().store.all_rows().expect("rows");
    let mut exact: BTreeMap<(Cell, Category), u64> = BTreeMap::new();
    for (k, n) in &rows {
        *exact.entry((k.cell, k.category)).or_insert(0) += n;
    }
    let mut planned: BTreeMap<(Cell, Category), u64> = BTreeMap::new();
    for (_, cell, cat, n) in plan() {
        *planned.entry((cell, cat)).or_insert(0) += n as u64;
    }
    assert_eq!(exact, planned, "every report counted exactly once");

    // The API: live view and date range agree, suppressed the same way.
    let live = get_json(&relay, "/api/live").await;
    assert_eq!(cells_of(&live), want_all);
    let today = get_json(&relay, "/api/cells").await;
    assert_eq!(cells_of(&today), want_all);
    // Suppression after filtering: harassment alone leaves C (2) out.
    let har = get_json(&relay, "/api/cells?categories=harassment").await;
    assert_eq!(
        cells_of(&har),
        BTreeMap::from([(a.to_string(), (4, m(&[("harassment", 4)])))])
    );
    let fol = get_json(&relay, "/api/live?categories=following").await;
    assert_eq!(
        cells_of(&fol),
        BTreeMap::from([(a.to_string(), (3, m(&[("following", 3)])))])
    );
    // Nothing at all for a category with fewer than k reports in total.
    let none = get_json(
        &relay,
        "/api/cells?categories=poor_lighting,harassment&bands=0",
    )
    .await;
    assert!(cells_of(&none).is_empty(), "{none}");

    // Trend: today is shown (14 >= k), other days are empty.
    let trend = get_json(&relay, "/api/trend").await;
    let days = trend["days"].as_array().expect("days");
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["total"], PUBLISHED);
    assert!(days[..29].iter().all(|d| d["total"].is_null()));
    let trend_c = get_json(&relay, "/api/trend?categories=exhibitionism").await;
    assert!(trend_c["days"]
        .as_array()
        .expect("days")
        .iter()
        .all(|d| d["total"].is_null()));

    // Hotspots: A then B, with their time of day.
    let hot = get_json(&relay, "/api/hotspots").await;
    let hs = hot["hotspots"].as_array().expect("hotspots");
    assert_eq!(hs.len(), 2);
    assert_eq!(hs[0]["cell"], a.to_string());
    assert_eq!(hs[0]["rank"], 1);
    assert_eq!(hs[1]["cell"], b.to_string());
    assert_eq!(hs[0]["by_band"]["18-21"], 7, "{hot}");

    // C and D appear in no answer and no export.
    let mut bodies = vec![
        live.to_string(),
        today.to_string(),
        hot.to_string(),
        trend.to_string(),
    ];
    for path in [
        "/api/export.geojson",
        "/api/export.csv",
        "/api/summary.html",
    ] {
        let (status, body) = get_authed(&relay, path).await;
        assert_eq!(status, 200, "{path}");
        bodies.push(body);
    }
    for body in &bodies {
        for hidden in [c, d] {
            assert!(!body.contains(hidden.as_str()), "{hidden} leaked: {body}");
        }
    }

    // Without the token: nothing.
    let (client, base) = dashboard(&relay);
    for path in ["/api/live", "/api/cells", "/api/export.csv", "/api/places"] {
        let res = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("req");
        assert_eq!(res.status().as_u16(), 401, "{path}");
    }
    let res = client
        .get(format!("{base}/api/cells"))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .expect("req");
    assert_eq!(res.status().as_u16(), 401);

    // A week later, the weekly summary for the city's services names A and
    // B but neither C nor D.
    clock.advance(7 * 86_400);
    let path = ronde_relay::server::write_weekly_summary(relay.shared())
        .expect("summary")
        .expect("a new summary");
    let html = std::fs::read_to_string(&path).expect("written");
    assert!(
        html.contains(a.as_str()) && html.contains(b.as_str()),
        "{html}"
    );
    assert!(!html.contains(c.as_str()) && !html.contains(d.as_str()));
    assert!(ronde_relay::server::write_weekly_summary(relay.shared())
        .expect("summary")
        .is_none());
    clock.set(T0);

    // Raw reports are forgotten at expiry; the aggregates stay.
    clock.advance(31 * 60);
    let live = get_json(&relay, "/api/live").await;
    assert!(cells_of(&live).is_empty());
    let (forgotten, _) = relay
        .shared()
        .store
        .purge(clock.now_secs(), 0)
        .expect("purge");
    assert_eq!(forgotten as u64, PUBLISHED);
    assert_eq!(relay.shared().store.live_len(), 0);
    assert_eq!(cells_of(&get_json(&relay, "/api/cells").await), want_all);

    for n in nodes {
        n.shutdown().await.expect("node shutdown");
    }
    relay.shutdown().await.expect("relay shutdown");
}

trait NowSecs {
    fn now_secs(&self) -> u64;
}
impl NowSecs for ManualClock {
    fn now_secs(&self) -> u64 {
        ronde_node::Clock::now(self)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_valid_and_match_the_cells() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let config = relay_config(&dir.path().join("relay"));
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    let node = start_node(&dir.path().join("node"), &clock).await;
    connect_to_relay(&node, &relay).await;
    for (_, cell, cat, n) in plan() {
        publish(&node, cell, cat, n).await;
    }
    wait_counted(&relay, PUBLISHED).await;

    let cells = get_json(&relay, "/api/cells").await;
    let want = cells_of(&cells);

    // GeoJSON: a FeatureCollection of closed rectangles, one per shown cell,
    // exactly the cell's bounds, with the shown counts.
    let (status, body) = get_authed(&relay, "/api/export.geojson").await;
    assert_eq!(status, 200);
    let g: serde_json::Value = serde_json::from_str(&body).expect("GeoJSON is JSON");
    assert_eq!(g["type"], "FeatureCollection");
    assert_eq!(g["ronde"]["k"], 3);
    let features = g["features"].as_array().expect("features");
    assert_eq!(features.len(), want.len());
    let mut seen = BTreeSet::new();
    for f in features {
        assert_eq!(f["type"], "Feature");
        assert_eq!(f["geometry"]["type"], "Polygon");
        let name = f["properties"]["cell"].as_str().expect("cell name");
        let cell: Cell = name.parse().expect("a cell");
        let (s, w, n, e) = cell.bounds();
        let ring: Vec<(f64, f64)> = f["geometry"]["coordinates"][0]
            .as_array()
            .expect("ring")
            .iter()
            .map(|p| (p[0].as_f64().expect("lon"), p[1].as_f64().expect("lat")))
            .collect();
        assert_eq!(ring.len(), 5);
        assert_eq!(ring.first(), ring.last(), "closed ring");
        let lons: BTreeSet<u64> = ring.iter().map(|p| p.0.to_bits()).collect();
        let lats: BTreeSet<u64> = ring.iter().map(|p| p.1.to_bits()).collect();
        assert_eq!(lons, BTreeSet::from([w.to_bits(), e.to_bits()]));
        assert_eq!(lats, BTreeSet::from([s.to_bits(), n.to_bits()]));
        // Each corner is inside (or on) the cell: it is this cell's polygon.
        let (clat, clon) = cell.center();
        assert_eq!(
            ronde_protocol::cell_for(clat, clon, cell.precision()).expect("cell"),
            cell
        );
        let (total, by) = &want[name];
        assert_eq!(f["properties"]["total"].as_u64(), Some(*total));
        // Flat: one property per category, null when not shown.
        let props: BTreeMap<String, u64> = Category::ALL
            .iter()
            .filter_map(|c| Some((c.to_string(), f["properties"][c.as_str()].as_u64()?)))
            .collect();
        assert_eq!(&props, by);
        for c in Category::ALL {
            assert!(
                f["properties"].get(c.as_str()).is_some(),
                "{c} in every feature"
            );
        }
        seen.insert(name.to_owned());
    }
    assert_eq!(seen, want.keys().cloned().collect());

    // CSV: one line per cell × local day × band × category; all reports
    // here are of one day and band, so the lines are the cells' shown
    // category counts.
    let (status, csv) = get_authed(&relay, "/api/export.csv").await;
    assert_eq!(status, 200);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    assert_eq!(
        header,
        ["cell", "min_lat", "min_lon", "max_lat", "max_lon", "day", "band", "category", "count"]
    );
    let mut from_csv: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), header.len(), "{line}");
        let cell: Cell = f[0].parse().expect("cell");
        let (s, w, _, _) = cell.bounds();
        assert!((f[1].parse::<f64>().expect("lat") - s).abs() < 1e-6);
        assert!((f[2].parse::<f64>().expect("lon") - w).abs() < 1e-6);
        // T0 is 2026-09-21 20:14 (the test relay's zone is UTC).
        assert_eq!((f[5], f[6]), ("2026-09-21", "18-21"), "{line}");
        let n: u64 = f[8].parse().expect("count");
        assert!(n >= 3, "no line under k: {line}");
        from_csv
            .entry(f[0].to_owned())
            .or_default()
            .insert(f[7].to_owned(), n);
    }
    let want_by: BTreeMap<String, BTreeMap<String, u64>> = want
        .iter()
        .filter(|(_, (_, by))| !by.is_empty())
        .map(|(c, (_, by))| (c.clone(), by.clone()))
        .collect();
    assert_eq!(from_csv, want_by);

    // Filters apply to exports like to the API.
    let (_, csv_h) = get_authed(&relay, "/api/export.csv?categories=harassment").await;
    assert_eq!(csv_h.lines().count(), 2, "{csv_h}");
    let (status, _) = get_authed(&relay, "/api/export.csv?from=2026-13-01").await;
    assert_eq!(status, 422);
    let (status, _) = get_authed(&relay, "/api/export.csv?categories=theft").await;
    assert_eq!(status, 422);

    // The summary is a self-contained HTML page naming the hotspots.
    let (status, html) = get_authed(&relay, "/api/summary.html").await;
    assert_eq!(status, 200);
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains(cell("w0").as_str()) && html.contains("No count below 3"));

    node.shutdown().await.expect("node");
    relay.shutdown().await.expect("relay");
}

/// A small checker of the Prometheus text exposition format (0.0.4):
/// returns every sample as (name, labels, value), or the first error.
type Sample = (String, BTreeMap<String, String>, f64);

fn parse_prometheus(text: &str) -> Result<Vec<Sample>, String> {
    fn valid_name(s: &str) -> bool {
        let mut c = s.chars();
        matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    }
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps = BTreeSet::new();
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), Some(_)) if valid_name(name) => {
                    if !helps.insert(name.to_owned()) {
                        return Err(err("second HELP"));
                    }
                }
                (Some("TYPE"), Some(name), Some(kind)) if valid_name(name) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(err("unknown type"));
                    }
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(err("second TYPE"));
                    }
                }
                _ => return Err(err("bad comment")),
            }
            continue;
        }
        let (name_labels, value) = line.rsplit_once(' ').ok_or_else(|| err("no value"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| err("value is not a number"))?,
        };
        let (name, labels) = match name_labels.split_once('{') {
            None => (name_labels, BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .ok_or_else(|| err("unclosed labels"))?;
                let mut labels = BTreeMap::new();
                let mut s = inner;
                while !s.is_empty() {
                    let (k, v) = s.split_once("=\"").ok_or_else(|| err("bad label"))?;
                    if !valid_name(k) || k.starts_with("__") {
                        return Err(err("bad label name"));
                    }
                    let mut val = String::new();
                    let mut chars = v.char_indices();
                    let end = loop {
                        match chars.next() {
                            Some((_, '\\')) => match chars.next() {
                                Some((_, 'n')) => val.push('\n'),
                                Some((_, c @ ('\\' | '"'))) => val.push(c),
                                _ => return Err(err("bad escape")),
                            },
                            Some((j, '"')) => break j,
                            Some((_, c)) => val.push(c),
                            None => return Err(err("unterminated label value")),
                        }
                    };
                    if labels.insert(k.to_owned(), val).is_some() {
                        return Err(err("repeated label"));
                    }
                    s = &v[end + 1..];
                    s = s.strip_prefix(',').unwrap_or(s);
                }
                (name, labels)
            }
        };
        if !valid_name(name) {
            return Err(err("bad metric name"));
        }
        let kind = types
            .get(name)
            .ok_or_else(|| err("sample before its TYPE"))?;
        if kind == "counter" && !name.ends_with("_total") {
            return Err(err("a counter's name should end in _total"));
        }
        if kind == "counter" && value < 0.0 {
            return Err(err("negative counter"));
        }
        samples.push((name.to_owned(), labels, value));
    }
    Ok(samples)
}

#[test]
fn the_prometheus_checker_rejects_bad_text() {
    assert!(parse_prometheus("# TYPE a_total counter\na_total 1\n").is_ok());
    for bad in [
        "a 1\n",
        "# TYPE a gauge\na one\n",
        "# TYPE a gauge\na{b=\"c} 1\n",
        "# TYPE a gauge\na{b=c} 1\n",
        "# TYPE a counter\na 1\n",
        "# TYPE a gauge\n# TYPE a gauge\na 1\n",
        "# TYPE 1a gauge\n1a 1\n",
        "# TYPE a gauge\na{b=\"x\",b=\"y\"} 1\n",
    ] {
        assert!(parse_prometheus(bad).is_err(), "{bad:?} accepted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_counts_nothing_twice_and_metrics_parse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let config = relay_config(&dir.path().join("relay"));
    write_city_key(&config);
    let relay = start_relay(config.clone(), &clock).await;
    let node = start_node(&dir.path().join("node"), &clock).await;
    connect_to_relay(&node, &relay).await;
    publish(&node, cell("w0"), Category::Harassment, 5).await;
    wait_counted(&relay, 5).await;
    relay.shutdown().await.expect("shutdown");

    // The relay's node kept the live reports; the restart's catch-up sees
    // them again and drops them as duplicates.
    let relay = start_relay(config, &clock).await;
    let dup = eventually("the catch-up", || async {
        let (_, text) = get_authed(&relay, "/metrics").await;
        let samples = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let get = |name: &str, label: Option<(&str, &str)>| {
            samples
                .iter()
                .find(|(n, l, _)| {
                    n == name && label.is_none_or(|(k, v)| l.get(k).map(String::as_str) == Some(v))
                })
                .map(|s| s.2)
        };
        let dup = get(
            "ronde_relay_reports_rejected_total",
            Some(("reason", "duplicate")),
        )?;
        assert_eq!(get("ronde_relay_reports_accepted_total", None), Some(0.0));
        assert_eq!(get("ronde_relay_areas", None), Some(1.0));
        // The relay hosts mailboxes (on by default): their size is exported.
        assert_eq!(get("ronde_relay_mailbox_envelopes", None), Some(0.0));
        assert!(get("ronde_relay_store_bytes", None)? > 0.0);
        assert!(get("ronde_relay_directory_serial", None)? >= T0 as f64);
        (dup >= 5.0).then_some(dup)
    })
    .await;
    assert_eq!(dup, 5.0);
    let cells = get_json(&relay, "/api/cells").await;
    assert_eq!(
        cells_of(&cells),
        BTreeMap::from([(cell("w0").to_string(), (5, m(&[("harassment", 5)])))])
    );
    node.shutdown().await.expect("node");
    relay.shutdown().await.expect("relay");
}

/// Hostile: whoever reaches the dashboard port without the operator token
/// must not read the relay's exact report totals or the mailbox and
/// dead-man's switch counts it hosts (a journey starting could be watched
/// there). Prometheus scrapes with the token; the dashboard session works
/// too; the public listener has no `/metrics` at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_operator_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let config = relay_config(&dir.path().join("relay"));
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    let node = start_node(&dir.path().join("node"), &clock).await;
    connect_to_relay(&node, &relay).await;
    publish(&node, cell("w0"), Category::Harassment, 2).await;
    wait_counted(&relay, 2).await;

    let (client, base) = dashboard(&relay);
    let url = format!("{base}/metrics");
    let leaks = |body: &str| {
        [
            "ronde_relay_reports_accepted_total",
            "ronde_relay_reports_acknowledged_total",
            "ronde_relay_reports_rejected_total",
            "ronde_relay_node_reports",
            "ronde_relay_live_reports",
            "ronde_relay_aggregate_rows",
            "ronde_relay_mailbox_envelopes",
            "ronde_relay_mailbox_switches",
        ]
        .into_iter()
        .filter(|name| body.contains(name))
        .collect::<Vec<_>>()
    };

    // No token, a wrong token, a made-up session: refused, nothing leaked.
    let anonymous = [
        client.get(&url),
        client.get(&url).bearer_auth("wrong-token-wrong-token"),
        client
            .get(&url)
            .header("cookie", "ronde_relay_session=00112233445566778899"),
    ];
    for req in anonymous {
        let res = req.send().await.expect("GET /metrics");
        let status = res.status().as_u16();
        let body = res.text().await.expect("body");
        assert_eq!(status, 401, "GET /metrics without the token: {body}");
        assert!(leaks(&body).is_empty(), "leaked {:?}: {body}", leaks(&body));
    }

    // The public listener does not serve it.
    let public = relay
        .public_addr()
        .expect("the test relay has a public listener");
    let res = client
        .get(format!("http://{public}/metrics"))
        .send()
        .await
        .expect("GET public /metrics");
    assert_eq!(res.status().as_u16(), 404);

    // Prometheus with `authorization: { credentials: <token> }`.
    let (status, text) = get_authed(&relay, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    let samples = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let get = |name: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l.is_empty())
            .map(|s| s.2)
    };
    assert_eq!(get("ronde_relay_reports_accepted_total"), Some(2.0));
    assert_eq!(get("ronde_relay_mailbox_switches"), Some(0.0));

    // The operator logged in on the dashboard.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = no_redirect
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .expect("POST /login");
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let res = client
        .get(&url)
        .header("cookie", cookie)
        .send()
        .await
        .expect("GET /metrics with the session");
    assert_eq!(res.status().as_u16(), 200);
    assert!(res
        .text()
        .await
        .expect("body")
        .contains("ronde_relay_reports_accepted_total 2\n"));

    node.shutdown().await.expect("node");
    relay.shutdown().await.expect("relay");
}
