//! The trusted circle's state machines, driven with injected time: journeys,
//! SOS, and the dead-man's switch (phone and relay sides), end to end.

// Test helpers outside `#[test]` functions unwrap too (clippy.toml only
// covers the test functions themselves).
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ronde_protocol::circle::journey::{MAX_GRACE_SECS, MIN_POSITION_GAP_SECS};
use ronde_protocol::circle::switch::{
    ALERT_PAD_MULTIPLE, MAX_SWITCH_HORIZON_SECS, SWITCH_SLACK_SECS, WITHDRAW_LEN,
};
use ronde_protocol::circle::{
    Alert, Circle, ContactId, DeadManSwitch, Deposit, Effect, Identity, Invite, Journey,
    JourneyConfig, JourneyError, JourneyState, Message, MessageId, OpenError, Place, Sos,
    SosConfig, SosError, SosState, SwitchError, SwitchOwner, SwitchRequest, Withdraw,
    MAX_JOURNEY_SECS, SMALL_ENVELOPE_LEN,
};

const NOW: u64 = 1_790_000_000;
const RELAY: [u8; 32] = [0xee; 32];

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn home() -> Place {
    Place::point(48.8566, 2.3522, 0).unwrap()
}

fn here() -> Place {
    Place::point(48.85, 2.35, 10).unwrap()
}

fn sends(effects: &[Effect]) -> Vec<&Message> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SendToCircle(m) | Effect::SendTo { message: m, .. } => Some(m),
            _ => None,
        })
        .collect()
}

fn is_overdue(e: &Effect) -> bool {
    matches!(e, Effect::SendToCircle(Message::Overdue { .. }))
}

// ------------------------------------------------------------------ journey

#[test]
fn journey_start_effects() {
    let eta = NOW + 1800;
    let (j, fx) =
        Journey::start(home(), eta, 600, JourneyConfig::default(), NOW, &mut rng(1)).unwrap();
    assert_eq!(j.state(), JourneyState::Active);
    assert_eq!(j.overdue_at(), eta + 600);
    assert_eq!(fx.len(), 3);
    assert_eq!(
        fx[0],
        Effect::SendToCircle(Message::JourneyStarted {
            journey: j.id(),
            started_at: NOW,
            destination: home(),
            expected_arrival: eta,
            grace_secs: 600,
            states_only: None,
        })
    );
    assert_eq!(
        fx[1],
        Effect::ArmDeadManSwitch {
            release_at: eta + 600 + SWITCH_SLACK_SECS,
            alert: Message::Overdue {
                journey: j.id(),
                expected_arrival: eta,
                last_seen: None,
            },
        }
    );
    assert_eq!(fx[2], Effect::RequestPosition);
    assert_eq!(j.next_deadline(), Some(NOW + 300));
}

#[test]
fn overdue_exactly_at_eta_plus_grace() {
    let eta = NOW + 1800;
    let (mut j, _) =
        Journey::start(home(), eta, 600, JourneyConfig::default(), NOW, &mut rng(2)).unwrap();
    j.position(here(), NOW + 60);
    assert!(!j.poll(eta + 599).iter().any(is_overdue));
    assert_eq!(j.state(), JourneyState::Active);
    let fx = j.poll(eta + 600);
    assert_eq!(
        fx.iter().filter(|e| is_overdue(e)).count(),
        1,
        "overdue once, at eta + grace: {fx:?}"
    );
    // It carries the last position.
    match sends(&fx)[0] {
        Message::Overdue { last_seen, .. } => {
            assert_eq!(last_seen.unwrap().place, here());
            assert_eq!(last_seen.unwrap().at, NOW + 60);
        }
        m => panic!("{m:?}"),
    }
    assert_eq!(j.state(), JourneyState::Overdue);
    // Never again, and sharing goes on.
    let fx = j.poll(eta + 900);
    assert!(!fx.iter().any(is_overdue));
    assert!(fx.contains(&Effect::RequestPosition));
    assert!(j.is_sharing());
    // Arrival late still ends it and withdraws.
    let fx = j.arrived(eta + 1000);
    assert_eq!(fx[1], Effect::WithdrawDeadManSwitch);
    assert_eq!(fx[2], Effect::StopSharing);
}

#[test]
fn positions_at_the_interval() {
    let cfg = JourneyConfig {
        position_interval: 120,
        ..JourneyConfig::default()
    };
    let (mut j, _) = Journey::start(home(), NOW + 3600, 0, cfg, NOW, &mut rng(3)).unwrap();
    assert!(j.poll(NOW + 119).is_empty());
    assert_eq!(j.poll(NOW + 120), vec![Effect::RequestPosition]);
    assert!(j.poll(NOW + 121).is_empty());
    assert_eq!(j.next_deadline(), Some(NOW + 240));
    // The reported position goes to the circle…
    let fx = j.position(here(), NOW + 125);
    assert!(matches!(
        &fx[..],
        [Effect::SendToCircle(Message::Position { fix, .. })] if fix.at == NOW + 125
    ));
    // …but not twice within the minimum gap.
    assert!(j
        .position(here(), NOW + 125 + MIN_POSITION_GAP_SECS - 1)
        .is_empty());
    assert_eq!(
        j.position(here(), NOW + 125 + MIN_POSITION_GAP_SECS).len(),
        1
    );
}

