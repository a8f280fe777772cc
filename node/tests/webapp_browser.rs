//! The phone's app in a real browser: headless Chromium (Debian's
//! `chromium`), driven over the DevTools protocol on a pipe (see `cdp/`),
//! against real nodes serving their API and the app on 127.0.0.1.
//!
//! * A person reports in two taps (category, "here" with the position the
//!   browser gives) and sees the confirmation, then the report on the map
//!   and in the list; a report made elsewhere arrives live.
//! * Two phones: one invites, the other accepts the code, the first
//!   approves (both show the same safety number); the second walks home
//!   (journey started, arrived) and the first is told; an SOS pressed on
//!   the second (after cancelling an accidental press) shows up in the
//!   first one's inbox as an alert, and the acknowledgement shows on the
//!   second.
//!
//! Without Chromium the tests say so and pass, unless `CI` is set: then
//! they fail, since CI must install it (`apt-get install -y chromium`).
//! `RONDE_SCREENSHOT=$PWD/docs/screenshots/phone-app.png` also writes a
//! picture of the app at phone size with a few reports (`phone_screenshot`),
//! and, beside it, a journey under way and the SOS as sent and as received,
//! the streets of the tests' extract and those of the demo's basemap.

mod cdp;
mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cdp::{find_chromium, Browser, Page};

use common::api::Served;
use ronde_node::{ManualClock, NodeConfig};
use ronde_protocol::Category;
use serde_json::json;
use tokio::runtime::Runtime;

/// Place d'Italie, Paris.
const HERE: (f64, f64) = (48.8311, 2.3556);

/// A phone: a node and its API (with the app) on 127.0.0.1.
struct Phone {
    api: Served,
}

impl Phone {
    fn start(rt: &Runtime) -> Phone {
        Phone::start_with(rt, |_| {})
    }

    fn start_with(rt: &Runtime, tweak: impl FnOnce(&mut NodeConfig)) -> Phone {
        rt.block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut config = NodeConfig::for_tests(dir.path());
            tweak(&mut config);
            Phone {
                api: Served::start(config).await.keeping(dir),
            }
        })
    }

    fn stop(self, rt: &Runtime) {
        let _ = rt.block_on(self.api.stop());
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The browser, or `None` (test skipped) when it is not installed here.
fn browser() -> Option<Browser> {
    match find_chromium() {
        Some(path) => Some(Browser::launch(&path)),
        None if std::env::var_os("CI").is_some() => {
            panic!("Chromium is needed for the browser tests: apt-get install -y chromium")
        }
        None => {
            eprintln!(
                "SKIPPED: no Chromium here (apt-get install -y chromium, or set RONDE_CHROMIUM)"
            );
            None
        }
    }
}

/// A tab on `phone`'s app, the browser placing the person at `at`.
fn open_app(b: &mut Browser, phone: &Phone, at: (f64, f64)) -> Page {
    let page = b.new_page();
    b.call(
        None,
        "Browser.grantPermissions",
        json!({ "origin": phone.api.base, "permissions": ["geolocation"] }),
    )
    .expect("grant geolocation");
    b.call(
        Some(&page.session),
        "Emulation.setGeolocationOverride",
        json!({ "latitude": at.0, "longitude": at.1, "accuracy": 15 }),
    )
    .expect("geolocation");
    b.call(
        Some(&page.session),
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true }),
    )
    .expect("phone size");
    b.call(
        Some(&page.session),
        "Page.navigate",
        // The one-time login URL the node prints: it sets the session
        // cookie and opens the app.
        json!({ "url": phone.api.login_url() }),
    )
    .expect("navigate");
    b.wait_for(
        &page,
        "the app to start",
        "document.documentElement.dataset.ready === 'true'",
        20,
    );
    page
}

fn assert_no_problems(b: &mut Browser, page: &Page) {
    let problems: Vec<String> = b
        .problems(page)
        .into_iter()
        // The favicon of about:blank and the like are not the app's.
        .filter(|p| !p.contains("favicon"))
        .collect();
    assert!(
        problems.is_empty(),
        "the page reported problems: {problems:#?}"
    );
}

