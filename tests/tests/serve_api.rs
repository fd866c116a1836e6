//! `publisher serve` as a real process on a loopback port, publishing to real SeaweedFS: every
//! mutating route refuses a missing, wrong and under-privileged token (401/401/403, nothing
//! published) and accepts the right one, auditing the token's name and the client address;
//! publishes to one environment are serialized (two concurrent kills both land); the read
//! routes answer; SIGTERM shuts down cleanly.

use std::path::Path;

use integration_tests::serve::{Service, copy_dir, write_tokens};
use integration_tests::{SeaweedFs, repo_root};
use serde_json::{Value, json};

const CI: &str = "ci-secret-0123456789";
const READER: &str = "reader-secret-0123456789";
const ONCALL: &str = "oncall-secret-0123456789";
const ADMIN: &str = "admin-secret-0123456789";

fn start(dir: &Path, s3: &SeaweedFs, bucket: &str) -> Service {
    copy_dir(&repo_root().join("examples/flags"), &dir.join("checkout"));
    write_tokens(
        &dir.join("tokens.yaml"),
        &[
            ("ci", CI, "{dev: [publish], prod: [read]}"),
            ("reader", READER, "{dev: [read], prod: [read]}"),
            ("oncall", ONCALL, "{prod: [kill]}"),
            ("admin", ADMIN, "{\"*\": [admin]}"),
        ],
    );
    let store = s3.bucket(bucket);
    Service::start(
        &[
            "--store",
            &store,
            "--flags",
            dir.join("checkout").to_str().unwrap(),
            "--tokens",
            dir.join("tokens.yaml").to_str().unwrap(),
        ],
        &s3.aws_env()
            .into_iter()
            .map(|(k, v)| (k, v))
            .collect::<Vec<_>>(),
    )
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
    let dir = tempfile::tempdir().unwrap();
    let service = start(dir.path(), &s3, "serve-roles");

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
    let dir = tempfile::tempdir().unwrap();
    let service = start(dir.path(), &s3, "serve-serialized");
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
