//! Reading an environment: `GET /api/v1/environments[/{env}]`, `.../history`, `.../audit`,
//! `.../diff`, `.../validate`. Role `read` on the environment.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Authorized, Caller, Read};
use crate::deployed::Deployed;
use crate::error::{ApiError, diagnostic_json, relative_to};
use crate::tokens::Role;
use flags_compile::diff;
use flags_compile::{CompileOptions, Compiled, Diagnostic, compile_path};
use flags_store::layout::VersionRecord;

/// What an environment serves, as the list and the page show it.
#[derive(Debug, Clone, Serialize)]
pub struct EnvStatus {
    /// The environment.
    pub name: String,
    /// The version served (`None` before the first publish).
    pub version: Option<u64>,
    /// The version's record: who, when, what, from which commit.
    pub record: Option<VersionRecord>,
    /// Flags in the served blob.
    pub flags: usize,
    /// Flags killed in it.
    pub killed: Vec<String>,
    /// The served body's content hash.
    pub content_hash: Option<String>,
    /// The canary running beside the stable version, if any (version, share of users).
    pub canary: Option<flags_store::layout::Canary>,
    /// The configured edges (`edges:` in serve.yaml): how many are in sync, drifted or
    /// unreachable, and which versions they serve. Absent when none are configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<flags_store::drift::edge::Fleet>,
}

/// Reads one environment's status: its deployed state (one pointer read; the blob is decoded
/// again only when the pointer changed) and its fleet.
pub async fn status(state: &AppState, name: &str) -> Result<EnvStatus, ApiError> {
    let env = state.environment(name, "-")?;
    let deployed = state.deployed.read(&env).await?;
    let mut status = status_of(state, name, deployed.as_deref());
    status.fleet = crate::fleet::check(state, &env, deployed.as_deref())
        .await
        .map(|(_, fleet)| fleet);
    Ok(status)
}

/// [`status`] from the deployed state the caller already read, without the fleet.
pub fn status_of(state: &AppState, name: &str, deployed: Option<&Deployed>) -> EnvStatus {
    let Some(Deployed {
        pointer,
        blob,
        record,
    }) = deployed
    else {
        return EnvStatus {
            name: name.to_owned(),
            version: None,
            record: None,
            flags: 0,
            killed: Vec::new(),
            content_hash: None,
            canary: None,
            fleet: None,
        };
    };
    let canary = pointer.canary.as_ref().map_or(0.0, |c| c.percent.percent());
    state.metrics.set_canary_share(name, canary);
    EnvStatus {
        name: name.to_owned(),
        version: Some(pointer.version),
        record: record.clone(),
        flags: blob.body.flags.len(),
        killed: blob
            .body
            .flags
            .iter()
            .filter(|f| f.killed)
            .map(|f| f.key.clone())
            .collect(),
        content_hash: Some(pointer.stable.content_hash.clone()),
        canary: pointer.canary.clone(),
        fleet: None,
    }
}

/// `GET /api/v1/environments`: every served environment the caller may read.
/// Environments are read at once, so edges that never answer cost one `edge_timeout` in all.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let mut tasks = tokio::task::JoinSet::new();
    let readable = state
        .environments()
        .into_iter()
        .filter(|name| caller.token.allows(name, Role::Read));
    for (index, name) in readable.enumerate() {
        let state = state.clone();
        tasks.spawn(async move { (index, status(&state, &name).await) });
    }
    let mut envs = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        let (index, status) = joined
            .map_err(|e| ApiError::Internal(format!("an environment status task failed: {e}")))?;
        envs.push((index, status?));
    }
    envs.sort_by_key(|(index, _)| *index);
    let envs: Vec<EnvStatus> = envs.into_iter().map(|(_, status)| status).collect();
    Ok(Json(json!({ "environments": envs })))
}

/// `GET /api/v1/environments/{env}`.
pub async fn show(
    State(state): State<AppState>,
    auth: Authorized<Read>,
) -> Result<Json<EnvStatus>, ApiError> {
    status(&state, &auth.env).await.map(Json)
}

