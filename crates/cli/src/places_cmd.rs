//! `ronde places`, `ronde mediators` and `ronde basemap`: the city
//! directory and street map a running node holds, printed for people.

use serde::Deserialize;

use crate::args::{ApiArgs, BasemapArgs, PlacesArgs};
use crate::client::Client;
use crate::show::{duration, now};

/// The document, in short (`directory` of both answers).
#[derive(Debug, Clone, Deserialize)]
pub struct Summary {
    /// City name.
    pub city: String,
    /// Serial.
    pub serial: u64,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `location` of a place.
#[derive(Debug, Clone, Deserialize)]
pub struct Location {
    /// Degrees.
    #[allow(dead_code)]
    pub lat: f64,
    /// Degrees.
    #[allow(dead_code)]
    pub lon: f64,
}

/// `freshness` of a place.
#[derive(Debug, Clone, Deserialize)]
pub struct Freshness {
    /// `fresh` or `stale`.
    pub status: String,
    /// Unix seconds.
    pub until: Option<u64>,
}

/// One place of `GET /v1/safe-places`.
#[derive(Debug, Clone, Deserialize)]
pub struct Place {
    /// Id (hex), for flags.
    #[allow(dead_code)]
    pub id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Where.
    #[allow(dead_code)]
    pub location: Location,
    /// Hours.
    pub opening_hours: String,
    /// Contact.
    pub contact: String,
    /// Fresh or stale.
    pub freshness: Freshness,
    /// Metres.
    pub distance_m: f64,
}

/// `GET /v1/safe-places`.
#[derive(Debug, Clone, Deserialize)]
pub struct SafePlaces {
    /// `None`: no directory yet.
    pub directory: Option<Summary>,
    /// Nearest first.
    pub places: Vec<Place>,
}

/// A mediator of `GET /v1/directory`.
#[derive(Debug, Clone, Deserialize)]
pub struct Mediator {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Phone.
    pub phone: String,
    /// Geohash prefix, empty: whole city.
    pub area: String,
    /// Hours.
    pub hours: String,
}

/// `directory` of `GET /v1/directory`.
#[derive(Debug, Clone, Deserialize)]
pub struct Directory {
    /// The document.
    #[serde(flatten)]
    pub summary: Summary,
    /// Mediators and emergency contacts.
    pub mediators: Vec<Mediator>,
}

/// `GET /v1/directory`.
#[derive(Debug, Clone, Deserialize)]
pub struct DirectoryAnswer {
    /// `None`: no directory yet.
    pub directory: Option<Directory>,
}

const NO_DIRECTORY: &str =
    "No city directory yet: start the node with --city-key HEX (your city's \
directory key) and connect it to a peer that has the directory, such as the city's relay.\n";

/// `ronde places`.
pub async fn places(args: PlacesArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.api)?;
    let radius = args
        .radius
        .unwrap_or(ronde_node::api::DEFAULT_PLACES_RADIUS_M);
    let q = [
        ("lat", args.at.lat.to_string()),
        ("lon", args.at.lon.to_string()),
        ("radius_m", radius.to_string()),
    ];
    let answer: SafePlaces = client.get_query("/v1/safe-places", &q).await?;
    print!("{}", render_places(&answer, radius, now()));
    Ok(())
}

/// `GET /v1/basemap`.
#[derive(Debug, Deserialize)]
struct BasemapState {
    cached: bool,
    bytes: u64,
}

/// `POST /v1/basemap/fetch`.
#[derive(Debug, Deserialize)]
struct Fetched {
    bytes: u64,
}

/// `ronde basemap [--fetch URL]`.
pub async fn basemap(args: BasemapArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.api)?;
    if let Some(url) = &args.fetch {
        let f: Fetched = client
            .post("/v1/basemap/fetch", serde_json::json!({ "url": url }))
            .await?;
        println!(
            "City basemap kept on this node: {} kB; the app draws the streets offline.",
            f.bytes.div_ceil(1000)
        );
        return Ok(());
    }
    let s: BasemapState = client.get("/v1/basemap").await?;
    if s.cached {
        println!(
            "City basemap kept on this node: {} kB.",
            s.bytes.div_ceil(1000)
        );
    } else {
        println!(
            "No city basemap on this node: the app shows the cells without streets. Fetch it \
             once from your city's relay: ronde basemap --fetch http://<relay>/basemap.pmtiles"
        );
    }
    Ok(())
}

/// `ronde mediators`.
pub async fn mediators(args: ApiArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args)?;
    let answer: DirectoryAnswer = client.get("/v1/directory").await?;
    print!("{}", render_mediators(&answer, now()));
    Ok(())
}

fn header(s: &Summary, now: u64) -> String {
    format!(
        "{} (directory #{}, valid {})\n",
        s.city,
        s.serial,
        if s.expires_at > now {
            format!("for {}", duration(s.expires_at - now))
        } else {
            "no longer".to_owned()
        }
    )
}

