//! Evaluation telemetry: what the edge reports it served, aggregated per environment, flag and
//! variant (with daily counts), persisted, and turned into lints a team acts on: a flag nobody
//! evaluates any more, a flag that serves one variant to everyone. The service's
//! `POST /api/v1/telemetry` feeds it ([`Telemetry::ingest`]); its API and status page read it.
//!
//! Persistence is in the store, one object per replica of the service:
//! `_telemetry/<replica>.json`, where `<replica>` is a random id each process takes when it
//! starts. Only that replica writes it (still with conditional writes), with its whole
//! aggregate, at most every [`FLUSH_EVERY`] and on shutdown ([`Telemetry::flush`]), never once
//! per batch. Reading merges every replica's object with this one's live counts
//! ([`merge`]: counts add up, first times take the earliest, last times the latest), caching
//! the others' for [`CACHE_FOR`]: two replicas behind one load balancer show the same sums. A
//! restart starts a new object and the old one keeps counting in the merge, so the aggregate
//! survives restarts (one small object per process ever started: the aggregate is bounded,
//! flags x variants x [`KEEP_DAYS`] days). The old `telemetry_file` is imported once at
//! startup ([`Telemetry::import_file`]). Bigger deployments read the same counts from `/metrics`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use flags_store::store::{ObjectStore, PutOptions, StoreError};

/// Daily counts older than this are forgotten.
pub const KEEP_DAYS: i64 = 120;
/// The default of "N days" in the lints.
pub const DEFAULT_STALE_DAYS: i64 = 30;
/// Counts one batch may carry.
pub const MAX_BATCH_COUNTS: usize = 50_000;
/// Flags tracked per environment (beyond it a batch's new flags are refused).
pub const MAX_FLAGS: usize = 20_000;

/// What a worker isolate sends (`edge-worker/src/telemetry.rs`, `Batch::to_json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The environment the isolate serves.
    pub environment: String,
    /// The window the counts cover (the isolate's clock).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// `(flag, variant, count)`; a null variant is an answer without one (the caller's default).
    pub counts: Vec<Count>,
    /// Evaluations the isolate could not count, so far (bounded memory, lost batches).
    #[serde(default)]
    pub dropped: u64,
}

/// One line of a batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Count {
    pub flag: String,
    pub variant: Option<String>,
    pub count: u64,
}

/// The name a null variant is stored under.
pub const NO_VARIANT: &str = "(default)";

/// One flag's aggregate.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FlagStats {
    /// Evaluations ever counted.
    pub total: u64,
    /// Per variant, ever.
    pub variants: BTreeMap<String, u64>,
    /// When first and last reported.
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// Per day (UTC), per variant, for the last [`KEEP_DAYS`] days.
    pub days: BTreeMap<NaiveDate, BTreeMap<String, u64>>,
}

/// One environment's aggregate.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EnvStats {
    /// When the first batch arrived: "never evaluated" only means something after N days of it.
    pub first_report: Option<DateTime<Utc>>,
    /// The last batch.
    pub last_report: Option<DateTime<Utc>>,
    /// Batches received.
    pub batches: u64,
    /// Evaluations the edge reported it could not count.
    pub dropped: u64,
    pub flags: BTreeMap<String, FlagStats>,
}

/// A lint from telemetry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Lint {
    pub flag: String,
    /// `not-evaluated` or `single-variant`.
    pub kind: &'static str,
    pub message: String,
}

/// Why [`Telemetry::ingest`] did not count a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// The batch is not acceptable; nothing of it was added.
    Refused(String),
}

/// How often a replica writes its aggregate to the store (when it changed).
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a replica reuses the other replicas' aggregates it read.
pub const CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(5);

const PREFIX: &str = "_telemetry/";

const OPTIONS: PutOptions = PutOptions {
    content_type: "application/json",
    content_encoding: None,
    cache_control: "no-store",
};

/// One replica's object in the store.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ReplicaAggregate {
    replica: String,
    updated_at: Option<DateTime<Utc>>,
    environments: BTreeMap<String, EnvStats>,
}

