//! Flags and segments as resources: `GET /api/v1/flags` (with filters and paging),
//! `GET|PUT|PATCH|DELETE /api/v1/flags/{key}`, the same under `/api/v1/segments`, and the
//! files' JSON Schema at `/api/v1/schema/{flag,segment}.json`. Reads are from the branch's
//! last fetched commit (or a change's, with `?change=ID`); every write goes to a change
//! request (`changes/`). Reading needs any token; writing needs `edit` where it matters.
//! `list.rs`: the lists and the summary at the top of a flag's page.

mod list;

pub use list::{ListQuery, list_flags, list_segments};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::changes::catalog::{Kind, check_key};
use crate::changes::write::{Edit, Precondition, WriteRequest};
use crate::changes::{Changes, engine};
use crate::error::ApiError;

/// `?change=ID&message=...` of reads and writes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeQuery {
    /// Read from, or add to, this change request.
    pub change: Option<u64>,
    /// The commit message of a write.
    pub message: Option<String>,
}

/// Where reads come from: the branch, or a change.
async fn commit_of(changes: &Changes, change: Option<u64>) -> Result<String, ApiError> {
    match change {
        Some(id) => Ok(changes.records.get(id).await?.head),
        None => {
            changes.refresh().await?;
            changes.main().await
        }
    }
}

/// `GET /api/v1/flags/{key}`.
pub async fn get_flag(
    state: State<AppState>,
    caller: Caller,
    key: Path<String>,
    query: Query<ChangeQuery>,
) -> Result<Response, ApiError> {
    get_one(state, caller, key, query, Kind::Flag).await
}

/// `GET /api/v1/segments/{key}`.
pub async fn get_segment(
    state: State<AppState>,
    caller: Caller,
    key: Path<String>,
    query: Query<ChangeQuery>,
) -> Result<Response, ApiError> {
    get_one(state, caller, key, query, Kind::Segment).await
}

async fn get_one(
    State(state): State<AppState>,
    _caller: Caller,
    Path(key): Path<String>,
    Query(query): Query<ChangeQuery>,
    kind: Kind,
) -> Result<Response, ApiError> {
    check_key(&key)?;
    let changes = engine(&state)?;
    let commit = commit_of(changes, query.change).await?;
    let catalog = changes.catalog(&commit).await?;
    let item = catalog.items(kind).get(&key).ok_or_else(|| {
        let hint = flags_compile::suggest::did_you_mean(
            &key,
            catalog.items(kind).keys().map(String::as_str),
        );
        ApiError::NotFound(format!("no {} {key}{hint}", kind.noun()))
    })?;
    let commits = changes.repo.file_commits(&commit, &item.path, 10).await?;
    let mut body = match kind {
        Kind::Flag => {
            let context = list::Context::read(&state, &commit).await?;
            serde_json::to_value(context.summary(item))
        }
        Kind::Segment => serde_json::to_value(list::segment_summary(item, &catalog)),
    }
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    body["definition"] = item.definition.clone().unwrap_or(Value::Null);
    body["text"] = json!(item.text);
    body["commit"] = json!(commit);
    body["commits"] = json!(commits);
    Ok(with_etag(StatusCode::OK, &item.blob, body))
}

fn with_etag(status: StatusCode, etag: &str, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let text = |name: header::HeaderName| -> Result<Option<String>, ApiError> {
        headers
            .get(name.clone())
            .map(|v| {
                v.to_str()
                    .map(|s| s.trim().to_owned())
                    .map_err(|_| ApiError::BadRequest(format!("{name} is not text")))
            })
            .transpose()
    };
    if let Some(none_match) = text(header::IF_NONE_MATCH)? {
        return if none_match == "*" {
            Ok(Precondition::Absent)
        } else {
            Err(ApiError::BadRequest(
                "If-None-Match: only `*` (create if absent) is supported".into(),
            ))
        };
    }
    match text(header::IF_MATCH)? {
        Some(etag) => {
            let etag = etag.trim_start_matches("W/").trim_matches('"').to_owned();
            Ok(Precondition::Match(etag))
        }
        None => Ok(Precondition::None),
    }
}

fn json_body(bytes: &Bytes) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not UTF-8: {e}")))?;
    serde_json::from_str(text)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))
}

/// Body of `PUT`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    definition: Value,
    #[serde(default)]
    message: Option<String>,
}

