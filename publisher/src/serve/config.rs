//! What `publisher serve` is configured with: a YAML file (`--config`, see
//! `examples/serve.yaml`), overridden by command-line flags and `FLAGS_SERVE_*` variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::compile::yaml;

/// The whole service configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Listen address, e.g. `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The store: a directory or `s3://bucket/prefix` (as `--store` of the CLI).
    pub store: String,
    /// The flags repository's checkout: what `push` compiles.
    pub flags: PathBuf,
    /// The token file (re-read when it changes).
    pub tokens: PathBuf,
    /// Environments served. Empty: every environment named in the token file.
    #[serde(default)]
    pub environments: Vec<EnvConfig>,
    /// Where to purge after a publish (as `--purge`); unset: no purge.
    #[serde(default)]
    pub purge: Option<String>,
    /// Request limits.
    #[serde(default)]
    pub limits: Limits,
}

/// One environment's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// Its name.
    pub name: String,
}

/// Backpressure: what one request and one token may cost.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted (bytes).
    pub body_bytes: usize,
    /// Longest a request may take (seconds) before it is answered 408.
    pub timeout_seconds: u64,
    /// Requests handled at once; more are refused with 503.
    pub concurrency: usize,
    /// Requests per second one token (or, unauthenticated, one client address) may make,
    /// sustained.
    pub per_token_per_second: u64,
    /// Requests one token may make in a burst above that rate.
    pub per_token_burst: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body_bytes: 1 << 20,
            timeout_seconds: 30,
            concurrency: 256,
            per_token_per_second: 20,
            per_token_burst: 40,
        }
    }
}

impl Limits {
    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.max(1))
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// What the command line and environment set; each `Some` overrides the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--store`.
    pub store: Option<String>,
    /// `--flags`.
    pub flags: Option<PathBuf>,
    /// `--tokens`.
    pub tokens: Option<PathBuf>,
    /// `--purge`.
    pub purge: Option<String>,
    /// `--env` (repeatable): the environments served.
    pub environments: Vec<String>,
}

impl ServeConfig {
    /// Reads `config` (if given) and applies `overrides`. Paths in the file are relative to it.
    pub fn load(config: Option<&Path>, overrides: Overrides) -> Result<ServeConfig, String> {
        let mut json = match config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let node = yaml::parse(&text)
                    .map_err(|e| format!("{}:{}: {}", path.display(), e.line, e.message))?;
                node.to_json()
            }
            None => serde_json::json!({}),
        };
        let Some(map) = json.as_object_mut() else {
            return Err("the config file must be a YAML mapping".into());
        };
        let mut set = |key: &str, value: serde_json::Value| {
            map.insert(key.to_owned(), value);
        };
        if let Some(listen) = overrides.listen {
            set("listen", listen.to_string().into());
        }
        if let Some(store) = overrides.store {
            set("store", store.into());
        }
        if let Some(flags) = &overrides.flags {
            set("flags", flags.display().to_string().into());
        }
        if let Some(tokens) = &overrides.tokens {
            set("tokens", tokens.display().to_string().into());
        }
        if let Some(purge) = overrides.purge {
            set("purge", purge.into());
        }
        if !overrides.environments.is_empty() {
            let envs: Vec<_> = overrides
                .environments
                .iter()
                .map(|name| serde_json::json!({ "name": name }))
                .collect();
            set("environments", envs.into());
        }
        let where_ = config.map_or("serve configuration".to_owned(), |p| {
            p.display().to_string()
        });
        let mut loaded: ServeConfig = serde_json::from_value(json).map_err(|e| {
            format!("{where_}: {e} (give --store, --flags and --tokens, or set them in --config)")
        })?;
        // Paths from the file are relative to the file; paths from flags to the working dir.
        if let Some(base) = config.and_then(Path::parent) {
            if overrides.flags.is_none() {
                loaded.flags = base.join(&loaded.flags);
            }
            if overrides.tokens.is_none() {
                loaded.tokens = base.join(&loaded.tokens);
            }
        }
        for env in &loaded.environments {
            crate::layout::check_env(&env.name)?;
        }
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.yaml");
        std::fs::write(
            &file,
            "listen: 127.0.0.1:9000\nstore: /srv/store\nflags: repo\ntokens: tokens.yaml\n\
             environments:\n  - name: prod\nlimits:\n  concurrency: 8\n",
        )
        .unwrap();
        let config = ServeConfig::load(
            Some(&file),
            Overrides {
                store: Some("s3://bucket/p".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.store, "s3://bucket/p");
        assert_eq!(config.flags, dir.path().join("repo"));
        assert_eq!(config.tokens, dir.path().join("tokens.yaml"));
        assert_eq!(config.environments[0].name, "prod");
        assert_eq!(config.limits.concurrency, 8);
        assert_eq!(config.limits.body_bytes, Limits::default().body_bytes);
    }

    #[test]
    fn missing_settings_and_unknown_keys_are_errors() {
        let err = ServeConfig::load(None, Overrides::default()).unwrap_err();
        assert!(err.contains("store"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.yaml");
        std::fs::write(&file, "store: x\nflags: y\ntokens: z\nlisten_on: 1\n").unwrap();
        let err = ServeConfig::load(Some(&file), Overrides::default()).unwrap_err();
        assert!(err.contains("listen_on"), "{err}");
    }
}
