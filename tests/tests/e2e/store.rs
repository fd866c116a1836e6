//! Behavioural tests of publishing (`push`, `history`, `rollback`, `diff`, `audit`), written once
//! and run against both stores: the embedded local store (a directory) and S3 on a real
//! SeaweedFS server. The `publisher` binary runs as a real process, as users and CI run it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use integration_tests::{SeaweedFs, publisher_bin, write_flag_set};
use serde_json::Value;

/// Where a test publishes: a store URL plus the environment the publisher process needs.
struct Backend {
    store: String,
    env: Vec<(&'static str, String)>,
    /// Keeps the SeaweedFS server (S3) or the directory (local) alive for the test.
    _server: Option<Arc<SeaweedFs>>,
    _dir: tempfile::TempDir,
    /// The bucket, for S3.
    bucket: Option<String>,
}

impl Backend {
    fn local() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        Backend {
            store: dir.path().join("store").display().to_string(),
            env: Vec::new(),
            _server: None,
            _dir: dir,
            bucket: None,
        }
    }

    fn s3(test: &str) -> Backend {
        let server = SeaweedFs::shared();
        let bucket = format!("{}-{}", test.replace('_', "-"), std::process::id());
        let store = format!("{}/flags", server.bucket(&bucket));
        Backend {
            store,
            env: server.aws_env(),
            _server: Some(server),
            _dir: tempfile::tempdir().unwrap(),
            bucket: Some(bucket),
        }
    }