#[test]
fn a_report_in_two_taps_shows_on_the_map_and_in_the_list() {
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    let phone = Phone::start(&rt);
    let page = open_app(&mut b, &phone, HERE);

    // The app found the position and told the node, which now follows the
    // areas around it.
    b.wait_for(
        &page,
        "the position",
        "document.querySelector('#where-text').textContent.includes('±')",
        20,
    );
    let areas = rt.block_on(async {
        for _ in 0..100 {
            let s = phone.api.node.status().await.expect("status");
            if !s.areas.is_empty() {
                return s.areas;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Vec::new()
    });
    assert_eq!(areas.len(), 9, "the app set the node's location");
    b.wait_for(
        &page,
        "the empty list",
        "!document.querySelector('#reports-empty').hidden",
        10,
    );

    // Keyboard: the tabs are real tabs, with arrow keys.
    b.eval(&page, "document.querySelector('#tab-map').focus()")
        .expect("focus");
    b.press(&page, "ArrowRight");
    b.wait_for(
        &page,
        "the report tab via the keyboard",
        "document.activeElement.id === 'tab-report' && !document.querySelector('#view-report').hidden",
        5,
    );
    b.press(&page, "ArrowLeft");
    b.wait_for(
        &page,
        "back to the map",
        "!document.querySelector('#view-map').hidden",
        5,
    );

    // Touch targets are at least 44 px.
    for sel in [
        "#sos-open",
        "#lang",
        "#tab-report",
        "#map-report",
        "#where-change",
    ] {
        let (w, h) = b.size_of(&page, sel);
        assert!(w >= 44.0 && h >= 44.0, "{sel} is {w}×{h}");
    }

    // Report: open the report tab, tap the category, tap "here".
    b.click(&page, "#tab-report");
    b.wait_for(
        &page,
        "the categories",
        "document.querySelectorAll('#category-grid button').length === 9",
        5,
    );
    let (w, h) = b.size_of(&page, "#category-grid [data-category='harassment']");
    assert!(w >= 44.0 && h >= 44.0, "category button is {w}×{h}");
    b.click(&page, "#category-grid [data-category='harassment']");
    b.wait_for(
        &page,
        "the 'where' step",
        "!document.querySelector('#report-step-where').hidden",
        5,
    );
    b.click(&page, "#report-here");
    b.wait_for(
        &page,
        "the confirmation",
        "!document.querySelector('#report-done').hidden",
        20,
    );
    let cell = b
        .eval(
            &page,
            "document.querySelector('#report-done [data-field=cell] code').textContent",
        )
        .expect("cell");
    let cell = cell.as_str().expect("cell text").to_owned();
    let expected = ronde_protocol::cell_for(HERE.0, HERE.1, 7).expect("cell");
    assert_eq!(
        cell,
        expected.to_string(),
        "the cell of where the browser is"
    );
    let done = b
        .eval(&page, "document.querySelector('#report-done').textContent")
        .expect("text");
    let done = done.as_str().unwrap_or("");
    assert!(done.contains("Harassment"), "{done}");
    assert!(
        done.contains("no name"),
        "says it carries no identity: {done}"
    );
    assert!(done.contains("Disappears"), "{done}");
    // The node stored exactly that report.
    let nearby = rt
        .block_on(phone.api.node.nearby(HERE.0, HERE.1, 500.0))
        .expect("nearby");
    assert_eq!(nearby.reports.len(), 1);
    assert_eq!(nearby.reports[0].category, Category::Harassment);
    assert_eq!(nearby.reports[0].cell.to_string(), cell);

    // The map and the list show it.
    b.click(&page, "#report-done .row .btn");
    b.wait_for(
        &page,
        "the report in the list",
        "document.querySelectorAll('#report-list li[data-category=harassment]').length === 1",
        10,
    );
    let sel = format!("#report-map g.cell[data-cell='{cell}'][data-count='1']");
    b.wait_for(
        &page,
        "the cell on the map",
        &format!("!!document.querySelector({})", json!(sel)),
        10,
    );

    // A report made elsewhere arrives live (server-sent events), without a
    // reload, and is announced to screen readers.
    rt.block_on(
        phone
            .api
            .node
            .report(Category::Following, HERE.0 + 0.002, HERE.1 + 0.002, None),
    )
    .expect("second report");
    b.wait_for(
        &page,
        "the live report",
        "document.querySelectorAll('#report-list li').length === 2 && !!document.querySelector('#report-list li[data-category=following]')",
        10,
    );
    b.wait_for(
        &page,
        "the announcement",
        "document.querySelector('#live').textContent.includes('Being followed')",
        5,
    );
    // Two cells, each with its own count.
    let cells = b
        .eval(
            &page,
            "document.querySelectorAll('#report-map g.cell').length",
        )
        .expect("cells");
    assert_eq!(cells, json!(2));

    // A cell filters the list when chosen, with the keyboard too.
    b.eval(
        &page,
        &format!("document.querySelector({}).focus()", json!(sel)),
    )
    .expect("focus cell");
    b.press(&page, "Enter");
    b.wait_for(
        &page,
        "the filtered list",
        "document.querySelectorAll('#report-list li').length === 1 && !document.querySelector('#cell-filter').hidden",
        5,
    );
    b.click(&page, "#cell-filter-clear");

    // French, with the switch.
    b.click(&page, "#lang");
    b.wait_for(
        &page,
        "French",
        "document.documentElement.lang === 'fr' && document.querySelector('#tab-report').textContent.includes('Signaler')",
        5,
    );
    b.click(&page, "#lang");

    // Help: emergency numbers always, and a clear state without directory.
    b.click(&page, "#tab-help");
    b.wait_for(
        &page,
        "emergency numbers",
        "['tel:112', 'tel:17'].every((h) => !!document.querySelector(`#emergency-list a[href='${h}']`))",
        5,
    );
    b.wait_for(
        &page,
        "the directory state",
        "document.querySelector('#places-state').textContent.length > 0",
        10,
    );

    // Installable: the service worker took control of the shell.
    b.wait_for(
        &page,
        "the service worker",
        "navigator.serviceWorker.getRegistration('/').then((r) => !!(r && r.active) && r.scope)",
        20,
    );
    let cached = b
        .eval(
            &page,
            "caches.keys().then(async (keys) => { const out = []; for (const k of keys) { const c = await caches.open(k); for (const r of await c.keys()) out.push(new URL(r.url).pathname); } return out; })",
        )
        .expect("cache keys");
    let cached: Vec<String> = serde_json::from_value(cached).unwrap_or_default();
    assert!(cached.iter().any(|p| p == "/app/app.js"), "{cached:?}");
    assert!(
        cached.iter().all(|p| !p.starts_with("/v1/")),
        "no API answer is cached: {cached:?}"
    );
    // Chromium finds nothing missing to install it.
    let installable = b
        .call(
            Some(&page.session),
            "Page.getInstallabilityErrors",
            json!({}),
        )
        .expect("installability");
    assert_eq!(
        installable["installabilityErrors"],
        json!([]),
        "the app is installable"
    );
    assert_no_problems(&mut b, &page);
    drop(b);
    phone.stop(&rt);
}

/// With `RONDE_SCREENSHOT=<path>`: the app at phone size, with reports of
/// the last half hour around, as a PNG.
/// Opened without the login link (or with a spent one), the app loads but
/// its node refuses it, and it says to open the link; the link logs it in.
#[test]
fn without_the_login_link_the_app_says_to_open_it() {
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    let phone = Phone::start(&rt);
    let page = b.new_page();
    let navigate = |b: &mut Browser, url: String| {
        b.call(Some(&page.session), "Page.navigate", json!({ "url": url }))
            .expect("navigate");
    };
    navigate(&mut b, format!("{}/", phone.api.base));
    let refused = "(() => { const t = document.querySelector('#conn').textContent; \
                   return t.includes('login') || t.includes('connexion'); })()";
    b.wait_for(&page, "the login hint", refused, 20);

    let link = phone.api.login_url();
    navigate(&mut b, link.clone());
    b.wait_for(
        &page,
        "the app, logged in",
        &format!("document.documentElement.dataset.ready === 'true' && !{refused}"),
        20,
    );
    // The link is spent: opened again, the node refuses it.
    let body = rt.block_on(async {
        reqwest::get(&link)
            .await
            .expect("send")
            .text()
            .await
            .expect("body")
    });
    assert!(body.contains("bad_login_code"), "{body}");
    phone.stop(&rt);
}

#[test]
fn phone_screenshot() {
    let Some(path) = std::env::var_os("RONDE_SCREENSHOT").map(PathBuf::from) else {
        return;
    };
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Reports made over the last 28 minutes, by a clock the test moves.
    let clock = ManualClock::new(now - 28 * 60);
    let c = clock.clone();
    let phone = Phone::start_with(&rt, move |config| {
        config.clock = Arc::new(c);
        config.location = Some(HERE);
    });
    let around = [
        (Category::PhysicalAggression, 0.0068, 0.0057, 0),
        (Category::PoorLighting, -0.0035, 0.0042, 240),
        (Category::PoorLighting, -0.0036, 0.0041, 300),
        (Category::FeelingUnsafe, -0.0012, -0.0061, 180),
        (Category::VerbalAggression, 0.0051, -0.0022, 420),
        (Category::Following, 0.0016, 0.0017, 300),
        (Category::Harassment, 0.0004, -0.0009, 100),
        (Category::Harassment, 0.0005, -0.0008, 60),
    ];
    for (category, dlat, dlon, later) in around {
        clock.advance(later);
        rt.block_on(
            phone
                .api
                .node
                .report(category, HERE.0 + dlat, HERE.1 + dlon, None),
        )
        .expect("report");
    }
    clock.set(now);
    let page = open_app(&mut b, &phone, HERE);
    b.wait_for(
        &page,
        "all the reports",
        "document.querySelectorAll('#report-list li').length === 8",
        20,
    );
    b.eval(
        &page,
        "window.scrollTo(0, 0); document.activeElement.blur()",
    )
    .expect("scroll");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "phone-app.png".to_owned());
    shot(&mut b, &page, &name);
    drop(b);
    phone.stop(&rt);
}

/// With `RONDE_SCREENSHOT=<dir>/<file>`, a PNG of `page` as `<dir>/<name>`.
fn shot(b: &mut Browser, page: &Page, name: &str) {
    let Some(path) = std::env::var_os("RONDE_SCREENSHOT").map(PathBuf::from) else {
        return;
    };
    let path = path.with_file_name(name);
    let _ = b.eval(page, "window.scrollTo(0, 0)");
    std::thread::sleep(Duration::from_millis(300));
    let png = b.screenshot(page);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("screenshot dir");
    }
    std::fs::write(&path, png).expect("write screenshot");
}

