//! `ronde report`, `ronde nearby` and `ronde status`: clients of a running
//! node's API that print for people.

use std::time::{SystemTime, UNIX_EPOCH};

use ronde_node::api::{DEFAULT_RADIUS_M, MAX_RADIUS_M};
use ronde_protocol::Area;

use crate::args::{ApiArgs, LatLon, NearbyArgs, ReportArgs};
use crate::client::{Client, Nearby};
use crate::exit::{self, Coded};

/// `ronde report`.
pub async fn report(args: ReportArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.api)?;
    if let Ok(s) = client.status().await {
        warn_if_odd(args.at, s.location);
    }
    let p = client
        .report(
            args.category.as_str(),
            args.at.lat,
            args.at.lon,
            args.precision,
        )
        .await?;
    let size = if p.cell.len() <= 6 {
        "about 1.2 km x 0.6 km"
    } else {
        "about 150 m x 150 m"
    };
    println!("Sent a {} report.", args.category);
    println!("  id       {}", p.id);
    println!("  cell     {} ({size})", p.cell);
    let now = now();
    println!(
        "  expires  {} ({})",
        in_how_long(p.expires_at, now),
        clock(p.expires_at, now)
    );
    if p.published {
        println!("  gossip   sent to the network");
    } else {
        println!("  gossip   no peer follows this area yet; the node keeps it and retries until it expires");
    }
    println!(
        "It carries no identity: it is signed with a one-time key, names only the cell above and the minute, and is forgotten when it expires."
    );
    Ok(())
}

/// `ronde nearby`.
pub async fn nearby(args: NearbyArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.api)?;
    let status = client.status().await.ok();
    if let (Some(at), Some(s)) = (args.at, status.as_ref()) {
        warn_if_odd(at, s.location);
    }
    let (lat, lon, radius, around) = match (args.at, status.as_ref().and_then(|s| s.location)) {
        (Some(p), _) => (p.lat, p.lon, args.radius.unwrap_or(DEFAULT_RADIUS_M), None),
        // The node's own position.
        (None, Some(here)) => (
            here.lat,
            here.lon,
            args.radius.unwrap_or(DEFAULT_RADIUS_M),
            None,
        ),
        (None, None) => {
            let status = client.status().await?;
            let Some(area) = status.areas.first().and_then(|a| a.parse::<Area>().ok()) else {
                return Err(Coded::new(
                    exit::USAGE,
                    "a location is needed: pass --at LAT,LON, or give the node one (ronde node --at, or PUT /v1/location)",
                )
                .into());
            };
            // The API tells only the node's area (about 4.9 km across), not
            // its position: look around the area's centre, widened by half
            // its diagonal so that the person's own surroundings are covered.
            let (min_lat, min_lon, max_lat, max_lon) = area.bounds();
            let (lat, lon) = ((min_lat + max_lat) / 2.0, (min_lon + max_lon) / 2.0);
            let half_diagonal =
                ronde_protocol::geo::haversine_m(min_lat, min_lon, max_lat, max_lon) / 2.0;
            let radius =
                (args.radius.unwrap_or(DEFAULT_RADIUS_M) + half_diagonal).min(MAX_RADIUS_M);
            (lat, lon, radius, Some(area))
        }
    };
    let nearby = client.nearby(lat, lon, radius).await?;
    match (around, args.at) {
        (Some(area), _) => println!("Around the node's area {area} (within {}):", metres(radius)),
        (None, Some(_)) => println!("Within {} of the given point:", metres(radius)),
        (None, None) => println!("Within {} of the node's position:", metres(radius)),
    }
    print!("{}", render(&nearby));
    Ok(())
}

/// How far from the node's own position a `--at` is worth a warning.
const FAR_FROM_NODE_M: f64 = 50_000.0;

