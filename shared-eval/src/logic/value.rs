//! Intermediate values and JSONLogic's truthiness, coercion and comparison rules.

use super::ops::Cmp;
use super::*;

/// An intermediate value: borrowed from the expression or the context where possible, so a
/// typical rule allocates nothing.
#[derive(Debug, Clone)]
pub(super) enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// An array, an object, or an integer too large for an `f64`, borrowed as is.
    Json(&'a Value),
    /// A computed array.
    Arr(Vec<Val<'a>>),
}

pub(super) type EvalResult<'a> = Result<Val<'a>, &'static str>;

impl<'a> Val<'a> {
    pub(super) fn from_json(value: &'a Value) -> Val<'a> {
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
    pub(super) fn truthy(&self) -> bool {
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
    pub(super) fn to_number(&self) -> f64 {
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
    pub(super) fn to_text(&self) -> Cow<'a, str> {
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

    pub(super) fn is_number(&self) -> bool {
        matches!(self, Val::Num(_) | Val::Json(Value::Number(_)))
    }

    /// The elements, if this is an array.
    pub(super) fn elements(&self) -> Option<Vec<Val<'a>>> {
        match self {
            Val::Json(Value::Array(items)) => Some(items.iter().map(Val::from_json).collect()),
            Val::Arr(items) => Some(items.clone()),
            _ => None,
        }
    }
}

pub(super) fn number_val(n: &Number) -> Option<Val<'static>> {
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
pub(super) fn format_number(n: f64) -> String {
    let mut text = String::new();
    // Writing to a String only fails if zmij printed something that is not a number.
    let _ = crate::ops::write_plain_f64(&mut text, n);
    text
}

/// An operand of arithmetic as flagd-core coerces it: numbers, booleans, numeric strings and
/// null (0); an array, an object or a non-numeric string is an error.
pub(super) fn number_operand(v: &Val<'_>) -> Result<f64, &'static str> {
    match v {
        Val::Json(Value::Array(_) | Value::Object(_)) | Val::Arr(_) => {
            Err("arithmetic on an array or object")
        }
        other => {
            let n = other.to_number();
            if n.is_nan() {
                Err("arithmetic on something that is not a number")
            } else {
                Ok(n)
            }
        }
    }
}

/// `===`: same type and value; arrays and objects are never equal (JavaScript identity).
pub(super) fn strict_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        _ if a.is_number() && b.is_number() => a.to_number() == b.to_number(),
        _ => false,
    }
}

fn is_compound(v: &Val<'_>) -> bool {
    matches!(
        v,
        Val::Json(Value::Array(_) | Value::Object(_)) | Val::Arr(_)
    )
}

/// `a op b` as flagd-core's engine (json-logic-engine 5) evaluates it on context values: two
/// strings (or null) compare as JavaScript does; otherwise as numbers (a non-numeric string is
/// NaN: every comparison false); an array or object operand is an error (GENERAL); `null`
/// equals a falsy non-string.
pub(super) fn compare(a: &Val<'_>, b: &Val<'_>, op: Cmp) -> Result<bool, &'static str> {
    let string_or_null = |v: &Val<'_>| matches!(v, Val::Str(_) | Val::Null);
    if string_or_null(a) && string_or_null(b) {
        return Ok(match (a, b) {
            (Val::Str(x), Val::Str(y)) => match op {
                Cmp::Eq => x == y,
                Cmp::Lt => x < y,
                Cmp::Le => x <= y,
                Cmp::Gt => x > y,
                Cmp::Ge => x >= y,
            },
            (Val::Null, Val::Null) => matches!(op, Cmp::Eq | Cmp::Le | Cmp::Ge),
            // null and a string: equality is false, order compares 0 with the string's number.
            _ if op == Cmp::Eq => false,
            _ => numeric(a.to_number(), b.to_number(), op),
        });
    }
    if is_compound(a) || is_compound(b) {
        return Err("comparison of an array or object");
    }
    let (a_null, b_null) = (matches!(a, Val::Null), matches!(b, Val::Null));
    if op == Cmp::Eq {
        // JavaScript's `==` after flagd-core's substitutions: null equals a falsy value.
        return Ok(match (a_null, b_null) {
            (true, _) => !b.truthy(),
            (_, true) => !a.truthy(),
            _ => a.to_number() == b.to_number(),
        });
    }
    Ok(numeric(a.to_number(), b.to_number(), op))
}

fn numeric(a: f64, b: f64, op: Cmp) -> bool {
    match op {
        Cmp::Eq => a == b,
        Cmp::Lt => a < b,
        Cmp::Le => a <= b,
        Cmp::Gt => a > b,
        Cmp::Ge => a >= b,
    }
}

/// Whether `n` is a finite whole number (`f64::fract` needs std).
pub(super) fn is_whole(n: f64) -> bool {
    n.is_finite() && (n as i64) as f64 == n
}

pub(super) fn num(n: f64) -> Val<'static> {
    Val::Num(n)
}
