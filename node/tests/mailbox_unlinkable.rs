//! What a mailbox host can link, read from its complete log (issue 12 §5,
//! issue 13 §4), with real nodes and a real host on sled.
//!
//! The host logs every `/ronde/mailbox/1` request it receives with the
//! client's peer id and the connection it came on
//! ([`ronde_node::NodeConfig::mailbox_tap`]): all that a hostile host keeps.
//! Over three days of a pair's ordinary life (mail, restarts, a journey
//! whose switch crosses midnight) nothing in that log may join a day's
//! mailboxes to the next day's: not a request, not a peer id, not a
//! connection, not a switch key or an envelope seen twice. And the peer id
//! that publishes the person's reports never asks the host for anything.

mod circle_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use circle_support::*;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use ronde_node::circle::keyfile::identity_path;
use ronde_node::circle::wire::MailboxRequest;
use ronde_node::circle::SwitchStatus;
use ronde_node::{ManualClock, Node, NodeConfig};
use ronde_protocol::circle::{
    address_of_key, epoch_of, mailbox_address, Identity, PairSecret, SwitchRequest, EPOCH_SECS,
};
use ronde_protocol::Category;

const IVRY: (f64, f64) = (48.815_612_3, 2.384_445_6);

/// One request as the host saw it.
#[derive(Clone)]
struct Logged {
    peer: PeerId,
    connection: ConnectionId,
    request: MailboxRequest,
}

type Log = Arc<Mutex<Vec<Logged>>>;

/// A mailbox host that logs every request, and the address to configure.
async fn logging_host(dir: &std::path::Path, clock: &ManualClock) -> (Node, Multiaddr, Log) {
    let log: Log = Arc::default();
    let mut c = config(dir, clock);
    c.mailbox_host = true;
    let sink = log.clone();
    c.mailbox_tap = Some(Arc::new(move |peer, connection, request| {
        if let Ok(mut l) = sink.lock() {
            l.push(Logged {
                peer,
                connection,
                request: request.clone(),
            });
        }
    }));
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
    (host, addr, log)
}

fn snapshot(log: &Log) -> Vec<Logged> {
    log.lock().expect("log").clone()
}

fn identity_of(dir: &std::path::Path) -> Identity {
    let bytes = std::fs::read(identity_path(dir)).expect("identity file");
    Identity::from_bytes(&bytes).expect("identity")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The mailbox addresses a request names (fetched, acknowledged, put, or
/// where a deposited alert goes).
fn addresses(r: &MailboxRequest) -> Vec<[u8; 32]> {
    match r {
        MailboxRequest::Put { mailbox, .. } => vec![*mailbox],
        MailboxRequest::Fetch { keys, .. } | MailboxRequest::Push { keys, .. } => {
            keys.iter().map(address_of_key).collect()
        }
        MailboxRequest::Ack { keys, items, .. } => keys
            .iter()
            .map(address_of_key)
            .chain(items.iter().map(|(m, _)| *m))
            .collect(),
        MailboxRequest::Switch { request, .. } => match SwitchRequest::from_bytes(request) {
            Ok(SwitchRequest::Deposit(d)) => d.alerts().iter().map(|a| a.mailbox).collect(),
            _ => Vec::new(),
        },
        MailboxRequest::Challenge => Vec::new(),
    }
}

/// Everything in a logged request that the host could match with another
/// request: the peer, the connection, each mailbox, the switch key, the
/// envelopes' bytes.
fn handles(l: &Logged) -> Vec<String> {
    let mut out = vec![
        format!("peer {}", l.peer),
        format!("connection {} {:?}", l.peer, l.connection),
    ];
    out.extend(
        addresses(&l.request)
            .iter()
            .map(|a| format!("mailbox {}", hex(a))),
    );
    match &l.request {
        MailboxRequest::Put { envelope, .. } => out.push(format!("envelope {}", hex(envelope))),
        // The same endpoint registered on two days joins them (see
        // docs/circle.md §7.3): this test's phones set none.
        MailboxRequest::Push { endpoint, .. } => out.push(format!("endpoint {endpoint}")),
        MailboxRequest::Switch { request, .. } => {
            if let Ok(s) = SwitchRequest::from_bytes(request) {
                out.push(format!("switch {}", hex(s.key())));
                if let SwitchRequest::Deposit(d) = s {
                    for a in d.alerts() {
                        out.push(format!("envelope {}", hex(&a.envelope)));
                    }
                }
            }
        }
        _ => {}
    }
    out
}

fn kind(r: &MailboxRequest) -> &'static str {
    match r {
        MailboxRequest::Put { .. } => "put",
        MailboxRequest::Fetch { .. } => "fetch",
        MailboxRequest::Ack { .. } => "ack",
        MailboxRequest::Switch { .. } => "switch",
        MailboxRequest::Challenge => "challenge",
        MailboxRequest::Push { .. } => "push",
    }
}

/// Union-find over the handles.
struct Links {
    parent: Vec<usize>,
    index: HashMap<String, usize>,
}

impl Links {
    fn new() -> Links {
        Links {
            parent: Vec::new(),
            index: HashMap::new(),
        }
    }
    fn id(&mut self, h: &str) -> usize {
        if let Some(i) = self.index.get(h) {
            return *i;
        }
        let i = self.parent.len();
        self.parent.push(i);
        self.index.insert(h.to_owned(), i);
        i
    }
    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }
    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        self.parent[ra] = rb;
    }
}

