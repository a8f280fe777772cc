//! Push wake-ups on a mailbox host: phones register a UnifiedPush endpoint
//! for the mailboxes they prove (`0x06 push` on `/ronde/mailbox/1`), and
//! when mail arrives in one of them the host POSTs a content-free wake-up
//! to the endpoint (docs/circle.md §7.3).
//!
//! * [`PushRegistry`]: the registrations in sled, one record each (the
//!   endpoint, the watched mailbox addresses, the expiry), with an index
//!   mailbox → registration; bounded in all, per endpoint, per peer and per
//!   network, and purged when they expire or when the push server says the
//!   endpoint is gone (404, 410).
//! * [`PushWaker`]: the sender, a task of its own off the event loop: an
//!   HTTP client with timeouts, no redirects and no proxy, which refuses to
//!   connect to loopback, private or link-local addresses (checked on the
//!   resolved addresses, not only on the URL); at most one POST per
//!   registration per [`PushSettings::min_gap`], later wake-ups coalesced
//!   into one at the end of the gap. Only with the crate's `push-sender`
//!   feature (on by default; off in the phone library, which is never a
//!   mailbox host): without it registrations are still kept and checked,
//!   and no wake-up is sent.
//!
//! The POST carries [`WAKE_BODY`], the same bytes for everyone, and the
//! RFC 8030 headers `TTL` and `Urgency: high`: neither the push server nor
//! the phone's distributor learns a mailbox address, a sender or a count.
//! Logs name no endpoint and no mailbox.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
#[cfg(feature = "push-sender")]
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
#[cfg(feature = "push-sender")]
use std::sync::Arc;
#[cfg(feature = "push-sender")]
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
#[cfg(feature = "push-sender")]
use tokio::time::Instant;

use crate::circle::wire::{Refusal, MAX_PUSH_ENDPOINT};
use crate::error::StoreError;
use crate::store::map_sled;

/// The body of every wake-up: a constant, so that it says nothing.
pub const WAKE_BODY: &[u8] = b"ronde-wake";
/// The RFC 8030 `TTL` of a wake-up (seconds): a push server may hold it
/// this long for a phone that is off.
pub const WAKE_TTL_SECS: u64 = 4 * 3600;
/// Longest registration lifetime the host grants: the rest of a day and
/// the next (a day's mailboxes are polled until the end of the next day).
pub const MAX_PUSH_LIFETIME_SECS: u32 = 2 * 86_400 + 3600;
/// Domain of a registration's identifier.
const ID_DOMAIN: &[u8] = b"ronde/push/v1/registration";

/// The host's push settings (part of [`crate::config::MailboxLimits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushSettings {
    /// Whether this host takes push registrations at all.
    pub enabled: bool,
    /// Most registrations held in all.
    pub max_registrations: usize,
    /// Most registrations of one endpoint (one a day, with slack).
    pub max_per_endpoint: usize,
    /// Most registrations from one peer id.
    pub max_per_peer: usize,
    /// Most registrations from one network (IPv4 /24, IPv6 /48).
    pub max_per_network: usize,
    /// At least this long between two wake-ups of one registration
    /// (seconds); those in between are coalesced into one.
    pub min_gap_secs: u64,
    /// Tests only: accept `http://` endpoints on loopback addresses.
    pub allow_local: bool,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            enabled: true,
            max_registrations: 20_000,
            max_per_endpoint: 4,
            max_per_peer: 2,
            max_per_network: 256,
            min_gap_secs: 30,
            allow_local: false,
        }
    }
}

/// Whether an address is one a host may post to: not loopback, private,
/// link-local, shared (CGNAT), multicast, documentation or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// Check an endpoint a client asks to be woken at: an `https` URL of at
/// most [`MAX_PUSH_ENDPOINT`] bytes, with a host name or a public address,
/// no user name or password, no fragment. With `allow_local` (tests),
/// `http` and loopback addresses are accepted too.
pub fn check_endpoint(endpoint: &str, allow_local: bool) -> Result<reqwest::Url, Refusal> {
    if endpoint.is_empty() || endpoint.len() > MAX_PUSH_ENDPOINT {
        return Err(Refusal::PushEndpoint);
    }
    let url = reqwest::Url::parse(endpoint).map_err(|_| Refusal::PushEndpoint)?;
    let scheme_ok = url.scheme() == "https" || (allow_local && url.scheme() == "http");
    if !scheme_ok
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return Err(Refusal::PushEndpoint);
    }
    let host = url.host_str().ok_or(Refusal::PushEndpoint)?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<IpAddr>() {
        Ok(ip) if allow_local || is_public(ip) => {}
        Ok(_) => return Err(Refusal::PushEndpoint),
        Err(_) => {
            let d = host.trim_end_matches('.').to_ascii_lowercase();
            if !allow_local && (d == "localhost" || d.ends_with(".localhost") || !d.contains('.')) {
                return Err(Refusal::PushEndpoint);
            }
        }
    }
    Ok(url)
}

