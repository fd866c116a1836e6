//! Flags and segments as resources: `GET /api/v1/flags` (with filters and paging),
//! `GET|PUT|PATCH|DELETE /api/v1/flags/{key}`, the same under `/api/v1/segments`, and the
//! files' JSON Schema at `/api/v1/schema/{flag,segment}.json`. Reads are from the branch's
//! last fetched commit (or a change's, with `?change=ID`); every write goes to a change
//! request (`changes/`). Reading needs any token; writing needs `edit` where it matters.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::changes::catalog::{Catalog, Item, Kind, check_key};
use crate::changes::write::{Edit, Precondition, WriteRequest};
use crate::changes::{Changes, Compilation, engine, environments};
use crate::error::{ApiError, diagnostic_json};

/// `?change=ID&message=...` of reads and writes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeQuery {
    /// Read from, or add to, this change request.
    pub change: Option<u64>,
    /// The commit message of a write.
    pub message: Option<String>,
}

/// Filters and paging of the list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Substring of the key or description (case-insensitive).
    pub q: Option<String>,
    /// Only flags whose files define this environment.
    pub env: Option<String>,
    /// `release`, `experiment`, `operational`, `permission`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The owner.
    pub owner: Option<String>,
    /// Carrying this tag.
    pub tag: Option<String>,
    /// `true`: only flags with lints; `false`: only without.
    pub lint: Option<bool>,
    /// `true`: only stale flags (expired, past review, or not evaluated for 7 days of
    /// telemetry); `false`: only fresh ones.
    pub stale: Option<bool>,
    /// Read from this change request instead of the branch.
    pub change: Option<u64>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Items to skip.
    pub offset: Option<usize>,
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

/// `GET /api/v1/flags`.
pub async fn list_flags(
    state: State<AppState>,
    caller: Caller,
    query: Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    list(state, caller, query, Kind::Flag).await
}

/// `GET /api/v1/segments`.
pub async fn list_segments(
    state: State<AppState>,
    caller: Caller,
    query: Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    list(state, caller, query, Kind::Segment).await
}

async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<ListQuery>,
    kind: Kind,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(list_value(&state, &query, kind).await?))
}

/// The list `GET /api/v1/flags` (or `/segments`) answers, as JSON: what the console's flags
/// page shows too.
pub async fn list_value(
    state: &AppState,
    query: &ListQuery,
    kind: Kind,
) -> Result<Value, ApiError> {
    let changes = engine(state)?;
    let commit = commit_of(changes, query.change).await?;
    let catalog = changes.catalog(&commit).await?;
    let envs = environments(state);
    let compiled = changes.compile(&commit, &[], &envs).await?;
    let context = Context::read(state, &compiled).await;
    let today = Utc::now().date_naive();
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let offset = query.offset.unwrap_or(0);
    let mut matching = Vec::new();
    for item in catalog.items(kind).values() {
        let summary = match kind {
            Kind::Flag => flag_summary(item, &envs, &context, today),
            Kind::Segment => segment_summary(item, &catalog),
        };
        if matches(&summary, query) {
            matching.push(summary);
        }
    }
    let total = matching.len();
    let page: Vec<Value> = matching.into_iter().skip(offset).take(limit).collect();
    let next = (offset + page.len() < total).then_some(offset + page.len());
    let name = match kind {
        Kind::Flag => "flags",
        Kind::Segment => "segments",
    };
    Ok(json!({
        name: page,
        "commit": commit,
        "total": total,
        "offset": offset,
        "next_offset": next,
    }))
}

fn matches(summary: &Value, query: &ListQuery) -> bool {
    let text = |field: &str| summary.get(field).and_then(Value::as_str).unwrap_or("");
    if let Some(q) = &query.q {
        let q = q.to_lowercase();
        if !text("key").to_lowercase().contains(&q)
            && !text("description").to_lowercase().contains(&q)
        {
            return false;
        }
    }
    if query.kind.as_deref().is_some_and(|t| text("type") != t)
        || query.owner.as_deref().is_some_and(|o| text("owner") != o)
    {
        return false;
    }
    if let Some(tag) = &query.tag {
        let tags = summary.get("tags").and_then(Value::as_array);
        if !tags.is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(tag))) {
            return false;
        }
    }
    if let Some(env) = &query.env {
        let defined = summary
            .get("environments")
            .and_then(|e| e.get(env))
            .and_then(|e| e.get("files"))
            .is_some_and(|f| !f.is_null());
        if !defined {
            return false;
        }
    }
    if let Some(lint) = query.lint {
        let has = summary
            .get("lints")
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty());
        if has != lint {
            return false;
        }
    }
    if let Some(stale) = query.stale
        && summary
            .get("stale")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            != stale
    {
        return false;
    }
    true
}

