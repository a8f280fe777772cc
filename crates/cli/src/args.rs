//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use libp2p::Multiaddr;
use ronde_protocol::directory::DirectoryPublicKey;
use ronde_protocol::Category;

/// Default address of the local HTTP API.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7300";
/// Default URL of the local HTTP API, for the client commands.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:7300";

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other failure
  2  usage error or invalid input (bad flag, unknown category, bad --at, or
     input the node refused: a malformed invite code, an unknown contact, a
     journey or SOS already under way, nobody in the circle yet...)
  3  storage problem: the data directory is locked by another node, corrupt,
     written by a newer version of Ronde, or the disk is full
  4  the node is unreachable (no `ronde node` listening at --api) or stopped

The client commands send the node's API token, which `ronde node` writes to
api-token in its data directory at every start: they read it from --data-dir
(or RONDE_DATA_DIR), or take it from RONDE_API_TOKEN; without either, from
`ronde node`'s default data directory or ./ronde-data, whichever is newer.

Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to see more.";

/// Ronde: a peer-to-peer personal-safety network.
///
/// Phones gossip signed, anonymous reports of street harassment, bucketed in
/// geohash cells, that expire after about 30 minutes. There is no server.
#[derive(Parser, Debug)]
#[command(name = "ronde", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a node and its local HTTP API until Ctrl-C or SIGTERM.
    #[command(after_help = EXIT_CODES)]
    Node(NodeArgs),
    /// Send a report through a running node.
    #[command(after_help = EXIT_CODES)]
    Report(ReportArgs),
    /// Show the live reports around a place, as seen by a running node.
    #[command(after_help = EXIT_CODES)]
    Nearby(NearbyArgs),
    /// Show a running node's peer id, addresses, peers and store size.
    #[command(after_help = EXIT_CODES)]
    Status(ApiArgs),
    /// Print a new one-time link that opens a running node's phone app in a
    /// browser (the node prints one at start; each opens the app once).
    #[command(after_help = EXIT_CODES)]
    App(ApiArgs),
    /// List the report categories.
    Categories,
    /// Your trusted circle: invite someone, accept an invite, list, approve
    /// or remove contacts.
    #[command(after_help = EXIT_CODES)]
    Contacts(ContactsArgs),
    /// Share a journey with your circle ("walk me home"): they are alerted
    /// if you have not arrived in time, even if your phone dies.
    #[command(after_help = EXIT_CODES)]
    Journey(JourneyArgs),
    /// Alert your whole circle now, with your location (re-sent until
    /// someone acknowledges it). `ronde sos cancel` ends it.
    #[command(after_help = EXIT_CODES, args_conflicts_with_subcommands = true)]
    Sos(SosArgs),
    /// Your code and duress code: once set, ending a journey or cancelling
    /// an SOS needs one; the duress code seems to, while the alert goes on.
    Codes(CodesArgs),
    /// What your circle told you: alerts, journeys, requests. Alerts shown
    /// are acknowledged to their sender (they learn you have seen them).
    #[command(after_help = EXIT_CODES)]
    Inbox(InboxArgs),
    /// The safe places near a point, from the city directory a running
    /// node holds: name, kind, distance, hours, freshness.
    #[command(after_help = EXIT_CODES)]
    Places(PlacesArgs),
    /// The street mediators and emergency contacts of the city directory a
    /// running node holds.
    #[command(after_help = EXIT_CODES)]
    Mediators(ApiArgs),
    /// The city's street map on a running node: whether it keeps one, or
    /// fetch it whole, once, from the city's relay (`--fetch`); the app
    /// then draws the streets offline, asking no one for a tile.
    #[command(after_help = EXIT_CODES)]
    Basemap(BasemapArgs),
    /// Run a city relay (aggregates, dashboard, exports, the signed
    /// directory of safe places), or set one up with `ronde relay init`.
    Relay(ronde_relay::cli::RelayArgs),
    /// See Ronde work: a relay and about 50 phones around Ivry-sur-Seine on
    /// this machine, with the city's dashboard and one phone's app to open.
    Demo(ronde_demo::cli::DemoArgs),
    /// Simulate a city of real Ronde nodes over emulated links and measure
    /// delivery, latency, duplicates, bytes and memory against a bare
    /// gossipsub baseline.
    Sim(Box<ronde_sim::cli::SimArgs>),
}

