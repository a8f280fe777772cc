//! The report signature rule (`docs/protocol.md` §1.6): Ed25519 checked with
//! the **cofactored** equation, one at a time or in a batch, so that both
//! give the same verdict on every input.
//!
//! A signature `(R, S)` by key `A` over `M` holds when
//!
//! * `S` is canonical (`S < L`);
//! * `A` and `R` are canonical encodings of curve points (the `y` coordinate
//!   is under `p = 2^255 − 19`, and the point decompresses) and neither is of
//!   small order;
//! * `[8]([S]B − R − [k]A)` is the identity, with
//!   `k = SHA-512(R || A || M) mod L`.
//!
//! A batch holds when `Σ z_i·[8]([S_i]B − R_i − [k_i]A_i)` is the identity
//! for independent random 128-bit `z_i`. Each term is in the prime-order
//! subgroup once multiplied by the cofactor, so a batch of signatures that
//! each hold always holds, and a batch with one that does not fails except
//! with probability about 2^-128, whatever the signer did: unlike
//! cofactorless batch verification (ed25519-dalek's `verify_batch`), a
//! crafted key or `R` with a torsion component cannot make a batch and a
//! single check disagree. This is the model of ZIP-215, with stricter
//! encodings (canonical `A` and `R`) and small-order points still refused.
//!
//! Honest Ed25519 signatures (RFC 8032, e.g. ed25519-dalek's signer) satisfy
//! the cofactorless equation, hence the cofactored one.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha512};

/// A signature whose encodings are acceptable, decoded and ready for the
/// equation: `A`, `R`, `S` and the challenge `k`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parsed {
    a: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// Whether the `y` coordinate of a point encoding (its low 255 bits) is
/// under `p = 2^255 − 19`, i.e. the encoding is not one of the 19 aliases
/// `y + p`.
fn y_is_canonical(b: &[u8; 32]) -> bool {
    // y >= p exactly when bits 8..255 are all ones and the low byte is at
    // least 0xed (p = 0x7fff…ffed, little-endian).
    b[31] & 0x7f != 0x7f || b[1..31].iter().any(|&x| x != 0xff) || b[0] < 0xed
}

/// Decode a point under the rule: canonical `y`, on the curve, not of small
/// order.
///
/// The other way an encoding can fail to re-encode to itself is `x = 0`
/// with the sign bit set; `x = 0` means `y = ±1`, the identity and the
/// point of order 2, which the small-order test refuses anyway. So a point
/// this accepts always re-encodes to the same 32 bytes.
fn decode_point(b: &[u8; 32]) -> Option<EdwardsPoint> {
    if !y_is_canonical(b) {
        return None;
    }
    let p = CompressedEdwardsY(*b).decompress()?;
    if p.is_small_order() {
        return None;
    }
    Some(p)
}

/// Check the encodings of a signature and compute its challenge; `None` if
/// an encoding is not acceptable (which fails the signature). `message` is
/// the signed message in parts, hashed in order.
pub(crate) fn parse(
    public_key: &[u8; 32],
    signature: &[u8; 64],
    message: &[&[u8]],
) -> Option<Parsed> {
    let mut r_bytes = [0u8; 32];
    let mut s_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&signature[..32]);
    s_bytes.copy_from_slice(&signature[32..]);
    let s: Option<Scalar> = Scalar::from_canonical_bytes(s_bytes).into();
    let s = s?;
    let a = decode_point(public_key)?;
    let r = decode_point(&r_bytes)?;
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(public_key);
    for part in message {
        h.update(part);
    }
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    Some(Parsed { a, r, s, k })
}

/// The single check: `[8]([S]B − R − [k]A) == identity`.
pub(crate) fn verify_one(p: &Parsed) -> bool {
    // [k](−A) + [S]B, with the basepoint's precomputed table.
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&p.k, &(-p.a), &p.s);
    (sb_minus_ka - p.r).mul_by_cofactor().is_identity()
}

/// The batch check: `Σ z_i·[8]([S_i]B − R_i − [k_i]A_i) == identity` with
/// random 128-bit `z_i`, as one multiscalar multiplication
/// `−(Σ z_i S_i)·B + Σ z_i·R_i + Σ (z_i k_i)·A_i`, times the cofactor.
/// An empty batch holds. `true` means every signature holds (but for a
/// probability of about 2^-128); `false` means at least one does not.
pub(crate) fn verify_batch(items: &[Parsed], rng: &mut impl CryptoRngCore) -> bool {
    match items {
        [] => return true,
        [one] => return verify_one(one),
        _ => {}
    }
    let mut scalars = Vec::with_capacity(2 * items.len() + 1);
    let mut points = Vec::with_capacity(2 * items.len() + 1);
    scalars.push(Scalar::ZERO);
    points.push(ED25519_BASEPOINT_POINT);
    let mut b_coefficient = Scalar::ZERO;
    for p in items {
        let z = random_z(rng);
        b_coefficient += z * p.s;
        scalars.push(z);
        points.push(p.r);
        scalars.push(z * p.k);
        points.push(p.a);
    }
    scalars[0] = -b_coefficient;
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
        .mul_by_cofactor()
        .is_identity()
}

