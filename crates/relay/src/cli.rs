//! `ronde relay`: run a city relay, create its configuration and key, and
//! manage its directory from the command line.
//!
//! ```text
//! ronde relay init --city Ivry --prefix u09tv --data-dir /var/lib/ronde-relay
//! ronde relay --config relay.toml              # run until SIGTERM / Ctrl-C
//! ronde relay key                              # the city's public key
//! ronde relay places add --name "Pharmacie" --kind pharmacy --lat 48.81 --lon 2.38
//! ronde relay places list | confirm ID | remove ID
//! ronde relay mediators add --name "Équipe de nuit" --role mediators --phone "+33 6…"
//! ronde relay place-key --out place.key        # for a place that confirms itself
//! ronde relay heartbeat --key place.key --place ID --url https://relay.example
//! ```
//!
//! The directory commands talk to the running relay's operator API with the
//! token of the configuration (the database is the relay's alone while it
//! runs).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use ronde_protocol::directory::{DirectoryPublicKey, Heartbeat, PlaceId, PlaceKind};

use crate::config::{RelayConfig, TEMPLATE};
use crate::directory::{MediatorInput, PlaceInput};
use crate::keys;
use crate::server::{run_server, StartOptions};

/// `ronde relay`.
#[derive(Debug, Args)]
#[command(about = "Run a city relay: aggregates, dashboard, exports, the signed directory")]
pub struct RelayArgs {
    /// The relay's configuration file.
    #[arg(
        long,
        short,
        global = true,
        default_value = "relay.toml",
        env = "RONDE_RELAY_CONFIG"
    )]
    pub config: PathBuf,
    /// What to do (default: run the relay).
    #[command(subcommand)]
    pub command: Option<RelayCommand>,
}

/// Subcommands of `ronde relay`.
#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Write a commented configuration and a new city signing key (0600).
    Init(InitArgs),
    /// Run the relay (the default).
    Run,
    /// Check the configuration and print the areas it covers.
    Check,
    /// Print the city's public key (phones are configured with it).
    Key,
    /// Manage safe places (through the running relay).
    #[command(subcommand)]
    Places(PlacesCommand),
    /// Manage street mediators and emergency contacts.
    #[command(subcommand)]
    Mediators(MediatorsCommand),
    /// Create a heartbeat key for a place that confirms its own listing.
    PlaceKey {
        /// Where to write the secret key (0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a place's heartbeat and send it to a relay.
    Heartbeat {
        /// The place's secret key file.
        #[arg(long)]
        key: PathBuf,
        /// The place's id.
        #[arg(long)]
        place: String,
        /// The relay's public URL, e.g. https://relay.example.org
        #[arg(long)]
        url: String,
    },
}

/// `ronde relay init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The city's name.
    #[arg(long)]
    pub city: String,
    /// Where the relay keeps its data.
    #[arg(long, default_value = "/var/lib/ronde-relay")]
    pub data_dir: PathBuf,
    /// A geohash prefix of the jurisdiction (1 to 5 characters); repeat.
    #[arg(long = "prefix")]
    pub prefixes: Vec<String>,
    /// A bounding box: min_lat,min_lon,max_lat,max_lon.
    #[arg(long, value_delimiter = ',', num_args = 4, allow_hyphen_values = true)]
    pub bbox: Option<Vec<f64>>,
    /// The city's IANA time zone: local days, time-of-day bands and the
    /// dashboard's times follow it, daylight saving time included.
    #[arg(long, default_value = "Europe/Paris")]
    pub time_zone: String,
    /// Overwrite an existing configuration file (never an existing key).
    #[arg(long)]
    pub force: bool,
}

/// `ronde relay places …`.
#[derive(Debug, Subcommand)]
pub enum PlacesCommand {
    /// List places with their freshness and flags.
    List,
    /// Add a place.
    Add(PlaceFields),
    /// Replace a place's details (re-verifies it).
    Update {
        /// The place's id.
        id: String,
        /// The new details.
        #[command(flatten)]
        fields: PlaceFields,
    },
    /// The city confirms a place as it is.
    Confirm {
        /// The place's id.
        id: String,
    },
    /// Remove a place.
    Remove {
        /// The place's id.
        id: String,
    },
}

/// A place's details on the command line.
#[derive(Debug, Args)]
pub struct PlaceFields {
    /// Public name.
    #[arg(long)]
    pub name: String,
    /// Kind: pharmacy, bar, restaurant, shop, hotel, transport, police,
    /// health, association, public_service, other.
    #[arg(long)]
    pub kind: String,
    /// Latitude.
    #[arg(long, allow_hyphen_values = true)]
    pub lat: f64,
    /// Longitude.
    #[arg(long, allow_hyphen_values = true)]
    pub lon: f64,
    /// Opening hours (free text).
    #[arg(long, default_value = "")]
    pub hours: String,
    /// Contact (free text).
    #[arg(long, default_value = "")]
    pub contact: String,
    /// The place's heartbeat public key (64 hex digits).
    #[arg(long)]
    pub heartbeat_key: Option<String>,
}

