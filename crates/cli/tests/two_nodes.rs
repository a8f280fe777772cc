//! End to end through the `ronde` binary: two `ronde node` processes on
//! loopback, the second bootstrapping from the first; a report sent at one
//! shows in `ronde nearby` at the other. Plus exit codes of bad input.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const RONDE: &str = env!("CARGO_BIN_EXE_ronde");
const AT: &str = "48.8156,2.3844";

/// A running `ronde node`, killed on drop even if the test fails.
struct NodeProc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: PathBuf,
    api: String,
    /// Its data directory, where it writes the API token.
    data: String,
    addrs: Vec<String>,
}

impl NodeProc {
    fn start(dir: &Path, extra: &[&str]) -> NodeProc {
        NodeProc::start_in(dir, &dir.join("data"), extra, None)
    }

    /// A node with its data in `data` (relative to `home`, when given,
    /// which is then its working directory and `$HOME`).
    fn start_in(dir: &Path, data: &Path, extra: &[&str], home: Option<&Path>) -> NodeProc {
        let stderr = dir.join("stderr.log");
        let err_file = std::fs::File::create(&stderr).expect("stderr file");
        let mut args = vec![
            "node".to_owned(),
            "--data-dir".to_owned(),
            data.display().to_string(),
            "--listen".to_owned(),
            "/ip4/127.0.0.1/tcp/0".to_owned(),
            "--api".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--no-mdns".to_owned(),
            "--pow-difficulty".to_owned(),
            "8".to_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cmd = Command::new(RONDE);
        if let Some(h) = home {
            cmd.current_dir(h)
                .env("HOME", h)
                .env_remove("XDG_DATA_HOME");
        }
        let mut child = cmd
            .args(&args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err_file))
            .spawn()
            .expect("spawn ronde node");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut node = NodeProc {
            child,
            lines,
            seen: Vec::new(),
            stderr,
            api: String::new(),
            data: data.display().to_string(),
            addrs: Vec::new(),
        };
        node.wait_until_ready();
        node
    }