#[test]
fn arrival_and_cancel_end_everything() {
    let (mut j, _) = Journey::start(
        home(),
        NOW + 600,
        60,
        JourneyConfig::default(),
        NOW,
        &mut rng(4),
    )
    .unwrap();
    let fx = j.arrived(NOW + 500);
    assert_eq!(
        fx,
        vec![
            Effect::SendToCircle(Message::Arrived {
                journey: j.id(),
                at: NOW + 500
            }),
            Effect::WithdrawDeadManSwitch,
            Effect::StopSharing,
        ]
    );
    assert_eq!(j.state(), JourneyState::Arrived);
    // Nothing after: no overdue, no positions.
    assert!(j.poll(NOW + 100_000).is_empty());
    assert!(j.position(here(), NOW + 700).is_empty());
    assert!(j.cancel(NOW + 800).is_empty());
    assert_eq!(j.next_deadline(), None);

    let (mut j, _) = Journey::start(
        home(),
        NOW + 600,
        60,
        JourneyConfig::default(),
        NOW,
        &mut rng(5),
    )
    .unwrap();
    let fx = j.cancel(NOW + 10);
    assert!(matches!(
        fx[0],
        Effect::SendToCircle(Message::JourneyCancelled { .. })
    ));
    assert_eq!(
        fx[1..],
        [Effect::WithdrawDeadManSwitch, Effect::StopSharing]
    );
    assert_eq!(j.state(), JourneyState::Cancelled);
}

#[test]
fn eight_hour_cap() {
    let cfg = JourneyConfig::default();
    // Too late: refused with the latest acceptable ETA.
    let err =
        Journey::start(home(), NOW + MAX_JOURNEY_SECS, 60, cfg, NOW, &mut rng(6)).unwrap_err();
    assert_eq!(
        err,
        JourneyError::TooLong {
            latest_eta: NOW + MAX_JOURNEY_SECS - 60
        }
    );
    assert_eq!(
        Journey::start(home(), NOW, 60, cfg, NOW, &mut rng(6)).unwrap_err(),
        JourneyError::EtaNotInFuture
    );
    assert_eq!(
        Journey::start(home(), NOW + 60, MAX_GRACE_SECS + 1, cfg, NOW, &mut rng(6)).unwrap_err(),
        JourneyError::GraceTooLong
    );
    // Exactly at the cap: allowed.
    let (mut j, _) = Journey::start(
        home(),
        NOW + MAX_JOURNEY_SECS - 60,
        60,
        cfg,
        NOW,
        &mut rng(6),
    )
    .unwrap();
    // Extending past it is refused too.
    assert!(matches!(
        j.extend(NOW + MAX_JOURNEY_SECS, NOW + 10),
        Err(JourneyError::TooLong { .. })
    ));
    // A poll long after: overdue first, then sharing stops.
    let fx = j.poll(NOW + MAX_JOURNEY_SECS);
    assert!(is_overdue(&fx[0]));
    assert_eq!(fx.last(), Some(&Effect::StopSharing));
    assert!(!fx.contains(&Effect::RequestPosition));
    assert_eq!(j.state(), JourneyState::Expired);
    assert!(j.position(here(), NOW + MAX_JOURNEY_SECS + 1).is_empty());
    assert!(j.poll(NOW + MAX_JOURNEY_SECS + 1000).is_empty());
}

#[test]
fn extend_moves_the_switch() {
    let eta = NOW + 1200;
    let (mut j, _) =
        Journey::start(home(), eta, 300, JourneyConfig::default(), NOW, &mut rng(7)).unwrap();
    let fx = j.extend(eta + 900, NOW + 600).unwrap();
    assert!(matches!(
        fx[0],
        Effect::SendToCircle(Message::JourneyStarted { expected_arrival, .. }) if expected_arrival == eta + 900
    ));
    assert_eq!(
        fx[1],
        Effect::Heartbeat {
            release_at: eta + 900 + 300 + SWITCH_SLACK_SECS
        }
    );
    // Overdue moved with it.
    assert!(!j.poll(eta + 300).iter().any(is_overdue));
    assert!(j.poll(eta + 1200).iter().any(is_overdue));
    assert_eq!(
        j.extend(eta + 2000, eta + 1300),
        Err(JourneyError::AlreadyOverdue)
    );
}

