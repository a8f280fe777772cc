//! Wiring: [`Relay::start`] builds every part of a running relay in one
//! readable function, [`Relay::shutdown`] takes it apart without losing
//! anything, and [`run_server`] runs one until a signal.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use ronde_node::directory::{FlagSubmission, FlagVerdict};
use ronde_node::{Clock, GossipTuning, Node, NodeConfig, NodeError, NodeEvent, SystemClock};
use ronde_protocol::directory::{RelayEntry, RelayRoles, MAX_RELAY_ADDRS};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{ConfigError, RelayConfig};
use crate::directory::{DirError, DirectoryService};
use crate::http;
use crate::keys::{self, KeyError};
use crate::metrics::Metrics;
use crate::query::Filter;
use crate::rules::{format_day, Observation, Rules, HOUR};
use crate::state::{accept_flag, summary};
use crate::store::{RelayStore, StoreError};

/// The state every part of a running relay shares, as [`Relay::shared`]
/// hands it out (it lives in [`crate::state`], below the HTTP routes).
pub use crate::state::Shared;

/// How often expired report ids, old aggregates and old flags are purged.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(30);
/// How often the directory is re-signed even if nothing changed.
pub const RESIGN_INTERVAL: Duration = Duration::from_secs(3_600);
/// Most node events written in one batch (one flush).
pub const MAX_BATCH: usize = 512;
/// How often the relay checks that last week's summary is written.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(6 * 3_600);
/// Flags from phones over libp2p waiting to be checked; when full, phones
/// are told to try again later.
pub const FLAG_QUEUE: usize = 256;

/// Why the relay could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The city key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The relay's database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node.
    #[error("the relay's node failed: {0}")]
    Node(#[from] NodeError),
    /// The directory.
    #[error("the directory could not be signed: {0}")]
    Directory(#[from] DirError),
    /// An HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A file or directory could not be written.
    #[error("{path}: {source}")]
    Io {
        /// Which.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A background task panicked.
    #[error("a relay task failed: {0}")]
    Task(String),
}

/// A last-minute change to the node's configuration.
pub type NodeTweak = Box<dyn FnOnce(&mut NodeConfig) + Send>;

/// Options that tests (and embedders) change; `Default` is production.
pub struct StartOptions {
    /// The source of time, for the node and the aggregates.
    pub clock: Arc<dyn Clock>,
    /// Last-minute changes to the node's configuration (tests: memory
    /// transport, a low proof-of-work difficulty).
    pub node_tweak: Option<NodeTweak>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            clock: Arc::new(SystemClock),
            node_tweak: None,
        }
    }
}

/// A running relay.
pub struct Relay {
    shared: Arc<Shared>,
    dashboard_addr: SocketAddr,
    public_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    http: Vec<JoinHandle<std::io::Result<()>>>,
    ingest: JoinHandle<()>,
    maintenance: JoinHandle<()>,
    directory: JoinHandle<()>,
    flags: JoinHandle<()>,
    tokens: JoinHandle<()>,
}

/// The node configuration of a relay: a whole city of areas, many
/// connections and reports, no mDNS, the relay and mailbox services, the
/// public addresses announced, and a stable peer id kept in
/// `<data_dir>/peer-key` (phones dial the relay by it).
pub fn node_config(
    config: &RelayConfig,
    areas: usize,
    clock: Arc<dyn Clock>,
) -> Result<NodeConfig, RelayError> {
    let mut n = NodeConfig::new(config.data_dir.join("node"));
    n.listen = config.listen_addrs()?;
    n.bootstrap = config.bootstrap_addrs()?;
    n.mdns = false;
    n.max_areas = areas.max(1);
    n.max_reports = config.network.max_reports;
    n.max_connections = config.network.max_connections;
    n.clock = clock;
    n.relay_server = config.network.relay_server;
    n.relay_reservation_duration = Duration::from_secs(config.network.reservation_secs.max(1));
    n.mailbox_host = config.network.mailbox_host;
    if config.network.gossip_hub {
        n.gossip = GossipTuning::hub();
    }
    // A relay keeps its own mesh even when its directory lists hubs.
    n.gossip_beside_hubs = None;
    n.circle.mailbox_limits.push.enabled = config.network.push_wakeups;
    n.external_addresses = config.public_addrs()?;
    n.identity_file = Some(config.peer_key_path());
    Ok(n)
}

