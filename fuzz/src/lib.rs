//! The fuzz targets' bodies, as plain functions of the input bytes (each `fuzz_targets/*.rs`
//! is one line calling one of them). Each feeds untrusted bytes to one of the project's
//! parsers, the way production feeds them, and then checks what must hold for any input:
//! nothing panics, and whatever is accepted is usable (a loaded blob evaluates every flag, a
//! compiled body loads at the edge, an OFREP answer is a JSON body with a 2xx/4xx status).
//!
//! Run them with `cargo xtask fuzz` (see docs/testing.md, "Fuzzing"); `cargo xtask fuzz seeds` writes the
//! seed corpora from `examples/`, the evaluator corpus and the flagd testbed.

mod seeds;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edge_worker::ofrep::{self, EvalRequest, Served};
use edge_worker::{identity, loader};
use hmac::Mac as _;
use flags_compile::{self as compile, CompileOptions, native};
use serde_json::{Map, Value, json};
use shared_eval::{Blob, Context, Header, Snapshot};

/// The environment every target serves.
pub const ENVIRONMENT: &str = "prod";
/// The identity secret of the OFREP and token targets.
pub const SECRET: &str = "fuzz-identity-secret";
/// "Now" for every evaluation and token check (2026-11-21T00:00:00Z): fixed, so a run repeats.
pub const NOW_MS: i64 = 1_795_219_200_000;
/// Field separator of the OFREP target's input (0xFF never occurs in UTF-8 text).
pub const FIELD_SEPARATOR: u8 = 0xFF;

/// Start-up of every target: with `EDGEFLAGS_FUZZ_SEEDS=<dir>` set, writes the target's seed
/// corpus there first (`cargo xtask fuzz` passes that directory as a corpus too).
pub fn init(target: &str) {
    if let Some(dir) = std::env::var_os("EDGEFLAGS_FUZZ_SEEDS") {
        let count = seeds::write(target, Path::new(&dir));
        eprintln!(
            "{count} seeds for {target} in {}",
            Path::new(&dir).display()
        );
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `examples/flags` compiled for [`ENVIRONMENT`]: the snapshot the request targets evaluate.
pub fn example_snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let compiled = compile::compile_path(
            &repo_root().join("examples/flags"),
            &CompileOptions {
                environment: ENVIRONMENT.into(),
                today: chrono::NaiveDate::from_ymd_opt(2026, 11, 21),
                // Whatever environments the input defines: fuzz the compiler, not the typo check.
                new_environment: true,
            },
        )
        .unwrap_or_else(|diags| panic!("examples/flags does not compile: {diags:?}"));
        Snapshot::from_blob(Blob::new(header(), compiled.body)).expect("examples load")
    })
}

/// A header for [`ENVIRONMENT`] (the content hash is filled by `Blob::new`).
pub fn header() -> Header {
    Header {
        environment: ENVIRONMENT.into(),
        version: 1,
        previous: None,
        content_hash: String::new(),
        author: "fuzz".into(),
        source_commit: None,
        created_at: "2026-11-21T00:00:00Z".into(),
    }
}

/// Contexts every loaded snapshot is evaluated for: empty, a typical user, odd types.
fn contexts() -> &'static [Map<String, Value>] {
    static CONTEXTS: OnceLock<Vec<Map<String, Value>>> = OnceLock::new();
    CONTEXTS.get_or_init(|| {
        [
            json!({}),
            json!({"targetingKey": "user-42", "plan": "premium", "country": "US",
                   "appVersion": "2.3.1", "email": "ada@example.com", "beta": true,
                   "user": {"plan": "pro", "age": 41}, "signupDate": "2024-01-01T00:00:00Z"}),
            json!({"targetingKey": 7, "plan": null, "country": ["US"], "appVersion": "x.y",
                   "email": {"a": 1}, "beta": "true", "user": [1, 2], "signupDate": 1.5e300}),
        ]
        .into_iter()
        .filter_map(|v| v.as_object().cloned())
        .collect()
    })
}