/// Type `text` into the field of `selector`.
fn fill(b: &mut Browser, page: &Page, selector: &str, text: &str) {
    b.click(page, selector);
    b.eval(
        page,
        &format!("document.querySelector({}).value = ''", json!(selector)),
    )
    .expect("clear");
    b.insert_text(page, text);
}

#[test]
fn an_sos_from_one_phone_shows_in_the_other_phones_inbox() {
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    let alice = Phone::start(&rt);
    let bob = Phone::start(&rt);
    let pa = open_app(&mut b, &alice, HERE);
    let pb = open_app(&mut b, &bob, (HERE.0 + 0.004, HERE.1 - 0.003));

    // Alice invites.
    b.click(&pa, "#tab-circle");
    fill(&mut b, &pa, "#invite-name", "Alice");
    b.click(&pa, "#invite-form button[type=submit]");
    let code = b.wait_for(
        &pa,
        "the invite code",
        "(document.querySelector('#invite-code') || {}).textContent",
        20,
    );
    let code = code.as_str().expect("code").to_owned();
    assert!(code.starts_with("ronde1:"), "{code}");
    // Beside the code, its QR code (issue 18 §6), drawn by the vendored
    // library: an invite of a few hundred characters needs well over 41
    // modules a side (version 6 and up), plus the quiet zone.
    let side = b
        .eval(
            &pa,
            "(() => { const q = document.querySelector('#invite-qr'); return q ? q.viewBox.baseVal.width : 0; })()",
        )
        .expect("qr");
    assert!(
        side.as_f64().is_some_and(|w| w >= 49.0),
        "QR code side {side}"
    );

    // Bob types the code (grouped with dashes, as shown).
    b.click(&pb, "#tab-circle");
    fill(&mut b, &pb, "#accept-code", &code);
    fill(&mut b, &pb, "#accept-name", "Bob");
    b.click(&pb, "#accept-form button[type=submit]");
    let bob_sn = b.wait_for(
        &pb,
        "the safety number at Bob's",
        "(document.querySelector('#accept-result .digits') || {}).textContent",
        20,
    );

    // Alice sees the request, compares the safety number, approves.
    b.wait_for(
        &pa,
        "Bob's request",
        "!!document.querySelector('#contact-list li.state-awaiting_my_approval')",
        30,
    );
    let alice_sn = b
        .eval(
            &pa,
            "document.querySelector('#contact-list li.state-awaiting_my_approval .digits').textContent",
        )
        .expect("safety number");
    assert_eq!(alice_sn, bob_sn, "both phones show the same safety number");
    // Approving asks "do they match?" with the whole number: Alice compares
    // and says yes (the dialog is answered by the page, as a person would).
    b.eval(
        &pa,
        "window.confirm = (m) => { window.__asked = m; return true; }; ''",
    )
    .expect("stub the dialog");
    b.click(
        &pa,
        "#contact-list li.state-awaiting_my_approval .row .btn.primary",
    );
    let asked = b.eval(&pa, "window.__asked || ''").expect("the question");
    let number = alice_sn.as_str().expect("a string");
    assert!(
        asked.as_str().is_some_and(|q| q.contains(number)),
        "the approval shows the whole safety number: {asked}"
    );
    b.wait_for(
        &pa,
        "Bob in Alice's circle",
        "!!document.querySelector('#contact-list li.state-mutual')",
        20,
    );
    b.wait_for(
        &pb,
        "Alice in Bob's circle",
        "!!document.querySelector('#contact-list li.state-mutual')",
        30,
    );

    // Bob walks home: Alice is told when he leaves and when he arrives.
    b.click(&pb, "#tab-journey");
    b.wait_for(
        &pb,
        "the journey form",
        "!document.querySelector('#journey-form').hidden",
        10,
    );
    b.click(&pb, "#journey-map");
    b.click(&pb, "#journey-form button[type=submit]");
    b.wait_for(
        &pb,
        "the journey under way",
        "!!document.querySelector('#journey-arrived')",
        20,
    );
    b.wait_for(
        &pa,
        "Bob's journey at Alice's",
        "!!document.querySelector('#inbox-list li[data-kind=journey_started]')",
        30,
    );
    shot(&mut b, &pb, "phone-journey.png");
    b.click(&pb, "#journey-arrived");
    b.wait_for(
        &pb,
        "the arrival",
        "!document.querySelector('#journey-form').hidden || !!document.querySelector('#journey-active .done')",
        20,
    );
    b.wait_for(
        &pa,
        "Bob's arrival at Alice's",
        "!!document.querySelector('#inbox-list li[data-kind=arrived]')",
        30,
    );

    // An accidental press on Bob's SOS: cancelled during the countdown,
    // nothing is sent.
    b.click(&pb, "#sos-open");
    b.wait_for(
        &pb,
        "the countdown",
        "document.querySelector('#sos-dialog').open && !document.querySelector('#sos-countdown-wrap').hidden",
        5,
    );
    let focused = b.eval(&pb, "document.activeElement.id").expect("focus");
    assert_eq!(
        focused,
        json!("sos-abort"),
        "the cancel button has the focus"
    );
    b.click(&pb, "#sos-abort");
    b.wait_for(
        &pb,
        "the dialog to close",
        "!document.querySelector('#sos-dialog').open",
        5,
    );
    std::thread::sleep(Duration::from_millis(SOS_WAIT_MS));
    assert!(
        rt.block_on(bob.api.node.sos_status()).is_err(),
        "no SOS was raised"
    );

    // The real one: the countdown runs out.
    b.click(&pb, "#sos-open");
    b.wait_for(
        &pb,
        "the SOS to be sent",
        "!!document.querySelector('#sos-sent')",
        20,
    );

    // Alice's phone: an alert, in the banner and in the inbox.
    b.wait_for(
        &pa,
        "the alert banner",
        "!document.querySelector('#alert-banner').hidden && document.querySelector('#alert-banner').textContent.includes('Bob')",
        30,
    );
    b.wait_for(
        &pa,
        "the SOS in the inbox",
        "!!document.querySelector('#inbox-list li.alert[data-kind=sos]')",
        10,
    );
    let role = b
        .eval(
            &pa,
            "document.querySelector('#alert-banner').getAttribute('role')",
        )
        .expect("role");
    assert_eq!(role, json!("alert"), "screen readers hear it at once");
    shot(&mut b, &pa, "phone-sos-received.png");
    b.click(&pa, "#inbox-list li.alert[data-kind=sos] [data-ack]");
    b.wait_for(
        &pa,
        "the SOS marked seen",
        "!document.querySelector('#inbox-list li[data-kind=sos] [data-ack]') && document.querySelector('#alert-banner').hidden",
        10,
    );

    // Bob's phone shows that Alice saw it; he stops it.
    b.wait_for(
        &pb,
        "the ack at Bob's",
        "(document.querySelector('#sos-state .sos-acked') || {}).textContent?.includes('Alice')",
        30,
    );
    shot(&mut b, &pb, "phone-sos-sent.png");
    b.click(&pb, "#sos-cancel");
    b.wait_for(
        &pa,
        "the SOS cancelled at Alice's",
        "!!document.querySelector('#inbox-list li[data-kind=sos_cancelled]')",
        30,
    );
    assert_no_problems(&mut b, &pa);
    assert_no_problems(&mut b, &pb);
    drop(b);
    alice.stop(&rt);
    bob.stop(&rt);
}

