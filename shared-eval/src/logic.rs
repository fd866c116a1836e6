//! Compiled JSONLogic, for flags imported from the OpenFeature flagd flag-definition format.
//!
//! flagd targeting is a JSONLogic expression that evaluates to a variant name (or `null` for the
//! default variant), extended with the custom operators `fractional`, `sem_ver`, `starts_with`
//! and `ends_with`. [`compile_targeting`] turns the JSON once, at publish time, into an [`Expr`]:
//! attribute paths interned into [`Body::attrs`], `$ref`s resolved, literal versions parsed,
//! large literal string lists moved into sorted [`Body::lists`], constant arrays folded. The edge
//! then only walks the tree.
//!
//! Semantics follow flagd's reference evaluator (Go, `diegoholiveira/jsonlogic`) where JSONLogic
//! implementations differ: `null` counts as a missing `var`, `==` compares numerically unless both
//! sides are strings, custom operators return `null` (not `false`) on bad input, `fractional`
//! uses murmur3 and `(hash * totalWeight) >> 32` ("v2"). Known differences are listed in
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
use core::cmp::Ordering;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::{
    AttrId, Body, Context, ErrorCode, Flag, ListId, MAX_RULE_DEPTH, Reason, SemVer, SemVerCmp,
    VariantId,
};

/// A literal string array at least this long in an `in` becomes a sorted [`Body::lists`] entry
/// searched by bisection; shorter ones are scanned, which is faster for a handful of items.
const MIN_INTERNED_LIST: usize = 16;

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
    /// `{"missing": [...]}`: the names of the listed attributes that are missing or null.
    Missing(Vec<AttrId>),
    /// flagd's `sem_ver` with a literal operator.
    SemVer(Box<SemVerTest>),
    /// flagd's `fractional`.
    Fractional(Box<Fractional>),
    /// A construct flagd accepts when loading but fails on when evaluating (a `$ref` to an
    /// evaluator that does not exist): evaluating it is a `PARSE_ERROR`, as in flagd.
    Invalid(String),
}

/// The JSONLogic operators an [`Expr::Op`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogicOp {
    /// `if` / `?:`: condition, then, [condition, then, ...], [else].
    If,
    /// `==` (numbers compared numerically unless both sides are strings).
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
    let env = Env {
        flag,
        body,
        ctx: &ctx,
        now_ms,
    };
    let result = match expr.eval(&env, 0) {
        Ok(result) => result,
        Err(why) => return Outcome::Error(ErrorCode::ParseError, why),
    };
    let name: Cow<'_, str> = match result {
        Val::Null => return Outcome::Default,
        Val::Str(name) => name,
        Val::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
        Val::Num(n) => Cow::Owned(format_number(n)),
        Val::Json(Value::Number(n)) => Cow::Owned(n.to_string()),
        Val::Json(_) | Val::Arr(_) => {
            return Outcome::Error(
                ErrorCode::General,
                "targeting returned an array or object, not a variant name",
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

/// Load-time check of an expression against the body it lives in (indices in range, depth
/// within [`crate::MAX_RULE_DEPTH`]). Called by `Snapshot::from_blob` through the evaluator.
pub(crate) fn check(expr: &Expr, body: &Body) -> Result<(), String> {
    check_at(expr, body, 0)
}

fn check_at(expr: &Expr, body: &Body, depth: usize) -> Result<(), String> {
    if depth > MAX_RULE_DEPTH {
        return Err(format!(
            "targeting nested deeper than {MAX_RULE_DEPTH} levels"
        ));
    }
    let attr_ok = |attr: AttrId| {
        if (attr as usize) < body.attrs.len() {
            Ok(())
        } else {
            Err(format!(
                "targeting refers to attribute {attr}, the blob has {}",
                body.attrs.len()
            ))
        }
    };
    let next = depth + 1;
    match expr {
        Expr::Lit(_) | Expr::FlagKey | Expr::Timestamp | Expr::Invalid(_) => Ok(()),
        Expr::Array(items) | Expr::Op(_, items) => {
            items.iter().try_for_each(|e| check_at(e, body, next))
        }
        Expr::Var(attr, default) => {
            attr_ok(*attr)?;
            default
                .as_deref()
                .map_or(Ok(()), |d| check_at(d, body, next))
        }
        Expr::InList(needle, list) => {
            if (*list as usize) >= body.lists.len() {
                return Err(format!(
                    "targeting refers to list {list}, the blob has {}",
                    body.lists.len()
                ));
            }
            check_at(needle, body, next)
        }
        Expr::Missing(attrs) => attrs.iter().try_for_each(|a| attr_ok(*a)),
        Expr::SemVer(test) => {
            check_at(&test.value, body, next)?;
            match &test.target {
                SemVerTarget::Version(_) => Ok(()),
                SemVerTarget::Expr(e) => check_at(e, body, next),
            }
        }
        Expr::Fractional(f) => {
            attr_ok(f.targeting_key)?;
            if let Some(by) = &f.bucket_by {
                check_at(by, body, next)?;
            }
            for bucket in &f.buckets {
                check_at(&bucket.variant, body, next)?;
                if let Some(w) = &bucket.weight {
                    check_at(w, body, next)?;
                }
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// What an expression is evaluated against.
struct Env<'a> {
    flag: &'a Flag,
    body: &'a Body,
    ctx: &'a Context<'a>,
    now_ms: i64,
}

/// An intermediate value: borrowed from the expression or the context where possible, so a
/// typical rule allocates nothing.
#[derive(Debug, Clone)]
enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// An array, an object, or an integer too large for an `f64`, borrowed as is.
    Json(&'a Value),
    /// A computed array.
    Arr(Vec<Val<'a>>),
}

type EvalResult<'a> = Result<Val<'a>, &'static str>;

impl<'a> Val<'a> {
    fn from_json(value: &'a Value) -> Val<'a> {
        match value {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => number_val(n).unwrap_or(Val::Json(value)),
            Value::String(s) => Val::Str(Cow::Borrowed(s)),
            Value::Array(_) | Value::Object(_) => Val::Json(value),
        }
    }

    /// JSONLogic truthiness: false, 0, "", null, empty arrays (and, as in flagd, empty objects)
    /// are falsy.
    fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Bool(b) => *b,
            Val::Num(n) => *n != 0.0 && !n.is_nan(),
            Val::Str(s) => !s.is_empty(),
            Val::Json(Value::Array(a)) => !a.is_empty(),
            Val::Json(Value::Object(o)) => !o.is_empty(),
            // Only integers beyond 2^53 are kept as JSON numbers: never 0.
            Val::Json(Value::Number(_)) => true,
            Val::Json(_) => false,
            Val::Arr(a) => !a.is_empty(),
        }
    }

    /// JavaScript's `ToNumber`, as flagd's JSONLogic applies it.
    fn to_number(&self) -> f64 {
        match self {
            Val::Null => 0.0,
            Val::Bool(b) => f64::from(u8::from(*b)),
            Val::Num(n) => *n,
            Val::Str(s) => {
                let trimmed = s.trim();
                if trimmed.is_empty() {
                    0.0
                } else {
                    trimmed.parse::<f64>().unwrap_or(f64::NAN)
                }
            }
            Val::Json(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
            Val::Json(_) | Val::Arr(_) => f64::NAN,
        }
    }

    /// The string form `cat`, `substr` and `in` use.
    fn to_text(&self) -> Cow<'a, str> {
        match self {
            Val::Null => Cow::Borrowed(""),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Val::Num(n) => Cow::Owned(format_number(*n)),
            Val::Str(s) => s.clone(),
            Val::Json(Value::Number(n)) => Cow::Owned(n.to_string()),
            Val::Json(Value::Array(items)) => {
                let parts: Vec<Cow<'a, str>> =
                    items.iter().map(|v| Val::from_json(v).to_text()).collect();
                Cow::Owned(parts.join(","))
            }
            Val::Arr(items) => {
                let parts: Vec<Cow<'a, str>> = items.iter().map(Val::to_text).collect();
                Cow::Owned(parts.join(","))
            }
            Val::Json(_) => Cow::Borrowed("[object Object]"),
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, Val::Num(_) | Val::Json(Value::Number(_)))
    }

    /// The elements, if this is an array.
    fn elements(&self) -> Option<Vec<Val<'a>>> {
        match self {
            Val::Json(Value::Array(items)) => Some(items.iter().map(Val::from_json).collect()),
            Val::Arr(items) => Some(items.clone()),
            _ => None,
        }
    }
}

fn number_val(n: &Number) -> Option<Val<'static>> {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
        return Some(Val::Num(f));
    }
    // Integers are exact as f64 up to 2^53; larger ones stay borrowed so `cat` and variant
    // names print every digit.
    const EXACT: u64 = 1 << 53;
    match (n.as_i64(), n.as_u64()) {
        (Some(i), _) if i.unsigned_abs() <= EXACT => Some(Val::Num(i as f64)),
        (None, Some(u)) if u <= EXACT => Some(Val::Num(u as f64)),
        _ => None,
    }
}

/// Shortest round-tripping decimal, never an exponent (Go's `FormatFloat(n, 'f', -1, 64)`):
/// `1` for 1.0, `0.5`, `100000`.
fn format_number(n: f64) -> String {
    format!("{n}")
}

/// `==` as flagd evaluates it: null equals only null, two strings compare as strings,
/// anything else compares as numbers (so `1 == "1"` and `true == 1`).
fn loose_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Null, _) | (_, Val::Null) => false,
        (Val::Str(x), Val::Str(y)) => x == y,
        _ => a.to_number() == b.to_number(),
    }
}

