//! JSONLogic's array operators: `map`, `filter`, `reduce`, `all`, `some`, `none`.
//!
//! Behaviour checked against flagd-core 4.0.1 (json-logic-engine): a null or missing array is
//! `[]`; anything else that is not an array is an error (GENERAL); `all` of `[]` is false, of a missing array true;
//! `reduce` of `[]` without an initial value is null. Each element copied is charged to the
//! evaluation budget, so large context arrays cannot make an evaluation unbounded.

use super::eval::Scope;
use super::*;

pub(super) fn eval_iteration<'a>(
    iteration: &'a Iteration,
    env: &Env<'a>,
    depth: usize,
) -> EvalResult<'a> {
    let items = match iteration.over.eval(env, depth)? {
        // flagd-core (its compiled path): `all` of `[]` is false, but of a missing array true.
        Val::Null if iteration.kind == IterKind::All => return Ok(Val::Bool(true)),
        Val::Null => Vec::new(),
        array => array
            .elements()
            .ok_or("an array operator was given something that is not an array")?,
    };
    env.spend(items.len())?;
    let truthy_for = |item: Val<'a>| -> Result<bool, &'static str> {
        Ok(iteration
            .body
            .eval(&env.with_scope(Scope::Item(item)), depth)?
            .truthy())
    };
    Ok(match iteration.kind {
        IterKind::Map => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(
                    iteration
                        .body
                        .eval(&env.with_scope(Scope::Item(item)), depth)?,
                );
            }
            Val::Arr(out)
        }
        IterKind::Filter => {
            let mut out = Vec::new();
            for item in items {
                if truthy_for(item.clone())? {
                    out.push(item);
                }
            }
            Val::Arr(out)
        }
        IterKind::All => {
            if items.is_empty() {
                return Ok(Val::Bool(false));
            }
            for item in items {
                if !truthy_for(item)? {
                    return Ok(Val::Bool(false));
                }
            }
            Val::Bool(true)
        }
        IterKind::Some | IterKind::None => {
            let mut any = false;
            for item in items {
                if truthy_for(item)? {
                    any = true;
                    break;
                }
            }
            Val::Bool(any == (iteration.kind == IterKind::Some))
        }
        IterKind::Reduce => {
            let mut items = items.into_iter();
            let mut accumulator = match &iteration.initial {
                Some(initial) => initial.eval(env, depth)?,
                None => match items.next() {
                    Some(first) => first,
                    None => return Ok(Val::Null),
                },
            };
            for current in items {
                let scope = Scope::Reduce {
                    accumulator,
                    current,
                };
                accumulator = iteration.body.eval(&env.with_scope(scope), depth)?;
                if let Some(len) = accumulator.elements().map(|e| e.len()) {
                    env.spend(len)?;
                }
            }
            accumulator
        }
    })
}
