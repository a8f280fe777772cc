//! Mailbox and switch hosts are chosen by the person, never by the network
//! (issue 12 §1): a mailbox host that merely connects to a phone gets none
//! of its switches and none of its mail.

mod circle_support;

use circle_support::*;
use ronde_node::circle::SwitchStatus;
use ronde_node::ManualClock;

const IVRY: (f64, f64) = (48.815_612_3, 2.384_445_6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_host_that_merely_connects_gets_no_switch_and_no_mail() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (host, host_addr) = start_host(dirs[0].path(), &clock).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host_addr)).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host_addr)).await;
    befriend(&alice, "Alice", &bob, "Bob").await;
    alice.set_location(IVRY.0, IVRY.1).await.expect("location");

    // A rogue mailbox host connects to Alice's phone: it speaks the
    // mailbox protocol, and identify says so.
    let (rogue, _) = start_host(dirs[3].path(), &clock).await;
    let alice_addr = alice
        .listen_addrs()
        .await
        .expect("addrs")
        .into_iter()
        .next()
        .expect("alice listens");
    rogue.dial(alice_addr).await.expect("dial");
    let rogue_id = rogue.peer_id();
    eventually("the rogue to connect", || async {
        let peers = alice.connected_peers().await.ok()?;
        peers.contains(&rogue_id).then_some(())
    })
    .await;
    // Identify runs right after the connection.
    settle(1000).await;

    // A journey with its switch, then an SOS.
    alice
        .start_journey(48.82, 2.39, T0 + 1500, 600)
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
    alice.sos("at the bus stop").await.expect("sos");
    eventually("the SOS to reach the chosen host", || async {
        let s = host.circle_status().await.ok()?;
        (s.hosted_envelopes > 0 && s.hosted_switches > 0).then_some(())
    })
    .await;
    settle(1500).await;

    let r = rogue.circle_status().await.expect("status");
    assert_eq!(r.hosted_switches, 0, "the rogue holds Alice's switch");
    assert_eq!(r.hosted_envelopes, 0, "the rogue holds Alice's mail");
    assert_eq!(
        alice.circle_status().await.expect("status").mailbox_hosts,
        1,
        "only the configured host is Alice's mailbox host"
    );
}
