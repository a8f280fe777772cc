//! Tests of the stem machine and its wire format.

use std::time::Duration;

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

type M = Stem<u32, u32>;

fn id(n: u32) -> ReportId {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&n.to_be_bytes());
    ReportId(b)
}

fn phones(ids: &[u32]) -> Vec<Candidate<u32>> {
    ids.iter()
        .map(|&peer| Candidate { peer, relay: false })
        .collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Everything due up to `until`, stepping through the machine's own
/// deadlines.
fn drain(m: &mut M, until: Duration) -> Vec<(Duration, Action<u32, u32>)> {
    let mut out = Vec::new();
    while let Some(at) = m.poll_timeout() {
        if at > until {
            break;
        }
        while let Some(a) = m.poll_action(at) {
            out.push((at, a));
        }
    }
    out
}

#[test]
fn an_own_report_goes_on_the_stem_after_at_most_the_delay() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut m = M::new(StemParams::default());
    assert_eq!(
        m.own(ms(0), &mut rng, id(1), 1, &phones(&[10, 11, 12])),
        Decision::Taken
    );
    let due = m.poll_timeout().expect("a deadline");
    assert!(due <= ms(100));
    let acts = drain(&mut m, ms(150));
    assert_eq!(acts.len(), 1);
    assert!(matches!(acts[0].1, Action::Send { to, item: 1 } if [10, 11, 12].contains(&to)));
    // A second copy of the same report is known.
    assert_eq!(
        m.own(ms(200), &mut rng, id(1), 1, &phones(&[10])),
        Decision::Known
    );
}

#[test]
fn never_a_relay_when_a_phone_is_there_but_a_relay_alone_will_do() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for n in 0..200 {
        let mut m = M::new(StemParams::default());
        let mut c = phones(&[7]);
        c.push(Candidate {
            peer: 99,
            relay: true,
        });
        m.own(ms(0), &mut rng, id(n), n, &c);
        for (_, a) in drain(&mut m, ms(150)) {
            assert!(matches!(a, Action::Send { to: 7, .. }));
        }
    }
    let mut m = M::new(StemParams::default());
    m.own(
        ms(0),
        &mut rng,
        id(1),
        1,
        &[Candidate {
            peer: 99,
            relay: true,
        }],
    );
    assert!(matches!(
        drain(&mut m, ms(150))[0].1,
        Action::Send { to: 99, .. }
    ));
}

#[test]
fn a_relay_that_was_picked_alone_is_replaced_when_a_phone_comes() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut m = M::new(StemParams::default());
    let relay = [Candidate {
        peer: 99,
        relay: true,
    }];
    m.own(ms(0), &mut rng, id(1), 1, &relay);
    let mut both = relay.to_vec();
    both.push(Candidate {
        peer: 5,
        relay: false,
    });
    m.own(ms(1000), &mut rng, id(2), 2, &both);
    assert_eq!(m.stem_peers(), &[5]);
}

#[test]
fn no_candidate_means_fluff() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut m = M::new(StemParams::default());
    m.own(ms(0), &mut rng, id(1), 1, &[]);
    assert_eq!(drain(&mut m, ms(10_000)).len(), 1);
    let mut m = M::new(StemParams::default());
    m.own(ms(0), &mut rng, id(1), 1, &[]);
    assert!(matches!(
        drain(&mut m, ms(150))[0].1,
        Action::Fluff { item: 1 }
    ));
}

#[test]
fn relayed_reports_fluff_at_the_rate_q_and_never_go_back() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut m = M::new(StemParams::default());
    let c = phones(&[1, 2, 3, 4]);
    let (mut fluffs, n) = (0, 2000u32);
    for i in 0..n {
        let from = 1 + i % 4;
        let now = ms(u64::from(i) * 1000);
        assert_eq!(
            m.relayed(now, &mut rng, id(i), i, from, &c),
            Decision::Taken
        );
        for (_, a) in drain(&mut m, now + ms(200)) {
            match a {
                Action::Fluff { .. } => fluffs += 1,
                Action::Send { to, .. } => assert_ne!(to, from),
            }
        }
        m.seen(&id(i));
    }
    let rate = f64::from(fluffs) / f64::from(n);
    assert!((0.46..0.54).contains(&rate), "fluff rate {rate}");
}

#[test]
fn a_loop_is_dropped() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut m = M::new(StemParams::default());
    m.own(ms(0), &mut rng, id(1), 1, &phones(&[1, 2]));
    assert_eq!(
        m.relayed(ms(500), &mut rng, id(1), 1, 2, &phones(&[1, 2])),
        Decision::Known
    );
}

