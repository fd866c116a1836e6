//! The format-preserving editor (`flags_compile::edit`): one changed value changes one line,
//! structural edits keep every untouched line and comment, hostile strings read back as
//! themselves, random edits of the example files round-trip, `canonical` round-trips.

use std::path::Path;

use flags_compile::edit::{canonical, rewrite};
use flags_compile::yaml;
use proptest::prelude::*;
use serde_json::{Value as Json, json};

fn example(sub_and_name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/flags")
            .join(sub_and_name),
    )
    .unwrap()
}

fn examples() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for sub in ["flags", "segments"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/flags")
            .join(sub);
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for p in paths {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    out
}

/// JSON equality with numbers compared by value.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn json_of(text: &str) -> Json {
    yaml::parse(text).unwrap().to_json()
}

/// Rewrites and checks the result means `wanted`.
fn edit(text: &str, wanted: &Json) -> String {
    let out = rewrite(text, wanted).unwrap_or_else(|e| panic!("{e}\n--- text:\n{text}"));
    assert!(same(&json_of(&out), wanted), "--- out:\n{out}");
    out
}

/// The 0-based numbers of the lines that differ (both texts must have as many lines).
fn changed_lines(a: &str, b: &str) -> Vec<usize> {
    let (a, b): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    assert_eq!(a.len(), b.len(), "line count changed:\n{}", b.join("\n"));
    (0..a.len()).filter(|&i| a[i] != b[i]).collect()
}

/// Whether `small`'s lines appear in `big` in order (every untouched line survived).
fn is_subsequence(small: &str, big: &str) -> bool {
    let mut big = big.lines();
    small.lines().all(|l| big.any(|m| m == l))
}

#[test]
fn one_value_changes_one_line() {
    let text = example("flags/ios-offline-mode.yaml");
    let mut w = json_of(&text);
    w["environments"]["prod"]["rules"][0]["serve"]["split"]["on"] = json!(20);
    let out = edit(&text, &w);
    assert_eq!(changed_lines(&text, &out).len(), 1, "{out}");
    assert!(out.contains("split: { on: 20, off: 90 }"), "{out}");

    let text = example("flags/checkout-v2.yaml");
    let mut w = json_of(&text);
    w["environments"]["prod"]["enabled"] = json!(false);
    let out = edit(&text, &w);
    assert_eq!(changed_lines(&text, &out).len(), 1, "{out}");

    let text = example("flags/api-page-size.yaml");
    let mut w = json_of(&text);
    w["variants"]["large"] = json!(500);
    let out = edit(&text, &w);
    assert_eq!(changed_lines(&text, &out), vec![6]);
    assert!(out.contains("\n  large: 500\n"));

    // A quoted string keeps its quotes.
    w = json_of(&text);
    w["environments"]["prod"]["rules"][0]["if"]["all"][1]["semver-ge"] = json!("4.0.0");
    let out = edit(&text, &w);
    assert_eq!(changed_lines(&text, &out).len(), 1);
    assert!(out.contains(r#"semver-ge: "4.0.0" }"#), "{out}");
}

#[test]
fn structural_edits_keep_untouched_lines_and_comments() {
    let text = example("flags/new-chart.yaml");
    let base = json_of(&text);

    // Add a rule to prod.
    let mut w = base.clone();
    w["environments"]["prod"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "everyone", "serve": "on"}));
    let out = edit(&text, &w);
    assert!(is_subsequence(&text, &out), "{out}");
    assert!(
        out.contains("      - id: everyone\n        serve: on\n"),
        "{out}"
    );

    // Remove dev's second rule.
    let mut w = base.clone();
    w["environments"]["dev"]["rules"]
        .as_array_mut()
        .unwrap()
        .remove(1);
    let out = edit(&text, &w);
    assert!(is_subsequence(&out, &text), "{out}");
    assert_eq!(text.lines().count() - out.lines().count(), 3);

    // Remove `description`, add `salt`.
    let mut w = base.clone();
    w.as_object_mut().unwrap().remove("description");
    w["salt"] = json!("chart-2");
    let out = edit(&text, &w);
    assert!(!out.contains("description"));
    assert!(
        out.contains("\nsalt: chart-2\n") || out.ends_with("\nsalt: chart-2"),
        "{out}"
    );
    for line in text.lines().filter(|l| l.trim_start().starts_with('#')) {
        assert!(out.contains(line), "lost comment {line}");
    }

    // Add `tags` and an environment to a file without them.
    let text = example("flags/api-page-size.yaml");
    let mut w = json_of(&text);
    w["tags"] = json!(["api", "paging"]);
    w["environments"]["dev"] = json!({"enabled": true, "fallthrough": "large"});
    let out = edit(&text, &w);
    assert!(is_subsequence(&text, &out), "{out}");
    assert!(out.contains("tags:\n  - api\n  - paging\n"), "{out}");
    assert!(
        out.contains("  dev:\n    enabled: true\n    fallthrough: large"),
        "{out}"
    );
    assert!(out.contains("# Desktop app 3.2+ renders large tables virtualised."));

    // Remove a rule holding a comment: the comment goes with it.
    let text = example("flags/new-chart.yaml");
    let mut w = json_of(&text);
    w["environments"]["prod"]["rules"]
        .as_array_mut()
        .unwrap()
        .pop();
    let out = edit(&text, &w);
    assert!(!out.contains("A quarter of organisations"));
    assert!(out.contains("# The demo dashboard runs against dev"));
}