/// The aggregate of every environment: this replica's counts (in memory, written to its own
/// object in the store at most every [`FLUSH_EVERY`]) merged with every other replica's.
#[derive(Debug)]
pub struct Telemetry {
    /// Where the replicas' aggregates are; `None`: this one's in memory only.
    store: Option<Arc<dyn ObjectStore>>,
    /// This replica: its object is `_telemetry/<replica>.json`.
    replica: String,
    /// What this replica counted (since it started, plus an imported file).
    mine: Mutex<BTreeMap<String, EnvStats>>,
    /// Counted since the last write.
    dirty: AtomicBool,
    /// The last write failed.
    unwritten: AtomicBool,
    /// Held while writing: the ETag of this replica's object as last written.
    writing: tokio::sync::Mutex<Option<String>>,
    /// The other replicas' aggregates, merged, and when they were read.
    others: tokio::sync::Mutex<Option<(Instant, BTreeMap<String, EnvStats>)>>,
}

impl Telemetry {
    /// Kept in memory only (lost on restart; no other replica sees it).
    pub fn in_memory() -> Telemetry {
        Telemetry::new(None, "memory")
    }

    /// Kept in `store`, as replica `replica`'s object, merged with every other replica's.
    pub fn in_store(store: Arc<dyn ObjectStore>, replica: &str) -> Telemetry {
        Telemetry::new(Some(store), replica)
    }

    fn new(store: Option<Arc<dyn ObjectStore>>, replica: &str) -> Telemetry {
        Telemetry {
            store,
            replica: replica.to_owned(),
            mine: Mutex::default(),
            dirty: AtomicBool::new(false),
            unwritten: AtomicBool::new(false),
            writing: tokio::sync::Mutex::default(),
            others: tokio::sync::Mutex::default(),
        }
    }

    fn key(&self) -> String {
        format!("{PREFIX}{}.json", self.replica)
    }

    /// Adds an old `telemetry_file`'s aggregate to this replica's counts (a missing file adds
    /// nothing; an unreadable one is an error, so a start never silently forgets the counts).
    /// The caller writes them ([`Telemetry::flush`]) before renaming the file away.
    pub fn import_file(&self, path: &Path) -> Result<bool, String> {
        let environments: BTreeMap<String, EnvStats> = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a telemetry file: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        merge_all(&mut self.lock(), &environments);
        self.dirty.store(true, Ordering::SeqCst);
        Ok(true)
    }

    /// Adds a batch received at `now`. Returns the evaluations counted. The batch is checked
    /// whole before anything is added: [`IngestError::Refused`] adds nothing. Counted batches
    /// reach the store with the next [`Telemetry::flush`] (every [`FLUSH_EVERY`], and on
    /// shutdown), not one write per batch.
    pub fn ingest(&self, batch: &Batch, now: DateTime<Utc>) -> Result<u64, IngestError> {
        self.add(batch, now).map_err(IngestError::Refused)?;
        self.dirty.store(true, Ordering::SeqCst);
        Ok(batch
            .counts
            .iter()
            .map(|c| c.count)
            .fold(0u64, u64::saturating_add))
    }

    /// False when this replica's last write to the store failed (its counts are kept in
    /// memory and the next write retries).
    pub fn persisted(&self) -> bool {
        !self.unwritten.load(Ordering::SeqCst)
    }

    /// Writes this replica's aggregate to its object if it changed since the last write
    /// (a conditional write: only this replica writes its object).
    pub async fn flush(&self) -> Result<(), String> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let mut etag = self.writing.lock().await;
        if !self.dirty.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let object = ReplicaAggregate {
            replica: self.replica.clone(),
            updated_at: Some(Utc::now()),
            environments: self.lock().clone(),
        };
        let bytes = serde_json::to_vec(&object).map_err(|e| e.to_string())?;
        let key = self.key();
        let written = match etag.as_deref() {
            None => store.put_if_absent(&key, bytes, OPTIONS).await,
            Some(tag) => store.put_if_match(&key, bytes, tag, OPTIONS).await,
        };
        let written = match written {
            Ok(()) => store.head(&key).await.map(|meta| meta.map(|m| m.etag)),
            Err(e) => Err(e),
        };
        match written {
            Ok(tag) => {
                *etag = tag;
                self.unwritten.store(false, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                if matches!(e, StoreError::PreconditionFailed { .. }) {
                    // Not as last written (a write whose answer was lost): take its ETag, the
                    // next write replaces it with the whole aggregate again.
                    *etag = store.head(&key).await.ok().flatten().map(|m| m.etag);
                }
                self.dirty.store(true, Ordering::SeqCst);
                self.unwritten.store(true, Ordering::SeqCst);
                Err(e.to_string())
            }
        }
    }

