//! Native flags' rules compiled at load time into one flat program per flag: a list of tests,
//! each jumping forward to the next test, to "rule N matched" or to "no rule matched". The
//! evaluator runs it in a loop: no recursion over the condition tree, no segment lookups
//! (segments are inlined), and each test's operator specialised where that pays (string
//! equality, versions compared against a context value parsed once per request).
//!
//! The tree walk in `eval.rs` stays the definition: it still evaluates flags whose program
//! would exceed [`MAX_PROGRAM_LEN`] (heavy segment reuse) and flagd's JSONLogic, and a property
//! test checks that both agree on random flags and contexts.
//!
//! Bounds: a program has at most [`MAX_PROGRAM_LEN`] instructions, so the programs of a blob
//! take memory proportional to its number of flags; every jump goes forward (checked when the
//! labels are resolved), so a run visits each instruction at most once.

use alloc::{string::String, vec::Vec};

use crate::{
    Body, Condition, Flag, MAX_RULE_DEPTH, Op, Reason, SemVer, SemVerCmp, Serve, Targeting,
    VariantId,
    bucket::{self, Salted},
    intern::Texts,
};
use serde_json::Value;

/// Most instructions one flag's program may have; a flag that needs more keeps the tree walk.
/// Realistic flags need a handful; only segment reuse (inlined at every use) gets near this.
pub(crate) const MAX_PROGRAM_LEN: usize = 256;

/// One step of a program.
#[derive(Debug, Clone)]
pub(crate) enum Instr {
    /// Test an attribute, then continue at `then` or `otherwise` (both further on).
    Test {
        attr: u32,
        /// The flag may read this attribute from the unsigned part of the context.
        unsigned: bool,
        check: Check,
        then: u32,
        otherwise: u32,
    },
    /// The end of the program: rule number `rule` matched ([`NO_RULE`]: none did, the
    /// fallthrough serves), and what it serves.
    Serve { rule: u32, serve: Served },
}

/// [`Instr::Serve`]'s `rule` when no rule matched.
pub(crate) const NO_RULE: u32 = u32::MAX;

/// What a program's end serves, decided at load time.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Served {
    /// This variant, for this reason.
    Variant(VariantId, Reason),
    /// The split number `.0` of [`Programs::splits`].
    Split(u32),
}

/// A percentage split with everything but the hash decided at load time: the attribute's
/// slot, whether the flag may read it unsigned, and the variants' cumulative bounds.
#[derive(Debug, Clone)]
pub(crate) struct SplitCode {
    pub(crate) attr: u32,
    pub(crate) unsigned: bool,
    /// The attribute is the targeting key (its absence is `TARGETING_KEY_MISSING`).
    pub(crate) targeting_key: bool,
    /// `(bound, variant)`: a bucket below `bound` (and not below an earlier one) serves it.
    pub(crate) bounds: Vec<(u64, VariantId)>,
    /// The flag's salt already hashed (a split hashes only the value per evaluation).
    pub(crate) salted: Salted,
}

/// What a [`Instr::Test`] checks. Same semantics as `ops::holds` for the operator it came from.
#[derive(Debug, Clone)]
pub(crate) enum Check {
    /// `equals` a string operand (interned as `id`): true only for that exact string. On a
    /// resolved context, one compare of the slot's text id.
    StrEq { id: u32, text: String },
    /// `not_equals` a string operand.
    StrNe { id: u32, text: String },
    /// A semver comparison, against the context value parsed once per resolved context.
    SemVer(SemVerCmp, SemVer),
    /// `before` this many milliseconds since the epoch, against the context value parsed once
    /// per resolved context.
    Before(i64),
    /// `after` (as `Before`).
    After(i64),
    /// `in` list number `.0`: on a resolved context, the lists of the slot's text id scanned;
    /// otherwise the list's hash index probed directly (no operator dispatch).
    In(u32),
    /// `not_in` list number `.0`.
    NotIn(u32),
    /// `lt` / `le` / `gt` / `ge` a number: the value read as a number and compared, without
    /// the operator dispatch.
    Num(NumCmp, f64),
    /// `exists`: present and not `null`.
    Exists,
    /// `starts_with` a string.
    StartsWith(String),
    /// `ends_with` a string.
    EndsWith(String),
    /// Any other operator, through `ops::holds`.
    Op(Op),
}

