//! Import of the OpenFeature flagd flag-definition format (JSON with `flags`, `$evaluators` and
//! JSONLogic `targeting`), compiled into the same [`Body`] as native flags.
//!
//! What maps to what:
//! - `state: ENABLED|DISABLED` -> [`Flag::enabled`]; a disabled flag has no `off_variant`, so the
//!   caller's default is served with reason DISABLED, as flagd does.
//! - `variants` -> [`Flag::variants`] (in key order); their common JSON type is the flag's
//!   [`ValueType`] (mixed types are an error).
//! - `defaultVariant` (a name, `null` or absent) -> [`Flag::default_variant`].
//! - `targeting` -> [`Targeting::Logic`], compiled by [`shared_eval::logic::compile_targeting`]
//!   with `$ref`s resolved from `$evaluators`; no targeting (or `{}`) -> an empty rule list
//!   falling through to the default variant (reason STATIC), or, without a default variant,
//!   a `null` expression (reason DEFAULT with the caller's value).
//! - `metadata` of the flag, merged over the file's top-level `metadata` -> [`Flag::metadata`].
//!
//! Every problem becomes a [`Diagnostic`] naming the file, the line of the flag's key (or the
//! line and column of a JSON syntax error) and the flag. As in flagd, a problem inside one flag
//! (an unknown operator, malformed targeting, a variant of the wrong type, ...) does not stop
//! the file: that flag compiles to a *broken flag* that answers `ERROR`/`PARSE_ERROR` with the
//! caller's default ([`logic::Expr::Invalid`], no variants), and its problems are returned
//! beside the body ([`compile_flagd_file`]). Problems of the file itself (not JSON, no `flags`,
//! duplicate keys) are errors.

use std::path::Path;

use serde_json::{Map, Value};
use shared_eval::{
    Body, Flag, FlagId, FlagKind, Serve, Targeting, ValueType, Variant, VariantId, logic,
};

use super::Diagnostic;

/// Compiles one flagd flag-definition JSON document (`source`, read from `file`) into a body,
/// broken flags included (see the module docs); [`compile_flagd_file`] also says which.
pub fn compile_flagd(
    source: &str,
    file: &Path,
    environment: &str,
) -> Result<Body, Vec<Diagnostic>> {
    compile_flagd_file(source, file, environment).map(|(body, _)| body)
}

