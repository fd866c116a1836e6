//! Impact expectations worked out by hand: a split's move computed from shared-eval's
//! bucketing directly (not through the evaluator), a rule that moves exactly the contexts it
//! matches, a new flag, and the sample file's errors.

use chrono::NaiveDate;
use serde_json::json;
use shared_eval::{BUCKETS, Body, bucket};

use super::*;
use crate::native::{SourceFile, Sources, compile};

fn body(flag: &str) -> Body {
    let sources = Sources {
        flags: vec![SourceFile {
            path: "flags/f.yaml".into(),
            text: flag.to_owned(),
        }],
        segments: Vec::new(),
        root: None,
    };
    let lowered = compile(
        &sources,
        "prod",
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
    );
    assert!(
        lowered
            .diagnostics
            .iter()
            .all(|d| d.severity != crate::Severity::Error),
        "{:?}",
        lowered.diagnostics
    );
    lowered.body
}

fn split(on: u32) -> Body {
    body(&format!(
        "key: checkout\nowner: t\ntype: release\ndefault: off\nenvironments:\n  prod:\n    enabled: true\n    fallthrough:\n      split: {{on: {on}, off: {}}}\n",
        100 - on
    ))
}

fn sample(contexts: Vec<Value>) -> Sample {
    Sample {
        source: "test".into(),
        contexts: contexts
            .into_iter()
            .map(|c| c.as_object().unwrap().clone())
            .collect(),
        truncated: false,
    }
}

#[test]
fn a_split_from_50_to_60_percent_moves_the_keys_bucketed_between_off_to_on() {
    let keys: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
    let contexts = sample(keys.iter().map(|k| json!({ "targetingKey": k })).collect());
    // The split's ranges are in the order written: `on` is buckets [0, 50%), then [0, 60%).
    let (low, high) = (BUCKETS / 2, BUCKETS * 6 / 10);
    let expected = keys
        .iter()
        .filter(|k| (low..high).contains(&bucket("checkout", k)))
        .count();
    let impact = impact("prod", &split(50), &split(60), &contexts, 0).unwrap();
    assert_eq!(impact.sample, 10_000);
    assert_eq!(impact.flags.len(), 1, "{impact:#?}");
    let flag = &impact.flags[0];
    assert_eq!((flag.flag.as_str(), flag.change), ("checkout", "changed"));
    assert_eq!(
        flag.moves,
        [Move {
            from: Some("off".into()),
            to: Some("on".into()),
            count: expected,
            share: expected as f64 / 10_000.0,
        }]
    );
    assert_eq!(flag.moved, expected);
    // About a tenth, as the percentages say.
    assert!((900..1100).contains(&expected), "{expected}");
}

#[test]
fn a_rule_for_de_moves_exactly_the_de_contexts() {
    let flag = |rules: &str| {
        body(&format!(
            "key: banner\nowner: t\ntype: release\ndefault: off\nenvironments:\n  prod:\n    enabled: true\n{rules}    fallthrough: off\n"
        ))
    };
    let before = flag("");
    let after = flag(
        "    rules:\n      - id: de\n        if: { attr: country, equals: DE }\n        serve: on\n",
    );
    let countries = ["DE", "FR", "US", "DE", "de", "AT", "DE"];
    let contexts = sample(
        countries
            .iter()
            .enumerate()
            .map(|(i, c)| json!({ "targetingKey": format!("u{i}"), "country": c }))
            .collect(),
    );
    let impact = impact("prod", &before, &after, &contexts, 0).unwrap();
    let flag = &impact.flags[0];
    assert_eq!(flag.moved, 3, "{impact:#?}");
    assert_eq!(flag.moves.len(), 1);
    assert_eq!(
        (flag.moves[0].from.as_deref(), flag.moves[0].to.as_deref()),
        (Some("off"), Some("on"))
    );
    let text = impact.to_string();
    assert!(
        text.contains("banner (changed): 3 of 7 contexts (42.9%) move"),
        "{text}"
    );
    assert!(text.contains("  off -> on: 3 (42.9%)"), "{text}");
}

#[test]
fn a_new_flag_moves_everyone_from_no_variant_and_unchanged_flags_are_not_listed() {
    let contexts = sample(vec![
        json!({"targetingKey": "a"}),
        json!({"targetingKey": "b"}),
    ]);
    let impact = impact("prod", &Body::default(), &split(100), &contexts, 0).unwrap();
    assert_eq!(impact.flags[0].change, "added");
    assert_eq!(impact.flags[0].moves[0].from, None);
    assert_eq!(impact.flags[0].moves[0].to.as_deref(), Some("on"));
    assert_eq!(impact.flags[0].moved, 2);
    let same = super::impact("prod", &split(30), &split(30), &contexts, 0).unwrap();
    assert!(same.flags.is_empty(), "{same:#?}");
}

#[test]
fn bad_sample_lines_are_named_by_file_and_line() {
    let text = "{\"targetingKey\": \"a\"}\n\n{\"targetingKey\": \"b\"\n";
    let err = Sample::parse("sample.jsonl", text, 10).unwrap_err();
    assert_eq!((err.file.as_str(), err.line), ("sample.jsonl", 3));
    assert!(
        err.to_string().starts_with("sample.jsonl:3: not JSON"),
        "{err}"
    );
    let err = Sample::parse("s.jsonl", "[1]\n", 10).unwrap_err();
    assert_eq!(
        err.to_string(),
        "s.jsonl:1: a context must be a JSON object, not an array"
    );
    let sample = Sample::parse("s.jsonl", "{}\n{}\n{}\n", 2).unwrap();
    assert_eq!((sample.contexts.len(), sample.truncated), (2, true));
}
