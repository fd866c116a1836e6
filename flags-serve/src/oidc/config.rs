//! The `oidc:` section of `serve.yaml`: which OpenID provider signs people in, as which client,
//! and which roles its identities get (from a groups claim and from e-mail addresses or
//! domains, in the token file's shape: `{"*": [read]}`, `{prod: [approve]}`).
//!
//! ```yaml
//! oidc:
//!   issuer: https://login.example.com/            # its /.well-known/openid-configuration
//!   name: Okta                                    # the button says "Sign in with Okta"
//!   client_id: flags
//!   client_secret_file: oidc-client.secret        # or FLAGS_SERVE_OIDC_CLIENT_SECRET
//!   redirect_url: https://flags.example.com/auth/oidc/callback
//!   scopes: [openid, email, profile, groups]
//!   groups_claim: groups
//!   roles:
//!     groups:
//!       flag-editors: {"*": [edit]}
//!       sre: {prod: [kill, approve]}
//!     emails:
//!       alice@example.com: {"*": [admin]}
//!       "@example.com": {"*": [read]}             # a whole domain
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::tokens::{ANY_ENV, Role};

/// The variable that holds the client secret (before `client_secret_file`).
pub const SECRET_VAR: &str = "FLAGS_SERVE_OIDC_CLIENT_SECRET";

/// Roles per environment, as a token's (`*` for all).
pub type Roles = BTreeMap<String, Vec<Role>>;

/// The `oidc:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL (discovery reads `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// What the sign-in button calls the provider ("Sign in with <name>").
    #[serde(default = "default_name")]
    pub name: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// A file holding the client secret (trailing newline ignored); the variable
    /// [`SECRET_VAR`] wins over it. The secret never sits in this file.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The service's callback as registered at the provider:
    /// `<public URL>/auth/oidc/callback`.
    pub redirect_url: String,
    /// Scopes asked for (`openid` is always sent).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID token claim that lists the identity's groups (a list of strings, or one string).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Which identities get which roles.
    #[serde(default)]
    pub roles: RoleMapping,
}

/// Roles by group and by e-mail. An identity gets the union of every entry it matches; one
/// that matches none gets no access.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMapping {
    /// By group name (exact).
    #[serde(default)]
    pub groups: BTreeMap<String, Roles>,
    /// By e-mail address (`alice@example.com`, case-insensitive) or domain (`@example.com`).
    /// Only a verified address counts (an ID token whose `email_verified` is `false` matches
    /// no entry here).
    #[serde(default)]
    pub emails: BTreeMap<String, Roles>,
}

fn default_name() -> String {
    "SSO".into()
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

fn default_groups_claim() -> String {
    "groups".into()
}

impl RoleMapping {
    /// Checks the environments' names and the e-mail keys.
    pub fn check(&self) -> Result<(), String> {
        for roles in self.groups.values().chain(self.emails.values()) {
            for env in roles.keys().filter(|e| *e != ANY_ENV) {
                flags_store::layout::check_env(env).map_err(|e| format!("oidc: roles: {e}"))?;
            }
        }
        if let Some(bad) = self
            .emails
            .keys()
            .find(|k| !k.contains('@') || k.ends_with('@'))
        {
            return Err(format!(
                "oidc: roles: emails: {bad:?} is neither an address (alice@example.com) nor a domain (@example.com)"
            ));
        }
        Ok(())
    }

    /// The `oidc.roles` of a `serve.yaml`'s text (empty when it has no `oidc:`).
    pub fn from_config_text(text: &str) -> Result<RoleMapping, String> {
        let node = flags_compile::yaml::parse(text)
            .map_err(|e| format!("line {}: {}", e.line, e.message))?;
        let json = node.to_json();
        let mapping: RoleMapping = match json.get("oidc").and_then(|o| o.get("roles")) {
            Some(roles) => {
                serde_json::from_value(roles.clone()).map_err(|e| format!("oidc: roles: {e}"))?
            }
            None => RoleMapping::default(),
        };
        mapping.check()?;
        Ok(mapping)
    }

    /// The roles of an identity with `groups` and `email` (verified, or `None`).
    pub fn roles_for(&self, groups: &[String], email: Option<&str>) -> Roles {
        let email = email.map(str::to_ascii_lowercase);
        let domain = email
            .as_deref()
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| format!("@{d}"));
        let by_email = self.emails.iter().filter(|(key, _)| {
            let key = key.to_ascii_lowercase();
            Some(&key) == email.as_ref() || Some(&key) == domain.as_ref()
        });
        let by_group = self
            .groups
            .iter()
            .filter(|(group, _)| groups.contains(group));
        let mut roles = Roles::new();
        for (_, granted) in by_group.chain(by_email) {
            for (env, held) in granted {
                let entry = roles.entry(env.clone()).or_default();
                entry.extend(held);
                entry.sort();
                entry.dedup();
            }
        }
        roles
    }
}

