//! Evaluation telemetry end to end: the worker in workerd counts what it answers and sends the
//! counts to a real `publisher serve` (role `telemetry`), which aggregates them per flag and
//! variant, keeps them across a restart, refuses wrong tokens and bodies, and lints a flag
//! nobody evaluates once `now` is far enough ahead.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use integration_tests::SeaweedFs;
use integration_tests::deployment::{Deployment, Spec, store_url};
use integration_tests::serve::{Service, Setup};
use serde_json::{Value, json};

const ENV: &str = "dev";
const LABEL: &str = "telemetry";
const PUSHER: &str = "pusher-secret-0123456789";
const EDGE: &str = "edge-telemetry-secret-0123456789";
const READER: &str = "reader-secret-0123456789";

fn service(setup: &Setup, store: &str, s3: &SeaweedFs) -> Service {
    // The counts live in the store (`_telemetry/`), written on shutdown at the latest.
    setup.serve(store, &[], &s3.aws_env())
}

fn telemetry(service: &Service, query: &str) -> Value {
    let reply = service.request(
        "GET",
        &format!("/api/v1/environments/{ENV}/telemetry{query}"),
        Some(READER),
        None,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// `{flag: {variant: count}}` of the service's answer.
fn counts(report: &Value) -> BTreeMap<String, Value> {
    report["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["flag"].as_str().unwrap().to_owned(),
                f["variants"].clone(),
            )
        })
        .collect()
}

#[test]
fn the_edge_reports_what_it_served_and_the_service_keeps_and_lints_it() {
    let setup = Setup::new(&[
        ("pusher", PUSHER, "{dev: [publish]}"),
        ("edge", EDGE, "{dev: [telemetry]}"),
        ("reader", READER, "{dev: [read]}"),
    ]);
    let s3 = SeaweedFs::shared();
    let store = store_url(&s3, LABEL);
    let mut service = service(&setup, &store, &s3);
    let pushed = service.request(
        "POST",
        &format!("/api/v1/environments/{ENV}/push"),
        Some(PUSHER),
        None,
    );
    assert_eq!(pushed.status, 200, "{}", pushed.body);

    let telemetry_url = format!("{}/api/v1/telemetry", service.base);
    let deployment = Deployment::start(&Spec {
        label: LABEL,
        environment: ENV,
        identity_secret: "telemetry-identity-secret",
        purge_token: "telemetry-purge-token",
        bindings: &[
            ("TELEMETRY_URL", telemetry_url.as_str()),
            ("TELEMETRY_TOKEN", EDGE),
            ("TELEMETRY_FLUSH_MS", "200"),
        ],
        assets: None,
    });
    let worker = &deployment.worker;
    worker.wait_for_health(Duration::from_secs(20), |h| h["loaded"] == true);

    // What the worker answers: 3 single requests for one flag, then 8 bulk requests.
    let bulk = |worker: &integration_tests::worker::Worker| {
        let reply = worker.post("/ofrep/v1/evaluate/flags", &json!({"context": {}}), &[]);
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    };
    for _ in 0..3 {
        let reply = worker.post(
            "/ofrep/v1/evaluate/flags/beta-banner",
            &json!({"context": {}}),
            &[],
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let unknown = worker.post(
        "/ofrep/v1/evaluate/flags/no-such-flag",
        &json!({"context": {}}),
        &[],
    );
    assert_eq!(unknown.status, 404);
    let answers = bulk(worker);
    for _ in 0..6 {
        bulk(worker);
    }
    // The batch goes out after a request once the flush interval has passed.
    std::thread::sleep(Duration::from_millis(300));
    bulk(worker);

    let mut expected = BTreeMap::new();
    for flag in answers["flags"].as_array().unwrap() {
        let key = flag["key"].as_str().unwrap().to_owned();
        let variant = flag["variant"].as_str().unwrap_or("(default)").to_owned();
        let count = if key == "beta-banner" { 11 } else { 8 };
        expected.insert(key, json!({ variant: count }));
    }
    assert!(expected.len() > 3, "the examples have flags: {answers}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        let report = telemetry(&service, "");
        if counts(&report) == expected {
            break report;
        }
        assert!(
            Instant::now() < deadline,
            "telemetry never matched what the worker answered:\n got {:?}\nwant {expected:?}\nhealth {}",
            counts(&report),
            worker.health()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(report["batches"].as_u64() >= Some(1), "{report}");
    assert!(report["lints"].as_array().unwrap().is_empty(), "{report}");
    assert_eq!(worker.health()["telemetry"]["dropped"], 0);

    // Wrong callers and bodies change nothing.
    let body = json!({"environment": ENV, "counts": [{"flag": "beta-banner", "variant": "on", "count": 1000}]});
    for (token, status) in [
        (None, 401),
        (Some("nope"), 401),
        (Some(READER), 403),
        (Some(PUSHER), 403),
    ] {
        let reply = service.request("POST", "/api/v1/telemetry", token, Some(&body));
        assert_eq!(reply.status, status, "{token:?}: {}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    for bad in [
        json!({"environment": ENV}),
        json!({"environment": "../x", "counts": []}),
        json!([1]),
    ] {
        let reply = service.request("POST", "/api/v1/telemetry", Some(EDGE), Some(&bad));
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
    }
    assert_eq!(counts(&telemetry(&service, "")), expected);

    // Kept across a restart.
    assert!(service.stop(), "serve stops cleanly");
    service = self::service(&setup, &store, &s3);
    assert_eq!(counts(&telemetry(&service, "")), expected);

    // Sixty days on, with nothing evaluated since, every deployed flag is stale.
    let later = (chrono::Utc::now() + chrono::Duration::days(60) + chrono::Duration::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let report = telemetry(&service, &format!("?now={later}"));
    let stale: Vec<&str> = report["lints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "not-evaluated")
        .map(|l| l["flag"].as_str().unwrap())
        .collect();
    let deployed: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(stale, deployed, "{report}");
    assert!(
        report["lints"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("not evaluated in 60 days"),
        "{report}"
    );
}
