//! A small client of the node's local HTTP API (see `docs/openapi.yaml`),
//! which finds the node's API token by itself ([`Token::find`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use ronde_node::api::{read_token, TOKEN_FILE};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::args::{default_data_dir, ApiArgs, FALLBACK_DATA_DIR, TOKEN_ENV};
use crate::exit::{self, Coded};

/// `GET /v1/status`.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    /// The node's peer id.
    pub peer_id: String,
    /// Where it listens.
    pub listen_addrs: Vec<String>,
    /// How many peers it is connected to.
    pub connected_peers: usize,
    /// The gossip areas it follows, its own first.
    pub areas: Vec<String>,
    /// Reports in its store.
    pub stored_reports: usize,
    /// Where the node is, if it knows.
    #[serde(default)]
    pub location: Option<NodeLocation>,
}

/// The node's position (`GET /v1/status`).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct NodeLocation {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// `POST /v1/reports`.
#[derive(Debug, Clone, Deserialize)]
pub struct Published {
    /// Report id (hex).
    pub id: String,
    /// The cell sent.
    pub cell: String,
    /// Unix seconds.
    pub expires_at: u64,
    /// Whether it went out to at least one peer already.
    pub published: bool,
}

/// One report of `GET /v1/reports`.
#[derive(Debug, Clone, Deserialize)]
pub struct NearbyReport {
    /// Report id (hex).
    #[allow(dead_code)]
    pub id: String,
    /// Category name.
    pub category: String,
    /// Cell.
    pub cell: String,
    /// Unix seconds.
    pub observed_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
    /// Seconds since observed, by the node's clock.
    pub age_secs: u64,
    /// Metres from the point asked about to the cell.
    pub distance_m: f64,
}

/// Reports per cell.
#[derive(Debug, Clone, Deserialize)]
pub struct CellCount {
    /// Cell.
    pub cell: String,
    /// Distinct live reports in it.
    pub reports: usize,
}

/// `GET /v1/reports`.
#[derive(Debug, Clone, Deserialize)]
pub struct Nearby {
    /// Newest first.
    pub reports: Vec<NearbyReport>,
    /// Per cell.
    pub cells: Vec<CellCount>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
    message: String,
}

/// The API's token, and where it came from (for the hint on a 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token, if one was found.
    pub value: Option<String>,
    /// Where it was read, or where it was looked for.
    pub source: String,
}

impl Token {
    /// The token of the node the client commands talk to: the environment
    /// variable `RONDE_API_TOKEN`; else `<data_dir>/api-token` of the
    /// given data directory; else that of `ronde node`'s default data
    /// directory or of `./ronde-data` (the README's), whichever was written
    /// last (a node writes a new one at every start).
    pub fn find(data_dir: Option<&Path>) -> Token {
        if let Some(t) = std::env::var(TOKEN_ENV)
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
        {
            return Token {
                value: Some(t),
                source: format!("the environment variable {TOKEN_ENV}"),
            };
        }
        let candidates = match data_dir {
            Some(d) => vec![d.to_path_buf()],
            None => {
                let mut c = vec![default_data_dir()];
                let quick = PathBuf::from(FALLBACK_DATA_DIR);
                if !c.contains(&quick) {
                    c.push(quick);
                }
                c
            }
        };
        Token::newest(&candidates)
    }

    /// The token most recently written among `dirs`' `api-token` files.
    fn newest(dirs: &[PathBuf]) -> Token {
        let newest = dirs
            .iter()
            .filter_map(|d| {
                let modified = std::fs::metadata(d.join(TOKEN_FILE))
                    .and_then(|m| m.modified())
                    .ok()?;
                let token = read_token(d).ok()?;
                Some((modified, d, token))
            })
            .max_by_key(|(modified, _, _)| *modified);
        match newest {
            Some((_, d, token)) => Token {
                value: Some(token),
                source: d.join(TOKEN_FILE).display().to_string(),
            },
            None => Token {
                value: None,
                source: dirs
                    .iter()
                    .map(|d| d.join(TOKEN_FILE).display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            },
        }
    }
}

/// The API of one node.
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Token,
}

