//! `publisher serve` as a real process on a loopback port, publishing to real SeaweedFS: every
//! mutating route refuses a missing, wrong and under-privileged token (401/401/403, nothing
//! published) and accepts the right one, auditing the token's name and the client address;
//! publishes to one environment are serialized (two concurrent kills both land); the read
//! routes answer; SIGTERM shuts down cleanly.

use integration_tests::SeaweedFs;
use integration_tests::deployment::{Deployment, Spec};
use integration_tests::serve::{Service, Setup};
use integration_tests::worker::{now_s, token};
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

/// Every sample of a Prometheus text exposition, checked line by line against the format
/// (`# HELP`/`# TYPE` comments, `name{label="value",...} number`): panics on any other line.
fn samples(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP ") || comment.starts_with("TYPE "),
                "comment line: {line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("sample: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value of {line}")),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name: {line}"
        );
        if name_end < series.len() {
            let labels = series[name_end..]
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("labels: {line}"));
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let (key, value) = pair
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("label: {line}"));
                assert!(
                    key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(!value.contains('"') || value.ends_with('"'), "{line}");
            }
        }
        out.push((series.to_owned(), value));
    }
    out
}

fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(s, _)| s == series)
        .map_or(0.0, |(_, v)| *v)
}

/// The service purging the worker in workerd, which reads the same SeaweedFS bucket: a push
/// and a kill through the API reach OFREP clients; `/metrics` moves with them, a failed
/// purge is counted and reported without failing the publish; every log line is JSON and the
/// request lines carry the request id the client sees.
#[test]
fn publishes_reach_the_worker_and_move_the_metrics() {
    const IDENTITY: &str = "serve-identity-secret";
    let deployment = Deployment::start(&Spec {
        label: "serve-worker",
        environment: "prod",
        identity_secret: IDENTITY,
        purge_token: "serve-purge-token",
        bindings: &[],
        assets: None,
    });
    let setup = Setup::new(&[("admin", ADMIN, "{\"*\": [admin]}")]);
    let config = setup.write("serve.yaml", GENEROUS_LIMITS);
    let service = setup.serve(
        &deployment.store,
        &["--config", &config, "--env", "prod"],
        &deployment.env,
    );
    let bearer = format!(
        "Bearer {}",
        token(
            json!({"sub": "u1", "beta": true, "exp": now_s() + 3600}),
            IDENTITY
        )
    );
    let observe = || {
        let reply = deployment.worker.post(
            "/ofrep/v1/evaluate/flags/beta-banner",
            &json!({"context": {}}),
            &[("Authorization", &bearer)],
        );
        (reply.status == 200).then(|| reply.json()["value"].clone())
    };
    let metrics = || samples(&service.request("GET", "/metrics", None, None).body);
    let before = metrics();

    let pushed = service.send(
        "POST",
        "/api/v1/environments/prod/push",
        Some(ADMIN),
        &[("x-request-id", "req-push-1")],
        None,
    );
    assert_eq!(pushed.status, 200, "{}", pushed.body);
    assert_eq!(pushed.header("x-request-id"), Some("req-push-1"));
    assert_eq!(pushed.json()["purge"]["status"], "done", "{}", pushed.body);
    assert_eq!(observe(), Some(json!(true)), "a beta user sees the banner");
    let killed = service.request(
        "POST",
        "/api/v1/environments/prod/flags/beta-banner/kill",
        Some(ADMIN),
        None,
    );
    assert_eq!(killed.status, 200, "{}", killed.body);
    assert_eq!(killed.json()["purge"]["status"], "done");
    assert_eq!(observe(), Some(json!(false)), "the kill reached the edge");

    let after = metrics();
    for series in [
        r#"flags_publishes_total{action="push",env="prod"}"#,
        r#"flags_publishes_total{action="kill",env="prod"}"#,
    ] {
        assert_eq!(
            sample(&after, series) - sample(&before, series),
            1.0,
            "{series}"
        );
    }
    assert_eq!(
        sample(&after, r#"flags_purges_total{env="prod",result="ok"}"#),
        2.0
    );
    let route = r#"flags_http_requests_total{method="POST",route="/api/v1/environments/{env}/push",status="200"}"#;
    assert_eq!(
        sample(&after, route),
        1.0,
        "requests counted by route template"
    );
    assert!(
        sample(
            &after,
            r#"flags_http_request_duration_seconds_count{method="POST",route="/api/v1/environments/{env}/push"}"#
        ) >= 1.0
    );
    assert_eq!(sample(&after, r#"flags_canary_share{env="prod"}"#), 0.0);

    // The edge gone: the unkill is published and answered, the purge failure reported and counted.
    let Deployment { worker, .. } = deployment;
    drop(worker);
    let unkilled = service.request(
        "POST",
        "/api/v1/environments/prod/flags/beta-banner/unkill",
        Some(ADMIN),
        None,
    );
    assert_eq!(unkilled.status, 200, "{}", unkilled.body);
    let unkilled = unkilled.json();
    assert_eq!(unkilled["published"], true);
    assert_eq!(unkilled["purge"]["status"], "failed", "{unkilled}");
    assert_eq!(
        sample(
            &metrics(),
            r#"flags_purges_total{env="prod",result="failed"}"#
        ),
        1.0
    );

    // Logs: JSON lines, and the push's request lines carry the id the client sent.
    let logs = service.logs();
    let parsed: Vec<Value> = logs
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let push_lines: Vec<&Value> = parsed
        .iter()
        .filter(|l| l["span"]["request_id"] == "req-push-1")
        .collect();
    assert!(
        push_lines
            .iter()
            .any(|l| l["fields"]["message"] == "published"),
        "the publish is logged under the request id: {logs:#?}"
    );
    assert!(
        logs.iter().all(|l| !l.contains(ADMIN)),
        "no secret in the logs"
    );
}

/// Over the per-token limit the answer is 429 with Retry-After; another token is unaffected.
#[test]
fn a_burst_over_the_rate_limit_gets_429_with_retry_after() {
    let s3 = SeaweedFs::shared();
    let setup = Setup::new(&[
        ("reader", READER, "{prod: [read]}"),
        ("admin", ADMIN, "{\"*\": [admin]}"),
    ]);
    let config = setup.write(
        "serve.yaml",
        "environments: [{name: prod}]\nlimits: {per_token_per_second: 1, per_token_burst: 5}\n",
    );
    let service = setup.serve(
        &s3.bucket("serve-limits"),
        &["--config", &config],
        &s3.aws_env(),
    );
    let statuses: Vec<(u16, Option<String>)> = (0..12)
        .map(|_| {
            let reply = service.request("GET", "/api/v1/environments", Some(READER), None);
            (reply.status, reply.header("retry-after").map(str::to_owned))
        })
        .collect();
    let passed = statuses.iter().filter(|(s, _)| *s == 200).count();
    assert!(
        (5..=7).contains(&passed),
        "the burst of 5 (plus what refills meanwhile) passes: {statuses:?}"
    );
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(limited.len(), 12 - passed, "{statuses:?}");
    for (_, retry_after) in &limited {
        let seconds: u64 = retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=2).contains(&seconds), "{retry_after:?}");
    }
    let other = service.request("GET", "/api/v1/environments", Some(ADMIN), None);
    assert_eq!(other.status, 200, "another token has its own budget");
    let metrics = samples(&service.request("GET", "/metrics", None, None).body);
    assert_eq!(
        sample(
            &metrics,
            r#"flags_http_requests_total{method="GET",route="/api/v1/environments",status="429"}"#
        ),
        limited.len() as f64
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let later = service.request("GET", "/api/v1/environments", Some(READER), None);
    assert_eq!(
        later.status, 200,
        "after Retry-After the token passes again"
    );
}
