//! A small client of the node's local HTTP API (see `docs/openapi.yaml`).

use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;

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

/// The API of one node.
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client of the API at `url` (`http://` is assumed when missing).
    pub fn new(url: &str) -> anyhow::Result<Client> {
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
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // Sealing a report costs proof of work: leave it time.
            .timeout(Duration::from_secs(60))
            .build()
            .context("could not set up the HTTP client")?;
        Ok(Client { base, http })
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
                "the node refused the request: {message} ({code}, HTTP {})",
                status.as_u16()
            ),
        )
        .into())
    }
}
