//! Request limits, each with the reason it exists, and the cheap checks that enforce them.
//!
//! Every limit is checked before the work it bounds: the body size before reading JSON, the
//! nesting depth before parsing the JSON (whose own recursion limit is far above what a context
//! needs), the attribute count before evaluation.

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

/// Most body bytes read (and thrown away) from a request refused for its size, so that the
/// client, still sending, reads the 413 instead of a reset connection; past it the worker stops
/// reading. Bounds what one request costs however long its body is.
pub const MAX_DRAIN_BYTES: usize = 1024 * 1024;

/// A request body read chunk by chunk as it streams in: keeps at most [`MAX_BODY_BYTES`] + 1
/// bytes, whatever the client sends or declares (a chunked body has no `Content-Length`).
#[derive(Debug, Default)]
pub struct BodyReader {
    kept: Vec<u8>,
    seen: usize,
}

impl BodyReader {
    /// Takes the next chunk; `false` means stop reading (the drain limit is reached).
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        self.seen = self.seen.saturating_add(chunk.len());
        let room = (MAX_BODY_BYTES + 1).saturating_sub(self.kept.len());
        self.kept
            .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        self.seen <= MAX_DRAIN_BYTES
    }

    /// The body, or `None` when it was over [`MAX_BODY_BYTES`].
    pub fn finish(self) -> Option<Vec<u8>> {
        (self.seen <= MAX_BODY_BYTES).then_some(self.kept)
    }
}

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
    fn body_reader_keeps_the_limit_and_stops_at_the_drain_limit() {
        let mut body = BodyReader::default();
        assert!(body.push(b"{\"context\":"));
        assert!(body.push(b"{}}"));
        assert_eq!(body.finish().as_deref(), Some(&b"{\"context\":{}}"[..]));

        let mut body = BodyReader::default();
        let chunk = vec![b' '; 64 * 1024];
        let mut pushes = 0;
        while body.push(&chunk) {
            pushes += 1;
            assert!(body.kept.len() <= MAX_BODY_BYTES + 1);
        }
        // Stopped right after passing the drain limit, keeping no more than the body limit.
        assert_eq!(pushes, MAX_DRAIN_BYTES / chunk.len());
        assert_eq!(body.kept.len(), MAX_BODY_BYTES + 1);
        assert_eq!(body.finish(), None);

        let mut exact = BodyReader::default();
        assert!(exact.push(&vec![b' '; MAX_BODY_BYTES]));
        assert_eq!(exact.finish().map(|b| b.len()), Some(MAX_BODY_BYTES));
    }

    #[test]
    fn attributes_are_counted_at_every_level() {
        let ctx: Map<String, Value> =
            serde_json::from_str(r#"{"a":1,"b":{"c":2,"d":[1,2,3]}}"#).unwrap();
        // a, b, b.c, b.d, and three elements.
        assert_eq!(attribute_count(&ctx), 7);
    }
}
