//! The standard JSONLogic operators (everything an [`Expr::Op`] applies).

use super::value::{compare, num, number_operand, strict_eq};
use super::*;

pub(super) fn eval_args<'a>(
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

pub(super) fn eval_op<'a>(
    op: LogicOp,
    args: &'a [Expr],
    env: &Env<'a>,
    depth: usize,
) -> EvalResult<'a> {
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
    // Comparisons chain over three arguments ("between").
    let chain = |op: Cmp| -> Result<bool, &'static str> {
        match values.as_slice() {
            [a, b] => compare(a, b, op),
            [a, b, c, ..] => Ok(compare(a, b, op)? && compare(b, c, op)?),
            _ => Err("a comparison needs two arguments"),
        }
    };
    Ok(match op {
        LogicOp::If | LogicOp::And | LogicOp::Or => Val::Null, // handled above
        LogicOp::Eq => Val::Bool(chain(Cmp::Eq)?),
        LogicOp::Ne => Val::Bool(!chain(Cmp::Eq)?),
        LogicOp::StrictEq => Val::Bool(values.len() >= 2 && strict_eq(&arg(0), &arg(1))),
        LogicOp::StrictNe => Val::Bool(!(values.len() >= 2 && strict_eq(&arg(0), &arg(1)))),
        LogicOp::Not => Val::Bool(!values.first().is_some_and(Val::truthy)),
        LogicOp::NotNot => Val::Bool(values.first().is_some_and(Val::truthy)),
        LogicOp::Lt => Val::Bool(chain(Cmp::Lt)?),
        LogicOp::Le => Val::Bool(chain(Cmp::Le)?),
        LogicOp::Gt => Val::Bool(chain(Cmp::Gt)?),
        LogicOp::Ge => Val::Bool(chain(Cmp::Ge)?),
        LogicOp::In => {
            let needle = arg(0);
            match arg(1) {
                // flagd-core: `(haystack || []).includes(needle)`: a falsy haystack is `[]`,
                // a string haystack matches the needle's text, anything else is an error.
                hay if !hay.truthy() => Val::Bool(false),
                Val::Str(hay) => Val::Bool(hay.contains(cat_text(&needle).as_ref())),
                hay => {
                    let items = hay.elements().ok_or("`in` needs a string or an array")?;
                    Val::Bool(items.iter().any(|item| strict_eq(item, &needle)))
                }
            }
        }
        LogicOp::Cat => {
            let mut out = String::new();
            for v in &values {
                out.push_str(&cat_text(v));
            }
            env.spend(out.len() / 64)?;
            Val::Str(Cow::Owned(out))
        }
        LogicOp::Substr => substr(&values)?,
        LogicOp::Add => arithmetic(&values, 0.0, |a, b| a + b)?,
        LogicOp::Mul => arithmetic(&values, 1.0, |a, b| a * b)?,
        LogicOp::Sub => match values.as_slice() {
            [] => return Err("`-` needs an argument"),
            [a] => checked(-number_operand(a)?)?,
            [a, rest @ ..] => {
                let mut acc = number_operand(a)?;
                for v in rest {
                    acc -= number_operand(v)?;
                }
                checked(acc)?
            }
        },
        LogicOp::Div | LogicOp::Mod => {
            let (first, rest) = match values.as_slice() {
                [] => return Err("`/` and `%` need arguments"),
                [a] if op == LogicOp::Div => (num(1.0), core::slice::from_ref(a)),
                [_] => return Err("`%` needs two arguments"),
                [a, rest @ ..] => (a.clone(), rest),
            };
            let mut acc = number_operand(&first)?;
            for v in rest {
                // A zero divisor is NaN in flagd-core, hence an error.
                let d = number_operand(v)?;
                if d == 0.0 {
                    return Err("division by zero");
                }
                acc = if op == LogicOp::Div { acc / d } else { acc % d };
            }
            checked(acc)?
        }
        LogicOp::Min | LogicOp::Max => {
            // flagd-core: every argument must already be a number.
            let mut best: Option<f64> = None;
            for v in &values {
                if !v.is_number() {
                    return Err("`min` and `max` take numbers");
                }
                let n = v.to_number();
                best = Some(match best {
                    None => n,
                    Some(b) if (op == LogicOp::Min) == (n < b) => n,
                    Some(b) => b,
                });
            }
            num(best.ok_or("`min` and `max` need an argument")?)
        }
        LogicOp::Merge => {
            let mut out = Vec::new();
            for v in values {
                match v.elements() {
                    Some(items) => {
                        env.spend(items.len())?;
                        out.extend(items)
                    }
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

/// The comparison a [`compare`] applies.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// `+` and `*` over every argument, as numbers (an array, an object or NaN is an error).
fn arithmetic(values: &[Val<'_>], unit: f64, f: fn(f64, f64) -> f64) -> EvalResult<'static> {
    let mut acc = unit;
    for v in values {
        acc = f(acc, number_operand(v)?);
    }
    checked(acc)
}

/// flagd-core refuses a NaN or infinite result.
fn checked(n: f64) -> EvalResult<'static> {
    if n.is_finite() {
        Ok(num(n))
    } else {
        Err("arithmetic on something that is not a number")
    }
}

/// The text `cat` (JavaScript's `+` on strings) appends: `null` is "null", arrays join
/// their elements with commas (null elements empty), objects are "[object Object]".
pub(super) fn cat_text<'a>(v: &Val<'a>) -> Cow<'a, str> {
    match v {
        Val::Null => Cow::Borrowed("null"),
        other => other.to_text(),
    }
}

/// JSONLogic `substr` as flagd-core runs it (JavaScript's `String.prototype.substr`): over
/// characters, a negative start counts from the end, a start past the end gives "", a negative
/// length stops that many characters before the end. Anything but a string is an error.
pub(super) fn substr<'a>(values: &[Val<'a>]) -> EvalResult<'a> {
    let Some(Val::Str(text)) = values.first() else {
        return Err("`substr` takes a string");
    };
    let integer = |v: &Val<'_>| {
        let n = v.to_number();
        if n.is_nan() { 0 } else { n as i64 }
    };
    let chars: Vec<char> = text.chars().collect();
    let len = chars.len() as i64;
    let mut from = values.get(1).map_or(0, integer);
    if from < 0 {
        from = (len + from).max(0);
    }
    let from = from.min(len);
    let to = match values.get(2) {
        None => len,
        Some(v) => {
            let n = integer(v);
            if n < 0 {
                len + n
            } else {
                from.saturating_add(n).min(len)
            }
        }
    };
    if to <= from {
        return Ok(Val::Str(Cow::Borrowed("")));
    }
    // 0 <= from < to <= len here, so the slice cannot go out of bounds.
    let picked: String = chars
        .iter()
        .skip(from as usize)
        .take((to - from) as usize)
        .collect();
    Ok(Val::Str(Cow::Owned(picked)))
}