    fn add(&self, batch: &Batch, now: DateTime<Utc>) -> Result<(), String> {
        if batch.counts.len() > MAX_BATCH_COUNTS {
            return Err(format!(
                "a batch carries at most {MAX_BATCH_COUNTS} counts, this one {}",
                batch.counts.len()
            ));
        }
        if let Some(bad) = batch
            .counts
            .iter()
            .find(|c| c.flag.is_empty() || c.flag.len() > 256)
        {
            return Err(format!("flag key {:?} is empty or too long", bad.flag));
        }
        let day = now.date_naive();
        let mut environments = self.lock();
        let env = environments.entry(batch.environment.clone()).or_default();
        let new_flags = batch
            .counts
            .iter()
            .filter(|c| !env.flags.contains_key(&c.flag))
            .count();
        if env.flags.len() + new_flags > MAX_FLAGS {
            return Err(format!(
                "more than {MAX_FLAGS} flags in {}",
                batch.environment
            ));
        }
        env.first_report.get_or_insert(now);
        env.last_report = Some(now);
        env.batches += 1;
        env.dropped = env.dropped.saturating_add(batch.dropped);
        for count in batch.counts.iter().filter(|c| c.count > 0) {
            let variant = count.variant.as_deref().unwrap_or(NO_VARIANT).to_owned();
            let flag = env.flags.entry(count.flag.clone()).or_default();
            flag.total = flag.total.saturating_add(count.count);
            *flag.variants.entry(variant.clone()).or_default() += count.count;
            *flag
                .days
                .entry(day)
                .or_default()
                .entry(variant)
                .or_default() += count.count;
            flag.first_seen.get_or_insert(now);
            flag.last_seen = Some(now);
            let oldest = day - Duration::days(KEEP_DAYS);
            flag.days.retain(|d, _| *d >= oldest);
        }
        Ok(())
    }

    /// One environment's aggregate over every replica (empty if nothing was reported): this
    /// replica's counts as they are now plus the others' as last written (read at most every
    /// [`CACHE_FOR`]).
    pub async fn environment(&self, env: &str) -> EnvStats {
        let mut stats = self.lock().get(env).cloned().unwrap_or_default();
        if self.store.is_some() {
            let others = self.others().await;
            if let Some(other) = others.get(env) {
                merge(&mut stats, other);
            }
        }
        stats
    }

    /// The other replicas' aggregates, merged: as read less than [`CACHE_FOR`] ago, else read
    /// again (and if the store cannot be read, as read last).
    async fn others(&self) -> BTreeMap<String, EnvStats> {
        let mut cache = self.others.lock().await;
        if let Some((read, others)) = cache.as_ref()
            && read.elapsed() < CACHE_FOR
        {
            return others.clone();
        }
        match self.read_others().await {
            Ok(others) => {
                *cache = Some((Instant::now(), others.clone()));
                others
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the other replicas' telemetry");
                cache.as_ref().map(|(_, o)| o.clone()).unwrap_or_default()
            }
        }
    }

