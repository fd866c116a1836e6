//! The console's page handlers: each authenticates (a visitor without a session goes to the
//! sign-in form at `/`), reads through the function its API route answers with, and renders
//! a template. Which buttons show comes from the caller's roles (`changes::require_on`, the
//! rule the server enforces); the server checks again whatever the page shows.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Frame, render};
use crate::AppState;
use crate::auth::Caller;
use crate::changes::catalog::Kind;
use crate::changes::require_on;
use crate::error::ApiError;
use crate::routes::{changes, flags};
use crate::tokens::Role;

/// The flags page's filter form. Empty fields (a select left on "any") mean no filter.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub struct Filters {
    q: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    owner: Option<String>,
    tag: Option<String>,
    env: Option<String>,
    lint: Option<String>,
    stale: Option<String>,
}

fn given(field: &Option<String>) -> Option<String> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn yes_no(field: &Option<String>) -> Option<bool> {
    match given(field).as_deref() {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    }
}

/// A page's answer: the rendered page, the sign-in form for a visitor, or the problem.
fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Where a visitor without a session goes: the sign-in form.
fn to_sign_in() -> Response {
    Redirect::to("/").into_response()
}

/// `GET /flags`: every flag of the branch, filtered as the API filters.
pub async fn flags(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Query(filters): Query<Filters>,
) -> Response {
    let Ok(caller) = caller else {
        return to_sign_in();
    };
    let query = flags::ListQuery {
        q: given(&filters.q),
        env: given(&filters.env),
        kind: given(&filters.kind),
        owner: given(&filters.owner),
        tag: given(&filters.tag),
        lint: yes_no(&filters.lint),
        stale: yes_no(&filters.stale),
        limit: Some(1000),
        ..Default::default()
    };
    let frame = Frame::new(&state, &caller, "flags");
    let listed = flags::list_value(&state, &query, Kind::Flag).await;
    let page = match listed {
        Ok(list) => json!({ "list": list, "filters": filters }),
        Err(e) => json!({ "error": e.to_string(), "filters": filters }),
    };
    answer(render(
        "flags.html",
        &frame,
        minijinja::Value::from_serialize(&page),
    ))
}

/// `GET /flags/{key}`: one flag's definition, per-environment state and history.
pub async fn flag(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(key): Path<String>,
) -> Response {
    let Ok(caller) = caller else {
        return to_sign_in();
    };
    let frame = Frame::new(&state, &caller, "flags");
    answer(
        async {
            let (etag, flag) = flags::one_value(&state, &key, None, Kind::Flag).await?;
            let page = json!({ "flag": flag, "etag": etag });
            render("flag.html", &frame, minijinja::Value::from_serialize(&page))
        }
        .await,
    )
}

/// `?state=` of the changes page.
#[derive(Debug, Default, Deserialize)]
pub struct ChangesQuery {
    state: Option<String>,
}

/// `GET /changes`: change requests, open ones by default.
pub async fn changes(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Query(query): Query<ChangesQuery>,
) -> Response {
    let Ok(caller) = caller else {
        return to_sign_in();
    };
    let frame = Frame::new(&state, &caller, "changes");
    let wanted = given(&query.state).unwrap_or_else(|| "open".to_owned());
    answer(
        async {
            let list = changes::list_value(&state, Some(&wanted)).await?;
            let page = json!({ "changes": list, "state": wanted });
            render(
                "changes.html",
                &frame,
                minijinja::Value::from_serialize(&page),
            )
        }
        .await,
    )
}

/// `GET /changes/{id}`: one change with its diffs, validation, approvals and the buttons the
/// caller's roles allow.
pub async fn change(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<u64>,
) -> Response {
    let Ok(caller) = caller else {
        return to_sign_in();
    };
    let frame = Frame::new(&state, &caller, "changes");
    answer(
        async {
            let change = changes::show_value(&state, id).await?;
            let alters: Vec<String> = change["alters"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let open = matches!(
                change["state"].as_str(),
                Some("open" | "approved" | "conflicted")
            );
            let authored = change["approvals"]["authors"]
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n.as_str() == Some(caller.name())));
            let may = |role| open && require_on(&state, &caller, &alters, role).is_ok();
            let actions = json!({
                "approve": may(Role::Approve) && !authored && change["state"] != "approved",
                "merge": may(Role::Publish) && change["state"] == "approved",
                "close": may(Role::Edit),
            });
            let diff = diff_lines(change["diff"].as_str().unwrap_or(""));
            let page = json!({ "change": change, "actions": actions, "diff": diff });
            render(
                "change.html",
                &frame,
                minijinja::Value::from_serialize(&page),
            )
        }
        .await,
    )
}

/// A unified diff's lines, each with its kind (`file`, `hunk`, `add`, `del`, `ctx`), for the
/// template to colour.
fn diff_lines(diff: &str) -> Vec<Value> {
    diff.lines()
        .map(|line| {
            let kind = if line.starts_with("diff ")
                || line.starts_with("+++")
                || line.starts_with("---")
                || line.starts_with("index ")
            {
                "file"
            } else if line.starts_with("@@") {
                "hunk"
            } else if line.starts_with('+') {
                "add"
            } else if line.starts_with('-') {
                "del"
            } else {
                "ctx"
            };
            json!({ "kind": kind, "text": line })
        })
        .collect()
}

/// `GET /environments/{env}`: the status page's section for one environment (versions,
/// canary, edges, drift, approvals, rollouts, lints, audit, evaluations), with the buttons
/// the caller's roles allow: drift Check / Fix, canary Promote / Abort, and Rollback to an
/// earlier version after its diff.
pub async fn environment(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(env): Path<String>,
) -> Response {
    let Ok(caller) = caller else {
        return to_sign_in();
    };
    let frame = Frame::new(&state, &caller, "environments");
    answer(
        async {
            caller.require(&env, Role::Read)?;
            if !state.environments().contains(&env) {
                return Err(ApiError::NotFound(format!("no environment {env:?} is served")));
            }
            let environment = state.environment(&env, "-")?;
            let mut section = String::new();
            crate::page::env_section(&mut section, &state, &env, chrono::Utc::now()).await?;
            let history = environment.history().await?;
            let current = history.current;
            let deployed = state.deployed.read(&environment).await?;
            let canary = deployed.as_ref().is_some_and(|d| d.pointer.canary.is_some());
            let versions: Vec<Value> = history
                .records
                .iter()
                .rev()
                .filter(|r| Some(r.version) != current)
                .take(20)
                .map(|r| json!({"version": r.version, "action": r.action.as_str(), "author": r.author, "at": r.created_at}))
                .collect();
            let page = json!({
                "env": env,
                "section": section,
                "current": current,
                "canary": canary,
                "versions": versions,
            });
            render("environment.html", &frame, minijinja::Value::from_serialize(&page))
        }
        .await,
    )
}
