//! The flags of `ronde demo` ([`DemoArgs`]) and their parsers. The lowest
//! module of the crate: it imports none of the others.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default map tiles of the dashboard (the only thing fetched from the
/// internet, by the browser; the map is drawn without them offline).
pub const DEFAULT_TILES: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";

/// `ronde demo`: a small city of real Ronde phones and a city relay on this
/// machine, with its dashboard and one phone's app in the browser.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Simulated phones (real Ronde nodes in this process), at least 5.
    #[arg(long, default_value_t = 50)]
    pub phones: usize,
    /// Seed of the city: where the phones are and walk, what they report.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Keep the data in this new or empty directory (default: a temporary
    /// directory deleted at exit).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where the relay's dashboard listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7400")]
    pub dashboard: SocketAddr,
    /// Where Camille's phone serves its app and node API.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7310")]
    pub app: SocketAddr,
    /// How much faster than real time journeys and their deadlines run
    /// (1 to 60): at 10, Malik is overdue about a minute after the start.
    #[arg(long, default_value_t = 10)]
    pub speed: u32,
    /// Stop by itself after this long (`90`, `90s`, `5m`, `1h`).
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Map tiles of the dashboard, `{z}/{x}/{y}` placeholders; "" for none.
    #[arg(long, value_name = "URL", default_value = DEFAULT_TILES)]
    pub tiles: String,
    /// The city's streets for both maps: a PMTiles extract (the operator
    /// guide says how to make one). The relay serves it and Camille's phone
    /// fetches it whole once. Without it, the demo's own: the real streets
    /// of central Helsinki, where the demo city is (data/README.md).
    #[arg(long, value_name = "FILE")]
    pub basemap: Option<PathBuf>,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            phones: 50,
            seed: 7,
            data_dir: None,
            dashboard: SocketAddr::from(([127, 0, 0, 1], 7400)),
            app: SocketAddr::from(([127, 0, 0, 1], 7310)),
            speed: 10,
            duration: None,
            tiles: DEFAULT_TILES.into(),
            basemap: None,
        }
    }
}

/// `90`, `90s`, `5m`, `1h` → a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 5m or 1h"))?;
    let secs = match unit.trim() {
        "s" => Some(n),
        "m" | "min" => n.checked_mul(60),
        "h" => n.checked_mul(3_600),
        _ => None,
    }
    .ok_or_else(|| format!("{s:?} is not a duration like 90s, 5m or 1h"))?;
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        demo: DemoArgs,
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("40"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3_600)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn flags_and_defaults() {
        let d = Cli::try_parse_from(["demo"]).expect("defaults").demo;
        let def = DemoArgs::default();
        assert_eq!(
            (d.phones, d.seed, d.dashboard, d.app, d.speed),
            (def.phones, def.seed, def.dashboard, def.app, def.speed)
        );
        assert_eq!(d.dashboard.to_string(), "127.0.0.1:7400");
        assert_eq!(d.app.to_string(), "127.0.0.1:7310");
        assert!(d.duration.is_none() && d.data_dir.is_none());
        let d = Cli::try_parse_from([
            "demo",
            "--phones",
            "12",
            "--duration",
            "40s",
            "--app",
            "127.0.0.1:0",
            "--tiles",
            "",
            "--data-dir",
            "/tmp/x",
        ])
        .expect("flags")
        .demo;
        assert_eq!(d.phones, 12);
        assert_eq!(d.duration, Some(Duration::from_secs(40)));
        assert_eq!(d.app.port(), 0);
        assert!(d.tiles.is_empty());
        assert_eq!(d.data_dir, Some(PathBuf::from("/tmp/x")));
        assert!(Cli::try_parse_from(["demo", "--duration", "later"]).is_err());
    }
}
