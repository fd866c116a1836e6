//! Per-isolate cache of finished OFREP answers: a dashboard polls the same flags with the same
//! token and body many times a minute, and between two blob changes the answer cannot change,
//! so the body is parsed, the flags evaluated and the answer serialized (and its ETag hashed)
//! once per caller and blob rather than on every request.
//!
//! An answer is kept under:
//! - the **scope**: which blobs answer (the stable blob's content hash and the pointer's version,
//!   the canary's content hash and split) and whether bulk answers offer event streams. The cache
//!   holds one scope at a time; a request under another clears it first, so after a push, a kill
//!   (a new blob, found at the next revalidation or at once after a purge) or a rollback (a new
//!   version) no older answer is ever served;
//! - the **identity**: the SHA-256 of the token's bytes (its claims are a function of them), or
//!   anonymous. The token is checked on every request before a cached answer is served (see
//!   [`crate::ofrep::handle`]), so an expired token, or one the secret no longer verifies, is
//!   refused as it would be without the cache;
//! - the **request body's exact bytes** (the unsigned context), compared in full: a hash only
//!   picks the candidates, so no crafted body can be answered with another caller's entry;
//! - the **flag key** of a single-flag request (none for bulk).
//!
//! The track (stable or canary) that answered is a function of those (the split and the targeting
//! key from the token or the body), so it is part of the answer. Telemetry counts every answer
//! served, cached or not: an entry keeps the variants it served, as indices into its blob.
//!
//! Evaluation reads the clock only for flagd's `$flagd.timestamp`; a scope whose blobs use it
//! ([`shared_eval::Snapshot::reads_time`]) caches nothing, since such an answer can change from
//! one second to the next. Native `before`/`after` tests compare context attributes with fixed
//! instants, so they are cached like any other test.
//!
//! Bounded like [`crate::identity::verified_tokens`]: at most [`MAX_ENTRIES`] answers and
//! [`MAX_BYTES`] bytes, oldest evicted first; an answer over [`MAX_ENTRY_BYTES`] is not kept.

use std::cell::RefCell;
use std::collections::VecDeque;

use shared_eval::{Evaluation, Snapshot};

use crate::served::{Served, Track};

/// Most answers kept per isolate.
pub const MAX_ENTRIES: usize = 256;
/// Most bytes (answer bodies, keys, telemetry indices) kept per isolate.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// Largest single entry kept: one huge answer must not flush everyone else's.
pub const MAX_ENTRY_BYTES: usize = MAX_BYTES / 8;

/// What a request asks, besides the scope.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// SHA-256 of the presented token; `None` when anonymous.
    pub identity: Option<&'a [u8; 32]>,
    /// The request body as received.
    pub body: &'a [u8],
    /// The (decoded) flag key of a single-flag request; `None` for bulk.
    pub flag: Option<&'a str>,
}

/// A finished answer, before the per-request headers (CORS, Server-Timing) are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status (single-flag answers: 200, or 404/400 for evaluation failures).
    pub status: u16,
    /// The serialized JSON body.
    pub body: Vec<u8>,
    /// The bulk answer's ETag.
    pub etag: Option<String>,
    /// Which blob answered.
    pub track: Track,
    /// The variants served, for telemetry.
    pub served: Variants,
}

/// The variants an answer served, as indices into the answering blob (valid for as long as the
/// scope holds, since the scope names the blob by content hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variants {
    /// One flag: its index in the blob (`None`: no such flag) and the variant's.
    One {
        /// Index of the flag in the blob's (key-ordered) flags.
        flag: Option<u32>,
        /// Index of the variant in that flag's variants.
        variant: Option<u16>,
    },
    /// Every flag, in the blob's order: the variant index each served.
    All(Vec<Option<u16>>),
}

impl Variants {
    /// What a single-flag evaluation served.
    pub fn one(snapshot: &Snapshot, key: &str, evaluation: &Evaluation<'_>) -> Variants {
        let flags = &snapshot.blob().body.flags;
        let flag = flags.binary_search_by(|f| f.key.as_str().cmp(key)).ok();
        let variant = flag
            .and_then(|index| flags.get(index))
            .and_then(|f| variant_index(f, evaluation.variant));
        Variants::One {
            flag: flag.and_then(|i| u32::try_from(i).ok()),
            variant,
        }
    }

