//! `publisher serve` with a config file, publishing to real SeaweedFS: approvals (a pending
//! change shows its diff, its author cannot approve it, another token with `approve` can,
//! it expires; kill never waits) and the signed Git webhook (a real `git` repository pushed
//! to; a bad, missing or tampered signature is refused with 401 and changes nothing; a good
//! one updates the checkout and publishes to the auto-publish environments; a redelivery is a
//! no-op).

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use integration_tests::copy_dir;
use integration_tests::serve::{Reply, Service, Setup};
use integration_tests::{SeaweedFs, git, repo_root};
use serde_json::{Value, json};
use sha2::Sha256;

const CI: &str = "ci-secret-0123456789";
const LEAD: &str = "lead-secret-0123456789";
const READER: &str = "reader-secret-0123456789";
const ONCALL: &str = "oncall-secret-0123456789";
const HOOK_SECRET: &str = "webhook-secret-0123456789";

const TOKENS: &[(&str, &str, &str)] = &[
    (
        "ci",
        CI,
        "{dev: [publish], prod: [publish, approve], qa: [publish]}",
    ),
    ("lead", LEAD, "{prod: [approve], qa: [approve]}"),
    ("reader", READER, "{dev: [read], prod: [read], qa: [read]}"),
    ("oncall", ONCALL, "{prod: [kill]}"),
];

/// Starts serve on the setup's checkout with dev (auto-publish), prod (auto-publish, approval
/// for an hour) and qa (approval for one second), the webhook on `main` (pending approvals
/// are kept in the store); everything comes from the config file (paths in it relative to it).
fn start(setup: &Setup, s3: &SeaweedFs, bucket: &str) -> Service {
    setup.write("hook.secret", &format!("{HOOK_SECRET}\n"));
    let config = setup.write(
        "serve.yaml",
        &format!(
            "store: {}\nflags: checkout\ntokens: tokens.yaml\nenvironments:\n  - name: dev\n    auto_publish: true\n  \
             - name: prod\n    auto_publish: true\n    approval: {{ttl: 1h}}\n  - name: qa\n    approval: {{ttl: 1s}}\n\
             webhook:\n  branch: main\n  secret_file: hook.secret\n\
             limits: {{per_token_per_second: 1000, per_token_burst: 1000}}\n",
            s3.bucket(bucket),
        ),
    );
    Service::start(&["--config", &config], &s3.aws_env())
}

fn get(service: &Service, path: &str, token: &str) -> Value {
    let reply = service.request("GET", path, Some(token), None);
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
    reply.json()
}

fn post(service: &Service, path: &str, token: &str, body: Value) -> Reply {
    service.request("POST", path, Some(token), Some(&body))
}

fn version(service: &Service, env: &str) -> Option<u64> {
    get(service, &format!("/api/v1/environments/{env}"), READER)["version"].as_u64()
}

fn pending(service: &Service, env: &str) -> Vec<Value> {
    get(
        service,
        &format!("/api/v1/environments/{env}/approvals"),
        READER,
    )["pending"]
        .as_array()
        .unwrap()
        .clone()
}

