//! The sans-I/O core of the in-process SDKs: every language shell (the Rust crate `flags-sdk`
//! now; Node over Wasm and Python over PyO3 next) is a thin transport and clock around it.
//!
//! Contents:
//! - [`Core`]: the one object a shell holds. Its read side serves evaluations from the current
//!   snapshot ([`Current`], swapped atomically with `arc-swap`, so evaluating threads never
//!   lock); its write side is the sync [`Machine`] ([`sync`]), driven by the shell with
//!   [`Core::next`] and the responses it gets ([`Core::on_pointer`], [`Core::on_blob`]), the
//!   change stream ([`Core::on_signal`], [`Core::on_stream`]) and the time, always an argument.
//! - [`PreparedContext`]: a context resolved once against the current snapshot (its side,
//!   stable or canary, picked as the edge picks it, and its attributes looked up once), then
//!   evaluated by key ([`Core::evaluate`]) or by a [`FlagId`] ([`Core::evaluate_id`]): the hot
//!   path passes integers, not JSON, across a language boundary.
//! - [`Status`]: READY / STALE / ERROR / FATAL (and NOT_READY before anything loaded), and
//!   [`Update`]: each swap's version, the keys of flags that changed, and what to persist.
//! - Evaluation counts per flag and variant, as the service's telemetry ingest takes them
//!   ([`Core::take_telemetry`], `POST /api/v1/telemetry`).
//! - [`blob`]: the checks a fetched blob passes before it is served.
//!
//! **Invariants:** no I/O and no clock (time is an argument; the jitter's randomness is seeded
//! by the shell); nothing a source sends can replace a good snapshot with a bad one (a refused
//! pointer or blob keeps the last good one); an evaluation never locks and never panics.

pub mod blob;
mod current;
pub mod sync;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use arc_swap::ArcSwapOption;
use serde_json::{Map, Value, json};
use shared_eval::{Context, Evaluation, Pointer, Resolved, evaluate_resolved_at};

pub use current::{Canary, Current, Side, Track, changed_keys};
pub use sync::{Breaker, Machine, Request, Response, Step, SyncConfig};

use sync::{Outcome, Pending};

/// The SDK's health, as OpenFeature names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing loaded yet, nothing failed yet.
    NotReady,
    /// Serving the latest snapshot the source has.
    Ready,
    /// Serving a snapshot while syncing fails (or one restored from disk, not yet confirmed).
    Stale,
    /// Nothing to serve and syncing fails.
    Error,
    /// Syncing stopped for good (401/403): see [`StatusReport::message`].
    Fatal,
}

impl Status {
    /// `READY`, `STALE`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotReady => "NOT_READY",
            Status::Ready => "READY",
            Status::Stale => "STALE",
            Status::Error => "ERROR",
            Status::Fatal => "FATAL",
        }
    }
}

/// [`Status`] with the version served and why it is not READY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The status.
    pub status: Status,
    /// The pointer version served, if any.
    pub version: Option<u64>,
    /// Why syncing fails or stopped.
    pub message: Option<String>,
    /// Failed syncs in a row.
    pub consecutive_failures: u32,
}

/// What a swap changed, and what the shell should persist so a cold start can serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The new pointer version.
    pub version: u64,
    /// Keys of flags added, removed or changed (sorted).
    pub changed: Vec<String>,
    /// The pointer's bytes, as fetched.
    pub pointer: Vec<u8>,
    /// Blobs loaded by this update: `(sha256, gzipped bytes)`.
    pub new_blobs: Vec<(String, Vec<u8>)>,
    /// Every blob the pointer names (keep these on disk, drop the rest).
    pub named: Vec<String>,
}

/// A flag key registered once ([`Core::flag_id`]): stable across snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlagId(pub u32);

#[derive(Debug, Default)]
struct Registry {
    keys: Vec<String>,
    ids: HashMap<String, u32>,
}

/// The SDK core: current snapshot, sync machine, counts, flag ids.
#[derive(Debug)]
pub struct Core {
    environment: String,
    current: ArcSwapOption<Current>,
    generation: AtomicU64,
    machine: Mutex<Machine>,
    from_disk: AtomicBool,
    counting: AtomicBool,
    /// Sides swapped out whose counts were not taken yet.
    retired: Mutex<Vec<Arc<Side>>>,
    registry: RwLock<Registry>,
}

impl Core {
    /// A core for `environment` with nothing loaded; `seed` feeds the jitter (the shell passes
    /// a random one; tests a fixed one).
    pub fn new(environment: &str, config: SyncConfig, seed: u64) -> Core {
        Core {
            environment: environment.to_owned(),
            current: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            machine: Mutex::new(Machine::new(environment, config, seed)),
            from_disk: AtomicBool::new(false),
            counting: AtomicBool::new(true),
            retired: Mutex::new(Vec::new()),
            registry: RwLock::new(Registry::default()),
        }
    }

