//! The evaluator: one flag (or all of them) for one context, as data, never an error.
//!
//! Order of decisions for a flag (each step documented where it happens):
//! 1. unknown key: no value, `ERROR` / `FLAG_NOT_FOUND`;
//! 2. killed or disabled: the off variant, `DISABLED`;
//! 3. a permission flag on an unsigned identity: the safe default, `DEFAULT`;
//! 4. a prerequisite not met: the safe default, `DEFAULT`;
//! 5. the targeting: native rules in order, then the fallthrough (or flagd's JSONLogic).
//!
//! Nothing here panics: the result borrows from the snapshot, and every index was checked when
//! the snapshot was loaded (and is still read with `.get()`). One flag allocates nothing; many
//! flags share a [`Resolved`] context, one slot per interned attribute (bounded by the blob).
//!
//! Speed (instructions counted with callgrind, `benches/src/bin/eval-profile.rs`): attribute
//! lookups dominated, so a bulk request resolves each attribute at most once for all flags
//! ([`Resolved`]); each flag's salt is pre-hashed at load time, so a split hashes only the value.

use alloc::{string::String, vec::Vec};
use serde_json::{Map, Value};

use crate::{
    Body, Condition, Context, Flag, FlagKind, MAX_RULE_DEPTH, Op, Serve, Snapshot, Split,
    Targeting, ValueType, VariantId, bucket, check, datetime, logic, ops, parse_semver,
    program::{Check, Instr, NO_RULE, NumCmp, Programs, Served, SplitCode},
    semver,
};

mod prepared;
mod resolved;
mod unsigned;

use prepared::Plan;
pub(crate) use prepared::Prepared;
pub use resolved::Resolved;
use resolved::{Halves, Slot};
pub(crate) use unsigned::split_reads_unsigned;
pub use unsigned::{unsigned_ignored, unsigned_ignored_all};

/// Why a value was served (OpenFeature reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The flag has no targeting: the value is always the same.
    Static,
    /// A rule matched.
    TargetingMatch,
    /// A percentage split picked the variant.
    Split,
    /// Nothing matched: the default variant.
    Default,
    /// The flag is off or killed.
    Disabled,
    /// Something failed; the safe default (or the caller's default) applies.
    Error,
}

impl Reason {
    /// The OpenFeature / OFREP spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

/// OpenFeature error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No flag with that key.
    FlagNotFound,
    /// The value is not of the requested type.
    TypeMismatch,
    /// The flag's targeting could not be evaluated as written (e.g. a dangling flagd `$ref`).
    ParseError,
    /// A split needed the targeting key and the context had none.
    TargetingKeyMissing,
    /// Anything else.
    General,
}

impl ErrorCode {
    /// The OpenFeature / OFREP spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::General => "GENERAL",
        }
    }
}

/// The result of evaluating one flag. Always filled: on error, `value` is the safe default
/// (or `None` where the caller's own default applies: unknown flag, flagd flag without one).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'s> {
    /// The served value; `None` means "use the caller's default".
    pub value: Option<&'s Value>,
    /// The served variant's name.
    pub variant: Option<&'s str>,
    /// Why.
    pub reason: Reason,
    /// The id of the rule that matched, if one did.
    pub rule: Option<&'s str>,
    /// Set when `reason` is `Error`.
    pub error: Option<ErrorCode>,
    /// Human-readable detail for `error` (fixed strings: never echoes input).
    pub error_details: Option<&'static str>,
    /// The flag's metadata (`None` for an unknown flag).
    pub metadata: Option<&'s Map<String, Value>>,
}

impl Evaluation<'_> {
    /// Whether the served value has type `ty` (OpenFeature's `TYPE_MISMATCH` check, done by
    /// the caller that knows which type was asked for). No value ("use your default") matches
    /// every type. Objects accept JSON arrays too, as OpenFeature structures do.
    pub fn matches_type(&self, ty: ValueType) -> bool {
        match (self.value, ty) {
            (None, _) => true,
            (Some(v), ValueType::Boolean) => v.is_boolean(),
            (Some(v), ValueType::String) => v.is_string(),
            (Some(v), ValueType::Number) => v.is_number(),
            (Some(v), ValueType::Object) => v.is_object() || v.is_array(),
        }
    }
}

