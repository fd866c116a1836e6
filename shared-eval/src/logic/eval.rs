//! The tree walk: literals, attributes, `$flagd` properties, and dispatch to the operators.

use super::flagd_ops::{eval_fractional, eval_sem_ver};
use super::ops::eval_op;
use super::value::num;
use super::*;

/// What an expression is evaluated against.
pub(super) struct Env<'a> {
    pub(super) flag: &'a Flag,
    pub(super) body: &'a Body,
    pub(super) ctx: &'a Context<'a>,
    pub(super) now_ms: i64,
}

impl Expr {
    pub(super) fn eval<'a>(&'a self, env: &Env<'a>, depth: usize) -> EvalResult<'a> {
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
            Expr::Invalid(_) => Err(
                "the flag's definition is invalid (a `$ref` to no evaluator, or refused by the publisher: see its warnings)",
            ),
        }
    }
}

/// The attribute's value, or `None` when it is missing or null (JSONLogic's `var` treats both
/// the same). Array elements are reached with numeric path segments (`items.0`).
pub(super) fn lookup<'a>(env: &Env<'a>, attr: AttrId) -> Option<&'a Value> {
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

pub(super) fn walk<'a>(map: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
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