/// The value of the sample `flags_approvals_pending{env="<env>"}`, 0 when absent.
fn approvals_gauge(service: &Service, env: &str) -> f64 {
    let text = service.request("GET", "/metrics", None, None).body;
    let prefix = format!("flags_approvals_pending{{env=\"{env}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[test]
fn a_change_to_an_approval_environment_waits_for_another_token() {
    let s3 = SeaweedFs::shared();
    let setup = Setup::new(TOKENS);
    let service = start(&setup, &s3, "serve-approvals");

    // A push to prod is held, with its diff; nothing is published.
    let reply = post(
        &service,
        "/api/v1/environments/prod/push",
        CI,
        json!({"message": "launch"}),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let proposed = reply.json()["pending"].clone();
    let id = proposed["id"].as_u64().unwrap();
    assert_eq!(proposed["author"], "ci");
    assert_eq!(proposed["action"], "push");
    assert_eq!(version(&service, "prod"), None);
    let listed = pending(&service, "prod");
    assert_eq!(listed.len(), 1);
    let added = listed[0]["diff"]["summary"]["added"].as_array().unwrap();
    assert!(
        added.iter().any(|k| k == "beta-banner") && added.len() == 11,
        "the diff lists the 11 example flags as added: {}",
        listed[0]["diff"]
    );
    assert_eq!(approvals_gauge(&service, "prod"), 1.0);
    let page = service.request("GET", "/", Some(READER), None);
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(&format!("data-pending={id}>#{id} push by <b>ci</b>")),
        "the status page lists the pending change: {}",
        page.body
    );

    // The author cannot approve it (though ci holds approve in prod); a reader lacks the role.
    let own = post(
        &service,
        &format!("/api/v1/environments/prod/approvals/{id}/approve"),
        CI,
        json!({}),
    );
    assert_eq!(own.status, 403, "{}", own.body);
    assert!(
        own.json()["detail"]
            .as_str()
            .unwrap()
            .contains("cannot approve"),
        "{}",
        own.body
    );
    let reader = post(
        &service,
        &format!("/api/v1/environments/prod/approvals/{id}/approve"),
        READER,
        json!({}),
    );
    assert_eq!(reader.status, 403, "{}", reader.body);
    assert_eq!(
        pending(&service, "prod").len(),
        1,
        "refusals leave it pending"
    );
    assert_eq!(version(&service, "prod"), None);

    // Another token with approve publishes it: recorded as ci's, approved by lead.
    let approved = post(
        &service,
        &format!("/api/v1/environments/prod/approvals/{id}/approve"),
        LEAD,
        json!({}),
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    let approved = approved.json();
    assert_eq!(approved["published"], true);
    assert_eq!(approved["version"], 1);
    assert_eq!(approved["approved"]["by"], "lead");
    assert_eq!(version(&service, "prod"), Some(1));
    // The approved push started checkout-v2's rollout schedule at its first stage.
    let rollouts = get(&service, "/api/v1/environments/prod/rollouts", READER);
    let checkout_v2 = &rollouts["rollouts"][0];
    assert_eq!(checkout_v2["state"]["stage"], 1, "{rollouts}");
    assert_eq!(checkout_v2["live_percent"], 1.0, "{rollouts}");
    assert!(pending(&service, "prod").is_empty());
    assert_eq!(approvals_gauge(&service, "prod"), 0.0);
    let audit = get(&service, "/api/v1/environments/prod/audit", READER);
    let entry = &audit["entries"][0];
    assert_eq!(entry["who"], "ci", "{entry}");
    assert_eq!(entry["message"], "launch (approved by lead)", "{entry}");
    assert!(entry["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    // Approving twice says it was approved, and by whom (the record stays in the store).
    let again = post(
        &service,
        &format!("/api/v1/environments/prod/approvals/{id}/approve"),
        LEAD,
        json!({}),
    );
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("already approved by"), "{}", again.body);

    // Kill never waits for approval.
    let killed = post(
        &service,
        "/api/v1/environments/prod/flags/beta-banner/kill",
        ONCALL,
        json!({"reason": "incident"}),
    );
    assert_eq!(killed.status, 200, "{}", killed.body);
    assert_eq!(killed.json()["version"], 2);
    assert!(pending(&service, "prod").is_empty());

    // A rollback is held too, and a rejection drops it.
    let reply = post(
        &service,
        "/api/v1/environments/prod/rollback",
        CI,
        json!({"to": 1}),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let rollback = reply.json()["pending"].clone();
    assert_eq!(rollback["rollback_to"], 1);
    assert_eq!(rollback["base_version"], 2);
    assert_eq!(
        rollback["diff"]["summary"]["changed"],
        json!(["beta-banner"]),
        "{rollback}"
    );
    let id = rollback["id"].as_u64().unwrap();
    let rejected = post(
        &service,
        &format!("/api/v1/environments/prod/approvals/{id}/reject"),
        LEAD,
        json!({}),
    );
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    assert!(pending(&service, "prod").is_empty());
    assert_eq!(version(&service, "prod"), Some(2));

    // A pending change expires (qa: one second): approving it then is 410 and publishes nothing.
    let reply = post(&service, "/api/v1/environments/qa/push", CI, json!({}));
    assert_eq!(reply.status, 202, "{}", reply.body);
    let id = reply.json()["pending"]["id"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let late = post(
        &service,
        &format!("/api/v1/environments/qa/approvals/{id}/approve"),
        LEAD,
        json!({}),
    );
    assert_eq!(late.status, 410, "{}", late.body);
    assert!(late.json()["detail"].as_str().unwrap().contains("expired"));
    assert_eq!(version(&service, "qa"), None);
    assert!(pending(&service, "qa").is_empty());

    // dev has no approval rule: a push publishes at once.
    let reply = post(&service, "/api/v1/environments/dev/push", CI, json!({}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["version"], 1);
}

/// Pending changes are kept in the store: after a restart on the same state the
/// change is still pending with its author, diff and expiry (its author still cannot approve
/// it), one that expired while the service was down is gone, and a second token's approval
/// publishes it.
#[test]
fn pending_changes_survive_a_restart() {
    let s3 = SeaweedFs::shared();
    let setup = Setup::new(TOKENS);
    let bucket = "serve-approvals-restart";
    let service = start(&setup, &s3, bucket);
    let reply = post(
        &service,
        "/api/v1/environments/prod/push",
        CI,
        json!({"message": "launch"}),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let proposed = reply.json()["pending"].clone();
    let id = proposed["id"].as_u64().unwrap();
    let reply = post(&service, "/api/v1/environments/qa/push", CI, json!({}));
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert!(service.stop(), "SIGTERM ends serve cleanly");
    // qa's change (one second to live) expires while the service is down.
    std::thread::sleep(Duration::from_millis(1500));

    let service = start(&setup, &s3, bucket);
    assert_eq!(
        pending(&service, "prod"),
        std::slice::from_ref(&proposed),
        "the same change, author, diff and expiry"
    );
    assert!(pending(&service, "qa").is_empty(), "expired while down");
    assert_eq!(approvals_gauge(&service, "prod"), 1.0);
    assert_eq!(version(&service, "prod"), None);
    let approve = format!("/api/v1/environments/prod/approvals/{id}/approve");
    let own = post(&service, &approve, CI, json!({}));
    assert_eq!(own.status, 403, "{}", own.body);
    let approved = post(&service, &approve, LEAD, json!({}));
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.json()["version"], 1);
    assert_eq!(version(&service, "prod"), Some(1));
    let audit = get(&service, "/api/v1/environments/prod/audit", READER);
    assert_eq!(audit["entries"][0]["who"], "ci");
    assert_eq!(audit["entries"][0]["message"], "launch (approved by lead)");
    // Ids go on from the store's: a new change does not take an old one's id.
    edit(
        &setup,
        "flags/beta-banner.yaml",
        "default: off",
        "default: on",
    );
    let reply = post(&service, "/api/v1/environments/prod/push", CI, json!({}));
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert!(reply.json()["pending"]["id"].as_u64().unwrap() > id + 1);
}

/// Proposes `path` with `body` as ci (202) and approves it as lead; returns the approval's answer.
fn propose_and_approve(service: &Service, path: &str, body: Value) -> Value {
    let reply = post(service, path, CI, body);
    assert_eq!(reply.status, 202, "{path}: {}", reply.body);
    let id = reply.json()["pending"]["id"].as_u64().unwrap();
    let approved = post(
        service,
        &format!("/api/v1/environments/prod/approvals/{id}/approve"),
        LEAD,
        json!({}),
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    approved.json()
}

/// Replaces `from` by `to` in the checkout's `file`.
fn edit(setup: &Setup, file: &str, from: &str, to: &str) {
    let path = setup.checkout().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has {from:?}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

/// In an approval environment a canary push and a promote are publishes: each waits for
/// another token, and an approved promote promotes the canary the approver saw, not one pushed
/// after it. An abort (back to the approved stable flags) never waits.
#[test]
fn canary_pushes_and_promotions_wait_for_approval_and_aborts_do_not() {
    let s3 = SeaweedFs::shared();
    let setup = Setup::new(TOKENS);
    let service = start(&setup, &s3, "serve-approved-canary");
    let env = |service: &Service| get(service, "/api/v1/environments/prod", READER);
    propose_and_approve(&service, "/api/v1/environments/prod/push", json!({}));
    let stable = env(&service)["content_hash"].clone();

    edit(
        &setup,
        "flags/beta-banner.yaml",
        "default: off",
        "default: on",
    );
    let reply = post(
        &service,
        "/api/v1/environments/prod/push",
        CI,
        json!({"canary": 10}),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let pending_canary = reply.json()["pending"].clone();
    assert_eq!(pending_canary["action"], "canary", "{pending_canary}");
    assert_eq!(pending_canary["percent"], 10);
    assert_eq!(
        env(&service)["canary"],
        Value::Null,
        "nothing published yet"
    );
    let id = pending_canary["id"].as_u64().unwrap();
    let approved = post(
        &service,
        &format!("/api/v1/environments/prod/approvals/{id}/approve"),
        LEAD,
        json!({}),
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    let first_canary = env(&service)["canary"]["content_hash"].clone();
    assert!(first_canary.is_string(), "{}", approved.body);

    // The promote waits, showing what the stable users would get.
    let reply = post(&service, "/api/v1/environments/prod/promote", CI, json!({}));
    assert_eq!(reply.status, 202, "{}", reply.body);
    let promote = reply.json()["pending"].clone();
    assert_eq!(promote["action"], "promote");
    assert_eq!(
        promote["canary"], first_canary,
        "pinned to the canary it promotes"
    );
    assert_eq!(
        promote["diff"]["summary"]["changed"],
        json!(["beta-banner"]),
        "{promote}"
    );
    let stale_id = promote["id"].as_u64().unwrap();
    // The canary changes meanwhile (approved): the earlier promote no longer applies.
    edit(
        &setup,
        "flags/new-chart.yaml",
        "default: off",
        "default: on",
    );
    propose_and_approve(
        &service,
        "/api/v1/environments/prod/push",
        json!({"canary": 10}),
    );
    let second_canary = env(&service)["canary"]["content_hash"].clone();
    assert_ne!(second_canary, first_canary);
    let before = version(&service, "prod");
    let stale = post(
        &service,
        &format!("/api/v1/environments/prod/approvals/{stale_id}/approve"),
        LEAD,
        json!({}),
    );
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(
        stale.json()["detail"]
            .as_str()
            .unwrap()
            .contains("changed since"),
        "{}",
        stale.body
    );
    assert_eq!(version(&service, "prod"), before, "nothing published");

    let promoted = propose_and_approve(&service, "/api/v1/environments/prod/promote", json!({}));
    assert_eq!(promoted["record"]["action"], "promote", "{promoted}");
    let after = env(&service);
    assert_eq!(after["canary"], Value::Null);
    assert_eq!(after["content_hash"], second_canary, "{after}");

    // An abort publishes at once, by the on-call token.
    edit(
        &setup,
        "flags/beta-banner.yaml",
        "default: on",
        "default: off",
    );
    propose_and_approve(
        &service,
        "/api/v1/environments/prod/push",
        json!({"canary": 5}),
    );
    let aborted = post(
        &service,
        "/api/v1/environments/prod/abort",
        ONCALL,
        json!({}),
    );
    assert_eq!(aborted.status, 200, "{}", aborted.body);
    assert_eq!(aborted.json()["record"]["action"], "abort");
    let after = env(&service);
    assert_eq!(after["canary"], Value::Null);
    assert_eq!(after["content_hash"], second_canary);
    assert_ne!(after["content_hash"], stable);
    assert!(pending(&service, "prod").is_empty());
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn deliver(service: &Service, delivery: &str, signature: Option<&str>, body: &[u8]) -> Reply {
    let mut headers = vec![("X-GitHub-Event", "push"), ("X-GitHub-Delivery", delivery)];
    if let Some(signature) = signature {
        headers.push(("X-Hub-Signature-256", signature));
    }
    service.send(
        "POST",
        "/api/v1/webhooks/git",
        None,
        &headers,
        Some(("application/json", body.to_vec())),
    )
}

fn push_event(branch: &str, after: &str) -> Vec<u8> {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "before": "0000000000000000000000000000000000000000",
        "after": after,
        "pusher": {"name": "alice"},
        "repository": {"full_name": "acme/flags"},
    })
    .to_string()
    .into_bytes()
}

/// Commits `edit` of beta-banner.yaml in `work` and pushes it to origin; returns the commit.
fn commit_and_push(work: &Path, from: &str, to: &str, message: &str) -> String {
    let file = work.join("flags/beta-banner.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(from));
    std::fs::write(&file, text.replacen(from, to, 1)).unwrap();
    git(work, &["commit", "--quiet", "-am", message]);
    git(work, &["push", "--quiet", "origin", "main"]);
    git(work, &["rev-parse", "HEAD"])
}

#[test]
fn a_signed_push_event_publishes_the_pushed_commit_once() {
    let s3 = SeaweedFs::shared();
    let setup = Setup::without_checkout(TOKENS);
    let dir = setup.path();
    // A real repository: origin (bare), a developer's clone, and the service's checkout.
    let origin = dir.join("origin.git");
    let work = dir.join("work");
    let checkout = setup.checkout();
    git(
        dir,
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            origin.to_str().unwrap(),
        ],
    );
    git(
        dir,
        &[
            "clone",
            "--quiet",
            origin.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    git(&work, &["checkout", "--quiet", "-B", "main"]);
    git(&work, &["config", "user.name", "Alice"]);
    git(&work, &["config", "user.email", "alice@example.com"]);
    copy_dir(&repo_root().join("examples/flags"), &work);
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "flags"]);
    git(&work, &["push", "--quiet", "origin", "main"]);
    git(
        dir,
        &[
            "clone",
            "--quiet",
            origin.to_str().unwrap(),
            checkout.to_str().unwrap(),
        ],
    );
    let first = git(&checkout, &["rev-parse", "HEAD"]);
    let service = start(&setup, &s3, "serve-webhook");

    let pushed = commit_and_push(
        &work,
        "default: off",
        "default: on",
        "beta banner on by default",
    );
    let event = push_event("main", &pushed);
    let good = sign(HOOK_SECRET, &event);

    // Refused: no signature, a signature under another secret, a body changed after signing.
    let mut tampered = event.clone();
    let at = tampered.len() - 3;
    tampered[at] ^= 0x01;
    for (what, signature, body) in [
        ("missing", None, &event),
        ("wrong secret", Some(sign("not-the-secret", &event)), &event),
        ("tampered body", Some(good.clone()), &tampered),
        ("malformed", Some("sha256=xyz".to_owned()), &event),
    ] {
        let reply = deliver(&service, "d-refused", signature.as_deref(), body);
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    assert_eq!(version(&service, "dev"), None, "nothing published");
    assert_eq!(
        git(&checkout, &["rev-parse", "HEAD"]),
        first,
        "checkout untouched"
    );

    // Signed: the checkout moves to the pushed commit, dev publishes it, prod waits for approval.
    let reply = deliver(&service, "d-1", Some(&good), &event);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["commit"], pushed.as_str());
    assert_eq!(git(&checkout, &["rev-parse", "HEAD"]), pushed);
    let envs = answer["environments"].as_array().unwrap();
    let dev = envs.iter().find(|e| e["env"] == "dev").unwrap();
    assert_eq!(dev["published"], true, "{dev}");
    assert_eq!(dev["record"]["source_commit"], pushed.as_str());
    assert_eq!(dev["record"]["author"], "webhook");
    let prod = envs.iter().find(|e| e["env"] == "prod").unwrap();
    assert_eq!(prod["pending"]["author"], "webhook", "{prod}");
    assert!(
        envs.iter().all(|e| e["env"] != "qa"),
        "qa is not auto-published"
    );
    assert_eq!(version(&service, "dev"), Some(1));
    assert_eq!(pending(&service, "prod").len(), 1);
    // What dev serves is the pushed commit's: beta-banner on by default.
    let served = get(&service, "/api/v1/environments/dev/diff?from=1", READER);
    assert!(
        served["flags"].as_array().unwrap().is_empty(),
        "checkout equals version 1: {served}"
    );

    // Redelivered: the same answer, nothing done again.
    let again = deliver(&service, "d-1", Some(&good), &event);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["redelivery"], true);
    assert_eq!(again.json()["commit"], pushed.as_str());
    assert_eq!(version(&service, "dev"), Some(1));
    assert_eq!(
        pending(&service, "prod").len(),
        1,
        "no second pending change"
    );
    let history = get(&service, "/api/v1/environments/dev/history", READER);
    assert_eq!(history["versions"].as_array().unwrap().len(), 1);

    // Another branch is ignored; the next push to main publishes the next version.
    let other = push_event("feature", &pushed);
    let reply = deliver(&service, "d-2", Some(&sign(HOOK_SECRET, &other)), &other);
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert!(reply.json()["ignored"].is_string());
    let next = commit_and_push(
        &work,
        "default: on",
        "default: off",
        "beta banner off again",
    );
    let event = push_event("main", &next);
    let reply = deliver(&service, "d-3", Some(&sign(HOOK_SECRET, &event)), &event);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(version(&service, "dev"), Some(2));
    let audit = get(&service, "/api/v1/environments/dev/audit", READER);
    assert_eq!(audit["entries"][0]["commit"], next.as_str());
    assert_eq!(audit["entries"][0]["who"], "webhook");
    assert!(
        audit["entries"][0]["message"]
            .as_str()
            .unwrap()
            .contains("pushed by alice")
    );
}

/// `/readyz` answers 503 while the store is unreachable (`/healthz` stays 200), 200 with it.
#[test]
fn readyz_follows_the_store() {
    let s3 = SeaweedFs::shared();
    let setup = Setup::new(&[("reader", READER, "{prod: [read]}")]);
    // A port nothing listens on: bound, then released.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut env = s3.aws_env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", format!("http://{dead}")));
    env.push(("AWS_MAX_ATTEMPTS", "1".to_owned()));
    let bucket = s3.bucket("serve-readyz");
    let down = setup.serve(&bucket, &[], &env);
    assert_eq!(down.request("GET", "/healthz", None, None).status, 200);
    let ready = down.request("GET", "/readyz", None, None);
    assert_eq!(ready.status, 503, "{}", ready.body);
    let up = setup.serve(&bucket, &[], &s3.aws_env());
    assert_eq!(up.request("GET", "/readyz", None, None).status, 200);
}