#[test]
fn silence_mode_heartbeats() {
    let cfg = JourneyConfig {
        position_interval: 300,
        silence_timeout: Some(900),
        heartbeat_interval: 300,
    };
    let eta = NOW + 3600;
    let (mut j, fx) = Journey::start(home(), eta, 600, cfg, NOW, &mut rng(8)).unwrap();
    assert!(fx.contains(&Effect::ArmDeadManSwitch {
        release_at: NOW + 900 + SWITCH_SLACK_SECS,
        alert: Message::Overdue {
            journey: j.id(),
            expected_arrival: eta,
            last_seen: None
        }
    }));
    let fx = j.poll(NOW + 300);
    assert!(fx.contains(&Effect::Heartbeat {
        release_at: NOW + 1200 + SWITCH_SLACK_SECS
    }));
    // Heartbeats stop moving once the release reaches the overdue time.
    let mut last = 0;
    let mut t = NOW + 300;
    while t < eta + 600 {
        t += 300;
        for e in j.poll(t) {
            if let Effect::Heartbeat { release_at } = e {
                assert!(release_at <= eta + 600 + SWITCH_SLACK_SECS);
                last = release_at;
            }
        }
    }
    assert_eq!(last, eta + 600 + SWITCH_SLACK_SECS);
    assert_eq!(
        Journey::start(
            home(),
            eta,
            0,
            JourneyConfig {
                heartbeat_interval: 900,
                ..cfg
            },
            NOW,
            &mut rng(8)
        )
        .unwrap_err(),
        JourneyError::BadConfig("heartbeat_interval")
    );
}

#[test]
fn journey_persists_as_json() {
    let (mut j, _) = Journey::start(
        Place::Cell("u09tunq".parse().unwrap()),
        NOW + 600,
        60,
        JourneyConfig::default(),
        NOW,
        &mut rng(9),
    )
    .unwrap();
    j.position(here(), NOW + 5);
    let back: Journey = serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
    assert_eq!(back, j);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the schedule of polls: exactly one overdue, never before
    /// eta + grace, iff some poll is at or after it; nothing requested or
    /// shared at or after the 8-hour cap.
    #[test]
    fn journey_timing(
        eta_after in 1u64..(MAX_JOURNEY_SECS - MAX_GRACE_SECS),
        grace in 0u64..=MAX_GRACE_SECS,
        mut polls in prop::collection::vec(0u64..(MAX_JOURNEY_SECS + 7200), 1..60),
    ) {
        polls.sort_unstable();
        let eta = NOW + eta_after;
        let (mut j, _) = Journey::start(home(), eta, grace, JourneyConfig::default(), NOW, &mut rng(10)).unwrap();
        let mut overdues = 0;
        for p in &polls {
            let now = NOW + p;
            let fx = j.poll(now);
            for e in &fx {
                if is_overdue(e) {
                    prop_assert!(now >= eta + grace);
                    overdues += 1;
                }
                if now >= NOW + MAX_JOURNEY_SECS {
                    prop_assert!(!matches!(e, Effect::RequestPosition));
                }
            }
            let shared = j.position(here(), now);
            if now >= NOW + MAX_JOURNEY_SECS {
                prop_assert!(shared.is_empty());
                prop_assert!(!j.is_sharing());
            }
        }
        let reached = polls.iter().any(|p| NOW + p >= eta + grace);
        prop_assert_eq!(overdues, usize::from(reached));
    }
}

// ---------------------------------------------------------------------- sos

fn contacts(n: u8) -> Vec<ContactId> {
    (0..n).map(|i| ContactId([i; 32])).collect()
}

#[test]
fn sos_sent_to_all_then_retried_with_backoff() {
    let c = contacts(3);
    let (mut s, fx) = Sos::start(
        c.clone(),
        Some(here()),
        "au secours",
        SosConfig::default(),
        NOW,
        &mut rng(20),
    )
    .unwrap();
    assert_eq!(
        fx,
        vec![Effect::SendTo {
            to: c.clone(),
            message: Message::Sos {
                sos: s.id(),
                at: NOW,
                place: Some(here()),
                note: "au secours".into()
            }
        }]
    );
    // Retries after 20, then 40, 80, 160, 300, 300… seconds.
    let mut t = NOW;
    for gap in [20u64, 40, 80, 160, 300, 300, 300] {
        assert!(s.poll(t + gap - 1).is_empty(), "not before {gap}");
        let fx = s.poll(t + gap);
        assert_eq!(fx.len(), 1);
        assert!(
            matches!(&fx[0], Effect::SendTo { to, message: Message::Sos { sos, .. } } if to == &c && *sos == s.id())
        );
        t += gap;
    }
    assert_eq!(s.sends(), 8);
}