    /// The environment served.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    fn machine(&self) -> std::sync::MutexGuard<'_, Machine> {
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the shell should do at `now_ms`.
    pub fn next(&self, now_ms: u64) -> Step {
        self.machine().next(now_ms)
    }

    /// The pointer request's response; `Some` when it swapped the snapshot.
    pub fn on_pointer(&self, now_ms: u64, response: Response) -> Option<Update> {
        let current = self.current.load_full();
        let have: Vec<&str> = current.as_deref().map_or_else(Vec::new, |c| {
            let mut have = vec![c.stable.sha256.as_str()];
            have.extend(c.canary.as_ref().map(|k| k.side.sha256.as_str()));
            have
        });
        let served = current.as_deref().map(|c| (c.version, have.as_slice()));
        let outcome = self.machine().on_pointer(now_ms, response, served);
        self.outcome(outcome)
    }

    /// A blob request's response; `Some` when it swapped the snapshot.
    pub fn on_blob(&self, now_ms: u64, sha256: &str, response: Response) -> Option<Update> {
        let outcome = self.machine().on_blob(now_ms, sha256, response);
        self.outcome(outcome)
    }

    /// A message on the change stream: poll the pointer now.
    pub fn on_signal(&self) {
        self.machine().on_signal();
    }

    /// The change stream connected (`true`) or dropped (`false`).
    pub fn on_stream(&self, now_ms: u64, up: bool) {
        self.machine().on_stream(now_ms, up);
    }

    fn outcome(&self, outcome: Outcome) -> Option<Update> {
        match outcome {
            Outcome::Nothing => None,
            Outcome::Install(pending) => {
                let etag = pending.etag.clone();
                let update = self.install(*pending, false);
                if update.is_some() {
                    self.machine().installed(etag);
                }
                update
            }
        }
    }

    /// Serves a pointer and blobs persisted by an earlier run (a cold start with the origin
    /// down), after the same checks as fetched ones; `blob(sha256)` reads a persisted blob.
    /// Refused (and nothing changed) when anything fails its check or a newer version is
    /// already served. The status is STALE until a sync confirms it.
    pub fn restore(
        &self,
        pointer: &[u8],
        mut blob: impl FnMut(&str) -> Option<Vec<u8>>,
    ) -> Result<Update, String> {
        let parsed = Pointer::parse(pointer).map_err(|e| format!("pointer: {}", e.reason()))?;
        let mut loaded = Vec::new();
        let named =
            std::iter::once(&parsed.stable).chain(parsed.canary.as_ref().map(|c| &c.blob_ref));
        for blob_ref in named {
            let bytes = blob(&blob_ref.sha256)
                .ok_or_else(|| format!("blob {} is missing", blob_ref.sha256))?;
            let snapshot =
                blob::load_blob(&bytes, blob_ref, &self.environment).map_err(|e| e.to_string())?;
            loaded.push((blob_ref.sha256.clone(), bytes, snapshot));
        }
        if self
            .current
            .load()
            .as_ref()
            .is_some_and(|c| c.version >= parsed.version)
        {
            return Err("a newer version is already served".into());
        }
        let pending = Pending {
            pointer: parsed,
            pointer_bytes: pointer.to_vec(),
            etag: None,
            wanted: Vec::new(),
            loaded,
        };
        let update = self
            .install(pending, true)
            .ok_or_else(|| "the pointer's blobs did not load".to_owned())?;
        Ok(update)
    }

