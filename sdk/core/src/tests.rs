//! The core driven with scripted responses and times: every sync behaviour once.

use std::io::Write as _;

use serde_json::{Map, Value, json};
use shared_eval::{Blob, BlobRef, Body, CanaryRef, Header, Pointer, Share, in_canary};

use super::*;
use crate::blob::sha256_hex;

/// A sealed, gzipped blob for `dev` with these flags.
struct Made {
    gz: Vec<u8>,
    blob_ref: BlobRef,
}

fn made(version: u64, flags: Value) -> Made {
    made_for("dev", version, flags)
}

fn made_for(environment: &str, version: u64, flags: Value) -> Made {
    let order: Vec<usize> = (0..flags.as_array().map_or(0, Vec::len)).collect();
    let body: Body = serde_json::from_value(json!({
        "attrs": [["plan"]], "flags": flags, "eval_order": order
    }))
    .expect("body");
    let header = Header {
        environment: environment.into(),
        version,
        previous: None,
        content_hash: String::new(),
        author: "t".into(),
        source_commit: None,
        created_at: "2026-12-08T00:00:00Z".into(),
    };
    let blob = Blob::new(header, body);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(&blob).unwrap()).unwrap();
    let gz = gz.finish().unwrap();
    let blob_ref = BlobRef::content_addressed(sha256_hex(&gz), blob.header.content_hash.clone());
    Made { gz, blob_ref }
}

/// A boolean flag serving `value` to everyone (`on`/`off` variants).
fn flag(key: &str, value: bool) -> Value {
    json!({"key": key, "kind": "release", "value_type": "boolean",
        "variants": [{"name": "on", "value": true}, {"name": "off", "value": false}],
        "default_variant": 1, "off_variant": 1, "enabled": true,
        "targeting": {"rules": {"rules": [], "fallthrough": {"variant": if value { 0 } else { 1 }}}}})
}

fn pointer(version: u64, stable: &Made) -> Vec<u8> {
    serde_json::to_vec(&Pointer {
        version,
        stable: stable.blob_ref.clone(),
        canary: None,
        signature: None,
    })
    .unwrap()
}

fn ok(body: Vec<u8>) -> Response {
    Response::Ok { body, etag: None }
}

fn core() -> Core {
    Core::new("dev", SyncConfig::default(), 7)
}

/// Runs one full sync at `now`: pointer, then every blob asked for from `blobs`.
fn sync(core: &Core, now: u64, pointer: Vec<u8>, blobs: &[&Made]) -> Option<Update> {
    assert!(matches!(
        core.next(now),
        Step::Fetch(Request::Pointer { .. })
    ));
    let mut update = core.on_pointer(now, ok(pointer));
    while let Step::Fetch(Request::Blob { sha256 }) = core.next(now) {
        let blob = blobs
            .iter()
            .find(|b| b.blob_ref.sha256 == sha256)
            .expect("asked for a blob the pointer names");
        update = core.on_blob(now, &sha256, ok(blob.gz.clone()));
    }
    update
}

fn value(core: &Core, key: &str, attrs: Value) -> Option<Value> {
    let Value::Object(attrs) = attrs else {
        panic!("attrs")
    };
    let prepared = core.prepare(attrs);
    core.evaluate(&prepared, key, || 0, |e| e.and_then(|e| e.value.cloned()))
}

