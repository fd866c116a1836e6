//! A flag changed through the API end to end: `publisher serve` over SeaweedFS with its flags
//! checkout a clone of a real bare Git remote; a JSON Patch opens a change request (a commit on
//! a branch of the remote), another token approves it, the merge lands on `main` and publishes
//! to the environment, and the worker in workerd, purged, answers the new value.

use std::time::{Duration, Instant};

use integration_tests::deployment::{Deployment, Spec};
use integration_tests::serve::{Service, Setup};
use integration_tests::{copy_dir, git, repo_root};
use serde_json::json;

const ENV: &str = "dev";
const EDITOR: &str = "editor-secret-0123456789";
const APPROVER: &str = "approver-secret-0123456789";

fn clone_as(dir: &std::path::Path, remote: &std::path::Path, name: &str) -> std::path::PathBuf {
    git(
        dir,
        &["clone", "--quiet", &remote.display().to_string(), name],
    );
    let clone = dir.join(name);
    git(&clone, &["config", "user.name", "Alice"]);
    git(&clone, &["config", "user.email", "alice@example.com"]);
    clone
}

#[test]
fn a_patch_reviewed_and_merged_through_the_api_reaches_the_edge() {
    let setup = Setup::without_checkout(&[
        ("editor", EDITOR, "{dev: [edit, publish]}"),
        ("approver", APPROVER, "{dev: [approve]}"),
    ]);
    let dir = setup.path();
    let remote = dir.join("origin.git");
    git(
        dir,
        &["init", "--quiet", "--bare", "-b", "main", "origin.git"],
    );
    let seed = clone_as(dir, &remote, "seed");
    git(&seed, &["checkout", "--quiet", "-B", "main"]);
    copy_dir(&repo_root().join("examples/flags"), &seed.join("config"));
    git(&seed, &["add", "."]);
    git(&seed, &["commit", "--quiet", "-m", "flags"]);
    git(&seed, &["push", "--quiet", "origin", "main"]);
    let checkout = clone_as(dir, &remote, "checkout-repo");
    let flags = checkout.join("config");

    let deployment = Deployment::start(&Spec {
        label: "change-requests",
        environment: ENV,
        identity_secret: "change-requests-identity",
        purge_token: "change-requests-purge",
        bindings: &[],
        assets: None,
    });
    deployment.publisher(&["push", &flags.display().to_string()]);
    let worker = &deployment.worker;
    worker.wait_for_health(Duration::from_secs(20), |h| h["loaded"] == true);
    let banner = || {
        let reply = worker.post(
            "/ofrep/v1/evaluate/flags/beta-banner",
            &json!({"context": {}}),
            &[],
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["value"].clone()
    };
    assert_eq!(banner(), json!(false));

    let config = setup.write(
        "serve.yaml",
        &format!(
            "store: {}\nflags: {}\ntokens: {}\npurge: {}\ngit: {{remote: origin, branch: main}}\n\
             environments:\n  - {{name: dev, approval: {{ttl: 1h}}, auto_publish: true}}\n",
            deployment.store,
            flags.display(),
            setup.tokens().display(),
            worker.url
        ),
    );
    let service = Service::start(&["--config", &config], &deployment.env);

    let read = service.request("GET", "/api/v1/flags/beta-banner", Some(EDITOR), None);
    assert_eq!(read.status, 200, "{}", read.body);
    let etag = read.header("etag").expect("ETag").to_owned();
    let patched = service.send(
        "PATCH",
        "/api/v1/flags/beta-banner",
        Some(EDITOR),
        &[("If-Match", &etag)],
        Some((
            "application/json-patch+json",
            json!([{"op": "add", "path": "/environments/dev/fallthrough", "value": "on"}])
                .to_string()
                .into_bytes(),
        )),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    let id = patched.json()["change"]["id"]
        .as_u64()
        .expect("a change id");
    let branch = format!("changes/{id}");
    let diff = git(&remote, &["diff", "main", &branch]);
    assert!(diff.contains("+    fallthrough: on"), "{diff}");

    let own = service.request(
        "POST",
        &format!("/api/v1/changes/{id}/approve"),
        Some(EDITOR),
        None,
    );
    assert_eq!(own.status, 403, "{}", own.body);
    let approved = service.request(
        "POST",
        &format!("/api/v1/changes/{id}/approve"),
        Some(APPROVER),
        None,
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    let merged = service.request(
        "POST",
        &format!("/api/v1/changes/{id}/merge"),
        Some(EDITOR),
        None,
    );
    assert_eq!(merged.status, 200, "{}", merged.body);
    let merged = merged.json();
    let commit = merged["commit"].as_str().unwrap();
    assert_eq!(git(&remote, &["rev-parse", "main"]), commit);
    assert_eq!(merged["published"]["dev"]["published"], true, "{merged}");
    assert_eq!(
        merged["published"]["dev"]["purge"]["status"], "done",
        "{merged}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    while banner() != json!(true) {
        assert!(
            Instant::now() < deadline,
            "the edge never served the merged change: {}",
            worker.health()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(service.stop(), "serve stops cleanly");
}
