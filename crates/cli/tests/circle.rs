//! The trusted circle through the `ronde` binary: two `ronde node`
//! processes on loopback; an invite made with `ronde contacts invite` is
//! accepted with `ronde contacts accept` on the other, approved, then an
//! SOS sent with `ronde sos` shows in `ronde inbox` on the other, whose
//! reading acknowledges it. Plus the exit codes of bad input.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const RONDE: &str = env!("CARGO_BIN_EXE_ronde");

/// A running `ronde node`, killed on drop even if the test fails.
struct NodeProc {
    child: Child,
    /// Kept so that the node's stdout stays open.
    _lines: mpsc::Receiver<String>,
    api: String,
    data: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

impl NodeProc {
    fn start(dir: &Path) -> NodeProc {
        let stderr = dir.join("stderr.log");
        let err_file = std::fs::File::create(&stderr).expect("stderr file");
        let mut child = Command::new(RONDE)
            .args(["node", "--data-dir"])
            .arg(dir.join("data"))
            .args([
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--api",
                "127.0.0.1:0",
                "--no-mdns",
                "--at",
                "48.8156,2.3844",
            ])
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
        let deadline = Instant::now() + Duration::from_secs(30);
        let api = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.trim().strip_prefix("api: ") {
                        break url.to_owned();
                    }
                }
                Err(_) => panic!(
                    "node not ready; stderr:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                ),
            }
        };
        NodeProc {
            child,
            _lines: lines,
            api,
            data: dir.join("data"),
            stderr,
        }
    }

    fn ronde(&self, args: &[&str]) -> Output {
        Command::new(RONDE)
            .args(args)
            .args(["--api", &self.api])
            // The token is read from the environment here, from --data-dir
            // in two_nodes.rs.
            .env("RONDE_API_TOKEN", self.token())
            .stdin(Stdio::null())
            .output()
            .expect("run ronde")
    }

    /// The API token the node wrote to its data directory.
    fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("api-token"))
            .expect("the node wrote api-token")
            .trim()
            .to_owned()
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(o: &Output) -> String {
    let (out, err) = text(o);
    assert!(o.status.success(), "failed ({:?}): {out}{err}", o.status);
    out
}

