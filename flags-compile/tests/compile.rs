//! Compiler tests: what each construct of the native format compiles to, the limits, and
//! that every diagnostic names its file, line and rule. Expected values are written by hand
//! from `docs/flag-format.md`, not copied from the compiler's output.

use std::path::Path;

use chrono::NaiveDate;
use flags_compile::native::{SourceFile, Sources, compile};
use flags_compile::{CompileOptions, Diagnostic, Severity, compile_path};
use serde_json::json;
use shared_eval::{Body, Condition, Op, SemVer, SemVerCmp, Serve, Split, Targeting, Test};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
}

fn src(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.into(),
        text: text.to_owned(),
    }
}

fn build(flags: &[(&str, &str)], segments: &[(&str, &str)]) -> (Body, Vec<Diagnostic>) {
    let sources = Sources {
        flags: flags.iter().map(|(p, t)| src(p, t)).collect(),
        segments: segments.iter().map(|(p, t)| src(p, t)).collect(),
        root: None,
    };
    let lowered = compile(&sources, "prod", today());
    (lowered.body, lowered.diagnostics)
}

fn errors(diags: &[Diagnostic]) -> Vec<String> {
    diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(ToString::to_string)
        .collect()
}

fn warnings(diags: &[Diagnostic]) -> Vec<String> {
    diags
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(ToString::to_string)
        .collect()
}

/// A boolean flag whose prod environment has one rule `if: <condition>` (given inline).
fn flag_with_condition(condition: &str) -> String {
    format!(
        "owner: t\ntype: release\ndefault: off\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - id: r\n        if: {condition}\n        serve: on\n"
    )
}

/// Compiles one condition and returns the body and the rule's condition.
fn compile_condition(condition: &str) -> (Body, Condition) {
    let (body, diags) = build(&[("flags/f.yaml", &flag_with_condition(condition))], &[]);
    assert!(errors(&diags).is_empty(), "{condition}: {diags:?}");
    let Targeting::Rules { rules, .. } = &body.flags[0].targeting else {
        panic!("not rules")
    };
    let condition = rules[0].condition.clone();
    (body, condition)
}

fn op_of(condition: &str) -> Op {
    match compile_condition(condition).1 {
        Condition::Test(Test { op, .. }) => op,
        other => panic!("{condition}: expected a test, got {other:?}"),
    }
}