/// `===`: same type and value; arrays and objects are never equal (JavaScript identity).
fn strict_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        _ if a.is_number() && b.is_number() => a.to_number() == b.to_number(),
        _ => false,
    }
}

/// `a < b`: two strings compare by code point, anything else as numbers (NaN never less).
fn less(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => x < y,
        _ => a.to_number() < b.to_number(),
    }
}

fn less_or_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    less(a, b) || loose_eq(a, b)
}

/// Whether `n` is a finite whole number (`f64::fract` needs std).
fn is_whole(n: f64) -> bool {
    n.is_finite() && (n as i64) as f64 == n
}

fn num(n: f64) -> Val<'static> {
    Val::Num(n)
}

impl Expr {
    fn eval<'a>(&'a self, env: &Env<'a>, depth: usize) -> EvalResult<'a> {
        if depth > MAX_RULE_DEPTH {
            return Err("targeting nested too deeply");
        }
        let next = depth + 1;
        match self {
            Expr::Lit(v) => Ok(Val::from_json(v)),
            Expr::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(item.eval(env, next)?);
                }
                Ok(Val::Arr(out))
            }
            Expr::Var(attr, default) => match lookup(env, *attr) {
                Some(v) => Ok(Val::from_json(v)),
                None => match default {
                    Some(d) => d.eval(env, next),
                    None => Ok(Val::Null),
                },
            },
            Expr::FlagKey => Ok(Val::Str(Cow::Borrowed(&env.flag.key))),
            Expr::Timestamp => Ok(num(env.now_ms.div_euclid(1000) as f64)),
            Expr::Op(op, args) => eval_op(*op, args, env, next),
            Expr::InList(needle, list) => {
                let needle = needle.eval(env, next)?;
                let Some(list) = env.body.lists.get(*list as usize) else {
                    return Err("targeting refers to a list that does not exist");
                };
                Ok(Val::Bool(match &needle {
                    Val::Str(s) => list.binary_search_by(|item| item.as_str().cmp(s)).is_ok(),
                    n if n.is_number() => {
                        let n = n.to_number();
                        list.iter()
                            .any(|item| Val::Str(Cow::Borrowed(item)).to_number() == n)
                    }
                    _ => false,
                }))
            }
            Expr::Missing(attrs) => {
                let mut missing = Vec::new();
                for attr in attrs {
                    if lookup(env, *attr).is_none() {
                        let path = env
                            .body
                            .attrs
                            .get(*attr as usize)
                            .map(|p| p.join("."))
                            .unwrap_or_default();
                        missing.push(Val::Str(Cow::Owned(path)));
                    }
                }
                Ok(Val::Arr(missing))
            }
            Expr::SemVer(test) => eval_sem_ver(test, env, next),
            Expr::Fractional(f) => eval_fractional(f, env, next),
            Expr::Invalid(_) => Err("targeting uses a `$ref` to an evaluator that does not exist"),
        }
    }
}

/// The attribute's value, or `None` when it is missing or null (JSONLogic's `var` treats both
/// the same). Array elements are reached with numeric path segments (`items.0`).
fn lookup<'a>(env: &Env<'a>, attr: AttrId) -> Option<&'a Value> {
    let path = env.body.attrs.get(attr as usize)?;
    let allow_unsigned = env.flag.unsigned_attrs.contains(&attr);
    let found = walk(env.ctx.signed, path).or_else(|| {
        if allow_unsigned {
            env.ctx.unsigned.and_then(|m| walk(m, path))
        } else {
            None
        }
    });
    found.filter(|v| !v.is_null())
}

fn walk<'a>(map: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = map.get(first.as_str())?;
    for segment in rest {
        value = match value {
            Value::Object(m) => m.get(segment.as_str())?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

fn eval_args<'a>(
    args: &'a [Expr],
    env: &Env<'a>,
    depth: usize,
) -> Result<Vec<Val<'a>>, &'static str> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        out.push(arg.eval(env, depth)?);
    }
    Ok(out)
}

fn eval_op<'a>(op: LogicOp, args: &'a [Expr], env: &Env<'a>, depth: usize) -> EvalResult<'a> {
    // Short-circuiting operators first: they must not evaluate what they skip.
    match op {
        LogicOp::If => {
            let mut pairs = args.chunks_exact(2);
            for pair in &mut pairs {
                if let [condition, then] = pair
                    && condition.eval(env, depth)?.truthy()
                {
                    return then.eval(env, depth);
                }
            }
            return match pairs.remainder() {
                [otherwise] => otherwise.eval(env, depth),
                _ => Ok(Val::Null),
            };
        }
        LogicOp::And | LogicOp::Or => {
            let mut last = Val::Null;
            for arg in args {
                last = arg.eval(env, depth)?;
                if last.truthy() == (op == LogicOp::Or) {
                    break;
                }
            }
            return Ok(last);
        }
        _ => {}
    }
    let values = eval_args(args, env, depth)?;
    let arg = |i: usize| values.get(i).cloned().unwrap_or(Val::Null);
    let binary = |f: fn(&Val<'_>, &Val<'_>) -> bool| match values.as_slice() {
        [a, b] => f(a, b),
        [a, b, c, ..] => f(a, b) && f(b, c),
        _ => false,
    };
    Ok(match op {
        LogicOp::If | LogicOp::And | LogicOp::Or => Val::Null, // handled above
        LogicOp::Eq => Val::Bool(values.len() >= 2 && loose_eq(&arg(0), &arg(1))),
        LogicOp::Ne => Val::Bool(!(values.len() >= 2 && loose_eq(&arg(0), &arg(1)))),
        LogicOp::StrictEq => Val::Bool(values.len() >= 2 && strict_eq(&arg(0), &arg(1))),
        LogicOp::StrictNe => Val::Bool(!(values.len() >= 2 && strict_eq(&arg(0), &arg(1)))),
        LogicOp::Not => Val::Bool(!values.first().is_some_and(Val::truthy)),
        LogicOp::NotNot => Val::Bool(values.first().is_some_and(Val::truthy)),
        LogicOp::Lt => Val::Bool(binary(less)),
        LogicOp::Le => Val::Bool(binary(less_or_eq)),
        LogicOp::Gt => Val::Bool(binary(|a, b| less(b, a))),
        LogicOp::Ge => Val::Bool(binary(|a, b| less_or_eq(b, a))),
        LogicOp::In => {
            let needle = arg(0);
            match arg(1) {
                Val::Str(hay) => Val::Bool(needle.as_str().is_some_and(|n| hay.contains(n))),
                hay => Val::Bool(hay.elements().is_some_and(|items| {
                    items.iter().any(|item| {
                        if needle.is_number() {
                            item.to_number() == needle.to_number()
                        } else {
                            strict_eq(item, &needle)
                        }
                    })
                })),
            }
        }
        LogicOp::Cat => {
            let mut out = String::new();
            for v in &values {
                out.push_str(&v.to_text());
            }
            Val::Str(Cow::Owned(out))
        }
        LogicOp::Substr => substr(&values),
        LogicOp::Add => num(values.iter().map(Val::to_number).sum()),
        LogicOp::Sub => match values.as_slice() {
            [] => num(0.0),
            [a] => num(-a.to_number()),
            [a, rest @ ..] => num(rest
                .iter()
                .fold(a.to_number(), |acc, v| acc - v.to_number())),
        },
        LogicOp::Mul => num(values.iter().map(Val::to_number).product()),
        LogicOp::Div => match values.as_slice() {
            [] => num(0.0),
            [a, rest @ ..] => num(rest
                .iter()
                .fold(a.to_number(), |acc, v| acc / v.to_number())),
        },
        LogicOp::Mod => match values.as_slice() {
            [a, b, ..] => num(a.to_number() % b.to_number()),
            _ => Val::Null,
        },
        LogicOp::Min => values
            .iter()
            .map(Val::to_number)
            .reduce(f64::min)
            .map_or(Val::Null, num),
        LogicOp::Max => values
            .iter()
            .map(Val::to_number)
            .reduce(f64::max)
            .map_or(Val::Null, num),
        LogicOp::Merge => {
            let mut out = Vec::new();
            for v in values {
                match v.elements() {
                    Some(items) => out.extend(items),
                    None => out.push(v),
                }
            }
            Val::Arr(out)
        }
        LogicOp::StartsWith | LogicOp::EndsWith => match values.as_slice() {
            [Val::Str(s), Val::Str(affix)] => Val::Bool(if op == LogicOp::StartsWith {
                s.starts_with(affix.as_ref())
            } else {
                s.ends_with(affix.as_ref())
            }),
            // flagd returns null, not false, so that the default variant is served rather than
            // a variant named "false".
            _ => Val::Null,
        },
    })
}