/// Evaluates one flag. `now_ms` is the current time in milliseconds since the Unix epoch.
///
/// Looks each attribute up directly (nothing to amortize for one flag); to evaluate several
/// flags for the same context, use [`evaluate_resolved`] or [`evaluate_all`].
pub fn evaluate<'s>(
    snapshot: &'s Snapshot,
    key: &str,
    ctx: &Context<'_>,
    now_ms: i64,
) -> Evaluation<'s> {
    match find_flag(snapshot, key) {
        Some(index) => evaluate_flag(snapshot, index, ctx, None, now_ms),
        None => not_found(),
    }
}

/// Evaluates one flag for a context already [resolved](Snapshot::resolve): the same result as
/// [`evaluate`], with every attribute lookup shared with the other flags evaluated on
/// `resolved`.
pub fn evaluate_resolved<'s>(
    resolved: &Resolved<'s, '_>,
    key: &str,
    now_ms: i64,
) -> Evaluation<'s> {
    match find_flag(resolved.snapshot, key) {
        Some(index) => evaluate_flag(
            resolved.snapshot,
            index,
            &resolved.ctx,
            Some(resolved.halves()),
            now_ms,
        ),
        None => not_found(),
    }
}

/// Evaluates the flag at `index` (its position, [`Snapshot::flag_position`]) for a resolved
/// context: [`evaluate_resolved`] without the key lookup, for callers that looked the key up
/// once per snapshot (the SDKs' hot path passes integers). An index past the flags answers
/// `FLAG_NOT_FOUND`.
pub fn evaluate_resolved_at<'s>(
    resolved: &Resolved<'s, '_>,
    index: usize,
    now_ms: i64,
) -> Evaluation<'s> {
    evaluate_flag(
        resolved.snapshot,
        index,
        &resolved.ctx,
        Some(resolved.halves()),
        now_ms,
    )
}

impl Snapshot {
    /// The position of the flag with this key among the snapshot's flags (key order), for
    /// [`evaluate_resolved_at`]; valid for this snapshot only.
    pub fn flag_position(&self, key: &str) -> Option<usize> {
        find_flag(self, key)
    }
}

/// Evaluates every flag, in key order, as `(key, evaluation)`, resolving the context once.
pub fn evaluate_all<'s>(
    snapshot: &'s Snapshot,
    ctx: &Context<'_>,
    now_ms: i64,
) -> Vec<(&'s str, Evaluation<'s>)> {
    let resolved = snapshot.resolve(ctx);
    // One `Env` for every flag (building it per flag was ~25 instructions each).
    let env = Env::new(
        snapshot,
        &resolved.ctx,
        Some(resolved.halves()),
        true,
        now_ms,
    );
    snapshot
        .blob
        .body
        .flags
        .iter()
        .enumerate()
        .map(|(index, flag)| (flag.key.as_str(), answer(flag, env.pick(index, flag, 0))))
        .collect()
}

/// The index of the flag with this key (flags are sorted by key).
#[inline(always)]
fn find_flag(snapshot: &Snapshot, key: &str) -> Option<usize> {
    let flags = &snapshot.blob.body.flags;
    // Hashed even for a handful of flags: one short hash and one comparison of equal-length
    // keys beat a binary search's `memcmp` per step (measured: 106 instructions for two flags).
    snapshot
        .prepared
        .flag_index
        .find(key, |i| flags.get(i).map(|flag| flag.key.as_str()))
}

fn not_found<'s>() -> Evaluation<'s> {
    Evaluation {
        value: None,
        variant: None,
        reason: Reason::Error,
        rule: None,
        error: Some(ErrorCode::FlagNotFound),
        error_details: Some("flag not found"),
        metadata: None,
    }
}

#[inline(always)]
fn evaluate_flag<'s, 'c>(
    snapshot: &'s Snapshot,
    index: usize,
    ctx: &Context<'c>,
    resolved: Option<Halves<'_, 'c>>,
    now_ms: i64,
) -> Evaluation<'s> {
    run_flag(snapshot, index, ctx, resolved, true, now_ms)
}

/// The evaluator as it was before flat programs and eagerly resolved contexts: every condition
/// tree walked, every attribute looked up in the context. The reference the fast path is
/// tested against.
#[cfg(test)]
pub(crate) fn evaluate_reference<'s>(
    snapshot: &'s Snapshot,
    index: usize,
    ctx: &Context<'_>,
    now_ms: i64,
) -> Evaluation<'s> {
    run_flag(snapshot, index, ctx, None, false, now_ms)
}