fn semver(major: u64, minor: u64, patch: u64, pre: &[&str]) -> SemVer {
    SemVer {
        major,
        minor,
        patch,
        pre: pre.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn every_operator_compiles_to_its_op() {
    let jan_2024_ms = 1_704_067_200_000; // 2024-01-01T00:00:00Z
    let cases: Vec<(&str, Op)> = vec![
        (
            "{attr: user.plan, equals: premium}",
            Op::Equals(json!("premium")),
        ),
        ("{attr: age, equals: 42}", Op::Equals(json!(42))),
        ("{attr: beta, equals: true}", Op::Equals(json!(true))),
        (
            "{attr: user.plan, not-equals: free}",
            Op::NotEquals(json!("free")),
        ),
        ("{attr: tags, contains: vip}", Op::Contains(json!("vip"))),
        (
            "{attr: email, starts-with: admin}",
            Op::StartsWith("admin".into()),
        ),
        (
            "{attr: email, ends-with: \"@example.com\"}",
            Op::EndsWith("@example.com".into()),
        ),
        ("{attr: email, matches: \"^a.+z$\"}", Op::Matches(0)),
        ("{attr: n, lt: 10}", Op::Lt(10.0)),
        ("{attr: n, le: 2.5}", Op::Le(2.5)),
        ("{attr: n, gt: -1}", Op::Gt(-1.0)),
        ("{attr: n, ge: 0}", Op::Ge(0.0)),
        (
            "{attr: v, semver-eq: \"1.2.3\"}",
            Op::SemVer(SemVerCmp::Eq, semver(1, 2, 3, &[])),
        ),
        (
            "{attr: v, semver-ne: \"1.2.3\"}",
            Op::SemVer(SemVerCmp::Ne, semver(1, 2, 3, &[])),
        ),
        (
            "{attr: v, semver-lt: \"2.0.0-rc.1\"}",
            Op::SemVer(SemVerCmp::Lt, semver(2, 0, 0, &["rc", "1"])),
        ),
        (
            "{attr: v, semver-le: \"v3.0.0\"}",
            Op::SemVer(SemVerCmp::Le, semver(3, 0, 0, &[])),
        ),
        (
            "{attr: v, semver-gt: \"0.9.1+build.7\"}",
            Op::SemVer(SemVerCmp::Gt, semver(0, 9, 1, &[])),
        ),
        (
            "{attr: v, semver-ge: \"3.2.0\"}",
            Op::SemVer(SemVerCmp::Ge, semver(3, 2, 0, &[])),
        ),
        (
            "{attr: v, semver-caret: \"1.4.0\"}",
            Op::SemVer(SemVerCmp::Caret, semver(1, 4, 0, &[])),
        ),
        (
            "{attr: v, semver-tilde: \"1.4.0\"}",
            Op::SemVer(SemVerCmp::Tilde, semver(1, 4, 0, &[])),
        ),
        (
            "{attr: t, before: \"2024-01-01T00:00:00Z\"}",
            Op::Before(jan_2024_ms),
        ),
        (
            "{attr: t, before: \"2024-01-01T01:00:00+01:00\"}",
            Op::Before(jan_2024_ms),
        ),
        ("{attr: t, after: 2024-01-01}", Op::After(jan_2024_ms)),
        ("{attr: t, after: 1704067200}", Op::After(jan_2024_ms)),
        ("{attr: t, after: 1704067200000}", Op::After(jan_2024_ms)),
        ("{attr: email, exists: true}", Op::Exists),
    ];
    for (condition, expected) in cases {
        assert_eq!(op_of(condition), expected, "{condition}");
    }
}

#[test]
fn in_lists_are_sorted_deduplicated_and_shared() {
    let (body, condition) = compile_condition(
        "{any: [{attr: a, in: [c, a, b, a, 7]}, {attr: b, not-in: [7, b, c, a]}]}",
    );
    assert_eq!(
        body.lists,
        vec![vec!["7", "a", "b", "c"]],
        "one list, sorted, deduplicated, shared"
    );
    let Condition::Any(items) = condition else {
        panic!()
    };
    assert_eq!(
        items[0],
        Condition::Test(Test {
            attr: 0,
            op: Op::In(0)
        })
    );
    assert_eq!(
        items[1],
        Condition::Test(Test {
            attr: 1,
            op: Op::NotIn(0)
        })
    );
}

#[test]
fn exists_false_is_not_exists_and_paths_are_interned() {
    let (body, condition) =
        compile_condition("[{attr: user.plan, exists: false}, {attr: user.plan, equals: x}]");
    assert_eq!(body.attrs[0], vec!["user".to_string(), "plan".to_string()]);
    assert_eq!(
        condition,
        Condition::All(vec![
            Condition::Not(Box::new(Condition::Test(Test {
                attr: 0,
                op: Op::Exists
            }))),
            Condition::Test(Test {
                attr: 0,
                op: Op::Equals(json!("x"))
            }),
        ])
    );
}

#[test]
fn splits_become_weights_out_of_100000() {
    let flag = "owner: t\ntype: experiment\nvariants: {a: 1, b: 2, c: 3}\ndefault: a\nenvironments:\n  prod:\n    enabled: true\n    fallthrough:\n      split: {a: 33.333, b: 33.333, c: 33.334}\n      bucket-by: org.id\n";
    let (body, diags) = build(&[("flags/f.yaml", flag)], &[]);
    assert!(diags.is_empty(), "{diags:?}");
    let Targeting::Rules { fallthrough, .. } = &body.flags[0].targeting else {
        panic!()
    };
    let org = body.attrs.iter().position(|p| p == &["org", "id"]).unwrap() as u32;
    assert_eq!(
        *fallthrough,
        Serve::Split(Split {
            bucket_by: org,
            weights: vec![(0, 33_333), (1, 33_333), (2, 33_334)]
        })
    );

    for (split, message) in [
        ("{a: 50, b: 40}", "add up to 90%, not 100%"),
        ("{a: 50.0001, b: 49.9999}", "at most 3 decimals"),
        ("{a: 50, zz: 50}", "unknown variant `zz`"),
    ] {
        let bad = flag.replace("{a: 33.333, b: 33.333, c: 33.334}", split);
        let (_, diags) = build(&[("flags/f.yaml", &bad)], &[]);
        let errs = errors(&diags);
        assert!(
            errs.iter()
                .any(|e| e.contains(message) && e.starts_with("flags/f.yaml:9:")),
            "{split}: {errs:?}"
        );
    }
}

#[test]
fn flags_sorted_defaults_kept_small_and_missing_environment_is_off() {
    let a = "owner: t\ntype: release\nsalt: zeta\nenvironments:\n  dev: {enabled: true, fallthrough: on}\n";
    let z = "key: aaa\nowner: t\ntype: operational\nsalt: aaa\nvariants: {x: hello, y: bye}\ndefault: y\n";
    let (body, diags) = build(&[("flags/zeta.yaml", a), ("flags/other.yaml", z)], &[]);
    assert!(errors(&diags).is_empty(), "{diags:?}");
    assert_eq!(
        warnings(&diags),
        [
            "flags/other.yaml:1: warning: key `aaa` differs from the file name: rename the file to `aaa.yaml` so people find it",
        ]
    );
    let keys: Vec<&str> = body.flags.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        keys,
        ["aaa", "zeta"],
        "sorted by key; key from the file name when absent"
    );
    assert_eq!(
        body.flags[0].salt, "",
        "a salt equal to the key is left out"
    );
    assert_eq!(
        body.flags[1].salt, "",
        "a salt equal to the key is left out"
    );
    let zeta = &body.flags[1];
    assert!(!zeta.enabled, "no prod section: off in prod");
    assert_eq!(
        zeta.default_variant,
        Some(1),
        "boolean shorthand: default off"
    );
    assert_eq!(zeta.off_variant, Some(1));
    assert_eq!(body.flags[0].default_variant, Some(1));
    // Nothing of the file's prose reaches the body.
    let json = serde_json::to_string(&body).unwrap();
    assert!(!json.contains("owner") && !json.contains("\"t\""), "{json}");
}

#[test]
fn segments_ordered_and_prerequisites_resolved_topologically() {
    let seg_a = "key: a\nif: {segment: b}\n";
    let seg_b = "key: b\nif: {attr: x, equals: 1}\n";
    let child = "owner: t\ntype: release\nprerequisites: [parent]\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - if: {segment: a}\n        serve: on\n";
    let parent =
        "owner: t\ntype: release\nvariants: {yes: true, no: false, maybe: true}\ndefault: no\n";
    let (body, diags) = build(
        &[("flags/child.yaml", child), ("flags/parent.yaml", parent)],
        &[("segments/a.yaml", seg_a), ("segments/b.yaml", seg_b)],
    );
    assert!(errors(&diags).is_empty(), "{diags:?}");
    let keys: Vec<&str> = body.segments.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["b", "a"], "a segment only refers to earlier ones");
    assert_eq!(body.segments[1].condition, Condition::Segment(0));
    // child = 0, parent = 1; parent first in eval order.
    assert_eq!(body.eval_order, vec![1, 0]);
    let prereq = &body.flags[0].prerequisites[0];
    assert_eq!(prereq.flag, 1);
    assert_eq!(
        prereq.variants,
        vec![0, 2],
        "without `variants`: every variant whose value is true"
    );
}

