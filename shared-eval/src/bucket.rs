//! Deterministic bucketing: which slice of a percentage split a user falls into.
//!
//! Native flags use [`bucket`] (SipHash-1-3, 100,000 buckets). Flags imported from flagd use
//! flagd's own `fractional` hashing ([`murmur3_x86_32`], [`flagd_fractional_bucket`]) so that
//! users migrating from flagd keep their buckets.

use core::hash::Hasher;

use siphasher::sip::SipHasher13;

/// Number of buckets a split divides users into: 100,000, so 0.001% steps exist.
pub const BUCKETS: u32 = 100_000;

/// Bucket in `0..BUCKETS` of `value` under a flag's `salt`.
///
/// The exact definition (published so other implementations can reproduce it; test vectors are
/// in `shared-eval/testdata/bucket-vectors.json`):
///
/// 1. `message = le64(len(salt)) || salt || value`, where `salt` and `value` are UTF-8 bytes and
///    `le64(n)` is the byte length of `salt` as 8 bytes little-endian. The length prefix makes
///    the encoding unambiguous: no two `(salt, value)` pairs give the same message.
/// 2. `h = SipHash-1-3(key = 16 zero bytes, message)`, the 64-bit output read as an unsigned
///    little-endian integer (what Rust's `siphasher::sip::SipHasher13::new()` returns).
/// 3. `bucket = (h * 100_000) >> 64`, computed in 128 bits. This maps the hash range onto the
///    buckets in proportion; the largest bucket is at most one part in 2^46 more likely than
///    the smallest, far below anything a split could show.
///
/// The flag's salt is its key unless the flag file sets one, so `bucket(flag_key, user_id)` is
/// the common case, and changing the salt is the only way to reshuffle users.
pub fn bucket(salt: &str, value: &str) -> u32 {
    let mut hasher = SipHasher13::new();
    let prefix = (salt.len() as u64).to_le_bytes();
    // One `write` of the whole message when it fits on the stack (the common case): the
    // streaming hasher's per-call bookkeeping is a measurable share of a split's cost.
    let mut message = [0u8; 128];
    let total = 8 + salt.len() + value.len();
    match message.get_mut(..total) {
        Some(buf) => {
            let (head, rest) = buf.split_at_mut(8);
            let (salt_part, value_part) = rest.split_at_mut(salt.len());
            head.copy_from_slice(&prefix);
            salt_part.copy_from_slice(salt.as_bytes());
            value_part.copy_from_slice(value.as_bytes());
            hasher.write(buf);
        }
        None => {
            hasher.write(&prefix);
            hasher.write(salt.as_bytes());
            hasher.write(value.as_bytes());
        }
    }
    let hash = hasher.finish();
    ((u128::from(hash) * u128::from(BUCKETS)) >> 64) as u32
}

/// Whether a running canary serves the user with `targeting_key`: the canary of an
/// environment's pointer is served to `buckets` of [`BUCKETS`] (its percent times 1,000) under
/// its salt, to those whose `bucket(salt, targeting key)` is below that. Requests without a
/// targeting key get the stable version. The one rule for picking a user's side, for the edge
/// and for the publisher's `eval --deployed`; deterministic in the key alone, and a larger
/// share only adds users.
pub fn in_canary(salt: &str, buckets: u32, targeting_key: Option<&str>) -> bool {
    targeting_key.is_some_and(|key| bucket(salt, key) < buckets)
}

/// The text a flag's splits are salted with: its salt, else its key.
pub(crate) fn salt(flag: &crate::Flag) -> &str {
    if flag.salt.is_empty() {
        flag.key.as_str()
    } else {
        flag.salt.as_str()
    }
}

/// The SipHash state after `le64(len(salt)) || salt`, the message prefix every value of one
/// flag shares (see [`bucket`]); the evaluator keeps one per flag so that a split hashes only
/// the value.
pub(crate) fn salted_hasher(salt: &str) -> Salted {
    let mut salted = Salted::new();
    salted.absorb(&(salt.len() as u64).to_le_bytes());
    salted.absorb(salt.as_bytes());
    salted
}