/// Compiles one flagd document into a body plus one warning per broken flag (`file:line: flag
/// K: served as PARSE_ERROR: why`). `environment` is recorded for symmetry with native flags;
/// flagd files have one environment.
pub fn compile_flagd_file(
    source: &str,
    file: &Path,
    environment: &str,
) -> Result<(Body, Vec<Diagnostic>), Vec<Diagnostic>> {
    let _ = environment;
    let document: Value = serde_json::from_str(source).map_err(|e| {
        vec![Diagnostic::error(
            file,
            Some(e.line()),
            format!("not valid JSON (column {}): {e}", e.column()),
        )]
    })?;
    let Value::Object(document) = document else {
        return Err(vec![Diagnostic::error(
            file,
            Some(1),
            "a flagd file is a JSON object with a `flags` member",
        )]);
    };
    let mut errors = Vec::new();
    let evaluators = match document.get("$evaluators") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(e)) => e.clone(),
        Some(_) => {
            let line = line_of_key(source, 0, "$evaluators");
            errors.push(Diagnostic::error(
                file,
                line,
                "`$evaluators` must be an object",
            ));
            Map::new()
        }
    };
    let set_metadata = match document.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            let line = line_of_key(source, 0, "metadata");
            errors.push(Diagnostic::error(
                file,
                line,
                "the top-level `metadata` must be an object",
            ));
            Map::new()
        }
    };
    let flags_start = source.find("\"flags\"").unwrap_or(0);
    let definitions: Vec<(String, &Value)> = match document.get("flags") {
        Some(Value::Object(flags)) => flags.iter().map(|(k, v)| (k.clone(), v)).collect(),
        // flagd also accepts an array of flags, each with a `key`.
        Some(Value::Array(flags)) => {
            let mut out = Vec::new();
            for (i, flag) in flags.iter().enumerate() {
                match flag.get("key").and_then(Value::as_str) {
                    Some(key) => out.push((key.to_string(), flag)),
                    None => errors.push(Diagnostic::error(
                        file,
                        line_of_key(source, flags_start, "flags"),
                        format!("flag {} of the `flags` array has no string `key`", i + 1),
                    )),
                }
            }
            out
        }
        _ => {
            errors.push(Diagnostic::error(file, Some(1), "missing `flags` object"));
            Vec::new()
        }
    };

    let mut body = Body::default();
    let mut flags: Vec<Flag> = Vec::new();
    let mut broken = Vec::new();
    for (key, definition) in definitions {
        let line = line_of_key(source, flags_start, &key);
        if flags.iter().any(|f| f.key == key) {
            errors.push(Diagnostic::error(file, line, "duplicate flag key").in_flag(&key));
            continue;
        }
        // A failed flag may have interned attributes before failing: compile into a copy.
        let mut scratch = body.clone();
        match compile_flag(&key, definition, &evaluators, &set_metadata, &mut scratch) {
            Ok(flag) => {
                body = scratch;
                flags.push(flag);
            }
            Err(messages) => {
                broken.push(
                    Diagnostic::warning(
                        file,
                        line,
                        format!("served as PARSE_ERROR: {}", messages.join("; ")),
                    )
                    .in_flag(&key),
                );
                flags.push(broken_flag(&key, definition, &set_metadata));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    flags.sort_by(|a, b| a.key.cmp(&b.key));
    let count = FlagId::try_from(flags.len())
        .map_err(|_| vec![Diagnostic::error(file, None, "too many flags in one file")])?;
    body.flags = flags;
    body.eval_order = (0..count).collect();
    Ok((body, broken))
}

/// The stand-in for a flag that failed to compile: it answers `ERROR`/`PARSE_ERROR` and the
/// caller's default (no variants, so no value), or `DISABLED` when its state says so, as
/// flagd answers a flag it could not parse.
fn broken_flag(key: &str, definition: &Value, set_metadata: &Map<String, Value>) -> Flag {
    let enabled = definition.get("state").and_then(Value::as_str) != Some("DISABLED");
    let mut metadata = set_metadata.clone();
    if let Some(Value::Object(own)) = definition.get("metadata") {
        metadata.extend(
            own.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    Flag {
        key: key.to_string(),
        kind: FlagKind::Release,
        value_type: ValueType::String,
        variants: Vec::new(),
        default_variant: None,
        off_variant: None,
        enabled,
        killed: false,
        prerequisites: Vec::new(),
        targeting: Targeting::Logic(logic::Expr::Invalid(
            "the flag failed to compile".to_string(),
        )),
        salt: String::new(),
        unsigned_attrs: Vec::new(),
        signed_bucketing_only: false,
        metadata,
    }
}

/// Compiles one flag; on failure returns every problem found in it.
fn compile_flag(
    key: &str,
    definition: &Value,
    evaluators: &Map<String, Value>,
    set_metadata: &Map<String, Value>,
    body: &mut Body,
) -> Result<Flag, Vec<String>> {
    let Value::Object(definition) = definition else {
        return Err(vec!["a flag must be a JSON object".to_string()]);
    };
    let mut problems = Vec::new();

    let enabled = match definition.get("state").and_then(Value::as_str) {
        Some("ENABLED") => true,
        Some("DISABLED") => false,
        Some(other) => {
            problems.push(format!(
                "`state` must be \"ENABLED\" or \"DISABLED\", not {other:?}"
            ));
            false
        }
        None => {
            problems.push("`state` (\"ENABLED\" or \"DISABLED\") is missing".to_string());
            false
        }
    };

    let variants: Vec<Variant> = match definition.get("variants") {
        Some(Value::Object(v)) if !v.is_empty() => v
            .iter()
            .map(|(name, value)| Variant {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        Some(Value::Object(_)) => {
            problems.push("`variants` is empty: a flag needs at least one variant".to_string());
            Vec::new()
        }
        _ => {
            problems.push("`variants` must be an object of variant name to value".to_string());
            Vec::new()
        }
    };
    if variants.len() > usize::from(VariantId::MAX) {
        problems.push(format!("more than {} variants", VariantId::MAX));
    }
    let value_type = match value_type_of(&variants) {
        Ok(t) => t,
        Err(why) => {
            problems.push(why);
            ValueType::String
        }
    };

    let default_variant = match definition.get("defaultVariant") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => match variants.iter().position(|v| v.name == *name) {
            Some(i) => VariantId::try_from(i).ok(),
            None => {
                problems.push(format!(
                    "`defaultVariant` {name:?} is not one of the flag's variants"
                ));
                None
            }
        },
        Some(_) => {
            problems.push("`defaultVariant` must be a variant name or null".to_string());
            None
        }
    };

    let targeting = match definition.get("targeting") {
        // flagd-core runs targeting only when `Object.keys(targeting)` is not empty: a
        // number, a boolean, "", [] or {} leaves the flag static.
        None | Some(Value::Null | Value::Bool(_) | Value::Number(_)) => None,
        Some(Value::Object(t)) if t.is_empty() => None,
        Some(Value::Array(t)) if t.is_empty() => None,
        Some(Value::String(t)) if t.is_empty() => None,
        Some(rule) => match logic::compile_targeting(rule, evaluators, body) {
            Ok(expr) => Some(expr),
            Err(why) => {
                problems.push(format!("targeting: {why}"));
                None
            }
        },
    };
    let targeting = match (targeting, default_variant) {
        (Some(expr), _) => Targeting::Logic(expr),
        (None, Some(default)) => Targeting::Rules {
            rules: Vec::new(),
            fallthrough: Serve::Variant(default),
        },
        // No targeting and no default: flagd serves the caller's default with reason DEFAULT.
        (None, None) => Targeting::Logic(logic::Expr::Lit(Value::Null)),
    };

    // The flag's metadata over its flag set's; flagd skips null values.
    let mut metadata = set_metadata.clone();
    match definition.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(own)) => {
            metadata.extend(
                own.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
        Some(_) => problems.push("`metadata` must be an object".to_string()),
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Flag {
        key: key.to_string(),
        kind: FlagKind::Release,
        value_type,
        variants,
        default_variant,
        off_variant: None,
        enabled,
        killed: false,
        prerequisites: Vec::new(),
        targeting,
        salt: String::new(),
        unsigned_attrs: Vec::new(),
        signed_bucketing_only: false,
        metadata,
    })
}

/// The one JSON type all variants share.
fn value_type_of(variants: &[Variant]) -> Result<ValueType, String> {
    let mut found: Option<ValueType> = None;
    for variant in variants {
        let this = match &variant.value {
            Value::Bool(_) => ValueType::Boolean,
            Value::String(_) => ValueType::String,
            Value::Number(_) => ValueType::Number,
            Value::Object(_) => ValueType::Object,
            Value::Null | Value::Array(_) => {
                return Err(format!(
                    "variant {:?} is {}: variants are booleans, strings, numbers or objects",
                    variant.name,
                    if variant.value.is_null() {
                        "null"
                    } else {
                        "an array"
                    }
                ));
            }
        };
        match found {
            None => found = Some(this),
            Some(t) if t == this => {}
            Some(t) => {
                return Err(format!(
                    "variants mix types: {:?} is {}, earlier ones are {}",
                    variant.name,
                    type_name(this),
                    type_name(t)
                ));
            }
        }
    }
    Ok(found.unwrap_or(ValueType::String))
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Boolean => "a boolean",
        ValueType::String => "a string",
        ValueType::Number => "a number",
        ValueType::Object => "an object",
    }
}

/// 1-based line of the first `"key":` at or after byte `from` in `source` (the key JSON-escaped
/// as it would be written), so diagnostics point at the flag.
fn line_of_key(source: &str, from: usize, key: &str) -> Option<usize> {
    let quoted = serde_json::to_string(key).ok()?;
    let tail = source.get(from..)?;
    let mut search = 0;
    while let Some(found) = tail.get(search..)?.find(&quoted) {
        let at = search + found;
        let after = tail.get(at + quoted.len()..)?;
        if after.trim_start().starts_with(':') {
            let offset = from + at;
            return Some(source.get(..offset)?.matches('\n').count() + 1);
        }
        search = at + quoted.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(source: &str) -> Result<Body, Vec<Diagnostic>> {
        compile_flagd(source, Path::new("flags/flagd.json"), "prod")
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let source =
            "{\n  \"flags\": {\n    \"a\": {\n      \"state\": \"ENABLED\",,\n    }\n  }\n}\n";
        let errors = compile(source).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, Path::new("flags/flagd.json"));
        assert_eq!(errors[0].line, Some(4));
        let shown = errors[0].to_string();
        assert!(
            shown.starts_with("flags/flagd.json:4: error: not valid JSON"),
            "{shown}"
        );
    }

    #[test]
    fn broken_flags_are_warnings_naming_the_flag_line_and_why() {
        let source = r#"{
  "flags": {
    "good": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"},
    "mixed": {
      "state": "ENABLED",
      "variants": {"a": true, "b": "x"},
      "defaultVariant": "a"
    },
    "bad-default": {"state": "ENABLED", "variants": {"on": 1}, "defaultVariant": "off"},
    "bad-op": {"state": "ON", "variants": {"on": 1}, "targeting": {"regex": ["a", "b"]}}
  }
}"#;
        // Each broken flag is served as PARSE_ERROR (a warning); the good one compiles.
        let (body, errors) =
            compile_flagd_file(source, Path::new("flags/flagd.json"), "prod").unwrap();
        assert_eq!(body.flags.len(), 4);
        assert!(errors.iter().all(|d| d.severity == crate::Severity::Warning
            && d.message.starts_with("served as PARSE_ERROR")));
        let found: Vec<(Option<&str>, Option<usize>, &str)> = errors
            .iter()
            .map(|d| (d.flag.as_deref(), d.line, d.message.as_str()))
            .collect();
        assert!(
            found
                .iter()
                .any(|(f, l, m)| *f == Some("mixed") && *l == Some(4) && m.contains("mix types")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|(f, l, m)| *f == Some("bad-default")
                && *l == Some(9)
                && m.contains("\"off\"")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(f, l, m)| *f == Some("bad-op") && *l == Some(10) && m.contains("`state`")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(f, _, m)| *f == Some("bad-op") && m.contains("`regex`")),
            "{found:?}"
        );
        assert_eq!(errors.len(), 3, "one warning per broken flag: {found:?}");
        assert!(
            found.iter().all(|(f, _, _)| *f != Some("good")),
            "{found:?}"
        );
    }

    #[test]
    fn flags_compile_sorted_with_merged_metadata() {
        let source = r#"{
  "metadata": {"flagSetId": "team", "version": 1},
  "flags": {
    "zeta": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
             "metadata": {"version": 2, "dropped": null}},
    "alpha": {"state": "ENABLED", "variants": {"small": 1, "big": 1000},
              "targeting": {"if": [{"==": [{"var": "user.plan"}, "pro"]}, "big"]}}
  },
  "$evaluators": {}
}"#;
        let body = compile(source).unwrap();
        let keys: Vec<&str> = body.flags.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["alpha", "zeta"]);
        assert_eq!(body.eval_order, [0, 1]);
        let (alpha, zeta) = (&body.flags[0], &body.flags[1]);
        assert_eq!(alpha.value_type, ValueType::Number);
        assert_eq!(alpha.default_variant, None);
        assert!(matches!(alpha.targeting, Targeting::Logic(_)));
        assert_eq!(
            body.attrs,
            vec![vec!["user".to_string(), "plan".to_string()]]
        );
        assert!(!zeta.enabled);
        assert_eq!(zeta.off_variant, None);
        assert_eq!(
            zeta.targeting,
            Targeting::Rules {
                rules: vec![],
                fallthrough: Serve::Variant(1)
            }
        );
        assert_eq!(zeta.variants[1].name, "on"); // variants in key order: off, on
        assert_eq!(
            Value::Object(zeta.metadata.clone()),
            json!({"flagSetId": "team", "version": 2})
        );
        assert_eq!(
            Value::Object(alpha.metadata.clone()),
            json!({"flagSetId": "team", "version": 1})
        );
    }

    #[test]
    fn refs_resolve_regardless_of_whitespace() {
        for spacing in [
            "\"$ref\":\"ev\"",
            "\"$ref\": \"ev\"",
            "\"$ref\" : \"ev\"",
            "\n  \"$ref\"\n :\n \"ev\"\n",
        ] {
            let source = format!(
                r#"{{"flags": {{"f": {{"state": "ENABLED", "variants": {{"a": "a", "b": "b"}}, "defaultVariant": "b",
                   "targeting": {{"if": [{{{spacing}}}, "a"]}}}}}},
                   "$evaluators": {{"ev": {{"==": [{{"var": "x"}}, 1]}}}}}}"#
            );
            let body = compile(&source).unwrap();
            let Targeting::Logic(expr) = &body.flags[0].targeting else {
                panic!()
            };
            assert!(
                !format!("{expr:?}").contains("Invalid"),
                "{spacing:?}: {expr:?}"
            );
        }
    }

    #[test]
    fn line_of_key_skips_values_and_other_sections() {
        let source =
            "{\n \"$evaluators\": {\"a\": 1},\n \"flags\": {\n  \"b\": \"a\",\n  \"a\": {}\n }\n}";
        let from = source.find("\"flags\"").unwrap();
        assert_eq!(line_of_key(source, from, "a"), Some(5));
        assert_eq!(line_of_key(source, 0, "a"), Some(2));
        assert_eq!(line_of_key(source, from, "zzz"), None);
    }
}
