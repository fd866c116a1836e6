//! Property tests of the evaluator: stickiness of splits, independence from attribute order,
//! and no panics on any context, any bytes, or any mutation of a valid blob.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use shared_eval::{
    Blob, Body, Context, ErrorCode, Header, Snapshot, evaluate, evaluate_all, evaluate_resolved,
};

fn header() -> Header {
    Header {
        environment: "test".into(),
        version: 1,
        previous: None,
        content_hash: String::new(),
        author: "proptest".into(),
        source_commit: None,
        created_at: "2024-01-01T00:00:00Z".into(),
    }
}

/// The corpus bodies: every operator, segments, prerequisites and splits.
fn corpus_bodies() -> Vec<Body> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus");
    let mut bodies = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut body = file["body"].clone();
        if body.get("eval_order").is_none() {
            let n = body["flags"].as_array().unwrap().len();
            body["eval_order"] = (0..n).collect::<Vec<_>>().into();
        }
        // Written as sources, stored compiled (see tests/corpus.rs).
        if let Some(regexes) = body.get_mut("regexes").and_then(Value::as_array_mut) {
            for regex in regexes {
                let compiled = shared_eval::compile_regex(regex.as_str().unwrap()).unwrap();
                *regex = serde_json::to_value(compiled).unwrap();
            }
        }
        bodies.push(serde_json::from_value(body).unwrap());
    }
    bodies
}

fn rollout(on_weight: u32, salt: &str) -> Snapshot {
    let body: Body = serde_json::from_value(json!({
        "attrs": [["targetingKey"]],
        "flags": [{
            "key": "rollout", "kind": "release", "value_type": "boolean",
            "variants": [{"name": "on", "value": true}, {"name": "off", "value": false}],
            "default_variant": 1, "enabled": true, "salt": salt,
            "targeting": {"rules": {"rules": [], "fallthrough": {"split": {
                "bucket_by": 0, "weights": [[0, on_weight], [1, 100_000 - on_weight]]}}}}
        }],
        "eval_order": [0]
    }))
    .unwrap();
    Snapshot::from_blob(Blob::new(header(), body)).unwrap()
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            "[a-z]{0,8}",
            "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-[a-z0-9.]{0,6})?",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,4})?(Z|[+-][0-9]{2}:[0-9]{2})",
            ".{0,12}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                "[a-z]{1,6}|targetingKey|user|plan|country|v|when|email|org|id|n|age|tags",
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arbitrary_context() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(
        (
            prop_oneof![
                Just("targetingKey".to_string()),
                Just("user".to_string()),
                Just("v".to_string()),
                Just("when".to_string()),
                Just("country".to_string()),
                Just("plan".to_string()),
                Just("age".to_string()),
                Just("email".to_string()),
                Just("org".to_string()),
                Just("n".to_string()),
                "[a-z]{1,4}",
            ],
            arbitrary_json(),
        ),
        0..8,
    )
    .prop_map(|pairs| pairs.into_iter().collect())
}

