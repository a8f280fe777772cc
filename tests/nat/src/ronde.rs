//! Real `ronde relay` and `ronde node` processes inside a [`World`]'s
//! namespaces, killed on drop, and the `ronde` client commands run inside
//! a phone's namespace against its local API (127.0.0.1:7300 of that
//! namespace: every namespace has its own loopback).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::net::{run_bounded, Host, World, RELAY_IP};

/// A place inside the relay's jurisdiction (Ivry-sur-Seine, area u09tw; the
/// relay follows the 32 areas of u09t).
pub const AT: &str = "48.8156,2.3844";

/// The phones' API, inside their own namespace.
pub const API: &str = "http://127.0.0.1:7300";

/// The `ronde` binary: `$RONDE_BIN`, else the one built beside this test
/// binary (`cargo test --workspace` builds it; alone, run `cargo build -p
/// ronde` first).
pub fn ronde_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RONDE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut dir = exe.parent().expect("a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("ronde");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p ronde`",
        bin.display()
    );
    bin
}

/// Polls `f` every 200 ms until it returns `Ok`, or panics with `what`.
pub fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what} within {} s; last: {last}", limit.as_secs())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A process inside a namespace, killed on drop; its stderr in a file.
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Stdout lines read so far.
    pub seen: Vec<String>,
    stderr: PathBuf,
    /// The namespace it runs in, for the kept logs' names.
    name: String,
}

impl Proc {
    fn spawn(ns: &str, args: &[String], dir: &Path, log_filter: &str) -> Proc {
        let stderr = dir.join("stderr.log");
        let err_file = std::fs::File::create(&stderr).expect("stderr file");
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(ronde_bin())
            .args(args)
            .env("RUST_LOG", log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err_file))
            .spawn()
            .expect("spawn ronde");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
            stderr,
            name: ns.to_owned(),
        }
    }

    /// Its log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Read stdout until a line satisfies `done`, or panic after `limit`.
    fn read_until(&mut self, limit: Duration, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let stop = done(line.trim());
                    self.seen.push(line);
                    if stop {
                        return;
                    }
                }
                Err(_) => panic!(
                    "not ready within {} s: stdout {:?}\nstderr:\n{}",
                    limit.as_secs(),
                    self.seen,
                    self.log()
                ),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `NAT_TEST_LOGS=<dir>` keeps every process's log there.
        if let Some(dir) = std::env::var_os("NAT_TEST_LOGS") {
            let name = format!("{}-{}.log", self.name, self.child.id());
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::copy(&self.stderr, Path::new(&dir).join(name));
        }
    }
}

/// A `ronde relay` on the public segment (100.64.0.1, TCP and QUIC port
/// 4001, relay server and mailbox host on, as `ronde relay init` writes).
pub struct Relay {
    /// The process.
    pub proc: Proc,
    /// Its address for `--bootstrap`: `/ip4/100.64.0.1/tcp/4001/p2p/<id>`.
    pub addr: String,
    /// Its peer id.
    pub peer_id: String,
    _dir: tempfile::TempDir,
}

impl Relay {
    /// Set up a relay with `ronde relay init` and start it in the public
    /// namespace.
    pub fn start(world: &World) -> Relay {
        Relay::start_with(world, None)
    }

    /// [`Relay::start`] with circuit reservations that last
    /// `reservation_secs` (phones renew at three quarters of it).
    pub fn with_reservations_of(world: &World, reservation_secs: u64) -> Relay {
        Relay::start_with(world, Some(reservation_secs))
    }

