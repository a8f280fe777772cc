//! Network namespaces, veth pairs and NAT routers, removed on drop.
//!
//! A [`World`] is one test's network: a "public" namespace whose bridge
//! `br0` carries 100.64.0.0/24 (the relay lives there, at 100.64.0.1),
//! home networks behind NAT routers (home `n` is 10.77.n.0/24 behind a
//! router whose WAN side is 100.64.0.(10+n)), and phones, each in its own
//! namespace. These addresses exist only inside the namespaces the world
//! creates; nothing is routed to or from the machine's own network.
//!
//! Every namespace is named `rnat-<pid>-<seq>-<role>`: the pid and a
//! per-process sequence number keep parallel tests (and parallel test
//! binaries) apart. Dropping the world kills every process left inside
//! its namespaces and deletes them (their veths go with them), also when
//! the test panics; [`World::new`] first sweeps namespaces left by a run
//! that was killed (those whose pid is no longer alive).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The prefix of every namespace this crate creates.
pub const PREFIX: &str = "rnat-";

/// The relay's address on the public segment.
pub const RELAY_IP: &str = "100.64.0.1";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// How a home router translates addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// `MASQUERADE`: Linux keeps the source port when it is free, so one
    /// inside address and port maps to one outside port whatever the
    /// destination (endpoint-independent mapping; filtering is by
    /// connection, as in most home routers).
    EndpointIndependent,
    /// `MASQUERADE --random-fully`: a random outside port for every new
    /// connection, so each destination sees another port (symmetric NAT,
    /// as many carriers' NATs).
    Symmetric,
    /// No NAT and no way out: a LAN alone (for mDNS).
    LanOnly,
}

/// A home network: a router namespace with a LAN bridge.
#[derive(Debug, Clone)]
pub struct Home {
    /// Its number: the LAN is 10.77.`n`.0/24.
    pub n: u8,
    /// The router's namespace.
    pub router: String,
    /// How it translates.
    pub nat: Nat,
}

/// A phone's namespace and address.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace.
    pub ns: String,
    /// Its IPv4 address.
    pub ip: String,
}

/// One test's network. See the module doc.
pub struct World {
    tag: String,
    /// Namespaces created, in order.
    namespaces: Vec<String>,
    /// The public segment's namespace (the relay runs in it).
    pub public: String,
    next_port: u8,
    /// Routers built from now on drop unasked packets to themselves
    /// instead of answering them with a reset (see [`World::stealth`]).
    stealth: bool,
}

/// Why the network cannot be built here: the tests print it and skip.
#[derive(Debug)]
pub struct Skip(pub String);

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Run a command, bounded in time; `Err` with its output if it fails.
pub fn run(program: &str, args: &[&str]) -> Result<Output, String> {
    run_bounded(Command::new(program).args(args), Duration::from_secs(10))
}

/// Run `cmd` with stdin closed, killing it after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: no answer within {} s", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{what}: {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args).map(|_| ())
}

/// Whether a process with this pid is alive.
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Kill every process inside `ns`, then delete it.
fn remove_namespace(ns: &str) {
    if let Ok(out) = run("ip", &["netns", "pids", ns]) {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = run("kill", &["-KILL", pid]);
        }
    }
    let _ = run("ip", &["netns", "del", ns]);
}

/// Delete the namespaces of earlier runs whose process is gone.
pub fn sweep_stale() {
    let Ok(out) = run("ip", &["netns", "list"]) else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !alive(pid) {
                remove_namespace(name);
            }
        }
    }
}

