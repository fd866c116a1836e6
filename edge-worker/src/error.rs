//! Every error the worker answers with: a status and an OFREP-shaped body with a fixed message.
//!
//! Messages never echo internals (origin URLs, blob contents, parser positions) or secrets; the
//! only request data that may appear in a body is the flag key, as OFREP's `key` field.

use serde::Serialize;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiError {
    /// Body larger than [`crate::limits::MAX_BODY_BYTES`].
    BodyTooLarge,
    /// Body is not JSON.
    BodyNotJson,
    /// Body is JSON but not `{"context": {...}}`.
    ContextNotObject,
    /// Body nests deeper than [`crate::limits::MAX_JSON_DEPTH`].
    BodyTooDeep,
    /// Context has more than [`crate::limits::MAX_CONTEXT_ATTRIBUTES`] attributes.
    TooManyAttributes,
    /// Flag key longer than [`crate::limits::MAX_FLAG_KEY_BYTES`].
    KeyTooLong,
    /// Flag key is empty or not valid percent-encoded UTF-8.
    KeyInvalid,
    /// Token malformed, badly signed, of the wrong algorithm, or without a subject.
    TokenInvalid,
    /// Token past its `exp` (or before its `nbf`).
    TokenExpired,
    /// Token's `aud` does not name this worker's environment (replayed from another one).
    TokenWrongAudience,
    /// A token was sent but the worker has no `IDENTITY_SECRET` to check it with.
    TokenUnverifiable,
    /// CORS: the `Origin` is not in the allowlist.
    OriginNotAllowed,
    /// Wrong HTTP method for the path.
    MethodNotAllowed,
    /// No such route.
    NotFound,
    /// Purge without the right bearer token.
    PurgeUnauthorized,
    /// Purge is disabled (no `PURGE_TOKEN` secret configured).
    PurgeDisabled,
    /// The worker's configuration is unusable (reported on the health endpoint in detail).
    Misconfigured,
    /// SDK route without a valid SDK key.
    SdkUnauthorized,
    /// SDK route with another environment's SDK key.
    SdkWrongEnvironment,
    /// SDK route called by a browser (an `Origin` header).
    SdkFromBrowser,
    /// SDK routes are off (no `SDK_KEYS` secret).
    SdkDisabled,
    /// Nothing loaded yet (a cold isolate whose origin is down).
    NothingLoaded,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    error_code: &'static str,
    error_details: &'static str,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            ApiError::BodyTooLarge => 413,
            ApiError::BodyNotJson
            | ApiError::ContextNotObject
            | ApiError::BodyTooDeep
            | ApiError::TooManyAttributes
            | ApiError::KeyTooLong
            | ApiError::KeyInvalid => 400,
            ApiError::TokenInvalid
            | ApiError::TokenExpired
            | ApiError::TokenWrongAudience
            | ApiError::TokenUnverifiable => 401,
            ApiError::PurgeUnauthorized | ApiError::SdkUnauthorized => 401,
            ApiError::SdkWrongEnvironment | ApiError::SdkFromBrowser | ApiError::SdkDisabled => 403,
            ApiError::NothingLoaded => 503,
            ApiError::OriginNotAllowed | ApiError::PurgeDisabled => 403,
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Misconfigured => 500,
        }
    }

    /// OFREP `errorCode`. OFREP's codes cover the request-shape cases; authentication and
    /// routing failures use `GENERAL` with the status carrying the meaning.
    pub fn error_code(self) -> &'static str {
        match self {
            ApiError::BodyNotJson => "PARSE_ERROR",
            ApiError::ContextNotObject
            | ApiError::BodyTooDeep
            | ApiError::TooManyAttributes
            | ApiError::BodyTooLarge => "INVALID_CONTEXT",
            _ => "GENERAL",
        }
    }

    /// OFREP `errorDetails`: a fixed, human-readable sentence.
    pub fn details(self) -> &'static str {
        match self {
            ApiError::BodyTooLarge => "request body is larger than 16384 bytes",
            ApiError::BodyNotJson => "request body is not valid JSON",
            ApiError::ContextNotObject => {
                "request body must be {\"context\": {...}} with an object context"
            }
            ApiError::BodyTooDeep => "request body nests deeper than 8 levels",
            ApiError::TooManyAttributes => "context has more than 128 attributes",
            ApiError::KeyTooLong => "flag key is longer than 256 bytes",
            ApiError::KeyInvalid => "flag key is empty or not valid UTF-8",
            ApiError::TokenInvalid => "identity token is invalid",
            ApiError::TokenExpired => "identity token has expired",
            ApiError::TokenWrongAudience => "identity token is for another environment",
            ApiError::TokenUnverifiable => "identity tokens are not accepted by this worker",
            ApiError::OriginNotAllowed => "origin is not allowed",
            ApiError::MethodNotAllowed => "method not allowed",
            ApiError::NotFound => "not found",
            ApiError::PurgeUnauthorized => "purge requires a valid bearer token",
            ApiError::PurgeDisabled => "purge is not enabled on this worker",
            ApiError::Misconfigured => "flag service is misconfigured",
            ApiError::SdkUnauthorized => "SDK routes require a valid SDK key",
            ApiError::SdkWrongEnvironment => "SDK key is for another environment",
            ApiError::SdkFromBrowser => "SDK routes are server-only",
            ApiError::SdkDisabled => "SDK routes are not enabled on this worker",
            ApiError::NothingLoaded => "no flags loaded yet",
        }
    }

    /// The JSON body, with OFREP's `key` when the request named a flag.
    pub fn body(self, key: Option<&str>) -> Vec<u8> {
        let key = match self {
            // Never echo a key we refused for its size or encoding.
            ApiError::KeyTooLong | ApiError::KeyInvalid => None,
            _ => key,
        };
        let body = ErrorBody {
            key,
            error_code: self.error_code(),
            error_details: self.details(),
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits;

    #[test]
    fn messages_state_the_real_limits() {
        assert!(
            ApiError::BodyTooLarge
                .details()
                .contains(&limits::MAX_BODY_BYTES.to_string())
        );
        assert!(
            ApiError::BodyTooDeep
                .details()
                .contains(&limits::MAX_JSON_DEPTH.to_string())
        );
        assert!(
            ApiError::TooManyAttributes
                .details()
                .contains(&limits::MAX_CONTEXT_ATTRIBUTES.to_string())
        );
        assert!(
            ApiError::KeyTooLong
                .details()
                .contains(&limits::MAX_FLAG_KEY_BYTES.to_string())
        );
    }

    #[test]
    fn body_is_ofrep_shaped_and_hides_refused_keys() {
        let body: serde_json::Value =
            serde_json::from_slice(&ApiError::BodyNotJson.body(Some("checkout"))).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"key": "checkout", "errorCode": "PARSE_ERROR",
                               "errorDetails": "request body is not valid JSON"})
        );
        let body: serde_json::Value =
            serde_json::from_slice(&ApiError::KeyTooLong.body(Some("x"))).unwrap();
        assert!(body.get("key").is_none());
    }
}
