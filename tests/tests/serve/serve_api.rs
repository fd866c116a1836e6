//! `publisher serve` as a real process on a loopback port, publishing to real SeaweedFS: every
//! mutating route refuses a missing, wrong and under-privileged token (401/401/403, nothing
//! published) and accepts the right one, auditing the token's name and the client address;
//! publishes to one environment are serialized (two concurrent kills both land); canaries are
//! promoted and aborted, rollouts ticked and resumed; the read routes answer; SIGTERM shuts
//! down cleanly. `/metrics`, logs and limits: `serve_metrics.rs`.

use integration_tests::SeaweedFs;
use integration_tests::serve::{Service, Setup};
use serde_json::{Value, json};

const CI: &str = "ci-secret-0123456789";
const READER: &str = "reader-secret-0123456789";
const ONCALL: &str = "oncall-secret-0123456789";
const ADMIN: &str = "admin-secret-0123456789";
const GENEROUS_LIMITS: &str = "limits: {per_token_per_second: 1000, per_token_burst: 1000}\n";

/// The test's scratch directory and the service on it, publishing to `bucket`.
fn start(s3: &SeaweedFs, bucket: &str) -> (Setup, Service) {
    let setup = Setup::new(&[
        ("ci", CI, "{dev: [publish], prod: [read]}"),
        ("reader", READER, "{dev: [read], prod: [read]}"),
        ("oncall", ONCALL, "{prod: [kill]}"),
        ("admin", ADMIN, "{\"*\": [admin]}"),
    ]);
    // Limits well above what one test sends (the burst test sets its own).
    let config = setup.write("serve.yaml", GENEROUS_LIMITS);
    let service = setup.serve(&s3.bucket(bucket), &["--config", &config], &s3.aws_env());
    (setup, service)
}

fn version(service: &Service, env: &str) -> Option<u64> {
    service
        .request(
            "GET",
            &format!("/api/v1/environments/{env}"),
            Some(ADMIN),
            None,
        )
        .json()["version"]
        .as_u64()
}

