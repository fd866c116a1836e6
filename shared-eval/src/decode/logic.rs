//! Decoding the compiled JSONLogic of flags imported from flagd ([`crate::logic::Expr`]).

use alloc::boxed::Box;

use super::reader::{Reader, Result};
use super::{duplicate, needs_data, required, semver, semver_cmp, strings, unknown_variant};
use crate::logic::{
    Expr, Fractional, FractionalBucket, IterKind, Iteration, LogicOp, SemVerTarget, SemVerTest,
};

pub(super) fn expr(r: &mut Reader<'_>) -> Result<Expr> {
    let (name, data) = r.tag()?;
    let expr = match (&*name, data) {
        ("flag_key", _) => {
            r.unit(data)?;
            Expr::FlagKey
        }
        ("timestamp", _) => {
            r.unit(data)?;
            Expr::Timestamp
        }
        (_, false) => {
            return match &*name {
                "lit" | "array" | "var" | "op" | "in_list" | "missing" | "missing_some"
                | "scoped" | "iterate" | "sem_ver" | "fractional" | "invalid" => needs_data(r),
                _ => unknown_variant(r, &name),
            };
        }
        ("lit", _) => Expr::Lit(r.value()?),
        ("array", _) => Expr::Array(r.vec(expr)?),
        ("var", _) => {
            let (mut attr, mut default) = (0, None);
            r.tuple::<2>(&mut |r, i| {
                match i {
                    0 => attr = r.u32()?,
                    _ => default = optional_expr(r)?,
                }
                Ok(())
            })?;
            Expr::Var(attr, default)
        }
        ("op", _) => {
            let (mut op, mut args) = (None, None);
            r.tuple::<2>(&mut |r, i| {
                match i {
                    0 => op = Some(logic_op(r)?),
                    _ => args = Some(r.vec(expr)?),
                }
                Ok(())
            })?;
            Expr::Op(required(r, op, "op")?, required(r, args, "op")?)
        }
        ("in_list", _) => {
            let (mut value, mut list) = (None, 0);
            r.tuple::<2>(&mut |r, i| {
                match i {
                    0 => value = Some(Box::new(expr(r)?)),
                    _ => list = r.u32()?,
                }
                Ok(())
            })?;
            Expr::InList(required(r, value, "in_list")?, list)
        }
        ("missing", _) => Expr::Missing(r.vec(Reader::u32)?),
        ("missing_some", _) => {
            let (mut need, mut attrs) = (None, None);
            r.tuple::<2>(&mut |r, i| {
                match i {
                    0 => need = Some(Box::new(expr(r)?)),
                    _ => attrs = Some(r.vec(Reader::u32)?),
                }
                Ok(())
            })?;
            Expr::MissingSome(
                required(r, need, "missing_some")?,
                required(r, attrs, "missing_some")?,
            )
        }
        ("scoped", _) => {
            let (mut path, mut default) = (None, None);
            r.tuple::<2>(&mut |r, i| {
                match i {
                    0 => path = Some(strings(r)?),
                    _ => default = optional_expr(r)?,
                }
                Ok(())
            })?;
            Expr::Scoped(required(r, path, "scoped")?, default)
        }
        ("iterate", _) => Expr::Iterate(Box::new(iteration(r)?)),
        ("sem_ver", _) => Expr::SemVer(Box::new(semver_test(r)?)),
        ("fractional", _) => Expr::Fractional(Box::new(fractional(r)?)),
        ("invalid", _) => Expr::Invalid(r.string()?),
        _ => return unknown_variant(r, &name),
    };
    r.end_tag(data)?;
    Ok(expr)
}

/// `null` or an expression.
fn optional_expr(r: &mut Reader<'_>) -> Result<Option<Box<Expr>>> {
    Ok(if r.null()? {
        None
    } else {
        Some(Box::new(expr(r)?))
    })
}