/// The relays the directory lists: this one first (its peer id, its public
/// addresses, or else the addresses it listens on that a peer can dial; its
/// roles from its configuration; its operator), then the configured others.
async fn listed_relays(config: &RelayConfig, node: &Node) -> Result<Vec<RelayEntry>, RelayError> {
    let mut addrs = config.public_addrs()?;
    if addrs.is_empty() {
        addrs = node
            .listen_addrs()
            .await?
            .into_iter()
            .filter(|a| {
                !a.iter().any(|p| match p {
                    Protocol::Ip4(ip) => ip.is_unspecified(),
                    Protocol::Ip6(ip) => ip.is_unspecified(),
                    _ => false,
                })
            })
            .collect();
    }
    let mut roles = RelayRoles::BOOTSTRAP;
    if config.network.mailbox_host {
        roles = roles.with(RelayRoles::MAILBOX).with(RelayRoles::SWITCH);
    }
    if config.network.relay_server {
        roles = roles.with(RelayRoles::CIRCUIT);
    }
    if config.network.gossip_hub {
        roles = roles.with(RelayRoles::GOSSIP);
    }
    let own = RelayEntry {
        peer: node.peer_id().to_bytes(),
        roles,
        operator: config.operator().to_owned(),
        addrs: addrs
            .iter()
            .take(MAX_RELAY_ADDRS)
            .map(ToString::to_string)
            .collect(),
    };
    let mut out = Vec::new();
    match own.check() {
        Ok(()) => out.push(own),
        Err(e) => tracing::warn!(
            error = %e,
            "this relay is not listed in its directory (set network.public_addresses)"
        ),
    }
    for r in &config.directory.relays {
        out.push(r.entry()?);
    }
    Ok(out)
}

impl Relay {
    /// Start a relay: open the database, load the city key, start the node
    /// and follow the city, sign the directory, start ingesting, and listen
    /// on the dashboard and public HTTP addresses.
    pub async fn start(config: RelayConfig, options: StartOptions) -> Result<Relay, RelayError> {
        config.check()?;
        let clock = options.clock;
        let areas = config.jurisdiction.areas()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| RelayError::Io {
            path: config.data_dir.clone(),
            source,
        })?;

        // 1. Keys and storage.
        let city_key = keys::load_key(&config.key_path())?;
        let store = RelayStore::open(&config.data_dir)?;

        // 2. The node, following every area of the city, taking flags.
        let mut node_cfg = node_config(&config, areas.len(), clock.clone())?;
        let (flag_tx, flag_rx) = mpsc::channel(FLAG_QUEUE);
        node_cfg.flag_sink = Some(flag_tx);
        let (token_tx, token_rx) = mpsc::channel(FLAG_QUEUE);
        node_cfg.token_sink = Some(token_tx);
        if let Some(tweak) = options.node_tweak {
            tweak(&mut node_cfg);
        }
        let node = Node::start(node_cfg).await?;
        // Subscribe before following, so that no report is missed.
        let events = node.events();
        node.set_areas(areas.clone()).await?;