/// Checks one mutating route: 401 without a token and with a wrong one, 403 with `under`, and
/// nothing published by any of them; then 200 with `right`, whose audit entry names it.
fn check_route(
    service: &Service,
    env: &str,
    path: &str,
    body: Value,
    under: &str,
    right: (&str, &str),
) -> Value {
    let before = version(service, env);
    for (token, status) in [(None, 401), (Some("not-a-token"), 401), (Some(under), 403)] {
        let reply = service.request("POST", path, token, Some(&body));
        assert_eq!(
            reply.status, status,
            "{path} with {token:?}: {}",
            reply.body
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{path}"
        );
        assert_eq!(reply.json()["status"], status);
        if status == 401 {
            assert!(
                reply
                    .header("www-authenticate")
                    .is_some_and(|v| v.starts_with("Bearer"))
            );
        }
        assert_eq!(
            version(service, env),
            before,
            "{path} refused with {token:?} but published"
        );
    }
    let (name, secret) = right;
    let reply = service.request("POST", path, Some(secret), Some(&body));
    assert_eq!(reply.status, 200, "{path} as {name}: {}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["published"], true, "{answer}");
    let published = answer["version"].as_u64().unwrap();
    assert_eq!(Some(published), version(service, env));
    assert_eq!(answer["record"]["author"], name);
    assert_eq!(answer["purge"]["status"], "disabled");
    // Any role implies read of the same environment.
    let audit = service.request(
        "GET",
        &format!("/api/v1/environments/{env}/audit"),
        Some(secret),
        None,
    );
    assert_eq!(audit.status, 200, "{}", audit.body);
    let newest = &audit.json()["entries"][0];
    assert_eq!(newest["version"], published);
    assert_eq!(newest["who"], name, "audit names the token: {newest}");
    let client = newest["client"]
        .as_str()
        .expect("audit has the client address");
    assert!(client.starts_with("127.0.0.1:"), "{client}");
    answer
}

#[test]
fn roles_are_enforced_and_every_publish_is_audited() {
    let s3 = SeaweedFs::shared();
    let (_setup, service) = start(&s3, "serve-roles");

    // Read routes: 401 without a token, 403 outside the token's environments.
    assert_eq!(
        service
            .request("GET", "/api/v1/environments", None, None)
            .status,
        401
    );
    let listed = service
        .request("GET", "/api/v1/environments", Some(ONCALL), None)
        .json();
    let names: Vec<&str> = listed["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prod"], "oncall only reads prod");
    assert_eq!(
        service
            .request(
                "GET",
                "/api/v1/environments/dev/history",
                Some(ONCALL),
                None
            )
            .status,
        403
    );
    assert_eq!(
        service
            .request(
                "GET",
                "/api/v1/environments/nope/history",
                Some(ADMIN),
                None
            )
            .status,
        404
    );

    check_route(
        &service,
        "dev",
        "/api/v1/environments/dev/push",
        json!({"message": "first"}),
        READER,
        ("ci", CI),
    );
    check_route(
        &service,
        "prod",
        "/api/v1/environments/prod/push",
        json!({}),
        CI,
        ("admin", ADMIN),
    );
    let killed = check_route(
        &service,
        "prod",
        "/api/v1/environments/prod/flags/beta-banner/kill",
        json!({"reason": "incident"}),
        CI,
        ("oncall", ONCALL),
    );
    assert_eq!(killed["record"]["flags"], json!(["beta-banner"]));
    assert_eq!(killed["record"]["message"], "incident");
    check_route(
        &service,
        "prod",
        "/api/v1/environments/prod/flags/beta-banner/unkill",
        json!({}),
        READER,
        ("oncall", ONCALL),
    );
    check_route(
        &service,
        "prod",
        "/api/v1/environments/prod/rollback",
        json!({"to": 1}),
        ONCALL,
        ("admin", ADMIN),
    );

    // Errors that are the caller's: unknown flag 404, unknown version 404, bad body 4xx.
    let reply = service.request(
        "POST",
        "/api/v1/environments/prod/flags/no-such-flag/kill",
        Some(ONCALL),
        None,
    );
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert!(
        reply.json()["detail"]
            .as_str()
            .unwrap()
            .contains("no-such-flag")
    );
    assert_eq!(
        service
            .request(
                "POST",
                "/api/v1/environments/prod/rollback",
                Some(ADMIN),
                Some(&json!({"to": 99}))
            )
            .status,
        404
    );
    assert_eq!(
        service
            .request(
                "POST",
                "/api/v1/environments/prod/rollback",
                Some(ADMIN),
                Some(&json!({"too": 1}))
            )
            .status,
        422
    );

    // Read routes answer for a reader.
    let history = service
        .request(
            "GET",
            "/api/v1/environments/prod/history",
            Some(READER),
            None,
        )
        .json();
    let actions: Vec<&str> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["rollback", "unkill", "kill", "push"]);
    let validate = service
        .request(
            "GET",
            "/api/v1/environments/prod/validate",
            Some(READER),
            None,
        )
        .json();
    assert_eq!(validate["valid"], true, "{validate}");
    let diff = service
        .request(
            "GET",
            "/api/v1/environments/prod/diff?from=1&to=2",
            Some(READER),
            None,
        )
        .json();
    assert_eq!(diff["summary"]["changed"], json!(["beta-banner"]), "{diff}");
    assert_eq!(service.request("GET", "/readyz", None, None).status, 200);
    assert!(service.stop(), "SIGTERM ends serve cleanly");
}

#[test]
fn concurrent_publishes_to_one_environment_all_land() {
    let s3 = SeaweedFs::shared();
    let (_setup, service) = start(&s3, "serve-serialized");
    assert_eq!(
        service
            .request("POST", "/api/v1/environments/prod/push", Some(ADMIN), None)
            .status,
        200
    );
    let flags = ["beta-banner", "new-chart", "live-updates", "premium-export"];
    std::thread::scope(|scope| {
        for flag in flags {
            let service = &service;
            scope.spawn(move || {
                let reply = service.request(
                    "POST",
                    &format!("/api/v1/environments/prod/flags/{flag}/kill"),
                    Some(ADMIN),
                    None,
                );
                assert_eq!(reply.status, 200, "kill {flag}: {}", reply.body);
            });
        }
    });
    // Each kill published on top of the one before: none lost, no conflict answered.
    let status = service
        .request("GET", "/api/v1/environments/prod", Some(ADMIN), None)
        .json();
    assert_eq!(status["version"], 1 + flags.len() as u64, "{status}");
    let mut killed: Vec<String> = serde_json::from_value(status["killed"].clone()).unwrap();
    killed.sort();
    let mut expected: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    expected.sort();
    assert_eq!(killed, expected);
}