/// [`bucket`] from a [`salted_hasher`]: `bucket_salted(&salted_hasher(s), v) == bucket(s, v)`.
#[inline(always)]
pub(crate) fn bucket_salted(salted: &Salted, value: &str) -> u32 {
    let hash = salted.finish_with(value.as_bytes());
    ((u128::from(hash) * u128::from(BUCKETS)) >> 64) as u32
}

/// SipHash-1-3 with the all-zero key, written out for splits: the same function as
/// `siphasher`'s `SipHasher13::new()` (the tests compare them and the published vectors), with
/// whole 8-byte words read directly instead of through a streaming buffer, which is most of
/// what a split costs otherwise.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Salted {
    v: [u64; 4],
    /// Bytes not yet compressed (fewer than 8), little-endian.
    tail: u64,
    tail_len: u32,
    /// Message length so far.
    len: u64,
}

impl Salted {
    fn new() -> Salted {
        Salted {
            v: [
                0x736f_6d65_7073_6575,
                0x646f_7261_6e64_6f6d,
                0x6c79_6765_6e65_7261,
                0x7465_6462_7974_6573,
            ],
            tail: 0,
            tail_len: 0,
            len: 0,
        }
    }

    #[inline(always)]
    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.v;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    #[inline(always)]
    fn compress(&mut self, word: u64) {
        self.v[3] ^= word;
        self.round();
        self.v[0] ^= word;
    }

    fn absorb(&mut self, mut bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len() as u64);
        if self.tail_len > 0 {
            let wanted = 8 - self.tail_len as usize;
            let (fill, rest) = bytes.split_at(wanted.min(bytes.len()));
            self.tail |= load_partial(fill) << (8 * self.tail_len);
            self.tail_len += fill.len() as u32;
            if self.tail_len < 8 {
                return;
            }
            let word = self.tail;
            self.compress(word);
            self.tail = 0;
            self.tail_len = 0;
            bytes = rest;
        }
        while let Some((word, rest)) = bytes.split_first_chunk::<8>() {
            self.compress(u64::from_le_bytes(*word));
            bytes = rest;
        }
        self.tail = load_partial(bytes);
        self.tail_len = bytes.len() as u32;
    }

    /// `absorb(bytes)` then `finish()`, for the one absorb a split makes per evaluation: the
    /// salt's pending bytes stay in a register and each message word is `carry | word << shift`
    /// (whole 8-byte loads, no byte-wise filling), the value's last partial word read as one
    /// load where the value is long enough.
    #[inline(always)]
    fn finish_with(mut self, bytes: &[u8]) -> u64 {
        let len = self.len.wrapping_add(bytes.len() as u64);
        let pending = self.tail_len; // 0..=7
        let shift = 8 * pending;
        let mut carry = self.tail;
        let mut rest = bytes;
        while let Some((word, tail)) = rest.split_first_chunk::<8>() {
            let word = u64::from_le_bytes(*word);
            if pending == 0 {
                self.compress(word);
            } else {
                self.compress(carry | (word << shift));
                carry = word >> (64 - shift);
            }
            rest = tail;
        }
        let rest_len = rest.len() as u32; // 0..=7
        let last_bytes = match bytes.last_chunk::<8>() {
            Some(last) if rest_len > 0 => u64::from_le_bytes(*last) >> (64 - 8 * rest_len),
            _ => load_partial(rest),
        };
        let mut tail = carry | (last_bytes << shift);
        if pending + rest_len >= 8 {
            self.compress(tail);
            // pending > 0 here (rest_len < 8), so the shift is in 8..=56.
            tail = last_bytes >> (64 - shift);
        }
        self.tail = tail;
        self.len = len;
        self.finish()
    }

    #[inline(always)]
    fn finish(mut self) -> u64 {
        let last = ((self.len & 0xff) << 56) | self.tail;
        self.compress(last);
        self.v[2] ^= 0xff;
        self.round();
        self.round();
        self.round();
        let [v0, v1, v2, v3] = self.v;
        v0 ^ v1 ^ v2 ^ v3
    }
}

