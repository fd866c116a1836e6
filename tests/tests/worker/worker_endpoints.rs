//! The edge worker's endpoints in workerd: health, OFREP bulk with ETag/304, CORS, identity
//! tokens, limits, purge, a cold isolate whose origin is down, and the module's size budget.

use std::io::Write as _;
use std::time::Duration;

use flate2::{Compression, write::GzEncoder};
use integration_tests::worker::random::{self, Rng};
use integration_tests::worker::{Origin, OriginMode, Store, Worker, now_s, token};
use serde_json::{Map, Value, json};
use shared_eval::{Context, Snapshot};

const SECRET: &str = "endpoint-secret";
const PURGE: &str = "purge-token";
const ENV: &str = "test";
const DASHBOARD: &str = "https://dash.example";
const BULK: &str = "/ofrep/v1/evaluate/flags";

struct Setup {
    store: Store,
    origin: Origin,
    worker: Worker,
}

fn setup(seed: u64) -> Setup {
    let store = Store::new();
    store.publish(ENV, 1, &random::blob(&mut Rng::new(seed), ENV, 1, 20));
    let origin = Origin::start(&store);
    let worker = Worker::start(&[
        ("FLAGS_ENV", ENV),
        ("ORIGIN_URL", &origin.url),
        ("IDENTITY_SECRET", SECRET),
        ("PURGE_TOKEN", PURGE),
        ("CORS_ORIGINS", DASHBOARD),
        ("REVALIDATE_MS", "100"),
        ("CACHE_TTL_S", "600"),
        ("ORIGIN_TIMEOUT_MS", "500"),
    ]);
    Setup {
        store,
        origin,
        worker,
    }
}

fn bearer(claims: Value) -> String {
    format!("Bearer {}", token(claims, SECRET))
}

#[test]
fn health_reports_what_is_loaded_and_from_where() {
    let s = setup(1);
    let health = s.worker.health();
    let blob = random::blob(&mut Rng::new(1), ENV, 1, 20);
    assert_eq!(health["environment"], ENV);
    assert_eq!(health["loaded"], true);
    assert_eq!(health["version"], 1);
    assert_eq!(health["blob_version"], 1);
    assert_eq!(health["content_hash"], blob.header.content_hash.as_str());
    assert_eq!(health["loaded_from"], "origin");
    assert_eq!(health["source"], "origin");
    assert_eq!(health["flags"], 20);
    assert_eq!(health["consecutive_failures"], 0);
    assert!(health["last_error"].is_null());
    assert!(health["age_ms"].as_u64().is_some());
    // Within the revalidation interval the isolate answers from memory.
    assert_eq!(s.worker.health()["source"], "memory");
    // After it, the check goes to the colo cache, which the first load filled.
    std::thread::sleep(Duration::from_millis(150));
    let health = s.worker.health();
    assert_eq!(
        (health["source"].as_str(), health["version"].as_u64()),
        (Some("cache"), Some(1))
    );
    // The blob itself is never served.
    for path in ["/_flags/cache/test", "/test/current.json", "/_flags/blob"] {
        assert_eq!(s.worker.get(path).status, 404, "{path}");
    }
}