/// Join every request of the log with everything it shares with another,
/// then check that no group holds mailboxes of two days (`day_of`: the
/// pair's addresses and their day). Panics with the group that does.
fn assert_no_day_linked(log: &[Logged], day_of: &HashMap<[u8; 32], u64>) {
    let mut links = Links::new();
    let mut first = Vec::with_capacity(log.len());
    for l in log {
        let ids: Vec<usize> = handles(l).iter().map(|h| links.id(h)).collect();
        for w in ids.windows(2) {
            links.join(w[0], w[1]);
        }
        first.push(ids[0]);
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (n, id) in first.iter().enumerate() {
        let r = links.root(*id);
        groups.entry(r).or_default().push(n);
    }
    for members in groups.values() {
        let days: BTreeSet<u64> = members
            .iter()
            .flat_map(|n| addresses(&log[*n].request))
            .filter_map(|a| day_of.get(&a).copied())
            .collect();
        if days.len() > 1 {
            let mut why = String::new();
            for n in members {
                let l = &log[*n];
                let own: BTreeSet<u64> = addresses(&l.request)
                    .iter()
                    .filter_map(|a| day_of.get(a).copied())
                    .collect();
                why.push_str(&format!(
                    "\n  {} from {} on {:?}: days {:?}",
                    kind(&l.request),
                    l.peer,
                    l.connection,
                    own
                ));
            }
            panic!(
                "the host links the pair's mailboxes of days {days:?} \
                 ({} requests in that group):{why}",
                members.len()
            );
        }
    }
}

/// Whether the log holds a request of `kind` naming `address`.
fn logged(log: &Log, kind_: &str, address: &[u8; 32]) -> bool {
    snapshot(log)
        .iter()
        .any(|l| kind(&l.request) == kind_ && addresses(&l.request).contains(address))
}

async fn wait_logged(log: &Log, kind_: &str, address: &[u8; 32], what: &str) {
    eventually(what, || async { logged(log, kind_, address).then_some(()) }).await;
}

async fn restart(node: Node, config: NodeConfig) -> Node {
    node.shutdown().await.expect("stop");
    drop(node);
    start(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_log_of_three_days_links_no_day_to_the_next() {
    // 10:00 UTC on day 0.
    let day0 = (T0 / EPOCH_SECS) * EPOCH_SECS;
    let at = |day: u64, hour: u64, min: u64| day0 + day * EPOCH_SECS + hour * 3600 + min * 60;
    let clock = ManualClock::new(at(0, 10, 0));
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (host, host_addr, log) = logging_host(dirs[0].path(), &clock).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let bob_config = || config_with_host(dirs[2].path(), &clock, &host_addr);
    let mut bob = start(bob_config()).await;
    befriend(&alice, "Alice", &bob, "Bob").await;

    let (a, b) = (identity_of(dirs[1].path()), identity_of(dirs[2].path()));
    let pair = PairSecret::derive(&a, b.public()).expect("pair");
    let e0 = epoch_of(at(0, 10, 0));
    // Mail for Alice, and mail for Bob, on day n.
    let to_alice = |n: u64| mailbox_address(&pair, e0 + n, a.public());
    let to_bob = |n: u64| mailbox_address(&pair, e0 + n, b.public());
    let mut day_of = HashMap::new();
    for n in 0..3 {
        day_of.insert(to_alice(n), n);
        day_of.insert(to_bob(n), n);
    }

    for n in 0..3u64 {
        clock.set(at(n, 10, 0));
        if n > 0 {
            // Bob's phone restarts every morning (a fresh peer id).
            bob = restart(bob, bob_config()).await;
        }
        // Both fetch their mailboxes of the day.
        wait_logged(
            &log,
            "fetch",
            &to_alice(n),
            "Alice to fetch her mail of the day",
        )
        .await;
        wait_logged(
            &log,
            "fetch",
            &to_bob(n),
            "Bob to fetch his mail of the day",
        )
        .await;
        // An alert goes through the mailbox too: put, fetched, deleted.
        alice.sos(&format!("day {n}")).await.expect("sos");
        wait_logged(&log, "put", &to_bob(n), "the SOS to be left for Bob").await;
        wait_logged(&log, "ack", &to_bob(n), "Bob to take the SOS from the host").await;
        alice.cancel_sos().await.expect("cancel");

        if n == 1 {
            // A late walk home: its switch is deposited on day 1 and
            // pushed back after midnight, then withdrawn on arrival.
            clock.set(at(1, 23, 0));
            alice
                .start_journey(48.82, 2.39, at(2, 1, 0), 600)
                .await
                .expect("journey");
            eventually("the switch to be armed", || async {
                alice
                    .journey()
                    .await
                    .ok()
                    .filter(|j| j.switch == SwitchStatus::Armed)
            })
            .await;
            clock.set(at(2, 0, 30));
            alice.extend_journey(at(2, 2, 0)).await.expect("extend");
            eventually("the heartbeat at the host", || async {
                snapshot(&log)
                    .iter()
                    .any(|l| match &l.request {
                        MailboxRequest::Switch { request, .. } => matches!(
                            SwitchRequest::from_bytes(request),
                            Ok(SwitchRequest::Heartbeat(_))
                        ),
                        _ => false,
                    })
                    .then_some(())
            })
            .await;
            alice.arrived().await.expect("arrived");
            eventually("the switch to be withdrawn", || async {
                let s = host.circle_status().await.ok()?;
                (s.hosted_switches == 0).then_some(())
            })
            .await;
        }
    }

    let log = snapshot(&log);
    assert_no_day_linked(&log, &day_of);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_id_that_publishes_reports_never_asks_a_mailbox_host() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let first_hops: Arc<Mutex<Vec<PeerId>>> = Arc::default();
    let log: Log = Arc::default();
    let mut c = config(dirs[0].path(), &clock);
    c.mailbox_host = true;
    let sink = log.clone();
    c.mailbox_tap = Some(Arc::new(move |peer, connection, request| {
        if let Ok(mut l) = sink.lock() {
            l.push(Logged {
                peer,
                connection,
                request: request.clone(),
            });
        }
    }));
    let hops = first_hops.clone();
    c.first_hop_tap = Some(Arc::new(move |_, peer| {
        if let Ok(mut h) = hops.lock() {
            h.push(peer);
        }
    }));
    let host = start(c).await;
    let host_addr = host
        .listen_addrs()
        .await
        .expect("addrs")
        .into_iter()
        .next()
        .expect("the host listens")
        .with_p2p(host.peer_id())
        .expect("p2p suffix");
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;

    // Alice's node is on the network through the host (its city relay, say)
    // and reports there.
    alice.dial(host_addr.clone()).await.expect("dial");
    host.set_location(IVRY.0, IVRY.1).await.expect("location");
    alice.set_location(IVRY.0, IVRY.1).await.expect("location");
    let area = alice.status().await.expect("status").areas[0]
        .parse()
        .expect("area");
    eventually("the host to follow Alice's area", || async {
        let peers = alice.peers_in_area(area).await.ok()?;
        peers.contains(&host.peer_id()).then_some(())
    })
    .await;
    alice
        .report(Category::Harassment, IVRY.0, IVRY.1, None)
        .await
        .expect("report");
    eventually(
        "the report to reach the host from Alice's peer id",
        || async {
            let hops = first_hops.lock().ok()?;
            hops.contains(&alice.peer_id()).then_some(())
        },
    )
    .await;

    // Her circle's traffic at the same host: fetches, an alert left for Bob.
    alice.sos("here").await.expect("sos");
    eventually("the SOS to be left and taken", || async {
        let l = snapshot(&log);
        (l.iter().any(|l| kind(&l.request) == "put") && l.iter().any(|l| kind(&l.request) == "ack"))
            .then_some(())
    })
    .await;
    settle(1000).await;

    let l = snapshot(&log);
    assert!(l.iter().any(|l| kind(&l.request) == "fetch"));
    for who in [alice.peer_id(), bob.peer_id()] {
        let asked: Vec<&str> = l
            .iter()
            .filter(|l| l.peer == who)
            .map(|l| kind(&l.request))
            .collect();
        assert!(
            asked.is_empty(),
            "the peer id that publishes reports ({who}) asked the host: {asked:?}"
        );
    }
}
