//! `publisher drift` against real parts: SeaweedFS as the store, two workers in workerd reading
//! it with SigV4 (a long `CACHE_TTL_S`, so a skipped purge leaves them on an old version), and
//! the flags in a real Git repository. Drift is introduced in each layer in turn (an edited
//! flag committed in Git, an overwritten pointer, a corrupted blob, edges left stale by a push
//! without purge); each must be found with the right layer named and exit 1, fixed by `--fix`,
//! and the next check must exit 0. A canary (pushed from Git, then promoted) is reported as a
//! canary, not drift; so is a rollout stage advanced by a tick. Flags that do not compile and
//! an unreachable store or edge exit 2, named. Then environment against environment on the
//! example flags.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use flags_store::store::{ObjectStore, PutOptions};
use integration_tests::worker::{Worker, scratch_dir};
use integration_tests::{SeaweedFs, copy_dir, git, publisher_bin, repo_root};
use serde_json::Value;

const ENV: &str = "dev";
const PREFIX: &str = "drift";
const PURGE_TOKEN: &str = "drift-purge-token";

/// A Git repository holding a copy of examples/flags, committed.
fn flags_repo(label: &str) -> PathBuf {
    let repo = scratch_dir(label);
    copy_dir(&repo_root().join("examples/flags"), &repo);
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "Drift Test"]);
    git(&repo, &["config", "user.email", "drift@example.com"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "flags"]);
    repo
}

/// Replaces `from` with `to` in a flag file and commits.
fn edit_and_commit(repo: &Path, file: &str, from: &str, to: &str) {
    let path = repo.join("flags").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replacen(from, to, 1);
    assert_ne!(text, changed, "{file} changed shape; update this test");
    std::fs::write(&path, changed).unwrap();
    git(repo, &["commit", "-q", "-am", &format!("edit {file}")]);
}

struct Setup {
    store: String,
    env: Vec<(&'static str, String)>,
}

impl Setup {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(publisher_bin())
            .args(args)
            .args(["--store", &self.store])
            .envs(self.env.iter().cloned())
            .current_dir(repo_root())
            .output()
            .expect("run publisher")
    }

    /// `publisher drift ... --json`: (exit code, report).
    fn drift(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["drift", "--env", ENV, "--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "drift {args:?} printed no JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), report)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "publisher {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn kinds(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["layer"].as_str().unwrap().to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn has(report: &Value, layer: &str, kind: &str) -> bool {
    kinds(report).iter().any(|(l, k)| l == layer && k == kind)
}

fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

/// Overwrites a store object behind the publisher's back, as a hand edit would.
fn overwrite(s3: &SeaweedFs, bucket: &str, key: &str, bytes: Vec<u8>) {
    block_on(async {
        let store = s3.store(bucket, PREFIX).await;
        let etag = store.head(key).await.unwrap().expect("object exists").etag;
        store
            .put_if_match(key, bytes, &etag, PutOptions::POINTER)
            .await
            .unwrap();
    });
}

fn read(s3: &SeaweedFs, bucket: &str, key: &str) -> Vec<u8> {
    block_on(async {
        let store = s3.store(bucket, PREFIX).await;
        store.get(key).await.unwrap().expect("object exists").bytes
    })
}

