//! `publisher serve`: the control-plane service. One process holds the store credentials,
//! decides who may do what per environment (`tokens.rs`, `auth.rs`), and publishes through the
//! same library functions as the CLI ([`flags_store::publish::Environment`], [`flags_compile`],
//! [`flags_store::purge`]): no second implementation of push, rollback or kill.
//!
//! - [`app`] builds the router from an [`AppState`] (tests drive it in-process or on a port);
//!   [`run`] adds the listener, JSON logs and graceful shutdown.
//! - `routes/`: one file per resource; `error.rs`: problem+json answers; `page/`: the
//!   server-rendered status page; `metrics.rs`: Prometheus text; `deployed.rs`: the decoded
//!   deployed state per environment, re-read only when its pointer changes; `fleet.rs`: the
//!   configured edges' versions; `auth.rs` + `sessions.rs`: bearer tokens and the page's
//!   browser sessions (CSRF-checked); `oidc/`: sign-in through an OpenID provider;
//!   `layers.rs`: limits and the security headers.
//! - Everything a replica keeps lives in the store (or Git), so that replicas over one store act
//!   as one: pending approvals (`approvals.rs`, `_approvals/`), change requests
//!   (`changes/record.rs`, `_changes/`), telemetry (`telemetry/`, one `_telemetry/` object per
//!   replica, merged on read).
//! - Publishing to one environment is serialized by a per-environment lock held for the whole
//!   publish (a second publish waits), and runs in its own task so that a client hanging up
//!   cannot stop it halfway; shutdown waits for every such task.

pub mod actions;
pub mod approvals;
pub mod auth;
pub mod changes;
pub mod config;
pub mod console;
pub mod deployed;
pub mod error;
pub mod fleet;
pub mod layers;
pub mod metrics;
pub mod notify;
pub mod oidc;
pub mod page;
pub mod rate_limit;
pub mod routes;
pub mod sessions;
pub mod telemetry;
pub mod tokens;
pub mod webhook;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;

