//! A small YAML document tree where every node knows its source line.
//!
//! Why our own tree over `saphyr-parser`'s event stream rather than serde (`serde_yaml` is
//! deprecated, `serde_norway` reports positions only for the first shape error) or saphyr's
//! `MarkedYamlOwned` loader: building the tree ourselves lets us
//! - keep a line on every node, so *semantic* errors (unknown operator, bad regex, missing
//!   variant) point at the offending line, and report all of them, not just the first;
//! - refuse aliases (`*anchor`) outright: the loader would expand them by cloning, which is
//!   the "billion laughs" memory blow-up on hostile input, and flag files have no use for them;
//! - cap nesting while parsing, so no recursive walk (or drop) of a hostile document can
//!   overflow the stack.
//!
//! Scalars resolve with YAML 1.2's core schema (saphyr's resolver): `on`/`off`/`yes` stay strings,
//! `2024-01-01` is a string, quoted scalars are always strings. JSON is valid YAML 1.2, so `.json`
//! flag files go through the same path and get the same line numbers.

use std::borrow::Cow;

use saphyr::ScalarOwned;
use saphyr_parser::{Event, Parser, ScalarStyle, Tag};

/// Deepest YAML nesting accepted while parsing. Far above what any flag file needs (a rule nests
/// at most [`shared_eval::MAX_RULE_DEPTH`] conditions, each two YAML levels), and low enough that
/// walking the tree recursively can never overflow the stack.
pub const MAX_YAML_DEPTH: usize = 2 * shared_eval::MAX_RULE_DEPTH + 16;

/// A parsed YAML node and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line of the node's first character.
    pub line: usize,
    /// Where the node's text is, in bytes (see [`Span`]).
    pub span: Span,
    /// The value.
    pub value: Value,
}

/// A YAML value. Mapping keys are kept as written (their source text), in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// A string (quoted, or plain and not anything else).
    Str(String),
    /// `- a` / `[a, b]`.
    Seq(Vec<Node>),
    /// `k: v` / `{k: v}`, in file order; keys are unique.
    Map(Vec<Entry>),
}

/// One `key: value` of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key's text.
    pub key: String,
    /// Line of the key.
    pub line: usize,
    /// Where the key's text is (quotes included), in bytes.
    pub key_span: Span,
    /// The value.
    pub value: Node,
}

/// A byte range `start..end` of the source text. Scalars span their text (quotes included; a
/// block scalar from its `|`/`>` header to the end of its last content line, newline included;
/// an empty scalar is empty). Flow collections span `[`..`]` / `{`..`}`; block collections span
/// from their first `-` or key to the end of their last value (comments after it excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// Why a document could not be parsed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Node {
    /// A short name of the node's kind, for messages ("expected a mapping, found a list").
    pub fn kind_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The mapping's entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Looks up `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    /// Converts to JSON (variant values, operands). Mapping keys become object keys.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|e| (e.key.clone(), e.value.to_json()))
                .collect(),
        }
    }
}

/// Parses one YAML (or JSON) document. An empty document is `Null` at line 1.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder {
        stack: Vec::new(),
        root: None,
        documents: 0,
        source,
        offsets: if source.is_ascii() {
            Vec::new()
        } else {
            source
                .char_indices()
                .map(|(b, _)| b)
                .chain(std::iter::once(source.len()))
                .collect()
        },
    };
    for event in Parser::new_from_str(source) {
        let (event, span) = event.map_err(|e| SyntaxError {
            line: e.marker().line().max(1),
            message: e.info().to_owned(),
        })?;
        let line = span.start.line().max(1);
        let span = Span {
            start: builder.byte(span.start.index()),
            end: builder.byte(span.end.index()),
        };
        builder.on_event(event, line, span)?;
    }
    Ok(builder.root.unwrap_or(Node {
        line: 1,
        span: Span::default(),
        value: Value::Null,
    }))
}

/// YAML's white space and line breaks (not Unicode's wider set: `\u{202f}` is content).
const YAML_BLANK: [char; 4] = [' ', '\t', '\r', '\n'];

/// A quoted scalar's span: from its opening quote to just past the closing one.
fn quoted_scalar_span(source: &str, start: usize) -> Span {
    let bytes = source.as_bytes();
    let quote = bytes.get(start).copied().unwrap_or(b'"');
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return Span { start, end: i + 1 },
            _ => i += 1,
        }
    }
    Span {
        start,
        end: source.len(),
    }
}

/// A block scalar's span as the parser reports it starts at its first content line: widen it to
/// its header (`|`, `>-`, ...) and end it after the newline of its last content line.
fn block_scalar_span(source: &str, content: Span) -> Span {
    let before = &source[..content.start];
    // The header line: the last line before the content that is not blank.
    let trimmed = before.trim_end_matches(YAML_BLANK);
    let line_start = trimmed.rfind('\n').map_or(0, |i| i + 1);
    let header_line = &trimmed[line_start..];
    let without_comment = match header_line.find(" #") {
        Some(i) => header_line[..i].trim_end_matches(YAML_BLANK),
        None => header_line,
    };
    let token = without_comment.rfind([' ', '\t']).map_or(0, |i| i + 1);
    let start = line_start + token;
    let body = &source[content.start..content.end.max(content.start)];
    let last = body.trim_end_matches(YAML_BLANK).len();
    let end = match body[last..].find('\n') {
        Some(i) => content.start + last + i + 1,
        None => content.start + body.len(),
    };
    Span { start, end }
}

