//! The seed corpora, from the project's own inputs: `examples/flags` (every environment), the
//! evaluator corpus `shared-eval/testdata/corpus`, and the flagd testbed's flag file. Written
//! by each target at start-up (see [`crate::init`]), so the seeds follow the examples.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::{FIELD_SEPARATOR, NOW_MS, header, repo_root, sign_raw};
use flags_compile::{CompileOptions, compile_path};
use serde_json::{Map, Value, json};
use shared_eval::{Blob, Body};

/// Writes `target`'s seeds into `dir` (emptied first); returns how many.
pub fn write(target: &str, dir: &Path) -> usize {
    let root = repo_root();
    let mut seeds = Seeds::new(dir, target);

    // Blobs: the examples in every environment, each evaluator-corpus body, the testbed.
    let mut bodies: Vec<(String, Body)> = Vec::new();
    for env in ["dev", "staging", "prod"] {
        let options = CompileOptions {
            environment: env.into(),
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 21),
            new_environment: false,
        };
        match compile_path(&root.join("examples/flags"), &options) {
            Ok(compiled) => bodies.push((format!("examples-{env}"), compiled.body)),
            Err(diags) => panic!("examples/flags ({env}) does not compile: {diags:?}"),
        }
    }
    let mut contexts: Vec<Value> = vec![json!({})];
    for file in sorted_files(&root.join("shared-eval/testdata/corpus"), "json") {
        let doc: Value = read_json(&file);
        let name = stem(&file);
        // The corpus leaves `eval_order` out when it is the flags' own order.
        let mut body = doc["body"].clone();
        if let Some(object) = body.as_object_mut()
            && !object.contains_key("eval_order")
        {
            let n = object
                .get("flags")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            object.insert("eval_order".into(), (0..n).collect::<Vec<_>>().into());
        }
        if let Ok(body) = serde_json::from_value::<Body>(body) {
            bodies.push((format!("corpus-{name}"), body));
        }
        for case in doc["cases"].as_array().into_iter().flatten() {
            if let Some(context) = case.get("context") {
                contexts.push(context.clone());
            }
        }
    }
    let testbed = testbed_flags(&root);
    if let Some(path) = &testbed {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        seeds.add("flagd_import", "testkit-flags", text.as_bytes());
        // Each flag alone, with the evaluators it may reference.
        let doc: Value = serde_json::from_str(&text).unwrap_or_default();
        for (key, flag) in doc["flags"].as_object().into_iter().flatten() {
            let single = json!({"flags": {key: flag}, "$evaluators": doc["$evaluators"]});
            seeds.add("flagd_import", key, single.to_string().as_bytes());
        }
        if let Ok(body) = flags_compile::flagd::compile_flagd(&text, path, "prod") {
            bodies.push(("testbed".into(), body));
        }
    }
    for (name, body) in &bodies {
        let blob = Blob::new(header(), body.clone());
        let json = serde_json::to_vec(&blob).expect("blob JSON");
        let gz = gzip(&json);
        seeds.add("blob_json", name, &json);
        seeds.add("blob_gzip", name, &gz);
        // A truncated object: the gunzip must fail cleanly.
        seeds.add(
            "blob_gzip",
            &format!("{name}-truncated"),
            &gz[..gz.len() / 2],
        );
    }

    // Native flag files, alone and with each segment.
    let flags = sorted_files(&root.join("examples/flags/flags"), "yaml");
    let segments = sorted_files(&root.join("examples/flags/segments"), "yaml");
    for file in &flags {
        seeds.add(
            "native_yaml",
            &stem(file),
            &std::fs::read(file).unwrap_or_default(),
        );
    }
    for (file, segment) in flags.iter().zip(segments.iter().cycle()) {
        let mut text = std::fs::read(file).unwrap_or_default();
        text.extend_from_slice(b"\n---8<---\n");
        text.extend(std::fs::read(segment).unwrap_or_default());
        seeds.add(
            "native_yaml",
            &format!("{}+{}", stem(file), stem(segment)),
            &text,
        );
    }

    // Request bodies, tokens, whole OFREP requests.
    let tokens = [
        sign_raw(
            json!({"sub": "user-42", "exp": NOW_MS / 1000 + 3600, "plan": "premium"})
                .to_string()
                .as_bytes(),
        ),
        sign_raw(
            json!({"sub": "u", "exp": NOW_MS / 1000 - 1})
                .to_string()
                .as_bytes(),
        ),
    ];
    let claims = [
        json!({"sub": "user-42", "exp": NOW_MS / 1000 + 3600, "plan": "premium", "aud": "prod"}),
        json!({"sub": "u", "exp": NOW_MS / 1000 + 60, "nbf": NOW_MS / 1000 + 10}),
        json!({"sub": "", "exp": 1}),
    ];
    for (i, token) in tokens.iter().enumerate() {
        let mut seed = vec![0u8];
        seed.extend_from_slice(token.as_bytes());
        seeds.add("identity_token", &format!("token-{i}"), &seed);
    }
    for (i, claim) in claims.iter().enumerate() {
        let mut seed = vec![1u8];
        seed.extend(claim.to_string().into_bytes());
        seeds.add("identity_token", &format!("claims-{i}"), &seed);
    }
    let keys: Vec<String> = bodies
        .first()
        .map(|(_, body)| body.flags.iter().map(|f| f.key.clone()).collect())
        .unwrap_or_default();
    for (i, context) in contexts.iter().enumerate() {
        let body = json!({ "context": context }).to_string();
        seeds.add("context_json", &format!("context-{i}"), body.as_bytes());
        let key = keys.get(i % keys.len().max(1)).cloned().unwrap_or_default();
        let auth = format!("Bearer {}", tokens[i % tokens.len()]);
        let etag = "\"00000000000000000000000000000000\"";
        for (label, key) in [("single", key.as_str()), ("bulk", "")] {
            let fields: [&[u8]; 5] = [
                key.as_bytes(),
                body.as_bytes(),
                auth.as_bytes(),
                b"ff_token=x",
                etag.as_bytes(),
            ];
            seeds.add(
                "ofrep_request",
                &format!("{label}-{i}"),
                &fields.join(&FIELD_SEPARATOR),
            );
        }
    }
    seeds.count
}

/// Collects one target's seeds (the others' are computed on the way and dropped).
struct Seeds {
    dir: PathBuf,
    target: String,
    count: usize,
}

impl Seeds {
    fn new(dir: &Path, target: &str) -> Seeds {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("seed dir");
        Seeds {
            dir: dir.to_path_buf(),
            target: target.to_owned(),
            count: 0,
        }
    }

    fn add(&mut self, target: &str, name: &str, bytes: &[u8]) {
        if target != self.target {
            return;
        }
        let dir = &self.dir;
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '+' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        std::fs::write(dir.join(name), bytes).expect("write seed");
        self.count += 1;
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn sorted_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Object(Map::new()))
}

/// The flagd testbed's flag file: `FLAGD_TESTBED_DIR`, else `shared/conformance` beside the
/// repository (or beside one of its ancestors, for worktrees).
fn testbed_flags(root: &Path) -> Option<PathBuf> {
    let relative = "evaluator/flags/testkit-flags.json";
    if let Some(dir) = std::env::var_os("FLAGD_TESTBED_DIR") {
        return Some(PathBuf::from(dir).join(relative));
    }
    root.ancestors()
        .map(|a| a.join("shared/conformance/flagd-testbed").join(relative))
        .find(|p| p.is_file())
}
