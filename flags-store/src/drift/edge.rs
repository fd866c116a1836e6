//! The edge layer: each endpoint's `/_flags/health` against the store's pointer, and the
//! endpoints as a fleet.
//!
//! # Converging or drifted
//!
//! A healthy edge picks a new pointer up within its revalidation interval (`revalidate_ms` on
//! its health document) once the CDN copy is purged. An edge on an older version is
//! **converging** while the version after its own is younger than `revalidate_ms` +
//! [`CONVERGE_GRACE`] (one origin round trip, and the one-second precision of the records'
//! `created_at`), and **stale** (drift) after that: it was not purged, or cannot load.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use shared_eval::Body;

use super::store::Inspection;
use super::{Finding, FindingKind, Layer};
use crate::layout::{ChangeSummary, Pointer};
use crate::publish::Environment;
use flags_compile::diff::{self, FlagDiff};

/// Slack added to an edge's revalidation interval before an older version counts as drift.
pub const CONVERGE_GRACE: Duration = Duration::from_secs(2);

/// The health path every edge serves.
pub const HEALTH_PATH: &str = "/_flags/health";

/// Where an edge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeState {
    /// Serves the store's version.
    InSync,
    /// Serves an older version, but within its revalidation interval of the change.
    Converging,
    /// Serves another version for longer than its interval allows.
    Stale,
    /// Has nothing loaded.
    NotLoaded,
    /// Serves another environment.
    WrongEnvironment,
    /// Could not be asked.
    Unreachable,
    /// Answered, but the store could not be read to compare.
    Unknown,
}

/// The last load error an edge reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadError {
    /// What failed (fixed sentences, no secrets).
    pub message: String,
    /// When (RFC 3339).
    pub at: String,
}

/// The fields of `/_flags/health` drift reads (edge-worker/src/health.rs documents them all).
#[derive(Debug, Clone, Deserialize)]
struct Health {
    #[serde(default)]
    environment: String,
    #[serde(default)]
    loaded: bool,
    version: Option<u64>,
    sha256: Option<String>,
    content_hash: Option<String>,
    age_ms: Option<u64>,
    loaded_at: Option<String>,
    #[serde(default)]
    consecutive_failures: u32,
    last_error: Option<LoadError>,
    #[serde(default)]
    revalidate_ms: u64,
    canary: Option<EdgeCanary>,
}

/// The canary an edge serves beside its stable version (the `canary` of `/_flags/health`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeCanary {
    /// The version that started it.
    pub since: Option<u64>,
    /// The share of users it serves, in percent.
    pub percent: Option<f64>,
    /// Its blob's SHA-256.
    pub sha256: Option<String>,
    /// Its content hash.
    pub content_hash: Option<String>,
}

/// One edge endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeReport {
    /// Its base URL.
    pub url: String,
    /// Where it stands.
    pub state: EdgeState,
    /// The environment it serves.
    pub environment: Option<String>,
    /// The version it serves.
    pub version: Option<u64>,
    /// The `.gz` SHA-256 it serves.
    pub sha256: Option<String>,
    /// The content hash it serves.
    pub content_hash: Option<String>,
    /// The canary it serves beside, when it has one loaded.
    pub canary: Option<EdgeCanary>,
    /// How long ago it loaded what it serves.
    pub age_ms: Option<u64>,
    /// When it loaded it.
    pub loaded_at: Option<String>,
    /// Its revalidation interval.
    pub revalidate_ms: Option<u64>,
    /// How long the store has been past its version, when it is behind.
    pub behind_ms: Option<u64>,
    /// Its last load error.
    pub last_error: Option<LoadError>,
    /// Failed loads in a row.
    pub consecutive_failures: u32,
    /// What it would gain by converging (its version -> the store's), when known.
    pub summary: Option<ChangeSummary>,
    /// The same, flag by flag.
    pub flags: Vec<FlagDiff>,
    /// Why it could not be asked.
    pub error: Option<String>,
}

impl EdgeReport {
    fn unreachable(url: &str, error: String) -> EdgeReport {
        EdgeReport {
            url: url.to_owned(),
            state: EdgeState::Unreachable,
            environment: None,
            version: None,
            sha256: None,
            content_hash: None,
            canary: None,
            age_ms: None,
            loaded_at: None,
            revalidate_ms: None,
            behind_ms: None,
            last_error: None,
            consecutive_failures: 0,
            summary: None,
            flags: Vec::new(),
            error: Some(error),
        }
    }