#[inline(always)]
fn run_flag<'s, 'c>(
    snapshot: &'s Snapshot,
    index: usize,
    ctx: &Context<'c>,
    resolved: Option<Halves<'_, 'c>>,
    compiled: bool,
    now_ms: i64,
) -> Evaluation<'s> {
    let Some(flag) = snapshot.blob.body.flags.get(index) else {
        return not_found();
    };
    // A load-time answer needs no `Env` (the fixed per-call cost of a static flag).
    if compiled && let Some(Plan::Fixed(fixed)) = snapshot.prepared.plans.get(index) {
        return answer(flag, fixed.pick());
    }
    let env = Env::new(snapshot, ctx, resolved, compiled, now_ms);
    answer(flag, env.pick(index, flag, 0))
}

/// A context value as milliseconds since the epoch: parsed once per resolved context (its
/// slot), else here.
fn time_of(value: Option<&Value>, slot: Option<&Slot<'_>>) -> Option<f64> {
    match slot {
        Some(slot) => slot.millis,
        None => value.and_then(datetime::value_to_millis),
    }
}

/// The evaluation `pick` stands for, its variant's name and value borrowed from the blob.
#[inline(always)]
fn answer<'s>(flag: &'s Flag, pick: Pick<'s>) -> Evaluation<'s> {
    let variant = pick
        .variant
        .and_then(|id| flag.variants.get(usize::from(id)));
    Evaluation {
        value: variant.map(|v| &v.value),
        variant: variant.map(|v| v.name.as_str()),
        reason: pick.reason,
        rule: pick.rule,
        error: pick.error.map(|(code, _)| code),
        error_details: pick.error.map(|(_, details)| details),
        metadata: Some(&flag.metadata),
    }
}

/// What the decision procedure picked, before it is turned into values.
#[derive(Debug, Clone, Copy)]
struct Pick<'s> {
    variant: Option<VariantId>,
    reason: Reason,
    rule: Option<&'s str>,
    error: Option<(ErrorCode, &'static str)>,
}

impl<'s> Pick<'s> {
    fn serve(variant: VariantId, reason: Reason, rule: Option<&'s str>) -> Self {
        Pick {
            variant: Some(variant),
            reason,
            rule,
            error: None,
        }
    }

    /// The flag's safe default (reason `DEFAULT`); no value when the flag has none.
    fn safe_default(flag: &Flag) -> Self {
        Pick {
            variant: flag.default_variant,
            reason: Reason::Default,
            rule: None,
            error: None,
        }
    }

    /// The safe default, marked as an error.
    fn error(flag: &Flag, code: ErrorCode, details: &'static str, rule: Option<&'s str>) -> Self {
        Pick {
            variant: flag.default_variant,
            reason: Reason::Error,
            rule,
            error: Some((code, details)),
        }
    }
}

/// Everything one evaluation reads. Few fields on purpose: it is built per call, and each
/// field is a load and a store (copying the prepared tables one by one was ~20 instructions).
struct Env<'s, 'c, 'r> {
    body: &'s Body,
    prepared: &'s Prepared,
    ctx: &'r Context<'c>,
    /// Run the flat programs and load-time plans; `false` evaluates every flag by walking its
    /// condition tree (the reference the programs are tested against).
    compiled: bool,
    /// A [`Resolved`] context's slots, or `None`: look attributes up directly.
    resolved: Option<Halves<'r, 'c>>,
    now_ms: i64,
}

impl<'s, 'c, 'r> Env<'s, 'c, 'r> {
    fn new(
        snapshot: &'s Snapshot,
        ctx: &'r Context<'c>,
        resolved: Option<Halves<'r, 'c>>,
        compiled: bool,
        now_ms: i64,
    ) -> Self {
        Env {
            body: &snapshot.blob.body,
            prepared: &snapshot.prepared,
            compiled,
            ctx,
            resolved,
            now_ms,
        }
    }