#[test]
fn first_sync_fetches_the_pointer_then_its_blob_and_is_ready() {
    let core = core();
    assert_eq!(core.status().status, Status::NotReady);
    let v1 = made(1, json!([flag("a", true), flag("b", false)]));
    let update = sync(&core, 1_000, pointer(1, &v1), &[&v1]).expect("installed");
    assert_eq!(update.version, 1);
    assert_eq!(update.changed, ["a", "b"]);
    assert_eq!(
        update.new_blobs,
        [(v1.blob_ref.sha256.clone(), v1.gz.clone())]
    );
    assert_eq!(core.status().status, Status::Ready);
    assert_eq!(value(&core, "a", json!({})), Some(json!(true)));
    // The next poll: 5 s +- 20%.
    match core.next(1_000) {
        Step::Wait(at) => assert!((5_000..=7_000).contains(&at), "{at}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_accepted_pointers_etag_is_sent_and_a_304_changes_nothing() {
    let core = core();
    let v1 = made(1, json!([flag("a", true)]));
    assert!(matches!(
        core.next(0),
        Step::Fetch(Request::Pointer { etag: None })
    ));
    let response = Response::Ok {
        body: pointer(1, &v1),
        etag: Some("\"p1\"".into()),
    };
    assert!(core.on_pointer(0, response).is_none());
    let Step::Fetch(Request::Blob { sha256 }) = core.next(0) else {
        panic!("blob")
    };
    assert!(core.on_blob(0, &sha256, ok(v1.gz.clone())).is_some());
    assert_eq!(
        core.next(10_000),
        Step::Fetch(Request::Pointer {
            etag: Some("\"p1\"".into())
        })
    );
    assert!(core.on_pointer(10_000, Response::NotModified).is_none());
    assert_eq!(core.status().status, Status::Ready);
    assert_eq!(core.status().version, Some(1));
}

#[test]
fn only_a_newer_version_is_taken_and_a_rollback_reuses_the_loaded_blob() {
    let core = core();
    let v1 = made(1, json!([flag("a", true)]));
    let v2 = made(2, json!([flag("a", false)]));
    sync(&core, 0, pointer(1, &v1), &[&v1]).unwrap();
    let update = sync(&core, 10_000, pointer(2, &v2), &[&v2]).unwrap();
    assert_eq!(update.changed, ["a"]);
    assert_eq!(value(&core, "a", json!({})), Some(json!(false)));
    // A lagging replica still answering version 1: ignored.
    assert!(sync(&core, 20_000, pointer(1, &v1), &[]).is_none());
    assert_eq!(core.status().version, Some(2));
    // Rollback: version 3 names v1's blob again; `sync` panics if a blob is asked for... v1's
    // side was swapped out, so it is fetched again.
    let update = sync(&core, 30_000, pointer(3, &v1), &[&v1]).unwrap();
    assert_eq!(
        (update.version, update.changed.as_slice()),
        (3, &["a".to_owned()][..])
    );
    // Version 4 over the same blob: nothing to fetch.
    let update = sync(&core, 40_000, pointer(4, &v1), &[]).unwrap();
    assert!(update.changed.is_empty() && update.new_blobs.is_empty());
    assert_eq!(core.status().version, Some(4));
}

#[test]
fn a_corrupt_blob_is_refused_and_the_last_good_one_kept() {
    let core = core();
    let v1 = made(1, json!([flag("a", true)]));
    let v2 = made(2, json!([flag("a", false)]));
    sync(&core, 0, pointer(1, &v1), &[&v1]).unwrap();
    assert!(matches!(
        core.next(10_000),
        Step::Fetch(Request::Pointer { .. })
    ));
    assert!(core.on_pointer(10_000, ok(pointer(2, &v2))).is_none());
    let Step::Fetch(Request::Blob { sha256 }) = core.next(10_000) else {
        panic!("blob")
    };
    let truncated = v2.gz[..v2.gz.len() / 2].to_vec();
    assert!(core.on_blob(10_000, &sha256, ok(truncated)).is_none());
    let report = core.status();
    assert_eq!((report.status, report.version), (Status::Stale, Some(1)));
    assert!(
        report.message.unwrap().contains("sha256"),
        "names the check"
    );
    assert_eq!(value(&core, "a", json!({})), Some(json!(true)));
    // Retried after the first backoff, drawn from [125, 250] ms.
    match core.next(10_000) {
        Step::Wait(at) => assert!((10_125..=10_250).contains(&at), "{at}"),
        other => panic!("{other:?}"),
    }
    // The pointer is asked for again (not its ETag: it was never accepted) and recovers.
    assert!(sync(&core, 10_250, pointer(2, &v2), &[&v2]).is_some());
    assert_eq!(core.status().status, Status::Ready);
}

#[test]
fn load_blob_refuses_what_the_edge_refuses() {
    let v1 = made(1, json!([flag("a", true)]));
    assert!(blob::load_blob(&v1.gz, &v1.blob_ref, "dev").is_ok());
    let mut flipped = v1.gz.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        blob::load_blob(&flipped, &v1.blob_ref, "dev"),
        Err(blob::BlobRefused::HashMismatch { .. })
    ));
    // Right hash, not gzip.
    let plain = b"{}".to_vec();
    let named = BlobRef::content_addressed(sha256_hex(&plain), String::new());
    assert_eq!(
        blob::load_blob(&plain, &named, "dev").err(),
        Some(blob::BlobRefused::Gzip)
    );
    // Already gunzipped (a worker over an S3 origin): taken on the content hash alone.
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&v1.gz[..]), &mut json).unwrap();
    assert!(blob::load_blob(&json, &v1.blob_ref, "dev").is_ok());
    let mut other = json.clone();
    let at = other.len() - 3;
    other[at] ^= 1;
    assert!(blob::load_blob(&other, &v1.blob_ref, "dev").is_err());
    // Another environment's blob.
    let prod = made_for("prod", 1, json!([flag("a", true)]));
    assert!(matches!(
        blob::load_blob(&prod.gz, &prod.blob_ref, "dev"),
        Err(blob::BlobRefused::Environment { .. })
    ));
    // The pointer names another content hash than the header's.
    let mut named = v1.blob_ref.clone();
    named.content_hash = format!("sha256:{}", "0".repeat(64));
    assert_eq!(
        blob::load_blob(&v1.gz, &named, "dev").err(),
        Some(blob::BlobRefused::ContentHash)
    );
}

