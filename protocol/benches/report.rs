#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Report costs: encode, decode + validate, proof-of-work stamp, and the raw
//! hash rate the default difficulty is calibrated against; validation one by
//! one against in batches, with ed25519-dalek's batch verification as the
//! baseline.
//!
//! `cargo bench -p ronde-protocol` prints, besides criterion's timings, the
//! derived figures: reports validated per second (one by one and in
//! batches, against ed25519-dalek's `verify_batch` on the same reports) and
//! the expected sealing time at the default difficulty on this machine.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::{Signature, VerifyingKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use ronde_protocol::report::SIGN_DOMAIN;
use ronde_protocol::{
    cell_for, pow, validate, validate_batch, validate_with, Category, Draft, Policy, Report,
};

const NOW: u64 = 1_790_000_000;

fn sealed(difficulty: u8) -> Report {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let cell = cell_for(48.8156, 2.3844, 7).expect("cell");
    Draft::new(Category::Harassment, cell, NOW)
        .seal(difficulty, &mut rng)
        .expect("seal")
}

fn bench(c: &mut Criterion) {
    let report = sealed(pow::DEFAULT_DIFFICULTY);
    let bytes = report.to_bytes();

    let mut g = c.benchmark_group("report");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode", |b| b.iter(|| black_box(&report).to_bytes()));
    g.bench_function("decode", |b| {
        b.iter(|| Report::from_bytes(black_box(&bytes)))
    });
    g.bench_function("decode_validate", |b| {
        b.iter(|| validate(black_box(&bytes), NOW))
    });
    g.bench_function("pow_check_one_hash", |b| {
        b.iter(|| pow::work_hash(black_box(&bytes[..49]), 7))
    });
    g.sample_size(10);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let cell = report.cell();
    g.bench_function("seal_default_difficulty", |b| {
        b.iter(|| {
            Draft::new(Category::Harassment, cell, NOW).seal(pow::DEFAULT_DIFFICULTY, &mut rng)
        })
    });
    g.finish();

    // Derived figures, measured in this same run.
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        let _ = black_box(validate(black_box(&bytes), NOW));
    }
    let validate_rate = f64::from(n) / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (_, tries) = pow::solve(&bytes[..49], 24, 0);
    let hash_rate = tries as f64 / t.elapsed().as_secs_f64();
    let expected_seal_ms = 2f64.powi(i32::from(pow::DEFAULT_DIFFICULTY)) / hash_rate * 1e3;
    println!("\n== derived figures (this machine, this run) ==");
    println!("validate: {validate_rate:.0} reports/s on one core");
    println!(
        "sha-256 stamp hashes: {:.2} M/s on one core",
        hash_rate / 1e6
    );
    println!(
        "expected seal time at difficulty {}: {expected_seal_ms:.1} ms (2^{} hashes)",
        pow::DEFAULT_DIFFICULTY,
        pow::DEFAULT_DIFFICULTY
    );
}

/// `n` reports in the nine areas around Ivry, sealed at difficulty 8 (the
/// proof-of-work check costs one hash whatever the difficulty).
fn many(n: usize) -> Vec<Vec<u8>> {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    (0..n)
        .map(|_| {
            let lat = 48.8156 + rng.gen_range(-0.05..0.05);
            let lon = 2.3844 + rng.gen_range(-0.05..0.05);
            let cell = cell_for(lat, lon, 7).expect("cell");
            Draft::new(Category::ALL[rng.gen_range(0..9)], cell, NOW)
                .seal(8, &mut rng)
                .expect("seal")
                .to_bytes()
        })
        .collect()
}

/// What ed25519-dalek's `verify_batch` takes: the signed messages, the
/// signatures and the keys, parsed beforehand (as `ronde sim --ingest`
/// measures it).
struct DalekInput {
    msgs: Vec<Vec<u8>>,
    sigs: Vec<Signature>,
    keys: Vec<VerifyingKey>,
}

fn dalek_input(reports: &[Vec<u8>]) -> DalekInput {
    let msgs = reports
        .iter()
        .map(|b| [SIGN_DOMAIN, &b[..b.len() - 64]].concat())
        .collect();
    let sigs = reports
        .iter()
        .map(|b| Signature::from_slice(&b[b.len() - 64..]).expect("64 bytes"))
        .collect();
    let keys = reports
        .iter()
        .map(|b| {
            let p = usize::from(b[2]);
            let key: [u8; 32] = b[8 + p..40 + p].try_into().expect("32 bytes");
            VerifyingKey::from_bytes(&key).expect("key")
        })
        .collect();
    DalekInput { msgs, sigs, keys }
}

fn dalek_verify_batch(d: &DalekInput, range: std::ops::Range<usize>) -> bool {
    let m: Vec<&[u8]> = d.msgs[range.clone()].iter().map(|m| m.as_slice()).collect();
    ed25519_dalek::verify_batch(&m, &d.sigs[range.clone()], &d.keys[range]).is_ok()
}

fn bench_batches(c: &mut Criterion) {
    let policy = Policy {
        min_difficulty: 8,
        ..Policy::default()
    };
    let all = many(512);
    let dalek = dalek_input(&all);
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut g = c.benchmark_group("validate_many");
    for n in [64usize, 256] {
        let reports = &all[..n];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("one_by_one", n), reports, |b, r| {
            b.iter(|| {
                r.iter()
                    .filter(|x| validate_with(x, NOW, &policy).is_ok())
                    .count()
            })
        });
        g.bench_with_input(BenchmarkId::new("validate_batch", n), reports, |b, r| {
            b.iter(|| validate_batch(r, NOW, &policy, &mut rng))
        });
        g.bench_with_input(
            BenchmarkId::new("ed25519_dalek_verify_batch", n),
            &n,
            |b, &n| b.iter(|| dalek_verify_batch(&dalek, 0..n)),
        );
    }
    g.finish();

    // Derived figures, this run: reports per second on one core.
    let rounds = 40;
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..rounds {
            f();
        }
        (rounds * all.len()) as f64 / t.elapsed().as_secs_f64()
    };
    let dalek64 = time(&mut || {
        for i in (0..all.len()).step_by(64) {
            assert!(dalek_verify_batch(&dalek, i..i + 64));
        }
    });
    let single = time(&mut || {
        for r in &all {
            assert!(validate_with(r, NOW, &policy).is_ok());
        }
    });
    let mut batch_rate = |size: usize| {
        time(&mut || {
            for chunk in all.chunks(size) {
                let v = validate_batch(chunk, NOW, &policy, &mut rng);
                assert!(v.iter().all(|r| r.is_ok()));
            }
        })
    };
    let (b64, b256) = (batch_rate(64), batch_rate(256));
    println!("\n== validation rates (this machine, this run, one core) ==");
    println!("ed25519-dalek verify_batch (64, keys parsed beforehand): {dalek64:.0} /s");
    println!(
        "validate_with one by one: {single:.0} /s = {:.0} % of verify_batch",
        100.0 * single / dalek64
    );
    println!(
        "validate_batch of 64:     {b64:.0} /s = {:.0} % of verify_batch",
        100.0 * b64 / dalek64
    );
    println!(
        "validate_batch of 256:    {b256:.0} /s = {:.0} % of verify_batch",
        100.0 * b256 / dalek64
    );
}

criterion_group!(benches, bench, bench_batches);
criterion_main!(benches);
