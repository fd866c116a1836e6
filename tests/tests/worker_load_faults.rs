//! The load-with-faults run (see `tests/load.rs`), short: `LOAD_PHASE_SECONDS` per phase
//! (default 5) instead of the long run's 10 (docs/benchmarks.md), with the same assertions.

#[test]
fn load_with_the_origin_failing_answers_2xx_from_the_last_good_blob() {
    let seconds = std::env::var("LOAD_PHASE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let report = integration_tests::load::run(std::time::Duration::from_secs(seconds), 8);
    println!("{}", report.table());
    report.check();
}