    /// The decision procedure for flag number `index`. `depth` counts prerequisite levels.
    /// The load-time plan's fast cases are inlined into the caller (one call frame per
    /// evaluation, not three); everything else is [`Env::pick_general`].
    #[inline(always)]
    fn pick(&self, index: usize, flag: &'s Flag, depth: usize) -> Pick<'s> {
        if self.compiled {
            match self.prepared.plans.get(index) {
                Some(Plan::Fixed(fixed)) => return fixed.pick(),
                Some(Plan::Program { entry, permission }) => {
                    // As below: a permission flag is never granted on an unverified identity.
                    if *permission && !self.ctx.identity_signed() {
                        return Pick::safe_default(flag);
                    }
                    return self.run(&self.prepared.programs, *entry as usize, flag);
                }
                _ => {}
            }
        }
        self.pick_general(index, flag, depth)
    }

    /// [`Env::pick`] for the flags without a fast plan (and for the tree-walk reference).
    fn pick_general(&self, index: usize, flag: &'s Flag, depth: usize) -> Pick<'s> {
        // Off or killed: the off variant (none means "the caller's default", flagd's rule).
        if flag.killed || !flag.enabled {
            return Pick {
                variant: flag.off_variant,
                reason: Reason::Disabled,
                rule: None,
                error: None,
            };
        }
        // A permission flag grants access, so it is never granted on an identity the edge could
        // not verify: the safe default, as if no rule matched.
        if flag.kind == FlagKind::Permission && !self.ctx.identity_signed() {
            return Pick::safe_default(flag);
        }
        // Prerequisites: each named flag must be on and serve one of the listed variants,
        // without error. Otherwise this flag's targeting does not run and it serves its safe
        // default with reason DEFAULT (not DISABLED: the flag itself is on, and OpenFeature
        // has no "prerequisite failed" reason).
        for prerequisite in &flag.prerequisites {
            if !self.prerequisite_met(prerequisite.flag, &prerequisite.variants, depth) {
                return Pick::safe_default(flag);
            }
        }
        match &flag.targeting {
            Targeting::Rules { rules, fallthrough } => {
                let programs = &self.prepared.programs;
                if self.compiled
                    && let Some(entry) = programs.entry(index)
                {
                    return self.run(programs, entry as usize, flag);
                }
                let matched = rules
                    .iter()
                    .position(|rule| self.holds(flag, &rule.condition, 1));
                if let Some(rule) = matched.and_then(|i| rules.get(i)) {
                    {
                        return match &rule.serve {
                            Serve::Variant(id) => {
                                Pick::serve(*id, Reason::TargetingMatch, Some(&rule.id))
                            }
                            Serve::Split(split) => self.split(flag, split, Some(&rule.id)),
                        };
                    }
                }
                match fallthrough {
                    // With no rules at all the value cannot vary: STATIC. Otherwise DEFAULT.
                    Serve::Variant(id) => Pick::serve(
                        *id,
                        if rules.is_empty() {
                            Reason::Static
                        } else {
                            Reason::Default
                        },
                        None,
                    ),
                    Serve::Split(split) => self.split(flag, split, None),
                }
            }
            Targeting::Logic(expr) => {
                match logic::evaluate_targeting(expr, flag, self.body, self.ctx, self.now_ms) {
                    logic::Outcome::Variant(id, reason) => Pick::serve(id, reason, None),
                    logic::Outcome::Default => Pick::safe_default(flag),
                    logic::Outcome::Error(code, details) => Pick::error(flag, code, details, None),
                }
            }
        }
    }

    fn prerequisite_met(&self, flag_id: u32, variants: &[VariantId], depth: usize) -> bool {
        let Some((index, flag)) = usize::try_from(flag_id)
            .ok()
            .and_then(|i| Some((i, self.body.flags.get(i)?)))
        else {
            return false;
        };
        // The load-time check bounds chains by MAX_PREREQUISITE_DEPTH; this is belt and braces.
        if depth >= check::MAX_PREREQUISITE_DEPTH || flag.killed || !flag.enabled {
            return false;
        }
        let pick = self.pick(index, flag, depth + 1);
        pick.error.is_none() && pick.variant.is_some_and(|v| variants.contains(&v))
    }

    /// Whether `condition` holds; `level` is its nesting depth (bounded at load time).
    fn holds(&self, flag: &Flag, condition: &Condition, level: usize) -> bool {
        if level > MAX_RULE_DEPTH {
            return false;
        }
        match condition {
            Condition::All(items) => items.iter().all(|c| self.holds(flag, c, level + 1)),
            Condition::Any(items) => items.iter().any(|c| self.holds(flag, c, level + 1)),
            Condition::Not(inner) => !self.holds(flag, inner, level + 1),
            Condition::Segment(id) => usize::try_from(*id)
                .ok()
                .and_then(|i| self.body.segments.get(i))
                .is_some_and(|segment| self.holds(flag, &segment.condition, level + 1)),
            Condition::Test(test) => {
                let allow_unsigned = flag.unsigned_attrs.contains(&test.attr);
                let (value, slot) = self.attr_slot(test.attr, allow_unsigned);
                if let (Op::SemVer(cmp, wanted), Some(slot)) = (&test.op, slot) {
                    // As `ops::holds` decides it (missing, null or not a string: false), with
                    // the parse shared by every flag on this resolved context.
                    return slot
                        .semver
                        .as_ref()
                        .is_some_and(|actual| semver::compare(actual, *cmp, wanted));
                }
                ops::holds(
                    &test.op,
                    value,
                    self.body,
                    &self.prepared.regexes,
                    &self.prepared.list_indexes,
                )
            }
        }
    }

    /// Runs a flag's program from `pc` to the answer it serves. Every jump goes forward, so
    /// this visits each instruction at most once.
    #[inline(always)]
    fn run(&self, programs: &'s Programs, mut pc: usize, flag: &'s Flag) -> Pick<'s> {
        let code = programs.code();
        for _ in 0..code.len() {
            match code.get(pc) {
                Some(Instr::Test {
                    attr,
                    unsigned,
                    check,
                    then,
                    otherwise,
                }) => {
                    let holds = self.check(*attr, *unsigned, check);
                    pc = *if holds { then } else { otherwise } as usize;
                }
                Some(Instr::Serve { rule, serve }) => {
                    let rule = match (*rule, &flag.targeting) {
                        (NO_RULE, _) => None,
                        (rule, Targeting::Rules { rules, .. }) => {
                            rules.get(rule as usize).map(|r| r.id.as_str())
                        }
                        _ => None,
                    };
                    return match serve {
                        Served::Variant(variant, reason) => Pick::serve(*variant, *reason, rule),
                        Served::Split(split) => match programs.split(*split) {
                            Some(split) => self.split_code(flag, split, rule),
                            None => Pick::error(flag, ErrorCode::General, "no such split", rule),
                        },
                    };
                }
                None => break,
            }
        }
        // Unreachable for a compiled program (every path ends in a serve); still no panic.
        Pick::error(flag, ErrorCode::General, "program without an end", None)
    }

    /// One program test: the same answer as `ops::holds` on the operator it was compiled from.
    /// On a resolved context, string and list tests compare the slot's interned text id.
    #[inline(always)]
    fn check(&self, attr: u32, allow_unsigned: bool, check: &Check) -> bool {
        let (value, slot) = self.attr_slot(attr, allow_unsigned);
        match check {
            Check::StrEq { id, text } => match slot {
                Some(slot) => slot.text == *id,
                None => value.and_then(Value::as_str) == Some(text.as_str()),
            },
            Check::StrNe { id, text } => match slot {
                Some(slot) => slot.text != *id,
                None => value.and_then(Value::as_str) != Some(text.as_str()),
            },
            // A `match`, not `is_some_and`: the closure was not inlined (~15 instructions).
            Check::SemVer(cmp, wanted) => match slot {
                Some(Slot {
                    semver: Some(actual),
                    ..
                }) => semver::compare(actual, *cmp, wanted),
                Some(_) => false,
                None => value
                    .and_then(Value::as_str)
                    .and_then(parse_semver)
                    .is_some_and(|actual| semver::compare(&actual, *cmp, wanted)),
            },
            // As `ops::holds` decides them, with the parse shared on a resolved context.
            Check::Before(ms) => time_of(value, slot).is_some_and(|t| t < *ms as f64),
            Check::After(ms) => time_of(value, slot).is_some_and(|t| t > *ms as f64),
            Check::In(list) => match slot {
                Some(slot) => self.prepared.texts.in_list(slot.text, *list),
                None => value.is_some_and(|v| {
                    ops::in_list(v, self.body, &self.prepared.list_indexes, *list)
                }),
            },
            Check::NotIn(list) => !match slot {
                Some(slot) => self.prepared.texts.in_list(slot.text, *list),
                None => value.is_some_and(|v| {
                    ops::in_list(v, self.body, &self.prepared.list_indexes, *list)
                }),
            },
            // As `ops::holds` decides them (`null` is no number and no string).
            Check::Num(cmp, bound) => value.and_then(Value::as_f64).is_some_and(|n| match cmp {
                NumCmp::Lt => n < *bound,
                NumCmp::Le => n <= *bound,
                NumCmp::Gt => n > *bound,
                NumCmp::Ge => n >= *bound,
            }),
            Check::Exists => value.is_some_and(|v| !v.is_null()),
            Check::StartsWith(prefix) => value
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with(prefix.as_str())),
            Check::EndsWith(suffix) => value
                .and_then(Value::as_str)
                .is_some_and(|s| s.ends_with(suffix.as_str())),
            Check::Op(op) => ops::holds(
                op,
                value,
                self.body,
                &self.prepared.regexes,
                &self.prepared.list_indexes,
            ),
        }
    }

