//! flagd's custom operators with their own tree nodes: `sem_ver` and `fractional`.

use super::value::is_whole;
use super::*;
use crate::semver::{RangeRules, compare_with, parse_semver};

pub(super) fn eval_sem_ver<'a>(
    test: &'a SemVerTest,
    env: &Env<'a>,
    depth: usize,
) -> EvalResult<'a> {
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
    Ok(Val::Bool(compare_with(
        &actual,
        test.cmp,
        target,
        RangeRules::Flagd,
    )))
}

/// A `sem_ver` operand as flagd reads it: numbers are printed first (`1.2` is `1.2.0`).
pub(super) fn parse_flagd_version(value: &Val<'_>) -> Option<SemVer> {
    match value {
        Val::Str(s) => parse_semver(s),
        Val::Num(_) | Val::Json(Value::Number(_)) => parse_semver(&value.to_text()),
        _ => None,
    }
}

pub(super) fn eval_fractional<'a>(
    f: &'a Fractional,
    env: &Env<'a>,
    depth: usize,
) -> EvalResult<'a> {
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
        // No bucketing value: flagd buckets on the flag key + targeting key, and returns null
        // when there is no targeting key. A bucketing value that is not a string (a missing
        // attribute included) gives null, as in flagd-core.
        Val::Null if f.bucket_by.is_none() => match bucketing_key(env, f.targeting_key) {
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
