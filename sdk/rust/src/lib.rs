//! In-process feature flags for Rust services: the edge's evaluator (`shared-eval`) runs in
//! your process over the blob the publisher pushed, so a flag check costs nanoseconds, not a
//! network round trip. Guide: `docs/sdk/rust.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use flags_sdk::{Client, Context};
//! let client = Client::builder("prod")
//!     .worker("https://flags.example.com", &std::env::var("FLAGS_SDK_KEY")?)
//!     .cache_dir("/var/cache/myservice/flags")
//!     .build();
//! client.wait_ready(std::time::Duration::from_secs(2)).await;
//! let user = client.prepare(&Context::new("user-42").with("plan", "premium"));
//! if client.bool_value("new-checkout", &user, false) { /* ... */ }
//! # Ok(()) }
//! ```
//!
//! Contents: [`Client`] (built by [`ClientBuilder`]): the typed API over a
//! [`PreparedContext`], status, change events, telemetry; [`source`]: where it syncs from (the
//! worker's server-only SDK routes, or a store directory); [`persist`]: the last good flags on
//! disk; [`provider`]: the OpenFeature provider. The decisions (what to fetch when, what to
//! accept, which side of a canary a user gets, status) are `flags-sdk-core`'s; this crate is
//! its tokio transport and clock.

pub mod persist;
pub mod provider;
pub mod source;
mod sync;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tokio::sync::{Notify, broadcast, watch};

pub use flags_sdk_core::{
    Core, FlagId, PreparedContext, Status, StatusReport, SyncConfig, Track, Update,
};
pub use shared_eval::{ErrorCode, Reason};

use persist::DiskCache;
use source::{DirectorySource, Source, WorkerSource};

/// Attributes to evaluate flags for: the targeting key plus any JSON attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    attrs: Map<String, Value>,
}

impl Context {
    /// A context for the subject with this targeting key (splits and canaries bucket on it).
    pub fn new(targeting_key: impl Into<String>) -> Context {
        let mut attrs = Map::new();
        attrs.insert("targetingKey".into(), Value::String(targeting_key.into()));
        Context { attrs }
    }

    /// A context without a targeting key (stable side of a canary; splits answer an error).
    pub fn anonymous() -> Context {
        Context::default()
    }

    /// Adds an attribute.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Context {
        self.attrs.insert(name.into(), value.into());
        self
    }

    /// From a JSON object of attributes (`targetingKey` among them).
    pub fn from_json(attrs: Map<String, Value>) -> Context {
        Context { attrs }
    }

    /// The attributes.
    pub fn attrs(&self) -> &Map<String, Value> {
        &self.attrs
    }
}

/// A flag's answer with why it was served.
#[derive(Debug, Clone, PartialEq)]
pub struct Details {
    /// The value served; `None` means the caller's default applies.
    pub value: Option<Value>,
    /// The variant's name.
    pub variant: Option<String>,
    /// Why (`ERROR` with `error` set when something failed).
    pub reason: Reason,
    /// What failed; `None` when the SDK has no flags yet is [`Details::not_ready`].
    pub error: Option<ErrorCode>,
    /// True when nothing is loaded yet (the default applies).
    pub not_ready: bool,
}

/// What the client announces.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new version is served; the keys of flags that changed.
    ConfigurationChanged {
        /// The pointer version.
        version: u64,
        /// Changed flag keys.
        flags: Vec<String>,
    },
    /// The status changed.
    Status(StatusReport),
}

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    env: String,
    source: Option<Arc<dyn SourceDebug>>,
    cache_dir: Option<std::path::PathBuf>,
    config: SyncConfig,
    timeout: Duration,
    events: bool,
}

/// [`Source`] with `Debug`, for the builder.
trait SourceDebug: Source + std::fmt::Debug {}
impl<T: Source + std::fmt::Debug> SourceDebug for T {}

impl ClientBuilder {
    /// Sync from the worker's SDK routes at `base_url` with this environment's SDK key, and
    /// follow its event stream.
    pub fn worker(mut self, base_url: &str, sdk_key: &str) -> ClientBuilder {
        self.source = Some(Arc::new(WorkerSource::new(
            base_url,
            &self.env,
            sdk_key,
            self.timeout,
        )));
        self
    }

