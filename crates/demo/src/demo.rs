//! [`Demo::start`] builds the city: a relay (dashboard on TCP, its node on
//! the in-process memory transport), the signed directory, the phones, the
//! app of Camille's phone on TCP, and the tasks that make the city live.
//! [`Demo::run`] waits for a stop (Ctrl-C) or `--duration`, and
//! [`Demo::shutdown`] takes it all apart and removes the temporary data.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use ronde_node::api::ApiAuth;
use ronde_node::{Node, NodeConfig, NodeError};
use ronde_protocol::directory::DirectoryPublicKey;
use ronde_relay::config::{Http, Jurisdiction, MapSettings, Network, RelayConfig};
use ronde_relay::directory::DirError;
use ronde_relay::keys::KeyError;
use ronde_relay::server::Shared;
use ronde_relay::{Relay, RelayError, StartOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::args::DemoArgs;
use crate::city::{self, City, Walker};
use crate::directory::{self, Confirming};
use crate::narrator::Narrator;
use crate::story::{Progress, Story, CAMILLE, CAST};

/// Fewest phones: the five of the story.
pub const MIN_PHONES: usize = CAST.len();
/// Most phones (two cores run out well before the memory transport does).
pub const MAX_PHONES: usize = 300;
/// Highest `--speed`.
pub const MAX_SPEED: u32 = 60;
/// The demo city's name, signed into the directory.
pub const CITY_NAME: &str = "Helsinki (demo)";
/// The demo's own basemap: the real streets of central Helsinki from
/// OpenStreetMap (© OpenStreetMap contributors, ODbL), as `data/README.md`
/// says, used when `--basemap` is not given.
pub const BASEMAP: &[u8] = include_bytes!("../data/helsinki.pmtiles");
/// The file name the demo's basemap is written to in the data directory.
pub const BASEMAP_FILE: &str = "helsinki.pmtiles";

/// Why the demo could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A flag out of range.
    #[error("{0}")]
    Args(String),
    /// `--data-dir` holds something already.
    #[error(
        "--data-dir {0} is not empty: give a new or empty directory (the demo keeps what it \
         writes there)"
    )]
    DataDirNotEmpty(PathBuf),
    /// A file or directory.
    #[error("{path}: {source}")]
    Io {
        /// Which.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The app's address.
    #[error("cannot listen on {addr} for the phone app: {source} (try --app 127.0.0.1:0)")]
    BindApp {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The dashboard's address.
    #[error("cannot listen on {addr} for the dashboard: {source} (try --dashboard 127.0.0.1:0)")]
    BindDashboard {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The demo city key.
    #[error("the demo city key: {0}")]
    Key(#[from] KeyError),
    /// The relay.
    #[error("the relay: {0}")]
    Relay(#[from] RelayError),
    /// The directory.
    #[error("the directory: {0}")]
    Directory(#[from] DirError),
    /// A phone.
    #[error("a phone: {0}")]
    Node(#[from] NodeError),
    /// A task of the demo panicked.
    #[error("a demo task failed: {0}")]
    Task(String),
}

/// Where to open things.
#[derive(Debug, Clone)]
pub struct Urls {
    /// The dashboard's base URL (`http://127.0.0.1:7400`).
    pub dashboard: String,
    /// The operator token (login page, or `Authorization: Bearer`).
    pub token: String,
    /// Camille's app and node API (`http://127.0.0.1:7310`).
    pub app: String,
    /// The one-time login URL of Camille's app (`<app>/login?code=…`),
    /// printed in the banner.
    pub app_login: String,
    /// The token of Camille's node API (also in `api-token` in her data
    /// directory), for `Authorization: Bearer`.
    pub app_token: String,
    /// The relay's public endpoints (the signed directory).
    pub public: Option<String>,
}

/// Counters of the demo.
#[derive(Debug, Default)]
pub struct Stats {
    /// Reports the phones made.
    pub reports: AtomicU64,
    /// Reports that failed.
    pub failed_reports: AtomicU64,
    /// How far the story got.
    pub progress: Arc<Progress>,
}

/// What a finished demo leaves.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Reports the phones made.
    pub reports: u64,
    /// Reports the relay counted.
    pub counted: u64,
    /// Where the data were kept, if `--data-dir` was given.
    pub kept: Option<PathBuf>,
}

enum DataDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            DataDir::Temp(t) => t.path(),
            DataDir::Kept(p) => p,
        }
    }
}

/// A running demo.
pub struct Demo {
    narrator: Narrator,
    relay: Relay,
    phones: Vec<Node>,
    app: JoinHandle<std::io::Result<()>>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    data: DataDir,
    urls: Urls,
    duration: Option<Duration>,
    stats: Arc<Stats>,
}

fn memory0() -> Multiaddr {
    Multiaddr::empty().with(Protocol::Memory(0))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Check the flags that clap does not.
pub fn check_args(args: &DemoArgs) -> Result<(), DemoError> {
    if !(MIN_PHONES..=MAX_PHONES).contains(&args.phones) {
        return Err(DemoError::Args(format!(
            "--phones must be between {MIN_PHONES} (the story's cast) and {MAX_PHONES}"
        )));
    }
    if !(1..=MAX_SPEED).contains(&args.speed) {
        return Err(DemoError::Args(format!(
            "--speed must be between 1 (real time) and {MAX_SPEED}"
        )));
    }
    if args.duration.is_some_and(|d| d.is_zero()) {
        return Err(DemoError::Args("--duration must be above 0".into()));
    }
    if let Some(b) = &args.basemap {
        if !b.is_file() {
            return Err(DemoError::Args(format!(
                "--basemap {}: no such file",
                b.display()
            )));
        }
    }
    Ok(())
}

fn data_dir(args: &DemoArgs) -> Result<DataDir, DemoError> {
    match &args.data_dir {
        Some(p) => {
            if p.exists() {
                let mut entries = std::fs::read_dir(p).map_err(io(p))?;
                if entries.next().is_some() {
                    return Err(DemoError::DataDirNotEmpty(p.clone()));
                }
            }
            std::fs::create_dir_all(p).map_err(io(p))?;
            Ok(DataDir::Kept(p.clone()))
        }
        None => tempfile::Builder::new()
            .prefix("ronde-demo-")
            .tempdir()
            .map(DataDir::Temp)
            .map_err(io(&std::env::temp_dir())),
    }
}

/// The basemap the relay serves: `--basemap` (absolute, since the relay
/// reads a relative path in its data directory), else the demo's own,
/// written to the data directory.
fn basemap_file(args: &DemoArgs, dir: &Path) -> Result<PathBuf, DemoError> {
    if let Some(p) = &args.basemap {
        return Ok(std::path::absolute(p).unwrap_or_else(|_| p.clone()));
    }
    let p = dir.join(BASEMAP_FILE);
    std::fs::write(&p, BASEMAP).map_err(io(&p))?;
    Ok(p)
}

fn relay_config(
    args: &DemoArgs,
    city: &City,
    dir: &Path,
    token: String,
    basemap: PathBuf,
) -> RelayConfig {
    let tile_attribution = if args.tiles.is_empty() {
        String::new()
    } else {
        "© OpenStreetMap contributors".into()
    };
    RelayConfig {
        city: CITY_NAME.into(),
        data_dir: dir.join("relay"),
        city_key_file: "city.key".into(),
        jurisdiction: Jurisdiction {
            geohash_prefixes: Vec::new(),
            bbox: Some(city.bbox()),
            time_zone: "Europe/Helsinki".into(),
            utc_offset_hours: city::helsinki_utc_offset(ronde_node::Clock::now(
                &ronde_node::SystemClock,
            )),
        },
        network: Network {
            listen: vec![memory0().to_string()],
            // A circuit relay, as in a real city; the phones never reserve
            // on it (see `phone_config`).
            relay_server: true,
            ..Network::default()
        },
        http: Http {
            public_bind: "127.0.0.1:0".into(),
            dashboard_bind: args.dashboard.to_string(),
            operator_token: token,
            tile_url: args.tiles.clone(),
            tile_attribution,
        },
        aggregates: Default::default(),
        directory: Default::default(),
        map: MapSettings { basemap },
    }
}

/// The node settings of a demo phone: the memory transport, the relay as
/// bootstrap peer and mailbox host, the demo city's key (the phone fetches
/// and verifies its directory), quicker retries than a real phone.
fn phone_config(
    dir: PathBuf,
    pos: (f64, f64),
    relay: &Multiaddr,
    city_key: DirectoryPublicKey,
) -> NodeConfig {
    let mut c = NodeConfig::new(dir);
    c.listen = vec![memory0()];
    c.memory_transport = true;
    // Every phone reaches every other in this process, but AutoNAT cannot
    // test a memory address: without this, each phone would assume it is
    // private after 15 s and reserve a circuit on the relay.
    c.directly_reachable = true;
    c.mdns = false;
    c.location = Some(pos);
    c.bootstrap = vec![relay.clone()];
    c.mailbox_peers = vec![relay.clone()];
    c.max_connections = 32;
    c.pending_retry_interval = Duration::from_secs(3);
    c.circle.mailbox_poll_interval = Duration::from_secs(5);
    c.circle.retry_interval = Duration::from_secs(3);
    c.circle.journey.position_interval = 60;
    c.city_keys = vec![city_key];
    c.directory_refresh = Duration::from_secs(60);
    c
}

fn random_token() -> String {
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn snapshot(walkers: &Mutex<Vec<Walker>>) -> Vec<(f64, f64)> {
    match walkers.lock() {
        Ok(w) => w.iter().map(|w| w.pos).collect(),
        Err(p) => p.into_inner().iter().map(|w| w.pos).collect(),
    }
}

/// What the city's tasks share.
struct Ctx {
    city: City,
    phones: Vec<Node>,
    walkers: Arc<Mutex<Vec<Walker>>>,
    relay: Arc<Shared>,
    narrator: Narrator,
    stats: Arc<Stats>,
    seed: u64,
    utc_offset: i32,
    confirming: Vec<Confirming>,
}

impl Demo {
    /// Start the whole city and print the banner. Must run inside a
    /// multi-thread Tokio runtime.
    pub async fn start(args: &DemoArgs, narrator: Narrator) -> Result<Demo, DemoError> {
        check_args(args)?;
        let data = data_dir(args)?;
        let city = City::helsinki();
        let mut rng = ChaCha20Rng::seed_from_u64(args.seed);
        let token = random_token();

        // The relay, with a demo city key in the data directory.
        let basemap = basemap_file(args, data.path())?;
        let config = relay_config(args, &city, data.path(), token.clone(), basemap);
        let utc_offset = config.jurisdiction.utc_offset_hours;
        ronde_relay::keys::create_key(&config.key_path())?;
        let options = StartOptions {
            node_tweak: Some(Box::new(|c: &mut NodeConfig| {
                c.listen = vec![memory0()];
                c.memory_transport = true;
                c.mdns = false;
            })),
            ..StartOptions::default()
        };
        let relay = Relay::start(config, options).await.map_err(|e| match e {
            RelayError::Bind { addr, source } if addr == args.dashboard => {
                DemoError::BindDashboard { addr, source }
            }
            e => e.into(),
        })?;
        narrator.say(format!(
            "city relay up: it follows {} areas of the city and counts what it sees",
            relay.shared().areas.len()
        ));

        let (stop, stop_rx) = watch::channel(false);
        let mut phones = Vec::new();
        let started = Self::start_city(
            args,
            &city,
            &mut rng,
            &relay,
            &narrator,
            &mut phones,
            &data,
            stop_rx.clone(),
        )
        .await;
        match started {
            Ok((app_addr, app, app_auth, walkers, confirming)) => {
                let stats = Arc::new(Stats::default());
                let urls = Urls {
                    dashboard: format!("http://{}", relay.dashboard_addr()),
                    token,
                    app: format!("http://{app_addr}"),
                    app_login: app_auth.login_url(&format!("http://{app_addr}")),
                    app_token: app_auth.token().to_owned(),
                    public: relay.public_addr().map(|a| format!("http://{a}")),
                };
                let ctx = Arc::new(Ctx {
                    city: city.clone(),
                    phones: phones.clone(),
                    walkers: walkers.clone(),
                    relay: relay.shared().clone(),
                    narrator: narrator.clone(),
                    stats: stats.clone(),
                    seed: args.seed,
                    utc_offset,
                    confirming,
                });
                let story = Story {
                    cast: phones[..CAST.len()].to_vec(),
                    walkers,
                    city,
                    speed: f64::from(args.speed),
                    narrator: narrator.clone(),
                    progress: stats.progress.clone(),
                    seed: args.seed,
                };
                let tasks = vec![
                    tokio::spawn(story.run(stop_rx.clone())),
                    tokio::spawn(report_loop(ctx.clone(), stop_rx.clone())),
                    tokio::spawn(walk_loop(ctx.clone(), stop_rx.clone())),
                    tokio::spawn(status_loop(ctx, stop_rx.clone())),
                ];
                let app = tokio::spawn(app);
                let demo = Demo {
                    narrator,
                    relay,
                    phones,
                    app,
                    tasks,
                    stop,
                    data,
                    urls,
                    duration: args.duration,
                    stats,
                };
                demo.banner(args);
                Ok(demo)
            }
            Err(e) => {
                for p in &phones {
                    let _ = p.shutdown().await;
                }
                let _ = relay.shutdown().await;
                Err(e)
            }
        }
    }

    /// The directory, the phones, Camille's app.
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    async fn start_city(
        args: &DemoArgs,
        city: &City,
        rng: &mut ChaCha20Rng,
        relay: &Relay,
        narrator: &Narrator,
        phones: &mut Vec<Node>,
        data: &DataDir,
        mut stop: watch::Receiver<bool>,
    ) -> Result<
        (
            SocketAddr,
            impl Future<Output = std::io::Result<()>> + Send + 'static,
            ApiAuth,
            Arc<Mutex<Vec<Walker>>>,
            Vec<Confirming>,
        ),
        DemoError,
    > {
        let shared = relay.shared();
        let seeded = directory::seed(shared, city, shared.clock.now())?;
        narrator.say(format!(
            "directory: {} safe places and {} mediators, signed by the demo city key; \"{}\" is \
             going stale (its heartbeat stopped 6 days ago)",
            seeded.places, seeded.mediators, seeded.stale
        ));

        let relay_addr = relay
            .node()
            .listen_addrs()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| DemoError::Args("the relay's node listens nowhere".into()))?
            .with(Protocol::P2p(relay.node().peer_id()));

        // Where everyone is: Camille in the centre, the others about.
        let mut walkers = Vec::with_capacity(args.phones);
        for i in 0..args.phones {
            walkers.push(if i == CAMILLE {
                Walker::still(city.centre)
            } else {
                let home = city.sample_home(rng);
                Walker::new(city, home, rng)
            });
        }
        let dirs: Vec<PathBuf> = (0..args.phones)
            .map(|i| {
                let name = CAST.get(i).copied().unwrap_or("phone");
                data.path().join("phones").join(format!("{i:03}-{name}"))
            })
            .collect();
        let camille_dir = dirs[CAMILLE].clone();
        let configs: Vec<NodeConfig> = dirs
            .into_iter()
            .zip(&walkers)
            .map(|(d, w)| phone_config(d, w.pos, &relay_addr, shared.directory.public_key()))
            .collect();
        let mut starting = futures::stream::iter(configs.into_iter().map(Node::start)).buffered(4);
        while let Some(node) = starting.next().await {
            phones.push(node?);
        }
        narrator.say(format!(
            "{} phones up (real Ronde nodes: gossip, proof of work, sled), each connected to \
             the relay",
            phones.len()
        ));

        // A few direct links between phones, so that gossip also flows
        // phone to phone.
        let mut addrs = Vec::with_capacity(phones.len());
        for p in phones.iter() {
            addrs.push(
                p.listen_addrs()
                    .await?
                    .into_iter()
                    .next()
                    .map(|a| a.with(Protocol::P2p(p.peer_id()))),
            );
        }
        for (i, phone) in phones.iter().enumerate().skip(1) {
            for _ in 0..2 {
                if let Some(a) = addrs[rng.gen_range(0..i)].clone() {
                    // A failed dial only means one link fewer.
                    let _ = phone.dial(a).await;
                }
            }
        }

        // Wait (a little) until the cast reaches the relay: the story goes
        // through its mailbox.
        let relay_id = relay.node().peer_id();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        for p in &phones[..CAST.len()] {
            while !p
                .connected_peers()
                .await
                .map(|v| v.contains(&relay_id))
                .unwrap_or(false)
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        // Camille's app and node API.
        let listener = TcpListener::bind(args.app)
            .await
            .map_err(|source| DemoError::BindApp {
                addr: args.app,
                source,
            })?;
        let app_addr = listener.local_addr().map_err(|source| DemoError::BindApp {
            addr: args.app,
            source,
        })?;
        if !app_addr.ip().is_loopback() {
            narrator.say(
                "warning: Camille's node API listens beyond this machine (--app); only her \
                 token or the login link opens it",
            );
        }
        let camille = phones[CAMILLE].clone();
        let auth = ApiAuth::create(&camille_dir).map_err(io(&camille_dir))?;
        // Camille's phone fetches the city's streets whole, once, as a
        // phone does from its city's relay.
        if let Some(public) = relay.public_addr() {
            let url = format!("http://{public}/basemap.pmtiles");
            match ronde_node::basemap::fetch_into(&camille_dir, &url).await {
                Ok(bytes) => narrator.say(format!(
                    "basemap: Camille's phone keeps the city's streets ({} kB), read offline",
                    bytes / 1000
                )),
                Err(e) => narrator.say(format!("warning: Camille's phone got no basemap: {e}")),
            }
        }
        let app = ronde_node::api::serve(listener, camille, auth.clone(), async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        Ok((
            app_addr,
            app,
            auth,
            Arc::new(Mutex::new(walkers)),
            seeded.confirming,
        ))
    }

    fn banner(&self, args: &DemoArgs) {
        let n = &self.narrator;
        let u = &self.urls;
        let (lat, lon) = city::CENTRE;
        n.plain("");
        n.plain(format!(
            "Ronde demo: {CITY_NAME}, {} phones, seed {}, journeys at x{}",
            args.phones, args.seed, args.speed
        ));
        n.plain(format!("  City dashboard   {}/login", u.dashboard));
        n.plain(format!(
            "                   operator token: {}  (paste it on the login page)",
            u.token
        ));
        n.plain(format!(
            "  Camille's phone  {}  (the phone app; this link opens it once; choose \"where am \
             I\" by hand: {lat}, {lon}, the centre of Helsinki)",
            u.app_login
        ));
        if args.basemap.is_none() {
            n.plain(format!(
                "  Street map       central Helsinki, real OpenStreetMap streets shipped with \
                 Ronde ({} kB, © OpenStreetMap contributors, ODbL); `--basemap FILE` for \
                 another city's (docs/operator-guide.md, \"The city basemap\")",
                BASEMAP.len() / 1000
            ));
        }
        if let Some(p) = &u.public {
            n.plain(format!(
                "  Directory        {p}/directory  (signed; key at {p}/directory/key)"
            ));
        }
        n.plain(format!(
            "  Data             {}{}",
            self.data.path().display(),
            match self.data {
                DataDir::Temp(_) => "  (deleted at exit)",
                DataDir::Kept(_) => "  (kept)",
            }
        ));
        n.plain(match self.duration {
            Some(d) => format!("  Stops by itself after {} s, or at Ctrl-C.", d.as_secs()),
            None => "  Ctrl-C stops everything.".into(),
        });
        n.plain("");
    }

    /// Where to open things.
    pub fn urls(&self) -> &Urls {
        &self.urls
    }

    /// Where the data are (a temporary directory unless `--data-dir`).
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The demo's counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The relay.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// The phones; phone 0 is Camille, whose app is served.
    pub fn phones(&self) -> &[Node] {
        &self.phones
    }

    /// Run until `stop` resolves (Ctrl-C) or `--duration` has passed, then
    /// shut everything down.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<Summary, DemoError> {
        let duration = self.duration;
        let timer = async move {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop => self.narrator.say("stopping (Ctrl-C)..."),
            _ = timer => self.narrator.say("stopping (--duration)..."),
        }
        self.shutdown().await
    }

    /// Stop the tasks and the app, shut every phone down, flush and stop
    /// the relay, and remove the temporary data. Every step is taken even
    /// if an earlier one failed; the first error is returned.
    pub async fn shutdown(self) -> Result<Summary, DemoError> {
        let _ = self.stop.send(true);
        let mut first: Option<DemoError> = None;
        for t in self.tasks {
            if let Err(e) = join(t, Duration::from_secs(10)).await {
                first.get_or_insert(e);
            }
        }
        let Demo {
            narrator,
            relay,
            phones,
            app,
            data,
            stats,
            ..
        } = self;
        // The app's server stops accepting, ends its event streams and
        // finishes the requests in flight; then the phones stop.
        let abort = app.abort_handle();
        match tokio::time::timeout(Duration::from_secs(10), app).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the phone app's server failed"),
            Ok(Err(e)) if e.is_cancelled() => {}
            Ok(Err(e)) => {
                first.get_or_insert(DemoError::Task(e.to_string()));
            }
            Err(_) => abort.abort(),
        }
        let results = futures::future::join_all(phones.iter().map(|p| p.shutdown())).await;
        for r in results {
            match r {
                Ok(()) | Err(NodeError::Stopped) => {}
                Err(e) => {
                    first.get_or_insert(e.into());
                }
            }
        }
        narrator.say(format!("{} phones shut down", phones.len()));
        drop(phones);
        let counted = relay.shared().metrics.acknowledged.load(Ordering::Relaxed);
        match relay.shutdown().await {
            Ok(()) => narrator.say(format!(
                "relay stopped and flushed ({counted} reports counted)"
            )),
            Err(e) => {
                first.get_or_insert(e.into());
            }
        }
        let kept = match data {
            DataDir::Temp(t) => {
                let path = t.path().to_owned();
                match t.close() {
                    Ok(()) => narrator.say("temporary data removed"),
                    Err(e) => {
                        first.get_or_insert(io(&path)(e));
                    }
                }
                None
            }
            DataDir::Kept(p) => {
                narrator.say(format!("data kept in {}", p.display()));
                Some(p)
            }
        };
        match first {
            Some(e) => Err(e),
            None => Ok(Summary {
                reports: stats.reports.load(Ordering::Relaxed),
                counted,
                kept,
            }),
        }
    }
}

async fn join(t: JoinHandle<()>, within: Duration) -> Result<(), DemoError> {
    let abort = t.abort_handle();
    match tokio::time::timeout(within, t).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if e.is_cancelled() => Ok(()),
        Ok(Err(e)) => Err(DemoError::Task(e.to_string())),
        Err(_) => {
            abort.abort();
            Ok(())
        }
    }
}

async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

fn words(c: ronde_protocol::Category) -> String {
    c.to_string().replace('_', " ")
}

/// The phones that make no reports: the story's cast (phones 0 to 4),
/// unless they are the whole city; Camille always.
fn quiet(phones: usize) -> Vec<usize> {
    if phones > CAST.len() {
        (0..CAST.len()).collect()
    } else {
        vec![CAMILLE]
    }
}

/// Make one planned report from the phone nearest to it (not the cast's).
async fn make_report(ctx: &Ctx, plan: city::PlannedReport, positions: &[(f64, f64)]) -> bool {
    let Some(i) = City::nearest(positions, plan.at, &quiet(ctx.phones.len())) else {
        return false;
    };
    match ctx.phones[i]
        .report(plan.category, plan.at.0, plan.at.1, Some(plan.precision))
        .await
    {
        Ok(_) => {
            ctx.stats.reports.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(e) => {
            ctx.stats.failed_reports.fetch_add(1, Ordering::Relaxed);
            // The error names no place: the coordinates are valid.
            tracing::warn!(error = %e, "a demo report failed");
            false
        }
    }
}

fn who(i: usize) -> String {
    CAST.get(i)
        .map(|n| format!("{n}'s phone"))
        .unwrap_or_else(|| format!("phone {i}"))
}

async fn report_loop(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut rng = ChaCha20Rng::seed_from_u64(ctx.seed ^ 0x005e_9027);
    let n = ctx.phones.len();
    let dark = city::is_dark(
        ronde_node::Clock::now(&ronde_node::SystemClock),
        ctx.utc_offset,
    );

    // The warm-up: a burst, so that the dashboard shows something at once.
    let positions = snapshot(&ctx.walkers);
    let plans = ctx.city.warm_up(
        &mut rng,
        (n * 3 / 2).max(12),
        dark,
        &positions[quiet(n).len()..],
    );
    let total = plans.len();
    ctx.narrator.say(format!(
        "warm-up: the phones send {total} reports at once from around the city, so that the \
         dashboard has something to show (it hides any count under k = 3)"
    ));
    let made = futures::stream::iter(plans.into_iter().map(|p| {
        let ctx = &ctx;
        let positions = &positions;
        async move { make_report(ctx, p, positions).await }
    }))
    .buffer_unordered(4)
    .filter(|ok| std::future::ready(*ok))
    .count()
    .await;
    ctx.narrator.say(format!(
        "warm-up done: {made} of {total} reports made and sent"
    ));

    loop {
        let now = ronde_node::Clock::now(&ronde_node::SystemClock);
        let dark = city::is_dark(now, ctx.utc_offset);
        let per_min = ctx.city.reports_per_minute(n, dark);
        // Exponential waits: reports come at random, `per_min` a minute.
        let u: f64 = 1.0 - rng.gen::<f64>();
        let wait = (-u.ln() * 60.0 / per_min).clamp(0.5, 120.0);
        if !sleep_or_stop(&mut stop, Duration::from_secs_f64(wait)).await {
            return;
        }
        let positions = snapshot(&ctx.walkers);
        let quiet = quiet(n);
        let plan = ctx
            .city
            .plan_report(&mut rng, dark, &positions[quiet.len()..]);
        let reporter = City::nearest(&positions, plan.at, &quiet);
        if make_report(&ctx, plan, &positions).await {
            let place = match plan.hotspot.and_then(|h| ctx.city.hotspots.get(h)) {
                Some(h) => format!("{}, {}", ctx.city.district(plan.at), h.name),
                None => ctx.city.district(plan.at),
            };
            ctx.narrator.say(format!(
                "{} reports {} {place} ({})",
                who(reporter.unwrap_or(0)),
                words(plan.category),
                if plan.precision == 6 {
                    "1 km cell"
                } else {
                    "150 m cell"
                }
            ));
        }
    }
}

/// Every 5 s the phones walk; each tells its node where it is every 30 s.
async fn walk_loop(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    const TICK: Duration = Duration::from_secs(5);
    let mut rng = ChaCha20Rng::seed_from_u64(ctx.seed ^ 0x3a1c);
    let mut tick: usize = 0;
    while sleep_or_stop(&mut stop, TICK).await {
        tick += 1;
        let positions: Vec<(f64, f64)> = {
            let mut w = match ctx.walkers.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            for walker in w.iter_mut() {
                walker.step(TICK.as_secs_f64(), &ctx.city, &mut rng);
            }
            w.iter().map(|w| w.pos).collect()
        };
        for (i, pos) in positions.iter().enumerate() {
            if i != CAMILLE && (i + tick).is_multiple_of(6) {
                // A phone that stopped is dealt with at shutdown.
                let _ = ctx.phones[i].set_location(pos.0, pos.1).await;
            }
        }
    }
}

/// Every 30 s, what the relay and its dashboard see; every 2 minutes the
/// places that confirm themselves send a heartbeat.
async fn status_loop(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut tick: u64 = 0;
    let mut wait = Duration::from_secs(15);
    while sleep_or_stop(&mut stop, wait).await {
        wait = Duration::from_secs(30);
        tick += 1;
        let s = &ctx.relay;
        let now = s.clock.now();
        let peers = s.node.status().await.map(|st| st.connected_peers).ok();
        let counted = s.metrics.acknowledged.load(Ordering::Relaxed);
        let k = s.config.aggregates.k;
        let (live, cells) = match s.store.live(now) {
            Ok(live) => {
                let cells = ronde_relay::query::live_cells(&live, &Default::default(), k);
                (live.len(), cells.len())
            }
            Err(_) => (0, 0),
        };
        ctx.narrator.say(format!(
            "relay: {} phones connected, {counted} reports counted ({live} live); the dashboard \
             shows {cells} cells with at least k = {k} live reports",
            peers.unwrap_or(0)
        ));
        if tick.is_multiple_of(4) {
            if let Err(e) = directory::beat(&s.directory, &ctx.confirming, now) {
                tracing::warn!(error = %e, "a demo heartbeat was refused");
            }
        }
    }
}