    /// Builds the pointer's [`Current`] from its loaded blobs and the sides already served, and
    /// swaps it in.
    fn install(&self, pending: Pending, from_disk: bool) -> Option<Update> {
        let old = self.current.load_full();
        let Pending {
            pointer,
            pointer_bytes,
            loaded,
            ..
        } = pending;
        let mut new_blobs = Vec::new();
        let mut fresh: Vec<Arc<Side>> = Vec::new();
        for (sha256, gz, snapshot) in loaded {
            new_blobs.push((sha256.clone(), gz));
            fresh.push(Arc::new(Side::new(snapshot, sha256)));
        }
        let find = |sha256: &str| -> Option<Arc<Side>> {
            fresh
                .iter()
                .find(|s| s.sha256 == sha256)
                .cloned()
                .or_else(|| {
                    let old = old.as_deref()?;
                    std::iter::once(&old.stable)
                        .chain(old.canary.as_ref().map(|c| &c.side))
                        .find(|s| s.sha256 == sha256)
                        .cloned()
                })
        };
        let stable = find(&pointer.stable.sha256)?;
        let canary = match &pointer.canary {
            Some(canary) => Some(Canary {
                side: find(&canary.blob_ref.sha256)?,
                salt: canary.salt.clone(),
                buckets: canary.percent.buckets(),
            }),
            None => None,
        };
        let mut named = vec![pointer.stable.sha256.clone()];
        named.extend(pointer.canary.as_ref().map(|c| c.blob_ref.sha256.clone()));
        let generation = self.generation.load(Ordering::Acquire) + 1;
        let current = Current {
            version: pointer.version,
            pointer,
            stable,
            canary,
            generation,
        };
        let changed = changed_keys(old.as_deref(), &current);
        let version = current.version;
        let current = Arc::new(current);
        self.current.store(Some(current.clone()));
        self.generation.store(generation, Ordering::Release);
        self.from_disk.store(from_disk, Ordering::Release);
        if let Some(old) = old {
            let mut retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
            for side in std::iter::once(&old.stable).chain(old.canary.as_ref().map(|c| &c.side)) {
                let kept = current.stable.sha256 == side.sha256
                    || current
                        .canary
                        .as_ref()
                        .is_some_and(|c| c.side.sha256 == side.sha256);
                if !kept {
                    retired.push(side.clone());
                }
            }
        }
        Some(Update {
            version,
            changed,
            pointer: pointer_bytes,
            new_blobs,
            named,
        })
    }

    /// The snapshot served, if any.
    pub fn current(&self) -> Option<Arc<Current>> {
        self.current.load_full()
    }

    /// The status now.
    pub fn status(&self) -> StatusReport {
        let machine = self.machine();
        let version = self.current.load().as_ref().map(|c| c.version);
        let failing = machine.consecutive_failures() > 0;
        let status = if machine.fatal().is_some() {
            Status::Fatal
        } else if version.is_some() {
            let unconfirmed = self.from_disk.load(Ordering::Acquire) && !machine.synced();
            if failing || unconfirmed {
                Status::Stale
            } else {
                Status::Ready
            }
        } else if failing {
            Status::Error
        } else {
            Status::NotReady
        };
        StatusReport {
            status,
            version,
            message: machine.fatal().or(machine.last_error()).map(str::to_owned),
            consecutive_failures: machine.consecutive_failures(),
        }
    }

    /// Turns evaluation counting on or off (on by default).
    pub fn set_counting(&self, on: bool) {
        self.counting.store(on, Ordering::Relaxed);
    }

    /// Resolves a context (trusted attributes, `targetingKey` among them) against the snapshot
    /// served now: its side is picked and its attributes looked up once, for every evaluation
    /// made with it. After a swap it still answers from the new snapshot (more slowly, until
    /// [`Core::refresh`]).
    pub fn prepare(&self, attrs: Map<String, Value>) -> PreparedContext {
        match self.current.load_full() {
            Some(current) => PreparedContext::resolved(current, attrs),
            None => PreparedContext {
                generation: 0,
                inner: Inner::Bare(attrs),
            },
        }
    }

    /// Re-resolves `prepared` if the snapshot was swapped since.
    pub fn refresh(&self, prepared: &mut PreparedContext) {
        if prepared.generation == self.generation.load(Ordering::Acquire) {
            return;
        }
        let attrs = std::mem::replace(&mut prepared.inner, Inner::Bare(Map::new())).into_attrs();
        *prepared = self.prepare(attrs);
    }

    /// A stable integer for a flag key, for [`Core::evaluate_id`] (registered on first use).
    pub fn flag_id(&self, key: &str) -> FlagId {
        if let Some(id) = self
            .registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ids
            .get(key)
        {
            return FlagId(*id);
        }
        let mut registry = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = registry.ids.get(key) {
            return FlagId(*id);
        }
        let id = u32::try_from(registry.keys.len()).unwrap_or(u32::MAX);
        registry.keys.push(key.to_owned());
        registry.ids.insert(key.to_owned(), id);
        FlagId(id)
    }