/// Long enough for an SOS, had one been sent, to reach the node.
const SOS_WAIT_MS: u64 = 1500;

/// Invite on `a`, accept on `b`, approve on `a`, through the nodes' own
/// API (the browser flow of this is tested above).
fn befriend(rt: &Runtime, a: &Phone, a_name: &str, b: &Phone, b_name: &str) {
    rt.block_on(async {
        let invite = a
            .api
            .node
            .create_invite(Some(a_name.into()), 600)
            .await
            .expect("invite");
        let accepted = b
            .api
            .node
            .accept_invite(&invite.code, Some(b_name.into()))
            .await
            .expect("accept");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match a
                .api
                .node
                .approve_contact_compared(b_name, &accepted.safety_number)
                .await
            {
                Ok(_) => break,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("approve: {e}"),
            }
        }
        while b
            .api
            .node
            .contacts()
            .await
            .expect("contacts")
            .contacts
            .iter()
            .all(|c| c.state != ronde_protocol::circle::ContactState::Mutual)
        {
            assert!(std::time::Instant::now() < deadline, "never mutual");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// Issue 18 §4 in the app: Bob sets his codes, starts a journey and
/// "cancels" it with his duress code. His screen shows it cancelled, as a
/// real cancel would; Alice's app shows a duress alert and no cancellation.
#[test]
fn the_duress_code_in_the_app() {
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    let alice = Phone::start(&rt);
    let bob = Phone::start(&rt);
    befriend(&rt, &alice, "Alice", &bob, "Bob");
    let pa = open_app(&mut b, &alice, HERE);
    let pb = open_app(&mut b, &bob, (HERE.0 + 0.004, HERE.1 - 0.003));

    // Bob sets his codes in the circle view.
    b.click(&pb, "#tab-circle");
    b.wait_for(
        &pb,
        "the codes form",
        "!document.querySelector('#codes-form').hidden",
        10,
    );
    fill(&mut b, &pb, "#codes-code", "2468");
    fill(&mut b, &pb, "#codes-duress", "1357");
    b.click(&pb, "#codes-form button[type=submit]");
    b.wait_for(
        &pb,
        "the codes saved",
        "document.querySelector('#codes-state').textContent.length > 0 && !document.querySelector('#codes-current').hidden",
        20,
    );

    // A journey, then "cancel" with the duress code.
    b.click(&pb, "#tab-journey");
    b.wait_for(
        &pb,
        "the journey form",
        "!document.querySelector('#journey-form').hidden",
        10,
    );
    b.click(&pb, "#journey-map");
    b.click(&pb, "#journey-form button[type=submit]");
    b.wait_for(
        &pb,
        "the code field",
        "!!document.querySelector('#journey-code')",
        20,
    );
    b.wait_for(
        &pa,
        "Bob's journey at Alice's",
        "!!document.querySelector('#inbox-list li[data-kind=journey_started]')",
        30,
    );
    fill(&mut b, &pb, "#journey-code", "1357");
    // The views are rebuilt on every refresh (every 10 s, and here by the
    // language switch, twice): the code being typed survives it.
    b.click(&pb, "#lang");
    b.click(&pb, "#lang");
    let typed = b
        .eval(&pb, "document.querySelector('#journey-code').value")
        .expect("eval");
    assert_eq!(typed, json!("1357"), "a refresh wiped the code being typed");
    b.click(&pb, "#journey-cancel");
    b.wait_for(
        &pb,
        "the journey shown cancelled",
        "!!document.querySelector('#journey-active .done') || !document.querySelector('#journey-form').hidden",
        20,
    );
    let screen = b
        .eval(&pb, "document.querySelector('#view-journey').innerText")
        .expect("text");
    let screen = screen.as_str().unwrap_or_default().to_lowercase();
    assert!(
        !screen.contains("duress") && !screen.contains("contrainte"),
        "{screen}"
    );

    // Alice is alerted, and not told it was cancelled.
    b.click(&pa, "#tab-circle");
    b.wait_for(
        &pa,
        "the duress alert at Alice's",
        "!!document.querySelector('#inbox-list li.alert[data-kind=duress]')",
        30,
    );
    let cancelled = b
        .eval(
            &pa,
            "!!document.querySelector('#inbox-list li[data-kind=journey_cancelled]')",
        )
        .expect("eval");
    assert_eq!(
        cancelled,
        json!(false),
        "Alice was told the journey was cancelled"
    );
    assert_no_problems(&mut b, &pa);
    assert_no_problems(&mut b, &pb);
    alice.stop(&rt);
    bob.stop(&rt);
}

/// Issue 18 §1 in the app, at 360 px wide: the journey form fits, a
/// destination saved as "Maison" is offered first next time and the
/// journey reads its name, and "+10 min" moves the expected arrival.
#[test]
fn a_saved_destination_and_more_time_on_a_small_phone() {
    const NAME: &str = "Maison de Léa, 14 avenue Danielle Casanova, Ivry-sur-Seine";
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    let alice = Phone::start(&rt);
    let bob = Phone::start(&rt);
    befriend(&rt, &alice, "Alice", &bob, "Bob");
    let pb = open_app(&mut b, &bob, HERE);
    b.call(
        Some(&pb.session),
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": true }),
    )
    .expect("small phone");
    b.click(&pb, "#tab-journey");
    b.wait_for(
        &pb,
        "the journey form",
        "!document.querySelector('#journey-form').hidden",
        10,
    );
    b.click(&pb, "#journey-map");
    fill(&mut b, &pb, "#journey-save-name", NAME);
    b.click(&pb, "#journey-form button[type=submit]");
    b.wait_for(
        &pb,
        "the journey under way",
        "!!document.querySelector('#journey-more')",
        20,
    );
    let to = b
        .eval(&pb, "document.querySelector('#journey-to').textContent")
        .expect("to");
    assert!(to.as_str().is_some_and(|s| s.contains(NAME)), "{to}");
    let before = rt
        .block_on(bob.api.node.journey())
        .expect("journey")
        .expected_arrival;
    b.click(&pb, "#journey-more");
    let after = b.wait_for(
        &pb,
        "the new arrival",
        &format!("(async () => {{ const r = await fetch('/v1/journey'); const j = await r.json(); return j.expected_arrival > {before} ? j.expected_arrival : null; }})()"),
        20,
    );
    assert_eq!(after, json!(before + 600));
    b.click(&pb, "#journey-cancel");
    b.wait_for(
        &pb,
        "the journey ended",
        "!!document.querySelector('#journey-active .done') || !document.querySelector('#journey-form').hidden",
        20,
    );
    // The saved destination comes first next time.
    b.eval(&pb, "document.querySelector('#journey-active .done .btn') && document.querySelector('#journey-active .done .btn').click(); ''")
        .expect("new journey");
    let first = b.wait_for(
        &pb,
        "the saved destination",
        "(document.querySelector('#journey-dest-kind option') || {}).textContent",
        10,
    );
    assert_eq!(first, json!(NAME));
    // With that long name among the destinations, the form still fits.
    let wide = b
        .eval(
            &pb,
            "Math.max(document.documentElement.scrollWidth, document.querySelector('#journey-form').getBoundingClientRect().right)",
        )
        .expect("width");
    assert!(
        wide.as_f64().is_some_and(|w| w <= 360.5),
        "the journey form is {wide} px wide on a 360 px screen"
    );

    assert_no_problems(&mut b, &pb);
    alice.stop(&rt);
    bob.stop(&rt);
}

/// Issue 17: with a city basemap in its node (fetched whole from a relay
/// once: here copied where the node keeps it), the app draws the streets
/// around the person with their names, under the cells of the reports,
/// from its own node only.
#[test]
fn the_map_shows_the_streets_and_their_names() {
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    // Real OpenStreetMap streets of Kirchberg an der Iller
    // (node/tests/data/README.md); the person stands on Haydnstraße.
    let here = (48.13557, 10.06987);
    let phone = Phone::start_with(&rt, |c| {
        std::fs::create_dir_all(&c.data_dir).expect("data dir");
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kirchberg.pmtiles"),
            ronde_node::basemap::cached_path(&c.data_dir),
        )
        .expect("basemap");
        c.location = Some((here.0, here.1));
    });
    rt.block_on(async {
        phone
            .api
            .node
            .report(Category::PoorLighting, here.0, here.1, None)
            .await
            .expect("report");
    });
    let page = open_app(&mut b, &phone, here);
    b.click(&page, "#tab-map");
    b.eval(&page, "const r = document.querySelector('#radius'); r.value = '200'; r.dispatchEvent(new Event('change')); true")
        .expect("radius");
    b.wait_for(
        &page,
        "the basemap",
        "document.querySelector('#report-map').classList.contains('with-basemap')",
        20,
    );
    let labels = b.wait_for(
        &page,
        "the street names",
        "(() => { const box = document.querySelector('#report-basemap').getBoundingClientRect(); \
           const l = [...document.querySelectorAll('#report-basemap .street-label')].filter((s) => { const r = s.getBoundingClientRect(); \
           return r.width > 0 && r.height > 0 && r.left >= box.left - 40 && r.right <= box.right + 40 && r.top >= box.top && r.bottom <= box.bottom; }) \
           .map((s) => s.textContent).sort(); return l.includes('Haydnstraße') ? l : null; })()",
        30,
    );
    assert!(labels.as_array().is_some_and(|l| l.len() >= 2), "{labels}");
    assert_eq!(
        b.eval(
            &page,
            "document.querySelector('#map-attribution').textContent"
        )
        .expect("attribution"),
        json!("© OpenStreetMap contributors")
    );
    // The report's cell is drawn over the streets.
    b.wait_for(
        &page,
        "the report's cell",
        "!!document.querySelector('#report-map g.cell')",
        20,
    );

    // From the whole kilometre (no street names at that scale), the wheel
    // zooms to street level around the pointer: the map point under it
    // stays there, and the names come.
    b.eval(&page, "(() => { const r = document.querySelector('#radius'); r.value = '1000'; r.dispatchEvent(new Event('change')); return true; })()")
        .expect("radius");
    b.wait_for(
        &page,
        "the whole kilometre",
        "document.querySelector('#report-map').viewBox.baseVal.width > 2000",
        10,
    );
    let zoom = b
        .eval(
            &page,
            "(() => { const m = document.querySelector('#report-map'); const r = m.getBoundingClientRect(); \
               const x = Math.round(r.left + r.width * 0.55), y = Math.round(r.top + r.height * 0.45); \
               const a = new DOMPoint(x, y).matrixTransform(m.getScreenCTM().inverse()); const w0 = m.viewBox.baseVal.width; \
               for (let i = 0; i < 7; i++) m.dispatchEvent(new WheelEvent('wheel', { clientX: x, clientY: y, deltaY: -100, bubbles: true, cancelable: true })); \
               const back = new DOMPoint(a.x, a.y).matrixTransform(m.getScreenCTM()); \
               return JSON.stringify({ from: w0, to: m.viewBox.baseVal.width, drift: Math.hypot(back.x - x, back.y - y) }); })()",
        )
        .expect("wheel");
    let zoom: serde_json::Value = serde_json::from_str(zoom.as_str().expect("json")).expect("zoom");
    assert!(
        zoom["to"].as_f64().expect("to") < zoom["from"].as_f64().expect("from") / 4.0,
        "{zoom}"
    );
    assert!(zoom["drift"].as_f64().is_some_and(|d| d < 1.0), "{zoom}");
    b.wait_for(
        &page,
        "the street names at street level",
        "[...document.querySelectorAll('#report-basemap .street-label')].some((s) => s.textContent === 'Haydnstraße')",
        20,
    );
    if let Some(path) = std::env::var_os("RONDE_SCREENSHOT") {
        let to = PathBuf::from(path).with_file_name("phone-app-streets.png");
        let _ = std::fs::write(to, b.screenshot(&page));
    }
    assert_no_problems(&mut b, &page);
    phone.stop(&rt);
}

/// Issue 17 §2: the demo's own basemap (`crates/demo/data`, real
/// OpenStreetMap streets of central Helsinki, what `ronde demo` serves)
/// draws in the phone app with its street names, around the demo city's
/// centre by the Central Station.
#[test]
fn the_demos_basemap_shows_helsinkis_streets() {
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    let here = (60.1712, 24.9443);
    let phone = Phone::start_with(&rt, |c| {
        std::fs::create_dir_all(&c.data_dir).expect("data dir");
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../crates/demo/data/helsinki.pmtiles"
            ),
            ronde_node::basemap::cached_path(&c.data_dir),
        )
        .expect("basemap");
        c.location = Some((here.0, here.1));
    });
    let page = open_app(&mut b, &phone, here);
    b.click(&page, "#tab-map");
    b.eval(&page, "const r = document.querySelector('#radius'); r.value = '200'; r.dispatchEvent(new Event('change')); true")
        .expect("radius");
    b.wait_for(
        &page,
        "the basemap",
        "document.querySelector('#report-map').classList.contains('with-basemap')",
        20,
    );
    // Streets within about 200 m of the centre, as OpenStreetMap names them.
    let labels = b.wait_for(
        &page,
        "Helsinki's street names",
        "(() => { const known = ['Kaivokatu', 'Vilhonkatu', 'Mikonkatu', 'Kaisaniemenkatu', 'Keskuskatu', \
           'Vuorikatu', 'Yliopistonkatu', 'Aleksanterinkatu', 'Rautatientori', 'Ateneuminkuja', 'Kluuvikatu', 'Postikatu']; \
           const l = [...document.querySelectorAll('#report-basemap .street-label')].map((s) => s.textContent).sort(); \
           return l.length >= 2 && l.some((n) => known.includes(n)) ? l : null; })()",
        30,
    );
    assert!(labels.as_array().is_some_and(|l| l.len() >= 2), "{labels}");
    // Readable: no name is drawn over another.
    let overlaps = b
        .eval(
            &page,
            "(() => { const r = [...document.querySelectorAll('#report-basemap .street-label')] \
               .map((s) => [s.textContent, s.getBoundingClientRect()]); const o = []; \
               for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) { \
                 const [a, p] = r[i], [c, q] = r[j]; \
                 if (p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom) o.push(a + ' / ' + c); } \
               return o; })()",
        )
        .expect("overlaps");
    assert_eq!(overlaps, json!([]), "street labels drawn over each other");
    assert_eq!(
        b.eval(
            &page,
            "document.querySelector('#map-attribution').textContent"
        )
        .expect("attribution"),
        json!("© OpenStreetMap contributors")
    );
    if let Some(path) = std::env::var_os("RONDE_SCREENSHOT") {
        let to = PathBuf::from(path).with_file_name("phone-app-demo-streets.png");
        let _ = std::fs::write(to, b.screenshot(&page));
    }
    assert_no_problems(&mut b, &page);
    phone.stop(&rt);
}

