//! `relay.toml`: what a city operator configures.
//!
//! Every field has a default except the city's name and its jurisdiction;
//! [`TEMPLATE`] is the commented file `ronde relay init` writes.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use libp2p::{Multiaddr, PeerId};
use ronde_protocol::directory::{RelayEntry, RelayRoles, MAX_OPERATOR_LEN, MAX_RELAYS};
use ronde_protocol::{area_of, Area, AREA_PRECISION};
use serde::{Deserialize, Serialize};

use crate::rules::LocalTime;

/// The most areas a relay follows (the node's limit).
pub const MAX_AREAS: usize = ronde_node::config::MAX_PEER_AREAS;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML for this format.
    #[error("{path} is not a valid relay configuration: {message}")]
    Parse {
        /// Which file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

fn invalid(s: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(s.into())
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// The city's name, shown on the dashboard and signed into the directory.
    pub city: String,
    /// Where the relay keeps its databases.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The city's directory signing key (hex secret, mode 0600). Relative
    /// paths are relative to `data_dir`.
    #[serde(default = "default_key_file")]
    pub city_key_file: PathBuf,
    /// Which part of the world the relay follows.
    pub jurisdiction: Jurisdiction,
    /// Peer-to-peer side.
    #[serde(default)]
    pub network: Network,
    /// HTTP listeners.
    #[serde(default)]
    pub http: Http,
    /// Aggregates and their suppression.
    #[serde(default)]
    pub aggregates: Aggregates,
    /// The signed directory of safe places and mediators.
    #[serde(default)]
    pub directory: DirectorySettings,
    /// The city's basemap.
    #[serde(default)]
    pub map: MapSettings,
}

/// The basemap (`[map]`): a PMTiles vector extract of the city, served whole
/// to phones (which cache it) and by byte ranges to the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapSettings {
    /// The PMTiles file, relative to `data_dir` unless absolute; empty: no
    /// basemap (the maps show cells on a plain background).
    #[serde(default)]
    pub basemap: PathBuf,
}

/// The areas a relay follows: geohash prefixes (of at most 5 characters:
/// each stands for all the precision-5 areas under it) and/or a bounding box
/// (every area it touches). At most 256 areas (about 6 000 km²).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jurisdiction {
    /// Geohash prefixes, 1 to 5 characters.
    #[serde(default)]
    pub geohash_prefixes: Vec<String>,
    /// `[min_lat, min_lon, max_lat, max_lon]`.
    #[serde(default)]
    pub bbox: Option<[f64; 4]>,
    /// The city's IANA time zone (`Europe/Paris`): local days and times of
    /// day are read in it, daylight saving time included. Empty: the fixed
    /// `utc_offset_hours`.
    #[serde(default)]
    pub time_zone: String,
    /// A fixed offset from UTC, whole hours, when `time_zone` is empty
    /// (daylight saving time is then not followed).
    #[serde(default)]
    pub utc_offset_hours: i32,
}

/// The relay's node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// libp2p listen addresses.
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// Addresses under which phones reach the relay, announced to peers as
    /// the node's external addresses (the circuit relay serves once it has
    /// one; without any, the listen addresses are announced).
    #[serde(default)]
    pub public_addresses: Vec<String>,
    /// Peers dialed at start (other relays).
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// Serve as a libp2p circuit relay and a Kademlia server for phones.
    #[serde(default = "yes")]
    pub relay_server: bool,
    /// How long a phone's circuit reservation lasts, in seconds (it renews
    /// it at three quarters of that, on the same connection).
    #[serde(default = "default_reservation_secs")]
    pub reservation_secs: u64,
    /// Host trusted-circle mailboxes and dead-man's switches.
    #[serde(default = "yes")]
    pub mailbox_host: bool,
    /// Be a hub of the city's gossip (the directory's `gossip` role,
    /// docs/protocol.md §3.2): every phone of an area connected to this
    /// relay is in its mesh, so each report reaches them all in one hop,
    /// and the phones keep this relay in their meshes.
    #[serde(default = "yes")]
    pub gossip_hub: bool,
    /// Wake phones through their UnifiedPush endpoints when mail arrives
    /// in mailboxes they registered (with `mailbox_host`; needs outbound
    /// HTTPS to the push servers).
    #[serde(default = "yes")]
    pub push_wakeups: bool,
    /// Cap on open connections.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Cap on live reports the node keeps.
    #[serde(default = "default_max_reports")]
    pub max_reports: usize,
}

