//! Ending a canary: `POST .../promote` (role `publish`) makes the running canary the stable
//! version, `POST .../abort` (role `publish` or `kill`) drops it. Both are the library's
//! [`flags_store::publish::Environment::promote`] / `abort`, as `publisher promote` / `abort` run
//! them, under the environment's lock, audited with the token's name and the client address,
//! then purged; 409 when no canary runs.
//!
//! Where the environment requires approval, a promote is a publish (the stable users get the
//! canary's flags) and becomes a pending change pinned to the canary it was asked for. An
//! abort never waits: it only sends the canary's users back to the stable version, which was
//! approved already, and it is how a bad canary is stopped at once (hence `kill` suffices).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::actions::{self, Actor, PurgeWhen, now};
use crate::approvals::Proposal;
use crate::auth::{Authorized, Publish, Read};
use crate::error::ApiError;
use crate::routes::publishing::publish_or_propose;
use crate::tokens::Role;
use flags_store::layout::Action;
use flags_store::publish::PublishError;

/// Body of `promote` / `abort` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndRequest {
    /// Why: recorded in the version and the audit trail.
    pub message: Option<String>,
}

/// `POST .../promote`: the canary becomes stable, as a new version (or a pending change, 202,
/// where approval is required).
pub async fn promote(
    State(state): State<AppState>,
    auth: Authorized<Publish>,
    request: Option<Json<EndRequest>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let message = request.and_then(|Json(r)| r.message);
    let actor = Actor::from(&auth);
    let environment = state.environment(&auth.env, &actor.client)?;
    let canary = environment
        .current()
        .await?
        .and_then(|c| c.pointer.canary)
        .ok_or_else(|| PublishError::NoCanary {
            env: auth.env.clone(),
            action: "promote",
        })?;
    let proposal = Proposal::Promote {
        canary: canary.blob_ref.content_hash,
    };
    publish_or_propose(&state, &auth.env, &actor, proposal, message)
        .await
        .map(|(status, body)| (status, Json(body)))
}

/// `POST .../abort`: the canary is dropped and the stable version serves everyone, as a new
/// version; never needs approval.
pub async fn abort(
    State(state): State<AppState>,
    auth: Authorized<Read>,
    request: Option<Json<EndRequest>>,
) -> Result<Json<Value>, ApiError> {
    let token = &auth.caller.token;
    if !token.allows(&auth.env, Role::Publish) && !token.allows(&auth.env, Role::Kill) {
        return Err(ApiError::Forbidden {
            token: token.name.clone(),
            role: "publish or kill",
            env: auth.env.clone(),
        });
    }
    let message = request.and_then(|Json(r)| r.message);
    let actor = Actor::from(&auth);
    actions::publish(
        &state,
        &actor,
        &auth.env,
        Action::Abort,
        PurgeWhen::Published,
        |environment, author| async move { environment.abort(&author, &now(), message).await },
    )
    .await
    .map(Json)
}
