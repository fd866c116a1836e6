//! The built `publisher` binary on the example flags and on broken fixtures: exit codes,
//! `file:line` in the output, the blob `build` writes, and `eval --json`'s OFREP shape.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn publisher(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_publisher"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run publisher")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn validate_accepts_the_examples() {
    let out = publisher(&["validate", "examples/flags"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("examples/flags: 11 flags, 2 segments"),
        "{}",
        text(&out)
    );
}

#[test]
fn validate_reports_file_line_and_fails_on_broken_fixtures() {
    let cases = [
        (
            "wrong-operator",
            "flags/checkout.yaml:9: error: flag checkout: rule premium: unknown operator `greater-than`",
        ),
        (
            "bad-regex",
            r#"flags/search.yaml:12: error: flag search: rule staff: bad regex: invalid regex "^[a-z+@example\\.com$": unclosed character class"#,
        ),
        (
            "missing-variant",
            "flags/theme.yaml:13: error: flag theme: rule night-owls: unknown variant `dim`; this flag's variants are: light, dark",
        ),
        (
            "cycle",
            "flags/a.yaml:4: error: flag a: prerequisite cycle: a -> b -> a",
        ),
        (
            "bad-indentation",
            "flags/banner.yaml:7: error: invalid YAML",
        ),
    ];
    for (name, expected) in cases {
        let dir = fixture(name);
        let out = publisher(&["validate", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        let output = text(&out);
        let expected = format!("{}/{expected}", dir.display());
        assert!(
            output.contains(&expected),
            "{name}: expected\n{expected}\nin\n{output}"
        );
        assert!(output.contains("1 error"), "{name}: {output}");
        // And `build` refuses the same directory, writing nothing.
        let target = tempfile::tempdir().unwrap();
        let blob = target.path().join("out.json.gz");
        let out = publisher(&[
            "build",
            dir.to_str().unwrap(),
            "--env",
            "prod",
            "-o",
            blob.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        assert!(!blob.exists(), "{name}: build wrote a blob despite errors");
    }
}

#[test]
fn deny_warnings_turns_lints_into_failure() {
    let dir = fixture("expired");
    let out = publisher(&["validate", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out)
            .contains("old-promo.yaml:3: warning: flag old-promo: flag expired on 2020-01-31"),
        "{}",
        text(&out)
    );
    let out = publisher(&["validate", dir.to_str().unwrap(), "--deny-warnings"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn build_writes_a_gzipped_blob_the_edge_accepts() {
    let target = tempfile::tempdir().unwrap();
    let path = target.path().join("prod.json.gz");
    let out = publisher(&[
        "build",
        "examples/flags",
        "--env",
        "prod",
        "-o",
        path.to_str().unwrap(),
        "--author",
        "Grace Hopper",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let bytes = std::fs::read(&path).unwrap();
    let snapshot =
        flags_compile::blob_file::load_gzip(&bytes).expect("blob loads with the edge's checks");
    let header = snapshot.header();
    assert_eq!(header.environment, "prod");
    assert_eq!(header.version, 0);
    assert_eq!(header.previous, None);
    assert_eq!(header.author, "Grace Hopper");
    assert!(
        chrono::DateTime::parse_from_rfc3339(&header.created_at).is_ok(),
        "{}",
        header.created_at
    );
    assert!(
        header.created_at.ends_with('Z'),
        "UTC: {}",
        header.created_at
    );
    let keys: Vec<&str> = snapshot.flag_keys().collect();
    assert_eq!(keys.len(), 11);
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted: {keys:?}");
    assert!(text(&out).contains(&header.content_hash), "{}", text(&out));
    // The source commit is the repository's HEAD when the flags are in Git.
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo())
        .output()
        .unwrap();
    if head.status.success() {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        assert_eq!(header.source_commit.as_deref(), Some(head.as_str()));
    }
}

#[test]
fn build_requires_an_environment() {
    let out = publisher(&["build", "examples/flags", "-o", "/dev/null"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap usage error: {}",
        text(&out)
    );
    assert!(text(&out).contains("--env"), "{}", text(&out));
}

#[test]
fn eval_json_missing_flag_is_flag_not_found() {
    let out = publisher(&[
        "eval",
        "--flags",
        "examples/flags",
        "--context",
        "{\"targetingKey\":\"u1\"}",
        "no-such-flag",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        body,
        json!({"key": "no-such-flag", "reason": "ERROR", "errorCode": "FLAG_NOT_FOUND", "errorDetails": "no flag with this key", "metadata": {}})
    );
}

#[test]
fn eval_json_bad_flags_file_is_parse_error() {
    let file = fixture("broken-flagd.json");
    let out = publisher(&["eval", "--flags", file.to_str().unwrap(), "x", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["errorCode"], "PARSE_ERROR");
    assert_eq!(body["reason"], "ERROR");
    assert_eq!(body["key"], "x");
    assert!(body.get("value").is_none(), "{body}");
    let details = body["errorDetails"].as_str().unwrap();
    assert!(
        details.contains("broken-flagd.json:5: error: invalid JSON"),
        "{details}"
    );
}

#[test]
fn eval_rejects_a_context_that_is_not_an_object() {
    let out = publisher(&[
        "eval",
        "--flags",
        "examples/flags",
        "--context",
        "[1]",
        "new-chart",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--context must be a JSON object"));
}

#[test]
fn eval_reads_a_flagd_file_and_the_targeting_key() {
    let file = fixture("flagd.json");
    let file = file.to_str().unwrap();
    let out = publisher(&[
        "eval",
        "--flags",
        file,
        // flagd flags read signed attributes only, as at the edge: a token's claims.
        "--signed",
        r#"{"sub":"u1","email":"ann@example.com"}"#,
        "welcome-message",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["value"], "Welcome back!");
    assert_eq!(body["variant"], "fancy");
    assert_eq!(body["reason"], "TARGETING_MATCH");
    assert!(body.get("errorCode").is_none(), "{body}");
    // The flag's metadata merged over its flag set's.
    assert_eq!(
        body["metadata"],
        json!({"flagSetId": "dashboard", "team": "onboarding"})
    );

    // Native split bucketed by OpenFeature's `targetingKey`: 10% of iOS users in California.
    let ctx = |key: &str| {
        json!({"targetingKey": key, "device": {"os": "iOS"}, "geo": {"region": "CA"}}).to_string()
    };
    for key in ["user-1", "user-2", "user-3"] {
        let out = publisher(&[
            "eval",
            "--flags",
            "examples/flags",
            "--context",
            &ctx(key),
            "ios-offline-mode",
            "--json",
        ]);
        let body: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(body["reason"], "SPLIT", "{body}");
        assert_eq!(
            body["value"],
            json!(shared_eval::bucket("ios-offline-mode", key) < 10_000),
            "{key}"
        );
    }
    // Without a targeting key the split cannot bucket: the safe default, marked as an error.
    let out = publisher(&[
        "eval",
        "--flags",
        "examples/flags",
        "--context",
        r#"{"device":{"os":"iOS"},"geo":{"region":"CA"}}"#,
        "ios-offline-mode",
        "--json",
    ]);
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&body["value"], &body["reason"], &body["errorCode"]),
        (
            &json!(false),
            &json!("ERROR"),
            &json!("TARGETING_KEY_MISSING")
        ),
        "{body}"
    );
}

#[test]
fn an_environment_no_flag_defines_is_a_warning() {
    let out = publisher(&["validate", "examples/flags", "--env", "production"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "examples/flags: warning: no flag defines environment `production`, so every flag is off there (environments in the files: dev, prod, staging)"
        ),
        "{}",
        text(&out)
    );
}

/// The broken flags of `flagd-one-broken.json`, with the line of each key.
const BROKEN_FLAGD: &[(&str, usize)] = &[
    ("unknown-operator", 9),
    ("missing-evaluator", 15),
    ("wrong-variant-type", 21),
    ("malformed-fractional", 26),
];

#[test]
fn a_broken_flagd_flag_is_parse_error_and_the_rest_is_served() {
    let file = fixture("flagd-one-broken.json");
    let file = file.to_str().unwrap();
    let eval = |key: &str, context: &str| {
        let out = publisher(&["eval", "--flags", file, "--signed", context, key, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{key}: {}", text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let banner = eval("banner", r#"{"sub":"u1","plan":"pro"}"#);
    assert_eq!(
        (&banner["value"], &banner["reason"]),
        (&json!(true), &json!("TARGETING_MATCH"))
    );
    for (key, _) in BROKEN_FLAGD {
        let answer = eval(key, r#"{"sub":"u1","plan":"pro"}"#);
        assert_eq!(answer["reason"], "ERROR", "{key}: {answer}");
        assert_eq!(answer["errorCode"], "PARSE_ERROR", "{key}: {answer}");
        assert!(answer.get("value").is_none(), "caller's default: {answer}");
    }
}

#[test]
fn build_warns_per_broken_flagd_flag_and_validate_fails_on_them() {
    let file = fixture("flagd-one-broken.json");
    let file = file.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("blob.json.gz");
    let out = publisher(&[
        "build",
        file,
        "--env",
        "prod",
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("5 flags for prod"), "{}", text(&out));
    let validate = publisher(&["validate", file]);
    assert_eq!(validate.status.code(), Some(1), "{}", text(&validate));
    for (key, line) in BROKEN_FLAGD {
        let at =
            format!("flagd-one-broken.json:{line}: warning: flag {key}: served as PARSE_ERROR");
        assert!(text(&out).contains(&at), "build: {at}\n{}", text(&out));
        let at = format!("flagd-one-broken.json:{line}: error: flag {key}: served as PARSE_ERROR");
        assert!(
            text(&validate).contains(&at),
            "validate: {at}\n{}",
            text(&validate)
        );
    }
    assert!(text(&out).contains("unknown JSONLogic operator `invalid`"));
    assert!(text(&validate).contains("4 errors"), "{}", text(&validate));
}

#[test]
fn push_strict_refuses_broken_flagd_flags_and_plain_push_publishes() {
    let file = fixture("flagd-one-broken.json");
    let file = file.to_str().unwrap();
    let store = tempfile::tempdir().unwrap();
    let store = store.path().to_str().unwrap();
    let push = |extra: &[&str]| {
        let mut args = vec![
            "push", file, "--env", "prod", "--store", store, "--author", "t",
        ];
        args.extend_from_slice(extra);
        publisher(&args)
    };
    let strict = push(&["--strict"]);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));
    assert!(text(&strict).contains("4 broken flags served as PARSE_ERROR; nothing was published"));
    let history = publisher(&["history", "--env", "prod", "--store", store]);
    assert!(
        text(&history).contains("nothing published yet"),
        "{}",
        text(&history)
    );
    let plain = push(&[]);
    assert!(plain.status.success(), "{}", text(&plain));
    assert!(
        text(&plain).contains("published prod version 1"),
        "{}",
        text(&plain)
    );
    assert!(text(&plain).contains("warning: flag unknown-operator: served as PARSE_ERROR"));
}

/// `eval` answers as the edge does: `internal-debug-panel` is a permission flag that serves
/// `on` to everyone in dev, but only to a verified identity; the edge answers an anonymous
/// request (no token, context `{}`) with its default `off`, reason DEFAULT.
#[test]
fn eval_and_explain_apply_the_signed_identity_rule_like_the_edge() {
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", "--flags", "examples/flags", "--env", "dev"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["internal-debug-panel", "--json"]);
        let out = publisher(&args);
        assert!(out.status.success(), "{}", text(&out));
        let body: Value = serde_json::from_slice(&out.stdout).unwrap();
        (body["value"].clone(), body["reason"].clone())
    };
    let anonymous = (json!(false), json!("DEFAULT"));
    let signed_in = (json!(true), json!("STATIC"));
    assert_eq!(eval(&["--context", "{}"]), anonymous);
    assert_eq!(eval(&[]), anonymous);
    // Unsigned attributes do not make an identity, whatever they claim.
    assert_eq!(eval(&["--unsigned", r#"{"targetingKey":"u1"}"#]), anonymous);
    // A verified token's claims do; so does a --context with a targeting key.
    assert_eq!(eval(&["--signed", r#"{"sub":"u1"}"#]), signed_in);
    assert_eq!(eval(&["--context", r#"{"targetingKey":"u1"}"#]), signed_in);

    let out = publisher(&[
        "explain",
        "--flags",
        "examples/flags",
        "--env",
        "dev",
        "--context",
        "{}",
        "internal-debug-panel",
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("identity: anonymous"), "{shown}");
    assert!(shown.contains("signed-identity rule"), "{shown}");
    assert!(
        shown.contains("result: internal-debug-panel = false (variant off, reason DEFAULT)"),
        "{shown}"
    );
    let out = publisher(&[
        "explain",
        "--flags",
        "examples/flags",
        "--env",
        "dev",
        "--signed",
        r#"{"sub":"u1"}"#,
        "internal-debug-panel",
    ]);
    let shown = text(&out);
    assert!(
        shown.contains("identity: signed, targeting key \"u1\""),
        "{shown}"
    );
    assert!(!shown.contains("signed-identity rule"), "{shown}");
}

/// `explain` says when an attribute a condition reads was sent unsigned and ignored, rather
/// than only that the condition fails.
#[test]
fn explain_says_an_unsigned_attribute_was_ignored() {
    let out = publisher(&[
        "explain",
        "--flags",
        "examples/flags",
        "--env",
        "dev",
        "--signed",
        r#"{"sub":"u1"}"#,
        "--unsigned",
        r#"{"plan":"premium"}"#,
        "new-chart",
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("plan was sent unsigned (\"premium\") and is ignored"),
        "{shown}"
    );
}

/// `eval --json` names the ignored unsigned attributes as the edge's `metadata.unsignedIgnored`.
#[test]
fn eval_json_names_unsigned_attributes_it_ignored() {
    let out = publisher(&[
        "eval",
        "--flags",
        "examples/flags",
        "--env",
        "dev",
        "--signed",
        r#"{"sub":"u1"}"#,
        "--unsigned",
        r#"{"plan":"premium","unread":1}"#,
        "new-chart",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        body["metadata"]["unsignedIgnored"],
        json!(["plan"]),
        "{body}"
    );
}
