//! Gossip hubs are chosen by the city or the person, never claimed
//! (docs/protocol.md §3.2): a phone gives the hub bonus to a relay its
//! city's signed directory lists with the `gossip` role, or to one it was
//! configured with, and to no one else, not even a relay the same
//! directory lists for other roles.

mod circle_support;

use circle_support::*;
use libp2p::PeerId;
use ronde_node::config::DEFAULT_HUB_BONUS;
use ronde_node::{ManualClock, Node};
use ronde_protocol::directory::{RelayEntry, RelayRoles};

/// `node`'s entry in a directory, with `roles`.
async fn entry(node: &Node, roles: RelayRoles) -> RelayEntry {
    let base = listen_addr(node).await;
    RelayEntry {
        peer: node.peer_id().to_bytes(),
        roles,
        operator: "Ville".into(),
        addrs: vec![base.to_string()],
    }
}

async fn dial(from: &Node, to: &Node) {
    from.dial(listen_addr(to).await).await.expect("dial");
}

/// `phone`'s gossipsub score of `peer`, once it has one.
async fn score(phone: &Node, peer: PeerId) -> f64 {
    eventually("a score", || async {
        phone.peer_score(peer).await.ok().flatten()
    })
    .await
}

/// Wait until `phone` scores `hub` as a hub.
async fn hub_bonus_of(phone: &Node, hub: PeerId) {
    eventually("the hub bonus", || async {
        let s = phone.peer_score(hub).await.ok().flatten()?;
        (s >= f64::from(DEFAULT_HUB_BONUS)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_relays_the_city_lists_as_gossip_hubs_get_the_hub_bonus() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    let hub_bonus = f64::from(DEFAULT_HUB_BONUS);
    // Listed as a gossip hub (and a mailbox host).
    let (hub, _) = start_host(dirs[0].path(), &clock).await;
    // Listed, but only as a mailbox host.
    let (mailbox, _) = start_host(dirs[1].path(), &clock).await;
    // A relay in every other respect that the city does not list.
    let (stranger, _) = start_host(dirs[2].path(), &clock).await;

    let (city, signed) = city_directory(vec![
        entry(&hub, RelayRoles::GOSSIP.with(RelayRoles::MAILBOX)).await,
        entry(&mailbox, RelayRoles::MAILBOX).await,
    ]);
    hub.set_directory(city.public(), signed)
        .await
        .expect("the relay serves its directory");

    let mut c = config(dirs[3].path(), &clock);
    c.city_keys = vec![city.public()];
    let phone = start(c).await;
    for relay in [&hub, &mailbox, &stranger] {
        dial(&phone, relay).await;
    }
    // The directory has arrived once the phone uses its mailbox hosts.
    eventually("the directory's hosts", || async {
        let s = phone.circle_status().await.ok()?;
        (s.mailbox_hosts == 2).then_some(())
    })
    .await;
    hub_bonus_of(&phone, hub.peer_id()).await;
    for (what, peer) in [
        ("a relay listed for mail only", mailbox.peer_id()),
        ("an unlisted relay", stranger.peer_id()),
    ] {
        let s = score(&phone, peer).await;
        assert!(s < hub_bonus, "{what} scores {s}, as a hub would");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_hub_gets_the_bonus_and_a_peer_that_connects_does_not() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let hub_bonus = f64::from(DEFAULT_HUB_BONUS);
    let (hub, _) = start_host(dirs[0].path(), &clock).await;
    let (other, _) = start_host(dirs[1].path(), &clock).await;
    let mut c = config(dirs[2].path(), &clock);
    c.gossip_hubs = vec![hub.peer_id()];
    let phone = start(c).await;
    dial(&phone, &hub).await;
    // The other one dials the phone: connecting first proves nothing.
    dial(&other, &phone).await;
    hub_bonus_of(&phone, hub.peer_id()).await;
    let s = score(&phone, other.peer_id()).await;
    assert!(s < hub_bonus, "a peer that merely connects scores {s}");
}
