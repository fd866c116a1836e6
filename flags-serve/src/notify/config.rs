//! The `notify:` block of `serve.yaml`: outbound webhooks, each with its URL, the events it
//! wants, its format and where its signing secret is (an environment variable or a file, never
//! the config itself), plus the retry bounds. Documented in `docs/notifications.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::EventKind;

/// `notify:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Events waiting for delivery at most; when full, a new event is dropped (counted in
    /// `flags_notifications_dropped_total` and logged), never waited for.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Deliveries in flight at once, over every webhook.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The receivers.
    pub webhooks: Vec<HookConfig>,
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The event as JSON (`docs/notifications.md`), signed when a secret is set.
    Json,
    /// A Slack incoming-webhook message: `{"text", "blocks"}`.
    Slack,
}

/// Which events a webhook wants: `all` (the default) or a list of names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub enum Events {
    /// `all`.
    #[default]
    All,
    /// `[publish, kill, ...]`.
    Only(Vec<EventKind>),
}

impl TryFrom<serde_json::Value> for Events {
    type Error = String;

    fn try_from(value: serde_json::Value) -> Result<Events, String> {
        let names = || {
            EventKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match value {
            serde_json::Value::String(word) if word == "all" => Ok(Events::All),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| {
                    let name = item.as_str().unwrap_or_default();
                    EventKind::ALL
                        .iter()
                        .copied()
                        .find(|k| k.as_str() == name)
                        .ok_or_else(|| {
                            format!("events: unknown event {item}: expected one of {}", names())
                        })
                })
                .collect::<Result<_, _>>()
                .map(Events::Only),
            other => Err(format!(
                "events: {other} is neither `all` nor a list of events ({})",
                names()
            )),
        }
    }
}

impl Events {
    /// Whether `kind` is wanted.
    pub fn wants(&self, kind: EventKind) -> bool {
        match self {
            Events::All => true,
            Events::Only(kinds) => kinds.contains(&kind),
        }
    }
}

/// One outbound webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// What logs and metrics call it (the URL may hold a secret, as Slack's do, and is never
    /// logged). Default: `webhook-<position from 1>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Where to `POST` (http or https).
    pub url: String,
    /// `all` or a list of event names.
    #[serde(default)]
    pub events: Events,
    /// `json` (default) or `slack`.
    #[serde(default = "default_format")]
    pub format: Format,
    /// An environment variable holding the HMAC secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file holding the HMAC secret (trailing newline ignored); relative to `serve.yaml`.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Longest one attempt may take, e.g. `5s`.
    #[serde(
        default = "default_timeout",
        deserialize_with = "super::super::config::duration"
    )]
    pub timeout: Duration,
    /// Attempts at most (the first included), e.g. 5.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The wait before the first retry; it doubles per retry (with jitter), up to `max_backoff`.
    #[serde(
        default = "default_backoff",
        deserialize_with = "super::super::config::duration"
    )]
    pub backoff: Duration,
    /// The longest wait between two attempts.
    #[serde(
        default = "default_max_backoff",
        deserialize_with = "super::super::config::duration"
    )]
    pub max_backoff: Duration,
}

fn default_queue() -> usize {
    1024
}

fn default_concurrency() -> usize {
    16
}

fn default_format() -> Format {
    Format::Json
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_attempts() -> u32 {
    5
}

fn default_backoff() -> Duration {
    Duration::from_secs(1)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(60)
}

impl NotifyConfig {
    /// Makes `secret_file`s relative to `base` (the config file's directory).
    pub fn rebase(&mut self, base: &Path) {
        for hook in &mut self.webhooks {
            if let Some(file) = hook.secret_file.as_mut() {
                *file = base.join(&*file);
            }
        }
    }

    /// Checks what serde cannot: URLs, bounds, and that every secret can be read.
    pub fn check(&self, where_: &str) -> Result<(), String> {
        if self.queue == 0 || self.concurrency == 0 {
            return Err(format!(
                "{where_}: notify: queue and concurrency must be at least 1"
            ));
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            let name = hook.name(i);
            if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
                return Err(format!(
                    "{where_}: notify: webhook {name}: url is not an http(s) URL"
                ));
            }
            if hook.attempts == 0 || hook.attempts > 20 {
                return Err(format!(
                    "{where_}: notify: webhook {name}: attempts must be between 1 and 20"
                ));
            }
            if hook.timeout.is_zero() {
                return Err(format!(
                    "{where_}: notify: webhook {name}: timeout must be positive"
                ));
            }
            hook.secret()
                .map_err(|e| format!("{where_}: notify: webhook {name}: {e}"))?;
        }
        Ok(())
    }
}

impl HookConfig {
    /// Its name in logs and metrics; `index` is its position from 0.
    pub fn name(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("webhook-{}", index + 1))
    }

    /// The signing secret: from `secret_env`, else `secret_file`; `None` when neither is set
    /// (then bodies go unsigned). A named variable or file that is missing or empty is an error.
    pub fn secret(&self) -> Result<Option<Vec<u8>>, String> {
        if self.secret_env.is_some() && self.secret_file.is_some() {
            return Err("set secret_env or secret_file, not both".into());
        }
        if let Some(var) = &self.secret_env {
            return match std::env::var_os(var) {
                Some(value) if !value.is_empty() => Ok(Some(value.into_encoded_bytes())),
                _ => Err(format!("secret_env {var} is not set")),
            };
        }
        let Some(file) = &self.secret_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("secret_file {}: {e}", file.display()))?;
        let secret = text.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(format!("secret_file {} is empty", file.display()));
        }
        Ok(Some(secret.as_bytes().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml_json: serde_json::Value) -> Result<NotifyConfig, String> {
        let config: NotifyConfig = serde_json::from_value(yaml_json).map_err(|e| e.to_string())?;
        config.check("serve.yaml")?;
        Ok(config)
    }

    #[test]
    fn bad_webhooks_are_refused_with_their_name_and_never_their_url() {
        let err =
            config(serde_json::json!({"webhooks": [{"url": "ftp://secret-host/x"}]})).unwrap_err();
        assert_eq!(
            err,
            "serve.yaml: notify: webhook webhook-1: url is not an http(s) URL"
        );
        let err = config(serde_json::json!({"webhooks": [
            {"name": "ops", "url": "https://h/x", "secret_env": "FLAGS_TEST_UNSET_NOTIFY_SECRET"}]}))
        .unwrap_err();
        assert_eq!(
            err,
            "serve.yaml: notify: webhook ops: secret_env FLAGS_TEST_UNSET_NOTIFY_SECRET is not set"
        );
        let err = config(serde_json::json!({"webhooks": [{"url": "https://h/x", "events": ["publish", "pubish"]}]}))
            .unwrap_err();
        assert!(
            err.contains("unknown event \"pubish\": expected one of publish, kill"),
            "{err}"
        );
        let ok = config(serde_json::json!({"webhooks": [
            {"url": "https://h/x", "events": "all"},
            {"url": "https://h/y", "events": ["kill"], "format": "slack"}]}))
        .unwrap();
        assert!(ok.webhooks[0].events.wants(EventKind::DriftFound));
        assert!(ok.webhooks[1].events.wants(EventKind::Kill));
        assert!(!ok.webhooks[1].events.wants(EventKind::Publish));
        assert_eq!(ok.webhooks[1].format, Format::Slack);
    }
}
