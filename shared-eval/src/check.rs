//! Load-time checks of a blob body: every invariant the model documents, checked again at the
//! edge because a blob is untrusted there. After these pass, evaluation terminates quickly on
//! any context: indices are in range, recursion is bounded by [`MAX_RULE_DEPTH`] and
//! [`MAX_PREREQUISITE_DEPTH`], and the work of one evaluation by [`MAX_EVAL_COST`].

use alloc::{format, string::String, vec, vec::Vec};

use crate::{
    BUCKETS, Body, Condition, Flag, MAX_RULE_DEPTH, Op, Serve, Targeting, ValueType, VariantId,
};

/// Longest prerequisite chain accepted (flag A requires B requires C ... counts each flag).
/// Bounds the evaluator's recursion through prerequisites.
pub const MAX_PREREQUISITE_DEPTH: usize = 16;

/// Most condition nodes one flag evaluation may visit, counting segments expanded where they
/// are used and prerequisite flags' rules. Reusing a segment twice per level would otherwise
/// let a small blob demand exponential work per request.
pub const MAX_EVAL_COST: u64 = 100_000;

/// Checks everything the evaluator relies on. Errors name the flag, rule or table entry.
pub(crate) fn check_body(body: &Body) -> Result<(), String> {
    for (i, path) in body.attrs.iter().enumerate() {
        if path.is_empty() {
            return Err(format!("attribute #{i} has an empty path"));
        }
    }
    for (i, list) in body.lists.iter().enumerate() {
        if !list.windows(2).all(|pair| pair[0] < pair[1]) {
            return Err(format!("list #{i} is not sorted and deduplicated"));
        }
    }

    // Segments only point backwards, so their sizes and depths are known in index order.
    let mut segment_cost: Vec<u64> = Vec::with_capacity(body.segments.len());
    let mut segment_depth: Vec<usize> = Vec::with_capacity(body.segments.len());
    for (i, segment) in body.segments.iter().enumerate() {
        let tables = Tables {
            body,
            segment_cost: &segment_cost,
            segment_depth: &segment_depth,
            segments_before: i,
        };
        let (cost, depth) = tables
            .condition(&segment.condition, 1)
            .map_err(|why| format!("segment `{}`: {why}", segment.key))?;
        segment_cost.push(cost);
        segment_depth.push(depth);
    }
    let tables = Tables {
        body,
        segment_cost: &segment_cost,
        segment_depth: &segment_depth,
        segments_before: body.segments.len(),
    };

    for pair in body.flags.windows(2) {
        if pair[0].key >= pair[1].key {
            return Err(format!(
                "flags are not sorted by key (or duplicated) at `{}`",
                pair[1].key
            ));
        }
    }
    let mut own_cost = Vec::with_capacity(body.flags.len());
    for flag in &body.flags {
        let cost =
            check_flag(flag, &tables).map_err(|why| format!("flag `{}`: {why}", flag.key))?;
        own_cost.push(cost);
    }
    check_order(body, &own_cost)
}

struct Tables<'b> {
    body: &'b Body,
    segment_cost: &'b [u64],
    segment_depth: &'b [usize],
    /// Segments a condition here may reference: those already checked.
    segments_before: usize,
}

impl Tables<'_> {
    /// `(cost, depth)` of a condition at nesting level `level`, or why it is invalid.
    fn condition(&self, condition: &Condition, level: usize) -> Result<(u64, usize), String> {
        if level > MAX_RULE_DEPTH {
            return Err(format!(
                "conditions nest deeper than {MAX_RULE_DEPTH} levels"
            ));
        }
        match condition {
            Condition::All(items) | Condition::Any(items) => {
                let (mut cost, mut depth) = (1u64, 1usize);
                for item in items {
                    let (c, d) = self.condition(item, level + 1)?;
                    cost = cost.saturating_add(c);
                    depth = depth.max(d + 1);
                }
                Ok((cost, depth))
            }
            Condition::Not(inner) => {
                let (c, d) = self.condition(inner, level + 1)?;
                Ok((c.saturating_add(1), d + 1))
            }
            Condition::Segment(id) => {
                let index = *id as usize;
                if index >= self.segments_before {
                    return Err(format!(
                        "segment #{id} does not exist or is not defined before its use"
                    ));
                }
                let (c, d) = (self.segment_cost[index], self.segment_depth[index]);
                if level + d > MAX_RULE_DEPTH {
                    return Err(format!(
                        "conditions nest deeper than {MAX_RULE_DEPTH} levels through segment `{}`",
                        self.body.segments[index].key
                    ));
                }
                Ok((c.saturating_add(1), d + 1))
            }
            Condition::Test(test) => {
                if test.attr as usize >= self.body.attrs.len() {
                    return Err(format!("attribute #{} does not exist", test.attr));
                }
                match &test.op {
                    Op::In(list) | Op::NotIn(list) if *list as usize >= self.body.lists.len() => {
                        Err(format!("list #{list} does not exist"))
                    }
                    Op::Matches(regex) if *regex as usize >= self.body.regexes.len() => {
                        Err(format!("regex #{regex} does not exist"))
                    }
                    _ => Ok((1, 1)),
                }
            }
        }
    }
}

