//! Behaviour of report sealing, encoding and validation.

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ronde_protocol::{
    cell_for, precheck, validate, validate_batch, validate_with, verify_signatures, Category,
    Draft, Malformed, Policy, Proof, Rejection, Report, ReportId, MAX_REPORT_SIZE,
};

const NOW: u64 = 1_790_000_000; // 2026-09-21
const D: u8 = 8;

fn policy() -> Policy {
    Policy {
        min_difficulty: D,
        ..Policy::default()
    }
}

fn sealed(seed: u64, category: Category, precision: u8) -> Report {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let cell = cell_for(48.8156, 2.3844, precision).expect("valid point");
    Draft::new(category, cell, NOW)
        .seal(D, &mut rng)
        .expect("seal")
}

#[test]
fn a_sealed_report_validates() {
    let r = sealed(1, Category::Harassment, 7);
    let bytes = r.to_bytes();
    assert_eq!(bytes.len(), 121);
    assert_eq!(bytes.len(), r.encoded_len());
    let v = validate_with(&bytes, NOW, &policy()).expect("valid");
    assert_eq!(v.report(), &r);
    assert_eq!(v.id(), r.id());
    assert_eq!(v.id(), ReportId::of(&bytes));
    assert_eq!(v.bytes(), &bytes[..]);
    assert_eq!(r.observed_at(), NOW / 60 * 60);
    assert_eq!(r.expires_at(), r.observed_at() + 30 * 60);
    assert!(v.is_live(NOW) && !v.is_live(r.expires_at()));
    let coarse = sealed(2, Category::PoorLighting, 6);
    assert_eq!(coarse.to_bytes().len(), 120);
    assert!(validate_with(&coarse.to_bytes(), NOW, &policy()).is_ok());
}

#[test]
fn the_network_policy_demands_more_work_than_tests_use() {
    let bytes = sealed(3, Category::Following, 7).to_bytes();
    assert_eq!(validate(&bytes, NOW), Err(Rejection::NotEnoughWork));
}

#[test]
fn time_rules() {
    let r = sealed(4, Category::Exhibitionism, 7);
    let b = r.to_bytes();
    let p = policy();
    assert_eq!(
        validate_with(&b, r.expires_at(), &p),
        Err(Rejection::Expired)
    );
    assert!(validate_with(&b, r.expires_at() - 1, &p).is_ok());
    // Clock skew: up to 120 s ahead of the receiver is fine, more is not.
    assert!(validate_with(&b, r.observed_at() - 120, &p).is_ok());
    assert_eq!(
        validate_with(&b, r.observed_at() - 121, &p),
        Err(Rejection::FromFuture)
    );
}

#[test]
fn ttl_rules() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let cell = cell_for(48.8156, 2.3844, 7).expect("cell");
    let d = Draft::new(Category::OtherHazard, cell, NOW);
    assert!(d.with_ttl(0).seal(D, &mut rng).is_err());
    assert!(d.with_ttl(61).seal(D, &mut rng).is_err());
    let long = d.with_ttl(60).seal(D, &mut rng).expect("60 min is allowed");
    assert!(validate_with(&long.to_bytes(), NOW, &policy()).is_ok());
    let strict = Policy {
        max_ttl_minutes: 45,
        ..policy()
    };
    assert_eq!(
        validate_with(&long.to_bytes(), NOW, &strict),
        Err(Rejection::TtlTooLong)
    );
}

