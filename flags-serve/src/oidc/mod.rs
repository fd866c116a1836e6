//! OIDC sign-in: people sign in to the service and its page through the organisation's OpenID
//! provider (Okta, Entra ID, Google, Keycloak, ...) instead of holding a token.
//!
//! - `config.rs`: the `oidc:` section of `serve.yaml` and its role mapping (groups claim and
//!   e-mail addresses/domains to the token file's per-environment roles).
//! - `flow.rs`: the authorization code flow with PKCE, discovery, ID token validation.
//! - `routes.rs`: `GET /auth/oidc/login` (to the provider), `GET /auth/oidc/callback` (back:
//!   a browser session, `sessions.rs`), and the error pages. Signing out is the page's
//!   `POST /logout`, for every kind of session.
//!
//! A sign-in in progress is bound to the browser that started it: `/auth/oidc/login` sets the
//! `flags_oidc` cookie (a random id, kept here hashed, [`PENDING_TTL`] long) and the callback
//! must come back with it and with the `state` sent, once. A session holds the identity (subject,
//! name, e-mail, groups), never roles: `auth.rs` maps them to roles at every request from the
//! mapping in force, `serve.yaml`'s `oidc.roles` re-read whenever the file changes (as the token
//! file is); the provider's settings are read at start-up.

pub mod config;
mod flow;
pub mod routes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use sha2::{Digest, Sha256};

use crate::tokens::{Stamp, stamp};
use config::{OidcConfig, RoleMapping, Roles};
pub use flow::{DISCOVERY_TTL, Pending};

/// The cookie binding a sign-in in progress to its browser.
pub const PENDING_COOKIE: &str = "flags_oidc";

/// How long a sign-in may take at the provider.
pub const PENDING_TTL: Duration = Duration::from_secs(600);

/// Sign-ins in progress held at once; beyond it the oldest is dropped (memory stays bounded
/// whoever keeps starting sign-ins).
pub const MAX_PENDING: usize = 10_000;

/// Longest name or e-mail kept from an ID token.
const MAX_CLAIM_CHARS: usize = 200;

/// Who signed in through the provider: what the ID token said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIdentity {
    /// `sub`.
    pub subject: String,
    /// `name`, else the e-mail, else the subject: the Git author name of its edits.
    pub name: String,
    /// `email`, unless `email_verified` is `false`.
    pub email: Option<String>,
    /// The configured groups claim's values.
    pub groups: Vec<String>,
}

