//! An identity token's claims as evaluation attributes: the one rule for the edge (a verified
//! token) and the publisher (`publisher eval --signed`, which answers as the edge would).
//!
//! - Registered claims ([`REGISTERED_CLAIMS`], RFC 7519 section 4.1) describe the token, not
//!   the user: they are never attributes.
//! - `sub` is the targeting key: it becomes the signed attribute [`TARGETING_KEY`], replacing
//!   any claim of that name.
//! - Every other claim is a signed attribute as it stands.
//! - Beside a token, the request body may not restate the targeting key
//!   ([`drop_restated_targeting_key`]); an anonymous body's `targetingKey` is its own.
//!
//! What makes a token acceptable (signature, `exp`/`nbf`, `aud`, a non-empty string `sub`) is
//! the edge's to check before; this module only maps the claims of a token already accepted.
//!
//! # Example
//!
//! ```
//! use serde_json::{Map, Value, json};
//! use shared_eval::claims;
//!
//! let Value::Object(token) = json!({"sub": "u1", "exp": 1, "plan": "pro", "targetingKey": "x"})
//! else { unreachable!() };
//! let signed = claims::signed_attributes(token);
//! assert_eq!(Value::Object(signed), json!({"targetingKey": "u1", "plan": "pro"}));
//! assert!(claims::is_registered("aud") && !claims::is_registered("plan"));
//! ```

use alloc::string::String;
use serde_json::{Map, Value};

/// The registered JWT claims (RFC 7519 section 4.1): about the token, not the user, so never
/// exposed as attributes.
pub const REGISTERED_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// The claim that names the user: it becomes the targeting key.
pub const SUBJECT: &str = "sub";

/// The attribute holding the targeting key (what splits bucket by).
pub const TARGETING_KEY: &str = "targetingKey";

/// Whether a claim is registered (and so never an attribute).
pub fn is_registered(name: &str) -> bool {
    REGISTERED_CLAIMS.contains(&name)
}

/// A verified token's claims as signed attributes: registered claims dropped, `sub` (when
/// present) as [`TARGETING_KEY`].
pub fn signed_attributes(mut claims: Map<String, Value>) -> Map<String, Value> {
    let subject = claims.remove(SUBJECT);
    claims.retain(|name, _| !is_registered(name));
    if let Some(subject) = subject {
        claims.insert(TARGETING_KEY.into(), subject);
    }
    claims
}

/// The request body's attributes beside a verified token: the token's subject is the
/// targeting key, so the body's [`TARGETING_KEY`] is dropped.
pub fn drop_restated_targeting_key(unsigned: &mut Map<String, Value>) {
    unsigned.remove(TARGETING_KEY);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn registered_claims_are_dropped_and_sub_is_the_targeting_key() {
        let claims = object(json!({
            "iss": "i", "sub": "user-1", "aud": ["prod"], "exp": 2, "nbf": 1, "iat": 1, "jti": "j",
            "plan": "pro", "targetingKey": "spoofed", "nested": {"sub": "kept"}
        }));
        assert_eq!(
            Value::Object(signed_attributes(claims)),
            json!({"targetingKey": "user-1", "plan": "pro", "nested": {"sub": "kept"}})
        );
    }

    #[test]
    fn without_sub_a_targeting_key_claim_stands() {
        let claims = object(json!({"exp": 2, "targetingKey": "t", "plan": "pro"}));
        assert_eq!(
            Value::Object(signed_attributes(claims)),
            json!({"targetingKey": "t", "plan": "pro"})
        );
        assert_eq!(
            Value::Object(signed_attributes(object(json!({"exp": 2})))),
            json!({})
        );
    }

    #[test]
    fn the_body_may_not_restate_the_targeting_key() {
        let mut unsigned = object(json!({"targetingKey": "other", "country": "NZ"}));
        drop_restated_targeting_key(&mut unsigned);
        assert_eq!(Value::Object(unsigned), json!({"country": "NZ"}));
    }

    #[test]
    fn exactly_the_seven_registered_claims() {
        for name in REGISTERED_CLAIMS {
            assert!(is_registered(name), "{name}");
        }
        for name in ["targetingKey", "plan", "Sub", "role", ""] {
            assert!(!is_registered(name), "{name}");
        }
    }
}
