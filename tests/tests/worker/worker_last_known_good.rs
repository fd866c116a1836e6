//! Last-known-good in workerd: every way a load can fail keeps the previous blob serving,
//! and the health endpoint names the failure. Each case is published, then the worker is
//! purged (so it revalidates against the origin at once) and checked.

use std::time::Duration;

use integration_tests::worker::random::{self, Rng};
use integration_tests::worker::{Origin, OriginMode, Reply, Store, Worker, gzip, sha256_hex};
use serde_json::{Value, json};

const ENV: &str = "lkg";
const PURGE: &str = "lkg-purge";

fn purge(worker: &Worker) -> Value {
    let reply: Reply = worker.request(
        "POST",
        "/_flags/purge",
        &[("Authorization", &format!("Bearer {PURGE}"))],
        Some(b""),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// The worker still serves version 1 (health and OFREP agree) and reports `error`.
#[track_caller]
fn assert_still_serving_v1(worker: &Worker, health: &Value, error: &str) {
    assert_eq!(health["version"], 1, "{health:#}");
    assert_eq!(health["loaded"], true);
    let message = health["last_error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(error),
        "expected {error:?}, got {message:?}"
    );
    assert!(health["consecutive_failures"].as_u64() >= Some(1));
    assert!(health["last_error"]["recovered_at"].is_null(), "{health:#}");
    let bulk = worker.post(
        "/ofrep/v1/evaluate/flags",
        &json!({"context": {"targetingKey": "u"}}),
        &[],
    );
    assert_eq!(bulk.status, 200);
    assert_eq!(bulk.json()["metadata"]["version"], 1);
    assert_eq!(bulk.json()["flags"].as_array().map(Vec::len), Some(10));
}

#[test]
fn every_bad_load_keeps_the_previous_blob_and_says_why() {
    let store = Store::new();
    let v1 = random::blob(&mut Rng::new(11), ENV, 1, 10);
    store.publish(ENV, 1, &v1);
    let origin = Origin::start(&store);
    let worker = Worker::start(&[
        ("FLAGS_ENV", ENV),
        ("ORIGIN_URL", &origin.url),
        ("PURGE_TOKEN", PURGE),
        ("REVALIDATE_MS", "100"),
        ("CACHE_TTL_S", "600"),
        ("ORIGIN_TIMEOUT_MS", "500"),
    ]);
    let health = worker.health();
    assert_eq!(
        (health["version"].as_u64(), health["loaded"].as_bool()),
        (Some(1), Some(true))
    );

    let v2 = random::blob(&mut Rng::new(12), ENV, 2, 10);
    let v2_json = serde_json::to_vec(&v2).unwrap();
    let v2_gz = gzip(&v2_json);

    // Origin down: connections closed without an answer.
    origin.set_mode(OriginMode::Down);
    assert_still_serving_v1(
        &worker,
        &purge(&worker),
        "origin unreachable fetching pointer",
    );
    // Origin hanging past ORIGIN_TIMEOUT_MS.
    origin.set_mode(OriginMode::Hang);
    assert_still_serving_v1(
        &worker,
        &purge(&worker),
        "origin timed out fetching pointer",
    );
    origin.set_mode(OriginMode::Serve);

    // Pointer missing (404), pointer garbage, blob missing (404).
    std::fs::remove_file(store.dir.join(ENV).join("current.json")).unwrap();
    assert_still_serving_v1(&worker, &purge(&worker), "origin has no pointer (404)");
    std::fs::write(
        store.dir.join(ENV).join("current.json"),
        b"{\"version\": 2, \"blob\": ",
    )
    .unwrap();
    assert_still_serving_v1(&worker, &purge(&worker), "pointer is invalid");
    store.write_pointer(ENV, 2, &"c".repeat(64), "sha256:x");
    assert_still_serving_v1(&worker, &purge(&worker), "origin has no blob (404)");

    // Truncated blob: the bytes no longer hash to what the pointer says.
    let sha = sha256_hex(&v2_gz);
    store.write_blob(ENV, &sha, &v2_gz[..v2_gz.len() / 2]);
    store.write_pointer(ENV, 2, &sha, &v2.header.content_hash);
    assert_still_serving_v1(&worker, &purge(&worker), "blob sha256 is");
    // Wrong hash: a complete, valid blob under a pointer naming other bytes.
    let wrong = sha256_hex(b"something else");
    store.write_blob(ENV, &wrong, &v2_gz);
    store.write_pointer(ENV, 2, &wrong, &v2.header.content_hash);
    assert_still_serving_v1(&worker, &purge(&worker), "blob sha256 is");
    // Hash right but the gzip stream cut short (the publisher hashed the broken bytes).
    store.publish_raw(ENV, 2, &v2_gz[..v2_gz.len() - 8]);
    assert_still_serving_v1(
        &worker,
        &purge(&worker),
        "blob is not a complete gzip stream",
    );
    // Valid gzip, not JSON.
    store.publish_raw(ENV, 2, &gzip(&v2_json[..v2_json.len() - 20]));
    assert_still_serving_v1(&worker, &purge(&worker), "blob is not valid JSON");
    // A schema this build does not read.
    let mut future: Value = serde_json::from_slice(&v2_json).unwrap();
    future["schema"] = json!(99);
    store.publish_raw(ENV, 2, &gzip(future.to_string().as_bytes()));
    assert_still_serving_v1(
        &worker,
        &purge(&worker),
        "blob schema version 99, this build reads 2",
    );
    // Body edited after compilation: the content hash no longer matches.
    let mut tampered: Value = serde_json::from_slice(&v2_json).unwrap();
    tampered["body"]["flags"][0]["enabled"] =
        json!(!tampered["body"]["flags"][0]["enabled"].as_bool().unwrap());
    store.publish_raw(ENV, 2, &gzip(tampered.to_string().as_bytes()));
    assert_still_serving_v1(&worker, &purge(&worker), "blob content hash is");
    // A regex DFA corrupted before sealing (a publisher bug, not bit rot: the hash matches):
    // the loader's DFA check refuses the blob.
    let mut corrupt = v2.clone();
    corrupt.body.regexes[0].dfa.replace_range(8..16, "AAAAAAAA");
    let corrupt = shared_eval::Blob::new(corrupt.header, corrupt.body);
    store.publish_raw(ENV, 2, &gzip(&serde_json::to_vec(&corrupt).unwrap()));
    assert_still_serving_v1(
        &worker,
        &purge(&worker),
        "blob is inconsistent: regex #0: its DFA is invalid",
    );
    // A schema-1 blob, whose regexes are sources the edge cannot compile.
    let mut old: Value = serde_json::from_slice(&v2_json).unwrap();
    old["body"]["regexes"] = json!(["^[a-z]+@example\\.com$"]);
    let old_body = old["body"].to_string();
    old["header"]["content_hash"] = json!(format!("sha256:{}", sha256_hex(old_body.as_bytes())));
    let old = format!(
        r#"{{"schema":1,"header":{},"body":{old_body}}}"#,
        old["header"]
    );
    store.publish_raw(ENV, 2, &gzip(old.as_bytes()));
    assert_still_serving_v1(
        &worker,
        &purge(&worker),
        "blob schema version 1 stores regexes uncompiled",
    );
    // Another environment's blob.
    let staging = random::blob(&mut Rng::new(13), "staging", 2, 10);
    store.publish_raw(ENV, 2, &gzip(&serde_json::to_vec(&staging).unwrap()));
    assert_still_serving_v1(
        &worker,
        &purge(&worker),
        "blob is for environment \"staging\"",
    );

    // Failures back off, and a good publish is picked up once the origin is right again.
    store.publish(ENV, 2, &v2);
    let health = worker.wait_for_health(Duration::from_secs(10), |h| h["version"] == 2);
    assert_eq!(health["consecutive_failures"], 0);
    assert_eq!(health["loaded_from"], "origin");
    assert_eq!(health["content_hash"], v2.header.content_hash.as_str());
    assert!(
        health["last_error"]["message"].is_string(),
        "the last error stays visible, with its time"
    );
    assert!(
        health["last_error"]["recovered_at"].is_string(),
        "and is marked as past once a load succeeded: {health:#}"
    );
}
