//! What `publisher serve` is configured with: a YAML file (`--config`, see
//! `examples/serve.yaml`), overridden by command-line flags and `FLAGS_SERVE_*` variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use flags_compile::yaml;

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
    /// The Git push webhook (`POST /api/v1/webhooks/git`); unset: the route answers 404.
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// An older version's telemetry file, imported into the store once at startup (then renamed
    /// to `<file>.imported`): telemetry lives in the store (`_telemetry/`).
    #[serde(default)]
    pub telemetry_file: Option<PathBuf>,
    /// An older version's approvals file, imported into the store once at startup (then renamed
    /// to `<file>.imported`): pending approvals live in the store (`_approvals/`).
    #[serde(default)]
    pub approvals_file: Option<PathBuf>,
    /// How long the status page and the API wait for one edge's `/_flags/health` before
    /// showing it unreachable (every edge is asked at once), e.g. `2s`, `500ms`.
    #[serde(default = "default_edge_timeout", deserialize_with = "duration")]
    pub edge_timeout: Duration,
    /// The URL browsers reach the service at, e.g. `https://flags.example.com` (behind a
    /// proxy: the proxy's). An `https` URL marks the session cookie `Secure`; its origin is
    /// the only one a session's changes may come from. Unset: the request's own `Host`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The flags repository's remote, which makes flags API resources whose writes are change
    /// requests (`changes/`); unset: the flags API reads the checkout and refuses writes.
    #[serde(default)]
    pub git: Option<GitConfig>,
    /// Outbound webhooks (`notify/config.rs`, `docs/notifications.md`); unset: none.
    #[serde(default)]
    pub notify: Option<crate::notify::NotifyConfig>,
    /// The sample of contexts a change request's `impact` is evaluated over
    /// (`changes/impact.rs`); unset: `impact` is `null`.
    #[serde(default)]
    pub impact: Option<crate::changes::impact::ImpactConfig>,
    /// Sign-in through an OpenID provider (`oidc/config.rs`); unset: tokens only.
    #[serde(default)]
    pub oidc: Option<crate::oidc::config::OidcConfig>,
    /// The file this was read from (`--config`), if any: `oidc.roles` is re-read from it when
    /// it changes.
    #[serde(skip)]
    pub file: Option<PathBuf>,
    /// The ed25519 key file every publish signs its pointer with (PKCS#8 PEM, mode 0600, from
    /// `publisher keygen`; see docs/signing.md); unset: `FLAGS_SIGNING_KEY_FILE`, else unsigned.
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
}

/// The flags repository's remote: `flags` is a clone of it, change requests are branches
/// `changes/<id>` there, and a merge pushes to `branch`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitConfig {
    /// The clone's name for the remote.
    #[serde(default = "default_remote")]
    pub remote: String,
    /// The branch changes merge into.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Who commits (authors are the callers), `Name <email>`.
    #[serde(default = "default_committer")]
    pub committer: String,
    /// How often the remote is fetched, so pushes by others show (the webhook also fetches).
    #[serde(default = "default_poll", deserialize_with = "duration")]
    pub poll: Duration,
}

fn default_committer() -> String {
    "flags-serve <flags-serve@localhost>".into()
}

fn default_poll() -> Duration {
    Duration::from_secs(30)
}

fn default_edge_timeout() -> Duration {
    Duration::from_secs(2)
}

/// The Git push webhook. Its secret never sits in this file: it is read from the file
/// `secret_file` names, or from `FLAGS_SERVE_WEBHOOK_SECRET`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The branch whose pushes publish (`refs/heads/<branch>`).
    #[serde(default = "default_branch")]
    pub branch: String,
    /// The checkout's remote to fetch from.
    #[serde(default = "default_remote")]
    pub remote: String,
    /// A file holding the HMAC secret (trailing newline ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

fn default_branch() -> String {
    "main".into()
}

fn default_remote() -> String {
    "origin".into()
}

impl WebhookConfig {
    /// The HMAC secret: `FLAGS_SERVE_WEBHOOK_SECRET`, else the content of `secret_file`.
    pub fn secret(&self) -> Result<Vec<u8>, String> {
        if let Some(secret) = std::env::var_os("FLAGS_SERVE_WEBHOOK_SECRET") {
            return Ok(secret.into_encoded_bytes());
        }
        let Some(file) = &self.secret_file else {
            return Err("webhook: set secret_file or FLAGS_SERVE_WEBHOOK_SECRET".into());
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("webhook secret {}: {e}", file.display()))?;
        let secret = text.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(format!("webhook secret {} is empty", file.display()));
        }
        Ok(secret.as_bytes().to_vec())
    }
}

