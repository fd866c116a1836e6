//! The flags API's costs, in-process (the router through `oneshot`, no socket), over a real
//! Git remote on disk and a local-directory store where every environment serves the branch:
//! `GET /api/v1/flags` (warm: the branch's catalog, compilations and drift cached, as between
//! two pushes) and a `PATCH` end to end (JSON
//! Patch, in-place edit, compile for every environment, commit, push of the change's branch,
//! change record update), for the 11 example flags and for 1,000 (989 generated beside them).
//!
//! `cargo bench -p flags-serve --bench flags_api` (release build). Targets: list <= 50 ms,
//! patch <= 1 s at 1,000 flags. Results in docs/benchmarks.md.

use std::path::Path;
use std::process::Command;

use axum::body::Body;
use axum::http::{Method, Request};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use flags_serve::AppState;
use flags_serve::config::{Overrides, ServeConfig};

const SECRET: &str = "bench-secret";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The examples plus `generated` flags shaped like them (three environments, a segment rule,
/// an `in` list, a split).
fn write_flags(dir: &Path, generated: usize) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flags");
    copy_dir(&examples, dir);
    for i in 0..generated {
        let key = format!("gen-{i:04}");
        let text = format!(
            "# Generated flag {i}.\nkey: {key}\ndescription: Generated flag number {i}.\n\
             owner: team-{owner}\ntype: release\ndefault: off\nenvironments:\n  dev:\n    \
             enabled: true\n    fallthrough: on\n  staging:\n    enabled: true\n    rules:\n      \
             - id: internal\n        if: {{ segment: internal-testers }}\n        serve: on\n  \
             prod:\n    enabled: true\n    rules:\n      - id: plans\n        \
             if: {{ attr: plan, in: [premium, enterprise] }}\n        serve: on\n      \
             - id: gradual\n        if: {{ attr: org.id, exists: true }}\n        serve:\n          \
             split: {{ on: 10, off: 90 }}\n          bucket-by: org.id\n",
            owner = i % 7
        );
        std::fs::write(dir.join(format!("flags/{key}.yaml")), text).unwrap();
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    state: AppState,
}

fn setup(runtime: &tokio::runtime::Runtime, generated: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(
        root,
        &["init", "--quiet", "--bare", "-b", "main", "remote.git"],
    );
    git(root, &["clone", "--quiet", "remote.git", "seed"]);
    let seed = root.join("seed");
    git(&seed, &["checkout", "--quiet", "-B", "main"]);
    write_flags(&seed.join("config"), generated);
    git(&seed, &["add", "."]);
    git(&seed, &["commit", "--quiet", "-m", "flags"]);
    git(&seed, &["push", "--quiet", "origin", "main"]);
    git(root, &["clone", "--quiet", "remote.git", "repo"]);
    std::fs::write(
        root.join("tokens.yaml"),
        format!(
            "tokens:\n  - name: bench\n    sha256: \"{}\"\n    roles: {{\"*\": [admin]}}\n",
            flags_serve::tokens::secret_digest(SECRET)
        ),
    )
    .unwrap();
    let file = root.join("serve.yaml");
    std::fs::write(
        &file,
        "store: store\nflags: repo/config\ntokens: tokens.yaml\n\
         environments: [{name: dev}, {name: staging}, {name: prod}]\n\
         git: {remote: origin, branch: main, poll: 1h}\n\
         limits: {per_token_per_second: 1000000, per_token_burst: 1000000, concurrency: 1024}\n",
    )
    .unwrap();
    let config = ServeConfig::load(Some(&file), Overrides::default()).unwrap();
    let state = runtime.block_on(AppState::open(config)).unwrap();
    Setup { _dir: dir, state }
}

async fn send(state: &AppState, request: Request<Body>) -> (u16, Option<String>, Value) {
    let response = flags_serve::app(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        etag,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn send_raw(state: &AppState, request: Request<Body>) -> usize {
    let response = flags_serve::app(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .len()
}

fn get(path: &str) -> Request<Body> {
    Request::builder()
        .uri(path)
        .header("host", "bench.test")
        .header("authorization", format!("Bearer {SECRET}"))
        .body(Body::empty())
        .unwrap()
}

fn patch(path: &str, etag: &str, ops: &Value) -> Request<Body> {
    Request::builder()
        .method(Method::PATCH)
        .uri(path)
        .header("host", "bench.test")
        .header("authorization", format!("Bearer {SECRET}"))
        .header("if-match", etag)
        .header("content-type", "application/json-patch+json")
        .body(Body::from(ops.to_string()))
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for (label, generated, total) in [("11 flags", 0, 11), ("1000 flags", 989, 1000)] {
        let setup = setup(&runtime, generated);
        let state = &setup.state;
        let mut group = c.benchmark_group(format!("flags_api/{label}"));
        group.sample_size(20);
        // Every environment serves the branch, so each summary carries deployed state and
        // drift, as in production.
        for env in ["dev", "staging", "prod"] {
            let push = Request::builder()
                .method(Method::POST)
                .uri(format!("/api/v1/environments/{env}/push"))
                .header("host", "bench.test")
                .header("authorization", format!("Bearer {SECRET}"))
                .body(Body::empty())
                .unwrap();
            let (status, _, body) = runtime.block_on(send(state, push));
            assert_eq!(status, 200, "push {env}: {body}");
        }
        let (status, _, body) = runtime.block_on(send(state, get("/api/v1/flags?limit=1000")));
        assert_eq!(
            body["flags"][0]["environments"]["prod"]["deployed"]["drift"],
            false
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total"], total);
        // The baseline of the same run: routing, layers and a token check, no work.
        group.bench_function("GET /healthz (baseline)", |b| {
            b.iter(|| runtime.block_on(send_raw(state, get("/healthz"))))
        });
        // Timed as a client gets it: the answer's bytes, not parsed (parsing 1,000 flags'
        // JSON back into a tree is the bench's cost, not the service's).
        group.bench_function("GET /api/v1/flags", |b| {
            b.iter(|| runtime.block_on(send_raw(state, get("/api/v1/flags?limit=1000"))))
        });
        // One change collects every iteration's commit; each PATCH flips the split.
        let (_, etag, _) = runtime.block_on(send(state, get("/api/v1/flags/new-chart")));
        let mut etag = etag.unwrap();
        let mut change: Option<u64> = None;
        let mut on = 25;
        group.bench_function("PATCH /api/v1/flags/{key}", |b| {
            b.iter(|| {
                on = if on == 25 { 30 } else { 25 };
                let ops = json!([
                    {"op": "replace", "path": "/environments/prod/rules/2/serve/split/on", "value": on},
                    {"op": "replace", "path": "/environments/prod/rules/2/serve/split/off", "value": 100 - on},
                ]);
                let path = match change {
                    Some(id) => format!("/api/v1/flags/new-chart?change={id}"),
                    None => "/api/v1/flags/new-chart".to_owned(),
                };
                let (status, new_etag, body) =
                    runtime.block_on(send(state, patch(&path, &etag, &ops)));
                assert_eq!(status, 200, "{body}");
                etag = new_etag.unwrap();
                change = body["change"]["id"].as_u64();
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