/// The HTTP listeners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// Public listener: `/healthz`, `/directory`, heartbeats and flags.
    /// Empty string: no public listener.
    #[serde(default = "default_public_bind")]
    pub public_bind: String,
    /// Operator listener: dashboard, JSON API, exports, `/metrics`.
    #[serde(default = "default_dashboard_bind")]
    pub dashboard_bind: String,
    /// The operator's token (dashboard login and `Authorization: Bearer`,
    /// which scripts and the `/metrics` scraper send). At least 16
    /// characters.
    #[serde(default)]
    pub operator_token: String,
    /// Map tiles, `{z}/{x}/{y}` placeholders; empty for none. The overlay
    /// is drawn without them when they cannot be loaded.
    #[serde(default = "default_tile_url")]
    pub tile_url: String,
    /// Attribution shown under the map.
    #[serde(default = "default_attribution")]
    pub tile_attribution: String,
}

/// Aggregates and suppression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregates {
    /// No count below `k` is shown or exported.
    #[serde(default = "default_k")]
    pub k: u64,
    /// Also suppress the atomic buckets (cell × category × day × band) under
    /// `k` before adding up.
    #[serde(default)]
    pub strict: bool,
    /// Days aggregates are kept.
    #[serde(default = "default_retention")]
    pub retention_days: u32,
}

/// Directory settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySettings {
    /// How long one signed directory document is valid, hours (it is
    /// re-signed every hour).
    #[serde(default = "default_doc_hours")]
    pub document_validity_hours: u32,
    /// How long a listing holds after the city (re)confirms it, days.
    #[serde(default = "default_listing_days")]
    pub listing_validity_days: u32,
    /// How long one heartbeat of a place keeps it fresh, days.
    #[serde(default = "default_heartbeat_days")]
    pub heartbeat_ttl_days: u32,
    /// Proof-of-work bits a flag must carry.
    #[serde(default = "default_flag_difficulty")]
    pub flag_min_difficulty: u8,
    /// Who runs this relay, as listed in the directory (phones deposit a
    /// switch with relays of two different operators). Empty: the city.
    #[serde(default)]
    pub operator: String,
    /// Other relays of the city, listed in the signed directory beside
    /// this one: phones take their mailbox and switch hosts from the list.
    #[serde(default)]
    pub relays: Vec<ListedRelay>,
}

/// Another relay the city lists in its directory (`[[directory.relays]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedRelay {
    /// Its libp2p peer id (`12D3Koo…`).
    pub peer_id: String,
    /// Who runs it.
    pub operator: String,
    /// Its public addresses (multiaddrs, without `/p2p/`), 1 to 8.
    pub addresses: Vec<String>,
    /// What it does: `mailbox`, `switch`, `circuit`, `bootstrap`, `gossip`.
    pub roles: Vec<String>,
}

fn yes() -> bool {
    true
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/ronde-relay")
}
fn default_key_file() -> PathBuf {
    PathBuf::from("city.key")
}
fn default_listen() -> Vec<String> {
    vec![
        "/ip4/0.0.0.0/tcp/4001".into(),
        "/ip4/0.0.0.0/udp/4001/quic-v1".into(),
    ]
}
fn default_max_connections() -> u32 {
    2_048
}
fn default_max_reports() -> usize {
    200_000
}
fn default_public_bind() -> String {
    "0.0.0.0:8080".into()
}
fn default_dashboard_bind() -> String {
    "127.0.0.1:8081".into()
}
fn default_tile_url() -> String {
    String::new()
}
fn default_attribution() -> String {
    String::new()
}
fn default_k() -> u64 {
    3
}
fn default_retention() -> u32 {
    730
}
fn default_doc_hours() -> u32 {
    48
}
fn default_listing_days() -> u32 {
    90
}
fn default_heartbeat_days() -> u32 {
    7
}
fn default_flag_difficulty() -> u8 {
    ronde_protocol::pow::MIN_DIFFICULTY
}

