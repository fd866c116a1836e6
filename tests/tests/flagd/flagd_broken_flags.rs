//! A flagd file with broken flags, compiled by the publisher and served by the worker in
//! workerd: every broken flag answers `ERROR`/`PARSE_ERROR` without a value (the caller's
//! default), single and bulk, and the file's good flag is served normally.

use flags_compile::blob_file::{Provenance, seal};
use flags_compile::{CompileOptions, compile_path};
use integration_tests::worker::{Origin, Store, Worker, now_s, token};
use serde_json::{Value, json};

const ENV: &str = "prod";
const SECRET: &str = "broken-flags-secret";

#[test]
fn broken_flagd_flags_are_parse_error_at_the_edge_and_the_rest_is_served() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../publisher/tests/fixtures/flagd-one-broken.json");
    let compiled = compile_path(&file, &CompileOptions::new(ENV)).expect("the file compiles");
    assert_eq!(compiled.broken.len(), 4, "{:?}", compiled.broken);
    let provenance = Provenance {
        author: "test".into(),
        source_commit: None,
        source_dirty: false,
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    let store = Store::new();
    store.publish(ENV, 1, &seal(compiled.body, ENV, 1, None, &provenance));
    let origin = Origin::start(&store);
    let worker = Worker::start(&[
        ("FLAGS_ENV", ENV),
        ("ORIGIN_URL", &origin.url),
        ("IDENTITY_SECRET", SECRET),
    ]);
    // The edge reads only signed attributes for a flagd flag (it lists no unsigned ones).
    let auth = format!(
        "Bearer {}",
        token(
            json!({"sub": "u1", "exp": now_s() + 600, "plan": "pro"}),
            SECRET
        )
    );
    let headers = [("Authorization", auth.as_str())];
    let context = json!({"context": {}});

    let banner = worker.post("/ofrep/v1/evaluate/flags/banner", &context, &headers);
    assert_eq!(banner.status, 200, "{}", banner.body);
    let banner: Value = banner.json();
    assert_eq!(banner["value"], true, "{banner}");
    assert_eq!(banner["reason"], "TARGETING_MATCH");

    let broken = [
        "unknown-operator",
        "missing-evaluator",
        "wrong-variant-type",
        "malformed-fractional",
    ];
    for key in broken {
        let reply = worker.post(
            &format!("/ofrep/v1/evaluate/flags/{key}"),
            &context,
            &headers,
        );
        assert_eq!(reply.status, 400, "{key}: {}", reply.body);
        let answer: Value = reply.json();
        assert_eq!(answer["errorCode"], "PARSE_ERROR", "{key}: {answer}");
        assert!(answer.get("value").is_none(), "{key}: {answer}");
    }

    let bulk = worker.post("/ofrep/v1/evaluate/flags", &context, &headers);
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    let bulk: Value = bulk.json();
    let flags = bulk["flags"].as_array().expect("flags");
    assert_eq!(flags.len(), 5, "{bulk}");
    for flag in flags {
        let key = flag["key"].as_str().unwrap_or_default();
        if key == "banner" {
            assert_eq!(flag["value"], true, "{flag}");
        } else {
            assert!(broken.contains(&key), "{flag}");
            assert_eq!(flag["errorCode"], "PARSE_ERROR", "{flag}");
        }
    }
}