/// Cut a cell to `width` characters (with an ellipsis).
fn cell(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

/// The table of `ronde places`.
pub fn render_places(a: &SafePlaces, radius_m: f64, now: u64) -> String {
    use std::fmt::Write;
    let Some(summary) = &a.directory else {
        return NO_DIRECTORY.to_owned();
    };
    let mut out = header(summary, now);
    if a.places.is_empty() {
        let _ = writeln!(
            out,
            "No safe place listed within {}.",
            crate::show::metres(radius_m)
        );
        return out;
    }
    const NAME: usize = 32;
    const HOURS: usize = 28;
    let _ = writeln!(
        out,
        "{}  {}  {:>8}  {}  FRESHNESS",
        pad("NAME", NAME),
        pad("KIND", 14),
        "DISTANCE",
        pad("HOURS", HOURS)
    );
    for p in &a.places {
        let fresh = match (p.freshness.status.as_str(), p.freshness.until) {
            ("stale", Some(u)) if u > now => format!("stale, {} left", duration(u - now)),
            ("stale", _) => "stale".to_owned(),
            (s, _) => s.to_owned(),
        };
        let hours = if p.opening_hours.is_empty() {
            "?".to_owned()
        } else {
            p.opening_hours.clone()
        };
        let _ = writeln!(
            out,
            "{}  {}  {:>8}  {}  {}",
            pad(&cell(&p.name, NAME), NAME),
            pad(&cell(&p.kind, 14), 14),
            crate::show::metres(p.distance_m),
            pad(&cell(&hours, HOURS), HOURS),
            fresh
        );
        if !p.contact.is_empty() {
            let _ = writeln!(out, "    contact: {}", p.contact);
        }
    }
    out
}

/// The list of `ronde mediators`.
pub fn render_mediators(a: &DirectoryAnswer, now: u64) -> String {
    use std::fmt::Write;
    let Some(d) = &a.directory else {
        return NO_DIRECTORY.to_owned();
    };
    let mut out = header(&d.summary, now);
    if d.mediators.is_empty() {
        out.push_str("No mediator or emergency contact listed.\n");
        return out;
    }
    for m in &d.mediators {
        let _ = writeln!(out, "{} ({})", m.name, m.role);
        let _ = writeln!(out, "    phone: {}", m.phone);
        if !m.hours.is_empty() {
            let _ = writeln!(out, "    hours: {}", m.hours);
        }
        let area = if m.area.is_empty() {
            "the whole city".to_owned()
        } else {
            format!("area {}", m.area)
        };
        let _ = writeln!(out, "    covers: {area}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            city: "Ivry".into(),
            serial: 7,
            expires_at: 1_000 + 2 * 3_600,
        }
    }

    #[test]
    fn places_table() {
        let a = SafePlaces {
            directory: Some(summary()),
            places: vec![
                Place {
                    id: "00".repeat(16),
                    name: "Pharmacie de la Mairie".into(),
                    kind: "pharmacy".into(),
                    location: Location { lat: 1.0, lon: 2.0 },
                    opening_hours: "Mo-Sa 09:00-21:00".into(),
                    contact: "+33 1 00 00 00 00".into(),
                    freshness: Freshness {
                        status: "fresh".into(),
                        until: Some(99_999),
                    },
                    distance_m: 120.4,
                },
                Place {
                    id: "01".repeat(16),
                    name: "Le Café des Sports et de la Gare du Nord, Ivry".into(),
                    kind: "bar".into(),
                    location: Location { lat: 1.0, lon: 2.0 },
                    opening_hours: String::new(),
                    contact: String::new(),
                    freshness: Freshness {
                        status: "stale".into(),
                        until: Some(1_000 + 3 * 86_400),
                    },
                    distance_m: 1_530.0,
                },
            ],
        };
        let t = render_places(&a, 5_000.0, 1_000);
        assert!(
            t.starts_with("Ivry (directory #7, valid for 2 h 00 min)"),
            "{t}"
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].starts_with("NAME"), "{t}");
        assert!(lines[2].contains("Pharmacie de la Mairie") && lines[2].contains("120 m"));
        assert!(lines[2].contains("Mo-Sa 09:00-21:00") && lines[2].ends_with("fresh"));
        assert!(lines[3].contains("+33 1 00 00 00 00"), "{t}");
        assert!(lines[4].contains("Le Café des Sports et de la Gar…"), "{t}");
        assert!(lines[4].contains("1.5 km") && lines[4].contains("stale, 72 h 00 min left"));
        assert_eq!(
            render_places(
                &SafePlaces {
                    directory: None,
                    places: vec![]
                },
                5_000.0,
                0
            ),
            NO_DIRECTORY
        );
        let empty = render_places(
            &SafePlaces {
                directory: Some(summary()),
                places: vec![],
            },
            5_000.0,
            1_000,
        );
        assert!(
            empty.contains("No safe place listed within 5.0 km"),
            "{empty}"
        );
    }

    #[test]
    fn mediators_list() {
        let a = DirectoryAnswer {
            directory: Some(Directory {
                summary: summary(),
                mediators: vec![Mediator {
                    name: "Équipe de médiation".into(),
                    role: "street mediators".into(),
                    phone: "+33 6 00 00 00 00".into(),
                    area: String::new(),
                    hours: "Fr-Sa 20:00-02:00".into(),
                }],
            }),
        };
        let t = render_mediators(&a, 1_000);
        assert!(t.contains("Équipe de médiation (street mediators)"), "{t}");
        assert!(t.contains("phone: +33 6 00 00 00 00") && t.contains("the whole city"));
        assert_eq!(
            render_mediators(&DirectoryAnswer { directory: None }, 0),
            NO_DIRECTORY
        );
    }
}