/// A warning on stderr when `--at` looks like latitude and longitude
/// swapped, or lies far from the node's own position. Never an error: a
/// person may report what they saw elsewhere.
pub(crate) fn warn_if_odd(at: LatLon, node: Option<crate::client::NodeLocation>) {
    if let Some(msg) = odd_position(at, node.map(|n| (n.lat, n.lon))) {
        eprintln!("warning: {msg}");
    }
}

/// Why `at` looks wrong, if it does (see [`warn_if_odd`]).
fn odd_position(at: LatLon, node: Option<(f64, f64)>) -> Option<String> {
    let d = |a: (f64, f64), b: (f64, f64)| ronde_protocol::geo::haversine_m(a.0, a.1, b.0, b.1);
    let swapped_ok = at.lon.abs() <= 90.0;
    match node {
        Some(here) => {
            let far = d((at.lat, at.lon), here);
            if far <= FAR_FROM_NODE_M {
                return None;
            }
            if swapped_ok && d((at.lon, at.lat), here) <= FAR_FROM_NODE_M {
                return Some(format!(
                    "--at {},{} looks like longitude,latitude: the node is near {:.4},{:.4}; did you mean --at {},{}?",
                    at.lat, at.lon, here.0, here.1, at.lon, at.lat
                ));
            }
            Some(format!(
                "--at {},{} is {} from the node's own position ({:.4},{:.4})",
                at.lat,
                at.lon,
                metres(far),
                here.0,
                here.1
            ))
        }
        None => None,
    }
}

/// `ronde app`: a new one-time login link of the node's web app.
pub async fn app(args: ApiArgs) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    struct LoginLink {
        path: String,
    }
    let client = Client::from_args(&args)?;
    let link: LoginLink = client
        .post("/v1/login-links", serde_json::json!({}))
        .await?;
    println!("{}{}", client.base(), link.path);
    Ok(())
}

/// `ronde status`.
pub async fn status(args: ApiArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args)?;
    let s = client.status().await?;
    println!("peer id          {}", s.peer_id);
    println!("api              {}", client.base());
    println!("connected peers  {}", s.connected_peers);
    if s.areas.is_empty() {
        println!("areas            none (no location yet)");
    } else {
        println!("areas            {} followed", s.areas.len());
    }
    println!("stored reports   {}", s.stored_reports);
    println!("listening on:");
    for a in &s.listen_addrs {
        println!("  {a}");
    }
    Ok(())
}

/// The table of `ronde nearby`.
pub fn render(n: &Nearby) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if n.reports.is_empty() {
        out.push_str("No live reports.\n");
        return out;
    }
    let width = n
        .reports
        .iter()
        .map(|r| r.category.len())
        .max()
        .unwrap_or(0)
        .max("CATEGORY".len());
    let _ = writeln!(
        out,
        "{:<width$}  {:<7}  {:>8}  {:>8}  {:>10}",
        "CATEGORY", "CELL", "DISTANCE", "AGE", "EXPIRES IN"
    );
    for r in &n.reports {
        // The node's "now" is when it computed the age; use it for the
        // expiry too, so both columns agree whatever this machine's clock.
        let node_now = r.observed_at.saturating_add(r.age_secs);
        let _ = writeln!(
            out,
            "{:<width$}  {:<7}  {:>8}  {:>8}  {:>10}",
            r.category,
            r.cell,
            metres(r.distance_m),
            duration(r.age_secs),
            duration(r.expires_at.saturating_sub(node_now)),
        );
    }
    let _ = writeln!(out, "\nReports per cell:");
    for c in &n.cells {
        let _ = writeln!(out, "  {:<7}  {}", c.cell, c.reports);
    }
    out
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `at` (Unix seconds) as a clock time in this computer's time zone: `21:45`
/// today, `Sat 21:45` within a week, `2026-12-04 21:45` otherwise.
pub(crate) fn clock(at: u64, now: u64) -> String {
    clock_in(at, now, &jiff::tz::TimeZone::system())
}