fn default_reservation_secs() -> u64 {
    ronde_node::config::DEFAULT_RELAY_RESERVATION_DURATION.as_secs()
}

impl Default for Network {
    fn default() -> Self {
        Network {
            listen: default_listen(),
            public_addresses: Vec::new(),
            bootstrap: Vec::new(),
            relay_server: true,
            reservation_secs: default_reservation_secs(),
            mailbox_host: true,
            gossip_hub: true,
            push_wakeups: true,
            max_connections: default_max_connections(),
            max_reports: default_max_reports(),
        }
    }
}

impl Default for Http {
    fn default() -> Self {
        Http {
            public_bind: default_public_bind(),
            dashboard_bind: default_dashboard_bind(),
            operator_token: String::new(),
            tile_url: default_tile_url(),
            tile_attribution: default_attribution(),
        }
    }
}

impl Default for Aggregates {
    fn default() -> Self {
        Aggregates {
            k: default_k(),
            strict: false,
            retention_days: default_retention(),
        }
    }
}

impl Default for DirectorySettings {
    fn default() -> Self {
        DirectorySettings {
            document_validity_hours: default_doc_hours(),
            listing_validity_days: default_listing_days(),
            heartbeat_ttl_days: default_heartbeat_days(),
            flag_min_difficulty: default_flag_difficulty(),
            operator: String::new(),
            relays: Vec::new(),
        }
    }
}

/// What `ronde relay init` writes; `{city}`, `{data_dir}`, `{prefixes}`,
/// `{bbox}` and `{token}` are filled in.
pub const TEMPLATE: &str = r#"# Ronde city relay configuration (see docs/operator-guide.md).
# Run with: ronde relay --config relay.toml

# The city's name: shown on the dashboard and signed into the directory.
city = "{city}"

# Where the relay keeps its databases (aggregates, directory, the node's
# live reports). Back it up with the city key below.
data_dir = "{data_dir}"

# The city's directory signing key: 64 hex digits, mode 0600. Relative to
# data_dir unless absolute. Phones are configured with its public half
# (`ronde relay key` prints it). Losing it means re-keying every phone.
city_key_file = "city.key"

[jurisdiction]
# The precision-5 geohash areas (about 5 km x 5 km) the relay follows: give
# prefixes of 1 to 5 characters, a bounding box, or both. At most 256 areas.
geohash_prefixes = [{prefixes}]
{bbox}
# The city's time zone (IANA name) for local days and time-of-day bands,
# daylight saving time included. (Empty: a fixed utc_offset_hours instead.)
time_zone = "Europe/Paris"

[network]
# libp2p listen addresses (TCP and QUIC).
listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
# How phones reach this relay from the internet.
public_addresses = []
# Other relays to connect to at start (multiaddrs ending in /p2p/<peer id>).
bootstrap = []
# Help phones behind NAT (circuit relay v2) and answer DHT queries.
relay_server = true
# How long a phone's circuit reservation lasts, in seconds (it renews it at
# three quarters of that).
reservation_secs = 3600
# Host trusted-circle mailboxes and dead-man's switches.
mailbox_host = true
# Be a hub of the city's gossip: pass every report to every connected
# phone of its area at once (phones keep the hubs the directory lists in
# their meshes; about one copy of each report per connected phone).
gossip_hub = true
# Wake phones through their UnifiedPush endpoints when mail arrives for
# them (outbound HTTPS POSTs to push servers, a constant body).
push_wakeups = true
max_connections = 2048
# Live reports the node keeps (they expire after about 30 minutes).
max_reports = 200000