/// A numeric comparison of [`Check::Num`]: `value cmp operand`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NumCmp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// The programs of every flag of a blob, indexed like `body.flags`.
#[derive(Debug, Default)]
pub(crate) struct Programs {
    code: Vec<Instr>,
    /// Per flag: the pc its program starts at, or `None` (tree walk).
    entry: Vec<Option<u32>>,
    splits: Vec<SplitCode>,
}

impl Programs {
    /// Compiles every native flag of a checked body; string operands and lists become
    /// interned ids when `texts` has them all.
    pub(crate) fn new(body: &Body, texts: &Texts) -> Programs {
        let mut programs = Programs::default();
        for flag in &body.flags {
            let compiler = Compiler::new(
                body,
                flag,
                texts,
                programs.code.len(),
                programs.splits.len(),
            );
            let entry = compiler.compile().map(|(code, splits, entry)| {
                programs.code.extend(code);
                programs.splits.extend(splits);
                entry
            });
            programs.entry.push(entry);
        }
        programs
    }

    /// The pc flag `index`'s program starts at.
    pub(crate) fn entry(&self, index: usize) -> Option<u32> {
        self.entry.get(index).copied().flatten()
    }

    /// Every program's code (jumps are absolute pcs into it).
    pub(crate) fn code(&self) -> &[Instr] {
        &self.code
    }

    /// Split number `id` (see [`Served::Split`]).
    pub(crate) fn split(&self, id: u32) -> Option<&SplitCode> {
        self.splits.get(id as usize)
    }
}

/// A jump target, resolved to a pc once the whole program is emitted.
type Label = u32;

#[derive(Debug, Clone, Copy)]
enum Bind {
    Unbound,
    Pc(u32),
    /// Same place as another label.
    Alias(Label),
}

struct Compiler<'b> {
    body: &'b Body,
    flag: &'b Flag,
    texts: &'b Texts,
    /// Where this program will sit in [`Programs::code`].
    base: usize,
    /// Where its splits will sit in [`Programs::splits`].
    split_base: usize,
    code: Vec<Instr>,
    splits: Vec<SplitCode>,
    labels: Vec<Bind>,
}

/// Compilation gave up: the flag keeps the tree walk.
struct TooBig;