use config::ServeConfig;
use error::ApiError;
use flags_store::publish::Environment;
use flags_store::purge::Purger;
use flags_store::store::ObjectStore;
use tokens::TokenSource;

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<ServeConfig>,
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The token file.
    pub tokens: Arc<TokenSource>,
    /// Where purges go after a publish.
    pub purger: Arc<Purger>,
    /// Counters and histograms.
    pub metrics: Arc<metrics::Metrics>,
    /// This process's random id among the replicas sharing the store (names its telemetry
    /// object and the approvals it takes).
    pub replica: Arc<str>,
    /// Changes waiting for approval.
    pub approvals: Arc<approvals::Approvals>,
    /// The Git webhook, when configured.
    pub webhook: Option<Arc<webhook::Webhook>>,
    /// Per-token request budgets.
    pub rate_limits: Arc<rate_limit::RateLimits>,
    /// Compiling the checkout takes it shared; the webhook's `git checkout` exclusively.
    pub checkout: Arc<tokio::sync::RwLock<()>>,
    /// Evaluation counts reported by the edge.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// Each environment's decoded deployed state, by pointer ETag (`deployed.rs`).
    pub deployed: Arc<deployed::DeployedCache>,
    /// The status page's browser sessions (`sessions.rs`).
    pub sessions: Arc<sessions::Sessions>,
    /// Change requests, when `git:` is configured (`changes/`).
    pub changes: Option<Arc<changes::Changes>>,
    /// Outbound webhooks (`notify/`); emitting never waits.
    pub notify: Arc<notify::Notifier>,
    /// The impact preview's sample of contexts, as last read (`changes/impact.rs`).
    pub impact_samples: Arc<changes::impact::SampleCache>,
    /// Sign-in through the OpenID provider, when `oidc:` is configured (`oidc/`).
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// Signs every pointer the service publishes (`signing_key:`, else
    /// `FLAGS_SIGNING_KEY_FILE`); unset: pointers are unsigned.
    pub signing_key: Option<Arc<flags_store::signing::SigningKey>>,
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.describe())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens the store, the token file and the purge target named by `config`.
    pub async fn open(config: ServeConfig) -> Result<AppState, String> {
        let store = flags_store::store::open(&config.store).await?;
        let tokens = TokenSource::open(&config.tokens)?;
        let purger = Purger::from_target(config.purge.as_deref()).map_err(|e| e.to_string())?;
        let webhook = match &config.webhook {
            Some(webhook) => Some(Arc::new(webhook::Webhook::new(webhook.clone())?)),
            None => None,
        };
        let changes = match &config.git {
            Some(git) => Some(Arc::new(
                changes::Changes::open(
                    &config.flags,
                    git,
                    changes::record::Records::new(store.clone()),
                )
                .await?,
            )),
            None => None,
        };
        let oidc = match &config.oidc {
            Some(oidc) => Some(Arc::new(oidc::Oidc::new(
                oidc.clone(),
                config.file.clone(),
            )?)),
            None => None,
        };
        let signing_key =
            match config.signing_key.clone().or_else(|| {
                std::env::var_os(flags_store::signing::SIGNING_KEY_ENV_VAR).map(Into::into)
            }) {
                Some(path) => Some(Arc::new(flags_store::signing::SigningKey::read(&path)?)),
                None => None,
            };
        let mut state = AppState::new(config, store, tokens, purger);
        if let Some(notify) = &state.config.notify {
            state.notify = Arc::new(notify::Notifier::start(
                notify,
                state.store.clone(),
                &state.metrics,
            )?);
        }
        state.oidc = oidc;
        state.signing_key = signing_key;
        state.webhook = webhook;
        state.changes = changes;
        state.import_files().await?;
        state.update_approvals_gauge().await;
        let telemetry = Arc::downgrade(&state.telemetry);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(crate::telemetry::FLUSH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                // Ends with the state (a test's, or the process's).
                let Some(telemetry) = telemetry.upgrade() else {
                    break;
                };
                if let Err(e) = telemetry.flush().await {
                    tracing::warn!(error = %e, "telemetry not written to the store; retrying");
                }
            }
        });
        Ok(state)
    }

    /// Imports what an older version kept in local files (`approvals_file`, `telemetry_file`)
    /// into the store, once: each file is renamed to `<file>.imported` after.
    async fn import_files(&self) -> Result<(), String> {
        if let Some(file) = &self.config.approvals_file {
            tracing::warn!(file = %file.display(), "approvals_file is no longer used: pending approvals live in the store (_approvals/), shared by every replica; importing the file if it is there");
            let imported = self
                .approvals
                .import_file(file, std::time::SystemTime::now())
                .await?;
            if imported > 0 {
                tracing::info!(imported, file = %file.display(), "pending approvals imported into the store");
            }
        }
        if let Some(file) = &self.config.telemetry_file {
            tracing::warn!(file = %file.display(), "telemetry_file is no longer used: telemetry lives in the store (_telemetry/), one object per replica; importing the file if it is there");
            if self.telemetry.import_file(file)? {
                self.telemetry
                    .flush()
                    .await
                    .map_err(|e| format!("importing {}: {e}", file.display()))?;
                let mut renamed = file.as_os_str().to_owned();
                renamed.push(".imported");
                std::fs::rename(file, &renamed).map_err(|e| format!("{}: {e}", file.display()))?;
                tracing::info!(file = %file.display(), "telemetry imported into the store");
            }
        }
        Ok(())
    }

    /// Sets the pending-approvals gauge from the store (left as it was if the store cannot
    /// be read).
    pub async fn update_approvals_gauge(&self) {
        match self.approvals.counts(std::time::SystemTime::now()).await {
            Ok(counts) => self.metrics.set_approvals_pending(&counts),
            Err(e) => tracing::warn!(error = %e, "cannot count pending approvals"),
        }
    }

    /// From parts already opened.
    pub fn new(
        config: ServeConfig,
        store: Arc<dyn ObjectStore>,
        tokens: TokenSource,
        purger: Purger,
    ) -> AppState {
        let rate_limits = Arc::new(rate_limit::RateLimits::new(&config.limits));
        let replica = new_replica_id();
        AppState {
            config: Arc::new(config),
            tokens: Arc::new(tokens),
            purger: Arc::new(purger),
            metrics: Arc::new(metrics::Metrics::new()),
            approvals: Arc::new(approvals::Approvals::new(store.clone(), &replica)),
            rate_limits,
            webhook: None,
            checkout: Arc::default(),
            telemetry: Arc::new(crate::telemetry::Telemetry::in_store(
                store.clone(),
                &replica,
            )),
            deployed: Arc::default(),
            sessions: Arc::default(),
            changes: None,
            notify: Arc::new(notify::Notifier::disabled()),
            impact_samples: Arc::default(),
            oidc: None,
            signing_key: None,
            locks: Arc::default(),
            store,
            replica: replica.into(),
        }
    }

    /// With this telemetry aggregate (by default one in memory).
    pub fn with_telemetry(mut self, telemetry: crate::telemetry::Telemetry) -> AppState {
        self.telemetry = Arc::new(telemetry);
        self
    }

    /// The environments served: the configured ones, else every one the token file names.
    pub fn environments(&self) -> Vec<String> {
        if self.config.environments.is_empty() {
            self.tokens.current().environments()
        } else {
            self.config
                .environments
                .iter()
                .map(|e| e.name.clone())
                .collect()
        }
    }

    /// The environment `name` of the store, recording `client` in its audit entries.
    pub fn environment(&self, name: &str, client: &str) -> Result<Environment, ApiError> {
        let env = Environment::new(self.store.clone(), name).map_err(ApiError::NotFound)?;
        let env = env.with_client(client);
        Ok(match &self.signing_key {
            Some(key) => env.with_signing_key(Arc::clone(key)),
            None => env,
        })
    }

    /// Runs `work` holding `env`'s publish lock, in a task of its own: a second publish to the
    /// same environment waits for the first, and a client that hangs up does not stop a publish
    /// halfway (the task runs to the end; [`AppState::drain`] waits for it).
    pub async fn serialized<T, F>(&self, env: &str, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(env.to_owned()).or_default().clone()
        };
        let task = tokio::spawn(async move {
            let _guard = lock.lock().await;
            work.await
        });
        task.await
            .map_err(|e| ApiError::Internal(format!("publish task failed: {e}")))?
    }

    /// Waits until no publish is running (each holds its environment's lock to the end),
    /// then writes this replica's telemetry to the store.
    pub async fn drain(&self) {
        let locks: Vec<_> = {
            let locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.values().cloned().collect()
        };
        for lock in locks {
            drop(lock.lock().await);
        }
        if let Err(e) = self.telemetry.flush().await {
            tracing::error!(error = %e, "telemetry not written to the store at shutdown");
        }
    }
}

/// A random id for this process among the replicas (16 hex digits).
pub fn new_replica_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: the time and process id are unique enough among replicas.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = ((nanos as u64) ^ u64::from(std::process::id())).to_be_bytes();
    }
    hex::encode(bytes)
}

/// JSON log lines on stderr (`RUST_LOG` filters; `info` by default): what `publisher serve`
/// logs, one object per line.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::stderr)
        .init();
}

/// The whole service as a router: routes plus the limits of `layers.rs`.
pub fn app(state: AppState) -> Router {
    layers::apply(routes::router(), state)
}

/// Serves `config` until SIGINT/SIGTERM, then stops accepting, lets in-flight requests finish
/// and waits for any publish still running.
pub async fn run(config: ServeConfig) -> Result<(), String> {
    let served = serve(config).await;
    if let Err(e) = &served {
        tracing::error!(error = %e, "cannot serve");
    }
    served
}

async fn serve(config: ServeConfig) -> Result<(), String> {
    let listen = config.listen;
    let state = AppState::open(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(listen = %local, store = %state.store.describe(), environments = ?state.environments(), "serving");
    let router = app(state.clone());
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| format!("server failed: {e}"))?;
    state.drain().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