#[test]
fn the_failsafe_fluffs_unless_the_gossip_brought_it_back() {
    let p = StemParams::default();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut m = M::new(p);
    m.own(ms(0), &mut rng, id(1), 1, &phones(&[1]));
    let acts = drain(&mut m, ms(10_000));
    assert_eq!(acts.len(), 2, "{acts:?}");
    assert!(matches!(acts[1].1, Action::Fluff { item: 1 }));
    assert!(acts[1].0 >= p.failsafe_min && acts[1].0 <= p.failsafe_max + p.max_delay);

    let mut m = M::new(p);
    m.own(ms(0), &mut rng, id(1), 1, &phones(&[1]));
    assert_eq!(drain(&mut m, ms(200)).len(), 1);
    m.seen(&id(1));
    assert!(drain(&mut m, ms(10_000)).is_empty());
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn a_failed_send_goes_to_another_peer_then_fluffs() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut m = M::new(StemParams::default());
    let c = phones(&[1, 2]);
    m.own(ms(0), &mut rng, id(1), 1, &c);
    let Action::Send { to: first, .. } = drain(&mut m, ms(200))[0].1 else {
        panic!("not sent");
    };
    m.failed(ms(300), &mut rng, &id(1), first, &c);
    let Action::Send { to: second, .. } = drain(&mut m, ms(300))[0].1 else {
        panic!("not re-sent");
    };
    assert_ne!(first, second);
    m.failed(ms(400), &mut rng, &id(1), second, &c);
    assert!(matches!(
        drain(&mut m, ms(400))[0].1,
        Action::Fluff { item: 1 }
    ));
}

/// A flag that a node fluffed but cannot deliver (no relay connected) is
/// passed on along the stem instead: to the edge's stem peer, never back
/// to the peer it came from, at most [`MAX_REROUTES`] times; after that, or
/// with no candidate, the machine gives it back to the caller.
#[test]
fn a_flag_that_cannot_be_fluffed_is_passed_on_a_bounded_number_of_times() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let p = StemParams {
        fluff_probability: 1.0,
        ..StemParams::default()
    };
    let mut m = M::new(p);
    let c = phones(&[1, 2, 3]);
    assert_eq!(m.relayed(ms(0), &mut rng, id(1), 1, 1, &c), Decision::Taken);
    assert!(matches!(
        drain(&mut m, ms(200))[0].1,
        Action::Fluff { item: 1 }
    ));
    let mut now = ms(300);
    for _ in 0..MAX_REROUTES {
        assert!(m.pass_on(now, &mut rng, &id(1), &c));
        let acts = drain(&mut m, now);
        let Action::Send { to, item: 1 } = acts[0].1 else {
            panic!("not passed on: {acts:?}");
        };
        assert_ne!(to, 1, "a flag went back to the peer it came from");
        now += ms(100);
    }
    assert!(!m.pass_on(now, &mut rng, &id(1), &c));
    assert!(drain(&mut m, ms(100_000)).is_empty());
    // No candidate but the peer it came from: given back at once.
    assert_eq!(
        m.relayed(now, &mut rng, id(2), 2, 1, &phones(&[1])),
        Decision::Taken
    );
    assert!(matches!(
        drain(&mut m, now + ms(200))[0].1,
        Action::Fluff { item: 2 }
    ));
    assert!(!m.pass_on(now + ms(200), &mut rng, &id(2), &phones(&[1])));
    // A passed-on flag whose next peer answered taken: nothing more.
    assert_eq!(m.relayed(now, &mut rng, id(3), 3, 1, &c), Decision::Taken);
    drain(&mut m, now + ms(200));
    assert!(m.pass_on(now + ms(200), &mut rng, &id(3), &c));
    assert_eq!(drain(&mut m, now + ms(200)).len(), 1);
    m.seen(&id(3));
    assert!(drain(&mut m, ms(100_000)).is_empty());
}

#[test]
fn a_full_table_declines_relayed_and_fluffs_own() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut m = M::new(StemParams::default());
    let c = phones(&[1, 2]);
    for i in 0..MAX_ENTRIES as u32 {
        m.relayed(ms(0), &mut rng, id(i), i, 1, &c);
    }
    assert_eq!(
        m.relayed(ms(0), &mut rng, id(u32::MAX), 0, 1, &c),
        Decision::Declined
    );
    // Everything fluffs or is seen, then is forgotten after MEMORY.
    for i in 0..MAX_ENTRIES as u32 {
        m.seen(&id(i));
    }
    assert_eq!(
        m.relayed(ms(1) + MEMORY, &mut rng, id(u32::MAX), 0, 1, &c),
        Decision::Taken
    );
    assert_eq!(m.len(), 1);
}