proptest! {
    /// Raising the first variant's weight only ever adds users to it.
    #[test]
    fn raising_a_percentage_never_removes_a_user(
        user in ".{0,24}",
        salt in "[a-z-]{0,10}",
        low in 0u32..=100_000,
        raise in 0u32..=100_000,
    ) {
        let high = low.saturating_add(raise).min(100_000);
        let (before, after) = (rollout(low, &salt), rollout(high, &salt));
        let ctx_map: Map<String, Value> = [("targetingKey".to_string(), Value::from(user))].into_iter().collect();
        let ctx = Context::new(&ctx_map);
        let was_on = evaluate(&before, "rollout", &ctx, 0).variant == Some("on");
        let is_on = evaluate(&after, "rollout", &ctx, 0).variant == Some("on");
        prop_assert!(!was_on || is_on, "on at {} but not at {}", low, high);
    }

    /// The order in which attributes were inserted into the context changes nothing.
    #[test]
    fn attribute_order_does_not_matter(pairs in prop::collection::vec(("[a-z]{1,3}|v|when|country|plan|age|targetingKey", arbitrary_json()), 0..8)) {
        let forward: Map<String, Value> = pairs.iter().cloned().collect();
        // Reversed insertion, with the same last-write-wins result per key.
        let mut reversed = Map::new();
        for (k, v) in pairs.iter().rev() {
            if !reversed.contains_key(k) {
                reversed.insert(k.clone(), forward[k].clone());
            }
            let _ = v;
        }
        for body in corpus_bodies() {
            let snapshot = Snapshot::from_blob(Blob::new(header(), body)).unwrap();
            let a = evaluate_all(&snapshot, &Context::new(&forward), 0);
            let b = evaluate_all(&snapshot, &Context::new(&reversed), 0);
            prop_assert_eq!(a, b);
        }
    }

    /// Any context, signed or not, with any unsigned part: evaluation returns, never panics.
    #[test]
    fn evaluate_never_panics(signed in arbitrary_context(), unsigned in arbitrary_context(), identity in any::<bool>(), now in any::<i64>()) {
        for body in corpus_bodies() {
            let snapshot = Snapshot::from_blob(Blob::new(header(), body)).unwrap();
            for ctx in [Context::new(&signed), Context::with_unsigned(&signed, &unsigned, identity)] {
                let all = evaluate_all(&snapshot, &ctx, now);
                prop_assert_eq!(all.len(), snapshot.flag_keys().count());
                let _ = evaluate(&snapshot, "no-such-flag", &ctx, now);
            }
        }
    }

    /// Any context: a resolved context shared by every flag (attribute lookups cached across
    /// flags, signed and unsigned) gives exactly what evaluating each flag alone gives.
    #[test]
    fn resolved_context_agrees_with_single_evaluation(signed in arbitrary_context(), unsigned in arbitrary_context(), identity in any::<bool>(), now in any::<i64>()) {
        for body in corpus_bodies() {
            let snapshot = Snapshot::from_blob(Blob::new(header(), body)).unwrap();
            for ctx in [Context::new(&signed), Context::with_unsigned(&signed, &unsigned, identity)] {
                let resolved = snapshot.resolve(&ctx);
                for (key, all) in evaluate_all(&snapshot, &ctx, now) {
                    let one = evaluate(&snapshot, key, &ctx, now);
                    prop_assert_eq!(&all, &one);
                    prop_assert_eq!(evaluate_resolved(&resolved, key, now), one);
                }
                prop_assert_eq!(evaluate_resolved(&resolved, "no-such-flag", now).error, Some(ErrorCode::FlagNotFound));
            }
        }
    }

    /// Arbitrary bytes are refused (or, by chance, loaded) without a panic.
    #[test]
    fn from_json_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Snapshot::from_json(&bytes);
    }

    /// Valid blobs with bytes flipped, inserted or removed: refused or loaded, never a panic;
    /// the mutated body is also re-hashed, so the body checks themselves get exercised, and
    /// whatever loads must evaluate without panicking.
    #[test]
    fn mutated_blobs_never_panic(which in 0usize..6, edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)) {
        let bodies = corpus_bodies();
        let body = bodies[which % bodies.len()].clone();
        let mut text = serde_json::to_vec(&Blob::new(header(), body.clone())).unwrap();
        let mut body_text = serde_json::to_vec(&body).unwrap();
        for (at, byte, kind) in &edits {
            for buf in [&mut text, &mut body_text] {
                let i = at.index(buf.len().max(1)).min(buf.len().saturating_sub(1));
                match kind {
                    0 if !buf.is_empty() => buf[i] = *byte,
                    1 => buf.insert(i, *byte),
                    _ if !buf.is_empty() => { buf.remove(i); }
                    _ => {}
                }
            }
        }
        let _ = Snapshot::from_json(&text);
        if let Ok(body) = serde_json::from_slice::<Body>(&body_text)
            && let Ok(snapshot) = Snapshot::from_blob(Blob::new(header(), body))
        {
            let ctx_map: Map<String, Value> = serde_json::from_value(json!({
                "targetingKey": "user-1", "v": "gold", "country": "US", "plan": "pro", "age": 30,
                "when": "2024-01-01T00:00:00Z", "user": {"tags": ["beta"]}, "org": {"id": "org-7"}, "n": 42
            })).unwrap();
            let _ = evaluate_all(&snapshot, &Context::new(&ctx_map), 0);
        }
    }
}

