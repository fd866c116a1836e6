//! Evaluation telemetry: how often each flag served each variant in this isolate, sent in
//! batches to the control plane (`POST /api/v1/telemetry` of `publisher serve`), which finds
//! flags nobody evaluates any more and flags that serve one variant to everyone.
//!
//! Counting must cost next to nothing on the bulk route (100 flags a request): counts live in
//! a [`Table`] per blob, one slot per flag in the blob's key order, so a bulk answer is counted
//! by position, and a variant is found by comparing the address of its name in the blob before
//! its text. Memory is bounded ([`MAX_TABLES`] blobs, [`MAX_VARIANTS`] per flag, [`MAX_SPILLED`]
//! counts from blobs no longer served); what does not fit is counted as dropped, not kept.
//! Nothing lost is not promised: a batch that fails to send is dropped and counted.
//!
//! Flushing happens after a request was answered, in the background (`wait_until`), at most
//! every `TELEMETRY_FLUSH_MS`, so no answer waits for it.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{Value, json};
use shared_eval::{Evaluation, Snapshot};

/// Blobs counted at once (stable and canary, plus one being replaced).
pub const MAX_TABLES: usize = 3;
/// Variants counted per flag.
pub const MAX_VARIANTS: usize = 32;
/// Counts kept from blobs no longer served, until the next flush.
pub const MAX_SPILLED: usize = 4_096;

/// One flag's counts.
#[derive(Debug, Default)]
struct Slot {
    key: String,
    /// `(address of the variant name in the blob, name, count)`; `None` = no variant (error,
    /// or the caller's default).
    variants: Vec<(usize, Option<String>, u64)>,
}

impl Slot {
    fn add(&mut self, variant: Option<&str>) -> bool {
        let address = variant.map_or(0, |v| v.as_ptr() as usize);
        if let Some(entry) = self.variants.iter_mut().find(|(a, _, _)| *a == address) {
            entry.2 += 1;
            return true;
        }
        // Same name at another address: the same blob loaded again.
        if let Some(entry) = self
            .variants
            .iter_mut()
            .find(|(_, name, _)| name.as_deref() == variant)
        {
            entry.0 = address;
            entry.2 += 1;
            return true;
        }
        if self.variants.len() >= MAX_VARIANTS {
            return false;
        }
        self.variants.push((address, variant.map(str::to_owned), 1));
        true
    }
}

/// The counts for one blob, a slot per flag in the blob's order.
#[derive(Debug)]
struct Table {
    content_hash: String,
    slots: Vec<Slot>,
}

impl Table {
    fn new(snapshot: &Snapshot) -> Table {
        Table {
            content_hash: snapshot.header().content_hash.clone(),
            slots: snapshot
                .flag_keys()
                .map(|key| Slot {
                    key: key.to_owned(),
                    variants: Vec::new(),
                })
                .collect(),
        }
    }
}

/// A batch ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `(flag, variant, count)`, by flag then variant.
    pub counts: Vec<(String, Option<String>, u64)>,
    /// Counts since the previous batch (epoch ms).
    pub from_ms: u64,
    /// Until (epoch ms).
    pub to_ms: u64,
    /// Evaluations that could not be counted (bounds) and batches that failed to send, so far.
    pub dropped: u64,
}

impl Batch {
    /// The JSON body `POST /api/v1/telemetry` takes.
    pub fn to_json(&self, environment: &str) -> Value {
        let counts: Vec<Value> = self
            .counts
            .iter()
            .map(|(flag, variant, count)| json!({"flag": flag, "variant": variant, "count": count}))
            .collect();
        json!({
            "environment": environment,
            "from": crate::clock::rfc3339(self.from_ms),
            "to": crate::clock::rfc3339(self.to_ms),
            "counts": counts,
            "dropped": self.dropped,
        })
    }
}

/// This isolate's counts and flush bookkeeping.
#[derive(Debug, Default)]
pub struct Tally {
    tables: Vec<Table>,
    spilled: BTreeMap<(String, Option<String>), u64>,
    counted: u64,
    dropped: u64,
    since_ms: u64,
    in_flight: bool,
}