/// `ronde node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Directory of the node's database [default: `ronde` in the user's
    /// data directory, or ./ronde-data].
    #[arg(long, value_name = "DIR", env = "RONDE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Addresses to listen on, e.g. /ip4/0.0.0.0/tcp/4001 [default: TCP and
    /// QUIC on every interface, random ports].
    #[arg(long, value_name = "MULTIADDR", num_args = 1..)]
    pub listen: Vec<Multiaddr>,

    /// Peers to dial at start, as printed by their `ronde node`
    /// (ending in /p2p/<peer id>).
    #[arg(long, value_name = "MULTIADDR", num_args = 1..)]
    pub bootstrap: Vec<Multiaddr>,

    /// Address of the local HTTP API. Keep it on 127.0.0.1: it serves the
    /// app on this device only. Port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_API_ADDR)]
    pub api: SocketAddr,

    /// Where you are, to follow the reports around it (it is never sent; the
    /// app can change it later with PUT /v1/location).
    #[arg(long, value_name = "LAT,LON", value_parser = parse_at, allow_hyphen_values = true)]
    pub at: Option<LatLon>,

    /// Do not discover peers on the local network with mDNS.
    #[arg(long)]
    pub no_mdns: bool,

    /// TEST KNOB: proof-of-work difficulty of this node's reports, and the
    /// least it accepts from others (default: the network's, 18). Lower it
    /// only for tests: a node with a lower minimum accepts reports that the
    /// rest of the network rejects.
    #[arg(long, value_name = "BITS", hide = true, value_parser = clap::value_parser!(u8).range(1..=40))]
    pub pow_difficulty: Option<u8>,

    /// Mailbox hosts to use for your circle, as printed by their `ronde
    /// node` (ending in /p2p/<peer id>); your contacts need one in common.
    /// Besides these, only the relays listed in your city's signed
    /// directory (--city-key) are used: never a peer that merely connects.
    #[arg(long = "mailbox-peer", value_name = "MULTIADDR", num_args = 1..)]
    pub mailbox_peers: Vec<Multiaddr>,

    /// Host mailboxes and dead-man's switches for others (an always-on
    /// node, such as a city relay).
    #[arg(long)]
    pub mailbox_host: bool,

    /// TEST KNOB: as a mailbox host, accept push endpoints on plain http
    /// and local addresses (a test's own UnifiedPush stand-in). Never on a
    /// deployed host: it would post to anything on its network.
    #[arg(long, hide = true)]
    pub push_allow_local: bool,

    /// Relay connections for phones behind NAT (circuit relay v2) and serve
    /// the DHT (an always-on, reachable node).
    #[arg(long)]
    pub relay_server: bool,

    /// Do not fetch anonymous tokens by itself. By default a phone's node
    /// keeps a few tokens of today from its city's relays (docs/protocol.md
    /// §8.5; about 10 s of work per batch, in the foreground only), so
    /// that its reports count as tokened; always-on nodes
    /// (`--mailbox-host`, `--relay-server`) never fetch.
    #[arg(long)]
    pub no_auto_tokens: bool,

    /// An address at which this node is reachable from outside, e.g.
    /// /ip4/203.0.113.7/tcp/4001 (a relay server needs one; without it, its
    /// listen addresses are announced).
    #[arg(long = "external-address", value_name = "MULTIADDR", num_args = 1..)]
    pub external_addresses: Vec<Multiaddr>,

    /// The public key of your city's directory of safe places and
    /// mediators (64 hex digits, as the city publishes it, e.g. on its
    /// website or the relay operator's `ronde relay key`): the node fetches
    /// the directory from its peers and shows only what this key signed.
    #[arg(long = "city-key", value_name = "HEX", num_args = 1.., value_parser = parse_city_key)]
    pub city_keys: Vec<DirectoryPublicKey>,
}

/// `ronde basemap`.
#[derive(Args, Debug)]
pub struct BasemapArgs {
    #[command(flatten)]
    pub api: ApiArgs,

    /// Fetch the whole basemap from this URL (the relay's
    /// `http://<relay>/basemap.pmtiles`) and keep it on the node.
    #[arg(long, value_name = "URL")]
    pub fetch: Option<String>,
}

/// `ronde places`.
#[derive(Args, Debug)]
pub struct PlacesArgs {
    #[command(flatten)]
    pub api: ApiArgs,

    /// Where you are (it is only sent to your own node).
    #[arg(long, value_name = "LAT,LON", value_parser = parse_at, allow_hyphen_values = true)]
    pub at: LatLon,

    /// Search radius in metres (at most 50000) [default: 5000].
    #[arg(long, value_name = "M", value_parser = parse_places_radius)]
    pub radius: Option<f64>,
}

