//! Deterministic bucketing. (Stub: the evaluator issue fills this in.)

/// Number of buckets a split divides users into: 100,000, so 0.001% steps exist.
pub const BUCKETS: u32 = 100_000;

/// Bucket in `0..BUCKETS` of `value` under a flag's `salt` (SipHash-1-3).
pub fn bucket(salt: &str, value: &str) -> u32 {
    let _ = (salt, value);
    0
}

/// MurmurHash3 x86_32 (Austin Appleby's reference `MurmurHash3_x86_32`), as flagd's
/// `fractional` uses with seed 0. Bytes are read little-endian, whatever the platform.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mix = |mut k: u32| {
        k = k.wrapping_mul(C1);
        k = k.rotate_left(15);
        k.wrapping_mul(C2)
    };
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        h ^= mix(k);
        h = h.rotate_left(13);
        h = h.wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k: u32 = 0;
        for (i, byte) in tail.iter().enumerate() {
            k |= u32::from(*byte) << (8 * i);
        }
        h ^= mix(k);
    }
    // `as u32` is the algorithm's definition: the length is taken modulo 2^32.
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// flagd v2 `fractional`: `(hash * total_weight) >> 32`.
pub fn flagd_fractional_bucket(key: &str, total_weight: u32) -> u32 {
    ((u64::from(murmur3_x86_32(key.as_bytes(), 0)) * u64::from(total_weight)) >> 32) as u32
}

#[cfg(test)]
mod murmur3_tests {
    use super::*;

    /// Reference values, checked against the `mmh3` Python package (a binding of the reference
    /// C++ implementation), covering every tail length (0 to 3 bytes) and non-ASCII input.
    #[test]
    fn murmur3_matches_reference_vectors() {
        let cases: &[(&str, u32, u32)] = &[
            ("", 0, 0),
            ("", 1, 0x514e_28b7),
            ("hello", 0, 0x248b_fa47),
            ("abc", 0, 0xb3dd_93fa),
            ("Hello, world!", 0x9747_b28c, 0x2488_4cba),
            (
                "The quick brown fox jumps over the lazy dog",
                0,
                0x2e4f_f723,
            ),
            ("fractional-flagjack", 0, 0x9fe8_43e0),
            ("ejOoVL", 0, 0),
            ("\u{e9}t\u{e9}", 0, 0x3393_660f),
        ];
        for (input, seed, expected) in cases {
            assert_eq!(
                murmur3_x86_32(input.as_bytes(), *seed),
                *expected,
                "{input:?} seed {seed}"
            );
        }
    }

    #[test]
    fn fractional_bucket_scales_the_hash_into_the_total_weight() {
        // hash 0 is bucket 0 whatever the weight; 0x9fe843e0 * 100 >> 32 = 62.
        assert_eq!(flagd_fractional_bucket("ejOoVL", 100), 0);
        assert_eq!(flagd_fractional_bucket("fractional-flagjack", 100), 62);
        assert_eq!(flagd_fractional_bucket("anything", 0), 0);
    }
}