/// A registration's identifier: one per client peer id (a phone's
/// identity of one day), so that registering again replaces it.
pub fn registration_id(client: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ID_DOMAIN);
    h.update(client);
    h.finalize().into()
}

/// One registration as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// When it lapses (Unix seconds).
    pub expires_at: u64,
    /// The endpoint woken.
    pub endpoint: String,
    /// The mailbox addresses watched.
    pub mailboxes: Vec<[u8; 32]>,
}

impl Registration {
    /// `expires_at (8) || len (2) || endpoint || n (1) || n × mailbox (32)`.
    fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(11 + self.endpoint.len() + 32 * self.mailboxes.len());
        b.extend_from_slice(&self.expires_at.to_be_bytes());
        b.extend_from_slice(&(self.endpoint.len() as u16).to_be_bytes());
        b.extend_from_slice(self.endpoint.as_bytes());
        b.push(self.mailboxes.len() as u8);
        self.mailboxes.iter().for_each(|m| b.extend_from_slice(m));
        b
    }

    fn from_bytes(b: &[u8]) -> Option<Registration> {
        let mut r = ronde_protocol::cursor::Cursor::<ronde_protocol::cursor::CursorError>::new(b);
        let expires_at = r.u64().ok()?;
        let len = usize::from(r.u16().ok()?);
        let endpoint = std::str::from_utf8(r.take(len).ok()?).ok()?.to_owned();
        let n = usize::from(r.u8().ok()?);
        let mailboxes = (0..n)
            .map(|_| r.array::<32>())
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        r.finish().ok()?;
        Some(Registration {
            expires_at,
            endpoint,
            mailboxes,
        })
    }
}

/// The registrations, in sled (see the module doc).
pub struct PushRegistry {
    path: PathBuf,
    regs: sled::Tree,
    index: sled::Tree,
    /// Registrations of each endpoint (rebuilt at open).
    by_endpoint: HashMap<String, HashSet<[u8; 32]>>,
}

fn index_key(mailbox: &[u8; 32], id: &[u8; 32]) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(mailbox);
    k[32..].copy_from_slice(id);
    k
}