/// The `--api` and `--data-dir` flags of the client commands.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// URL of the node's local HTTP API.
    #[arg(long, value_name = "URL", env = "RONDE_API", default_value = DEFAULT_API_URL, global = true)]
    pub api: String,

    /// The node's data directory, where it wrote the API's token
    /// (api-token) [default: the environment variable RONDE_API_TOKEN if
    /// set, else the token of `ronde node`'s default data directory or of
    /// ./ronde-data, whichever is newer].
    #[arg(long, value_name = "DIR", env = "RONDE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

/// The environment variable that gives the client commands the API's token
/// directly.
pub const TOKEN_ENV: &str = "RONDE_API_TOKEN";

/// The data directory of `ronde node` when none is given: `ronde` under
/// the user's data directory (e.g. `~/.local/share/ronde`), else
/// `./ronde-data`.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("ronde"))
        .unwrap_or_else(|| PathBuf::from(FALLBACK_DATA_DIR))
}

/// The data directory of the README's quick start, and of `ronde node`
/// where the user has no data directory.
pub const FALLBACK_DATA_DIR: &str = "ronde-data";

/// `ronde report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub api: ApiArgs,

    /// What happened (see `ronde categories`).
    #[arg(long, value_name = "CAT", value_parser = parse_category)]
    pub category: Category,

    /// Where it happened; only its geohash cell is sent.
    #[arg(long, value_name = "LAT,LON", value_parser = parse_at, allow_hyphen_values = true)]
    pub at: LatLon,

    /// Size of the cell sent: 7 (about 150 m, default) or 6 (about 1 km, more
    /// private).
    #[arg(long, value_name = "6|7", value_parser = clap::value_parser!(u8).range(6..=7))]
    pub precision: Option<u8>,
}

/// `ronde nearby`.
#[derive(Args, Debug)]
pub struct NearbyArgs {
    #[command(flatten)]
    pub api: ApiArgs,

    /// Where to look [default: around the node's own area, if it has a
    /// location].
    #[arg(long, value_name = "LAT,LON", value_parser = parse_at, allow_hyphen_values = true)]
    pub at: Option<LatLon>,

    /// Search radius in metres (at most 10000) [default: 2000].
    #[arg(long, value_name = "M", value_parser = parse_radius)]
    pub radius: Option<f64>,
}

/// `ronde contacts`.
#[derive(Args, Debug)]
pub struct ContactsArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub action: ContactsAction,
}

/// The `ronde contacts` subcommands.
#[derive(Subcommand, Debug)]
pub enum ContactsAction {
    /// Make a single-use invite code (and QR code) for someone you trust.
    Invite {
        /// The name they will see [default: the last name you gave].
        #[arg(long)]
        name: Option<String>,
        /// How long the code stays valid, e.g. 5m, 2h (at most 24h). Keep it
        /// short: whoever sees the code before it expires can use it.
        #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
        valid_for: u64,
        /// Print the code only, without the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Accept someone's invite code; they then approve you.
    Accept {
        /// The code (ronde1:…) as typed or scanned, or its short code
        /// (ABCDE-FGHJK) when both phones use the city's relays.
        code: String,
        /// The name they will see [default: the last name you gave].
        #[arg(long)]
        name: Option<String>,
    },
    /// List your contacts, their state and safety numbers.
    List,
    /// Approve someone who accepted your invite: prints the safety number
    /// in full and asks whether it matches the one on their phone.
    Approve {
        /// Their name or contact id (or its first digits).
        contact: String,
        /// Do not ask: you already compared the safety number with them,
        /// digit for digit (needed when no terminal can answer).
        #[arg(long)]
        yes: bool,
    },
    /// Remove a contact: nothing more is sent to them.
    Remove {
        /// Their name or contact id (or its first digits).
        contact: String,
        /// Tell them they were removed (by default they are not told).
        #[arg(long)]
        notify: bool,
    },
}

/// `ronde journey`.
#[derive(Args, Debug)]
pub struct JourneyArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// What to do [default: show the current journey].
    #[command(subcommand)]
    pub action: Option<JourneyAction>,
}

