//! Flag-level and rule-level differences between two compiled bodies, for people.
//!
//! Two blobs cannot be compared structurally: attribute paths, lists, regexes, segments and
//! variants are interned per blob, so the same rule has different indices in each. Instead
//! each flag is rendered into labelled lines with every index resolved (`rule ios-ca: if
//! device.os == "ios" and ... then serve on`), and the lines are compared by label. The same
//! rendering makes the output readable. Segments a flag uses are rendered with it, so changing a
//! segment shows up on every flag that depends on it. Large lists are shown by size and a short
//! digest of their content, so a changed list is still detected.
//!
//! [`diff`] never panics on inconsistent bodies: an index out of range renders as `#<index>`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared_eval::{Body, Condition, Flag, Op, SemVerCmp, Serve, Targeting};

/// How one flag differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "change", content = "details")]
pub enum FlagChange {
    /// Only in the new body.
    Added,
    /// Only in the old body.
    Removed,
    /// In both, different; one readable line per differing aspect (`enabled: false -> true`).
    Changed(Vec<String>),
}

/// One flag's difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagDiff {
    /// The flag's key.
    pub key: String,
    /// What happened to it.
    #[serde(flatten)]
    pub change: FlagChange,
}

/// Every flag that differs between two bodies, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BodyDiff {
    /// Differing flags only.
    pub flags: Vec<FlagDiff>,
}

impl BodyDiff {
    /// True when every flag compiles identically.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The keys added, removed and changed.
    pub fn summary(&self) -> ChangeSummary {
        let mut summary = ChangeSummary::default();
        for flag in &self.flags {
            let list = match flag.change {
                FlagChange::Added => &mut summary.added,
                FlagChange::Removed => &mut summary.removed,
                FlagChange::Changed(_) => &mut summary.changed,
            };
            list.push(flag.key.clone());
        }
        summary
    }
}

