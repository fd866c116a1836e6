//! Who is asking: an HS256 JWT, verified with the `IDENTITY_SECRET` secret binding.
//!
//! The token comes from `Authorization: Bearer <jwt>` or, for browsers, the `ff_token` cookie.
//! Its `sub` becomes the targeting key and its other non-registered claims become *signed*
//! attributes ([`shared_eval::claims`], the rule the publisher's `eval` shares); the request
//! body can add unsigned attributes but never override these (the evaluator looks in the
//! signed set first and reads unsigned ones only where a flag allows).
//! No token means an anonymous identity: nothing signed, so permission flags are never served.
//!
//! What binds a token to an environment: its secret, and its `aud` claim. A token with `aud`
//! (a string or an array of strings, RFC 7519 section 4.1.3) is accepted only by a worker whose
//! environment it names, so a `dev` token is refused by `prod` even when both share a secret.
//! A token without `aud` is valid wherever its secret is: give each environment its own secret,
//! or mint tokens with `aud` (`publisher token --claim aud=prod`).
//!
//! The operator's bearer token (`PURGE_TOKEN`, for `/_flags/purge` and `/_flags/notify`) is
//! checked here too ([`bearer_matches`]); the verified-token cache is [`verified_tokens`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::error::ApiError;
use crate::limits::MAX_TOKEN_BYTES;
use verified_tokens::{Hit, Verified};

pub mod verified_tokens;

/// Cookie carrying the token for browser requests.
pub const TOKEN_COOKIE: &str = "ff_token";

/// Most claims read from one token (bounds the signed context like the body limit bounds the
/// unsigned one).
const MAX_CLAIMS: usize = 64;

/// The verified (or anonymous) caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `targetingKey` (from `sub`) plus the token's other claims; empty when anonymous.
    pub signed: Map<String, Value>,
    /// Whether a valid token was presented.
    pub verified: bool,
}

impl Identity {
    /// No token: nothing vouched for.
    pub fn anonymous() -> Identity {
        Identity {
            signed: Map::new(),
            verified: false,
        }
    }
}

/// The token from the `Authorization` header, else from the `ff_token` cookie.
pub fn token_from_headers<'a>(
    authorization: Option<&'a str>,
    cookie: Option<&'a str>,
) -> Option<&'a str> {
    if let Some(auth) = authorization {
        let auth = auth.trim();
        if let Some(scheme) = auth.get(..7)
            && scheme.eq_ignore_ascii_case("bearer ")
        {
            return auth.get(7..).map(str::trim);
        }
    }
    cookie?.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name.trim() == TOKEN_COOKIE).then(|| value.trim())
    })
}

/// Whether a presented bearer token (the `Authorization` header) equals the configured one
/// (the operator's `PURGE_TOKEN`), compared in constant time.
pub fn bearer_matches(authorization: Option<&str>, expected: &str) -> bool {
    let Some(token) = token_from_headers(authorization, None) else {
        return false;
    };
    // Comparing HMACs of both sides keeps the comparison constant-time whatever the lengths.
    let mac = |bytes: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"purge-token-compare").ok()?;
        mac.update(bytes);
        Some(mac)
    };
    match (mac(token.as_bytes()), mac(expected.as_bytes())) {
        (Some(presented), Some(expected)) => {
            presented.verify(&expected.finalize().into_bytes()).is_ok()
        }
        _ => false,
    }
}

/// A token as the request presented it, with the digest that keys its cache entries (the
/// verified-token cache and the answer cache): hashed once per request.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The token's text.
    pub token: &'a str,
    /// [`verified_tokens::digest`] of it.
    pub digest: [u8; 32],
}