        // 3. The directory, signed now, listing this relay and the others
        // configured: phones take their mailbox and switch hosts from it.
        let relays = listed_relays(&config, &node).await?;
        let directory = DirectoryService::new(
            store.clone(),
            city_key,
            config.city.clone(),
            config.directory.clone(),
            relays,
        );
        // The token issuer's keys of today and tomorrow go into it.
        let policy = Box::new(crate::tokens::PowQuota::new(
            crate::tokens::DEFAULT_ISSUE_DIFFICULTY,
            crate::tokens::TOKENS_PER_IDENTITY,
        ));
        let key_dir = config.data_dir.join("token-keys");
        let mut tokens =
            crate::tokens::TokenIssuer::with_key_dir(policy, &key_dir).map_err(|source| {
                RelayError::Io {
                    path: key_dir.clone(),
                    source,
                }
            })?;
        match tokens.rotate(clock.now()) {
            Ok(_) => directory.set_token_keys(tokens.token_keys()),
            Err(e) => tracing::warn!(error = %e, "could not make the token keys"),
        }
        directory.rebuild(clock.now())?;
        // The node serves it to phones over `/ronde/directory/1`.
        let city_public = directory.public_key();
        let signed_now = directory.subscribe();
        if let Err(e) = node
            .set_directory(city_public, directory.signed().as_ref().clone())
            .await
        {
            // Phones can still fetch it over HTTP; the next signature
            // (within the hour) tries again.
            tracing::warn!(error = %e, "the node refused the relay's directory");
        }

        let shared = Arc::new(Shared {
            rules: Rules::new(areas.iter().copied()),
            areas,
            store,
            directory,
            metrics: Metrics::default(),
            clock,
            node: node.clone(),
            sessions: Mutex::new(HashMap::new()),
            tokens: Mutex::new(tokens),
            config,
        });
        let (stop, stop_rx) = watch::channel(false);

        // 4. Ingest: node events → aggregates (after a catch-up).
        let ingest = tokio::spawn(ingest_loop(shared.clone(), events, stop_rx.clone()));
        // 5. Maintenance: purge, re-sign.
        let maintenance = tokio::spawn(maintenance_loop(shared.clone(), stop_rx.clone()));
        // Every newly signed directory to the node; phones' flags from the
        // node to the store.
        let directory = tokio::spawn(directory_loop(shared.clone(), signed_now, stop_rx.clone()));
        let flags = tokio::spawn(flag_loop(shared.clone(), flag_rx, stop_rx.clone()));
        let tokens = tokio::spawn(token_loop(shared.clone(), token_rx, stop_rx.clone()));

        // 6. HTTP: the operator's dashboard and the public endpoints.
        let mut http = Vec::new();
        let dash_bind = shared.config.dashboard_addr()?;
        let (dashboard_addr, task) = serve(
            dash_bind,
            http::dashboard_router(shared.clone()),
            stop_rx.clone(),
        )
        .await?;
        http.push(task);
        let mut public_addr = None;
        if let Some(bind) = shared.config.public_addr()? {
            let (addr, task) =
                serve(bind, http::public_router(shared.clone()), stop_rx.clone()).await?;
            public_addr = Some(addr);
            http.push(task);
        }
        tracing::info!(
            city = %shared.config.city,
            areas = shared.areas.len(),
            %dashboard_addr,
            public = ?public_addr,
            "relay started"
        );
        Ok(Relay {
            shared,
            dashboard_addr,
            public_addr,
            stop,
            http,
            ingest,
            maintenance,
            directory,
            flags,
            tokens,
        })
    }

    /// Replace the token issuance policy (the default is
    /// [`crate::tokens::PowQuota`] at [`crate::tokens::DEFAULT_ISSUE_DIFFICULTY`];
    /// a deployment puts device attestation here, tests a lower difficulty).
    pub fn set_issuance_policy(&self, policy: Box<dyn crate::tokens::IssuancePolicy>) {
        if let Ok(mut t) = self.shared.tokens.lock() {
            t.set_policy(policy);
        }
    }

    /// The city's public key (phones should be given it out of band).
    pub fn city_key(&self) -> ronde_protocol::directory::DirectoryPublicKey {
        self.shared.directory.public_key()
    }

    /// The relay's node.
    pub fn node(&self) -> &Node {
        &self.shared.node
    }

    /// Where the dashboard listens.
    pub fn dashboard_addr(&self) -> SocketAddr {
        self.dashboard_addr
    }

    /// Where the public endpoints listen, if enabled.
    pub fn public_addr(&self) -> Option<SocketAddr> {
        self.public_addr
    }

    /// The shared state (store, directory, metrics).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stop: close the HTTP listeners (finishing requests in flight), count
    /// the reports already received and flush them, stop the node (which
    /// flushes its own store), and flush the database.
    pub async fn shutdown(self) -> Result<(), RelayError> {
        let _ = self.stop.send(true);
        for h in self.http {
            match h.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server stopped with an error"),
                Err(e) => return Err(RelayError::Task(e.to_string())),
            }
        }
        self.ingest
            .await
            .map_err(|e| RelayError::Task(e.to_string()))?;
        self.maintenance
            .await
            .map_err(|e| RelayError::Task(e.to_string()))?;
        self.directory
            .await
            .map_err(|e| RelayError::Task(e.to_string()))?;
        self.flags
            .await
            .map_err(|e| RelayError::Task(e.to_string()))?;
        self.tokens
            .await
            .map_err(|e| RelayError::Task(e.to_string()))?;
        match self.shared.node.shutdown().await {
            Ok(()) | Err(NodeError::Stopped) => {}
            Err(e) => return Err(e.into()),
        }
        self.shared.store.flush().await?;
        tracing::info!("relay stopped; everything is on disk");
        Ok(())
    }
}

