//! Evaluation telemetry: `POST /api/v1/telemetry` takes a worker isolate's batch of counts
//! (role `telemetry` in the batch's environment); `GET .../environments/{env}/telemetry`
//! (role `read`) answers the aggregate of the deployed flags and the lints drawn from it.
//! The aggregate and the lints are [`crate::telemetry`]'s.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Authorized, Caller, Read};
use crate::error::ApiError;
use crate::telemetry::{self, Batch, IngestError};
use crate::tokens::Role;

/// `POST /api/v1/telemetry`: 202 with `{"accepted": N, "persisted": bool}` evaluations.
pub async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let batch: Batch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("not a telemetry batch: {e}")))?;
    flags_store::layout::check_env(&batch.environment).map_err(ApiError::BadRequest)?;
    caller.require(&batch.environment, Role::Telemetry)?;
    let environment = batch.environment.clone();
    // Counted in memory; this replica writes its aggregate to the store every few seconds.
    // `persisted` is false while its last write failed (the next one retries).
    let accepted = match state.telemetry.ingest(&batch, Utc::now()) {
        Ok(counted) => counted,
        Err(IngestError::Refused(why)) => return Err(ApiError::BadRequest(why)),
    };
    let persisted = state.telemetry.persisted();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "environment": environment, "accepted": accepted, "persisted": persisted })),
    ))
}

/// `?now=RFC3339&days=N` of the read route: lints as of another instant (to see what will
/// fire), over another window (default [`telemetry::DEFAULT_STALE_DAYS`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintQuery {
    pub now: Option<DateTime<Utc>>,
    pub days: Option<i64>,
}

/// The deployed flags' aggregate and lints, as the API and the status page show them.
pub async fn report(
    state: &AppState,
    env: &str,
    now: DateTime<Utc>,
    days: i64,
) -> Result<Value, ApiError> {
    let environment = state.environment(env, "-")?;
    let deployed: Vec<String> = match environment.deployed().await? {
        Some((_, blob)) => blob.body.flags.into_iter().map(|f| f.key).collect(),
        None => Vec::new(),
    };
    let stats = state.telemetry.environment(env).await;
    let lints = telemetry::lints(&stats, deployed.iter().map(String::as_str), now, days);
    let flags: Vec<Value> = deployed
        .iter()
        .map(|key| match stats.flags.get(key) {
            Some(flag) => json!({
                "flag": key,
                "total": flag.total,
                "variants": flag.variants,
                "first_seen": flag.first_seen,
                "last_seen": flag.last_seen,
            }),
            None => json!({ "flag": key, "total": 0, "variants": {} }),
        })
        .collect();
    Ok(json!({
        "env": env,
        "now": now,
        "days": days,
        "first_report": stats.first_report,
        "last_report": stats.last_report,
        "batches": stats.batches,
        "dropped": stats.dropped,
        "flags": flags,
        "lints": lints,
    }))
}

/// `GET /api/v1/environments/{env}/telemetry`.
pub async fn show(
    State(state): State<AppState>,
    auth: Authorized<Read>,
    Query(query): Query<LintQuery>,
) -> Result<Json<Value>, ApiError> {
    let days = query.days.unwrap_or(telemetry::DEFAULT_STALE_DAYS);
    if !(1..=telemetry::KEEP_DAYS).contains(&days) {
        return Err(ApiError::BadRequest(format!(
            "days must be 1 to {}",
            telemetry::KEEP_DAYS
        )));
    }
    let now = query.now.unwrap_or_else(Utc::now);
    report(&state, &auth.env, now, days).await.map(Json)
}
