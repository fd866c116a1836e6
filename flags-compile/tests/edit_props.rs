//! Property tests of the format-preserving editor: random edits of the example files and of
//! random documents (commented, JSON) round-trip; one changed scalar changes at most one line;
//! `canonical` round-trips.

mod edit_support;

use edit_support::*;
use flags_compile::edit::{canonical, rewrite};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

// ---- property tests ----

/// The paths of every scalar in `v`.
fn scalar_paths(v: &Json, path: &mut Vec<Json>, out: &mut Vec<Vec<Json>>) {
    match v {
        Json::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.push(json!(i));
                scalar_paths(item, path, out);
                path.pop();
            }
        }
        Json::Object(m) => {
            for (k, item) in m {
                path.push(json!(k));
                scalar_paths(item, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn at<'a>(v: &'a mut Json, path: &[Json]) -> &'a mut Json {
    path.iter().fold(v, |v, step| match step {
        Json::Number(i) => &mut v[i.as_u64().unwrap() as usize],
        Json::String(k) => &mut v[k.as_str()],
        _ => unreachable!(),
    })
}

fn leaf() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        (-1e12f64..1e12).prop_map(Json::from),
        prop::num::f64::NORMAL.prop_map(Json::from),
        prop::sample::select(HOSTILE).prop_map(Json::from),
        "[a-z]{1,8}".prop_map(Json::from),
        "\\PC{0,12}".prop_map(Json::from),
    ]
}

fn value() -> impl Strategy<Value = Json> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map("[a-z]{1,6}|\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// One random edit: walk `path` down, then change, add or remove there.
#[derive(Debug, Clone)]
struct Op {
    path: Vec<usize>,
    kind: u8,
    key: String,
    value: Json,
}

fn op() -> impl Strategy<Value = Op> {
    (
        prop::collection::vec(0usize..64, 0..7),
        0u8..5,
        "[a-z-]{1,8}",
        value(),
    )
        .prop_map(|(path, kind, key, value)| Op {
            path,
            kind,
            key,
            value,
        })
}

fn walk<'a>(node: &'a mut Json, path: &[usize]) -> &'a mut Json {
    let Some((&step, rest)) = path.split_first() else {
        return node;
    };
    let descend = match node {
        Json::Array(a) => !a.is_empty(),
        Json::Object(m) => !m.is_empty(),
        _ => false,
    };
    if !descend {
        return node;
    }
    match node {
        Json::Array(a) => {
            let i = step % a.len();
            walk(&mut a[i], rest)
        }
        Json::Object(m) => {
            let k = m.keys().nth(step % m.len()).unwrap().clone();
            walk(m.get_mut(&k).unwrap(), rest)
        }
        _ => unreachable!(),
    }
}

fn apply_op(v: &mut Json, op: &Op) {
    let node = walk(v, &op.path);
    let pick = op.path.last().copied().unwrap_or(0);
    match (op.kind, &mut *node) {
        (1, Json::Object(m)) => {
            m.insert(op.key.clone(), op.value.clone());
        }
        (2, Json::Object(m)) if !m.is_empty() => {
            let k = m.keys().nth(pick % m.len()).unwrap().clone();
            m.remove(&k);
        }
        (3, Json::Array(a)) => a.push(op.value.clone()),
        (4, Json::Array(a)) if !a.is_empty() => {
            a.remove(pick % a.len());
        }
        (1 | 3, _) => {}
        _ => *node = op.value.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_of_the_examples_round_trip(file in 0usize..13, ops in prop::collection::vec(op(), 1..4)) {
        let files = examples();
        let (_, text) = &files[file % files.len()];
        let mut w = json_of(text);
        for op in &ops {
            apply_op(&mut w, op);
        }
        let out = rewrite(text, &w).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert!(same(&json_of(&out), &w), "{}", out);
    }

    #[test]
    fn changing_one_scalar_changes_one_line(file in 0usize..13, pick in 0usize..1000, new in leaf()) {
        let files = examples();
        let (_, text) = &files[file % files.len()];
        let mut w = json_of(text);
        let mut paths = Vec::new();
        scalar_paths(&w, &mut Vec::new(), &mut paths);
        *at(&mut w, &paths[pick % paths.len()]) = new;
        let out = rewrite(text, &w).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert!(same(&json_of(&out), &w), "{}", out);
        prop_assert!(changed_lines(text, &out).len() <= 1, "{}", out);
    }

    #[test]
    fn canonical_round_trips(v in value()) {
        let text = canonical(&v);
        prop_assert!(same(&json_of(&text), &v), "{}", text);
    }

    #[test]
    fn rewrite_from_anything_to_anything(a in value(), b in value()) {
        let text = canonical(&a);
        let out = rewrite(&text, &b).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert!(same(&json_of(&out), &b), "{}", out);
        // With a comment after every line and between lines.
        let commented: String = text.lines().map(|l| format!("# above\n{l} # after\n")).collect();
        let out = rewrite(&commented, &b).map_err(|e| TestCaseError::fail(format!("{e}\n{commented}")))?;
        prop_assert!(same(&json_of(&out), &b), "{}", out);
        let flow = serde_json::to_string_pretty(&a).unwrap();
        if flow.starts_with('{') {
            let out = rewrite(&flow, &b).map_err(|e| TestCaseError::fail(format!("{e}\n{flow}")))?;
            let back: Json = serde_json::from_str(&out).map_err(|e| TestCaseError::fail(format!("{e}\n{out}")))?;
            prop_assert!(same(&json_of(&out), &b) && same(&back, &b), "{}", out);
        }
    }
}
