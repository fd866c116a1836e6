//! The one skeleton every publishing handler runs: take the environment's lock, run one step of
//! [`flags_store::publish::Environment`] in its own task, answer with the outcome (as the CLI's
//! `--json` prints it), then purge and add the [`flags_store::purge::PurgeReport`].
//!
//! Push, canary push, rollback, promote, abort, kill, unkill, rollout tick and resume all go
//! through [`run`]: a handler says which step and which audit action, nothing else.

use std::future::Future;

use serde_json::{Value, json};

use flags_store::layout::Action;
use flags_store::publish::{Environment, Outcome, PublishError};
use flags_store::purge::PurgeStatus;

use crate::AppState;
use crate::auth::Authorized;
use crate::error::ApiError;

/// Who asks for a change: the token's name (or `webhook`) and the client address, as the
/// audit trail records them.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Token name.
    pub name: String,
    /// Client address.
    pub client: String,
}

impl<R> From<&Authorized<R>> for Actor {
    fn from(auth: &Authorized<R>) -> Actor {
        Actor {
            name: auth.caller.name().to_owned(),
            client: auth.caller.client.clone(),
        }
    }
}

/// When to purge after the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeWhen {
    /// Only when a new version was published.
    Published,
    /// Also when nothing changed (kill and unkill: the caller may be retrying a purge).
    Always,
}

/// Now, as the version records write it.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Runs `step` on `env` under its publish lock, audited as `actor`, and answers: the outcome,
/// then the purge report. `step` gets the environment and the author's name; what it returns
/// beside the outcome (a tick's transitions) is handed back with the answer.
pub async fn run<T, F, Fut>(
    state: &AppState,
    actor: &Actor,
    env: &str,
    action: Action,
    purge_when: PurgeWhen,
    step: F,
) -> Result<(Value, T), ApiError>
where
    T: Send + 'static,
    F: FnOnce(Environment, String) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Outcome, T), PublishError>> + Send + 'static,
{
    let environment = state.environment(env, &actor.client)?;
    let author = actor.name.clone();
    let (outcome, extra) = state
        .serialized(env, async move {
            step(environment, author).await.map_err(ApiError::from)
        })
        .await?;
    Ok((
        answer(state, actor, env, action, outcome, purge_when).await,
        extra,
    ))
}

/// [`run`] for a step that returns only its outcome.
pub async fn publish<F, Fut>(
    state: &AppState,
    actor: &Actor,
    env: &str,
    action: Action,
    purge_when: PurgeWhen,
    step: F,
) -> Result<Value, ApiError>
where
    F: FnOnce(Environment, String) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Outcome, PublishError>> + Send + 'static,
{
    run(
        state,
        actor,
        env,
        action,
        purge_when,
        |environment, author| async move {
            step(environment, author).await.map(|outcome| (outcome, ()))
        },
    )
    .await
    .map(|(answer, ())| answer)
}

/// The answer of a publishing call: the outcome, as the CLI's `--json` prints it, plus the
/// purge report.
async fn answer(
    state: &AppState,
    actor: &Actor,
    env: &str,
    action: Action,
    outcome: Outcome,
    purge_when: PurgeWhen,
) -> Value {
    let mut body = match &outcome {
        Outcome::Published(record) => {
            state.metrics.published(env, record.action.as_str());
            tracing::info!(env, token = %actor.name, client = %actor.client, action = record.action.as_str(), version = record.version, "published");
            state
                .notify
                .emit(crate::notify::Event::published(env, &actor.name, record));
            json!({ "env": env, "published": true, "version": record.version, "record": record })
        }
        Outcome::Unchanged { version } => {
            tracing::info!(env, token = %actor.name, client = %actor.client, action = action.as_str(), version, "nothing to publish");
            json!({ "env": env, "published": false, "version": version })
        }
    };
    if matches!(outcome, Outcome::Published(_)) || purge_when == PurgeWhen::Always {
        body["purge"] = purge(state, env).await;
    }
    body
}

/// Purges `env` and reports how it went, for the answer and the metrics; a failed purge never
/// fails the publish.
pub async fn purge(state: &AppState, env: &str) -> Value {
    let report = state.purger.report(env).await;
    match report.status {
        PurgeStatus::Disabled => {}
        PurgeStatus::Done => state.metrics.purge(env, true),
        PurgeStatus::Failed => {
            state.metrics.purge(env, false);
            tracing::warn!(
                env,
                error = report.error.as_deref().unwrap_or_default(),
                "purge failed after publish"
            );
        }
    }
    serde_json::to_value(&report).unwrap_or_default()
}