[http]
# Public: /healthz, /directory (signed), /directory/heartbeat, /flags.
# Set to "" to disable.
public_bind = "0.0.0.0:8080"
# Operator: dashboard, JSON API, exports, /metrics. Keep it private
# (localhost, a VPN, or a reverse proxy with TLS).
dashboard_bind = "127.0.0.1:8081"
# The operator's token: dashboard login and `Authorization: Bearer`
# (scripts, and Prometheus for /metrics).
operator_token = "{token}"
# Map tiles, e.g. "https://tile.openstreetmap.org/{z}/{x}/{y}.png" (mind
# the tile server's usage policy). Empty: the map is drawn without tiles.
tile_url = ""
tile_attribution = ""

[aggregates]
# No cell, category, band or day with fewer than k reports is ever shown
# or exported.
k = 3
# Also suppress each cell x category x day x time-of-day bucket under k
# before adding up (stronger against differencing, shows less).
strict = false
# Days the hourly aggregates are kept. Raw reports are never kept past
# their expiry.
retention_days = 730

[directory]
# Validity of one signed directory document (re-signed every hour).
document_validity_hours = 48
# A listing expires this long after the city (re)confirms it...
listing_validity_days = 90
# ...or this long after the place's own last heartbeat.
heartbeat_ttl_days = 7
# Proof of work a flag from a phone must carry (bits).
flag_min_difficulty = 18
# Who runs this relay, as the directory lists it ("" : the city's name).
# Phones deposit a journey's dead-man's switch with relays of two
# different operators, and take mailbox and switch hosts only from the
# relays listed here (this one, and those below) or from their own settings.
operator = ""
# Other relays of the city, listed in the signed directory:
# [[directory.relays]]
# peer_id = "12D3KooW..."
# operator = "Association Nuits Solidaires"
# addresses = ["/ip4/203.0.113.7/tcp/4001"]
# roles = ["mailbox", "switch", "circuit", "bootstrap", "gossip"]

[map]
# The city's basemap: a PMTiles vector extract (see the operator guide for
# how to make one). Relative to data_dir unless absolute. Served whole at
# /basemap.pmtiles on the public listener (phones fetch it once and keep
# it) and by byte ranges to the dashboard. Empty: no basemap.
basemap = ""
"#;

impl RelayConfig {
    /// Read and check a configuration file.
    pub fn load(path: &Path) -> Result<RelayConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = RelayConfig::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Parse and check TOML text.
    pub fn parse(text: &str) -> Result<RelayConfig, ConfigError> {
        let config: RelayConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.check()?;
        Ok(config)
    }