/// One environment's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// Its name.
    pub name: String,
    /// When set, a push or rollback becomes a pending change that a different token with
    /// `approve` must approve (kills never wait).
    #[serde(default)]
    pub approval: Option<ApprovalConfig>,
    /// Whether a webhook push to the configured branch publishes here.
    #[serde(default)]
    pub auto_publish: bool,
    /// The edge endpoints serving it (base URLs, each asked for `/_flags/health`): the page and
    /// `GET /api/v1/environments` show each one's version and whether it is in sync.
    #[serde(default)]
    pub edges: Vec<String>,
}

/// An environment's approval rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// How long a pending change waits for approval before it expires, e.g. `24h`, `30m`.
    #[serde(default = "default_ttl", deserialize_with = "duration")]
    pub ttl: Duration,
    /// How many approvals (by tokens that authored none of its commits) a change request
    /// altering this environment needs before it can merge.
    #[serde(default = "default_approvals")]
    pub approvals: usize,
}

fn default_approvals() -> usize {
    1
}

fn default_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}

pub(crate) fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
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
    /// `--env` (repeatable): the environments served (without approval or auto-publish).
    pub environments: Vec<String>,
    /// `--telemetry-file`.
    pub telemetry_file: Option<PathBuf>,
    /// `--approvals-file`.
    pub approvals_file: Option<PathBuf>,
    /// `--edge ENV=URL` (repeatable): added to the edges of environment ENV.
    pub edges: Vec<(String, String)>,
}