    /// Runs `publisher <args> --store <this store>`.
    fn publisher(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(publisher_bin());
        command
            .args(args)
            .arg("--store")
            .arg(&self.store)
            .envs(self.env.iter().cloned());
        command.env_remove("FLAGS_STORE");
        command
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.publisher(args);
        assert!(
            out.status.success(),
            "publisher {args:?} failed: {}",
            text(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// Runs `publisher diff <args>`, which exits 1 when the sides differ, as diff(1) does, and
    /// checks that it does (`differs`) or does not; returns stdout.
    fn diff(&self, args: &[&str], differs: bool) -> String {
        let mut all = vec!["diff"];
        all.extend_from_slice(args);
        let out = self.publisher(&all);
        assert_eq!(
            out.status.code(),
            Some(i32::from(differs)),
            "publisher {all:?}: {}",
            text(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `publisher history --env <env>` on an environment with nothing published: an error (a
    /// mistyped --env looks the same) that says so and names the store's environments.
    fn nothing_published(&self, env: &str, environments: &str) {
        let out = self.publisher(&["history", "--env", env]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{env}: nothing published yet in "))
                && stderr.contains(environments),
            "{}",
            text(&out)
        );
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes a flags directory: one boolean flag per `(key, percent)`, whose rule (the same in prod
/// and staging) serves `on` to `percent`% of premium users, so a percentage changes one flag.
fn write_flags(dir: &Path, flags: &[(&str, u32)]) {
    let flags_dir = dir.join("flags");
    let _ = std::fs::remove_dir_all(&flags_dir);
    std::fs::create_dir_all(&flags_dir).unwrap();
    for (key, percent) in flags {
        let mut yaml = format!(
            "key: {key}\ndescription: Test flag {key}.\nowner: team-test\ntype: release\ndefault: off\nenvironments:\n"
        );
        for env in ["prod", "staging"] {
            yaml.push_str(&format!(
                "  {env}:\n    enabled: true\n    rules:\n      - id: premium\n        \
                 if: {{ attr: user.plan, equals: premium }}\n        serve:\n          split: {{ on: {percent}, off: {} }}\n",
                100 - percent
            ));
        }
        std::fs::write(flags_dir.join(format!("{key}.yaml")), yaml).unwrap();
    }
}

fn flags_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::create_dir_all(&path).unwrap();
    (dir, path)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Runs a scenario as two tests: one per store.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn local() {
                super::$scenario(&super::Backend::local());
            }
            #[test]
            fn s3() {
                super::$scenario(&super::Backend::s3(stringify!($scenario)));
            }
        }
    )*};
}

on_both_stores!(
    push_history_audit,
    rollback_then_history_and_diff,
    racing_pushes,
    unreachable_store,
    push_a_thousand_flags,
);

fn push_history_audit(backend: &Backend) {
    let (_tmp, dir) = flags_dir("flags");
    let dir_str = dir.to_str().unwrap();
    write_flags(&dir, &[("alpha", 10), ("beta", 20)]);

    // Before anything is published.
    backend.nothing_published("prod", "the store has no environments yet");

    // A dry run writes nothing.
    let out = backend.ok(&["push", dir_str, "--env", "prod", "--dry-run"]);
    assert!(out.contains("would publish prod version 1"), "{out}");
    backend.nothing_published("prod", "the store has no environments yet");

    let out = backend.ok(&[
        "push", dir_str, "--env", "prod", "--author", "Ada", "-m", "first",
    ]);
    assert!(
        out.contains("published prod version 1 (first version): 2 added (alpha, beta)"),
        "{out}"
    );

    // Pushing the same flags again publishes nothing.
    let out = backend.ok(&["push", dir_str, "--env", "prod", "--author", "Ada"]);
    assert!(
        out.contains("already serves these flags as version 1"),
        "{out}"
    );

    write_flags(&dir, &[("alpha", 10), ("beta", 50), ("gamma", 5)]);
    let out = backend.ok(&[
        "push",
        dir_str,
        "--env",
        "prod",
        "--author",
        "Grace",
        "-m",
        "beta to 50%",
    ]);
    assert!(
        out.contains("published prod version 2 (was 1): 1 added (gamma), 1 changed (beta)"),
        "{out}"
    );

    let history = backend.json(&["history", "--env", "prod"]);
    assert_eq!(history["current"], 2);
    assert_eq!(history["problems"], Value::Array(vec![]));
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["previous"], Value::Null);
    assert_eq!(versions[0]["author"], "Ada");
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(versions[1]["previous"], 1);
    assert_eq!(versions[1]["action"], "push");
    assert_eq!(versions[1]["author"], "Grace");
    assert_eq!(versions[1]["message"], "beta to 50%");
    assert_eq!(strings(&versions[1]["summary"]["added"]), ["gamma"]);
    assert_eq!(strings(&versions[1]["summary"]["changed"]), ["beta"]);
    assert!(
        versions[1]["summary"]["removed"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_ne!(versions[0]["sha256"], versions[1]["sha256"]);

    let human = backend.ok(&["history", "--env", "prod"]);
    let lines: Vec<&str> = human.lines().collect();
    assert!(
        lines[0].contains("2 versions, serving version 2"),
        "{human}"
    );
    assert!(
        lines[1].starts_with("*") && lines[1].contains("Grace"),
        "newest first, marked: {human}"
    );
    assert!(
        lines[2].starts_with(" ") && lines[2].contains("Ada"),
        "{human}"
    );

    let audit = backend.json(&["audit", "--env", "prod"]);
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["who"], "Ada");
    assert_eq!(entries[0]["action"], "push");
    assert_eq!(entries[0]["message"], "first");
    assert_eq!(entries[1]["who"], "Grace");
    assert_eq!(entries[1]["what"], "1 added (gamma), 1 changed (beta)");
    let human = backend.ok(&["audit", "--env", "prod"]);
    assert!(human.contains("prod version 2 push by Grace"), "{human}");

    // Other environments are independent.
    backend.nothing_published("staging", "environments there: prod");
}

fn rollback_then_history_and_diff(backend: &Backend) {
    let (_tmp, dir) = flags_dir("flags");
    let dir_str = dir.to_str().unwrap();
    write_flags(&dir, &[("alpha", 10), ("beta", 20)]);
    backend.ok(&["push", dir_str, "--env", "prod", "--author", "Ada"]);
    write_flags(&dir, &[("alpha", 10), ("beta", 30)]);
    backend.ok(&["push", dir_str, "--env", "prod", "--author", "Ada"]);
    write_flags(&dir, &[("alpha", 15), ("beta", 30), ("gamma", 1)]);
    backend.ok(&["push", dir_str, "--env", "prod", "--author", "Ada"]);

    // Version vs version lists exactly the changed flags, with rule-level detail.
    let diff: Value = serde_json::from_str(&backend.diff(
        &["--env", "prod", "--from", "1", "--to", "3", "--json"],
        true,
    ))
    .unwrap();
    assert_eq!(strings(&diff["summary"]["added"]), ["gamma"]);
    assert_eq!(strings(&diff["summary"]["changed"]), ["alpha", "beta"]);
    assert!(diff["summary"]["removed"].as_array().unwrap().is_empty());
    let human = backend.diff(&["--env", "prod", "--from", "2", "--to", "3"], true);
    assert!(
        human.starts_with("prod version 2 -> prod version 3: 1 added (gamma), 1 changed (alpha)"),
        "{human}"
    );
    assert!(
        human.contains("rule premium:"),
        "rule-level detail: {human}"
    );
    assert!(
        human.contains("on 10%") && human.contains("on 15%"),
        "old and new split: {human}"
    );

    // Files vs deployed.
    write_flags(&dir, &[("alpha", 15), ("gamma", 1)]);
    let diff: Value =
        serde_json::from_str(&backend.diff(&[dir_str, "--env", "prod", "--json"], true)).unwrap();
    assert_eq!(strings(&diff["summary"]["removed"]), ["beta"]);
    assert!(diff["summary"]["changed"].as_array().unwrap().is_empty());

    let out = backend.ok(&[
        "rollback",
        "--env",
        "prod",
        "--to",
        "1",
        "--author",
        "Oncall",
        "-m",
        "alpha broke",
    ]);
    assert!(
        out.contains("rolled prod back to version 1's flags as version 4 (was 3)"),
        "{out}"
    );
    let history = backend.json(&["history", "--env", "prod"]);
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(history["current"], 4);
    assert_eq!(
        versions
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let rollback = &versions[3];
    assert_eq!(rollback["action"], "rollback");
    assert_eq!(rollback["rollback_to"], 1);
    assert_eq!(rollback["previous"], 3);
    assert_eq!(
        rollback["blob"], versions[0]["blob"],
        "a rollback serves the old blob itself"
    );
    assert_eq!(strings(&rollback["summary"]["removed"]), ["gamma"]);
    assert_eq!(strings(&rollback["summary"]["changed"]), ["alpha", "beta"]);

    // The deployed flags are version 1's again.
    let diff = backend.json(&["diff", "--env", "prod", "--from", "1"]);
    assert_eq!(diff["flags"], Value::Array(vec![]));
    let out = backend.ok(&["rollback", "--env", "prod", "--to", "1"]);
    assert!(out.contains("nothing to do"), "{out}");

    let audit = backend.json(&["audit", "--env", "prod"]);
    let last = audit.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "rollback");
    assert_eq!(last["who"], "Oncall");
    assert_eq!(last["message"], "alpha broke");

    // Rolling back to a version that does not exist fails clearly and writes nothing.
    let out = backend.publisher(&["rollback", "--env", "prod", "--to", "9"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("prod has no version 9 (latest is 4)"),
        "{}",
        text(&out)
    );

    // Env vs env.
    write_flags(&dir, &[("alpha", 10), ("beta", 20), ("delta", 50)]);
    let out = backend.publisher(&["push", dir_str, "--env", "staging", "--author", "Ada"]);
    assert!(out.status.success(), "{}", text(&out));
    let diff: Value = serde_json::from_str(
        &backend.diff(&["--env", "prod", "--to-env", "staging", "--json"], true),
    )
    .unwrap();
    assert_eq!(diff["from"], "prod version 4");
    assert_eq!(diff["to"], "staging version 1");
    assert_eq!(strings(&diff["summary"]["added"]), ["delta"]);
    assert!(diff["summary"]["changed"].as_array().unwrap().is_empty());
}

/// Rounds of 20 concurrent `publisher push` processes, each with different flags: every one
/// either publishes a distinct version or fails with the conflict error, and the history stays
/// gapless with an audit entry per version; no blob object is ever overwritten. In the middle
/// round a `publisher kill` races the pushes: it wins a version (at once or on a re-run after
/// exit 3), and no push started before it undoes it (the flag is still killed at the end).
fn racing_pushes(backend: &Backend) {
    const ROUNDS: usize = 3;
    const PUSHERS: usize = 20;
    let dirs: Vec<(tempfile::TempDir, PathBuf)> = (0..ROUNDS * PUSHERS)
        .map(|i| {
            let (tmp, dir) = flags_dir("flags");
            write_flags(
                &dir,
                &[
                    ("alpha", 10),
                    ("racer", (i % 99) as u32 + 1),
                    (&format!("only-{i}"), 50),
                ],
            );
            (tmp, dir)
        })
        .collect();
    let mut winners = BTreeSet::new();
    let mut total_wins = 0;
    let mut kill_version = None;
    for round in 0..ROUNDS {
        let kill = (round == 1).then(|| {
            backend
                .command(&[
                    "kill", "racer", "--env", "prod", "--reason", "race", "--author", "killer",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        });
        let children: Vec<_> = (0..PUSHERS)
            .map(|i| {
                let dir = &dirs[round * PUSHERS + i].1;
                backend
                    .command(&[
                        "push",
                        dir.to_str().unwrap(),
                        "--env",
                        "prod",
                        "--author",
                        &format!("racer-{round}-{i}"),
                    ])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut round_wins = 0;
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            match out.status.code() {
                Some(0) => {
                    let version: u64 = stdout
                        .split("published prod version ")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("unexpected success output: {}", text(&out)));
                    assert!(winners.insert(version), "version {version} won twice");
                    round_wins += 1;
                }
                Some(3) => {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    assert!(
                        stderr.contains("someone else published version"),
                        "{}",
                        text(&out)
                    );
                    assert!(stderr.contains("re-run"), "{}", text(&out));
                }
                _ => panic!("a racing push neither won nor lost cleanly: {}", text(&out)),
            }
        }
        if let Some(mut child) = kill {
            // Re-run a lost kill as an operator would, until it wins.
            let version = loop {
                let out = child.wait_with_output().unwrap();
                match out.status.code() {
                    Some(0) => break version_after(&text(&out), "as version "),
                    Some(3) => {
                        child = backend
                            .command(&["kill", "racer", "--env", "prod", "--reason", "race"])
                            .stdout(std::process::Stdio::piped())
                            .stderr(std::process::Stdio::piped())
                            .spawn()
                            .unwrap();
                    }
                    _ => panic!(
                        "the racing kill neither won nor lost cleanly: {}",
                        text(&out)
                    ),
                }
            };
            assert!(winners.insert(version), "version {version} won twice");
            kill_version = Some(version);
            round_wins += 1;
        }
        assert!(round_wins >= 1, "round {round}: nobody won");
        total_wins += round_wins;
    }
    // Every push after the kill carried it: killing again changes nothing.
    let again = backend.ok(&["kill", "racer", "--env", "prod", "--reason", "check"]);
    assert!(again.contains("nothing to kill"), "{again}");
    let history = backend.json(&["history", "--env", "prod"]);
    assert_eq!(history["problems"], Value::Array(vec![]), "{history}");
    let versions: Vec<u64> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        versions,
        (1..=total_wins as u64).collect::<Vec<_>>(),
        "gapless, no duplicates"
    );
    assert_eq!(
        winners,
        versions.iter().copied().collect::<BTreeSet<_>>(),
        "every winner's version is recorded"
    );
    assert_eq!(history["current"], total_wins as u64);
    for pair in history["versions"].as_array().unwrap().windows(2) {
        assert_eq!(
            pair[1]["previous"], pair[0]["version"],
            "each version replaced the one before"
        );
    }
    let audit = backend.json(&["audit", "--env", "prod"]);
    let audited: Vec<u64> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(audited, versions, "one audit entry per version");
    let kills: Vec<u64> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "kill")
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        kills,
        kill_version.into_iter().collect::<Vec<_>>(),
        "the kill is audited once"
    );

    if let (Some(server), Some(bucket)) = (&backend._server, &backend.bucket) {
        // The bucket is versioned: an overwrite would show up as a second version of a key.
        let counts = server.object_version_counts(bucket);
        let overwritten: Vec<_> = counts
            .iter()
            .filter(|(key, count)| **count > 1 && !key.ends_with("/current.json"))
            .collect();
        assert!(
            overwritten.is_empty(),
            "immutable objects overwritten: {overwritten:?}"
        );
        assert!(counts.keys().any(|k| k.contains("/blobs/")), "{counts:?}");
    } else {
        // Locally, each blob's name is the SHA-256 of its bytes: a torn or replaced blob shows.
        let blobs = Path::new(&backend.store).join("prod/blobs");
        for entry in std::fs::read_dir(blobs).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.starts_with('.') {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let digest = sha256_hex(&bytes);
            assert_eq!(name, format!("{digest}.json.gz"));
        }
    }
}

/// The version number following `marker` in a command's output.
fn version_after(output: &str, marker: &str) -> u64 {
    output
        .split(marker)
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no version after {marker:?} in: {output}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A store that cannot be reached: a clear error, a non-zero exit, and nothing written.
fn unreachable_store(backend: &Backend) {
    let (_tmp, dir) = flags_dir("flags");
    write_flags(&dir, &[("alpha", 10)]);
    let out = if backend.bucket.is_some() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = backend.command(&["push", dir.to_str().unwrap(), "--env", "prod"]);
        command.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
        command.output().unwrap()
    } else {
        // The store's path is a file, not a directory.
        let file = backend._dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let mut command = Command::new(publisher_bin());
        command.args([
            "push",
            dir.to_str().unwrap(),
            "--env",
            "prod",
            "--store",
            &format!("{}/store", file.display()),
        ]);
        command.output().unwrap()
    };
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if backend.bucket.is_some() {
        assert!(stderr.contains("cannot reach the store"), "{}", text(&out));
    } else {
        assert!(
            stderr.contains("error: push failed:") && stderr.contains("not-a-dir"),
            "{}",
            text(&out)
        );
    }
    // Nothing was written to the real store.
    backend.nothing_published("prod", "the store has no environments yet");
}

/// Wrong S3 credentials: a clear error and nothing written.
#[test]
fn wrong_credentials_s3() {
    let backend = Backend::s3("wrong-credentials");
    let (_tmp, dir) = flags_dir("flags");
    write_flags(&dir, &[("alpha", 10)]);
    let mut command = backend.command(&["push", dir.to_str().unwrap(), "--env", "prod"]);
    command.env("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("access denied") && stderr.contains("SignatureDoesNotMatch"),
        "{}",
        text(&out)
    );
    assert!(stderr.contains("check the credentials"), "{}", text(&out));

    let mut command = backend.command(&["push", dir.to_str().unwrap(), "--env", "prod"]);
    command.env("AWS_ACCESS_KEY_ID", "nobody");
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("access denied"),
        "{}",
        text(&out)
    );

    let server = backend._server.as_ref().unwrap();
    assert!(
        server
            .object_version_counts(backend.bucket.as_ref().unwrap())
            .is_empty(),
        "nothing written"
    );
}

/// The 1,000-flag set, end to end. The time is printed (run with `--nocapture`; docs/benchmarks.md's
/// number is from a release build), not asserted.
fn push_a_thousand_flags(backend: &Backend) {
    let (_tmp, dir) = flags_dir("flags");
    write_flag_set(&dir, 1000).unwrap();
    let mut push = backend.command(&[
        "push",
        dir.to_str().unwrap(),
        "--env",
        "prod",
        "--author",
        "Ada",
    ]);
    // Timed from here: `command` may have had to build the binary.
    let started = std::time::Instant::now();
    let out = push.output().unwrap();
    let elapsed = started.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    eprintln!(
        "publisher push of 1,000 flags to {}: {elapsed:?}",
        backend.store
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("published prod version 1 (first version): 1000 added"),
        "{stdout}"
    );
    let history = backend.json(&["history", "--env", "prod"]);
    assert_eq!(
        history["versions"][0]["summary"]["added"]
            .as_array()
            .unwrap()
            .len(),
        1000
    );
}