#[test]
fn sos_stops_retrying_after_an_ack() {
    let c = contacts(3);
    let (mut s, _) =
        Sos::start(c.clone(), None, "", SosConfig::default(), NOW, &mut rng(21)).unwrap();
    assert_eq!(s.poll(NOW + 20).len(), 1);
    // Acks from strangers or for another SOS are ignored.
    assert!(!s.ack(&ContactId([99; 32]), &s.id(), NOW + 25));
    assert!(!s.ack(&c[1], &MessageId([0; 16]), NOW + 25));
    assert!(!s.is_acknowledged());
    assert_eq!(s.poll(NOW + 60).len(), 1);
    // A real ack stops the retries.
    assert!(s.ack(&c[1], &s.id(), NOW + 70));
    assert!(!s.ack(&c[1], &s.id(), NOW + 71), "duplicate");
    assert!(s.ack(&c[2], &s.id(), NOW + 72));
    assert_eq!(
        s.acked_by()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect::<Vec<_>>(),
        vec![(c[1], NOW + 70), (c[2], NOW + 72)]
    );
    for t in (NOW + 73..NOW + 10_000).step_by(7) {
        assert!(s.poll(t).is_empty());
    }
    assert_eq!(s.next_deadline(), None);
    // Cancel tells everyone, once.
    let fx = s.cancel(NOW + 10_000);
    assert_eq!(
        fx,
        vec![Effect::SendTo {
            to: c.clone(),
            message: Message::SosCancelled {
                sos: s.id(),
                at: NOW + 10_000
            }
        }]
    );
    assert_eq!(s.state(), SosState::Cancelled);
    assert!(s.cancel(NOW + 10_001).is_empty());
    assert_eq!(s.update_place(here(), NOW), Err(SosError::Cancelled));
}

#[test]
fn sos_cancel_stops_retries_and_limits() {
    let (mut s, _) = Sos::start(
        contacts(1),
        None,
        "",
        SosConfig::default(),
        NOW,
        &mut rng(22),
    )
    .unwrap();
    s.cancel(NOW + 1);
    assert!(s.poll(NOW + 1000).is_empty());
    assert_eq!(
        Sos::start(vec![], None, "", SosConfig::default(), NOW, &mut rng(22)).unwrap_err(),
        SosError::NoRecipients
    );
    assert!(matches!(
        Sos::start(
            contacts(1),
            None,
            &"x".repeat(281),
            SosConfig::default(),
            NOW,
            &mut rng(22)
        ),
        Err(SosError::BadNote(_))
    ));
    // Gives up re-sending after retry_for_secs.
    let cfg = SosConfig {
        retry_for_secs: 100,
        ..SosConfig::default()
    };
    let (mut s, _) = Sos::start(contacts(1), None, "", cfg, NOW, &mut rng(23)).unwrap();
    let n: usize = (NOW..NOW + 1000).map(|t| s.poll(t).len()).sum();
    assert_eq!(
        n, 2,
        "re-sends at +20 and +60; the next, at +140, is past 100 s"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Once any recipient acked, nothing is ever re-sent.
    #[test]
    fn no_retry_after_ack(ack_at in 0u64..2000, from in 0u8..4, polls in prop::collection::vec(0u64..5000, 0..50)) {
        let c = contacts(4);
        let (mut s, _) = Sos::start(c.clone(), None, "", SosConfig::default(), NOW, &mut rng(24)).unwrap();
        let mut events: Vec<(u64, bool)> = polls.into_iter().map(|p| (p, false)).collect();
        events.push((ack_at, true));
        events.sort_unstable();
        let mut acked = false;
        for (t, is_ack) in events {
            if is_ack {
                prop_assert!(s.ack(&c[usize::from(from)], &s.id(), NOW + t));
                acked = true;
            } else {
                let fx = s.poll(NOW + t);
                if acked {
                    prop_assert!(fx.is_empty());
                }
            }
        }
    }
}

// ---------------------------------------------------------- dead-man switch

fn fake_alert(i: u8) -> Alert {
    let mut envelope = vec![i; SMALL_ENVELOPE_LEN];
    envelope[0] = 1;
    Alert {
        mailbox: [i; 32],
        envelope,
    }
}

#[test]
fn switch_releases_at_the_right_time() {
    let mut r = rng(30);
    let owner = SwitchOwner::new(&mut r);
    let d = owner
        .deposit(
            RELAY,
            NOW + 1000,
            vec![fake_alert(1), fake_alert(2)],
            &mut r,
        )
        .unwrap();
    // Padded to a multiple of four, real alerts inside.
    assert_eq!(d.alerts().len(), ALERT_PAD_MULTIPLE);
    assert!(d.alerts().contains(&fake_alert(1)));
    assert!(d
        .alerts()
        .iter()
        .all(|a| a.envelope.len() == SMALL_ENVELOPE_LEN));
    let bytes = d.to_bytes();
    assert_eq!(Deposit::from_bytes(&bytes).unwrap(), d);

    let mut relay = DeadManSwitch::new(RELAY, 100);
    relay.handle(&bytes, NOW).unwrap();
    assert_eq!(relay.next_release(), Some(NOW + 1000));
    assert!(relay.poll(NOW + 999).is_empty());
    let out = relay.poll(NOW + 1000);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].key, owner.public_key());
    assert_eq!(out[0].alerts, d.alerts());
    // Released once.
    assert!(relay.poll(NOW + 2000).is_empty());
    assert!(relay.is_empty());
}