/// JSONLogic `substr` over characters, with flagd's handling of out-of-range starts (the whole
/// string) and negative lengths (stop that many characters before the end).
fn substr<'a>(values: &[Val<'a>]) -> Val<'a> {
    let Some(text) = values.first().map(Val::to_text) else {
        return Val::Null;
    };
    let chars: Vec<char> = text.chars().collect();
    let len = chars.len() as i64;
    let mut from = values.get(1).map_or(0.0, Val::to_number) as i64;
    if from < 0 {
        from += len;
    }
    if from < 0 || from > len {
        return Val::Str(text);
    }
    let to = match values.get(2).map(|v| v.to_number() as i64) {
        None => len,
        Some(n) if n < 0 => len + n,
        Some(n) => from.saturating_add(n),
    }
    .min(len);
    if to <= from {
        return Val::Str(Cow::Borrowed(""));
    }
    // from and to are within 0..=len here, so the slice cannot go out of bounds.
    let picked: String = chars
        .iter()
        .skip(from as usize)
        .take((to - from) as usize)
        .collect();
    Val::Str(Cow::Owned(picked))
}

fn eval_sem_ver<'a>(test: &'a SemVerTest, env: &Env<'a>, depth: usize) -> EvalResult<'a> {
    let value = test.value.eval(env, depth)?;
    let Some(actual) = parse_flagd_version(&value) else {
        return Ok(Val::Null);
    };
    let parsed_target;
    let target = match &test.target {
        SemVerTarget::Version(v) => v,
        SemVerTarget::Expr(e) => match parse_flagd_version(&e.eval(env, depth)?) {
            Some(v) => {
                parsed_target = v;
                &parsed_target
            }
            None => return Ok(Val::Null),
        },
    };
    Ok(Val::Bool(sem_ver_holds(&actual, test.cmp, target)))
}

fn sem_ver_holds(actual: &SemVer, cmp: SemVerCmp, target: &SemVer) -> bool {
    let order = compare_versions(actual, target);
    match cmp {
        SemVerCmp::Eq => order == Ordering::Equal,
        SemVerCmp::Ne => order != Ordering::Equal,
        SemVerCmp::Lt => order == Ordering::Less,
        SemVerCmp::Le => order != Ordering::Greater,
        SemVerCmp::Gt => order == Ordering::Greater,
        SemVerCmp::Ge => order != Ordering::Less,
        SemVerCmp::Caret => actual.major == target.major,
        SemVerCmp::Tilde => actual.major == target.major && actual.minor == target.minor,
    }
}

/// Semantic Versioning 2.0.0 precedence: numeric parts, then a release above any pre-release,
/// then pre-release identifiers left to right (numeric ones numerically and below
/// alphanumeric ones, which compare in ASCII order; a shorter prefix is lower).
pub fn compare_versions(a: &SemVer, b: &SemVer) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| match (a.pre.is_empty(), b.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (x, y) in a.pre.iter().zip(&b.pre) {
                    let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                        (Ok(x), Ok(y)) => x.cmp(&y),
                        (Ok(_), Err(_)) => Ordering::Less,
                        (Err(_), Ok(_)) => Ordering::Greater,
                        (Err(_), Err(_)) => x.cmp(y),
                    };
                    if order != Ordering::Equal {
                        return order;
                    }
                }
                a.pre.len().cmp(&b.pre.len())
            }
        })
}

/// A `sem_ver` operand as flagd reads it: numbers are printed first (`1.2` is `1.2.0`).
fn parse_flagd_version(value: &Val<'_>) -> Option<SemVer> {
    match value {
        Val::Str(s) => parse_version(s),
        Val::Num(_) | Val::Json(Value::Number(_)) => parse_version(&value.to_text()),
        _ => None,
    }
}

/// Parses a version the way flagd does (Go's `golang.org/x/mod/semver` after prefixing `v`):
/// an optional `v` or `V`, then `MAJOR[.MINOR[.PATCH[-PRE][+BUILD]]]` (missing parts are 0;
/// only a full version may carry a pre-release or build), no leading zeros in numbers or in
/// numeric pre-release identifiers. Build metadata is dropped: it never affects precedence.
pub fn parse_version(text: &str) -> Option<SemVer> {
    let rest = text
        .strip_prefix('v')
        .or_else(|| text.strip_prefix('V'))
        .unwrap_or(text);
    let (rest, build) = match rest.split_once('+') {
        Some((head, build)) => (head, Some(build)),
        None => (rest, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((head, pre)) => (head, Some(pre)),
        None => (rest, None),
    };
    let mut numbers = core.split('.');
    let major = parse_numeric(numbers.next()?)?;
    let minor = numbers.next().map(parse_numeric);
    let patch = numbers.next().map(parse_numeric);
    if numbers.next().is_some() {
        return None;
    }
    let full = patch.is_some();
    let (minor, patch) = (minor.unwrap_or(Some(0))?, patch.unwrap_or(Some(0))?);
    if !full && (pre.is_some() || build.is_some()) {
        return None;
    }
    let mut identifiers = Vec::new();
    if let Some(pre) = pre {
        for id in pre.split('.') {
            if !is_identifier(id)
                || (id.bytes().all(|b| b.is_ascii_digit()) && id.len() > 1 && id.starts_with('0'))
            {
                return None;
            }
            identifiers.push(id.to_string());
        }
    }
    if let Some(build) = build
        && !build.split('.').all(is_identifier)
    {
        return None;
    }
    Some(SemVer {
        major,
        minor,
        patch,
        pre: identifiers,
    })
}

fn parse_numeric(text: &str) -> Option<u64> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

fn is_identifier(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn eval_fractional<'a>(f: &'a Fractional, env: &Env<'a>, depth: usize) -> EvalResult<'a> {
    // flagd evaluates every argument before bucketing.
    let bucket_by = match &f.bucket_by {
        Some(e) => e.eval(env, depth)?,
        None => Val::Null,
    };
    let mut buckets = Vec::with_capacity(f.buckets.len());
    for bucket in &f.buckets {
        let variant = bucket.variant.eval(env, depth)?;
        let weight = match &bucket.weight {
            Some(w) => Some(w.eval(env, depth)?),
            None => None,
        };
        buckets.push((variant, weight));
    }
    let key: Cow<'_, str> = match bucket_by {
        Val::Str(s) => s,
        // No bucketing value (or a null one): flagd buckets on the flag key + targeting key,
        // and returns null when there is no targeting key.
        Val::Null => match lookup(env, f.targeting_key) {
            Some(Value::String(tk)) if !tk.is_empty() => {
                let mut key = String::with_capacity(env.flag.key.len() + tk.len());
                key.push_str(&env.flag.key);
                key.push_str(tk);
                Cow::Owned(key)
            }
            _ => return Ok(Val::Null),
        },
        _ => return Ok(Val::Null),
    };
    let mut weights = Vec::with_capacity(buckets.len());
    let mut total: i64 = 0;
    for (variant, weight) in &buckets {
        if !matches!(
            variant,
            Val::Null | Val::Bool(_) | Val::Num(_) | Val::Str(_)
        ) {
            return Ok(Val::Null);
        }
        let weight = match weight {
            None | Some(Val::Null) => 1,
            Some(w) if w.is_number() => {
                let w = w.to_number();
                if !is_whole(w) || w > MAX_FRACTIONAL_WEIGHT as f64 {
                    return Ok(Val::Null);
                }
                // Negative weights (e.g. from arithmetic) count as 0, as in flagd.
                (w as i64).max(0)
            }
            Some(_) => return Ok(Val::Null),
        };
        total += weight;
        weights.push(weight);
    }
    if total == 0 || total > MAX_FRACTIONAL_WEIGHT {
        return Ok(Val::Null);
    }
    // total is within 1..=i32::MAX, so the conversion is exact.
    let point = u64::from(crate::flagd_fractional_bucket(&key, total as u32));
    let mut end: u64 = 0;
    for ((variant, _), weight) in buckets.into_iter().zip(weights) {
        end += weight as u64;
        if point < end {
            return Ok(variant);
        }
    }
    Ok(Val::Null)
}

// ---------------------------------------------------------------------------------------------
// Compilation

/// Compiles flagd targeting JSON into an [`Expr`], interning attribute paths into `body.attrs`
/// and long literal string lists into `body.lists`. `evaluators` is the file's `$evaluators`
/// object, for `{"$ref": "name"}`.
///
/// Errors (a message naming the construct) are for what the edge must not run or this crate
/// does not support: unknown operators, nesting deeper than [`crate::MAX_RULE_DEPTH`], malformed
/// `fractional` or `sem_ver`, `$ref` cycles. A `$ref` to an evaluator that does not exist is not
/// an error here: as in flagd, it fails when evaluated (PARSE_ERROR).
pub fn compile_targeting(
    rule: &Value,
    evaluators: &Map<String, Value>,
    body: &mut Body,
) -> Result<Expr, String> {
    let mut compiler = Compiler {
        evaluators,
        body,
        refs: Vec::new(),
    };
    compiler.compile(rule, 0)
}

struct Compiler<'c> {
    evaluators: &'c Map<String, Value>,
    body: &'c mut Body,
    /// `$ref`s being expanded, to reject cycles.
    refs: Vec<String>,
}