/// What every flag of a list shares: deployed state, drift and telemetry per environment.
struct Context {
    envs: BTreeMap<String, EnvContext>,
}

struct EnvContext {
    compiled: Arc<Compilation>,
    deployed: Option<Arc<crate::deployed::Deployed>>,
    drifted: std::collections::HashSet<String>,
    telemetry: crate::telemetry::EnvStats,
    /// The compilation's lints by flag key, as JSON (built once, not per flag).
    lints: std::collections::HashMap<String, Vec<Value>>,
}

impl Context {
    async fn read(state: &AppState, compiled: &BTreeMap<String, Arc<Compilation>>) -> Context {
        let mut envs = BTreeMap::new();
        for (env, result) in compiled {
            let deployed = match state.environment(env, "-") {
                Ok(environment) => state.deployed.read(&environment).await.ok().flatten(),
                Err(_) => None,
            };
            let drifted = match (&deployed, result.as_ref()) {
                (Some(deployed), Ok(compiled)) => {
                    flags_compile::diff::diff(&deployed.blob.body, &compiled.body)
                        .flags
                        .into_iter()
                        .map(|f| f.key)
                        .collect()
                }
                _ => Default::default(),
            };
            let mut lints: std::collections::HashMap<String, Vec<Value>> = Default::default();
            if let Ok(compiled) = result.as_ref() {
                for d in &compiled.warnings {
                    if let Some(flag) = &d.flag {
                        lints
                            .entry(flag.clone())
                            .or_default()
                            .push(diagnostic_json(d));
                    }
                }
            }
            envs.insert(
                env.clone(),
                EnvContext {
                    compiled: result.clone(),
                    deployed,
                    drifted,
                    lints,
                    telemetry: state.telemetry.environment(env).await,
                },
            );
        }
        Context { envs }
    }
}

fn field<'a>(definition: Option<&'a Value>, name: &str) -> &'a Value {
    definition.and_then(|d| d.get(name)).unwrap_or(&Value::Null)
}