impl<'b> Compiler<'b> {
    fn new(
        body: &'b Body,
        flag: &'b Flag,
        texts: &'b Texts,
        base: usize,
        split_base: usize,
    ) -> Self {
        Compiler {
            body,
            flag,
            texts,
            base,
            split_base,
            code: Vec::new(),
            splits: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// The program (jumps resolved to absolute pcs), its splits and its entry pc.
    fn compile(mut self) -> Option<(Vec<Instr>, Vec<SplitCode>, u32)> {
        let Targeting::Rules { rules, fallthrough } = &self.flag.targeting else {
            return None;
        };
        let first = self.label();
        let mut next = first;
        for (i, rule) in rules.iter().enumerate() {
            let matched = self.label();
            let after = self.label();
            let entry = self.condition(&rule.condition, matched, after, 1).ok()?;
            self.alias(next, entry);
            self.bind_here(matched);
            let serve = self.served(&rule.serve, Reason::TargetingMatch)?;
            let rule = u32::try_from(i).ok().filter(|i| *i != NO_RULE)?;
            self.emit(Instr::Serve { rule, serve }).ok()?;
            next = after;
        }
        self.bind_here(next);
        // With no rules at all the value cannot vary: STATIC. Otherwise DEFAULT.
        let reason = if rules.is_empty() {
            Reason::Static
        } else {
            Reason::Default
        };
        let serve = self.served(fallthrough, reason)?;
        self.emit(Instr::Serve {
            rule: NO_RULE,
            serve,
        })
        .ok()?;
        self.resolve(first)
    }

    /// A rule's (or the fallthrough's) serve, its split compiled.
    fn served(&mut self, serve: &Serve, reason: Reason) -> Option<Served> {
        let split = match serve {
            Serve::Variant(id) => return Some(Served::Variant(*id, reason)),
            Serve::Split(split) => split,
        };
        let targeting_key = self
            .body
            .attrs
            .get(split.bucket_by as usize)
            .is_some_and(|p| crate::eval::is_targeting_key(p));
        let mut bounds = Vec::with_capacity(split.weights.len());
        let mut cumulative = 0u64;
        for (variant, weight) in &split.weights {
            cumulative += u64::from(*weight);
            bounds.push((cumulative, *variant));
        }
        let id = u32::try_from(self.split_base + self.splits.len()).ok()?;
        self.splits.push(SplitCode {
            attr: split.bucket_by,
            unsigned: crate::eval::split_reads_unsigned(self.flag, split.bucket_by, targeting_key),
            targeting_key,
            bounds,
            salted: bucket::salted_hasher(bucket::salt(self.flag)),
        });
        Some(Served::Split(id))
    }

    fn label(&mut self) -> Label {
        self.labels.push(Bind::Unbound);
        (self.labels.len() - 1) as Label
    }

    fn alias(&mut self, label: Label, to: Label) {
        if label != to
            && let Some(bind) = self.labels.get_mut(label as usize)
        {
            *bind = Bind::Alias(to);
        }
    }

    fn bind_here(&mut self, label: Label) {
        let pc = self.code.len() as u32;
        if let Some(bind) = self.labels.get_mut(label as usize) {
            *bind = Bind::Pc(pc);
        }
    }

    fn emit(&mut self, instr: Instr) -> Result<(), TooBig> {
        if self.code.len() >= MAX_PROGRAM_LEN {
            return Err(TooBig);
        }
        self.code.push(instr);
        Ok(())
    }

    /// Emits `condition`, continuing at `then` when it holds and at `otherwise` when not;
    /// returns the label of its first instruction (`then`/`otherwise` itself when it emits
    /// nothing, as an empty `all`/`any` does).
    fn condition(
        &mut self,
        condition: &Condition,
        then: Label,
        otherwise: Label,
        level: usize,
    ) -> Result<Label, TooBig> {
        // The tree walk treats a condition nested deeper than this as false.
        if level > MAX_RULE_DEPTH {
            return Ok(otherwise);
        }
        match condition {
            Condition::All(items) | Condition::Any(items) => {
                let all = matches!(condition, Condition::All(_));
                let Some((last, init)) = items.split_last() else {
                    return Ok(if all { then } else { otherwise });
                };
                let entry = self.label();
                let mut current = entry;
                for item in init {
                    let next = self.label();
                    let (t, f) = if all { (next, otherwise) } else { (then, next) };
                    let start = self.condition(item, t, f, level + 1)?;
                    self.alias(current, start);
                    current = next;
                }
                let start = self.condition(last, then, otherwise, level + 1)?;
                self.alias(current, start);
                Ok(entry)
            }
            Condition::Not(inner) => self.condition(inner, otherwise, then, level + 1),
            Condition::Segment(id) => {
                match self.body.segments.get(*id as usize) {
                    Some(segment) => self.condition(&segment.condition, then, otherwise, level + 1),
                    // A dangling segment is false (the check refuses it anyway).
                    None => Ok(otherwise),
                }
            }
            Condition::Test(test) => {
                // Interned operands only when every text has an id (a resolved slot's id
                // then decides the test); otherwise the operator as written.
                let interned = self.texts.complete();
                let string_id = |s: &str| self.texts.id(s).filter(|_| interned);
                let check = match &test.op {
                    Op::Equals(Value::String(s)) => match string_id(s) {
                        Some(id) => Check::StrEq {
                            id,
                            text: s.clone(),
                        },
                        None => Check::Op(test.op.clone()),
                    },
                    Op::NotEquals(Value::String(s)) => match string_id(s) {
                        Some(id) => Check::StrNe {
                            id,
                            text: s.clone(),
                        },
                        None => Check::Op(test.op.clone()),
                    },
                    Op::SemVer(cmp, wanted) => Check::SemVer(*cmp, wanted.clone()),
                    Op::Before(ms) => Check::Before(*ms),
                    Op::After(ms) => Check::After(*ms),
                    Op::Lt(bound) => Check::Num(NumCmp::Lt, *bound),
                    Op::Le(bound) => Check::Num(NumCmp::Le, *bound),
                    Op::Gt(bound) => Check::Num(NumCmp::Gt, *bound),
                    Op::Ge(bound) => Check::Num(NumCmp::Ge, *bound),
                    Op::Exists => Check::Exists,
                    Op::StartsWith(prefix) => Check::StartsWith(prefix.clone()),
                    Op::EndsWith(suffix) => Check::EndsWith(suffix.clone()),
                    Op::In(list) if interned => Check::In(*list),
                    Op::NotIn(list) if interned => Check::NotIn(*list),
                    op => Check::Op(op.clone()),
                };
                let entry = self.label();
                self.bind_here(entry);
                self.emit(Instr::Test {
                    attr: test.attr,
                    unsigned: self.flag.unsigned_attrs.contains(&test.attr),
                    check,
                    then,
                    otherwise,
                })?;
                Ok(entry)
            }
        }
    }

    /// The pc a label stands for (aliases followed, a bounded number of steps).
    fn pc_of(&self, label: Label) -> Option<u32> {
        let mut at = label;
        for _ in 0..=self.labels.len() {
            match self.labels.get(at as usize)? {
                Bind::Pc(pc) => return Some(*pc),
                Bind::Alias(to) => at = *to,
                Bind::Unbound => return None,
            }
        }
        None
    }

    /// Replaces labels by absolute pcs; refuses anything but forward jumps.
    fn resolve(mut self, entry: Label) -> Option<(Vec<Instr>, Vec<SplitCode>, u32)> {
        let base = u32::try_from(self.base).ok()?;
        let absolute = |pc: u32| base.checked_add(pc);
        let mut code = core::mem::take(&mut self.code);
        for (pc, instr) in code.iter_mut().enumerate() {
            if let Instr::Test {
                then, otherwise, ..
            } = instr
            {
                let (t, f) = (self.pc_of(*then)?, self.pc_of(*otherwise)?);
                if t as usize <= pc || f as usize <= pc {
                    return None;
                }
                *then = absolute(t)?;
                *otherwise = absolute(f)?;
            }
        }
        let entry = absolute(self.pc_of(entry)?)?;
        Some((code, self.splits, entry))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{
        Blob, Context, Header, Rule, Segment, Serve, Snapshot, Split, Test, ValueType, Variant,
        eval::evaluate_reference, evaluate, evaluate_all, evaluate_resolved, parse_semver,
    };
    use alloc::{boxed::Box, format, string::ToString, vec, vec::Vec};
    use proptest::prelude::*;
    use serde_json::{Map, json};

    /// Longer than the 32 bytes the hash index compares inline.
    const LONG: &str = "a-string-longer-than-thirty-two-bytes";

    const ATTRS: &[&[&str]] = &[
        &["targetingKey"],
        &["plan"],
        &["country"],
        &["v"],
        &["user", "age"],
        &["user", "plan"],
        &["n"],
    ];

    fn header() -> Header {
        Header {
            environment: "test".into(),
            version: 1,
            previous: None,
            content_hash: String::new(),
            author: "proptest".into(),
            source_commit: None,
            created_at: "2024-01-01T00:00:00Z".into(),
        }
    }

    fn operand() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..50).prop_map(Value::from),
            Just(json!(2.5)),
            prop::sample::select(&["premium", "free", "DE", "ann", "", "2.3.0", "42", LONG][..])
                .prop_map(Value::from),
            Just(json!(["a", 1])),
            Just(json!({"a": 1})),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        let version = prop::sample::select(&["2.3.0", "1.0.0-rc.1", "0.9.9", "10.0.0"][..])
            .prop_map(|v| parse_semver(v).unwrap_or_default_version());
        let cmp = prop_oneof![
            Just(SemVerCmp::Eq),
            Just(SemVerCmp::Ne),
            Just(SemVerCmp::Lt),
            Just(SemVerCmp::Le),
            Just(SemVerCmp::Gt),
            Just(SemVerCmp::Ge),
            Just(SemVerCmp::Caret),
            Just(SemVerCmp::Tilde),
        ];
        prop_oneof![
            3 => operand().prop_map(Op::Equals),
            2 => operand().prop_map(Op::NotEquals),
            1 => (0u32..2).prop_map(Op::In),
            1 => (0u32..2).prop_map(Op::NotIn),
            1 => operand().prop_map(Op::Contains),
            1 => prop::sample::select(&["pre", "", "a"][..]).prop_map(|s| Op::StartsWith(s.into())),
            1 => prop::sample::select(&["um", "e"][..]).prop_map(|s| Op::EndsWith(s.into())),
            1 => Just(Op::Matches(0)),
            1 => (-5.0f64..60.0).prop_map(Op::Lt),
            1 => (-5.0f64..60.0).prop_map(Op::Le),
            1 => (-5.0f64..60.0).prop_map(Op::Gt),
            1 => (-5.0f64..60.0).prop_map(Op::Ge),
            2 => (cmp, version).prop_map(|(c, v)| Op::SemVer(c, v)),
            1 => Just(Op::Before(1_704_067_200_000)),
            1 => Just(Op::After(1_704_067_200_000)),
            1 => Just(Op::Exists),
        ]
    }

    trait OrDefault {
        fn unwrap_or_default_version(self) -> SemVer;
    }
    impl OrDefault for Option<SemVer> {
        fn unwrap_or_default_version(self) -> SemVer {
            self.unwrap_or(SemVer {
                major: 0,
                minor: 0,
                patch: 0,
                pre: Vec::new(),
            })
        }
    }

    fn condition(segments: u32) -> impl Strategy<Value = Condition> {
        let test =
            (0..ATTRS.len() as u32, op()).prop_map(|(attr, op)| Condition::Test(Test { attr, op }));
        let leaf = if segments == 0 {
            test.boxed()
        } else {
            prop_oneof![4 => test, 1 => (0..segments).prop_map(Condition::Segment)].boxed()
        };
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Condition::All),
                prop::collection::vec(inner.clone(), 0..4).prop_map(Condition::Any),
                inner.prop_map(|c| Condition::Not(Box::new(c))),
            ]
        })
    }

    fn serve() -> impl Strategy<Value = Serve> {
        prop_oneof![
            (0u16..2).prop_map(Serve::Variant),
            (prop_oneof![Just(0u32), Just(6u32)], 0u32..=100_000).prop_map(|(by, w)| {
                Serve::Split(Split {
                    bucket_by: by,
                    weights: vec![(0, w), (1, 100_000 - w)],
                })
            }),
        ]
    }

    pub(crate) fn body() -> impl Strategy<Value = Body> {
        let segments = (condition(0), condition(1), condition(2));
        let flag = (
            prop::collection::vec((condition(3), serve()), 0..4),
            serve(),
            prop::collection::vec(0..ATTRS.len() as u32, 0..3),
            any::<bool>(),
            0u8..8,
            any::<bool>(),
        );
        (segments, prop::collection::vec(flag, 1..4)).prop_map(|((s0, s1, s2), flags)| {
            let flags: Vec<Flag> = flags
                .into_iter()
                .enumerate()
                .map(
                    |(i, (rules, fallthrough, unsigned, permission, prereq, signed_only))| Flag {
                        key: format!("f{i}"),
                        kind: if permission {
                            crate::FlagKind::Permission
                        } else {
                            crate::FlagKind::Release
                        },
                        value_type: ValueType::Boolean,
                        variants: vec![
                            Variant {
                                name: "on".into(),
                                value: json!(true),
                            },
                            Variant {
                                name: "off".into(),
                                value: json!(false),
                            },
                        ],
                        default_variant: Some(1),
                        off_variant: Some(1),
                        enabled: true,
                        killed: false,
                        prerequisites: if i > 0 && prereq == 0 {
                            vec![crate::Prerequisite {
                                flag: 0,
                                variants: vec![0],
                            }]
                        } else {
                            Vec::new()
                        },
                        targeting: Targeting::Rules {
                            rules: rules
                                .into_iter()
                                .enumerate()
                                .map(|(r, (condition, serve))| Rule {
                                    id: r.to_string(),
                                    condition,
                                    serve,
                                })
                                .collect(),
                            fallthrough,
                        },
                        salt: String::new(),
                        unsigned_attrs: {
                            let mut u = unsigned;
                            u.sort();
                            u.dedup();
                            u
                        },
                        signed_bucketing_only: signed_only,
                        metadata: Map::new(),
                    },
                )
                .collect();
            Body {
                attrs: ATTRS
                    .iter()
                    .map(|p| p.iter().map(|s| s.to_string()).collect())
                    .collect(),
                lists: vec![
                    vec!["DE".into(), "FR".into(), "US".into()],
                    vec!["1".into(), "42".into(), LONG.into(), "ann".into()],
                ],
                regexes: vec![crate::regex::compile_regex("^a").unwrap()],
                segments: [s0, s1, s2]
                    .into_iter()
                    .enumerate()
                    .map(|(i, condition)| Segment {
                        key: format!("s{i}"),
                        condition,
                    })
                    .collect(),
                eval_order: (0..flags.len() as u32).collect(),
                flags,
            }
        })
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..50).prop_map(Value::from),
            Just(json!(42.0)),
            // Epoch milliseconds and seconds either side of the `before`/`after` operand.
            prop::sample::select(&[1_704_067_200_001i64, 1_704_067_199i64][..])
                .prop_map(Value::from),
            prop::sample::select(
                &[
                    "premium",
                    "free",
                    "DE",
                    "US",
                    "ann",
                    "",
                    "2.3.0",
                    "2.4.1",
                    "v10.0.0",
                    "1.0.0-rc.2",
                    "2024-06-01T00:00:00Z",
                    "2023-12-31T23:59:59.999+00:00",
                    "pre-um",
                    "42",
                    LONG,
                    "a-string-longer-than-thirty-two-bytes!",
                ][..]
            )
            .prop_map(Value::from),
            Just(json!(["a", 1])),
            Just(json!({"age": 30, "plan": "premium"})),
            Just(json!({"age": "x"})),
        ]
    }

    fn context() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map(
            prop::sample::select(
                &["targetingKey", "plan", "country", "v", "user", "n", "other"][..],
            ),
            value(),
            0..7,
        )
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        /// The flat programs over a resolved (or directly looked-up) context decide every flag
        /// exactly as the tree walk over direct lookups does.
        #[test]
        fn programs_agree_with_the_tree_walk(
            body in body(),
            signed in context(),
            unsigned in context(),
            identity in any::<bool>(),
            now in prop_oneof![Just(0i64), Just(1_800_000_000_000i64)],
        ) {
            let Ok(snapshot) = Snapshot::from_blob(Blob::new(header(), body)) else {
                return Ok(());
            };
            let ctx = Context::with_unsigned(&signed, &unsigned, identity);
            let resolved = snapshot.resolve(&ctx);
            let all = evaluate_all(&snapshot, &ctx, now);
            for (index, key) in snapshot.flag_keys().enumerate() {
                let reference = evaluate_reference(&snapshot, index, &ctx, now);
                prop_assert_eq!(&evaluate(&snapshot, key, &ctx, now), &reference, "flag {}", key);
                prop_assert_eq!(&evaluate_resolved(&resolved, key, now), &reference, "flag {} resolved", key);
                prop_assert_eq!(all.get(index).map(|(_, e)| e), Some(&reference));
            }
        }
    }

    #[test]
    fn flags_whose_program_would_be_too_big_keep_the_tree_walk() {
        // Each segment uses the previous one twice: 2^10 tests once inlined.
        let mut segments = vec![Segment {
            key: "s0".into(),
            condition: Condition::Test(Test {
                attr: 1,
                op: Op::Equals(json!("premium")),
            }),
        }];
        for i in 1..=10u32 {
            segments.push(Segment {
                key: format!("s{i}"),
                condition: Condition::Any(vec![
                    Condition::Not(Box::new(Condition::Segment(i - 1))),
                    Condition::Segment(i - 1),
                ]),
            });
        }
        let body: Body = serde_json::from_value(json!({
            "attrs": [["targetingKey"], ["plan"]],
            "segments": segments,
            "flags": [{
                "key": "big", "kind": "release", "value_type": "boolean",
                "variants": [{"name": "on", "value": true}, {"name": "off", "value": false}],
                "default_variant": 1, "enabled": true,
                "targeting": {"rules": {"rules": [{"id": "r", "condition": {"segment": 10}, "serve": {"variant": 0}}],
                    "fallthrough": {"variant": 1}}}
            }],
            "eval_order": [0]
        }))
        .unwrap();
        let programs = Programs::new(&body, &Texts::new(&body));
        assert!(
            programs.entry(0).is_none(),
            "over MAX_PROGRAM_LEN: no program"
        );
        let snapshot = Snapshot::from_blob(Blob::new(header(), body)).unwrap();
        let map = Map::new();
        let e = evaluate(&snapshot, "big", &Context::new(&map), 0);
        assert_eq!(e.variant, Some("on"), "x or not x holds, by the tree walk");
    }
}
