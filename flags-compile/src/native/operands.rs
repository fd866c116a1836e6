//! Operators and their operands: `operator: operand` to an [`Op`], lists read from files,
//! versions, times and regexes parsed as the edge will parse them.

use super::*;
use crate::suggest::edit_distance;

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
    /// Compiles `operator: operand`; the bool is "wrap in `not`" (`exists: false`).
    pub(super) fn op(
        &mut self,
        at: &At<'_>,
        entry: &Entry,
        scope: &mut Scope<'_>,
    ) -> Option<(Op, bool)> {
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
                match check_regex(&source) {
                    Ok(regex) => Op::Matches(scope.tables.regex(regex)),
                    Err(why) => {
                        self.error(at, line, format!("bad regex: {why}"));
                        return None;
                    }
                }
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
                let Some(cmp) = SemVerCmp::from_name(&key["semver-".len()..]) else {
                    self.unknown_operator(at, entry);
                    return None;
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

    pub(super) fn unknown_operator(&mut self, at: &At<'_>, entry: &Entry) {
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

    pub(super) fn scalar_operand(&mut self, at: &At<'_>, entry: &Entry) -> Option<Json> {
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

    pub(super) fn string_operand<'n>(&mut self, at: &At<'_>, entry: &'n Entry) -> Option<&'n str> {
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
    pub(super) fn list_operand(
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

    pub(super) fn read_list(&mut self, rel: &str) -> Result<Vec<String>, String> {
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

    pub(super) fn time_operand(&mut self, at: &At<'_>, entry: &Entry) -> Option<i64> {
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

pub(super) fn read_list_file(path: &Path) -> Result<Vec<String>, String> {
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

/// Compiles a regex to the DFA the blob carries for the edge (checking syntax, size and the
/// Unicode classes the edge does not carry); an error is one line fit for a diagnostic.
pub fn check_regex(source: &str) -> Result<shared_eval::Regex, String> {
    shared_eval::compile_regex(source).map_err(|message| {
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
