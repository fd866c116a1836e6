//! Blob loading benchmarks: what the edge does when a new version arrives.
//!
//! Run with `cargo bench -p benches --bench blob`. The 1,000-flag blob is the realistic fixture
//! set (`benches::fixtures`); its gzipped size is printed before the run.

use std::hint::black_box;

use benches::fixtures::{blob_json, gunzip, gzip, realistic_blob};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shared_eval::Snapshot;

fn decode(c: &mut Criterion) {
    let blob = realistic_blob(1000);
    let json = blob_json(&blob);
    let gzipped = gzip(&json);
    eprintln!(
        "1,000 realistic flags: {} bytes JSON, {} bytes gzipped",
        json.len(),
        gzipped.len()
    );
    assert!(
        Snapshot::from_json(&json).is_ok(),
        "the 1,000-flag blob loads"
    );

    let mut group = c.benchmark_group("blob_decode_1000");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("from_json", |b| {
        b.iter(|| Snapshot::from_json(black_box(&json)))
    });
    group.bench_function("gunzip_from_json", |b| {
        b.iter(|| Snapshot::from_json(&gunzip(black_box(&gzipped)).unwrap_or_default()))
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