fn clock_in(at: u64, now: u64, tz: &jiff::tz::TimeZone) -> String {
    let zoned = |t: u64| {
        i64::try_from(t)
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map(|ts| ts.to_zoned(tz.clone()))
    };
    let (Some(z), Some(n)) = (zoned(at), zoned(now)) else {
        return at.to_string();
    };
    if z.date() == n.date() {
        z.strftime("%H:%M").to_string()
    } else if at.abs_diff(now) < 6 * 86_400 {
        z.strftime("%a %H:%M").to_string()
    } else {
        z.strftime("%Y-%m-%d %H:%M").to_string()
    }
}

pub(crate) fn in_how_long(at: u64, now: u64) -> String {
    if at > now {
        format!("in {}", duration(at - now))
    } else {
        "already".to_owned()
    }
}

pub(crate) fn metres(m: f64) -> String {
    if m < 1_000.0 {
        format!("{:.0} m", m)
    } else {
        format!("{:.1} km", m / 1_000.0)
    }
}

pub(crate) fn duration(secs: u64) -> String {
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 3_600 {
        format!("{} min", secs / 60)
    } else {
        format!("{} h {:02} min", secs / 3_600, (secs % 3_600) / 60)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn clock_times_are_local() {
        let paris = jiff::tz::TimeZone::get("Europe/Paris").expect("tz");
        // 2026-12-04 21:45 UTC = 22:45 in Paris (winter time).
        let at = 1_796_420_700;
        assert_eq!(clock_in(at, at + 60, &paris), "22:45");
        // 2026-07-04 21:45 UTC = 23:45 in Paris (summer time).
        let summer = 1_783_201_500;
        assert_eq!(clock_in(summer, summer + 60, &paris), "23:45");
        assert_eq!(clock_in(at, at + 2 * 86_400, &paris), "Fri 22:45");
        assert_eq!(clock_in(at, at + 30 * 86_400, &paris), "2026-12-04 22:45");
    }

    #[test]
    fn odd_positions_are_named() {
        let ivry = (48.8156, 2.3844);
        let at = |lat, lon| LatLon { lat, lon };
        assert_eq!(odd_position(at(48.82, 2.39), Some(ivry)), None);
        let swapped = odd_position(at(2.3844, 48.8156), Some(ivry)).expect("swapped");
        assert!(
            swapped.contains("did you mean --at 48.8156,2.3844"),
            "{swapped}"
        );
        let far = odd_position(at(43.6, 1.44), Some(ivry)).expect("far");
        assert!(far.contains("from the node's own position"), "{far}");
        assert_eq!(odd_position(at(43.6, 1.44), None), None);
    }

    use super::*;
    use crate::client::{CellCount, NearbyReport};

    #[test]
    fn table() {
        let n = Nearby {
            reports: vec![NearbyReport {
                id: "ab".into(),
                category: "poor_lighting".into(),
                cell: "u09tvwx".into(),
                observed_at: 1_000,
                expires_at: 2_800,
                age_secs: 125,
                distance_m: 1_234.0,
            }],
            cells: vec![CellCount {
                cell: "u09tvwx".into(),
                reports: 1,
            }],
        };
        let t = render(&n);
        assert!(t.contains("poor_lighting"), "{t}");
        assert!(
            t.contains("1.2 km") && t.contains("2 min") && t.contains("27 min"),
            "{t}"
        );
        assert!(
            t.contains("Reports per cell") && t.contains("u09tvwx  1"),
            "{t}"
        );
        assert_eq!(
            render(&Nearby {
                reports: vec![],
                cells: vec![]
            }),
            "No live reports.\n"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration(5), "5 s");
        assert_eq!(duration(600), "10 min");
        assert_eq!(duration(3_660), "1 h 01 min");
        assert_eq!(in_how_long(10, 20), "already");
        assert_eq!(metres(12.4), "12 m");
    }
}
