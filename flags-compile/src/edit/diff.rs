//! The structural diff: walks the parsed tree beside the wanted JSON and records text edits
//! (byte range -> new text) for what differs only. Scalars are replaced in place; mapping keys
//! and list items are deleted or inserted a line (block) or an item (flow) at a time; a node
//! whose kind changes, or that cannot be edited piecewise, is re-rendered where it stands.

use serde_json::Value as Json;

use super::render::{self, Quote};
use super::same;
use crate::yaml::{Entry, Node, Span, Value};

/// One replacement of `range` in the original text.
#[derive(Debug, Clone)]
pub(crate) struct Edit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) text: String,
}

/// Where a node stands, which decides how it is re-rendered.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// The document itself.
    Root,
    /// The value of a mapping entry: text after `key:` (`colon` is just past the colon, if there
    /// is one) and the column of the key.
    Value {
        colon: Option<usize>,
        key_col: usize,
    },
    /// A list item.
    Item,
}

pub(crate) struct Differ<'a> {
    pub(crate) text: &'a str,
    /// The file is JSON: flow style and double quotes everywhere.
    pub(crate) json: bool,
    pub(crate) edits: Vec<Edit>,
}

impl Differ<'_> {
    fn edit(&mut self, start: usize, end: usize, text: String) {
        self.edits.push(Edit { start, end, text });
    }

    /// The column (in characters) of byte `at`.
    fn col(&self, at: usize) -> usize {
        self.text[self.line_start(at)..at].chars().count()
    }

    fn line_start(&self, at: usize) -> usize {
        self.text[..at].rfind('\n').map_or(0, |i| i + 1)
    }

    /// Whether only blanks come before `at` on its line.
    fn first_on_line(&self, at: usize) -> bool {
        self.text[self.line_start(at)..at]
            .trim_matches([' ', '\t'])
            .is_empty()
    }

    /// The end of the line holding the last character before `end` (the `\n`'s offset).
    fn line_end(&self, end: usize) -> usize {
        if end > 0 && self.text.as_bytes()[end - 1] == b'\n' {
            return end - 1;
        }
        self.text[end..]
            .find('\n')
            .map_or(self.text.len(), |i| end + i)
    }

    /// Just past the newline ending the line of `end` (or the end of the text).
    fn after_line(&self, end: usize) -> usize {
        (self.line_end(end) + 1).min(self.text.len())
    }

    fn is_flow(&self, node: &Node) -> bool {
        self.json || matches!(self.text.as_bytes().get(node.span.start), Some(b'[' | b'{'))
    }

    /// Just past the `:` after an entry's key, if there is one.
    fn colon(&self, entry: &Entry) -> Option<usize> {
        let rest = &self.text[entry.key_span.end..];
        let skipped = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        (rest[skipped..].starts_with(':')).then_some(entry.key_span.end + skipped + 1)
    }

    /// Where a block list item's `-` is (the item's own start when it has none).
    fn dash(&self, item: &Node) -> usize {
        let before = self.text[..item.span.start].trim_end_matches([' ', '\t']);
        if before.ends_with('-') {
            before.len() - 1
        } else {
            item.span.start
        }
    }

    /// Records the edits turning `node` into `wanted`.
    pub(crate) fn root(&mut self, node: &Node, wanted: &Json) {
        self.node(node, wanted, Slot::Root, false);
    }

    fn node(&mut self, node: &Node, wanted: &Json, slot: Slot, in_flow: bool) {
        if same(&node.to_json(), wanted) {
            return;
        }
        match (&node.value, wanted) {
            (Value::Map(entries), Json::Object(map)) if !entries.is_empty() && !map.is_empty() => {
                self.map(node, entries, map)
            }
            (Value::Seq(items), Json::Array(arr)) if !items.is_empty() && !arr.is_empty() => {
                self.seq(node, items, arr)
            }
            (Value::Map(_) | Value::Seq(_), _) => self.replace(node, wanted, slot, in_flow),
            (_, _) if render::is_block(wanted) || node.span.start == node.span.end => {
                self.replace(node, wanted, slot, in_flow)
            }
            (_, _) => {
                let old = &self.text[node.span.start..node.span.end];
                if old.starts_with(['|', '>']) {
                    // A block scalar: its span ends with its last line's newline.
                    let mut text = render::scalar(wanted, in_flow, self.json, Quote::Plain);
                    text.push('\n');
                    self.edit(node.span.start, node.span.end, text);
                    return;
                }
                let text = render::scalar(wanted, in_flow, self.json, Quote::of(old));
                self.edit(node.span.start, node.span.end, text);
            }
        }
    }

    /// Re-renders `node` as `wanted` where it stands.
    fn replace(&mut self, node: &Node, wanted: &Json, slot: Slot, in_flow: bool) {
        let Span { start, end } = node.span;
        let block_scalar = self.text[start..end].starts_with(['|', '>']);
        let newline = if block_scalar { "\n" } else { "" };
        if in_flow || self.json {
            let padded = self.text[start..end].starts_with("{ ");
            let text = match slot {
                Slot::Value { colon: Some(c), .. } if start == end => {
                    return self.edit(
                        c,
                        c,
                        format!(" {}", render::flow_text(wanted, self.json, padded)),
                    );
                }
                Slot::Value { colon: None, .. } if start == end => {
                    format!(": {}", render::flow_text(wanted, self.json, padded))
                }
                _ => render::flow_text(wanted, self.json, padded),
            };
            return self.edit(start, end, text);
        }
        match slot {
            Slot::Value {
                colon: Some(c),
                key_col,
            } => {
                let keep_flow =
                    self.is_flow(node) && matches!(node.value, Value::Map(_) | Value::Seq(_));
                let text = if keep_flow {
                    format!(
                        " {}",
                        render::flow_text(wanted, false, self.text[start..end].starts_with("{ "))
                    )
                } else {
                    render::after_colon(wanted, key_col)
                };
                self.edit(c, end.max(c), format!("{text}{newline}"));
            }
            Slot::Value {
                colon: None,
                key_col,
            } => {
                let text = render::after_colon(wanted, key_col);
                self.edit(start, end, format!(":{text}{newline}"));
            }
            Slot::Item | Slot::Root => {
                let (start, prefix) = if start > 0 && self.text.as_bytes()[start - 1] == b'-' {
                    (start, " ")
                } else {
                    (start, "")
                };
                let col = self.col(start) + prefix.len();
                let text =
                    if self.is_flow(node) && matches!(node.value, Value::Map(_) | Value::Seq(_)) {
                        render::flow_text(wanted, false, self.text[start..end].starts_with("{ "))
                    } else {
                        render::block(wanted, col)
                    };
                self.edit(start, end, format!("{prefix}{text}{newline}"));
            }
        }
    }

    fn map(&mut self, node: &Node, entries: &[Entry], map: &serde_json::Map<String, Json>) {
        let flow = self.is_flow(node);
        let kept: Vec<bool> = entries.iter().map(|e| map.contains_key(&e.key)).collect();
        if !kept.contains(&true) {
            // Nothing in common: write the mapping anew.
            return self.replace_here(node, &Json::Object(map.clone()));
        }
        for (entry, _) in entries.iter().zip(&kept).filter(|(_, k)| **k) {
            let slot = Slot::Value {
                colon: self.colon(entry),
                key_col: self.col(entry.key_span.start),
            };
            self.node(&entry.value, &map[&entry.key], slot, flow);
        }
        let starts: Vec<usize> = entries.iter().map(|e| e.key_span.start).collect();
        let ends: Vec<usize> = entries
            .iter()
            .map(|e| {
                if e.value.span.start == e.value.span.end {
                    // `key:` with nothing after it: the entry ends at its colon.
                    self.colon(e).unwrap_or(e.key_span.end)
                } else {
                    e.value.span.end
                }
            })
            .collect();
        self.remove_runs(&kept, &starts, &ends, flow);
        let added: Vec<(&String, &Json)> = render::ordered(map)
            .into_iter()
            .filter(|(k, _)| !entries.iter().any(|e| &e.key == *k))
            .collect();
        if added.is_empty() {
            return;
        }
        let last = kept.iter().rposition(|k| *k).unwrap_or(0);
        if flow {
            let text: String = added
                .iter()
                .map(|(k, v)| {
                    format!(
                        ", {}: {}",
                        render::key(k, true, self.json),
                        render::flow_text(v, self.json, false)
                    )
                })
                .collect();
            self.edit(ends[last], ends[last], text);
        } else {
            let col = self.col(starts[0]);
            let pad = " ".repeat(col);
            let text: String = added
                .iter()
                .map(|(k, v)| format!("\n{pad}{}", render::entry(k, v, col)))
                .collect();
            let at = self.line_end(ends[last]);
            self.edit(at, at, text);
        }
    }

    fn seq(&mut self, node: &Node, items: &[Node], arr: &[Json]) {
        let flow = self.is_flow(node);
        let (n, m) = (items.len(), arr.len());
        let eq = |i: usize, j: usize| same(&items[i].to_json(), &arr[j]);
        let prefix = (0..n.min(m)).take_while(|&i| eq(i, i)).count();
        let suffix = (0..n.min(m) - prefix)
            .take_while(|&k| eq(n - 1 - k, m - 1 - k))
            .count();
        let starts: Vec<usize> = items
            .iter()
            .map(|i| if flow { i.span.start } else { self.dash(i) })
            .collect();
        let ends: Vec<usize> = items.iter().map(|i| i.span.end).collect();
        if n > m && prefix + suffix == m {
            let kept: Vec<bool> = (0..n).map(|i| i < prefix || i >= n - suffix).collect();
            return self.remove_runs(&kept, &starts, &ends, flow);
        }
        let (insert_at, new_items) = if m > n && prefix + suffix == n {
            (prefix, &arr[prefix..m - suffix])
        } else {
            // Item by item, then the tail removed or appended.
            for (item, w) in items.iter().zip(arr) {
                self.node(item, w, Slot::Item, flow);
            }
            if n > m {
                let kept: Vec<bool> = (0..n).map(|i| i < m).collect();
                return self.remove_runs(&kept, &starts, &ends, flow);
            }
            (n, &arr[n..])
        };
        if new_items.is_empty() {
            return;
        }
        if flow {
            let rendered: Vec<String> = new_items
                .iter()
                .map(|v| render::flow_text(v, self.json, false))
                .collect();
            if insert_at == n {
                self.edit(
                    ends[n - 1],
                    ends[n - 1],
                    format!(", {}", rendered.join(", ")),
                );
            } else {
                self.edit(
                    starts[insert_at],
                    starts[insert_at],
                    format!("{}, ", rendered.join(", ")),
                );
            }
            return;
        }
        let col = self.col(starts[0]);
        let pad = " ".repeat(col);
        let lines: Vec<String> = new_items
            .iter()
            .map(|v| format!("{pad}- {}", render::block(v, col + 2)))
            .collect();
        if insert_at > 0 {
            let at = self.line_end(ends[insert_at - 1]);
            self.edit(at, at, format!("\n{}", lines.join("\n")));
        } else if self.first_on_line(starts[0]) {
            let at = self.line_start(starts[0]);
            self.edit(at, at, format!("{}\n", lines.join("\n")));
        } else {
            self.replace_here(node, &Json::Array(arr.to_vec()));
        }
    }

    /// Deletes the runs of consecutive siblings not `kept` (at least one is kept).
    fn remove_runs(&mut self, kept: &[bool], starts: &[usize], ends: &[usize], flow: bool) {
        let n = kept.len();
        let mut i = 0;
        while i < n {
            if kept[i] {
                i += 1;
                continue;
            }
            let p = i;
            while i < n && !kept[i] {
                i += 1;
            }
            let q = i;
            if flow {
                if q < n {
                    self.edit(starts[p], starts[q], String::new());
                } else {
                    self.edit(ends[p - 1], ends[q - 1], String::new());
                }
            } else if self.first_on_line(starts[p]) {
                // The lines of the run with the newline before them (so an insertion at the end
                // of the last line stays outside the deleted range), or after them on line 1.
                let from = self.line_start(starts[p]);
                if from > 0 {
                    self.edit(from - 1, self.line_end(ends[q - 1]), String::new());
                } else {
                    self.edit(from, self.after_line(ends[q - 1]), String::new());
                }
            } else if q < n {
                self.edit(starts[p], starts[q], String::new());
            } else {
                let from = self.line_end(ends[p - 1]);
                let to = self.line_end(ends[q - 1]);
                self.edit(from, to, String::new());
            }
        }
    }

    /// Re-renders a collection whose slot is not known here: in place, as flow when it was flow
    /// (or in JSON), else as a block at its own column.
    fn replace_here(&mut self, node: &Node, wanted: &Json) {
        let Span { start, end } = node.span;
        let text = if self.is_flow(node) {
            render::flow_text(wanted, self.json, self.text[start..end].starts_with("{ "))
        } else {
            render::block(wanted, self.col(start))
        };
        self.edit(start, end, text);
    }
}
