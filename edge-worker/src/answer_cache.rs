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
//! Bounded like [`crate::verified_tokens`]: at most [`MAX_ENTRIES`] answers and [`MAX_BYTES`]
//! bytes, oldest evicted first; an answer over [`MAX_ENTRY_BYTES`] is not kept.

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
mod tests {
    use super::*;
    use crate::identity::sign_hs256;
    use crate::loader::CanarySplit;
    use crate::ofrep::{EvalRequest, handle};
    use serde_json::{Value, json};
    use shared_eval::logic::{Expr, LogicOp};
    use shared_eval::{Blob, Body, Header};

    const SECRET: &str = "answer-cache-secret";
    const NOW_MS: i64 = 1_800_000_000_000;
    const NOW_S: i64 = NOW_MS / 1000;

    fn snapshot(flags: Value) -> Snapshot {
        let order: Vec<usize> = (0..flags.as_array().map_or(0, Vec::len)).collect();
        let body: Body = serde_json::from_value(
            json!({"attrs": [["targetingKey"]], "flags": flags, "eval_order": order}),
        )
        .expect("body");
        let header = Header {
            environment: "prod".into(),
            version: 1,
            previous: None,
            content_hash: String::new(),
            author: "t".into(),
            source_commit: None,
            created_at: "2026-12-04T00:00:00Z".into(),
        };
        Snapshot::from_json(&serde_json::to_vec(&Blob::new(header, body)).unwrap()).unwrap()
    }

    /// On for `alice`, off for everyone else; `killed` forces off.
    fn alice_flag(key: &str, killed: bool) -> Value {
        json!({"key": key, "kind": "release", "value_type": "boolean",
            "variants": [{"name": "on", "value": true}, {"name": "off", "value": false}],
            "default_variant": 1, "off_variant": 1, "enabled": true, "killed": killed,
            "unsigned_attrs": [0],
            "targeting": {"rules": {"rules": [{"id": "alice",
                "condition": {"test": {"attr": 0, "op": {"equals": "alice"}}},
                "serve": {"variant": 0}}], "fallthrough": {"variant": 1}}}})
    }

    fn blob(killed: bool) -> Snapshot {
        snapshot(json!([alice_flag("a", killed), alice_flag("b", false)]))
    }

