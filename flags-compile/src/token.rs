//! HS256-signed identity tokens (JWTs), minted by `publisher token` for demos and tests.
//!
//! The edge worker takes the targeting key (`sub`) and the protected attributes (every other claim)
//! only from a token signed with its identity secret, so a browser cannot claim to be an internal
//! tester. Real deployments mint these in their login service; this command exists so the demo and
//! the tests can mint them without the secret ever reaching a browser.

use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

/// The JOSE header of every token we mint, already serialized (its bytes are part of what is signed).
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Claims the command sets itself; `--claim` may not override them.
const RESERVED_CLAIMS: [&str; 4] = ["sub", "iat", "exp", "nbf"];

/// Builds the payload: `sub`, `iat`, `exp` (= `iat` + `ttl`) and the extra signed attributes.
/// `issued_at` is seconds since the Unix epoch.
pub fn build_claims(
    sub: &str,
    extra: impl IntoIterator<Item = (String, Value)>,
    issued_at: u64,
    ttl: Duration,
) -> anyhow::Result<Map<String, Value>> {
    if sub.is_empty() {
        bail!("--sub must not be empty: it becomes the targeting key");
    }
    if ttl.is_zero() {
        bail!("--ttl must be positive");
    }
    let mut claims = Map::new();
    claims.insert("sub".into(), sub.into());
    claims.insert("iat".into(), issued_at.into());
    claims.insert("exp".into(), issued_at.saturating_add(ttl.as_secs()).into());
    for (name, value) in extra {
        if RESERVED_CLAIMS.contains(&name.as_str()) {
            bail!("claim `{name}` is set by the command itself (use --sub / --ttl)");
        }
        if claims.insert(name.clone(), value).is_some() {
            bail!("claim `{name}` is given twice");
        }
    }
    Ok(claims)
}

/// Signs `claims` as a compact HS256 JWT.
pub fn mint(secret: &[u8], claims: &Map<String, Value>) -> anyhow::Result<String> {
    sign(secret, &serde_json::to_string(claims)?)
}

/// Signs an already-serialized payload: `b64(header) . b64(payload) . b64(HMAC-SHA256(secret, both))`.
pub fn sign(secret: &[u8], payload_json: &str) -> anyhow::Result<String> {
    if secret.is_empty() {
        bail!("the identity secret is empty");
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER_JSON),
        URL_SAFE_NO_PAD.encode(payload_json)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).context("HMAC key rejected")?;
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{signing_input}.{signature}"))
}

fn split_claim(arg: &str) -> Result<(&str, &str), String> {
    match arg.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name, value)),
        _ => Err(format!("expected NAME=VALUE, got `{arg}`")),
    }
}

/// Parses `--claim NAME=VALUE`: the value is a string.
pub fn parse_string_claim(arg: &str) -> Result<(String, Value), String> {
    let (name, value) = split_claim(arg)?;
    Ok((name.to_owned(), Value::String(value.to_owned())))
}

/// Parses `--claim-json NAME=JSON`: the value is any JSON value.
pub fn parse_json_claim(arg: &str) -> Result<(String, Value), String> {
    let (name, value) = split_claim(arg)?;
    let value =
        serde_json::from_str(value).map_err(|e| format!("claim `{name}`: not JSON: {e}"))?;
    Ok((name.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signature_matches_the_published_hs256_example() {
        // The example token shown on jwt.io (header, payload and secret as published there).
        let token = sign(
            b"your-256-bit-secret",
            r#"{"sub":"1234567890","name":"John Doe","iat":1516239022}"#,
        )
        .unwrap();
        assert_eq!(
            token,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
             eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.\
             SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        );
    }

    #[test]
    fn claims_carry_subject_expiry_and_typed_attributes() {
        let extra = [
            parse_string_claim("plan=premium").unwrap(),
            parse_json_claim("internal=true").unwrap(),
            parse_string_claim("email=a=b@example.com").unwrap(),
        ];
        let claims = build_claims("alice", extra, 1_000, Duration::from_secs(86_400)).unwrap();
        assert_eq!(
            Value::Object(claims),
            json!({"sub": "alice", "iat": 1_000, "exp": 87_400, "plan": "premium",
                   "internal": true, "email": "a=b@example.com"})
        );
    }

    #[test]
    fn payload_decodes_back_to_the_claims() {
        let claims = build_claims("bob", [], 5, Duration::from_secs(60)).unwrap();
        let token = mint(b"secret", &claims).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload, json!({"sub": "bob", "iat": 5, "exp": 65}));
    }

    #[test]
    fn rejects_what_would_make_a_misleading_token() {
        let reserved = [parse_string_claim("sub=mallory").unwrap()];
        assert!(build_claims("alice", reserved, 0, Duration::from_secs(1)).is_err());
        let twice = [
            parse_string_claim("plan=a").unwrap(),
            parse_string_claim("plan=b").unwrap(),
        ];
        assert!(build_claims("alice", twice, 0, Duration::from_secs(1)).is_err());
        assert!(build_claims("", [], 0, Duration::from_secs(1)).is_err());
        assert!(build_claims("alice", [], 0, Duration::ZERO).is_err());
        assert!(sign(b"", "{}").is_err());
        assert!(parse_string_claim("=x").is_err());
        assert!(parse_string_claim("novalue").is_err());
        assert!(parse_json_claim("internal=yes").is_err());
    }
}
