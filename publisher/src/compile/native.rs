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
    AttrId, Body, Condition, Flag, FlagKind, ListId, Op, Prerequisite, RegexId, Rule, SegmentId,
    SemVerCmp, Serve, Split, Targeting, Test, ValueType, Variant, VariantId,
};

use super::diagnostic::Diagnostic;
use super::graph::topo_order;
use super::limits::*;
use super::yaml::{self, Entry, Node, Value};

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
pub fn compile(sources: &Sources, environment: &str, today: NaiveDate) -> (Body, Vec<Diagnostic>) {
    let mut c = Compiler {
        diags: Vec::new(),
        root: sources.root.clone(),
        list_cache: HashMap::new(),
    };
    let body = c.run(sources, environment, today);
    (body, c.diags)
}

/// Interned tables. The requested environment compiles into the body's; other environments
/// compile into a scratch copy that is thrown away (checked, not shipped).
#[derive(Default)]
struct Tables {
    attrs: Vec<Vec<String>>,
    attr_ids: HashMap<Vec<String>, AttrId>,
    lists: Vec<Vec<String>>,
    list_ids: HashMap<Vec<String>, ListId>,
    regexes: Vec<String>,
    regex_ids: HashMap<String, RegexId>,
}

impl Tables {
    fn attr(&mut self, path: Vec<String>) -> AttrId {
        if let Some(&id) = self.attr_ids.get(&path) {
            return id;
        }
        let id = self.attrs.len() as AttrId;
        self.attrs.push(path.clone());
        self.attr_ids.insert(path, id);
        id
    }

    fn list(&mut self, mut items: Vec<String>) -> ListId {
        items.sort_unstable();
        items.dedup();
        if let Some(&id) = self.list_ids.get(&items) {
            return id;
        }
        let id = self.lists.len() as ListId;
        self.lists.push(items.clone());
        self.list_ids.insert(items, id);
        id
    }

    fn regex(&mut self, source: &str) -> RegexId {
        if let Some(&id) = self.regex_ids.get(source) {
            return id;
        }
        let id = self.regexes.len() as RegexId;
        self.regexes.push(source.to_owned());
        self.regex_ids.insert(source.to_owned(), id);
        id
    }
}

/// Where a diagnostic points: file, flag and rule (line comes from the node).
#[derive(Clone)]
struct At<'a> {
    file: &'a Path,
    flag: Option<&'a str>,
    segment: Option<&'a str>,
    rule: Option<String>,
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
}

const FLAG_FIELDS: &[&str] = &[
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
    "salt",
    "environments",
];
const SEGMENT_FIELDS: &[&str] = &["key", "description", "owner", "if"];
const ENV_FIELDS: &[&str] = &["enabled", "rules", "fallthrough"];
const RULE_FIELDS: &[&str] = &["id", "description", "if", "serve"];
const SPLIT_FIELDS: &[&str] = &["split", "bucket-by"];
const PREREQ_FIELDS: &[&str] = &["flag", "variants"];

/// Every operator the native format accepts, as written in files.
pub const OPERATORS: &[&str] = &[
    "equals",
    "not-equals",
    "in",
    "not-in",
    "contains",
    "starts-with",
    "ends-with",
    "matches",
    "lt",
    "le",
    "gt",
    "ge",
    "semver-eq",
    "semver-ne",
    "semver-lt",
    "semver-le",
    "semver-gt",
    "semver-ge",
    "semver-caret",
    "semver-tilde",
    "before",
    "after",
    "exists",
];

impl Compiler {
    fn error(&mut self, at: &At<'_>, line: usize, message: impl Into<String>) {
        let mut d = Diagnostic::error(at.file, Some(line), message);
        d.flag = at.flag.map(str::to_owned);
        if let Some(segment) = at.segment {
            d.message = format!("segment {segment}: {}", d.message);
        }
        d.rule = at.rule.clone();
        self.diags.push(d);
    }

    fn warning(&mut self, at: &At<'_>, line: usize, message: impl Into<String>) {
        let mut d = Diagnostic::warning(at.file, Some(line), message);
        d.flag = at.flag.map(str::to_owned);
        if let Some(segment) = at.segment {
            d.message = format!("segment {segment}: {}", d.message);
        }
        d.rule = at.rule.clone();
        self.diags.push(d);
    }

    /// Reports keys of `node` (a mapping) not in `allowed`: typos must not be silently ignored.
    fn check_fields(&mut self, at: &At<'_>, entries: &[Entry], allowed: &[&str], what: &str) {
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

    fn parse_file(&mut self, file: &SourceFile) -> Option<Node> {
        let at = At {
            file: &file.path,
            flag: None,
            segment: None,
            rule: None,
        };
        if file.text.len() > MAX_FILE_BYTES {
            self.error(
                &at,
                1,
                format!(
                    "file is {} bytes, over the {MAX_FILE_BYTES}-byte limit",
                    file.text.len()
                ),
            );
            return None;
        }
        if file.path.extension().is_some_and(|x| x == "json") {
            // JSON is YAML too, but a JSON file deserves a JSON error message.
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&file.text) {
                self.error(&at, e.line().max(1), format!("invalid JSON: {e}"));
                return None;
            }
        }
        match yaml::parse(&file.text) {
            Ok(node) if node.as_map().is_some() => Some(node),
            Ok(node) => {
                self.error(
                    &at,
                    node.line,
                    format!(
                        "expected a mapping at the top of the file, found {}",
                        node.kind_name()
                    ),
                );
                None
            }
            Err(e) => {
                self.error(&at, e.line, format!("invalid YAML: {}", e.message));
                None
            }
        }
    }