/// Polls `f` every 250 ms until it returns `Ok`, or panics with `what`.
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
fn invite_accept_sos_and_inbox_between_two_nodes() {
    let (da, db) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let alice = NodeProc::start(da.path());
    let bob = NodeProc::start(db.path());

    // Alice invites: a code and a QR code of it.
    let out = ok(&alice.ronde(&["contacts", "invite", "--name", "Alice"]));
    let code = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("ronde1:"))
        .unwrap_or_else(|| panic!("no code in {out}"))
        .to_owned();
    assert!(
        out.contains('\u{2580}') || out.contains('\u{2584}'),
        "a QR code in half blocks: {out}"
    );

    // Bad input first: a mistyped code, an unknown contact.
    let mut typo: Vec<char> = code.chars().collect();
    let mid = typo.len() / 2;
    typo[mid] = if typo[mid] == 'a' { 'b' } else { 'a' };
    let typo: String = typo.into_iter().collect();
    let o = bob.ronde(&["contacts", "accept", &typo]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("typo"), "{err}");
    let o = bob.ronde(&["contacts", "accept", "hello"]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    let o = alice.ronde(&["contacts", "approve", "Nobody"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown_contact"), "{err}");
    // Nobody to alert yet.
    let o = alice.ronde(&["sos"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no_contacts"), "{err}");

    // Bob accepts; both sides show the same safety number.
    let out = ok(&bob.ronde(&["contacts", "accept", &code, "--name", "Bob"]));
    assert!(out.contains("Alice"), "{out}");
    let sn = out
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 71 && l.bytes().all(|b| b.is_ascii_digit() || b == b' '))
        .unwrap_or_else(|| panic!("no safety number in {out}"))
        .to_owned();
    let list = eventually(20, "Bob's request at Alice", || {
        let out = ok(&alice.ronde(&["contacts", "list"]));
        if out.contains("Bob") && out.contains("YOUR approval") {
            Ok(out)
        } else {
            Err(out)
        }
    });
    assert!(list.contains(&sn), "same safety number: {list}");
    let inbox = ok(&alice.ronde(&["inbox", "--no-ack"]));
    assert!(inbox.contains("Bob accepted your invite"), "{inbox}");

    // Approving shows the number in full and needs a "they match": with no
    // terminal to answer, only --yes (after comparing) approves.
    let o = alice.ronde(&["contacts", "approve", "Bob"]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out} {err}");
    assert!(err.contains("--yes"), "{err}");
    assert!(out.contains(&sn[..35]) && out.contains(&sn[36..]), "{out}");
    let list = ok(&alice.ronde(&["contacts", "list"]));
    assert!(list.contains("YOUR approval"), "not approved: {list}");
    ok(&alice.ronde(&["contacts", "approve", "Bob", "--yes"]));
    eventually(20, "Alice in Bob's circle", || {
        let out = ok(&bob.ronde(&["contacts", "list"]));
        if out.contains("Alice  (in your circle)") {
            Ok(())
        } else {
            Err(out)
        }
    });

    // The SOS.
    let out = ok(&alice.ronde(&["sos", "--note", "at the station"]));
    assert!(out.contains("SOS sent to 1 contact (Bob)"), "{out}");
    let o = alice.ronde(&["sos"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "one SOS at a time: {:?}",
        text(&o)
    );
    let inbox = eventually(20, "the SOS in Bob's inbox", || {
        let out = ok(&bob.ronde(&["inbox"]));
        if out.contains("SOS from Alice") {
            Ok(out)
        } else {
            Err(out)
        }
    });
    assert!(inbox.contains("\"at the station\""), "{inbox}");
    assert!(inbox.contains("ALERT"), "{inbox}");
    assert!(inbox.contains("48.8"), "the location: {inbox}");
    assert!(inbox.contains("1 alert acknowledged"), "{inbox}");
    // Reading it told Alice.
    eventually(20, "Bob's ack at Alice", || {
        let out = ok(&alice.ronde(&["sos", "status"]));
        if out.contains("Bob  seen it") {
            Ok(())
        } else {
            Err(out)
        }
    });
    ok(&alice.ronde(&["sos", "cancel"]));

    // A journey, refused twice, then arrived.
    let out = ok(&alice.ronde(&["journey", "start", "--to", "48.82,2.39", "--eta", "25m"]));
    assert!(
        out.contains("Journey started") && out.contains("1 contact"),
        "{out}"
    );
    let o = alice.ronde(&["journey", "start", "--to", "48.82,2.39", "--eta", "25m"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("already under way"), "{err}");
    let o = alice.ronde(&["journey", "start", "--to", "48.82,2.39", "--eta", "soon"]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    let out = ok(&alice.ronde(&["journey", "arrived"]));
    assert!(out.contains("arrived"), "{out}");
    eventually(20, "the journey in Bob's inbox", || {
        let out = ok(&bob.ronde(&["inbox", "--no-ack"]));
        if out.contains("Alice started a journey") && out.contains("Alice arrived") {
            Ok(())
        } else {
            Err(out)
        }
    });

    // A named destination and more time.
    let out = ok(&alice.ronde(&[
        "journey",
        "start",
        "--to",
        "48.82,2.39",
        "--eta",
        "25m",
        "--name",
        "Home",
    ]));
    assert!(out.contains("to           Home ("), "{out}");
    let out = ok(&alice.ronde(&["journey", "extend", "--by", "10m"]));
    assert!(out.contains("More time"), "{out}");
    ok(&alice.ronde(&["journey", "arrived"]));

    // Codes: with the duress code the CLI prints what it prints with the
    // code, while Bob is alerted.
    ok(&alice.ronde(&["codes", "set", "--code", "2468", "--duress-code", "1357"]));
    ok(&alice.ronde(&["journey", "start", "--to", "48.82,2.39", "--eta", "25m"]));
    let o = alice.ronde(&["journey", "cancel"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("code"), "{err}");
    let shown = ok(&alice.ronde(&["journey", "cancel", "--code", "1357"]));
    assert!(
        shown.contains("Journey cancelled: your circle is told."),
        "{shown}"
    );
    assert!(
        shown.contains("cancelled") && !shown.contains("under way"),
        "{shown}"
    );
    eventually(20, "the duress alert in Bob's inbox", || {
        let out = ok(&bob.ronde(&["inbox", "--no-ack"]));
        if out.contains("Alice CANCELLED UNDER DURESS") {
            Ok(())
        } else {
            Err(out)
        }
    });
    let real = ok(&alice.ronde(&["journey", "cancel", "--code", "2468"]));
    assert_eq!(
        real, shown,
        "the real code and the duress code print the same"
    );
    ok(&alice.ronde(&["codes", "clear", "--code", "2468"]));

    // Nothing in the logs names the note, or the duress.
    for node in [&alice, &bob] {
        assert!(!node.stderr_text().contains("at the station"));
        assert!(!node.stderr_text().to_lowercase().contains("duress"));
    }
}