/// Up to 8 bytes as a little-endian integer, in at most three loads (not one per byte).
pub(crate) fn load_partial(bytes: &[u8]) -> u64 {
    if let Ok(word) = <[u8; 8]>::try_from(bytes) {
        return u64::from_le_bytes(word);
    }
    let mut out = 0u64;
    let mut at = 0usize;
    if let Some(four) = bytes.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
        out = u64::from(u32::from_le_bytes(four));
        at = 4;
    }
    if let Some(two) = bytes
        .get(at..at + 2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
    {
        out |= u64::from(u16::from_le_bytes(two)) << (8 * at);
        at += 2;
    }
    if let Some(one) = bytes.get(at) {
        out |= u64::from(*one) << (8 * at);
    }
    out
}

/// MurmurHash3 x86_32 (Austin Appleby's reference `MurmurHash3_x86_32`), as flagd's
/// `fractional` uses with seed 0.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;

    let mut h1 = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k1 = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k1 = k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }

    // The 1-3 trailing bytes, little-endian, mixed without the final rotate-multiply-add.
    let tail = blocks.remainder();
    let mut k1: u32 = 0;
    for (i, byte) in tail.iter().enumerate() {
        k1 |= u32::from(*byte) << (8 * i);
    }
    if !tail.is_empty() {
        k1 = k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h1 ^= k1;
    }

    // Finalization: length (mod 2^32, as the reference's `int len`) and avalanche.
    h1 ^= data.len() as u32;
    h1 ^= h1 >> 16;
    h1 = h1.wrapping_mul(0x85eb_ca6b);
    h1 ^= h1 >> 13;
    h1 = h1.wrapping_mul(0xc2b2_ae35);
    h1 ^= h1 >> 16;
    h1
}