impl World {
    /// The public segment and its bridge, or why it cannot be made.
    pub fn new() -> Result<World, Skip> {
        if run("id", &["-u"]).map(|o| o.stdout.trim_ascii() == b"0") != Ok(true) {
            return Err(Skip("not root: network namespaces need root".into()));
        }
        if run("ip", &["-V"]).is_err() {
            return Err(Skip("no `ip` command (install iproute2)".into()));
        }
        if run("iptables", &["-V"]).is_err() {
            return Err(Skip("no `iptables` command (install iptables)".into()));
        }
        sweep_stale();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let mut world = World {
            tag: format!("{PREFIX}{}-{seq}", std::process::id()),
            namespaces: Vec::new(),
            public: String::new(),
            next_port: 0,
            stealth: false,
        };
        let public = world
            .namespace("pub")
            .map_err(|e| Skip(format!("cannot create a network namespace: {e}")))?;
        world.public = public.clone();
        world
            .setup_public()
            .map_err(|e| Skip(format!("cannot build the public segment: {e}")))?;
        Ok(world)
    }

    fn setup_public(&mut self) -> Result<(), String> {
        let p = self.public.clone();
        ip(&["-n", &p, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n",
            &p,
            "addr",
            "add",
            &format!("{RELAY_IP}/24"),
            "dev",
            "br0",
        ])?;
        ip(&["-n", &p, "link", "set", "br0", "up"])
    }

    /// Create a namespace with its loopback up.
    fn namespace(&mut self, role: &str) -> Result<String, String> {
        let name = format!("{}-{role}", self.tag);
        ip(&["netns", "add", &name])?;
        self.namespaces.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }

    /// A veth pair: `a_if` in `a`, `b_if` in `b`, both down.
    fn veth(a: &str, a_if: &str, b: &str, b_if: &str) -> Result<(), String> {
        ip(&[
            "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b,
        ])
    }

    /// Plug `ns`'s `ifname` into the public bridge with address `addr`.
    fn plug_public(&mut self, ns: &str, ifname: &str, addr: &str) -> Result<(), String> {
        self.next_port += 1;
        let port = format!("p{}", self.next_port);
        Self::veth(ns, ifname, &self.public, &port)?;
        ip(&["-n", &self.public, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", &self.public, "link", "set", &port, "up"])?;
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            ifname,
        ])?;
        ip(&["-n", ns, "link", "set", ifname, "up"])
    }

    /// Run a command inside `ns`.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Result<Output, String> {
        let mut all = vec!["netns", "exec", ns];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Routers built after this call drop unasked packets sent to
    /// themselves (as most home and carrier routers do) instead of
    /// answering with a TCP reset or ICMP (Linux's default for a port
    /// nothing listens on). An AutoNAT dial-back then times out instead of
    /// being refused, and a hole punch's early SYN is not reset.
    pub fn stealth(&mut self) {
        self.stealth = true;
    }

    /// A home network number `n` (1 to 99): a router namespace with a LAN
    /// bridge at 10.77.`n`.1 and, unless [`Nat::LanOnly`], a WAN side at
    /// 100.64.0.(10+`n`) on the public segment with the given NAT.
    pub fn home(&mut self, n: u8, nat: Nat) -> Home {
        self.try_home(n, nat)
            .unwrap_or_else(|e| panic!("cannot build home {n}: {e}"))
    }

