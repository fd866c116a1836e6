//! [`ApiError`]: every failure of the API, answered as `application/problem+json` (RFC 9457)
//! with a clear message. Internal details (store errors, corrupt objects) go to the log only.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use flags_compile::Diagnostic;
use flags_store::publish::PublishError;

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer`, or a secret no token has.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// A known token without the role.
    #[error("token {token:?} lacks the {role} role for environment {env:?}")]
    Forbidden {
        /// The token's name.
        token: String,
        /// The role needed.
        role: &'static str,
        /// The environment.
        env: String,
    },
    /// A known token refused for a reason other than a missing role (e.g. approving its own
    /// change).
    #[error("{0}")]
    Denied(String),
    /// A webhook delivery without a valid signature.
    #[error("{0}")]
    BadSignature(String),
    /// The thing existed but is no more (an expired pending change).
    #[error("{0}")]
    Gone(String),
    /// Unknown environment, version or flag.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The operation conflicts with the environment's state (lost race, nothing published).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` names a version that is no longer current (or `If-None-Match: *` and it
    /// exists): someone changed it since the caller read it.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A write without `If-Match` (or `If-None-Match: *` to create).
    #[error("{0}")]
    PreconditionRequired(String),
    /// A body of a type the route does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but not applicable (a JSON Patch op on a path that does not exist).
    #[error("{0}")]
    Unprocessable(String),
    /// The flag files do not compile: nothing was published.
    #[error("the flag files have {} error(s); nothing was published", .0.iter().filter(|d| d.severity == flags_compile::Severity::Error).count())]
    Invalid(Vec<Diagnostic>),
    /// An edit after which the flag files would not compile: nothing was committed.
    #[error("with this change the flag files have {} error(s); nothing was committed", .0.iter().filter(|d| d.severity == flags_compile::Severity::Error).count())]
    Uncompiled(Vec<Diagnostic>),
    /// A tool or service the operation needs failed (e.g. `git fetch`).
    #[error("{0}")]
    Upstream(String),
    /// Over the caller's rate limit.
    #[error("rate limit exceeded; retry in {retry_after} s")]
    RateLimited {
        /// Seconds until a request would pass.
        retry_after: u64,
    },
    /// The store cannot be reached.
    #[error("the store is unavailable; nothing was changed")]
    Unavailable(String),
    /// Anything else; the detail is logged, not answered.
    #[error("internal error")]
    Internal(String),
}

impl From<PublishError> for ApiError {
    fn from(error: PublishError) -> ApiError {
        match &error {
            PublishError::Conflict { .. }
            | PublishError::NothingPublished { .. }
            | PublishError::NoCanary { .. }
            | PublishError::CanaryRunning { .. }
            | PublishError::CanaryChanged { .. }
            // A damaged pointer or blob: the message names the last good version and the repair.
            | PublishError::CorruptPointer { .. }
            | PublishError::CorruptBlob { .. }
            | PublishError::TooManyRemovals { .. } => ApiError::Conflict(error.to_string()),
            PublishError::NoSuchVersion { .. } | PublishError::UnknownFlags { .. } => {
                ApiError::NotFound(error.to_string())
            }
            PublishError::Store(_) => ApiError::Unavailable(error.to_string()),
            _ => ApiError::Internal(error.to_string()),
        }
    }
}

/// Rewrites each diagnostic's file relative to `root` (the flags directory itself becomes
/// `.`), so answers name files as the repository does, wherever the service compiled them.
pub fn relative_to(root: &std::path::Path, diagnostics: &mut [Diagnostic]) {
    for d in diagnostics {
        if let Ok(relative) = d.file.strip_prefix(root) {
            d.file = if relative.as_os_str().is_empty() {
                ".".into()
            } else {
                relative.to_path_buf()
            };
        }
    }
}

/// A diagnostic as JSON: its parts, and the `file:line: ...` line the CLI prints.
pub fn diagnostic_json(d: &Diagnostic) -> serde_json::Value {
    json!({
        "severity": match d.severity {
            flags_compile::Severity::Error => "error",
            flags_compile::Severity::Warning => "warning",
        },
        "file": d.file.display().to_string(),
        "line": d.line,
        "flag": d.flag,
        "rule": d.rule,
        "message": d.message,
        "text": d.to_string(),
    })
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::Denied(_) => StatusCode::FORBIDDEN,
            ApiError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid(_) | ApiError::Uncompiled(_) | ApiError::Unprocessable(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(detail)
            | ApiError::Unavailable(detail)
            | ApiError::Upstream(detail) => {
                tracing::error!(status = status.as_u16(), %detail, "request failed");
            }
            _ => tracing::info!(status = status.as_u16(), error = %self, "request refused"),
        }
        let mut body = json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        if let ApiError::Invalid(diags) | ApiError::Uncompiled(diags) = &self {
            body["diagnostics"] = diags.iter().map(diagnostic_json).collect();
        }
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let ApiError::RateLimited { retry_after } = &self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        if matches!(self, ApiError::Unauthorized) {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"flags\""),
            );
        }
        response
    }
}
