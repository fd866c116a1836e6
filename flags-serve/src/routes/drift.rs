//! Drift through the service: `POST .../drift` (role `read`) checks the checkout (Git) against
//! the store; `POST .../drift/fix` (role `publish`) reconciles, under the environment's publish
//! lock. Both are [`flags_store::drift`]'s `check` and `fix`, audited in the drift trail with the
//! token's name, and set the `flags_drift_status` gauge. Where the environment requires
//! approval, a fix does not publish the checkout (that would bypass the approval): it reports
//! the step as skipped, and a push proposes the change; repairing a broken store (serving the
//! last good version again) still happens. The edge layer is not checked here:
//! the service has no fleet list, and a read token must not make it fetch arbitrary URLs.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Authorized, Publish, Read};
use crate::error::ApiError;
use crate::notify::Event;
use flags_store::drift::{self, CheckOptions, FixOptions, audit};
use flags_store::purge::Purger;

fn options(state: &AppState) -> CheckOptions {
    CheckOptions {
        flags_dir: Some(state.config.flags.clone()),
        edges: Vec::new(),
        edge_timeout: Duration::from_secs(5),
    }
}

fn audited<T>(result: Result<T, flags_store::publish::PublishError>, env: &str) {
    if let Err(e) = result {
        tracing::warn!(env, error = %e, "the drift audit entry could not be written");
    }
}

/// `POST .../drift`: the report (`docs/drift.md`, schema 1) with its `status`.
pub async fn check(
    State(state): State<AppState>,
    auth: Authorized<Read>,
) -> Result<Json<Value>, ApiError> {
    let environment = state.environment(&auth.env, &auth.caller.client)?;
    let report = {
        // The webhook checks out a new commit under the exclusive side of this lock.
        let _checkout = state.checkout.read().await;
        drift::check(&environment, &options(&state)).await
    };
    state.metrics.set_drift(&auth.env, report.status);
    state
        .notify
        .emit_some(Event::drift_found(auth.caller.name(), &report));
    audited(
        audit::record_check(&environment, &report, auth.caller.name()).await,
        &auth.env,
    );
    Ok(Json(json!(report)))
}

/// Body of `drift/fix` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixRequest {
    /// Publish a checkout that is behind the store (as `--allow-older`).
    #[serde(default)]
    pub allow_older: bool,
}

/// `POST .../drift/fix`: what differed, what was done, and the check after it.
pub async fn fix(
    State(state): State<AppState>,
    auth: Authorized<Publish>,
    request: Option<Json<FixRequest>>,
) -> Result<Json<Value>, ApiError> {
    let allow_older = request.is_some_and(|Json(r)| r.allow_older);
    let environment = state.environment(&auth.env, &auth.caller.client)?;
    let purger = Purger::from_target(state.config.purge.as_deref())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let options = FixOptions {
        check: options(&state),
        allow_older,
        publish_needs_approval: state
            .config
            .environment(&auth.env)
            .is_some_and(|e| e.approval.is_some()),
        author: auth.caller.name().to_owned(),
        purger,
        edge_purge_token: None,
        converge_timeout: Duration::from_secs(10),
    };
    let checkout = state.checkout.clone();
    let fixed = environment.clone();
    let report = state
        .serialized(&auth.env, async move {
            let _checkout = checkout.read().await;
            Ok(drift::fix(&fixed, &options).await)
        })
        .await?;
    state.metrics.set_drift(&auth.env, report.after.status);
    state
        .notify
        .emit_some(Event::drift_fixed(auth.caller.name(), &report));
    audited(
        audit::record_fix(&environment, &report, auth.caller.name()).await,
        &auth.env,
    );
    tracing::info!(env = %auth.env, token = %auth.caller.name(), status = ?report.after.status, "drift fix");
    Ok(Json(json!(report)))
}
