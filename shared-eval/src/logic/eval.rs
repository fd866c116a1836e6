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
    /// The element an array operator's body is evaluated for ([`Expr::Scoped`] reads it).
    pub(super) scope: Option<Scope<'a>>,
    /// Steps left (see [`MAX_EVAL_STEPS`]), shared by every scope of one evaluation.
    pub(super) budget: &'a core::cell::Cell<u32>,
}

/// The data an iteration body sees.
pub(super) enum Scope<'a> {
    /// `map`, `filter`, `all`, `some`, `none`: the current element.
    Item(Val<'a>),
    /// `reduce`: `{"accumulator": ..., "current": ...}`.
    Reduce {
        accumulator: Val<'a>,
        current: Val<'a>,
    },
}

impl<'a> Env<'a> {
    pub(super) fn new(
        flag: &'a Flag,
        body: &'a Body,
        ctx: &'a Context<'a>,
        now_ms: i64,
        budget: &'a core::cell::Cell<u32>,
    ) -> Self {
        Env {
            flag,
            body,
            ctx,
            now_ms,
            scope: None,
            budget,
        }
    }

    /// The same evaluation with `scope` as the current element.
    pub(super) fn with_scope(&self, scope: Scope<'a>) -> Env<'a> {
        Env {
            flag: self.flag,
            body: self.body,
            ctx: self.ctx,
            now_ms: self.now_ms,
            scope: Some(scope),
            budget: self.budget,
        }
    }

    /// Takes `steps` from the budget; an error once it is spent.
    pub(super) fn spend(&self, steps: usize) -> Result<(), &'static str> {
        let steps = u32::try_from(steps).unwrap_or(u32::MAX);
        match self.budget.get().checked_sub(steps) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err("targeting exceeded its evaluation budget"),
        }
    }
}

impl Expr {
    pub(super) fn eval<'a>(&'a self, env: &Env<'a>, depth: usize) -> EvalResult<'a> {
        if depth > MAX_RULE_DEPTH {
            return Err("targeting nested too deeply");
        }
        env.spend(1)?;
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
            Expr::Missing(attrs) => Ok(Val::Arr(absent(env, attrs))),
            Expr::MissingSome(need, attrs) => {
                let need = need.eval(env, next)?.to_number();
                let missing = absent(env, attrs);
                let present = attrs.len() - missing.len();
                if present as f64 >= need {
                    Ok(Val::Arr(Vec::new()))
                } else {
                    Ok(Val::Arr(missing))
                }
            }
            Expr::Scoped(path, default) => match env.scope.as_ref().and_then(|s| s.get(path)) {
                Some(v) if !matches!(v, Val::Null) => Ok(v),
                _ => match default {
                    Some(d) => d.eval(env, next),
                    None => Ok(Val::Null),
                },
            },
            Expr::Iterate(iteration) => super::iterate::eval_iteration(iteration, env, next),
            Expr::SemVer(test) => eval_sem_ver(test, env, next),
            Expr::Fractional(f) => eval_fractional(f, env, next),
            Expr::Invalid(_) => Err(
                "the flag's definition is invalid (a `$ref` to no evaluator, or refused by the publisher: see its warnings)",
            ),
        }
    }
}

/// The names of `attrs` that are absent from the context (a `null` value is present).
fn absent<'a>(env: &Env<'a>, attrs: &[AttrId]) -> Vec<Val<'a>> {
    let mut missing = Vec::new();
    for attr in attrs {
        if lookup_raw(env, *attr).is_none() {
            let path = env
                .body
                .attrs
                .get(*attr as usize)
                .map(|p| p.join("."))
                .unwrap_or_default();
            missing.push(Val::Str(Cow::Owned(path)));
        }
    }
    missing
}

impl<'a> Scope<'a> {
    /// The value at `path` in this scope (`[]` is the element itself).
    fn get(&self, path: &[String]) -> Option<Val<'a>> {
        let (root, rest) = match self {
            Scope::Item(item) => (item.clone(), path),
            Scope::Reduce {
                accumulator,
                current,
            } => {
                let (first, rest) = path.split_first()?;
                match first.as_str() {
                    "accumulator" => (accumulator.clone(), rest),
                    "current" => (current.clone(), rest),
                    _ => return None,
                }
            }
        };
        let mut value = root;
        for segment in rest {
            value = match value {
                Val::Json(Value::Object(m)) => Val::from_json(m.get(segment.as_str())?),
                Val::Json(Value::Array(items)) => {
                    Val::from_json(items.get(segment.parse::<usize>().ok()?)?)
                }
                Val::Arr(items) => items.get(segment.parse::<usize>().ok()?)?.clone(),
                _ => return None,
            };
        }
        Some(value)
    }
}

/// The attribute's value, or `None` when it is missing or null (JSONLogic's `var` treats both
/// the same). Array elements are reached with numeric path segments (`items.0`).
pub(super) fn lookup<'a>(env: &Env<'a>, attr: AttrId) -> Option<&'a Value> {
    lookup_raw(env, attr).filter(|v| !v.is_null())
}

/// The attribute's value, `null` included.
fn lookup_raw<'a>(env: &Env<'a>, attr: AttrId) -> Option<&'a Value> {
    lookup_allowing(env, attr, env.flag.unsigned_attrs.contains(&attr))
}

/// The targeting key `fractional` buckets by when given no value: read unsigned too where the
/// flag may bucket by an unsigned key (the native splits' rule, `eval::split_reads_unsigned`).
pub(super) fn bucketing_key<'a>(env: &Env<'a>, attr: AttrId) -> Option<&'a Value> {
    let allow_unsigned = crate::eval::split_reads_unsigned(env.flag, attr, true);
    lookup_allowing(env, attr, allow_unsigned).filter(|v| !v.is_null())
}

fn lookup_allowing<'a>(env: &Env<'a>, attr: AttrId, allow_unsigned: bool) -> Option<&'a Value> {
    let path = env.body.attrs.get(attr as usize)?;
    walk(env.ctx.signed, path).or_else(|| {
        if allow_unsigned {
            env.ctx.unsigned.and_then(|m| walk(m, path))
        } else {
            None
        }
    })
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