/// Issue 18 §4: with nobody in the circle, the SOS button says so at once
/// (no countdown first) and offers the emergency numbers.
#[test]
fn an_sos_with_nobody_in_the_circle_says_so_at_once() {
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    let alone = Phone::start(&rt);
    let p = open_app(&mut b, &alone, HERE);
    b.wait_for(
        &p,
        "the circle read",
        "(async () => { const r = await fetch('/v1/contacts'); return r.ok; })()",
        10,
    );
    // Let the app read its (empty) circle.
    std::thread::sleep(Duration::from_millis(500));
    b.click(&p, "#sos-open");
    let said = b.wait_for(
        &p,
        "the empty circle said at once",
        "document.querySelector('#sos-dialog').open && !!document.querySelector('#sos-nobody') && document.querySelector('#sos-countdown-wrap').hidden",
        2,
    );
    assert_eq!(said, json!(true));
    let calls = b
        .eval(&p, "[...document.querySelectorAll('#sos-dialog .sos-calls a')].map(a => a.getAttribute('href')).join(' ')")
        .expect("calls");
    assert!(
        calls
            .as_str()
            .is_some_and(|c| c.contains("tel:17") && c.contains("tel:112")),
        "{calls}"
    );
    assert_no_problems(&mut b, &p);
    alone.stop(&rt);
}