impl Compiler<'_> {
    fn compile(&mut self, rule: &Value, depth: usize) -> Result<Expr, String> {
        if depth > MAX_RULE_DEPTH {
            return Err(format!(
                "targeting is nested deeper than {MAX_RULE_DEPTH} levels"
            ));
        }
        match rule {
            Value::Array(items) => {
                let items = items
                    .iter()
                    .map(|i| self.compile(i, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(fold_array(items))
            }
            Value::Object(map) if map.len() == 1 => match map.iter().next() {
                Some((op, args)) => self.compile_op(op, args, depth),
                None => Ok(Expr::Lit(rule.clone())),
            },
            _ => Ok(Expr::Lit(rule.clone())),
        }
    }

    fn compile_args(&mut self, args: &Value, depth: usize) -> Result<Vec<Expr>, String> {
        match args {
            Value::Array(items) => items.iter().map(|i| self.compile(i, depth + 1)).collect(),
            single => Ok(vec![self.compile(single, depth + 1)?]),
        }
    }

    fn compile_op(&mut self, op: &str, args: &Value, depth: usize) -> Result<Expr, String> {
        let logic = match op {
            "$ref" => return self.compile_ref(args, depth),
            "var" => return self.compile_var(args, depth),
            "missing" => return self.compile_missing(args),
            "in" => return self.compile_in(args, depth),
            "sem_ver" => return self.compile_sem_ver(args, depth),
            "fractional" => return self.compile_fractional(args, depth),
            "if" | "?:" => LogicOp::If,
            "==" => LogicOp::Eq,
            "===" => LogicOp::StrictEq,
            "!=" => LogicOp::Ne,
            "!==" => LogicOp::StrictNe,
            "!" => LogicOp::Not,
            "!!" => LogicOp::NotNot,
            "and" => LogicOp::And,
            "or" => LogicOp::Or,
            "<" => LogicOp::Lt,
            "<=" => LogicOp::Le,
            ">" => LogicOp::Gt,
            ">=" => LogicOp::Ge,
            "cat" => LogicOp::Cat,
            "substr" => LogicOp::Substr,
            "+" => LogicOp::Add,
            "-" => LogicOp::Sub,
            "*" => LogicOp::Mul,
            "/" => LogicOp::Div,
            "%" => LogicOp::Mod,
            "min" => LogicOp::Min,
            "max" => LogicOp::Max,
            "merge" => LogicOp::Merge,
            "starts_with" => LogicOp::StartsWith,
            "ends_with" => LogicOp::EndsWith,
            "map" | "filter" | "reduce" | "all" | "some" | "none" | "missing_some" | "log" => {
                return Err(format!(
                    "JSONLogic operator `{op}` is not supported by the flagd import"
                ));
            }
            unknown => return Err(format!("unknown JSONLogic operator `{unknown}`")),
        };
        Ok(Expr::Op(logic, self.compile_args(args, depth)?))
    }

    fn compile_ref(&mut self, args: &Value, depth: usize) -> Result<Expr, String> {
        let Value::String(name) = args else {
            return Ok(Expr::Invalid("`$ref` must name an evaluator".to_string()));
        };
        let Some(target) = self.evaluators.get(name) else {
            return Ok(Expr::Invalid(format!(
                "`$ref` to `{name}`, which is not in `$evaluators`"
            )));
        };
        if self.refs.iter().any(|r| r == name) {
            return Err(format!("`$ref` cycle through evaluator `{name}`"));
        }
        self.refs.push(name.clone());
        let compiled = self.compile(target, depth + 1);
        self.refs.pop();
        compiled
    }

    fn intern_attr(&mut self, path: Vec<String>) -> Result<AttrId, String> {
        if let Some(i) = self.body.attrs.iter().position(|p| *p == path) {
            return AttrId::try_from(i).map_err(|_| "too many attributes".to_string());
        }
        let id = AttrId::try_from(self.body.attrs.len())
            .map_err(|_| "too many attributes".to_string())?;
        self.body.attrs.push(path);
        Ok(id)
    }

    /// The path of a `var`/`missing` name; `None` for flagd's `$flagd.*` properties.
    fn path_of(name: &Value) -> Result<Vec<String>, String> {
        let text = match name {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(
                    "`var` paths must be literal strings (computed paths are not supported)"
                        .to_string(),
                );
            }
        };
        let path: Vec<String> = text
            .split('.')
            .filter(|s| !s.is_empty())
            .map(ToString::to_string)
            .collect();
        if path.is_empty() {
            return Err("`var` of the whole context (empty path) is not supported".to_string());
        }
        Ok(path)
    }

    fn compile_var(&mut self, args: &Value, depth: usize) -> Result<Expr, String> {
        let (name, default) = match args {
            Value::Array(items) => match items.as_slice() {
                [name] => (name, None),
                [name, default, ..] => (name, Some(default)),
                [] => {
                    return Err(
                        "`var` of the whole context (empty path) is not supported".to_string()
                    );
                }
            },
            name => (name, None),
        };
        let default = match default {
            Some(d) => Some(Box::new(self.compile(d, depth + 1)?)),
            None => None,
        };
        let path = Self::path_of(name)?;
        if path.first().is_some_and(|p| p == "$flagd") {
            // flagd replaces any `$flagd` in the context with its own properties.
            return Ok(match path.get(1).map(String::as_str) {
                Some("flagKey") if path.len() == 2 => Expr::FlagKey,
                Some("timestamp") if path.len() == 2 => Expr::Timestamp,
                _ => default.map_or(Expr::Lit(Value::Null), |d| *d),
            });
        }
        Ok(Expr::Var(self.intern_attr(path)?, default))
    }

    fn compile_missing(&mut self, args: &Value) -> Result<Expr, String> {
        let names = match args {
            Value::Array(items) => items.as_slice(),
            single => core::slice::from_ref(single),
        };
        let mut attrs = Vec::with_capacity(names.len());
        for name in names {
            let path = Self::path_of(name)
                .map_err(|_| "`missing` takes literal attribute names".to_string())?;
            attrs.push(self.intern_attr(path)?);
        }
        Ok(Expr::Missing(attrs))
    }

    fn compile_in(&mut self, args: &Value, depth: usize) -> Result<Expr, String> {
        if let Value::Array(items) = args
            && let [needle, Value::Array(list)] = items.as_slice()
            && list.len() >= MIN_INTERNED_LIST
            && list.iter().all(Value::is_string)
        {
            let mut sorted: Vec<String> = list
                .iter()
                .filter_map(|v| v.as_str().map(ToString::to_string))
                .collect();
            sorted.sort_unstable();
            sorted.dedup();
            let needle = Box::new(self.compile(needle, depth + 1)?);
            let id = match self.body.lists.iter().position(|l| *l == sorted) {
                Some(i) => i,
                None => {
                    self.body.lists.push(sorted);
                    self.body.lists.len() - 1
                }
            };
            let id = ListId::try_from(id).map_err(|_| "too many lists".to_string())?;
            return Ok(Expr::InList(needle, id));
        }
        Ok(Expr::Op(LogicOp::In, self.compile_args(args, depth)?))
    }

    fn compile_sem_ver(&mut self, args: &Value, depth: usize) -> Result<Expr, String> {
        let Value::Array(items) = args else {
            return Ok(Expr::Lit(Value::Null));
        };
        // flagd answers null (the default variant) for a malformed sem_ver, rather than
        // refusing the flag: keep that behaviour.
        let [value, op, target] = items.as_slice() else {
            return Ok(Expr::Lit(Value::Null));
        };
        let cmp = match op {
            Value::String(op) => match op.as_str() {
                "=" => SemVerCmp::Eq,
                "!=" => SemVerCmp::Ne,
                "<" => SemVerCmp::Lt,
                "<=" => SemVerCmp::Le,
                ">" => SemVerCmp::Gt,
                ">=" => SemVerCmp::Ge,
                "^" => SemVerCmp::Caret,
                "~" => SemVerCmp::Tilde,
                _ => return Ok(Expr::Lit(Value::Null)),
            },
            Value::Object(_) => {
                return Err("the `sem_ver` operator must be a literal string".to_string());
            }
            _ => return Ok(Expr::Lit(Value::Null)),
        };
        let value = self.compile(value, depth + 1)?;
        let target = match self.compile(target, depth + 1)? {
            Expr::Lit(literal) => match parse_flagd_version(&Val::from_json(&literal)) {
                Some(version) => SemVerTarget::Version(version),
                None => return Ok(Expr::Lit(Value::Null)),
            },
            computed => SemVerTarget::Expr(computed),
        };
        Ok(Expr::SemVer(Box::new(SemVerTest { value, cmp, target })))
    }

    fn compile_fractional(&mut self, args: &Value, depth: usize) -> Result<Expr, String> {
        let items = match args {
            Value::Array(items) => items.as_slice(),
            _ => {
                return Err(
                    "`fractional` takes an array: [bucketing value,] [variant, weight]..."
                        .to_string(),
                );
            }
        };
        let (bucket_by, entries) = match items.split_first() {
            Some((first, rest)) if !first.is_array() => {
                (Some(self.compile(first, depth + 1)?), rest)
            }
            _ => (None, items),
        };
        if entries.is_empty() {
            return Err("`fractional` needs at least one [variant, weight] entry".to_string());
        }
        let mut buckets = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Array(pair) = entry else {
                return Err(
                    "each `fractional` entry must be an array [variant, weight]".to_string()
                );
            };
            let (variant, weight) = match pair.as_slice() {
                [variant] => (variant, None),
                [variant, weight] => (variant, Some(weight)),
                _ => {
                    return Err(
                        "each `fractional` entry must be [variant] or [variant, weight]"
                            .to_string(),
                    );
                }
            };
            if let Value::Number(w) = weight.unwrap_or(&Value::Null) {
                let w = w.as_f64().unwrap_or(f64::NAN);
                if !is_whole(w) || w > MAX_FRACTIONAL_WEIGHT as f64 {
                    return Err(format!(
                        "`fractional` weight {w} must be a whole number up to {MAX_FRACTIONAL_WEIGHT}"
                    ));
                }
            }
            let variant = self.compile(variant, depth + 2)?;
            let weight = match weight {
                Some(w) => Some(self.compile(w, depth + 2)?),
                None => None,
            };
            buckets.push(FractionalBucket { variant, weight });
        }
        let targeting_key = self.intern_attr(vec!["targetingKey".to_string()])?;
        Ok(Expr::Fractional(Box::new(Fractional {
            bucket_by,
            targeting_key,
            buckets,
        })))
    }
}

