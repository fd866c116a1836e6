//! Project automation, run as `cargo xtask <task>` from anywhere in the repository.
//!
//! - `setup`: installs what the tests and the demo need, skipping what is already installed at
//!   the right version (wasm32 target, wasm-bindgen-cli, worker-build, npm packages, SeaweedFS,
//!   Chromium).
//! - `demo`: SeaweedFS + the worker in workerd + the example flags pushed + the dashboard.
//! - `test`: `setup`, then the whole test suite (the README's test command).
//! - `fuzz [--seconds N] [TARGET...]`: builds the libFuzzer targets in `fuzz/` (stable toolchain,
//!   SanitizerCoverage flags) and runs each for N seconds (default 10).
//! - `worker-build [--no-opt] [--if-stale]`: builds the edge worker to `edge-worker/build/`.
//! - `bench-wasm`: the evaluator's workloads timed natively and in V8 (node), in turn over rounds.
//!
//! Plain `std::process` on purpose: this crate must build fast on a fresh machine.

mod bench_wasm;
mod demo;
mod fuzz;
mod setup;
mod test;
#[cfg(test)]
mod tidy;
mod util;
mod worker;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench-wasm") => bench_wasm::run_bench(&util::project_root()),
        Some("demo") => demo::run(),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("setup") => setup::run(),
        Some("test") => test::run(&args[1..]),
        Some("worker-build") => worker::run(&util::project_root(), &args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <bench-wasm|demo|fuzz|setup|test|worker-build>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}
