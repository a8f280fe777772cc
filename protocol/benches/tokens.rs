#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Token costs (docs/protocol.md §8.5), against a proof-of-work report's
//! validation in the same run: validating a tokened report (one RSA-2048
//! PSS verification more, one proof-of-work hash less), the issuer's blind
//! signature per token, and the phone's blinding and finalizing per token.
//!
//! `cargo bench -p ronde-protocol --bench tokens` prints, besides
//! criterion's timings, the ratio of a tokened report's validation to a
//! proof-of-work report's, and the issuer's tokens per second per core.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ed25519_dalek::SigningKey;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ronde_protocol::token::{blind, finalize, Issuer, TokenKeys};
use ronde_protocol::{cell_for, validate_with_keys, Category, Draft, Policy};

const PERIOD: u64 = 1_790_035_200;
const NOW: u64 = PERIOD + 3_600;

fn issuer() -> Issuer {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/test-vectors/tokens.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("tokens.json")).expect("json");
    let der = hex::decode(v["issuer_secret_pkcs8"].as_str().expect("key")).expect("hex");
    Issuer::from_der(PERIOD, &der).expect("issuer")
}

fn per_op(f: &mut dyn FnMut(), n: u32) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() / f64::from(n)
}

fn bench(c: &mut Criterion) {
    let issuer = issuer();
    let keys = TokenKeys::new(vec![issuer.key().clone()]);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let cell = cell_for(48.8156, 2.3844, 7).expect("cell");
    let key = SigningKey::generate(&mut rng);
    let (pending, blinded) =
        blind(issuer.key(), &key.verifying_key().to_bytes(), &mut rng).expect("blind");
    let token = finalize(
        issuer.key(),
        &pending,
        &issuer.sign(&blinded).expect("sign"),
    )
    .expect("finalize");
    let tokened = Draft::new(Category::Harassment, cell, NOW)
        .seal_with_token(&key, token)
        .expect("seal")
        .to_bytes();
    let worked = Draft::new(Category::Harassment, cell, NOW)
        .seal(18, &mut rng)
        .expect("seal")
        .to_bytes();
    let policy = Policy::default();

    let mut g = c.benchmark_group("tokens");
    g.throughput(Throughput::Elements(1));
    g.bench_function("validate_pow_report", |b| {
        b.iter(|| validate_with_keys(black_box(&worked), NOW, &policy, &keys))
    });
    g.bench_function("validate_tokened_report", |b| {
        b.iter(|| validate_with_keys(black_box(&tokened), NOW, &policy, &keys))
    });
    g.bench_function("issuer_blind_sign", |b| {
        b.iter(|| issuer.sign(black_box(&blinded)))
    });
    g.bench_function("phone_blind", |b| {
        b.iter(|| blind(issuer.key(), &[7; 32], &mut rng))
    });
    g.finish();

    // Derived figures, measured in this same run.
    let n = 2_000;
    let pow = per_op(
        &mut || {
            let _ = black_box(validate_with_keys(&worked, NOW, &policy, &keys));
        },
        n,
    );
    let tok = per_op(
        &mut || {
            let _ = black_box(validate_with_keys(&tokened, NOW, &policy, &keys));
        },
        n,
    );
    let sign = per_op(
        &mut || {
            let _ = black_box(issuer.sign(&blinded));
        },
        200,
    );
    println!(
        "figures: validating a tokened report takes {:.2}x a proof-of-work report \
         ({:.1} us vs {:.1} us); the issuer signs {:.0} tokens/s on one core",
        tok / pow,
        tok * 1e6,
        pow * 1e6,
        1.0 / sign
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