impl<'a> Presented<'a> {
    /// `None` for no token or an empty one: both mean anonymous.
    pub fn new(token: Option<&'a str>) -> Option<Presented<'a>> {
        token.filter(|t| !t.is_empty()).map(|token| Presented {
            token,
            digest: verified_tokens::digest(token),
        })
    }
}

/// Resolves the caller: anonymous without a token; otherwise the token must verify, and its
/// `aud`, when it has one, must name `environment` (the worker's).
pub fn resolve(
    token: Option<&str>,
    secret: Option<&str>,
    environment: &str,
    now_s: i64,
) -> Result<Identity, ApiError> {
    resolve_presented(Presented::new(token).as_ref(), secret, environment, now_s)
}

/// [`resolve`] for a token already hashed ([`Presented`]).
pub fn resolve_presented(
    presented: Option<&Presented<'_>>,
    secret: Option<&str>,
    environment: &str,
    now_s: i64,
) -> Result<Identity, ApiError> {
    let Some(presented) = presented else {
        return Ok(Identity::anonymous());
    };
    let secret = usable_secret(secret)?;
    match verified_tokens::lookup(&presented.digest, secret, environment, now_s) {
        Some(Hit::Valid(identity)) => return Ok(identity),
        Some(Hit::Expired) => return Err(ApiError::TokenExpired),
        None => {}
    }
    verify_and_remember(presented, secret, environment, now_s)
}

/// Whether the caller would be accepted now (what [`resolve_presented`] refuses, this refuses),
/// without building its identity: the check in front of a cached answer.
pub fn check_presented(
    presented: Option<&Presented<'_>>,
    secret: Option<&str>,
    environment: &str,
    now_s: i64,
) -> Result<(), ApiError> {
    let Some(presented) = presented else {
        return Ok(());
    };
    let secret = usable_secret(secret)?;
    match verified_tokens::lookup_with(&presented.digest, secret, environment, now_s, |_| ()) {
        Some(Ok(())) => Ok(()),
        Some(Err(verified_tokens::Expired)) => Err(ApiError::TokenExpired),
        None => verify_and_remember(presented, secret, environment, now_s).map(drop),
    }
}

/// A token we cannot check is refused rather than ignored: the caller believes it is signed
/// in, and silently treating it as anonymous would hide a deployment mistake.
fn usable_secret(secret: Option<&str>) -> Result<&str, ApiError> {
    secret
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::TokenUnverifiable)
}

/// The full check (signature, time claims, audience, subject); a token that passes is kept in
/// the verified-token cache.
fn verify_and_remember(
    presented: &Presented<'_>,
    secret: &str,
    environment: &str,
    now_s: i64,
) -> Result<Identity, ApiError> {
    let claims = verify_hs256(presented.token, secret.as_bytes(), now_s)?;
    // verify_hs256 checked both are numbers (exp present).
    let expires_s = claims
        .get("exp")
        .and_then(Value::as_f64)
        .unwrap_or(f64::MIN);
    let not_before_s = claims.get("nbf").and_then(Value::as_f64);
    if let Some(audience) = claims.get("aud")
        && !audience_names(audience, environment)
    {
        return Err(ApiError::TokenWrongAudience);
    }
    match claims.get(shared_eval::claims::SUBJECT) {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err(ApiError::TokenInvalid),
    }
    let identity = Identity {
        // Registered claims dropped, `sub` as the targeting key: shared-eval's one rule.
        signed: shared_eval::claims::signed_attributes(claims),
        verified: true,
    };
    verified_tokens::store(
        presented.digest,
        secret,
        environment,
        Verified {
            identity: identity.clone(),
            expires_s,
            not_before_s,
        },
    );
    Ok(identity)
}

/// Whether an `aud` claim names `environment` (an empty environment is never named).
fn audience_names(audience: &Value, environment: &str) -> bool {
    let names = |v: &Value| {
        v.as_str()
            .is_some_and(|a| !a.is_empty() && a == environment)
    };
    match audience {
        Value::Array(items) => items.iter().any(names),
        single => names(single),
    }
}

/// Verifies an HS256 JWT's signature and time claims and returns its claims.
pub fn verify_hs256(
    token: &str,
    secret: &[u8],
    now_s: i64,
) -> Result<Map<String, Value>, ApiError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ApiError::TokenInvalid);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ApiError::TokenInvalid);
    };
    let header: Map<String, Value> = decode_json_part(header_b64)?;
    // Only HS256: never "none", never an algorithm chosen by the token's author.
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(ApiError::TokenInvalid);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| ApiError::TokenInvalid)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| ApiError::TokenInvalid)?;
    mac.update(header_b64.as_bytes());
    mac.update(b".");
    mac.update(claims_b64.as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| ApiError::TokenInvalid)?;

    let claims: Map<String, Value> = decode_json_part(claims_b64)?;
    if claims.len() > MAX_CLAIMS {
        return Err(ApiError::TokenInvalid);
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or(ApiError::TokenInvalid)?;
    if (now_s as f64) >= exp {
        return Err(ApiError::TokenExpired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_f64().ok_or(ApiError::TokenInvalid)?;
        if (now_s as f64) < nbf {
            return Err(ApiError::TokenExpired);
        }
    }
    Ok(claims)
}

fn decode_json_part(part: &str) -> Result<Map<String, Value>, ApiError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ApiError::TokenInvalid)?;
    if crate::limits::json_too_deep(&bytes, crate::limits::MAX_JSON_DEPTH) {
        return Err(ApiError::TokenInvalid);
    }
    match shared_eval::parse_json(&bytes) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(ApiError::TokenInvalid),
    }
}