/// Issue 18 §3 and §4: Bob's discreet SOS (held 2 s, no dialog) reaches
/// Alice, and stays pinned at the top of her inbox, in the banner too,
/// above Bob's newer journey.
#[test]
fn a_held_sos_is_sent_silently_and_stays_on_top_of_the_inbox() {
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    let alice = Phone::start(&rt);
    let bob = Phone::start(&rt);
    befriend(&rt, &alice, "Alice", &bob, "Bob");
    let pa = open_app(&mut b, &alice, HERE);
    let pb = open_app(&mut b, &bob, (HERE.0 + 0.004, HERE.1 - 0.003));

    // Alice looks at her circle (a tap lets the page vibrate on alerts).
    b.click(&pa, "#tab-circle");
    b.click(&pb, "#tab-circle");
    // A short press sends nothing.
    b.eval(
        &pb,
        "(async () => { const h = document.querySelector('#sos-hold'); h.dispatchEvent(new PointerEvent('pointerdown', {bubbles: true})); await new Promise(r => setTimeout(r, 800)); h.dispatchEvent(new PointerEvent('pointerup', {bubbles: true})); await new Promise(r => setTimeout(r, 1800)); return true; })()",
    )
    .expect("short press");
    assert!(
        rt.block_on(bob.api.node.sos_status()).is_err(),
        "a short press sent an SOS"
    );
    // Held for 2 s: sent, with no dialog.
    b.eval(
        &pb,
        "(async () => { const h = document.querySelector('#sos-hold'); h.dispatchEvent(new PointerEvent('pointerdown', {bubbles: true})); await new Promise(r => setTimeout(r, 2300)); h.dispatchEvent(new PointerEvent('pointerup', {bubbles: true})); return true; })()",
    )
    .expect("hold");
    b.wait_for(
        &pb,
        "the SOS sent",
        "document.querySelector('#sos-hold').dataset.sent === 'true'",
        20,
    );
    let dialog = b
        .eval(&pb, "document.querySelector('#sos-dialog').open")
        .expect("dialog");
    assert_eq!(dialog, json!(false), "the discreet SOS opened a dialog");

    // Then a journey: newer than the SOS at Alice's.
    let eta = bob.api.node.now() + 1200;
    rt.block_on(bob.api.node.start_journey(HERE.0 + 0.01, HERE.1, eta, 600))
        .expect("journey");
    b.wait_for(
        &pa,
        "the SOS and the journey at Alice's",
        "!!document.querySelector('#inbox-list li[data-kind=sos]') && !!document.querySelector('#inbox-list li[data-kind=journey_started]')",
        30,
    );
    let first = b
        .eval(&pa, "document.querySelector('#inbox-list li').dataset.kind")
        .expect("first");
    assert_eq!(first, json!("sos"), "the SOS is pinned at the top");
    let banner = b
        .eval(&pa, "document.querySelector('#alert-banner').textContent")
        .expect("banner");
    assert!(
        banner.as_str().is_some_and(|s| s.contains("SOS")),
        "{banner}"
    );
    assert_no_problems(&mut b, &pa);
    assert_no_problems(&mut b, &pb);
    alice.stop(&rt);
    bob.stop(&rt);
}