#[test]
fn structural_rejections() {
    let b = sealed(6, Category::VerbalAggression, 7).to_bytes();
    let p = policy();
    let check =
        |bytes: &[u8], want: Rejection| assert_eq!(validate_with(bytes, NOW, &p), Err(want));

    check(&[], Rejection::Malformed(Malformed::Truncated));
    check(
        &b[..b.len() - 1],
        Rejection::Malformed(Malformed::Truncated),
    );
    let mut long = b.clone();
    long.push(0);
    check(&long, Rejection::Malformed(Malformed::TrailingBytes(1)));
    check(
        &[1u8; MAX_REPORT_SIZE + 1],
        Rejection::TooLarge(MAX_REPORT_SIZE + 1),
    );

    let mut v = b.clone();
    v[0] = 2;
    check(&v, Rejection::Malformed(Malformed::UnsupportedVersion(2)));
    let mut c = b.clone();
    c[1] = 10;
    check(&c, Rejection::Malformed(Malformed::UnknownCategory(10)));
    c[1] = 0;
    check(&c, Rejection::Malformed(Malformed::UnknownCategory(0)));
    let mut prec = b.clone();
    prec[2] = 8;
    check(&prec, Rejection::BadCell);
    let mut cell = b.clone();
    cell[3] = b'a'; // not in the geohash alphabet
    check(&cell, Rejection::BadCell);
    let mut upper = b.clone();
    upper[3] = upper[3].to_ascii_uppercase();
    check(&upper, Rejection::BadCell);
    let mut ttl = b.clone();
    ttl[14] = 0;
    check(&ttl, Rejection::Malformed(Malformed::ZeroTtl));
    ttl[14] = 61;
    check(&ttl, Rejection::TtlTooLong);
    let mut proof = b.clone();
    proof[15 + 32] = 3;
    check(&proof, Rejection::Malformed(Malformed::UnsupportedProof(3)));
    // Kind 2 reads a token: the proof-of-work bytes are not one.
    proof[15 + 32] = 2;
    let ty = u16::from_be_bytes([proof[48], proof[49]]);
    check(
        &proof,
        Rejection::Malformed(Malformed::UnsupportedToken(ty)),
    );
    proof[48] = 0;
    proof[49] = 2;
    check(&proof, Rejection::Malformed(Malformed::Truncated));
}

#[test]
fn forged_and_lazy_reports_are_rejected() {
    let r = sealed(7, Category::SexualAggression, 7);
    let b = r.to_bytes();
    let p = policy();
    let mut sig = b.clone();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    assert_eq!(validate_with(&sig, NOW, &p), Err(Rejection::BadSignature));
    // Claiming less work than the minimum.
    let mut lazy = b.clone();
    lazy[15 + 32 + 1] = D - 1;
    assert_eq!(validate_with(&lazy, NOW, &p), Err(Rejection::NotEnoughWork));
    // Claiming more work than the stamp holds.
    let mut greedy = b.clone();
    greedy[15 + 32 + 1] = 40;
    assert_eq!(
        validate_with(&greedy, NOW, &p),
        Err(Rejection::NotEnoughWork)
    );
    let Proof::Work { difficulty, .. } = *r.proof() else {
        unreachable!()
    };
    assert_eq!(difficulty, D);
}

/// Bytes of a report that differ from report to report: key, nonce, signature.
fn variable_part(b: &[u8]) -> &[u8] {
    let p = usize::from(b[2]);
    let key = 3 + p + 5;
    &b[key..]
}