    async fn read_others(&self) -> Result<BTreeMap<String, EnvStats>, String> {
        let Some(store) = &self.store else {
            return Ok(BTreeMap::new());
        };
        let mine = self.key();
        let mut merged = BTreeMap::new();
        for key in store.list(PREFIX).await.map_err(|e| e.to_string())? {
            if key == mine || !key.ends_with(".json") {
                continue;
            }
            let Some(object) = store.get(&key).await.map_err(|e| e.to_string())? else {
                continue;
            };
            match serde_json::from_slice::<ReplicaAggregate>(&object.bytes) {
                Ok(other) => merge_all(&mut merged, &other.environments),
                Err(e) => tracing::warn!(%key, error = %e, "unreadable replica telemetry skipped"),
            }
        }
        Ok(merged)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, EnvStats>> {
        self.mine.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Adds every environment of `from` to `into`.
fn merge_all(into: &mut BTreeMap<String, EnvStats>, from: &BTreeMap<String, EnvStats>) {
    for (env, stats) in from {
        merge(into.entry(env.clone()).or_default(), stats);
    }
}

fn earliest<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    a.into_iter().chain(b).min()
}

fn latest<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    a.into_iter().chain(b).max()
}

/// Adds `from` (another replica's counts) to `into`: counts add up (totals, variants, days,
/// batches, dropped), first times take the earliest and last times the latest.
pub fn merge(into: &mut EnvStats, from: &EnvStats) {
    into.first_report = earliest(into.first_report, from.first_report);
    into.last_report = latest(into.last_report, from.last_report);
    into.batches = into.batches.saturating_add(from.batches);
    into.dropped = into.dropped.saturating_add(from.dropped);
    for (key, other) in &from.flags {
        let flag = into.flags.entry(key.clone()).or_default();
        flag.total = flag.total.saturating_add(other.total);
        for (variant, n) in &other.variants {
            let count = flag.variants.entry(variant.clone()).or_default();
            *count = count.saturating_add(*n);
        }
        flag.first_seen = earliest(flag.first_seen, other.first_seen);
        flag.last_seen = latest(flag.last_seen, other.last_seen);
        for (day, variants) in &other.days {
            let counts = flag.days.entry(*day).or_default();
            for (variant, n) in variants {
                let count = counts.entry(variant.clone()).or_default();
                *count = count.saturating_add(*n);
            }
        }
    }
}

/// The lints for the flags `deployed` in an environment with aggregate `stats`, as of `now`:
/// - `not-evaluated`: last evaluated `days` or more ago, or never while telemetry has been
///   arriving for `days`;
/// - `single-variant`: every evaluation of the last `days` days served one variant, and the
///   flag has been reported for at least that long.
pub fn lints<'a>(
    stats: &EnvStats,
    deployed: impl IntoIterator<Item = &'a str>,
    now: DateTime<Utc>,
    days: i64,
) -> Vec<Lint> {
    let window = Duration::days(days);
    let mut lints = Vec::new();
    for key in deployed {
        let flag = stats.flags.get(key);
        match flag.and_then(|f| f.last_seen) {
            Some(last) if now - last >= window => lints.push(Lint {
                flag: key.to_owned(),
                kind: "not-evaluated",
                message: format!(
                    "not evaluated in {} days (last on {})",
                    (now - last).num_days(),
                    last.date_naive()
                ),
            }),
            None if stats
                .first_report
                .is_some_and(|first| now - first >= window) =>
            {
                lints.push(Lint {
                    flag: key.to_owned(),
                    kind: "not-evaluated",
                    message: format!(
                        "never evaluated in the {} days telemetry has been arriving",
                        stats
                            .first_report
                            .map_or(0, |first| (now - first).num_days())
                    ),
                })
            }
            _ => {}
        }
        let Some(flag) = flag else { continue };
        if flag.first_seen.is_none_or(|first| now - first < window) {
            continue;
        }
        let since = (now - window).date_naive();
        let mut served = flag
            .days
            .range(since..)
            .flat_map(|(_, variants)| variants.iter().filter(|(_, n)| **n > 0).map(|(v, _)| v));
        let Some(only) = served.next() else { continue };
        if served.all(|v| v == only) {
            lints.push(Lint {
                flag: key.to_owned(),
                kind: "single-variant",
                message: format!(
                    "served only `{only}` for the last {days} days: remove the flag and keep that behaviour"
                ),
            });
        }
    }
    lints
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000 + day * 86_400, 0).unwrap_or_default()
    }

    fn batch(counts: &[(&str, Option<&str>, u64)]) -> Batch {
        Batch {
            environment: "prod".into(),
            from: None,
            to: None,
            counts: counts
                .iter()
                .map(|(flag, variant, count)| Count {
                    flag: (*flag).into(),
                    variant: variant.map(str::to_owned),
                    count: *count,
                })
                .collect(),
            dropped: 2,
        }
    }

    #[tokio::test]
    async fn batches_add_up_per_flag_variant_and_day() {
        let telemetry = Telemetry::in_memory();
        telemetry
            .ingest(&batch(&[("a", Some("on"), 3), ("a", None, 1)]), at(0))
            .unwrap();
        telemetry
            .ingest(
                &batch(&[("a", Some("on"), 2), ("b", Some("off"), 5)]),
                at(1),
            )
            .unwrap();
        let prod = telemetry.environment("prod").await;
        let a = &prod.flags["a"];
        assert_eq!(a.total, 6);
        assert_eq!(a.variants["on"], 5);
        assert_eq!(a.variants[NO_VARIANT], 1);
        assert_eq!(a.days.len(), 2);
        assert_eq!((a.first_seen, a.last_seen), (Some(at(0)), Some(at(1))));
        assert_eq!((prod.batches, prod.dropped), (2, 4));
        assert_eq!(telemetry.environment("dev").await, EnvStats::default());
    }

    #[tokio::test]
    async fn lints_name_unevaluated_and_single_variant_flags() {
        let telemetry = Telemetry::in_memory();
        for day in 0..40 {
            let mut counts = vec![("always-on", Some("on"), 10)];
            if day < 5 {
                counts.push(("gone", Some("on"), 1));
            }
            counts.push(("split", Some(if day % 2 == 0 { "a" } else { "b" }), 4));
            telemetry.ingest(&batch(&counts), at(day)).unwrap();
        }
        let stats = telemetry.environment("prod").await;
        let deployed = ["always-on", "gone", "never", "split"];
        let mut found: Vec<(String, &str)> = lints(&stats, deployed, at(40), 30)
            .into_iter()
            .map(|l| (l.flag, l.kind))
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                ("always-on".into(), "single-variant"),
                ("gone".into(), "not-evaluated"),
                ("never".into(), "not-evaluated"),
            ]
        );
        // Too early to tell: telemetry has only been arriving for 10 days.
        assert!(
            lints(&stats, deployed, at(10), 30)
                .iter()
                .all(|l| l.flag != "never")
        );
    }

    #[tokio::test]
    async fn replicas_write_their_own_objects_and_read_the_sum() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(flags_store::store::LocalStore::new(
            dir.path().join("store"),
        ));
        let a = Telemetry::in_store(store.clone(), "a");
        let b = Telemetry::in_store(store.clone(), "b");
        a.ingest(&batch(&[("x", Some("on"), 3)]), at(0)).unwrap();
        b.ingest(&batch(&[("x", Some("on"), 2), ("x", None, 1)]), at(1))
            .unwrap();
        assert!(
            store.list(PREFIX).await.unwrap().is_empty(),
            "batched, not per batch"
        );
        a.flush().await.unwrap();
        b.flush().await.unwrap();
        assert_eq!(store.list(PREFIX).await.unwrap().len(), 2);
        for replica in [&a, &b] {
            let x = &replica.environment("prod").await.flags["x"];
            assert_eq!(
                (x.total, x.variants["on"], x.variants[NO_VARIANT]),
                (6, 5, 1)
            );
            assert_eq!((x.first_seen, x.last_seen), (Some(at(0)), Some(at(1))));
            assert_eq!(
                x.days
                    .values()
                    .map(|v| v.values().sum::<u64>())
                    .sum::<u64>(),
                6
            );
        }
        assert_eq!(a.environment("prod").await.batches, 2);
        // A second write replaces the replica's own object (conditionally), a restart (a new
        // replica) keeps counting the old object.
        a.ingest(&batch(&[("x", Some("on"), 4)]), at(1)).unwrap();
        a.flush().await.unwrap();
        drop(a);
        let restarted = Telemetry::in_store(store.clone(), "c");
        assert_eq!(restarted.environment("prod").await.flags["x"].total, 10);
        let refused = restarted.ingest(
            &batch(&[("y", Some("on"), 1), (&"z".repeat(300), None, 1)]),
            at(0),
        );
        assert!(matches!(refused, Err(IngestError::Refused(_))));
        assert!(!restarted.environment("prod").await.flags.contains_key("y"));
    }

    #[tokio::test]
    async fn an_old_telemetry_file_is_imported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("telemetry.json");
        let old = Telemetry::in_memory();
        old.ingest(&batch(&[("a", Some("on"), 3)]), at(0)).unwrap();
        std::fs::write(&path, serde_json::to_vec(&*old.lock()).unwrap()).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(flags_store::store::LocalStore::new(
            dir.path().join("store"),
        ));
        let telemetry = Telemetry::in_store(store.clone(), "a");
        assert_eq!(telemetry.import_file(&path), Ok(true));
        telemetry.flush().await.unwrap();
        let other = Telemetry::in_store(store, "b");
        assert_eq!(other.environment("prod").await.flags["a"].total, 3);
        assert_eq!(
            telemetry.import_file(&dir.path().join("none.json")),
            Ok(false)
        );
        std::fs::write(&path, b"{not json").unwrap();
        assert!(
            telemetry
                .import_file(&path)
                .unwrap_err()
                .contains("not a telemetry file")
        );
    }
}
