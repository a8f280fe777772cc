//! The person's two codes: the **code** that ends a journey or cancels an
//! SOS, and the **duress code** that seems to do the same while the alert
//! goes on (`docs/circle.md` §9, `docs/threat-model.md`).
//!
//! Once codes are set, ending a journey or cancelling an SOS needs one of
//! them: without that an attacker would simply tap "cancel". [`Codes::check`]
//! tells which one was entered. Only salted PBKDF2-HMAC-SHA256 hashes are
//! kept, and both are always computed and compared in constant time, so the
//! time a check takes does not say which code matched. A 4-to-12-digit code
//! is no secret against whoever examines the device at leisure (10¹² hashes
//! at most); it is a secret against the person standing next to you.
//!
//! Sans-IO: the salt comes from the caller's random generator.

use pbkdf2::pbkdf2_hmac;
use rand_core::CryptoRngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Shortest code, in digits.
pub const MIN_CODE_DIGITS: usize = 4;
/// Longest code, in digits.
pub const MAX_CODE_DIGITS: usize = 12;
/// PBKDF2 iterations of a new [`Codes`]: about 20 ms for both hashes on a
/// phone's core; kept in the record, so it can grow without a migration.
pub const CODE_ITERATIONS: u32 = 20_000;
/// Fewest iterations a stored record may say (a tampered record with 1
/// iteration would make the hashes cheap to reverse).
const MIN_ITERATIONS: u32 = 1_000;

/// Which code was entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// The real code: do what was asked.
    Code,
    /// The duress code: show it done, and alert.
    Duress,
    /// Neither.
    Wrong,
}

/// Why codes could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not 4 to 12 ASCII digits.
    #[error("a code is {MIN_CODE_DIGITS} to {MAX_CODE_DIGITS} digits")]
    BadCode,
    /// The two codes are the same.
    #[error("the duress code must differ from the code")]
    Same,
}

/// The stored hashes of the two codes. Serializable, for the node's store.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Codes {
    salt: [u8; 16],
    iterations: u32,
    code: [u8; 32],
    duress: [u8; 32],
}

impl std::fmt::Debug for Codes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Codes(..)")
    }
}

fn check_digits(code: &str) -> Result<(), CodeError> {
    if (MIN_CODE_DIGITS..=MAX_CODE_DIGITS).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(CodeError::BadCode)
    }
}

fn hash(salt: &[u8; 16], iterations: u32, role: u8, code: &str) -> [u8; 32] {
    let mut salted = [0u8; 17];
    salted[..16].copy_from_slice(salt);
    salted[16] = role;
    let mut out = [0u8; 32];
    pbkdf2_hmac::<Sha256>(code.as_bytes(), &salted, iterations, &mut out);
    out
}

const ROLE_CODE: u8 = 1;
const ROLE_DURESS: u8 = 2;

impl Codes {
    /// New codes: `code` ends and cancels, `duress` seems to.
    pub fn new(code: &str, duress: &str, rng: &mut impl CryptoRngCore) -> Result<Codes, CodeError> {
        Codes::with_iterations(code, duress, CODE_ITERATIONS, rng)
    }

    /// As [`Codes::new`] with another cost (tests use fewer iterations;
    /// never fewer than 1 000).
    pub fn with_iterations(
        code: &str,
        duress: &str,
        iterations: u32,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Codes, CodeError> {
        check_digits(code)?;
        check_digits(duress)?;
        if code == duress {
            return Err(CodeError::Same);
        }
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let iterations = iterations.max(MIN_ITERATIONS);
        Ok(Codes {
            salt,
            iterations,
            code: hash(&salt, iterations, ROLE_CODE, code),
            duress: hash(&salt, iterations, ROLE_DURESS, duress),
        })
    }

    /// Which code `entered` is. Both hashes are computed and compared
    /// whatever was entered, in constant time.
    pub fn check(&self, entered: &str) -> CodeCheck {
        // A malformed entry still costs the same two hashes.
        let iterations = self.iterations.max(MIN_ITERATIONS);
        let code = hash(&self.salt, iterations, ROLE_CODE, entered);
        let duress = hash(&self.salt, iterations, ROLE_DURESS, entered);
        let is_code = bool::from(code.ct_eq(&self.code));
        let is_duress = bool::from(duress.ct_eq(&self.duress));
        match (check_digits(entered).is_ok(), is_code, is_duress) {
            (true, true, false) => CodeCheck::Code,
            (true, false, true) => CodeCheck::Duress,
            _ => CodeCheck::Wrong,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }

    #[test]
    fn tells_the_codes_apart() {
        let c = Codes::with_iterations("2468", "1357", 1_000, &mut rng()).unwrap();
        assert_eq!(c.check("2468"), CodeCheck::Code);
        assert_eq!(c.check("1357"), CodeCheck::Duress);
        for wrong in ["", "0000", "24680", "2468 ", "abcd", "1357\n"] {
            assert_eq!(c.check(wrong), CodeCheck::Wrong, "{wrong:?}");
        }
    }

    #[test]
    fn refuses_bad_codes() {
        assert_eq!(
            Codes::new("123", "4567", &mut rng()).unwrap_err(),
            CodeError::BadCode
        );
        assert_eq!(
            Codes::new("1234567890123", "4567", &mut rng()).unwrap_err(),
            CodeError::BadCode
        );
        assert_eq!(
            Codes::new("12a4", "4567", &mut rng()).unwrap_err(),
            CodeError::BadCode
        );
        assert_eq!(
            Codes::new("4567", "4567", &mut rng()).unwrap_err(),
            CodeError::Same
        );
    }

    #[test]
    fn stores_no_code_and_survives_a_restart() {
        let c = Codes::with_iterations("2468", "1357", 1_000, &mut rng()).unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("2468") && !json.contains("1357"));
        assert_eq!(format!("{c:?}"), "Codes(..)");
        let back: Codes = serde_json::from_str(&json).unwrap();
        assert_eq!(back.check("1357"), CodeCheck::Duress);
    }

    #[test]
    fn a_tampered_record_cannot_lower_the_cost_to_nothing() {
        let c = Codes::with_iterations("2468", "1357", 1, &mut rng()).unwrap();
        assert_eq!(c.iterations, MIN_ITERATIONS);
    }
}