/// flagd v2 `fractional`: `(hash * total_weight) >> 32`.
pub fn flagd_fractional_bucket(key: &str, total_weight: u32) -> u32 {
    ((u64::from(murmur3_x86_32(key.as_bytes(), 0)) * u64::from(total_weight)) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{string::String, vec::Vec};

    #[test]
    fn a_canary_serves_the_keys_bucketed_below_its_share_and_never_the_anonymous() {
        let keys: Vec<String> = (0..10_000).map(|i| std::format!("user-{i}")).collect();
        let served = |buckets| {
            keys.iter()
                .filter(|k| in_canary("canary-prod-5", buckets, Some(k)))
                .count()
        };
        assert!(
            (900..=1_100).contains(&served(10_000)),
            "{}",
            served(10_000)
        );
        assert_eq!((served(0), served(BUCKETS)), (0, keys.len()));
        for key in &keys {
            assert_eq!(
                in_canary("canary-prod-5", 10_000, Some(key)),
                bucket("canary-prod-5", key) < 10_000
            );
            // A larger share only adds users.
            assert!(
                !in_canary("canary-prod-5", 10_000, Some(key))
                    || in_canary("canary-prod-5", 20_000, Some(key))
            );
        }
        assert!(!in_canary("canary-prod-5", BUCKETS, None));
    }

    /// Reference vectors of MurmurHash3_x86_32, cross-checked with `testdata/bucketing.py`
    /// (an independent Python implementation) and PyPI's `mmh3` (`mmh3.hash(s, seed, signed=False)`).
    #[test]
    fn murmur3_matches_reference_vectors() {
        let cases: &[(&[u8], u32, u32)] = &[
            (b"", 0, 0),
            (b"", 1, 0x514e_28b7),
            (b"", 0xffff_ffff, 0x81f1_6f39),
            (b"\xff\xff\xff\xff", 0, 0x7629_3b50),
            (b"!Ce\x87", 0, 0xf55b_516b),
            (b"!Ce", 0, 0x7e4a_8634),
            (b"!C", 0, 0xa0f7_b07a),
            (b"!", 0, 0x7266_1cf4),
            (b"hello", 0, 0x248b_fa47),
            (b"Hello, world!", 0, 0xc036_3e43),
            (
                b"The quick brown fox jumps over the lazy dog",
                0,
                0x2e4f_f723,
            ),
            // flagd-testbed's brute-forced edge keys: the hash extremes and the sign boundary.
            (b"ejOoVL", 0, 0),
            (b"bY9fO-", 0, 1),
            (b"SI7p-", 0, 0x7fff_ffff),
            (b"6LvT0", 0, 0x8000_0000),
            (b"ceQdGm", 0, 0xffff_ffff),
            (b"abc", 0, 0xb3dd_93fa),
            (b"Hello, world!", 0x9747_b28c, 0x2488_4cba),
            (b"fractional-flagjack", 0, 0x9fe8_43e0),
            ("\u{e9}t\u{e9}".as_bytes(), 0, 0x3393_660f),
        ];
        for (data, seed, want) in cases {
            assert_eq!(
                murmur3_x86_32(data, *seed),
                *want,
                "murmur3({data:?}, {seed:#x})"
            );
        }
    }

    /// The flagd-testbed's `fractional-hash-edge-flag` keys, brute-forced by flagd to land on
    /// the boundaries of a 50/50 split: `lower` means bucket 0 of 2 weights of 50.
    #[test]
    fn flagd_edge_keys_fall_on_the_documented_side() {
        for (key, want_lower) in [
            ("ejOoVL", true),
            ("bY9fO-", true),
            ("SI7p-", true),
            ("6LvT0", false),
            ("ceQdGm", false),
        ] {
            let bucket = flagd_fractional_bucket(key, 100);
            assert_eq!(bucket < 50, want_lower, "{key}: bucket {bucket}");
        }
    }

    #[derive(serde::Deserialize)]
    struct Vectors {
        rows: Vec<Row>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Row {
        salt: String,
        value: String,
        siphash13: String,
        bucket: u32,
    }

    /// Every row of the published table, which `testdata/bucketing.py` computes from the
    /// SipHash paper's definition, independently of this crate.
    #[test]
    fn bucket_matches_published_vectors() {
        let vectors: Vectors =
            serde_json::from_str(include_str!("../testdata/bucket-vectors.json")).unwrap();
        assert!(vectors.rows.len() >= 30);
        for row in &vectors.rows {
            let mut hasher = SipHasher13::new();
            hasher.write(&(row.salt.len() as u64).to_le_bytes());
            hasher.write(row.salt.as_bytes());
            hasher.write(row.value.as_bytes());
            assert_eq!(
                std::format!("{:016x}", hasher.finish()),
                row.siphash13,
                "siphash of ({:?}, {:?})",
                row.salt,
                row.value
            );
            assert_eq!(
                bucket(&row.salt, &row.value),
                row.bucket,
                "bucket({:?}, {:?})",
                row.salt,
                row.value
            );
        }
    }

    /// The siphasher crate against the SipHash paper's reference outputs (SipHash-2-4, key
    /// 00..0f, message 00..(n-1)), so the crate itself is known to implement the paper.
    #[test]
    fn siphasher_matches_paper_vectors() {
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let message: Vec<u8> = (0u8..15).collect();
        let cases: &[(usize, u64)] = &[
            (0, 0x726f_db47_dd0e_0e31),
            (1, 0x74f8_39c5_93dc_67fd),
            (15, 0xa129_ca61_49be_45e5),
        ];
        for (len, want) in cases {
            let mut hasher = siphasher::sip::SipHasher24::new_with_keys(k0, k1);
            hasher.write(&message[..*len]);
            assert_eq!(hasher.finish(), *want, "SipHash-2-4 of {len} bytes");
        }
    }

    /// The per-flag pre-hashed salt gives the published buckets too, for salts and values of
    /// every length around SipHash's 8-byte blocks.
    #[test]
    fn salted_hasher_matches_bucket() {
        let vectors: Vectors =
            serde_json::from_str(include_str!("../testdata/bucket-vectors.json")).unwrap();
        for row in &vectors.rows {
            let salted = salted_hasher(&row.salt);
            assert_eq!(bucket_salted(&salted, &row.value), row.bucket, "{row:?}");
        }
        let text = "abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz0123456789";
        for salt_len in 0..20 {
            for value_len in (0..=25).chain([31, 32, 33, 64, 70]) {
                let (salt, value) = (&text[..salt_len], &text[..value_len]);
                assert_eq!(
                    bucket_salted(&salted_hasher(salt), value),
                    bucket(salt, value),
                    "salt {salt:?}, value {value:?}"
                );
            }
        }
    }

    #[test]
    fn buckets_stay_in_range() {
        for salt in ["", "a", "checkout-v2"] {
            for value in ["", "user-1", "ünïcödé", "\u{0}"] {
                assert!(bucket(salt, value) < BUCKETS);
            }
        }
    }
}