/// The `ronde journey` subcommands.
#[derive(Subcommand, Debug)]
pub enum JourneyAction {
    /// Start a journey: your circle is told, your location is shared at
    /// intervals, and they are alerted if you have not arrived by the ETA
    /// plus the grace period (at most 8 hours in all).
    Start {
        /// Where you are going.
        #[arg(long, value_name = "LAT,LON", value_parser = parse_at, allow_hyphen_values = true)]
        to: LatLon,
        /// How long until you expect to arrive, e.g. 25m, 1h30m.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        eta: u64,
        /// How long after the ETA your circle is alerted, e.g. 10m (at most
        /// 1h) [default: 15m].
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        grace: Option<u64>,
        /// A name for the destination ("Home"), shown on this device only.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Parents' mode: share only the journey's states (started,
        /// arrived, left the route or stopped, overdue), no positions unless
        /// an alert fires.
        #[arg(long)]
        parents_mode: bool,
        /// Parents' mode: how far from the straight line to the destination
        /// counts as leaving the route, in metres (at least 100).
        #[arg(
            long,
            value_name = "METRES",
            default_value_t = 300,
            requires = "parents_mode"
        )]
        corridor: u16,
        /// Parents' mode: how long without moving, away from the
        /// destination, raises an alert, e.g. 10m (at least 2m).
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration, requires = "parents_mode")]
        stop: u64,
    },
    /// Add time: move the expected arrival (your circle is told, the
    /// alert moves too).
    Extend {
        /// How much later, e.g. 10m.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        by: u64,
    },
    /// You arrived: your circle is told and the alert is withdrawn.
    Arrived {
        /// Your code, once codes are set (`ronde codes set`).
        #[arg(long, value_name = "DIGITS")]
        code: Option<String>,
    },
    /// End the journey without arriving.
    Cancel {
        /// Your code, once codes are set (`ronde codes set`).
        #[arg(long, value_name = "DIGITS")]
        code: Option<String>,
    },
    /// Show the current (or last) journey.
    Status,
}

/// `ronde codes`.
#[derive(Args, Debug)]
pub struct CodesArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// What to do.
    #[command(subcommand)]
    pub action: CodesAction,
}

/// The `ronde codes` subcommands.
#[derive(Subcommand, Debug)]
pub enum CodesAction {
    /// Set (or change) your code and your duress code. Once set, ending a
    /// journey or cancelling an SOS needs one of them. The duress code
    /// seems to do it, exactly as the code does, while your circle is
    /// alerted that you may be forced to and the alert goes on.
    Set {
        /// The code: 4 to 12 digits.
        #[arg(long, value_name = "DIGITS")]
        code: String,
        /// The duress code: 4 to 12 digits, not the code.
        #[arg(long, value_name = "DIGITS")]
        duress_code: String,
        /// Your current code, to change codes already set.
        #[arg(long, value_name = "DIGITS")]
        current: Option<String>,
    },
    /// Remove both codes.
    Clear {
        /// Your code.
        #[arg(long, value_name = "DIGITS")]
        code: String,
    },
}

/// `ronde sos`.
#[derive(Args, Debug)]
pub struct SosArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// A few words for your circle (at most 280 bytes).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// `cancel` or `status` [default: raise an SOS].
    #[command(subcommand)]
    pub action: Option<SosAction>,
}

/// The `ronde sos` subcommands.
#[derive(Subcommand, Debug)]
pub enum SosAction {
    /// Cancel the SOS: everyone is told.
    Cancel {
        /// Your code, once codes are set (`ronde codes set`).
        #[arg(long, value_name = "DIGITS")]
        code: Option<String>,
    },
    /// Show the SOS and who acknowledged it.
    Status,
}

/// `ronde inbox`.
#[derive(Args, Debug)]
pub struct InboxArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Only items after this number.
    #[arg(long, value_name = "ID")]
    pub since: Option<u64>,
    /// Do not acknowledge the alerts shown.
    #[arg(long)]
    pub no_ack: bool,
}

/// Parse a duration such as `25m`, `1h30m`, `90s` or `2h` (a bare number is
/// minutes) into seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let bad = || format!("{s:?} is not a duration; use e.g. 25m, 1h30m or 90s");
    if t.is_empty() {
        return Err(bad());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .ok()
            .and_then(|m| m.checked_mul(60))
            .filter(|&v| v > 0)
            .ok_or_else(bad);
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

/// A point given on the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatLon {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
}

/// Parse `LAT,LON`, e.g. `48.8156,2.3844`.
pub fn parse_at(s: &str) -> Result<LatLon, String> {
    let Some((a, b)) = s.split_once(',') else {
        return Err(format!(
            "expected LAT,LON in decimal degrees, such as 48.8156,2.3844; got {s:?}"
        ));
    };
    let number = |what: &str, t: &str| -> Result<f64, String> {
        t.trim().parse::<f64>().map_err(|_| {
            format!(
                "{what} {:?} is not a decimal number (expected LAT,LON such as 48.8156,2.3844)",
                t.trim()
            )
        })
    };
    let lat = number("latitude", a)?;
    let lon = number("longitude", b)?;
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(format!(
            "latitude {lat} is out of range: it must be between -90 and 90"
        ));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return Err(format!(
            "longitude {lon} is out of range: it must be between -180 and 180"
        ));
    }
    Ok(LatLon { lat, lon })
}

