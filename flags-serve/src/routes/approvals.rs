//! Pending changes: `GET .../approvals` (role `read`), `POST .../approvals/{id}/approve`
//! (role `approve`, and not the change's author) and `POST .../approvals/{id}/reject` (role
//! `approve`, or the author withdrawing it).

use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::AppState;
use crate::actions::Actor;
use crate::approvals::State as Approval;
use crate::auth::{Approve, Authorized, Read};
use crate::error::ApiError;
use crate::notify::Event;
use crate::routes::publishing::publish;
use crate::tokens::Role;

/// `GET .../approvals`: the environment's unexpired pending changes, oldest first, each with
/// its diff.
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<Read>,
) -> Result<Json<Value>, ApiError> {
    let pending = state
        .approvals
        .list(Some(&auth.env), SystemTime::now())
        .await?;
    state.update_approvals_gauge().await;
    Ok(Json(json!({ "env": auth.env, "pending": pending })))
}

/// `POST .../approvals/{id}/approve`: publishes the pending change through the same step as
/// an unapproved one. Recorded as its author's, with the approver named in the message and
/// the approver's address as the client. The change is taken in the store before publishing,
/// so of two approvers racing (on any replicas) one publishes and the other gets 409.
pub async fn approve(
    State(state): State<AppState>,
    auth: Authorized<Approve>,
    Path((_, id)): Path<(String, u64)>,
) -> Result<Json<Value>, ApiError> {
    let approver = auth.caller.name().to_owned();
    let pending = state
        .approvals
        .take_for_approval(&auth.env, id, &approver, SystemTime::now())
        .await?;
    state.update_approvals_gauge().await;
    let message = Some(match &pending.message {
        Some(message) => format!("{message} (approved by {approver})"),
        None => format!("approved by {approver}"),
    });
    let actor = Actor {
        name: pending.author.clone(),
        client: auth.caller.client.clone(),
    };
    tracing::info!(env = %auth.env, id, author = %pending.author, token = %approver, client = %auth.caller.client, "change approved");
    state.notify.emit(Event::pending_approved(
        &auth.env,
        &approver,
        id,
        &pending.author,
    ));
    let published = publish(
        &state,
        &auth.env,
        &actor,
        pending.proposal().clone(),
        message,
    )
    .await;
    let mut answer = match published {
        Ok(answer) => {
            state.approvals.settle(&pending, Approval::Approved).await;
            answer
        }
        // The store could not be reached (or failed inside): nothing was published, and the
        // approval may succeed later. Anything else (a canary that changed, a version that is
        // gone) will not, and the change is dropped.
        Err(e @ (ApiError::Unavailable(_) | ApiError::Internal(_))) => {
            state.approvals.restore(&pending).await;
            state.update_approvals_gauge().await;
            return Err(e);
        }
        Err(e) => {
            state.approvals.settle(&pending, Approval::Failed).await;
            return Err(e);
        }
    };
    answer["approved"] = json!({ "id": id, "by": approver, "author": pending.author });
    Ok(Json(answer))
}

/// `POST .../approvals/{id}/reject`: drops the pending change (an approver, or its author
/// withdrawing it).
pub async fn reject(
    State(state): State<AppState>,
    auth: Authorized<Read>,
    Path((_, id)): Path<(String, u64)>,
) -> Result<Json<Value>, ApiError> {
    let name = auth.caller.name();
    let mine = state
        .approvals
        .list(Some(&auth.env), SystemTime::now())
        .await?
        .iter()
        .any(|p| p.id == id && p.author == name);
    if !mine {
        auth.caller.require(&auth.env, Role::Approve)?;
    }
    let pending = state
        .approvals
        .remove(&auth.env, id, name, SystemTime::now())
        .await?;
    state.update_approvals_gauge().await;
    tracing::info!(env = %auth.env, id, author = %pending.author, token = name, client = %auth.caller.client, "change rejected");
    Ok(Json(
        json!({ "env": auth.env, "rejected": { "id": id, "by": name, "author": pending.author } }),
    ))
}
