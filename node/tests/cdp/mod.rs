//! A small Chrome DevTools Protocol client for the browser tests, over
//! `--remote-debugging-pipe` (file descriptors 3 and 4, messages separated
//! by NUL bytes): no WebSocket, no npm, nothing but the Debian `chromium`
//! package.
//!
//! The browser is found at `$RONDE_CHROMIUM`, else `/usr/bin/chromium`,
//! `/usr/bin/chromium-browser` or `/usr/bin/google-chrome`. It runs headless
//! with a fresh profile in a temporary directory and is killed on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one protocol call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary to drive, if one is installed.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RONDE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// A headless Chromium driven over a pipe.
pub struct Browser {
    child: Child,
    to_browser: ChildStdin,
    from_browser: mpsc::Receiver<Value>,
    next_id: u64,
    /// Events received so far (console messages, exceptions, log entries…).
    pub events: Vec<Value>,
    log: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start Chromium at `path`, headless, with a fresh profile.
    pub fn launch(path: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let log = profile.path().join("chromium.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        // The shell gives Chromium the pipe on fds 3 (commands in) and 4
        // (answers out), and sends its own stdout to the log.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2"#)
            .arg(path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                // WebGL in software, for the maps (MapLibre).
                "--enable-unsafe-swiftshader",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--mute-audio",
                "--hide-scrollbars",
                "--password-store=basic",
                "--lang=en-US",
                "--accept-lang=en-US,en",
                "--window-size=390,844",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("chromium starts");
        let to_browser = child.stdin.take().expect("pipe in");
        let from = child.stdout.take().expect("pipe out");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from);
            loop {
                let mut buf = Vec::new();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                            if tx.send(v).is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        Browser {
            child,
            to_browser,
            from_browser: rx,
            next_id: 0,
            events: Vec::new(),
            log,
            _profile: profile,
        }
    }

    /// What Chromium printed, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Call `method` (on the page of `session`, or on the browser), and
    /// return its result or the protocol's error.
    pub fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .and_then(|_| self.to_browser.flush())
            .map_err(|e| format!("{method}: the browser is gone ({e}); log:\n{}", self.log()))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .from_browser
                .recv_timeout(left)
                .map_err(|e| format!("{method}: no answer ({e}); log:\n{}", self.log()))?;
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = v.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(v.get("result").cloned().unwrap_or(Value::Null));
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    /// Read the events that arrived while nothing was called.
    pub fn drain_events(&mut self) {
        while let Ok(v) = self.from_browser.try_recv() {
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    /// Open a new tab and attach to it.
    pub fn new_page(&mut self) -> Page {
        let created = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .expect("new tab");
        let target = created["targetId"].as_str().expect("target id").to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
            )
            .expect("attach");
        let session = attached["sessionId"]
            .as_str()
            .expect("session id")
            .to_owned();
        let page = Page { session };
        for m in ["Page.enable", "Runtime.enable", "Log.enable"] {
            self.call(Some(&page.session), m, json!({})).expect(m);
        }
        page
    }

    /// Problems the page of `page` reported: uncaught exceptions, console
    /// errors, and log entries of level error (CSP violations among them)
    /// other than failed network requests.
    pub fn problems(&mut self, page: &Page) -> Vec<String> {
        self.drain_events();
        let mut out = Vec::new();
        for e in &self.events {
            if e.get("sessionId").and_then(Value::as_str) != Some(page.session.as_str()) {
                continue;
            }
            let params = &e["params"];
            match e["method"].as_str().unwrap_or("") {
                "Runtime.exceptionThrown" => out.push(format!(
                    "exception: {}",
                    params["exceptionDetails"]["exception"]["description"]
                        .as_str()
                        .or(params["exceptionDetails"]["text"].as_str())
                        .unwrap_or("?")
                )),
                "Runtime.consoleAPICalled" if params["type"] == "error" => {
                    out.push(format!("console.error: {}", params["args"]))
                }
                // Network errors are left to the tests (a 404 can be an
                // answer, e.g. `no_journey`); CSP violations and script
                // errors are not.
                "Log.entryAdded"
                    if params["entry"]["level"] == "error"
                        && params["entry"]["source"] != "network" =>
                {
                    let text = params["entry"]["text"].as_str().unwrap_or("?");
                    let url = params["entry"]["url"].as_str().unwrap_or("");
                    out.push(format!("log: {text} {url}"))
                }
                _ => {}
            }
        }
        out
    }

    /// Evaluate `expr` in the page (awaiting a promise) and return its value.
    pub fn eval(&mut self, page: &Page, expr: &str) -> Result<Value, String> {
        let r = self.call(
            Some(&page.session),
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!(
                "{expr}: {}",
                ex["exception"]["description"]
                    .as_str()
                    .or(ex["text"].as_str())
                    .unwrap_or("exception")
            ));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Poll `expr` until it is truthy (its value), or fail after `secs`.
    pub fn wait_for(&mut self, page: &Page, what: &str, expr: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last: Value;
        loop {
            match self.eval(page, expr) {
                Ok(v) if truthy(&v) => return v,
                Ok(v) => last = v,
                Err(e) => last = json!(e),
            }
            if Instant::now() > deadline {
                let problems = self.problems(page);
                panic!("timed out waiting for {what}: last {last}; page problems: {problems:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Click the element of `selector` with the mouse, in its middle, after
    /// scrolling it into view. Fails if something else covers that point.
    pub fn click(&mut self, page: &Page, selector: &str) {
        let sel = serde_json::to_string(selector).expect("selector");
        let at = self
            .eval(
                page,
                &format!(
                    r#"(() => {{
                        const e = document.querySelector({sel});
                        if (!e) return 'missing';
                        e.scrollIntoView({{ block: 'center', inline: 'center' }});
                        const r = e.getBoundingClientRect();
                        if (r.width < 1 || r.height < 1) return 'invisible';
                        const x = r.left + r.width / 2, y = r.top + r.height / 2;
                        const hit = document.elementFromPoint(x, y);
                        if (!hit || !(hit === e || e.contains(hit))) return 'covered by ' + (hit ? hit.outerHTML.slice(0, 80) : 'nothing');
                        return [x, y, r.width, r.height];
                    }})()"#
                ),
            )
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
        let Some(xy) = at.as_array() else {
            panic!("cannot click {selector}: {at}");
        };
        let (x, y) = (xy[0].as_f64().unwrap_or(0.0), xy[1].as_f64().unwrap_or(0.0));
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                Some(&page.session),
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
        }
    }

    /// The size of the element of `selector`, CSS pixels.
    pub fn size_of(&mut self, page: &Page, selector: &str) -> (f64, f64) {
        let sel = serde_json::to_string(selector).expect("selector");
        let v = self
            .eval(
                page,
                &format!(
                    "(() => {{ const r = document.querySelector({sel}).getBoundingClientRect(); return [r.width, r.height]; }})()"
                ),
            )
            .unwrap_or_else(|e| panic!("size of {selector}: {e}"));
        (v[0].as_f64().unwrap_or(0.0), v[1].as_f64().unwrap_or(0.0))
    }

    /// Type `text` into the focused element, as key presses would.
    pub fn insert_text(&mut self, page: &Page, text: &str) {
        self.call(
            Some(&page.session),
            "Input.insertText",
            json!({ "text": text }),
        )
        .expect("insert text");
    }

    /// Press a key (e.g. "Tab", "Enter", "Escape") in the page.
    pub fn press(&mut self, page: &Page, key: &str) {
        let (code, vk) = match key {
            "Tab" => ("Tab", 9),
            "Enter" => ("Enter", 13),
            "Escape" => ("Escape", 27),
            "ArrowRight" => ("ArrowRight", 39),
            "ArrowLeft" => ("ArrowLeft", 37),
            " " => ("Space", 32),
            _ => (key, 0),
        };
        let text = match key {
            "Enter" => "\r",
            " " => " ",
            _ => "",
        };
        for kind in ["keyDown", "keyUp"] {
            let mut p = json!({
                "type": kind, "key": key, "code": code,
                "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk,
            });
            if kind == "keyDown" && !text.is_empty() {
                p["text"] = json!(text);
            }
            self.call(Some(&page.session), "Input.dispatchKeyEvent", p)
                .expect("key");
        }
    }

    /// A PNG of the page's viewport.
    pub fn screenshot(&mut self, page: &Page) -> Vec<u8> {
        let r = self
            .call(
                Some(&page.session),
                "Page.captureScreenshot",
                json!({ "format": "png" }),
            )
            .expect("screenshot");
        base64_decode(r["data"].as_str().unwrap_or("")).expect("base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call(None, "Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab, by its protocol session.
pub struct Page {
    /// The flat-mode session id of the tab.
    pub session: String,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Standard base64 (with padding), as the protocol sends screenshots.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i);
        }
        let n = chunk.len();
        if n < 2 {
            return None;
        }
        out.push((acc >> 16) as u8);
        if n > 2 {
            out.push((acc >> 8) as u8);
        }
        if n > 3 {
            out.push(acc as u8);
        }
    }
    Some(out)
}

#[test]
fn base64_round_trip() {
    assert_eq!(base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
    assert_eq!(base64_decode("aGk=").as_deref(), Some(&b"hi"[..]));
    assert_eq!(base64_decode("YWJj").as_deref(), Some(&b"abc"[..]));
    assert_eq!(base64_decode("a!=="), None);
}
