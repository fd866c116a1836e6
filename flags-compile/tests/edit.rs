//! The format-preserving editor (`flags_compile::edit`): one changed value changes one line,
//! structural edits keep every untouched line and comment, hostile strings read back as
//! themselves, kind changes, JSON files. Property tests are in `edit_props.rs`.

mod edit_support;

use edit_support::*;
use flags_compile::edit::{canonical, rewrite};
use serde_json::{Value as Json, json};

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
    // The documented field order (serde_json's maps are sorted: `default:` would come first).
    assert!(
        out.starts_with("key: api-page-size\ndescription: Rows per page"),
        "{out}"
    );
    assert!(out.contains("type: operational\nvariants:\n"), "{out}");
    assert!(out.contains("default: standard\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - id: fast-clients\n        if:\n          all:\n            - attr: app.name\n              equals: desktop\n"), "{out}");
    assert!(out.ends_with("    fallthrough: standard\n"), "{out}");
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