/// An array of literals is itself a literal: evaluated once, at compile time.
fn fold_array(items: Vec<Expr>) -> Expr {
    if items.iter().all(|i| matches!(i, Expr::Lit(_))) {
        let values = items
            .into_iter()
            .filter_map(|i| if let Expr::Lit(v) = i { Some(v) } else { None })
            .collect();
        Expr::Lit(Value::Array(values))
    } else {
        Expr::Array(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FlagKind, Targeting, ValueType, Variant};
    use serde_json::json;

    /// A flag named `flag-key` whose variants are named (and valued) by `variants`.
    fn flag(variants: &[&str]) -> Flag {
        Flag {
            key: "flag-key".to_string(),
            kind: FlagKind::Release,
            value_type: ValueType::String,
            variants: variants
                .iter()
                .map(|v| Variant {
                    name: v.to_string(),
                    value: json!(v),
                })
                .collect(),
            default_variant: None,
            off_variant: None,
            enabled: true,
            killed: false,
            prerequisites: Vec::new(),
            targeting: Targeting::Logic(Expr::Lit(Value::Null)),
            salt: String::new(),
            unsigned_attrs: Vec::new(),
            metadata: Map::new(),
        }
    }

    fn compile(rule: Value, evaluators: Value, body: &mut Body) -> Result<Expr, String> {
        let evaluators = evaluators.as_object().cloned().unwrap_or_default();
        compile_targeting(&rule, &evaluators, body)
    }

    /// Evaluates `rule` against `ctx` at `now_ms` = 1_700_000_000_500 and returns the raw value.
    fn value_of(rule: Value, ctx: Value) -> Result<Value, &'static str> {
        let mut body = Body::default();
        let expr = compile(rule, json!({}), &mut body).expect("compiles");
        check(&expr, &body).expect("checks");
        let flag = flag(&[]);
        let attrs = ctx.as_object().cloned().unwrap_or_default();
        let ctx = Context::new(&attrs);
        let env = Env {
            flag: &flag,
            body: &body,
            ctx: &ctx,
            now_ms: 1_700_000_000_500,
        };
        expr.eval(&env, 0).map(|v| to_json(&v))
    }

    fn to_json(v: &Val<'_>) -> Value {
        match v {
            Val::Null => Value::Null,
            Val::Bool(b) => json!(b),
            Val::Num(n) if is_whole(*n) => json!(*n as i64),
            Val::Num(n) => json!(n),
            Val::Str(s) => json!(s.as_ref()),
            Val::Json(v) => (*v).clone(),
            Val::Arr(items) => Value::Array(items.iter().map(to_json).collect()),
        }
    }

    #[track_caller]
    fn assert_value(rule: Value, ctx: Value, expected: Value) {
        let got = value_of(rule.clone(), ctx).expect("evaluates");
        // Numbers compare by value: 2 and 2.0 are the same JSONLogic result.
        let same = match (got.as_f64(), expected.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => got == expected,
        };
        assert!(same, "{rule} gave {got}, expected {expected}");
    }

    fn outcome(rule: Value, evaluators: Value, variants: &[&str], ctx: Value) -> Outcome {
        let mut body = Body::default();
        let expr = compile(rule, evaluators, &mut body).expect("compiles");
        check(&expr, &body).expect("checks");
        let attrs = ctx.as_object().cloned().unwrap_or_default();
        evaluate_targeting(&expr, &flag(variants), &body, &Context::new(&attrs), 0)
    }

    #[test]
    fn var_reads_nested_paths_array_indices_and_defaults() {
        let ctx =
            json!({"user": {"plan": "pro", "tags": ["a", "b"]}, "n": null, "targetingKey": "tk"});
        assert_value(json!({"var": "user.plan"}), ctx.clone(), json!("pro"));
        assert_value(json!({"var": ["user.plan"]}), ctx.clone(), json!("pro"));
        assert_value(json!({"var": "user.tags.1"}), ctx.clone(), json!("b"));
        assert_value(json!({"var": "user.tags.5"}), ctx.clone(), Value::Null);
        assert_value(json!({"var": "user.nope"}), ctx.clone(), Value::Null);
        assert_value(
            json!({"var": ["user.nope", "dflt"]}),
            ctx.clone(),
            json!("dflt"),
        );
        // flagd (Go JSONLogic) treats a null attribute as missing: the default applies.
        assert_value(json!({"var": ["n", 7]}), ctx.clone(), json!(7));
        assert_value(json!({"var": "targetingKey"}), ctx.clone(), json!("tk"));
        assert_value(
            json!({"var": "$flagd.flagKey"}),
            ctx.clone(),
            json!("flag-key"),
        );
        assert_value(
            json!({"var": "$flagd.timestamp"}),
            ctx.clone(),
            json!(1_700_000_000),
        );
        // The context cannot override flagd's own properties.
        assert_value(
            json!({"var": "$flagd.flagKey"}),
            json!({"$flagd": {"flagKey": "x"}}),
            json!("flag-key"),
        );
    }

    #[test]
    fn var_paths_are_interned_once() {
        let mut body = Body::default();
        compile(
            json!({"and": [{"var": "a.b"}, {"var": "a.b"}, {"var": "c"}]}),
            json!({}),
            &mut body,
        )
        .unwrap();
        assert_eq!(
            body.attrs,
            vec![
                vec!["a".to_string(), "b".to_string()],
                vec!["c".to_string()]
            ]
        );
    }

    #[test]
    fn if_chains_and_defaults_to_null() {
        let rule =
            |x: i64| json!({"if": [{"<": [x, 10]}, "small", {"<": [x, 100]}, "medium", "large"]});
        assert_value(rule(5), json!({}), json!("small"));
        assert_value(rule(50), json!({}), json!("medium"));
        assert_value(rule(500), json!({}), json!("large"));
        assert_value(json!({"if": [false, "x"]}), json!({}), Value::Null);
        assert_value(json!({"if": []}), json!({}), Value::Null);
        assert_value(json!({"?:": [true, "a", "b"]}), json!({}), json!("a"));
    }

    #[test]
    fn equality_is_loose_or_strict() {
        for (a, b, loose, strict) in [
            (json!(1), json!("1"), true, false),
            (json!(1), json!(1.0), true, true),
            (json!(true), json!(1), true, false),
            (json!(null), json!(null), true, true),
            (json!(null), json!(0), false, false),
            (json!("a"), json!("a"), true, true),
            (json!("a"), json!("b"), false, false),
            (json!(0), json!(""), true, false),
        ] {
            assert_value(json!({"==": [a, b]}), json!({}), json!(loose));
            assert_value(json!({"!=": [a, b]}), json!({}), json!(!loose));
            assert_value(json!({"===": [a, b]}), json!({}), json!(strict));
            assert_value(json!({"!==": [a, b]}), json!({}), json!(!strict));
        }
    }

    #[test]
    fn negation_follows_jsonlogic_truthiness() {
        for (v, truthy) in [
            (json!(0), false),
            (json!(""), false),
            (json!(null), false),
            (json!([]), false),
            (json!("0"), true),
            (json!(-1), true),
            (json!(["x"]), true),
        ] {
            assert_value(json!({"!": [v.clone()]}), json!({}), json!(!truthy));
            assert_value(json!({"!!": [v]}), json!({}), json!(truthy));
        }
        assert_value(json!({"!": true}), json!({}), json!(false));
    }

    #[test]
    fn and_or_return_the_deciding_value_and_short_circuit() {
        assert_value(json!({"and": [1, "x", 0, "y"]}), json!({}), json!(0));
        assert_value(json!({"and": [1, "x"]}), json!({}), json!("x"));
        assert_value(json!({"or": [0, "", "z", 1]}), json!({}), json!("z"));
        assert_value(json!({"or": [0, false]}), json!({}), json!(false));
        // The unknown $ref after the deciding value is never evaluated.
        assert_value(
            json!({"and": [false, {"$ref": "nope"}]}),
            json!({}),
            json!(false),
        );
        assert_value(
            json!({"or": [true, {"$ref": "nope"}]}),
            json!({}),
            json!(true),
        );
        assert_eq!(
            value_of(json!({"and": [true, {"$ref": "nope"}]}), json!({})).map_err(|_| ()),
            Err(())
        );
    }

    #[test]
    fn comparisons_cover_numbers_strings_and_between() {
        assert_value(json!({"<": [1, 2]}), json!({}), json!(true));
        assert_value(json!({"<": [2, 2]}), json!({}), json!(false));
        assert_value(json!({"<=": [2, 2]}), json!({}), json!(true));
        assert_value(json!({">": [3, 2]}), json!({}), json!(true));
        assert_value(json!({">=": [2, 3]}), json!({}), json!(false));
        assert_value(json!({"<": ["a", "b"]}), json!({}), json!(true));
        assert_value(json!({"<": ["10", 9]}), json!({}), json!(false));
        assert_value(
            json!({"<": [1, {"var": "x"}, 3]}),
            json!({"x": 2}),
            json!(true),
        );
        assert_value(
            json!({"<": [1, {"var": "x"}, 3]}),
            json!({"x": 3}),
            json!(false),
        );
        assert_value(
            json!({"<=": [1, {"var": "x"}, 3]}),
            json!({"x": 3}),
            json!(true),
        );
        assert_value(json!({"<": ["abc", 1]}), json!({}), json!(false)); // NaN never compares
        assert_value(json!({"<": [1]}), json!({}), json!(false));
    }

    #[test]
    fn in_checks_substrings_and_elements() {
        assert_value(json!({"in": ["ell", "hello"]}), json!({}), json!(true));
        assert_value(json!({"in": ["xyz", "hello"]}), json!({}), json!(false));
        assert_value(
            json!({"in": [{"var": "c"}, ["de", "fr"]]}),
            json!({"c": "fr"}),
            json!(true),
        );
        assert_value(
            json!({"in": [{"var": "c"}, ["de", "fr"]]}),
            json!({"c": "it"}),
            json!(false),
        );
        assert_value(json!({"in": [2, [1, 2, 3]]}), json!({}), json!(true));
        assert_value(
            json!({"in": ["a", {"var": "tags"}]}),
            json!({"tags": ["a", "b"]}),
            json!(true),
        );
        assert_value(json!({"in": ["a", 5]}), json!({}), json!(false));
    }

    #[test]
    fn long_literal_lists_become_sorted_interned_sets() {
        let emails: Vec<String> = (0..40)
            .rev()
            .map(|i| format!("user{i}@example.com"))
            .collect();
        let rule = json!({"in": [{"var": "email"}, emails]});
        let mut body = Body::default();
        let expr = compile(rule.clone(), json!({}), &mut body).unwrap();
        assert!(matches!(expr, Expr::InList(_, 0)), "{expr:?}");
        assert_eq!(body.lists.len(), 1);
        assert!(
            body.lists[0].windows(2).all(|w| w[0] < w[1]),
            "sorted and deduplicated"
        );
        assert_value(
            rule.clone(),
            json!({"email": "user7@example.com"}),
            json!(true),
        );
        assert_value(
            rule.clone(),
            json!({"email": "user77@example.com"}),
            json!(false),
        );
        assert_value(rule, json!({}), json!(false));
        // The same list twice is stored once.
        compile(json!({"in": ["x", emails]}), json!({}), &mut body).unwrap();
        assert_eq!(body.lists.len(), 1);
    }

    #[test]
    fn strings_concatenate_and_slice() {
        assert_value(
            json!({"cat": ["a", 1, 1.5, null, true]}),
            json!({}),
            json!("a11.5true"),
        );
        assert_value(json!({"cat": "solo"}), json!({}), json!("solo"));
        assert_value(
            json!({"cat": [{"var": "$flagd.flagKey"}, {"var": "id"}]}),
            json!({"id": 42}),
            json!("flag-key42"),
        );
        // jsonlogic.com's examples.
        assert_value(
            json!({"substr": ["jsonlogic", 4]}),
            json!({}),
            json!("logic"),
        );
        assert_value(
            json!({"substr": ["jsonlogic", -5]}),
            json!({}),
            json!("logic"),
        );
        assert_value(
            json!({"substr": ["jsonlogic", 1, 3]}),
            json!({}),
            json!("son"),
        );
        assert_value(
            json!({"substr": ["jsonlogic", 4, -2]}),
            json!({}),
            json!("log"),
        );
        assert_value(json!({"substr": ["héllo", 1, 2]}), json!({}), json!("él"));
        assert_value(json!({"substr": ["abc", 9]}), json!({}), json!("abc"));
        assert_value(json!({"substr": ["abc", 2, -2]}), json!({}), json!(""));
    }

    #[test]
    fn arithmetic_coerces_to_numbers() {
        assert_value(json!({"+": [1, "2", true]}), json!({}), json!(4));
        assert_value(json!({"-": [10, 3, 2]}), json!({}), json!(5));
        assert_value(json!({"-": [4]}), json!({}), json!(-4));
        assert_value(json!({"*": [2, 3, 4]}), json!({}), json!(24));
        assert_value(json!({"/": [9, 2]}), json!({}), json!(4.5));
        assert_value(json!({"%": [10, 3]}), json!({}), json!(1));
        assert_value(json!({"min": [3, 1, 2]}), json!({}), json!(1));
        assert_value(json!({"max": [3, 1, 2]}), json!({}), json!(3));
        assert_value(json!({"max": []}), json!({}), Value::Null);
        assert_value(
            json!({"merge": [[1, 2], 3, [[4]]]}),
            json!({}),
            json!([1, 2, 3, [4]]),
        );
    }

    #[test]
    fn missing_lists_absent_and_null_attributes() {
        assert_value(
            json!({"missing": ["a", "b.c", "d"]}),
            json!({"a": 1, "b": {"c": null}}),
            json!(["b.c", "d"]),
        );
        assert_value(json!({"missing": "a"}), json!({"a": 1}), json!([]));
    }

    #[test]
    fn starts_and_ends_with_are_null_on_bad_input() {
        assert_value(
            json!({"starts_with": [{"var": "id"}, "abc"]}),
            json!({"id": "abcdef"}),
            json!(true),
        );
        assert_value(
            json!({"starts_with": [{"var": "id"}, "abc"]}),
            json!({"id": "xabc"}),
            json!(false),
        );
        assert_value(
            json!({"ends_with": [{"var": "id"}, "xyz"]}),
            json!({"id": "uvwxyz"}),
            json!(true),
        );
        assert_value(
            json!({"ends_with": [{"var": "id"}, "xyz"]}),
            json!({"id": 123}),
            Value::Null,
        );
        assert_value(json!({"starts_with": ["abc"]}), json!({}), Value::Null);
        assert_value(
            json!({"starts_with": [{"var": "missing"}, "a"]}),
            json!({}),
            Value::Null,
        );
    }

    #[test]
    fn versions_parse_like_flagd() {
        let v = |s: &str| parse_version(s).map(|v| (v.major, v.minor, v.patch, v.pre.join(".")));
        assert_eq!(v("1.2.3"), Some((1, 2, 3, String::new())));
        assert_eq!(
            v("v1.2.3-rc.1+build.5"),
            Some((1, 2, 3, "rc.1".to_string()))
        );
        assert_eq!(v("V2.0.0"), Some((2, 0, 0, String::new())));
        assert_eq!(v("1"), Some((1, 0, 0, String::new())));
        assert_eq!(v("1.2"), Some((1, 2, 0, String::new())));
        for bad in [
            "",
            "v",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2-rc",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3+",
            "1.2.3-a..b",
            "x1.2.3",
            "vv1.0.0",
            "1.2.3 ",
        ] {
            assert_eq!(v(bad), None, "{bad:?} must not parse");
        }
        assert!(
            parse_version("1.2.3-0a").is_some(),
            "alphanumeric identifiers may start with 0"
        );
    }

    #[test]
    fn version_precedence_follows_semver_spec() {
        // The ordering example of semver.org, item 11.
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ];
        for pair in ordered.windows(2) {
            let (a, b) = (
                parse_version(pair[0]).unwrap(),
                parse_version(pair[1]).unwrap(),
            );
            assert_eq!(
                compare_versions(&a, &b),
                Ordering::Less,
                "{} < {}",
                pair[0],
                pair[1]
            );
            assert_eq!(compare_versions(&b, &a), Ordering::Greater);
        }
        let a = parse_version("1.0.0+one").unwrap();
        assert_eq!(
            compare_versions(&a, &parse_version("1.0.0+two").unwrap()),
            Ordering::Equal
        );
    }

    #[test]
    fn sem_ver_operators() {
        let test = |version: Value, op: &str, target: &str| {
            value_of(
                json!({"sem_ver": [{"var": "v"}, op, target]}),
                json!({"v": version}),
            )
            .unwrap()
        };
        assert_eq!(test(json!("2.0.0"), "=", "2.0.0"), json!(true));
        assert_eq!(test(json!("2.0.1"), "!=", "2.0.0"), json!(true));
        assert_eq!(test(json!("1.9.9"), "<", "2.0.0"), json!(true));
        assert_eq!(test(json!("2.0.0"), "<=", "2.0.0"), json!(true));
        assert_eq!(test(json!("2.0.0-alpha"), ">", "1.99.0"), json!(true));
        assert_eq!(test(json!("2.0.0-alpha"), ">=", "2.0.0"), json!(false));
        assert_eq!(test(json!("3.9.1"), "^", "3.0.0"), json!(true));
        assert_eq!(test(json!("4.0.0"), "^", "3.0.0"), json!(false));
        assert_eq!(test(json!("3.0.9"), "~", "3.0.0"), json!(true));
        assert_eq!(test(json!("3.1.0"), "~", "3.0.0"), json!(false));
        // Numbers are printed first, as flagd does: 1.2 is 1.2.0, 2 is 2.0.0.
        assert_eq!(test(json!(1.2), ">", "1.1"), json!(true));
        assert_eq!(test(json!(2), ">", "1.1"), json!(true));
        assert_eq!(test(json!(1), ">", "1.1"), json!(false));
        // Bad versions, operators or arity give null (the default variant), never false.
        assert_eq!(test(json!("not-a-version"), "=", "1.0.0"), Value::Null);
        assert_eq!(test(json!("1.0.0"), "===", "1.0.0"), Value::Null);
        assert_eq!(test(json!("1.0.0"), "=", "1.0"), json!(true));
        assert_eq!(
            value_of(
                json!({"sem_ver": [{"var": "v"}, "="]}),
                json!({"v": "1.0.0"})
            )
            .unwrap(),
            Value::Null
        );
        // A computed target is parsed at evaluation.
        let rule = json!({"sem_ver": [{"var": "v"}, ">=", {"var": "min"}]});
        assert_value(
            rule.clone(),
            json!({"v": "1.4.0", "min": "1.3.0"}),
            json!(true),
        );
        assert_value(rule, json!({"v": "1.4.0", "min": "x"}), Value::Null);
    }

    #[test]
    fn literal_sem_ver_targets_are_parsed_at_compile_time() {
        let mut body = Body::default();
        let expr = compile(
            json!({"sem_ver": [{"var": "v"}, "^", "v1.2"]}),
            json!({}),
            &mut body,
        )
        .unwrap();
        let Expr::SemVer(test) = expr else {
            panic!("{expr:?}")
        };
        assert_eq!(
            test.target,
            SemVerTarget::Version(SemVer {
                major: 1,
                minor: 2,
                patch: 0,
                pre: Vec::new()
            })
        );
    }

    /// The bucket of `key` in `total` by flagd's v2 formula, computed here independently of
    /// `flagd_fractional_bucket`.
    fn bucket_of(key: &str, total: u64) -> u64 {
        (u64::from(crate::murmur3_x86_32(key.as_bytes(), 0)) * total) >> 32
    }

    #[test]
    fn fractional_buckets_with_murmur3_v2() {
        let rule = json!({"fractional": [
            {"cat": [{"var": "$flagd.flagKey"}, {"var": "name"}]},
            ["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]
        ]});
        let suits = ["clubs", "diamonds", "hearts", "spades"];
        for name in ["jack", "queen", "ten", "nine", "3", "ünïcode"] {
            let expected = suits[(bucket_of(&format!("flag-key{name}"), 100) / 25) as usize];
            assert_value(rule.clone(), json!({"name": name}), json!(expected));
        }
        // The testbed's vector: murmur3("fractional-flagjack") = 0x9fe843e0 -> 62 of 100 -> hearts.
        assert_eq!(bucket_of("fractional-flagjack", 100), 62);
    }

    #[test]
    fn fractional_defaults_to_flag_key_and_targeting_key() {
        let rule = json!({"fractional": [["heads"], ["tails", 1]]});
        for tk in ["jon@company.com", "jane@company.com", "x"] {
            let expected = if bucket_of(&format!("flag-key{tk}"), 2) == 0 {
                "heads"
            } else {
                "tails"
            };
            assert_value(rule.clone(), json!({"targetingKey": tk}), json!(expected));
        }
        // No targeting key (or an empty one): null, so the default variant is served.
        assert_value(rule.clone(), json!({}), Value::Null);
        assert_value(rule.clone(), json!({"targetingKey": ""}), Value::Null);
        // A bucketing value that is null falls back to the targeting key too.
        let with_missing = json!({"fractional": [{"var": "nope"}, ["heads"], ["tails", 1]]});
        let tk = "jon@company.com";
        let expected = if bucket_of(&format!("flag-key{tk}"), 2) == 0 {
            "heads"
        } else {
            "tails"
        };
        assert_value(
            with_missing.clone(),
            json!({"targetingKey": tk}),
            json!(expected),
        );
        assert_value(with_missing, json!({}), Value::Null);
    }

    #[test]
    fn fractional_weights_are_validated_at_evaluation() {
        let ctx = json!({"targetingKey": "any-user"});
        assert_value(
            json!({"fractional": [{"var": "targetingKey"}, ["one", 0], ["two", 0]]}),
            ctx.clone(),
            Value::Null,
        );
        assert_value(
            json!({"fractional": [{"var": "targetingKey"}, ["one", -50], ["two", 100]]}),
            ctx.clone(),
            json!("two"),
        );
        assert_value(
            json!({"fractional": [["only", 1]]}),
            ctx.clone(),
            json!("only"),
        );
        // Computed weights and variants.
        let rule =
            json!({"fractional": [["red", {"if": [{"var": "premium"}, 100, 0]}], ["blue", 10]]});
        assert_value(
            rule.clone(),
            json!({"targetingKey": "u", "premium": false}),
            json!("blue"),
        );
        let premium = value_of(rule, json!({"targetingKey": "u", "premium": true})).unwrap();
        let expected = if bucket_of("flag-keyu", 110) < 100 {
            "red"
        } else {
            "blue"
        };
        assert_eq!(premium, json!(expected));
        assert_value(
            json!({"fractional": [[{"var": "v"}, 1]]}),
            json!({"targetingKey": "u", "v": [1]}),
            Value::Null,
        );
        assert_value(
            json!({"fractional": [["a", {"var": "w"}]]}),
            json!({"targetingKey": "u", "w": 0.5}),
            Value::Null,
        );
        // A bucketing value that is neither a string nor null is an error: null.
        assert_value(
            json!({"fractional": [{"var": "n"}, ["a", 1]]}),
            json!({"n": 5}),
            Value::Null,
        );
        // Boolean variants, e.g. fractional as a condition.
        assert_value(
            json!({"fractional": [[false, 0], [true, 100]]}),
            ctx,
            json!(true),
        );
    }

    #[test]
    fn malformed_fractional_is_a_compile_error() {
        let mut body = Body::default();
        for bad in [
            json!({"fractional": "x"}),
            json!({"fractional": [{"var": "x"}]}),
            json!({"fractional": [["a", 1], "b"]}),
            json!({"fractional": [["a", 1.5]]}),
            json!({"fractional": [["a", 1, 2]]}),
            json!({"fractional": [["a", 3_000_000_000u64]]}),
        ] {
            assert!(compile(bad.clone(), json!({}), &mut body).is_err(), "{bad}");
        }
    }

    #[test]
    fn results_map_to_variants_like_flagd() {
        let variants = ["on", "off", "true", "false", "1"];
        let o = |rule: Value, ctx: Value| outcome(rule, json!({}), &variants, ctx);
        assert_eq!(
            o(json!("off"), json!({})),
            Outcome::Variant(1, Reason::TargetingMatch)
        );
        assert_eq!(
            o(json!({"==": [1, 1]}), json!({})),
            Outcome::Variant(2, Reason::TargetingMatch)
        );
        assert_eq!(
            o(json!({"==": [1, 2]}), json!({})),
            Outcome::Variant(3, Reason::TargetingMatch)
        );
        assert_eq!(
            o(json!({"+": [0.5, 0.5]}), json!({})),
            Outcome::Variant(4, Reason::TargetingMatch)
        );
        assert_eq!(o(json!(null), json!({})), Outcome::Default);
        assert_eq!(o(json!({"if": [false, "on"]}), json!({})), Outcome::Default);
        assert!(matches!(
            o(json!("nope"), json!({})),
            Outcome::Error(ErrorCode::General, _)
        ));
        assert!(matches!(
            o(json!({"var": "list"}), json!({"list": ["on"]})),
            Outcome::Error(ErrorCode::General, _)
        ));
    }

    #[test]
    fn refs_resolve_and_dangling_refs_fail_at_evaluation() {
        let evaluators = json!({"is_vip": {"in": [{"var": "email"}, ["a@x.com", "b@x.com"]]}, "vip_or_beta": {"or": [{"$ref": "is_vip"}, {"var": "beta"}]}});
        let rule = json!({"if": [{"$ref": "vip_or_beta"}, "on", "off"]});
        let o = |ctx: Value| outcome(rule.clone(), evaluators.clone(), &["on", "off"], ctx);
        assert_eq!(
            o(json!({"email": "a@x.com"})),
            Outcome::Variant(0, Reason::TargetingMatch)
        );
        assert_eq!(
            o(json!({"beta": true})),
            Outcome::Variant(0, Reason::TargetingMatch)
        );
        assert_eq!(o(json!({})), Outcome::Variant(1, Reason::TargetingMatch));
        let dangling = outcome(
            json!({"if": [{"$ref": "gone"}, "on", "off"]}),
            evaluators,
            &["on", "off"],
            json!({}),
        );
        assert!(
            matches!(dangling, Outcome::Error(ErrorCode::ParseError, _)),
            "{dangling:?}"
        );
    }

    #[test]
    fn ref_cycles_and_unknown_operators_are_compile_errors() {
        let mut body = Body::default();
        let cyclic = json!({"a": {"!": {"$ref": "b"}}, "b": {"!": {"$ref": "a"}}});
        let err = compile(json!({"$ref": "a"}), cyclic, &mut body).unwrap_err();
        assert!(err.contains("cycle"), "{err}");
        let err = compile(
            json!({"if": [{"regex_match": ["a", "b"]}, "x"]}),
            json!({}),
            &mut body,
        )
        .unwrap_err();
        assert!(err.contains("regex_match"), "{err}");
        let err = compile(json!({"map": [[1], {"var": ""}]}), json!({}), &mut body).unwrap_err();
        assert!(err.contains("not supported"), "{err}");
        assert!(compile(json!({"var": {"cat": ["a", "b"]}}), json!({}), &mut body).is_err());
    }

    #[test]
    fn multi_key_objects_are_literals() {
        assert_value(json!({"a": 1, "b": 2}), json!({}), json!({"a": 1, "b": 2}));
        assert_value(json!([1, {"var": "x"}]), json!({"x": "y"}), json!([1, "y"]));
    }

    #[test]
    fn nesting_is_bounded_at_compile_and_load_time() {
        let mut deep = json!(true);
        for _ in 0..MAX_RULE_DEPTH + 1 {
            deep = json!({"!": [deep]});
        }
        let mut body = Body::default();
        assert!(
            compile(deep, json!({}), &mut body)
                .unwrap_err()
                .contains("deeper")
        );
        // A hand-made blob bypassing the compiler is caught by `check`.
        let mut expr = Expr::Lit(Value::Bool(true));
        for _ in 0..MAX_RULE_DEPTH + 1 {
            expr = Expr::Op(LogicOp::Not, vec![expr]);
        }
        assert!(check(&expr, &body).is_err());
        // And evaluation of an unchecked one errors instead of recursing further.
        let flag = flag(&[]);
        let attrs = Map::new();
        assert!(matches!(
            evaluate_targeting(&expr, &flag, &body, &Context::new(&attrs), 0),
            Outcome::Error(ErrorCode::ParseError, _)
        ));
    }

    #[test]
    fn check_rejects_out_of_range_indices() {
        let body = Body::default();
        assert!(check(&Expr::Var(0, None), &body).is_err());
        assert!(check(&Expr::Missing(vec![3]), &body).is_err());
        assert!(check(&Expr::InList(Box::new(Expr::Lit(Value::Null)), 0), &body).is_err());
        // Evaluating one anyway is an error, not a panic.
        assert_eq!(
            value_of(json!({"var": "x"}), json!({})).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn compiled_expressions_round_trip_through_json() {
        let mut body = Body::default();
        let rule = json!({"if": [
            {"and": [{"sem_ver": [{"var": "app.version"}, ">=", "1.2.0"]}, {"starts_with": [{"var": "email"}, "a"]}]},
            {"fractional": [["on", 50], ["off", 50]]},
            {"$ref": "missing"}
        ]});
        let expr = compile(rule, json!({}), &mut body).unwrap();
        let text = serde_json::to_string(&expr).unwrap();
        let back: Expr = serde_json::from_str(&text).unwrap();
        assert_eq!(back, expr);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::{FlagKind, Targeting, ValueType, Variant};
    use proptest::prelude::*;
    use serde_json::json;

    const OPERATORS: &[&str] = &[
        "var",
        "if",
        "==",
        "===",
        "!=",
        "!==",
        "!",
        "!!",
        "and",
        "or",
        "<",
        "<=",
        ">",
        ">=",
        "in",
        "cat",
        "substr",
        "+",
        "-",
        "*",
        "/",
        "%",
        "min",
        "max",
        "merge",
        "missing",
        "starts_with",
        "ends_with",
        "sem_ver",
        "fractional",
        "$ref",
    ];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e6f64..1e6).prop_map(|n| json!(n)),
            prop::sample::select(vec![
                "a",
                "b.c",
                "on",
                "1.2.3",
                "v2",
                "",
                "=",
                "^",
                "targetingKey",
                "ev"
            ])
            .prop_map(|s| json!(s)),
        ]
    }

    /// JSON shaped like targeting: operators applied to arrays of sub-expressions and literals.
    fn rule() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(6, 64, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                (
                    prop::sample::select(OPERATORS),
                    prop::collection::vec(inner.clone(), 0..5)
                )
                    .prop_map(|(op, args)| json!({ op: args })),
                (prop::sample::select(OPERATORS), inner).prop_map(|(op, arg)| json!({ op: arg })),
            ]
        })
    }

    fn context() -> impl Strategy<Value = Value> {
        (leaf(), leaf(), leaf())
            .prop_map(|(a, b, c)| json!({"a": a, "b": {"c": b}, "targetingKey": c}))
    }

    proptest! {
        /// Whatever the targeting and the context, compiling either fails cleanly or yields an
        /// expression that passes `check` and evaluates without panicking.
        #[test]
        fn arbitrary_targeting_never_panics(rule in rule(), ctx in context(), ev in rule()) {
            let evaluators = json!({"ev": ev});
            let mut body = Body::default();
            let Ok(expr) = compile_targeting(&rule, evaluators.as_object().unwrap(), &mut body) else {
                return Ok(());
            };
            prop_assert!(check(&expr, &body).is_ok());
            let flag = Flag {
                key: "k".to_string(),
                kind: FlagKind::Release,
                value_type: ValueType::String,
                variants: vec![Variant { name: "on".to_string(), value: json!("on") }],
                default_variant: None,
                off_variant: None,
                enabled: true,
                killed: false,
                prerequisites: Vec::new(),
                targeting: Targeting::Logic(expr.clone()),
                salt: String::new(),
                unsigned_attrs: Vec::new(),
                metadata: Map::new(),
            };
            let attrs = ctx.as_object().cloned().unwrap_or_default();
            let _ = evaluate_targeting(&expr, &flag, &body, &Context::new(&attrs), 0);
        }
    }
}
