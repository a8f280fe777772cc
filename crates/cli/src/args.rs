//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use libp2p::Multiaddr;
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
     input the node refused)
  3  storage problem: the data directory is locked by another node, corrupt,
     written by a newer version of Ronde, or the disk is full
  4  the node is unreachable (no `ronde node` listening at --api) or stopped

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
    /// List the report categories.
    Categories,
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
}

/// The `--api` flag of the client commands.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// URL of the node's local HTTP API.
    #[arg(long, value_name = "URL", env = "RONDE_API", default_value = DEFAULT_API_URL)]
    pub api: String,
}

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
