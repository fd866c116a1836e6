//! A change request's impact (`impact` in `GET /api/v1/changes/{id}`): per environment the
//! change alters, every flag that differs between what the environment serves and what the
//! change's head would serve once merged and pushed ([`flags_store::publish::as_pushed`]: kills
//! kept, live rollout stages applied) is evaluated with both over the sample of contexts named
//! by `impact:` in `serve.yaml` ([`flags_compile::impact`], as `publisher impact` does).
//!
//! The sample file is read once and again only when its size or modification time changes.
//! The edge-collected reservoir of contexts is not built yet: the sample is a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Value, json};

use flags_compile::impact::{Sample, impact};
use flags_store::publish::as_pushed;
use shared_eval::Body;

use super::{Changes, Compilation};
use crate::AppState;

/// `impact:` in `serve.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpactConfig {
    /// A JSONL file of contexts, one object per line; relative to `serve.yaml`.
    pub sample: PathBuf,
    /// Contexts used at most (the first ones).
    #[serde(default = "default_max")]
    pub max: usize,
}

fn default_max() -> usize {
    100_000
}

impl ImpactConfig {
    /// Makes `sample` relative to `base` (the config file's directory).
    pub fn rebase(&mut self, base: &Path) {
        self.sample = base.join(&self.sample);
    }
}

/// What identifies one read of the sample file.
type Stamp = (PathBuf, u64, Option<SystemTime>, usize);

/// The sample, as last read.
#[derive(Debug, Default)]
pub struct SampleCache {
    loaded: Mutex<Option<(Stamp, Arc<Sample>)>>,
}

impl SampleCache {
    /// The sample `config` names, read again only when the file changed.
    pub async fn sample(&self, config: &ImpactConfig) -> Result<Arc<Sample>, String> {
        let meta = std::fs::metadata(&config.sample)
            .map_err(|e| format!("{}: {e}", config.sample.display()))?;
        let stamp = (
            config.sample.clone(),
            meta.len(),
            meta.modified().ok(),
            config.max,
        );
        if let Some((seen, sample)) = &*self.loaded.lock().unwrap_or_else(|e| e.into_inner())
            && *seen == stamp
        {
            return Ok(sample.clone());
        }
        let (path, max) = (config.sample.clone(), config.max);
        let sample = tokio::task::spawn_blocking(move || Sample::read(&path, max))
            .await
            .map_err(|e| format!("reading the sample failed: {e}"))?
            .map_err(|e| e.to_string())?;
        let sample = Arc::new(sample);
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = Some((stamp, sample.clone()));
        Ok(sample)
    }
}

impl Changes {
    /// The impact of serving `after` (the change's head, compiled per environment) in each of
    /// `alters`; `null` when no sample is configured, `{"error": ...}` when it cannot be read.
    pub async fn impact(
        &self,
        state: &AppState,
        after: &BTreeMap<String, Arc<Compilation>>,
        alters: &[String],
    ) -> Value {
        let Some(config) = &state.config.impact else {
            return Value::Null;
        };
        let sample = match state.impact_samples.sample(config).await {
            Ok(sample) => sample,
            Err(error) => {
                tracing::warn!(error, "impact sample unreadable");
                return json!({ "error": error });
            }
        };
        let mut environments = serde_json::Map::new();
        for env in alters {
            let answer = match after.get(env).map(|c| c.as_ref()) {
                Some(Ok(compiled)) => {
                    match sides(state, env, &compiled.body, &compiled.schedules).await {
                        Ok((deployed, proposed)) => {
                            let (env_name, sample) = (env.clone(), sample.clone());
                            let now_ms = chrono::Utc::now().timestamp_millis();
                            let work =
                                move || impact(&env_name, &deployed, &proposed, &sample, now_ms);
                            match tokio::task::spawn_blocking(work).await {
                                Ok(Ok(report)) => json!(report),
                                Ok(Err(e)) => json!({ "error": e.to_string() }),
                                Err(e) => json!({ "error": format!("impact task failed: {e}") }),
                            }
                        }
                        Err(error) => json!({ "error": error }),
                    }
                }
                _ => json!({ "error": "does not compile" }),
            };
            environments.insert(env.clone(), answer);
        }
        json!({
            "sample": { "source": "file", "contexts": sample.contexts.len(), "truncated": sample.truncated },
            "environments": environments,
        })
    }
}

/// What `env` serves now (empty before its first publish) and what a push of `body` would
/// serve over it.
async fn sides(
    state: &AppState,
    env: &str,
    body: &Body,
    schedules: &Option<Vec<flags_compile::schedule::Schedule>>,
) -> Result<(Body, Body), String> {
    let environment = state.environment(env, "-").map_err(|e| e.to_string())?;
    let deployed = state
        .deployed
        .read(&environment)
        .await
        .map_err(|e| e.to_string())?;
    let (old, running) = match &deployed {
        Some(d) => (
            d.blob.body.clone(),
            d.record
                .as_ref()
                .map(|r| r.rollouts.clone())
                .unwrap_or_default(),
        ),
        None => (Body::default(), Vec::new()),
    };
    let (proposed, _) = as_pushed(
        &old,
        &running,
        body.clone(),
        schedules.clone(),
        &crate::actions::now(),
    );
    Ok((old, proposed))
}