/// A mapping or sequence under construction; a mapping remembers a key waiting for its value.
enum Open {
    Seq(Node),
    Map(Node, Option<(String, usize, Span)>),
}

struct Builder<'a> {
    stack: Vec<Open>,
    root: Option<Node>,
    documents: usize,
    source: &'a str,
    /// Byte offset of each character (empty when the source is ASCII: then they are equal).
    offsets: Vec<usize>,
}

impl Builder<'_> {
    /// The byte offset of the parser's character index.
    fn byte(&self, char_index: usize) -> usize {
        if self.offsets.is_empty() {
            char_index.min(self.source.len())
        } else {
            self.offsets
                .get(char_index)
                .copied()
                .unwrap_or(self.source.len())
        }
    }

    fn on_event(&mut self, event: Event<'_>, line: usize, span: Span) -> Result<(), SyntaxError> {
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Ok(()),
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(SyntaxError {
                        line,
                        message: "only one YAML document per file (found a second `---`)".into(),
                    });
                }
                Ok(())
            }
            Event::Alias(_) => Err(SyntaxError {
                line,
                message: "YAML aliases (`*name`) are not supported in flag files; repeat the value"
                    .into(),
            }),
            Event::Scalar(text, style, _anchor, tag) => {
                let span = if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
                    block_scalar_span(self.source, span)
                } else if matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted) {
                    // The parser's end of a quoted scalar runs on over blanks and a comment.
                    quoted_scalar_span(self.source, span.start)
                } else {
                    // In flow context the parser's end can include the blanks after the
                    // scalar; a plain scalar does not end with one.
                    let text = &self.source[span.start..span.end.max(span.start)];
                    Span {
                        start: span.start,
                        end: span.start + text.trim_end_matches(YAML_BLANK).len(),
                    }
                };
                let node = Node {
                    line,
                    span,
                    value: resolve_scalar(&text, style, tag.as_ref(), line)?,
                };
                if let Some(Open::Map(_, pending @ None)) = self.stack.last_mut() {
                    // A scalar in key position: keep its source text as the key.
                    *pending = Some((text.into_owned(), line, span));
                    return Ok(());
                }
                self.attach(node)
            }
            Event::SequenceStart(_, ref tag) | Event::MappingStart(_, ref tag) => {
                check_tag(tag.as_ref(), line)?;
                if self.stack.len() >= MAX_YAML_DEPTH {
                    return Err(SyntaxError {
                        line,
                        message: format!("nested more than {MAX_YAML_DEPTH} levels deep"),
                    });
                }
                if let Some(Open::Map(_, None)) = self.stack.last() {
                    return Err(SyntaxError {
                        line,
                        message: "a mapping key must be a plain value, not a list or mapping"
                            .into(),
                    });
                }
                let span = Span {
                    start: span.start,
                    end: span.start,
                };
                let open = if matches!(event, Event::SequenceStart(..)) {
                    Open::Seq(Node {
                        line,
                        span,
                        value: Value::Seq(Vec::new()),
                    })
                } else {
                    Open::Map(
                        Node {
                            line,
                            span,
                            value: Value::Map(Vec::new()),
                        },
                        None,
                    )
                };
                self.stack.push(open);
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open::Seq(mut node)) | Some(Open::Map(mut node, None)) => {
                    let flow = matches!(
                        self.source.as_bytes().get(node.span.start),
                        Some(b'[' | b'{')
                    );
                    node.span.end = if flow {
                        // The end event starts at the closing bracket (its own end can run on
                        // over blanks and a comment).
                        if matches!(self.source.as_bytes().get(span.start), Some(b']' | b'}')) {
                            span.start + 1
                        } else {
                            span.end
                        }
                    } else {
                        // A block collection ends where its last value does (the parser's end
                        // is the next token, past any comments).
                        match &node.value {
                            Value::Seq(items) => items.last().map(|n| n.span.end),
                            Value::Map(entries) => entries.last().map(|e| e.value.span.end),
                            _ => None,
                        }
                        .unwrap_or(node.span.start)
                    };
                    self.attach(node)
                }
                Some(Open::Map(_, Some((key, key_line, _)))) => Err(SyntaxError {
                    line: key_line,
                    message: format!("key `{key}` has no value"),
                }),
                None => Ok(()),
            },
        }
    }

    fn attach(&mut self, node: Node) -> Result<(), SyntaxError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Open::Seq(Node {
                value: Value::Seq(items),
                ..
            })) => {
                items.push(node);
                Ok(())
            }
            Some(Open::Map(
                Node {
                    value: Value::Map(entries),
                    ..
                },
                pending,
            )) => {
                let Some((key, line, key_span)) = pending.take() else {
                    return Err(SyntaxError {
                        line: node.line,
                        message: "mapping value without a key".into(),
                    });
                };
                if let Some(first) = entries.iter().find(|e| e.key == key) {
                    return Err(SyntaxError {
                        line,
                        message: format!("duplicate key `{key}` (first on line {})", first.line),
                    });
                }
                entries.push(Entry {
                    key,
                    line,
                    key_span,
                    value: node,
                });
                Ok(())
            }
            // Unreachable by construction (Open::Seq holds a Seq, Open::Map a Map); reported
            // rather than panicking.
            Some(_) => Err(SyntaxError {
                line: node.line,
                message: "internal: malformed YAML tree".into(),
            }),
        }
    }
}

