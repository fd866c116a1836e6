//! Load-time hash indexes over the blob's sorted string tables (flag keys, `in` lists), so that
//! a lookup costs one short hash and integer comparisons instead of a `memcmp` per step of a
//! binary search. Found entries are still confirmed by comparing the strings themselves, so a
//! hash collision can cost time, never a wrong answer.

use alloc::vec::Vec;

/// An open-addressing hash table over a table's strings: `(hash, position)` entries in a
/// power-of-two array at most half full, so a lookup probes one or two entries.
#[derive(Debug, Default)]
pub(crate) struct HashIndex {
    /// `(hash, position)`; `position == EMPTY` marks a free entry.
    entries: Vec<(u64, u32)>,
}

const EMPTY: u32 = u32::MAX;

impl HashIndex {
    /// Indexes `items`; positions from `u32::MAX` on are left out (no blob is that large: the
    /// blob size cap bounds every table far below it).
    pub(crate) fn new<'a>(items: impl ExactSizeIterator<Item = &'a str>) -> HashIndex {
        let capacity = items.len().saturating_mul(2).max(1).next_power_of_two();
        let mut entries = alloc::vec![(0u64, EMPTY); capacity];
        let mask = capacity - 1;
        for (i, item) in items.enumerate() {
            let Ok(position) = u32::try_from(i) else {
                break;
            };
            if position == EMPTY {
                break;
            }
            let hash = key_hash(item.as_bytes());
            // At most half full, so a free entry is always found.
            let mut at = (hash as usize) & mask;
            for _ in 0..capacity {
                match entries.get_mut(at) {
                    Some(entry) if entry.1 == EMPTY => {
                        *entry = (hash, position);
                        break;
                    }
                    _ => at = (at + 1) & mask,
                }
            }
        }
        HashIndex { entries }
    }

    /// The position of `key` in the table this index was built from, whose entry `i` is
    /// `entry(i)`. With duplicate strings, the first one indexed.
    pub(crate) fn find<'t>(
        &self,
        key: &str,
        entry: impl Fn(usize) -> Option<&'t str>,
    ) -> Option<usize> {
        let mask = self.entries.len().checked_sub(1)?;
        let hash = key_hash(key.as_bytes());
        let mut at = (hash as usize) & mask;
        for _ in 0..self.entries.len() {
            let (h, position) = *self.entries.get(at)?;
            if position == EMPTY {
                return None;
            }
            if h == hash {
                let position = usize::try_from(position).ok()?;
                if entry(position) == Some(key) {
                    return Some(position);
                }
            }
            at = (at + 1) & mask;
        }
        None
    }
}

/// A fast non-cryptographic 64-bit hash of `bytes` (8 bytes per multiply). Collisions only
/// cost a string comparison (see the module doc), so it needs spread, not secrecy.
fn key_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hash = (bytes.len() as u64).wrapping_mul(K);
    let mut rest = bytes;
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        hash = (hash ^ u64::from_le_bytes(*word))
            .wrapping_mul(K)
            .rotate_left(31);
        rest = tail;
    }
    let last = crate::bucket::load_partial(rest);
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
        // Two entries forced onto one hash and one probe chain: the index must still tell them
        // apart, and a third key with that hash is absent.
        let table = vec![String::from("a"), String::from("b"), String::from("c")];
        let hash = key_hash(b"b");
        let mut entries = vec![(0, EMPTY); 4];
        let start = (hash as usize) & 3;
        entries[start] = (hash, 0);
        entries[(start + 1) & 3] = (hash, 1);
        let forced = HashIndex { entries };
        assert_eq!(find(&forced, &table, "b"), Some(1));
        assert_eq!(find(&forced, &table, "c"), None);
        // A full table (never built, but the probe loop is still bounded).
        let full = HashIndex {
            entries: vec![(hash, 0), (hash, 0)],
        };
        assert_eq!(find(&full, &table, "b"), None);
        assert_eq!(find(&HashIndex::default(), &table, "a"), None);
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
