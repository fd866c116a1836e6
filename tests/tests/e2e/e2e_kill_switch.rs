//! End to end, every real part on 127.0.0.1: SeaweedFS is the origin, the worker runs in workerd
//! (Miniflare) reading it with SigV4, and the `publisher` binary pushes, kills and rolls back,
//! purging the worker after each. Several concurrent clients poll OFREP as dashboards do; for
//! each step we measure from the moment the command returns to the moment each client first
//! sees the new value, and assert the product's bound (< 1 s) for every client.
//!
//! Then the browser test (`tests/browser/dashboard.test.mjs`, Debian's chromium driven by
//! playwright-core) runs against the same worker, with `publisher kill` as its kill command.
//! Measured figures go to `target/artifacts/propagation.json`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use integration_tests::deployment::{Deployment, Spec};
use integration_tests::propagation::{banner_off_flags, delays_after, missed, percentile};
use integration_tests::worker::{Worker, now_s, scratch_dir, token};
use integration_tests::{publisher_bin, repo_root};
use serde_json::{Value, json};

const ENV: &str = "dev";
const IDENTITY_SECRET: &str = "e2e-identity-secret-not-used-elsewhere";
const PURGE_TOKEN: &str = "e2e-purge-token";
/// The product's promise: a published change reaches every client within a second.
const BOUND: Duration = Duration::from_secs(1);
const CLIENTS: usize = 6;
/// How often each client asks, like a dashboard revalidating.
const CLIENT_POLL: Duration = Duration::from_millis(20);

type Setup = Deployment;

fn start() -> Setup {
    let assets = build_dashboard();
    Deployment::start(&Spec {
        label: "e2e",
        environment: ENV,
        identity_secret: IDENTITY_SECRET,
        purge_token: PURGE_TOKEN,
        bindings: &[("REVALIDATE_MS", "250")],
        assets: Some(&assets),
    })
}

/// Builds the dashboard with demo tokens signed by this worker's secret.
fn build_dashboard() -> PathBuf {
    let out = scratch_dir("dashboard");
    let status = Command::new("node")
        .arg("dashboard/build.mjs")
        .arg("--out")
        .arg(&out)
        .env("IDENTITY_SECRET", IDENTITY_SECRET)
        .env("PUBLISHER_BIN", publisher_bin())
        .current_dir(repo_root())
        .status()
        .expect("run node dashboard/build.mjs");
    assert!(status.success(), "dashboard build failed");
    out
}

/// A signed-in beta user: `beta-banner` is on for them unless killed.
fn client_token(n: usize) -> String {
    token(
        json!({"sub": format!("e2e-user-{n}"), "beta": true, "plan": "free", "exp": now_s() + 3600}),
        IDENTITY_SECRET,
    )
}

/// The value of `flag` as one client sees it through the single-flag OFREP endpoint.
fn observe(worker: &Worker, bearer: &str, flag: &str) -> Option<Value> {
    let reply = worker.post(
        &format!("/ofrep/v1/evaluate/flags/{flag}"),
        &json!({"context": {}}),
        &[("Authorization", bearer)],
    );
    (reply.status == 200).then(|| reply.json()["value"].clone())
}

/// Runs `step`, then has every client poll until it sees `flag == expected`. Returns each
/// client's delay from the step's return, or panics naming the clients that missed the bound.
fn measure(
    setup: &Setup,
    label: &str,
    flag: &str,
    expected: Value,
    step: impl FnOnce() -> Instant,
) -> Vec<Duration> {
    let bearers: Vec<String> = (0..CLIENTS)
        .map(|n| format!("Bearer {}", client_token(n)))
        .collect();
    let sees = |bearer: &String| observe(&setup.worker, bearer, flag).as_ref() == Some(&expected);
    let delays = delays_after(&bearers, CLIENT_POLL, BOUND * 3, sees, step);
    let missed = missed(&delays, BOUND);
    if !missed.is_empty() {
        let sample = setup.worker.post(
            &format!("/ofrep/v1/evaluate/flags/{flag}"),
            &json!({"context": {}}),
            &[("Authorization", &bearers[0])],
        );
        panic!(
            "{label}: clients {missed:?} did not see {flag} = {expected} within {BOUND:?}: {delays:?}\n\
             health: {}\nlast answer: {} {}",
            setup.worker.health(),
            sample.status,
            sample.body
        );
    }
    let delays: Vec<Duration> = delays.into_iter().flatten().collect();
    eprintln!(
        "{label}: first client {:?}, all {CLIENTS} clients {:?}",
        delays.iter().min().unwrap(),
        delays.iter().max().unwrap()
    );
    delays
}

#[test]
fn push_kill_unkill_rollback_reach_every_client_within_a_second_then_the_browser_sees_a_kill() {
    let setup = start();
    let examples = repo_root().join("examples/flags");
    let v2 = banner_off_flags("flags-v2");
    let mut all = Vec::new();

    all.extend(measure(
        &setup,
        "push v1",
        "beta-banner",
        json!(true),
        || setup.publisher(&["push", examples.to_str().unwrap(), "--message", "e2e v1"]),
    ));
    all.extend(measure(
        &setup,
        "push v2 (banner off)",
        "beta-banner",
        json!(false),
        || setup.publisher(&["push", v2.to_str().unwrap(), "--message", "e2e v2"]),
    ));
    all.extend(measure(
        &setup,
        "rollback to v1",
        "beta-banner",
        json!(true),
        || setup.publisher(&["rollback", "--to", "1"]),
    ));
    all.extend(measure(&setup, "kill", "beta-banner", json!(false), || {
        setup.publisher(&["kill", "beta-banner", "--reason", "e2e"])
    }));
    all.extend(measure(
        &setup,
        "unkill",
        "beta-banner",
        json!(true),
        || setup.publisher(&["unkill", "beta-banner"]),
    ));

    let health = setup.worker.health();
    assert_eq!(
        health["version"], 5,
        "the worker serves the last version: {health}"
    );
    let history = setup.command(&["history", "--json"]).output().unwrap();
    let history: Value = serde_json::from_slice(&history.stdout).expect("history --json");
    let actions: Vec<&str> = history["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["push", "push", "rollback", "kill", "unkill"],
        "{history}"
    );

    all.sort();
    let report = json!({
        "clients": CLIENTS,
        "steps": ["push", "push", "rollback", "kill", "unkill"],
        "samples": all.len(),
        "p50_ms": percentile(&all, 0.5).as_secs_f64() * 1e3,
        "p99_ms": percentile(&all, 0.99).as_secs_f64() * 1e3,
        "max_ms": all.last().unwrap().as_secs_f64() * 1e3,
    });
    eprintln!("propagation: {report}");
    let artifacts = repo_root().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("propagation.json"), report.to_string()).unwrap();

    browser_test(&setup);
}

/// The dashboard in headless chromium: features per user, then `publisher kill` must make the
/// banner disappear without a reload, within the bound.
fn browser_test(setup: &Setup) {
    let output = Command::new("node")
        .args(["--test", "tests/browser/"])
        .env("DASHBOARD_URL", format!("{}/", setup.worker.url))
        .env(
            "KILL_CMD",
            setup.shell("kill beta-banner --reason browser-test"),
        )
        .env("UNKILL_CMD", setup.shell("unkill beta-banner"))
        .env("KILL_FLAG", "beta-banner")
        .env("IDENTITY_SECRET", IDENTITY_SECRET)
        .envs(setup.env.iter().cloned())
        .current_dir(repo_root())
        .output()
        .expect("run node --test tests/browser/");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
