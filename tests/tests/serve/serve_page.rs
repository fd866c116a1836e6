//! The status page in headless Chromium (`tests/browser_serve/status_page.test.mjs`, driven by
//! playwright-core as `tests/browser/` is): `publisher serve` on real SeaweedFS with the example
//! flags pushed to prod and staging, prod's checkout-v2 rollout ticked forward once and (its
//! health check failing) back once by the real CLI, a flag expired in the checkout, and a
//! telemetry batch for beta-banner. prod's edges are the built worker in workerd reading the
//! same bucket (purged by every publish; an hour's cache TTL, so only a purge moves it) and a
//! closed port. Signed in through its form with a token that reads prod only (a session
//! cookie, never the token), the page shows prod (not staging): the version's age, the edges
//! (the worker in sync on the pushed version, the closed port unreachable), the rollout's stage
//! and its SVG chart, the expired lint, the audit rows naming the tokens, the evaluations
//! chart; after a kill made from the kill token's own signed-in page (its session cookie alone
//! refused, with the page's CSRF token accepted) the new version, on the worker too; `?now=` 60
//! days ahead the telemetry lint; signing out ends the session. Then the console on the same
//! service (`tests/browser_serve/console.test.mjs`): the checkout is a clone of a bare remote
//! and dev needs one approval per change, so a toggle from the flags page opens a change that
//! a second token approves and the first merges onto the remote's `main`.

use std::process::Command;

use integration_tests::serve::Setup;
use integration_tests::worker::Worker;
use integration_tests::{SeaweedFs, git, publisher_bin, repo_root};

const ADMIN: &str = "page-admin-secret-0123";
const READER: &str = "page-reader-secret-0123";
const ONCALL: &str = "page-oncall-secret-0123";
const EDGE: &str = "page-edge-secret-0123";
const PURGE_TOKEN: &str = "page-purge-token-0123";
const ALICE: &str = "page-alice-secret-0123";
const BOB: &str = "page-bob-secret-0123";