    /// Reads stdout until the API line, collecting the multiaddrs.
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.api.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let t = line.trim();
                    if t.starts_with('/') {
                        self.addrs.push(t.to_owned());
                    } else if let Some(url) = t.strip_prefix("api: ") {
                        self.api = url.to_owned();
                    }
                    self.seen.push(line);
                }
                Err(_) => panic!(
                    "node not ready: stdout {:?}\nstderr:\n{}",
                    self.seen,
                    self.stderr_text()
                ),
            }
        }
        assert!(
            !self.addrs.is_empty(),
            "no listen address printed: {:?}",
            self.seen
        );
        assert!(
            self.addrs.iter().all(|a| a.contains("/p2p/12D3")),
            "{:?}",
            self.addrs
        );
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit; returns the rest of stdout.
    fn terminate(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let rest: Vec<String> = self.lines.try_iter().collect();
                return (status, rest);
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM; stderr:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ronde(args: &[&str]) -> Output {
    Command::new(RONDE)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ronde")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Polls `f` every 250 ms until it returns `Some`, or panics with `what`.
fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what} within {secs} s; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

#[test]
fn a_report_at_one_node_shows_at_the_other() {
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let a = NodeProc::start(dir_a.path(), &["--at", AT]);
    let mut b = NodeProc::start(dir_b.path(), &["--at", AT, "--bootstrap", &a.addrs[0]]);

    // A second node on the same data directory is refused: exit code 3.
    let dir_c = tempfile::tempdir().expect("tempdir");
    let locked = Command::new(RONDE)
        .args(["node", "--data-dir"])
        .arg(dir_a.path().join("data"))
        .args([
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
            "--no-mdns",
        ])
        .current_dir(dir_c.path())
        .stdin(Stdio::null())
        .output()
        .expect("run ronde node");
    let (_, err) = text(&locked);
    assert_eq!(locked.status.code(), Some(3), "locked data dir: {err}");
    assert!(err.contains("in use"), "{err}");

    // The two nodes find each other.
    eventually(30, "the nodes connect", || {
        let o = ronde(&["status", "--api", &b.api, "--data-dir", &b.data]);
        let (out, err) = text(&o);
        if o.status.success() && out.contains("connected peers  1") {
            Ok(())
        } else {
            Err(format!("{out}{err}"))
        }
    });

    let sent = ronde(&[
        "report",
        "--api",
        &a.api,
        "--data-dir",
        &a.data,
        "--category",
        "harassment",
        "--at",
        AT,
    ]);
    let (out, err) = text(&sent);
    assert!(sent.status.success(), "report failed: {out}{err}");
    assert!(
        out.contains("harassment") && out.contains("no identity"),
        "{out}"
    );
    let id = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("id").map(|s| s.trim().to_owned()))
        .expect("the id is printed");
    assert_eq!(id.len(), 64, "{out}");
    let cell = out
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("cell")
                .map(|s| s.split_whitespace().next().unwrap_or("").to_owned())
        })
        .expect("the cell is printed");
    assert_eq!(cell.len(), 7, "{out}");

    let table = eventually(30, "the report shows at the other node", || {
        let o = ronde(&[
            "nearby",
            "--api",
            &b.api,
            "--data-dir",
            &b.data,
            "--at",
            AT,
            "--radius",
            "1000",
        ]);
        let (out, err) = text(&o);
        if o.status.success() && out.contains("harassment") {
            Ok(out)
        } else {
            Err(format!("{out}{err}"))
        }
    });
    assert!(table.contains(&cell), "{table}");
    assert!(
        table.contains("CATEGORY") && table.contains("EXPIRES IN"),
        "{table}"
    );
    assert!(table.contains("Reports per cell"), "{table}");

    // Without --at, `nearby` looks around the node's own area.
    let o = ronde(&["nearby", "--api", &b.api, "--data-dir", &b.data]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("harassment"), "{out}");

    // SIGTERM stops a node cleanly.
    let (status, rest) = b.terminate();
    assert!(
        status.success(),
        "exit after SIGTERM: {status}; stderr:\n{}",
        b.stderr_text()
    );
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    drop(a);
}

/// The README's quick start as written: `ronde node --data-dir
/// ./ronde-data`, then `ronde report` without --data-dir from the same
/// directory, finds the token by itself; without it, or with a wrong one,
/// the node refuses and the CLI says where it looked.
#[test]
fn the_quick_start_finds_the_api_token_by_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let mut node = NodeProc::start_in(
        dir.path(),
        Path::new("./ronde-data"),
        &["--at", AT],
        Some(&home),
    );
    let token_file = home.join("ronde-data").join("api-token");
    assert!(token_file.exists(), "{:?}", node.seen);
    let app = loop {
        match node.lines.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.starts_with("app: ") => break line,
            Ok(line) => node.seen.push(line),
            Err(_) => panic!("no app line: {:?}", node.seen),
        }
    };
    assert!(
        app.contains("/login?code="),
        "the login URL is printed: {app}"
    );
    let client = |cwd: &Path, env: &[(&str, &str)]| {
        let mut cmd = Command::new(RONDE);
        cmd.current_dir(cwd)
            .env("HOME", &home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("RONDE_API_TOKEN")
            .env_remove("RONDE_DATA_DIR")
            .args([
                "report",
                "--category",
                "poor_lighting",
                "--at",
                AT,
                "--api",
                &node.api,
            ])
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run ronde")
    };
    let o = client(&home, &[]);
    assert!(
        o.status.success(),
        "the quick start's report: {:?}",
        text(&o)
    );

    // Elsewhere, with no token to find: refused, and the CLI says why.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("dir");
    let o = client(&elsewhere, &[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unauthorized") && err.contains("no token found"),
        "{err}"
    );
    assert!(err.contains("RONDE_API_TOKEN"), "{err}");
    let o = client(&elsewhere, &[("RONDE_API_TOKEN", "0123abcd")]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    let token = std::fs::read_to_string(&token_file).expect("token");
    let o = client(&elsewhere, &[("RONDE_API_TOKEN", token.trim())]);
    assert!(o.status.success(), "{:?}", text(&o));

    // `ronde app` prints a new login link of the app, which opens it once.
    let o = Command::new(RONDE)
        .current_dir(&home)
        .env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("RONDE_API_TOKEN")
        .env_remove("RONDE_DATA_DIR")
        .args(["app", "--api", &node.api])
        .output()
        .expect("ronde app");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    let link = out.trim();
    assert!(
        link.starts_with(&format!("{}/login?code=", node.api)),
        "{link}"
    );
    let statuses = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            let first = http.get(link).send().await.expect("login").status();
            let again = http.get(link).send().await.expect("login").status();
            (first.as_u16(), again.as_u16())
        });
    assert_eq!(statuses, (303, 401), "the link opens the app once");

    // A clean stop removes the token, which is worth nothing any more.
    let (status, _) = node.terminate();
    assert!(status.success());
    assert!(!token_file.exists());
}

