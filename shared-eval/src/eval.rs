//! The evaluator: one flag (or all of them) for one context, as data, never an error.
//!
//! Order of decisions for a flag (each step documented where it happens):
//! 1. unknown key: no value, `ERROR` / `FLAG_NOT_FOUND`;
//! 2. killed or disabled: the off variant, `DISABLED`;
//! 3. a permission flag on an unsigned identity: the safe default, `DEFAULT`;
//! 4. a prerequisite not met: the safe default, `DEFAULT`;
//! 5. the targeting: native rules in order, then the fallthrough (or flagd's JSONLogic).
//!
//! Nothing here allocates or panics: the result borrows from the snapshot, and every index was
//! checked when the snapshot was loaded (and is still read with `.get()`).

use alloc::{string::String, vec::Vec};
use serde_json::{Map, Value};

use crate::{
    Body, Condition, Context, Flag, FlagKind, MAX_RULE_DEPTH, Serve, Snapshot, Split, Targeting,
    ValueType, VariantId, bucket, check, logic, ops, regex::CompiledRegex,
};

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

/// Per-snapshot data derived at load time: the compiled regexes.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    regexes: Vec<CompiledRegex>,
}

impl Prepared {
    /// Checks the body (see [`crate::check`]) and compiles its regexes.
    pub(crate) fn new(body: &Body) -> Result<Prepared, String> {
        check::check_body(body)?;
        let mut regexes = Vec::with_capacity(body.regexes.len());
        for (i, src) in body.regexes.iter().enumerate() {
            regexes
                .push(CompiledRegex::new(src).map_err(|why| alloc::format!("regex #{i}: {why}"))?);
        }
        Ok(Prepared { regexes })
    }
}

/// Evaluates one flag. `now_ms` is the current time in milliseconds since the Unix epoch.
pub fn evaluate<'s>(
    snapshot: &'s Snapshot,
    key: &str,
    ctx: &Context<'_>,
    now_ms: i64,
) -> Evaluation<'s> {
    let flags = &snapshot.blob.body.flags;
    match flags.binary_search_by(|flag| flag.key.as_str().cmp(key)) {
        Ok(index) => match flags.get(index) {
            Some(flag) => evaluate_flag(snapshot, flag, ctx, now_ms),
            None => not_found(),
        },
        Err(_) => not_found(),
    }
}

/// Evaluates every flag, in key order, as `(key, evaluation)`.
pub fn evaluate_all<'s>(
    snapshot: &'s Snapshot,
    ctx: &Context<'_>,
    now_ms: i64,
) -> Vec<(&'s str, Evaluation<'s>)> {
    snapshot
        .blob
        .body
        .flags
        .iter()
        .map(|flag| {
            (
                flag.key.as_str(),
                evaluate_flag(snapshot, flag, ctx, now_ms),
            )
        })
        .collect()
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

fn evaluate_flag<'s>(
    snapshot: &'s Snapshot,
    flag: &'s Flag,
    ctx: &Context<'_>,
    now_ms: i64,
) -> Evaluation<'s> {
    let env = Env {
        body: &snapshot.blob.body,
        regexes: &snapshot.prepared.regexes,
        ctx,
        now_ms,
    };
    let pick = env.pick(flag, 0);
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

/// Everything one evaluation reads.
struct Env<'s, 'c> {
    body: &'s Body,
    regexes: &'s [CompiledRegex],
    ctx: &'c Context<'c>,
    now_ms: i64,
}

impl<'s, 'c> Env<'s, 'c> {
    /// The decision procedure for one flag. `depth` counts prerequisite levels.
    fn pick(&self, flag: &'s Flag, depth: usize) -> Pick<'s> {
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
                for rule in rules {
                    if self.holds(flag, &rule.condition, 1) {
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
        let Some(flag) = usize::try_from(flag_id)
            .ok()
            .and_then(|i| self.body.flags.get(i))
        else {
            return false;
        };
        // The load-time check bounds chains by MAX_PREREQUISITE_DEPTH; this is belt and braces.
        if depth >= check::MAX_PREREQUISITE_DEPTH || flag.killed || !flag.enabled {
            return false;
        }
        let pick = self.pick(flag, depth + 1);
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
            Condition::Test(test) => ops::holds(
                &test.op,
                self.attr(flag, test.attr),
                self.body,
                self.regexes,
            ),
        }
    }

    /// The attribute's value in the context, read from unsigned attributes only when the flag
    /// allows it for this attribute.
    fn attr(&self, flag: &Flag, id: u32) -> Option<&'c Value> {
        let path = usize::try_from(id)
            .ok()
            .and_then(|i| self.body.attrs.get(i))?;
        let allow_unsigned = flag.unsigned_attrs.contains(&id);
        self.ctx.lookup(path, allow_unsigned)
    }

    /// Buckets the context by `split.bucket_by` and picks the variant whose cumulative weight
    /// first exceeds the bucket. A string is hashed as is, a number in its canonical text (the
    /// same as for `in` lists); anything else counts as missing.
    fn split(&self, flag: &Flag, split: &Split, rule: Option<&'s str>) -> Pick<'s> {
        let path = usize::try_from(split.bucket_by)
            .ok()
            .and_then(|i| self.body.attrs.get(i));
        let value = path.and_then(|_| self.attr(flag, split.bucket_by));
        let mut number = ops::StackStr::new();
        let text = match value {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(Value::Number(n)) => ops::write_canonical_number(&mut number, n)
                .ok()
                .map(|()| number.as_str()),
            _ => None,
        };
        let Some(text) = text else {
            let is_targeting_key = path
                .is_some_and(|p| p.len() == 1 && p.first().is_some_and(|s| s == "targetingKey"));
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
        let salt = if flag.salt.is_empty() {
            flag.key.as_str()
        } else {
            flag.salt.as_str()
        };
        let bucket = bucket::bucket(salt, text);
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
}
