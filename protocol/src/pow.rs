//! Spam cost: the proof-of-work stamp every report carries.
//!
//! The stamp is a nonce such that
//! `SHA-256("ronde/report/v1/pow" || report bytes up to and including the nonce)`
//! starts with at least `difficulty` zero bits. The hashed bytes include the
//! report's fresh public key, so a stamp cannot be reused for another report
//! and cannot be computed before the report exists. Checking a stamp costs one
//! hash; making one costs `2^difficulty` hashes on average.
//!
//! `DEFAULT_DIFFICULTY` is calibrated so that a report costs about 100 ms on
//! one phone-class core (see `docs/protocol.md` and `cargo bench -p
//! ronde-protocol` for the figures this was set from).

use sha2::{Digest, Sha256};

/// Domain separator of the proof-of-work hash.
pub const POW_DOMAIN: &[u8] = b"ronde/report/v1/pow";
/// The network-wide minimum: reports with less work are rejected.
pub const MIN_DIFFICULTY: u8 = 18;
/// The difficulty honest nodes stamp their reports with.
pub const DEFAULT_DIFFICULTY: u8 = 18;
/// Largest difficulty `Draft::seal` agrees to search for (a safety stop: the
/// expected cost doubles with every bit).
pub const MAX_SEAL_DIFFICULTY: u8 = 40;

/// Number of leading zero bits of a hash.
pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut n = 0;
    for b in hash {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// The proof-of-work hash of `prefix` (report bytes before the nonce) and `nonce`.
pub fn work_hash(prefix: &[u8], nonce: u64) -> [u8; 32] {
    work_hash_in(POW_DOMAIN, prefix, nonce)
}

/// Whether `nonce` is a valid stamp of `difficulty` over `prefix`.
pub fn check(prefix: &[u8], nonce: u64, difficulty: u8) -> bool {
    check_in(POW_DOMAIN, prefix, nonce, difficulty)
}

/// Search for a nonce, starting at `start` and wrapping around.
/// Returns the nonce and the number of hashes it took.
pub fn solve(prefix: &[u8], difficulty: u8, start: u64) -> (u64, u64) {
    solve_in(POW_DOMAIN, prefix, difficulty, start)
}

/// [`work_hash`] under another domain separator (other uses of the same
/// stamp, e.g. dead-man's-switch deposits).
pub fn work_hash_in(domain: &[u8], prefix: &[u8], nonce: u64) -> [u8; 32] {
    Sha256::new_with_prefix(domain)
        .chain_update(prefix)
        .chain_update(nonce.to_be_bytes())
        .finalize()
        .into()
}

/// [`check`] under another domain separator.
pub fn check_in(domain: &[u8], prefix: &[u8], nonce: u64, difficulty: u8) -> bool {
    leading_zero_bits(&work_hash_in(domain, prefix, nonce)) >= u32::from(difficulty)
}

/// [`solve`] under another domain separator.
pub fn solve_in(domain: &[u8], prefix: &[u8], difficulty: u8, start: u64) -> (u64, u64) {
    let base = Sha256::new_with_prefix(domain).chain_update(prefix);
    let mut nonce = start;
    let mut tries = 0u64;
    loop {
        tries += 1;
        let h = base.clone().chain_update(nonce.to_be_bytes()).finalize();
        if leading_zero_bits(&h) >= u32::from(difficulty) {
            return (nonce, tries);
        }
        nonce = nonce.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bits() {
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0x00, 0x01]), 15);
        assert_eq!(leading_zero_bits(&[0x00, 0x00]), 16);
        assert_eq!(leading_zero_bits(&[0x10]), 3);
    }

    #[test]
    fn solved_stamps_check_and_others_do_not() {
        let prefix = b"some report bytes";
        let (nonce, _) = solve(prefix, 12, 42);
        assert!(check(prefix, nonce, 12));
        assert!(!check(b"other report bytes", nonce, 12) || !check(prefix, nonce, 30));
        // Difficulty 0 is satisfied by anything.
        assert!(check(prefix, 0, 0));
    }
}
