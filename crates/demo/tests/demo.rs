//! `ronde demo` in-process: a 12-phone city for 40 seconds, on free ports.
//! While it runs, the dashboard answers with the operator token (and only
//! with it) and publishes aggregated reports; Camille's app is served, her
//! node lists nearby reports, and her inbox holds Malik's overdue alert and
//! Léa's SOS; Sofiane's acknowledgement reaches Léa. Then the demo stops by
//! itself, cleanly, and its temporary directory is gone. The narrative
//! never prints a coordinate.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ronde_demo::{Demo, DemoArgs, Narrator};

/// How long the demo runs.
const RUN: Duration = Duration::from_secs(40);

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            (status, res.text().await.unwrap_or_default())
        }
        Err(e) => panic!("GET {url}: {e}"),
    }
}

async fn get_json(url: &str, token: Option<&str>) -> serde_json::Value {
    let (status, body) = get(url, token).await;
    assert_eq!(status, 200, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"))
}

/// Poll `f` every 250 ms until it returns `Some`, or panic at `deadline`
/// with the narrative so far.
async fn eventually<T, F, Fut>(
    what: &str,
    n: &Narrator,
    deadline: tokio::time::Instant,
    mut f: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}; the narrative:\n{}",
                n.lines().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn inbox_has(inbox: &serde_json::Value, kind: &str, from: &str) -> bool {
    inbox["items"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|i| i["kind"] == kind && i["from_name"] == from && i["alert"] == true)
    })
}

