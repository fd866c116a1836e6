//! Compiled JSONLogic, for flags imported from the OpenFeature flagd flag-definition format.
//!
//! flagd targeting is a JSONLogic expression that evaluates to a variant name (or `null` for the
//! default variant), extended with the custom operators `fractional`, `sem_ver`, `starts_with`
//! and `ends_with`. [`compile_targeting`] turns the JSON once, at publish time, into an [`Expr`]:
//! attribute paths interned into [`Body::attrs`], `$ref`s resolved, literal versions parsed,
//! large literal string lists moved into sorted [`Body::lists`], constant arrays folded. The edge
//! then only walks the tree.
//!
//! Semantics follow the official flagd evaluator (`@openfeature/flagd-core` 4.0.1 and its
//! json-logic-engine), checked by running it (tests/tests/flagd/flagd_differential.rs): `null` counts
//! as a missing `var` but not as `missing`, arithmetic and ordering on non-numbers are errors
//! (GENERAL), custom operators return `null` (not `false`) on bad input, `fractional` uses
//! murmur3 and `(hash * totalWeight) >> 32` ("v2"). Known differences are listed in
//! `docs/flagd-import.md`.
//!
//! Evaluation never panics and never recurses deeper than [`crate::MAX_RULE_DEPTH`]: [`check`]
//! verifies depth and indices when a blob is loaded, and the evaluator re-checks depth as it goes.

use alloc::{
    borrow::Cow,
    boxed::Box,
    format,
    string::{String, ToString},
    vec,
    vec::Vec,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::{
    AttrId, Body, Context, ErrorCode, Flag, ListId, MAX_RULE_DEPTH, Reason, SemVer, SemVerCmp,
    VariantId,
};

/// A literal string array at least this long in an `in` becomes a sorted [`Body::lists`] entry
/// searched by bisection; shorter ones are scanned, which is faster for a handful of items.
const MIN_INTERNED_LIST: usize = 16;

/// Evaluation steps (nodes evaluated plus array elements copied) one flag's targeting may take:
/// bounds the time and memory of `map`/`reduce`/`merge` over large context arrays.
pub const MAX_EVAL_STEPS: u32 = 100_000;

/// Largest sum of `fractional` weights, as in flagd (weights are 32-bit signed there).
const MAX_FRACTIONAL_WEIGHT: i64 = i32::MAX as i64;

/// A compiled JSONLogic expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// A literal. JSON objects with other than one key are literals too, as in JSONLogic.
    Lit(Value),
    /// An array literal whose elements are expressions (constant arrays are folded into `Lit`).
    Array(Vec<Expr>),
    /// `{"var": path}` / `{"var": [path, default]}`: a context attribute, or the default
    /// (itself an expression) when it is missing or null.
    Var(AttrId, Option<Box<Expr>>),
    /// `{"var": "$flagd.flagKey"}`: the key of the flag being evaluated.
    FlagKey,
    /// `{"var": "$flagd.timestamp"}`: the evaluation time in whole Unix seconds.
    Timestamp,
    /// An operator applied to its arguments (`if`, `and` and `or` evaluate them lazily).
    Op(LogicOp, Vec<Expr>),
    /// `in` with a long literal string list, kept sorted in [`Body::lists`].
    InList(Box<Expr>, ListId),
    /// `{"missing": [...]}`: the names of the listed attributes that are absent (as in
    /// flagd-core, an attribute present with a `null` value is not missing).
    Missing(Vec<AttrId>),
    /// `{"missing_some": [need, [...]]}`: `[]` when at least `need` of the attributes are
    /// present, else the names of the absent ones.
    MissingSome(Box<Expr>, Vec<AttrId>),
    /// A `var` inside the body of `map`, `filter`, `reduce`, `all`, `some` or `none`: a path
    /// into the current element (`""` is the element itself; in `reduce`, the first segment
    /// is `accumulator` or `current`), with an optional default.
    Scoped(Vec<String>, Option<Box<Expr>>),
    /// `map`, `filter`, `reduce`, `all`, `some`, `none` over an array.
    Iterate(Box<Iteration>),
    /// flagd's `sem_ver` with a literal operator.
    SemVer(Box<SemVerTest>),
    /// flagd's `fractional`.
    Fractional(Box<Fractional>),
    /// What flagd answers `PARSE_ERROR` for: a `$ref` to an evaluator that does not exist, or
    /// a whole flag the publisher could not compile (an unknown operator, malformed targeting,
    /// a variant of the wrong type); the rest of the file is served, as in flagd.
    Invalid(String),
}

/// The JSONLogic operators an [`Expr::Op`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogicOp {
    /// `if` / `?:`: condition, then, [condition, then, ...], [else].
    If,
    /// `==` (two strings compare as strings, else both sides as numbers; see `value::compare`).
    Eq,
    /// `===` (same type and value).
    StrictEq,
    /// `!=`.
    Ne,
    /// `!==`.
    StrictNe,
    /// `!`.
    Not,
    /// `!!`.
    NotNot,
    /// `and`: the first falsy argument, or the last one.
    And,
    /// `or`: the first truthy argument, or the last one.
    Or,
    /// `<`, also `a < b < c` with three arguments.
    Lt,
    /// `<=`, also `a <= b <= c` with three arguments.
    Le,
    /// `>`, also `a > b > c` with three arguments.
    Gt,
    /// `>=`, also `a >= b >= c` with three arguments.
    Ge,
    /// `in`: substring of a string, or element of an array.
    In,
    /// `cat`: string concatenation.
    Cat,
    /// `substr`: string, start, [length] (in characters; negatives count from the end).
    Substr,
    /// `+`.
    Add,
    /// `-` (negation with one argument).
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Mod,
    /// `min`.
    Min,
    /// `max`.
    Max,
    /// `merge`: flattens arrays one level.
    Merge,
    /// flagd's `starts_with`: both arguments strings, else null.
    StartsWith,
    /// flagd's `ends_with`: both arguments strings, else null.
    EndsWith,
}