async fn serve(
    bind: SocketAddr,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<std::io::Result<()>>), RelayError> {
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|source| RelayError::Bind { addr: bind, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| RelayError::Bind { addr: bind, source })?;
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    });
    Ok((addr, task))
}

/// Run a relay until `shutdown` resolves (e.g. SIGTERM or Ctrl-C), then stop
/// it cleanly.
pub async fn run_server(
    config: RelayConfig,
    options: StartOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RelayError> {
    let relay = Relay::start(config, options).await?;
    shutdown.await;
    tracing::info!("stopping the relay");
    relay.shutdown().await
}

/// The observation carried by a node event, if it is a report.
fn observation_of(ev: &NodeEvent) -> Option<Observation> {
    #[allow(unreachable_patterns)]
    match ev {
        NodeEvent::Report(r) => Some(Observation::from(r)),
        _ => None,
    }
}

/// Count a batch, flush it, and only then count it as acknowledged.
async fn ingest_batch(shared: &Shared, batch: &[Observation]) {
    if batch.is_empty() {
        return;
    }
    let now = shared.clock.now();
    let mut accepted = 0;
    // One transaction for the batch. The node verified every report before
    // announcing it: nothing is verified again here.
    match shared.store.ingest_many(&shared.rules, batch, now) {
        Ok(counted) => {
            for c in counted {
                match c {
                    Ok(Ok(_)) => accepted += 1,
                    Ok(Err(refusal)) => shared.metrics.refuse(refusal),
                    Err(e) => {
                        shared.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "could not count a report");
                    }
                }
            }
        }
        Err(e) => {
            shared.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, reports = batch.len(), "could not count a batch of reports");
        }
    }
    shared
        .metrics
        .accepted
        .fetch_add(accepted, Ordering::Relaxed);
    match shared.store.flush().await {
        Ok(()) => {
            shared
                .metrics
                .acknowledged
                .fetch_add(accepted, Ordering::Relaxed);
        }
        Err(e) => {
            shared.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "could not flush the aggregates");
        }
    }
}