fn check_tag(tag: Option<&Cow<'_, Tag>>, line: usize) -> Result<(), SyntaxError> {
    match tag {
        Some(tag) if !tag.is_yaml_core_schema() => Err(SyntaxError {
            line,
            message: format!("YAML tag `{tag}` is not supported in flag files"),
        }),
        _ => Ok(()),
    }
}

fn resolve_scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Cow<'_, Tag>>,
    line: usize,
) -> Result<Value, SyntaxError> {
    check_tag(tag, line)?;
    let scalar = ScalarOwned::parse_from_cow_and_metadata(Cow::Borrowed(text), style, tag)
        .ok_or_else(|| SyntaxError {
            line,
            message: format!("`{text}` does not match its YAML tag"),
        })?;
    Ok(match scalar {
        ScalarOwned::Null => Value::Null,
        ScalarOwned::Boolean(b) => Value::Bool(b),
        ScalarOwned::Integer(i) => Value::Int(i),
        ScalarOwned::FloatingPoint(f) => Value::Float(f.into_inner()),
        ScalarOwned::String(s) => Value::Str(s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based_and_per_node() {
        let doc = parse("# comment\nkey: a\nlist:\n  - 1\n  - x: true\n").unwrap();
        assert_eq!(doc.get("key").unwrap().line, 2);
        let Value::Seq(items) = &doc.get("list").unwrap().value else {
            panic!("not a list")
        };
        assert_eq!(items[0].line, 4);
        assert_eq!(items[1].get("x").unwrap().line, 5);
        assert_eq!(items[1].get("x").unwrap().value, Value::Bool(true));
    }

    #[test]
    fn spans_are_byte_ranges_of_the_text() {
        let src = "# é\na: 'ü' # c\nb: { c: d , e: [1, \"f\"] }\nl:\n  - x\n  - y: |\n      lit\n\n# end\n";
        let doc = parse(src).unwrap();
        let text = |n: &Node| &src[n.span.start..n.span.end];
        assert_eq!(text(doc.get("a").unwrap()), "'ü'");
        let b = doc.get("b").unwrap();
        assert_eq!(text(b), "{ c: d , e: [1, \"f\"] }");
        assert_eq!(text(b.get("c").unwrap()), "d");
        assert_eq!(text(b.get("e").unwrap()), "[1, \"f\"]");
        let l = doc.get("l").unwrap();
        assert_eq!(text(l), "- x\n  - y: |\n      lit\n");
        let Value::Map(entries) = &doc.value else {
            panic!()
        };
        assert_eq!(
            &src[entries[1].key_span.start..entries[1].key_span.end],
            "b"
        );
        assert_eq!(text(&doc), &src[5..src.len() - 7]);
    }

    #[test]
    fn core_schema_keeps_on_off_and_dates_as_strings() {
        let doc = parse("a: on\nb: 2024-01-01\nc: \"12\"\nd: 1.5\ne: ~\n").unwrap();
        assert_eq!(doc.get("a").unwrap().as_str(), Some("on"));
        assert_eq!(doc.get("b").unwrap().as_str(), Some("2024-01-01"));
        assert_eq!(doc.get("c").unwrap().as_str(), Some("12"));
        assert_eq!(doc.get("d").unwrap().value, Value::Float(1.5));
        assert_eq!(doc.get("e").unwrap().value, Value::Null);
    }

    #[test]
    fn json_parses_with_lines() {
        let doc = parse("{\n  \"a\": [1,\n 2],\n  \"b\": {\"c\": null}\n}").unwrap();
        assert_eq!(doc.get("b").unwrap().line, 4);
    }

    #[test]
    fn rejects_aliases_duplicates_deep_nesting_and_bad_indentation() {
        let alias = parse("a: &x [1]\nb: *x\n").unwrap_err();
        assert_eq!(alias.line, 2);
        assert!(alias.message.contains("aliases"));

        let dup = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(dup.line, 3);
        assert!(dup.message.contains("first on line 1"), "{}", dup.message);

        let deep = "[".repeat(10_000);
        // The parser's own recursion limit or ours: either way an error, not a stack overflow.
        assert!(parse(&deep).is_err());
        let deep_block: String = (0..200)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let err = parse(&deep_block).unwrap_err();
        assert!(err.message.contains("nested more than"), "{err:?}");

        let bad = parse("a:\n  b: 1\n c: 2\n").unwrap_err();
        assert_eq!(bad.line, 3, "{bad:?}");
    }
}
