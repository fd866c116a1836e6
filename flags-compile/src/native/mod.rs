//! The native flag format (see `docs/flag-format.md`) compiled to a [`shared_eval::Body`].
//!
//! Work is done here, once, so the edge does none per request: attribute paths are interned,
//! `in` lists sorted and deduplicated, regexes validated, semvers and dates parsed, segments
//! and prerequisites resolved to indices and ordered. Every environment of every flag is
//! compiled (so `validate` catches a mistake in `dev` while building `prod`), but only the
//! requested environment lands in the body. Errors are collected, never returned early, so one
//! run reports all of them.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use chrono::NaiveDate;
use serde_json::Value as Json;
use shared_eval::{
    AttrId, Body, Condition, Flag, FlagKind, ListId, Op, Prerequisite, Regex, RegexId, Rule,
    SegmentId, SemVerCmp, Serve, Split, Targeting, Test, ValueType, Variant, VariantId,
};

use super::diagnostic::Diagnostic;
use super::graph::topo_order;
use super::limits::*;
use super::schedule::Schedule;
use super::yaml::{self, Entry, Node, Value};

mod lints;
mod lower;
mod operands;
mod shape;

use lower::Tables;
pub use operands::{OPERATORS, check_regex, parse_time};

/// One file to compile: where it is (as shown in diagnostics) and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path shown in diagnostics.
    pub path: PathBuf,
    /// The file's contents.
    pub text: String,
}

/// Everything the native compiler reads.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `flags/*.yaml|yml|json`.
    pub flags: Vec<SourceFile>,
    /// `segments/*.yaml|yml|json`.
    pub segments: Vec<SourceFile>,
    /// Directory that `in: {file: ...}` paths are relative to (the flags directory).
    pub root: Option<PathBuf>,
}

/// The attribute that splits hash when a rule sets no `bucket-by`.
pub const TARGETING_KEY: &str = "targetingKey";

/// Compiles native sources for `environment`. `today` drives the date lints.
pub fn compile(sources: &Sources, environment: &str, today: NaiveDate) -> Lowered {
    let mut c = Compiler {
        diags: Vec::new(),
        root: sources.root.clone(),
        list_cache: HashMap::new(),
        schedules: Vec::new(),
        environments: Vec::new(),
    };
    let body = c.run(sources, environment, today);
    // In file order, then rule order: the order version records keep them in.
    c.schedules.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    Lowered {
        body,
        schedules: c.schedules.into_iter().map(|(_, _, s)| s).collect(),
        environments: c.environments,
        diagnostics: c.diags,
    }
}

/// What [`compile`] returns: the body, the rollout schedules its rules declared (parsed once,
/// here), and every diagnostic.
#[derive(Debug, Clone)]
pub struct Lowered {
    /// The compiled flags (each scheduled rule at its first stage).
    pub body: Body,
    /// The `rollout:` schedules of the compiled environment.
    pub schedules: Vec<Schedule>,
    /// Every environment some flag defines, sorted.
    pub environments: Vec<String>,
    /// Errors and lints.
    pub diagnostics: Vec<Diagnostic>,
}

/// Where a diagnostic points: file, flag and rule (line comes from the node).
#[derive(Clone)]
struct At<'a> {
    file: &'a Path,
    flag: Option<&'a str>,
    segment: Option<&'a str>,
    rule: Option<String>,
}

impl<'a> At<'a> {
    /// A whole file (no flag or segment yet).
    fn file(file: &'a Path) -> Self {
        At {
            file,
            flag: None,
            segment: None,
            rule: None,
        }
    }

    /// Inside flag `key`.
    fn flag(file: &'a Path, key: &'a str) -> Self {
        At {
            flag: Some(key),
            ..At::file(file)
        }
    }

    /// Inside segment `key`.
    fn segment(file: &'a Path, key: &'a str) -> Self {
        At {
            segment: Some(key),
            ..At::file(file)
        }
    }
}