/// Whether a line holds something like a coordinate (`48.8156`).
fn has_coordinate(line: &str) -> bool {
    let b = line.as_bytes();
    b.windows(5).any(|w| {
        w[0].is_ascii_digit()
            && w[1] == b'.'
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit()
            && w[4].is_ascii_digit()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_city_runs_shows_everything_and_stops_cleanly() {
    // `RUST_LOG=ronde_demo=debug cargo test -p ronde-demo` shows the logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let args = DemoArgs {
        phones: 12,
        seed: 3,
        dashboard: "127.0.0.1:0".parse().expect("addr"),
        app: "127.0.0.1:0".parse().expect("addr"),
        speed: 60,
        duration: Some(RUN),
        tiles: String::new(),
        ..DemoArgs::default()
    };
    let narrator = Narrator::keep();
    let demo = Demo::start(&args, narrator.clone())
        .await
        .expect("the demo starts");
    let urls = demo.urls().clone();
    let data_dir = demo.data_dir().to_owned();
    let stats = demo.stats().clone();
    assert!(data_dir.exists());
    let started = tokio::time::Instant::now();
    let deadline = started + RUN - Duration::from_secs(2);
    let run = tokio::spawn(demo.run(std::future::pending()));

    // The banner gives both URLs and the token.
    let lines = narrator.lines();
    assert!(lines
        .iter()
        .any(|l| l.contains(&format!("{}/login", urls.dashboard))));
    assert!(lines.iter().any(|l| l.contains(&urls.token)));
    assert!(lines.iter().any(|l| l.contains(&urls.app_login)));
    // The demo's own streets: the banner says whose, and Camille's phone
    // fetched them whole from the relay.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Street map       central Helsinki")
                && l.contains("© OpenStreetMap contributors")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Camille's phone keeps the city's streets")),
        "{lines:#?}"
    );
    assert!(urls
        .app_login
        .starts_with(&format!("{}/login?code=", urls.app)));

    // The dashboard: the login page is open, the API needs the token.
    let (status, page) = get(&format!("{}/login", urls.dashboard), None).await;
    assert_eq!(status, 200);
    assert!(page.contains("<form"), "{page}");
    let (status, _) = get(&format!("{}/api/cells", urls.dashboard), None).await;
    assert_eq!(status, 401, "no token, no data");
    let (status, _) = get(
        &format!("{}/api/cells", urls.dashboard),
        Some("wrong-token-0123456789"),
    )
    .await;
    assert_eq!(status, 401);
    let config = get_json(&format!("{}/api/config", urls.dashboard), Some(&urls.token)).await;
    assert_eq!(config["city"], "Helsinki (demo)");

    // It fills in: published (k-suppressed) cells of today's aggregates,
    // and the live ones.
    let cells = eventually(
        "aggregated reports on the dashboard",
        &narrator,
        deadline,
        || async {
            let v = get_json(&format!("{}/api/cells", urls.dashboard), Some(&urls.token)).await;
            let cells = v["cells"].as_array().cloned().unwrap_or_default();
            (!cells.is_empty()).then_some(cells)
        },
    )
    .await;
    let k = config["k"].as_u64().expect("k");
    assert!(cells
        .iter()
        .all(|c| c["total"].as_u64().is_some_and(|t| t >= k)));
    // The whole warm-up (12 reports) is counted.
    eventually(
        "the warm-up counted by the relay",
        &narrator,
        deadline,
        || async {
            let v = get_json(&format!("{}/api/status", urls.dashboard), Some(&urls.token)).await;
            (v["reports_acknowledged"].as_u64()? >= 12).then_some(())
        },
    )
    .await;
    let live = get_json(&format!("{}/api/live", urls.dashboard), Some(&urls.token)).await;
    assert!(
        !live["cells"].as_array().expect("cells").is_empty(),
        "{live}"
    );

    // The directory: places (one going stale) and mediators.
    let places = get_json(&format!("{}/api/places", urls.dashboard), Some(&urls.token)).await;
    let places = places.as_array().expect("places");
    assert_eq!(places.len(), 5);
    let stale: Vec<_> = places
        .iter()
        .filter(|p| p["freshness"]["status"] == "stale")
        .collect();
    assert_eq!(stale.len(), 1, "{places:?}");
    assert!(
        places
            .iter()
            .filter(|p| p["freshness"]["status"] == "fresh")
            .count()
            == 4
    );
    let mediators = get_json(
        &format!("{}/api/mediators", urls.dashboard),
        Some(&urls.token),
    )
    .await;
    assert_eq!(mediators.as_array().expect("mediators").len(), 2);
    let public = urls.public.clone().expect("public endpoints");
    let (status, _) = get(&format!("{public}/directory"), None).await;
    assert_eq!(status, 200);

    // Camille's app and API: the app opens without a credential, her API
    // needs her token (or the cookie of the login link).
    let (status, page) = get(&format!("{}/", urls.app), None).await;
    assert_eq!(status, 200);
    assert!(page.contains("<html") && page.contains("app.js"), "{page}");
    let (status, _) = get(&format!("{}/v1/inbox", urls.app), None).await;
    assert_eq!(status, 401, "no token, no inbox");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = browser.get(&urls.app_login).send().await.expect("login");
    assert_eq!(login.status().as_u16(), 303);
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let status = browser
        .get(format!("{}/v1/contacts", urls.app))
        .header("cookie", cookie)
        .send()
        .await
        .expect("contacts")
        .status();
    assert_eq!(status.as_u16(), 200);
    let nearby = eventually(
        "nearby reports at Camille's phone",
        &narrator,
        deadline,
        || async {
            let v = get_json(
                &format!(
                    "{}/v1/reports?lat=60.1712&lon=24.9443&radius_m=5000",
                    urls.app
                ),
                Some(&urls.app_token),
            )
            .await;
            let n = v["reports"].as_array().map_or(0, |r| r.len());
            (n > 0).then_some(n)
        },
    )
    .await;
    assert!(nearby > 0);

    // The signed directory reached Camille's phone over libp2p.
    let places = eventually(
        "the directory at Camille's phone",
        &narrator,
        deadline,
        || async {
            let v = get_json(
                &format!("{}/v1/safe-places?lat=60.1712&lon=24.9443", urls.app),
                Some(&urls.app_token),
            )
            .await;
            let places = v["places"].as_array().cloned().unwrap_or_default();
            (!places.is_empty()).then_some(places)
        },
    )
    .await;
    assert_eq!(places.len(), 5, "{places:?}");
    assert_eq!(
        places
            .iter()
            .filter(|p| p["freshness"]["status"] == "stale")
            .count(),
        1
    );
    let dir = get_json(&format!("{}/v1/directory", urls.app), Some(&urls.app_token)).await;
    assert_eq!(dir["directory"]["city"], "Helsinki (demo)", "{dir}");
    assert_eq!(
        dir["directory"]["mediators"].as_array().map(|m| m.len()),
        Some(2),
        "{dir}"
    );

    // The circle story, through Camille's inbox.
    eventually(
        "Malik's overdue alert in Camille's inbox",
        &narrator,
        deadline,
        || async {
            let inbox = get_json(&format!("{}/v1/inbox", urls.app), Some(&urls.app_token)).await;
            inbox_has(&inbox, "overdue", "Malik").then_some(())
        },
    )
    .await;
    let inbox = get_json(&format!("{}/v1/inbox", urls.app), Some(&urls.app_token)).await;
    assert!(inbox_has(&inbox, "sos", "Léa"), "{inbox}");
    let arrived = inbox["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|i| i["kind"] == "arrived" && i["from_name"] == "Inès");
    assert!(arrived, "Inès's arrival: {inbox}");
    // Inès arrived, so no overdue alert about her.
    assert!(!inbox_has(&inbox, "overdue", "Inès"), "{inbox}");
    let contacts = get_json(&format!("{}/v1/contacts", urls.app), Some(&urls.app_token)).await;
    assert_eq!(contacts["contacts"].as_array().expect("contacts").len(), 3);
    eventually(
        "Sofiane's ack to reach Léa",
        &narrator,
        deadline,
        || async {
            stats
                .progress
                .sos_acked
                .load(Ordering::Relaxed)
                .then_some(())
        },
    )
    .await;

    // It stops by itself, cleanly, and leaves nothing behind.
    let summary = tokio::time::timeout(RUN + Duration::from_secs(30), run)
        .await
        .expect("the demo stops in time")
        .expect("the run task")
        .expect("a clean stop");
    assert!(started.elapsed() >= RUN - Duration::from_secs(1));
    assert!(summary.kept.is_none());
    assert!(summary.reports >= 12, "{summary:?}");
    assert!(summary.counted >= 12, "{summary:?}");
    assert!(!data_dir.exists(), "the temporary data are removed");
    assert!(
        reqwest::get(format!("{}/", urls.app)).await.is_err(),
        "the app's port is closed"
    );

    let lines = narrator.lines();
    for needle in [
        "Camille's phone: ALERT, Malik is overdue",
        "Camille's phone: ALERT, SOS from Léa",
        "Léa's phone: Sofiane has seen her SOS",
        "Camille's phone: Inès arrived safely",
        "warm-up",
        "relay stopped and flushed",
        "temporary data removed",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(needle)),
            "no line with {needle:?}:\n{}",
            lines.join("\n")
        );
    }
    // Only the banner's hint about where the centre is holds a coordinate.
    let coords: Vec<_> = lines
        .iter()
        .filter(|l| has_coordinate(l) && !l.contains("where am I"))
        .collect();
    assert!(coords.is_empty(), "{coords:?}");
    // The SOS note is never printed.
    assert!(!lines.iter().any(|l| l.contains("following me")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_a_full_data_dir_and_a_busy_port_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    std::fs::write(dir.join("precious.txt"), "keep me").expect("write");
    let args = DemoArgs {
        data_dir: Some(dir.clone()),
        dashboard: "127.0.0.1:0".parse().expect("addr"),
        app: "127.0.0.1:0".parse().expect("addr"),
        ..DemoArgs::default()
    };
    let err = match Demo::start(&args, Narrator::keep()).await {
        Ok(_) => panic!("a non-empty --data-dir was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("precious.txt")).expect("still there"),
        "keep me"
    );
    let bad = DemoArgs {
        phones: 3,
        ..DemoArgs::default()
    };
    let err = match Demo::start(&bad, Narrator::keep()).await {
        Ok(_) => panic!("3 phones were accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("--phones"), "{err}");
    let bad = DemoArgs {
        basemap: Some(dir.join("no-such.pmtiles")),
        ..DemoArgs::default()
    };
    let err = match Demo::start(&bad, Narrator::keep()).await {
        Ok(_) => panic!("a missing --basemap was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("--basemap"), "{err}");
    // A dashboard port in use: said so, with the way out.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = DemoArgs {
        dashboard: taken.local_addr().expect("addr"),
        app: "127.0.0.1:0".parse().expect("addr"),
        ..DemoArgs::default()
    };
    let err = match Demo::start(&busy, Narrator::keep()).await {
        Ok(_) => panic!("a busy dashboard port was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("--dashboard 127.0.0.1:0"), "{err}");
}

/// `--basemap`: the relay serves that file instead of the demo's own,
/// Camille's phone fetched it whole at the start and keeps it; the banner
/// does not claim Helsinki's streets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basemap_given_reaches_camilles_phone_whole() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../node/tests/data/kirchberg.pmtiles"
    );
    let bytes = std::fs::read(fixture).expect("the tests' basemap");
    let args = DemoArgs {
        phones: ronde_demo::demo::MIN_PHONES,
        seed: 4,
        dashboard: "127.0.0.1:0".parse().expect("addr"),
        app: "127.0.0.1:0".parse().expect("addr"),
        speed: 60,
        duration: Some(Duration::from_secs(20)),
        tiles: String::new(),
        basemap: Some(fixture.into()),
        ..DemoArgs::default()
    };
    let narrator = Narrator::keep();
    let demo = Demo::start(&args, narrator.clone())
        .await
        .expect("the demo starts");
    let urls = demo.urls().clone();
    let lines = narrator.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Camille's phone keeps the city's streets")),
        "{lines:#?}"
    );
    assert!(!lines
        .iter()
        .any(|l| l.contains("Street map       central Helsinki")));
    let state = get_json(&format!("{}/v1/basemap", urls.app), Some(&urls.app_token)).await;
    assert_eq!(state["cached"], true);
    assert_eq!(state["bytes"], bytes.len());
    let client = reqwest::Client::new();
    let got = client
        .get(format!("{}/basemap.pmtiles", urls.dashboard))
        .bearer_auth(&urls.token)
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(got.as_ref(), bytes.as_slice());
    demo.run(std::future::ready(()))
        .await
        .expect("the demo stops");
}
