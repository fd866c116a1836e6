//! Telling the CDN to drop its copy of an environment's blob: the kill switch's last step.
//!
//! Two purgers, picked by `--purge` / `FLAGS_PURGE`:
//! - `cloudflare://<zone id>`: Cloudflare's purge API (`POST /client/v4/zones/{zone}/purge_cache`)
//!   by cache tag `flags-<env>`, which the worker attaches to its Cache API entries. The API
//!   token comes from `CLOUDFLARE_API_TOKEN`, never from the command line.
//! - `http(s)://<worker>`: the local worker's own `POST /_flags/purge` endpoint (bearer
//!   `FLAGS_PURGE_TOKEN`), for local runs and tests.
//!
//! The worker's purge endpoint also tells the environment's event streams (OFREP SSE) to
//! announce the new version. A Cloudflare purge cannot, so when `FLAGS_NOTIFY` names the worker
//! (`https://flags.example.com`), the same step then calls its `POST /_flags/notify` (bearer
//! `FLAGS_PURGE_TOKEN`): every publish that purges also notifies, in this one place.
//!
//! A purge runs after the new version is stored, so a failed purge never loses a publish: the
//! caller reports "version N stored, purge failed" and the edge still converges on its next
//! cache expiry. Rate limits (HTTP 429) are retried after `Retry-After`, a bounded number of times.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Cloudflare's API root; overridable for the local stand-in used in tests.
pub const CLOUDFLARE_API: &str = "https://api.cloudflare.com/client/v4";

/// How many times a rate-limited or 5xx purge is retried before giving up.
const MAX_ATTEMPTS: u32 = 4;
/// Longest wait honoured from a `Retry-After` header; beyond it we give up and say so.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The cache tag the worker puts on an environment's cached blob.
pub fn cache_tag(environment: &str) -> String {
    format!("flags-{environment}")
}

/// Why a purge failed. The new version is stored regardless.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    /// `--purge` could not be understood.
    #[error("bad purge target {0:?}: expected cloudflare://<zone id> or http(s)://<worker host>")]
    BadTarget(String),
    /// A credential the purger needs is not in the environment.
    #[error("{0} is not set")]
    MissingCredential(&'static str),
    /// Still rate-limited after every retry.
    #[error("purge rate-limited by the CDN after {attempts} attempts; retry later")]
    RateLimited {
        /// Attempts made.
        attempts: u32,
    },
    /// The CDN answered with an error.
    #[error("purge refused: HTTP {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The API's error messages (never the token).
        message: String,
    },
    /// The CDN could not be reached.
    #[error("purge request failed: {0}")]
    Transport(String),
}

/// A worker's `POST /_flags/notify`, called after a Cloudflare purge.
#[derive(Debug, Clone)]
pub struct Notify {
    /// Base URL of the worker, e.g. `https://flags.example.com`.
    pub base: String,
    /// Bearer token (from `FLAGS_PURGE_TOKEN`, the worker's `PURGE_TOKEN`).
    pub token: String,
}

/// Where purges go.
#[derive(Debug, Clone)]
pub enum Purger {
    /// No CDN configured (e.g. a store-only workflow): purging does nothing.
    Disabled,
    /// Cloudflare's purge API.
    Cloudflare {
        /// API root, [`CLOUDFLARE_API`] unless testing.
        api: String,
        /// Zone id.
        zone: String,
        /// API token (from `CLOUDFLARE_API_TOKEN`).
        token: String,
        /// The worker to notify after the purge (from `FLAGS_NOTIFY`), for its event streams.
        notify: Option<Notify>,
    },
    /// A worker's local purge endpoint.
    Worker {
        /// Base URL of the worker, e.g. `http://127.0.0.1:8787`.
        base: String,
        /// Bearer token (from `FLAGS_PURGE_TOKEN`).
        token: String,
    },
}

/// How a purge went: the one report the CLI prints, the service answers with and drift fix
/// records. A failed purge never fails the publish before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// What happened.
    pub status: PurgeStatus,
    /// Where the purge went (`cloudflare zone <id>`, or the worker's URL); `None` when disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Why it failed (never a credential).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a failure means for the edge, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// [`PurgeReport::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PurgeStatus {
    /// No CDN configured: nothing to purge.
    Disabled,
    /// The CDN (or worker) dropped its copy.
    Done,
    /// The purge failed; edges converge when their cached copy expires.
    Failed,
}

