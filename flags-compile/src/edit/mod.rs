//! A format-preserving editor for flag files: [`rewrite`] changes a file's text to mean a wanted
//! value (JSON, the same field names as the YAML) and touches only the spans that differ, so
//! comments, key order, quoting and the layout of everything else stay byte for byte and a Git
//! diff shows only the lines that changed. [`canonical`] writes a new file in the documented
//! layout (block style, 2-space indent, `- ` items).
//!
//! How: [`crate::yaml::parse`] records a byte span on every node and key; `diff` walks the tree
//! beside the wanted value and records replacements of those spans (`render` writes the new
//! text); they are applied from the end of the file backwards.
//!
//! **Invariant:** what [`rewrite`] returns has been parsed again and means exactly `wanted`
//! (numbers compared by value); anything else is an [`EditError`], never a file that means
//! something else. A file that is JSON stays JSON (flow style, double quotes).

mod diff;
mod render;

use serde_json::Value as Json;

use crate::yaml;

/// Why a file could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The current text is not a YAML document we read.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value YAML cannot hold (a non-finite number).
    #[error("{0} cannot be written in a flag file")]
    Unrepresentable(String),
    /// The edited text would not mean the wanted value (a bug in the editor, caught before
    /// anything is written).
    #[error("internal: the edited file would not round-trip: {0}")]
    RoundTrip(String),
}

/// The file's text changed to mean `wanted`, touching only what differs.
pub fn rewrite(text: &str, wanted: &Json) -> Result<String, EditError> {
    let tree = yaml::parse(text).map_err(|e| EditError::Syntax {
        line: e.line,
        message: e.message,
    })?;
    check_finite(wanted)?;
    if same(&tree.to_json(), wanted) {
        return Ok(text.to_owned());
    }
    let out = if tree.value == yaml::Value::Null && tree.span.start == tree.span.end {
        // An empty document (perhaps only comments): the new content after it.
        let mut out = text.to_owned();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&canonical(wanted));
        out
    } else {
        let json = text
            .trim_start_matches([' ', '\t', '\r', '\n'])
            .starts_with(['{', '[']);
        let mut differ = diff::Differ {
            text,
            json,
            edits: Vec::new(),
        };
        differ.root(&tree, wanted);
        apply(text, differ.edits)?
    };
    verify(&out, wanted)?;
    Ok(out)
}

/// A new file in the documented canonical layout (block style, 2-space indent, keys in the given
/// order). Non-finite numbers cannot occur in a `serde_json::Value`.
pub fn canonical(wanted: &Json) -> String {
    let mut out = render::block(wanted, 0);
    out.push('\n');
    out
}

/// Applies non-overlapping edits, last first.
fn apply(text: &str, mut edits: Vec<diff::Edit>) -> Result<String, EditError> {
    // Last first; of two insertions at one place the later recorded (an enclosing mapping's,
    // recorded after its values') goes in first, so it ends up after the nested one.
    let mut edits: Vec<(usize, diff::Edit)> = edits.drain(..).enumerate().collect();
    edits.sort_by(|(i, a), (j, b)| b.start.cmp(&a.start).then(b.end.cmp(&a.end)).then(j.cmp(i)));
    let mut out = text.to_owned();
    let mut limit = text.len();
    for (_, edit) in edits {
        if edit.end > limit || edit.start > edit.end {
            return Err(EditError::RoundTrip(format!(
                "overlapping edits at bytes {}..{}",
                edit.start, edit.end
            )));
        }
        out.replace_range(edit.start..edit.end, &edit.text);
        limit = edit.start;
    }
    Ok(out)
}

fn verify(out: &str, wanted: &Json) -> Result<(), EditError> {
    let parsed = yaml::parse(out)
        .map_err(|e| EditError::RoundTrip(format!("line {}: {}", e.line, e.message)))?;
    if same(&parsed.to_json(), wanted) {
        Ok(())
    } else {
        Err(EditError::RoundTrip(
            "the result reads back as a different value".into(),
        ))
    }
}

fn check_finite(v: &Json) -> Result<(), EditError> {
    match v {
        Json::Number(n) if n.as_f64().is_some_and(|f| !f.is_finite()) => {
            Err(EditError::Unrepresentable(n.to_string()))
        }
        Json::Array(items) => items.iter().try_for_each(check_finite),
        Json::Object(map) => map.values().try_for_each(check_finite),
        _ => Ok(()),
    }
}

/// JSON equality with numbers compared by value (`5` equals `5.0`).
pub(crate) fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