/// Read every live report the node holds and count those not counted yet:
/// at start (reports stored by the node but not counted before a crash)
/// and after falling behind the event stream.
async fn catch_up(shared: &Shared) {
    // Any point and a radius larger than the Earth: every live report.
    match shared.node.nearby(0.0, 0.0, 1.0e9).await {
        Ok(nearby) => {
            let batch: Vec<Observation> = nearby.reports.iter().map(Observation::from).collect();
            for chunk in batch.chunks(MAX_BATCH) {
                ingest_batch(shared, chunk).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read the node's live reports"),
    }
    shared.metrics.catch_ups.fetch_add(1, Ordering::Relaxed);
}

async fn ingest_loop(
    shared: Arc<Shared>,
    mut events: broadcast::Receiver<NodeEvent>,
    mut stop: watch::Receiver<bool>,
) {
    catch_up(&shared).await;
    loop {
        let mut batch = Vec::new();
        let mut lagged = false;
        let mut closed = false;
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => batch.extend(observation_of(&ev)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    shared.metrics.lagged.fetch_add(n, Ordering::Relaxed);
                    lagged = true;
                }
                Err(broadcast::error::RecvError::Closed) => closed = true,
            },
            _ = stop.wait_for(|s| *s) => closed = true,
        }
        // Take whatever else is already waiting, up to a batch.
        while batch.len() < MAX_BATCH {
            match events.try_recv() {
                Ok(ev) => batch.extend(observation_of(&ev)),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    shared.metrics.lagged.fetch_add(n, Ordering::Relaxed);
                    lagged = true;
                }
                Err(_) => break,
            }
        }
        ingest_batch(&shared, &batch).await;
        if lagged {
            tracing::warn!("the relay fell behind the node's events; catching up");
            catch_up(&shared).await;
        }
        if closed && batch.len() < MAX_BATCH {
            break;
        }
    }
}

/// Make today's and tomorrow's token keys if a day began, and re-sign the
/// directory with them.
fn rotate_token_keys(shared: &Shared) {
    let now = shared.clock.now();
    let keys = match shared.tokens.lock() {
        Ok(mut t) => match t.rotate(now) {
            Ok(true) => t.token_keys(),
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not make the token keys");
                return;
            }
        },
        Err(_) => return,
    };
    shared.directory.set_token_keys(keys);
    if let Err(e) = shared.directory.rebuild(now) {
        tracing::warn!(error = %e, "could not re-sign the directory");
    }
}

async fn maintenance_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut purge = tokio::time::interval(PURGE_INTERVAL);
    let mut resign = tokio::time::interval(RESIGN_INTERVAL);
    let mut weekly = tokio::time::interval(SUMMARY_INTERVAL);
    weekly.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resign.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first ticks fire at once; the directory was just signed.
    resign.tick().await;
    loop {
        tokio::select! {
            _ = purge.tick() => {
                let now = shared.clock.now();
                let keep_hours = u64::from(shared.config.aggregates.retention_days) * 24;
                let keep_from = u32::try_from((now / HOUR).saturating_sub(keep_hours)).unwrap_or(0);
                match shared.store.purge(now, keep_from) {
                    Ok((ids, rows)) if ids + rows > 0 => {
                        tracing::debug!(ids, rows, "purged expired report ids and old aggregates");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        shared.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "purge failed");
                    }
                }
            }
            _ = resign.tick() => {
                // A new day: today's and tomorrow's token keys (an RSA
                // prime search, off the runtime's async workers).
                // Re-signed at once when the keys changed.
                let s = shared.clone();
                drop(tokio::task::spawn_blocking(move || rotate_token_keys(&s)));
                if let Err(e) = shared.directory.rebuild(shared.clock.now()) {
                    tracing::warn!(error = %e, "could not re-sign the directory");
                }
            }
            _ = weekly.tick() => {
                match write_weekly_summary(&shared) {
                    Ok(Some(path)) => tracing::info!(path = %path.display(), "wrote last week's summary"),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "could not write last week's summary"),
                }
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
}