/// A random non-zero 128-bit scalar.
fn random_z(rng: &mut impl CryptoRngCore) -> Scalar {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    Scalar::from(u128::from_le_bytes(b).max(1))
}

/// Verify many signatures: one batch, and if it fails, each one alone to
/// find which. `None` entries (unacceptable encodings) are failures and
/// stay out of the batch. Returns one verdict per entry, in order.
pub(crate) fn verify_all(items: &[Option<Parsed>], rng: &mut impl CryptoRngCore) -> Vec<bool> {
    let parsed: Vec<Parsed> = items.iter().flatten().copied().collect();
    if verify_batch(&parsed, rng) {
        return items.iter().map(Option::is_some).collect();
    }
    items
        .iter()
        .map(|p| p.as_ref().is_some_and(verify_one))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const MSG: &[u8] = b"ronde/report/v1/sig and the report's bytes";

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(7)
    }

    /// An honest signature from ed25519-dalek's signer.
    fn honest(seed: u8, msg: &[u8]) -> ([u8; 32], [u8; 64]) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        (key.verifying_key().to_bytes(), key.sign(msg).to_bytes())
    }

    fn scalar(seed: u8) -> Scalar {
        Scalar::from_bytes_mod_order_wide(&[seed; 64])
    }

    fn challenge(r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> Scalar {
        let mut h = Sha512::new();
        h.update(r);
        h.update(a);
        h.update(msg);
        Scalar::from_bytes_mod_order_wide(&h.finalize().into())
    }

    /// A signature made by hand: `A = aB + ta`, `R = rB + tr`,
    /// `S = r + k·a`, which satisfies the cofactored equation (the torsion
    /// parts vanish when multiplied by 8) but not, in general, the
    /// cofactorless one.
    fn crafted(
        a: Scalar,
        ta: EdwardsPoint,
        r: Scalar,
        tr: EdwardsPoint,
        msg: &[u8],
    ) -> ([u8; 32], [u8; 64]) {
        let a_pt = EdwardsPoint::mul_base(&a) + ta;
        let r_pt = EdwardsPoint::mul_base(&r) + tr;
        let (a_enc, r_enc) = (a_pt.compress().to_bytes(), r_pt.compress().to_bytes());
        let k = challenge(&r_enc, &a_enc, msg);
        let s = r + k * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_enc);
        sig[32..].copy_from_slice(s.as_bytes());
        (a_enc, sig)
    }

    fn single(pk: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> bool {
        parse(pk, sig, &[msg]).is_some_and(|p| verify_one(&p))
    }

    /// The verdict on `(pk, sig)` inside a batch of honest signatures, and
    /// whether the batch as a whole held.
    fn in_batch(pk: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> (bool, bool) {
        let mut items: Vec<Option<Parsed>> = (1..=5u8)
            .map(|i| {
                let (k, s) = honest(i, msg);
                parse(&k, &s, &[msg])
            })
            .collect();
        items.insert(2, parse(pk, sig, &[msg]));
        // An unacceptable encoding fails before the equation: it is not
        // in the batch, and counts as a failed batch.
        let parsed: Vec<Parsed> = items.iter().flatten().copied().collect();
        let batch = parsed.len() == items.len() && verify_batch(&parsed, &mut rng());
        let verdicts = verify_all(&items, &mut rng());
        assert!(
            verdicts.iter().enumerate().all(|(i, v)| i == 2 || *v),
            "an honest neighbour was condemned"
        );
        (verdicts[2], batch)
    }

    /// Single and batch verdicts agree, the batch fails exactly when the
    /// item does, and the verdict is `expected`.
    fn agree(name: &str, pk: &[u8; 32], sig: &[u8; 64], msg: &[u8], expected: bool) {
        let one = single(pk, sig, msg);
        let (in_b, batch) = in_batch(pk, sig, msg);
        assert_eq!(one, expected, "{name}: single");
        assert_eq!(in_b, expected, "{name}: batch fallback");
        assert_eq!(batch, expected, "{name}: batch as a whole");
    }

    #[test]
    fn honest_signatures_hold_alone_and_in_batches() {
        let items: Vec<Option<Parsed>> = (0..40u8)
            .map(|i| {
                let msg = [MSG, &[i]].concat();
                let (k, s) = honest(i, &msg);
                assert!(single(&k, &s, &msg));
                parse(&k, &s, &[&msg])
            })
            .collect();
        let parsed: Vec<Parsed> = items.iter().flatten().copied().collect();
        assert_eq!(parsed.len(), 40);
        for n in [0, 1, 2, 3, 17, 40] {
            assert!(verify_batch(&parsed[..n], &mut rng()), "batch of {n}");
        }
        assert!(verify_all(&items, &mut rng()).iter().all(|v| *v));
    }

    #[test]
    fn every_bit_flip_fails_alone_and_in_a_batch() {
        let (pk, sig) = honest(9, MSG);
        for bit in 0..256 {
            let mut k = pk;
            k[bit / 8] ^= 1 << (bit % 8);
            agree("key bit", &k, &sig, MSG, false);
        }
        for bit in 0..512 {
            let mut s = sig;
            s[bit / 8] ^= 1 << (bit % 8);
            agree("signature bit", &pk, &s, MSG, false);
        }
        for bit in 0..MSG.len() * 8 {
            let mut m = MSG.to_vec();
            m[bit / 8] ^= 1 << (bit % 8);
            // Signed over MSG, checked over m.
            let one = single(&pk, &sig, &m);
            assert!(!one, "message bit {bit}");
        }
    }

    #[test]
    fn crafted_signatures_get_the_same_verdict_alone_and_in_a_batch() {
        let t8 = EIGHT_TORSION[1];
        assert!(t8.is_small_order() && !(t8 * Scalar::from(4u8)).is_identity());
        let (a, r) = (scalar(3), scalar(4));

        // Accepted: a key with a torsion component, signed consistently.
        // Pick the nonce so that k is not a multiple of 8: then the
        // cofactorless equation (ed25519-dalek's verify_strict) refuses it,
        // and a cofactorless random batch would accept it with
        // probability 1/8 — the disagreement this rule removes.
        let (pk, sig) = (0u8..)
            .map(|i| crafted(a, t8, r + Scalar::from(i), EdwardsPoint::default(), MSG))
            .find(|(pk, sig)| {
                let mut r_enc = [0u8; 32];
                r_enc.copy_from_slice(&sig[..32]);
                !challenge(&r_enc, pk, MSG).as_bytes()[0].is_multiple_of(8)
            })
            .expect("a nonce with k mod 8 != 0");
        agree("torsion key", &pk, &sig, MSG, true);
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&pk).expect("a curve point");
        assert!(dalek
            .verify_strict(MSG, &ed25519_dalek::Signature::from_bytes(&sig))
            .is_err());

        // Accepted: R with a torsion component.
        let (pk, sig) = crafted(a, EdwardsPoint::default(), r, t8, MSG);
        agree("torsion R", &pk, &sig, MSG, true);
        // Both at once.
        let (pk, sig) = crafted(a, EIGHT_TORSION[3], r, EIGHT_TORSION[6], MSG);
        agree("torsion key and R", &pk, &sig, MSG, true);

        // Refused: small-order key (a = 0, A = T), although the cofactored
        // equation holds.
        let (pk, sig) = crafted(Scalar::ZERO, t8, r, EdwardsPoint::default(), MSG);
        agree("small-order key", &pk, &sig, MSG, false);
        let (pk, sig) = crafted(
            Scalar::ZERO,
            EdwardsPoint::default(),
            r,
            EdwardsPoint::default(),
            MSG,
        );
        agree("identity key", &pk, &sig, MSG, false);
        // Refused: small-order R (r = 0, R = T), equation holds.
        let (pk, sig) = crafted(a, EdwardsPoint::default(), Scalar::ZERO, t8, MSG);
        agree("small-order R", &pk, &sig, MSG, false);

        // Refused: S + L, the same scalar non-canonically encoded.
        let (pk, mut sig) = honest(5, MSG);
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig[32..]);
        let wide = add_l(&s).expect("S + L fits in 256 bits for this key");
        sig[32..].copy_from_slice(&wide);
        agree("S + L", &pk, &sig, MSG, false);

        // Refused: y >= p aliases as the key or as R. (Nobody can make the
        // equation hold for them without a discrete logarithm; the encoding
        // is refused before the equation, as `decode_point` checks.)
        for y in 0u8..19 {
            let mut alias = [0xffu8; 32];
            alias[0] = 0xed + y;
            alias[31] = 0x7f;
            let (pk, mut sig) = honest(6, MSG);
            agree("alias key", &alias, &sig, MSG, false);
            sig[..32].copy_from_slice(&alias);
            agree("alias R", &pk, &sig, MSG, false);
        }

        // A third party cannot re-encode someone else's signature: adding
        // torsion to R or to the key changes k, and the equation fails.
        let (pk, sig) = honest(8, MSG);
        let r_pt = CompressedEdwardsY(sig[..32].try_into().expect("32"))
            .decompress()
            .expect("R");
        let mut moved = sig;
        moved[..32].copy_from_slice(&(r_pt + t8).compress().to_bytes());
        agree("R moved by torsion", &pk, &moved, MSG, false);
        let a_pt = CompressedEdwardsY(pk).decompress().expect("A");
        agree(
            "key moved by torsion",
            &(a_pt + t8).compress().to_bytes(),
            &sig,
            MSG,
            false,
        );
    }

    /// The group order L = 2^252 + 27742317777372353535851937790883648493,
    /// little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    #[test]
    fn l_is_the_group_order() {
        assert!(bool::from(Scalar::from_canonical_bytes(L).is_none()));
        let mut below = L;
        below[0] -= 1;
        assert_eq!(
            Scalar::from_canonical_bytes(below)
                .map(|s| s + Scalar::ONE)
                .unwrap_or(Scalar::ONE),
            Scalar::ZERO
        );
    }

    /// `s + L` as 32 little-endian bytes, if it fits.
    fn add_l(s: &[u8; 32]) -> Option<[u8; 32]> {
        let l = L;
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(s[i]) + u16::from(l[i]) + carry;
            out[i] = (v & 0xff) as u8;
            carry = v >> 8;
        }
        (carry == 0).then_some(out)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// One bad signature among good ones fails the batch, and the
        /// fallback finds exactly that one.
        #[test]
        fn one_bad_item_is_found_by_the_fallback(
            good in 1usize..24,
            at in any::<prop::sample::Index>(),
            kind in 0u8..4,
            byte in 0usize..64,
            seed in any::<u64>(),
        ) {
            let bad_at = at.index(good + 1);
            let mut items = Vec::new();
            for i in 0..good {
                let msg = [MSG, &i.to_be_bytes()].concat();
                let (k, s) = honest(i as u8, &msg);
                items.push(parse(&k, &s, &[&msg]));
            }
            let (pk, mut sig) = honest(200, MSG);
            let bad = match kind {
                // A flipped signature byte.
                0 => { sig[byte] ^= 0x40; parse(&pk, &sig, &[MSG]) }
                // Signed over another message.
                1 => parse(&pk, &sig, &[b"another message"]),
                // Another key.
                2 => { let (other, _) = honest(201, MSG); parse(&other, &sig, &[MSG]) }
                // R moved by a torsion point.
                _ => {
                    let r = CompressedEdwardsY(sig[..32].try_into().expect("32")).decompress().expect("R");
                    sig[..32].copy_from_slice(&(r + EIGHT_TORSION[1]).compress().to_bytes());
                    parse(&pk, &sig, &[MSG])
                }
            };
            items.insert(bad_at, bad);
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let parsed: Vec<Parsed> = items.iter().flatten().copied().collect();
            if parsed.len() == items.len() {
                prop_assert!(!verify_batch(&parsed, &mut rng));
            }
            let verdicts = verify_all(&items, &mut rng);
            let wrong: Vec<usize> = verdicts.iter().enumerate().filter(|(_, v)| !**v).map(|(i, _)| i).collect();
            prop_assert_eq!(wrong, vec![bad_at]);
        }
    }

    /// `y_is_canonical` + small-order refusal is exactly "decompresses,
    /// re-encodes to itself, not of small order", on every alias of p and
    /// on the encodings of ±1 with either sign bit.
    #[test]
    fn canonical_test_agrees_with_re_encoding() {
        let mut cases: Vec<[u8; 32]> = Vec::new();
        for low in 0u8..=255 {
            let mut b = [0xff; 32];
            b[0] = low;
            b[31] = 0x7f;
            cases.push(b);
            b[31] = 0xff;
            cases.push(b);
        }
        for y in 0u8..40 {
            let mut b = [0u8; 32];
            b[0] = y;
            cases.push(b);
            b[31] = 0x80;
            cases.push(b);
        }
        // p − 1 (y = −1) with both signs.
        let mut m1 = [0xff; 32];
        m1[0] = 0xec;
        m1[31] = 0x7f;
        cases.push(m1);
        m1[31] = 0xff;
        cases.push(m1);
        // Real points.
        for i in 1u64..50 {
            let p = ED25519_BASEPOINT_POINT * Scalar::from(i);
            cases.push(p.compress().to_bytes());
        }
        let mut checked_aliases = 0;
        for b in cases {
            let expected = CompressedEdwardsY(b)
                .decompress()
                .filter(|p| p.compress().to_bytes() == b && !p.is_small_order())
                .is_some();
            assert_eq!(decode_point(&b).is_some(), expected, "{}", hex::encode(b));
            if !y_is_canonical(&b) {
                checked_aliases += 1;
            }
        }
        // 19 values of y >= p, each with both sign bits.
        assert_eq!(checked_aliases, 38);
    }
}
