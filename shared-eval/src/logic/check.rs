//! Load-time checks of a compiled expression against the body it lives in.

use super::*;

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
        Expr::MissingSome(need, attrs) => {
            check_at(need, body, next)?;
            attrs.iter().try_for_each(|a| attr_ok(*a))
        }
        Expr::Scoped(_, default) => default
            .as_deref()
            .map_or(Ok(()), |d| check_at(d, body, next)),
        Expr::Iterate(iteration) => {
            check_at(&iteration.over, body, next)?;
            check_at(&iteration.body, body, next)?;
            iteration
                .initial
                .as_ref()
                .map_or(Ok(()), |i| check_at(i, body, next))
        }
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
