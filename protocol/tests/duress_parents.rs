//! The duress code and parents' mode (issue 18 §4 and §5), in the circle's
//! sans-IO state machines: what the sender's machines emit, what the
//! receiver's watch shows, and the wire forms of the three new kinds.

// Test helpers outside `#[test]` functions unwrap too (clippy.toml only
// covers the test functions themselves).
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ronde_protocol::circle::journey::{MIN_CORRIDOR_M, MIN_STOP_SECS, STILL_RADIUS_M};
use ronde_protocol::circle::message::{KIND_DEVIATED, KIND_DURESS};
use ronde_protocol::circle::{
    ContactId, Deviation, Effect, Ending, Fix, Journey, JourneyConfig, JourneyError, JourneyState,
    Message, MessageId, Notice, Place, Sos, SosConfig, SosState, StatesOnly, Watch,
};
use ronde_protocol::geo::distance_to_segment_m;

const NOW: u64 = 1_790_000_000;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// About 1.1 km north of the start.
fn school() -> Place {
    Place::point(48.8100, 2.3800, 5).unwrap()
}

fn start() -> (f64, f64) {
    (48.8000, 2.3800)
}

/// A point `f` of the way from the start to the school, `east_m` metres
/// east of the straight line.
fn along(f: f64, east_m: f64) -> Place {
    let (lat, lon) = start();
    let dlon = east_m / (111_195.0 * lat.to_radians().cos());
    Place::point(lat + f * 0.01, lon + dlon, 5).unwrap()
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

const RULE: StatesOnly = StatesOnly {
    corridor_m: 200,
    stop_secs: 600,
};

fn parents_journey() -> Journey {
    let (j, fx) = Journey::start_states_only(
        RULE,
        school(),
        NOW + 1800,
        600,
        JourneyConfig::default(),
        NOW,
        &mut rng(1),
    )
    .unwrap();
    match sends(&fx)[0] {
        Message::JourneyStarted { states_only, .. } => assert_eq!(*states_only, Some(RULE)),
        other => panic!("{other:?}"),
    }
    j
}

// ------------------------------------------------------------------ wire

#[test]
fn new_kinds_round_trip_and_are_bounded() {
    let fix = Fix {
        at: NOW,
        place: along(0.5, 0.0),
    };
    let id = MessageId([7; 16]);
    let started = Message::JourneyStarted {
        journey: id,
        started_at: NOW,
        destination: school(),
        expected_arrival: NOW + 600,
        grace_secs: 300,
        states_only: Some(RULE),
    };
    for m in [
        started.clone(),
        Message::Deviated {
            journey: id,
            reason: Deviation::Stopped,
            fix,
        },
        Message::Duress { of: id, at: NOW },
    ] {
        let b = m.to_bytes().unwrap();
        assert_eq!(Message::from_bytes(&b).unwrap(), m);
        let mut long = b.clone();
        long.push(0);
        assert!(
            Message::from_bytes(&long).is_err(),
            "trailing byte accepted"
        );
        assert!(Message::from_bytes(&b[..b.len() - 1]).is_err(), "truncated");
    }
    let b = started.to_bytes().unwrap();
    assert_eq!(b[0], 0x16);
    // A plain journey start keeps kind 0x10 and its old layout: 6 bytes
    // shorter (corridor 2, stop 4).
    let Message::JourneyStarted {
        journey,
        started_at,
        destination,
        expected_arrival,
        grace_secs,
        ..
    } = started.clone()
    else {
        unreachable!()
    };
    let plain = Message::JourneyStarted {
        journey,
        started_at,
        destination,
        expected_arrival,
        grace_secs,
        states_only: None,
    };
    let p = plain.to_bytes().unwrap();
    assert_eq!((p[0], p.len() + 6), (0x10, b.len()));
    // A zero corridor, a zero stop or an unknown reason is refused.
    let mut zero = b.clone();
    let n = zero.len();
    zero[n - 6..n - 4].copy_from_slice(&[0, 0]);
    assert!(Message::from_bytes(&zero).is_err());
    let mut dev = Message::Deviated {
        journey: id,
        reason: Deviation::OffRoute,
        fix,
    }
    .to_bytes()
    .unwrap();
    assert_eq!((dev[0], dev[17]), (KIND_DEVIATED, 1));
    dev[17] = 3;
    assert!(Message::from_bytes(&dev).is_err());
}

#[test]
fn a_duress_notice_is_as_long_as_a_cancellation() {
    let id = MessageId([1; 16]);
    let duress = Message::Duress { of: id, at: NOW }.to_bytes().unwrap();
    assert_eq!(duress[0], KIND_DURESS);
    let cancel = Message::SosCancelled { sos: id, at: NOW }
        .to_bytes()
        .unwrap();
    let arrived = Message::Arrived {
        journey: id,
        at: NOW,
    }
    .to_bytes()
    .unwrap();
    assert_eq!(duress.len(), cancel.len());
    assert_eq!(duress.len(), arrived.len());
}

// ------------------------------------------------------------------ duress

#[test]
fn journey_ended_under_duress_shows_ended_and_goes_on() {
    let (mut j, _) = Journey::start(
        school(),
        NOW + 1800,
        600,
        JourneyConfig::default(),
        NOW,
        &mut rng(2),
    )
    .unwrap();
    j.position(along(0.1, 0.0), NOW + 60);
    let fx = j.end_under_duress(Ending::Arrived, NOW + 120);
    assert_eq!(
        sends(&fx),
        vec![&Message::Duress {
            of: j.id(),
            at: NOW + 120
        }]
    );
    assert!(fx.contains(&Effect::RequestPosition));
    assert!(!fx.contains(&Effect::WithdrawDeadManSwitch));
    assert!(!fx.contains(&Effect::StopSharing));
    assert_eq!(j.shown_state(), JourneyState::Arrived);
    assert_eq!(j.state(), JourneyState::Active);
    assert!(j.is_sharing() && j.is_under_duress());
    // A second duress entry changes nothing; "add time" is refused, as
    // after a real arrival.
    assert!(j.end_under_duress(Ending::Cancelled, NOW + 130).is_empty());
    assert_eq!(j.extend(NOW + 3000, NOW + 140), Err(JourneyError::Ended));
    // Positions keep flowing at once.
    let fx = j.position(along(0.2, 0.0), NOW + 150);
    assert!(matches!(sends(&fx)[..], [Message::Position { .. }]));
    // The overdue still fires on time, the shown state does not change.
    let fx = j.poll(j.overdue_at());
    assert!(matches!(sends(&fx)[..], [Message::Overdue { .. }]));
    assert_eq!(j.shown_state(), JourneyState::Arrived);
    // The real code ends it for good: the all-clear.
    let fx = j.arrived(j.overdue_at() + 10);
    assert!(matches!(sends(&fx)[..], [Message::Arrived { .. }]));
    assert!(fx.contains(&Effect::WithdrawDeadManSwitch));
    assert_eq!(
        (j.state(), j.shown_state(), j.is_under_duress()),
        (JourneyState::Arrived, JourneyState::Arrived, false)
    );
}

#[test]
fn sos_cancelled_under_duress_is_still_resent() {
    let to = vec![ContactId([1; 32]), ContactId([2; 32])];
    let (mut s, _) =
        Sos::start(to.clone(), None, "", SosConfig::default(), NOW, &mut rng(3)).unwrap();
    let fx = s.cancel_under_duress(NOW + 5);
    match &fx[..] {
        [Effect::SendTo { to: got, message }] => {
            assert_eq!(got, &to);
            assert_eq!(
                message,
                &Message::Duress {
                    of: s.id(),
                    at: NOW + 5
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        (s.state(), s.shown_state()),
        (SosState::Active, SosState::Cancelled)
    );
    assert!(s.cancel_under_duress(NOW + 6).is_empty());
    // Nobody acknowledged: it is re-sent as before, with new positions.
    let fx = s.poll(s.next_deadline().unwrap());
    assert!(matches!(sends(&fx)[..], [Message::Sos { .. }]));
    assert!(s.update_place(along(0.0, 0.0), NOW + 30).is_ok());
    // Raising it again shows it again, same id, sent at once.
    let fx = s.raise_again(NOW + 40);
    assert!(matches!(sends(&fx)[..], [Message::Sos { sos, .. }] if *sos == s.id()));
    assert_eq!(s.shown_state(), SosState::Active);
    assert!(s.raise_again(NOW + 41).is_empty());
    s.cancel_under_duress(NOW + 50);
    // The real cancel is the all-clear.
    let fx = s.cancel(NOW + 60);
    assert!(matches!(sends(&fx)[..], [Message::SosCancelled { .. }]));
    assert_eq!(
        (s.state(), s.shown_state()),
        (SosState::Cancelled, SosState::Cancelled)
    );
    assert!(!s.is_under_duress());
}

#[test]
fn duress_state_survives_a_restart() {
    let (mut j, _) = Journey::start(
        school(),
        NOW + 1800,
        600,
        JourneyConfig::default(),
        NOW,
        &mut rng(4),
    )
    .unwrap();
    j.end_under_duress(Ending::Cancelled, NOW + 10);
    let back: Journey = serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
    assert_eq!(back, j);
    assert_eq!(back.shown_state(), JourneyState::Cancelled);
    // A journey saved before these fields existed still loads.
    let mut old: serde_json::Value = serde_json::to_value(&j).unwrap();
    for k in [
        "states_only",
        "origin",
        "still_since",
        "alerted",
        "duress",
        "near_destination",
    ] {
        old.as_object_mut().unwrap().remove(k);
    }
    let old: Journey = serde_json::from_value(old).unwrap();
    assert!(!old.is_under_duress());
}

// ------------------------------------------------------------------ parents' mode

#[test]
fn parents_mode_shares_no_position_on_the_way() {
    let mut j = parents_journey();
    for i in 0..10u64 {
        let f = i as f64 / 10.0;
        // Up to 150 m off the line: inside the 200 m corridor.
        let fx = j.position(along(f, 150.0 * (i % 2) as f64), NOW + 60 * (i + 1));
        assert!(fx.is_empty(), "sent {fx:?}");
    }
    assert!(!j.near_destination());
    assert!(j.position(school(), NOW + 900).is_empty());
    assert!(j.near_destination());
    let fx = j.arrived(NOW + 960);
    assert!(matches!(sends(&fx)[..], [Message::Arrived { .. }]));
}

#[test]
fn leaving_the_corridor_raises_one_deviation_then_positions_flow() {
    let mut j = parents_journey();
    assert!(j.position(along(0.0, 0.0), NOW + 60).is_empty());
    assert!(j.position(along(0.3, 100.0), NOW + 120).is_empty());
    let fx = j.position(along(0.4, 400.0), NOW + 180);
    match sends(&fx)[..] {
        [Message::Deviated { reason, fix, .. }] => {
            assert_eq!(*reason, Deviation::OffRoute);
            assert_eq!(fix.at, NOW + 180);
        }
        ref other => panic!("{other:?}"),
    }
    // From now on it is a journey that shares positions (30 s apart).
    assert!(j.position(along(0.4, 420.0), NOW + 190).is_empty());
    let fx = j.position(along(0.4, 450.0), NOW + 240);
    assert!(matches!(sends(&fx)[..], [Message::Position { .. }]));
}

#[test]
fn stopping_away_from_the_destination_is_a_deviation() {
    let mut j = parents_journey();
    assert!(j.position(along(0.0, 0.0), NOW + 60).is_empty());
    let spot = along(0.5, 0.0);
    assert!(j.position(spot, NOW + 120).is_empty());
    // Jitter within the still radius does not restart the clock.
    let jitter = along(0.5, STILL_RADIUS_M * 0.6);
    assert!(j.position(jitter, NOW + 400).is_empty());
    let fx = j.position(spot, NOW + 120 + u64::from(RULE.stop_secs));
    assert!(matches!(
        sends(&fx)[..],
        [Message::Deviated {
            reason: Deviation::Stopped,
            ..
        }]
    ));
}

#[test]
fn waiting_at_the_destination_is_not_a_stop() {
    let mut j = parents_journey();
    assert!(j.position(along(0.0, 0.0), NOW + 60).is_empty());
    assert!(j.position(school(), NOW + 600).is_empty());
    assert!(j.position(school(), NOW + 600 + 10 * 60 * 3).is_empty());
    assert!(j.near_destination());
}

#[test]
fn parents_mode_overdue_and_duress_are_alerts_that_share_positions() {
    let mut j = parents_journey();
    assert!(j.position(along(0.0, 0.0), NOW + 60).is_empty());
    let fx = j.poll(j.overdue_at());
    assert!(matches!(sends(&fx)[..], [Message::Overdue { .. }]));
    let fx = j.position(along(0.1, 0.0), j.overdue_at() + 60);
    assert!(matches!(sends(&fx)[..], [Message::Position { .. }]));

    let mut k = parents_journey();
    k.end_under_duress(Ending::Arrived, NOW + 100);
    let fx = k.position(along(0.1, 0.0), NOW + 130);
    assert!(matches!(sends(&fx)[..], [Message::Position { .. }]));
}

#[test]
fn parents_mode_refuses_a_hair_trigger() {
    let narrow = StatesOnly {
        corridor_m: MIN_CORRIDOR_M - 1,
        stop_secs: 600,
    };
    let quick = StatesOnly {
        corridor_m: 300,
        stop_secs: MIN_STOP_SECS - 1,
    };
    for rule in [narrow, quick] {
        let r = Journey::start_states_only(
            rule,
            school(),
            NOW + 1800,
            600,
            JourneyConfig::default(),
            NOW,
            &mut rng(5),
        );
        assert!(matches!(r, Err(JourneyError::BadConfig(_))), "{r:?}");
    }
}

// ------------------------------------------------------------------ watch

#[test]
fn the_parent_sees_states_and_no_trail_until_an_alert() {
    let mut j = parents_journey();
    let child = ContactId([9; 32]);
    let mut w = Watch::new();
    let started = Message::JourneyStarted {
        journey: j.id(),
        started_at: NOW,
        destination: school(),
        expected_arrival: NOW + 1800,
        grace_secs: 600,
        states_only: Some(RULE),
    };
    assert!(matches!(
        w.receive(&child, &started, NOW),
        Some(Notice::JourneyStarted {
            states_only: Some(_),
            ..
        })
    ));
    // A position that a (misbehaving or older) sender still sends is
    // dropped before any alert.
    let pos = Message::Position {
        journey: j.id(),
        fix: Fix {
            at: NOW + 60,
            place: along(0.1, 0.0),
        },
    };
    assert_eq!(w.receive(&child, &pos, NOW + 60), None);
    j.position(along(0.0, 0.0), NOW + 60);
    let fx = j.position(along(0.5, 500.0), NOW + 120);
    let dev = sends(&fx)[0].clone();
    assert!(matches!(
        w.receive(&child, &dev, NOW + 120),
        Some(Notice::Deviated {
            reason: Deviation::OffRoute,
            ..
        })
    ));
    assert!(matches!(
        w.receive(&child, &pos, NOW + 130),
        Some(Notice::Position { .. })
    ));
}

#[test]
fn duress_reaches_the_watcher_as_an_alert_and_keeps_the_sos_open() {
    let mut w = Watch::new();
    let friend = ContactId([3; 32]);
    let id = MessageId([4; 16]);
    let sos = Message::Sos {
        sos: id,
        at: NOW,
        place: None,
        note: String::new(),
    };
    assert!(matches!(
        w.receive(&friend, &sos, NOW),
        Some(Notice::Sos { .. })
    ));
    let d = Message::Duress {
        of: id,
        at: NOW + 5,
    };
    assert_eq!(
        w.receive(&friend, &d, NOW + 5),
        Some(Notice::Duress {
            from: friend,
            of: id,
            at: NOW + 5
        })
    );
    // Still open: a new position is shown; the real cancel ends it.
    let moved = Message::Sos {
        sos: id,
        at: NOW,
        place: Some(along(0.2, 0.0)),
        note: String::new(),
    };
    assert!(matches!(
        w.receive(&friend, &moved, NOW + 30),
        Some(Notice::SosUpdated { .. })
    ));
    let over = Message::SosCancelled {
        sos: id,
        at: NOW + 60,
    };
    assert!(matches!(
        w.receive(&friend, &over, NOW + 60),
        Some(Notice::SosCancelled { .. })
    ));
}

// ------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever the walk, as long as it stays inside the corridor and keeps
    /// moving, parents' mode sends nothing at all: no trail.
    #[test]
    fn no_trail_inside_the_corridor(steps in prop::collection::vec((0.0f64..1.0, -0.9f64..0.9), 1..40)) {
        let mut j = parents_journey();
        j.position(along(0.0, 0.0), NOW + 1);
        let mut t = NOW + 1;
        for (f, off) in steps {
            // Moving: each step comes well before the stop time and the
            // corridor holds with a margin for the flat-earth estimate.
            t += 60;
            let fx = j.position(along(f, off * f64::from(RULE.corridor_m)), t);
            prop_assert!(sends(&fx).is_empty(), "{fx:?}");
            if t > NOW + 1500 { break; }
            // A genuine stop could come from repeating a point: the
            // clock restarts whenever the phone moves beyond the radius.
            let _ = j.position(along((f + 0.5) % 1.0, 0.0), t + 30);
            t += 30;
        }
    }

    /// A single position far outside the corridor always raises exactly
    /// one deviation, whatever came before inside it.
    #[test]
    fn one_deviation_outside(before in prop::collection::vec(0.0f64..1.0, 0..9), east in 1.2f64..20.0) {
        let mut j = parents_journey();
        let mut t = NOW;
        j.position(along(0.0, 0.0), t);
        for f in before {
            t += 60;
            j.position(along(f, 0.0), t);
        }
        let fx = j.position(along(0.5, east * f64::from(RULE.corridor_m)), t + 60);
        let deviations = sends(&fx).iter().filter(|m| matches!(m, Message::Deviated { .. })).count();
        prop_assert_eq!(deviations, 1);
        let fx = j.position(along(0.5, 2.0 * east * f64::from(RULE.corridor_m)), t + 200);
        let again = sends(&fx).iter().any(|m| matches!(m, Message::Deviated { .. }));
        prop_assert!(!again, "a second deviation");
    }

    /// The segment distance is 0 at the ends, symmetric in the ends and
    /// never more than the distance to the nearer end.
    #[test]
    fn segment_distance(plat in 48.0f64..49.0, plon in 2.0f64..3.0, f in 0.0f64..1.0) {
        let a = (48.5, 2.5);
        let b = (48.51, 2.52);
        prop_assert!(distance_to_segment_m(a, a, b) < 1e-6);
        prop_assert!(distance_to_segment_m(b, a, b) < 1e-6);
        let p = (plat, plon);
        let d = distance_to_segment_m(p, a, b);
        prop_assert!((d - distance_to_segment_m(p, b, a)).abs() < 1e-6);
        let to_a = ronde_protocol::geo::haversine_m(p.0, p.1, a.0, a.1);
        let to_b = ronde_protocol::geo::haversine_m(p.0, p.1, b.0, b.1);
        prop_assert!(d <= to_a.min(to_b) * 1.01 + 1e-6);
        // A point on the segment is on it.
        let on = (a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1));
        prop_assert!(distance_to_segment_m(on, a, b) < 0.5);
    }
}