/// Replaces `from` by `to` in the checkout's `file` (a test's edit to the flags repository).
fn edit(setup: &Setup, file: &str, from: &str, to: &str) {
    let path = setup.checkout().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has {from:?}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

fn status(service: &Service, env: &str) -> Value {
    service
        .request(
            "GET",
            &format!("/api/v1/environments/{env}"),
            Some(ADMIN),
            None,
        )
        .json()
}

/// Starts a canary in `env` (pushing the checkout as it is to `percent` of users) as `token`;
/// returns the canary's content hash.
fn start_canary(service: &Service, env: &str, token: &str, percent: u32) -> String {
    let reply = service.request(
        "POST",
        &format!("/api/v1/environments/{env}/push"),
        Some(token),
        Some(&json!({"canary": percent})),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["record"]["action"], "canary", "{}", reply.body);
    let canary = &status(service, env)["canary"];
    assert_eq!(canary["percent"], percent, "{canary}");
    canary["content_hash"].as_str().unwrap().to_owned()
}

/// Promote (`publish`) and abort (`publish` or `kill`) through the API: the promoted canary is
/// the stored stable version, the aborted one is gone and the stable version unchanged; with
/// no canary both answer 409.
#[test]
fn canaries_are_promoted_and_aborted_through_the_api() {
    let s3 = SeaweedFs::shared();
    let (setup, service) = start(&s3, "serve-canary");
    for env in ["dev", "prod"] {
        let reply = service.request(
            "POST",
            &format!("/api/v1/environments/{env}/push"),
            Some(ADMIN),
            None,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    for action in ["promote", "abort"] {
        let reply = service.request(
            "POST",
            &format!("/api/v1/environments/dev/{action}"),
            Some(CI),
            None,
        );
        assert_eq!(
            reply.status, 409,
            "{action} without a canary: {}",
            reply.body
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        let detail = reply.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("no canary"), "{detail}");
    }
    edit(
        &setup,
        "flags/beta-banner.yaml",
        "default: off",
        "default: on",
    );

    // Promote in dev: `publish` suffices (ci), `read` does not.
    let stable_before = status(&service, "dev")["content_hash"].clone();
    let canary = start_canary(&service, "dev", CI, 10);
    assert_ne!(json!(canary), stable_before);
    let promoted = check_route(
        &service,
        "dev",
        "/api/v1/environments/dev/promote",
        json!({"message": "looks good"}),
        READER,
        ("ci", CI),
    );
    assert_eq!(promoted["record"]["action"], "promote", "{promoted}");
    assert_eq!(promoted["record"]["message"], "looks good");
    let after = status(&service, "dev");
    assert_eq!(after["canary"], Value::Null, "{after}");
    assert_eq!(
        after["content_hash"],
        json!(canary),
        "the canary's flags are stable"
    );
    assert_eq!(after["version"], promoted["version"]);

    // Abort in prod: the on-call token (`kill` only) may stop a canary; `read` may not.
    let stable = status(&service, "prod");
    let canary = start_canary(&service, "prod", ADMIN, 25);
    assert_ne!(json!(canary), stable["content_hash"]);
    let aborted = check_route(
        &service,
        "prod",
        "/api/v1/environments/prod/abort",
        json!({}),
        CI,
        ("oncall", ONCALL),
    );
    assert_eq!(aborted["record"]["action"], "abort", "{aborted}");
    let after = status(&service, "prod");
    assert_eq!(after["canary"], Value::Null, "{after}");
    assert_eq!(
        after["content_hash"], stable["content_hash"],
        "the stable flags serve everyone again"
    );
    // The on-call token may not promote: that is a publish.
    start_canary(&service, "prod", ADMIN, 25);
    let reply = service.request(
        "POST",
        "/api/v1/environments/prod/promote",
        Some(ONCALL),
        None,
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
}

/// Rollout ticks and resumes through the API on the example's `checkout-v2` schedule (1% ->
/// 5% -> 25% -> 100%, health from a command): a tick before the soak is over does nothing; one
/// at a `now` past it advances a stage, stored and audited; a failing check holds the
/// schedule, and a resume lets it run again.
#[test]
fn rollouts_tick_and_resume_through_the_api() {
    let s3 = SeaweedFs::shared();
    let setup = Setup::new(&[
        ("ci", CI, "{prod: [publish]}"),
        ("reader", READER, "{prod: [read]}"),
        ("admin", ADMIN, "{\"*\": [admin]}"),
    ]);
    let schedule = "flags/checkout-v2.yaml";
    let example_check = "health: { url: \"https://status.example.com/checkout/healthy\" }";
    edit(
        &setup,
        schedule,
        example_check,
        "health: { command: \"true\" }",
    );
    let config = setup.write("serve.yaml", GENEROUS_LIMITS);
    let service = setup.serve(
        &s3.bucket("serve-rollouts"),
        &["--config", &config],
        &s3.aws_env(),
    );
    let rollout = || {
        let reply = service.request(
            "GET",
            "/api/v1/environments/prod/rollouts",
            Some(READER),
            None,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["rollouts"][0].clone()
    };
    let pushed = service.request("POST", "/api/v1/environments/prod/push", Some(CI), None);
    assert_eq!(pushed.status, 200, "{}", pushed.body);
    let started = rollout();
    assert_eq!(started["state"]["stage"], 1, "{started}");
    assert_eq!(started["live_percent"], 1.0);
    let since: chrono::DateTime<chrono::Utc> =
        started["state"]["since"].as_str().unwrap().parse().unwrap();

    // By the clock, the first stage (soak 1h) is not due: nothing published.
    let early = service.request(
        "POST",
        "/api/v1/environments/prod/rollouts/tick",
        Some(CI),
        None,
    );
    assert_eq!(early.status, 200, "{}", early.body);
    let early = early.json();
    assert_eq!(early["published"], false, "{early}");
    assert_eq!(early["transitions"], json!([]));
    // Another clock skips soak times: admin only.
    let past_soak = json!({"now": (since + chrono::Duration::hours(2)).to_rfc3339()});
    let reply = service.request(
        "POST",
        "/api/v1/environments/prod/rollouts/tick",
        Some(CI),
        Some(&past_soak),
    );
    assert_eq!(reply.status, 403, "{}", reply.body);

    let ticked = check_route(
        &service,
        "prod",
        "/api/v1/environments/prod/rollouts/tick",
        past_soak,
        READER,
        ("admin", ADMIN),
    );
    assert_eq!(ticked["record"]["action"], "rollout", "{ticked}");
    assert_eq!(
        ticked["transitions"],
        json!([{"flag": "checkout-v2", "rule": "progressive", "change": "advanced",
                "from": 1, "to": 2, "status": "running", "reason": null,
                "text": "checkout-v2/progressive: stage 1 -> 2 (running)"}]),
    );
    let advanced = rollout();
    assert_eq!(advanced["state"]["stage"], 2, "{advanced}");
    assert_eq!(advanced["live_percent"], 5.0);

    // A failing check with `hold`: the next due tick holds the schedule at its stage.
    edit(
        &setup,
        schedule,
        "health: { command: \"true\" }\n            on-failure: revert",
        "health: { command: \"exit 3\" }\n            on-failure: hold",
    );
    let pushed = service.request("POST", "/api/v1/environments/prod/push", Some(CI), None);
    assert_eq!(
        pushed.status, 200,
        "the new check is published: {}",
        pushed.body
    );
    let far = json!({"now": (since + chrono::Duration::days(30)).to_rfc3339()});
    let held = service.request(
        "POST",
        "/api/v1/environments/prod/rollouts/tick",
        Some(ADMIN),
        Some(&far),
    );
    assert_eq!(held.status, 200, "{}", held.body);
    let held = held.json();
    let transition = &held["transitions"][0];
    assert_eq!(transition["change"], "held", "{held}");
    assert_eq!(
        (transition["from"].as_u64(), transition["to"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(transition["status"], "held");
    assert!(
        transition["reason"].as_str().unwrap().contains("exit 3"),
        "{transition}"
    );
    assert_eq!(rollout()["state"]["status"], "held");

    let resumed = check_route(
        &service,
        "prod",
        "/api/v1/environments/prod/rollouts/resume",
        json!({"flag": "checkout-v2"}),
        READER,
        ("ci", CI),
    );
    assert_eq!(
        resumed["record"]["flags"],
        json!(["checkout-v2"]),
        "{resumed}"
    );
    let running = rollout();
    assert_eq!(running["state"]["status"], "running", "{running}");
    assert_eq!(running["state"]["stage"], 2);
}
