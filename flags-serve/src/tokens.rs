//! The token file: who may call the service, and what each may do per environment.
//!
//! ```yaml
//! tokens:
//!   - name: ci
//!     sha256: "<hex SHA-256 of the secret>"   # never the secret itself
//!     roles: {staging: [publish], prod: [read]}
//!   - name: oncall
//!     sha256: "..."
//!     roles: {"*": [kill, read]}              # "*": every environment
//! ```
//!
//! Callers send `Authorization: Bearer <secret>`; the service hashes it and compares the digest
//! with every token's in constant time. The file is re-read when its modification time or size
//! changes (checked on each request), so secrets rotate without a restart; a file that no longer
//! parses is reported and the previous tokens stay in force.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use flags_compile::yaml;

/// What a token may do in one environment. Any role includes `read`; `admin` includes all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// See state, history, audit, diffs, lints.
    Read,
    /// Push (stable or canary), rollback, promote/abort, rollout ticks and resumes, drift fixes.
    Publish,
    /// Kill and unkill flags, abort a canary: the emergency path.
    Kill,
    /// Approve someone else's pending change or change request.
    Approve,
    /// Change flag and segment files through change requests (`PUT`/`PATCH`/`DELETE` of
    /// `/api/v1/flags/...`): needed in every environment whose behaviour a change alters.
    Edit,
    /// Everything.
    Admin,
    /// Send evaluation counts from the edge (`POST /api/v1/telemetry`).
    Telemetry,
}

impl Role {
    /// `read`, `publish`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Publish => "publish",
            Role::Kill => "kill",
            Role::Approve => "approve",
            Role::Edit => "edit",
            Role::Admin => "admin",
            Role::Telemetry => "telemetry",
        }
    }
}

/// The environment key that stands for every environment.
pub const ANY_ENV: &str = "*";

/// One token of the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Its name: what audit entries and logs show.
    pub name: String,
    /// Hex SHA-256 of the secret.
    pub sha256: String,
    /// Roles per environment (`*` for all).
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<Role>>,
    /// The email its commits carry (`name <email>`); unset: `<name>@flags.invalid`.
    #[serde(default)]
    pub email: Option<String>,
}

impl Token {
    /// True when the token may act as `role` in `env`.
    pub fn allows(&self, env: &str, role: Role) -> bool {
        [env, ANY_ENV]
            .iter()
            .filter_map(|e| self.roles.get(*e))
            .flatten()
            .any(|&held| {
                held == role
                    || held == Role::Admin
                    || (role == Role::Read && held != Role::Telemetry)
            })
    }

    /// The environments named in its roles (not `*`).
    pub fn environments(&self) -> impl Iterator<Item = &str> {
        self.roles
            .keys()
            .map(String::as_str)
            .filter(|e| *e != ANY_ENV)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<Token>,
}

/// A parsed token file, digests decoded.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<(Token, [u8; 32])>,
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Tokens {
    /// Parses a token file's text.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let node = yaml::parse(text).map_err(|e| format!("line {}: {}", e.line, e.message))?;
        let file: TokenFile = serde_json::from_value(node.to_json()).map_err(|e| e.to_string())?;
        let mut tokens = Vec::new();
        for token in file.tokens {
            let digest = decode_hex32(&token.sha256).ok_or_else(|| {
                format!(
                    "token {:?}: sha256 must be 64 hex digits (the SHA-256 of the secret)",
                    token.name
                )
            })?;
            if tokens
                .iter()
                .any(|(t, _): &(Token, _)| t.name == token.name)
            {
                return Err(format!("token {:?} is listed twice", token.name));
            }
            for env in token.environments() {
                flags_store::layout::check_env(env)
                    .map_err(|e| format!("token {:?}: {e}", token.name))?;
            }
            tokens.push((token, digest));
        }
        Ok(Tokens { tokens })
    }

    /// The token whose secret is `secret`. Every token's digest is compared, each in constant
    /// time, so the answer's timing says nothing about which token (or how much of one) matched.
    pub fn authenticate(&self, secret: &str) -> Option<&Token> {
        let digest = secret_sha256(secret);
        let mut found = None;
        for (token, expected) in &self.tokens {
            if bool::from(digest.ct_eq(expected)) {
                found = Some(token);
            }
        }
        found
    }

    /// The token named `name` if its secret's SHA-256 is still `sha256` (a browser session's
    /// identity: a token removed, or rotated under the same name, no longer matches).
    pub fn by_identity(&self, name: &str, sha256: &[u8; 32]) -> Option<&Token> {
        self.tokens
            .iter()
            .find(|(token, _)| token.name == name)
            .filter(|(_, digest)| bool::from(digest.ct_eq(sha256)))
            .map(|(token, _)| token)
    }

    /// Every environment some token names.
    pub fn environments(&self) -> Vec<String> {
        let mut envs: Vec<String> = self
            .tokens
            .iter()
            .flat_map(|(t, _)| t.environments().map(str::to_owned))
            .collect();
        envs.sort();
        envs.dedup();
        envs
    }
}

