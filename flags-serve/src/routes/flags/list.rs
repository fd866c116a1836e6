//! `GET /api/v1/flags` and `GET /api/v1/segments`: every flag (or segment) of a commit with
//! what the files say, what each environment serves and what the edge reported, filtered and
//! paged; and the same summary for one flag's page.
//!
//! Cost at 1,000 flags: the catalog, the compilations and each environment's drift and lints
//! are computed once per commit (and deployed version) and shared; a request only assembles
//! typed summaries that borrow from them and serializes them straight to bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::commit_of;
use crate::AppState;
use crate::auth::Caller;
use crate::changes::catalog::{Catalog, Item};
use crate::changes::overview::Overview;
use crate::changes::{Compilation, engine, environments};
use crate::deployed::Deployed;
use crate::error::ApiError;
use crate::telemetry::EnvStats;

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

/// One page of a list, serialized straight from the borrowed summaries (no JSON tree).
#[derive(Serialize)]
struct Page<T> {
    #[serde(flatten)]
    items: BTreeMap<&'static str, Vec<T>>,
    commit: String,
    total: usize,
    offset: usize,
    next_offset: Option<usize>,
}

/// `GET /api/v1/flags`.
pub async fn list_flags(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let changes = engine(&state)?;
    let commit = commit_of(changes, query.change).await?;
    let catalog = changes.catalog(&commit).await?;
    let context = Context::read(&state, &commit).await?;
    let filter = Filter::new(&query);
    let summaries: Vec<FlagSummary> = catalog
        .flags
        .values()
        .map(|item| context.summary(item))
        .filter(|summary| filter.keeps(summary))
        .collect();
    Ok(page(&query, "flags", summaries, commit))
}

/// `GET /api/v1/segments`.
pub async fn list_segments(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let changes = engine(&state)?;
    let commit = commit_of(changes, query.change).await?;
    let catalog = changes.catalog(&commit).await?;
    let q = query.q.as_deref().map(str::to_lowercase);
    let summaries: Vec<SegmentSummary> = catalog
        .segments
        .values()
        .map(|item| segment_summary(item, &catalog))
        .filter(|s| {
            q.as_deref()
                .is_none_or(|q| contains(s.key, q) || contains_value(s.description, q))
                && query
                    .owner
                    .as_deref()
                    .is_none_or(|o| s.owner.as_str() == Some(o))
        })
        .collect();
    Ok(page(&query, "segments", summaries, commit))
}

fn page<T: Serialize>(
    query: &ListQuery,
    name: &'static str,
    matching: Vec<T>,
    commit: String,
) -> Response {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let offset = query.offset.unwrap_or(0);
    let total = matching.len();
    let items: Vec<T> = matching.into_iter().skip(offset).take(limit).collect();
    let next_offset = (offset + items.len() < total).then_some(offset + items.len());
    let page = Page {
        items: BTreeMap::from([(name, items)]),
        commit,
        total,
        offset,
        next_offset,
    };
    Json(page).into_response()
}

fn contains(text: &str, lowercase_needle: &str) -> bool {
    text.to_lowercase().contains(lowercase_needle)
}

fn contains_value(value: &Value, lowercase_needle: &str) -> bool {
    value
        .as_str()
        .is_some_and(|t| contains(t, lowercase_needle))
}

/// The list's filters, prepared once.
struct Filter<'q> {
    query: &'q ListQuery,
    q: Option<String>,
}

impl<'q> Filter<'q> {
    fn new(query: &'q ListQuery) -> Filter<'q> {
        Filter {
            query,
            q: query.q.as_deref().map(str::to_lowercase),
        }
    }

    fn keeps(&self, s: &FlagSummary) -> bool {
        let query = self.query;
        let is = |value: &Value, wanted: &Option<String>| {
            wanted.as_deref().is_none_or(|w| value.as_str() == Some(w))
        };
        self.q
            .as_deref()
            .is_none_or(|q| contains(s.key, q) || contains_value(s.description, q))
            && is(s.kind, &query.kind)
            && is(s.owner, &query.owner)
            && query.tag.as_deref().is_none_or(|tag| {
                s.tags
                    .as_array()
                    .is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(tag)))
            })
            && query
                .env
                .as_deref()
                .is_none_or(|env| s.environments.get(env).is_some_and(|e| e.files.is_some()))
            && query.lint.is_none_or(|lint| s.lints.is_empty() != lint)
            && query.stale.is_none_or(|stale| s.stale == stale)
    }
}