impl Client {
    /// A client of the node's API that `args` name, with its token.
    pub fn from_args(args: &ApiArgs) -> anyhow::Result<Client> {
        Client::new(&args.api, Token::find(args.data_dir.as_deref()))
    }

    /// A client of the API at `url` (`http://` is assumed when missing)
    /// that sends `token`.
    pub fn new(url: &str, token: Token) -> anyhow::Result<Client> {
        let url = url.trim().trim_end_matches('/');
        let base = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        if !base.starts_with("http://") {
            return Err(Coded::new(
                exit::USAGE,
                format!("--api {url:?}: only http:// URLs are supported (the API is local)"),
            )
            .into());
        }
        let mut headers = HeaderMap::new();
        if let Some(t) = &token.value {
            let mut v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                Coded::new(
                    exit::USAGE,
                    format!("the API token in {} is not a valid token", token.source),
                )
            })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(5))
            // Sealing a report costs proof of work: leave it time.
            .timeout(Duration::from_secs(60))
            .build()
            .context("could not set up the HTTP client")?;
        Ok(Client { base, http, token })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> anyhow::Result<Status> {
        self.send(self.http.get(self.url("/v1/status"))).await
    }

    /// `POST /v1/reports`.
    pub async fn report(
        &self,
        category: &str,
        lat: f64,
        lon: f64,
        precision: Option<u8>,
    ) -> anyhow::Result<Published> {
        let mut body = serde_json::json!({ "category": category, "lat": lat, "lon": lon });
        if let Some(p) = precision {
            body["precision"] = p.into();
        }
        self.send(self.http.post(self.url("/v1/reports")).json(&body))
            .await
    }

    /// `GET /v1/reports`.
    pub async fn nearby(&self, lat: f64, lon: f64, radius_m: f64) -> anyhow::Result<Nearby> {
        let q = [
            ("lat", lat.to_string()),
            ("lon", lon.to_string()),
            ("radius_m", radius_m.to_string()),
        ];
        self.send(self.http.get(self.url("/v1/reports")).query(&q))
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`, the answer parsed as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.get(self.url(path))).await
    }

    /// `GET path?query`, the answer parsed as `T`.
    pub async fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        self.send(self.http.get(self.url(path)).query(query)).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<T> {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<T> {
        self.send(self.http.put(self.url(path)).json(&body)).await
    }

    /// `DELETE path` with a JSON body.
    pub async fn delete_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<T> {
        self.send(self.http.delete(self.url(path)).json(&body))
            .await
    }

    /// `DELETE path`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.delete(self.url(path))).await
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let resp = req.send().await.map_err(|e| {
            let unreachable = e.is_connect() || e.is_timeout();
            let err = anyhow::Error::from(e);
            if unreachable {
                err.context(Coded::new(
                    exit::UNREACHABLE,
                    format!(
                        "could not reach the node API at {}; is `ronde node` running there?",
                        self.base
                    ),
                ))
            } else {
                err.context(format!("request to the node API at {} failed", self.base))
            }
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("reading the answer of {} failed", self.base))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "the node API at {} answered something this version does not understand",
                    self.base
                )
            });
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => (b.error, b.message),
            Err(_) => (
                "unknown".to_owned(),
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            ),
        };
        let hint = match (status, &self.token.value) {
            (StatusCode::UNAUTHORIZED, Some(_)) => format!(
                "; the token was read from {}: is it the token of the node at {}? (it changes at \
                 every start of the node)",
                self.token.source, self.base
            ),
            (StatusCode::UNAUTHORIZED, None) => format!(
                "; no token found in {}: give the node's --data-dir, or set {TOKEN_ENV}",
                self.token.source
            ),
            _ => String::new(),
        };
        let exit_code = match (status, code.as_str()) {
            (StatusCode::SERVICE_UNAVAILABLE, _) => exit::UNREACHABLE,
            (StatusCode::INSUFFICIENT_STORAGE, _) | (_, "storage_error" | "storage_full") => {
                exit::STORAGE
            }
            (s, _) if s.is_client_error() => exit::USAGE,
            _ => exit::FAILURE,
        };
        Err(Coded::new(
            exit_code,
            format!(
                "the node refused the request: {message} ({code}, HTTP {}){hint}",
                status.as_u16()
            ),
        )
        .into())
    }
}
