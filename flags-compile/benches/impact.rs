//! The impact preview's cost: 100,000 contexts over the flags a change alters, the example
//! flags for prod as deployed and a copy with two flags edited (`new-chart`'s split 25% -> 30%,
//! `beta-banner` on for `country: DE`) as proposed. The baseline is the plain loop the preview
//! cannot be faster than: `evaluate` of the changed flags on the proposed side only, over the
//! same contexts. `impact` does both sides (and the diff, and loading both snapshots).
//!
//! `cargo bench -p flags-compile --bench impact` (release build). Target: <= 1 s. Results in
//! docs/benchmarks.md.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};

use flags_compile::impact::{Sample, impact};
use flags_compile::{CompileOptions, compile_path};
use shared_eval::{Blob, Body, Context, Header, Snapshot, evaluate};

const CONTEXTS: usize = 100_000;

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

fn compile(dir: &Path) -> Body {
    compile_path(dir, &CompileOptions::new("prod"))
        .unwrap_or_else(|d| panic!("{d:?}"))
        .body
}

fn sides() -> (Body, Body) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flags");
    let scratch = std::env::temp_dir().join(format!("impact-bench-{}", std::process::id()));
    copy_dir(&examples, &scratch);
    let edit = |file: &str, from: &str, to: &str| {
        let path = scratch.join("flags").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}: no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    edit(
        "new-chart.yaml",
        "split: { on: 25, off: 75 }",
        "split: { on: 30, off: 70 }",
    );
    edit(
        "beta-banner.yaml",
        "  prod:\n    enabled: true\n    rules:\n",
        "  prod:\n    enabled: true\n    rules:\n      - id: germany\n        if: { attr: country, equals: DE }\n        serve: on\n",
    );
    let deployed = compile(&examples);
    let proposed = compile(&scratch);
    std::fs::remove_dir_all(&scratch).ok();
    (deployed, proposed)
}

fn sample() -> Sample {
    let plans = ["free", "pro", "premium", "enterprise"];
    let countries = ["DE", "FR", "US", "GB", "JP"];
    let contexts: Vec<Map<String, Value>> = (0..CONTEXTS)
        .map(|i| {
            let context = json!({
                "targetingKey": format!("user-{i}"),
                "plan": plans[i % plans.len()],
                "country": countries[i % countries.len()],
                "org": { "id": format!("org-{}", i / 7) },
                "email": format!("user{i}@customer.test"),
                "browser": { "name": "Firefox" },
                "app": { "version": "5.2.0" },
            });
            context.as_object().unwrap().clone()
        })
        .collect();
    Sample {
        source: "generated".into(),
        contexts,
        truncated: false,
    }
}

fn snapshot(body: &Body) -> Snapshot {
    let header = Header {
        environment: "prod".into(),
        version: 0,
        previous: None,
        content_hash: String::new(),
        author: String::new(),
        source_commit: None,
        created_at: String::new(),
    };
    Snapshot::from_blob(Blob::new(header, body.clone())).unwrap()
}

fn bench(c: &mut Criterion) {
    let (deployed, proposed) = sides();
    let sample = sample();
    let report = impact("prod", &deployed, &proposed, &sample, 0).unwrap();
    let changed: Vec<String> = report.flags.iter().map(|f| f.flag.clone()).collect();
    assert_eq!(changed.len(), 2, "{report}");
    assert!(report.flags.iter().all(|f| f.moved > 0), "{report}");
    print!("{report}");
    let after = snapshot(&proposed);
    let mut group = c.benchmark_group("impact_100k");
    group.sample_size(10);
    group.bench_function("evaluate_loop_proposed_only", |b| {
        b.iter(|| {
            let mut on = 0usize;
            for attrs in &sample.contexts {
                let context = Context::new(attrs);
                for key in &changed {
                    on += usize::from(evaluate(&after, key, &context, 0).variant == Some("on"));
                }
            }
            on
        });
    });
    group.bench_function("impact", |b| {
        b.iter(|| impact("prod", &deployed, &proposed, &sample, 0).unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
