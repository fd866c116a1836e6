//! Load-time interning of the texts rules compare context values against (every `in` list
//! entry and every string operand of `equals` / `not_equals`), so that a resolved context can
//! carry, per attribute, the id of its value's text: a string test is then one integer compare
//! and an `in` test a scan of the few lists that text is in, where the bytes were otherwise
//! hashed and compared once per test and per flag.
//!
//! Ids are positions in a sorted table of distinct texts. A value's id marks whether it came
//! from a number ([`NUMBER`]): numbers are in a list by their canonical text but never equal a
//! string operand, so `equals` compares the whole id and `in` masks the mark off.

use alloc::{collections::BTreeMap, string::String, vec::Vec};
use serde_json::Value;

use crate::{Body, Condition, MAX_RULE_DEPTH, Op, index::HashIndex, ops};

/// The id of a value whose text is not interned (or that has none: not a string or number).
pub(crate) const NO_TEXT: u32 = u32::MAX;
/// Set on the id of a number's canonical text.
pub(crate) const NUMBER: u32 = 1 << 31;

/// The interned texts of one blob.
#[derive(Debug, Default)]
pub(crate) struct Texts {
    texts: Vec<String>,
    index: HashIndex,
    /// Text `id` is in the lists `lists[starts[id]..starts[id + 1]]` (list ids, ascending).
    starts: Vec<u32>,
    lists: Vec<u32>,
    /// Whether every list entry and string operand got an id (only a blob beyond any size the
    /// loader accepts could have more than `NUMBER` of them). Without it, programs keep the
    /// byte-comparing checks.
    complete: bool,
}

impl Texts {
    pub(crate) fn new<'b>(body: &'b Body) -> Texts {
        let mut found: BTreeMap<&'b str, Vec<u32>> = BTreeMap::new();
        for (list_id, list) in body.lists.iter().enumerate() {
            let Ok(list_id) = u32::try_from(list_id) else {
                return Texts::default();
            };
            for entry in list {
                found.entry(entry.as_str()).or_default().push(list_id);
            }
        }
        let mut operand = |condition: &'b Condition| {
            visit_string_operands(condition, 1, &mut |text| {
                found.entry(text).or_default();
            })
        };
        for segment in &body.segments {
            operand(&segment.condition);
        }
        for flag in &body.flags {
            if let crate::Targeting::Rules { rules, .. } = &flag.targeting {
                for rule in rules {
                    operand(&rule.condition);
                }
            }
        }
        if found.len() >= NUMBER as usize {
            return Texts::default();
        }
        let mut texts = Vec::with_capacity(found.len());
        let mut starts = Vec::with_capacity(found.len() + 1);
        let mut lists = Vec::new();
        for (text, mut in_lists) in found {
            in_lists.dedup(); // pushed in ascending list order
            starts.push(lists.len() as u32);
            lists.extend(in_lists);
            texts.push(String::from(text));
        }
        starts.push(lists.len() as u32);
        let index = HashIndex::new(texts.iter().map(String::as_str));
        let complete = u32::try_from(lists.len()).is_ok();
        Texts {
            texts,
            index,
            starts,
            lists,
            complete,
        }
    }

    /// Whether ids stand for every text rules compare against (see `complete`).
    pub(crate) fn complete(&self) -> bool {
        self.complete
    }

    /// The id of `text`, if interned.
    pub(crate) fn id(&self, text: &str) -> Option<u32> {
        let at = self
            .index
            .find(text, |i| self.texts.get(i).map(String::as_str))?;
        u32::try_from(at).ok().filter(|id| *id < NUMBER)
    }

    /// The id of a context value's text: a string's, or a number's canonical text with the
    /// [`NUMBER`] mark; [`NO_TEXT`] for anything else or a text no rule compares against.
    pub(crate) fn id_of_value(&self, value: Option<&Value>) -> u32 {
        match value {
            Some(Value::String(text)) => self.id(text).unwrap_or(NO_TEXT),
            Some(Value::Number(n)) => {
                let mut text = ops::StackStr::new();
                match ops::write_canonical_number(&mut text, n) {
                    Ok(()) => self.id(text.as_str()).map_or(NO_TEXT, |id| id | NUMBER),
                    Err(_) => NO_TEXT,
                }
            }
            _ => NO_TEXT,
        }
    }

    /// Whether the text with this value id (as [`Texts::id_of_value`] gives it) is in list
    /// `list`: what `ops::in_list` decides for that value.
    #[inline(always)]
    pub(crate) fn in_list(&self, value_id: u32, list: u32) -> bool {
        let id = (value_id & !NUMBER) as usize;
        let Some(&[start, end]) = self.starts.get(id..id + 2) else {
            return false;
        };
        // Most texts are in one or two lists: a short scan.
        self.lists
            .get(start as usize..end as usize)
            .is_some_and(|lists| lists.contains(&list))
    }
}

/// Calls `f` on the string operand of every `equals` / `not_equals` test of `condition`
/// (segments are visited on their own).
fn visit_string_operands<'b>(condition: &'b Condition, level: usize, f: &mut impl FnMut(&'b str)) {
    if level > MAX_RULE_DEPTH {
        return;
    }
    match condition {
        Condition::All(items) | Condition::Any(items) => {
            for item in items {
                visit_string_operands(item, level + 1, f);
            }
        }
        Condition::Not(inner) => visit_string_operands(inner, level + 1, f),
        Condition::Segment(_) => {}
        Condition::Test(test) => {
            if let Op::Equals(Value::String(text)) | Op::NotEquals(Value::String(text)) = &test.op {
                f(text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, Test};
    use alloc::{string::ToString, vec};
    use serde_json::json;

    fn body() -> Body {
        Body {
            lists: vec![
                vec!["DE".into(), "FR".into(), "US".into()],
                vec!["1".into(), "42".into(), "DE".into()],
                vec![],
            ],
            segments: vec![crate::Segment {
                key: "s".into(),
                condition: Condition::Not(alloc::boxed::Box::new(Condition::Test(Test {
                    attr: 0,
                    op: Op::NotEquals(json!("premium")),
                }))),
            }],
            ..Body::default()
        }
    }

    #[test]
    fn ids_answer_what_the_list_search_answers() {
        let body = body();
        let texts = Texts::new(&body);
        assert!(texts.complete());
        let indexes: Vec<HashIndex> = body
            .lists
            .iter()
            .map(|list| HashIndex::new(list.iter().map(String::as_str)))
            .collect();
        for value in [
            json!("DE"),
            json!("US"),
            json!("1"),
            json!(1),
            json!(1.0),
            json!(42),
            json!("42"),
            json!("premium"),
            json!("de"),
            json!(true),
            json!(null),
            json!(["DE"]),
            json!(1e300),
        ] {
            let id = texts.id_of_value(Some(&value));
            for list in 0..4u32 {
                assert_eq!(
                    texts.in_list(id, list),
                    ops::in_list(&value, &body, &indexes, list),
                    "{value} in list {list}"
                );
            }
        }
        assert_eq!(texts.id_of_value(None), NO_TEXT);
        // A string operand is interned, and only a string value gets its id.
        let premium = texts.id("premium").unwrap();
        assert_eq!(texts.id_of_value(Some(&json!("premium"))), premium);
        assert_ne!(texts.id_of_value(Some(&json!(42))), texts.id("42").unwrap());
        assert_eq!(texts.id("absent"), None);
        assert_eq!(
            texts.id_of_value(Some(&json!("absent".to_string()))),
            NO_TEXT
        );
    }
}