#[test]
fn heartbeats_push_the_release_back() {
    let mut r = rng(31);
    let mut owner = SwitchOwner::new(&mut r);
    let d = owner
        .deposit(RELAY, NOW + 1000, vec![fake_alert(1)], &mut r)
        .unwrap();
    let mut relay = DeadManSwitch::new(RELAY, 100);
    relay.deposit(d, NOW).unwrap();
    let h1 = owner.heartbeat(NOW + 1500).unwrap();
    relay.handle(&h1.to_bytes(), NOW + 900).unwrap();
    assert!(relay.poll(NOW + 1000).is_empty());
    assert!(relay.poll(NOW + 1499).is_empty());
    // A replayed heartbeat is refused.
    assert_eq!(
        relay.heartbeat(&h1, NOW + 1400),
        Err(SwitchError::StaleCounter {
            counter: 1,
            last: 1
        })
    );
    // Beyond the horizon: refused.
    let far = owner.heartbeat(NOW + MAX_SWITCH_HORIZON_SECS + 1).unwrap();
    assert_eq!(
        relay.heartbeat(&far, NOW + 1400),
        Err(SwitchError::ReleaseTooLate {
            max: NOW + MAX_SWITCH_HORIZON_SECS
        })
    );
    assert_eq!(relay.poll(NOW + 1500).len(), 1);
    // Too late once due.
    let late = owner.heartbeat(NOW + 3000).unwrap();
    assert_eq!(
        relay.heartbeat(&late, NOW + 1501),
        Err(SwitchError::UnknownSwitch)
    );
}

#[test]
fn withdrawal_needs_the_journey_key() {
    let mut r = rng(32);
    let mut owner = SwitchOwner::new(&mut r);
    let mut mallory = SwitchOwner::new(&mut r);
    let d = owner
        .deposit(RELAY, NOW + 1000, vec![fake_alert(1)], &mut r)
        .unwrap();
    let mut relay = DeadManSwitch::new(RELAY, 100);
    relay.deposit(d.clone(), NOW).unwrap();

    // Mallory's withdrawal of her own (unknown) switch.
    let w = mallory.withdraw().unwrap();
    assert_eq!(relay.withdraw(&w, NOW + 1), Err(SwitchError::UnknownSwitch));
    // Mallory's signature on a withdrawal naming the owner's switch.
    let mut forged = w.to_bytes();
    forged[2..34].copy_from_slice(&owner.public_key());
    assert_eq!(
        Withdraw::from_bytes(&forged),
        Err(SwitchError::BadSignature)
    );
    assert_eq!(
        relay.handle(&forged, NOW + 1),
        Err(SwitchError::BadSignature)
    );
    // Any tampering breaks the signature.
    let good = owner.withdraw().unwrap().to_bytes();
    assert_eq!(good.len(), WITHDRAW_LEN);
    let mut bumped = good.clone();
    bumped[41] ^= 1;
    assert_eq!(
        relay.handle(&bumped, NOW + 1),
        Err(SwitchError::BadSignature)
    );
    // The real withdrawal works; nothing is released, ever.
    relay.handle(&good, NOW + 2).unwrap();
    assert_eq!(relay.next_release(), None);
    // Replays: of the withdrawal, and of the deposit.
    assert_eq!(
        relay.handle(&good, NOW + 3),
        Err(SwitchError::UnknownSwitch)
    );
    assert_eq!(
        relay.handle(&d.to_bytes(), NOW + 3),
        Err(SwitchError::AlreadyDeposited)
    );
    assert!(relay.poll(NOW + 999).is_empty());
    assert_eq!(
        relay.handle(&d.to_bytes(), NOW + 999),
        Err(SwitchError::AlreadyDeposited)
    );
    assert!(relay.poll(NOW + 1000).is_empty());
    assert!(relay.poll(NOW + 100_000).is_empty());
    // After its release time a replayed deposit is refused as past.
    assert_eq!(
        relay.handle(&d.to_bytes(), NOW + 1000),
        Err(SwitchError::ReleaseInPast)
    );
}

#[test]
fn deposit_rules() {
    let mut r = rng(33);
    let owner = SwitchOwner::new(&mut r);
    let mut relay = DeadManSwitch::new(RELAY, 2);
    let d = owner
        .deposit([1; 32], NOW + 100, vec![fake_alert(1)], &mut r)
        .unwrap();
    assert_eq!(relay.deposit(d, NOW), Err(SwitchError::WrongRelay));
    let d = owner
        .deposit(RELAY, NOW, vec![fake_alert(1)], &mut r)
        .unwrap();
    assert_eq!(relay.deposit(d, NOW), Err(SwitchError::ReleaseInPast));
    let d = owner
        .deposit(
            RELAY,
            NOW + MAX_SWITCH_HORIZON_SECS + 1,
            vec![fake_alert(1)],
            &mut r,
        )
        .unwrap();
    assert!(matches!(
        relay.deposit(d, NOW),
        Err(SwitchError::ReleaseTooLate { .. })
    ));
    assert_eq!(
        owner.deposit(RELAY, NOW + 10, vec![], &mut r),
        Err(SwitchError::AlertCount)
    );
    let bad = Alert {
        mailbox: [0; 32],
        envelope: vec![1; 10],
    };
    assert_eq!(
        owner.deposit(RELAY, NOW + 10, vec![bad], &mut r),
        Err(SwitchError::BadAlert)
    );
    // Capacity.
    for _ in 0..2 {
        let o = SwitchOwner::new(&mut r);
        let d = o
            .deposit(RELAY, NOW + 10, vec![fake_alert(1)], &mut r)
            .unwrap();
        relay.deposit(d, NOW).unwrap();
    }
    let o = SwitchOwner::new(&mut r);
    let d = o
        .deposit(RELAY, NOW + 10, vec![fake_alert(1)], &mut r)
        .unwrap();
    assert_eq!(relay.deposit(d, NOW), Err(SwitchError::Full));
}