#[test]
fn cycles_are_rejected_by_name() {
    let flag =
        |prereq: &str| format!("owner: t\ntype: release\nprerequisites:\n  - flag: {prereq}\n");
    let (_, diags) = build(
        &[
            ("flags/a.yaml", &flag("b")),
            ("flags/b.yaml", &flag("c")),
            ("flags/c.yaml", &flag("a")),
        ],
        &[],
    );
    assert_eq!(
        errors(&diags),
        ["flags/a.yaml:4: error: flag a: prerequisite cycle: a -> b -> c -> a"]
    );

    let (_, diags) = build(&[("flags/a.yaml", &flag("a"))], &[]);
    assert_eq!(
        errors(&diags),
        ["flags/a.yaml:4: error: flag a: prerequisite cycle: a -> a"]
    );

    let (_, diags) = build(
        &[],
        &[
            ("segments/x.yaml", "if: {segment: y}\n"),
            ("segments/y.yaml", "if: {any: [{segment: x}]}\n"),
        ],
    );
    assert_eq!(
        errors(&diags),
        ["segments/x.yaml:1: error: segment cycle: x -> y -> x"]
    );
}

#[test]
fn diagnostics_name_file_line_flag_and_rule_and_all_are_reported() {
    let text = "\
owner: t
type: release
default: off
environments:
  prod:
    enabled: true
    rules:
      - id: first
        if: {attr: plan, equal: premium}
        serve: on
      - if: {attr: email, matches: \"(unclosed\"}
        serve: on
      - id: third
        if: {attr: plan, equals: x}
        serve: onn
  dev:
    enabled: yes
";
    let (_, diags) = build(&[("flags/f.yaml", text)], &[]);
    let errs = errors(&diags);
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(errs[0].starts_with("flags/f.yaml:9: error: flag f: rule first: unknown operator `equal` (did you mean `equals`?)"), "{}", errs[0]);
    assert!(
        errs[1].starts_with("flags/f.yaml:11: error: flag f: rule 2: bad regex:"),
        "{}",
        errs[1]
    );
    assert_eq!(
        errs[2],
        "flags/f.yaml:15: error: flag f: rule third: unknown variant `onn`; this flag's variants are: on, off"
    );
    assert_eq!(
        errs[3],
        "flags/f.yaml:17: error: flag f: `enabled` must be true or false"
    );
}

#[test]
fn shape_errors_point_at_their_line() {
    let cases = [
        ("owner: t\ntype: releese\n", 2, "`type` must be one of"),
        (
            "owner: t\ntype: release\nvariants: {a: 1, b: x}\ndefault: a\n",
            3,
            "variant `b` is a string but `a` is a number",
        ),
        (
            "owner: t\ntype: release\nvariants: {a: 1}\ndefault: z\n",
            4,
            "unknown variant `z`",
        ),
        (
            "owner: t\ntype: release\nvariants: {a: 1}\n",
            1,
            "missing `default`",
        ),
        ("type: release\n", 1, "missing `owner`"),
        (
            "owner: t\ntype: release\ncolour: blue\n",
            3,
            "unknown field `colour`",
        ),
        (
            "owner: t\ntype: release\nexpires: 31/12/2027\n",
            3,
            "YYYY-MM-DD",
        ),
        (
            "owner: t\ntype: release\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - if: {attr: v, semver-ge: 3.2}\n        serve: on\n",
            7,
            "quote it",
        ),
        (
            "owner: t\ntype: release\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - if: {attr: t, after: yesterday}\n        serve: on\n",
            7,
            "RFC 3339",
        ),
        (
            "owner: t\ntype: release\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - if: {segment: nope}\n        serve: on\n",
            7,
            "unknown segment `nope`",
        ),
        (
            "owner: t\ntype: release\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - if: {attr: a, equals: 1, lt: 3}\n        serve: on\n",
            7,
            "one operator per test",
        ),
        (
            "owner: t\ntype: release\nprerequisites: [ghost]\n",
            3,
            "unknown flag `ghost`",
        ),
        ("owner: t\n  type: release\n", 2, "invalid YAML"),
        ("- just\n- a list\n", 1, "expected a mapping"),
    ];
    for (text, line, message) in cases {
        let (_, diags) = build(&[("flags/f.yaml", text)], &[]);
        let errs = errors(&diags);
        let prefix = format!("flags/f.yaml:{line}: error:");
        assert!(
            errs.iter()
                .any(|e| e.starts_with(&prefix) && e.contains(message)),
            "expected {prefix} ... {message}\ngot {errs:#?}"
        );
    }
}

#[test]
fn limits_are_enforced_with_clear_messages() {
    // Nesting: 33 levels of `not` around a test.
    let deep = format!(
        "{}{{attr: a, exists: true}}{}",
        "{not: ".repeat(33),
        "}".repeat(33)
    );
    let (_, diags) = build(&[("flags/f.yaml", &flag_with_condition(&deep))], &[]);
    assert!(
        errors(&diags)
            .iter()
            .any(|e| e.contains("flags/f.yaml:9:") && e.contains("rule r:") && e.contains("nest")),
        "{diags:?}"
    );

    // Through segments: a chain of 20 segments each adding 2 levels.
    let segs: Vec<(String, String)> = (0..20)
        .map(|i| {
            let body = if i == 0 {
                "{attr: a, exists: true}".to_owned()
            } else {
                format!("{{not: {{segment: s{}}}}}", i - 1)
            };
            (format!("segments/s{i}.yaml"), format!("if: {body}\n"))
        })
        .collect();
    let seg_refs: Vec<(&str, &str)> = segs.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let (_, diags) = build(
        &[("flags/f.yaml", &flag_with_condition("{segment: s19}"))],
        &seg_refs,
    );
    assert!(
        errors(&diags)
            .iter()
            .any(|e| e.contains("over the limit of 32")),
        "{diags:?}"
    );

    // Regex length.
    let long = format!("{{attr: a, matches: \"{}\"}}", "a".repeat(1_100));
    let (_, diags) = build(&[("flags/f.yaml", &flag_with_condition(&long))], &[]);
    assert!(
        errors(&diags)
            .iter()
            .any(|e| e.contains("bad regex") && e.contains("1024-byte limit")),
        "{diags:?}"
    );

    // List length.
    let items: Vec<String> = (0..100_001).map(|i| format!("u{i}")).collect();
    let big = format!("{{attr: a, in: [{}]}}", items.join(", "));
    let (_, diags) = build(&[("flags/f.yaml", &flag_with_condition(&big))], &[]);
    assert!(
        errors(&diags)
            .iter()
            .any(|e| e.contains("list of 100001 values, over the limit of 100000")),
        "{diags:?}"
    );

    // Rules per flag.
    let mut many = String::from(
        "owner: t\ntype: release\nenvironments:\n  prod:\n    enabled: true\n    rules:\n",
    );
    for i in 0..501 {
        many.push_str(&format!(
            "      - if: {{attr: a, equals: {i}}}\n        serve: on\n"
        ));
    }
    let (_, diags) = build(&[("flags/f.yaml", &many)], &[]);
    assert!(
        errors(&diags)
            .iter()
            .any(|e| e.starts_with("flags/f.yaml:7:")
                && e.contains("501 rules, over the limit of 500")),
        "{diags:?}"
    );

    // Prerequisite chain longer than 16.
    let chain: Vec<(String, String)> = (0..18)
        .map(|i| {
            let prereq = if i == 0 {
                String::new()
            } else {
                format!("prerequisites: [f{:02}]\n", i - 1)
            };
            (
                format!("flags/f{i:02}.yaml"),
                format!("owner: t\ntype: release\n{prereq}"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = chain
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let (_, diags) = build(&refs, &[]);
    assert_eq!(
        errors(&diags),
        ["flags/f16.yaml:3: error: flag f16: prerequisite chain of 17 flags, over the limit of 16"]
    );
}

#[test]
fn lints_warn_without_failing() {
    let old = "owner: t\ntype: release\nexpires: 2026-01-31\nreview-by: 2026-06-01\n";
    let fresh = "owner: t\ntype: release\nexpires: 2027-01-31\nreview-by: 2026-11-21\n";
    let unreachable = "\
owner: t
type: release
environments:
  prod:
    enabled: true
    rules:
      - id: a
        if: {attr: plan, equals: x}
        serve: on
      - id: b
        if: {attr: plan, equals: x}
        serve: off
      - id: everyone
        serve: on
      - id: never
        if: {attr: plan, equals: y}
        serve: off
";
    let (_, diags) = build(
        &[
            ("flags/old.yaml", old),
            ("flags/fresh.yaml", fresh),
            ("flags/u.yaml", unreachable),
        ],
        &[("segments/lonely.yaml", "if: {attr: a, exists: true}\n")],
    );
    assert!(errors(&diags).is_empty(), "{diags:?}");
    let mut warns = warnings(&diags);
    warns.sort();
    assert_eq!(
        warns,
        [
            "flags/old.yaml:3: warning: flag old: flag expired on 2026-01-31: remove it (and its uses), or move `expires`",
            "flags/old.yaml:4: warning: flag old: past its owner's review date (2026-06-01): review the flag and move `review-by`",
            "flags/u.yaml:10: warning: flag u: rule b: unreachable rule: same condition as rule a",
            "flags/u.yaml:15: warning: flag u: rule never: unreachable rule: rule everyone above matches every context",
            "segments/lonely.yaml:1: warning: segment lonely: unused segment: no flag or segment refers to it",
        ]
    );
}

#[test]
fn duplicate_keys_are_errors() {
    let (_, diags) = build(
        &[
            ("flags/a.yaml", "owner: t\ntype: release\n"),
            ("flags/b.yaml", "key: a\nowner: t\ntype: release\n"),
        ],
        &[],
    );
    assert_eq!(
        errors(&diags),
        ["flags/b.yaml:1: error: flag a: duplicate flag key `a` (also defined at flags/a.yaml:1)"]
    );
}

#[test]
fn validate_checks_every_environment_but_ships_one() {
    let text = "owner: t\ntype: release\nenvironments:\n  dev:\n    enabled: true\n    rules:\n      - if: {attr: dev.only, equals: 1}\n        serve: on\n  prod:\n    enabled: true\n    rules:\n      - if: {attr: prod.only, bad-op: 1}\n        serve: on\n";
    let (_, diags) = build(&[("flags/f.yaml", text)], &[]);
    assert!(
        errors(&diags)
            .iter()
            .any(|e| e.starts_with("flags/f.yaml:12:")),
        "{diags:?}"
    );
    let fixed = text.replace("bad-op", "equals");
    let (body, diags) = build(&[("flags/f.yaml", &fixed)], &[]);
    assert!(diags.is_empty());
    assert_eq!(
        body.attrs,
        vec![vec!["prod".to_string(), "only".to_string()]],
        "dev's attributes stay out of prod's blob"
    );
}

#[test]
fn examples_compile_cleanly_for_every_environment() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flags");
    for env in ["dev", "staging", "prod"] {
        let options = CompileOptions {
            environment: env.into(),
            today: Some(today()),
            new_environment: false,
        };
        let compiled = compile_path(&dir, &options).unwrap_or_else(|d| panic!("{env}: {d:#?}"));
        assert!(
            compiled.warnings.is_empty(),
            "{env}: {:#?}",
            compiled.warnings
        );
        let keys: Vec<&str> = compiled.body.flags.iter().map(|f| f.key.as_str()).collect();
        for key in [
            "new-chart",
            "beta-banner",
            "widget-config",
            "live-updates",
            "internal-debug-panel",
        ] {
            assert!(keys.contains(&key), "{env}: {key} missing");
        }
    }
}

#[test]
fn list_files_are_read_relative_to_the_flags_directory_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flags")).unwrap();
    std::fs::create_dir_all(dir.path().join("lists")).unwrap();
    std::fs::write(
        dir.path().join("lists/orgs.txt"),
        "# comment\norg-b\n\norg-a\norg-b\n",
    )
    .unwrap();
    let flag = |file: &str| {
        format!(
            "owner: t\ntype: release\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - if: {{attr: org, in: {{file: {file}}}}}\n        serve: on\n"
        )
    };
    std::fs::write(dir.path().join("flags/f.yaml"), flag("lists/orgs.txt")).unwrap();
    let compiled = compile_path(
        dir.path(),
        &CompileOptions {
            environment: "prod".into(),
            today: Some(today()),
            new_environment: false,
        },
    )
    .unwrap();
    assert_eq!(compiled.body.lists, vec![vec!["org-a", "org-b"]]);

    std::fs::write(dir.path().join("flags/f.yaml"), flag("../../etc/passwd")).unwrap();
    let diags = compile_path(dir.path(), &CompileOptions::new("prod")).unwrap_err();
    assert!(
        diags[0].to_string().contains(
            "f.yaml:7: error: flag f: rule 1: list file `../../etc/passwd`: must be a relative path"
        ),
        "{diags:?}"
    );
}

#[test]
fn oversized_blobs_are_refused() {
    // Two flags, each with a 100,000-entry list of 45-byte values: ~9 MB, over the 8 MiB cap.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flags")).unwrap();
    std::fs::create_dir_all(dir.path().join("lists")).unwrap();
    for name in ["a", "b"] {
        let list: String = (0..100_000).map(|i| format!("{name}-{i:040}\n")).collect();
        std::fs::write(dir.path().join(format!("lists/{name}.txt")), list).unwrap();
        let flag = format!(
            "owner: t\ntype: release\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - if: {{attr: id, in: {{file: lists/{name}.txt}}}}\n        serve: on\n"
        );
        std::fs::write(dir.path().join(format!("flags/{name}.yaml")), flag).unwrap();
    }
    let diags = compile_path(dir.path(), &CompileOptions::new("prod")).unwrap_err();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(
        diags[0].message.contains("over the 8384512-byte limit"),
        "{}",
        diags[0]
    );
}

#[test]
fn regexes_the_edge_cannot_run_are_refused_at_compile_time() {
    // The edge carries no Unicode tables: `\d` must be written `[0-9]`.
    let (_, diags) = build(
        &[(
            "flags/f.yaml",
            &flag_with_condition(r#"{attr: id, matches: "^\\d+$"}"#),
        )],
        &[],
    );
    let errs = errors(&diags);
    assert!(
        errs.len() == 1
            && errs[0].starts_with("flags/f.yaml:9: error: flag f: rule r: bad regex:")
            && errs[0].contains("[0-9]"),
        "{errs:?}"
    );
    let (_, diags) = build(
        &[(
            "flags/f.yaml",
            &flag_with_condition(r#"{attr: id, matches: "^[0-9]+$"}"#),
        )],
        &[],
    );
    assert!(diags.is_empty(), "{diags:?}");
    // A short pattern whose DFA blows up (2^20 states: "an `a` 21st from the end") is
    // refused where it is written, not shipped for the edge to choke on.
    let (_, diags) = build(
        &[(
            "flags/f.yaml",
            &flag_with_condition(r#"{attr: id, matches: "a[ab]{20}$"}"#),
        )],
        &[],
    );
    let errs = errors(&diags);
    assert!(
        errs.len() == 1
            && errs[0].starts_with("flags/f.yaml:9: error: flag f: rule r: bad regex:")
            && errs[0].contains("too expensive: its DFA would be over 65536 bytes"),
        "{errs:?}"
    );
}

/// A directory whose flags sit one folder down (`publisher validate .` at a repository root,
/// or in a folder holding `flags/flags/*.yaml`) is an error naming what was looked for and
/// where the flags are, never an empty, valid compile that a push would publish as "every
/// flag removed".
#[test]
fn a_directory_without_flags_is_an_error_that_points_at_them() {
    let flag = "owner: t\ntype: release\nenvironments:\n  prod: {enabled: true}\n";
    // `dir/flags/` exists but holds the real flags directory.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flags/flags")).unwrap();
    std::fs::write(dir.path().join("flags/flags/a.yaml"), flag).unwrap();
    let diags = compile_path(dir.path(), &CompileOptions::new("prod")).unwrap_err();
    let text = diags[0].to_string();
    let looked = format!("{}/flags/*.yaml", dir.path().display());
    let meant = format!("did you mean `{}`?", dir.path().join("flags").display());
    assert!(text.contains(&looked) && text.contains(&meant), "{text}");

    // No `flags/` at all (a repository root): the folder two levels down is found.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("examples/flags/flags")).unwrap();
    std::fs::write(root.path().join("examples/flags/flags/a.yaml"), flag).unwrap();
    let diags = compile_path(root.path(), &CompileOptions::new("prod")).unwrap_err();
    let text = diags[0].to_string();
    let meant = format!(
        "did you mean `{}`?",
        root.path().join("examples/flags").display()
    );
    assert!(text.contains(&meant), "{text}");

    // An empty `flags/` with nothing to suggest is still an error.
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(empty.path().join("flags")).unwrap();
    let diags = compile_path(empty.path(), &CompileOptions::new("prod")).unwrap_err();
    assert!(
        diags[0].to_string().contains("no flags here")
            && !diags[0].to_string().contains("did you mean"),
        "{diags:?}"
    );
}

/// `--env production` where the files say `prod` is an error with a suggestion, not a warning
/// and a blob with every flag off; `new_environment` (push --new-env) makes it deliberate.
#[test]
fn an_environment_no_flag_defines_is_an_error_unless_new() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flags");
    for (asked, meant) in [
        ("production", "prod"),
        ("prd", "prod"),
        ("stagin", "staging"),
    ] {
        let diags = compile_path(&dir, &CompileOptions::new(asked)).unwrap_err();
        let text = errors(&diags).join("\n");
        assert!(
            text.contains(&format!(
                "no flag defines environment `{asked}` (did you mean `{meant}`?)"
            )) && text.contains("environments in the files: dev, prod, staging"),
            "{asked}: {text}"
        );
    }
    let mut options = CompileOptions::new("production");
    options.new_environment = true;
    let compiled = compile_path(&dir, &options).expect("a new environment on purpose");
    assert!(compiled.body.flags.iter().all(|f| !f.enabled));
    assert_eq!(compiled.environments, ["dev", "prod", "staging"]);
}
