//! Statements of docs/protocol.md and docs/circle.md that no vector file
//! pins down, checked against the code: the invite decoder's order and
//! errors (circle.md §2), what the strict Ed25519 decoding accepts as a key
//! (protocol.md §1.6, circle.md §1), and a directory's heartbeat key.

// Test helpers outside `#[test]` functions unwrap too (clippy.toml only
// covers the test functions themselves).
#![allow(clippy::unwrap_used)]

use curve25519_dalek::edwards::CompressedEdwardsY;
use ronde_protocol::circle::{Identity, Invite, InviteError, InviteToken, PublicIdentity};
use ronde_protocol::directory::DirectoryPublicKey;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

fn invite() -> Invite {
    let mut b = vec![1u8];
    b.extend(0..64u8);
    Invite {
        identity: Identity::from_bytes(&b).unwrap().public().clone(),
        token: InviteToken([0x33; 16]),
        expires_at: 1_790_086_380,
        name: "Alice".into(),
        addresses: vec![],
    }
}

/// Crockford base32 of `bytes`, most significant bit first, unpadded.
fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(CROCKFORD[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(CROCKFORD[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

#[test]
fn invite_decoding_order_and_errors() {
    let code = invite().to_code();
    assert!(Invite::from_code(&code).is_ok());

    // Over 4096 bytes: refused, not truncated, even if the start is a
    // valid code (spaces are otherwise skipped).
    let padded = format!("{code}{}", " ".repeat(4096 - code.len()));
    assert!(Invite::from_code(&padded).is_ok());
    assert_eq!(
        Invite::from_code(&format!("{padded} ")),
        Err(InviteError::TooLong)
    );

    // Non-zero unused bits in the last character: BadLength.
    let body_len = code.len() - "ronde1:".len();
    let used_bits = (body_len * 5) % 8;
    assert_ne!(used_bits, 0, "this code has unused bits");
    let mut bytes = code.into_bytes();
    let last = bytes.len() - 1;
    let v = CROCKFORD.iter().position(|&c| c == bytes[last]).unwrap();
    bytes[last] = CROCKFORD[v ^ 1];
    assert_eq!(
        Invite::from_code(std::str::from_utf8(&bytes).unwrap()),
        Err(InviteError::BadLength)
    );

    // The size limit (955 + 4 bytes) comes before the checksum: 960
    // bytes of anything are TooLong, 959 with a wrong checksum are Checksum.
    let code = |n: usize| format!("ronde1:{}", base32(&vec![0x42; n]));
    assert_eq!(Invite::from_code(&code(960)), Err(InviteError::TooLong));
    assert_eq!(Invite::from_code(&code(959)), Err(InviteError::Checksum));
    assert_eq!(Invite::from_code(&code(4)), Err(InviteError::BadLength));
    assert_eq!(Invite::from_code(&code(5)), Err(InviteError::Checksum));

    // Characters: position counted in the trimmed code, prefix included.
    assert_eq!(
        Invite::from_code("  RONDE1:0u"),
        Err(InviteError::BadCharacter {
            ch: 'u',
            position: 8
        })
    );
}

/// The first encoding `y + p` (`y < 19`) that decodes to a point of large
/// order.
fn non_canonical_large_order_key() -> [u8; 32] {
    (2u8..19)
        .map(|y| {
            let mut b = [0xffu8; 32];
            b[0] = 0xed + y;
            b[31] = 0x7f;
            b
        })
        .find(|b| {
            CompressedEdwardsY(*b)
                .decompress()
                .is_some_and(|p| !p.is_small_order())
        })
        .unwrap()
}

#[test]
fn the_strict_decoding_accepts_a_non_canonical_key_of_large_order() {
    let alias = non_canonical_large_order_key();
    let kem = *invite().identity.encryption_key();
    // A circle identity with that signing key is accepted.
    assert!(PublicIdentity::new(alias, kem).is_ok());
    // So is a directory heartbeat key.
    assert!(DirectoryPublicKey(alias).is_valid());
    // Small-order keys are refused by both.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(PublicIdentity::new(identity, kem).is_err());
    assert!(!DirectoryPublicKey(identity).is_valid());
    let mut identity_y_plus_p = [0xffu8; 32];
    identity_y_plus_p[0] = 0xee;
    identity_y_plus_p[31] = 0x7f;
    assert!(PublicIdentity::new(identity_y_plus_p, kem).is_err());
}