fn shares_a_window(a: &[u8], b: &[u8], w: usize) -> bool {
    a.windows(w).any(|x| b.windows(w).any(|y| x == y))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn encode_decode_round_trips(seed in any::<u64>(), cat in 0usize..9, precision in 6u8..=7, ttl in 1u8..=60, minute in 20_000_000u32..40_000_000) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let cell = cell_for(48.8156, 2.3844, precision).expect("cell");
        let draft = Draft { category: Category::ALL[cat], cell, observed_minute: minute, ttl_minutes: ttl };
        let r = draft.seal(4, &mut rng).expect("seal");
        let bytes = r.to_bytes();
        prop_assert!(bytes.len() <= MAX_REPORT_SIZE);
        let back = Report::from_bytes(&bytes).expect("decode");
        prop_assert_eq!(&back, &r);
        prop_assert_eq!(back.to_bytes(), bytes.clone());
        let now = u64::from(minute) * 60;
        let v = validate_with(&bytes, now, &Policy { min_difficulty: 4, ..Policy::default() });
        prop_assert!(v.is_ok(), "{:?}", v);
    }

    #[test]
    fn any_mutation_of_a_signed_report_is_rejected(seed in 0u64..1_000, pos in 0usize..121, flip in 1u8..=255) {
        let r = sealed(seed, Category::Harassment, 7);
        let mut b = r.to_bytes();
        b[pos] ^= flip;
        prop_assert!(validate_with(&b, NOW, &policy()).is_err());
    }

    /// Every byte flip of a report fails alone and in a batch of good
    /// reports, with the same reason; its neighbours in the batch pass.
    #[test]
    fn a_batch_gives_each_report_the_verdict_it_gets_alone(
        seed in 0u64..1_000,
        pos in 0usize..121,
        flip in 1u8..=255,
        good in 0usize..12,
        at in any::<prop::sample::Index>(),
        rng_seed in any::<u64>(),
    ) {
        let mut batch: Vec<Vec<u8>> = (0..good as u64)
            .map(|i| sealed(seed + 1_000 + i, Category::Following, 7).to_bytes())
            .collect();
        let mut bad = sealed(seed, Category::Harassment, 7).to_bytes();
        bad[pos] ^= flip;
        let bad_at = at.index(good + 1);
        batch.insert(bad_at, bad);
        let mut rng = ChaCha20Rng::seed_from_u64(rng_seed);
        let got = validate_batch(&batch, NOW, &policy(), &mut rng);
        prop_assert_eq!(got.len(), batch.len());
        for (i, (b, res)) in batch.iter().zip(&got).enumerate() {
            let alone = validate_with(b, NOW, &policy());
            prop_assert_eq!(res, &alone, "item {}", i);
            prop_assert_eq!(res.is_ok(), i != bad_at);
        }
    }

    #[test]
    fn truncations_and_extensions_are_rejected(seed in 0u64..1_000, cut in 0usize..121, extra in proptest::collection::vec(any::<u8>(), 1..80)) {
        let b = sealed(seed, Category::Following, 7).to_bytes();
        prop_assert!(validate_with(&b[..cut], NOW, &policy()).is_err());
        let mut longer = b.clone();
        longer.extend_from_slice(&extra);
        prop_assert!(validate_with(&longer, NOW, &policy()).is_err());
    }

    /// Two reports made by the same code path, of the same category, place
    /// and minute, share nothing beyond those fixed fields: no key, nonce or
    /// signature bytes in common (no common 4-byte run anywhere).
    #[test]
    fn two_reports_share_no_bytes_beyond_the_fixed_fields(seed in any::<u64>()) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let cell = cell_for(48.8156, 2.3844, 7).expect("cell");
        let d = Draft::new(Category::Harassment, cell, NOW);
        let a = d.seal(4, &mut rng).expect("seal").to_bytes();
        let b = d.seal(4, &mut rng).expect("seal").to_bytes();
        let fixed = a.len() - variable_part(&a).len();
        prop_assert_eq!(&a[..fixed], &b[..fixed]);
        // The difficulty byte is a fixed field too: drop it from the comparison.
        let (va, vb) = (variable_part(&a), variable_part(&b));
        let strip = |v: &[u8]| [&v[..33], &v[34..]].concat();
        let (va, vb) = (strip(va), strip(vb));
        prop_assert!(!shares_a_window(&va, &vb, 4), "reports share a 4-byte run");
        let same_pos = va.iter().zip(&vb).filter(|(x, y)| x == y).count();
        prop_assert!(same_pos < 8, "{} bytes equal at the same place", same_pos);
    }
}