#[test]
fn a_refused_key_is_fatal_and_never_retried() {
    for status in [401, 403] {
        let core = core();
        assert!(matches!(core.next(0), Step::Fetch(_)));
        core.on_pointer(0, Response::Status(status));
        let report = core.status();
        assert_eq!(report.status, Status::Fatal);
        assert!(report.message.unwrap().contains("SDK key"));
        assert_eq!(core.next(1_000_000), Step::Stopped);
        core.on_signal();
        assert_eq!(core.next(2_000_000), Step::Stopped);
    }
}

#[test]
fn failures_back_off_then_the_breaker_opens_and_probes() {
    let core = core();
    let v1 = made(1, json!([flag("a", true)]));
    let mut now = 0;
    // Four failures: delays drawn from [d/2, d], d = 250, 500, 1000, 2000.
    for d in [250, 500, 1_000, 2_000] {
        assert!(matches!(core.next(now), Step::Fetch(_)), "at {now}");
        core.on_pointer(now, Response::Failed("timeout".into()));
        assert_eq!(core.status().status, Status::Error);
        let Step::Wait(at) = core.next(now) else {
            panic!("waits")
        };
        assert!((now + d / 2..=now + d).contains(&at), "{d}: {at}");
        assert!(matches!(core.next(at - 1), Step::Wait(_)));
        now = at;
    }
    // The fifth opens the breaker for 30 s.
    assert!(matches!(core.next(now), Step::Fetch(_)));
    core.on_pointer(now, Response::Status(503));
    assert_eq!(core.next(now + 29_999), Step::Wait(now + 30_000));
    assert!(matches!(core.machine().breaker(), Breaker::Open(_)));
    // Half-open: one probe; it fails: open again at once (no backoff ladder).
    now += 30_000;
    assert!(matches!(core.next(now), Step::Fetch(_)));
    assert_eq!(core.machine().breaker(), Breaker::HalfOpen);
    core.on_pointer(now, Response::Failed("refused".into()));
    assert_eq!(core.next(now), Step::Wait(now + 30_000));
    // The next probe succeeds: closed, READY.
    now += 30_000;
    assert!(sync(&core, now, pointer(1, &v1), &[&v1]).is_some());
    assert_eq!(core.machine().breaker(), Breaker::Closed);
    assert_eq!(core.status().status, Status::Ready);
}