    /// Sync from a directory in the store's layout (the local store, or a copy for offline
    /// runs), polled.
    pub fn directory(mut self, root: impl Into<std::path::PathBuf>) -> ClientBuilder {
        self.source = Some(Arc::new(DirectorySource::new(root, &self.env)));
        self
    }

    /// Keep the last good flags in `dir/<env>/` and serve them at start while the source is
    /// unreachable.
    pub fn cache_dir(mut self, dir: impl Into<std::path::PathBuf>) -> ClientBuilder {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Polling, backoff and breaker timings.
    pub fn sync_config(mut self, config: SyncConfig) -> ClientBuilder {
        self.config = config;
        self
    }

    /// Timeout of every request (default 2 s). Set it before [`ClientBuilder::worker`].
    pub fn timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.timeout = timeout;
        self
    }

    /// Follow the worker's event stream (default on); off, changes arrive by polling only.
    pub fn events(mut self, on: bool) -> ClientBuilder {
        self.events = on;
        self
    }

    /// Starts syncing on the current tokio runtime (restoring the disk cache first).
    pub fn build(self) -> Client {
        let core = Core::new(&self.env, self.config, fastrand::u64(..));
        let cache = self
            .cache_dir
            .map(|dir| DiskCache::new(dir.join(&self.env)));
        let (status, _) = watch::channel(core.status());
        let (events, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            core,
            status,
            events,
            wake: Notify::new(),
            announced: AtomicU64::new(0),
            cache,
            restore_error: std::sync::Mutex::new(None),
        });
        if let Some(cache) = &shared.cache {
            match cache.load_into(&shared.core) {
                Ok(Some(update)) => shared.announce(Some(update)),
                Ok(None) => {}
                Err(why) => {
                    *shared
                        .restore_error
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why)
                }
            }
        }
        let mut tasks = Vec::new();
        if let Some(source) = self.source {
            let source: Arc<dyn Source> = source;
            if self.events
                && let Some(url) = source.events_url()
            {
                tasks.push(tokio::spawn(sync::follow_events(
                    shared.clone(),
                    url,
                    self.timeout,
                )));
            }
            tasks.push(tokio::spawn(sync::run(shared.clone(), source)));
        }
        Client {
            shared,
            _tasks: Arc::new(Tasks(tasks)),
        }
    }
}

/// Stops the sync tasks when the last clone of a client is dropped.
#[derive(Debug)]
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) core: Core,
    status: watch::Sender<StatusReport>,
    events: broadcast::Sender<Event>,
    pub(crate) wake: Notify,
    /// The last version the event stream announced (0: none), sent with the next poll.
    pub(crate) announced: AtomicU64,
    cache: Option<DiskCache>,
    restore_error: std::sync::Mutex<Option<String>>,
}

impl Shared {
    /// Persists and announces an update, and publishes the status if it changed.
    pub(crate) fn announce(&self, update: Option<Update>) {
        if let Some(update) = update {
            if let Some(cache) = &self.cache
                && let Err(error) = cache.save(&update)
            {
                // Serving goes on; only the next cold start loses.
                eprintln!(
                    "flags-sdk: could not persist flags to {}: {error}",
                    cache.dir().display()
                );
            }
            let _ = self.events.send(Event::ConfigurationChanged {
                version: update.version,
                flags: update.changed,
            });
        }
        let report = self.core.status();
        let changed = self.status.send_if_modified(|old| {
            let differs = *old != report;
            if differs {
                *old = report.clone();
            }
            differs
        });
        if changed {
            let _ = self.events.send(Event::Status(report));
        }
    }
}