    /// What a bulk evaluation (`evaluate_all`'s order: the blob's) served.
    pub fn all(snapshot: &Snapshot, evaluations: &[(&str, Evaluation<'_>)]) -> Variants {
        let flags = &snapshot.blob().body.flags;
        Variants::All(
            flags
                .iter()
                .zip(evaluations)
                .map(|(flag, (_, evaluation))| variant_index(flag, evaluation.variant))
                .collect(),
        )
    }

    /// Counts them again in this isolate's telemetry, against the blob that answered.
    pub fn record(&self, snapshot: &Snapshot) {
        let flags = &snapshot.blob().body.flags;
        fn name(flag: &shared_eval::Flag, variant: Option<u16>) -> Option<&str> {
            variant
                .and_then(|v| flag.variants.get(usize::from(v)))
                .map(|v| v.name.as_str())
        }
        match self {
            Variants::One { flag, variant } => {
                let Some(flag) = flag.and_then(|i| flags.get(i as usize)) else {
                    // An unknown key is not counted, cached or not.
                    return;
                };
                crate::telemetry::with_tally(|t| {
                    t.record_one(snapshot, &flag.key, name(flag, *variant))
                });
            }
            Variants::All(variants) => crate::telemetry::with_tally(|t| {
                t.record_answers(
                    snapshot,
                    flags
                        .iter()
                        .zip(variants)
                        .map(|(flag, variant)| (flag.key.as_str(), name(flag, *variant))),
                )
            }),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Variants::One { .. } => 0,
            Variants::All(variants) => variants.len() * 4,
        }
    }
}

/// The served variant's index: `answer` points into the flag's own variants, so compare the
/// address of the name first, its text only if that fails.
fn variant_index(flag: &shared_eval::Flag, served: Option<&str>) -> Option<u16> {
    let served = served?;
    let position = flag
        .variants
        .iter()
        .position(|v| core::ptr::eq(v.name.as_str(), served))
        .or_else(|| flag.variants.iter().position(|v| v.name == served))?;
    u16::try_from(position).ok()
}

/// The blobs (and settings) every cached answer was computed under.
#[derive(Debug)]
struct Scope {
    stable_hash: String,
    version: u64,
    /// Content hash, share in buckets, salt.
    canary: Option<(String, u32, String)>,
    event_streams: bool,
    /// Whether these blobs' answers can be kept (none reads the clock).
    cacheable: bool,
}

impl Scope {
    fn of(served: &Served<'_>) -> Scope {
        Scope {
            stable_hash: served.snapshot.header().content_hash.clone(),
            version: served.version,
            canary: served.canary.map(|(snapshot, split)| {
                (
                    snapshot.header().content_hash.clone(),
                    split.buckets,
                    split.salt.clone(),
                )
            }),
            event_streams: served.event_streams,
            cacheable: !served.snapshot.reads_time()
                && served
                    .canary
                    .is_none_or(|(snapshot, _)| !snapshot.reads_time()),
        }
    }

    fn matches(&self, served: &Served<'_>) -> bool {
        self.version == served.version
            && self.event_streams == served.event_streams
            && self.stable_hash == served.snapshot.header().content_hash
            && match (&self.canary, served.canary) {
                (None, None) => true,
                (Some((hash, buckets, salt)), Some((snapshot, split))) => {
                    *buckets == split.buckets
                        && *hash == snapshot.header().content_hash
                        && *salt == split.salt
                }
                _ => false,
            }
    }
}

#[derive(Debug)]
struct Entry {
    fingerprint: u64,
    identity: Option<[u8; 32]>,
    body: Box<[u8]>,
    flag: Option<Box<str>>,
    answer: Answer,
    bytes: usize,
}

impl Entry {
    fn is(&self, fingerprint: u64, key: &Key<'_>) -> bool {
        self.fingerprint == fingerprint
            && self.identity.as_ref() == key.identity
            && self.flag.as_deref() == key.flag
            && *self.body == *key.body
    }
}

/// Hits and misses since the isolate started, and what is held now (for the health endpoint).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Answers served from the cache.
    pub hits: u64,
    /// Answers computed (and kept, when they could be).
    pub misses: u64,
    /// Answers held.
    pub entries: usize,
    /// Bytes held.
    pub bytes: usize,
    /// Whether the current blobs' answers can be kept at all.
    pub cacheable: bool,
}

impl Stats {
    /// `{"hits", "misses", "entries", "bytes", "cacheable"}` for the health document.
    pub fn document(&self) -> serde_json::Value {
        serde_json::json!({
            "hits": self.hits,
            "misses": self.misses,
            "entries": self.entries,
            "bytes": self.bytes,
            "cacheable": self.cacheable,
        })
    }
}

/// The cache itself, with its bounds (the isolate's uses [`MAX_ENTRIES`] and [`MAX_BYTES`]).
#[derive(Debug)]
pub struct AnswerCache {
    max_entries: usize,
    max_bytes: usize,
    scope: Option<Scope>,
    entries: VecDeque<Entry>,
    bytes: usize,
    hits: u64,
    misses: u64,
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache::with_limits(MAX_ENTRIES, MAX_BYTES)
    }
}