/// A flag file, parsed and checked for shape, before anything is resolved.
struct FlagDef<'a> {
    file: &'a Path,
    line: usize,
    doc: Node,
    key: String,
    kind: FlagKind,
    value_type: ValueType,
    variants: Vec<Variant>,
    default: VariantId,
    salt: String,
    unsigned: Vec<Vec<String>>,
    /// `bucket-unsigned-key: false`: splits bucket only by a signed targeting key.
    signed_bucketing_only: bool,
    expires: Option<(NaiveDate, usize)>,
    review_by: Option<(NaiveDate, usize)>,
}

struct SegmentDef<'a> {
    file: &'a Path,
    line: usize,
    key: String,
    condition: Option<Node>,
}

struct Compiler {
    diags: Vec<Diagnostic>,
    root: Option<PathBuf>,
    list_cache: HashMap<PathBuf, Result<Vec<String>, String>>,
    /// Each `rollout:` schedule parsed, with its file and line (for the order).
    schedules: Vec<(PathBuf, usize, Schedule)>,
    /// Every environment some flag defines, sorted.
    environments: Vec<String>,
}

/// The fields a flag file may have; any other is an error (`schema.rs` models the same set).
pub const FLAG_FIELDS: &[&str] = &[
    "key",
    "description",
    "owner",
    "type",
    "expires",
    "review-by",
    "tags",
    "variants",
    "default",
    "prerequisites",
    "unsigned-attributes",
    "bucket-unsigned-key",
    "salt",
    "environments",
];
/// The fields a segment file may have; any other is an error (`schema.rs` models the same set).
pub const SEGMENT_FIELDS: &[&str] = &["key", "description", "owner", "if"];
/// The fields of an environment.
pub const ENV_FIELDS: &[&str] = &["enabled", "rules", "fallthrough"];
/// The fields of a rule.
pub const RULE_FIELDS: &[&str] = &["id", "description", "if", "serve"];
/// The fields of a `serve` mapping (a split or a rollout).
pub const SPLIT_FIELDS: &[&str] = &["split", "rollout", "bucket-by"];
/// The fields of a `{flag, variants}` prerequisite.
pub const PREREQ_FIELDS: &[&str] = &["flag", "variants"];

impl Compiler {
    pub(super) fn error(&mut self, at: &At<'_>, line: usize, message: impl Into<String>) {
        let mut d = Diagnostic::error(at.file, Some(line), message);
        d.flag = at.flag.map(str::to_owned);
        if let Some(segment) = at.segment {
            d.message = format!("segment {segment}: {}", d.message);
        }
        d.rule = at.rule.clone();
        self.diags.push(d);
    }

    pub(super) fn warning(&mut self, at: &At<'_>, line: usize, message: impl Into<String>) {
        let mut d = Diagnostic::warning(at.file, Some(line), message);
        d.flag = at.flag.map(str::to_owned);
        if let Some(segment) = at.segment {
            d.message = format!("segment {segment}: {}", d.message);
        }
        d.rule = at.rule.clone();
        self.diags.push(d);
    }