#[test]
fn bad_bodies_are_refused_with_the_flag_named() {
    let base = json!({
        "attrs": [["targetingKey"]],
        "flags": [{"key": "f", "kind": "release", "value_type": "boolean",
                   "variants": [{"name": "on", "value": true}], "default_variant": 0, "enabled": true,
                   "targeting": {"rules": {"rules": [{"id": "r1", "condition": {"test": {"attr": 0, "op": "exists"}},
                                 "serve": {"variant": 0}}], "fallthrough": {"variant": 0}}}}],
        "eval_order": [0]
    });
    let load = |mutate: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        mutate(&mut v);
        let body: Body = serde_json::from_value(v).unwrap();
        Snapshot::from_blob(Blob::new(header(), body))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(load(&|_| {}), Ok(()));
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "attribute #5",
            Box::new(|v| {
                v["flags"][0]["targeting"]["rules"]["rules"][0]["condition"]["test"]["attr"] =
                    json!(5)
            }),
        ),
        (
            "variant #3",
            Box::new(|v| v["flags"][0]["default_variant"] = json!(3)),
        ),
        (
            "not of the flag's type",
            Box::new(|v| v["flags"][0]["variants"][0]["value"] = json!("yes")),
        ),
        (
            "sum to 10",
            Box::new(|v| {
                v["flags"][0]["targeting"]["rules"]["fallthrough"] =
                    json!({"split": {"bucket_by": 0, "weights": [[0, 10]]}})
            }),
        ),
        ("eval_order", Box::new(|v| v["eval_order"] = json!([0, 0]))),
        (
            "own prerequisite",
            Box::new(|v| v["flags"][0]["prerequisites"] = json!([{"flag": 0, "variants": [0]}])),
        ),
        (
            "segment #0",
            Box::new(|v| {
                v["flags"][0]["targeting"]["rules"]["rules"][0]["condition"] = json!({"segment": 0})
            }),
        ),
        (
            "regex #0",
            Box::new(|v| {
                v["regexes"] = json!([{"source": "(", "dfa": "AAAA"}]);
            }),
        ),
        (
            "list #0 is not sorted",
            Box::new(|v| v["lists"] = json!([["b", "a"]])),
        ),
        (
            "deeper than 32",
            Box::new(|v| {
                let mut c = json!({"test": {"attr": 0, "op": "exists"}});
                for _ in 0..40 {
                    c = json!({"not": c});
                }
                v["flags"][0]["targeting"]["rules"]["rules"][0]["condition"] = c;
            }),
        ),
    ];
    for (want, mutate) in cases {
        let err = load(&*mutate).expect_err(want);
        assert!(err.contains(want), "expected {want:?} in {err:?}");
    }
    // Flags naming the rule: a bad rule is reported with its id.
    let err = load(&|v| {
        v["flags"][0]["targeting"]["rules"]["rules"][0]["condition"]["test"]["attr"] = json!(5)
    })
    .unwrap_err();
    assert!(
        err.contains("flag `f`") && err.contains("rule `r1`"),
        "{err}"
    );
}

#[test]
fn exponential_segment_reuse_is_refused() {
    // Segment k uses segment k-1 eight times: 8^9 tests per evaluation from a tiny blob.
    let mut segments =
        vec![json!({"key": "s0", "condition": {"test": {"attr": 0, "op": "exists"}}})];
    for k in 1..10 {
        let uses: Vec<Value> = (0..8).map(|_| json!({"segment": k - 1})).collect();
        segments.push(json!({"key": format!("s{k}"), "condition": {"all": uses}}));
    }
    let body: Body = serde_json::from_value(json!({
        "attrs": [["targetingKey"]], "segments": segments,
        "flags": [{"key": "f", "kind": "release", "value_type": "boolean",
                   "variants": [{"name": "on", "value": true}], "default_variant": 0, "enabled": true,
                   "targeting": {"rules": {"rules": [{"id": "r1", "condition": {"segment": 9}, "serve": {"variant": 0}}],
                                 "fallthrough": {"variant": 0}}}}],
        "eval_order": [0]
    }))
    .unwrap();
    let err = Snapshot::from_blob(Blob::new(header(), body))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("over the limit"), "{err}");
}