#[test]
fn switch_owner_and_relay_persist() {
    let mut r = rng(34);
    let mut owner = SwitchOwner::new(&mut r);
    owner.heartbeat(NOW + 10).unwrap();
    let mut back = SwitchOwner::from_bytes(&owner.to_bytes()).unwrap();
    assert_eq!(back.public_key(), owner.public_key());
    // The counter survived: the next request continues from it.
    assert_eq!(back.withdraw().unwrap().counter(), 2);

    let mut relay = DeadManSwitch::new(RELAY, 10);
    let d = owner
        .deposit(RELAY, NOW + 50, vec![fake_alert(3)], &mut r)
        .unwrap();
    relay.deposit(d, NOW).unwrap();
    let json = serde_json::to_string(&relay).unwrap();
    let mut back: DeadManSwitch = serde_json::from_str(&json).unwrap();
    assert_eq!(back, relay);
    assert_eq!(back.poll(NOW + 50).len(), 1);
}

/// A relay renamed between two runs keeps its switches and tombstones: a
/// withdrawn deposit cannot come back, old-name deposits are refused.
#[test]
fn renamed_relay_keeps_switches_and_tombstones() {
    const NEW: [u8; 32] = [0xdd; 32];
    let mut r = rng(36);
    let mut relay = DeadManSwitch::new(RELAY, 10);
    let live = SwitchOwner::new(&mut r);
    let d = live
        .deposit(RELAY, NOW + 100, vec![fake_alert(1)], &mut r)
        .unwrap();
    relay.handle(&d.to_bytes(), NOW).unwrap();
    let mut gone = SwitchOwner::new(&mut r);
    let withdrawn = gone
        .deposit(RELAY, NOW + 100, vec![fake_alert(2)], &mut r)
        .unwrap()
        .to_bytes();
    relay.handle(&withdrawn, NOW).unwrap();
    relay
        .handle(&gone.withdraw().unwrap().to_bytes(), NOW)
        .unwrap();

    relay.set_relay(NEW);
    assert_eq!(relay.relay(), &NEW);
    assert_eq!(relay.len(), 1);
    // The tombstone still refuses the withdrawn deposit (and the old name
    // refuses it anyway).
    assert!(relay.handle(&withdrawn, NOW + 1).is_err());
    let fresh = SwitchOwner::new(&mut r);
    let old_name = fresh
        .deposit(RELAY, NOW + 100, vec![fake_alert(3)], &mut r)
        .unwrap();
    assert_eq!(
        relay.handle(&old_name.to_bytes(), NOW + 1),
        Err(SwitchError::WrongRelay)
    );
    let new_name = fresh
        .deposit(NEW, NOW + 100, vec![fake_alert(3)], &mut r)
        .unwrap();
    relay.handle(&new_name.to_bytes(), NOW + 1).unwrap();
    // The switch deposited under the old name still fires.
    assert_eq!(relay.poll(NOW + 100).len(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any bit flip in a deposit is refused.
    #[test]
    fn tampered_deposit_refused(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut r = rng(35);
        let owner = SwitchOwner::new(&mut r);
        let d = owner.deposit(RELAY, NOW + 100, vec![fake_alert(1)], &mut r).unwrap();
        let mut b = d.to_bytes();
        let i = pos.index(b.len());
        b[i] ^= 1 << bit;
        prop_assert!(SwitchRequest::from_bytes(&b).is_err());
    }
}

// --------------------------------------------------------------- end to end

/// Alice walks home with Bob and Carol in her circle; her phone dies on the
/// way. The relay releases the overdue alerts; Bob and Carol open them even
/// though Alice sent them positions after sealing the alerts.
#[test]
fn dead_phone_alerts_the_circle() {
    let mut r = rng(40);
    let alice = Identity::generate(&mut r);
    let mut ac = Circle::new(alice.public().clone());
    let mut friends = Vec::new();
    for name in ["Bob", "Carol"] {
        let me = Identity::generate(&mut r);
        let mut c = Circle::new(me.public().clone());
        let invite = ac.create_invite("Alice", vec![], NOW, 600, &mut r).unwrap();
        let invite = Invite::from_code(&invite.to_code()).unwrap();
        let (alice_id, accept) = c
            .accept_invite(&me, &invite, name, vec![], NOW, &mut r)
            .unwrap();
        let id = ac.open(&alice, &accept, NOW).unwrap().from;
        let confirm = ac.approve(&alice, &id, &mut r).unwrap();
        c.open(&me, &confirm, NOW).unwrap();
        friends.push((me, c, alice_id));
    }

    let start = NOW + 100;
    let eta = start + 1800;
    let (mut journey, fx) =
        Journey::start(home(), eta, 300, JourneyConfig::default(), start, &mut r).unwrap();
    let mut relay = DeadManSwitch::new(RELAY, 100);
    let mut inboxes: Vec<Vec<u8>> = Vec::new();
    let mut owner = None;
    for e in fx {
        match e {
            Effect::SendToCircle(m) => {
                for (_, env) in ac.seal_to_circle(&alice, &m, &mut r).unwrap() {
                    inboxes.push(env);
                }
            }
            Effect::ArmDeadManSwitch { release_at, alert } => {
                let o = SwitchOwner::new(&mut r);
                let alerts = ac.seal_alerts(&alice, &alert, start, &mut r).unwrap();
                let d = o.deposit(RELAY, release_at, alerts, &mut r).unwrap();
                relay.handle(&d.to_bytes(), start).unwrap();
                owner = Some(o);
            }
            Effect::RequestPosition => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(owner.is_some());
    // Positions for a while (many messages after the sealed alert).
    let mut t = start;
    while t < start + 1500 {
        t += 300;
        for e in journey.poll(t) {
            if e == Effect::RequestPosition {
                for e in journey.position(here(), t) {
                    if let Effect::SendToCircle(m) = e {
                        for (_, env) in ac.seal_to_circle(&alice, &m, &mut r).unwrap() {
                            inboxes.push(env);
                        }
                    }
                }
            }
        }
    }
    // Friends read everything so far.
    for env in &inboxes {
        let opened = friends
            .iter_mut()
            .filter_map(|(me, c, _)| c.open(me, env, t).ok())
            .count();
        assert_eq!(opened, 1);
    }
    // The phone dies. Nothing is due before eta + grace + slack.
    assert!(relay.poll(eta + 300 + SWITCH_SLACK_SECS - 1).is_empty());
    let released = relay.poll(eta + 300 + SWITCH_SLACK_SECS);
    assert_eq!(released.len(), 1);
    let mut alerted = 0;
    for alert in &released[0].alerts {
        for (me, c, alice_id) in friends.iter_mut() {
            let epoch = ronde_protocol::circle::epoch_of(start);
            if c.inbound_mailbox(me, alice_id, epoch).unwrap() != alert.mailbox {
                continue;
            }
            let got = c.open(me, &alert.envelope, eta + 500).unwrap();
            assert_eq!(got.from, *alice_id);
            assert!(
                matches!(got.message, Message::Overdue { journey: j, .. } if j == journey.id())
            );
            alerted += 1;
        }
    }
    assert_eq!(alerted, 2);
    // The dummy alerts open for nobody.
    let epoch = ronde_protocol::circle::epoch_of(start);
    for alert in &released[0].alerts {
        let mut real = false;
        for (me, c, alice_id) in friends.iter_mut() {
            real |= c.inbound_mailbox(me, alice_id, epoch).unwrap() == alert.mailbox;
        }
        if !real {
            for (me, c, _) in friends.iter_mut() {
                assert_eq!(
                    c.open(me, &alert.envelope, eta + 500),
                    Err(OpenError::Decrypt)
                );
            }
        }
    }
}

#[test]
fn too_late_once_due() {
    let mut r = rng(36);
    let mut owner = SwitchOwner::new(&mut r);
    let d = owner
        .deposit(RELAY, NOW + 100, vec![fake_alert(1)], &mut r)
        .unwrap();
    let mut relay = DeadManSwitch::new(RELAY, 10);
    relay.deposit(d, NOW).unwrap();
    // Due but not polled yet: heartbeats and withdrawals come too late.
    let h = owner.heartbeat(NOW + 500).unwrap();
    assert_eq!(relay.heartbeat(&h, NOW + 100), Err(SwitchError::AlreadyDue));
    let w = owner.withdraw().unwrap();
    assert_eq!(relay.withdraw(&w, NOW + 100), Err(SwitchError::AlreadyDue));
    assert_eq!(relay.poll(NOW + 100).len(), 1);
}

// -------------------------------------------------------------------- watch

#[test]
fn watch_applies_the_receiver_rules() {
    use ronde_protocol::circle::{Notice, Watch};
    let alice = ContactId([1; 32]);
    let bob = ContactId([2; 32]);
    let j = MessageId([7; 16]);
    let mut w = Watch::new();
    let started = Message::JourneyStarted {
        journey: j,
        started_at: NOW,
        destination: home(),
        expected_arrival: NOW + 600,
        grace_secs: 60,
        states_only: None,
    };
    assert!(matches!(
        w.receive(&alice, &started, NOW),
        Some(Notice::JourneyStarted { overdue_at, .. }) if overdue_at == NOW + 660
    ));
    let pos = Message::Position {
        journey: j,
        fix: ronde_protocol::circle::Fix {
            at: NOW + 10,
            place: here(),
        },
    };
    assert!(matches!(
        w.receive(&alice, &pos, NOW + 10),
        Some(Notice::Position { .. })
    ));
    let overdue = |last_seen| Message::Overdue {
        journey: j,
        expected_arrival: NOW + 600,
        last_seen,
    };
    // The phone's overdue alerts; the relay's copy does not alert again.
    assert!(matches!(
        w.receive(&alice, &overdue(None), NOW + 660),
        Some(Notice::Overdue { .. })
    ));
    assert_eq!(w.receive(&alice, &overdue(None), NOW + 780), None);
    // The same journey id from someone else is another journey.
    assert!(w.receive(&bob, &overdue(None), NOW + 780).is_some());
    // Arrival ends it; nothing after.
    let arrived = Message::Arrived {
        journey: j,
        at: NOW + 900,
    };
    assert!(matches!(
        w.receive(&alice, &arrived, NOW + 900),
        Some(Notice::Arrived { .. })
    ));
    assert_eq!(w.receive(&alice, &arrived, NOW + 901), None);
    assert_eq!(w.receive(&alice, &pos, NOW + 901), None);

    // A relay releasing an alert after the arrival raises no alarm.
    let k = MessageId([8; 16]);
    w.receive(
        &alice,
        &Message::Arrived {
            journey: k,
            at: NOW,
        },
        NOW,
    );
    let late = Message::Overdue {
        journey: k,
        expected_arrival: NOW,
        last_seen: None,
    };
    assert_eq!(w.receive(&alice, &late, NOW + 200), None);

    // Positions stop after 8 hours by the receiver's clock.
    let l = MessageId([9; 16]);
    let pos_l = |t| Message::Position {
        journey: l,
        fix: ronde_protocol::circle::Fix {
            at: t,
            place: here(),
        },
    };
    assert!(w.receive(&alice, &pos_l(NOW), NOW).is_some());
    assert_eq!(w.receive(&alice, &pos_l(NOW), NOW + MAX_JOURNEY_SECS), None);

    // SOS: one alert per id, updates when the place changes, then cancel.
    let s = MessageId([10; 16]);
    let sos = |place| Message::Sos {
        sos: s,
        at: NOW,
        place,
        note: "help".into(),
    };
    assert!(matches!(
        w.receive(&bob, &sos(None), NOW),
        Some(Notice::Sos { .. })
    ));
    assert_eq!(w.receive(&bob, &sos(None), NOW + 20), None);
    assert!(matches!(
        w.receive(&bob, &sos(Some(here())), NOW + 40),
        Some(Notice::SosUpdated { .. })
    ));
    let cancel = Message::SosCancelled {
        sos: s,
        at: NOW + 60,
    };
    assert!(matches!(
        w.receive(&bob, &cancel, NOW + 60),
        Some(Notice::SosCancelled { .. })
    ));
    assert_eq!(w.receive(&bob, &sos(Some(home())), NOW + 80), None);
    // Acks pass through for the local SOS machine.
    assert_eq!(
        w.receive(&bob, &Message::Ack { of: s }, NOW),
        Some(Notice::Acked { from: bob, of: s })
    );
    // Serializable.
    let back: Watch = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
    assert_eq!(back, w);
    w.prune(NOW + 10 * 86_400);
    assert_eq!(w, Watch::new());
}

#[test]
fn a_switch_is_stored_and_restored_one_record_at_a_time() {
    let mut r = rng(91);
    let mut owner = SwitchOwner::new(&mut r);
    let mut relay = DeadManSwitch::new(RELAY, 10);
    let d = owner
        .deposit(RELAY, NOW + 600, vec![fake_alert(1)], &mut r)
        .unwrap();
    let key = *d.key();
    relay.handle(&d.to_bytes(), NOW).unwrap();
    relay
        .handle(&owner.heartbeat(NOW + 900).unwrap().to_bytes(), NOW + 1)
        .unwrap();
    let record = relay.record(&key).unwrap();
    assert_eq!(record.len(), 26 + 4 * (32 + SMALL_ENVELOPE_LEN));
    assert_eq!(relay.tombstone(&key), Some(NOW + 600));
    assert!(relay.holds(&key));

    // Another relay rebuilt from the records behaves the same.
    let mut copy = DeadManSwitch::new(RELAY, 10);
    copy.restore(&key, Some(&record), relay.tombstone(&key))
        .unwrap();
    assert_eq!(copy, relay);
    assert_eq!(copy.keys(), vec![key]);
    assert_eq!(copy.due(NOW + 899), Vec::<[u8; 32]>::new());
    assert_eq!(copy.due(NOW + 900), vec![key]);
    // The counter survived: a withdrawal (counter 2) is accepted.
    copy.handle(&owner.withdraw().unwrap().to_bytes(), NOW + 2)
        .unwrap();
    assert!(
        copy.record(&key).is_none() && copy.holds(&key),
        "a tombstone"
    );
    // Bad records are refused.
    assert!(copy.restore(&key, Some(&record[..10]), None).is_err());
    let mut v2 = record.clone();
    v2[0] = 2;
    assert!(copy.restore(&key, Some(&v2), None).is_err());
    copy.restore(&key, None, None).unwrap();
    assert!(!copy.holds(&key));
}
