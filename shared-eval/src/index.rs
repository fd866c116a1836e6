//! Load-time hash indexes over the blob's sorted string tables (flag keys, `in` lists), so that
//! a lookup costs one short hash and integer comparisons instead of a `memcmp` per step of a
//! binary search. Found entries are still confirmed by comparing the strings themselves, so a
//! hash collision can cost time, never a wrong answer.

use alloc::vec::Vec;

/// Hashes of a table's strings with their positions, sorted by hash.
#[derive(Debug, Default)]
pub(crate) struct HashIndex {
    entries: Vec<(u64, u32)>,
}

impl HashIndex {
    /// Indexes `items`; positions beyond `u32` are left out (no blob is that large: the blob
    /// size cap bounds every table far below it).
    pub(crate) fn new<'a>(items: impl Iterator<Item = &'a str>) -> HashIndex {
        let mut entries: Vec<(u64, u32)> = items
            .enumerate()
            .filter_map(|(i, s)| Some((key_hash(s.as_bytes()), u32::try_from(i).ok()?)))
            .collect();
        entries.sort_unstable();
        HashIndex { entries }
    }

    /// The position of `key` in the table this index was built from, whose entry `i` is
    /// `entry(i)`.
    pub(crate) fn find<'t>(
        &self,
        key: &str,
        entry: impl Fn(usize) -> Option<&'t str>,
    ) -> Option<usize> {
        let hash = key_hash(key.as_bytes());
        let start = self.entries.partition_point(|(h, _)| *h < hash);
        self.entries
            .get(start..)?
            .iter()
            .take_while(|(h, _)| *h == hash)
            .filter_map(|(_, i)| usize::try_from(*i).ok())
            .find(|i| entry(*i) == Some(key))
    }
}

/// A fast non-cryptographic 64-bit hash of `bytes` (8 bytes per multiply). Collisions only
/// cost a string comparison (see the module doc), so it needs spread, not secrecy.
fn key_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hash = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes);
        hash = (hash ^ word).wrapping_mul(K).rotate_left(31);
    }
    let mut last = 0u64;
    for (i, byte) in chunks.remainder().iter().enumerate() {
        last |= u64::from(*byte) << (8 * i);
    }
    hash = (hash ^ last).wrapping_mul(K);
    hash ^ (hash >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{format, string::String, vec};

    fn find(index: &HashIndex, table: &[String], key: &str) -> Option<usize> {
        index.find(key, |i| table.get(i).map(String::as_str))
    }

    #[test]
    fn finds_every_entry_and_nothing_else() {
        let table: Vec<String> = (0..500).map(|i| format!("key-{i}")).collect();
        let index = HashIndex::new(table.iter().map(String::as_str));
        for (i, key) in table.iter().enumerate() {
            assert_eq!(find(&index, &table, key), Some(i));
        }
        for absent in ["", "key-", "key-500", "KEY-1", "key-1 ", "key-10000000"] {
            assert_eq!(find(&index, &table, absent), None, "{absent:?}");
        }
    }

    #[test]
    fn collisions_are_resolved_by_the_strings() {
        // Two entries forced onto one hash: the index must still tell them apart.
        let table = vec![String::from("a"), String::from("b")];
        let index = HashIndex {
            entries: vec![(7, 0), (7, 1)],
        };
        let hash_of = |s: &str| key_hash(s.as_bytes());
        assert_ne!(hash_of("a"), 7);
        let forced = HashIndex {
            entries: vec![(hash_of("b"), 0), (hash_of("b"), 1)],
        };
        assert_eq!(find(&forced, &table, "b"), Some(1));
        assert_eq!(find(&forced, &table, "a"), None);
        assert_eq!(find(&index, &table, "a"), None);
    }

    #[test]
    fn empty_and_long_keys() {
        let table = vec![String::new(), "x".repeat(100), "x".repeat(101)];
        let index = HashIndex::new(table.iter().map(String::as_str));
        assert_eq!(find(&index, &table, ""), Some(0));
        assert_eq!(find(&index, &table, &"x".repeat(101)), Some(2));
        assert_eq!(find(&index, &table, &"x".repeat(99)), None);
    }
}
