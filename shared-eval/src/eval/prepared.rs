//! Per-snapshot data derived at load time ([`Prepared`]): the compiled regexes, hashed keys
//! and lists, the flat programs, which attributes each kind of test reads, and each flag's
//! [`Plan`] (a [`Fixed`] answer, a program, or the general procedure).

use alloc::{string::String, vec::Vec};
use serde_json::Value;

use super::{Pick, Reason};
use crate::{
    Body, Condition, Flag, FlagKind, MAX_RULE_DEPTH, Op, Serve, Targeting, VariantId, check,
    index::HashIndex, intern::Texts, program::Programs, regex::CompiledRegex,
};

/// Per-snapshot data derived at load time: the compiled regexes, and each flag's salt hashed
/// (indexed like `body.flags`).
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    pub(super) regexes: Vec<CompiledRegex>,
    /// Flag keys, hashed (single-flag evaluation looks its key up per request).
    pub(super) flag_index: HashIndex,
    /// Each of `body.lists`, hashed (`in` / `not_in`).
    pub(super) list_indexes: Vec<HashIndex>,
    /// Each native flag's rules as a flat program.
    pub(super) programs: Programs,
    /// The distinct first segments of `body.attrs`, hashed; entry `i` is the first segment of
    /// attribute `roots[i][0]`. Resolving a context walks the context once through this.
    pub(super) root_index: HashIndex,
    /// Per distinct first segment, the attributes whose path starts with it.
    pub(super) roots: Vec<Vec<u32>>,
    /// Per attribute: some semver test reads it, so resolving parses its value as a version.
    pub(super) semver_attrs: Vec<bool>,
    /// Per attribute: some `before`/`after` test reads it, so resolving parses it as a time.
    pub(super) time_attrs: Vec<bool>,
    /// Every `in` list entry and string operand, interned.
    pub(super) texts: Texts,
    /// Per attribute: some string or list test reads it, so resolving looks its text's id up.
    pub(super) text_attrs: Vec<bool>,
    /// Per flag: how its decision procedure runs, decided at load time.
    pub(super) plans: Vec<Plan>,
}

/// How a flag is decided, chosen at load time from what the flag can depend on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Plan {
    /// No context can change the answer (off, or on without rules, prerequisites or
    /// permission check).
    Fixed(Fixed),
    /// On, no prerequisites, rules compiled: run the program from `entry` (after the
    /// permission check, for a permission flag).
    Program { entry: u32, permission: bool },
    /// The whole decision procedure (prerequisites, flagd logic, rules too big to compile).
    General,
}

impl Plan {
    fn of(flag: &Flag, entry: Option<u32>) -> Plan {
        if let Some(fixed) = Fixed::of(flag) {
            return Plan::Fixed(fixed);
        }
        match entry {
            Some(entry) if flag.prerequisites.is_empty() => Plan::Program {
                entry,
                permission: flag.kind == FlagKind::Permission,
            },
            _ => Plan::General,
        }
    }
}

/// A flag's answer decided at load time: the variant and the reason.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixed {
    pub(super) variant: Option<VariantId>,
    pub(super) reason: Reason,
}

impl Fixed {
    pub(super) fn pick<'s>(self) -> Pick<'s> {
        Pick {
            variant: self.variant,
            reason: self.reason,
            rule: None,
            error: None,
        }
    }

    /// The answer of `flag` if it is the same for every context (the decision procedure of
    /// [`Env::pick`] with every context-dependent step absent).
    fn of(flag: &Flag) -> Option<Fixed> {
        if flag.killed || !flag.enabled {
            return Some(Fixed {
                variant: flag.off_variant,
                reason: Reason::Disabled,
            });
        }
        match &flag.targeting {
            Targeting::Rules {
                rules,
                fallthrough: Serve::Variant(id),
            } if rules.is_empty()
                && flag.prerequisites.is_empty()
                && flag.kind != FlagKind::Permission =>
            {
                Some(Fixed {
                    variant: Some(*id),
                    reason: Reason::Static,
                })
            }
            _ => None,
        }
    }
}

impl Prepared {
    /// Checks the body (see [`crate::check`]) and loads its regexes' DFAs.
    pub(crate) fn new(body: &Body) -> Result<Prepared, String> {
        check::check_body(body)?;
        let mut regexes = Vec::with_capacity(body.regexes.len());
        for (i, regex) in body.regexes.iter().enumerate() {
            regexes.push(
                CompiledRegex::load(regex).map_err(|why| alloc::format!("regex #{i}: {why}"))?,
            );
        }
        let flag_index = HashIndex::new(body.flags.iter().map(|flag| flag.key.as_str()));
        let list_indexes = body
            .lists
            .iter()
            .map(|list| HashIndex::new(list.iter().map(String::as_str)))
            .collect();
        let texts = Texts::new(body);
        let programs = Programs::new(body, &texts);
        let mut roots: Vec<Vec<u32>> = Vec::new();
        let mut root_of: Vec<(&str, usize)> = Vec::new();
        for (id, path) in body.attrs.iter().enumerate() {
            let (Some(first), Ok(id)) = (path.first(), u32::try_from(id)) else {
                continue;
            };
            match root_of.iter().find(|(name, _)| *name == first.as_str()) {
                Some((_, at)) => {
                    if let Some(ids) = roots.get_mut(*at) {
                        ids.push(id);
                    }
                }
                None => {
                    root_of.push((first.as_str(), roots.len()));
                    roots.push(alloc::vec![id]);
                }
            }
        }
        let root_index = HashIndex::new(root_of.iter().map(|(name, _)| *name));
        let mut semver_attrs = alloc::vec![false; body.attrs.len()];
        let mut time_attrs = alloc::vec![false; body.attrs.len()];
        let mut text_attrs = alloc::vec![false; body.attrs.len()];
        let mut mark = |condition: &Condition| {
            visit_tests(condition, 1, &mut |attr, op| {
                let marks = match op {
                    Op::SemVer(..) => &mut semver_attrs,
                    Op::Before(_) | Op::After(_) => &mut time_attrs,
                    Op::Equals(Value::String(_))
                    | Op::NotEquals(Value::String(_))
                    | Op::In(_)
                    | Op::NotIn(_) => &mut text_attrs,
                    _ => return,
                };
                if let Some(slot) = marks.get_mut(attr as usize) {
                    *slot = true;
                }
            })
        };
        for segment in &body.segments {
            mark(&segment.condition);
        }
        for flag in &body.flags {
            if let Targeting::Rules { rules, .. } = &flag.targeting {
                for rule in rules {
                    mark(&rule.condition);
                }
            }
        }
        let plans = body
            .flags
            .iter()
            .enumerate()
            .map(|(index, flag)| Plan::of(flag, programs.entry(index)))
            .collect();
        Ok(Prepared {
            plans,
            texts,
            text_attrs,
            regexes,
            flag_index,
            list_indexes,
            programs,
            root_index,
            roots,
            semver_attrs,
            time_attrs,
        })
    }
}

/// Calls `f` on every test of `condition` (segments not followed: they are visited on their own).
fn visit_tests(condition: &Condition, level: usize, f: &mut impl FnMut(u32, &Op)) {
    if level > MAX_RULE_DEPTH {
        return;
    }
    match condition {
        Condition::All(items) | Condition::Any(items) => {
            for item in items {
                visit_tests(item, level + 1, f);
            }
        }
        Condition::Not(inner) => visit_tests(inner, level + 1, f),
        Condition::Segment(_) => {}
        Condition::Test(test) => f(test.attr, &test.op),
    }
}