/// A flags client: evaluates in-process, syncs in the background. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    shared: Arc<Shared>,
    _tasks: Arc<Tasks>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Client {
    /// A builder for environment `env`; pick a source with [`ClientBuilder::worker`] or
    /// [`ClientBuilder::directory`].
    pub fn builder(env: &str) -> ClientBuilder {
        ClientBuilder {
            env: env.to_owned(),
            source: None,
            cache_dir: None,
            config: SyncConfig::default(),
            timeout: Duration::from_secs(2),
            events: true,
        }
    }

    /// The status now (READY, STALE, ERROR, FATAL with why).
    pub fn status(&self) -> StatusReport {
        self.shared.core.status()
    }

    /// Why the disk cache could not be served at start, if it could not.
    pub fn restore_error(&self) -> Option<String> {
        self.shared
            .restore_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits until flags are served (READY or STALE), syncing stops (FATAL), or `timeout`;
    /// returns the status then.
    pub async fn wait_ready(&self, timeout: Duration) -> StatusReport {
        let mut status = self.shared.status.subscribe();
        let settled =
            |s: &StatusReport| matches!(s.status, Status::Ready | Status::Stale | Status::Fatal);
        let _ = tokio::time::timeout(timeout, status.wait_for(settled)).await;
        self.status()
    }

    /// Configuration changes and status changes, as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Resolves a context once for many evaluations (its canary side picked, its attributes
    /// looked up once). After an update it still answers from the new flags.
    pub fn prepare(&self, context: &Context) -> PreparedContext {
        self.shared.core.prepare(context.attrs.clone())
    }

    /// Re-resolves a long-lived prepared context after an update (keeps the fast path).
    pub fn refresh(&self, prepared: &mut PreparedContext) {
        self.shared.core.refresh(prepared);
    }

    /// The version served.
    pub fn version(&self) -> Option<u64> {
        self.shared.core.current().map(|c| c.version)
    }

    /// The core (flag ids, telemetry, the snapshot), for advanced uses.
    pub fn core(&self) -> &Core {
        &self.shared.core
    }

    #[inline]
    fn with<R>(
        &self,
        key: &str,
        context: &PreparedContext,
        f: impl FnOnce(Option<&shared_eval::Evaluation<'_>>) -> R,
    ) -> R {
        self.shared
            .core
            .evaluate(context, key, || now_ms() as i64, f)
    }

    /// A boolean flag, or `default` (unknown flag, wrong type, nothing loaded).
    #[inline]
    pub fn bool_value(&self, key: &str, context: &PreparedContext, default: bool) -> bool {
        self.with(key, context, |e| {
            e.and_then(|e| e.value)
                .and_then(Value::as_bool)
                .unwrap_or(default)
        })
    }

    /// A string flag, or `default`.
    pub fn string_value(&self, key: &str, context: &PreparedContext, default: &str) -> String {
        self.with(key, context, |e| {
            e.and_then(|e| e.value)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_owned()
        })
    }

    /// A number flag as `f64`, or `default`.
    pub fn f64_value(&self, key: &str, context: &PreparedContext, default: f64) -> f64 {
        self.with(key, context, |e| {
            e.and_then(|e| e.value)
                .and_then(Value::as_f64)
                .unwrap_or(default)
        })
    }

    /// A number flag as `i64` (only whole numbers), or `default`.
    pub fn i64_value(&self, key: &str, context: &PreparedContext, default: i64) -> i64 {
        self.with(key, context, |e| {
            e.and_then(|e| e.value)
                .and_then(Value::as_i64)
                .unwrap_or(default)
        })
    }

    /// An object flag, or `default`.
    pub fn json_value(&self, key: &str, context: &PreparedContext, default: Value) -> Value {
        self.with(key, context, |e| {
            e.and_then(|e| e.value)
                .filter(|v| v.is_object() || v.is_array())
                .cloned()
                .unwrap_or(default)
        })
    }

    /// The full answer: value, variant, reason, error.
    pub fn details(&self, key: &str, context: &PreparedContext) -> Details {
        self.with(key, context, |e| match e {
            Some(e) => Details {
                value: e.value.cloned(),
                variant: e.variant.map(str::to_owned),
                reason: e.reason,
                error: e.error,
                not_ready: false,
            },
            None => Details {
                value: None,
                variant: None,
                reason: Reason::Error,
                error: Some(ErrorCode::General),
                not_ready: true,
            },
        })
    }

    /// The evaluation counts since the last call as a telemetry batch for `publisher serve`'s
    /// `POST /api/v1/telemetry` (role `telemetry`); `None` when nothing was evaluated.
    pub fn take_telemetry(&self) -> Option<Value> {
        self.shared.core.take_telemetry()
    }

    /// Polls the source now (after the request in flight, if any).
    pub fn poll_now(&self) {
        self.shared.core.on_signal();
        self.shared.wake.notify_one();
    }
}

/// Marks the last announced version (shared with the sync loop).
pub(crate) fn note_announced(shared: &Shared, version: Option<u64>) {
    if let Some(version) = version {
        shared.announced.fetch_max(version, Ordering::AcqRel);
    }
}