/// Hand every newly signed directory to the node, which serves it.
async fn directory_loop(
    shared: Arc<Shared>,
    mut signed: watch::Receiver<Arc<Vec<u8>>>,
    mut stop: watch::Receiver<bool>,
) {
    let city = shared.directory.public_key();
    loop {
        let changed = tokio::select! {
            changed = signed.changed() => changed.is_ok(),
            _ = stop.wait_for(|s| *s) => false,
        };
        if !changed {
            break;
        }
        let bytes: Arc<Vec<u8>> = Arc::clone(&signed.borrow_and_update());
        match shared
            .node
            .set_directory(city, bytes.as_ref().clone())
            .await
        {
            Ok(serial) => tracing::debug!(serial, "the node serves the new directory"),
            Err(NodeError::Stopped) => break,
            Err(e) => tracing::warn!(error = %e, "the node refused the new directory"),
        }
    }
}

/// Count the flags phones send to the relay's node over libp2p, into the
/// same store as `POST /flags`. The sender learns only the verdict; the
/// relay learns nothing about the sender from the flag.
async fn flag_loop(
    shared: Arc<Shared>,
    mut flags: mpsc::Receiver<FlagSubmission>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let sub = tokio::select! {
            sub = flags.recv() => sub,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(sub) = sub else {
            break;
        };
        let verdict = match accept_flag(&shared, sub.bytes).await {
            Some(Ok(true)) => FlagVerdict::Counted,
            Some(Ok(false)) => FlagVerdict::Duplicate,
            Some(Err(DirError::Store(e))) => {
                tracing::warn!(error = %e, "could not count a flag");
                FlagVerdict::Unavailable
            }
            Some(Err(e)) => {
                tracing::debug!(reason = %e, "refused a flag");
                FlagVerdict::Refused
            }
            None => FlagVerdict::Unavailable,
        };
        let _ = sub.reply.send(verdict);
    }
}

/// Answer the requests for tokens that phones send to the relay's node
/// over `/ronde/token/1`, with the issuer, off the runtime (a batch is 24
/// RSA signatures). The identity is the connection the request came on.
async fn token_loop(
    shared: Arc<Shared>,
    mut requests: mpsc::Receiver<ronde_node::tokens::TokenSubmission>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let sub = tokio::select! {
            sub = requests.recv() => sub,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(sub) = sub else {
            break;
        };
        let s = shared.clone();
        let identity = crate::tokens::Identity(sub.identity);
        let request = sub.request;
        let answer = tokio::task::spawn_blocking(move || {
            let now = s.clock.now();
            s.tokens
                .lock()
                .map(|mut t| t.answer(&identity, &request, now))
                .unwrap_or(ronde_protocol::token::IssueResponse::Unavailable)
        })
        .await
        .unwrap_or(ronde_protocol::token::IssueResponse::Unavailable);
        let _ = sub.reply.send(answer);
    }
}

/// Write the summary of the last complete week (Monday to Sunday, local
/// days) to `<data_dir>/summaries/summary-<from>-to-<to>.html` unless it is
/// there already; the city can send it to its services. Returns the path
/// when it wrote one.
pub fn write_weekly_summary(shared: &Shared) -> Result<Option<std::path::PathBuf>, RelayError> {
    let today = shared.config.local_time().day_of(shared.clock.now());
    // 1970-01-01 was a Thursday: Monday is 0.
    let weekday = (today + 3).rem_euclid(7);
    let to_day = today - weekday - 1;
    let from_day = to_day - 6;
    let dir = shared.config.data_dir.join("summaries");
    let path = dir.join(format!(
        "summary-{}-to-{}.html",
        format_day(from_day),
        format_day(to_day)
    ));
    if path.exists() {
        return Ok(None);
    }
    let f = Filter {
        from_day,
        to_day,
        categories: Default::default(),
        bands: Default::default(),
    };
    let html = summary(shared, &f, crate::query::Lang::En)?;
    let io = |source| RelayError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    std::fs::write(&path, html).map_err(io)?;
    Ok(Some(path))
}