    /// Check values that parse but make no sense.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.city.trim().is_empty() || self.city.len() > ronde_protocol::directory::MAX_CITY_LEN
        {
            return Err(invalid("city must be 1 to 64 bytes"));
        }
        self.jurisdiction.areas()?;
        if !(-12..=14).contains(&self.jurisdiction.utc_offset_hours) {
            return Err(invalid("utc_offset_hours must be between -12 and 14"));
        }
        if !self.jurisdiction.time_zone.is_empty() {
            LocalTime::zone(&self.jurisdiction.time_zone).map_err(|e| {
                invalid(format!(
                    "time_zone {:?} is not an IANA time zone this machine knows: {e}",
                    self.jurisdiction.time_zone
                ))
            })?;
        }
        if self.aggregates.k == 0 {
            return Err(invalid("aggregates.k must be at least 1"));
        }
        if self.aggregates.retention_days == 0 {
            return Err(invalid("aggregates.retention_days must be at least 1"));
        }
        if self.http.operator_token.chars().count() < 16 {
            return Err(invalid(
                "http.operator_token must be at least 16 characters (ronde relay init makes one)",
            ));
        }
        self.dashboard_addr()?;
        self.public_addr()?;
        self.listen_addrs()?;
        self.bootstrap_addrs()?;
        for a in &self.network.public_addresses {
            a.parse::<Multiaddr>()
                .map_err(|e| invalid(format!("network.public_addresses: {a:?}: {e}")))?;
        }
        let d = &self.directory;
        if d.document_validity_hours == 0 || d.document_validity_hours > 24 * 30 {
            return Err(invalid(
                "directory.document_validity_hours must be 1 to 720",
            ));
        }
        if d.listing_validity_days == 0 || d.listing_validity_days > 366 {
            return Err(invalid("directory.listing_validity_days must be 1 to 366"));
        }
        if d.heartbeat_ttl_days == 0 || d.heartbeat_ttl_days > 30 {
            return Err(invalid("directory.heartbeat_ttl_days must be 1 to 30"));
        }
        if d.operator.len() > MAX_OPERATOR_LEN || d.operator.chars().any(char::is_control) {
            return Err(invalid(
                "directory.operator must be at most 64 bytes, without control characters",
            ));
        }
        if d.relays.len() >= MAX_RELAYS {
            return Err(invalid("directory.relays: at most 63 other relays"));
        }
        for r in &d.relays {
            r.entry()?;
        }
        Ok(())
    }

    /// The name this relay's operator is listed under: `directory.operator`,
    /// or the city's name.
    pub fn operator(&self) -> &str {
        let o = self.directory.operator.trim();
        if o.is_empty() {
            &self.city
        } else {
            o
        }
    }

    /// The dashboard's socket address.
    pub fn dashboard_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.http
            .dashboard_bind
            .parse()
            .map_err(|e| invalid(format!("http.dashboard_bind: {e}")))
    }

    /// The public listener's address, if any.
    pub fn public_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.http.public_bind.is_empty() {
            return Ok(None);
        }
        self.http
            .public_bind
            .parse()
            .map(Some)
            .map_err(|e| invalid(format!("http.public_bind: {e}")))
    }

    /// The libp2p listen addresses.
    pub fn listen_addrs(&self) -> Result<Vec<Multiaddr>, ConfigError> {
        parse_addrs("network.listen", &self.network.listen)
    }

    /// The public addresses, announced as external addresses.
    pub fn public_addrs(&self) -> Result<Vec<Multiaddr>, ConfigError> {
        parse_addrs("network.public_addresses", &self.network.public_addresses)
    }

    /// The bootstrap peers.
    pub fn bootstrap_addrs(&self) -> Result<Vec<Multiaddr>, ConfigError> {
        parse_addrs("network.bootstrap", &self.network.bootstrap)
    }

    /// The file of the relay's stable libp2p identity (its peer id):
    /// `<data_dir>/peer-key`.
    pub fn peer_key_path(&self) -> PathBuf {
        self.data_dir.join(ronde_node::peer_key::PEER_KEY_FILE)
    }

    /// The basemap file resolved against `data_dir`; `None` when none is
    /// configured.
    pub fn basemap_path(&self) -> Option<PathBuf> {
        if self.map.basemap.as_os_str().is_empty() {
            None
        } else if self.map.basemap.is_absolute() {
            Some(self.map.basemap.clone())
        } else {
            Some(self.data_dir.join(&self.map.basemap))
        }
    }

    /// The city key file, resolved against `data_dir`.
    pub fn key_path(&self) -> PathBuf {
        if self.city_key_file.is_absolute() {
            self.city_key_file.clone()
        } else {
            self.data_dir.join(&self.city_key_file)
        }
    }

    /// The city's local time.
    pub fn local_time(&self) -> LocalTime {
        if self.jurisdiction.time_zone.is_empty() {
            return LocalTime::fixed(self.jurisdiction.utc_offset_hours);
        }
        // Checked when the configuration was read.
        LocalTime::zone(&self.jurisdiction.time_zone)
            .unwrap_or_else(|_| LocalTime::fixed(self.jurisdiction.utc_offset_hours))
    }
}