    /// The finding, if this edge drifted.
    pub fn finding(&self) -> Option<Finding> {
        let error = self
            .last_error
            .as_ref()
            .map(|e| format!("; last load error at {}: {}", e.at, e.message))
            .unwrap_or_default();
        let (kind, message, fix) = match self.state {
            EdgeState::Stale => (
                FindingKind::EdgeStale,
                format!(
                    "{} serves version {} while the store has moved on {} ago (revalidation interval {} ms){error}",
                    self.url,
                    self.version.map_or("?".to_owned(), |v| v.to_string()),
                    self.behind_ms
                        .map_or("?".to_owned(), |ms| format!("{:.1} s", ms as f64 / 1e3)),
                    self.revalidate_ms.unwrap_or_default(),
                ),
                Some("purge it and wait until it converges".to_owned()),
            ),
            EdgeState::NotLoaded => (
                FindingKind::EdgeNotLoaded,
                format!("{} has no flags loaded{error}", self.url),
                Some("purge it and wait until it converges".to_owned()),
            ),
            EdgeState::WrongEnvironment => (
                FindingKind::EdgeWrongEnvironment,
                format!(
                    "{} serves environment {:?}",
                    self.url,
                    self.environment.as_deref().unwrap_or_default()
                ),
                None,
            ),
            _ => return None,
        };
        Some(Finding {
            layer: Layer::Edge,
            against: Layer::Store,
            kind,
            target: Some(self.url.clone()),
            message,
            fix,
        })
    }
}

/// How many edges serve one version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetVersion {
    /// The version (none: nothing loaded).
    pub version: Option<u64>,
    /// Its `.gz` SHA-256.
    pub sha256: Option<String>,
    /// The canary served beside it, if any.
    pub canary: Option<EdgeCanary>,
    /// Whether it is the store's.
    pub current: bool,
    /// How many endpoints serve it.
    pub endpoints: usize,
}

/// The edges as a whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fleet {
    /// Endpoints asked.
    pub endpoints: usize,
    /// Serving the store's version.
    pub in_sync: usize,
    /// Behind, within their interval.
    pub converging: usize,
    /// Drifted (stale, nothing loaded, wrong environment).
    pub drifted: usize,
    /// Not answering.
    pub unreachable: usize,
    /// Which versions are served, newest first, over the endpoints that answered.
    pub versions: Vec<FleetVersion>,
}

impl Fleet {
    /// Counts `edges`.
    pub fn of(edges: &[EdgeReport]) -> Fleet {
        let count = |state: &[EdgeState]| edges.iter().filter(|e| state.contains(&e.state)).count();
        type Key = (Option<u64>, Option<String>, Option<String>);
        let mut versions: BTreeMap<Key, (bool, Option<EdgeCanary>, usize)> = BTreeMap::new();
        for edge in edges.iter().filter(|e| e.state != EdgeState::Unreachable) {
            let canary_sha = edge.canary.as_ref().and_then(|c| c.sha256.clone());
            let entry = versions
                .entry((edge.version, edge.sha256.clone(), canary_sha))
                .or_insert((edge.state == EdgeState::InSync, edge.canary.clone(), 0));
            entry.2 += 1;
        }
        Fleet {
            endpoints: edges.len(),
            in_sync: count(&[EdgeState::InSync]),
            converging: count(&[EdgeState::Converging]),
            drifted: count(&[
                EdgeState::Stale,
                EdgeState::NotLoaded,
                EdgeState::WrongEnvironment,
            ]),
            unreachable: count(&[EdgeState::Unreachable]),
            versions: versions
                .into_iter()
                .rev()
                .map(
                    |((version, sha256, _), (current, canary, endpoints))| FleetVersion {
                        version,
                        sha256,
                        canary,
                        current,
                        endpoints,
                    },
                )
                .collect(),
        }
    }
}

async fn fetch_health(client: &reqwest::Client, url: &str) -> Result<Health, String> {
    let response = client
        .get(format!("{}{HEALTH_PATH}", url.trim_end_matches('/')))
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                "connection failed".to_owned()
            } else {
                "request failed".to_owned()
            }
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{HEALTH_PATH} answered HTTP {}", status.as_u16()));
    }
    response
        .json::<Health>()
        .await
        .map_err(|e| format!("{HEALTH_PATH} is not a health document: {e}"))
}

/// Asks every edge at once, then classifies each against the store.
pub async fn check_all(
    env: &Environment,
    store: Option<&Inspection>,
    urls: &[String],
    timeout: Duration,
) -> Vec<EdgeReport> {
    let pointer = store.and_then(|s| s.pointer.as_ref());
    let body = store.and_then(|s| s.body.as_ref());
    check_against(env, pointer, body, urls, timeout).await
}