/// `GET .../history`: every version record, newest first, and any inconsistency found.
pub async fn history(
    State(state): State<AppState>,
    auth: Authorized<Read>,
) -> Result<Json<Value>, ApiError> {
    let env = state.environment(&auth.env, "-")?;
    let mut history = env.history().await?;
    history.records.reverse();
    Ok(Json(json!({
        "env": auth.env,
        "current": history.current,
        "versions": history.records,
        "problems": history.problems,
    })))
}

/// `GET .../audit`: every audit entry, newest first.
pub async fn audit(
    State(state): State<AppState>,
    auth: Authorized<Read>,
) -> Result<Json<Value>, ApiError> {
    let env = state.environment(&auth.env, "-")?;
    let mut entries = env.audit().await?;
    entries.reverse();
    Ok(Json(json!({ "env": auth.env, "entries": entries })))
}

/// `?from=N&to=M` of `GET .../diff`.
#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    /// Old side: a version (default: the deployed one).
    pub from: Option<u64>,
    /// New side: a version (default: the checkout's flags).
    pub to: Option<u64>,
}

/// Compiles the checkout for `env` off the async threads. Diagnostics name their files
/// relative to the checkout (`flags/checkout.yaml:14: ...`, as in the repository), not to the
/// service's working directory, which callers neither know nor care about.
/// An environment named in the
/// service's config is deliberate even if no flag file defines it (every flag is off there):
/// the config is the service's `push --new-env`.
pub async fn compile_checkout(
    state: &AppState,
    env: &str,
) -> Result<Result<Compiled, Vec<Diagnostic>>, ApiError> {
    let dir = state.config.flags.clone();
    let mut options = CompileOptions::new(env);
    options.new_environment = state.config.environment(env).is_some();
    tokio::task::spawn_blocking(move || match compile_path(&dir, &options) {
        Ok(mut compiled) => {
            relative_to(&dir, &mut compiled.warnings);
            relative_to(&dir, &mut compiled.broken);
            Ok(compiled)
        }
        Err(mut diagnostics) => {
            relative_to(&dir, &mut diagnostics);
            Err(diagnostics)
        }
    })
    .await
    .map_err(|e| ApiError::Internal(format!("compile task failed: {e}")))
}

/// `GET .../diff`: flag- and rule-level differences, by default from what is deployed to the
/// checkout's flags (what a push would do).
pub async fn diff(
    State(state): State<AppState>,
    auth: Authorized<Read>,
    Query(query): Query<DiffQuery>,
) -> Result<Json<Value>, ApiError> {
    let env = state.environment(&auth.env, "-")?;
    let old = match query.from {
        Some(version) => env.version_body(version).await?,
        None => env
            .deployed()
            .await?
            .map(|(_, blob)| blob.body)
            .unwrap_or_default(),
    };
    let new = match query.to {
        Some(version) => env.version_body(version).await?,
        None => {
            compile_checkout(&state, &auth.env)
                .await?
                .map_err(ApiError::Invalid)?
                .body
        }
    };
    let diff = diff::diff(&old, &new);
    Ok(Json(json!({
        "env": auth.env,
        "from": query.from.map_or(json!("deployed"), Value::from),
        "to": query.to.map_or(json!("checkout"), Value::from),
        "summary": diff.summary(),
        "flags": diff.flags,
    })))
}

/// `GET|POST .../validate`: compiles the checkout for the environment; every error and lint.
pub async fn validate(
    State(state): State<AppState>,
    auth: Authorized<Read>,
) -> Result<Json<Value>, ApiError> {
    let (valid, flags, diagnostics) = match compile_checkout(&state, &auth.env).await? {
        Ok(compiled) => (true, compiled.body.flags.len(), compiled.warnings),
        Err(diags) => (false, 0, diags),
    };
    Ok(Json(json!({
        "env": auth.env,
        "valid": valid,
        "flags": flags,
        "diagnostics": diagnostics.iter().map(diagnostic_json).collect::<Vec<_>>(),
    })))
}
