//! Deterministic bucketing. (Stub: the evaluator issue fills this in.)

/// Number of buckets a split divides users into: 100,000, so 0.001% steps exist.
pub const BUCKETS: u32 = 100_000;

/// Bucket in `0..BUCKETS` of `value` under a flag's `salt` (SipHash-1-3).
pub fn bucket(salt: &str, value: &str) -> u32 {
    let _ = (salt, value);
    0
}

/// MurmurHash3 x86_32 with seed 0, as flagd's `fractional` uses.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    let _ = (data, seed);
    0
}

/// flagd v2 `fractional`: `(hash * total_weight) >> 32`.
pub fn flagd_fractional_bucket(key: &str, total_weight: u32) -> u32 {
    ((u64::from(murmur3_x86_32(key.as_bytes(), 0)) * u64::from(total_weight)) >> 32) as u32
}