/// Keeps what may stand in a Git author line or a log: no control characters, no `<>`,
/// at most [`MAX_CLAIM_CHARS`].
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() && !matches!(c, '<' | '>'))
        .take(MAX_CLAIM_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

impl OidcIdentity {
    /// From the ID token's claims. An e-mail the provider says is not verified is dropped
    /// (it would otherwise name, and map roles for, whoever typed it).
    pub fn new(
        subject: &str,
        name: Option<&str>,
        email: Option<&str>,
        email_verified: Option<bool>,
        groups: Vec<String>,
    ) -> OidcIdentity {
        let email = email
            .filter(|_| email_verified != Some(false))
            .map(clean)
            .filter(|e| e.contains('@'));
        let subject = clean(subject);
        let name = name
            .map(clean)
            .filter(|n| !n.is_empty())
            .or_else(|| email.clone())
            .unwrap_or_else(|| subject.clone());
        OidcIdentity {
            subject,
            name,
            email,
            groups,
        }
    }

    /// What the audit trail, approvals and logs call it: the e-mail (unique at the provider),
    /// else `oidc:<sub>`.
    pub fn login(&self) -> String {
        self.email
            .clone()
            .unwrap_or_else(|| format!("oidc:{}", self.subject))
    }
}

/// Why a sign-in failed: what the error page says, with its status.
#[derive(Debug)]
pub struct OidcError {
    /// The answer's status.
    pub status: StatusCode,
    /// The sentence shown (no secret in it).
    pub message: String,
}

impl OidcError {
    fn provider(message: String) -> OidcError {
        OidcError {
            status: StatusCode::BAD_GATEWAY,
            message,
        }
    }

    fn invalid_token(detail: String) -> OidcError {
        OidcError {
            status: StatusCode::UNAUTHORIZED,
            message: format!("the provider's ID token is not valid: {detail}"),
        }
    }

    fn refused(message: impl Into<String>) -> OidcError {
        OidcError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

/// A sign-in in progress and when it started.
#[derive(Debug)]
struct Started {
    pending: Pending,
    at: Instant,
}

/// The configured provider, the role mapping in force and the sign-ins in progress.
#[derive(Debug)]
pub struct Oidc {
    flow: flow::Flow,
    pending: Mutex<HashMap<[u8; 32], Started>>,
    /// `serve.yaml`, whose `oidc.roles` is re-read when it changes (`None`: configured
    /// without a file, the mapping is fixed).
    file: Option<PathBuf>,
    mapping: RwLock<(Option<Stamp>, Arc<RoleMapping>)>,
}

impl Oidc {
    /// For `config`, reading its client secret now (a missing secret stops the service from
    /// starting rather than every sign-in from working).
    /// `file` is the `serve.yaml` it came from: its `oidc.roles` is re-read when it changes.
    pub fn new(config: OidcConfig, file: Option<PathBuf>) -> Result<Oidc, String> {
        config.check()?;
        let secret = config.client_secret()?;
        let mapping = (
            file.as_deref().and_then(stamp),
            Arc::new(config.roles.clone()),
        );
        Ok(Oidc {
            flow: flow::Flow::new(config, secret)?,
            pending: Mutex::default(),
            file,
            mapping: RwLock::new(mapping),
        })
    }

    /// The role mapping in force: `serve.yaml`'s `oidc.roles`, re-read first if the file
    /// changed (a file that no longer parses is reported and the previous mapping stays).
    pub fn mapping(&self) -> Arc<RoleMapping> {
        let Some(file) = &self.file else {
            return self
                .mapping
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .1
                .clone();
        };
        let now = stamp(file);
        {
            let held = self.mapping.read().unwrap_or_else(|e| e.into_inner());
            if held.0 == now {
                return held.1.clone();
            }
        }
        let mut held = self.mapping.write().unwrap_or_else(|e| e.into_inner());
        if held.0 != now {
            held.0 = now;
            match std::fs::read_to_string(file)
                .map_err(|e| e.to_string())
                .and_then(|text| RoleMapping::from_config_text(&text))
            {
                Ok(mapping) => {
                    tracing::info!(file = %file.display(), "oidc role mapping re-read");
                    held.1 = Arc::new(mapping);
                }
                Err(error) => tracing::error!(
                    file = %file.display(),
                    %error,
                    "serve.yaml changed but its oidc roles cannot be used; the previous mapping stays in force"
                ),
            }
        }
        held.1.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        self.flow.config()
    }

    /// The roles `identity` holds now, from the mapping in force.
    pub fn roles(&self, identity: &OidcIdentity) -> Roles {
        self.mapping()
            .roles_for(&identity.groups, identity.email.as_deref())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Started>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a sign-in for the browser that will hold `binding` (the [`PENDING_COOKIE`]):
    /// the provider's authorization URL.
    pub async fn start(&self, binding: &str) -> Result<String, OidcError> {
        let (url, pending) = self.flow.authorize().await?;
        let now = Instant::now();
        let mut held = self.lock();
        held.retain(|_, s| now.duration_since(s.at) < PENDING_TTL);
        if held.len() >= MAX_PENDING
            && let Some(oldest) = held.iter().min_by_key(|(_, s)| s.at).map(|(k, _)| *k)
        {
            held.remove(&oldest);
        }
        held.insert(
            Sha256::digest(binding.as_bytes()).into(),
            Started { pending, at: now },
        );
        Ok(url)
    }

    /// Finishes the sign-in `binding` started (once: a second callback finds nothing), if
    /// `state` is the one sent: who signed in.
    pub async fn finish(
        &self,
        binding: Option<&str>,
        state: &str,
        code: String,
    ) -> Result<OidcIdentity, OidcError> {
        let expired = || {
            OidcError::refused(
                "this sign-in is unknown or expired (or was started in another browser): start again",
            )
        };
        let started = binding
            .and_then(|b| {
                self.lock()
                    .remove(&<[u8; 32]>::from(Sha256::digest(b.as_bytes())))
            })
            .ok_or_else(expired)?;
        if started.at.elapsed() >= PENDING_TTL {
            return Err(expired());
        }
        let sent = Sha256::digest(started.pending.state.as_bytes());
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            sent.as_slice(),
            Sha256::digest(state.as_bytes()).as_slice(),
        )) {
            return Err(OidcError::refused(
                "the provider's answer does not carry this sign-in's state: start again",
            ));
        }
        self.flow.finish(started.pending, code).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unverified_email_is_dropped_and_names_are_cleaned() {
        let id = OidcIdentity::new(
            "s1",
            Some("Eve <x>\n"),
            Some("boss@example.com"),
            Some(false),
            vec![],
        );
        assert_eq!(id.email, None);
        assert_eq!(id.name, "Eve x");
        assert_eq!(id.login(), "oidc:s1");
        let id = OidcIdentity::new("s2", None, Some("a@example.com"), None, vec![]);
        assert_eq!(
            (id.name.as_str(), id.login()),
            ("a@example.com", "a@example.com".into())
        );
    }
}