fn flag_summary(item: &Item, envs: &[String], context: &Context, today: NaiveDate) -> Value {
    let definition = item.definition.as_ref();
    let prerequisites: Vec<Value> = field(definition, "prerequisites")
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| match p {
                    Value::String(_) => p.clone(),
                    other => other.get("flag").cloned().unwrap_or(Value::Null),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut environments = serde_json::Map::new();
    let mut lints: Vec<Value> = Vec::new();
    let mut not_evaluated = false;
    for env in envs {
        let Some(ctx) = context.envs.get(env) else {
            continue;
        };
        let files = field(definition, "environments").get(env).map(|e| {
            json!({
                "enabled": e.get("enabled").and_then(Value::as_bool).unwrap_or(false),
                "rules": e.get("rules").and_then(Value::as_array).map_or(0, Vec::len),
                "fallthrough": e.get("fallthrough").cloned().unwrap_or(Value::Null),
                "rollout": rollout_of(&ctx.compiled, &item.key),
            })
        });
        let deployed = ctx.deployed.as_ref().map(|d| {
            // The body's flags are sorted by key.
            let flags = &d.blob.body.flags;
            let flag = flags
                .binary_search_by(|f| f.key.as_str().cmp(&item.key))
                .ok()
                .map(|i| &flags[i]);
            json!({
                "version": d.pointer.version,
                "present": flag.is_some(),
                "enabled": flag.map(|f| f.enabled),
                "killed": flag.is_some_and(|f| f.killed),
                "canary": d.pointer.canary.as_ref().map(|c| json!({"since": c.since, "percent": c.percent})),
                "drift": ctx.drifted.contains(&item.key),
            })
        });
        let stats = ctx.telemetry.flags.get(&item.key);
        let week_ago = today - Duration::days(7);
        let mut week: BTreeMap<String, u64> = BTreeMap::new();
        if let Some(stats) = stats {
            for (day, variants) in &stats.days {
                if *day > week_ago {
                    for (variant, n) in variants {
                        *week.entry(variant.clone()).or_default() += n;
                    }
                }
            }
        }
        // "Not evaluated" means something only after a week of telemetry from this environment.
        if ctx
            .telemetry
            .first_report
            .is_some_and(|first| (Utc::now() - first).num_days() >= 7)
            && week.is_empty()
            && files.is_some()
        {
            not_evaluated = true;
        }
        for d in ctx.lints.get(&item.key).into_iter().flatten() {
            if !lints.contains(d) {
                lints.push(d.clone());
            }
        }
        environments.insert(
            env.clone(),
            json!({
                "files": files,
                "deployed": deployed,
                "telemetry": {
                    "last_evaluated": stats.and_then(|s| s.last_seen),
                    "evaluations_7d": week,
                },
            }),
        );
    }
    let past = |name: &str| {
        field(definition, name)
            .as_str()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .is_some_and(|d| d < today)
    };
    let expired = past("expires");
    json!({
        "key": item.key,
        "file": item.file,
        "etag": item.blob,
        "description": field(definition, "description"),
        "owner": field(definition, "owner"),
        "type": field(definition, "type"),
        "tags": field(definition, "tags"),
        "expires": field(definition, "expires"),
        "review_by": field(definition, "review-by"),
        "prerequisites": prerequisites,
        "expired": expired,
        "stale": expired || past("review-by") || not_evaluated,
        "lints": lints,
        "environments": environments,
    })
}

fn rollout_of(compiled: &Compilation, key: &str) -> Value {
    compiled
        .as_ref()
        .ok()
        .and_then(|c| c.schedules.as_ref())
        .and_then(|s| s.iter().find(|s| s.flag == key))
        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
        .unwrap_or(Value::Null)
}

fn segment_summary(item: &Item, catalog: &Catalog) -> Value {
    let definition = item.definition.as_ref();
    let used_by: Vec<&str> = catalog
        .flags
        .values()
        .filter(|flag| mentions_segment(flag.definition.as_ref(), &item.key))
        .map(|flag| flag.key.as_str())
        .collect();
    json!({
        "key": item.key,
        "file": item.file,
        "etag": item.blob,
        "description": field(definition, "description"),
        "owner": field(definition, "owner"),
        "used_by": used_by,
    })
}

/// Whether a definition refers to segment `key` anywhere (`segment: key` in a condition).
fn mentions_segment(definition: Option<&Value>, key: &str) -> bool {
    fn walk(value: &Value, key: &str) -> bool {
        match value {
            Value::Object(map) => map
                .iter()
                .any(|(k, v)| (k == "segment" && v.as_str() == Some(key)) || walk(v, key)),
            Value::Array(items) => items.iter().any(|v| walk(v, key)),
            _ => false,
        }
    }
    definition.is_some_and(|d| walk(d, key))
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
    let (etag, body) = one_value(&state, &key, query.change, kind).await?;
    Ok(with_etag(StatusCode::OK, &etag, body))
}

/// One flag (or segment) as `GET /api/v1/flags/{key}` answers it, with its ETag: what the
/// console's flag page shows too.
pub async fn one_value(
    state: &AppState,
    key: &str,
    change: Option<u64>,
    kind: Kind,
) -> Result<(String, Value), ApiError> {
    let key = key.to_owned();
    check_key(&key)?;
    let changes = engine(state)?;
    let commit = commit_of(changes, change).await?;
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
            let envs = environments(state);
            let compiled = changes.compile(&commit, &[], &envs).await?;
            let context = Context::read(state, &compiled).await;
            flag_summary(item, &envs, &context, Utc::now().date_naive())
        }
        Kind::Segment => segment_summary(item, &catalog),
    };
    body["definition"] = item.definition.clone().unwrap_or(Value::Null);
    body["text"] = json!(item.text);
    body["commit"] = json!(commit);
    body["commits"] = json!(commits);
    Ok((item.blob.clone(), body))
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