/// [`check_all`] against a pointer and served body the caller already holds (the service's
/// status page reads them once for every section).
pub async fn check_against(
    env: &Environment,
    pointer: Option<&Pointer>,
    body: Option<&Body>,
    urls: &[String],
    timeout: Duration,
) -> Vec<EdgeReport> {
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(client) => client,
        Err(e) => {
            return urls
                .iter()
                .map(|u| EdgeReport::unreachable(u, format!("no HTTP client: {e}")))
                .collect();
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (index, url) in urls.iter().enumerate() {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move { (index, fetch_health(&client, &url).await) });
    }
    let mut answers: Vec<Option<Result<Health, String>>> = urls.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, answer)) = joined
            && let Some(slot) = answers.get_mut(index)
        {
            *slot = Some(answer);
        }
    }
    let now = chrono::Utc::now();
    let mut reports = Vec::with_capacity(urls.len());
    for (url, answer) in urls.iter().zip(answers) {
        let health = match answer.unwrap_or_else(|| Err("health request did not finish".into())) {
            Ok(health) => health,
            Err(error) => {
                reports.push(EdgeReport::unreachable(url, error));
                continue;
            }
        };
        reports.push(classify(env, pointer, body, url, health, now).await);
    }
    reports
}

async fn classify(
    env: &Environment,
    pointer: Option<&Pointer>,
    served: Option<&Body>,
    url: &str,
    health: Health,
    now: chrono::DateTime<chrono::Utc>,
) -> EdgeReport {
    let mut report = EdgeReport {
        url: url.to_owned(),
        state: EdgeState::Unknown,
        environment: Some(health.environment.clone()),
        version: health.version.filter(|_| health.loaded),
        sha256: health.sha256.clone().filter(|_| health.loaded),
        content_hash: health.content_hash.clone(),
        canary: health.canary.clone().filter(|_| health.loaded),
        age_ms: health.age_ms,
        loaded_at: health.loaded_at.clone(),
        revalidate_ms: Some(health.revalidate_ms),
        behind_ms: None,
        last_error: health.last_error.clone(),
        consecutive_failures: health.consecutive_failures,
        summary: None,
        flags: Vec::new(),
        error: None,
    };
    if health.environment != env.name() {
        report.state = EdgeState::WrongEnvironment;
        return report;
    }
    let Some(pointer) = pointer else {
        report.state = if health.loaded {
            EdgeState::Unknown
        } else {
            EdgeState::NotLoaded
        };
        return report;
    };
    // The worker re-reads a blob only when its SHA-256 changes, so after a rollback to the
    // blob it already holds it keeps reporting the older version number: same bytes, in sync.
    // A canary is part of the version, not drift: in sync means the same stable blob and the
    // same canary blob (or none on both sides).
    let canary_sha = |c: Option<&EdgeCanary>| c.and_then(|c| c.sha256.clone());
    let same_canary = canary_sha(report.canary.as_ref())
        == pointer.canary.as_ref().map(|c| c.blob_ref.sha256.clone());
    if health.loaded
        && health.sha256.as_deref() == Some(pointer.stable.sha256.as_str())
        && same_canary
    {
        report.state = EdgeState::InSync;
        return report;
    }
    // Since when the edge should have had something newer: the version after its own.
    let edge_version = report.version.unwrap_or(0);
    let next = if edge_version < pointer.version {
        edge_version + 1
    } else {
        pointer.version
    };
    let moved_at = match env.record(next).await {
        Ok(Some(record)) => chrono::DateTime::parse_from_rfc3339(&record.created_at).ok(),
        _ => None,
    };
    report.behind_ms = moved_at.map(|t| {
        now.signed_duration_since(t)
            .num_milliseconds()
            .max(0)
            .unsigned_abs()
    });
    let allowed = health.revalidate_ms + CONVERGE_GRACE.as_millis() as u64;
    let converging = report.behind_ms.is_some_and(|ms| ms <= allowed);
    report.state = match (health.loaded, converging) {
        (_, true) => EdgeState::Converging,
        (false, false) => EdgeState::NotLoaded,
        (true, false) => EdgeState::Stale,
    };
    if let (true, Some(served)) = (health.loaded, served)
        && let Ok(old) = env.version_body(edge_version).await
    {
        let difference = diff::diff(&old, served);
        report.summary = Some(difference.summary());
        report.flags = difference.flags;
    }
    report
}
