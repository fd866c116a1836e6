//! The evaluator. (Stub: the evaluator issue fills this in.)

use alloc::{string::String, vec::Vec};
use serde_json::{Map, Value};

use crate::{Body, Context, Snapshot};

/// Why a value was served (OpenFeature reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The flag has no targeting: the value is always the same.
    Static,
    /// A rule matched.
    TargetingMatch,
    /// A percentage split picked the variant.
    Split,
    /// Nothing matched: the default variant.
    Default,
    /// The flag is off or killed.
    Disabled,
    /// Something failed; the safe default (or the caller's default) applies.
    Error,
}

impl Reason {
    /// The OpenFeature / OFREP spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

/// OpenFeature error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No flag with that key.
    FlagNotFound,
    /// The value is not of the requested type.
    TypeMismatch,
    /// The flag's targeting could not be evaluated as written (e.g. a dangling flagd `$ref`).
    ParseError,
    /// A split needed the targeting key and the context had none.
    TargetingKeyMissing,
    /// Anything else.
    General,
}

impl ErrorCode {
    /// The OpenFeature / OFREP spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::General => "GENERAL",
        }
    }
}

/// The result of evaluating one flag. Always filled: on error, `value` is the safe default
/// (or `None` where the caller's own default applies: unknown flag, flagd flag without one).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'s> {
    /// The served value; `None` means "use the caller's default".
    pub value: Option<&'s Value>,
    /// The served variant's name.
    pub variant: Option<&'s str>,
    /// Why.
    pub reason: Reason,
    /// The id of the rule that matched, if one did.
    pub rule: Option<&'s str>,
    /// Set when `reason` is `Error`.
    pub error: Option<ErrorCode>,
    /// Human-readable detail for `error` (fixed strings: never echoes input).
    pub error_details: Option<&'static str>,
    /// The flag's metadata (empty for an unknown flag).
    pub metadata: Option<&'s Map<String, Value>>,
}

/// Per-snapshot data derived at load time (compiled regexes, ...).
#[derive(Debug, Default)]
pub(crate) struct Prepared {}

impl Prepared {
    pub(crate) fn new(body: &Body) -> Result<Prepared, String> {
        let _ = body;
        Ok(Prepared {})
    }
}

/// Evaluates one flag. `now_ms` is the current time in milliseconds since the Unix epoch.
pub fn evaluate<'s>(
    snapshot: &'s Snapshot,
    key: &str,
    ctx: &Context<'_>,
    now_ms: i64,
) -> Evaluation<'s> {
    let _ = (snapshot, key, ctx, now_ms);
    Evaluation {
        value: None,
        variant: None,
        reason: Reason::Error,
        rule: None,
        error: Some(ErrorCode::General),
        error_details: Some("evaluator not implemented"),
        metadata: None,
    }
}

/// Evaluates every flag, in key order, as `(key, evaluation)`.
pub fn evaluate_all<'s>(
    snapshot: &'s Snapshot,
    ctx: &Context<'_>,
    now_ms: i64,
) -> Vec<(&'s str, Evaluation<'s>)> {
    snapshot
        .flag_keys()
        .map(|k| (k, evaluate(snapshot, k, ctx, now_ms)))
        .collect()
}