#[test]
fn the_epoch_changes_the_stem_peers_after_ten_minutes() {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let mut m = M::new(StemParams::default());
    let c = phones(&(0..50).collect::<Vec<_>>());
    m.own(ms(0), &mut rng, id(1), 1, &c);
    let first = m.stem_peers().to_vec();
    assert_eq!(first.len(), 2);
    m.own(ms(60_000), &mut rng, id(2), 2, &c);
    assert_eq!(m.stem_peers(), first.as_slice());
    m.own(ms(601_000), &mut rng, id(3), 3, &c);
    assert_ne!(m.stem_peers(), first.as_slice());
}

proptest! {
    /// Own and relayed reports wait the same delay distribution: at most
    /// `max_delay`, never a stem peer that is a relay while a phone is
    /// there, never back to the sender.
    #[test]
    fn decisions_respect_the_rules(seed in any::<u64>(), n_phones in 0usize..6, n_relays in 0usize..3, from in 0u32..8, own in any::<bool>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut c = phones(&(0..n_phones as u32).collect::<Vec<_>>());
        c.extend((0..n_relays as u32).map(|i| Candidate { peer: 100 + i, relay: true }));
        let mut m = M::new(StemParams::default());
        if own {
            m.own(ms(0), &mut rng, id(1), 1, &c);
        } else {
            m.relayed(ms(0), &mut rng, id(1), 1, from, &c);
        }
        let at = m.poll_timeout().expect("a deadline");
        prop_assert!(at <= ms(100));
        let a = m.poll_action(at).expect("an action");
        if let Action::Send { to, .. } = a {
            prop_assert!(own || to != from);
            prop_assert!(n_phones == 0 || to < 100);
        } else {
            prop_assert!(!own || c.is_empty());
        }
    }

    #[test]
    fn requests_round_trip(body in proptest::collection::vec(any::<u8>(), 1..=MAX_REPORT_SIZE)) {
        let r = StemRequest::Report(body);
        let bytes = r.encode().expect("encodes");
        prop_assert_eq!(StemRequest::decode(&bytes), Ok(r));
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = StemRequest::decode(&bytes);
        let _ = StemResponse::decode(&bytes);
    }
}

#[test]
fn decoding_refuses_what_is_not_canonical() {
    assert_eq!(StemRequest::decode(&[]), Err(StemWireError::Malformed));
    assert_eq!(StemRequest::decode(&[1]), Err(StemWireError::Malformed));
    assert_eq!(
        StemRequest::decode(&[2, 1, 0]),
        Err(StemWireError::UnknownVersion(2))
    );
    assert_eq!(
        StemRequest::decode(&[1, 3, 0]),
        Err(StemWireError::UnknownKind(3))
    );
    assert_eq!(
        StemRequest::decode(&[1, 1]),
        Err(StemWireError::BadLength(0))
    );
    assert_eq!(
        StemRequest::decode(&[1, 2, 0]),
        Err(StemWireError::BadLength(1))
    );
    let mut long = vec![1, 1];
    long.resize(2 + MAX_REPORT_SIZE + 1, 0);
    assert!(StemRequest::decode(&long).is_err());
    assert!(StemRequest::Report(Vec::new()).encode().is_err());
    assert_eq!(
        StemResponse::decode(&[3]),
        Err(StemWireError::UnknownKind(3))
    );
    assert_eq!(StemResponse::decode(&[0, 0]), Err(StemWireError::Malformed));
}

/// The vectors of docs/protocol.md §3.4.
#[test]
fn vectors() {
    let doc = include_str!("../../../docs/protocol.md");
    let mut found = 0;
    for line in doc.lines() {
        let Some(rest) = line.strip_prefix("stem-vector ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(what), Some(hex)) = (parts.next(), parts.next()) else {
            panic!("bad vector line {line}");
        };
        let bytes = hex::decode(hex).expect("hex");
        match what {
            "report" => {
                let body = match StemRequest::decode(&bytes) {
                    Ok(StemRequest::Report(b)) => b,
                    other => panic!("{other:?}"),
                };
                assert_eq!(StemRequest::Report(body).encode().expect("encodes"), bytes);
            }
            "flag" => assert!(matches!(
                StemRequest::decode(&bytes),
                Ok(StemRequest::Flag(_))
            )),
            "taken" => assert_eq!(StemResponse::decode(&bytes), Ok(StemResponse::Taken)),
            "invalid" => assert_eq!(StemResponse::decode(&bytes), Ok(StemResponse::Invalid)),
            "declined" => assert_eq!(StemResponse::decode(&bytes), Ok(StemResponse::Declined)),
            "refused" => assert!(StemRequest::decode(&bytes).is_err(), "{line}"),
            other => panic!("unknown vector kind {other}"),
        }
        found += 1;
    }
    assert!(found >= 6, "stem vectors in docs/protocol.md: {found}");
}