/// Checks one flag on its own; returns the cost of its rules (without prerequisites).
fn check_flag(flag: &Flag, tables: &Tables<'_>) -> Result<u64, String> {
    let body = tables.body;
    let variant = |id: VariantId, what: &str| -> Result<(), String> {
        if usize::from(id) < flag.variants.len() {
            Ok(())
        } else {
            Err(format!(
                "{what} names variant #{id}, the flag has {}",
                flag.variants.len()
            ))
        }
    };
    for v in &flag.variants {
        let ok = match flag.value_type {
            ValueType::Boolean => v.value.is_boolean(),
            ValueType::String => v.value.is_string(),
            ValueType::Number => v.value.is_number(),
            // flagd's "object" flags may hold arrays too: both are OpenFeature structures.
            ValueType::Object => v.value.is_object() || v.value.is_array(),
        };
        if !ok {
            return Err(format!(
                "variant `{}` is not of the flag's type {:?}",
                v.name, flag.value_type
            ));
        }
    }
    if let Some(id) = flag.default_variant {
        variant(id, "the default")?;
    }
    if let Some(id) = flag.off_variant {
        variant(id, "the off variant")?;
    }
    for attr in &flag.unsigned_attrs {
        if *attr as usize >= body.attrs.len() {
            return Err(format!("unsigned attribute #{attr} does not exist"));
        }
    }
    for prerequisite in &flag.prerequisites {
        let Some(other) = body.flags.get(prerequisite.flag as usize) else {
            return Err(format!(
                "prerequisite flag #{} does not exist",
                prerequisite.flag
            ));
        };
        if other.key == flag.key {
            return Err(String::from("the flag is its own prerequisite"));
        }
        for id in &prerequisite.variants {
            if usize::from(*id) >= other.variants.len() {
                return Err(format!(
                    "prerequisite `{}` names variant #{id}, which it does not have",
                    other.key
                ));
            }
        }
    }
    let serve = |serve: &Serve, what: &str| -> Result<(), String> {
        match serve {
            Serve::Variant(id) => variant(*id, what),
            Serve::Split(split) => {
                if split.bucket_by as usize >= body.attrs.len() {
                    return Err(format!(
                        "{what}: split on attribute #{}, which does not exist",
                        split.bucket_by
                    ));
                }
                let mut total = 0u64;
                for (id, weight) in &split.weights {
                    variant(*id, what)?;
                    total += u64::from(*weight);
                }
                if total != u64::from(BUCKETS) {
                    return Err(format!(
                        "{what}: split weights sum to {total}, not {BUCKETS}"
                    ));
                }
                Ok(())
            }
        }
    };
    match &flag.targeting {
        Targeting::Rules { rules, fallthrough } => {
            let mut cost = 1u64;
            for rule in rules {
                let what = format!("rule `{}`", rule.id);
                let (c, _) = tables
                    .condition(&rule.condition, 1)
                    .map_err(|why| format!("{what}: {why}"))?;
                serve(&rule.serve, &what)?;
                cost = cost.saturating_add(c);
            }
            serve(fallthrough, "the fallthrough")?;
            Ok(cost)
        }
        Targeting::Logic(expr) => crate::logic::check(expr, body).map(|()| 1),
    }
}

/// `eval_order` is a permutation of the flags with prerequisites first; prerequisite chains
/// and total evaluation cost stay within bounds.
fn check_order(body: &Body, own_cost: &[u64]) -> Result<(), String> {
    let n = body.flags.len();
    if body.eval_order.len() != n {
        return Err(format!(
            "eval_order lists {} flags, the body has {n}",
            body.eval_order.len()
        ));
    }
    let mut position = vec![usize::MAX; n];
    for (at, id) in body.eval_order.iter().enumerate() {
        match position.get_mut(*id as usize) {
            Some(slot) if *slot == usize::MAX => *slot = at,
            _ => {
                return Err(format!(
                    "eval_order is not a permutation of the flags (at #{id})"
                ));
            }
        }
    }
    let mut cost = vec![0u64; n];
    let mut depth = vec![0usize; n];
    for id in &body.eval_order {
        let index = *id as usize;
        let flag = &body.flags[index];
        let (mut c, mut d) = (own_cost[index], 1usize);
        for prerequisite in &flag.prerequisites {
            let p = prerequisite.flag as usize;
            if position[p] >= position[index] {
                return Err(format!(
                    "flag `{}`: prerequisite `{}` is not evaluated before it (cycle or bad eval_order)",
                    flag.key, body.flags[p].key
                ));
            }
            c = c.saturating_add(cost[p]);
            d = d.max(depth[p] + 1);
        }
        if d > MAX_PREREQUISITE_DEPTH {
            return Err(format!(
                "flag `{}`: prerequisite chain is {d} flags long, over the limit of {MAX_PREREQUISITE_DEPTH}",
                flag.key
            ));
        }
        if c > MAX_EVAL_COST {
            return Err(format!(
                "flag `{}`: evaluating it visits {c} conditions (segments and prerequisites expanded), over the limit of {MAX_EVAL_COST}",
                flag.key
            ));
        }
        cost[index] = c;
        depth[index] = d;
    }
    Ok(())
}