#[test]
fn bulk_answers_carry_an_etag_and_revalidate_with_304() {
    let s = setup(2);
    let auth = bearer(json!({"sub": "user-1", "exp": now_s() + 600, "plan": "pro"}));
    let first = s
        .worker
        .post(BULK, &json!({"context": {}}), &[("Authorization", &auth)]);
    assert_eq!(first.status, 200, "{}", first.body);
    let etag = first.header("etag").expect("ETag").to_owned();
    assert_eq!(first.header("cache-control"), Some("private, no-cache"));
    assert_eq!(first.header("vary"), Some("Origin, Authorization, Cookie"));
    assert!(
        first
            .header("server-timing")
            .is_some_and(|t| t.contains("eval;dur="))
    );
    assert_eq!(first.json()["flags"].as_array().map(Vec::len), Some(20));
    assert_eq!(
        first.json()["metadata"],
        json!({"environment": ENV, "version": 1, "track": "stable"})
    );

    let again = s.worker.post(
        BULK,
        &json!({"context": {}}),
        &[("Authorization", &auth), ("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let other = s.worker.post(
        BULK,
        &json!({"context": {}}),
        &[("Authorization", &auth), ("If-None-Match", "\"stale\"")],
    );
    assert_eq!(other.status, 200);

    // A new version changes the answer, so the old tag no longer matches.
    s.store
        .publish(ENV, 2, &random::blob(&mut Rng::new(22), ENV, 2, 20));
    let purged = s.worker.request(
        "POST",
        "/_flags/purge",
        &[("Authorization", &format!("Bearer {PURGE}"))],
        Some(b""),
    );
    assert_eq!(purged.status, 200, "{}", purged.body);
    let after = s.worker.post(
        BULK,
        &json!({"context": {}}),
        &[("Authorization", &auth), ("If-None-Match", &etag)],
    );
    assert_eq!(after.status, 200);
    assert_eq!(after.json()["metadata"]["version"], 2);
    assert_ne!(after.header("etag"), Some(etag.as_str()));
}

#[test]
fn purge_needs_its_token_and_reloads_from_the_origin_at_once() {
    let s = setup(3);
    assert_eq!(s.worker.health()["version"], 1);
    // Published but not purged: the colo cache (TTL 600 s) keeps answering version 1.
    s.store
        .publish(ENV, 2, &random::blob(&mut Rng::new(33), ENV, 2, 20));
    std::thread::sleep(Duration::from_millis(300));
    let health = s.worker.health();
    assert_eq!(
        (health["version"].as_u64(), health["source"].as_str()),
        (Some(1), Some("cache"))
    );

    let purge = |auth: Option<&str>| {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
        s.worker
            .request("POST", "/_flags/purge", &headers, Some(b""))
    };
    for bad in [None, Some("Bearer wrong"), Some(PURGE)] {
        let reply = purge(bad);
        assert_eq!(reply.status, 401, "{bad:?}");
        assert_eq!(
            reply.json()["errorDetails"],
            "purge requires a valid bearer token"
        );
    }
    assert_eq!(s.worker.get("/_flags/purge").status, 405);
    let reply = purge(Some(&format!("Bearer {PURGE}")));
    assert_eq!(reply.status, 200);
    let health = reply.json();
    assert_eq!(
        (health["version"].as_u64(), health["loaded_from"].as_str()),
        (Some(2), Some("origin"))
    );
    assert!(
        s.origin.requests() >= 4,
        "pointer and blob fetched twice in all"
    );
}

#[test]
fn cors_allows_only_listed_dashboards() {
    let s = setup(4);
    let preflight = |origin: &str| {
        s.worker.request(
            "OPTIONS",
            BULK,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "authorization, content-type",
                ),
            ],
            None,
        )
    };
    let ok = preflight(DASHBOARD);
    assert_eq!(ok.status, 204);
    assert_eq!(ok.header("access-control-allow-origin"), Some(DASHBOARD));
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    assert!(
        ok.header("access-control-allow-headers")
            .is_some_and(|h| h.contains("Authorization"))
    );
    let refused = preflight("https://evil.example");
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("access-control-allow-origin"), None);

    let allowed = s.worker.post(BULK, &json!({}), &[("Origin", DASHBOARD)]);
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some(DASHBOARD)
    );
    assert!(
        allowed
            .header("access-control-expose-headers")
            .is_some_and(|h| h.contains("ETag"))
    );
    let refused = s
        .worker
        .post(BULK, &json!({}), &[("Origin", "https://evil.example")]);
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["errorDetails"], "origin is not allowed");
    // Same-origin POSTs carry an Origin header too and are always allowed.
    let own = s.worker.url.clone();
    let same = s.worker.post(BULK, &json!({}), &[("Origin", &own)]);
    assert_eq!(same.status, 200);
    assert_eq!(same.header("access-control-allow-origin"), None);
}