/// Parses `--edge`'s `ENV=URL`.
pub fn parse_edge(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((env, url)) if !env.is_empty() && url.contains("://") => {
            Ok((env.to_owned(), url.to_owned()))
        }
        _ => Err(format!(
            "{text:?}: expected ENV=URL, e.g. prod=https://flags.example.com"
        )),
    }
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
        let store_overridden = overrides.store.is_some();
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
        if let Some(file) = &overrides.telemetry_file {
            set("telemetry_file", file.display().to_string().into());
        }
        if let Some(file) = &overrides.approvals_file {
            set("approvals_file", file.display().to_string().into());
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
            let local_store =
                !loaded.store.contains("://") && Path::new(&loaded.store).is_relative();
            if !store_overridden && local_store {
                loaded.store = base.join(&loaded.store).display().to_string();
            }
            if let Some(file) = loaded.webhook.as_mut().and_then(|w| w.secret_file.as_mut()) {
                *file = base.join(&*file);
            }
            if let Some(notify) = loaded.notify.as_mut() {
                notify.rebase(base);
            }
            if let Some(impact) = loaded.impact.as_mut() {
                impact.rebase(base);
            }
            if let Some(file) = loaded
                .oidc
                .as_mut()
                .and_then(|o| o.client_secret_file.as_mut())
            {
                *file = base.join(&*file);
            }
            if overrides.telemetry_file.is_none() {
                loaded.telemetry_file = loaded.telemetry_file.map(|file| base.join(file));
            }
            if overrides.approvals_file.is_none() {
                loaded.approvals_file = loaded.approvals_file.map(|file| base.join(file));
            }
            loaded.signing_key = loaded.signing_key.map(|file| base.join(file));
        }
        for (name, url) in overrides.edges {
            let Some(env) = loaded.environments.iter_mut().find(|e| e.name == name) else {
                return Err(format!(
                    "--edge {name}={url}: {name} is not a configured environment (add --env {name})"
                ));
            };
            env.edges.push(url);
        }
        if let Some(url) = &loaded.public_url
            && crate::auth::origin_of(url).is_none()
        {
            return Err(format!(
                "{where_}: public_url {url:?} is not an http(s) URL (e.g. https://flags.example.com)"
            ));
        }
        if let Some(notify) = &loaded.notify {
            notify.check(&where_)?;
        }
        if let Some(oidc) = &loaded.oidc {
            oidc.check().map_err(|e| format!("{where_}: {e}"))?;
        }
        loaded.file = config.map(Path::to_path_buf);
        for env in &loaded.environments {
            flags_store::layout::check_env(&env.name)?;
            if let Some(bad) = env
                .edges
                .iter()
                .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
            {
                return Err(format!(
                    "{where_}: environment {}: edge {bad:?} is not an http(s) URL",
                    env.name
                ));
            }
        }
        Ok(loaded)
    }

    /// The settings of environment `name`, if it is configured.
    pub fn environment(&self, name: &str) -> Option<&EnvConfig> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// The environments a new commit of the branch publishes to (`auto_publish: true`).
    pub fn auto_publish(&self) -> Vec<String> {
        self.environments
            .iter()
            .filter(|e| e.auto_publish)
            .map(|e| e.name.clone())
            .collect()
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
             environments:\n  - name: prod\n    approval: {ttl: 90m}\n    auto_publish: true\n    edges: [\"https://a.example\"]\n  - name: dev\n\
             limits:\n  concurrency: 8\nwebhook:\n  branch: release\n  secret_file: hook.secret\n\
             signing_key: keys/signing-key.pem\n",
        )
        .unwrap();
        let config = ServeConfig::load(
            Some(&file),
            Overrides {
                store: Some("s3://bucket/p".into()),
                edges: vec![parse_edge("prod=http://127.0.0.1:9").unwrap()],
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.store, "s3://bucket/p");
        assert_eq!(config.flags, dir.path().join("repo"));
        assert_eq!(config.tokens, dir.path().join("tokens.yaml"));
        assert_eq!(config.environments[0].name, "prod");
        let approval = config.environments[0].approval.as_ref().unwrap();
        assert_eq!(approval.ttl, Duration::from_secs(90 * 60));
        assert!(config.environments[0].auto_publish);
        assert!(config.environments[1].approval.is_none());
        assert_eq!(
            config.environments[0].edges,
            ["https://a.example", "http://127.0.0.1:9"]
        );
        assert!(config.environments[1].edges.is_empty());
        assert_eq!(config.edge_timeout, Duration::from_secs(2));
        let webhook = config.webhook.as_ref().unwrap();
        assert_eq!(
            (webhook.branch.as_str(), webhook.remote.as_str()),
            ("release", "origin")
        );
        assert_eq!(
            webhook.secret_file.as_deref(),
            Some(dir.path().join("hook.secret").as_path())
        );
        assert_eq!(config.limits.concurrency, 8);
        assert_eq!(config.limits.body_bytes, Limits::default().body_bytes);
        assert_eq!(
            config.signing_key.as_deref(),
            Some(dir.path().join("keys/signing-key.pem").as_path())
        );
    }

    #[test]
    fn the_example_config_loads() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/serve.yaml");
        let config = ServeConfig::load(Some(&example), Overrides::default()).unwrap();
        let dev = config.environment("dev").unwrap();
        // Not the demo worker: it reads the demo's store, not this config's local one (it would
        // show as drifted on the page); the demo writes its own config listing it.
        assert!(dev.edges.is_empty(), "{:?}", dev.edges);
        assert_eq!(config.edge_timeout, Duration::from_secs(2));
    }

    #[test]
    fn the_oidc_example_loads_with_its_secret_file_beside_it_and_bad_sections_say_why() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let config = ServeConfig::load(
            Some(&examples.join("serve-oidc.yaml")),
            Overrides::default(),
        )
        .unwrap();
        let oidc = config.oidc.as_ref().unwrap();
        assert_eq!(
            oidc.client_secret_file.as_deref(),
            Some(examples.join("oidc-client.secret").as_path())
        );
        assert_eq!(oidc.roles.groups.len(), 3);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.yaml");
        let base =
            "store: x\nflags: y\ntokens: z\noidc:\n  issuer: https://idp.example\n  client_id: c\n";
        for (section, says) in [
            (
                "  redirect_url: https://f.example/callback\n",
                "/auth/oidc/callback",
            ),
            (
                "  redirect_url: f.example/auth/oidc/callback\n",
                "redirect_url",
            ),
            (
                "  redirect_url: https://f.example/auth/oidc/callback\n  roles: {emails: {example.com: {\"*\": [read]}}}\n",
                "@example.com",
            ),
            (
                "  redirect_url: https://f.example/auth/oidc/callback\n  roles: {groups: {a: {prod: [root]}}}\n",
                "root",
            ),
        ] {
            std::fs::write(&file, format!("{base}{section}")).unwrap();
            let err = ServeConfig::load(Some(&file), Overrides::default()).unwrap_err();
            assert!(err.contains(says), "{says}: {err}");
        }
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
        std::fs::write(
            &file,
            "store: x\nflags: y\ntokens: z\nenvironments: [{name: prod, edges: [ftp://e]}]\n",
        )
        .unwrap();
        let err = ServeConfig::load(Some(&file), Overrides::default()).unwrap_err();
        assert!(err.contains("ftp://e"), "{err}");
        let unknown = Overrides {
            environments: vec!["dev".into()],
            edges: vec![parse_edge("prod=http://e").unwrap()],
            ..Overrides::default()
        };
        let err = ServeConfig::load(Some(&file), unknown).unwrap_err();
        assert!(err.contains("--env prod"), "{err}");
        assert!(parse_edge("http://e").is_err());
        std::fs::write(
            &file,
            "store: x
flags: y
tokens: z
public_url: flags.example.com
",
        )
        .unwrap();
        let err = ServeConfig::load(Some(&file), Overrides::default()).unwrap_err();
        assert!(
            err.contains("public_url") && err.contains("https://"),
            "{err}"
        );
    }
}
