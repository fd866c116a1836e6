//! Native/Wasm parity: the same 10,000 random (flag, context) cases answered by the worker in
//! workerd (bulk, 100 flags per request) and by the same pipeline compiled natively.

use integration_tests::worker::random::{self, Rng};
use integration_tests::worker::{Origin, Store, Worker, now_s, token};
use serde_json::{Value, json};
use shared_eval::Snapshot;

const SECRET: &str = "parity-secret";
const ENV: &str = "parity";

#[test]
fn ten_thousand_random_cases_answer_identically_native_and_in_workerd() {
    let mut rng = Rng::new(0x5eed_0001);
    let blob = random::blob(&mut rng, ENV, 7, 100);
    let snapshot = Snapshot::from_blob(blob.clone()).expect("generated blob is valid");
    let store = Store::new();
    store.publish(ENV, 7, &blob);
    let origin = Origin::start(&store);
    let worker = Worker::start(&[
        ("FLAGS_ENV", ENV),
        ("ORIGIN_URL", &origin.url),
        ("IDENTITY_SECRET", SECRET),
    ]);

    let mut cases = 0;
    let mut mismatches = Vec::new();
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for n in 0..100 {
        let caller = random::caller(&mut rng, n);
        let token = caller.claims.as_ref().map(|claims| {
            let mut claims = claims.clone();
            claims.insert("exp".into(), json!(now_s() + 3600));
            token(Value::Object(claims), SECRET)
        });
        let body = json!({ "context": caller.body_context });
        let bearer = token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("Authorization", b.as_str()))
            .collect();
        let reply = worker.post("/ofrep/v1/evaluate/flags", &body, &headers);
        assert_eq!(reply.status, 200, "{}", reply.body);
        let in_worker = reply.json();

        let body_bytes = body.to_string().into_bytes();
        let native = edge_worker::ofrep::handle(
            &edge_worker::ofrep::EvalRequest {
                key: None,
                body: &body_bytes,
                authorization: bearer.as_deref(),
                ..Default::default()
            },
            Some(edge_worker::ofrep::Served {
                snapshot: &snapshot,
                version: 7,
                canary: None,
                event_streams: true,
            }),
            Some(SECRET),
            now_s() * 1000,
        );
        assert_eq!(native.status, 200);
        let native: Value = serde_json::from_slice(&native.body).expect("native JSON");
        assert_eq!(
            in_worker["metadata"],
            json!({"environment": ENV, "version": 7, "track": "stable"})
        );
        let (worker_flags, native_flags) = (
            in_worker["flags"].as_array().unwrap(),
            native["flags"].as_array().unwrap(),
        );
        assert_eq!(worker_flags.len(), 100);
        assert_eq!(native_flags.len(), 100);
        for (w, n) in worker_flags.iter().zip(native_flags) {
            cases += 1;
            *reasons
                .entry(w["reason"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
            if w != n {
                mismatches.push(format!("caller {n:?}: worker {w} native {n}"));
            }
        }
    }
    assert_eq!(cases, 10_000);
    // The cases must exercise the evaluator, not only its error path.
    println!("reasons over 10,000 cases: {reasons:?}");
    for reason in ["TARGETING_MATCH", "SPLIT", "DISABLED"] {
        assert!(
            reasons.get(reason).copied().unwrap_or(0) >= 100,
            "too few {reason}: {reasons:?}"
        );
    }
    assert!(
        reasons.get("ERROR").copied().unwrap_or(0) < 5_000,
        "mostly errors: {reasons:?}"
    );
    assert!(
        mismatches.is_empty(),
        "{} of 10000 cases differ, e.g.:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
}

#[test]
fn single_flag_answers_match_native_evaluation() {
    let mut rng = Rng::new(0x5eed_0002);
    let blob = random::blob(&mut rng, ENV, 3, 50);
    let snapshot = Snapshot::from_blob(blob.clone()).expect("generated blob is valid");
    let store = Store::new();
    store.publish(ENV, 3, &blob);
    let origin = Origin::start(&store);
    let worker = Worker::start(&[
        ("FLAGS_ENV", ENV),
        ("ORIGIN_URL", &origin.url),
        ("IDENTITY_SECRET", SECRET),
    ]);

    for n in 0..10 {
        let caller = random::caller(&mut rng, n);
        let mut claims = caller.claims.clone().unwrap_or_default();
        claims.insert("sub".into(), json!(format!("user-{n}")));
        claims.insert("exp".into(), json!(now_s() + 3600));
        let bearer = format!("Bearer {}", token(Value::Object(claims), SECRET));
        let body = json!({ "context": caller.body_context });
        let body_bytes = body.to_string().into_bytes();
        let keys: Vec<String> = snapshot
            .flag_keys()
            .map(str::to_owned)
            .chain(["no-such-flag".to_owned()])
            .collect();
        for key in keys {
            let reply = worker.post(
                &format!("/ofrep/v1/evaluate/flags/{key}"),
                &body,
                &[("Authorization", &bearer)],
            );
            let native = edge_worker::ofrep::handle(
                &edge_worker::ofrep::EvalRequest {
                    key: Some(&key),
                    body: &body_bytes,
                    authorization: Some(&bearer),
                    ..Default::default()
                },
                Some(edge_worker::ofrep::Served {
                    snapshot: &snapshot,
                    version: 3,
                    canary: None,
                    event_streams: false,
                }),
                Some(SECRET),
                now_s() * 1000,
            );
            let native_json: Value = serde_json::from_slice(&native.body).unwrap();
            assert_eq!(
                (reply.status, reply.json()),
                (native.status, native_json),
                "flag {key}"
            );
            assert_eq!(reply.header("cache-control"), Some("private, no-store"));
        }
    }
}