#[test]
fn identity_comes_from_the_token_and_the_body_cannot_override_it() {
    let s = setup(5);
    let blob = random::blob(&mut Rng::new(5), ENV, 1, 20);
    let snapshot = Snapshot::from_blob(blob).unwrap();
    let claims = json!({"sub": "user-7", "exp": now_s() + 600, "plan": "free", "country": "DE"});
    let body_context =
        json!({"targetingKey": "user-1", "plan": "enterprise", "country": "US", "beta": true});
    let body = json!({ "context": body_context });

    let by_header = s
        .worker
        .post(BULK, &body, &[("Authorization", &bearer(claims.clone()))]);
    let by_cookie_token = token(claims, SECRET);
    let by_cookie = s.worker.post(
        BULK,
        &body,
        &[("Cookie", &format!("theme=dark; ff_token={by_cookie_token}"))],
    );
    assert_eq!(by_header.status, 200);
    assert_eq!(by_header.json(), by_cookie.json());

    // What the worker must have evaluated: signed targetingKey/plan/country from the token,
    // and the body's attributes only as unsigned ones (its targetingKey dropped).
    let signed: Map<String, Value> =
        json!({"targetingKey": "user-7", "plan": "free", "country": "DE"})
            .as_object()
            .unwrap()
            .clone();
    let unsigned: Map<String, Value> = json!({"plan": "enterprise", "country": "US", "beta": true})
        .as_object()
        .unwrap()
        .clone();
    let context = Context::with_unsigned(&signed, &unsigned, true);
    for flag in by_header.json()["flags"].as_array().unwrap() {
        let key = flag["key"].as_str().unwrap();
        let expected = shared_eval::evaluate(&snapshot, key, &context, now_s() * 1000);
        assert_eq!(flag.get("value"), expected.value, "{key}");
        assert_eq!(flag["reason"], expected.reason.as_str(), "{key}");
        assert_eq!(
            flag.get("variant").and_then(Value::as_str),
            expected.variant,
            "{key}"
        );
    }

    let expired = bearer(json!({"sub": "user-7", "exp": now_s() - 1}));
    let reply = s.worker.post(BULK, &body, &[("Authorization", &expired)]);
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json(),
        json!({"errorCode": "GENERAL", "errorDetails": "identity token has expired"})
    );
    let forged = format!(
        "Bearer {}",
        token(
            json!({"sub": "admin", "exp": now_s() + 600}),
            "guessed-secret"
        )
    );
    let reply = s.worker.post(
        "/ofrep/v1/evaluate/flags/flag-001",
        &body,
        &[("Authorization", &forged)],
    );
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json(),
        json!({"key": "flag-001", "errorCode": "GENERAL", "errorDetails": "identity token is invalid"})
    );
    let reply = s
        .worker
        .post(BULK, &body, &[("Cookie", "ff_token=not.a.jwt")]);
    assert_eq!(reply.status, 401);
}

#[test]
fn over_limit_requests_get_clear_errors() {
    let s = setup(6);
    let huge = json!({"context": {"blob": "x".repeat(20_000)}});
    let reply = s.worker.post(BULK, &huge, &[]);
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.json(),
        json!({"errorCode": "INVALID_CONTEXT", "errorDetails": "request body is larger than 16384 bytes"})
    );
    let deep = format!(
        r#"{{"context":{}1{}}}"#,
        r#"{"a":"#.repeat(10),
        "}".repeat(10)
    );
    let reply = s.worker.request(
        "POST",
        BULK,
        &[("Content-Type", "application/json")],
        Some(deep.as_bytes()),
    );
    assert_eq!(
        (reply.status, reply.json()["errorDetails"].clone()),
        (400, json!("request body nests deeper than 8 levels"))
    );
    let wide: Map<String, Value> = (0..200).map(|i| (format!("a{i}"), json!(i))).collect();
    let reply = s.worker.post(BULK, &json!({ "context": wide }), &[]);
    assert_eq!(
        (reply.status, reply.json()["errorDetails"].clone()),
        (400, json!("context has more than 128 attributes"))
    );
    let reply = s.worker.request(
        "POST",
        "/ofrep/v1/evaluate/flags/flag-001",
        &[],
        Some(b"{not json"),
    );
    assert_eq!(
        reply.json(),
        json!({"key": "flag-001", "errorCode": "PARSE_ERROR", "errorDetails": "request body is not valid JSON"})
    );
    assert_eq!(reply.status, 400);
    let reply = s.worker.post(BULK, &json!({"context": "me"}), &[]);
    assert_eq!(
        (reply.status, reply.json()["errorCode"].clone()),
        (400, json!("INVALID_CONTEXT"))
    );
    let long_key = "k".repeat(300);
    let reply = s
        .worker
        .post(&format!("{BULK}/{long_key}"), &json!({}), &[]);
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({"errorCode": "GENERAL", "errorDetails": "flag key is longer than 256 bytes"})
    );
    let reply = s.worker.post(&format!("{BULK}/%ff"), &json!({}), &[]);
    assert_eq!(reply.status, 400);
    let reply = s.worker.get(BULK);
    assert_eq!(
        (reply.status, reply.header("allow")),
        (405, Some("POST, OPTIONS"))
    );
    // None of that disturbed the isolate.
    assert_eq!(s.worker.health()["loaded"], true);
}