/// `validate_batch` on a mix of every kind of input gives, in order, what
/// `validate_with` gives on each; `precheck` then `verify_signatures` too.
#[test]
fn batch_validation_agrees_with_one_by_one_on_every_reason() {
    let good = |seed| sealed(seed, Category::Exhibitionism, 7).to_bytes();
    let mut forged = good(1);
    *forged.last_mut().expect("bytes") ^= 0x01;
    let mut restamped = good(2);
    restamped[1] = Category::PhysicalAggression.code();
    let prefix_len = restamped.len() - 64 - 8;
    let (nonce, _) = ronde_protocol::pow::solve(&restamped[..prefix_len], D, 0);
    restamped[prefix_len..prefix_len + 8].copy_from_slice(&nonce.to_be_bytes());
    let mut lazy = good(3);
    lazy[48] = D - 1;
    let mut long_ttl = good(4);
    long_ttl[14] = 61;
    let mut bad_cell = good(8);
    bad_cell[3] = b'a';
    let future = {
        let cell = cell_for(48.8156, 2.3844, 7).expect("cell");
        Draft::new(Category::Following, cell, NOW + 3_600)
            .seal(D, &mut ChaCha20Rng::seed_from_u64(5))
            .expect("seal")
            .to_bytes()
    };
    let expired = {
        let cell = cell_for(48.8156, 2.3844, 6).expect("cell");
        Draft::new(Category::Following, cell, NOW - 3_600)
            .seal(D, &mut ChaCha20Rng::seed_from_u64(6))
            .expect("seal")
            .to_bytes()
    };
    let inputs: Vec<Vec<u8>> = vec![
        good(10),
        forged,
        good(11),
        vec![0x01; MAX_REPORT_SIZE + 1],
        b"garbage".to_vec(),
        restamped,
        good(12),
        lazy,
        long_ttl,
        bad_cell,
        future,
        expired,
        good(13),
        good(10),
    ];
    let alone: Vec<_> = inputs
        .iter()
        .map(|b| validate_with(b, NOW, &policy()))
        .collect();
    let reasons: std::collections::BTreeSet<&str> = alone
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.reason()))
        .collect();
    assert_eq!(reasons.len(), 8, "every reason: {reasons:?}");
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    assert_eq!(validate_batch(&inputs, NOW, &policy(), &mut rng), alone);
    let slices: Vec<&[u8]> = inputs.iter().map(|b| b.as_slice()).collect();
    assert_eq!(validate_batch(&slices, NOW, &policy(), &mut rng), alone);

    // The two steps by hand: the cheap checks, then the signatures of the
    // survivors in one batch.
    let checked: Vec<_> = inputs
        .iter()
        .filter_map(|b| precheck(b, NOW, &policy()).ok())
        .collect();
    assert_eq!(checked.len(), 7, "the good ones and the two forgeries");
    assert_eq!(checked[0].id(), ReportId::of(&inputs[0]));
    let verified = verify_signatures(checked, &mut rng);
    assert_eq!(verified.iter().filter(|r| r.is_ok()).count(), 5);
    assert_eq!(verified[1], Err(Rejection::BadSignature));

    let empty: [&[u8]; 0] = [];
    assert!(validate_batch(&empty, NOW, &policy(), &mut rng).is_empty());
    assert!(verify_signatures(Vec::new(), &mut rng).is_empty());
}

#[test]
fn random_and_truncated_bytes_never_panic() {
    use rand::RngCore;
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let good = sealed(8, Category::FeelingUnsafe, 7).to_bytes();
    for i in 0..20_000 {
        let len = (rng.next_u32() % 260) as usize;
        let mut buf = vec![0u8; len];
        rng.fill_bytes(&mut buf);
        if i % 2 == 0 && len >= 3 {
            // Keep the header plausible so the deeper parsers get exercised.
            buf[0] = 1;
            buf[1] = (buf[1] % 10) + 1;
            buf[2] = 6 + buf[2] % 2;
        }
        let _ = validate_with(&buf, NOW, &policy());
        let cut = len.min(good.len());
        let _ = validate_with(&good[..cut], NOW, &policy());
    }
}
