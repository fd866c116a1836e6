//! Changing what an environment serves: `POST .../push` (role `publish`), `.../rollback`
//! (`publish`), `.../flags/{key}/kill` and `.../unkill` (`kill`). Each runs the library's
//! publish step under the environment's lock, audited with the token's name and the client
//! address, then purges; the answer says what was done (version, purge result).

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::blob_file::Provenance;
use crate::layout::Action;
use crate::publish::{KillTarget, Outcome};
use crate::purge::Purger;
use crate::serve::AppState;
use crate::serve::auth::{Authorized, Caller, Kill, Publish};
use crate::serve::error::ApiError;
use crate::serve::routes::environments::compile_checkout;

/// Body of `push` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// Why: recorded in the version and the audit trail.
    pub message: Option<String>,
}

/// Body of `rollback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version whose flags to serve again.
    pub to: u64,
    /// Why.
    pub message: Option<String>,
}

/// Body of `kill` / `unkill` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillRequest {
    /// Why: recorded in the version and the audit trail.
    pub reason: Option<String>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Purges `env` and says how it went, for the answer; a failed purge never fails the publish.
pub async fn purge(state: &AppState, env: &str) -> Value {
    if matches!(*state.purger, Purger::Disabled) {
        return json!({ "status": "disabled" });
    }
    match state.purger.purge(env).await {
        Ok(()) => {
            state.metrics.purge(env, true);
            json!({ "status": "done" })
        }
        Err(e) => {
            state.metrics.purge(env, false);
            tracing::warn!(env, error = %e, "purge failed after publish");
            json!({
                "status": "failed",
                "error": e.to_string(),
                "detail": "the new version is stored and served by the store; edges pick it up when their cached copy expires",
            })
        }
    }
}

/// The answer of a publishing call: the outcome, as the CLI's `--json` prints it, plus the purge.
async fn answer(
    state: &AppState,
    caller: &Caller,
    env: &str,
    action: Action,
    outcome: Outcome,
    purge_when_unchanged: bool,
) -> Json<Value> {
    let mut body = match &outcome {
        Outcome::Published(record) => {
            state.metrics.published(env, record.action.as_str());
            tracing::info!(env, token = caller.name(), client = %caller.client, action = record.action.as_str(), version = record.version, "published");
            json!({ "env": env, "published": true, "version": record.version, "record": record })
        }
        Outcome::Unchanged { version } => {
            tracing::info!(env, token = caller.name(), client = %caller.client, action = action.as_str(), version, "nothing to publish");
            json!({ "env": env, "published": false, "version": version })
        }
    };
    if matches!(outcome, Outcome::Published(_)) || purge_when_unchanged {
        body["purge"] = purge(state, env).await;
    }
    Json(body)
}

/// `POST .../push`: compiles the checkout's flags for the environment and publishes them.
pub async fn push(
    State(state): State<AppState>,
    auth: Authorized<Publish>,
    request: Option<Json<PushRequest>>,
) -> Result<Json<Value>, ApiError> {
    let request = request.map(|Json(r)| r).unwrap_or_default();
    let compiled = compile_checkout(&state, &auth.env)
        .await?
        .map_err(ApiError::Invalid)?;
    let env = state.environment(&auth.env, &auth.caller.client)?;
    let provenance = Provenance::detect(&state.config.flags, Some(auth.caller.name()));
    let outcome = state
        .serialized(&auth.env, async move {
            env.push(compiled.body, &provenance, request.message)
                .await
                .map_err(ApiError::from)
        })
        .await?;
    Ok(answer(
        &state,
        &auth.caller,
        &auth.env,
        Action::Push,
        outcome,
        false,
    )
    .await)
}

/// `POST .../rollback` `{"to": N}`: serves version N's flags again, as a new version.
pub async fn rollback(
    State(state): State<AppState>,
    auth: Authorized<Publish>,
    Json(request): Json<RollbackRequest>,
) -> Result<Json<Value>, ApiError> {
    let env = state.environment(&auth.env, &auth.caller.client)?;
    let author = auth.caller.name().to_owned();
    let outcome = state
        .serialized(&auth.env, async move {
            env.rollback(request.to, &author, &now(), request.message)
                .await
                .map_err(ApiError::from)
        })
        .await?;
    Ok(answer(
        &state,
        &auth.caller,
        &auth.env,
        Action::Rollback,
        outcome,
        false,
    )
    .await)
}

async fn set_killed(
    state: AppState,
    auth: Authorized<Kill>,
    key: String,
    request: Option<Json<KillRequest>>,
    kill: bool,
) -> Result<Json<Value>, ApiError> {
    let request = request.map(|Json(r)| r).unwrap_or_default();
    let env = state.environment(&auth.env, &auth.caller.client)?;
    let author = auth.caller.name().to_owned();
    let outcome = state
        .serialized(&auth.env, async move {
            env.set_killed(
                &KillTarget::Flags(vec![key]),
                kill,
                &author,
                &now(),
                request.reason,
            )
            .await
            .map_err(ApiError::from)
        })
        .await?;
    let action = if kill { Action::Kill } else { Action::Unkill };
    // Purged even when nothing changed, as the CLI does: the caller may be retrying a purge.
    Ok(answer(&state, &auth.caller, &auth.env, action, outcome, true).await)
}

/// `POST .../flags/{key}/kill`: the emergency path; never needs approval.
pub async fn kill(
    State(state): State<AppState>,
    auth: Authorized<Kill>,
    Path((_, key)): Path<(String, String)>,
    request: Option<Json<KillRequest>>,
) -> Result<Json<Value>, ApiError> {
    set_killed(state, auth, key, request, true).await
}

/// `POST .../flags/{key}/unkill`.
pub async fn unkill(
    State(state): State<AppState>,
    auth: Authorized<Kill>,
    Path((_, key)): Path<(String, String)>,
    request: Option<Json<KillRequest>>,
) -> Result<Json<Value>, ApiError> {
    set_killed(state, auth, key, request, false).await
}