/// What every flag of a list shares: per environment, the compilation, what it serves, its
/// overview (drift, lints) and telemetry.
pub(super) struct Context {
    envs: Vec<EnvContext>,
    now: DateTime<Utc>,
    today: NaiveDate,
}

struct EnvContext {
    name: String,
    compiled: Arc<Compilation>,
    deployed: Option<Arc<Deployed>>,
    overview: Arc<Overview>,
    telemetry: EnvStats,
}

impl Context {
    /// Reads every served environment's state for `commit`.
    pub(super) async fn read(state: &AppState, commit: &str) -> Result<Context, ApiError> {
        let changes = engine(state)?;
        let names = environments(state);
        let compiled = changes.compile(commit, &[], &names).await?;
        let mut envs = Vec::with_capacity(compiled.len());
        for (name, compiled) in compiled {
            let deployed = match state.environment(&name, "-") {
                Ok(environment) => state.deployed.read(&environment).await.ok().flatten(),
                Err(_) => None,
            };
            let overview = changes.overview(commit, &name, &compiled, deployed.as_deref());
            let telemetry = state.telemetry.environment(&name).await;
            envs.push(EnvContext {
                name,
                compiled,
                deployed,
                overview,
                telemetry,
            });
        }
        let now = Utc::now();
        Ok(Context {
            envs,
            now,
            today: now.date_naive(),
        })
    }

    /// One flag's summary.
    pub(super) fn summary<'a>(&'a self, item: &'a Item) -> FlagSummary<'a> {
        let definition = item.definition.as_ref();
        let prerequisites = field(definition, "prerequisites")
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|p| match p {
                        Value::String(_) => p,
                        other => other.get("flag").unwrap_or(&Value::Null),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut environments = BTreeMap::new();
        let mut lints: Vec<&Value> = Vec::new();
        let mut not_evaluated = false;
        let week_ago = self.today - Duration::days(7);
        for env in &self.envs {
            let files = field(definition, "environments")
                .get(&env.name)
                .map(|e| FilesState {
                    enabled: e.get("enabled").and_then(Value::as_bool).unwrap_or(false),
                    rules: e.get("rules").and_then(Value::as_array).map_or(0, Vec::len),
                    fallthrough: e.get("fallthrough").unwrap_or(&Value::Null),
                    rollout: env
                        .compiled
                        .as_ref()
                        .as_ref()
                        .ok()
                        .and_then(|c| c.schedules.as_ref())
                        .and_then(|s| s.iter().find(|s| s.flag == item.key)),
                });
            let deployed = env.deployed.as_deref().map(|d| {
                // The body's flags are sorted by key.
                let flags = &d.blob.body.flags;
                let flag = flags
                    .binary_search_by(|f| f.key.as_str().cmp(&item.key))
                    .ok()
                    .map(|i| &flags[i]);
                DeployedState {
                    version: d.pointer.version,
                    present: flag.is_some(),
                    enabled: flag.map(|f| f.enabled),
                    killed: flag.is_some_and(|f| f.killed),
                    canary: d.pointer.canary.as_ref().map(|c| CanaryState {
                        since: c.since,
                        percent: c.percent,
                    }),
                    drift: env.overview.drifted.contains(&item.key),
                }
            });
            let stats = env.telemetry.flags.get(&item.key);
            let mut week: BTreeMap<&str, u64> = BTreeMap::new();
            for (day, variants) in stats.iter().flat_map(|s| &s.days) {
                if *day > week_ago {
                    for (variant, n) in variants {
                        *week.entry(variant.as_str()).or_default() += n;
                    }
                }
            }
            // "Not evaluated" means something only after a week of telemetry from here.
            if env
                .telemetry
                .first_report
                .is_some_and(|first| (self.now - first).num_days() >= 7)
                && week.is_empty()
                && files.is_some()
            {
                not_evaluated = true;
            }
            for d in env.overview.lints.get(&item.key).into_iter().flatten() {
                if !lints.contains(&d) {
                    lints.push(d);
                }
            }
            environments.insert(
                env.name.as_str(),
                EnvSummary {
                    files,
                    deployed,
                    telemetry: TelemetrySummary {
                        last_evaluated: stats.and_then(|s| s.last_seen),
                        evaluations_7d: week,
                    },
                },
            );
        }
        let past = |name: &str| {
            field(definition, name)
                .as_str()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .is_some_and(|d| d < self.today)
        };
        let expired = past("expires");
        FlagSummary {
            key: &item.key,
            file: &item.file,
            etag: &item.blob,
            description: field(definition, "description"),
            owner: field(definition, "owner"),
            kind: field(definition, "type"),
            tags: field(definition, "tags"),
            expires: field(definition, "expires"),
            review_by: field(definition, "review-by"),
            prerequisites,
            expired,
            stale: expired || past("review-by") || not_evaluated,
            lints,
            environments,
        }
    }
}

/// A flag as the list (and the top of its page) shows it.
#[derive(Serialize)]
pub(super) struct FlagSummary<'a> {
    key: &'a str,
    file: &'a str,
    etag: &'a str,
    description: &'a Value,
    owner: &'a Value,
    #[serde(rename = "type")]
    kind: &'a Value,
    tags: &'a Value,
    expires: &'a Value,
    review_by: &'a Value,
    prerequisites: Vec<&'a Value>,
    expired: bool,
    stale: bool,
    lints: Vec<&'a Value>,
    environments: BTreeMap<&'a str, EnvSummary<'a>>,
}