fn logic_op(r: &mut Reader<'_>) -> Result<LogicOp> {
    use LogicOp::*;
    let (name, data) = r.tag()?;
    let op = match &*name {
        "if" => If,
        "eq" => Eq,
        "strict_eq" => StrictEq,
        "ne" => Ne,
        "strict_ne" => StrictNe,
        "not" => Not,
        "not_not" => NotNot,
        "and" => And,
        "or" => Or,
        "lt" => Lt,
        "le" => Le,
        "gt" => Gt,
        "ge" => Ge,
        "in" => In,
        "cat" => Cat,
        "substr" => Substr,
        "add" => Add,
        "sub" => Sub,
        "mul" => Mul,
        "div" => Div,
        "mod" => Mod,
        "min" => Min,
        "max" => Max,
        "merge" => Merge,
        "starts_with" => StartsWith,
        "ends_with" => EndsWith,
        _ => return unknown_variant(r, &name),
    };
    r.unit(data)?;
    r.end_tag(data)?;
    Ok(op)
}

fn iteration(r: &mut Reader<'_>) -> Result<Iteration> {
    let (mut kind, mut over, mut body, mut initial) = (None, None, None, None);
    r.object(&mut |r, name| match name {
        "kind" => field!(r, kind, iter_kind(r)?),
        "over" => field!(r, over, expr(r)?),
        "body" => field!(r, body, expr(r)?),
        "initial" => optional!(r, initial, expr(r)?),
        _ => r.skip(),
    })?;
    Ok(Iteration {
        kind: required(r, kind, "kind")?,
        over: required(r, over, "over")?,
        body: required(r, body, "body")?,
        initial: initial.flatten(),
    })
}

fn iter_kind(r: &mut Reader<'_>) -> Result<IterKind> {
    let (name, data) = r.tag()?;
    let kind = match &*name {
        "map" => IterKind::Map,
        "filter" => IterKind::Filter,
        "reduce" => IterKind::Reduce,
        "all" => IterKind::All,
        "some" => IterKind::Some,
        "none" => IterKind::None,
        _ => return unknown_variant(r, &name),
    };
    r.unit(data)?;
    r.end_tag(data)?;
    Ok(kind)
}

fn semver_test(r: &mut Reader<'_>) -> Result<SemVerTest> {
    let (mut value, mut cmp, mut target) = (None, None, None);
    r.object(&mut |r, name| match name {
        "value" => field!(r, value, expr(r)?),
        "cmp" => field!(r, cmp, semver_cmp(r)?),
        "target" => field!(r, target, semver_target(r)?),
        _ => r.skip(),
    })?;
    Ok(SemVerTest {
        value: required(r, value, "value")?,
        cmp: required(r, cmp, "cmp")?,
        target: required(r, target, "target")?,
    })
}

fn semver_target(r: &mut Reader<'_>) -> Result<SemVerTarget> {
    let (name, data) = r.tag()?;
    let target = match (&*name, data) {
        ("version", true) => SemVerTarget::Version(semver(r)?),
        ("expr", true) => SemVerTarget::Expr(expr(r)?),
        ("version" | "expr", false) => return needs_data(r),
        _ => return unknown_variant(r, &name),
    };
    r.end_tag(data)?;
    Ok(target)
}

fn fractional(r: &mut Reader<'_>) -> Result<Fractional> {
    let (mut bucket_by, mut targeting_key, mut buckets) = (None, None, None);
    r.object(&mut |r, name| match name {
        "bucket_by" => optional!(r, bucket_by, expr(r)?),
        "targeting_key" => field!(r, targeting_key, r.u32()?),
        "buckets" => field!(r, buckets, r.vec(bucket)?),
        _ => r.skip(),
    })?;
    Ok(Fractional {
        bucket_by: bucket_by.flatten(),
        targeting_key: required(r, targeting_key, "targeting_key")?,
        buckets: required(r, buckets, "buckets")?,
    })
}

fn bucket(r: &mut Reader<'_>) -> Result<FractionalBucket> {
    let (mut variant, mut weight) = (None, None);
    r.object(&mut |r, name| match name {
        "variant" => field!(r, variant, expr(r)?),
        "weight" => optional!(r, weight, expr(r)?),
        _ => r.skip(),
    })?;
    Ok(FractionalBucket {
        variant: required(r, variant, "variant")?,
        weight: weight.flatten(),
    })
}
