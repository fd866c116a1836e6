//! What the SDK serves: the pointer's version with its stable blob and, while a canary runs,
//! the canary blob beside it ([`Current`]); which of the two a context gets
//! ([`Current::side_for`], `shared_eval::in_canary` under the pointer's salt and share, the
//! edge's rule); the flags whose definitions changed between two of them ([`changed_keys`]).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use shared_eval::{Pointer, Snapshot, in_canary};

/// One loaded blob and its evaluation counts.
#[derive(Debug)]
pub struct Side {
    /// The parsed blob.
    pub snapshot: Snapshot,
    /// Hex SHA-256 of its gzipped bytes (its content address).
    pub sha256: String,
    /// Whether an answer can change with the clock alone (`Snapshot::reads_time`): only then
    /// does an evaluation read the time.
    pub reads_time: bool,
    /// Per flag (blob order), one counter per variant and a last one for "no variant".
    counts: Box<[Box<[AtomicU64]>]>,
}

impl Side {
    /// A side over a checked snapshot.
    pub fn new(snapshot: Snapshot, sha256: String) -> Side {
        let counts = snapshot
            .blob()
            .body
            .flags
            .iter()
            .map(|flag| {
                (0..=flag.variants.len())
                    .map(|_| AtomicU64::new(0))
                    .collect()
            })
            .collect();
        Side {
            reads_time: snapshot.reads_time(),
            snapshot,
            sha256,
            counts,
        }
    }

    /// Counts one evaluation of the flag at `position` that served `variant` (a name borrowed
    /// from this snapshot, found by address first, then by text).
    #[inline]
    pub fn count(&self, position: usize, variant: Option<&str>) {
        let (Some(flag), Some(slots)) = (
            self.snapshot.blob().body.flags.get(position),
            self.counts.get(position),
        ) else {
            return;
        };
        let index = variant.map_or(flag.variants.len(), |name| {
            flag.variants
                .iter()
                .position(|v| v.name.as_ptr() == name.as_ptr())
                .or_else(|| flag.variants.iter().position(|v| v.name == name))
                .unwrap_or(flag.variants.len())
        });
        if let Some(slot) = slots.get(index) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes the counts so far as telemetry lines, `{flag, variant, count}`, leaving zeros.
    pub fn drain_counts(&self, into: &mut Vec<Value>) {
        for (flag, slots) in self.snapshot.blob().body.flags.iter().zip(&*self.counts) {
            for (index, slot) in slots.iter().enumerate() {
                let count = slot.swap(0, Ordering::Relaxed);
                if count > 0 {
                    let variant = flag.variants.get(index).map(|v| v.name.as_str());
                    into.push(json!({"flag": flag.key, "variant": variant, "count": count}));
                }
            }
        }
    }
}

/// The canary beside the stable blob and who gets it.
#[derive(Debug)]
pub struct Canary {
    /// Its blob.
    pub side: std::sync::Arc<Side>,
    /// The pointer's canary salt.
    pub salt: String,
    /// Its share in buckets of `shared_eval::BUCKETS`.
    pub buckets: u32,
}

/// What the SDK serves: one pointer's blobs, loaded and checked.
#[derive(Debug)]
pub struct Current {
    /// The pointer's version (after a rollback newer than its blob's header version).
    pub version: u64,
    /// The pointer it was loaded from.
    pub pointer: Pointer,
    /// The stable blob.
    pub stable: std::sync::Arc<Side>,
    /// The canary, while one runs.
    pub canary: Option<Canary>,
    /// Bumped by every swap; prepared contexts remember the one they were resolved under.
    pub generation: u64,
}

/// Which blob answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// The stable blob.
    Stable,
    /// The canary.
    Canary,
}

impl Current {
    /// The side serving the user with `targeting_key`: the canary for users in its share
    /// (`shared_eval::in_canary`, the edge's one rule), stable for everyone else and for
    /// contexts without a targeting key.
    pub fn side_for(&self, targeting_key: Option<&str>) -> (Track, &Side) {
        match &self.canary {
            Some(canary) if in_canary(&canary.salt, canary.buckets, targeting_key) => {
                (Track::Canary, &canary.side)
            }
            _ => (Track::Stable, &self.stable),
        }
    }

    /// The side of `track` (stable when no canary runs).
    pub fn side(&self, track: Track) -> &Side {
        match (&self.canary, track) {
            (Some(canary), Track::Canary) => &canary.side,
            _ => &self.stable,
        }
    }
}

/// The keys of flags added, removed or changed from `old` to `new`, on either side (a user on
/// the canary and one on stable may both see a change), sorted.
pub fn changed_keys(old: Option<&Current>, new: &Current) -> Vec<String> {
    let mut changed = BTreeSet::new();
    let sides = |current: &Current| {
        let canary = current.canary.as_ref().map_or(&current.stable, |c| &c.side);
        [current.stable.clone(), canary.clone()]
    };
    let new_sides = sides(new);
    match old {
        None => {
            for side in &new_sides {
                changed.extend(side.snapshot.flag_keys().map(str::to_owned));
            }
        }
        Some(old) => {
            for (before, after) in sides(old).iter().zip(&new_sides) {
                if before.sha256 == after.sha256 {
                    continue;
                }
                diff(&before.snapshot, &after.snapshot, &mut changed);
            }
        }
    }
    changed.into_iter().collect()
}

fn diff(before: &Snapshot, after: &Snapshot, into: &mut BTreeSet<String>) {
    let old = &before.blob().body.flags;
    let new = &after.blob().body.flags;
    for flag in new {
        match before.flag_position(&flag.key).and_then(|i| old.get(i)) {
            Some(was) if same_flag(was, flag, before, after) => {}
            _ => {
                into.insert(flag.key.clone());
            }
        }
    }
    for flag in old {
        if after.flag_position(&flag.key).is_none() {
            into.insert(flag.key.clone());
        }
    }
}

/// Whether a flag reads the same in two blobs. Its rules name attributes, lists, regexes and
/// segments by index into each blob's own tables, so a flag counts as unchanged only when it
/// and those tables are equal: a change to a shared table reports every flag (over-reporting,
/// never missing a changed definition).
fn same_flag(
    was: &shared_eval::Flag,
    now: &shared_eval::Flag,
    before: &Snapshot,
    after: &Snapshot,
) -> bool {
    let (a, b) = (&before.blob().body, &after.blob().body);
    was == now
        && a.attrs == b.attrs
        && a.lists == b.lists
        && a.regexes == b.regexes
        && a.segments == b.segments
}