impl fmt::Display for BodyDiff {
    /// `+ key` / `- key` / `~ key` followed by indented details, one flag per block.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for flag in &self.flags {
            match &flag.change {
                FlagChange::Added => writeln!(f, "+ {}", flag.key)?,
                FlagChange::Removed => writeln!(f, "- {}", flag.key)?,
                FlagChange::Changed(details) => {
                    writeln!(f, "~ {}", flag.key)?;
                    for detail in details {
                        writeln!(f, "    {detail}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// What changed from `old` to `new`, flag by flag.
pub fn diff(old: &Body, new: &Body) -> BodyDiff {
    let old_flags: BTreeMap<&str, &Flag> = old.flags.iter().map(|f| (f.key.as_str(), f)).collect();
    let new_flags: BTreeMap<&str, &Flag> = new.flags.iter().map(|f| (f.key.as_str(), f)).collect();
    let keys: BTreeSet<&str> = old_flags.keys().chain(new_flags.keys()).copied().collect();
    let mut flags = Vec::new();
    for key in keys {
        let change = match (old_flags.get(key), new_flags.get(key)) {
            (None, Some(_)) => FlagChange::Added,
            (Some(_), None) => FlagChange::Removed,
            (Some(before), Some(after)) => {
                let details = diff_views(&render_flag(old, before), &render_flag(new, after));
                if details.is_empty() {
                    continue;
                }
                FlagChange::Changed(details)
            }
            (None, None) => continue,
        };
        flags.push(FlagDiff {
            key: key.to_owned(),
            change,
        });
    }
    BodyDiff { flags }
}

/// A flag as labelled lines, in display order; labels are unique within a flag.
type View = Vec<(String, String)>;

fn diff_views(old: &View, new: &View) -> Vec<String> {
    let old_map: BTreeMap<&str, &str> = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let new_map: BTreeMap<&str, &str> = new.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut lines = Vec::new();
    // Old order first (so removals sit where they were), then labels only in the new view.
    for (label, before) in old {
        match new_map.get(label.as_str()) {
            Some(after) if after == before => {}
            Some(after) if before.len() + after.len() <= 60 => {
                lines.push(format!("{label}: {before} -> {after}"))
            }
            Some(after) => lines.push(format!(
                "{label}:\n        was {before}\n        now {after}"
            )),
            None => lines.push(format!("- {label}: {before}")),
        }
    }
    for (label, after) in new {
        if !old_map.contains_key(label.as_str()) {
            lines.push(format!("+ {label}: {after}"));
        }
    }
    lines
}

fn render_flag(body: &Body, flag: &Flag) -> View {
    let variant = |id: u16| {
        flag.variants
            .get(usize::from(id))
            .map_or_else(|| format!("#{id}"), |v| v.name.clone())
    };
    let mut view: View = vec![
        ("kind".into(), format!("{:?}", flag.kind)),
        (
            "type".into(),
            format!("{:?}", flag.value_type).to_lowercase(),
        ),
        ("enabled".into(), flag.enabled.to_string()),
        ("killed".into(), flag.killed.to_string()),
    ];
    for v in &flag.variants {
        view.push((format!("variant {}", v.name), v.value.to_string()));
    }
    view.push((
        "default variant".into(),
        flag.default_variant
            .map_or("(caller's default)".into(), variant),
    ));
    view.push((
        "off variant".into(),
        flag.off_variant
            .map_or("(caller's default)".into(), variant),
    ));
    for prerequisite in &flag.prerequisites {
        let key = body
            .flags
            .get(prerequisite.flag as usize)
            .map_or_else(|| format!("#{}", prerequisite.flag), |f| f.key.clone());
        let allowed: Vec<String> = prerequisite
            .variants
            .iter()
            .map(|&id| {
                body.flags
                    .get(prerequisite.flag as usize)
                    .and_then(|f| f.variants.get(usize::from(id)))
                    .map_or_else(|| format!("#{id}"), |v| v.name.clone())
            })
            .collect();
        view.push((
            format!("prerequisite {key}"),
            format!("is one of [{}]", allowed.join(", ")),
        ));
    }
    let mut segments = BTreeSet::new();
    match &flag.targeting {
        Targeting::Rules { rules, fallthrough } => {
            let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
            view.push(("rule order".into(), ids.join(", ")));
            for rule in rules {
                let condition = render_condition(body, &rule.condition, &mut segments);
                let serve = render_serve(body, &rule.serve, &variant);
                view.push((
                    format!("rule {}", rule.id),
                    format!("if {condition} then {serve}"),
                ));
            }
            view.push((
                "fallthrough".into(),
                render_serve(body, fallthrough, &variant),
            ));
        }
        Targeting::Logic(expr) => {
            let json =
                serde_json::to_string(expr).unwrap_or_else(|e| format!("(unprintable: {e})"));
            view.push(("targeting (JSONLogic)".into(), json));
        }
    }
    // Segments used by segments, until no new ones appear (segments only refer to lower indices).
    let mut rendered = BTreeSet::new();
    while let Some(id) = segments.iter().copied().find(|id| !rendered.contains(id)) {
        rendered.insert(id);
        let Some(segment) = body.segments.get(id as usize) else {
            continue;
        };
        let condition = render_condition(body, &segment.condition, &mut segments);
        view.push((format!("segment {}", segment.key), condition));
    }
    if !flag.salt.is_empty() {
        view.push(("salt".into(), flag.salt.clone()));
    }
    if flag.signed_bucketing_only {
        view.push(("bucket unsigned key".into(), "false".into()));
    }
    let unsigned: Vec<String> = flag.unsigned_attrs.iter().map(|&a| attr(body, a)).collect();
    view.push((
        "unsigned attributes".into(),
        format!("[{}]", unsigned.join(", ")),
    ));
    view.push((
        "metadata".into(),
        serde_json::Value::Object(flag.metadata.clone()).to_string(),
    ));
    view
}

fn attr(body: &Body, id: u32) -> String {
    body.attrs
        .get(id as usize)
        .map_or_else(|| format!("#{id}"), |path| path.join("."))
}

fn render_serve(body: &Body, serve: &Serve, variant: &dyn Fn(u16) -> String) -> String {
    match serve {
        Serve::Variant(id) => format!("serve {}", variant(*id)),
        Serve::Split(split) => {
            let parts: Vec<String> = split
                .weights
                .iter()
                .map(|&(id, weight)| {
                    let percent = f64::from(weight) * 100.0 / f64::from(shared_eval::BUCKETS);
                    format!("{} {percent}%", variant(id))
                })
                .collect();
            format!(
                "split by {}: {}",
                attr(body, split.bucket_by),
                parts.join(", ")
            )
        }
    }
}

fn render_condition(body: &Body, condition: &Condition, segments: &mut BTreeSet<u32>) -> String {
    let join = |items: &[Condition], word: &str, segments: &mut BTreeSet<u32>| -> String {
        let parts: Vec<String> = items
            .iter()
            .map(|c| render_condition(body, c, segments))
            .collect();
        if parts.len() == 1 {
            parts.concat()
        } else {
            format!("({})", parts.join(&format!(" {word} ")))
        }
    };
    match condition {
        Condition::All(items) if items.is_empty() => "always".into(),
        Condition::Any(items) if items.is_empty() => "never".into(),
        Condition::All(items) => join(items, "and", segments),
        Condition::Any(items) => join(items, "or", segments),
        Condition::Not(inner) => format!("not {}", render_condition(body, inner, segments)),
        Condition::Segment(id) => {
            segments.insert(*id);
            match body.segments.get(*id as usize) {
                Some(segment) => format!("in segment {}", segment.key),
                None => format!("in segment #{id}"),
            }
        }
        Condition::Test(test) => format!("{} {}", attr(body, test.attr), render_op(body, &test.op)),
    }
}

fn render_op(body: &Body, op: &Op) -> String {
    let list = |id: u32| match body.lists.get(id as usize) {
        Some(items) if items.len() <= 5 => format!("[{}]", items.join(", ")),
        Some(items) => {
            // Show the size and a digest, so two large lists differing anywhere still differ.
            let mut hasher = Sha256::new();
            for item in items {
                hasher.update(item.as_bytes());
                hasher.update([0]);
            }
            let digest = hasher.finalize();
            let mut short = String::new();
            for byte in digest.iter().take(4) {
                let _ = write!(short, "{byte:02x}");
            }
            format!(
                "[{}, ... {} items, digest {short}]",
                items[..3].join(", "),
                items.len()
            )
        }
        None => format!("list #{id}"),
    };
    match op {
        Op::Equals(v) => format!("== {v}"),
        Op::NotEquals(v) => format!("!= {v}"),
        Op::In(id) => format!("in {}", list(*id)),
        Op::NotIn(id) => format!("not in {}", list(*id)),
        Op::Contains(v) => format!("contains {v}"),
        Op::StartsWith(s) => format!("starts with {s:?}"),
        Op::EndsWith(s) => format!("ends with {s:?}"),
        Op::Matches(id) => match body.regexes.get(*id as usize) {
            Some(regex) => format!("matches /{}/", regex.source),
            None => format!("matches regex #{id}"),
        },
        Op::Lt(n) => format!("< {n}"),
        Op::Le(n) => format!("<= {n}"),
        Op::Gt(n) => format!("> {n}"),
        Op::Ge(n) => format!(">= {n}"),
        Op::SemVer(cmp, version) => {
            let symbol = match cmp {
                SemVerCmp::Eq => "=",
                SemVerCmp::Ne => "!=",
                SemVerCmp::Lt => "<",
                SemVerCmp::Le => "<=",
                SemVerCmp::Gt => ">",
                SemVerCmp::Ge => ">=",
                SemVerCmp::Caret => "^",
                SemVerCmp::Tilde => "~",
            };
            let mut text = format!("{}.{}.{}", version.major, version.minor, version.patch);
            if !version.pre.is_empty() {
                text.push('-');
                text.push_str(&version.pre.join("."));
            }
            format!("semver {symbol} {text}")
        }
        Op::Before(ms) => format!("before {}", datetime(*ms)),
        Op::After(ms) => format!("after {}", datetime(*ms)),
        Op::Exists => "exists".into(),
    }
}

fn datetime(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms).map_or_else(
        || format!("{epoch_ms} ms"),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    )
}

/// Flags added, removed and changed between two blobs, by key (each list sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSummary {
    /// Flags only in the new blob.
    pub added: Vec<String>,
    /// Flags only in the old blob.
    pub removed: Vec<String>,
    /// Flags in both whose compiled form differs.
    pub changed: Vec<String>,
}

impl ChangeSummary {
    /// True when no flag changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// One line: `1 added (checkout-v2), 2 changed (dark-mode, beta)`, or `no flag changes`.
    pub fn one_line(&self) -> String {
        fn part(out: &mut Vec<String>, what: &str, keys: &[String]) {
            if keys.is_empty() {
                return;
            }
            const SHOWN: usize = 5;
            let mut names = keys
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if keys.len() > SHOWN {
                names.push_str(&format!(", +{} more", keys.len() - SHOWN));
            }
            out.push(format!("{} {what} ({names})", keys.len()));
        }
        let mut parts = Vec::new();
        part(&mut parts, "added", &self.added);
        part(&mut parts, "removed", &self.removed);
        part(&mut parts, "changed", &self.changed);
        if parts.is_empty() {
            "no flag changes".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CompileOptions, compile_path};

    /// Compiles `files` (name, YAML) for prod.
    fn body(files: &[(&str, &str)]) -> Body {
        let dir = tempfile::tempdir().unwrap();
        for (name, yaml) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, yaml).unwrap();
        }
        match compile_path(dir.path(), &CompileOptions::new("prod")) {
            Ok(compiled) => compiled.body,
            Err(diags) => panic!("{diags:?}"),
        }
    }

    const SEGMENT: &str =
        "key: staff\nowner: t\nif: { attr: user.email, ends-with: \"@example.com\" }\n";

    fn flag(key: &str, rules: &str) -> String {
        format!(
            "key: {key}\nowner: t\ntype: release\ndefault: off\nenvironments:\n  prod:\n    enabled: true\n    \
             rules:\n{rules}"
        )
    }

    #[test]
    fn lists_flag_and_rule_changes_across_differently_interned_blobs() {
        let staff_rule = "      - id: staff\n        if: { segment: staff }\n        serve: on\n";
        let plan_rule = "      - id: plan\n        if: { attr: user.plan, in: [pro, team] }\n        serve: on\n";
        let old = body(&[
            ("segments/staff.yaml", SEGMENT),
            ("flags/a.yaml", &flag("a", staff_rule)),
            ("flags/b.yaml", &flag("b", plan_rule)),
            ("flags/gone.yaml", &flag("gone", plan_rule)),
        ]);
        // `new-one` sorts first and uses other attributes, so every index shifts in the new
        // body; `a` is unchanged and must not be reported.
        let plan_rule_changed =
            "      - id: plan\n        if: { attr: user.plan, in: [pro] }\n        serve: on\n";
        let new = body(&[
            ("segments/staff.yaml", SEGMENT),
            (
                "flags/0-new.yaml",
                &flag(
                    "new-one",
                    "      - id: x\n        if: { attr: device.os, equals: ios }\n        serve: on\n",
                ),
            ),
            ("flags/a.yaml", &flag("a", staff_rule)),
            (
                "flags/b.yaml",
                &flag("b", &format!("{staff_rule}{plan_rule_changed}")),
            ),
        ]);
        let diff = diff(&old, &new);
        let summary = diff.summary();
        assert_eq!(summary.added, ["new-one"]);
        assert_eq!(summary.removed, ["gone"]);
        assert_eq!(summary.changed, ["b"]);
        let text = diff.to_string();
        assert!(
            text.contains("~ b\n    rule order: plan -> staff, plan\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "    rule plan:\n        was if user.plan in [pro, team] then serve on\n        now if user.plan in [pro] then serve on\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("+ rule staff: if in segment staff then serve on"),
            "{text}"
        );
        assert!(
            text.contains("+ segment staff: user.email ends with \"@example.com\""),
            "{text}"
        );

        // A segment change shows on every flag using it.
        let new_segment = SEGMENT.replace("@example.com", "@example.org");
        let changed = body(&[
            ("segments/staff.yaml", &new_segment),
            ("flags/a.yaml", &flag("a", staff_rule)),
            ("flags/b.yaml", &flag("b", plan_rule)),
            ("flags/gone.yaml", &flag("gone", plan_rule)),
        ]);
        assert_eq!(super::diff(&old, &changed).summary().changed, ["a"]);
        assert!(super::diff(&old, &old).is_empty());
    }
}
