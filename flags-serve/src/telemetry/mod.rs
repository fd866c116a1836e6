//! Evaluation telemetry: what the edge reports it served, aggregated per environment, flag and
//! variant (with daily counts), persisted, and turned into lints a team acts on: a flag nobody
//! evaluates any more, a flag that serves one variant to everyone. The service's
//! `POST /api/v1/telemetry` feeds it ([`Telemetry::ingest`]); its API and status page read it.
//!
//! Persistence is one JSON file, rewritten atomically (a temporary file renamed over it) after
//! each batch: the aggregate is bounded (flags x variants x [`KEEP_DAYS`] days), so it stays
//! small, and it survives a restart. Bigger deployments read the same counts from `/metrics`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

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

/// Why [`Telemetry::ingest`] did not simply succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// The batch is not acceptable; nothing of it was added.
    Refused(String),
    /// The batch was counted but the file could not be written; the next batch's write
    /// keeps it (lost only if the service stops first).
    NotWritten { counted: u64, error: String },
    /// The ingesting task did not finish (nothing is known of the batch).
    Failed(String),
}

/// The aggregate of every environment, and where it is kept.
#[derive(Debug)]
pub struct Telemetry {
    path: Option<PathBuf>,
    environments: Mutex<BTreeMap<String, EnvStats>>,
    /// Held while the file is written: one writer at a time on its temporary file, each
    /// writing the state as of its turn, so the last write is the latest state.
    writing: Mutex<()>,
}

impl Telemetry {
    /// Kept in memory only (lost on restart).
    pub fn in_memory() -> Telemetry {
        Telemetry {
            path: None,
            environments: Mutex::default(),
            writing: Mutex::default(),
        }
    }

    /// Kept in `path`, loading what is there (a missing file is an empty aggregate; an
    /// unreadable one is an error, so a restart never silently forgets the counts).
    pub fn open(path: &Path) -> Result<Telemetry, String> {
        let environments = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a telemetry file: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(Telemetry {
            path: Some(path.to_owned()),
            environments: Mutex::new(environments),
            writing: Mutex::default(),
        })
    }

    /// Adds a batch received at `now`. Returns the evaluations counted. The batch is checked
    /// whole before anything is added: [`IngestError::Refused`] adds nothing. Once added, a
    /// batch stays counted even if the file cannot be written ([`IngestError::NotWritten`]):
    /// the next write (every batch rewrites the whole aggregate) keeps it, and a sender told
    /// to retry would have it counted twice.
    pub fn ingest(&self, batch: &Batch, now: DateTime<Utc>) -> Result<u64, IngestError> {
        self.add(batch, now).map_err(IngestError::Refused)?;
        let counted = batch
            .counts
            .iter()
            .map(|c| c.count)
            .fold(0u64, u64::saturating_add);
        if let Some(path) = &self.path {
            let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
            let snapshot = self.lock().clone();
            write_atomically(path, &snapshot)
                .map_err(|error| IngestError::NotWritten { counted, error })?;
        }
        Ok(counted)
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

    /// [`Telemetry::ingest`] on tokio's blocking pool: adding counts is quick, but rewriting
    /// the file is blocking I/O that must not hold one of the runtime's few worker threads (the
    /// service's other requests would wait behind a slow disk).
    pub async fn ingest_async(
        self: &Arc<Self>,
        batch: Batch,
        now: DateTime<Utc>,
    ) -> Result<u64, IngestError> {
        let telemetry = self.clone();
        tokio::task::spawn_blocking(move || telemetry.ingest(&batch, now))
            .await
            .map_err(|e| IngestError::Failed(format!("telemetry task failed: {e}")))?
    }

    /// One environment's aggregate (empty if nothing was reported).
    pub fn environment(&self, env: &str) -> EnvStats {
        self.lock().get(env).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, EnvStats>> {
        self.environments.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn write_atomically(path: &Path, environments: &BTreeMap<String, EnvStats>) -> Result<(), String> {
    let bytes = serde_json::to_vec(environments).map_err(|e| e.to_string())?;
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| format!("{}: {e}", path.display()))
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

    #[test]
    fn batches_add_up_per_flag_variant_and_day() {
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
        let prod = telemetry.environment("prod");
        let a = &prod.flags["a"];
        assert_eq!(a.total, 6);
        assert_eq!(a.variants["on"], 5);
        assert_eq!(a.variants[NO_VARIANT], 1);
        assert_eq!(a.days.len(), 2);
        assert_eq!((a.first_seen, a.last_seen), (Some(at(0)), Some(at(1))));
        assert_eq!((prod.batches, prod.dropped), (2, 4));
        assert_eq!(telemetry.environment("dev"), EnvStats::default());
    }

    #[test]
    fn lints_name_unevaluated_and_single_variant_flags() {
        let telemetry = Telemetry::in_memory();
        for day in 0..40 {
            let mut counts = vec![("always-on", Some("on"), 10)];
            if day < 5 {
                counts.push(("gone", Some("on"), 1));
            }
            counts.push(("split", Some(if day % 2 == 0 { "a" } else { "b" }), 4));
            telemetry.ingest(&batch(&counts), at(day)).unwrap();
        }
        let stats = telemetry.environment("prod");
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

    #[test]
    fn a_batch_the_file_cannot_take_stays_counted_and_the_next_write_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-yet");
        let path = missing.join("telemetry.json");
        let telemetry = Telemetry::open(&path).unwrap();
        let first = telemetry.ingest(&batch(&[("a", Some("on"), 3)]), at(0));
        assert!(
            matches!(&first, Err(IngestError::NotWritten { counted: 3, error }) if error.contains("not-yet")),
            "{first:?}"
        );
        assert_eq!(telemetry.environment("prod").flags["a"].total, 3);
        std::fs::create_dir(&missing).unwrap();
        assert_eq!(
            telemetry.ingest(&batch(&[("a", Some("on"), 2)]), at(0)),
            Ok(2)
        );
        // Counted once each: 3 + 2, not 3 + 3 + 2 as a retried batch would be.
        let reopened = Telemetry::open(&path).unwrap();
        assert_eq!(reopened.environment("prod").flags["a"].total, 5);
    }

    #[test]
    fn the_aggregate_survives_a_restart_and_bad_batches_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("telemetry.json");
        let telemetry = Arc::new(Telemetry::open(&path).unwrap());
        // As the service ingests: the write on the blocking pool, the file there when it answers.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let counted =
            runtime.block_on(telemetry.ingest_async(batch(&[("a", Some("on"), 3)]), at(0)));
        assert_eq!(counted, Ok(3));
        assert_eq!(
            Telemetry::open(&path).unwrap().environment("prod").flags["a"].total,
            3
        );
        let too_long = "x".repeat(300);
        let refused =
            telemetry.ingest(&batch(&[("b", Some("on"), 1), (&too_long, None, 1)]), at(0));
        assert!(matches!(refused, Err(IngestError::Refused(_))));
        drop(telemetry);
        let reopened = Telemetry::open(&path).unwrap();
        let prod = reopened.environment("prod");
        assert_eq!(prod.flags["a"].total, 3);
        assert!(
            !prod.flags.contains_key("b"),
            "a refused batch adds nothing"
        );
        std::fs::write(&path, b"{not json").unwrap();
        assert!(
            Telemetry::open(&path)
                .unwrap_err()
                .contains("not a telemetry file")
        );
    }
}
