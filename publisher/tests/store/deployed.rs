//! `eval --deployed` / `explain --deployed`: what production serves a user now, against plain
//! `eval`, which answers from the files. A rollout ticked past the files' first stage, a kill
//! and a running canary each make the two differ, and the deployed answer is the edge's: the
//! live stage, the kill, and the canary side the worker would pick for the user's targeting
//! key (`bucket(salt, key)` below the share).

use serde_json::{Value, json};

use crate::common::{Store, text, write_flags};

/// A targeting key whose bucket under `salt` is (`inside`) or is not below `buckets`.
fn key_where(salt: &str, buckets: u32, inside: bool) -> String {
    (1..)
        .map(|i| format!("user-{i}"))
        .find(|key| (shared_eval::bucket(salt, key) < buckets) == inside)
        .unwrap()
}

fn context(key: &str) -> String {
    json!({ "targetingKey": key }).to_string()
}

/// `eval [--json] --context {"targetingKey": key} flag` from the files, or `--deployed`.
fn eval(store: &Store, deployed: bool, key: &str, flag: &str) -> Value {
    let flags = store.flags();
    let context = context(key);
    let mut args = vec!["--json", "--context", &context, flag];
    if deployed {
        args.push("--deployed");
    } else {
        args.extend_from_slice(&["--flags", flags.to_str().unwrap()]);
    }
    let out = store.run(&["eval"], &args);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn deployed_answers_at_the_live_rollout_stage_and_with_kills() {
    let store = Store::new();
    write_flags(&store.flags(), "on");
    let flags = store.flags();
    let flags = flags.to_str().unwrap();
    store.ok(&["push", flags], &["--author", "a"]);
    // A user outside the first stage's 10% (the split is salted with the flag's key).
    let user = key_where("csv-export", 10_000, false);
    assert_eq!(eval(&store, false, &user, "csv-export")["value"], false);
    assert_eq!(eval(&store, true, &user, "csv-export")["value"], false);

    // The schedule reaches 100% on the edge; the file still says stage 1.
    let out = store.ok(&["rollout", "tick"], &["--author", "cron"]);
    assert!(out.contains("stage 1 -> 2"), "{out}");
    let files = eval(&store, false, &user, "csv-export");
    let deployed = eval(&store, true, &user, "csv-export");
    assert_eq!(files["value"], false, "{files}");
    assert_eq!(deployed["value"], true, "{deployed}");
    assert_eq!(
        (
            &deployed["metadata"]["flagsVersion"],
            &deployed["metadata"]["flagsTrack"]
        ),
        (&json!(2), &json!("stable")),
        "{deployed}"
    );
    // Text: the answer and which version and side gave it.
    let context = context(&user);
    let out = store.ok(
        &["eval"],
        &["--deployed", "--context", &context, "csv-export"],
    );
    assert!(
        out.starts_with("csv-export = true (variant on")
            && out.contains("[prod version 2, stable]"),
        "{out}"
    );
    let out = store.ok(
        &["explain"],
        &["--deployed", "--context", &context, "csv-export"],
    );
    assert!(
        out.contains("deployed: prod version 2, stable")
            && out.contains("on 100%")
            && out.contains("result: csv-export = true"),
        "{out}"
    );
    let out = store.ok(
        &["explain"],
        &["--flags", flags, "--context", &context, "csv-export"],
    );
    assert!(out.contains("result: csv-export = false"), "{out}");

    // A kill: the edge serves the default, the files still serve the flag.
    store.ok(&["kill", "report-beta"], &["--author", "oncall"]);
    assert_eq!(eval(&store, false, &user, "report-beta")["value"], true);
    let killed = eval(&store, true, &user, "report-beta");
    assert_eq!(
        (&killed["value"], &killed["reason"]),
        (&json!(false), &json!("DISABLED")),
        "{killed}"
    );
}

#[test]
fn deployed_answers_from_the_users_side_of_a_canary() {
    let store = Store::new();
    let flags = store.flags();
    let flags = flags.to_str().unwrap();
    write_flags(&store.flags(), "off");
    store.ok(&["push", flags], &["--author", "a"]);
    write_flags(&store.flags(), "on");
    let out = store.ok(&["push", flags], &["--canary", "30", "--author", "a"]);
    assert!(
        out.contains("version 2 as a canary to 30% of users"),
        "{out}"
    );

    // The worker's rule: bucket(canary salt, targeting key) below 30% of the buckets.
    let inside = key_where("canary-prod-2", 30_000, true);
    let outside = key_where("canary-prod-2", 30_000, false);
    for (user, track, value) in [(&inside, "canary", true), (&outside, "stable", false)] {
        let deployed = eval(&store, true, user, "report-beta");
        assert_eq!(deployed["value"], value, "{user}: {deployed}");
        assert_eq!(
            deployed["metadata"]["flagsTrack"], track,
            "{user}: {deployed}"
        );
        assert_eq!(
            deployed["metadata"]["flagsVersion"], 2,
            "{user}: {deployed}"
        );
        // The files (what the canary serves) answer `on` for everyone.
        assert_eq!(eval(&store, false, user, "report-beta")["value"], true);
    }
    let context = context(&inside);
    let out = store.ok(
        &["explain"],
        &["--deployed", "--context", &context, "report-beta"],
    );
    assert!(
        out.contains("deployed: prod version 2, canary (30% of users since version 2)"),
        "{out}"
    );
    // Without a targeting key the edge serves stable.
    let out = store.ok(&["eval"], &["--deployed", "report-beta"]);
    assert!(
        out.contains("[prod version 2, stable (beside a canary to 30% of users since version 2)]"),
        "{out}"
    );
}

#[test]
fn deployed_says_why_it_cannot_answer() {
    let store = Store::new();
    let out = store.run(&["eval"], &["--deployed", "--json", "report-beta"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["errorCode"], "GENERAL", "{answer}");
    assert!(
        text(&out).contains("nothing has been published to prod yet"),
        "{}",
        text(&out)
    );
    write_flags(&store.flags(), "off");
    store.ok(
        &["push", store.flags().to_str().unwrap()],
        &["--author", "a"],
    );
    let out = store.run(&["eval"], &["--deployed", "no-such-flag"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no flag `no-such-flag` in prod version 1"),
        "{}",
        text(&out)
    );
    // --flags and --deployed answer different questions: one at a time.
    let out = store.run(
        &["eval"],
        &["--deployed", "--flags", "examples/flags", "report-beta"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
