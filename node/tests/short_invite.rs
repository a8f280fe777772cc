//! Issue 18 §6: an invite handed over in person as a short code
//! (`ABCDE-FGHJK`) through the mailbox host both phones use, with real
//! nodes: the code finds the invite, opens it and accepts it; it works
//! once; a wrong code finds nothing; without a host no short code is
//! offered.

mod circle_support;

use circle_support::*;
use ronde_node::circle::CircleRefusal;
use ronde_node::{ManualClock, NodeError};
use ronde_protocol::circle::ContactState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_code_finds_the_invite_at_the_shared_host_once() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..4)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let (_host, host) = start_host(dirs[0].path(), &clock).await;
    let alice = start(config_with_host(dirs[1].path(), &clock, &host)).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host)).await;
    let carol = start(config_with_host(dirs[3].path(), &clock, &host)).await;

    let invite = alice
        .create_invite(Some("Alice".into()), 900)
        .await
        .expect("invite");
    let short = invite.short_code.clone().expect("a short code with a host");
    assert_eq!(short.len(), 11, "{short}");
    // Typed in lower case with a space, as people do.
    let typed = short.to_lowercase().replace('-', " ");
    let at_bob = eventually("the invite at the host", || async {
        bob.accept_invite(&typed, Some("Bob".into())).await.ok()
    })
    .await;
    assert_eq!(at_bob.name, "Alice");
    assert_eq!(at_bob.state, ContactState::AwaitingTheirApproval);
    let (bob_at_alice, _) = eventually("Bob's accept at Alice's", || async {
        contact_state(&alice, "Bob")
            .await
            .filter(|(_, s)| *s == ContactState::AwaitingMyApproval)
    })
    .await;
    let sn = alice
        .contacts()
        .await
        .expect("contacts")
        .contacts
        .into_iter()
        .find(|c| c.id == bob_at_alice)
        .expect("Bob")
        .safety_number;
    assert_eq!(sn, at_bob.safety_number);

    // Used once, it is gone: Carol, who heard the code too, finds nothing.
    let late = carol.accept_invite(&short, Some("Carol".into()));
    let ticker = async {
        loop {
            clock.advance(5);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    let late = tokio::select! {
        r = late => r,
        _ = ticker => unreachable!(),
    };
    assert!(
        matches!(late, Err(NodeError::Circle(CircleRefusal::InviteNotFound))),
        "{late:?}"
    );
    assert!(contact_state(&carol, "Alice").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_short_code_without_a_host_and_a_wrong_one_finds_nothing() {
    let clock = ManualClock::new(T0);
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let lonely = start(config(dirs[0].path(), &clock)).await;
    let invite = lonely
        .create_invite(Some("Lonely".into()), 900)
        .await
        .expect("invite");
    assert_eq!(invite.short_code, None);
    let r = lonely.accept_invite("ABCDE-FGHJK", None).await;
    assert!(
        matches!(r, Err(NodeError::Circle(CircleRefusal::InviteNotFound))),
        "{r:?}"
    );

    let (_host, host) = start_host(dirs[1].path(), &clock).await;
    let bob = start(config_with_host(dirs[2].path(), &clock, &host)).await;
    let wrong = bob.accept_invite("ZZZZZ-ZZZZZ", None);
    let ticker = async {
        loop {
            clock.advance(5);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    let wrong = tokio::select! {
        r = wrong => r,
        _ = ticker => unreachable!(),
    };
    assert!(
        matches!(wrong, Err(NodeError::Circle(CircleRefusal::InviteNotFound))),
        "{wrong:?}"
    );
}
