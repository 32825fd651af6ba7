//! The rollout hash of `@reflag/flag-evaluation`, bit for bit (notes §3.5).
//!
//! SHA-256 of `key + "." + value`, first four digest bytes read little-endian, low 20 bits, scaled
//! to 0..=100000 with floor. Integer arithmetic `v * 100000 / 1048575` equals the reference's
//! `Math.floor((v / 0xfffff) * 100000)` for all 2^20 values of `v` (checked exhaustively in the
//! tests), so no floating point is involved.

use sha2::{Digest, Sha256};

/// `hashInt(input)`: a bucket in 0..=100000 (bucket 100000 holds exactly one of the 2^20 values).
pub fn hash_int(input: &str) -> u32 {
    bucket_of(Sha256::digest(input.as_bytes()).as_slice())
}

/// `hashInt(key + "." + value)` without building the joined string.
pub fn rollout_bucket(key: &str, value: &str) -> u32 {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update(b".");
    h.update(value.as_bytes());
    bucket_of(h.finalize().as_slice())
}

fn bucket_of(digest: &[u8]) -> u32 {
    let v = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0xF_FFFF;
    scale(v)
}

#[inline]
fn scale(v: u32) -> u32 {
    // v < 2^20, so v * 100000 < 2^37: no overflow in u64.
    (u64::from(v) * 100_000 / 0xF_FFFF) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_scaling_matches_the_float_formula_everywhere() {
        for v in 0..=0xF_FFFFu32 {
            let js = ((f64::from(v) / f64::from(0xF_FFFFu32)) * 100_000.0).floor() as u32;
            assert_eq!(scale(v), js, "v = {v}");
        }
    }

    #[test]
    fn joined_and_split_inputs_agree() {
        assert_eq!(rollout_bucket("flag", "company1"), hash_int("flag.company1"));
        assert_eq!(hash_int("flag.company1"), 35985);
    }
}
