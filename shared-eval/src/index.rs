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
    #[inline(always)]
    pub(crate) fn find<'t>(
        &self,
        key: &str,
        entry: impl Fn(usize) -> Option<&'t str>,
    ) -> Option<usize> {
        self.find_hashed(key_hash(key.as_bytes()), key, entry)
    }

    /// [`HashIndex::find`] with `key`'s [`key_hash`] already computed.
    #[inline(always)]
    pub(crate) fn find_hashed<'t>(
        &self,
        hash: u64,
        key: &str,
        entry: impl Fn(usize) -> Option<&'t str>,
    ) -> Option<usize> {
        let mask = self.entries.len().checked_sub(1)?;
        let mut at = (hash as usize) & mask;
        for _ in 0..self.entries.len() {
            let (h, position) = *self.entries.get(at)?;
            if position == EMPTY {
                return None;
            }
            if h == hash {
                let position = usize::try_from(position).ok()?;
                if entry(position).is_some_and(|found| same_bytes(found.as_bytes(), key.as_bytes()))
                {
                    return Some(position);
                }
            }
            at = (at + 1) & mask;
        }
        None
    }
}

/// `a == b`, inline for the short strings keys and list entries are: equal lengths, then at
/// most two overlapping word loads each (a `memcmp` call costs more than the comparison).
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if let (Some(x), Some(y)) = (ends(a), ends(b)) {
        return x == y;
    }
    // 17 to 32 bytes (flag keys are often this long): the first and the last 16.
    if a.len() <= 32
        && let (Some(a0), Some(a1), Some(b0), Some(b1)) = (
            a.first_chunk::<16>(),
            a.last_chunk::<16>(),
            b.first_chunk::<16>(),
            b.last_chunk::<16>(),
        )
    {
        return u128::from_le_bytes(*a0) == u128::from_le_bytes(*b0)
            && u128::from_le_bytes(*a1) == u128::from_le_bytes(*b1);
    }
    a == b
}

/// For up to 16 bytes: the first and the last 8 (overlapping, or zero-padded under 8), which
/// together determine the bytes among strings of one length. `None` when longer.
#[inline(always)]
fn ends(bytes: &[u8]) -> Option<(u64, u64)> {
    if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        return (bytes.len() <= 16)
            .then(|| (u64::from_le_bytes(*first), u64::from_le_bytes(*last)));
    }
    Some((crate::bucket::load_partial(bytes), 0))
}

/// A fast non-cryptographic 64-bit hash of `bytes`. Collisions only cost a string comparison
/// (see the module doc), so it needs spread, not secrecy. Up to 16 bytes (most keys and list
/// entries) it reads two words and does one wide multiply; longer input adds one multiply per
/// 8 bytes.
#[inline(always)]
pub(crate) fn key_hash(bytes: &[u8]) -> u64 {
    const K0: u64 = 0x9e37_79b9_7f4a_7c15;
    const K1: u64 = 0xbf58_476d_1ce4_e5b9;
    let len = bytes.len() as u64;
    let mut seed = len.wrapping_mul(K0);
    let mut rest = bytes;
    while rest.len() > 16 {
        let Some((word, tail)) = rest.split_first_chunk::<8>() else {
            break;
        };
        seed = fold(seed ^ u64::from_le_bytes(*word), K1);
        rest = tail;
    }
    let (a, b) = ends(rest).unwrap_or((0, 0));
    fold(a ^ seed ^ K1, b ^ K0 ^ len)
}

/// The high and low halves of the 128-bit product, xored: the wyhash mixing step.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
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
    fn same_bytes_is_equality() {
        let text = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789";
        for a in 0..=text.len() {
            for b in 0..=text.len() {
                let (x, y) = (&text.as_bytes()[..a], &text.as_bytes()[..b]);
                assert_eq!(same_bytes(x, y), x == y, "{a} {b}");
                let mut z = y.to_vec();
                if let Some(last) = z.last_mut() {
                    *last ^= 1;
                    assert_eq!(same_bytes(x, &z), x == z.as_slice(), "{a} {b} flipped");
                }
                if let Some(first) = z.first_mut() {
                    *first ^= 2;
                    assert_eq!(
                        same_bytes(x, &z),
                        x == z.as_slice(),
                        "{a} {b} first flipped"
                    );
                }
            }
        }
        // Zero padding under 8 bytes never makes a shorter string equal a longer one.
        assert!(!same_bytes(b"a", b"a\0"));
    }

    #[test]
    fn hashes_spread_over_lengths_and_bytes() {
        let mut seen = std::collections::BTreeSet::new();
        let text = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz";
        for len in 0..=text.len() {
            assert!(seen.insert(key_hash(&text.as_bytes()[..len])), "len {len}");
        }
        for i in 0..10_000 {
            assert!(
                seen.insert(key_hash(format!("user-{i}").as_bytes())),
                "user-{i}"
            );
        }
        assert_ne!(key_hash(b"\0"), key_hash(b""));
        assert_ne!(key_hash(b"\0\0"), key_hash(b"\0"));
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