impl PushRegistry {
    /// Open the registry's trees in `db`.
    pub fn open(db: &sled::Db, path: &Path) -> Result<PushRegistry, StoreError> {
        let err = |e| map_sled(path, e);
        let regs = db.open_tree("push_registrations").map_err(err)?;
        let index = db.open_tree("push_index").map_err(err)?;
        let mut by_endpoint: HashMap<String, HashSet<[u8; 32]>> = HashMap::new();
        for item in regs.iter() {
            let (k, v) = item.map_err(err)?;
            let id: [u8; 32] = k
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt("a push registration key is malformed".into()))?;
            let r = Registration::from_bytes(&v)
                .ok_or_else(|| StoreError::Corrupt("a push registration is malformed".into()))?;
            by_endpoint.entry(r.endpoint).or_default().insert(id);
        }
        Ok(PushRegistry {
            path: path.to_path_buf(),
            regs,
            index,
            by_endpoint,
        })
    }

    fn err(&self, e: sled::Error) -> StoreError {
        map_sled(&self.path, e)
    }

    /// Registrations held.
    pub fn len(&self) -> usize {
        self.regs.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.regs.is_empty()
    }

    /// Whether `id` is held.
    pub fn holds(&self, id: &[u8; 32]) -> bool {
        self.regs.contains_key(id).unwrap_or(false)
    }

    /// The registration `id`.
    pub fn get(&self, id: &[u8; 32]) -> Result<Option<Registration>, StoreError> {
        let v = self.regs.get(id).map_err(|e| self.err(e))?;
        Ok(v.and_then(|v| Registration::from_bytes(&v)))
    }

    /// How many registrations wake `endpoint`, `id` aside.
    pub fn of_endpoint(&self, endpoint: &str, id: &[u8; 32]) -> usize {
        self.by_endpoint
            .get(endpoint)
            .map_or(0, |s| s.iter().filter(|i| *i != id).count())
    }

    /// Store (or replace) registration `id`.
    pub fn put(&mut self, id: [u8; 32], reg: &Registration) -> Result<(), StoreError> {
        self.remove(&id)?;
        let mut batch = sled::Batch::default();
        for m in &reg.mailboxes {
            batch.insert(&index_key(m, &id)[..], &[][..]);
        }
        self.index.apply_batch(batch).map_err(|e| self.err(e))?;
        self.regs
            .insert(id, reg.to_bytes())
            .map_err(|e| self.err(e))?;
        self.by_endpoint
            .entry(reg.endpoint.clone())
            .or_default()
            .insert(id);
        Ok(())
    }

    /// Forget registration `id`; whether it was held.
    pub fn remove(&mut self, id: &[u8; 32]) -> Result<bool, StoreError> {
        let Some(old) = self.get(id)? else {
            return Ok(false);
        };
        let mut batch = sled::Batch::default();
        for m in &old.mailboxes {
            batch.remove(&index_key(m, id)[..]);
        }
        self.index.apply_batch(batch).map_err(|e| self.err(e))?;
        self.regs.remove(id).map_err(|e| self.err(e))?;
        if let Some(s) = self.by_endpoint.get_mut(&old.endpoint) {
            s.remove(id);
            if s.is_empty() {
                self.by_endpoint.remove(&old.endpoint);
            }
        }
        Ok(true)
    }

    /// The live registrations watching `mailbox`: `(id, endpoint)`.
    pub fn watchers(
        &self,
        mailbox: &[u8; 32],
        now: u64,
    ) -> Result<Vec<([u8; 32], String)>, StoreError> {
        let mut out = Vec::new();
        for item in self.index.scan_prefix(mailbox) {
            let (k, _) = item.map_err(|e| self.err(e))?;
            let Some(id) = k.get(32..64).and_then(|s| <[u8; 32]>::try_from(s).ok()) else {
                continue;
            };
            if let Some(r) = self.get(&id)? {
                if r.expires_at > now {
                    out.push((id, r.endpoint));
                }
            }
        }
        Ok(out)
    }

    /// Forget the registrations that lapsed; how many.
    pub fn purge(&mut self, now: u64) -> Result<usize, StoreError> {
        let mut lapsed = Vec::new();
        for item in self.regs.iter() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let lapsed_now = Registration::from_bytes(&v).is_none_or(|r| r.expires_at <= now);
            if let (true, Ok(id)) = (lapsed_now, <[u8; 32]>::try_from(k.as_ref())) {
                lapsed.push(id);
            }
        }
        for id in &lapsed {
            self.remove(id)?;
        }
        Ok(lapsed.len())
    }

    /// Forget every registration of `endpoint` (its push server said it is
    /// gone); how many.
    pub fn remove_endpoint(&mut self, endpoint: &str) -> Result<usize, StoreError> {
        let ids: Vec<[u8; 32]> = self
            .by_endpoint
            .get(endpoint)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for id in &ids {
            self.remove(id)?;
        }
        Ok(ids.len())
    }
}

/// Resolves names as the system does, keeping only public addresses.
#[cfg(feature = "push-sender")]
struct PublicOnly;