    fn served(snapshot: &Snapshot, version: u64) -> Served<'_> {
        Served {
            snapshot,
            version,
            canary: None,
            event_streams: false,
        }
    }

    fn token(sub: &str, exp_s: i64) -> String {
        let claims = json!({"sub": sub, "exp": exp_s});
        sign_hs256(claims.as_object().unwrap(), SECRET.as_bytes())
    }

    struct Ask<'a> {
        key: Option<&'a str>,
        body: &'a str,
        bearer: Option<String>,
        if_none_match: Option<&'a str>,
        secret: &'a str,
        now_ms: i64,
    }

    impl Default for Ask<'_> {
        fn default() -> Self {
            Ask {
                key: None,
                body: "",
                bearer: None,
                if_none_match: None,
                secret: SECRET,
                now_ms: NOW_MS,
            }
        }
    }

    fn ask(served: Served<'_>, ask: &Ask<'_>) -> crate::http::Reply {
        let authorization = ask.bearer.as_ref().map(|t| format!("Bearer {t}"));
        handle(
            &EvalRequest {
                key: ask.key,
                body: ask.body.as_bytes(),
                authorization: authorization.as_deref(),
                cookie: None,
                if_none_match: ask.if_none_match,
                environment: "prod",
            },
            Some(served),
            Some(ask.secret),
            ask.now_ms,
        )
    }

    fn value_of(reply: &crate::http::Reply, flag: &str) -> Value {
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        match body.get("flags") {
            Some(flags) => flags
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["key"] == flag)
                .map(|f| f["value"].clone())
                .unwrap(),
            None => body["value"].clone(),
        }
    }

    fn hits() -> u64 {
        stats().hits
    }

    #[test]
    fn a_repeated_question_is_answered_from_the_cache_with_the_same_bytes() {
        let snap = blob(false);
        let alice = Ask {
            bearer: Some(token("alice", NOW_S + 60)),
            ..Ask::default()
        };
        let first = ask(served(&snap, 1), &alice);
        assert_eq!((first.status, hits()), (200, 0));
        let again = ask(served(&snap, 1), &alice);
        assert_eq!(hits(), 1, "the second request is a hit");
        assert_eq!(again, first, "status, headers and body identical");
        assert_eq!(value_of(&again, "a"), json!(true));

        let single = Ask {
            key: Some("a"),
            ..alice
        };
        let one = ask(served(&snap, 1), &single);
        assert_eq!(ask(served(&snap, 1), &single), one);
        assert_eq!(value_of(&one, "a"), json!(true));
        assert_eq!(one.header("Cache-Control"), Some("private, no-store"));
        assert_eq!(hits(), 2);
    }

    #[test]
    fn another_identity_body_or_flag_is_never_given_a_cached_answer() {
        let snap = blob(false);
        let alice = Ask {
            bearer: Some(token("alice", NOW_S + 60)),
            ..Ask::default()
        };
        assert_eq!(value_of(&ask(served(&snap, 1), &alice), "a"), json!(true));
        let bob = Ask {
            bearer: Some(token("bob", NOW_S + 60)),
            ..Ask::default()
        };
        assert_eq!(value_of(&ask(served(&snap, 1), &bob), "a"), json!(false));
        // Anonymous callers differ only by their body's targeting key.
        let anonymous = |who: &'static str| Ask {
            body: match who {
                "alice" => r#"{"context":{"targetingKey":"alice"}}"#,
                _ => r#"{"context":{"targetingKey":"bob"}}"#,
            },
            ..Ask::default()
        };
        assert_eq!(
            value_of(&ask(served(&snap, 1), &anonymous("alice")), "a"),
            json!(true)
        );
        assert_eq!(
            value_of(&ask(served(&snap, 1), &anonymous("bob")), "a"),
            json!(false)
        );
        // Single-flag answers are per flag.
        let single = |key| Ask {
            key: Some(key),
            bearer: Some(token("alice", NOW_S + 60)),
            ..Ask::default()
        };
        let a = ask(served(&snap, 1), &single("a"));
        let missing = ask(served(&snap, 1), &single("missing"));
        assert_eq!(
            (a.status, missing.status),
            (200, 404),
            "{:?}",
            String::from_utf8_lossy(&missing.body)
        );
        assert_eq!(hits(), 0, "no question was asked twice");
    }

    #[test]
    fn an_expired_or_no_longer_verifiable_token_is_refused_though_its_answer_is_cached() {
        let snap = blob(false);
        let alice = Ask {
            bearer: Some(token("alice", NOW_S + 60)),
            ..Ask::default()
        };
        assert_eq!(ask(served(&snap, 1), &alice).status, 200);
        assert_eq!(ask(served(&snap, 1), &alice).status, 200);
        assert_eq!(hits(), 1);
        // Its `exp` passes: refused, although the answer is still held.
        let later = Ask {
            now_ms: NOW_MS + 60_000,
            ..alice
        };
        let refused = ask(served(&snap, 1), &later);
        assert_eq!(refused.status, 401);
        let body: Value = serde_json::from_slice(&refused.body).unwrap();
        assert_eq!(body["errorDetails"], "identity token has expired");
        assert_eq!(stats().entries, 1, "refused in front of a held answer");
        // The secret rotated (the token is revoked): refused too.
        let rotated = Ask {
            secret: "rotated-secret",
            bearer: Some(token("alice", NOW_S + 60)),
            ..Ask::default()
        };
        assert_eq!(ask(served(&snap, 1), &rotated).status, 401);
        // A tampered token never matches the cached one's entry or verifies.
        let tampered = Ask {
            bearer: Some(format!("{}x", token("alice", NOW_S + 60))),
            ..Ask::default()
        };
        assert_eq!(ask(served(&snap, 1), &tampered).status, 401);
    }

    #[test]
    fn a_new_blob_or_version_never_serves_an_old_answer() {
        let (live, killed) = (blob(false), blob(true));
        let alice = Ask {
            bearer: Some(token("alice", NOW_S + 60)),
            ..Ask::default()
        };
        assert_eq!(value_of(&ask(served(&live, 1), &alice), "a"), json!(true));
        assert_eq!(value_of(&ask(served(&live, 1), &alice), "a"), json!(true));
        // `publisher kill`: a new blob (and version), answered at once.
        let after_kill = ask(served(&killed, 2), &alice);
        assert_eq!(value_of(&after_kill, "a"), json!(false));
        assert_eq!(after_kill.header("X-Flags-Version"), Some("2"));
        // A rollback to the first blob under a new version: its answers say so.
        let rolled_back = ask(served(&live, 3), &alice);
        assert_eq!(value_of(&rolled_back, "a"), json!(true));
        assert_eq!(rolled_back.header("X-Flags-Version"), Some("3"));
        let metadata: Value = serde_json::from_slice(&rolled_back.body).unwrap();
        assert_eq!(metadata["metadata"]["version"], 3);
        assert_eq!(hits(), 1, "only the repeat under version 1 was a hit");
    }

    #[test]
    fn a_canary_share_change_recomputes_who_gets_which_track() {
        let (stable, canary) = (blob(false), blob(true));
        let split = |buckets| CanarySplit {
            buckets,
            salt: "canary-prod-2".into(),
            since: 2,
        };
        let (none, all) = (split(0), split(shared_eval::BUCKETS));
        let with = |split| Served {
            snapshot: &stable,
            version: 2,
            canary: Some((&canary, split)),
            event_streams: false,
        };
        let alice = Ask {
            bearer: Some(token("alice", NOW_S + 60)),
            ..Ask::default()
        };
        let first = ask(with(&none), &alice);
        assert_eq!(first.header("X-Flags-Track"), Some("stable"));
        let widened = ask(with(&all), &alice);
        assert_eq!(widened.header("X-Flags-Track"), Some("canary"));
        assert_eq!(value_of(&widened, "a"), json!(false));
        // Cached on the canary track, counted and answered from it.
        assert_eq!(ask(with(&all), &alice), widened);
        assert_eq!(hits(), 1);
    }

    #[test]
    fn answers_that_read_the_clock_are_never_cached() {
        // flagd's `$flagd.timestamp > NOW_S`: off now, on a second later.
        let later = Expr::Op(LogicOp::Gt, vec![Expr::Timestamp, Expr::Lit(json!(NOW_S))]);
        let on_later = Expr::Op(
            LogicOp::If,
            vec![later, Expr::Lit(json!("on")), Expr::Lit(json!("off"))],
        );
        let flag = json!({"key": "timed", "kind": "release", "value_type": "boolean",
            "variants": [{"name": "on", "value": true}, {"name": "off", "value": false}],
            "default_variant": 1, "enabled": true,
            "targeting": {"logic": serde_json::to_value(&on_later).unwrap()}});
        let snap = snapshot(json!([flag]));
        assert!(snap.reads_time());
        let now = Ask::default();
        assert_eq!(
            value_of(&ask(served(&snap, 1), &now), "timed"),
            json!(false)
        );
        let second_later = Ask {
            now_ms: NOW_MS + 1_000,
            ..Ask::default()
        };
        assert_eq!(
            value_of(&ask(served(&snap, 1), &second_later), "timed"),
            json!(true)
        );
        assert_eq!((stats().entries, stats().cacheable), (0, false));
    }

    #[test]
    fn a_cached_bulk_answer_revalidates_to_304_and_telemetry_counts_every_answer() {
        let snap = blob(false);
        let alice = Ask {
            bearer: Some(token("alice", NOW_S + 60)),
            ..Ask::default()
        };
        let first = ask(served(&snap, 1), &alice);
        let etag = first.header("ETag").unwrap().to_owned();
        let revalidated = ask(
            served(&snap, 1),
            &Ask {
                if_none_match: Some(&etag),
                ..alice
            },
        );
        assert_eq!(revalidated.status, 304);
        assert!(revalidated.body.is_empty());
        assert_eq!(revalidated.header("ETag"), Some(etag.as_str()));
        let single = Ask {
            key: Some("b"),
            bearer: Some(token("alice", NOW_S + 60)),
            ..Ask::default()
        };
        ask(served(&snap, 1), &single);
        ask(served(&snap, 1), &single);
        assert_eq!(hits(), 2);
        let batch = crate::telemetry::with_tally(|t| t.take(1));
        assert_eq!(
            batch.counts,
            vec![
                ("a".into(), Some("on".into()), 2),
                ("b".into(), Some("on".into()), 4),
            ],
            "two bulk answers (one cached) and two single ones (one cached)"
        );
    }

    fn answer(bytes: usize) -> Answer {
        Answer {
            status: 200,
            body: vec![b'x'; bytes],
            etag: None,
            track: Track::Stable,
            served: Variants::All(Vec::new()),
        }
    }

    #[test]
    fn the_cache_stays_within_its_entries_and_bytes_oldest_out_first() {
        let snap = blob(false);
        let scope = served(&snap, 1);
        let bodies: Vec<String> = (0..6).map(|i| format!("{{\"n\":{i}}}")).collect();
        let key = |i: usize| Key {
            identity: None,
            body: bodies[i].as_bytes(),
            flag: None,
        };
        let held = |cache: &mut AnswerCache| -> Vec<usize> {
            (0..6)
                .filter(|&i| cache.lookup(&scope, &key(i), |_| ()).is_some())
                .collect()
        };
        let mut by_count = AnswerCache::with_limits(3, MAX_BYTES);
        for i in 0..5 {
            by_count.store(&scope, &key(i), answer(10));
        }
        assert_eq!(held(&mut by_count), vec![2, 3, 4]);
        assert_eq!(by_count.stats().entries, 3);

        let entry = ENTRY_OVERHEAD + 7 + 1_000;
        let mut by_bytes = AnswerCache::with_limits(100, entry * 2 + 10);
        for i in 0..4 {
            by_bytes.store(&scope, &key(i), answer(1_000));
        }
        assert_eq!(held(&mut by_bytes), vec![2, 3]);
        assert!(by_bytes.stats().bytes <= entry * 2 + 10);
        // Too large for any cache of this size: not kept, nothing evicted for it.
        by_bytes.store(&scope, &key(5), answer(MAX_ENTRY_BYTES));
        assert_eq!(held(&mut by_bytes), vec![2, 3]);
        // Storing the same question again replaces it rather than holding it twice.
        by_bytes.store(&scope, &key(3), answer(1_000));
        assert_eq!(by_bytes.stats().entries, 2);
    }
}