/// What says the token file changed: its modification time and length.
pub(crate) type Stamp = (SystemTime, u64);

/// The token file, re-read when it changes.
#[derive(Debug)]
pub struct TokenSource {
    path: PathBuf,
    state: RwLock<(Option<Stamp>, Arc<Tokens>)>,
}

/// A file's [`Stamp`] now (`None`: it cannot be read). Also what says `serve.yaml` changed
/// (`oidc/`'s role mapping).
pub(crate) fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl TokenSource {
    /// Reads the file; an unreadable or invalid file at startup is an error.
    pub fn open(path: &Path) -> Result<TokenSource, String> {
        let stamp = stamp(path);
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let tokens = Tokens::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TokenSource {
            path: path.to_owned(),
            state: RwLock::new((stamp, Arc::new(tokens))),
        })
    }

    /// The tokens in force, re-reading the file first if it changed since the last read.
    pub fn current(&self) -> Arc<Tokens> {
        let now = stamp(&self.path);
        {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            if state.0 == now {
                return state.1.clone();
            }
        }
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.0 != now {
            state.0 = now;
            match std::fs::read_to_string(&self.path)
                .map_err(|e| e.to_string())
                .and_then(|text| Tokens::parse(&text))
            {
                Ok(tokens) => {
                    tracing::info!(path = %self.path.display(), "token file re-read");
                    state.1 = Arc::new(tokens);
                }
                Err(error) => tracing::error!(
                    path = %self.path.display(),
                    %error,
                    "token file changed but cannot be used; the previous tokens stay in force"
                ),
            }
        }
        state.1.clone()
    }
}

/// SHA-256 of a secret, as bytes.
pub fn secret_sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Hex SHA-256 of a secret: what goes into the token file.
pub fn secret_digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> String {
        format!(
            "tokens:\n  - name: ci\n    sha256: \"{}\"\n    roles: {{staging: [publish], prod: [read]}}\n  \
             - name: oncall\n    sha256: {}\n    roles: {{\"*\": [kill]}}\n",
            secret_digest("ci-secret"),
            secret_digest("oncall-secret")
        )
    }

    #[test]
    fn roles_per_environment() {
        let tokens = Tokens::parse(&file()).unwrap();
        let ci = tokens.authenticate("ci-secret").unwrap();
        assert_eq!(ci.name, "ci");
        assert!(ci.allows("staging", Role::Publish));
        assert!(ci.allows("staging", Role::Read));
        assert!(ci.allows("prod", Role::Read));
        assert!(!ci.allows("prod", Role::Publish));
        assert!(!ci.allows("dev", Role::Read));
        let oncall = tokens.authenticate("oncall-secret").unwrap();
        assert!(oncall.allows("prod", Role::Kill) && oncall.allows("anything", Role::Read));
        assert!(!oncall.allows("prod", Role::Publish));
        assert!(tokens.authenticate("ci-secre").is_none());
        assert!(tokens.authenticate("").is_none());
        assert_eq!(tokens.environments(), ["prod", "staging"]);
    }

    #[test]
    fn a_token_may_carry_the_email_of_its_commits() {
        let text = format!(
            "tokens:\n  - name: ed\n    sha256: {}\n    roles: {{dev: [edit]}}\n    email: ed@example.com\n",
            secret_digest("ed-secret")
        );
        let tokens = Tokens::parse(&text).unwrap();
        let ed = tokens.authenticate("ed-secret").unwrap();
        assert_eq!(ed.email.as_deref(), Some("ed@example.com"));
        assert!(ed.allows("dev", Role::Edit) && !ed.allows("prod", Role::Edit));
        assert!(!ed.allows("dev", Role::Publish));
    }

    #[test]
    fn bad_files_say_why() {
        let err = Tokens::parse("tokens:\n  - name: x\n    sha256: abc\n").unwrap_err();
        assert!(err.contains("64 hex digits"), "{err}");
        let err = Tokens::parse(&format!(
            "tokens:\n  - name: x\n    sha256: {}\n    roles: {{prod: [root]}}\n",
            secret_digest("s")
        ))
        .unwrap_err();
        assert!(err.contains("root"), "{err}");
    }

    #[test]
    fn rereads_on_change_and_keeps_the_old_tokens_on_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.yaml");
        std::fs::write(&path, file()).unwrap();
        let source = TokenSource::open(&path).unwrap();
        assert!(source.current().authenticate("ci-secret").is_some());
        // File times are as coarse as the kernel's tick: let one pass so the change is seen.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let rotated = file().replace(&secret_digest("ci-secret"), &secret_digest("ci-secret-2"));
        std::fs::write(&path, &rotated).unwrap();
        let tokens = source.current();
        assert!(tokens.authenticate("ci-secret").is_none());
        assert!(tokens.authenticate("ci-secret-2").is_some());
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, "tokens: [{name: broken}]\n").unwrap();
        assert!(source.current().authenticate("ci-secret-2").is_some());
    }
}
