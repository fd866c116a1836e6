//! Lowering: environments, rules, serves and conditions to the blob's model, with attribute
//! paths, lists and regexes interned into [`Tables`] and segments/prerequisites resolved.

use super::*;
use crate::schedule;

/// Interned tables. The requested environment compiles into the body's; other environments
/// compile into a scratch copy that is thrown away (checked, not shipped).
#[derive(Default)]
pub(super) struct Tables {
    pub(super) attrs: Vec<Vec<String>>,
    pub(super) attr_ids: HashMap<Vec<String>, AttrId>,
    pub(super) lists: Vec<Vec<String>>,
    pub(super) list_ids: HashMap<Vec<String>, ListId>,
    pub(super) regexes: Vec<Regex>,
    pub(super) regex_ids: HashMap<String, RegexId>,
}

impl Tables {
    pub(super) fn attr(&mut self, path: Vec<String>) -> AttrId {
        if let Some(&id) = self.attr_ids.get(&path) {
            return id;
        }
        let id = self.attrs.len() as AttrId;
        self.attrs.push(path.clone());
        self.attr_ids.insert(path, id);
        id
    }

    pub(super) fn list(&mut self, mut items: Vec<String>) -> ListId {
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

    pub(super) fn regex(&mut self, regex: Regex) -> RegexId {
        if let Some(&id) = self.regex_ids.get(&regex.source) {
            return id;
        }
        let id = self.regexes.len() as RegexId;
        self.regex_ids.insert(regex.source.clone(), id);
        self.regexes.push(regex);
        id
    }
}

impl Compiler {
    pub(super) fn prerequisites(
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
    pub(super) fn environment(
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
                                match self.ring_rule(def, item, &rule, scope) {
                                    Some(Some(ring)) => rules.push((ring, item.line)),
                                    Some(None) => ok = false,
                                    None => {}
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

    pub(super) fn rule(
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
    pub(super) fn serve(
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
        if let Some(rollout) = node.get("rollout") {
            return self.rollout(at, def, node, rollout, scope);
        }
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

    /// `serve: {rollout: {...}}` (`schedule.rs`): the first stage's split.
    fn rollout(
        &mut self,
        at: &At<'_>,
        def: &FlagDef<'_>,
        node: &Node,
        rollout: &Node,
        scope: &mut Scope<'_>,
    ) -> Option<Serve> {
        if node.get("split").is_some() {
            self.error(
                at,
                rollout.line,
                "a rule serves a `split` or a `rollout`, not both",
            );
            return None;
        }
        let names: Vec<&str> = def.variants.iter().map(|v| v.name.as_str()).collect();
        let rule = at.rule.clone().unwrap_or_default();
        let rings_known = self.ring_segments(at, rollout, scope);
        let schedule = match schedule::parse(rollout, &def.key, &rule, &names) {
            Ok(schedule) => {
                self.schedules
                    .push((at.file.to_path_buf(), rollout.line, schedule.clone()));
                schedule
            }
            Err(errors) => {
                for (line, message) in errors {
                    self.error(at, line, message);
                }
                return None;
            }
        };
        let index = |name: &str| names.iter().position(|n| *n == name).unwrap_or(0) as VariantId;
        let weights = schedule::weights(
            schedule::stage_percent(&schedule, 1),
            index(&schedule.variant),
            index(&schedule.others),
        );
        let bucket_by = match node.get("bucket-by") {
            Some(n) => self.attr_path(at, n),
            None => Some(vec![TARGETING_KEY.to_owned()]),
        };
        let bucket_by = scope.tables.attr(bucket_by?);
        rings_known.then_some(Serve::Split(Split { bucket_by, weights }))
    }

    /// Marks a rollout's ring segments used and reports unknown ones; false if any is unknown.
    fn ring_segments(&mut self, at: &At<'_>, rollout: &Node, scope: &mut Scope<'_>) -> bool {
        let mut known = true;
        let stages = match rollout.get("stages").map(|n| &n.value) {
            Some(Value::Seq(items)) => items.as_slice(),
            _ => &[],
        };
        for stage in stages {
            let Some(key) = stage.get("segment").and_then(Node::as_str) else {
                continue;
            };
            scope.used.insert(key.to_owned());
            if !scope.segments.contains_key(key) {
                self.error(
                    at,
                    stage.line,
                    format!("unknown segment `{key}` (segments live in segments/<key>.yaml)"),
                );
                known = false;
            }
        }
        known
    }

    /// A rollout with rings gets its ring rule right before it (`schedule::ring_rule`), at
    /// stage 1. `None`: no rings (or no rollout); `Some(None)`: a ring names no known segment
    /// (reported by [`Compiler::ring_segments`]).
    fn ring_rule(
        &self,
        def: &FlagDef<'_>,
        node: &Node,
        rule: &Rule,
        scope: &Scope<'_>,
    ) -> Option<Option<Rule>> {
        let rollout = node.get("serve")?.get("rollout")?;
        let names: Vec<&str> = def.variants.iter().map(|v| v.name.as_str()).collect();
        // Errors in the schedule were reported when the rule's `serve` was lowered.
        let schedule = schedule::parse(rollout, &def.key, &rule.id, &names).ok()?;
        let treatment = names.iter().position(|n| *n == schedule.variant)? as VariantId;
        let segment_id = |key: &str| match scope.segments.get(key) {
            Some(Some((id, _))) => Some(*id),
            _ => None,
        };
        schedule::ring_rule(rule, &schedule, 1, segment_id, treatment)
    }

    pub(super) fn attr_path(&mut self, at: &At<'_>, node: &Node) -> Option<Vec<String>> {
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
    pub(super) fn condition(
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

    pub(super) fn conditions(
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

    pub(super) fn condition_map(
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
}