    /// Reports keys of `node` (a mapping) not in `allowed`: typos must not be silently ignored.
    pub(super) fn check_fields(
        &mut self,
        at: &At<'_>,
        entries: &[Entry],
        allowed: &[&str],
        what: &str,
    ) {
        for entry in entries {
            if !allowed.contains(&entry.key.as_str()) {
                self.error(
                    at,
                    entry.line,
                    format!(
                        "unknown field `{}` in {what}; expected one of: {}",
                        entry.key,
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    pub(super) fn run(&mut self, sources: &Sources, environment: &str, today: NaiveDate) -> Body {
        let mut tables = Tables::default();

        // ---- Segments: parse, order (a segment may use only earlier ones), compile.
        let mut segment_defs: Vec<SegmentDef<'_>> = Vec::new();
        for file in &sources.segments {
            if let Some(def) = self.segment_def(file) {
                segment_defs.push(def);
            }
        }
        segment_defs.sort_by(|a, b| a.key.cmp(&b.key));
        self.reject_duplicates(
            segment_defs
                .iter()
                .map(|d| (d.key.as_str(), d.file, d.line)),
            "segment",
        );
        segment_defs.dedup_by(|b, a| a.key == b.key);
        let segment_index: HashMap<String, usize> = segment_defs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.key.clone(), i))
            .collect();
        let segment_deps: Vec<Vec<usize>> = segment_defs
            .iter()
            .map(|d| {
                let mut refs = Vec::new();
                if let Some(cond) = &d.condition {
                    collect_segment_refs(cond, &mut refs);
                }
                refs.iter()
                    .filter_map(|r| segment_index.get(r.as_str()).copied())
                    .collect()
            })
            .collect();
        let (segment_order, segment_cycles) = topo_order(&segment_deps);
        for cycle in &segment_cycles {
            let Some(first) = cycle.first().map(|&i| &segment_defs[i]) else {
                continue;
            };
            let names: Vec<&str> = cycle
                .iter()
                .map(|&i| segment_defs[i].key.as_str())
                .collect();
            let at = At::file(first.file);
            self.error(
                &at,
                first.line,
                format!("segment cycle: {}", names.join(" -> ")),
            );
        }
        let mut segments = Vec::new();
        // `None`: the segment exists but failed to compile (its own error is already reported).
        let mut segment_ids: HashMap<String, Option<(SegmentId, usize)>> =
            segment_defs.iter().map(|d| (d.key.clone(), None)).collect();
        let mut used_segments: HashSet<String> = HashSet::new();
        for &i in &segment_order {
            let def = &segment_defs[i];
            let at = At::segment(def.file, &def.key);
            let Some(node) = &def.condition else { continue };
            let mut scope = Scope {
                tables: &mut tables,
                segments: &segment_ids,
                used: &mut used_segments,
            };
            if let Some((condition, depth)) = self.condition(&at, node, &mut scope, 0) {
                let id = segments.len() as SegmentId;
                segments.push(shared_eval::Segment {
                    key: def.key.clone(),
                    condition,
                });
                segment_ids.insert(def.key.clone(), Some((id, depth)));
            }
        }

        // ---- Flags: parse and check shape; then resolve prerequisites and compile rules.
        let mut defs: Vec<FlagDef<'_>> = Vec::new();
        for file in &sources.flags {
            if let Some(def) = self.flag_def(file) {
                defs.push(def);
            }
        }
        defs.sort_by(|a, b| a.key.cmp(&b.key));
        self.reject_duplicates(
            defs.iter().map(|d| (d.key.as_str(), d.file, d.line)),
            "flag",
        );
        defs.dedup_by(|b, a| a.key == b.key);
        let flag_index: HashMap<&str, usize> = defs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.key.as_str(), i))
            .collect();

        let mut flags = Vec::with_capacity(defs.len());
        let mut prereq_deps: Vec<Vec<usize>> = Vec::with_capacity(defs.len());
        for def in &defs {
            let at = At::flag(def.file, &def.key);
            let prerequisites = self.prerequisites(&at, def, &defs, &flag_index);
            prereq_deps.push(prerequisites.iter().map(|p| p.flag as usize).collect());
            let mut unsigned_attrs: Vec<AttrId> = def
                .unsigned
                .iter()
                .map(|p| tables.attr(p.clone()))
                .collect();
            unsigned_attrs.sort_unstable();
            unsigned_attrs.dedup();

            let mut compiled_env = None;
            if let Some(envs) = def.doc.get("environments") {
                match envs.as_map() {
                    Some(entries) => {
                        for entry in entries {
                            let target = entry.key == environment;
                            let mut scratch = Tables::default();
                            let mut scope = Scope {
                                tables: if target { &mut tables } else { &mut scratch },
                                segments: &segment_ids,
                                used: &mut used_segments,
                            };
                            let env = self.environment(&at, def, &entry.value, &mut scope);
                            if target {
                                compiled_env = env;
                            }
                        }
                    }
                    None => self.error(&at, envs.line, format!("`environments` must be a mapping of environment name to settings, found {}", envs.kind_name())),
                }
            }
            let (enabled, targeting) = compiled_env.unwrap_or((
                false,
                Targeting::Rules {
                    rules: Vec::new(),
                    fallthrough: Serve::Variant(def.default),
                },
            ));

            self.date_lints(&at, def, today);
            flags.push(Flag {
                key: def.key.clone(),
                kind: def.kind,
                value_type: def.value_type,
                variants: def.variants.clone(),
                default_variant: Some(def.default),
                off_variant: Some(def.default),
                enabled,
                killed: false,
                prerequisites,
                targeting,
                salt: def.salt.clone(),
                unsigned_attrs,
                signed_bucketing_only: def.signed_bucketing_only,
                metadata: serde_json::Map::new(),
            });
        }

        // What the files define, for `compile_path`'s check of the requested environment.
        self.environments = defs
            .iter()
            .filter_map(|d| d.doc.get("environments").and_then(Node::as_map))
            .flat_map(|entries| entries.iter().map(|e| e.key.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();

        let (eval_order, cycles) = topo_order(&prereq_deps);
        for cycle in &cycles {
            let Some(&first) = cycle.first() else {
                continue;
            };
            let names: Vec<&str> = cycle.iter().map(|&i| defs[i].key.as_str()).collect();
            let def = &defs[first];
            let line = def.doc.get("prerequisites").map_or(def.line, |n| n.line);
            let at = At::flag(def.file, &def.key);
            self.error(
                &at,
                line,
                format!("prerequisite cycle: {}", names.join(" -> ")),
            );
        }

        // Prerequisite chains, longest first-found: `eval_order` puts prerequisites first.
        let mut chain = vec![1usize; defs.len()];
        for &i in &eval_order {
            let longest = prereq_deps[i]
                .iter()
                .filter_map(|&p| chain.get(p))
                .max()
                .copied()
                .unwrap_or(0);
            chain[i] = longest + 1;
            if chain[i] == MAX_PREREQUISITE_DEPTH + 1 {
                let def = &defs[i];
                let line = def.doc.get("prerequisites").map_or(def.line, |n| n.line);
                let at = At::flag(def.file, &def.key);
                self.error(
                    &at,
                    line,
                    format!("prerequisite chain of {} flags, over the limit of {MAX_PREREQUISITE_DEPTH}", chain[i]),
                );
            }
        }

        for def in &segment_defs {
            if !used_segments.contains(&def.key) {
                let at = At::segment(def.file, &def.key);
                self.warning(
                    &at,
                    def.line,
                    "unused segment: no flag or segment refers to it",
                );
            }
        }

        Body {
            attrs: tables.attrs,
            lists: tables.lists,
            regexes: tables.regexes,
            segments,
            flags,
            eval_order: eval_order.into_iter().map(|i| i as u32).collect(),
        }
    }
}

/// Tables and segment resolution for one environment's compilation.
struct Scope<'a> {
    tables: &'a mut Tables,
    segments: &'a HashMap<String, Option<(SegmentId, usize)>>,
    used: &'a mut HashSet<String>,
}

pub(super) fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Boolean => "a boolean",
        ValueType::String => "a string",
        ValueType::Number => "a number",
        ValueType::Object => "an object",
    }
}

/// A scalar's text (variant names may be written unquoted: `true`, `1`).
pub(super) fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

pub(super) fn collect_segment_refs(node: &Node, out: &mut Vec<String>) {
    match &node.value {
        Value::Seq(items) => items.iter().for_each(|i| collect_segment_refs(i, out)),
        Value::Map(entries) => {
            for e in entries {
                if e.key == "segment" {
                    if let Some(s) = e.value.as_str() {
                        out.push(s.to_owned());
                    }
                } else {
                    collect_segment_refs(&e.value, out);
                }
            }
        }
        _ => {}
    }
}
