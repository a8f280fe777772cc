//! A node's local API served for a test on 127.0.0.1:0, with its
//! credential written to the node's data directory as `ronde node` does,
//! and an HTTP client that sends it.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use ronde_node::api::{self, ApiAuth};
use ronde_node::{Node, NodeConfig};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A node and its API; [`Served::stop`] stops both.
pub struct Served {
    /// The node.
    pub node: Node,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The API's credential (its token is also in `<data-dir>/api-token`).
    pub auth: ApiAuth,
    /// A client that sends the token, follows no redirect, and gives up
    /// after 30 s.
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Served {
    /// Start a node from `config` and serve its API.
    pub async fn start(config: NodeConfig) -> Served {
        let data_dir = config.data_dir.clone();
        let node = super::start_with(config).await;
        Served::serve(node, &data_dir).await
    }

    /// Serve the API of a running node whose data are in `data_dir`.
    pub async fn serve(node: Node, data_dir: &Path) -> Served {
        let auth = ApiAuth::create(data_dir).expect("the API token is written");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(api::serve(
            listener,
            node.clone(),
            auth.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        let http = client(Some(auth.token()));
        Served {
            node,
            base,
            auth,
            http,
            stop: Some(tx),
            server,
            _dir: None,
        }
    }

    /// Keep `dir` until this is dropped.
    pub fn keeping(mut self, dir: tempfile::TempDir) -> Served {
        self._dir = Some(dir);
        self
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` with the token: status and JSON body.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        json_of(self.http.get(self.url(path)).send().await.expect("send")).await
    }

    /// `POST path` with a JSON body and the token.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        json_of(
            self.http
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    /// A POST with the JSON content type, no body, and the token.
    pub async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        json_of(
            self.http
                .post(self.url(path))
                .header("content-type", "application/json")
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    /// `DELETE path` with the token.
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        json_of(self.http.delete(self.url(path)).send().await.expect("send")).await
    }

    /// A new one-time login URL of the web app.
    pub fn login_url(&self) -> String {
        self.auth.login_url(&self.base)
    }

    /// Stop the API, then the node; `Err` says how the API did not stop
    /// cleanly within 10 s.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let done = tokio::time::timeout(Duration::from_secs(10), &mut self.server).await;
        let _ = self.node.shutdown().await;
        match done {
            Ok(Ok(Ok(()))) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    }
}

/// Status and JSON body of an answer (panics if the body is not JSON).
pub async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

/// A client that sends `token` (none when `None`), follows no redirect,
/// and gives up after 30 s.
pub fn client(token: Option<&str>) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    if let Some(t) = token {
        let mut v = HeaderValue::from_str(&format!("Bearer {t}")).expect("header");
        v.set_sensitive(true);
        headers.insert(AUTHORIZATION, v);
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("client")
}