    fn start_with(world: &World, reservation_secs: Option<u64>) -> Relay {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let config = dir.path().join("relay.toml");
        let init = run_bounded(
            Command::new(ronde_bin())
                .arg("relay")
                .arg("--config")
                .arg(&config)
                .args(["init", "--city", "Ivry", "--prefix", "u09t", "--data-dir"])
                .arg(&data),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("ronde relay init: {e}"));
        drop(init);
        let listen = format!("\"/ip4/{RELAY_IP}/tcp/4001\", \"/ip4/{RELAY_IP}/udp/4001/quic-v1\"");
        let text = std::fs::read_to_string(&config).expect("relay.toml");
        let text = text
            .replace(
                "listen = [\"/ip4/0.0.0.0/tcp/4001\", \"/ip4/0.0.0.0/udp/4001/quic-v1\"]",
                &format!("listen = [{listen}]"),
            )
            .replace(
                "public_addresses = []",
                &format!("public_addresses = [{listen}]"),
            )
            .replace("public_bind = \"0.0.0.0:8080\"", "public_bind = \"\"");
        let text = match reservation_secs {
            Some(secs) => {
                assert!(text.contains("reservation_secs = 3600"), "{text}");
                text.replace(
                    "reservation_secs = 3600",
                    &format!("reservation_secs = {secs}"),
                )
            }
            None => text,
        };
        assert!(text.contains(RELAY_IP), "the template changed:\n{text}");
        std::fs::write(&config, text).expect("write relay.toml");
        // The peer key made here is the one the relay loads: its peer id
        // is then known before it starts.
        let key =
            ronde_node::peer_key::load_or_create(&data.join(ronde_node::peer_key::PEER_KEY_FILE))
                .expect("relay peer key");
        let peer_id = key.public().to_peer_id().to_string();
        let args = vec![
            "relay".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        let proc = Proc::spawn(&world.public, &args, dir.path(), LOG_FILTER);
        let relay = Relay {
            proc,
            addr: format!("/ip4/{RELAY_IP}/tcp/4001/p2p/{peer_id}"),
            peer_id,
            _dir: dir,
        };
        eventually(Duration::from_secs(30), "the relay starts", || {
            let log = relay.proc.log();
            if log.contains("relay started") {
                Ok(())
            } else {
                Err(log)
            }
        });
        relay
    }
}

/// What the processes log: info, plus the node's reachability decisions.
pub const LOG_FILTER: &str = "info,ronde_node=debug,libp2p_relay=info,libp2p_dcutr=debug";

/// A `ronde node` in a phone's namespace, listening on TCP and QUIC port
/// 4001 of every interface, its API on the namespace's 127.0.0.1:7300.
pub struct Phone {
    /// The process.
    pub proc: Proc,
    /// Its namespace and address.
    pub host: Host,
    /// Its peer id.
    pub peer_id: String,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Phone {
    /// Start a phone in `host` with `extra` arguments (`--bootstrap`, …).
    pub fn start(host: &Host, extra: &[&str]) -> Phone {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut args: Vec<String> = [
            "node",
            "--data-dir",
            &data.display().to_string(),
            "--listen",
            "/ip4/0.0.0.0/tcp/4001",
            "/ip4/0.0.0.0/udp/4001/quic-v1",
            "--api",
            "127.0.0.1:7300",
            "--at",
            AT,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut proc = Proc::spawn(&host.ns, &args, dir.path(), LOG_FILTER);
        proc.read_until(Duration::from_secs(30), |l| l.starts_with("api: "));
        let peer_id = proc
            .seen
            .iter()
            .find_map(|l| l.trim().strip_prefix("peer id: ").map(str::to_owned))
            .expect("the peer id is printed");
        Phone {
            proc,
            host: host.clone(),
            peer_id,
            data,
            _dir: dir,
        }
    }

    /// A phone behind NAT or on the public segment, bootstrapping from
    /// the relay (its mailbox host too).
    pub fn with_relay(host: &Host, relay: &Relay) -> Phone {
        Phone::start(
            host,
            &[
                "--no-mdns",
                "--bootstrap",
                &relay.addr,
                "--mailbox-peer",
                &relay.addr,
            ],
        )
    }

    /// Run `ronde <args> --api <API>` inside the phone's namespace: its
    /// stdout, or an error with both outputs.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = run_bounded(
            Command::new("ip")
                .args(["netns", "exec", &self.host.ns])
                .arg(ronde_bin())
                .args(args)
                .args(["--api", API])
                .env("RONDE_DATA_DIR", &self.data),
            Duration::from_secs(20),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `ronde status`.
    pub fn status(&self) -> String {
        self.cli(&["status"]).unwrap_or_else(|e| e)
    }

    /// The number after "connected peers" in `ronde status`.
    pub fn connected_peers(&self) -> usize {
        self.status()
            .lines()
            .find_map(|l| l.trim().strip_prefix("connected peers"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.proc.log()
    }
}
