//! Rendering JSON values as YAML text: scalars (plain only when plain text reads back as the
//! same string in that context, else quoted), block collections at a given column, flow
//! collections, and JSON (flow style, every string double-quoted).

use std::borrow::Cow;

use saphyr::ScalarOwned;
use saphyr_parser::ScalarStyle;
use serde_json::Value as Json;

use crate::yaml;

/// How the scalar being replaced was written; the new one keeps it when it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quote {
    /// Plain, or no preference.
    Plain,
    /// `'...'`.
    Single,
    /// `"..."`.
    Double,
}

impl Quote {
    /// The style of the scalar whose text starts `text`.
    pub(crate) fn of(text: &str) -> Quote {
        match text.as_bytes().first() {
            Some(b'\'') => Quote::Single,
            Some(b'"') => Quote::Double,
            _ => Quote::Plain,
        }
    }
}

/// Characters a plain or single-quoted scalar can hold as they are (YAML's printable set, less
/// line breaks, tabs and the characters some readers take for line breaks or a BOM).
fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{2027}' | '\u{202A}'..='\u{D7FF}' | '\u{E000}'..='\u{FEFE}' | '\u{FF00}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// `s` double-quoted with JSON-style escapes (valid JSON and valid YAML).
pub(crate) fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => {
                // A surrogate pair, as JSON writes characters outside the BMP.
                let v = c as u32 - 0x10000;
                out.push_str(&format!(
                    "\\u{:04x}\\u{:04x}",
                    0xD800 + (v >> 10),
                    0xDC00 + (v & 0x3FF)
                ));
            }
        }
    }
    out.push('"');
    out
}

fn single_ok(s: &str) -> bool {
    s.chars().all(printable)
}

/// Whether `s` written plain reads back as exactly the string `s` (in a flow collection when
/// `flow`): no indicator first, no `: ` or ` #`, nothing the core schema resolves to another type.
pub(crate) fn plain_ok(s: &str, flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !s.chars().all(printable)
        || s.starts_with(' ')
        || s.ends_with(' ')
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.starts_with("---")
        || s.starts_with("...")
        || (flow && s.contains([',', '[', ']', '{', '}', ':']))
    {
        return false;
    }
    let resolved =
        ScalarOwned::parse_from_cow_and_metadata(Cow::Borrowed(s), ScalarStyle::Plain, None);
    if !matches!(resolved, Some(ScalarOwned::String(ref r)) if r == s) {
        return false;
    }
    // Belt and braces: read it back the way it will be read.
    let probe = if flow {
        format!("[{s}]")
    } else {
        format!("k: {s}\n")
    };
    match yaml::parse(&probe).map(|n| n.to_json()) {
        Ok(Json::Array(items)) => items.len() == 1 && items[0].as_str() == Some(s),
        Ok(Json::Object(map)) => map.len() == 1 && map.get("k").and_then(Json::as_str) == Some(s),
        _ => false,
    }
}

/// A number as YAML/JSON reads it back with the same value.
fn number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        format!("{f:?}")
    }
}

/// A scalar (or an empty collection) as text; `quote` is the style to keep when possible.
pub(crate) fn scalar(v: &Json, flow: bool, json: bool, quote: Quote) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => number(n),
        Json::String(s) if json => double_quoted(s),
        Json::String(s) => match quote {
            Quote::Single if single_ok(s) => format!("'{}'", s.replace('\'', "''")),
            Quote::Double | Quote::Single => double_quoted(s),
            Quote::Plain if plain_ok(s, flow) => s.clone(),
            Quote::Plain => double_quoted(s),
        },
        Json::Array(_) | Json::Object(_) => flow_text(v, json, false),
    }
}

/// A mapping key: plain when it can be, else double-quoted (always quoted in JSON).
pub(crate) fn key(k: &str, flow: bool, json: bool) -> String {
    if !json && plain_ok(k, flow) {
        k.to_owned()
    } else {
        double_quoted(k)
    }
}

