//! Runs the evaluation corpus in `testdata/corpus/*.json` (format below) and reports every
//! failing case at once. `CORPUS_FILTER=split,-unicode` keeps cases whose `file/name` contains
//! `split` and drops those containing `unicode` (like regex's `REGEX_TEST`).
//!
//! A corpus file holds one compiled [`Body`] and the cases evaluated against it:
//!
//! ```json
//! { "description": "...",
//!   "body": { "attrs": [["targetingKey"]], "flags": [...], "eval_order": [0] },
//!   "cases": [ { "name": "...", "flag": "key",
//!                "context": {...}, "unsigned": {...}, "identity_signed": true, "now_ms": 0,
//!                "expect": { "value": ..., "variant": "...", "reason": "STATIC",
//!                            "rule": "...", "error": "GENERAL" } } ] }
//! ```
//! `eval_order` may be left out when no flag has prerequisites (it is then `0..n`). In
//! `expect`, a left-out field means "none". `unsigned` present means the context is built with
//! [`Context::with_unsigned`] and `identity_signed` (default true); otherwise [`Context::new`].
//! Expected results are worked out by hand from the documented semantics; the split cases
//! name the bucket they rely on, taken from `testdata/bucket-vectors.json`-style computation by
//! `testdata/bucketing.py`, never from this crate.

use std::{fs, path::Path};

use serde::Deserialize;
use serde_json::{Map, Value};
use shared_eval::{
    Blob, Body, Context, Header, Snapshot, evaluate, evaluate_all, evaluate_resolved,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorpusFile {
    #[allow(dead_code)]
    description: String,
    body: Value,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    flag: String,
    #[serde(default)]
    context: Map<String, Value>,
    #[serde(default)]
    unsigned: Option<Map<String, Value>>,
    #[serde(default = "yes")]
    identity_signed: bool,
    #[serde(default)]
    now_ms: i64,
    expect: Expect,
}

fn yes() -> bool {
    true
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    variant: Option<String>,
    reason: String,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn load(path: &Path) -> Result<(Snapshot, Vec<Case>), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("read: {e}"))?;
    let file: CorpusFile = serde_json::from_str(&text).map_err(|e| format!("corpus JSON: {e}"))?;
    let mut body = file.body;
    if let Some(object) = body.as_object_mut()
        && !object.contains_key("eval_order")
    {
        let n = object
            .get("flags")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        object.insert("eval_order".into(), (0..n).collect::<Vec<_>>().into());
    }
    // Regexes are written as their sources; the blob carries them compiled, as the publisher
    // compiles them.
    if let Some(regexes) = body.get_mut("regexes").and_then(Value::as_array_mut) {
        for regex in regexes {
            let source = regex.as_str().ok_or("regexes: not a string")?;
            let compiled = shared_eval::compile_regex(source).map_err(|e| format!("regex: {e}"))?;
            *regex = serde_json::to_value(compiled).map_err(|e| format!("regex: {e}"))?;
        }
    }
    let body: Body = serde_json::from_value(body).map_err(|e| format!("body: {e}"))?;
    let header = Header {
        environment: "test".into(),
        version: 1,
        previous: None,
        content_hash: String::new(),
        author: "corpus".into(),
        source_commit: None,
        created_at: "2024-01-01T00:00:00Z".into(),
    };
    let snapshot =
        Snapshot::from_blob(Blob::new(header, body)).map_err(|e| format!("load: {e}"))?;
    Ok((snapshot, file.cases))
}

fn selected(id: &str) -> bool {
    let Ok(filter) = std::env::var("CORPUS_FILTER") else {
        return true;
    };
    let mut include_terms = false;
    let mut included = false;
    for term in filter.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if let Some(excluded) = term.strip_prefix('-') {
            if id.contains(excluded) {
                return false;
            }
        } else {
            include_terms = true;
            included |= id.contains(term);
        }
    }
    !include_terms || included
}

#[test]
fn corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus");
    let mut paths: Vec<_> = fs::read_dir(&dir)
        .expect("testdata/corpus exists")
        .map(|entry| entry.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no corpus files in {}", dir.display());

    let (mut ran, mut failures) = (0, Vec::new());
    for path in &paths {
        let file_name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_string();
        let (snapshot, cases) = match load(path) {
            Ok(loaded) => loaded,
            Err(why) => {
                failures.push(format!("{file_name}: {why}"));
                continue;
            }
        };
        for case in cases {
            let id = format!("{file_name}/{}", case.name);
            if !selected(&id) {
                continue;
            }
            ran += 1;
            let empty = Map::new();
            let ctx = match &case.unsigned {
                Some(unsigned) => {
                    Context::with_unsigned(&case.context, unsigned, case.identity_signed)
                }
                None if !case.identity_signed => {
                    Context::with_unsigned(&case.context, &empty, false)
                }
                None => Context::new(&case.context),
            };
            let got = evaluate(&snapshot, &case.flag, &ctx, case.now_ms);
            let got = Expect {
                value: got.value.cloned(),
                variant: got.variant.map(str::to_string),
                reason: got.reason.as_str().to_string(),
                rule: got.rule.map(str::to_string),
                error: got.error.map(|e| e.as_str().to_string()),
            };
            if got != case.expect {
                failures.push(format!(
                    "{id}:\n    expected {:?}\n    got      {got:?}",
                    case.expect
                ));
            }
            // evaluate_all must agree with evaluate, flag by flag.
            if let Some((_, all)) = evaluate_all(&snapshot, &ctx, case.now_ms)
                .into_iter()
                .find(|(k, _)| *k == case.flag)
            {
                let one = evaluate(&snapshot, &case.flag, &ctx, case.now_ms);
                if all != one {
                    failures.push(format!("{id}: evaluate_all gave {all:?}, evaluate {one:?}"));
                }
            }
            // One resolved context shared by every flag (lookups cached across flags, in
            // reverse key order this time) must agree with evaluate too.
            let resolved = snapshot.resolve(&ctx);
            let keys: Vec<&str> = snapshot.flag_keys().collect();
            for key in keys.iter().rev().chain([&case.flag.as_str()]) {
                let shared = evaluate_resolved(&resolved, key, case.now_ms);
                let one = evaluate(&snapshot, key, &ctx, case.now_ms);
                if shared != one {
                    failures.push(format!(
                        "{id}: evaluate_resolved({key}) gave {shared:?}, evaluate {one:?}"
                    ));
                }
            }
        }
    }
    println!(
        "corpus: {ran} cases from {} files, {} failures",
        paths.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        ran > 0 || std::env::var("CORPUS_FILTER").is_ok(),
        "no cases ran"
    );
}
