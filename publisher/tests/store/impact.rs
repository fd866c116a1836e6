//! `publisher impact`: the checkout against what `prod` serves, over a JSONL sample. The split's
//! move is worked out from shared-eval's bucketing directly; a kill in force stays in force
//! on the proposed side (as the push would keep it), so nobody moves; a bad line is `file:line`.

use std::path::Path;

use serde_json::json;
use shared_eval::{BUCKETS, bucket};

use crate::common::{Store, text};

fn write_checkout(dir: &Path, on: u32, de_rule: bool) {
    std::fs::create_dir_all(dir.join("flags")).unwrap();
    let rules = if de_rule {
        "    rules:\n      - id: de\n        if: { attr: country, equals: DE }\n        serve: on\n"
    } else {
        ""
    };
    std::fs::write(
        dir.join("flags/checkout.yaml"),
        format!(
            "key: checkout\ndescription: New checkout.\nowner: team-pay\ntype: release\ndefault: off\n\
             environments:\n  prod:\n    enabled: true\n{rules}    fallthrough:\n      split: {{ on: {on}, off: {} }}\n",
            100 - on
        ),
    )
    .unwrap();
}

#[test]
fn impact_counts_who_moves_and_names_bad_sample_lines() {
    let store = Store::new();
    let flags = store.flags();
    let flags = flags.to_str().unwrap();
    write_checkout(&store.flags(), 50, false);
    store.ok(&["push", flags], &["--author", "a"]);

    let keys: Vec<String> = (0..2000).map(|i| format!("user-{i}")).collect();
    let country = |i: usize| ["DE", "FR", "US", "IT"][i % 4];
    let lines: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| json!({ "targetingKey": k, "country": country(i) }).to_string())
        .collect();
    let sample = store.path().join("sample.jsonl");
    std::fs::write(&sample, lines.join("\n")).unwrap();
    let sample = sample.to_str().unwrap();

    // Nothing changed: nobody moves, exit 0.
    let out = store.run(&["impact", flags], &["--sample", sample]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no flag changes"), "{}", text(&out));

    // 50% -> 60%, plus `on` for every DE context.
    write_checkout(&store.flags(), 60, true);
    let (low, high) = (BUCKETS / 2, BUCKETS * 6 / 10);
    let expected = keys
        .iter()
        .enumerate()
        .filter(|(i, k)| {
            country(*i) == "DE" && bucket("checkout", k) >= low
                || country(*i) != "DE" && (low..high).contains(&bucket("checkout", k))
        })
        .count();
    let out = store.run(&["impact", flags], &["--sample", sample, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["env"], "prod");
    assert_eq!(report["sample"], 2000);
    assert_eq!(
        report["flags"],
        json!([{
            "flag": "checkout", "change": "changed", "moved": expected,
            "share": expected as f64 / 2000.0,
            "moves": [{"from": "off", "to": "on", "count": expected, "share": expected as f64 / 2000.0}],
        }]),
        "{report:#}"
    );

    // Killed in prod: the push would keep the kill, so nobody would move.
    store.ok(&["kill", "checkout"], &["--author", "a"]);
    let report = store.run(&["impact", flags], &["--sample", sample, "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["flags"][0]["moved"], 0, "{report:#}");

    let bad = store.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"targetingKey\": \"a\"}\n{\"targetingKey\": \n").unwrap();
    let out = store.run(&["impact", flags], &["--sample", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{}:2: not JSON", bad.display())),
        "{}",
        text(&out)
    );
}
