//! Compiler tests for `bucket-unsigned-key`: a flag's opt-out of bucketing its splits by an
//! unsigned targeting key (`docs/flag-format.md`), lowered to
//! `shared_eval::Flag::signed_bucketing_only`, refused where it cannot hold.

use chrono::NaiveDate;
use flags_compile::native::{SourceFile, Sources, compile};
use flags_compile::{Diagnostic, Severity};
use shared_eval::Body;

fn build(text: &str) -> (Body, Vec<String>) {
    let sources = Sources {
        flags: vec![SourceFile {
            path: "flags/f.yaml".into(),
            text: text.to_owned(),
        }],
        segments: Vec::new(),
        root: None,
    };
    let lowered = compile(
        &sources,
        "prod",
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
    );
    let errors = lowered
        .diagnostics
        .iter()
        .filter(|d: &&Diagnostic| d.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    (lowered.body, errors)
}

/// A boolean flag of `kind` with `extra` top-level lines and a 50/50 split in prod.
fn flag(kind: &str, extra: &str) -> String {
    format!(
        "owner: t\ntype: {kind}\n{extra}environments:\n  prod:\n    enabled: true\n    fallthrough: {{split: {{on: 50, off: 50}}}}\n"
    )
}

#[test]
fn the_opt_out_is_lowered_and_the_default_kept_out_of_the_blob() {
    for (kind, extra, signed_only) in [
        ("experiment", "bucket-unsigned-key: false\n", true),
        ("release", "bucket-unsigned-key: false\n", true),
        ("release", "bucket-unsigned-key: true\n", false),
        ("release", "", false),
        ("permission", "", false),
        // Redundant on a permission flag (it never buckets by an unsigned key), not wrong.
        ("permission", "bucket-unsigned-key: false\n", true),
    ] {
        let (body, errors) = build(&flag(kind, extra));
        assert_eq!(errors, Vec::<String>::new(), "{kind} {extra}");
        assert_eq!(
            body.flags[0].signed_bucketing_only, signed_only,
            "{kind} {extra}"
        );
        let json = serde_json::to_string(&body.flags[0]).unwrap();
        assert_eq!(
            json.contains("signed_bucketing_only"),
            signed_only,
            "{json}"
        );
    }
}

#[test]
fn a_permission_flag_cannot_bucket_by_an_unsigned_key() {
    let (_, errors) = build(&flag("permission", "bucket-unsigned-key: true\n"));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("flags/f.yaml:3: error:")
            && errors[0].contains("`bucket-unsigned-key: true`")
            && errors[0].contains("permission"),
        "{errors:#?}"
    );
}

#[test]
fn the_field_is_a_boolean() {
    let (_, errors) = build(&flag("release", "bucket-unsigned-key: no-thanks\n"));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("flags/f.yaml:3: error:")
            && errors[0].contains("`bucket-unsigned-key` must be true or false"),
        "{errors:#?}"
    );
}