/// Issue 18 §7 and §8: opening hours in the person's language with "open
/// now", and switching to French changes every visible text at once: no
/// English sentence of the app's own strings is left on screen.
#[test]
fn french_everywhere_at_once_with_opening_hours() {
    use ronde_protocol::directory::{
        Directory, DirectoryKey, Location, PlaceId, PlaceKind, SafePlace,
    };
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    let city = DirectoryKey::generate(&mut rand::rngs::OsRng);
    let city_public = city.public();
    let phone = Phone::start_with(&rt, |c| c.city_keys = vec![city_public]);
    let now = phone.api.node.now();
    let place = |id: u8, name: &str, hours: &str, north: f64| SafePlace {
        id: PlaceId([id; 16]),
        name: name.into(),
        kind: PlaceKind::Pharmacy,
        location: Location::from_degrees(HERE.0 + north, HERE.1).expect("location"),
        opening_hours: hours.into(),
        contact: String::new(),
        verified_at: now,
        expires_at: now + 30 * 86_400,
        heartbeat_key: None,
        heartbeat_ttl_secs: 0,
    };
    let mut places = vec![
        place(1, "Toujours ouverte", "24/7", 0.001),
        place(2, "Jamais ouverte", "Mo-Fr off; Sa,Su off", 0.002),
    ];
    places.sort_by_key(|p| p.id);
    let signed = Directory {
        city: "Paris 13e".into(),
        serial: 1,
        issued_at: now,
        expires_at: now + 30 * 86_400,
        places,
        mediators: vec![],
        heartbeats: vec![],
        relays: vec![],
        token_keys: vec![],
    }
    .sign(&city)
    .expect("sign");
    rt.block_on(phone.api.node.set_directory(city.public(), signed))
        .expect("directory");
    let p = open_app(&mut b, &phone, HERE);
    b.eval(&p, "localStorage.setItem('ronde.lang', 'en'); ''")
        .expect("en");
    b.click(&p, "#tab-help");
    b.wait_for(
        &p,
        "the places with their hours",
        "document.querySelectorAll('#places-list .open-now, #places-list .closed-now').length === 2",
        20,
    );
    let en = b
        .eval(&p, "document.querySelector('#places-list').innerText")
        .expect("text");
    let en = en.as_str().unwrap_or_default().to_owned();
    assert!(
        en.contains("Open now") && en.contains("Every day 00:00–24:00"),
        "{en}"
    );
    assert!(en.contains("Closed now") && en.contains("closed"), "{en}");

    b.click(&p, "#lang");
    let fr = b
        .eval(&p, "document.querySelector('#places-list').innerText")
        .expect("text");
    let fr = fr.as_str().unwrap_or_default().to_owned();
    assert!(
        fr.contains("Ouvert") && fr.contains("Tous les jours"),
        "{fr}"
    );
    // Every view, in French: no English string of the app left visible.
    let leftovers = b
        .eval(
            &p,
            r#"(() => {
                const en = window.RONDE_I18N.en, fr = window.RONDE_I18N.fr;
                const english = Object.keys(en).filter((k) => typeof en[k] === 'string'
                    && !en[k].includes('{') && en[k].length >= 8 && en[k] !== fr[k]).map((k) => en[k])
                    // "Violence" is inside "Violences": not a leftover.
                    .filter((s) => !Object.values(fr).some((f) => typeof f === 'string' && f.includes(s)));
                const found = [];
                for (const view of ['map', 'report', 'journey', 'circle', 'help']) {
                    document.querySelector('#tab-' + view).click();
                    const text = document.body.innerText;
                    for (const s of english) if (text.includes(s)) found.push(view + ': ' + s);
                }
                return found.join(' | ');
            })()"#,
        )
        .expect("leftovers");
    assert_eq!(
        leftovers,
        json!(""),
        "English left after switching to French"
    );
    assert_no_problems(&mut b, &p);
    phone.stop(&rt);
}