#[test]
fn a_stream_slows_polling_to_the_safety_poll_and_its_messages_poll_at_once() {
    let core = core();
    let v1 = made(1, json!([flag("a", true)]));
    sync(&core, 0, pointer(1, &v1), &[&v1]).unwrap();
    core.on_stream(0, true);
    let Step::Wait(at) = core.next(0) else {
        panic!("waits")
    };
    assert!((48_000..=72_000).contains(&at), "safety poll: {at}");
    core.on_signal();
    assert!(matches!(core.next(1), Step::Fetch(Request::Pointer { .. })));
    core.on_pointer(1, Response::NotModified);
    // A signal while a request is out polls again right after it.
    assert!(matches!(core.next(2), Step::Wait(_)));
    core.on_signal();
    assert!(matches!(core.next(3), Step::Fetch(Request::Pointer { .. })));
    assert_eq!(core.next(3), Step::Busy);
    core.on_signal();
    core.on_pointer(4, Response::NotModified);
    assert!(matches!(core.next(5), Step::Fetch(Request::Pointer { .. })));
    core.on_pointer(5, Response::NotModified);
    // The stream drops: back to the 5 s poll.
    core.on_stream(5, false);
    let Step::Wait(at) = core.next(5) else {
        panic!("waits")
    };
    assert!((4_005..=6_005).contains(&at), "poll: {at}");
}

#[test]
fn canary_sides_are_the_edges_and_changes_name_only_changed_flags() {
    let core = core();
    let stable = made(1, json!([flag("a", false), flag("b", true)]));
    let canary = made(2, json!([flag("a", true), flag("b", true)]));
    let salt = CanaryRef::salt_for("dev", 2);
    let percent = Share::from_percent(10.0).unwrap();
    let bytes = serde_json::to_vec(&Pointer {
        version: 2,
        stable: stable.blob_ref.clone(),
        canary: Some(CanaryRef {
            blob_ref: canary.blob_ref.clone(),
            percent,
            salt: salt.clone(),
            since: 2,
        }),
        signature: None,
    })
    .unwrap();
    let update = sync(&core, 0, bytes, &[&stable, &canary]).unwrap();
    assert_eq!(update.named.len(), 2);
    let mut on_canary = 0;
    for i in 0..2_000 {
        let key = format!("user-{i}");
        let expected = in_canary(&salt, percent.buckets(), Some(&key));
        on_canary += usize::from(expected);
        let Value::Object(attrs) = json!({"targetingKey": key}) else {
            unreachable!()
        };
        let prepared = core.prepare(attrs);
        assert_eq!(prepared.track() == Some(Track::Canary), expected, "{key}");
        let a = core.evaluate(&prepared, "a", || 0, |e| e.unwrap().value.cloned());
        assert_eq!(a, Some(json!(expected)), "{key}");
    }
    assert!((100..=300).contains(&on_canary), "about 10%: {on_canary}");
    assert_eq!(
        value(&core, "a", json!({})),
        Some(json!(false)),
        "no key: stable"
    );
    // Promote: stable becomes the canary's blob; for stable users only `a` changed.
    let update = sync(&core, 10_000, pointer(3, &canary), &[]).unwrap();
    assert_eq!(update.changed, ["a"]);
}

#[test]
fn a_prepared_context_follows_swaps_and_flag_ids_are_stable() {
    let core = core();
    let id = core.flag_id("a");
    assert_eq!(core.flag_id("a"), id);
    let Value::Object(attrs) = json!({"targetingKey": "u1"}) else {
        unreachable!()
    };
    let mut prepared = core.prepare(attrs);
    assert!(
        core.evaluate_id(&prepared, id, || 0, |e| e.is_none()),
        "nothing loaded"
    );
    let v1 = made(1, json!([flag("a", true)]));
    let v2 = made(2, json!([flag("a", false)]));
    sync(&core, 0, pointer(1, &v1), &[&v1]).unwrap();
    let read = |p: &PreparedContext| core.evaluate_id(p, id, || 0, |e| e.unwrap().value.cloned());
    assert_eq!(read(&prepared), Some(json!(true)));
    core.refresh(&mut prepared);
    sync(&core, 10_000, pointer(2, &v2), &[&v2]).unwrap();
    assert_eq!(
        read(&prepared),
        Some(json!(false)),
        "stale handle, new answer"
    );
    core.refresh(&mut prepared);
    assert_eq!(read(&prepared), Some(json!(false)));
    let missing = core.flag_id("missing");
    let error = core.evaluate_id(&prepared, missing, || 0, |e| e.unwrap().error);
    assert_eq!(error, Some(shared_eval::ErrorCode::FlagNotFound));
}