/// The largest gap between the empirical CDFs of two samples (the
/// two-sample Kolmogorov–Smirnov statistic).
fn ks(a: &[f64], b: &[f64]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// Issue 13 §3: a peer cannot tell a node's own reports from those it
/// passes on along the stem. Within one epoch, interleaved: the delay
/// before the send, and the fail-safe after it, have the same
/// distribution for both (two-sample KS statistic under 0.17, the 0.1 %
/// critical value for these sample sizes); both go to this epoch's stem
/// peers, and each edge, the node's own one included, to one and the same
/// peer (Dandelion++'s per-edge routing), never back where it came from.
#[test]
fn own_and_relayed_reports_are_indistinguishable_by_delay_and_path() {
    use std::collections::{HashMap, HashSet};
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let params = StemParams::default();
    let mut m = M::new(params);
    let c = phones(&(0..10).collect::<Vec<_>>());
    // id → (given at, came in on edge: None for own).
    let mut given: HashMap<u32, (Duration, Option<u32>)> = HashMap::new();
    let mut actions = Vec::new();
    for i in 0..800u32 {
        let now = ms(500 * u64::from(i));
        actions.extend(drain(&mut m, now));
        let decision = if i % 2 == 0 {
            given.insert(i, (now, None));
            m.own(now, &mut rng, id(i), i, &c)
        } else {
            let from = i % 4 + 1; // edges 2 and 4 (odd i): phones 2 and 4
            given.insert(i, (now, Some(from)));
            m.relayed(now, &mut rng, id(i), i, from, &c)
        };
        assert_eq!(decision, Decision::Taken);
    }
    actions.extend(drain(&mut m, ms(500 * 800 + 10_000)));
    assert!(ms(500 * 800) < params.epoch, "one epoch");
    let stem_peers = m.stem_peers().to_vec();

    let mut sent_at: HashMap<u32, Duration> = HashMap::new();
    let (mut own_delay, mut relayed_delay) = (Vec::new(), Vec::new());
    let (mut own_failsafe, mut relayed_failsafe) = (Vec::new(), Vec::new());
    let mut route: HashMap<Option<u32>, HashSet<u32>> = HashMap::new();
    for (at, a) in actions {
        match a {
            Action::Send { to, item } => {
                let (t0, from) = given[&item];
                assert!(stem_peers.contains(&to));
                assert_ne!(Some(to), from, "sent back where it came from");
                route.entry(from).or_default().insert(to);
                let d = (at - t0).as_secs_f64();
                assert!(at - t0 <= params.max_delay);
                if from.is_none() {
                    own_delay.push(d);
                } else {
                    relayed_delay.push(d);
                }
                sent_at.insert(item, at);
            }
            Action::Fluff { item } => {
                // A fail-safe (nothing was seen through the gossip), or a
                // relayed report fluffed at the rate q.
                let (_, from) = given[&item];
                if let Some(s) = sent_at.get(&item) {
                    let d = (at - *s).as_secs_f64();
                    if from.is_none() {
                        own_failsafe.push(d);
                    } else {
                        relayed_failsafe.push(d);
                    }
                } else {
                    assert!(from.is_some(), "an own report fluffed without a send");
                }
            }
        }
    }
    assert_eq!(own_delay.len(), 400);
    assert!(relayed_delay.len() > 150, "{}", relayed_delay.len());
    assert_eq!(own_failsafe.len(), own_delay.len());
    assert_eq!(relayed_failsafe.len(), relayed_delay.len());
    let d = ks(&own_delay, &relayed_delay);
    assert!(d < 0.17, "delays differ: KS {d}");
    let d = ks(&own_failsafe, &relayed_failsafe);
    assert!(d < 0.17, "fail-safes differ: KS {d}");
    // Each edge, the own one included, maps to one stem peer.
    assert_eq!(route.len(), 3);
    for (edge, to) in &route {
        assert_eq!(to.len(), 1, "edge {edge:?} went to {to:?}");
    }
}