#[test]
fn a_cold_isolate_with_its_origin_down_answers_errors_not_5xx() {
    let store = Store::new();
    let origin = Origin::start(&store);
    origin.set_mode(OriginMode::Down);
    let worker = Worker::start(&[
        ("FLAGS_ENV", ENV),
        ("ORIGIN_URL", &origin.url),
        ("REVALIDATE_MS", "100"),
    ]);
    let bulk = worker.post(BULK, &json!({"context": {"targetingKey": "u"}}), &[]);
    assert_eq!(bulk.status, 200);
    assert_eq!(
        bulk.json(),
        json!({"flags": [], "metadata": {"loaded": false}})
    );
    assert_eq!(bulk.header("cache-control"), Some("no-store"));
    let single = worker.post(&format!("{BULK}/checkout"), &json!({}), &[]);
    assert_eq!(single.status, 200);
    assert_eq!(
        single.json(),
        json!({"key": "checkout", "reason": "ERROR", "errorCode": "GENERAL",
               "errorDetails": "flag configuration is not loaded yet"})
    );
    let health = worker.health();
    assert_eq!(health["loaded"], false);
    assert_eq!(
        health["last_error"]["message"],
        "origin unreachable fetching pointer"
    );
    assert!(health["consecutive_failures"].as_u64() >= Some(1));

    // When the origin comes back, the isolate loads without a restart.
    store.publish(ENV, 1, &random::blob(&mut Rng::new(7), ENV, 1, 5));
    origin.set_mode(OriginMode::Serve);
    let health = worker.wait_for_health(Duration::from_secs(10), |h| h["loaded"] == true);
    assert_eq!(
        (
            health["version"].as_u64(),
            health["consecutive_failures"].as_u64()
        ),
        (Some(1), Some(0))
    );
}

#[test]
fn requests_racing_a_cold_load_wait_for_it_instead_of_erroring() {
    let store = Store::new();
    store.publish(ENV, 1, &random::blob(&mut Rng::new(8), ENV, 1, 5));
    let origin = Origin::start(&store);
    origin.set_mode(OriginMode::Slow);
    let worker = Worker::start(&[("FLAGS_ENV", ENV), ("ORIGIN_URL", &origin.url)]);
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    worker
                        .post(BULK, &json!({"context": {"targetingKey": "u"}}), &[])
                        .json()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("request thread"))
            .collect()
    });
    for answer in answers {
        assert_eq!(answer["metadata"]["version"], 1, "{answer}");
        assert_eq!(answer["flags"].as_array().map(Vec::len), Some(5));
    }
}

/// What every new isolate downloads and compiles: the module, gzipped at the best level, stays
/// within the 250 KiB budget of docs/benchmarks.md's "Worker module size" (251,347 bytes with
/// gzip -9 on 2026-12-08), so a change that grows it past the budget says so here.
#[test]
fn the_worker_module_stays_within_its_size_budget() {
    const BUDGET_BYTES: usize = 256_000;
    let wasm_path = integration_tests::worker::built_worker().join("index_bg.wasm");
    let wasm = std::fs::read(&wasm_path).expect("read the built module");
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&wasm).expect("gzip");
    let gzipped = encoder.finish().expect("gzip").len();
    assert!(
        gzipped <= BUDGET_BYTES,
        "{} is {gzipped} bytes gzipped, over the {BUDGET_BYTES}-byte budget: see docs/benchmarks.md's \
         \"Worker module size\" for what the module holds and how it was measured",
        wasm_path.display()
    );
}