/// Which array operator an [`Iteration`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IterKind {
    /// `map`: the body's value for each element.
    Map,
    /// `filter`: the elements for which the body is truthy.
    Filter,
    /// `reduce`: the body folded over the elements, starting from `initial`.
    Reduce,
    /// `all`: the body is truthy for every element (false for an empty array, as in JSONLogic).
    All,
    /// `some`: the body is truthy for at least one element.
    Some,
    /// `none`: the body is truthy for no element.
    None,
}

/// An array operator: `over` evaluates to the array (null or missing counts as `[]`), `body`
/// is evaluated once per element with [`Expr::Scoped`] reading that element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Iteration {
    /// The operator.
    pub kind: IterKind,
    /// The array.
    pub over: Expr,
    /// Evaluated per element.
    pub body: Expr,
    /// `reduce`'s initial accumulator (absent: the first element).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<Expr>,
}

/// flagd's `sem_ver`: `value cmp target`, null when either side is not a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemVerTest {
    /// The version being tested (usually a `var`).
    pub value: Expr,
    /// The comparison.
    pub cmp: SemVerCmp,
    /// What it is compared with: parsed at compile time when it is a literal.
    pub target: SemVerTarget,
}

/// The right-hand side of a [`SemVerTest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SemVerTarget {
    /// A literal version, parsed once.
    Version(SemVer),
    /// An expression, parsed at each evaluation.
    Expr(Expr),
}

/// flagd's `fractional`: hash a bucketing value with murmur3 into the sum of the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fractional {
    /// The bucketing value. When absent (or it evaluates to null), flagd's default applies:
    /// the flag key followed by the targeting key.
    pub bucket_by: Option<Expr>,
    /// The interned `targetingKey` attribute, for the default bucketing value.
    pub targeting_key: AttrId,
    /// `[variant, weight]` pairs in order; both parts may be expressions.
    pub buckets: Vec<FractionalBucket>,
}

/// One `[variant, weight]` entry of a [`Fractional`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FractionalBucket {
    /// Evaluates to the variant name (a string, a boolean or a number).
    pub variant: Expr,
    /// Evaluates to a whole number; absent means 1 (flagd's shorthand `["variant"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<Expr>,
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
/// the depth `check` verified at load time (and re-checked here).
///
/// As in flagd: a string result names the variant (TARGETING_MATCH, also for `fractional`), a
/// boolean or number result names the variant spelled like it (`"true"`, `"1"`), null means the
/// default variant, and anything else, or a name that is not a variant, is a GENERAL error.
pub(crate) fn evaluate_targeting(
    expr: &Expr,
    flag: &Flag,
    body: &Body,
    ctx: &Context<'_>,
    now_ms: i64,
) -> Outcome {
    let ctx = *ctx;
    let budget = core::cell::Cell::new(MAX_EVAL_STEPS);
    let env = Env::new(flag, body, &ctx, now_ms, &budget);
    let result = match expr.eval(&env, 0) {
        Ok(result) => result,
        // A flag the publisher could not compile (flagd refuses its targeting at load).
        Err(why) if matches!(expr, Expr::Invalid(_)) => {
            return Outcome::Error(ErrorCode::ParseError, why);
        }
        // A targeting rule that fails on this context (NaN arithmetic, an operator given the
        // wrong type): flagd-core answers GENERAL.
        Err(why) => return Outcome::Error(ErrorCode::General, why),
    };
    let name: Cow<'_, str> = match result {
        Val::Null => return Outcome::Default,
        Val::Str(name) => name,
        Val::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
        Val::Num(n) => Cow::Owned(format_number(n)),
        Val::Json(Value::Number(n)) => Cow::Owned(n.to_string()),
        // flagd-core names the variant by the result's `toString()`: `[1, 2]` names "1,2".
        Val::Json(Value::Array(_)) | Val::Arr(_) => result.to_text(),
        Val::Json(_) => {
            return Outcome::Error(
                ErrorCode::General,
                "targeting returned an object, not a variant name",
            );
        }
    };
    match flag.variants.iter().position(|v| v.name == name) {
        Some(index) => match VariantId::try_from(index) {
            Ok(id) => Outcome::Variant(id, Reason::TargetingMatch),
            Err(_) => Outcome::Error(ErrorCode::General, "variant index out of range"),
        },
        None => Outcome::Error(
            ErrorCode::General,
            "targeting returned a name that is not one of the flag's variants",
        ),
    }
}

mod check;
mod compile;
mod eval;
mod flagd_ops;
mod iterate;
mod ops;
#[cfg(test)]
pub(crate) mod properties;
#[cfg(test)]
mod tests;
mod value;

pub(crate) use check::check;
pub use compile::compile_targeting;
use eval::{Env, bucketing_key};
use value::{EvalResult, Val, format_number};