/// Signs `claims` as an HS256 JWT. Used by tests and by whatever issues tokens for local runs;
/// the worker itself only verifies.
pub fn sign_hs256(claims: &Map<String, Value>, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let signature = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{signing_input}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "test-secret";
    const NOW: i64 = 1_800_000_000;
    const ENV: &str = "prod";

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn rfc7515_hs256_example_verifies() {
        // RFC 7515 appendix A.1: header {"typ":"JWT","alg":"HS256"}, key given as a JWK.
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let claims = verify_hs256(token, &key, 1_300_000_000).unwrap();
        assert_eq!(claims["iss"], "joe");
        assert_eq!(
            verify_hs256(token, &key, 1_300_819_380),
            Err(ApiError::TokenExpired)
        );
        assert_eq!(
            verify_hs256(token, b"other key", 1_300_000_000),
            Err(ApiError::TokenInvalid)
        );
    }

    #[test]
    fn sub_becomes_targeting_key_and_registered_claims_are_dropped() {
        let token = sign_hs256(
            &claims(
                json!({"sub": "user-1", "exp": NOW + 60, "iat": NOW, "plan": "pro",
                           "targetingKey": "spoofed"}),
            ),
            SECRET.as_bytes(),
        );
        let id = resolve(Some(&token), Some(SECRET), ENV, NOW).unwrap();
        assert!(id.verified);
        assert_eq!(
            Value::Object(id.signed),
            json!({"targetingKey": "user-1", "plan": "pro"})
        );
    }

    #[test]
    fn bad_tokens_are_refused() {
        let good = claims(json!({"sub": "u", "exp": NOW + 60}));
        let token = sign_hs256(&good, SECRET.as_bytes());
        // Wrong secret, tampered payload, expired, missing exp, missing sub, not yet valid.
        assert_eq!(
            resolve(Some(&token), Some("other"), ENV, NOW),
            Err(ApiError::TokenInvalid)
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","exp":9999999999}"#);
        parts[1] = &forged;
        assert_eq!(
            resolve(Some(&parts.join(".")), Some(SECRET), ENV, NOW),
            Err(ApiError::TokenInvalid)
        );
        assert_eq!(
            resolve(Some(&token), Some(SECRET), ENV, NOW + 60),
            Err(ApiError::TokenExpired)
        );
        for bad in [
            json!({"sub": "u"}),
            json!({"exp": NOW + 60}),
            json!({"sub": 5, "exp": NOW + 60}),
        ] {
            let t = sign_hs256(&claims(bad), SECRET.as_bytes());
            assert_eq!(
                resolve(Some(&t), Some(SECRET), ENV, NOW),
                Err(ApiError::TokenInvalid)
            );
        }
        let early = sign_hs256(
            &claims(json!({"sub": "u", "exp": NOW + 60, "nbf": NOW + 10})),
            SECRET.as_bytes(),
        );
        assert_eq!(
            resolve(Some(&early), Some(SECRET), ENV, NOW),
            Err(ApiError::TokenExpired)
        );
        // A token but no secret configured: refused, not silently anonymous.
        assert_eq!(
            resolve(Some(&token), None, ENV, NOW),
            Err(ApiError::TokenUnverifiable)
        );
        for junk in [
            "",
            "a.b",
            "a.b.c.d",
            "....",
            "é.é.é",
            "eyJhbGciOiJub25lIn0.e30.",
        ] {
            let result = resolve(Some(junk), Some(SECRET), ENV, NOW);
            assert!(junk.is_empty() || result.is_err(), "{junk:?} accepted");
        }
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"u","exp":9999999999}"#);
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS512"}"#,
            r#"{"alg":"RS256"}"#,
            "{}",
        ] {
            let token = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header));
            assert_eq!(
                resolve(Some(&token), Some(SECRET), ENV, NOW),
                Err(ApiError::TokenInvalid)
            );
        }
    }

    #[test]
    fn a_cached_token_is_refused_once_expired_or_under_another_secret() {
        let token = sign_hs256(
            &claims(json!({"sub": "cached-user", "exp": NOW + 60, "nbf": NOW - 5})),
            SECRET.as_bytes(),
        );
        let first = resolve(Some(&token), Some(SECRET), ENV, NOW).unwrap();
        // Served from the cache now: the same identity.
        assert_eq!(
            resolve(Some(&token), Some(SECRET), ENV, NOW + 59),
            Ok(first)
        );
        // The secret rotated: the cached verdict does not carry over.
        assert_eq!(
            resolve(Some(&token), Some("rotated"), ENV, NOW),
            Err(ApiError::TokenInvalid)
        );
        assert!(resolve(Some(&token), Some(SECRET), ENV, NOW).is_ok());
        // Its `exp` passes while cached: refused, and again after it left the cache.
        assert_eq!(
            resolve(Some(&token), Some(SECRET), ENV, NOW + 60),
            Err(ApiError::TokenExpired)
        );
        assert_eq!(
            resolve(Some(&token), Some(SECRET), ENV, NOW + 60),
            Err(ApiError::TokenExpired)
        );
    }

    #[test]
    fn a_cached_token_never_answers_for_another() {
        let mint = |sub: &str| {
            sign_hs256(
                &claims(json!({"sub": sub, "exp": NOW + 60})),
                SECRET.as_bytes(),
            )
        };
        // More tokens than the cache holds, each resolved twice (miss, then hit or re-verify).
        for round in 0..2 {
            for i in 0..verified_tokens::CAPACITY + 8 {
                let sub = format!("user-{i}");
                let id = resolve(Some(&mint(&sub)), Some(SECRET), ENV, NOW).unwrap();
                assert_eq!(
                    id.signed.get("targetingKey"),
                    Some(&json!(sub)),
                    "round {round}"
                );
            }
        }
        // A token whose signature was tampered with is not matched to a cached one.
        let good = mint("user-1");
        let tampered = format!("{}x", good);
        assert_eq!(
            resolve(Some(&tampered), Some(SECRET), ENV, NOW),
            Err(ApiError::TokenInvalid)
        );
    }

    #[test]
    fn a_token_for_another_environment_is_refused() {
        let mint = |aud: Value| {
            sign_hs256(
                &claims(json!({"sub": "u", "exp": NOW + 60, "aud": aud})),
                SECRET.as_bytes(),
            )
        };
        for accepted in [json!("prod"), json!(["dev", "prod"])] {
            let id = resolve(Some(&mint(accepted.clone())), Some(SECRET), ENV, NOW);
            assert!(id.is_ok_and(|id| id.verified), "{accepted}");
        }
        for refused in [
            json!("dev"),
            json!(["dev", "staging"]),
            json!([]),
            json!(""),
            json!(7),
        ] {
            assert_eq!(
                resolve(Some(&mint(refused.clone())), Some(SECRET), ENV, NOW),
                Err(ApiError::TokenWrongAudience),
                "{refused}"
            );
        }
        // Without `aud` the secret alone binds it.
        let plain = sign_hs256(
            &claims(json!({"sub": "u", "exp": NOW + 60})),
            SECRET.as_bytes(),
        );
        assert!(resolve(Some(&plain), Some(SECRET), ENV, NOW).is_ok());
        assert_eq!(
            resolve(Some(&mint(json!("prod"))), Some(SECRET), "", NOW),
            Err(ApiError::TokenWrongAudience)
        );
    }

    #[test]
    fn purge_token_must_match_exactly() {
        assert!(bearer_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some("s3cret"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
    }

    #[test]
    fn token_is_read_from_bearer_header_then_cookie() {
        assert_eq!(token_from_headers(Some("Bearer abc"), None), Some("abc"));
        assert_eq!(token_from_headers(Some("bearer  abc "), None), Some("abc"));
        assert_eq!(
            token_from_headers(None, Some("a=1; ff_token=xyz; b=2")),
            Some("xyz")
        );
        assert_eq!(
            token_from_headers(Some("Basic abc"), Some("ff_token=xyz")),
            Some("xyz")
        );
        assert_eq!(token_from_headers(None, Some("xff_token=1")), None);
        assert_eq!(token_from_headers(Some("Bear"), None), None);
        assert_eq!(
            resolve(None, Some(SECRET), ENV, NOW),
            Ok(Identity::anonymous())
        );
    }
}