#[test]
fn drift_in_each_layer_is_found_named_and_fixed() {
    let s3 = SeaweedFs::shared();
    let bucket = format!("drift-{}", std::process::id());
    let store = format!("{}/{PREFIX}", s3.bucket(&bucket));
    let bindings = |_: usize| {
        vec![
            ("FLAGS_ENV", ENV.to_owned()),
            ("ORIGIN_KIND", "s3".to_owned()),
            ("S3_ENDPOINT", s3.endpoint.clone()),
            ("S3_BUCKET", bucket.clone()),
            ("S3_REGION", "us-east-1".to_owned()),
            ("ORIGIN_PREFIX", format!("{PREFIX}/")),
            ("S3_ACCESS_KEY_ID", s3.access_key.clone()),
            ("S3_SECRET_ACCESS_KEY", s3.secret_key.clone()),
            ("PURGE_TOKEN", PURGE_TOKEN.to_owned()),
            ("REVALIDATE_MS", "250".to_owned()),
            // A skipped purge leaves a worker on its cached version for an hour.
            ("CACHE_TTL_S", "3600".to_owned()),
        ]
    };
    let workers: Vec<Worker> = (0..2)
        .map(|n| {
            let b = bindings(n);
            let refs: Vec<(&str, &str)> = b.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Worker::start(&refs)
        })
        .collect();
    let mut env = s3.aws_env();
    env.push(("FLAGS_PURGE_TOKEN", PURGE_TOKEN.to_owned()));
    let setup = Setup { store, env };
    let repo = flags_repo("drift-git");
    let flags = repo.to_str().unwrap();
    let edges: Vec<&str> = workers
        .iter()
        .flat_map(|w| ["--edge", w.url.as_str()])
        .collect();
    let check = |extra: &[&str]| {
        let mut args = vec!["--flags", flags];
        args.extend_from_slice(&edges);
        args.extend_from_slice(extra);
        setup.drift(&args)
    };

    // Nothing published: the store layer is empty and Git has flags; --fix publishes version 1.
    let (code, report) = check(&[]);
    assert_eq!(code, 1, "{report:#}");
    assert!(has(&report, "store", "store_empty"), "{report:#}");
    let (code, fixed) = check(&["--fix"]);
    assert_eq!(code, 0, "{fixed:#}");
    let (code, report) = check(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["store"]["version"], 1);
    assert_eq!(report["fleet"]["in_sync"], 2, "{report:#}");

    // An unreachable edge is named, and the run says it could not check (exit 2).
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (code, report) = check(&["--edge", &closed]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["status"], "unchecked");
    assert_eq!(report["unchecked"][0]["layer"], "edge");
    assert_eq!(report["unchecked"][0]["target"], closed.as_str());
    assert_eq!(report["fleet"]["unreachable"], 1);

    // 1. Git: a flag edited and committed. Git is ahead; the diff names the flag and rule.
    edit_and_commit(
        &repo,
        "beta-banner.yaml",
        "  dev:\n    enabled: true",
        "  dev:\n    enabled: false",
    );
    let (code, report) = check(&[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(kinds(&report), [("git".to_owned(), "git_ahead".to_owned())]);
    assert_eq!(report["git_vs_store"]["relation"], "ahead");
    assert_eq!(
        report["git_vs_store"]["summary"]["changed"][0],
        "beta-banner"
    );
    let details = report["git_vs_store"]["flags"][0]["details"].to_string();
    assert!(details.contains("enabled: true -> false"), "{details}");
    let (code, fixed) = check(&["--fix"]);
    assert_eq!(code, 0, "{fixed:#}");
    let actions: Vec<&str> = fixed["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["publish_from_git", "purge_edge", "purge_edge", "converge"]
    );
    let (code, report) = check(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["store"]["version"], 2);
    let versions = setup.ok(&["history", "--env", ENV, "--json"]);
    assert!(versions.contains("drift fix: Git"), "{versions}");

    // Git behind: a checkout of the first commit is reported, and not fixed without --allow-older.
    let old = scratch_dir("drift-old-clone");
    let cloned = Command::new("git")
        .args(["clone", "-q", flags])
        .arg(&old)
        .status()
        .unwrap();
    assert!(cloned.success());
    git(&old, &["checkout", "-q", "HEAD~1"]);
    let (code, report) = setup.drift(&["--flags", old.to_str().unwrap()]);
    assert_eq!(code, 1, "{report:#}");
    assert!(has(&report, "git", "git_behind"), "{report:#}");
    let (code, fixed) = setup.drift(&["--flags", old.to_str().unwrap(), "--fix"]);
    assert_eq!(code, 1, "{fixed:#}");
    assert_eq!(
        fixed["after"]["store"]["version"], 2,
        "the store was not moved back"
    );

    // 2. Store: the pointer overwritten by hand to name version 1's blob.
    let pointer_key = format!("{ENV}/current.json");
    let v1: Value = serde_json::from_str(&setup.ok(&["history", "--env", ENV, "--json"]))
        .map(|h: Value| h["versions"].clone())
        .unwrap();
    let v1 = v1
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == 1)
        .unwrap()
        .clone();
    let mut pointer: Value = serde_json::from_slice(&read(&s3, &bucket, &pointer_key)).unwrap();
    pointer["blob"] = v1["blob"].clone();
    pointer["sha256"] = v1["sha256"].clone();
    pointer["content_hash"] = v1["content_hash"].clone();
    overwrite(&s3, &bucket, &pointer_key, pointer.to_string().into_bytes());
    let (code, report) = check(&[]);
    assert_eq!(code, 1, "{report:#}");
    assert!(has(&report, "store", "pointer_mismatch"), "{report:#}");
    assert_eq!(report["store"]["state"], "pointer_mismatch");
    assert_eq!(report["store"]["last_good_version"], 2);
    let (code, fixed) = check(&["--fix"]);
    assert_eq!(code, 0, "{fixed:#}");
    assert_eq!(fixed["actions"][0]["kind"], "republish_last_good");
    let (code, report) = check(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["store"]["version"], 3);
    assert_eq!(report["store"]["action"], "rollback");

    // 3. Store: the served blob corrupted. The edges keep serving their good copy meanwhile.
    let blob_key = format!("{ENV}/{}", report["store"]["blob"].as_str().unwrap());
    overwrite(&s3, &bucket, &blob_key, b"not a blob".to_vec());
    let (code, report) = check(&[]);
    assert_eq!(code, 1, "{report:#}");
    assert!(has(&report, "store", "blob_hash_mismatch"), "{report:#}");
    assert_eq!(report["fleet"]["in_sync"], 2, "edges still serve version 3");
    let (code, fixed) = check(&["--fix"]);
    assert_eq!(code, 0, "{fixed:#}");
    // The last good blob is version 1's; then Git (ahead of it) is published again.
    assert_eq!(fixed["actions"][0]["kind"], "republish_last_good");
    assert_eq!(fixed["actions"][1]["kind"], "publish_from_git");
    let (code, report) = check(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["store"]["version"], 5);

    // 4. Edge: a push without purge leaves both workers on version 5 for an hour. Within the
    // revalidation interval that is "converging"; past it, drift.
    edit_and_commit(
        &repo,
        "live-updates.yaml",
        "  dev:\n    enabled: true",
        "  dev:\n    enabled: false",
    );
    let mut push_env = setup.env.clone();
    push_env.retain(|(k, _)| *k != "FLAGS_PURGE_TOKEN");
    let pushed = Command::new(publisher_bin())
        .args(["push", flags, "--env", ENV, "--store", &setup.store])
        .envs(push_env.iter().cloned())
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    std::thread::sleep(Duration::from_secs(4));
    let (code, report) = check(&[]);
    assert_eq!(code, 1, "{report:#}");
    assert!(has(&report, "edge", "edge_stale"), "{report:#}");
    assert_eq!(report["edges"][0]["state"], "stale");
    assert_eq!(report["edges"][0]["version"], 5);
    assert_eq!(report["edges"][0]["summary"]["changed"][0], "live-updates");
    assert_eq!(report["fleet"]["drifted"], 2);
    assert_eq!(report["fleet"]["versions"][0]["version"], 5);
    assert_eq!(report["fleet"]["versions"][0]["endpoints"], 2);
    let (code, fixed) = check(&["--fix"]);
    assert_eq!(code, 0, "{fixed:#}");
    let (code, report) = check(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["fleet"]["versions"][0]["version"], 6);
    assert_eq!(report["fleet"]["in_sync"], 2);

    // Every check and fix is in the audit trail, with who, what differed and what was done.
    let audit: Value = serde_json::from_str(&setup.ok(&["audit", "--env", ENV, "--json"])).unwrap();
    let audit = audit.as_array().unwrap();
    let fixes: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "drift_fix")
        .collect();
    assert_eq!(fixes.len(), 6, "{audit:#?}");
    assert!(audit.iter().any(|e| e["action"] == "drift_check"));
    let stale_fix = fixes.last().unwrap();
    assert_eq!(stale_fix["who"], "Drift Test");
    assert!(
        stale_fix["differed"][0]
            .as_str()
            .unwrap()
            .contains("serves version 5"),
        "{stale_fix:#}"
    );
    assert!(
        stale_fix["done"].to_string().contains("purged"),
        "{stale_fix:#}"
    );
    let text = setup.ok(&["audit", "--env", ENV]);
    assert!(text.contains("drift fix by Drift Test: in sync"), "{text}");

    // 5. A canary is reported as a canary, not as drift. Git's next commit goes out as a 10%
    // canary without a purge: Git matches the canary side; the edges lack the canary.
    edit_and_commit(
        &repo,
        "live-updates.yaml",
        "  dev:\n    enabled: false",
        "  dev:\n    enabled: true",
    );
    let push_quietly = |args: &[&str]| {
        let out = Command::new(publisher_bin())
            .args(args)
            .args(["--env", ENV, "--store", &setup.store])
            .envs(push_env.iter().cloned())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    push_quietly(&["push", flags, "--canary", "10"]);
    std::thread::sleep(Duration::from_secs(4));
    let (code, report) = check(&[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        kinds(&report),
        [
            ("edge".to_owned(), "edge_stale".to_owned()),
            ("edge".to_owned(), "edge_stale".to_owned())
        ],
        "only the edges that lack the canary drift: {report:#}"
    );
    assert_eq!(report["git_vs_store"]["in_sync"], true, "{report:#}");
    assert_eq!(report["git_vs_store"]["matches"], "canary");
    assert_eq!(report["store"]["state"], "ok");
    assert_eq!(report["store"]["canary"]["since"], 7);
    assert_eq!(report["store"]["canary"]["percent"], 10.0);
    let (code, fixed) = check(&["--fix"]);
    assert_eq!(code, 0, "{fixed:#}");
    let (code, report) = check(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["fleet"]["in_sync"], 2, "{report:#}");
    assert_eq!(report["fleet"]["versions"][0]["canary"]["percent"], 10.0);
    assert_eq!(report["edges"][1]["canary"]["since"], 7);
    let health = workers[0].health();
    assert_eq!(health["canary"]["percent"], 10.0, "{health:#}");
    assert_eq!(
        health["canary"]["sha256"], report["store"]["canary"]["sha256"],
        "{health:#}"
    );
    assert_eq!(health["sha256"], report["store"]["sha256"], "{health:#}");
    assert_ne!(health["sha256"], health["canary"]["sha256"]);
    let mut text_args = vec!["drift", "--env", ENV, "--flags", flags];
    text_args.extend_from_slice(&edges);
    let text = setup.ok(&text_args);
    for expected in [
        "canary since version 7 to 10% of users (a canary, not drift)",
        "same flags as the canary",
        "+ canary since 7 to 10%",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }

    // Promoted without a purge: stale edges again until --fix purges them; then no canary.
    push_quietly(&["promote"]);
    std::thread::sleep(Duration::from_secs(4));
    let (code, report) = check(&[]);
    assert_eq!(code, 1, "{report:#}");
    assert!(has(&report, "edge", "edge_stale"), "{report:#}");
    assert!(report["store"]["canary"].is_null());
    assert_eq!(report["git_vs_store"]["matches"], "stable");
    assert_eq!(check(&["--fix"]).0, 0);
    let (code, report) = check(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert!(report["edges"][0]["canary"].is_null(), "{report:#}");
    assert_eq!(report["fleet"]["versions"][0]["version"], 8);
}

#[test]
fn prod_against_staging_separates_declared_differences_from_drift() {
    let store = scratch_dir("drift-envs-store");
    let setup = Setup {
        store: store.to_str().unwrap().to_owned(),
        env: Vec::new(),
    };
    let repo = flags_repo("drift-envs-git");
    edit_and_commit(
        &repo,
        "checkout-v2.yaml",
        "health: { url: \"https://status.example.com/checkout/healthy\" }",
        "health: { command: \"true\" }",
    );
    // The first stage soaks 0 s, so a real tick (records carry the real time, and `--now`
    // may not run ahead of the clock) moves it on at once.
    edit_and_commit(
        &repo,
        "checkout-v2.yaml",
        "{ percent: 1, soak: 1h }",
        "{ percent: 1, soak: 0s }",
    );
    let flags = repo.to_str().unwrap();
    for env in ["staging", "prod"] {
        setup.ok(&["push", flags, "--env", env]);
    }
    let against = |args: &[&str]| {
        let mut all = vec![
            "drift",
            "--env",
            "prod",
            "--against",
            "staging",
            "--flags",
            flags,
            "--json",
        ];
        all.extend_from_slice(args);
        let out = setup.run(&all);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code().unwrap(), report)
    };

    // Same commit: the files' per-environment differences (new-chart is on for everyone in
    // staging, split in prod) are declared, not drift.
    let (code, report) = against(&[]);
    assert_eq!(code, 0, "{report:#}");
    let state = |report: &Value, key: &str| {
        report["flags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == key)
            .map(|f| f["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state(&report, "new-chart").as_deref(), Some("declared"));
    assert_eq!(
        state(&report, "live-updates"),
        None,
        "identical flags are not listed"
    );

    // prod's checkout-v2 rollout moves to its second stage: still what the files declare.
    assert_eq!(state(&report, "checkout-v2").as_deref(), Some("declared"));
    let ticked = setup.ok(&["rollout", "tick", "--env", "prod"]);
    assert!(ticked.contains("stage 1 -> 2"), "{ticked}");
    let (code, report) = against(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(state(&report, "checkout-v2").as_deref(), Some("declared"));

    // A kill in prod only is operational, not drift.
    setup.ok(&["kill", "live-updates", "--env", "prod", "--reason", "test"]);
    let (code, report) = against(&[]);
    assert_eq!(code, 0, "{report:#}");
    let killed = report["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "live-updates")
        .unwrap();
    assert_eq!(killed["state"], "same");
    assert_eq!(killed["killed_in"], "prod");
    setup.ok(&["unkill", "live-updates", "--env", "prod"]);

    // live-updates is the same in staging and prod in the files; staging gets a newer commit
    // that turns it off in both, prod is not pushed: prod built from another commit is drift.
    let path = repo.join("flags/live-updates.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text
        .replace(
            "  staging:\n    enabled: true",
            "  staging:\n    enabled: false",
        )
        .replace("  prod:\n    enabled: true", "  prod:\n    enabled: false");
    assert_ne!(text, changed);
    std::fs::write(&path, changed).unwrap();
    git(&repo, &["commit", "-q", "-am", "live-updates off"]);
    setup.ok(&["push", flags, "--env", "staging"]);
    let (code, report) = against(&[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["status"], "drift");
    assert_eq!(report["flags"][0]["key"], "live-updates");
    assert_eq!(report["flags"][0]["state"], "drift");
    assert!(
        report["flags"][0]["declared"].is_null(),
        "the files say they match"
    );
    assert_ne!(
        report["env"]["source_commit"],
        report["against"]["source_commit"]
    );
    assert_eq!(state(&report, "new-chart").as_deref(), Some("declared"));
    let out = setup.run(&[
        "drift",
        "--env",
        "prod",
        "--against",
        "staging",
        "--flags",
        flags,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DRIFT live-updates: the files say prod and staging should match"),
        "{text}"
    );
    assert!(text.contains("enabled: false -> true"), "{text}");

    // Pushing prod from the same commit brings it back in line.
    setup.ok(&["push", flags, "--env", "prod"]);
    let (code, report) = against(&[]);
    assert_eq!(code, 0, "{report:#}");
    let audit = setup.ok(&["audit", "--env", "prod"]);
    assert!(
        audit.contains("drift check against staging by Drift Test: drift"),
        "{audit}"
    );
}

#[test]
fn rollout_stages_are_not_drift_and_unreadable_layers_exit_2() {
    let store = scratch_dir("drift-rollout-store");
    let setup = Setup {
        store: store.to_str().unwrap().to_owned(),
        env: Vec::new(),
    };
    let repo = flags_repo("drift-rollout-git");
    // The example's health URL is not reachable from here; a command that passes stands in.
    edit_and_commit(
        &repo,
        "checkout-v2.yaml",
        "health: { url: \"https://status.example.com/checkout/healthy\" }",
        "health: { command: \"true\" }",
    );
    // The first stage soaks 0 s, so a real tick (records carry the real time, and `--now`
    // may not run ahead of the clock) moves it on at once.
    edit_and_commit(
        &repo,
        "checkout-v2.yaml",
        "{ percent: 1, soak: 1h }",
        "{ percent: 1, soak: 0s }",
    );
    let flags = repo.to_str().unwrap();
    let drift = |args: &[&str]| {
        let mut all = vec!["drift", "--env", "prod", "--json", "--flags", flags];
        all.extend_from_slice(args);
        let out = setup.run(&all);
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap(), report)
    };
    let stage = || -> Value {
        let status: Value =
            serde_json::from_str(&setup.ok(&["rollout", "status", "--env", "prod", "--json"]))
                .unwrap();
        status["rollouts"][0]["state"]["stage"].clone()
    };
    setup.ok(&["push", flags, "--env", "prod"]);
    assert_eq!(drift(&[]).0, 0);

    // A tick moves checkout-v2 from 1% to 5%: the store now differs from what Git compiles
    // (stage 1), and that is the schedule working, not drift.
    let ticked = setup.ok(&["rollout", "tick", "--env", "prod"]);
    assert!(ticked.contains("checkout-v2"), "{ticked}");
    assert_eq!(stage(), 2);
    let (code, report) = drift(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["store"]["version"], 2);
    assert_eq!(report["git_vs_store"]["in_sync"], true);

    // A real edit in Git is drift; fixing it publishes Git and keeps the stage where it is.
    edit_and_commit(
        &repo,
        "beta-banner.yaml",
        "  prod:\n    enabled: true",
        "  prod:\n    enabled: false",
    );
    let (code, report) = drift(&[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(kinds(&report), [("git".to_owned(), "git_ahead".to_owned())]);
    assert_eq!(
        report["git_vs_store"]["summary"]["changed"],
        serde_json::json!(["beta-banner"]),
        "the rollout stage is not listed as a change"
    );
    let (code, fixed) = drift(&["--fix"]);
    assert_eq!(code, 0, "{fixed:#}");
    assert_eq!(stage(), 2, "a drift fix does not restart the rollout");
    assert_eq!(drift(&[]).0, 0);

    // Flags that do not compile: the Git layer cannot be checked (exit 2, named).
    let broken = scratch_dir("drift-broken-flags");
    copy_dir(&repo, &broken);
    std::fs::write(broken.join("flags/beta-banner.yaml"), "key: [unclosed\n").unwrap();
    let out = setup.run(&[
        "drift",
        "--env",
        "prod",
        "--json",
        "--flags",
        broken.to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    assert_eq!(report["unchecked"][0]["layer"], "git");
    assert!(
        report["unchecked"][0]["error"]
            .as_str()
            .unwrap()
            .contains("beta-banner.yaml"),
        "{report:#}"
    );

    // A store nobody answers for: exit 2, the store named.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let out = Command::new(publisher_bin())
        .args([
            "drift",
            "--env",
            "prod",
            "--json",
            "--store",
            "s3://nobody/flags",
        ])
        .envs([
            ("AWS_ACCESS_KEY_ID", "K"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
            ("AWS_ENDPOINT_URL", closed.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    assert_eq!(report["status"], "unchecked");
    assert_eq!(report["unchecked"][0]["layer"], "store");
    assert!(
        report["unchecked"][0]["target"]
            .as_str()
            .unwrap()
            .contains("nobody"),
        "{report:#}"
    );
}

/// Figures for docs/benchmarks.md, not a check (run with `--ignored`): `publisher drift` over 1,000
/// flags and a 10-endpoint fleet (5 workerd instances, each listed twice), against SeaweedFS,
/// next to the same check without edges (Git + store alone) from the same run. Writes
/// `target/artifacts/drift-check.json`.
#[test]
#[ignore = "measurement run for docs/benchmarks.md"]
fn drift_check_figures() {
    const FLAGS: usize = 1_000;
    const RUNS: usize = 10;
    let s3 = SeaweedFs::shared();
    let bucket = format!("drift-figures-{}", std::process::id());
    let store = format!("{}/{PREFIX}", s3.bucket(&bucket));
    let bindings = vec![
        ("FLAGS_ENV", ENV.to_owned()),
        ("ORIGIN_KIND", "s3".to_owned()),
        ("S3_ENDPOINT", s3.endpoint.clone()),
        ("S3_BUCKET", bucket.clone()),
        ("S3_REGION", "us-east-1".to_owned()),
        ("ORIGIN_PREFIX", format!("{PREFIX}/")),
        ("S3_ACCESS_KEY_ID", s3.access_key.clone()),
        ("S3_SECRET_ACCESS_KEY", s3.secret_key.clone()),
        ("REVALIDATE_MS", "250".to_owned()),
    ];
    let refs: Vec<(&str, &str)> = bindings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let workers: Vec<Worker> = (0..5).map(|_| Worker::start(&refs)).collect();
    let setup = Setup {
        store,
        env: s3.aws_env(),
    };
    let repo = scratch_dir("drift-figures-git");
    std::fs::create_dir_all(repo.join("flags")).unwrap();
    for i in 0..FLAGS {
        std::fs::write(
            repo.join(format!("flags/flag-{i:04}.yaml")),
            format!(
                "key: flag-{i:04}\ndescription: Generated flag {i}.\nowner: team-load\ntype: release\n\
                 default: off\nenvironments:\n  {ENV}:\n    enabled: true\n    rules:\n      - id: beta\n        \
                 if: {{ attr: plan, in: [beta, premium] }}\n        serve: on\n      - id: split\n        \
                 serve: {{ split: {{ on: {}, off: {} }} }}\n",
                i % 100,
                100 - i % 100
            ),
        )
        .unwrap();
    }
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "Drift Figures"]);
    git(&repo, &["config", "user.email", "drift@example.com"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "flags"]);
    let flags = repo.to_str().unwrap();
    setup.ok(&["push", flags, "--env", ENV]);
    for worker in &workers {
        worker.wait_for_health(Duration::from_secs(10), |h| h["version"] == 1);
    }
    let edges: Vec<&str> = workers
        .iter()
        .chain(&workers)
        .flat_map(|w| ["--edge", w.url.as_str()])
        .collect();
    let time = |args: &[&str]| -> Vec<f64> {
        (0..RUNS)
            .map(|_| {
                let start = std::time::Instant::now();
                let (code, report) = setup.drift(args);
                let ms = start.elapsed().as_secs_f64() * 1e3;
                assert_eq!(code, 0, "{report:#}");
                ms
            })
            .collect()
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let mut with_edges = vec!["--flags", flags];
    with_edges.extend_from_slice(&edges);
    let (fleet, fleet_min, fleet_max) = median(time(&with_edges));
    let (alone, alone_min, alone_max) = median(time(&["--flags", flags]));
    let (store_only, _, _) = median(time(&[]));
    let figures = serde_json::json!({
        "flags": FLAGS,
        "endpoints": edges.len() / 2,
        "workerd_instances": workers.len(),
        "runs": RUNS,
        "fleet_ms": {"median": fleet, "min": fleet_min, "max": fleet_max},
        "git_and_store_ms": {"median": alone, "min": alone_min, "max": alone_max},
        "store_only_ms": store_only,
    });
    eprintln!("{figures:#}");
    let artifacts = repo_root().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("drift-check.json"), figures.to_string()).unwrap();
}
