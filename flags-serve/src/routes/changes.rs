//! Change requests: `GET /api/v1/changes` (`?state=open|merged|closed`), `POST` (an empty
//! change: title, description), `GET /api/v1/changes/{id}`, and `POST .../approve`,
//! `.../merge`, `.../close`. The rules (who may approve, how many approvals, what a merge
//! publishes) live in `changes/review.rs`; these handlers only parse and answer.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::changes::engine;
use crate::changes::view::Detail;
use crate::error::ApiError;

/// `?state=` of the list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open` (the default: open, approved and conflicted ones), `merged`, `closed` or `all`.
    pub state: Option<String>,
}

/// `GET /api/v1/changes`.
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "changes": list_value(&state, query.state.as_deref()).await? }),
    ))
}

/// The changes `GET /api/v1/changes?state=` lists (`open` by default), newest first: what
/// the console's changes page shows too.
pub async fn list_value(state: &AppState, wanted: Option<&str>) -> Result<Vec<Value>, ApiError> {
    let changes = engine(state)?;
    changes.refresh().await?;
    let wanted = wanted.unwrap_or("open");
    if !matches!(wanted, "open" | "merged" | "closed" | "all") {
        return Err(ApiError::BadRequest(format!(
            "state: {wanted:?} is not one of open, merged, closed, all"
        )));
    }
    let mut out = Vec::new();
    for change in changes.records.all().await?.into_iter().rev() {
        let stored = serde_json::to_value(change.state).unwrap_or_default();
        if wanted != "all" && stored.as_str() != Some(wanted) {
            continue;
        }
        out.push(changes.view(state, &change, Detail::Summary).await?);
    }
    Ok(out)
}

/// Body of `POST /api/v1/changes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// Title.
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
}

/// `POST /api/v1/changes`.
pub async fn open(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<OpenRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let changes = engine(&state)?;
    let change = changes
        .open_change(&state, &caller, request.title, request.description)
        .await?;
    let view = changes.view(&state, &change, Detail::Full).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/v1/changes/{id}`.
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(show_value(&state, id).await?))
}

/// One change as `GET /api/v1/changes/{id}` shows it (commits, diffs, lints, approvals).
pub async fn show_value(state: &AppState, id: u64) -> Result<Value, ApiError> {
    let changes = engine(state)?;
    changes.refresh().await?;
    let change = changes.records.get(id).await?;
    changes.view(state, &change, Detail::Full).await
}

/// `POST /api/v1/changes/{id}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let changes = engine(&state)?;
    let (change, _) = changes.approve(&state, &caller, id).await?;
    Ok(Json(changes.view(&state, &change, Detail::Summary).await?))
}

/// `POST /api/v1/changes/{id}/merge`.
pub async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let changes = engine(&state)?;
    let outcome = changes.merge(&state, &caller, id).await?;
    Ok(Json(json!({
        "change": outcome.change,
        "commit": outcome.commit,
        "rebased": outcome.rebased,
        "published": outcome.published,
    })))
}

/// `POST /api/v1/changes/{id}/close`.
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let changes = engine(&state)?;
    let change = changes.close(&state, &caller, id).await?;
    Ok(Json(json!({ "change": change })))
}
