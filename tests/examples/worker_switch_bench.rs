//! How long an isolate in bare workerd takes to switch to a new blob: `POST /_flags/purge`
//! returns once the worker has revalidated (pointer and blob from the origin, gunzip, decode),
//! so its round trip is the switch. Each round alternates two random blobs of `BENCH_FLAGS`
//! flags (default 1,000), so every round loads and decodes a blob; the same number of purges
//! that find the blob unchanged (pointer read, nothing decoded) are the baseline of the run.
//!
//! Run: `cargo xtask worker-build && cargo run --release -p integration-tests --example worker_switch_bench`
//! Environment: `BENCH_FLAGS` (default 1000), `BENCH_ROUNDS` (default 30).

use std::time::{Duration, Instant};

use integration_tests::worker::random::{self, Rng};
use integration_tests::worker::{Origin, Store, Workerd, env_number};

const PURGE_TOKEN: &str = "switch-bench-purge";

fn main() {
    let flags = env_number("BENCH_FLAGS", 1000);
    let rounds = env_number("BENCH_ROUNDS", 30);
    let blobs = [0xa, 0xb].map(|seed| random::blob(&mut Rng::new(seed), "bench", 1, flags));

    let store = Store::new();
    store.publish("bench", 1, &blobs[0]);
    let origin = Origin::start(&store);
    let workerd = Workerd::start(&[
        ("FLAGS_ENV", "bench"),
        ("ORIGIN_URL", &origin.url),
        ("PURGE_TOKEN", PURGE_TOKEN),
        // Long enough that only the purges revalidate.
        ("REVALIDATE_MS", "600000"),
    ]);
    let purge = |expected_version: u64| -> Duration {
        let started = Instant::now();
        let reply = ureq::post(&format!("{}/_flags/purge", workerd.url))
            .set("Authorization", &format!("Bearer {PURGE_TOKEN}"))
            .call()
            .expect("purge");
        let elapsed = started.elapsed();
        let health: serde_json::Value =
            serde_json::from_str(&reply.into_string().unwrap()).unwrap();
        assert_eq!(
            health["version"], expected_version,
            "the purge answered after the switch: {health}"
        );
        elapsed
    };
    purge(1);

    let (mut switched, mut unchanged) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let version = 2 + round as u64;
        store.publish("bench", version, &blobs[(round + 1) % 2]);
        switched.push(purge(version));
        unchanged.push(purge(version));
    }
    drop(workerd);
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2].as_secs_f64() * 1000.0
    };
    let (switch_ms, same_ms) = (median(&mut switched), median(&mut unchanged));
    let gz = integration_tests::worker::gzip(&serde_json::to_vec(&blobs[0]).unwrap());
    println!(
        "bare workerd, {flags} flags ({} bytes gzipped), {rounds} rounds, purge round trip p50:",
        gz.len()
    );
    println!("  unchanged blob (pointer read only)  {same_ms:>7.2} ms");
    println!(
        "  new blob (fetched, gunzipped, decoded)  {switch_ms:>7.2} ms  (+{:.2} ms)",
        switch_ms - same_ms
    );
}