#[cfg(feature = "push-sender")]
impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err("the push endpoint has no public address".into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// What the host asks of the sender.
#[cfg_attr(not(feature = "push-sender"), allow(dead_code))]
struct Wake {
    id: [u8; 32],
    endpoint: String,
}

/// The sender of wake-ups: a task of its own (see the module doc). The
/// event loop only queues; what the push servers answer comes back as the
/// endpoints to forget ([`PushWaker::gone`]).
pub struct PushWaker {
    tx: mpsc::Sender<Wake>,
    gone: mpsc::UnboundedReceiver<String>,
}

/// Wake-ups waiting for the sender at most (more are dropped, logged).
const WAKE_QUEUE: usize = 4096;
/// POSTs under way at once at most.
#[cfg(feature = "push-sender")]
const MAX_INFLIGHT: usize = 16;

impl PushWaker {
    /// Start the sender (on the current Tokio runtime).
    pub fn spawn(settings: PushSettings) -> PushWaker {
        let (tx, rx) = mpsc::channel(WAKE_QUEUE);
        let (gone_tx, gone) = mpsc::unbounded_channel();
        start_sender(settings, rx, gone_tx);
        PushWaker { tx, gone }
    }

    /// Queue a wake-up of registration `id` at `endpoint`.
    pub fn wake(&self, id: [u8; 32], endpoint: String) {
        match self.tx.try_send(Wake { id, endpoint }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("push wake-up queue full: a wake-up was dropped");
            }
            // No sender (built without it, or its client failed).
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// The endpoints their push servers said are gone, since last asked.
    pub fn gone(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(e) = self.gone.try_recv() {
            out.push(e);
        }
        out
    }
}

/// Start the task that sends the queued wake-ups.
#[cfg(feature = "push-sender")]
fn start_sender(
    settings: PushSettings,
    rx: mpsc::Receiver<Wake>,
    gone_tx: mpsc::UnboundedSender<String>,
) {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent("ronde-mailbox-host");
    if !settings.allow_local {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    match builder.build() {
        Ok(client) => {
            tokio::spawn(run(client, settings, rx, gone_tx));
        }
        Err(e) => tracing::error!(error = %e, "push wake-ups disabled: no HTTP client"),
    }
}

/// Built without the sender: `wake` finds the queue closed and does
/// nothing.
#[cfg(not(feature = "push-sender"))]
fn start_sender(
    settings: PushSettings,
    rx: mpsc::Receiver<Wake>,
    gone_tx: mpsc::UnboundedSender<String>,
) {
    drop((settings, rx, gone_tx));
    tracing::warn!("push wake-ups disabled: this node is built without the push sender");
}

/// A registration's pacing in the sender.
#[cfg(feature = "push-sender")]
struct Slot {
    endpoint: String,
    last: Instant,
    pending: bool,
}

#[cfg(feature = "push-sender")]
async fn run(
    client: reqwest::Client,
    settings: PushSettings,
    mut rx: mpsc::Receiver<Wake>,
    gone: mpsc::UnboundedSender<String>,
) {
    let gap = Duration::from_secs(settings.min_gap_secs);
    let inflight = Arc::new(tokio::sync::Semaphore::new(MAX_INFLIGHT));
    let mut slots: HashMap<[u8; 32], Slot> = HashMap::new();
    loop {
        let next = slots
            .values()
            .filter(|s| s.pending)
            .map(|s| s.last + gap)
            .min();
        let due = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            w = rx.recv() => {
                let Some(w) = w else { return };
                let now = Instant::now();
                match slots.get_mut(&w.id) {
                    Some(s) if now < s.last + gap => {
                        s.pending = true;
                        s.endpoint = w.endpoint;
                    }
                    _ => {
                        slots.insert(w.id, Slot { endpoint: w.endpoint.clone(), last: now, pending: false });
                        post(&client, &inflight, w.endpoint, &gone);
                    }
                }
            }
            () = due => {
                let now = Instant::now();
                for s in slots.values_mut() {
                    if s.pending && s.last + gap <= now {
                        s.pending = false;
                        s.last = now;
                        post(&client, &inflight, s.endpoint.clone(), &gone);
                    }
                }
            }
        }
        // Forget the pacing of registrations quiet for a whole gap.
        let now = Instant::now();
        slots.retain(|_, s| s.pending || now < s.last + gap);
    }
}

/// POST one wake-up, in a task of its own (at most [`MAX_INFLIGHT`]).
#[cfg(feature = "push-sender")]
fn post(
    client: &reqwest::Client,
    inflight: &Arc<tokio::sync::Semaphore>,
    endpoint: String,
    gone: &mpsc::UnboundedSender<String>,
) {
    let Ok(permit) = inflight.clone().try_acquire_owned() else {
        tracing::warn!("too many push wake-ups under way: one was dropped");
        return;
    };
    let client = client.clone();
    let gone = gone.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let res = client
            .post(&endpoint)
            .header("TTL", WAKE_TTL_SECS.to_string())
            .header("Urgency", "high")
            .header("Content-Type", "application/octet-stream")
            .body(WAKE_BODY)
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => tracing::debug!("push wake-up sent"),
            Ok(r) if r.status() == 404 || r.status() == 410 => {
                tracing::debug!("push endpoint gone: its registrations are dropped");
                let _ = gone.send(endpoint);
            }
            Ok(r) => tracing::debug!(status = %r.status(), "push wake-up refused"),
            Err(e) => tracing::debug!(error = %e.without_url(), "push wake-up failed"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_and_public() {
        for ok in [
            "https://ntfy.sh/upAbc123?up=1",
            "https://push.example.org:8443/wake/xyz",
            "https://[2a00:1450::1]/x",
            "https://8.8.8.8/x",
        ] {
            assert!(check_endpoint(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://ntfy.sh/up",
            "https://localhost/x",
            "https://intranet/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.1/x",
            "https://169.254.169.254/latest",
            "https://100.64.0.1/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://user:pw@push.example/x",
            "https://push.example/x#frag",
            "ftp://push.example/x",
            "not a url",
            "",
        ] {
            assert_eq!(
                check_endpoint(bad, false),
                Err(Refusal::PushEndpoint),
                "{bad}"
            );
        }
        assert!(check_endpoint("http://127.0.0.1:9/up", true).is_ok());
        let long = format!("https://push.example/{}", "a".repeat(MAX_PUSH_ENDPOINT));
        assert!(check_endpoint(&long, false).is_err());
    }

    #[cfg(feature = "push-sender")]
    #[tokio::test]
    async fn wake_ups_are_paced_and_coalesced_per_registration() {
        use std::sync::{Arc, Mutex};
        let seen: Arc<Mutex<Vec<(String, std::time::Instant)>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().route(
            "/{token}",
            axum::routing::post(move |uri: axum::http::Uri| {
                let log = log.clone();
                async move {
                    log.lock()
                        .expect("log")
                        .push((uri.path().to_owned(), std::time::Instant::now()));
                    axum::http::StatusCode::CREATED
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let waker = PushWaker::spawn(PushSettings {
            min_gap_secs: 1,
            allow_local: true,
            ..PushSettings::default()
        });
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let start = std::time::Instant::now();
        // Five wake-ups of one registration, one of another.
        for _ in 0..5 {
            waker.wake(a, format!("http://{addr}/a"));
        }
        waker.wake(b, format!("http://{addr}/b"));
        let deadline = start + Duration::from_secs(20);
        loop {
            let n = seen
                .lock()
                .expect("log")
                .iter()
                .filter(|(p, _)| p == "/a")
                .count();
            if n >= 2 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no coalesced wake-up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let log = seen.lock().expect("log").clone();
        let a_times: Vec<_> = log
            .iter()
            .filter(|(p, _)| p == "/a")
            .map(|(_, t)| *t)
            .collect();
        // One at once, the other four coalesced into one a gap later.
        assert_eq!(a_times.len(), 2, "{log:?}");
        assert!(a_times[1] - a_times[0] >= Duration::from_millis(900));
        assert_eq!(
            log.iter().filter(|(p, _)| p == "/b").count(),
            1,
            "its own pace"
        );
    }

    #[test]
    fn registrations_are_indexed_by_mailbox_replaced_and_purged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new().path(dir.path()).open().expect("sled");
        let mut r = PushRegistry::open(&db, dir.path()).expect("open");
        let a = registration_id(b"client-a");
        let b = registration_id(b"client-b");
        let reg = |mailboxes: Vec<[u8; 32]>, expires_at| Registration {
            expires_at,
            endpoint: "https://up.example/e".into(),
            mailboxes,
        };
        r.put(a, &reg(vec![[1; 32], [2; 32]], 100)).expect("put");
        r.put(b, &reg(vec![[2; 32]], 200)).expect("put");
        assert_eq!(r.watchers(&[2; 32], 50).expect("w").len(), 2);
        assert_eq!(r.of_endpoint("https://up.example/e", &a), 1);
        // Replacing a registration drops its old mailboxes.
        r.put(a, &reg(vec![[3; 32]], 100)).expect("put");
        assert!(r.watchers(&[1; 32], 50).expect("w").is_empty());
        assert_eq!(r.watchers(&[3; 32], 50).expect("w").len(), 1);
        // Lapsed ones are not woken, then purged.
        assert!(r.watchers(&[3; 32], 100).expect("w").is_empty());
        assert_eq!(r.purge(150).expect("purge"), 1);
        assert_eq!(r.len(), 1);
        // Reopened: the same.
        drop(r);
        let mut r = PushRegistry::open(&db, dir.path()).expect("reopen");
        assert_eq!(
            r.watchers(&[2; 32], 150).expect("w"),
            vec![(b, "https://up.example/e".into())]
        );
        assert_eq!(r.remove_endpoint("https://up.example/e").expect("gone"), 1);
        assert!(r.is_empty());
        assert_eq!(r.index.len(), 0);
    }
}