    fn try_home(&mut self, n: u8, nat: Nat) -> Result<Home, String> {
        let r = self.namespace(&format!("r{n}"))?;
        ip(&["-n", &r, "link", "add", "lan", "type", "bridge"])?;
        ip(&[
            "-n",
            &r,
            "addr",
            "add",
            &format!("10.77.{n}.1/24"),
            "dev",
            "lan",
        ])?;
        ip(&["-n", &r, "link", "set", "lan", "up"])?;
        if nat != Nat::LanOnly {
            self.plug_public(&r, "wan", &format!("100.64.0.{}", 10 + u16::from(n)))?;
            self.exec(&r, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
            let mut rule = vec![
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "wan",
                "-j",
                "MASQUERADE",
            ];
            if nat == Nat::Symmetric {
                rule.push("--random-fully");
            }
            self.exec(&r, &rule)?;
            // Nothing from outside reaches the LAN unless it answers a
            // connection made from inside (a home router's default).
            self.exec(
                &r,
                &[
                    "iptables",
                    "-A",
                    "FORWARD",
                    "-i",
                    "wan",
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "ESTABLISHED,RELATED",
                    "-j",
                    "ACCEPT",
                ],
            )?;
            self.exec(
                &r,
                &["iptables", "-A", "FORWARD", "-i", "wan", "-j", "DROP"],
            )?;
            if self.stealth {
                // Unasked packets to the router itself are dropped too,
                // not answered with a reset (a reset kills a hole punch
                // whose first SYN arrives before the other side's).
                self.exec(
                    &r,
                    &[
                        "iptables",
                        "-A",
                        "INPUT",
                        "-i",
                        "wan",
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "ESTABLISHED,RELATED",
                        "-j",
                        "ACCEPT",
                    ],
                )?;
                self.exec(&r, &["iptables", "-A", "INPUT", "-i", "wan", "-j", "DROP"])?;
            }
        }
        Ok(Home { n, router: r, nat })
    }

    /// A phone at 10.77.`home.n`.`host` on `home`'s LAN.
    pub fn phone_at_home(&mut self, name: &str, home: &Home, host: u8) -> Host {
        let ns = self
            .namespace(name)
            .unwrap_or_else(|e| panic!("cannot create {name}: {e}"));
        let ip = self
            .attach(&ns, home, host)
            .unwrap_or_else(|e| panic!("cannot attach {name}: {e}"));
        Host { ns, ip }
    }

    /// Connect `ns` to `home`'s LAN as `eth0` with 10.77.n.`host`.
    fn attach(&mut self, ns: &str, home: &Home, host: u8) -> Result<String, String> {
        self.next_port += 1;
        let port = format!("h{}", self.next_port);
        Self::veth(ns, "eth0", &home.router, &port)?;
        ip(&["-n", &home.router, "link", "set", &port, "master", "lan"])?;
        ip(&["-n", &home.router, "link", "set", &port, "up"])?;
        let addr = format!("10.77.{}.{host}", home.n);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        if home.nat != Nat::LanOnly {
            ip(&[
                "-n",
                ns,
                "route",
                "add",
                "default",
                "via",
                &format!("10.77.{}.1", home.n),
            ])?;
        }
        Ok(addr)
    }

    /// Move a phone to another home network, as Wi-Fi to cellular: its
    /// interface goes (its connections with it) and a new one comes up on
    /// `home`'s LAN with 10.77.n.`host`. Returns the new address.
    pub fn move_phone(&mut self, phone: &mut Host, home: &Home, host: u8) -> String {
        ip(&["-n", &phone.ns, "link", "del", "eth0"])
            .unwrap_or_else(|e| panic!("cannot unplug {}: {e}", phone.ns));
        let addr = self
            .attach(&phone.ns, home, host)
            .unwrap_or_else(|e| panic!("cannot move {}: {e}", phone.ns));
        phone.ip = addr.clone();
        addr
    }

    /// Unplug `phone` from its network and plug it straight into the public
    /// segment at 100.64.0.`host` (it becomes reachable, as a phone that
    /// leaves a carrier's NAT for a network with public addresses).
    pub fn move_phone_public(&mut self, phone: &mut Host, host: u8) -> String {
        ip(&["-n", &phone.ns, "link", "del", "eth0"])
            .unwrap_or_else(|e| panic!("cannot unplug {}: {e}", phone.ns));
        let addr = format!("100.64.0.{host}");
        self.plug_public(&phone.ns.clone(), "eth0", &addr)
            .unwrap_or_else(|e| panic!("cannot move {}: {e}", phone.ns));
        phone.ip = addr.clone();
        addr
    }

    /// A phone directly on the public segment at 100.64.0.`host` (a
    /// reachable device), `host` from 20 to 254.
    pub fn public_phone(&mut self, name: &str, host: u8) -> Host {
        let ns = self
            .namespace(name)
            .unwrap_or_else(|e| panic!("cannot create {name}: {e}"));
        let ip = format!("100.64.0.{host}");
        self.plug_public(&ns, "eth0", &ip)
            .unwrap_or_else(|e| panic!("cannot plug {name}: {e}"));
        Host { ns, ip }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            remove_namespace(ns);
        }
    }
}