/// `ronde relay mediators …`.
#[derive(Debug, Subcommand)]
pub enum MediatorsCommand {
    /// List mediators.
    List,
    /// Add a mediator.
    Add(MediatorFields),
    /// The city confirms a mediator as it is.
    Confirm {
        /// The id.
        id: String,
    },
    /// Remove a mediator.
    Remove {
        /// The id.
        id: String,
    },
}

/// A mediator's details on the command line.
#[derive(Debug, Args)]
pub struct MediatorFields {
    /// Name.
    #[arg(long)]
    pub name: String,
    /// Role.
    #[arg(long)]
    pub role: String,
    /// Phone number.
    #[arg(long)]
    pub phone: String,
    /// Geohash prefix of the area covered (empty: the whole city).
    #[arg(long, default_value = "")]
    pub area: String,
    /// When they can be reached.
    #[arg(long, default_value = "")]
    pub hours: String,
}

/// Run `ronde relay`.
pub async fn run(args: RelayArgs) -> anyhow::Result<()> {
    match args.command {
        Some(RelayCommand::Init(a)) => init(&args.config, a),
        None | Some(RelayCommand::Run) => run_relay(&args.config).await,
        Some(RelayCommand::Check) => {
            let c = load(&args.config)?;
            let areas = c.jurisdiction.areas()?;
            println!("configuration OK: {} areas", areas.len());
            for a in areas {
                println!("{a}");
            }
            match c.basemap_path() {
                None => println!("basemap: none (the maps show cells without streets)"),
                Some(p) => {
                    let mut head = [0u8; 8];
                    let read = std::fs::File::open(&p)
                        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head).map(|_| f))
                        .and_then(|f| f.metadata());
                    match read {
                        Ok(m) if ronde_node::basemap::is_pmtiles_v3(&head) => println!(
                            "basemap: {} ({} kB, PMTiles v3)",
                            p.display(),
                            m.len().div_ceil(1000)
                        ),
                        Ok(_) => bail!("basemap {}: not a PMTiles v3 file", p.display()),
                        Err(e) => bail!("basemap {}: {e}", p.display()),
                    }
                }
            }
            Ok(())
        }
        Some(RelayCommand::Key) => {
            let c = load(&args.config)?;
            let key = keys::load_key(&c.key_path())?;
            println!("{}", key.public());
            Ok(())
        }
        Some(RelayCommand::Places(cmd)) => places(&args.config, cmd).await,
        Some(RelayCommand::Mediators(cmd)) => mediators(&args.config, cmd).await,
        Some(RelayCommand::PlaceKey { out }) => {
            let key = keys::create_key(&out)?;
            println!("{}", key.public());
            eprintln!(
                "secret key written to {}; give the public key above to the city",
                out.display()
            );
            Ok(())
        }
        Some(RelayCommand::Heartbeat { key, place, url }) => heartbeat(&key, &place, &url).await,
    }
}

fn load(path: &Path) -> anyhow::Result<RelayConfig> {
    RelayConfig::load(path).with_context(|| format!("loading {}", path.display()))
}

fn toml_string(s: &str) -> String {
    // A TOML basic string: escape backslashes, quotes and control characters.
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            c if c.is_control() => o.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => o.push(c),
        }
    }
    o
}

fn init(path: &Path, a: InitArgs) -> anyhow::Result<()> {
    if path.exists() && !a.force {
        bail!(
            "{} already exists; use --force to overwrite it",
            path.display()
        );
    }
    let prefixes = a
        .prefixes
        .iter()
        .map(|p| format!("\"{}\"", toml_string(p)))
        .collect::<Vec<_>>()
        .join(", ");
    let bbox = match &a.bbox {
        Some(b) if b.len() == 4 => format!("bbox = [{}, {}, {}, {}]", b[0], b[1], b[2], b[3]),
        Some(_) => bail!("--bbox takes four numbers: min_lat,min_lon,max_lat,max_lon"),
        None => "# bbox = [48.80, 2.36, 48.83, 2.41]  # min_lat, min_lon, max_lat, max_lon".into(),
    };
    let mut token = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut token);
    let data_dir = a
        .data_dir
        .to_str()
        .context("the data directory must be valid UTF-8")?;
    let text = TEMPLATE
        .replace("{city}", &toml_string(&a.city))
        .replace("{data_dir}", &toml_string(data_dir))
        .replace("{prefixes}", &prefixes)
        .replace("{bbox}", &bbox)
        .replace("{token}", &hex::encode(token))
        .replace(
            "time_zone = \"Europe/Paris\"",
            &format!("time_zone = \"{}\"", toml_string(&a.time_zone)),
        );
    let config = RelayConfig::parse(&text).context("the configuration would not be valid")?;
    let key_path = config.key_path();
    let key = if key_path.exists() {
        let key = keys::load_key(&key_path)?;
        eprintln!("keeping the existing city key {}", key_path.display());
        key
    } else {
        keys::create_key(&key_path)?
    };
    write_private(path, &text)?;
    println!(
        "wrote {} and the city key {}",
        path.display(),
        key_path.display()
    );
    println!(
        "city public key (configure phones with it): {}",
        key.public()
    );
    println!("the operator token is in the configuration (http.operator_token)");
    Ok(())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

