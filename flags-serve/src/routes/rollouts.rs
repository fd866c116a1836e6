//! Progressive rollouts: `GET .../rollouts` (role `read`) shows each schedule's state;
//! `POST .../rollouts/tick` and `.../rollouts/resume` (role `publish`) are the library's
//! [`flags_store::publish::Environment::rollout_tick`] / `rollout_resume`, as `publisher rollout
//! tick` / `resume` run them, under the environment's lock, audited with the token's name
//! and the client address, then purged.
//!
//! Neither waits for approval where the environment requires it: the schedule was approved
//! with the push that brought it, and a tick only follows it (health checks included).
//! A tick `now` other than the clock (for tests and replays, as the CLI's `--now`) lets the
//! caller skip soak times, so it takes `admin`. It only decides what is due: the records the
//! tick writes carry the real time (`TickTime::simulated`), as the CLI's.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::actions::{self, Actor, PurgeWhen};
use crate::auth::{Authorized, Publish, Read};
use crate::error::ApiError;
use crate::tokens::Role;
use flags_compile::blob_file::rfc3339;
use flags_store::layout::Action;
use flags_store::publish::TickTime;
use flags_store::publish::rollout::{Transition, live_percent, live_rings, next_due};

/// `GET .../rollouts`: each schedule's state (what `publisher rollout status` shows), its
/// live share of users and when its next stage is due.
pub async fn status(
    State(state): State<AppState>,
    auth: Authorized<Read>,
) -> Result<Json<Value>, ApiError> {
    let env = state.environment(&auth.env, "-")?;
    let rollouts: Vec<Value> = env
        .rollouts()
        .await?
        .into_iter()
        .map(|rollout| {
            json!({
                "live_percent": live_percent(&rollout),
                "live_rings": live_rings(&rollout),
                "next_due": next_due(&rollout).map(rfc3339),
                "state": rollout,
            })
        })
        .collect();
    Ok(Json(json!({ "env": auth.env, "rollouts": rollouts })))
}

/// Body of `rollouts/tick` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TickRequest {
    /// Judge what is due at this time (RFC 3339) instead of the clock; needs `admin`. Records
    /// still carry the real time.
    pub now: Option<DateTime<Utc>>,
}

/// Body of `rollouts/resume` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    /// Only this flag's held schedules (default: every held one).
    pub flag: Option<String>,
}

/// `POST .../rollouts/tick`: advances every due stage whose health check passes, holds or
/// steps back the failing ones, and publishes once; answers each transition, the version and
/// the purge.
pub async fn tick(
    State(state): State<AppState>,
    auth: Authorized<Publish>,
    request: Option<Json<TickRequest>>,
) -> Result<Json<Value>, ApiError> {
    let at = request.and_then(|Json(r)| r.now);
    if at.is_some() {
        auth.caller.require(&auth.env, Role::Admin)?;
    }
    let actor = Actor::from(&auth);
    let (mut body, transitions) = actions::run(
        &state,
        &actor,
        &auth.env,
        Action::Rollout,
        PurgeWhen::Published,
        move |environment, author| async move {
            environment
                .rollout_tick(
                    at.map_or_else(TickTime::clock, TickTime::simulated),
                    &author,
                )
                .await
                .map(|(transitions, outcome)| (outcome, transitions))
        },
    )
    .await?;
    body["transitions"] = transitions.iter().map(Transition::to_json).collect();
    Ok(Json(body))
}

/// `POST .../rollouts/resume`: lets held schedules run again from their stage.
pub async fn resume(
    State(state): State<AppState>,
    auth: Authorized<Publish>,
    request: Option<Json<ResumeRequest>>,
) -> Result<Json<Value>, ApiError> {
    let flag = request.and_then(|Json(r)| r.flag);
    let actor = Actor::from(&auth);
    actions::publish(
        &state,
        &actor,
        &auth.env,
        Action::Rollout,
        PurgeWhen::Published,
        move |environment, author| async move {
            environment
                .rollout_resume(flag.as_deref(), &author, Utc::now())
                .await
        },
    )
    .await
    .map(Json)
}