fn parse_city_key(s: &str) -> Result<DirectoryPublicKey, String> {
    s.parse::<DirectoryPublicKey>().map_err(|_| {
        format!("{s:?} is not a city key: expected the 64 hex digits of an Ed25519 public key")
    })
}

fn parse_places_radius(s: &str) -> Result<f64, String> {
    let max = ronde_node::api::MAX_PLACES_RADIUS_M;
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of metres"))?;
    if r.is_finite() && r > 0.0 && r <= max {
        Ok(r)
    } else {
        Err(format!(
            "the radius must be above 0 and at most {max} metres"
        ))
    }
}

fn parse_category(s: &str) -> Result<Category, String> {
    s.parse::<Category>().map_err(|e| e.to_string())
}

fn parse_radius(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of metres"))?;
    if r.is_finite() && r > 0.0 && r <= ronde_node::api::MAX_RADIUS_M {
        Ok(r)
    } else {
        Err(format!(
            "the radius must be above 0 and at most {} metres",
            ronde_node::api::MAX_RADIUS_M
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn at_parsing() {
        assert_eq!(
            parse_at("48.8156,2.3844"),
            Ok(LatLon {
                lat: 48.8156,
                lon: 2.3844
            })
        );
        assert_eq!(
            parse_at(" -33.86 , 151.2 "),
            Ok(LatLon {
                lat: -33.86,
                lon: 151.2
            })
        );
        for bad in [
            "48.8156",
            "48.8156;2.3844",
            "a,b",
            "91,0",
            "0,180.5",
            "NaN,0",
            "0,inf",
            "",
        ] {
            assert!(parse_at(bad).is_err(), "{bad}");
        }
        let e = parse_at("48.8").err().unwrap_or_default();
        assert!(e.contains("LAT,LON"), "{e}");
    }

    #[test]
    fn negative_coordinates_are_values_not_flags() {
        let cli = Cli::try_parse_from([
            "ronde",
            "report",
            "--category",
            "harassment",
            "--at",
            "-33.86,151.2",
        ]);
        assert!(cli.is_ok(), "{cli:?}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("25m"), Ok(1500));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("2H"), Ok(7200));
        assert_eq!(parse_duration("10"), Ok(600));
        for bad in [
            "",
            "0",
            "0m",
            "m",
            "5x",
            "1h30",
            "-5m",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn circle_commands_parse() {
        let ok = |args: &[&str]| {
            let r = Cli::try_parse_from(args);
            assert!(r.is_ok(), "{args:?}: {r:?}");
        };
        ok(&["ronde", "contacts", "invite", "--name", "Alice"]);
        ok(&["ronde", "contacts", "accept", "ronde1:abc"]);
        ok(&["ronde", "contacts", "remove", "Bob", "--notify"]);
        ok(&[
            "ronde",
            "journey",
            "start",
            "--to",
            "-33.8,151.2",
            "--eta",
            "25m",
        ]);
        ok(&["ronde", "journey", "arrived"]);
        ok(&["ronde", "journey"]);
        ok(&["ronde", "sos"]);
        ok(&["ronde", "sos", "--note", "at the station"]);
        ok(&["ronde", "sos", "cancel"]);
        ok(&["ronde", "inbox", "--no-ack"]);
        assert!(Cli::try_parse_from(["ronde", "journey", "start", "--eta", "25m"]).is_err());
        assert!(
            Cli::try_parse_from(["ronde", "journey", "start", "--to", "1,2", "--eta", "soon"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["ronde", "contacts", "accept"]).is_err());
    }

    #[test]
    fn directory_commands_parse() {
        let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let cli = Cli::try_parse_from(["ronde", "node", "--city-key", key]);
        match cli.map(|c| c.command) {
            Ok(Command::Node(a)) => assert_eq!(a.city_keys.len(), 1),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["ronde", "node", "--city-key", "abc"]).is_err());
        assert!(Cli::try_parse_from(["ronde", "places", "--at", "48.8,2.3"]).is_ok());
        assert!(
            Cli::try_parse_from(["ronde", "places", "--at", "48.8,2.3", "--radius", "60000"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["ronde", "places"]).is_err());
        assert!(Cli::try_parse_from(["ronde", "mediators", "--api", "127.0.0.1:1"]).is_ok());
    }

    #[test]
    fn unknown_category_lists_the_valid_ones() {
        let err =
            Cli::try_parse_from(["ronde", "report", "--category", "theft", "--at", "1,2"]).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("harassment") && text.contains("poor_lighting"),
            "{text}"
        );
    }
}