async fn run_relay(path: &Path) -> anyhow::Result<()> {
    let config = load(path)?;
    run_server(config, StartOptions::default(), shutdown_signal())
        .await
        .context("the relay failed")
}

/// Resolves at the first SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

struct Admin {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    fn new(path: &Path) -> anyhow::Result<Admin> {
        let c = load(path)?;
        let mut addr = c.dashboard_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        Ok(Admin {
            base: format!("http://{addr}"),
            token: c.http.operator_token,
            http: reqwest::Client::new(),
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("is the relay running? could not reach {url}"))?;
        let status = res.status();
        let text = res.text().await.context("reading the relay's answer")?;
        if !status.is_success() {
            let msg = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or(text);
            bail!("the relay refused: {status}: {msg}");
        }
        if text.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&text).context("the relay's answer is not JSON")
    }
}

fn place_input(f: PlaceFields) -> anyhow::Result<serde_json::Value> {
    let kind: PlaceKind = f.kind.parse().map_err(|_| {
        anyhow::anyhow!(
            "unknown kind {:?}; expected one of: {}",
            f.kind,
            PlaceKind::NAMES.join(", ")
        )
    })?;
    let heartbeat_key = f
        .heartbeat_key
        .map(|k| k.parse::<DirectoryPublicKey>())
        .transpose()
        .context("--heartbeat-key must be 64 hex digits of an Ed25519 public key")?;
    Ok(serde_json::to_value(PlaceInput {
        name: f.name,
        kind,
        lat: f.lat,
        lon: f.lon,
        opening_hours: f.hours,
        contact: f.contact,
        heartbeat_key,
    })?)
}

fn check_id(id: &str) -> anyhow::Result<&str> {
    id.parse::<PlaceId>()
        .map_err(|_| anyhow::anyhow!("{id:?} is not an id (32 hex digits)"))?;
    Ok(id)
}

async fn places(path: &Path, cmd: PlacesCommand) -> anyhow::Result<()> {
    use reqwest::Method;
    let admin = Admin::new(path)?;
    let out = match cmd {
        PlacesCommand::List => admin.send(Method::GET, "/api/places", None).await?,
        PlacesCommand::Add(f) => {
            admin
                .send(Method::POST, "/api/places", Some(place_input(f)?))
                .await?
        }
        PlacesCommand::Update { id, fields } => {
            let p = format!("/api/places/{}", check_id(&id)?);
            admin
                .send(Method::PUT, &p, Some(place_input(fields)?))
                .await?
        }
        PlacesCommand::Confirm { id } => {
            let p = format!("/api/places/{}/confirm", check_id(&id)?);
            admin.send(Method::POST, &p, None).await?
        }
        PlacesCommand::Remove { id } => {
            let p = format!("/api/places/{}", check_id(&id)?);
            admin.send(Method::DELETE, &p, None).await?
        }
    };
    if !out.is_null() {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

async fn mediators(path: &Path, cmd: MediatorsCommand) -> anyhow::Result<()> {
    use reqwest::Method;
    let admin = Admin::new(path)?;
    let out = match cmd {
        MediatorsCommand::List => admin.send(Method::GET, "/api/mediators", None).await?,
        MediatorsCommand::Add(f) => {
            let body = serde_json::to_value(MediatorInput {
                name: f.name,
                role: f.role,
                phone: f.phone,
                area: f.area,
                hours: f.hours,
            })?;
            admin
                .send(Method::POST, "/api/mediators", Some(body))
                .await?
        }
        MediatorsCommand::Confirm { id } => {
            let p = format!("/api/places/{}/confirm", check_id(&id)?);
            admin.send(Method::POST, &p, None).await?
        }
        MediatorsCommand::Remove { id } => {
            let p = format!("/api/mediators/{}", check_id(&id)?);
            admin.send(Method::DELETE, &p, None).await?
        }
    };
    if !out.is_null() {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

async fn heartbeat(key: &Path, place: &str, url: &str) -> anyhow::Result<()> {
    let key = keys::load_key(key)?;
    let place: PlaceId = check_id(place)?
        .parse()
        .map_err(|_| anyhow::anyhow!("bad place id"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs();
    let hb = Heartbeat::sign(place, now, &key);
    let url = format!("{}/directory/heartbeat", url.trim_end_matches('/'));
    let res = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/octet-stream")
        .body(hb.to_bytes())
        .send()
        .await
        .with_context(|| format!("could not reach {url}"))?;
    let status = res.status();
    if !status.is_success() {
        let text = res.text().await.unwrap_or_default();
        bail!("the relay refused the heartbeat: {status}: {text}");
    }
    println!("heartbeat accepted");
    Ok(())
}