impl PurgeReport {
    /// A purge that could not even start (a bad `--purge` target, a missing credential).
    pub fn not_started(error: &PurgeError) -> PurgeReport {
        PurgeReport {
            status: PurgeStatus::Failed,
            target: None,
            error: Some(error.to_string()),
            detail: Some(failure_detail(error)),
        }
    }

    /// True when the purge failed.
    pub fn failed(&self) -> bool {
        self.status == PurgeStatus::Failed
    }

    /// One sentence for a terminal. `version` is the version just stored, when the purge
    /// follows a publish (a purge on its own has none).
    pub fn sentence(&self, env: &str, version: Option<u64>) -> String {
        match self.status {
            PurgeStatus::Disabled => format!("no CDN configured for {env}: nothing purged"),
            PurgeStatus::Done => format!("purged the CDN's copy of {env}"),
            PurgeStatus::Failed => {
                let error = self.error.as_deref().unwrap_or("unknown error");
                let detail = self.detail.as_deref().unwrap_or_default();
                match version {
                    Some(version) => format!(
                        "version {version} of {env} is stored and is what the store now serves, \
                         but the CDN purge failed: {error}\n       {detail}; edges pick it up \
                         when their cached copy expires; to purge again: `publisher purge --env {env}`"
                    ),
                    None => format!("purge of {env} failed: {error}\n       {detail}"),
                }
            }
        }
    }
}

/// What to check after a failure: the credential for an authorization refusal.
fn failure_detail(error: &PurgeError) -> String {
    match error {
        PurgeError::Refused {
            status: 401 | 403, ..
        } => {
            "the purge credential was refused: check FLAGS_PURGE_TOKEN (the worker's PURGE_TOKEN) \
              or CLOUDFLARE_API_TOKEN (needs Cache Purge permission on the zone)"
                .to_owned()
        }
        PurgeError::MissingCredential(name) => format!("set {name} in the environment"),
        PurgeError::BadTarget(_) => {
            "--purge / FLAGS_PURGE takes cloudflare://<zone id> or a worker's http(s):// URL"
                .to_owned()
        }
        PurgeError::RateLimited { .. } => "the CDN is rate-limiting purges: retry later".to_owned(),
        PurgeError::Refused { .. } | PurgeError::Transport(_) => {
            "the new version is stored and served by the store".to_owned()
        }
    }
}