#[derive(Serialize)]
struct EnvSummary<'a> {
    /// What the files say (`None`: the flag does not define the environment).
    files: Option<FilesState<'a>>,
    /// What the environment serves (`None`: nothing published yet).
    deployed: Option<DeployedState>,
    telemetry: TelemetrySummary<'a>,
}

#[derive(Serialize)]
struct FilesState<'a> {
    enabled: bool,
    rules: usize,
    fallthrough: &'a Value,
    rollout: Option<&'a flags_compile::schedule::Schedule>,
}

#[derive(Serialize)]
struct DeployedState {
    version: u64,
    present: bool,
    enabled: Option<bool>,
    killed: bool,
    canary: Option<CanaryState>,
    drift: bool,
}

#[derive(Serialize)]
struct CanaryState {
    since: u64,
    percent: shared_eval::Share,
}

#[derive(Serialize)]
struct TelemetrySummary<'a> {
    last_evaluated: Option<DateTime<Utc>>,
    evaluations_7d: BTreeMap<&'a str, u64>,
}

/// A segment as the list (and the top of its page) shows it.
#[derive(Serialize)]
pub(super) struct SegmentSummary<'a> {
    key: &'a str,
    file: &'a str,
    etag: &'a str,
    description: &'a Value,
    owner: &'a Value,
    used_by: Vec<&'a str>,
}

pub(super) fn segment_summary<'a>(item: &'a Item, catalog: &'a Catalog) -> SegmentSummary<'a> {
    let definition = item.definition.as_ref();
    SegmentSummary {
        key: &item.key,
        file: &item.file,
        etag: &item.blob,
        description: field(definition, "description"),
        owner: field(definition, "owner"),
        used_by: catalog
            .flags
            .values()
            .filter(|flag| mentions_segment(flag.definition.as_ref(), &item.key))
            .map(|flag| flag.key.as_str())
            .collect(),
    }
}

fn field<'a>(definition: Option<&'a Value>, name: &str) -> &'a Value {
    definition.and_then(|d| d.get(name)).unwrap_or(&Value::Null)
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
