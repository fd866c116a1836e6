//! Changing what an environment serves: `POST .../push` (role `publish`), `.../rollback`
//! (`publish`), `.../flags/{key}/kill` and `.../unkill` (`kill`). Each runs the library's
//! publish step under the environment's lock, audited with the token's name and the client
//! address, then purges; the answer says what was done (version, purge result). In an
//! environment that requires approval, push (stable or canary), rollback and promote
//! (`canary.rs`) answer 202 with a pending change instead (`approvals.rs`); kill and unkill
//! never wait.

use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::actions::Actor;
use crate::actions::{self, PurgeWhen, now};
use crate::approvals::{Draft, Proposal};
use crate::auth::{Authorized, Kill, Publish};
use crate::error::ApiError;
use crate::notify::Event;
use crate::routes::environments::compile_checkout;
use flags_compile::blob_file::Provenance;
use flags_store::layout::{Action, Share};
use flags_store::publish::{KillTarget, RemovalPolicy};

/// Body of `push` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// Why: recorded in the version and the audit trail.
    pub message: Option<String>,
    /// Publish as the canary, served to this percentage of users (as `push --canary`).
    pub canary: Option<Share>,
    /// Publish even if the push removes every deployed flag or more than half of them (as
    /// `push --allow-removals`); otherwise such a push is refused with 409.
    #[serde(default)]
    pub allow_removals: bool,
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

/// Publishes `proposal` to `env` now (an environment without approval, or an approved
/// change), under the environment's lock, audited as `actor`.
pub async fn publish(
    state: &AppState,
    env: &str,
    actor: &Actor,
    proposal: Proposal,
    message: Option<String>,
) -> Result<Value, ApiError> {
    let action = match &proposal {
        Proposal::Push { .. } => Action::Push,
        Proposal::Canary { .. } => Action::Canary,
        Proposal::Rollback { .. } => Action::Rollback,
        Proposal::Promote { .. } => Action::Promote,
    };
    actions::publish(
        state,
        actor,
        env,
        action,
        PurgeWhen::Published,
        |environment, author| async move {
            match proposal {
                Proposal::Push {
                    body,
                    schedules,
                    provenance,
                    allow_removals,
                } => {
                    environment
                        .with_removals(removal_policy(allow_removals))
                        .push_scheduled(body, schedules, &provenance, message)
                        .await
                }
                Proposal::Canary {
                    body,
                    percent,
                    provenance,
                    allow_removals,
                } => {
                    environment
                        .with_removals(removal_policy(allow_removals))
                        .push_canary(body, percent, &provenance, message)
                        .await
                }
                Proposal::Rollback { to } => {
                    environment.rollback(to, &author, &now(), message).await
                }
                Proposal::Promote { canary } => {
                    environment
                        .promote_exactly(&canary, &author, &now(), message)
                        .await
                }
            }
        },
    )
    .await
}

/// The library's guard for a push that did (`allow_removals`) or did not ask to remove flags.
fn removal_policy(allow_removals: bool) -> RemovalPolicy {
    if allow_removals {
        RemovalPolicy::Any
    } else {
        RemovalPolicy::default()
    }
}

