//! The dashboard in a real headless browser (Debian's `chromium`, driven
//! over the DevTools protocol): the login form lets the operator in, the
//! map shows the cells of the seeded reports (and none under k) even though
//! the map tiles cannot load, the safe-place layer shows a place, and
//! unticking a category changes what the map shows; with the city's
//! basemap (real streets, node/tests/data), the streets are drawn with their
//! names, a hotspot is named by its street and a click flies the map there.
//!
//! Needs `/usr/bin/chromium` (`apt-get install -y chromium`); without it the
//! test says so loudly and passes.

mod common;

use std::io::Read as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ronde_node::ManualClock;
use ronde_protocol::Category;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

const CHROMIUM: &str = "/usr/bin/chromium";

struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn launch(profile: &Path) -> Browser {
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                // WebGL in software, for the maps (MapLibre).
                "--enable-unsafe-swiftshader",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        // Chromium writes its DevTools port and browser path here.
        let port_file = profile.join("DevToolsActivePort");
        let start = Instant::now();
        let text = loop {
            if let Ok(t) = std::fs::read_to_string(&port_file) {
                if t.lines().count() >= 2 {
                    break t;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromium did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut lines = text.lines();
        let port = lines.next().expect("port").trim().to_owned();
        let path = lines.next().expect("path").trim().to_owned();
        let stream = TcpStream::connect(format!("127.0.0.1:{port}")).expect("devtools socket");
        let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream)
            .expect("devtools websocket");
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
        };
        let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("target").to_owned();
        let attached = b.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().expect("session").to_owned();
        b
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.try_call(session, method, params) {
            Ok(v) => v,
            Err(e) => panic!("{method} failed: {e}"),
        }
    }

    /// A DevTools call, its error answer as `Err` (say, an evaluation while
    /// the page navigates).
    fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("send to devtools");
        loop {
            let m = self.ws.read().expect("read from devtools");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).expect("devtools json");
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    return Err(e.clone());
                }
                return Ok(v["result"].clone());
            }
        }
    }

    fn page(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.call(Some(&s), method, params)
    }

    fn eval(&mut self, expr: &str) -> Value {
        let r = self.page(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr} threw: {e}");
        }
        r["result"]["value"].clone()
    }

    fn wait_for(&mut self, what: &str, expr: &str) -> Value {
        let start = Instant::now();
        loop {
            // While the page navigates, an evaluation may fail: not yet.
            let s = self.session.clone();
            let v = match self.try_call(
                Some(&s),
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            ) {
                Ok(r) if r.get("exceptionDetails").is_none() => r["result"]["value"].clone(),
                _ => Value::Null,
            };
            if !v.is_null() && v != json!(false) {
                return v;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let status = self
                    .eval("document.getElementById('map-status')?.textContent ?? document.title");
                panic!("timed out waiting for {what}; page says: {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&mut self, to: &Path) {
        let r = self.page("Page.captureScreenshot", json!({"format": "png"}));
        let data = r["data"].as_str().expect("png");
        let bytes = base64_decode(data);
        let _ = std::fs::write(to, bytes);
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let Some(v) = A.iter().position(|a| *a == c) else {
            continue;
        };
        buf = (buf << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// A wheel notch at 80 % across, 30 % down the map: how far (CSS pixels)
/// the map point that was under the pointer moved, and whether it zoomed.
const WHEEL_JS: &str = "(() => { const m = document.getElementById('map'); const r = m.getBoundingClientRect(); \
    const x = Math.round(r.left + r.width * 0.8), y = Math.round(r.top + r.height * 0.3); \
    const under = () => new DOMPoint(x, y).matrixTransform(m.getScreenCTM().inverse()); \
    const a = under(); const w0 = m.viewBox.baseVal.width; \
    m.dispatchEvent(new WheelEvent('wheel', { clientX: x, clientY: y, deltaY: -100, bubbles: true, cancelable: true })); \
    const back = new DOMPoint(a.x, a.y).matrixTransform(m.getScreenCTM()); \
    return JSON.stringify({ zoomed: m.viewBox.baseVal.width < w0, drift: Math.hypot(back.x - x, back.y - y) }); })()";

const CELLS_JS: &str = "JSON.stringify([...document.querySelectorAll('#map polygon.cell')].map(p => p.dataset.cell + '=' + p.dataset.count).sort())";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_seeded_cells_and_its_filters_work() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "\n\n*** SKIPPED the browser test: {CHROMIUM} is absent. \
             Install it with `apt-get install -y chromium`. ***\n\n"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let mut config = relay_config(&dir.path().join("relay"));
    // Tiles from a port where nothing listens: the overlay must not care.
    config.http.tile_url = "http://127.0.0.1:9/{z}/{x}/{y}.png".into();
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    let node = start_node(&dir.path().join("node"), &clock).await;
    connect_to_relay(&node, &relay).await;
    // A: 3 harassment, B: 3 following, C: 2 harassment (under k = 3).
    let (a, b, c) = (cell("w0"), cell("w5"), cell("x1"));
    publish(&node, a, Category::Harassment, 3).await;
    publish(&node, b, Category::Following, 3).await;
    publish(&node, c, Category::Harassment, 2).await;
    wait_counted(&relay, 8).await;
    let (client, base) = dashboard(&relay);
    let (plat, plon) = cell("x9").center();
    let res = client
        .post(format!("{base}/api/places"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Café des Amis", "kind": "bar", "lat": plat, "lon": plon}))
        .send()
        .await
        .expect("add place");
    assert_eq!(res.status().as_u16(), 201);

    let profile = dir.path().join("chromium");
    let shots: Option<PathBuf> = std::env::var_os("RONDE_SCREENSHOTS").map(PathBuf::from);
    let (a, b, c) = (a.to_string(), b.to_string(), c.to_string());
    tokio::task::spawn_blocking(move || {
        let mut br = Browser::launch(&profile);
        br.page("Page.enable", json!({}));
        br.page("Runtime.enable", json!({}));

        // Not logged in: the dashboard sends us to the login form.
        br.page("Page.navigate", json!({"url": format!("{base}/")}));
        br.wait_for("the login form", "document.location.pathname === '/login' && !!document.querySelector('input[name=token]')");
        // A wrong token is refused.
        br.eval("document.querySelector('input[name=token]').value = 'not-the-token-at-all'; document.querySelector('form').submit(); true");
        br.wait_for("the refusal", "document.location.search.includes('failed') && !!document.querySelector('.error')");
        // The right one lets us in.
        br.eval(&format!("document.querySelector('input[name=token]').value = '{TOKEN}'; document.querySelector('form').submit(); true"));
        br.wait_for("the dashboard", "document.location.pathname === '/' && document.getElementById('map-status')?.dataset.state === 'ready'");

        let cells: Vec<String> =
            serde_json::from_str(br.eval(CELLS_JS).as_str().expect("json")).expect("list");
        assert_eq!(cells, vec![format!("{a}=3"), format!("{b}=3")], "cells of the seeded reports, none under k");
        assert!(!br.eval("document.body.innerHTML").as_str().expect("html").contains(&c));
        // The safe-place layer and its freshness.
        assert_eq!(br.eval("document.querySelectorAll('#map circle.place.fresh').length"), json!(1));
        assert_eq!(br.eval("document.querySelector('#places-table tbody tr')?.dataset.freshness"), json!("fresh"));
        // The hotspot ranking and the trend.
        assert_eq!(br.eval("document.querySelectorAll('#hot-table tbody tr').length"), json!(2));
        assert_eq!(br.eval("document.querySelectorAll('#trend-chart rect.bar:not(.suppressed)').length"), json!(1));
        if let Some(d) = &shots {
            br.screenshot(&d.join("dashboard.png"));
        }

        // The wheel zooms around the pointer: the point under it stays
        // (the city's whole view, letterboxed in the map).
        let moved: Value = serde_json::from_str(br.eval(WHEEL_JS).as_str().expect("json")).expect("wheel");
        assert_eq!(moved["zoomed"], json!(true), "{moved}");
        assert!(moved["drift"].as_f64().is_some_and(|d| d < 0.5), "the point under the pointer drifted: {moved}");

        // A click on a hotspot flies the map there, at street level.
        let before = br.eval("document.getElementById('map').viewBox.baseVal.width");
        let hot = br.eval("document.querySelector('#hot-table tbody tr').dataset.cell");
        br.eval("document.querySelector('#hot-table tbody tr').click(); true");
        br.wait_for("the flight to the hotspot", &format!("document.getElementById('map').dataset.flownTo === {hot}"));
        let after = br.eval("document.getElementById('map').viewBox.baseVal.width");
        assert!(after.as_f64() < before.as_f64(), "zoomed in: {before} → {after}");

        // Two periods compared: nothing before (a month in January), the
        // seeded cells now; under k shows as "< k", never 0.
        br.eval("document.getElementById('cmp-a-from').value = '2026-01-01'; document.getElementById('cmp-a-to').value = '2026-01-31'; \
                 document.getElementById('cmp-b-from').value = document.getElementById('to').value; document.getElementById('cmp-b-to').value = document.getElementById('to').value; \
                 document.getElementById('cmp-go').click(); true");
        br.wait_for("the comparison", "document.getElementById('cmp-status').dataset.state === 'ready'");
        let rows: Vec<String> = serde_json::from_str(
            br.eval("JSON.stringify([...document.querySelectorAll('#cmp-table tbody tr')].map((r) => r.dataset.cell + ' ' + r.dataset.category + ' ' + r.dataset.before + '>' + r.dataset.after + ' ' + r.cells[4].textContent))")
                .as_str()
                .expect("json"),
        )
        .expect("list");
        assert_eq!(rows, vec![format!("{a} harassment >3 now ≥ 3"), format!("{b} following >3 now ≥ 3")]);

        // The browser speaks English: the dashboard too, until switched to
        // French, which changes every text at once, the comparison included.
        assert_eq!(br.eval("document.documentElement.lang"), json!("en"));
        assert_eq!(br.eval("document.getElementById('lang').textContent"), json!("FR"));
        let version = br.eval("document.getElementById('map-status').dataset.version");
        br.eval("document.getElementById('lang').click(); true");
        br.wait_for(
            "the French dashboard",
            &format!("document.getElementById('map-status').dataset.version !== {version} && document.getElementById('map-status').dataset.state === 'ready' && document.getElementById('cmp-status').dataset.state === 'ready'"),
        );
        assert_eq!(br.eval("document.documentElement.lang"), json!("fr"));
        assert_eq!(br.eval("document.querySelector('#hotspots h2').textContent"), json!("Points chauds"));
        assert_eq!(br.eval("document.querySelector('#compare h2').textContent"), json!("Comparer deux périodes"));
        assert_eq!(br.eval("document.querySelector('input[data-category=harassment]').parentElement.textContent.trim()"), json!("harcèlement"));
        let status = br.eval("document.getElementById('map-status').textContent");
        assert!(status.as_str().is_some_and(|s| s.contains("cellules affichées")), "{status}");
        let kinfo = br.eval("document.getElementById('kinfo').textContent");
        assert!(kinfo.as_str().is_some_and(|s| s.starts_with("Aucun nombre inférieur à 3")), "{kinfo}");
        let cmp = br.eval("[...document.querySelectorAll('#cmp-table tbody tr')].map((r) => r.cells[1].textContent + ' ' + r.cells[4].textContent).join('; ')");
        assert_eq!(cmp, json!("harcèlement désormais ≥ 3; personne suivie désormais ≥ 3"));
        assert_eq!(br.eval("document.querySelector('#hot-table thead th:nth-child(2)').textContent"), json!("lieu"));
        let summary = br.eval("document.getElementById('exp-summary').getAttribute('href')");
        assert!(summary.as_str().is_some_and(|h| h.ends_with("&lang=fr")), "the summary in French too: {summary}");
        if let Some(d) = &shots {
            br.screenshot(&d.join("dashboard-fr.png"));
        }
        // Back to English, kept for the rest of the test.
        br.eval("document.getElementById('lang').click(); true");
        br.wait_for("English again", "document.documentElement.lang === 'en' && document.getElementById('map-status').dataset.state === 'ready'");

        // Untick "harassment": only B is left.
        let version = br.eval("document.getElementById('map-status').dataset.version");
        br.eval("document.querySelector('input[data-category=harassment]').click(); true");
        br.wait_for(
            "the filtered map",
            &format!("document.getElementById('map-status').dataset.version !== {version} && document.getElementById('map-status').dataset.state === 'ready'"),
        );
        let cells: Vec<String> =
            serde_json::from_str(br.eval(CELLS_JS).as_str().expect("json")).expect("list");
        assert_eq!(cells, vec![format!("{b}=3")]);
        // The exports follow the filter.
        let href = br.eval("document.getElementById('exp-csv').getAttribute('href')");
        assert!(href.as_str().expect("href").contains("categories="), "{href}");
        assert!(!href.as_str().expect("href").contains("harassment"), "{href}");
        if let Some(d) = &shots {
            br.screenshot(&d.join("dashboard-filtered.png"));
        }
    })
    .await
    .expect("browser session");

    node.shutdown().await.expect("node");
    relay.shutdown().await.expect("relay");
}

/// The city basemap of the tests: real OpenStreetMap streets of Kirchberg
/// an der Iller (node/tests/data/README.md), inside the area `u0x1v`.
const BASEMAP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../node/tests/data/kirchberg.pmtiles"
);

/// The names of the streets shown on the dashboard's basemap.
const LABELS_JS: &str = "JSON.stringify((() => { const box = document.getElementById('basemap').getBoundingClientRect(); \
    return [...document.querySelectorAll('#basemap .street-label')].filter((s) => { const r = s.getBoundingClientRect(); \
    return r.width > 0 && r.height > 0 && r.left >= box.left && r.right <= box.right && r.top >= box.top && r.bottom <= box.bottom; }) \
    .map((s) => s.textContent).sort(); })())";

/// Issue 17: the dashboard draws the city's streets from the relay's
/// PMTiles basemap, with their names, under the cells; a hotspot is named
/// by its nearest street, and a click on it flies the map there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_the_streets_and_names_the_hotspots() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "\n\n*** SKIPPED the browser test: {CHROMIUM} is absent. \
             Install it with `apt-get install -y chromium`. ***\n\n"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let area = "u0x1v";
    let mut config = relay_config_in(&dir.path().join("relay"), area);
    config.http.tile_url = "http://127.0.0.1:9/{z}/{x}/{y}.png".into();
    std::fs::create_dir_all(&config.data_dir).expect("data dir");
    std::fs::copy(BASEMAP, config.data_dir.join("city.pmtiles")).expect("basemap");
    config.map.basemap = "city.pmtiles".into();
    write_city_key(&config);
    let relay = start_relay(config, &clock).await;
    // Haydnstraße runs through u0x1v4u.
    let hot: ronde_protocol::Cell = "u0x1v4u".parse().expect("cell");
    let node = start_node_at(&dir.path().join("node"), &clock, hot).await;
    connect_to_relay_in(&node, &relay, area).await;
    publish(&node, hot, Category::Harassment, 3).await;
    wait_counted(&relay, 3).await;
    let (_, base) = dashboard(&relay);

    let profile = dir.path().join("chromium");
    let shots: Option<PathBuf> = std::env::var_os("RONDE_SCREENSHOTS").map(PathBuf::from);
    tokio::task::spawn_blocking(move || {
        let mut br = Browser::launch(&profile);
        br.page("Page.enable", json!({}));
        br.page("Runtime.enable", json!({}));
        // A browser whose person reads French.
        let ua = br.call(None, "Browser.getVersion", json!({}))["userAgent"].clone();
        br.page("Emulation.setUserAgentOverride", json!({"userAgent": ua, "acceptLanguage": "fr-FR,fr"}));
        br.page("Page.navigate", json!({"url": format!("{base}/login")}));
        br.wait_for("the login form", "!!document.querySelector('input[name=token]')");
        assert_eq!(br.eval("document.querySelector('button[type=submit]').textContent"), json!("Se connecter"));
        br.eval(&format!("document.querySelector('input[name=token]').value = '{TOKEN}'; document.querySelector('form').submit(); true"));
        br.wait_for("the dashboard", "document.location.pathname === '/' && document.getElementById('map-status')?.dataset.state === 'ready'");
        assert_eq!(br.eval("document.getElementById('mapframe').classList.contains('with-basemap')"), json!(true));
        assert_eq!(br.eval("document.getElementById('attribution').textContent"), json!("© OpenStreetMap contributors"));
        assert_eq!(br.eval("document.querySelectorAll('#hot-table tbody tr').length"), json!(1));
        // In French, as the browser asks.
        assert_eq!(br.eval("document.documentElement.lang"), json!("fr"));
        assert_eq!(br.eval("document.querySelector('#trend h2').textContent"), json!("Tendance"));

        // The hotspot is named by its nearest street (the relay reads it
        // from the basemap), before anyone zooms in (the city's whole view).
        let name = br.wait_for("the hotspot's name", "document.querySelector('#hot-table tbody tr td.hot-where').dataset.name");
        assert_eq!(name, json!("Haydnstraße"));
        assert_eq!(
            br.eval("document.querySelector('#hot-table tbody tr td.hot-where').textContent"),
            json!("Haydnstraße (u0x1v4u)")
        );

        // The hotspot, clicked: the map flies there, at street level, and
        // the streets around it are drawn with their names.
        let before = br.eval("document.getElementById('map').viewBox.baseVal.width");
        br.eval("document.querySelector('#hot-table tbody tr').click(); true");
        br.wait_for("the flight to the hotspot", "document.getElementById('map').dataset.flownTo === 'u0x1v4u'");
        let after = br.eval("document.getElementById('map').viewBox.baseVal.width");
        assert!(after.as_f64() < before.as_f64(), "zoomed in: {before} → {after}");
        let labels = br.wait_for("the street names", &format!("(() => {{ const l = JSON.parse({LABELS_JS}); return l.includes('Haydnstraße') ? l : null; }})()"));
        assert!(labels.as_array().is_some_and(|l| l.len() >= 2), "{labels}");
        // The comparison names its cells by their street too.
        br.eval("document.getElementById('cmp-a-from').value = '2026-01-01'; document.getElementById('cmp-a-to').value = '2026-01-31'; \
                 document.getElementById('cmp-b-from').value = document.getElementById('to').value; document.getElementById('cmp-b-to').value = document.getElementById('to').value; \
                 document.getElementById('cmp-go').click(); true");
        let named = br.wait_for("the comparison's names", "document.getElementById('cmp-status').dataset.state === 'ready' && (document.querySelector('#cmp-table tbody tr td.cell-where')?.textContent || '').includes('(') && document.querySelector('#cmp-table tbody tr td.cell-where').textContent");
        assert_eq!(named, json!("Haydnstraße (u0x1v4u)"));
        // The cell is drawn over the streets, where the street is.
        assert_eq!(br.eval("document.querySelectorAll('#map polygon.cell').length"), json!(1));
        if let Some(d) = &shots {
            br.screenshot(&d.join("dashboard-streets.png"));
        }
    })
    .await
    .expect("browser session");

    node.shutdown().await.expect("node");
    relay.shutdown().await.expect("relay");
}

#[test]
fn base64_decoding_works() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    let mut s = String::new();
    let _ = "YWJj".as_bytes().read_to_string(&mut s);
    assert_eq!(base64_decode(&s), b"abc");
}
