//! Load with faults, the run in docs/benchmarks.md: six phases of `LOAD_PHASE_SECONDS` (default 10) with
//! `LOAD_CONNECTIONS` (default 8) wrk connections against the worker in bare workerd, the origin
//! (SeaweedFS) stopped, restarted, served a corrupt and a truncated blob, then a real push.
//!
//! Run: `cargo xtask worker-build && cargo run -p integration-tests --example worker_load_faults`
//! (needs `wrk`, installed by `cargo xtask setup`). Figures also go to
//! `target/artifacts/load-faults.json`.

fn main() {
    use integration_tests::worker::env_number;
    let phase = std::time::Duration::from_secs(env_number("LOAD_PHASE_SECONDS", 10));
    let report = integration_tests::load::run(phase, env_number("LOAD_CONNECTIONS", 8));
    println!("{}", report.table());
    let artifacts = integration_tests::worker::project_root().join("target/artifacts");
    let _ = std::fs::create_dir_all(&artifacts);
    let _ = std::fs::write(
        artifacts.join("load-faults.json"),
        serde_json::to_string_pretty(&report.to_json()).unwrap_or_default(),
    );
    report.check();
    println!("all checks passed");
}