/// A write's request as the route parsed it, before the edit and precondition join it.
struct Target {
    kind: Kind,
    key: String,
    query: ChangeQuery,
}

async fn write(
    state: AppState,
    caller: Caller,
    target: Target,
    headers: &HeaderMap,
    edit: Edit,
    message: Option<String>,
) -> Result<Response, ApiError> {
    let changes = engine(&state)?;
    let written = changes
        .write(
            &state,
            &caller,
            WriteRequest {
                kind: target.kind,
                key: target.key,
                edit,
                precondition: precondition(headers)?,
                change: target.query.change,
                message: message.or(target.query.message),
            },
        )
        .await?;
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let etag = written.etag.clone();
    let body = serde_json::to_value(&written).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(match etag {
        Some(etag) => with_etag(status, &etag, body),
        None => (status, Json(body)).into_response(),
    })
}

async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(query): Query<ChangeQuery>,
    headers: HeaderMap,
    body: Bytes,
    kind: Kind,
) -> Result<Response, ApiError> {
    let body: PutBody = serde_json::from_value(json_body(&body)?).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"definition\": {{...}}, \"message\"?: \"...\"}}: {e}"
        ))
    })?;
    write(
        state,
        caller,
        Target { kind, key, query },
        &headers,
        Edit::Put(body.definition),
        body.message,
    )
    .await
}

async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(query): Query<ChangeQuery>,
    headers: HeaderMap,
    body: Bytes,
    kind: Kind,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let value = json_body(&body)?;
    let edit = match content_type.as_str() {
        "application/json-patch+json" => Edit::Patch(
            serde_json::from_value(value)
                .map_err(|e| ApiError::BadRequest(format!("not a JSON Patch (RFC 6902): {e}")))?,
        ),
        "application/merge-patch+json" => Edit::MergePatch(value),
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "PATCH takes application/json-patch+json (RFC 6902) or application/merge-patch+json (RFC 7396), not {other:?}"
            )));
        }
    };
    write(
        state,
        caller,
        Target { kind, key, query },
        &headers,
        edit,
        None,
    )
    .await
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(query): Query<ChangeQuery>,
    headers: HeaderMap,
    kind: Kind,
) -> Result<Response, ApiError> {
    write(
        state,
        caller,
        Target { kind, key, query },
        &headers,
        Edit::Delete,
        None,
    )
    .await
}

macro_rules! kind_handlers {
    ($kind:expr, $put:ident, $patch:ident, $delete:ident) => {
        #[doc = concat!("`PUT` of one ", stringify!($kind), ".")]
        pub async fn $put(
            state: State<AppState>,
            caller: Caller,
            key: Path<String>,
            query: Query<ChangeQuery>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Response, ApiError> {
            put(state, caller, key, query, headers, body, $kind).await
        }
        #[doc = concat!("`PATCH` of one ", stringify!($kind), ".")]
        pub async fn $patch(
            state: State<AppState>,
            caller: Caller,
            key: Path<String>,
            query: Query<ChangeQuery>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Response, ApiError> {
            patch(state, caller, key, query, headers, body, $kind).await
        }
        #[doc = concat!("`DELETE` of one ", stringify!($kind), ".")]
        pub async fn $delete(
            state: State<AppState>,
            caller: Caller,
            key: Path<String>,
            query: Query<ChangeQuery>,
            headers: HeaderMap,
        ) -> Result<Response, ApiError> {
            delete(state, caller, key, query, headers, $kind).await
        }
    };
}
kind_handlers!(Kind::Flag, put_flag, patch_flag, delete_flag);
kind_handlers!(Kind::Segment, put_segment, patch_segment, delete_segment);

/// `GET /api/v1/schema/flag.json` and `.../segment.json`: the files' JSON Schema, for editors
/// (`# yaml-language-server: $schema=<this URL>`). Public: it says nothing about the flags.
pub async fn schema(Path(file): Path<String>) -> Result<Response, ApiError> {
    let schema = match file.as_str() {
        "flag.json" => flags_compile::schema::flag_schema(),
        "segment.json" => flags_compile::schema::segment_schema(),
        _ => {
            return Err(ApiError::NotFound(format!(
                "no schema {file:?}: there are flag.json and segment.json"
            )));
        }
    };
    let mut response = Json(schema).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/schema+json"),
    );
    Ok(response)
}
