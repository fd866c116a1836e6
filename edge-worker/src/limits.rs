//! Request limits, each with the reason it exists, and the cheap checks that enforce them.
//!
//! Every limit is checked before the work it bounds: the body size before reading JSON, the
//! nesting depth before handing bytes to serde_json (whose own recursion limit is far above what
//! a context needs), the attribute count before evaluation.

use serde_json::{Map, Value};

/// Largest request body read. A context is a handful of attributes; anything bigger is a
/// mistake or an attack, and the runtime buffers the body in memory.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Deepest JSON nesting accepted in a request body (`{"context": {"user": {...}}}` is 3).
pub const MAX_JSON_DEPTH: usize = 8;

/// Most attributes (object members and array elements, counted at every level) in one context.
/// Bounds the work a request can ask of the evaluator's lookups.
pub const MAX_CONTEXT_ATTRIBUTES: usize = 128;

/// Longest flag key accepted in the URL. The compiler's keys are far shorter.
pub const MAX_FLAG_KEY_BYTES: usize = 256;

/// Longest identity token accepted (header or cookie).
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Whether `bytes`, read as JSON, nests arrays/objects deeper than `max`.
///
/// A single pass that tracks strings and escapes; malformed JSON is left for the parser to
/// reject, this only has to be right about depth for well-formed input and never panic.
pub fn json_too_deep(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Number of attributes in a context: every object member and array element, at every level.
pub fn attribute_count(context: &Map<String, Value>) -> usize {
    fn count(value: &Value) -> usize {
        match value {
            Value::Object(map) => map.values().map(|v| 1 + count(v)).sum(),
            Value::Array(items) => items.iter().map(|v| 1 + count(v)).sum(),
            _ => 0,
        }
    }
    context.values().map(|v| 1 + count(v)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nesting_and_ignores_brackets_in_strings() {
        assert!(!json_too_deep(br#"{"context":{"a":[1,{"b":2}]}}"#, 4));
        assert!(json_too_deep(br#"{"context":{"a":[1,{"b":[2]}]}}"#, 4));
        assert!(!json_too_deep(
            br#"{"context":{"a":"[[[[[[[[[[{{{{{{"}}"#,
            2
        ));
        assert!(!json_too_deep(br#"{"a":"\"[[[[["}"#, 1));
        assert!(json_too_deep(&[b'['; 100], 8));
        assert!(!json_too_deep(b"]]]]}}}{", 1));
    }

    #[test]
    fn attributes_are_counted_at_every_level() {
        let ctx: Map<String, Value> =
            serde_json::from_str(r#"{"a":1,"b":{"c":2,"d":[1,2,3]}}"#).unwrap();
        // a, b, b.c, b.d, and three elements.
        assert_eq!(attribute_count(&ctx), 7);
    }
}