/// A value in flow style (`{a: 1, b: [x]}`; JSON when `json`); `padded` writes `{ a: 1 }`.
pub(crate) fn flow_text(v: &Json, json: bool, padded: bool) -> String {
    match v {
        Json::Array(items) if !items.is_empty() => {
            let inner: Vec<String> = items.iter().map(|i| flow_text(i, json, false)).collect();
            format!("[{}]", inner.join(", "))
        }
        Json::Object(map) if !map.is_empty() => {
            let inner: Vec<String> = ordered(map)
                .into_iter()
                .map(|(k, v)| format!("{}: {}", key(k, true, json), flow_text(v, json, false)))
                .collect();
            if padded {
                format!("{{ {} }}", inner.join(", "))
            } else {
                format!("{{{}}}", inner.join(", "))
            }
        }
        Json::Array(_) => "[]".into(),
        Json::Object(_) => "{}".into(),
        _ => scalar(v, true, json, Quote::Plain),
    }
}

/// Whether `v` is written over several lines in block style (a non-empty list or mapping).
pub(crate) fn is_block(v: &Json) -> bool {
    match v {
        Json::Array(a) => !a.is_empty(),
        Json::Object(m) => !m.is_empty(),
        _ => false,
    }
}

/// A mapping's entries in the documented layout's order: the format's fields in the order
/// the docs list them (`key`, `description`, ..., `environments`; `enabled`, `rules`,
/// `fallthrough`; `id`, `if`, `serve`; `attr` before its operator), then any other key
/// (environment, variant and operator names) in the map's own order. `serde_json` keeps
/// object keys sorted, so without this a new file would start with `default:`.
pub(crate) fn ordered(map: &serde_json::Map<String, Json>) -> Vec<(&String, &Json)> {
    use crate::native::{ENV_FIELDS, FLAG_FIELDS, PREREQ_FIELDS, RULE_FIELDS, SPLIT_FIELDS};
    use crate::schedule::{ROLLOUT_FIELDS, STAGE_FIELDS};
    let rank = |key: &str| {
        [
            FLAG_FIELDS,
            ENV_FIELDS,
            RULE_FIELDS,
            SPLIT_FIELDS,
            PREREQ_FIELDS,
            ROLLOUT_FIELDS,
            STAGE_FIELDS,
            &["attr"],
        ]
        .iter()
        .flat_map(|fields| fields.iter())
        .position(|field| *field == key)
        .unwrap_or(usize::MAX)
    };
    let mut entries: Vec<(&String, &Json)> = map.iter().collect();
    entries.sort_by_key(|(k, _)| rank(k));
    entries
}

/// `v` in block style, its first line unindented (it follows `- ` or starts at `col`), every
/// further line indented to `col` or deeper. Nested collections go 2 columns deeper.
pub(crate) fn block(v: &Json, col: usize) -> String {
    let pad = " ".repeat(col);
    match v {
        Json::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| format!("- {}", block(item, col + 2)))
            .collect::<Vec<_>>()
            .join(&format!("\n{pad}")),
        Json::Object(map) if !map.is_empty() => ordered(map)
            .into_iter()
            .map(|(k, v)| entry(k, v, col))
            .collect::<Vec<_>>()
            .join(&format!("\n{pad}")),
        _ => scalar(v, false, false, Quote::Plain),
    }
}

/// One `key: value` of a block mapping whose keys are at `col` (first line unindented).
pub(crate) fn entry(k: &str, v: &Json, col: usize) -> String {
    let k = key(k, false, false);
    if is_block(v) {
        format!("{k}:\n{}{}", " ".repeat(col + 2), block(v, col + 2))
    } else {
        format!("{k}: {}", block(v, col + 2))
    }
}

/// The value written after `key:` in a block mapping whose keys are at `col`: ` scalar`, or a
/// newline and the block at `col + 2`.
pub(crate) fn after_colon(v: &Json, col: usize) -> String {
    if is_block(v) {
        format!("\n{}{}", " ".repeat(col + 2), block(v, col + 2))
    } else {
        format!(" {}", block(v, col + 2))
    }
}