const HOSTILE: &[&str] = &[
    "on",
    "off",
    "null",
    "Null",
    "true",
    "True",
    "1.0",
    "1",
    "0x1F",
    "1e3",
    ".inf",
    ":",
    "- x",
    "#x",
    " leading space",
    "trailing space ",
    "a: b",
    "a #b",
    "",
    "~",
    "@x",
    "`x",
    "%x",
    "!x",
    "*x",
    "&x",
    "|",
    ">",
    "?",
    "-",
    "--- x",
    "...",
    "{a}",
    "[a]",
    "a, b",
    "it's",
    "say \"hi\"",
    "back\\slash",
    "two\nlines",
    "tab\there",
    "\r",
    "é ü 日本",
    "\u{85}",
    "\u{2028}",
    "\u{feff}x",
    "\u{1}",
    "x:",
    "k: v\nk2: v2",
    "'",
    "\"",
    "https://x.example/a?b=c#d",
];

#[test]
fn hostile_strings_read_back_in_block_flow_and_json() {
    let texts = [
        "a: x\nb: [x, y]\nc: { d: x }\nd:\n  - x\n",
        "a: 'x'\nb: ['x', \"y\"]\nc: {d: \"x\"}\nd:\n  - 'x'\n",
        "{\"a\": \"x\", \"b\": [\"x\"], \"c\": {\"d\": 1}, \"d\": [1]}",
    ];
    for text in texts {
        for s in HOSTILE {
            let w = json!({"a": s, "b": [s, "y"], "c": {"d": s, *s: s}, "d": [s], "e": {*s: [s]}});
            let out = edit(text, &w);
            if text.starts_with('{') {
                let back: Json =
                    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
                assert_eq!(back, w);
            }
            assert_eq!(json_of(&canonical(&w)), w);
        }
    }
}

#[test]
fn no_op_edits_change_nothing() {
    for (path, text) in examples() {
        assert_eq!(rewrite(&text, &json_of(&text)).unwrap(), text, "{path}");
    }
}

#[test]
fn canonical_looks_like_the_examples() {
    let text = example("flags/api-page-size.yaml");
    let out = canonical(&json_of(&text));
    // serde_json's maps are sorted by key, so that is "the given order".
    assert!(out.contains("environments:\n  prod:\n    enabled: true\n    fallthrough: standard\n    rules:\n      - id: fast-clients\n        if:\n          all:\n            - attr: app.name\n              equals: desktop\n"), "{out}");
    assert_eq!(json_of(&out), json_of(&text));
}

#[test]
fn kind_changes_and_empty_documents() {
    let out = edit(
        "a: 1 # one\nb: x\n",
        &json!({"a": {"x": [1, {"y": null}]}, "b": "x"}),
    );
    assert!(out.ends_with("b: x\n"), "{out}");
    edit("a:\n  - 1\n  - 2\nb: 2\n", &json!({"a": "s", "b": 2}));
    edit("a:\nb:\n", &json!({"a": [1], "b": {"c": 1}}));
    edit(
        "a: {x: , y: }\n",
        &json!({"a": {"x": 1, "y": null, "z": 2}}),
    );
    edit("- a\n- b\n", &json!([{"k": "v", "l": [1]}, "b", "c"]));
    edit("- - a\n  - b\n", &json!([["b"]]));
    edit("# only a comment\n", &json!({"a": 1}));
    edit("", &json!([1, 2]));
    edit("a: |\n  two\n  lines\nb: 1\n", &json!({"a": "one", "b": 1}));
    edit(
        "a: |\n  two\n  lines\nb: 1\n",
        &json!({"a": {"x": 1}, "b": 1}),
    );
    edit("- id: a\n  serve: on\n", &json!([{"serve": "on"}]));
    assert_eq!(edit("- |\n  a\n- b\n", &json!(["z", "b"])), "- z\n- b\n");
    assert_eq!(
        edit(
            "k: >-  # c\n  folded\n  text\nn: 1\n",
            &json!({"k": "x", "n": 1})
        ),
        "k: x\nn: 1\n"
    );
    assert_eq!(
        edit(
            "a: [1, 2]  # keep\nb: {x: y}  # keep\n",
            &json!({"a": [1, 2, 3], "b": {"x": "y", "z": 1}})
        ),
        "a: [1, 2, 3]  # keep\nb: {x: y, z: 1}  # keep\n"
    );
    assert_eq!(
        edit(
            "a: 'x'  # keep\nb: \"y\"  # keep\n",
            &json!({"a": "it's", "b": "q\""})
        ),
        "a: 'it''s'  # keep\nb: \"q\\\"\"  # keep\n"
    );
    edit("a: 1\nb: 2", &json!({"a": 1}));
    edit("a: 1\nb: 2", &json!({"b": 2, "c": 3}));
}

#[test]
fn json_files_stay_json() {
    let text = "{\n  \"key\": \"a\",\n  \"owner\": \"t\",\n  \"environments\": {\n    \"prod\": {\"enabled\": true, \"rules\": []}\n  }\n}\n";
    let mut w = json_of(text);
    w["owner"] = json!("team: ops");
    let out = edit(text, &w);
    assert_eq!(changed_lines(text, &out), vec![2]);
    w["environments"]["prod"]["rules"] = json!([{"serve": "on"}]);
    w.as_object_mut().unwrap().remove("key");
    w["tags"] = json!(["x"]);
    let out = edit(text, &w);
    let back: Json = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(same(&back, &w), "{out}");
}

#[test]
fn non_ascii_text_before_an_edit() {
    let text = "# ünïcödé ✓\nd: \"日本語\" # ✓\nn: 1\n";
    let out = edit(text, &json!({"d": "日本語", "n": 2}));
    assert_eq!(out, "# ünïcödé ✓\nd: \"日本語\" # ✓\nn: 2\n");
    let out = edit(text, &json!({"d": "ü", "n": 1}));
    assert_eq!(out, "# ünïcödé ✓\nd: \"ü\" # ✓\nn: 1\n");
}

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
