//! Nothing the compiler is fed makes it panic: random text, mutated example files, and random
//! condition trees built from the format's own vocabulary. (proptest reports a panic as a
//! failure with the smallest input it can shrink to.)

use std::path::Path;

use chrono::NaiveDate;
use flags_compile::native::{OPERATORS, SourceFile, Sources, compile};
use proptest::prelude::*;

fn example_files(sub: &str) -> Vec<SourceFile> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/flags")
        .join(sub);
    let mut files: Vec<SourceFile> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|path| SourceFile {
            text: std::fs::read_to_string(&path).unwrap(),
            path,
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

fn compile_all(flags: Vec<SourceFile>, segments: Vec<SourceFile>) {
    let sources = Sources {
        flags,
        segments,
        root: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flags")),
    };
    let _ = compile(
        &sources,
        "prod",
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
    );
}

/// An edit to a file: replace bytes `at..at+len` with `insert`.
fn mutate(text: &str, at: usize, len: usize, insert: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let at = at % (bytes.len() + 1);
    let end = (at + len).min(bytes.len());
    bytes.splice(at..end, insert.bytes());
    String::from_utf8_lossy(&bytes).into_owned()
}

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just(":".to_owned()),
            Just("- ".to_owned()),
            Just("\n".to_owned()),
            Just("  ".to_owned()),
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just(", ".to_owned()),
            Just("\"".to_owned()),
            Just("&a ".to_owned()),
            Just("*a".to_owned()),
            Just("!!str ".to_owned()),
            Just("---\n".to_owned()),
            prop::sample::select(OPERATORS.to_vec()).prop_map(str::to_owned),
            prop::sample::select(vec![
                "all",
                "any",
                "not",
                "segment",
                "attr",
                "if",
                "serve",
                "split",
                "rules",
                "enabled",
                "on",
                "off",
                "true",
                "1e400",
                "-1",
                "99999999999999999999",
                "2024-01-01",
                "internal-testers",
                "new-chart"
            ])
            .prop_map(str::to_owned),
            "[a-z.]{0,6}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// A random condition in the format's syntax, up to `depth` levels.
fn condition(depth: u32) -> BoxedStrategy<String> {
    let leaf = (
        prop::sample::select(vec![
            "user.plan",
            "email",
            "a.b.c",
            "",
            "..",
            "targetingKey",
        ]),
        prop::sample::select(OPERATORS.to_vec()),
        prop::sample::select(vec![
            "premium",
            "1",
            "-2.5",
            "true",
            "\"(\"",
            "\"^a+$\"",
            "\"1.2.3\"",
            "[a, b, 3]",
            "{file: lists/enterprise-orgs.txt}",
            "{file: ../x}",
            "2024-01-01",
            "[]",
            "{}",
            "null",
        ]),
    )
        .prop_map(|(attr, op, value)| format!("{{attr: \"{attr}\", {op}: {value}}}"));
    let seg = prop::sample::select(vec!["internal-testers", "beta-users", "missing"])
        .prop_map(|s| format!("{{segment: {s}}}"));
    let base = prop_oneof![leaf, seg].boxed();
    if depth == 0 {
        return base;
    }
    prop_oneof![
        base,
        prop::collection::vec(condition(depth - 1), 0..3)
            .prop_map(|cs| format!("{{all: [{}]}}", cs.join(", "))),
        prop::collection::vec(condition(depth - 1), 0..3)
            .prop_map(|cs| format!("{{any: [{}]}}", cs.join(", "))),
        condition(depth - 1).prop_map(|c| format!("{{not: {c}}}")),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in any::<String>(), yaml in yamlish()) {
        compile_all(vec![SourceFile { path: "flags/x.yaml".into(), text }], vec![]);
        compile_all(vec![SourceFile { path: "flags/y.yaml".into(), text: yaml.clone() }], vec![SourceFile { path: "segments/s.yaml".into(), text: yaml }]);
    }

    #[test]
    fn mutated_examples_never_panic(
        file in 0usize..64, at in any::<usize>(), len in 0usize..12, insert in yamlish(),
    ) {
        let mut flags = example_files("flags");
        let mut segments = example_files("segments");
        let total = flags.len() + segments.len();
        let target = file % total;
        let victim = if target < flags.len() { &mut flags[target] } else { &mut segments[target - flags.len()] };
        victim.text = mutate(&victim.text, at, len, &insert);
        compile_all(flags, segments);
    }

    #[test]
    fn random_conditions_never_panic(cond in condition(4), split in prop::collection::vec(-10.0f64..120.0, 0..4)) {
        let parts: Vec<String> = split.iter().enumerate().map(|(i, p)| format!("{}: {p}", if i % 2 == 0 { "on" } else { "off" })).collect();
        let flag = format!(
            "owner: t\ntype: release\nprerequisites: [new-chart]\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - if: {cond}\n        serve: {{split: {{{}}}, bucket-by: org.id}}\n      - if: {cond}\n        serve: on\n",
            parts.join(", ")
        );
        let mut flags = example_files("flags");
        flags.push(SourceFile { path: "flags/fuzzed.yaml".into(), text: flag });
        compile_all(flags, example_files("segments"));
    }
}