#[test]
fn nearby_without_a_location_says_one_is_needed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(dir.path(), &[]);
    let o = ronde(&["nearby", "--api", &node.api, "--data-dir", &node.data]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains("location is needed") && err.contains("--at"),
        "{err}"
    );

    // Reporting needs no location on the node.
    let o = ronde(&[
        "report",
        "--api",
        &node.api,
        "--data-dir",
        &node.data,
        "--category",
        "harassment",
        "--at",
        "0,0",
        "--precision",
        "6",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
}

#[test]
fn bad_input_exit_codes() {
    // Unknown category: usage error (2), and the valid ones are listed.
    let o = ronde(&["report", "--category", "theft", "--at", AT]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for name in [
        "feeling_unsafe",
        "harassment",
        "poor_lighting",
        "other_hazard",
    ] {
        assert!(err.contains(name), "{err}");
    }

    // A bad --at: usage error naming the expected form.
    let o = ronde(&["report", "--category", "harassment", "--at", "48.8156"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("LAT,LON"), "{err}");
    let o = ronde(&["nearby", "--at", "95,2"]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    let o = ronde(&[
        "report",
        "--category",
        "harassment",
        "--at",
        AT,
        "--precision",
        "8",
    ]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));

    // No node there: 4, with a hint.
    let o = ronde(&["status", "--api", "http://127.0.0.1:9"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("ronde node"), "{err}");

    // Help and version work.
    let o = ronde(&["--help"]);
    let (out, _) = text(&o);
    assert!(
        o.status.success() && out.contains("Exit codes") && out.contains("nearby"),
        "{out}"
    );
    let o = ronde(&["--version"]);
    assert!(
        o.status.success() && text(&o).0.starts_with("ronde "),
        "{:?}",
        text(&o)
    );
}

/// `ronde basemap`: none at first (said how to fetch one), then fetched
/// whole from a relay's URL (here a one-shot HTTP server serving the
/// tests' real-streets extract) and kept by the node.
#[test]
fn a_node_fetches_the_city_basemap_whole() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(dir.path(), &[]);
    let o = ronde(&["basemap", "--api", &node.api, "--data-dir", &node.data]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("No city basemap") && out.contains("--fetch"),
        "{out}"
    );

    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../node/tests/data/kirchberg.pmtiles"
    ))
    .expect("the tests' basemap");
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/basemap.pmtiles",
        server.local_addr().expect("addr")
    );
    let body = bytes.clone();
    let serving = std::thread::spawn(move || {
        let (mut s, _) = server.accept().expect("accept");
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.pmtiles\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("head");
        s.write_all(&body).expect("body");
    });
    let o = ronde(&[
        "basemap",
        "--api",
        &node.api,
        "--data-dir",
        &node.data,
        "--fetch",
        &url,
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("kept on this node: 3 kB"), "{out}");
    serving.join().expect("server");
    let o = ronde(&["basemap", "--api", &node.api, "--data-dir", &node.data]);
    let (out, _) = text(&o);
    assert!(
        out.contains("City basemap kept on this node: 3 kB."),
        "{out}"
    );
}