impl ListedRelay {
    /// The directory entry of this relay, checked.
    pub fn entry(&self) -> Result<RelayEntry, ConfigError> {
        let peer: PeerId = self
            .peer_id
            .parse()
            .map_err(|e| invalid(format!("directory.relays: {:?}: {e}", self.peer_id)))?;
        let mut roles = RelayRoles(0);
        for name in &self.roles {
            let r = RelayRoles::from_name(name).ok_or_else(|| {
                invalid(format!(
                    "directory.relays: unknown role {name:?} (mailbox, switch, circuit, bootstrap, gossip)"
                ))
            })?;
            roles = roles.with(r);
        }
        let addrs = parse_addrs("directory.relays.addresses", &self.addresses)?;
        let e = RelayEntry {
            peer: peer.to_bytes(),
            roles,
            operator: self.operator.clone(),
            addrs: addrs.iter().map(ToString::to_string).collect(),
        };
        e.check()
            .map_err(|err| invalid(format!("directory.relays: {}: {err}", self.peer_id)))?;
        Ok(e)
    }
}

fn parse_addrs(field: &str, list: &[String]) -> Result<Vec<Multiaddr>, ConfigError> {
    list.iter()
        .map(|a| {
            a.parse()
                .map_err(|e| invalid(format!("{field}: {a:?} is not a multiaddr: {e}")))
        })
        .collect()
}

const GEOHASH_ALPHABET: &str = "0123456789bcdefghjkmnpqrstuvwxyz";