    /// Evaluates flag `key` for `prepared` and hands the result to `f` (`None` when nothing is
    /// loaded yet). `now_ms` is called only if the snapshot's answers can depend on the time.
    #[inline]
    pub fn evaluate<R>(
        &self,
        prepared: &PreparedContext,
        key: &str,
        now_ms: impl FnOnce() -> i64,
        f: impl FnOnce(Option<&Evaluation<'_>>) -> R,
    ) -> R {
        let counting = self.counting.load(Ordering::Relaxed);
        if prepared.generation == self.generation.load(Ordering::Acquire)
            && let Inner::Resolved(cell) = &prepared.inner
        {
            return cell.with_dependent(|owner, resolved| {
                let side = owner.current.side(owner.track);
                let position = side.snapshot.flag_position(key).unwrap_or(usize::MAX);
                run(side, resolved, position, counting, now_ms, f)
            });
        }
        // Swapped since it was prepared: resolve again for this one call.
        let Some(current) = self.current.load_full() else {
            return f(None);
        };
        let attrs = prepared.attrs();
        let (_, side) = current.side_for(targeting_key(attrs));
        let ctx = Context::new(attrs);
        let resolved = side.snapshot.resolve(&ctx);
        let position = side.snapshot.flag_position(key).unwrap_or(usize::MAX);
        run(side, &resolved, position, counting, now_ms, f)
    }

    /// [`Core::evaluate`] by a registered [`FlagId`] (an id never registered answers
    /// `FLAG_NOT_FOUND`).
    pub fn evaluate_id<R>(
        &self,
        prepared: &PreparedContext,
        flag: FlagId,
        now_ms: impl FnOnce() -> i64,
        f: impl FnOnce(Option<&Evaluation<'_>>) -> R,
    ) -> R {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        let key = registry
            .keys
            .get(flag.0 as usize)
            .map_or("", String::as_str);
        self.evaluate(prepared, key, now_ms, f)
    }

    /// The counts since the last call, as one telemetry batch for `POST /api/v1/telemetry`
    /// (`flags-serve`'s `Batch`); `None` when nothing was evaluated.
    pub fn take_telemetry(&self) -> Option<Value> {
        let mut counts = Vec::new();
        let retired =
            std::mem::take(&mut *self.retired.lock().unwrap_or_else(PoisonError::into_inner));
        for side in &retired {
            side.drain_counts(&mut counts);
        }
        if let Some(current) = self.current.load_full() {
            current.stable.drain_counts(&mut counts);
            if let Some(canary) = &current.canary {
                canary.side.drain_counts(&mut counts);
            }
        }
        (!counts.is_empty()).then(|| {
            json!({
                "environment": self.environment,
                "from": null,
                "to": null,
                "counts": counts,
                "dropped": 0,
            })
        })
    }
}

#[inline(always)]
fn run<R>(
    side: &Side,
    resolved: &Resolved<'_, '_>,
    position: usize,
    counting: bool,
    now_ms: impl FnOnce() -> i64,
    f: impl FnOnce(Option<&Evaluation<'_>>) -> R,
) -> R {
    let now = if side.reads_time { now_ms() } else { 0 };
    let evaluation = evaluate_resolved_at(resolved, position, now);
    if counting {
        side.count(position, evaluation.variant);
    }
    f(Some(&evaluation))
}

fn targeting_key(attrs: &Map<String, Value>) -> Option<&str> {
    attrs.get("targetingKey").and_then(Value::as_str)
}

#[derive(Debug)]
struct Owner {
    current: Arc<Current>,
    attrs: Map<String, Value>,
    track: Track,
}

type ResolvedOwned<'a> = Resolved<'a, 'a>;

self_cell::self_cell!(
    struct Cell {
        owner: Owner,
        #[covariant]
        dependent: ResolvedOwned,
    }
    impl {Debug}
);

#[derive(Debug)]
enum Inner {
    Resolved(Cell),
    Bare(Map<String, Value>),
}

impl Inner {
    fn into_attrs(self) -> Map<String, Value> {
        match self {
            Inner::Resolved(cell) => cell.into_owner().attrs,
            Inner::Bare(attrs) => attrs,
        }
    }
}

/// A context resolved against one snapshot: its side picked (`targetingKey` bucketed under the
/// canary's salt, as the edge does) and its attributes looked up once. Owns its attributes;
/// cheap to evaluate with many times ([`Core::evaluate`]).
#[derive(Debug)]
pub struct PreparedContext {
    generation: u64,
    inner: Inner,
}

impl PreparedContext {
    fn resolved(current: Arc<Current>, attrs: Map<String, Value>) -> PreparedContext {
        let track = current.side_for(targeting_key(&attrs)).0;
        let generation = current.generation;
        let cell = Cell::new(
            Owner {
                current,
                attrs,
                track,
            },
            |owner| {
                owner
                    .current
                    .side(owner.track)
                    .snapshot
                    .resolve(&Context::new(&owner.attrs))
            },
        );
        PreparedContext {
            generation,
            inner: Inner::Resolved(cell),
        }
    }

    /// The context's attributes.
    pub fn attrs(&self) -> &Map<String, Value> {
        match &self.inner {
            Inner::Resolved(cell) => &cell.borrow_owner().attrs,
            Inner::Bare(attrs) => attrs,
        }
    }

    /// Which side it was resolved to (`None` before anything loaded).
    pub fn track(&self) -> Option<Track> {
        match &self.inner {
            Inner::Resolved(cell) => Some(cell.borrow_owner().track),
            Inner::Bare(_) => None,
        }
    }
}

#[cfg(test)]
mod tests;
