//! Fuzz batched report validation (`validate_batch`, what a relay runs on
//! the reports it receives in bulk) against one-by-one validation
//! (`validate_with`): for any batch at any time, each report's batch verdict
//! must be exactly its single verdict, never a panic.
//!
//! A fuzzer cannot forge a signature, so a batch mixes the fuzzer's bytes
//! with genuine reports sealed once by the harness (difficulty 0, the policy
//! asks for 0) and copies of them with one byte changed. Input: a byte of
//! clock offset from the genuine reports' time, then items, each a tag
//! byte: `0..=3`, genuine report number `tag`; `4..=7`, genuine report
//! `tag - 4` with the byte at the position given by the next byte flipped
//! by the byte after; otherwise, the next byte is a length and that many
//! bytes follow as the item.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ronde_protocol::{cell_for, validate_batch, validate_with, Category, Draft, Policy};

const NOW: u64 = 1_790_000_000;
const MAX_ITEMS: usize = 64;

fn genuine() -> &'static [Vec<u8>] {
    static REPORTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    REPORTS.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let cell = cell_for(48.8156, 2.3844, 7).expect("a cell");
        Category::ALL
            .iter()
            .take(4)
            .map(|&c| {
                let report = Draft::new(c, cell, NOW).seal(0, &mut rng).expect("sealed");
                report.to_bytes()
            })
            .collect()
    })
}

fn items(mut data: &[u8]) -> Vec<Vec<u8>> {
    let reports = genuine();
    let mut out = Vec::new();
    while let Some((&tag, rest)) = data.split_first() {
        if out.len() == MAX_ITEMS {
            break;
        }
        data = rest;
        match tag {
            0..=3 => out.push(reports[usize::from(tag) % reports.len()].clone()),
            4..=7 => {
                let mut r = reports[usize::from(tag - 4) % reports.len()].clone();
                let (at, by) = match data {
                    [at, by, rest @ ..] => {
                        data = rest;
                        (usize::from(*at), *by)
                    }
                    _ => (0, 1),
                };
                let i = at % r.len();
                r[i] ^= by;
                out.push(r);
            }
            _ => {
                let Some((&len, rest)) = data.split_first() else {
                    break;
                };
                let len = usize::from(len).min(rest.len());
                out.push(rest[..len].to_vec());
                data = &rest[len..];
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&offset, rest)) = data.split_first() else {
        return;
    };
    // From two minutes before the reports (ahead of the clock) to past their
    // expiry.
    let now = NOW - 240 + u64::from(offset) * 60;
    let policy = Policy {
        min_difficulty: 0,
        ..Policy::default()
    };
    let batch = items(rest);
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(offset));
    let verdicts = validate_batch(&batch, now, &policy, &mut rng);
    assert_eq!(verdicts.len(), batch.len(), "one verdict per report");
    for (bytes, verdict) in batch.iter().zip(&verdicts) {
        let single = validate_with(bytes, now, &policy);
        assert_eq!(verdict, &single, "batch and single verdicts must agree");
    }
});