/// Issue 18 §2 in the app: Bob's journey, while he shares it, is on
/// Alice's map (his path since the start, his destination, his last
/// position under his name) and in her circle view (state, expected
/// arrival, last position), in English then in French. Both phones share
/// one hand-driven clock so that Bob's positions follow one another.
#[test]
fn a_contacts_journey_on_the_map_and_in_the_circle() {
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let clock = ManualClock::new(now);
    let alice = Phone::start_with(&rt, |c| c.clock = Arc::new(clock.clone()));
    let bob = Phone::start_with(&rt, |c| c.clock = Arc::new(clock.clone()));
    befriend(&rt, &alice, "Alice", &bob, "Bob");
    rt.block_on(async {
        let node = &bob.api.node;
        node.set_location(HERE.0 - 0.004, HERE.1)
            .await
            .expect("location");
        node.start_journey(HERE.0 + 0.004, HERE.1 + 0.002, now + 1200, 600)
            .await
            .expect("journey");
        for step in 1..=2 {
            clock.advance(301);
            let lat = HERE.0 - 0.004 + 0.002 * f64::from(step);
            node.set_location(lat, HERE.1).await.expect("location");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let shared = alice.api.node.shared_journeys().await.expect("shared");
            if shared.journeys.first().is_some_and(|j| j.path.len() >= 2) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{shared:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let p = open_app(&mut b, &alice, HERE);
    b.eval(&p, "localStorage.setItem('ronde.lang', 'en'); ''")
        .expect("eval");
    b.click(&p, "#tab-circle");
    b.wait_for(
        &p,
        "Bob's journey card",
        "!!document.querySelector('#shared-list li[data-state=on_the_way]')",
        20,
    );
    let card = b
        .eval(&p, "document.querySelector('#shared-list li').innerText")
        .expect("text");
    let card = card.as_str().unwrap_or_default().to_owned();
    assert!(card.contains("Bob is on the way"), "{card}");
    assert!(card.contains("Last position at"), "{card}");
    b.click(&p, "#tab-map");
    b.wait_for(
        &p,
        "Bob's path on the map",
        "!!document.querySelector('#report-map g.shared polyline.shared-path') && !!document.querySelector('#report-map g.shared circle.shared-pos') && !!document.querySelector('#report-map g.shared .shared-dest')",
        20,
    );
    let name = b
        .eval(
            &p,
            "document.querySelector('#report-map g.shared .shared-name').textContent",
        )
        .expect("name");
    assert_eq!(name, json!("Bob"));

    // In French, switched from the app.
    b.click(&p, "#lang");
    b.click(&p, "#tab-circle");
    b.wait_for(
        &p,
        "the card in French",
        "(document.querySelector('#shared-list li') || {innerText: ''}).innerText.includes('Bob est en chemin')",
        20,
    );
    assert_no_problems(&mut b, &p);
    alice.stop(&rt);
    bob.stop(&rt);
}

/// Issue 18 §6 in the app: beside the QR code, a short code that Bob types
/// in "I received a code" (in French here), found at the mailbox host both
/// phones use; Alice then sees his request.
#[test]
fn a_short_code_said_out_loud_adds_the_contact() {
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    let (host, host_addr) = rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = NodeConfig::for_tests(dir.path());
        c.mailbox_host = true;
        let host = Served::start(c).await.keeping(dir);
        let addr = host
            .node
            .listen_addrs()
            .await
            .expect("addrs")
            .into_iter()
            .next()
            .expect("the host listens")
            .with_p2p(host.node.peer_id())
            .expect("p2p");
        (host, addr)
    });
    let with_host = |c: &mut NodeConfig| c.mailbox_peers = vec![host_addr.clone()];
    let alice = Phone::start_with(&rt, with_host);
    let bob = Phone::start_with(&rt, with_host);
    let pa = open_app(&mut b, &alice, HERE);
    let pb = open_app(&mut b, &bob, (HERE.0 + 0.004, HERE.1 - 0.003));

    b.click(&pa, "#tab-circle");
    fill(&mut b, &pa, "#invite-name", "Alice");
    b.click(&pa, "#invite-form button[type=submit]");
    let short = b.wait_for(
        &pa,
        "the short code",
        "(document.querySelector('#invite-short-code') || {}).textContent",
        20,
    );
    let short = short.as_str().expect("short code").to_owned();
    assert_eq!(short.len(), 11, "{short}");

    b.eval(&pb, "localStorage.setItem('ronde.lang', 'fr'); ''")
        .expect("eval");
    b.click(&pb, "#lang");
    b.click(&pb, "#tab-circle");
    fill(&mut b, &pb, "#accept-code", &short.to_lowercase());
    fill(&mut b, &pb, "#accept-name", "Bob");
    b.click(&pb, "#accept-form button[type=submit]");
    let text = b.wait_for(
        &pb,
        "Alice added at Bob's",
        "(() => { const d = document.querySelector('#accept-result .digits'); return d && d.textContent ? document.querySelector('#accept-result').innerText : ''; })()",
        40,
    );
    assert!(
        text.as_str().unwrap_or_default().contains("Alice"),
        "{text}"
    );
    b.wait_for(
        &pa,
        "Bob's request",
        "!!document.querySelector('#contact-list li.state-awaiting_my_approval')",
        30,
    );
    assert_no_problems(&mut b, &pa);
    assert_no_problems(&mut b, &pb);
    alice.stop(&rt);
    bob.stop(&rt);
    let _ = rt.block_on(host.stop());
}

/// docs/protocol.md §8.4 in the app: a cell with 25 tokened reports (and
/// one with none) shows its count and, for the tokened one, "≥ 2" people
/// under it and in its label; the untokened cell shows no bound.
#[test]
fn a_cell_with_tokened_reports_shows_a_lower_bound_on_the_people() {
    use ronde_protocol::directory::{Directory, DirectoryKey};
    use ronde_protocol::report::SigningKey;
    use ronde_protocol::token::{blind, finalize, Issuer};
    let Some(mut b) = browser() else { return };
    let rt = runtime();
    // The period of the test vectors' token key, and a time inside it.
    let period = 1_790_035_200;
    let now = period + 3_600;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/test-vectors/tokens.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("tokens.json")).expect("json");
    let der = hex::decode(v["issuer_secret_pkcs8"].as_str().expect("key")).expect("hex");
    let issuer = Issuer::from_der(period, &der).expect("issuer");
    let clock = ManualClock::new(now);
    let c = clock.clone();
    let phone = Phone::start_with(&rt, move |config| {
        config.clock = Arc::new(c);
        config.location = Some(HERE);
    });
    let city = DirectoryKey::from_bytes(&[0x21; 32]);
    let signed = Directory {
        city: "Paris".into(),
        serial: 1,
        issued_at: now - 60,
        expires_at: now + 86_400,
        places: vec![],
        mediators: vec![],
        heartbeats: vec![],
        relays: vec![],
        token_keys: vec![issuer.key().clone()],
    }
    .sign(&city)
    .expect("sign");
    rt.block_on(phone.api.node.set_directory(city.public(), signed))
        .expect("directory");
    let tokened_at = (HERE.0 + 0.002, HERE.1 + 0.002);
    for i in 0..25u8 {
        let seed = [100 + i; 32];
        let key = SigningKey::from_bytes(&seed);
        let (pending, blinded) = blind(
            issuer.key(),
            &key.verifying_key().to_bytes(),
            &mut rand::rngs::OsRng,
        )
        .expect("blind");
        let token = finalize(
            issuer.key(),
            &pending,
            &issuer.sign(&blinded).expect("sign"),
        )
        .expect("token");
        rt.block_on(phone.api.node.report_with_token(
            Category::Harassment,
            tokened_at.0,
            tokened_at.1,
            None,
            zeroize::Zeroizing::new(seed),
            token,
        ))
        .expect("tokened report");
    }
    rt.block_on(phone.api.node.report(
        Category::PoorLighting,
        HERE.0 - 0.002,
        HERE.1 - 0.002,
        None,
    ))
    .expect("report");
    let page = open_app(&mut b, &phone, HERE);
    b.wait_for(
        &page,
        "the two cells",
        "document.querySelectorAll('.cells .cell').length === 2",
        20,
    );
    let got = b
        .eval(
            &page,
            "JSON.stringify([...document.querySelectorAll('.cells .cell')].map((g) => \
             [g.dataset.count, g.dataset.minPeople, (g.querySelector('.people') || {}).textContent || '', \
             g.getAttribute('aria-label')]))",
        )
        .expect("cells");
    let cells: Vec<(String, String, String, String)> =
        serde_json::from_str(got.as_str().expect("string")).expect("json");
    let tokened = cells
        .iter()
        .find(|c| c.0 == "25")
        .expect("the tokened cell");
    assert_eq!(tokened.1, "2");
    assert_eq!(tokened.2, "\u{2265}2 people");
    assert!(tokened.3.contains("at least 2 people"), "{tokened:?}");
    let plain = cells.iter().find(|c| c.0 == "1").expect("the other cell");
    assert_eq!((plain.1.as_str(), plain.2.as_str()), ("0", ""));
    assert!(!plain.3.contains("people"), "{plain:?}");
    assert_no_problems(&mut b, &page);
    shot(&mut b, &page, "phone-app-tokens.png");
    drop(b);
    phone.stop(&rt);
}
