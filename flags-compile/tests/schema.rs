//! The JSON Schema of flag and segment files (`flags_compile::schema`): the committed copies in
//! `docs/schema/` are current, its fields are the compiler's field lists and operators, every
//! example file validates, files the compiler accepts validate, and mistakes the compiler
//! refuses are refused by the schema too.
//!
//! Refresh the committed copies with `UPDATE_SCHEMA=1 cargo test -p flags-compile --test schema`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use flags_compile::native::{
    self, ENV_FIELDS, FLAG_FIELDS, OPERATORS, PREREQ_FIELDS, RULE_FIELDS, SEGMENT_FIELDS,
    SPLIT_FIELDS, SourceFile, Sources,
};
use flags_compile::schedule::{ROLLOUT_FIELDS, STAGE_FIELDS};
use flags_compile::schema::{FlagFile, SegmentFile, flag_schema, segment_schema};
use flags_compile::{Severity, yaml};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn to_json(text: &str) -> Value {
    yaml::parse(text).expect("valid YAML").to_json()
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::new(schema).expect("the schema is a valid 2020-12 schema")
}

/// The schema's complaints about `instance`, one line each.
fn complaints(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// The compiler's errors for these flag files (with the two example segments beside them).
fn compiler_errors(flags: &[&str]) -> Vec<String> {
    let segments = ["beta-users", "internal-testers"].map(|key| SourceFile {
        path: format!("segments/{key}.yaml").into(),
        text: std::fs::read_to_string(repo().join(format!("examples/flags/segments/{key}.yaml")))
            .expect("example segment"),
    });
    let sources = Sources {
        flags: flags
            .iter()
            .enumerate()
            .map(|(i, text)| SourceFile {
                path: format!("flags/f{i}.yaml").into(),
                text: (*text).to_owned(),
            })
            .collect(),
        segments: segments.to_vec(),
        root: Some(repo().join("examples/flags")),
    };
    let today = NaiveDate::from_ymd_opt(2026, 11, 21).expect("date");
    native::compile(&sources, "prod", today)
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn committed_schemas_equal_the_generated_ones() {
    let update = std::env::var_os("UPDATE_SCHEMA").is_some();
    for (name, schema) in [("flag", flag_schema()), ("segment", segment_schema())] {
        let path = repo().join(format!("docs/schema/{name}.json"));
        let generated = serde_json::to_string_pretty(&schema).expect("JSON") + "\n";
        if update {
            std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir docs/schema");
            std::fs::write(&path, &generated).expect("write the schema");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let same = serde_json::from_str::<Value>(&committed).is_ok_and(|c| c == schema);
        assert!(
            same,
            "docs/schema/{name}.json differs from flags_compile::schema::{name}_schema(); \
             refresh it with `UPDATE_SCHEMA=1 cargo test -p flags-compile --test schema` \
             and commit the result"
        );
    }
}

fn property_names(schema: &Value, pointer: &str) -> BTreeSet<String> {
    schema
        .pointer(pointer)
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("no object at {pointer}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn schema_fields_are_the_compilers_field_lists_and_operators() {
    let flag = flag_schema();
    let segment = segment_schema();
    assert_eq!(property_names(&flag, "/properties"), set(FLAG_FIELDS));
    assert_eq!(property_names(&segment, "/properties"), set(SEGMENT_FIELDS));
    for (def, fields) in [
        ("Environment", ENV_FIELDS),
        ("Rule", RULE_FIELDS),
        ("PrerequisiteVariants", PREREQ_FIELDS),
        ("Rollout", ROLLOUT_FIELDS),
    ] {
        let names = property_names(&flag, &format!("/$defs/{def}/properties"));
        assert_eq!(names, set(fields), "{def}");
        assert_eq!(
            flag.pointer(&format!("/$defs/{def}/additionalProperties")),
            Some(&Value::Bool(false)),
            "{def} refuses unknown fields, as the compiler does"
        );
    }
    let union = |a: &str, b: &str| -> BTreeSet<String> {
        let mut names = property_names(&flag, &format!("/$defs/{a}/properties"));
        names.extend(property_names(&flag, &format!("/$defs/{b}/properties")));
        names
    };
    assert_eq!(union("SplitServe", "RolloutServe"), set(SPLIT_FIELDS));
    assert_eq!(union("PercentStage", "RingStage"), set(STAGE_FIELDS));

    let mut operators = property_names(&flag, "/$defs/Test/properties");
    assert!(operators.remove("attr"));
    assert_eq!(operators, set(OPERATORS));
    assert_eq!(flag["$defs"]["Test"], segment["$defs"]["Test"]);

    assert_eq!(
        flag["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(flag["$id"], "https://flags.dev/schema/flag.json");
    assert_eq!(segment["$id"], "https://flags.dev/schema/segment.json");
    assert!(flag["title"].is_string() && segment["title"].is_string());
}

fn yaml_files(dir: &str) -> Vec<(PathBuf, String)> {
    let mut files: Vec<_> = std::fs::read_dir(repo().join(dir))
        .expect("examples directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            (p, text)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_file_validates_and_reads_into_the_model() {
    let flags = validator(&flag_schema());
    let segments = validator(&segment_schema());
    let flag_files = yaml_files("examples/flags/flags");
    let segment_files = yaml_files("examples/flags/segments");
    assert!(flag_files.len() >= 10 && segment_files.len() >= 2);
    for (path, text) in &flag_files {
        let doc = to_json(text);
        assert_eq!(complaints(&flags, &doc), Vec::<String>::new(), "{path:?}");
        serde_json::from_value::<FlagFile>(doc).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    }
    for (path, text) in &segment_files {
        let doc = to_json(text);
        assert_eq!(
            complaints(&segments, &doc),
            Vec::<String>::new(),
            "{path:?}"
        );
        serde_json::from_value::<SegmentFile>(doc).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    }
}

/// A boolean flag whose prod environment has one rule `if: <condition>` (as in compile.rs).
fn flag_with_condition(condition: &str) -> String {
    format!(
        "owner: t\ntype: release\ndefault: off\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - id: r\n        if: {condition}\n        serve: on\n"
    )
}

/// Conditions from the compiler's tests (tests/compile.rs), every operator among them.
const CONDITIONS: &[&str] = &[
    "{attr: user.plan, equals: premium}",
    "{attr: age, equals: 42}",
    "{attr: beta, equals: true}",
    "{attr: user.plan, not-equals: free}",
    "{attr: tags, contains: vip}",
    "{attr: email, starts-with: admin}",
    "{attr: email, ends-with: \"@example.com\"}",
    "{attr: email, matches: \"^a.+z$\"}",
    "{attr: n, lt: 10}",
    "{attr: n, le: 2.5}",
    "{attr: n, gt: -1}",
    "{attr: n, ge: 0}",
    "{attr: v, semver-eq: \"1.2.3\"}",
    "{attr: v, semver-ne: \"1.2.3\"}",
    "{attr: v, semver-lt: \"2.0.0-rc.1\"}",
    "{attr: v, semver-le: \"v3.0.0\"}",
    "{attr: v, semver-gt: \"0.9.1+build.7\"}",
    "{attr: v, semver-ge: \"3.2.0\"}",
    "{attr: v, semver-caret: \"1.4.0\"}",
    "{attr: v, semver-tilde: \"1.4.0\"}",
    "{attr: t, before: \"2024-01-01T00:00:00Z\"}",
    "{attr: t, before: \"2024-01-01T01:00:00+01:00\"}",
    "{attr: t, after: 2024-01-01}",
    "{attr: t, after: 1704067200}",
    "{attr: t, after: 1704067200000}",
    "{attr: email, exists: true}",
    "{attr: email, exists: false}",
    "{attr: country, in: [US, CA, 7, 2.5]}",
    "{attr: country, not-in: []}",
    "[{attr: a, equals: 1}, {attr: b, exists: true}]",
    "{all: []}",
    "{any: [{segment: beta-users}, {not: {attr: plan, equals: free}}]}",
    "{not: [{attr: a, equals: 1}]}",
];

/// Flags from the compiler's tests and docs/flag-format.md that compile cleanly.
const FLAGS: &[&str] = &[
    "owner: t\ntype: experiment\nvariants: {a: 1, b: 2, c: 3}\ndefault: a\nenvironments:\n  prod:\n    enabled: true\n    fallthrough:\n      split: {a: 33.333, b: 33.333, c: 33.334}\n      bucket-by: org.id\n",
    "owner: t\ntype: operational\nvariants:\n  compact: { layout: compact, refreshSeconds: 60 }\n  detailed: { layout: detailed, refreshSeconds: 15 }\ndefault: compact\n",
    "owner: t\ntype: permission\nsalt: s\nunsigned-attributes: [device.os, targetingKey]\nprerequisites: [f2, {flag: f3, variants: [dark]}, {flag: f2}]\nenvironments:\n  prod:\n    enabled: false\n    rules:\n",
    "key: f2\nowner: t\ntype: kill-switch\ndescription: d\ntags: [a]\nexpires: 2027-01-01\nreview-by: 2027-01-01\n",
    "key: f3\nowner: t\ntype: release\nvariants: {light: light, dark: dark}\ndefault: light\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - serve: dark\n      - id: 2b\n        description: second\n        serve: {split: {light: 50, dark: 50}}\n",
    "owner: t\ntype: release\ndefault: off\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - id: ringed\n        serve:\n          rollout:\n            variant: on\n            others: off\n            stages:\n              - { segment: internal-testers, soak: 1d }\n              - { percent: 10, soak: 3600 }\n              - { percent: 100 }\n            health: { command: ./check }\n            on-failure: hold\n",
    "owner: t\ntype: release\nvariants: {true: true, false: false}\ndefault: false\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - id: 1\n        serve: true\n",
    "owner: t\ntype: experiment\nbucket-unsigned-key: false\nenvironments:\n  prod:\n    enabled: true\n    fallthrough: {split: {on: 50, off: 50}}\n",
    "owner: t\ntype: permission\nbucket-unsigned-key: false\n",
];

#[test]
fn files_the_compiler_accepts_validate() {
    let flags = validator(&flag_schema());
    let conditions = CONDITIONS.iter().map(|c| flag_with_condition(c));
    for text in conditions.chain(FLAGS.iter().map(|f| (*f).to_owned())) {
        // f2 and f3 are prerequisites of the third flag; give the others them too.
        let others = ["key: f2\nowner: t\ntype: release\n", FLAGS[4]];
        let mut set = vec![text.as_str()];
        if !text.starts_with("key: f") {
            set.extend(others);
        }
        assert_eq!(compiler_errors(&set), Vec::<String>::new(), "{text}");
        let doc = to_json(&text);
        assert_eq!(complaints(&flags, &doc), Vec::<String>::new(), "{text}");
        serde_json::from_value::<FlagFile>(doc).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

#[test]
fn mistakes_the_compiler_refuses_fail_validation() {
    let flags = validator(&flag_schema());
    let base = "owner: t\ntype: release\ndefault: off\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - id: r\n        if: {attr: plan, equals: premium}\n        serve: on\n";
    let cases: Vec<(&str, String)> = vec![
        ("unknown field", format!("{base}colour: red\n")),
        ("unknown environment field", base.replace("enabled: true", "enabled: true\n    enable: true")),
        ("unknown rule field", base.replace("serve: on", "serve: on\n        then: on")),
        ("owner not a string", base.replace("owner: t", "owner: [t]")),
        ("empty owner", base.replace("owner: t", "owner: \" \"")),
        ("missing owner", base.replace("owner: t\n", "")),
        ("unknown type", base.replace("type: release", "type: feature")),
        ("enabled not a boolean", base.replace("enabled: true", "enabled: yes")),
        ("bad date", format!("{base}expires: 31/12/2027\n")),
        ("tags not strings", format!("{base}tags: [1, {{a: b}}]\n")),
        ("variants without default", base.replace("default: off", "variants: {a: 1, b: 2}")),
        ("variants of two types", base.replace("default: off", "variants: {on: 1, off: \"0\"}\ndefault: off")),
        ("unknown operator", base.replace("equals: premium", "greater-than: 3")),
        ("two operators", base.replace("equals: premium", "equals: premium, not-equals: free")),
        ("operator without attr", base.replace("attr: plan, ", "")),
        ("combinator with a sibling", base.replace("{attr: plan, equals: premium}", "{segment: beta-users, attr: plan}")),
        ("number operand not a number", base.replace("equals: premium", "lt: ten")),
        ("exists not a boolean", base.replace("equals: premium", "exists: 1")),
        ("unquoted semver", base.replace("equals: premium", "semver-gt: 2")),
        ("in not a list", base.replace("equals: premium", "in: premium")),
        ("in file with extra keys", base.replace("equals: premium", "in: {file: a.txt, sorted: true}")),
        ("bad time", base.replace("equals: premium", "after: next tuesday")),
        ("bad attribute path", base.replace("attr: plan", "attr: user..plan")),
        ("serve a list", base.replace("serve: on", "serve: [on]")),
        ("split with an unknown field", base.replace("serve: on", "serve: {split: {on: 50, off: 50}, by: org.id}")),
        ("split over 100", base.replace("serve: on", "serve: {split: {on: 150, off: -50}}")),
        ("split and rollout", base.replace("serve: on", "serve: {split: {on: 50, off: 50}, rollout: {variant: on, others: off, stages: [{percent: 100}]}}")),
        ("rollout without stages", base.replace("serve: on", "serve: {rollout: {variant: on, others: off}}")),
        ("stage with percent and segment", base.replace("serve: on", "serve: {rollout: {variant: on, others: off, stages: [{percent: 5, segment: beta-users}]}}")),
        ("stage at 0%", base.replace("serve: on", "serve: {rollout: {variant: on, others: off, stages: [{percent: 0}]}}")),
        ("bad soak", base.replace("serve: on", "serve: {rollout: {variant: on, others: off, stages: [{percent: 5, soak: soon}]}}")),
        ("two health checks", base.replace("serve: on", "serve: {rollout: {variant: on, others: off, stages: [{percent: 5}], health: {url: \"https://x\", command: ./c}}}")),
        ("health url not http", base.replace("serve: on", "serve: {rollout: {variant: on, others: off, stages: [{percent: 5}], health: {url: ftp://x}}}")),
        ("unknown on-failure", base.replace("serve: on", "serve: {rollout: {variant: on, others: off, stages: [{percent: 5}], on-failure: panic}}")),
        ("prerequisite with an unknown field", format!("{base}prerequisites: [{{flag: f2, variant: on}}]\n")),
        ("bad key", format!("key: \"no spaces\"\n{base}")),
        ("null description", format!("{base}description: null\n")),
        ("null expires", format!("{base}expires:\n")),
        ("null fallthrough", base.replace("enabled: true", "enabled: true\n    fallthrough: null")),
        ("null operand", base.replace("equals: premium", "equals: null")),
        ("bucket-unsigned-key not a boolean", format!("{base}bucket-unsigned-key: no\n")),
        ("bucket-unsigned-key on a permission flag", format!("{base}bucket-unsigned-key: true\n").replace("type: release", "type: permission")),
    ];
    for (what, text) in &cases {
        assert!(
            !compiler_errors(&[text, "key: f2\nowner: t\ntype: release\n"]).is_empty(),
            "the compiler accepts `{what}`:\n{text}"
        );
        let doc = to_json(text);
        assert!(
            !complaints(&flags, &doc).is_empty(),
            "the schema accepts `{what}`:\n{text}"
        );
    }

    let segments = validator(&segment_schema());
    for text in [
        "owner: t\n",
        "if: {attr: a, equals: 1}\ncolour: red\n",
        "if: {attr: a, equals: 1, in: [1]}\n",
        "if: {attr: a, sorta: 1}\n",
        "if: 3\n",
    ] {
        assert!(!complaints(&segments, &to_json(text)).is_empty(), "{text}");
    }
    assert!(complaints(&segments, &to_json("if: [{attr: a, equals: 1}]\n")).is_empty());
}

#[test]
fn example_modelines_point_at_the_committed_schemas() {
    let mut seen = 0;
    for (dir, schema) in [
        ("examples/flags/flags", "flag.json"),
        ("examples/flags/segments", "segment.json"),
    ] {
        for (path, text) in yaml_files(dir) {
            let Some(target) = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# yaml-language-server: $schema="))
            else {
                continue;
            };
            let resolved = path.parent().expect("dir").join(target.trim());
            let expected = repo().join("docs/schema").join(schema);
            assert_eq!(
                resolved.canonicalize().ok(),
                expected.canonicalize().ok(),
                "{path:?}: the modeline points at {target}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 1, "an example flag file carries the modeline");
}
