//! Compiled JSONLogic, for flags imported from the flagd flag-definition format.
//! (Stub: the flagd-import work fills this in; the two `pub(crate)` functions are the interface
//! the evaluator and the loader call.)

use alloc::string::String;
use serde::{Deserialize, Serialize};

use crate::{Body, Context, ErrorCode, Flag, Reason, VariantId};

/// A compiled JSONLogic expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// A literal.
    Lit(serde_json::Value),
}

/// What a flag's JSONLogic targeting picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A variant of the flag, with the reason to report.
    Variant(VariantId, Reason),
    /// null / no variant: the flag's default variant applies (reason DEFAULT).
    Default,
    /// The targeting could not be evaluated.
    Error(ErrorCode, &'static str),
}

/// Runs `flag`'s targeting expression against `ctx`. Never panics; recursion is bounded by
/// the depth `check` verified at load time.
pub(crate) fn evaluate_targeting(
    expr: &Expr,
    flag: &Flag,
    body: &Body,
    ctx: &Context<'_>,
    now_ms: i64,
) -> Outcome {
    let _ = (expr, flag, body, ctx, now_ms);
    Outcome::Error(ErrorCode::General, "JSONLogic targeting not implemented")
}

/// Load-time check of an expression against the body it lives in (indices in range, depth
/// within [`crate::MAX_RULE_DEPTH`]). Called by `Snapshot::from_blob` through the evaluator.
pub(crate) fn check(expr: &Expr, body: &Body) -> Result<(), String> {
    let _ = (expr, body);
    Ok(())
}