/// Evaluates every flag of `snapshot`, in bulk and one by one, signed and anonymous.
fn evaluate_everything(snapshot: &Snapshot) {
    let empty = Map::new();
    for ctx in contexts() {
        for context in [
            Context::new(ctx),
            Context::with_unsigned(&empty, ctx, false),
        ] {
            let all = shared_eval::evaluate_all(snapshot, &context, NOW_MS);
            for (key, bulk) in &all {
                let single = shared_eval::evaluate(snapshot, key, &context, NOW_MS);
                // One evaluator: bulk and single answers agree.
                assert_eq!(bulk.value, single.value, "flag {key}");
                assert_eq!(bulk.variant, single.variant, "flag {key}");
            }
        }
    }
}

/// A `.gz` blob object as the edge receives it from the origin, with a pointer naming its
/// hash (the fuzzer could never match a SHA-256), and as the publisher reads it back.
pub fn blob_gzip(data: &[u8]) {
    let sha = loader::sha256_hex(data);
    let edge = loader::decode_blob(data, &sha, None, ENVIRONMENT);
    let publisher = flags_compile::blob_file::load_gzip(data);
    if let Ok(snapshot) = &edge {
        // What the edge loads the publisher loads too (it does not check the environment).
        assert!(
            publisher.is_ok(),
            "edge loaded a blob the publisher refuses"
        );
        evaluate_everything(snapshot);
    }
}

/// Blob JSON as the edge receives it when the runtime already gunzipped it, then the same
/// JSON with its content hash made to match, so the fuzzer reaches the load-time checks and
/// the evaluator behind them.
pub fn blob_json(data: &[u8]) {
    let _ = loader::decode_blob(data, "", Some("sha256:fuzz"), ENVIRONMENT);
    let Ok(mut blob) = serde_json::from_slice::<Blob>(data) else {
        return;
    };
    blob.header.content_hash = shared_eval::content_hash(&blob.body);
    let Ok(snapshot) = Snapshot::from_blob(blob) else {
        return;
    };
    evaluate_everything(&snapshot);
    // A loaded blob, written out again, loads again (what `kill` and `rollback` rely on).
    let json = serde_json::to_vec(snapshot.blob()).expect("serialize a loaded blob");
    if let Err(why) = Snapshot::from_json(&json) {
        panic!("a loaded blob does not load after a round trip: {why}");
    }
}

