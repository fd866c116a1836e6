//! Parsing and shape checks: each file to a [`FlagDef`] / [`SegmentDef`], fields, keys,
//! variants and dates checked before anything is resolved.

use super::*;

impl Compiler {
    pub(super) fn parse_file(&mut self, file: &SourceFile) -> Option<Node> {
        let at = At::file(&file.path);
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

    pub(super) fn reject_duplicates<'a>(
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
    pub(super) fn key_of(&mut self, file: &SourceFile, doc: &Node) -> Option<(String, usize)> {
        let at = At::file(&file.path);
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
        if !crate::limits::is_valid_key(&key) {
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

    pub(super) fn segment_def<'a>(&mut self, file: &'a SourceFile) -> Option<SegmentDef<'a>> {
        let doc = self.parse_file(file)?;
        let (key, line) = self.key_of(file, &doc)?;
        let at = At::segment(&file.path, &key);
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

    pub(super) fn flag_def<'a>(&mut self, file: &'a SourceFile) -> Option<FlagDef<'a>> {
        let doc = self.parse_file(file)?;
        let (key, line) = self.key_of(file, &doc)?;
        let at = At::flag(&file.path, &key);
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
        let signed_bucketing_only = self.bucket_unsigned_key(&at, &doc, kind);
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
            signed_bucketing_only,
            expires,
            review_by,
        })
    }

    /// `bucket-unsigned-key` (default `true`): whether the flag's splits may bucket by an
    /// unsigned targeting key. Returns `true` when they may not (it is `false`). A permission
    /// flag never does: `true` there would promise what the edge refuses, so it is an error.
    fn bucket_unsigned_key(&mut self, at: &At<'_>, doc: &Node, kind: FlagKind) -> bool {
        let Some(node) = doc.get("bucket-unsigned-key") else {
            return false;
        };
        match node.value {
            Value::Bool(true) if kind == FlagKind::Permission => {
                self.error(
                    at,
                    node.line,
                    "`bucket-unsigned-key: true` is not allowed on a permission flag: it grants \
                     access, so its splits bucket only by a signed targeting key (remove the \
                     field, or change `type`)",
                );
                false
            }
            Value::Bool(allowed) => !allowed,
            _ => {
                self.error(
                    at,
                    node.line,
                    format!(
                        "`bucket-unsigned-key` must be true or false, found {}",
                        node.kind_name()
                    ),
                );
                false
            }
        }
    }

    pub(super) fn date_field(
        &mut self,
        at: &At<'_>,
        doc: &Node,
        field: &str,
    ) -> Option<(NaiveDate, usize)> {
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

    /// `variants:` (a mapping name -> value, all of one type); absent means boolean on/off.
    pub(super) fn variants(
        &mut self,
        at: &At<'_>,
        doc: &Node,
    ) -> Option<(ValueType, Vec<Variant>)> {
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

    pub(super) fn variant_ref(
        &mut self,
        at: &At<'_>,
        node: &Node,
        variants: &[Variant],
    ) -> Option<VariantId> {
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
}