impl OidcConfig {
    /// Checks what the file says: URLs, environments, mapping keys.
    pub fn check(&self) -> Result<(), String> {
        for (what, url) in [
            ("issuer", &self.issuer),
            ("redirect_url", &self.redirect_url),
        ] {
            if crate::auth::origin_of(url).is_none() {
                return Err(format!("oidc: {what} {url:?} is not an http(s) URL"));
            }
        }
        if !self.redirect_url.ends_with("/auth/oidc/callback") {
            return Err(format!(
                "oidc: redirect_url {:?} must be the service's /auth/oidc/callback",
                self.redirect_url
            ));
        }
        self.roles.check()
    }

    /// The client secret: [`SECRET_VAR`], else the content of `client_secret_file`.
    pub fn client_secret(&self) -> Result<String, String> {
        if let Ok(secret) = std::env::var(SECRET_VAR)
            && !secret.is_empty()
        {
            return Ok(secret);
        }
        let Some(file) = &self.client_secret_file else {
            return Err(format!("oidc: set client_secret_file or {SECRET_VAR}"));
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("oidc client secret {}: {e}", file.display()))?;
        let secret = text.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(format!("oidc client secret {} is empty", file.display()));
        }
        Ok(secret.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> RoleMapping {
        let text = r#"{"groups": {"editors": {"*": ["edit"]}, "sre": {"prod": ["kill"]}},
            "emails": {"Boss@Example.com": {"*": ["admin"]}, "@example.com": {"dev": ["read"]}}}"#;
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_missing_client_secret_names_both_places_it_may_come_from() {
        let config: OidcConfig = serde_json::from_value(serde_json::json!({
            "issuer": "https://idp.example", "client_id": "c",
            "redirect_url": "https://f.example/auth/oidc/callback",
            "client_secret_file": "/nonexistent/oidc.secret"
        }))
        .unwrap();
        if std::env::var_os(SECRET_VAR).is_none() {
            let err = config.client_secret().unwrap_err();
            assert!(err.contains("/nonexistent/oidc.secret"), "{err}");
            let bare = OidcConfig {
                client_secret_file: None,
                ..config
            };
            let err = bare.client_secret().unwrap_err();
            assert!(
                err.contains(SECRET_VAR) && err.contains("client_secret_file"),
                "{err}"
            );
        }
    }

    #[test]
    fn roles_are_the_union_of_every_group_and_email_entry_matched() {
        let m = mapping();
        let roles = m.roles_for(&["editors".into(), "sre".into()], Some("x@example.com"));
        assert_eq!(roles["*"], [Role::Edit]);
        assert_eq!(roles["prod"], [Role::Kill]);
        assert_eq!(roles["dev"], [Role::Read]);
        let boss = m.roles_for(&[], Some("boss@EXAMPLE.com"));
        assert_eq!(boss["*"], [Role::Admin]);
        assert!(
            m.roles_for(&["Editors".into()], None).is_empty(),
            "groups are exact"
        );
        assert!(m.roles_for(&[], Some("x@example.com.evil")).is_empty());
        assert!(m.roles_for(&[], Some("x@sub.example.com")).is_empty());
        assert!(m.roles_for(&[], None).is_empty());
    }
}
