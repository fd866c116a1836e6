//! `publisher serve`'s observability and limits, as a real process: publishes through the API
//! reach the worker in workerd (purged) and move `/metrics` (Prometheus text, parsed line by
//! line); a failed purge is counted without failing the publish; logs are JSON lines carrying
//! the request id; a burst over a token's rate limit gets 429 with `Retry-After`.

use integration_tests::SeaweedFs;
use integration_tests::deployment::{Deployment, Spec};
use integration_tests::serve::Setup;
use integration_tests::worker::{now_s, token};
use serde_json::{Value, json};

const READER: &str = "reader-secret-0123456789";
const ADMIN: &str = "admin-secret-0123456789";
const GENEROUS_LIMITS: &str = "limits: {per_token_per_second: 1000, per_token_burst: 1000}\n";

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
