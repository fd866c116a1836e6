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
fn an_environment_no_flag_defines_is_an_error() {
    let out = publisher(&["validate", "examples/flags", "--env", "production"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(
            "examples/flags: error: no flag defines environment `production` (did you mean `prod`?); environments in the files: dev, prod, staging"
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

// ---- Safe by default: what a new user hit in the first hour.

/// Runs the binary in `dir`, with `--store`'s default and the author fixed by the caller.
fn publisher_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_publisher"))
        .args(args)
        .current_dir(dir)
        .env_remove("FLAGS_STORE")
        .env_remove("FLAGS_PURGE")
        .output()
        .expect("run publisher")
}

/// A flags directory with one boolean flag per key, each defined in `prod` and `staging`.
fn write_flags(dir: &Path, keys: &[&str]) {
    let flags = dir.join("flags");
    let _ = std::fs::remove_dir_all(&flags);
    std::fs::create_dir_all(&flags).unwrap();
    for key in keys {
        std::fs::write(
            flags.join(format!("{key}.yaml")),
            format!(
                "key: {key}\ndescription: Test flag {key}.\nowner: team-test\ntype: release\ndefault: off\n\
                 environments:\n  prod:\n    enabled: true\n    fallthrough: on\n  staging:\n    enabled: true\n"
            ),
        )
        .unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Item 1: `validate .` / `push` one folder too high found no flags and published "11 removed".
#[test]
fn a_directory_without_flags_is_an_error_that_points_at_them() {
    // A folder whose `flags/` holds the flags directory (flags/flags/*.yaml).
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/flags"), &tmp.path().join("flags"));
    let out = publisher_in(tmp.path(), &["validate", "."]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no flags here: found no ./flags/*.yaml")
            && text(&out).contains("did you mean `./flags`?"),
        "{}",
        text(&out)
    );
    // The repository root: its flags are in examples/flags.
    let out = publisher(&["validate", "."]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("did you mean `./examples/flags`?"),
        "{}",
        text(&out)
    );
    // `push` (DIR defaults to `.`) publishes nothing.
    let store = tmp.path().join("store");
    let out = publisher_in(
        tmp.path(),
        &["push", "--env", "prod", "--store", store.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!store.exists(), "nothing written: {}", text(&out));
}

/// Item 1: a push that removes more than half of the deployed flags (or all of them) is
/// refused without --allow-removals, naming how many and which.
#[test]
fn a_push_removing_most_flags_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let store = store.to_str().unwrap();
    let dir = tmp.path().join("flags-dir");
    let keys = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
    write_flags(&dir, &keys);
    let dir = dir.to_str().unwrap();
    let push = |extra: &[&str]| {
        let mut args = vec![
            "push", dir, "--env", "prod", "--store", store, "--author", "t",
        ];
        args.extend_from_slice(extra);
        publisher(&args)
    };
    assert!(push(&[]).status.success());
    write_flags(Path::new(dir), &["a1", "a2", "a3"]);
    let refused = push(&[]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains(
            "this push removes 5 of the 8 flags prod serves (a4, a5, a6, a7, a8), more than the 50% allowed; nothing was published"
        ) && text(&refused).contains("--allow-removals"),
        "{}",
        text(&refused)
    );
    let dry = push(&["--dry-run"]);
    assert_eq!(dry.status.code(), Some(1), "{}", text(&dry));
    assert!(
        text(&dry).contains("removes 5 of the 8 flags"),
        "{}",
        text(&dry)
    );
    let history = publisher(&["history", "--env", "prod", "--store", store]);
    assert!(text(&history).contains("1 version,"), "{}", text(&history));
    // A higher bar, or allowed outright.
    let out = push(&["--max-removals", "70"]);
    assert!(out.status.success(), "{}", text(&out));
    // Every flag removed: a flagd file without flags.
    let empty = tmp.path().join("empty.json");
    std::fs::write(&empty, r#"{"flags": {}}"#).unwrap();
    let empty = empty.to_str().unwrap();
    let all = publisher(&[
        "push",
        empty,
        "--env",
        "prod",
        "--store",
        store,
        "--max-removals",
        "100",
    ]);
    assert_eq!(all.status.code(), Some(1), "{}", text(&all));
    assert!(
        text(&all).contains("this push removes every flag prod serves (3: a1, a2, a3)"),
        "{}",
        text(&all)
    );
    let all = publisher(&[
        "push",
        empty,
        "--env",
        "prod",
        "--store",
        store,
        "--allow-removals",
    ]);
    assert!(all.status.success(), "{}", text(&all));
    assert!(text(&all).contains("3 removed"), "{}", text(&all));
}

/// Item 2: a mistyped environment (push, eval, history, kill) and a mistyped flag key.
#[test]
fn a_mistyped_environment_or_flag_is_an_error_with_a_suggestion() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let store = store.to_str().unwrap();
    let push = |env: &str, extra: &[&str]| {
        let mut args = vec![
            "push",
            "examples/flags",
            "--env",
            env,
            "--store",
            store,
            "--author",
            "t",
        ];
        args.extend_from_slice(extra);
        publisher(&args)
    };
    let out = push("production", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no flag defines environment `production` (did you mean `prod`?)")
            && text(&out).contains("--new-env"),
        "{}",
        text(&out)
    );
    assert!(push("prod", &[]).status.success());
    let out = push("qa", &["--new-env"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("warning: no flag defines environment `qa`"),
        "{}",
        text(&out)
    );

    let out = publisher(&[
        "eval",
        "--flags",
        "examples/flags",
        "--env",
        "production",
        "new-chart",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("did you mean `prod`?"),
        "{}",
        text(&out)
    );

    for args in [
        vec!["history", "--env", "prd"],
        vec!["audit", "--env", "prd"],
        vec!["rollback", "--env", "prd", "--to", "1"],
        vec!["kill", "beta-banner", "--env", "prd"],
        vec!["rollout", "status", "--env", "prd"],
    ] {
        let mut args = args.clone();
        args.extend_from_slice(&["--store", store]);
        let out = publisher(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("prd: nothing published yet")
                && text(&out).contains("(did you mean `prod`?)")
                && text(&out).contains("environments there: prod, qa"),
            "{args:?}: {}",
            text(&out)
        );
    }
    let out = publisher(&["kill", "beta-baner", "--env", "prod", "--store", store]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("prod has no flag beta-baner (did you mean `beta-banner`?)"),
        "{}",
        text(&out)
    );
}

/// Item 3: `publisher history | head -1` and the like: a closed stdout ends the command
/// quietly (141, as a SIGPIPE would), never with a panic and a backtrace.
#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let store = store.to_str().unwrap();
    let out = publisher(&[
        "push",
        "examples/flags",
        "--env",
        "dev",
        "--store",
        store,
        "--author",
        "t",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    for args in [
        vec!["validate", "examples/flags"],
        vec!["history", "--env", "dev", "--store", store],
        vec!["audit", "--env", "dev", "--store", store],
        vec![
            "explain",
            "--flags",
            "examples/flags",
            "--env",
            "dev",
            "new-chart",
        ],
        vec!["diff", "examples/flags", "--env", "prod", "--store", store],
    ] {
        // The read end is closed before the command starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_publisher"))
            .args(&args)
            .current_dir(repo())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}

/// A flags directory with one scheduled flag whose stages soak 0 s, checked by `test -e
/// <marker>`: healthy while the marker exists.
fn scheduled_flags(dir: &Path, marker: &Path) {
    std::fs::create_dir_all(dir.join("flags")).unwrap();
    std::fs::write(
        dir.join("flags/new-checkout.yaml"),
        format!(
            "key: new-checkout\ndescription: The new checkout.\nowner: team-test\ntype: release\ndefault: off\n\
             environments:\n  prod:\n    enabled: true\n    rules:\n      - id: rollout\n        serve:\n          rollout:\n            \
             variant: on\n            others: off\n            stages:\n              - {{ percent: 1, soak: 0s }}\n              \
             - {{ percent: 10, soak: 0s }}\n              - {{ percent: 100 }}\n            \
             health: {{ command: \"test -e {}\" }}\n            on-failure: hold\n",
            marker.display()
        ),
    )
    .unwrap();
}

/// Item 4: `--now` decides what is due but never what records say; beyond a few minutes it
/// needs --dry-run; a failing health check exits 5 for cron to alert on.
#[test]
fn rollout_tick_records_real_time_and_exits_5_when_a_check_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let store = store.to_str().unwrap();
    let marker = tmp.path().join("healthy");
    std::fs::write(&marker, "").unwrap();
    let dir = tmp.path().join("flags-dir");
    scheduled_flags(&dir, &marker);
    let out = publisher(&[
        "push",
        dir.to_str().unwrap(),
        "--env",
        "prod",
        "--store",
        store,
        "--author",
        "t",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let tick = |extra: &[&str]| {
        let mut args = vec![
            "rollout", "tick", "--env", "prod", "--store", store, "--author", "cron",
        ];
        args.extend_from_slice(extra);
        publisher(&args)
    };
    let future = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let refused = tick(&["--now", &future]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("--dry-run"), "{}", text(&refused));
    let dry = tick(&["--now", &future, "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        text(&dry).contains("new-checkout/rollout: stage 1 -> 2"),
        "{}",
        text(&dry)
    );
    let history = publisher(&["history", "--env", "prod", "--store", store, "--json"]);
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(
        history["versions"].as_array().unwrap().len(),
        1,
        "a dry run writes nothing"
    );

    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(2)).to_rfc3339();
    let out = tick(&["--now", &soon]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("stage 1 -> 2"), "{}", text(&out));
    let history = publisher(&["history", "--env", "prod", "--store", store, "--json"]);
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    let created = history["versions"][1]["created_at"].as_str().unwrap();
    let created: chrono::DateTime<chrono::Utc> = created.parse().unwrap();
    assert!(
        created >= before && created <= chrono::Utc::now() + chrono::Duration::seconds(1),
        "the real time, not --now: {created}"
    );

    std::fs::remove_file(&marker).unwrap();
    let failed = tick(&[]);
    assert_eq!(failed.status.code(), Some(5), "{}", text(&failed));
    assert!(
        text(&failed).contains("stage 2 -> 2 (held)"),
        "{}",
        text(&failed)
    );
    // Held: nothing due, nothing failed.
    assert_eq!(tick(&[]).status.code(), Some(0));
    let status = publisher(&[
        "rollout", "status", "--env", "prod", "--store", store, "--json",
    ]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["rollouts"][0]["state"]["status"], "held", "{status}");
}

/// Item 5: `diff` exits as diff(1) does: 0 same, 1 different, 2 trouble.
#[test]
fn diff_exits_1_on_differences_0_without_and_2_on_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let store = store.to_str().unwrap();
    let diff = |args: &[&str]| {
        let mut all = vec!["diff", "--store", store];
        all.extend_from_slice(args);
        publisher(&all)
    };
    let out = diff(&["examples/flags", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("11 added"), "{}", text(&out));
    let out = publisher(&[
        "push",
        "examples/flags",
        "--env",
        "prod",
        "--store",
        store,
        "--author",
        "t",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = diff(&["examples/flags", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = diff(&["--env", "prod", "--from", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = diff(&["--env", "prod", "--from", "7"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = diff(&[fixture("cycle").to_str().unwrap(), "--env", "prod"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Item 6: a push from a working tree with uncommitted changes warns and records it.
#[test]
fn a_push_from_a_dirty_tree_warns_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    write_flags(&repo_dir, &["a1", "a2"]);
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&repo_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "flags"]);
    let store = tmp.path().join("store");
    let store = store.to_str().unwrap();
    let push = || {
        publisher_in(
            &repo_dir,
            &["push", "--env", "prod", "--store", store, "--author", "t"],
        )
    };
    let clean = push();
    assert!(clean.status.success(), "{}", text(&clean));
    assert!(!text(&clean).contains("uncommitted"), "{}", text(&clean));
    write_flags(&repo_dir, &["a1", "a2", "a3"]);
    let dirty = push();
    assert!(dirty.status.success(), "{}", text(&dirty));
    assert!(
        String::from_utf8_lossy(&dirty.stderr).contains("warning: . has uncommitted changes"),
        "{}",
        text(&dirty)
    );
    let history = publisher(&["history", "--env", "prod", "--store", store, "--json"]);
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(history["versions"][1]["source_dirty"], true, "{history}");
    assert!(
        history["versions"][0].get("source_dirty").is_none(),
        "{history}"
    );
    let human = publisher(&["history", "--env", "prod", "--store", store]);
    let newest = text(&human).lines().nth(1).unwrap_or_default().to_owned();
    assert!(newest.contains("-dirty"), "{}", text(&human));
}

/// Item 7: `--flags` and the positional DIR everywhere; `drift --against` an environment with
/// nothing published; plurals; times with `Z`.
#[test]
fn rough_edges_flags_dir_either_way_plurals_and_times() {
    let out = publisher(&["validate", "--flags", "examples/flags"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = publisher(&["eval", "examples/flags", "new-chart", "--env", "dev"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("new-chart = "), "{}", text(&out));
    let out = publisher(&["validate", "examples/flags", "--flags", "examples/flags"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "one or the other: {}",
        text(&out)
    );

    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let store = store.to_str().unwrap();
    let dir = tmp.path().join("one");
    write_flags(&dir, &["solo"]);
    let dir = dir.to_str().unwrap();
    let out = publisher(&["validate", dir]);
    assert!(
        text(&out).contains(": 1 flag, 0 segments, 0 warnings"),
        "{}",
        text(&out)
    );
    let out = publisher(&[
        "push", "--flags", dir, "--env", "staging", "--store", store, "--author", "t",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = publisher(&["history", "--env", "staging", "--store", store]);
    assert!(
        text(&out).contains("staging: 1 version, serving version 1"),
        "{}",
        text(&out)
    );

    let out = publisher(&[
        "drift",
        "--env",
        "staging",
        "--against",
        "prod",
        "--flags",
        dir,
        "--store",
        store,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("cannot compare: prod has nothing published")
            && !text(&out).contains("DRIFT"),
        "{}",
        text(&out)
    );

    let marker = tmp.path().join("healthy");
    let scheduled = tmp.path().join("scheduled");
    scheduled_flags(&scheduled, &marker);
    let out = publisher(&[
        "push",
        scheduled.to_str().unwrap(),
        "--env",
        "prod",
        "--store",
        store,
        "--author",
        "t",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let status = publisher(&[
        "rollout", "status", "--env", "prod", "--store", store, "--json",
    ]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let due = status["rollouts"][0]["next_due"].as_str().unwrap();
    assert!(due.ends_with('Z') && !due.contains("+00:00"), "{due}");
    let status = publisher(&["rollout", "status", "--env", "prod", "--store", store]);
    assert!(!text(&status).contains("+00:00"), "{}", text(&status));
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