impl Purger {
    /// Parses a `--purge` target; credentials come from the environment.
    pub fn from_target(target: Option<&str>) -> Result<Purger, PurgeError> {
        let Some(target) = target.filter(|t| !t.is_empty()) else {
            return Ok(Purger::Disabled);
        };
        if let Some(zone) = target.strip_prefix("cloudflare://") {
            if zone.is_empty() || !zone.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(PurgeError::BadTarget(target.to_owned()));
            }
            let token = std::env::var("CLOUDFLARE_API_TOKEN")
                .map_err(|_| PurgeError::MissingCredential("CLOUDFLARE_API_TOKEN"))?;
            let api =
                std::env::var("CLOUDFLARE_API_BASE").unwrap_or_else(|_| CLOUDFLARE_API.to_owned());
            let notify = match std::env::var("FLAGS_NOTIFY").ok().filter(|b| !b.is_empty()) {
                Some(base) => Some(Notify {
                    base: base.trim_end_matches('/').to_owned(),
                    token: std::env::var("FLAGS_PURGE_TOKEN")
                        .map_err(|_| PurgeError::MissingCredential("FLAGS_PURGE_TOKEN"))?,
                }),
                None => None,
            };
            return Ok(Purger::Cloudflare {
                api,
                zone: zone.to_owned(),
                token,
                notify,
            });
        }
        if target.starts_with("http://") || target.starts_with("https://") {
            let token = std::env::var("FLAGS_PURGE_TOKEN")
                .map_err(|_| PurgeError::MissingCredential("FLAGS_PURGE_TOKEN"))?;
            return Ok(Purger::Worker {
                base: target.trim_end_matches('/').to_owned(),
                token,
            });
        }
        Err(PurgeError::BadTarget(target.to_owned()))
    }

    /// Where purges go, for reports (no credential in it).
    pub fn describe(&self) -> Option<String> {
        match self {
            Purger::Disabled => None,
            Purger::Cloudflare { zone, .. } => Some(format!("cloudflare zone {zone}")),
            Purger::Worker { base, .. } => Some(base.clone()),
        }
    }

    /// Purges `environment` and reports how it went ([`PurgeReport`]).
    pub async fn report(&self, environment: &str) -> PurgeReport {
        if matches!(self, Purger::Disabled) {
            return PurgeReport {
                status: PurgeStatus::Disabled,
                target: None,
                error: None,
                detail: None,
            };
        }
        match self.purge(environment).await {
            Ok(()) => PurgeReport {
                status: PurgeStatus::Done,
                target: self.describe(),
                error: None,
                detail: None,
            },
            Err(e) => PurgeReport {
                target: self.describe(),
                ..PurgeReport::not_started(&e)
            },
        }
    }

    /// Purges `environment`'s cached blob, retrying rate limits and 5xx answers.
    pub async fn purge(&self, environment: &str) -> Result<(), PurgeError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| PurgeError::Transport(e.to_string()))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = match self {
                Purger::Disabled => return Ok(()),
                Purger::Cloudflare {
                    api, zone, token, ..
                } => client
                    .post(format!("{api}/zones/{zone}/purge_cache"))
                    .bearer_auth(token)
                    .json(&serde_json::json!({ "tags": [cache_tag(environment)] })),
                Purger::Worker { base, token } => client
                    .post(format!("{base}/_flags/purge"))
                    .bearer_auth(token)
                    .json(&serde_json::json!({ "environment": environment })),
            };
            let response = request
                .send()
                .await
                .map_err(|e| PurgeError::Transport(without_url(&e)))?;
            let status = response.status();
            if status.is_success() {
                return match self {
                    Purger::Cloudflare { notify, .. } => {
                        check_cloudflare_body(response).await?;
                        match notify {
                            Some(notify) => notify_event_streams(&client, notify).await,
                            None => Ok(()),
                        }
                    }
                    _ => Ok(()),
                };
            }
            let retryable = status.as_u16() == 429 || status.is_server_error();
            if retryable && attempt < MAX_ATTEMPTS {
                let wait = retry_after(&response).unwrap_or(Duration::from_millis(250 << attempt));
                if wait <= MAX_RETRY_AFTER {
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            if status.as_u16() == 429 {
                return Err(PurgeError::RateLimited { attempts: attempt });
            }
            let message = api_errors(response).await;
            return Err(PurgeError::Refused {
                status: status.as_u16(),
                message,
            });
        }
    }
}

/// After a Cloudflare purge: `POST <worker>/_flags/notify` so the worker's event streams
/// announce the new version (the worker loads it first).
async fn notify_event_streams(client: &reqwest::Client, notify: &Notify) -> Result<(), PurgeError> {
    let response = client
        .post(format!("{}/_flags/notify", notify.base))
        .bearer_auth(&notify.token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .map_err(|e| PurgeError::Transport(without_url(&e)))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(PurgeError::Refused {
            status: response.status().as_u16(),
            message: "event streams were not notified".into(),
        })
    }
}

/// `Retry-After` in seconds, as Cloudflare sends it on 429.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[derive(Deserialize)]
struct ApiEnvelope {
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
}

#[derive(Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// Cloudflare answers 200 with `"success": false` for some failures.
async fn check_cloudflare_body(response: reqwest::Response) -> Result<(), PurgeError> {
    let status = response.status().as_u16();
    let envelope: ApiEnvelope = response.json().await.map_err(|e| PurgeError::Refused {
        status,
        message: format!("unreadable response: {e}"),
    })?;
    if envelope.success {
        Ok(())
    } else {
        Err(PurgeError::Refused {
            status,
            message: join_errors(&envelope.errors),
        })
    }
}

async fn api_errors(response: reqwest::Response) -> String {
    match response.json::<ApiEnvelope>().await {
        Ok(envelope) if !envelope.errors.is_empty() => join_errors(&envelope.errors),
        _ => "no error detail".to_owned(),
    }
}

fn join_errors(errors: &[ApiMessage]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|e| format!("{} ({})", e.message, e.code))
        .collect();
    if parts.is_empty() {
        "no error detail".to_owned()
    } else {
        parts.join("; ")
    }
}

/// reqwest errors print the URL; ours carry no secrets, but keep messages short and stable.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), url.host_str().unwrap_or("host"));
    }
    text
}