impl AnswerCache {
    /// An empty cache holding at most `max_entries` answers and `max_bytes` bytes.
    pub fn with_limits(max_entries: usize, max_bytes: usize) -> AnswerCache {
        AnswerCache {
            max_entries,
            max_bytes,
            scope: None,
            entries: VecDeque::new(),
            bytes: 0,
            hits: 0,
            misses: 0,
        }
    }

    /// Moves to `served`'s scope (dropping every answer of another) and says whether its
    /// answers can be kept.
    fn enter(&mut self, served: &Served<'_>) -> bool {
        match &self.scope {
            Some(scope) if scope.matches(served) => scope.cacheable,
            _ => {
                self.entries.clear();
                self.bytes = 0;
                let scope = Scope::of(served);
                let cacheable = scope.cacheable;
                self.scope = Some(scope);
                cacheable
            }
        }
    }

    /// Runs `read` on the answer kept for `key` under `served`, if there is one.
    pub fn lookup<T>(
        &mut self,
        served: &Served<'_>,
        key: &Key<'_>,
        read: impl FnOnce(&Answer) -> T,
    ) -> Option<T> {
        if !self.enter(served) {
            return None;
        }
        let fingerprint = fingerprint(key);
        match self.entries.iter().find(|e| e.is(fingerprint, key)) {
            Some(entry) => {
                self.hits += 1;
                Some(read(&entry.answer))
            }
            None => None,
        }
    }

    /// Keeps `answer` for `key` under `served` (unless its blobs read the clock, or it is
    /// too large), evicting the oldest answers to stay within the bounds.
    pub fn store(&mut self, served: &Served<'_>, key: &Key<'_>, answer: Answer) {
        self.misses += 1;
        if !self.enter(served) || self.max_entries == 0 {
            return;
        }
        let bytes = ENTRY_OVERHEAD
            + key.body.len()
            + key.flag.map_or(0, str::len)
            + answer.body.len()
            + answer.etag.as_ref().map_or(0, String::len)
            + answer.served.bytes();
        if bytes > MAX_ENTRY_BYTES.min(self.max_bytes) {
            return;
        }
        let fingerprint = fingerprint(key);
        // The same question answered twice (two requests raced past the lookup): keep one.
        if let Some(index) = self.entries.iter().position(|e| e.is(fingerprint, key))
            && let Some(old) = self.entries.remove(index)
        {
            self.bytes -= old.bytes;
        }
        while self.entries.len() >= self.max_entries || self.bytes + bytes > self.max_bytes {
            match self.entries.pop_front() {
                Some(oldest) => self.bytes -= oldest.bytes,
                None => break,
            }
        }
        self.bytes += bytes;
        self.entries.push_back(Entry {
            fingerprint,
            identity: key.identity.copied(),
            body: key.body.into(),
            flag: key.flag.map(Into::into),
            answer,
            bytes,
        });
    }

    /// Counters and size.
    pub fn stats(&self) -> Stats {
        Stats {
            hits: self.hits,
            misses: self.misses,
            entries: self.entries.len(),
            bytes: self.bytes,
            cacheable: self.scope.as_ref().is_some_and(|s| s.cacheable),
        }
    }
}

/// What an entry costs beyond its variable parts (the struct, the deque slot, allocations).
const ENTRY_OVERHEAD: usize = 160;

/// Picks candidate entries; equality is always checked on the full key.
fn fingerprint(key: &Key<'_>) -> u64 {
    use core::hash::Hasher as _;
    let mut hasher = siphasher::sip::SipHasher13::new();
    match key.identity {
        Some(digest) => {
            hasher.write_u8(1);
            hasher.write(digest);
        }
        None => hasher.write_u8(0),
    }
    hasher.write_usize(key.body.len());
    hasher.write(key.body);
    if let Some(flag) = key.flag {
        hasher.write_u8(1);
        hasher.write(flag.as_bytes());
    }
    hasher.finish()
}

thread_local! {
    static CACHE: RefCell<AnswerCache> = RefCell::new(AnswerCache::default());
}

/// [`AnswerCache::lookup`] on this isolate's cache. `read` must not use the cache itself.
pub fn lookup<T>(served: &Served<'_>, key: &Key<'_>, read: impl FnOnce(&Answer) -> T) -> Option<T> {
    CACHE.with(|cache| cache.borrow_mut().lookup(served, key, read))
}

/// [`AnswerCache::store`] on this isolate's cache.
pub fn store(served: &Served<'_>, key: &Key<'_>, answer: Answer) {
    CACHE.with(|cache| cache.borrow_mut().store(served, key, answer))
}

/// This isolate's cache counters, for the health endpoint.
pub fn stats() -> Stats {
    CACHE.with(|cache| cache.borrow().stats())
}

#[cfg(test)]
mod tests;
