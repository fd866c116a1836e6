//! The evaluator corpus (`shared-eval/testdata/corpus/*.json`) through the SDK core: each
//! trusted-context case (the SDK's contexts are the caller's own, so every attribute counts as
//! signed) loaded as a gzipped blob through `Core::restore`, prepared and evaluated by key, must
//! give the hand-checked answer the edge gives (`shared-eval/tests/corpus.rs` holds the same
//! cases to `shared_eval::evaluate`). Every failure is reported at once.

use std::io::Write as _;
use std::path::Path;

use flags_sdk_core::{Core, SyncConfig, blob::sha256_hex};
use serde_json::{Map, Value, json};
use shared_eval::{Blob, BlobRef, Body, Header, Pointer};

fn load(path: &Path) -> (Core, Vec<Value>) {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut body = file["body"].clone();
    let object = body.as_object_mut().unwrap();
    if !object.contains_key("eval_order") {
        let n = object["flags"].as_array().map_or(0, Vec::len);
        object.insert("eval_order".into(), (0..n).collect::<Vec<_>>().into());
    }
    if let Some(regexes) = body.get_mut("regexes").and_then(Value::as_array_mut) {
        for regex in regexes {
            let compiled = shared_eval::compile_regex(regex.as_str().unwrap()).unwrap();
            *regex = serde_json::to_value(compiled).unwrap();
        }
    }
    let body: Body = serde_json::from_value(body).unwrap();
    let header = Header {
        environment: "test".into(),
        version: 1,
        previous: None,
        content_hash: String::new(),
        author: "corpus".into(),
        source_commit: None,
        created_at: "2024-01-01T00:00:00Z".into(),
    };
    let blob = Blob::new(header, body);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(&blob).unwrap()).unwrap();
    let gz = gz.finish().unwrap();
    let pointer = serde_json::to_vec(&Pointer {
        version: 1,
        stable: BlobRef::content_addressed(sha256_hex(&gz), blob.header.content_hash.clone()),
        canary: None,
        signature: None,
    })
    .unwrap();
    let core = Core::new("test", SyncConfig::default(), 1);
    core.restore(&pointer, |_| Some(gz.clone())).unwrap();
    (core, file["cases"].as_array().cloned().unwrap_or_default())
}

#[test]
fn the_corpus_answers_through_the_sdk_as_at_the_edge() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared-eval/testdata/corpus");
    let mut failures = Vec::new();
    let mut run = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let (core, cases) = load(path);
        for case in &cases {
            let trusted = case.get("unsigned").is_none()
                && case.get("identity_signed").and_then(Value::as_bool) != Some(false);
            if !trusted {
                continue;
            }
            run += 1;
            let context: Map<String, Value> =
                case["context"].as_object().cloned().unwrap_or_default();
            let now = case["now_ms"].as_i64().unwrap_or(0);
            let prepared = core.prepare(context);
            let got = core.evaluate(
                &prepared,
                case["flag"].as_str().unwrap(),
                || now,
                |e| {
                    let e = e.expect("loaded");
                    let mut got = json!({"reason": e.reason.as_str()});
                    if let Some(v) = e.value {
                        got["value"] = v.clone();
                    }
                    if let Some(v) = e.variant {
                        got["variant"] = json!(v);
                    }
                    if let Some(r) = e.rule {
                        got["rule"] = json!(r);
                    }
                    if let Some(code) = e.error {
                        got["error"] = json!(code.as_str());
                    }
                    got
                },
            );
            if got != case["expect"] {
                failures.push(format!(
                    "{}/{}: expected {}, got {got}",
                    path.file_name().unwrap().to_string_lossy(),
                    case["name"],
                    case["expect"]
                ));
            }
        }
    }
    assert!(run > 50, "only {run} trusted cases found");
    assert!(
        failures.is_empty(),
        "{} of {run} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