impl Jurisdiction {
    /// The precision-5 areas the relay follows, sorted, deduplicated; an
    /// error if none, or more than [`MAX_AREAS`].
    pub fn areas(&self) -> Result<Vec<Area>, ConfigError> {
        let mut set: BTreeSet<Area> = BTreeSet::new();
        for p in &self.geohash_prefixes {
            if p.is_empty()
                || p.len() > AREA_PRECISION
                || !p.chars().all(|c| GEOHASH_ALPHABET.contains(c))
            {
                return Err(invalid(format!(
                    "jurisdiction.geohash_prefixes: {p:?} is not a lowercase geohash of 1 to 5 characters"
                )));
            }
            let missing = AREA_PRECISION - p.len();
            // 32^missing areas; refuse before expanding anything huge.
            if missing >= 2 && 32usize.pow(u32::try_from(missing).unwrap_or(5)) > MAX_AREAS {
                return Err(invalid(format!(
                    "jurisdiction.geohash_prefixes: {p:?} covers more than {MAX_AREAS} areas"
                )));
            }
            let mut frontier = vec![p.clone()];
            for _ in 0..missing {
                frontier = frontier
                    .iter()
                    .flat_map(|s| GEOHASH_ALPHABET.chars().map(move |c| format!("{s}{c}")))
                    .collect();
            }
            for s in frontier {
                set.insert(s.parse().map_err(|_| invalid(format!("bad area {s}")))?);
            }
        }
        if let Some([min_lat, min_lon, max_lat, max_lon]) = self.bbox {
            let ok = |v: f64, lim: f64| v.is_finite() && v.abs() <= lim;
            if !(ok(min_lat, 90.0) && ok(max_lat, 90.0) && ok(min_lon, 180.0) && ok(max_lon, 180.0))
                || min_lat > max_lat
                || min_lon > max_lon
            {
                return Err(invalid(
                    "jurisdiction.bbox must be [min_lat, min_lon, max_lat, max_lon] in range",
                ));
            }
            // Areas are 0.0439 degrees on each side: step by less than half.
            const STEP: f64 = 0.02;
            let steps = |a: f64, b: f64| ((b - a) / STEP).ceil();
            let (nl, nm) = (steps(min_lat, max_lat), steps(min_lon, max_lon));
            if (nl + 1.0) * (nm + 1.0) > 40_000.0 {
                return Err(invalid(format!(
                    "jurisdiction.bbox covers more than {MAX_AREAS} areas"
                )));
            }
            // Bounded above: at most a few hundred steps each way.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let (nl, nm) = (nl as u32, nm as u32);
            for i in 0..=nl {
                let lat = (min_lat + f64::from(i) * STEP).min(max_lat);
                for j in 0..=nm {
                    let lon = (min_lon + f64::from(j) * STEP).min(max_lon);
                    let a = area_of(lat, lon).map_err(|e| invalid(e.to_string()))?;
                    set.insert(a);
                    if set.len() > MAX_AREAS {
                        return Err(invalid(format!(
                            "jurisdiction covers more than {MAX_AREAS} areas"
                        )));
                    }
                }
            }
        }
        if set.is_empty() {
            return Err(invalid(
                "jurisdiction: give geohash_prefixes or a bbox (the city's areas)",
            ));
        }
        if set.len() > MAX_AREAS {
            return Err(invalid(format!(
                "jurisdiction covers {} areas, more than {MAX_AREAS}",
                set.len()
            )));
        }
        Ok(set.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(prefixes: &str, bbox: &str) -> String {
        TEMPLATE
            .replace("{city}", "Ivry-sur-Seine")
            .replace("{data_dir}", "/tmp/relay")
            .replace("{prefixes}", prefixes)
            .replace("{bbox}", bbox)
            .replace("{token}", "0123456789abcdef0123")
    }

    #[test]
    fn the_template_parses_with_its_defaults() {
        let c = RelayConfig::parse(&filled("\"u09tv\"", "")).expect("template parses");
        assert_eq!(c.aggregates.k, 3);
        assert_eq!(c.jurisdiction.areas().expect("areas").len(), 1);
        assert!(c.network.relay_server && c.network.mailbox_host);
        assert_eq!(c.key_path(), PathBuf::from("/tmp/relay/city.key"));
        assert_eq!(c.public_addr().expect("addr").map(|a| a.port()), Some(8080));
    }

    #[test]
    fn prefixes_and_bboxes_become_areas() {
        let j = Jurisdiction {
            geohash_prefixes: vec!["u09t".into(), "u09tv".into()],
            bbox: None,
            time_zone: String::new(),
            utc_offset_hours: 0,
        };
        assert_eq!(j.areas().expect("areas").len(), 32);
        let j = Jurisdiction {
            geohash_prefixes: vec![],
            bbox: Some([48.80, 2.36, 48.83, 2.41]),
            time_zone: String::new(),
            utc_offset_hours: 0,
        };
        let areas = j.areas().expect("areas");
        assert!(areas.contains(&area_of(48.8156, 2.3844).expect("area")));
        assert!(areas.len() >= 2 && areas.len() <= 9, "{}", areas.len());
        let too_big = Jurisdiction {
            geohash_prefixes: vec!["u0".into()],
            bbox: None,
            time_zone: String::new(),
            utc_offset_hours: 0,
        };
        assert!(too_big.areas().is_err());
        let bad = Jurisdiction {
            geohash_prefixes: vec!["U09".into()],
            bbox: None,
            time_zone: String::new(),
            utc_offset_hours: 0,
        };
        assert!(bad.areas().is_err());
    }

    #[test]
    fn nonsense_is_refused_with_the_field_named() {
        let e = RelayConfig::parse(&filled("", "")).expect_err("no areas");
        assert!(e.to_string().contains("jurisdiction"), "{e}");
        let e = RelayConfig::parse(&filled("\"u09tv\"", "").replace("k = 3", "k = 0"))
            .expect_err("k = 0");
        assert!(e.to_string().contains("aggregates.k"), "{e}");
        let e = RelayConfig::parse(&filled("\"u09tv\"", "").replace("city = ", "town = "))
            .expect_err("unknown field");
        assert!(e.to_string().contains("town"), "{e}");
        let e =
            RelayConfig::parse(&filled("\"u09tv\"", "").replace("0123456789abcdef0123", "short"))
                .expect_err("short token");
        assert!(e.to_string().contains("operator_token"), "{e}");
    }
}