    fn run(&mut self, sources: &Sources, environment: &str, today: NaiveDate) -> Body {
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
            let at = At {
                file: first.file,
                flag: None,
                segment: None,
                rule: None,
            };
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
            let at = At {
                file: def.file,
                flag: None,
                segment: Some(&def.key),
                rule: None,
            };
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
            let at = At {
                file: def.file,
                flag: Some(&def.key),
                segment: None,
                rule: None,
            };
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
                metadata: serde_json::Map::new(),
            });
        }

        // `--env production` when the files say `prod`: every flag would silently be off.
        let known_envs: std::collections::BTreeSet<&str> = defs
            .iter()
            .filter_map(|d| d.doc.get("environments").and_then(Node::as_map))
            .flat_map(|entries| entries.iter().map(|e| e.key.as_str()))
            .collect();
        if !known_envs.is_empty() && !known_envs.contains(environment) {
            let place = sources
                .root
                .clone()
                .or_else(|| defs.first().map(|d| d.file.to_path_buf()));
            let names: Vec<&str> = known_envs.into_iter().collect();
            self.diags.push(Diagnostic::warning(
                place.unwrap_or_default(),
                None,
                format!(
                    "no flag defines environment `{environment}`, so every flag is off there (environments in the files: {})",
                    names.join(", ")
                ),
            ));
        }

        let (eval_order, cycles) = topo_order(&prereq_deps);
        for cycle in &cycles {
            let Some(&first) = cycle.first() else {
                continue;
            };
            let names: Vec<&str> = cycle.iter().map(|&i| defs[i].key.as_str()).collect();
            let def = &defs[first];
            let line = def.doc.get("prerequisites").map_or(def.line, |n| n.line);
            let at = At {
                file: def.file,
                flag: Some(&def.key),
                segment: None,
                rule: None,
            };
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
                let at = At {
                    file: def.file,
                    flag: Some(&def.key),
                    segment: None,
                    rule: None,
                };
                self.error(
                    &at,
                    line,
                    format!("prerequisite chain of {} flags, over the limit of {MAX_PREREQUISITE_DEPTH}", chain[i]),
                );
            }
        }

        for def in &segment_defs {
            if !used_segments.contains(&def.key) {
                let at = At {
                    file: def.file,
                    flag: None,
                    segment: Some(&def.key),
                    rule: None,
                };
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

    fn reject_duplicates<'a>(
        &mut self,
        sorted: impl Iterator<Item = (&'a str, &'a Path, usize)>,
        what: &str,
    ) {
        let mut previous: Option<(&str, &Path, usize)> = None;
        for (key, file, line) in sorted {
            if let Some((prev_key, prev_file, prev_line)) = previous
                && prev_key == key
            {
                let at = At {
                    file,
                    flag: (what == "flag").then_some(key),
                    segment: None,
                    rule: None,
                };
                self.error(
                    &at,
                    line,
                    format!(
                        "duplicate {what} key `{key}` (also defined at {}:{prev_line})",
                        prev_file.display()
                    ),
                );
                continue;
            }
            previous = Some((key, file, line));
        }
    }

    /// The key: the `key` field, else the file name without extension.
    fn key_of(&mut self, file: &SourceFile, doc: &Node) -> Option<(String, usize)> {
        let at = At {
            file: &file.path,
            flag: None,
            segment: None,
            rule: None,
        };
        let (key, line) = match doc.get("key") {
            Some(node) => match node.as_str() {
                Some(k) => (k.to_owned(), node.line),
                None => {
                    self.error(
                        &at,
                        node.line,
                        format!("`key` must be a string, found {}", node.kind_name()),
                    );
                    return None;
                }
            },
            None => (
                file.path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                1,
            ),
        };
        if key.is_empty()
            || key.len() > MAX_KEY_LEN
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            self.error(
                &at,
                line,
                format!("invalid key `{key}`: use 1 to {MAX_KEY_LEN} characters among a-z, A-Z, 0-9, `-`, `_`, `.`"),
            );
            return None;
        }
        let stem = file.path.file_stem().map(|s| s.to_string_lossy());
        if stem.as_deref().is_some_and(|stem| stem != key) {
            self.warning(
                &at,
                line,
                format!("key `{key}` differs from the file name: rename the file to `{key}.yaml` so people find it"),
            );
        }
        Some((key, line))
    }

    fn segment_def<'a>(&mut self, file: &'a SourceFile) -> Option<SegmentDef<'a>> {
        let doc = self.parse_file(file)?;
        let (key, line) = self.key_of(file, &doc)?;
        let at = At {
            file: &file.path,
            flag: None,
            segment: Some(&key),
            rule: None,
        };
        self.check_fields(
            &at,
            doc.as_map().unwrap_or_default(),
            SEGMENT_FIELDS,
            "a segment",
        );
        let condition = doc.get("if").cloned();
        if condition.is_none() {
            self.error(
                &at,
                line,
                "missing `if`: the condition a context must satisfy to be in the segment",
            );
        }
        Some(SegmentDef {
            file: &file.path,
            line,
            key,
            condition,
        })
    }

    fn flag_def<'a>(&mut self, file: &'a SourceFile) -> Option<FlagDef<'a>> {
        let doc = self.parse_file(file)?;
        let (key, line) = self.key_of(file, &doc)?;
        let at = At {
            file: &file.path,
            flag: Some(&key),
            segment: None,
            rule: None,
        };
        self.check_fields(&at, doc.as_map().unwrap_or_default(), FLAG_FIELDS, "a flag");

        match doc.get("owner") {
            Some(node) if node.as_str().is_some_and(|s| !s.trim().is_empty()) => {}
            Some(node) => self.error(
                &at,
                node.line,
                "`owner` must be a non-empty string (a team or a person)",
            ),
            None => self.error(&at, line, "missing `owner`: who answers for this flag"),
        }
        for field in ["description", "salt"] {
            if let Some(node) = doc.get(field)
                && node.as_str().is_none()
            {
                self.error(
                    &at,
                    node.line,
                    format!("`{field}` must be a string, found {}", node.kind_name()),
                );
            }
        }
        if let Some(tags) = doc.get("tags") {
            let ok = matches!(&tags.value, Value::Seq(items) if items.iter().all(|t| t.as_str().is_some()));
            if !ok {
                self.error(&at, tags.line, "`tags` must be a list of strings");
            }
        }
        let kind = match doc.get("type") {
            None => {
                self.error(&at, line, "missing `type`: one of release, operational, experiment, permission, kill-switch");
                FlagKind::Release
            }
            Some(node) => match node.as_str() {
                Some("release") => FlagKind::Release,
                Some("operational") => FlagKind::Operational,
                Some("experiment") => FlagKind::Experiment,
                Some("permission") => FlagKind::Permission,
                Some("kill-switch") => FlagKind::KillSwitch,
                _ => {
                    self.error(
                        &at,
                        node.line,
                        "`type` must be one of release, operational, experiment, permission, kill-switch",
                    );
                    FlagKind::Release
                }
            },
        };
        let expires = self.date_field(&at, &doc, "expires");
        let review_by = self.date_field(&at, &doc, "review-by");

        let (value_type, variants) = self.variants(&at, &doc)?;
        let default = match doc.get("default") {
            Some(node) => self.variant_ref(&at, node, &variants)?,
            None if doc.get("variants").is_none() => {
                variants.iter().position(|v| v.name == "off").unwrap_or(0) as VariantId
            }
            None => {
                self.error(&at, line, "missing `default`: the safe variant served when the flag is off, killed, or fails");
                return None;
            }
        };
        let salt = doc
            .get("salt")
            .and_then(Node::as_str)
            .unwrap_or_default()
            .to_owned();
        // The salt defaults to the key; writing the key out changes nothing, so keep it out of the blob.
        let salt = if salt == key { String::new() } else { salt };

        let mut unsigned = Vec::new();
        if let Some(node) = doc.get("unsigned-attributes") {
            match &node.value {
                Value::Seq(items) => {
                    for item in items {
                        if let Some(path) = self.attr_path(&at, item) {
                            unsigned.push(path);
                        }
                    }
                }
                _ => self.error(
                    &at,
                    node.line,
                    "`unsigned-attributes` must be a list of attribute paths",
                ),
            }
        }
        Some(FlagDef {
            file: &file.path,
            line,
            doc,
            key,
            kind,
            value_type,
            variants,
            default,
            salt,
            unsigned,
            expires,
            review_by,
        })
    }

    fn date_field(&mut self, at: &At<'_>, doc: &Node, field: &str) -> Option<(NaiveDate, usize)> {
        let node = doc.get(field)?;
        match node
            .as_str()
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        {
            Some(date) => Some((date, node.line)),
            None => {
                self.error(
                    at,
                    node.line,
                    format!("`{field}` must be a date written YYYY-MM-DD"),
                );
                None
            }
        }
    }

    fn date_lints(&mut self, at: &At<'_>, def: &FlagDef<'_>, today: NaiveDate) {
        if let Some((date, line)) = def.expires
            && date < today
        {
            self.warning(
                at,
                line,
                format!("flag expired on {date}: remove it (and its uses), or move `expires`"),
            );
        }
        if let Some((date, line)) = def.review_by
            && date < today
        {
            self.warning(
                at,
                line,
                format!(
                    "past its owner's review date ({date}): review the flag and move `review-by`"
                ),
            );
        }
    }

    /// `variants:` (a mapping name -> value, all of one type); absent means boolean on/off.
    fn variants(&mut self, at: &At<'_>, doc: &Node) -> Option<(ValueType, Vec<Variant>)> {
        let Some(node) = doc.get("variants") else {
            let variants = vec![
                Variant {
                    name: "on".into(),
                    value: Json::Bool(true),
                },
                Variant {
                    name: "off".into(),
                    value: Json::Bool(false),
                },
            ];
            return Some((ValueType::Boolean, variants));
        };
        let Some(entries) = node.as_map() else {
            self.error(
                at,
                node.line,
                format!(
                    "`variants` must be a mapping of variant name to value, found {}",
                    node.kind_name()
                ),
            );
            return None;
        };
        if entries.is_empty() || entries.len() > MAX_VARIANTS {
            self.error(
                at,
                node.line,
                format!(
                    "a flag needs 1 to {MAX_VARIANTS} variants, found {}",
                    entries.len()
                ),
            );
            return None;
        }
        let mut value_type: Option<(ValueType, &str)> = None;
        let mut variants = Vec::with_capacity(entries.len());
        let mut ok = true;
        for entry in entries {
            let this = match &entry.value.value {
                Value::Bool(_) => ValueType::Boolean,
                Value::Int(_) | Value::Float(_) => ValueType::Number,
                Value::Str(_) => ValueType::String,
                Value::Map(_) => ValueType::Object,
                _ => {
                    self.error(
                        at,
                        entry.value.line,
                        format!(
                            "variant `{}` is {}; a variant is a boolean, a string, a number or a mapping (JSON object)",
                            entry.key,
                            entry.value.kind_name()
                        ),
                    );
                    ok = false;
                    continue;
                }
            };
            match value_type {
                None => value_type = Some((this, &entry.key)),
                Some((first, first_name)) if first != this => {
                    self.error(
                        at,
                        entry.value.line,
                        format!(
                            "variant `{}` is {} but `{first_name}` is {}: all variants of a flag have one type",
                            entry.key,
                            type_name(this),
                            type_name(first)
                        ),
                    );
                    ok = false;
                }
                Some(_) => {}
            }
            variants.push(Variant {
                name: entry.key.clone(),
                value: entry.value.to_json(),
            });
        }
        let (value_type, _) = value_type?;
        ok.then_some((value_type, variants))
    }

    fn variant_ref(&mut self, at: &At<'_>, node: &Node, variants: &[Variant]) -> Option<VariantId> {
        let name = scalar_text(node);
        match name
            .as_deref()
            .and_then(|n| variants.iter().position(|v| v.name == n))
        {
            Some(i) => Some(i as VariantId),
            None => {
                let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
                let shown = name.unwrap_or_else(|| node.kind_name().to_owned());
                self.error(
                    at,
                    node.line,
                    format!(
                        "unknown variant `{shown}`; this flag's variants are: {}",
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn prerequisites(
        &mut self,
        at: &At<'_>,
        def: &FlagDef<'_>,
        defs: &[FlagDef<'_>],
        index: &HashMap<&str, usize>,
    ) -> Vec<Prerequisite> {
        let Some(node) = def.doc.get("prerequisites") else {
            return Vec::new();
        };
        let Value::Seq(items) = &node.value else {
            self.error(
                at,
                node.line,
                "`prerequisites` must be a list of `{flag: KEY, variants: [...]}` (or flag keys)",
            );
            return Vec::new();
        };
        let mut out: Vec<Prerequisite> = Vec::new();
        for item in items {
            let (flag_node, variants_node) = match &item.value {
                Value::Str(_) => (item, None),
                Value::Map(entries) => {
                    self.check_fields(at, entries, PREREQ_FIELDS, "a prerequisite");
                    match item.get("flag") {
                        Some(flag) => (flag, item.get("variants")),
                        None => {
                            self.error(at, item.line, "a prerequisite needs `flag: KEY`");
                            continue;
                        }
                    }
                }
                _ => {
                    self.error(
                        at,
                        item.line,
                        "a prerequisite is a flag key or `{flag: KEY, variants: [...]}`",
                    );
                    continue;
                }
            };
            let Some(key) = flag_node.as_str() else {
                self.error(at, flag_node.line, "`flag` must be a flag key");
                continue;
            };
            let Some(&target) = index.get(key) else {
                self.error(
                    at,
                    flag_node.line,
                    format!("prerequisite names unknown flag `{key}`"),
                );
                continue;
            };
            if key == def.key {
                self.error(
                    at,
                    flag_node.line,
                    format!("prerequisite cycle: {key} -> {key}"),
                );
                continue;
            }
            let other = &defs[target];
            let variants: Vec<VariantId> = match variants_node {
                Some(vnode) => {
                    let Value::Seq(names) = &vnode.value else {
                        self.error(at, vnode.line, "`variants` must be a list of variant names");
                        continue;
                    };
                    let ids: Vec<Option<VariantId>> = names
                        .iter()
                        .map(|n| {
                            let text = scalar_text(n);
                            let found = text
                                .as_deref()
                                .and_then(|t| other.variants.iter().position(|v| v.name == t));
                            if found.is_none() {
                                let shown: Vec<&str> =
                                    other.variants.iter().map(|v| v.name.as_str()).collect();
                                self.error(
                                    at,
                                    n.line,
                                    format!(
                                        "flag `{key}` has no variant `{}`; its variants are: {}",
                                        text.unwrap_or_default(),
                                        shown.join(", ")
                                    ),
                                );
                            }
                            found.map(|i| i as VariantId)
                        })
                        .collect();
                    if ids.is_empty() {
                        self.error(at, vnode.line, "`variants` must name at least one variant");
                        continue;
                    }
                    match ids.into_iter().collect::<Option<Vec<_>>>() {
                        Some(ids) => ids,
                        None => continue,
                    }
                }
                None if other.value_type == ValueType::Boolean => other
                    .variants
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.value == Json::Bool(true))
                    .map(|(i, _)| i as VariantId)
                    .collect(),
                None => {
                    self.error(
                        at,
                        flag_node.line,
                        format!("flag `{key}` is not boolean: say which of its variants satisfy the prerequisite (`variants: [...]`)"),
                    );
                    continue;
                }
            };
            if variants.is_empty() {
                self.error(
                    at,
                    flag_node.line,
                    format!(
                        "flag `{key}` has no variant with value `true`; list `variants:` explicitly"
                    ),
                );
                continue;
            }
            let mut variants = variants;
            variants.sort_unstable();
            variants.dedup();
            out.push(Prerequisite {
                flag: target as u32,
                variants,
            });
        }
        out
    }

    /// One environment's `{enabled, rules, fallthrough}`.
    fn environment(
        &mut self,
        at: &At<'_>,
        def: &FlagDef<'_>,
        node: &Node,
        scope: &mut Scope<'_>,
    ) -> Option<(bool, Targeting)> {
        let Some(entries) = node.as_map() else {
            self.error(at, node.line, format!("an environment must be a mapping with `enabled`, `rules`, `fallthrough`, found {}", node.kind_name()));
            return None;
        };
        self.check_fields(at, entries, ENV_FIELDS, "an environment");
        let enabled = match node.get("enabled") {
            Some(Node {
                value: Value::Bool(b),
                ..
            }) => *b,
            Some(other) => {
                self.error(at, other.line, "`enabled` must be true or false");
                false
            }
            None => {
                self.error(at, node.line, "missing `enabled: true|false`");
                false
            }
        };
        let mut ok = true;
        let mut rules: Vec<(Rule, usize)> = Vec::new();
        if let Some(rules_node) = node.get("rules") {
            match &rules_node.value {
                Value::Seq(items) => {
                    if items.len() > MAX_RULES_PER_FLAG {
                        self.error(at, rules_node.line, format!("{} rules, over the limit of {MAX_RULES_PER_FLAG} per flag and environment", items.len()));
                        ok = false;
                    }
                    for (index, item) in items.iter().enumerate() {
                        match self.rule(at, def, item, index, scope) {
                            Some(rule) => {
                                if rules.iter().any(|(r, _)| r.id == rule.id) {
                                    let rat = At {
                                        rule: Some(rule.id.clone()),
                                        ..at.clone()
                                    };
                                    self.error(
                                        &rat,
                                        item.line,
                                        format!("duplicate rule id `{}`", rule.id),
                                    );
                                    ok = false;
                                }
                                rules.push((rule, item.line));
                            }
                            None => ok = false,
                        }
                    }
                }
                Value::Null => {}
                _ => {
                    self.error(at, rules_node.line, "`rules` must be a list");
                    ok = false;
                }
            }
        }
        let fallthrough = match node.get("fallthrough") {
            Some(f) => match self.serve(at, def, f, scope) {
                Some(s) => s,
                None => {
                    ok = false;
                    Serve::Variant(def.default)
                }
            },
            None => Serve::Variant(def.default),
        };
        self.unreachable_rules(at, &rules);
        ok.then(|| {
            (
                enabled,
                Targeting::Rules {
                    rules: rules.into_iter().map(|(r, _)| r).collect(),
                    fallthrough,
                },
            )
        })
    }

    fn unreachable_rules(&mut self, at: &At<'_>, rules: &[(Rule, usize)]) {
        let always = Condition::All(Vec::new());
        let mut catch_all: Option<&str> = None;
        for (i, (rule, line)) in rules.iter().enumerate() {
            let rat = At {
                rule: Some(rule.id.clone()),
                ..at.clone()
            };
            if let Some(earlier) = catch_all {
                self.warning(
                    &rat,
                    *line,
                    format!("unreachable rule: rule {earlier} above matches every context"),
                );
                continue;
            }
            if let Some((earlier, _)) = rules[..i]
                .iter()
                .find(|(r, _)| r.condition == rule.condition)
            {
                self.warning(
                    &rat,
                    *line,
                    format!("unreachable rule: same condition as rule {}", earlier.id),
                );
            }
            if rule.condition == always {
                catch_all = Some(&rule.id);
            }
        }
    }

    fn rule(
        &mut self,
        at: &At<'_>,
        def: &FlagDef<'_>,
        node: &Node,
        index: usize,
        scope: &mut Scope<'_>,
    ) -> Option<Rule> {
        let id = match node.get("id") {
            Some(n) => match scalar_text(n) {
                Some(id) if !id.is_empty() => id,
                _ => {
                    let rat = At {
                        rule: Some((index + 1).to_string()),
                        ..at.clone()
                    };
                    self.error(&rat, n.line, "rule `id` must be a non-empty string");
                    return None;
                }
            },
            None => (index + 1).to_string(),
        };
        let rat = At {
            rule: Some(id.clone()),
            ..at.clone()
        };
        let Some(entries) = node.as_map() else {
            self.error(
                &rat,
                node.line,
                format!(
                    "a rule is a mapping with `if` and `serve`, found {}",
                    node.kind_name()
                ),
            );
            return None;
        };
        self.check_fields(&rat, entries, RULE_FIELDS, "a rule");
        let condition = match node.get("if") {
            Some(cond) => self.condition(&rat, cond, scope, 0).map(|(c, _)| c),
            None => Some(Condition::All(Vec::new())),
        };
        let serve = match node.get("serve") {
            Some(s) => self.serve(&rat, def, s, scope),
            None => {
                self.error(
                    &rat,
                    node.line,
                    "missing `serve`: a variant name or `{split: {...}}`",
                );
                None
            }
        };
        Some(Rule {
            id,
            condition: condition?,
            serve: serve?,
        })
    }

    /// `serve: VARIANT` or `serve: {split: {a: 10, b: 90}, bucket-by: org.id}`.
    fn serve(
        &mut self,
        at: &At<'_>,
        def: &FlagDef<'_>,
        node: &Node,
        scope: &mut Scope<'_>,
    ) -> Option<Serve> {
        let Some(entries) = node.as_map() else {
            return self
                .variant_ref(at, node, &def.variants)
                .map(Serve::Variant);
        };
        self.check_fields(at, entries, SPLIT_FIELDS, "a split");
        let Some(split) = node.get("split") else {
            self.error(
                at,
                node.line,
                "`serve` is a variant name or a mapping with `split`",
            );
            return None;
        };
        let Some(parts) = split.as_map() else {
            self.error(
                at,
                split.line,
                "`split` must map variant names to percentages",
            );
            return None;
        };
        let mut weights = Vec::with_capacity(parts.len());
        let mut total: u64 = 0;
        let mut ok = true;
        for part in parts {
            let Some(i) = def.variants.iter().position(|v| v.name == part.key) else {
                let names: Vec<&str> = def.variants.iter().map(|v| v.name.as_str()).collect();
                self.error(
                    at,
                    part.line,
                    format!(
                        "unknown variant `{}`; this flag's variants are: {}",
                        part.key,
                        names.join(", ")
                    ),
                );
                ok = false;
                continue;
            };
            let percent = match part.value.value {
                Value::Int(i) => i as f64,
                Value::Float(f) => f,
                _ => f64::NAN,
            };
            let thousandths = (percent * 1000.0).round();
            if !(0.0..=100.0).contains(&percent) || (percent * 1000.0 - thousandths).abs() > 1e-6 {
                self.error(
                    at,
                    part.value.line,
                    "a split percentage is a number from 0 to 100 with at most 3 decimals",
                );
                ok = false;
                continue;
            }
            total += thousandths as u64;
            weights.push((i as VariantId, thousandths as u32));
        }
        if ok && total != u64::from(shared_eval::BUCKETS) {
            self.error(
                at,
                split.line,
                format!(
                    "split percentages add up to {}%, not 100%",
                    total as f64 / 1000.0
                ),
            );
            ok = false;
        }
        if weights.iter().map(|(v, _)| v).collect::<HashSet<_>>().len() != weights.len() {
            self.error(at, split.line, "a variant appears twice in the split");
            ok = false;
        }
        let bucket_by = match node.get("bucket-by") {
            Some(n) => self.attr_path(at, n),
            None => Some(vec![TARGETING_KEY.to_owned()]),
        };
        let bucket_by = scope.tables.attr(bucket_by?);
        ok.then_some(Serve::Split(Split { bucket_by, weights }))
    }

    fn attr_path(&mut self, at: &At<'_>, node: &Node) -> Option<Vec<String>> {
        let Some(text) = node.as_str() else {
            self.error(
                at,
                node.line,
                format!(
                    "an attribute path is a string like `user.plan`, found {}",
                    node.kind_name()
                ),
            );
            return None;
        };
        let path: Vec<String> = text.split('.').map(str::to_owned).collect();
        if path.iter().any(|s| s.is_empty()) || path.len() > 16 {
            self.error(
                at,
                node.line,
                format!(
                    "invalid attribute path `{text}`: use dot-separated names like `user.plan`"
                ),
            );
            return None;
        }
        Some(path)
    }

    /// Compiles a condition; returns it with its depth (see [`MAX_RULE_DEPTH`]).
    fn condition(
        &mut self,
        at: &At<'_>,
        node: &Node,
        scope: &mut Scope<'_>,
        depth: usize,
    ) -> Option<(Condition, usize)> {
        if depth >= MAX_RULE_DEPTH {
            self.error(
                at,
                node.line,
                format!("conditions nested more than {MAX_RULE_DEPTH} levels deep"),
            );
            return None;
        }
        let result = match &node.value {
            // A bare list is shorthand for `all`.
            Value::Seq(items) => self
                .conditions(at, items, scope, depth)
                .map(|(cs, d)| (Condition::All(cs), d + 1)),
            Value::Map(entries) => self.condition_map(at, node, entries, scope, depth),
            _ => {
                self.error(
                    at,
                    node.line,
                    format!("a condition is a mapping (`attr:` + operator, `all`, `any`, `not` or `segment`), found {}", node.kind_name()),
                );
                None
            }
        }?;
        if depth + result.1 > MAX_RULE_DEPTH {
            self.error(at, node.line, format!("conditions (with the segments they use) nest {} levels deep, over the limit of {MAX_RULE_DEPTH}", depth + result.1));
            return None;
        }
        Some(result)
    }

    fn conditions(
        &mut self,
        at: &At<'_>,
        items: &[Node],
        scope: &mut Scope<'_>,
        depth: usize,
    ) -> Option<(Vec<Condition>, usize)> {
        let mut out = Vec::with_capacity(items.len());
        let mut max_depth = 0;
        let mut ok = true;
        for item in items {
            match self.condition(at, item, scope, depth + 1) {
                Some((c, d)) => {
                    max_depth = max_depth.max(d);
                    out.push(c);
                }
                None => ok = false,
            }
        }
        ok.then_some((out, max_depth))
    }

    fn condition_map(
        &mut self,
        at: &At<'_>,
        node: &Node,
        entries: &[Entry],
        scope: &mut Scope<'_>,
        depth: usize,
    ) -> Option<(Condition, usize)> {
        let combinators: Vec<&Entry> = entries
            .iter()
            .filter(|e| matches!(e.key.as_str(), "all" | "any" | "not" | "segment"))
            .collect();
        if let [combinator] = combinators.as_slice() {
            if entries.len() > 1 {
                self.error(
                    at,
                    node.line,
                    format!(
                        "`{}` must be alone in its mapping; wrap siblings in `all:`",
                        combinator.key
                    ),
                );
                return None;
            }
            let inner = &combinator.value;
            return match combinator.key.as_str() {
                "all" | "any" => {
                    let Value::Seq(items) = &inner.value else {
                        self.error(
                            at,
                            inner.line,
                            format!("`{}` takes a list of conditions", combinator.key),
                        );
                        return None;
                    };
                    let (cs, d) = self.conditions(at, items, scope, depth)?;
                    let c = if combinator.key == "all" {
                        Condition::All(cs)
                    } else {
                        Condition::Any(cs)
                    };
                    Some((c, d + 1))
                }
                "not" => {
                    let (c, d) = self.condition(at, inner, scope, depth + 1)?;
                    Some((Condition::Not(Box::new(c)), d + 1))
                }
                _ => {
                    let Some(key) = inner.as_str() else {
                        self.error(at, inner.line, "`segment` takes a segment key");
                        return None;
                    };
                    scope.used.insert(key.to_owned());
                    match scope.segments.get(key) {
                        Some(&Some((id, d))) => Some((Condition::Segment(id), d + 1)),
                        Some(None) => None,
                        None => {
                            self.error(
                                at,
                                inner.line,
                                format!(
                                    "unknown segment `{key}` (segments live in segments/<key>.yaml)"
                                ),
                            );
                            None
                        }
                    }
                }
            };
        }
        if combinators.len() > 1 {
            self.error(
                at,
                node.line,
                "a condition has one of `all`, `any`, `not`, `segment`: wrap them in `all:`",
            );
            return None;
        }
        // `attr: PATH` + exactly one operator.
        let Some(attr_node) = node.get("attr") else {
            let unknown: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
            self.error(
                at,
                node.line,
                format!("a condition needs `attr:` and an operator, or one of `all`, `any`, `not`, `segment` (found: {})", unknown.join(", ")),
            );
            return None;
        };
        let ops: Vec<&Entry> = entries.iter().filter(|e| e.key != "attr").collect();
        let op_entry = match ops.as_slice() {
            [op] => *op,
            [] => {
                self.error(
                    at,
                    node.line,
                    format!(
                        "missing operator after `attr`; one of: {}",
                        OPERATORS.join(", ")
                    ),
                );
                return None;
            }
            [_, second, ..] => {
                self.error(
                    at,
                    second.line,
                    "one operator per test; combine tests with `all:` or `any:`",
                );
                return None;
            }
        };
        let path = self.attr_path(at, attr_node);
        let op = self.op(at, op_entry, scope);
        let attr = scope.tables.attr(path?);
        let (op, negate) = op?;
        let test = Condition::Test(Test { attr, op });
        Some(if negate {
            (Condition::Not(Box::new(test)), 2)
        } else {
            (test, 1)
        })
    }

    /// Compiles `operator: operand`; the bool is "wrap in `not`" (`exists: false`).
    fn op(&mut self, at: &At<'_>, entry: &Entry, scope: &mut Scope<'_>) -> Option<(Op, bool)> {
        let operand = &entry.value;
        let line = operand.line;
        let op = match entry.key.as_str() {
            "equals" => Op::Equals(self.scalar_operand(at, entry)?),
            "not-equals" => Op::NotEquals(self.scalar_operand(at, entry)?),
            "contains" => Op::Contains(self.scalar_operand(at, entry)?),
            "in" => Op::In(self.list_operand(at, entry, scope)?),
            "not-in" => Op::NotIn(self.list_operand(at, entry, scope)?),
            "starts-with" => Op::StartsWith(self.string_operand(at, entry)?.to_owned()),
            "ends-with" => Op::EndsWith(self.string_operand(at, entry)?.to_owned()),
            "matches" => {
                let source = self.string_operand(at, entry)?.to_owned();
                if let Err(why) = check_regex(&source) {
                    self.error(at, line, format!("bad regex: {why}"));
                    return None;
                }
                Op::Matches(scope.tables.regex(&source))
            }
            "lt" | "le" | "gt" | "ge" => {
                let n = match operand.value {
                    Value::Int(i) => i as f64,
                    Value::Float(f) if f.is_finite() => f,
                    _ => {
                        self.error(
                            at,
                            line,
                            format!(
                                "`{}` takes a number, found {}",
                                entry.key,
                                operand.kind_name()
                            ),
                        );
                        return None;
                    }
                };
                match entry.key.as_str() {
                    "lt" => Op::Lt(n),
                    "le" => Op::Le(n),
                    "gt" => Op::Gt(n),
                    _ => Op::Ge(n),
                }
            }
            "before" | "after" => {
                let ms = self.time_operand(at, entry)?;
                if entry.key == "before" {
                    Op::Before(ms)
                } else {
                    Op::After(ms)
                }
            }
            "exists" => match operand.value {
                Value::Bool(b) => return Some((Op::Exists, !b)),
                _ => {
                    self.error(at, line, "`exists` takes true or false");
                    return None;
                }
            },
            key if key.starts_with("semver-") => {
                let cmp = match &key["semver-".len()..] {
                    "eq" => SemVerCmp::Eq,
                    "ne" => SemVerCmp::Ne,
                    "lt" => SemVerCmp::Lt,
                    "le" => SemVerCmp::Le,
                    "gt" => SemVerCmp::Gt,
                    "ge" => SemVerCmp::Ge,
                    "caret" => SemVerCmp::Caret,
                    "tilde" => SemVerCmp::Tilde,
                    _ => {
                        self.unknown_operator(at, entry);
                        return None;
                    }
                };
                let Some(text) = operand.as_str() else {
                    self.error(
                        at,
                        line,
                        format!(
                            "`{key}` takes a version string like \"2.4.0\" (quote it), found {}",
                            operand.kind_name()
                        ),
                    );
                    return None;
                };
                match shared_eval::parse_semver(text) {
                    Some(v) => Op::SemVer(cmp, v),
                    None => {
                        self.error(
                            at,
                            line,
                            format!(
                                "bad version `{text}`: expected MAJOR.MINOR.PATCH[-PRE][+BUILD]"
                            ),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.unknown_operator(at, entry);
                return None;
            }
        };
        Some((op, false))
    }

    fn unknown_operator(&mut self, at: &At<'_>, entry: &Entry) {
        let hint = OPERATORS
            .iter()
            .find(|op| edit_distance(op, &entry.key) <= 2)
            .map(|op| format!(" (did you mean `{op}`?)"))
            .unwrap_or_default();
        self.error(
            at,
            entry.line,
            format!(
                "unknown operator `{}`{hint}; operators are: {}",
                entry.key,
                OPERATORS.join(", ")
            ),
        );
    }

    fn scalar_operand(&mut self, at: &At<'_>, entry: &Entry) -> Option<Json> {
        match entry.value.value {
            Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_) => {
                Some(entry.value.to_json())
            }
            _ => {
                self.error(
                    at,
                    entry.value.line,
                    format!(
                        "`{}` takes a string, number or boolean, found {}",
                        entry.key,
                        entry.value.kind_name()
                    ),
                );
                None
            }
        }
    }

    fn string_operand<'n>(&mut self, at: &At<'_>, entry: &'n Entry) -> Option<&'n str> {
        let s = entry.value.as_str();
        if s.is_none() {
            self.error(
                at,
                entry.value.line,
                format!(
                    "`{}` takes a string (quote it), found {}",
                    entry.key,
                    entry.value.kind_name()
                ),
            );
        }
        s
    }

    /// `in: [a, b]` or `in: {file: lists/x.txt}` (one value per line, `#` comments).
    fn list_operand(
        &mut self,
        at: &At<'_>,
        entry: &Entry,
        scope: &mut Scope<'_>,
    ) -> Option<ListId> {
        let node = &entry.value;
        let items: Vec<String> = match &node.value {
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match &item.value {
                        Value::Str(s) => out.push(s.clone()),
                        // Numbers in the canonical text the evaluator looks them up by.
                        Value::Int(_) | Value::Float(_) => {
                            match shared_eval::list_key(&item.to_json()) {
                                Some(key) => out.push(key),
                                None => {
                                    self.error(at, item.line, "list numbers must be finite");
                                    return None;
                                }
                            }
                        }
                        _ => {
                            self.error(
                                at,
                                item.line,
                                format!(
                                    "`{}` list items are strings or numbers, found {}",
                                    entry.key,
                                    item.kind_name()
                                ),
                            );
                            return None;
                        }
                    }
                }
                out
            }
            Value::Map(entries) if entries.len() == 1 && entries[0].key == "file" => {
                let Some(rel) = entries[0].value.as_str() else {
                    self.error(
                        at,
                        entries[0].value.line,
                        "`file` takes a path relative to the flags directory",
                    );
                    return None;
                };
                match self.read_list(rel) {
                    Ok(items) => items,
                    Err(why) => {
                        self.error(
                            at,
                            entries[0].value.line,
                            format!("list file `{rel}`: {why}"),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.error(
                    at,
                    node.line,
                    format!(
                        "`{}` takes a list of values or `{{file: lists/NAME.txt}}`",
                        entry.key
                    ),
                );
                return None;
            }
        };
        if items.len() > MAX_LIST_LEN {
            self.error(
                at,
                node.line,
                format!(
                    "list of {} values, over the limit of {MAX_LIST_LEN}",
                    items.len()
                ),
            );
            return None;
        }
        Some(scope.tables.list(items))
    }

    fn read_list(&mut self, rel: &str) -> Result<Vec<String>, String> {
        let rel_path = Path::new(rel);
        if rel_path.is_absolute()
            || rel_path
                .components()
                .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err("must be a relative path inside the flags directory (no `..`)".into());
        }
        let Some(root) = &self.root else {
            return Err(
                "list files need a flags directory (compile the directory, not a single file)"
                    .into(),
            );
        };
        let path = root.join(rel_path);
        if let Some(cached) = self.list_cache.get(&path) {
            return cached.clone();
        }
        let result = read_list_file(&path);
        self.list_cache.insert(path, result.clone());
        result
    }

    fn time_operand(&mut self, at: &At<'_>, entry: &Entry) -> Option<i64> {
        let node = &entry.value;
        let parsed = match &node.value {
            // Epoch seconds, or milliseconds above 1e11 (the same rule the evaluator applies).
            Value::Int(i) if i.unsigned_abs() as f64 > shared_eval::EPOCH_MILLIS_THRESHOLD => {
                Some(*i)
            }
            Value::Int(i) => i.checked_mul(1000),
            Value::Str(s) => parse_time(s),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                at,
                node.line,
                format!("`{}` takes an RFC 3339 time (\"2024-01-01T00:00:00Z\"), a date (2024-01-01) or epoch seconds", entry.key),
            );
        }
        parsed
    }
}

/// Tables and segment resolution for one environment's compilation.
struct Scope<'a> {
    tables: &'a mut Tables,
    segments: &'a HashMap<String, Option<(SegmentId, usize)>>,
    used: &'a mut HashSet<String>,
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Boolean => "a boolean",
        ValueType::String => "a string",
        ValueType::Number => "a number",
        ValueType::Object => "an object",
    }
}

/// A scalar's text (variant names may be written unquoted: `true`, `1`).
fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn collect_segment_refs(node: &Node, out: &mut Vec<String>) {
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

fn read_list_file(path: &Path) -> Result<Vec<String>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if meta.len() > MAX_LIST_FILE_BYTES as u64 {
        return Err(format!(
            "{} bytes, over the {MAX_LIST_FILE_BYTES}-byte limit",
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// RFC 3339 (parsed by the evaluator's own parser, so both sides agree), or a bare date
/// (midnight UTC), to epoch milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Some(ms) = shared_eval::parse_rfc3339(s) {
        return Some(ms);
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// Checks a regex exactly as the edge will compile it (syntax, size, the Unicode classes the
/// edge does not carry), as one line fit for a diagnostic.
pub fn check_regex(source: &str) -> Result<(), String> {
    shared_eval::validate_regex(source).map_err(|message| {
        let mut lines = message.lines();
        let first = lines.next().unwrap_or("invalid regex");
        match lines.last() {
            // regex-syntax's multi-line report: keep the headline and the final "error: ..." line.
            Some(last) => {
                let last = last.trim();
                let head = first.trim_end_matches("regex parse error:").trim_end();
                format!("{head} {}", last.strip_prefix("error: ").unwrap_or(last))
            }
            None => first.to_owned(),
        }
    })
}

/// Levenshtein distance, for "did you mean" hints on short operator names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j]))
                .min(row[j] + 1)
                .min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
