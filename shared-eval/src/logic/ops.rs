//! The standard JSONLogic operators (everything an [`Expr::Op`] applies).

use super::value::{less, less_or_eq, loose_eq, num, strict_eq};
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
pub(super) fn substr<'a>(values: &[Val<'a>]) -> Val<'a> {
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
