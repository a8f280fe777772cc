//! Helpers of the circle tests: nodes with a mailbox host, befriending two
//! nodes through the real invite → accept → approve handshake, waiting for
//! inbox items and events.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use libp2p::Multiaddr;
use ronde_node::circle::{InboxItem, InboxNotice};
use ronde_node::{ManualClock, Node, NodeConfig, NodeEvent};
use ronde_protocol::circle::{ContactId, ContactState};
use tokio::sync::broadcast;

/// The tests' "now" (Unix seconds).
pub const T0: u64 = 1_790_000_040;
/// How long any condition may take.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A test configuration (memory transport, fast circle timers).
pub fn config(dir: &Path, clock: &ManualClock) -> NodeConfig {
    let mut c = NodeConfig::for_tests(dir);
    c.clock = Arc::new(clock.clone());
    c
}

/// Start a node, panicking with the error if it fails.
pub async fn start(config: NodeConfig) -> Node {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    match Node::start(config).await {
        Ok(n) => n,
        Err(e) => panic!("node did not start: {e}"),
    }
}

/// A mailbox host and the address others configure as `mailbox_peers`.
pub async fn start_host(dir: &Path, clock: &ManualClock) -> (Node, Multiaddr) {
    let mut c = config(dir, clock);
    c.mailbox_host = true;
    let host = start(c).await;
    let addr = host
        .listen_addrs()
        .await
        .expect("addrs")
        .into_iter()
        .next()
        .expect("the host listens")
        .with_p2p(host.peer_id())
        .expect("p2p suffix");
    (host, addr)
}

/// A node that uses `host` as its mailbox host.
pub fn config_with_host(dir: &Path, clock: &ManualClock, host: &Multiaddr) -> NodeConfig {
    let mut c = config(dir, clock);
    c.mailbox_peers = vec![host.clone()];
    c
}

/// Poll `f` every 50 ms until it returns `Some`, or panic after
/// [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The state of `node`'s contact named `name`, if any.
pub async fn contact_state(node: &Node, name: &str) -> Option<(ContactId, ContactState)> {
    node.contacts()
        .await
        .ok()?
        .contacts
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| (c.id, c.state))
}

/// Make `a` (named `a_name`) and `b` (named `b_name`) mutual contacts
/// through the real handshake: `a` invites, `b` accepts, `a` approves.
/// Returns (b's id at a, a's id at b).
pub async fn befriend(a: &Node, a_name: &str, b: &Node, b_name: &str) -> (ContactId, ContactId) {
    let invite = a
        .create_invite(Some(a_name.to_owned()), 3600)
        .await
        .expect("invite");
    let at_b = b
        .accept_invite(&invite.code, Some(b_name.to_owned()))
        .await
        .expect("accept");
    assert_eq!(at_b.state, ContactState::AwaitingTheirApproval);
    assert_eq!(at_b.name, a_name);
    let (b_at_a, _) = eventually("the accept to arrive", || async {
        contact_state(a, b_name)
            .await
            .filter(|(_, s)| *s == ContactState::AwaitingMyApproval)
    })
    .await;
    // Both sides compute the same safety number.
    let sn_a = a
        .contacts()
        .await
        .expect("contacts")
        .contacts
        .into_iter()
        .find(|c| c.id == b_at_a)
        .expect("the new contact")
        .safety_number;
    assert_eq!(sn_a, at_b.safety_number);
    let approved = a.approve_contact(&b_at_a.to_hex()).await.expect("approve");
    assert_eq!(approved.state, ContactState::Mutual);
    eventually("the confirm to arrive", || async {
        contact_state(b, a_name)
            .await
            .filter(|(_, s)| *s == ContactState::Mutual)
    })
    .await;
    (b_at_a, at_b.id)
}

/// The inbox items of `node` matching `f`.
pub async fn inbox_where(node: &Node, f: impl Fn(&InboxItem) -> bool) -> Vec<InboxItem> {
    node.inbox(None)
        .await
        .expect("inbox")
        .items
        .into_iter()
        .filter(|i| f(i))
        .collect()
}

/// Whether an item is an SOS.
pub fn is_sos(i: &InboxItem) -> bool {
    matches!(i.notice, InboxNotice::Sos { .. })
}

/// Whether an item is an overdue alert.
pub fn is_overdue(i: &InboxItem) -> bool {
    matches!(i.notice, InboxNotice::Overdue { .. })
}

/// Wait for an `alert` event matching `f`.
pub async fn next_alert(
    events: &mut broadcast::Receiver<NodeEvent>,
    f: impl Fn(&InboxItem) -> bool,
) -> InboxItem {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(NodeEvent::Alert(item))) if f(&item) => return item,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event stream ended: {e}"),
            Err(_) => panic!("no matching alert within {DEADLINE:?}"),
        }
    }
}

/// Let the nodes' timers run for a while (real time; the manual clock
/// does not move).
pub async fn settle(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Every byte of every file under `dir`.
pub fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(b) = std::fs::read(&path) {
                out.extend_from_slice(&b);
            }
        }
    }
    out
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A city key and its directory listing `relays` (no places), valid for a
/// day from [`T0`], signed.
pub fn city_directory(
    mut relays: Vec<ronde_protocol::directory::RelayEntry>,
) -> (ronde_protocol::directory::DirectoryKey, Vec<u8>) {
    relays.sort_by(|x, y| x.peer.cmp(&y.peer));
    let city = ronde_protocol::directory::DirectoryKey::generate(&mut rand::rngs::OsRng);
    let signed = ronde_protocol::directory::Directory {
        city: "Ivry".into(),
        serial: 1,
        issued_at: T0,
        expires_at: T0 + 86_400,
        places: vec![],
        mediators: vec![],
        heartbeats: vec![],
        relays,
        token_keys: vec![],
    }
    .sign(&city)
    .expect("sign");
    (city, signed)
}

/// The first address `node` listens on.
pub async fn listen_addr(node: &Node) -> Multiaddr {
    node.listen_addrs()
        .await
        .expect("addrs")
        .into_iter()
        .next()
        .expect("the node listens")
}