/// A request body's context (the edge's parser and limits), evaluated over the example flags
/// anonymously, with a verified identity, and as the CLI's trusted context. First, the edge's
/// JSON reader (`shared_eval::parse_json`) must read the bytes exactly as serde_json does: the
/// same value, numbers of the same kind and bits, or both refuse.
pub fn context_json(data: &[u8]) {
    let ours = shared_eval::parse_json(data).ok();
    let theirs = serde_json::from_slice::<Value>(data).ok();
    let text = |v: &Option<Value>| {
        v.as_ref()
            .map(|v| serde_json::to_string(v).unwrap_or_default())
    };
    assert!(
        ours == theirs && text(&ours) == text(&theirs),
        "parse_json gives {ours:?}, serde_json {theirs:?}, for {:?}",
        String::from_utf8_lossy(data)
    );
    let Ok(unsigned) = ofrep::parse_context(data) else {
        return;
    };
    let snapshot = example_snapshot();
    let signed: Map<String, Value> = json!({"targetingKey": "user-1", "plan": "premium"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    for context in [
        Context::with_unsigned(&Map::new(), &unsigned, false),
        Context::with_unsigned(&signed, &unsigned, true),
        Context::new(&unsigned),
    ] {
        let _ = shared_eval::evaluate_all(snapshot, &context, NOW_MS);
    }
}

/// One native flag file (and, after a line `---8<---`, one segment file), compiled; a body
/// compiled without errors must load at the edge.
pub fn native_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (flag, segment) = match text.split_once("\n---8<---\n") {
        Some((flag, segment)) => (flag, Some(segment)),
        None => (text, None),
    };
    let sources = native::Sources {
        flags: vec![native::SourceFile {
            path: "flags/fuzz.yaml".into(),
            text: flag.to_owned(),
        }],
        segments: segment
            .map(|text| native::SourceFile {
                path: "segments/fuzz.yaml".into(),
                text: text.to_owned(),
            })
            .into_iter()
            .collect(),
        root: None,
    };
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap_or_default();
    let lowered = native::compile(&sources, ENVIRONMENT, today);
    let (body, diags) = (lowered.body, lowered.diagnostics);
    if diags.iter().any(|d| d.severity == compile::Severity::Error) {
        return;
    }
    load_compiled(body);
}

/// A flagd flag-definition file, imported; a body imported without errors must load.
pub fn flagd_import(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(body) = compile::flagd::compile_flagd(text, Path::new("flags.json"), ENVIRONMENT) {
        load_compiled(body);
    }
}

fn load_compiled(body: shared_eval::Body) {
    match Snapshot::from_blob(Blob::new(header(), body)) {
        Ok(snapshot) => evaluate_everything(&snapshot),
        Err(why) => panic!("the compiler accepted flags the edge refuses: {why}"),
    }
}

/// An OFREP request: `key 0xFF body 0xFF authorization 0xFF cookie 0xFF if-none-match`
/// (a field left out is an absent header; an empty key field is the bulk endpoint), through
/// the worker's whole pipeline over the example flags.
pub fn ofrep_request(data: &[u8]) {
    let mut fields = data.split(|&b| b == FIELD_SEPARATOR);
    let key = fields.next().and_then(|k| std::str::from_utf8(k).ok());
    let body = fields.next().unwrap_or_default();
    let mut header = || fields.next().and_then(|h| std::str::from_utf8(h).ok());
    let (authorization, cookie, if_none_match) = (header(), header(), header());
    let request = EvalRequest {
        key: key.filter(|k| !k.is_empty()),
        body,
        authorization,
        cookie,
        if_none_match,
        environment: ENVIRONMENT,
    };
    let served = Served {
        snapshot: example_snapshot(),
        version: 7,
        canary: None,
        event_streams: true,
    };
    for served in [Some(served), None] {
        let reply = ofrep::handle(&request, served, Some(SECRET), NOW_MS);
        // Never a 5xx for an evaluation, always an OFREP JSON body (304 has none).
        assert!(
            matches!(reply.status, 200 | 304 | 400 | 401 | 404 | 413),
            "status {}",
            reply.status
        );
        if reply.status != 304 {
            let body: Value = serde_json::from_slice(&reply.body).expect("reply is JSON");
            if reply.status >= 400 {
                assert!(body["errorCode"].is_string(), "error body {body}");
            }
        }
    }
}

/// An identity token. First byte even: the rest is the token as sent. Odd: the rest is the
/// claims JSON, signed with the right key (the fuzzer cannot forge an HMAC), so the claim
/// checks behind the signature are reached.
pub fn identity_token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode % 2 == 0 {
        match std::str::from_utf8(rest) {
            Ok(text) => text.to_owned(),
            Err(_) => return,
        }
    } else {
        sign_raw(rest)
    };
    let now_s = NOW_MS / 1000;
    match identity::resolve(Some(&token), Some(SECRET), ENVIRONMENT, now_s) {
        // Verified means a non-empty subject as the targeting key; anonymous only without one.
        Ok(identity) if identity.verified => assert!(
            identity.signed["targetingKey"]
                .as_str()
                .is_some_and(|k| !k.is_empty())
        ),
        Ok(_) => assert!(token.trim().is_empty(), "a token was ignored"),
        Err(_) => {}
    }
    let _ = identity::token_from_headers(
        Some(&format!("Bearer {token}")),
        Some(&format!("a=b; ff_token={token}")),
    );
}

/// An HS256 JWT over arbitrary claim bytes.
pub fn sign_raw(claims: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()) else {
        return input;
    };
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}
