#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Report costs: encode, decode + validate, proof-of-work stamp, and the raw
//! hash rate the default difficulty is calibrated against.
//!
//! `cargo bench -p ronde-protocol` prints, besides criterion's timings, the
//! derived figures: reports validated per second and the expected sealing
//! time at the default difficulty on this machine.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ronde_protocol::{cell_for, pow, validate, Category, Draft, Report};

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

criterion_group!(benches, bench);
criterion_main!(benches);