#[test]
fn counts_come_out_as_a_telemetry_batch_and_survive_a_swap() {
    let core = core();
    let v1 = made(1, json!([flag("a", true), flag("b", false)]));
    let v2 = made(2, json!([flag("a", false), flag("b", false)]));
    sync(&core, 0, pointer(1, &v1), &[&v1]).unwrap();
    assert_eq!(core.take_telemetry(), None);
    for _ in 0..3 {
        value(&core, "a", json!({}));
    }
    value(&core, "missing", json!({}));
    sync(&core, 10_000, pointer(2, &v2), &[&v2]).unwrap();
    value(&core, "a", json!({}));
    value(&core, "b", json!({}));
    let batch = core.take_telemetry().unwrap();
    assert_eq!(batch["environment"], "dev");
    let mut counts: Vec<(String, Option<String>, u64)> = batch["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["flag"].as_str().unwrap().to_owned(),
                c["variant"].as_str().map(str::to_owned),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("a".into(), Some("off".into()), 1),
            ("a".into(), Some("on".into()), 3),
            ("b".into(), Some("off".into()), 1),
        ]
    );
    assert_eq!(core.take_telemetry(), None, "taken");
    core.set_counting(false);
    value(&core, "a", json!({}));
    assert_eq!(core.take_telemetry(), None);
}

#[test]
fn a_restored_snapshot_serves_stale_until_a_sync_confirms_it() {
    let v1 = made(1, json!([flag("a", true)]));
    let core = core();
    let mut tampered = v1.gz.clone();
    tampered[20] ^= 0xff;
    let refused = core.restore(&pointer(1, &v1), |_| Some(tampered.clone()));
    assert!(refused.unwrap_err().contains("sha256"));
    assert_eq!(core.status().status, Status::NotReady);
    core.restore(&pointer(1, &v1), |sha| {
        (sha == v1.blob_ref.sha256).then(|| v1.gz.clone())
    })
    .unwrap();
    assert_eq!(core.status().status, Status::Stale);
    assert_eq!(value(&core, "a", json!({})), Some(json!(true)));
    // The origin is down: still stale, still served.
    assert!(matches!(core.next(0), Step::Fetch(_)));
    core.on_pointer(0, Response::Failed("connection refused".into()));
    assert_eq!(core.status().status, Status::Stale);
    // It comes back with the same version: READY.
    let Step::Wait(at) = core.next(0) else {
        panic!("waits")
    };
    assert!(sync(&core, at, pointer(1, &v1), &[]).is_none());
    assert_eq!(core.status().status, Status::Ready);
}

#[test]
fn an_unknown_blob_answer_or_a_bad_pointer_keeps_what_is_served() {
    let core = core();
    let v1 = made(1, json!([flag("a", true)]));
    sync(&core, 0, pointer(1, &v1), &[&v1]).unwrap();
    assert!(matches!(core.next(10_000), Step::Fetch(_)));
    core.on_pointer(10_000, ok(b"{\"version\": \"x\"}".to_vec()));
    let report = core.status();
    assert_eq!(report.status, Status::Stale);
    assert!(report.message.unwrap().starts_with("pointer refused"));
    // A 404 pointer names the environment.
    let fresh = super::Core::new("dev", SyncConfig::default(), 1);
    assert!(matches!(fresh.next(0), Step::Fetch(_)));
    fresh.on_pointer(0, Response::Status(404));
    assert_eq!(fresh.status().status, Status::Error);
    assert!(
        fresh
            .status()
            .message
            .unwrap()
            .contains("nothing is published")
    );
    let _ = Map::<String, Value>::new();
}