    /// The attribute's value (signed first, then unsigned if allowed), and on a resolved
    /// context the slot it came from (where its parsed version is).
    #[inline(always)]
    fn attr_slot(
        &self,
        id: u32,
        allow_unsigned: bool,
    ) -> (Option<&'c Value>, Option<&'r Slot<'c>>) {
        let index = id as usize;
        let Some((signed, unsigned)) = self.resolved else {
            let value = self
                .body
                .attrs
                .get(index)
                .and_then(|path| self.ctx.lookup(path, allow_unsigned));
            return (value, None);
        };
        let Some(slot) = signed.get(index) else {
            return (None, None);
        };
        if slot.value.is_some() || !allow_unsigned {
            return (slot.value, Some(slot));
        }
        match unsigned.get(index) {
            Some(slot) => (slot.value, Some(slot)),
            None => (None, None),
        }
    }

    /// Buckets the context by `split.bucket_by` and picks the variant whose cumulative weight
    /// first exceeds the bucket. A string is hashed as is, a number in its canonical text (the
    /// same as for `in` lists); anything else counts as missing.
    fn split(&self, flag: &Flag, split: &Split, rule: Option<&'s str>) -> Pick<'s> {
        let path = usize::try_from(split.bucket_by)
            .ok()
            .and_then(|i| self.body.attrs.get(i));
        let is_targeting_key = path.is_some_and(|p| is_targeting_key(p));
        let value = path.and_then(|_| {
            let allow_unsigned = split_reads_unsigned(flag, split.bucket_by, is_targeting_key);
            self.attr_slot(split.bucket_by, allow_unsigned).0
        });
        // Only numbers need the buffer (not zeroed for strings: this runs per split).
        let mut number;
        let text = match value {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(Value::Number(n)) => {
                number = ops::StackStr::new();
                ops::write_canonical_number(&mut number, n)
                    .ok()
                    .map(|()| number.as_str())
            }
            _ => None,
        };
        let Some(text) = text else {
            return if is_targeting_key {
                Pick::error(
                    flag,
                    ErrorCode::TargetingKeyMissing,
                    "a percentage split needs the targeting key",
                    rule,
                )
            } else {
                Pick::error(
                    flag,
                    ErrorCode::General,
                    "the attribute a percentage split buckets by is missing",
                    rule,
                )
            };
        };
        let bucket = bucket::bucket(bucket::salt(flag), text);
        let mut cumulative = 0u64;
        for (variant, weight) in &split.weights {
            cumulative += u64::from(*weight);
            if u64::from(bucket) < cumulative {
                return Pick::serve(*variant, Reason::Split, rule);
            }
        }
        // Unreachable for a checked blob (weights sum to BUCKETS); still no panic.
        Pick::error(
            flag,
            ErrorCode::General,
            "split weights do not cover every bucket",
            rule,
        )
    }

    /// [`Env::split`] for a split compiled at load time: the same answer, with only the
    /// attribute read and the hash left per evaluation.
    #[inline(always)]
    fn split_code(&self, flag: &Flag, split: &SplitCode, rule: Option<&'s str>) -> Pick<'s> {
        let (value, _) = self.attr_slot(split.attr, split.unsigned);
        let mut number;
        let text = match value {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(Value::Number(n)) => {
                number = ops::StackStr::new();
                ops::write_canonical_number(&mut number, n)
                    .ok()
                    .map(|()| number.as_str())
            }
            _ => None,
        };
        let Some(text) = text else {
            return if split.targeting_key {
                Pick::error(
                    flag,
                    ErrorCode::TargetingKeyMissing,
                    "a percentage split needs the targeting key",
                    rule,
                )
            } else {
                Pick::error(
                    flag,
                    ErrorCode::General,
                    "the attribute a percentage split buckets by is missing",
                    rule,
                )
            };
        };
        let bucket = u64::from(bucket::bucket_salted(&split.salted, text));
        match split.bounds.iter().find(|(bound, _)| bucket < *bound) {
            Some((_, variant)) => Pick::serve(*variant, Reason::Split, rule),
            None => Pick::error(
                flag,
                ErrorCode::General,
                "split weights do not cover every bucket",
                rule,
            ),
        }
    }
}

/// Whether an attribute path is the targeting key.
pub(crate) fn is_targeting_key(path: &[String]) -> bool {
    matches!(path, [name] if name == crate::claims::TARGETING_KEY)
}
