//! One delivery of one event to one webhook: POST, retried with jittered exponential backoff
//! while the answer is worth retrying (no answer, a timeout, 408, 429 or 5xx), at most
//! `attempts` times, each attempt bounded by `timeout`. Every attempt carries the same delivery
//! id and a fresh send time (and signature). A delivery that gives up is logged, counted and
//! written to the store under [`super::FAILED_PREFIX`]. The URL is never logged (Slack's hold
//! their secret): the webhook's name is.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::config::{Format, HookConfig};
use super::payload::{self, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{Counters, Event, FAILED_PREFIX};
use flags_store::store::{ObjectStore, PutOptions};

/// A webhook, ready to send to.
#[derive(Debug)]
pub struct Hook {
    /// Its name in logs and metrics.
    pub name: String,
    /// Its signing secret, if any.
    pub secret: Option<Vec<u8>>,
    /// Its settings.
    pub config: HookConfig,
}

/// What every delivery shares.
#[derive(Debug, Clone)]
pub struct Sender {
    /// One HTTP client (connection pool) for every webhook; redirects are not followed.
    pub client: reqwest::Client,
    /// Where failed deliveries are recorded.
    pub store: Arc<dyn ObjectStore>,
    /// The notification metrics.
    pub counters: Counters,
}

/// How one attempt ended.
enum Attempt {
    Delivered,
    /// Worth another attempt.
    Retry(String),
    /// The receiver refused it for good (4xx other than 408 and 429).
    Refused(String),
}

impl Sender {
    /// Delivers `event` to `hook`, retrying as configured; never fails (a failure is recorded).
    pub async fn deliver(&self, hook: &Hook, event: &Event) {
        let delivery = delivery_id();
        let kind = event.event.as_str();
        let mut attempt = 1;
        let error = loop {
            match self.attempt(hook, event, &delivery).await {
                Attempt::Delivered => {
                    self.counters
                        .deliveries
                        .with_label_values(&[&hook.name, kind, "delivered"])
                        .inc();
                    tracing::info!(webhook = %hook.name, event = kind, delivery, attempt, "notification delivered");
                    return;
                }
                Attempt::Refused(error) => break error,
                Attempt::Retry(error) if attempt >= hook.config.attempts => break error,
                Attempt::Retry(error) => {
                    let wait = backoff(&hook.config, attempt);
                    tracing::info!(webhook = %hook.name, event = kind, delivery, attempt, error, wait_ms = wait.as_millis() as u64, "notification not delivered; retrying");
                    tokio::time::sleep(wait).await;
                    self.counters.retries.with_label_values(&[&hook.name]).inc();
                    attempt += 1;
                }
            }
        };
        self.counters
            .deliveries
            .with_label_values(&[&hook.name, kind, "failed"])
            .inc();
        tracing::warn!(webhook = %hook.name, event = kind, env = event.env.as_deref().unwrap_or("-"), delivery, attempts = attempt, error, "notification failed: giving up");
        self.record_failure(hook, event, &delivery, attempt, &error)
            .await;
    }

    async fn attempt(&self, hook: &Hook, event: &Event, delivery: &str) -> Attempt {
        let sent_at = chrono::Utc::now().timestamp();
        let body = payload::body(hook.config.format, event, delivery, sent_at);
        let mut request = self
            .client
            .post(&hook.config.url)
            .timeout(hook.config.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, event.event.as_str())
            .header(DELIVERY_HEADER, delivery)
            .header(TIMESTAMP_HEADER, sent_at.to_string());
        if let Some(secret) = &hook.secret {
            request = request.header(SIGNATURE_HEADER, payload::signature(secret, &body));
        }
        match request.body(body).send().await {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    Attempt::Delivered
                } else if status.as_u16() == 408
                    || status.as_u16() == 429
                    || status.is_server_error()
                {
                    Attempt::Retry(format!("answered {status}"))
                } else {
                    Attempt::Refused(format!("answered {status}"))
                }
            }
            // reqwest's error names the URL; keep only what went wrong.
            Err(e) => Attempt::Retry(if e.is_timeout() {
                format!("no answer within {:?}", hook.config.timeout)
            } else if e.is_connect() {
                "cannot connect".to_owned()
            } else {
                e.without_url().to_string()
            }),
        }
    }

    async fn record_failure(
        &self,
        hook: &Hook,
        event: &Event,
        delivery: &str,
        attempts: u32,
        error: &str,
    ) {
        let now = chrono::Utc::now();
        let key = format!(
            "{FAILED_PREFIX}{}-{delivery}.json",
            now.format("%Y%m%dT%H%M%S%.3fZ")
        );
        let entry = json!({
            "webhook": hook.name,
            "format": match hook.config.format { Format::Json => "json", Format::Slack => "slack" },
            "delivery": delivery,
            "attempts": attempts,
            "error": error,
            "failed_at": crate::actions::now(),
            "event": event,
        });
        let mut bytes = serde_json::to_vec_pretty(&entry).unwrap_or_default();
        bytes.push(b'\n');
        if let Err(e) = self
            .store
            .put_if_absent(&key, bytes, PutOptions::IMMUTABLE_JSON)
            .await
        {
            tracing::error!(webhook = %hook.name, delivery, error = %e, "failed notification not recorded in the store");
        }
    }
}

/// The wait after attempt `attempt` (1-based): `backoff * 2^(attempt-1)`, at most
/// `max_backoff`, then "equal jitter": half of it plus a random part of the other half, so
/// receivers that failed together are not retried in step.
pub fn backoff(config: &HookConfig, attempt: u32) -> Duration {
    let exp = config
        .backoff
        .saturating_mul(1u32 << (attempt - 1).min(20))
        .min(config.max_backoff);
    let half = exp / 2;
    let mut bytes = [0u8; 8];
    let random = if getrandom::fill(&mut bytes).is_ok() {
        u64::from_le_bytes(bytes)
    } else {
        0
    };
    let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_nanos(random % spread)
}

/// 16 random bytes as hex.
fn delivery_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_be_bytes();
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_bound() {
        let config: HookConfig = serde_json::from_value(json!({
            "url": "http://127.0.0.1:1",
            "backoff": "100ms",
            "max_backoff": "1s",
        }))
        .unwrap();
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (9, 1000)] {
            for _ in 0..50 {
                let wait = backoff(&config, attempt).as_millis();
                assert!(
                    (full / 2..full).contains(&wait),
                    "attempt {attempt}: {wait} ms not in [{}, {full})",
                    full / 2
                );
            }
        }
    }
}
