//! The native half of `cargo xtask bench-wasm`: times each workload with the same protocol as
//! `run.mjs` (grow the iteration count until one sample takes 20 ms, then the median of 11
//! samples) and prints one JSON line per workload: `{"name", "ns_per_iter", "checksum"}`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use wasm_bench::{WORKLOADS, Workloads};

const SAMPLE: Duration = Duration::from_millis(20);
const SAMPLES: usize = 11;

fn main() -> ExitCode {
    let Some(workloads) = Workloads::new() else {
        eprintln!("error: the benchmark fixtures do not load");
        return ExitCode::FAILURE;
    };
    for name in WORKLOADS {
        let run = |iterations| workloads.run(name, iterations).unwrap_or_default();
        let checksum = run(1);
        let mut iterations = 1u32;
        while time(|| run(iterations)) < SAMPLE && iterations < 1 << 24 {
            iterations *= 2;
        }
        let mut samples: Vec<f64> = (0..SAMPLES)
            .map(|_| time(|| run(iterations)).as_nanos() as f64 / f64::from(iterations))
            .collect();
        samples.sort_by(f64::total_cmp);
        println!(
            "{}",
            serde_json::json!({
                "name": name,
                "ns_per_iter": samples[SAMPLES / 2],
                "checksum": checksum,
            })
        );
    }
    ExitCode::SUCCESS
}

fn time(work: impl FnOnce() -> u32) -> Duration {
    let started = Instant::now();
    std::hint::black_box(work());
    started.elapsed()
}