/// Publishes `proposal` to `env`, or, when `env` requires approval, holds it as a pending
/// change (202) with its diff against what is deployed; when the same change is already
/// pending, answers that one (202, `already_pending: true`) and holds nothing new. A push that the removal guard would
/// refuse is refused now (409), not after someone approved it.
pub async fn publish_or_propose(
    state: &AppState,
    env: &str,
    actor: &Actor,
    proposal: Proposal,
    message: Option<String>,
) -> Result<(StatusCode, Value), ApiError> {
    let Some(approval) = state
        .config
        .environment(env)
        .and_then(|e| e.approval.clone())
    else {
        return Ok((
            StatusCode::OK,
            publish(state, env, actor, proposal, message).await?,
        ));
    };
    let environment = state.environment(env, &actor.client)?;
    let deployed = environment.deployed_all().await?;
    let base_version = deployed.as_ref().map(|d| d.current.pointer.version);
    // The diff is what changes for the stable version's users (a canary's, for its share).
    let old_body = deployed
        .as_ref()
        .map(|d| d.stable.body.clone())
        .unwrap_or_default();
    if let Proposal::Push {
        body,
        allow_removals,
        ..
    }
    | Proposal::Canary {
        body,
        allow_removals,
        ..
    } = &proposal
    {
        removal_policy(*allow_removals).check(env, &old_body, body)?;
    }
    let new_body =
        match &proposal {
            Proposal::Push { body, .. } | Proposal::Canary { body, .. } => body.clone(),
            Proposal::Rollback { to } => environment.version_body(*to).await?,
            Proposal::Promote { .. } => deployed
                .and_then(|d| d.canary)
                .map(|c| c.body)
                .ok_or_else(|| {
                    ApiError::from(flags_store::publish::PublishError::NoCanary {
                        env: env.to_owned(),
                        action: "promote",
                    })
                })?,
        };
    let diff = flags_compile::diff::diff(&old_body, &new_body);
    let proposed = state
        .approvals
        .propose(
            Draft {
                env: env.to_owned(),
                author: actor.name.clone(),
                client: actor.client.clone(),
                message,
                proposal,
                base_version,
                diff: json!({ "summary": diff.summary(), "flags": diff.flags }),
            },
            approval.ttl,
            SystemTime::now(),
        )
        .await?;
    let pending = proposed.pending;
    if !proposed.new {
        // The same change is already waiting: answer it again rather than pile up another.
        tracing::info!(env, token = %actor.name, client = %actor.client, id = pending.id, action = pending.action, "change already pending approval");
        return Ok((
            StatusCode::ACCEPTED,
            json!({ "env": env, "published": false, "already_pending": true, "pending": pending }),
        ));
    }
    state.update_approvals_gauge().await;
    tracing::info!(env, token = %actor.name, client = %actor.client, id = pending.id, action = pending.action, "change pending approval");
    state.notify.emit(Event::approval_requested(
        env,
        &actor.name,
        pending.id,
        json!(pending),
    ));
    Ok((
        StatusCode::ACCEPTED,
        json!({ "env": env, "published": false, "pending": pending }),
    ))
}

/// The checkout's flags for `env` as a push proposal by `author`: compiled, with the files'
/// rollout schedules (as `publisher push` does), under the checkout's read lock; as a canary
/// push when `canary` gives its share; allowed to remove most deployed flags only with
/// `allow_removals`.
pub async fn checkout_proposal(
    state: &AppState,
    env: &str,
    author: &str,
    canary: Option<Share>,
    allow_removals: bool,
) -> Result<Proposal, ApiError> {
    let _checkout = state.checkout.read().await;
    let compiled = compile_checkout(state, env)
        .await?
        .map_err(ApiError::Invalid)?;
    let dir = &state.config.flags;
    let schedules = compiled.schedules;
    let provenance = Provenance::detect(dir, Some(author));
    Ok(match canary {
        Some(percent) => Proposal::Canary {
            body: compiled.body,
            percent,
            provenance,
            allow_removals,
        },
        None => Proposal::Push {
            body: compiled.body,
            schedules,
            provenance,
            allow_removals,
        },
    })
}

/// `POST .../push`: compiles the checkout's flags for the environment and publishes them, as
/// the stable version or (`canary`) as the canary (or proposes them, 202, where approval is
/// required).
pub async fn push(
    State(state): State<AppState>,
    auth: Authorized<Publish>,
    request: Option<Json<PushRequest>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request = request.map(|Json(r)| r).unwrap_or_default();
    let actor = Actor::from(&auth);
    let proposal = checkout_proposal(
        &state,
        &auth.env,
        &actor.name,
        request.canary,
        request.allow_removals,
    )
    .await?;
    publish_or_propose(&state, &auth.env, &actor, proposal, request.message)
        .await
        .map(|(status, body)| (status, Json(body)))
}

/// `POST .../rollback` `{"to": N}`: serves version N's flags again, as a new version (or
/// proposes it, 202, where approval is required).
pub async fn rollback(
    State(state): State<AppState>,
    auth: Authorized<Publish>,
    Json(request): Json<RollbackRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let actor = Actor::from(&auth);
    let proposal = Proposal::Rollback { to: request.to };
    publish_or_propose(&state, &auth.env, &actor, proposal, request.message)
        .await
        .map(|(status, body)| (status, Json(body)))
}

async fn set_killed(
    state: AppState,
    auth: Authorized<Kill>,
    key: String,
    request: Option<Json<KillRequest>>,
    kill: bool,
) -> Result<Json<Value>, ApiError> {
    let request = request.map(|Json(r)| r).unwrap_or_default();
    let actor = Actor::from(&auth);
    let action = if kill { Action::Kill } else { Action::Unkill };
    // Purged even when nothing changed, as the CLI does: the caller may be retrying a purge.
    actions::publish(
        &state,
        &actor,
        &auth.env,
        action,
        PurgeWhen::Always,
        move |env, author| async move {
            env.set_killed(
                &KillTarget::Flags(vec![key]),
                kill,
                &author,
                &now(),
                request.reason,
            )
            .await
        },
    )
    .await
    .map(Json)
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
