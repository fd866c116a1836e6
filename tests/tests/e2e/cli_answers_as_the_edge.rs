//! `publisher eval` answers as the worker does (issue 11's example): `internal-debug-panel` is
//! a permission flag serving `on` in dev, but only to a verified identity. The same request,
//! anonymous (no token, `{}` context) and then with a signed token, goes to the worker in
//! workerd and to the CLI (`--context '{}'`, `--signed`); value, variant and reason agree.

use std::process::Command;

use flags_compile::blob_file::{Provenance, seal};
use flags_compile::{CompileOptions, compile_path};
use integration_tests::publisher_bin;
use integration_tests::worker::{Origin, Store, Worker, now_s, token};
use serde_json::{Value, json};

const ENV: &str = "dev";
const SECRET: &str = "cli-edge-secret";
const KEY: &str = "internal-debug-panel";

fn cli(args: &[&str]) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut all = vec!["eval", "--flags", "examples/flags", "--env", ENV];
    all.extend_from_slice(args);
    all.extend_from_slice(&[KEY, "--json"]);
    let out = Command::new(publisher_bin())
        .args(&all)
        .current_dir(root)
        .output()
        .expect("publisher runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn answer(v: &Value) -> (Value, Value, Value) {
    (
        v["value"].clone(),
        v["variant"].clone(),
        v["reason"].clone(),
    )
}

#[test]
fn eval_agrees_with_the_worker_on_anonymous_and_signed_requests() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flags");
    let compiled = compile_path(&dir, &CompileOptions::new(ENV)).expect("the examples compile");
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
    let path = format!("/ofrep/v1/evaluate/flags/{KEY}");

    let anonymous = worker.post(&path, &json!({"context": {}}), &[]);
    assert_eq!(anonymous.status, 200, "{}", anonymous.body);
    let anonymous: Value = anonymous.json();
    assert_eq!(
        answer(&anonymous),
        (json!(false), json!("off"), json!("DEFAULT"))
    );
    assert_eq!(answer(&cli(&["--context", "{}"])), answer(&anonymous));

    let auth = format!(
        "Bearer {}",
        token(json!({"sub": "u1", "exp": now_s() + 600}), SECRET)
    );
    let signed = worker.post(
        &path,
        &json!({"context": {}}),
        &[("Authorization", auth.as_str())],
    );
    assert_eq!(signed.status, 200, "{}", signed.body);
    let signed: Value = signed.json();
    assert_eq!(answer(&signed).0, json!(true), "{signed}");
    assert_eq!(
        answer(&cli(&["--signed", r#"{"sub":"u1"}"#])),
        answer(&signed)
    );
}