#[test]
fn the_status_page_shows_the_deployment_and_changes_after_a_kill() {
    let s3 = SeaweedFs::shared();
    let setup = Setup::new(&[
        ("admin", ADMIN, "{\"*\": [admin]}"),
        ("reader", READER, "{prod: [read]}"),
        ("oncall", ONCALL, "{prod: [kill]}"),
        ("edge", EDGE, "{prod: [telemetry]}"),
        ("alice", ALICE, "{\"*\": [read, edit, kill, publish]}"),
        ("bob", BOB, "{\"*\": [read, approve]}"),
    ]);
    let checkout = setup.checkout();
    // The rollout: no soak, and a health check this test turns on and off.
    let healthy = setup.path().join("healthy");
    let rollout = checkout.join("flags/checkout-v2.yaml");
    let text = std::fs::read_to_string(&rollout)
        .unwrap()
        .replace("soak: 1h", "soak: 0s")
        .replace("soak: 4h", "soak: 0s")
        .replace(
            "health: { url: \"https://status.example.com/checkout/healthy\" }",
            &format!("health: {{ command: \"test -e {}\" }}", healthy.display()),
        );
    assert!(text.contains("test -e"), "the example's health check moved");
    std::fs::write(&rollout, text).unwrap();
    // A flag past its expiry date: a lint, not an error (the push goes through).
    let expired = std::fs::read_to_string(checkout.join("flags/beta-banner.yaml"))
        .unwrap()
        .replace("key: beta-banner", "key: old-promo")
        .replace("expires: 2027-02-28", "expires: 2020-01-01")
        .replace("review-by: 2027-01-15\n", "");
    std::fs::write(checkout.join("flags/old-promo.yaml"), expired).unwrap();
    // The checkout is a clone of a bare remote (`git:` below): the console's toggles open
    // change requests whose merges land on the remote's `main`.
    let remote = setup.path().join("remote.git");
    let remote_path = remote.display().to_string();
    git(
        setup.path(),
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            &remote_path,
        ],
    );
    for args in [
        &["init", "--quiet", "--initial-branch=main"][..],
        &["config", "user.name", "Setup"],
        &["config", "user.email", "setup@example.com"],
        &["add", "."],
        &["commit", "--quiet", "-m", "flags"],
        &["remote", "add", "origin", &remote_path],
        &["push", "--quiet", "-u", "origin", "main"],
    ] {
        git(&checkout, args);
    }
    // dev needs one approval for a change; prod and staging none (the pushes below go through).
    let config = setup.write(
        "serve.yaml",
        "git: {remote: origin, branch: main, poll: 0s}\n\
         environments:\n  - {name: prod}\n  - {name: staging}\n  - {name: dev, approval: {ttl: 1h}}\n",
    );
    let bucket = "serve-page";
    let store = s3.bucket(bucket);
    let worker = Worker::start(&[
        ("FLAGS_ENV", "prod"),
        ("ORIGIN_KIND", "s3"),
        ("S3_ENDPOINT", &s3.endpoint),
        ("S3_BUCKET", bucket),
        ("S3_REGION", "us-east-1"),
        ("S3_ACCESS_KEY_ID", &s3.access_key),
        ("S3_SECRET_ACCESS_KEY", &s3.secret_key),
        ("PURGE_TOKEN", PURGE_TOKEN),
        ("CACHE_TTL_S", "3600"),
    ]);
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let mut env = s3.aws_env();
    env.push(("FLAGS_PURGE_TOKEN", PURGE_TOKEN.to_owned()));
    let (worker_edge, dead_edge) = (format!("prod={}", worker.url), format!("prod={dead}"));
    let service = setup.serve(
        &store,
        &[
            "--config",
            &config,
            "--purge",
            &worker.url,
            "--edge",
            &worker_edge,
            "--edge",
            &dead_edge,
        ],
        &env,
    );
    for env in ["prod", "staging"] {
        let pushed = service.request(
            "POST",
            &format!("/api/v1/environments/{env}/push"),
            Some(ADMIN),
            None,
        );
        assert_eq!(pushed.status, 200, "{}", pushed.body);
    }
    let tick = |expect: &str| {
        let output = Command::new(publisher_bin())
            .args(["rollout", "tick", "--env", "prod", "--store", &store])
            .args(["--author", "cron", "--purge", &worker.url])
            .envs(env.clone())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(expect),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    std::fs::write(&healthy, "").unwrap();
    tick("stage 1 -> 2");
    std::fs::remove_file(&healthy).unwrap();
    tick("stage 2 -> 1");

    let batch = serde_json::json!({"environment": "prod", "counts": [
        {"flag": "beta-banner", "variant": "on", "count": 5},
        {"flag": "beta-banner", "variant": "off", "count": 3},
    ]});
    let sent = service.request("POST", "/api/v1/telemetry", Some(EDGE), Some(&batch));
    assert_eq!(sent.status, 202, "{}", sent.body);
    let checked = service.request(
        "POST",
        "/api/v1/environments/prod/drift",
        Some(READER),
        None,
    );
    assert_eq!(checked.status, 200, "{}", checked.body);
    let later = (chrono::Utc::now() + chrono::Duration::days(60)).to_rfc3339();

    // The API carries the same fleet: the worker on the store's version, the closed port not.
    let shown = service.request("GET", "/api/v1/environments/prod", Some(READER), None);
    assert_eq!(shown.status, 200, "{}", shown.body);
    let shown: serde_json::Value = serde_json::from_str(&shown.body).unwrap();
    let fleet = &shown["fleet"];
    assert_eq!(
        (
            &fleet["endpoints"],
            &fleet["in_sync"],
            &fleet["unreachable"]
        ),
        (&2.into(), &1.into(), &1.into()),
        "{shown:#}"
    );
    assert_eq!(
        fleet["versions"][0]["version"], shown["version"],
        "{shown:#}"
    );

    let output = Command::new("node")
        .args(["--test", "tests/browser_serve/status_page.test.mjs"])
        .env("SERVE_URL", &service.base)
        .env("READ_TOKEN", READER)
        .env("KILL_TOKEN", ONCALL)
        .env("LATER", later)
        .env("WORKER_URL", &worker.url)
        .env("DEAD_URL", &dead)
        .current_dir(repo_root())
        .output()
        .expect("run node --test tests/browser_serve/");
    assert!(
        output.status.success(),
        "browser test failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // The console, after the status page (it kills and unkills in prod too).
    let output = Command::new("node")
        .args(["--test", "tests/browser_serve/console.test.mjs"])
        .env("SERVE_URL", &service.base)
        .env("READ_TOKEN", READER)
        .env("ALICE_TOKEN", ALICE)
        .env("BOB_TOKEN", BOB)
        .env("WORKER_URL", &worker.url)
        .env("REMOTE", &remote_path)
        .current_dir(repo_root())
        .output()
        .expect("run node --test tests/browser_serve/console.test.mjs");
    assert!(
        output.status.success(),
        "console browser test failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An edge that accepts connections and never answers (a listener nobody accepts on) costs the
/// page at most `edge_timeout`: the page answers, naming it unreachable because it timed out, in
/// every environment it serves, and the API's fleet counts it.
#[test]
fn an_edge_that_never_answers_shows_as_timed_out() {
    let setup = Setup::new(&[("admin", ADMIN, "{\"*\": [admin]}")]);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}", silent.local_addr().unwrap());
    let config = setup.write("serve.yaml", "edge_timeout: 300ms\n");
    let store = setup.path().join("store").display().to_string();
    let (prod, staging) = (format!("prod={silent}"), format!("staging={silent}"));
    let service = setup.serve(
        &store,
        &[
            "--config", &config, "--env", "prod", "--env", "staging", "--edge", &prod, "--edge",
            &staging,
        ],
        &[],
    );
    let pushed = service.request("POST", "/api/v1/environments/prod/push", Some(ADMIN), None);
    assert_eq!(pushed.status, 200, "{}", pushed.body);
    let page = service.request("GET", "/", Some(ADMIN), None);
    assert_eq!(page.status, 200, "{}", page.body);
    let row = format!("<tr class=\"edge unreachable\" data-url=\"{silent}\">");
    assert_eq!(page.body.matches(&row).count(), 2, "{}", page.body);
    assert_eq!(
        page.body.matches("unreachable: timed out").count(),
        2,
        "{}",
        page.body
    );
    let shown = service.request("GET", "/api/v1/environments/prod", Some(ADMIN), None);
    let shown: serde_json::Value = serde_json::from_str(&shown.body).unwrap();
    assert_eq!(shown["fleet"]["unreachable"], 1, "{shown:#}");
    assert_eq!(shown["fleet"]["in_sync"], 0, "{shown:#}");
}