impl Tally {
    fn table(&mut self, snapshot: &Snapshot) -> &mut Table {
        let hash = &snapshot.header().content_hash;
        let position = self.tables.iter().position(|t| &t.content_hash == hash);
        let index = match position {
            Some(index) => index,
            None => {
                if self.tables.len() >= MAX_TABLES {
                    let oldest = self.tables.remove(0);
                    self.spill(oldest);
                }
                self.tables.push(Table::new(snapshot));
                self.tables.len() - 1
            }
        };
        &mut self.tables[index]
    }

    fn spill(&mut self, table: Table) {
        for slot in table.slots {
            for (_, variant, count) in slot.variants {
                let key = (slot.key.clone(), variant);
                if self.spilled.len() >= MAX_SPILLED && !self.spilled.contains_key(&key) {
                    self.dropped += count;
                    continue;
                }
                *self.spilled.entry(key).or_default() += count;
            }
        }
    }

    /// Counts a bulk answer: `evaluations` in the snapshot's flag order, as `evaluate_all`
    /// returns them.
    pub fn record_all(&mut self, snapshot: &Snapshot, evaluations: &[(&str, Evaluation<'_>)]) {
        self.record_answers(
            snapshot,
            evaluations
                .iter()
                .map(|(key, evaluation)| (*key, evaluation.variant)),
        );
    }

    /// Counts a bulk answer given as `(flag key, variant served)` in the snapshot's flag order
    /// (what [`Tally::record_all`] reads from evaluations, and a cached answer replays).
    pub fn record_answers<'a>(
        &mut self,
        snapshot: &Snapshot,
        answers: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>,
    ) {
        let table = self.table(snapshot);
        let total = answers.len() as u64;
        let mut missed = 0;
        for (slot, (key, variant)) in table.slots.iter_mut().zip(answers) {
            if slot.key.as_str() != key || !slot.add(variant) {
                missed += 1;
            }
        }
        let counted = total - missed;
        self.counted += counted;
        self.dropped += missed;
    }

    /// Counts one flag's answer.
    pub fn record_one(&mut self, snapshot: &Snapshot, key: &str, variant: Option<&str>) {
        let table = self.table(snapshot);
        let index = table
            .slots
            .binary_search_by(|slot| slot.key.as_str().cmp(key));
        // An unknown key answers FLAG_NOT_FOUND: nothing to count against a flag.
        let Some(slot) = index.ok().and_then(|index| table.slots.get_mut(index)) else {
            return;
        };
        if slot.add(variant) {
            self.counted += 1;
        } else {
            self.dropped += 1;
        }
    }

    /// Whether a batch should go out at `now_ms`: something counted, none in flight, and
    /// `interval_ms` since the last one (the first interval starts at the first check after
    /// something was counted).
    pub fn due(&mut self, now_ms: u64, interval_ms: u64) -> bool {
        let counting = self.counted > 0 || !self.spilled.is_empty();
        if self.since_ms == 0 && counting {
            self.since_ms = now_ms;
        }
        !self.in_flight && counting && now_ms.saturating_sub(self.since_ms) >= interval_ms
    }

    /// Takes the counts as a batch (and marks it in flight until [`Tally::sent`]).
    pub fn take(&mut self, now_ms: u64) -> Batch {
        let mut merged = std::mem::take(&mut self.spilled);
        for table in std::mem::take(&mut self.tables) {
            for slot in table.slots {
                for (_, variant, count) in slot.variants {
                    *merged.entry((slot.key.clone(), variant)).or_default() += count;
                }
            }
        }
        let batch = Batch {
            counts: merged
                .into_iter()
                .map(|((flag, variant), count)| (flag, variant, count))
                .collect(),
            from_ms: self.since_ms,
            to_ms: now_ms,
            dropped: self.dropped,
        };
        self.counted = 0;
        self.since_ms = now_ms;
        self.in_flight = true;
        batch
    }

    /// The batch taken last was sent (`ok`) or lost.
    pub fn sent(&mut self, batch: &Batch, ok: bool) {
        self.in_flight = false;
        if !ok {
            self.dropped += batch.counts.iter().map(|(_, _, c)| c).sum::<u64>();
        }
    }

    /// For the health endpoint.
    pub fn document(&self) -> Value {
        json!({"pending": self.counted, "dropped": self.dropped, "sending": self.in_flight})
    }
}

thread_local! {
    static TALLY: RefCell<Tally> = RefCell::new(Tally::default());
}

/// Runs `f` on this isolate's tally (Workers isolates are single-threaded).
pub fn with_tally<T>(f: impl FnOnce(&mut Tally) -> T) -> T {
    TALLY.with(|tally| f(&mut tally.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;
    use shared_eval::{Blob, Body, Context, Header, evaluate, evaluate_all};

    fn snapshot(flags: Value) -> Snapshot {
        let order: Vec<usize> = (0..flags.as_array().map_or(0, Vec::len)).collect();
        let body: Body =
            serde_json::from_value(json!({"attrs": [], "flags": flags, "eval_order": order}))
                .expect("body");
        let header = Header {
            environment: "dev".into(),
            version: 1,
            previous: None,
            content_hash: String::new(),
            author: "t".into(),
            source_commit: None,
            created_at: "2026-12-03T00:00:00Z".into(),
        };
        Snapshot::from_json(&serde_json::to_vec(&Blob::new(header, body)).unwrap()).unwrap()
    }

    fn flag(key: &str, enabled: bool) -> Value {
        json!({"key": key, "kind": "release", "value_type": "boolean",
            "variants": [{"name": "on", "value": true}, {"name": "off", "value": false}],
            "default_variant": 1, "off_variant": 1, "enabled": enabled,
            "targeting": {"rules": {"rules": [], "fallthrough": {"variant": 0}}}})
    }

    fn two_flags() -> Snapshot {
        snapshot(json!([flag("a", true), flag("b", false)]))
    }

    #[test]
    fn bulk_and_single_answers_are_counted_per_flag_and_variant() {
        let snap = two_flags();
        let map = Map::new();
        let ctx = Context::new(&map);
        let mut tally = Tally::default();
        for _ in 0..3 {
            tally.record_all(&snap, &evaluate_all(&snap, &ctx, 0));
        }
        let one = evaluate(&snap, "a", &ctx, 0);
        tally.record_one(&snap, "a", one.variant);
        tally.record_one(&snap, "missing", None);
        assert!(!tally.due(1_000, 60_000) && tally.due(61_000, 60_000));
        let batch = tally.take(61_000);
        assert_eq!(
            batch.counts,
            vec![
                ("a".into(), Some("on".into()), 4),
                ("b".into(), Some("off".into()), 3)
            ]
        );
        assert_eq!(
            (batch.from_ms, batch.to_ms, batch.dropped),
            (1_000, 61_000, 0)
        );
        assert!(!tally.due(200_000, 60_000), "in flight until sent");
        tally.sent(&batch, false);
        assert_eq!(tally.document()["dropped"], 7, "a lost batch is counted");
        assert!(!tally.due(200_000, 60_000), "nothing new counted");
    }

    #[test]
    fn memory_stays_bounded_across_many_blobs() {
        let mut tally = Tally::default();
        let map = Map::new();
        for version in 0..20 {
            let snap_flags = (0..300)
                .map(|i| flag(&format!("f{version:02}-{i:03}"), true))
                .collect();
            let snap = snapshot(Value::Array(snap_flags));
            tally.record_all(&snap, &evaluate_all(&snap, &Context::new(&map), 0));
        }
        assert!(tally.tables.len() <= MAX_TABLES);
        assert!(tally.spilled.len() <= MAX_SPILLED);
        let batch = tally.take(1);
        let counted: u64 = batch.counts.iter().map(|(_, _, c)| c).sum();
        assert_eq!(
            counted + batch.dropped,
            20 * 300,
            "every evaluation counted or dropped"
        );
        assert!(batch.dropped > 0);
    }
}
