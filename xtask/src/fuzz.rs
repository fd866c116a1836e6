//! `cargo xtask fuzz [--seconds N] [TARGET...]`: builds the libFuzzer targets in `fuzz/` with
//! coverage instrumentation on the stable toolchain and runs each for N seconds (default 10).
//!
//! The route: `libfuzzer-sys` (libFuzzer, compiled from its C++ by the crate's build script)
//! plus the SanitizerCoverage flags that `cargo fuzz build --sanitizer none` passes, which are
//! all stable `-C` options. No sanitizer (AddressSanitizer needs nightly's `-Z sanitizer`, and
//! the code is safe Rust: `unsafe_code` is forbidden workspace-wide), no `cargo fuzz` install
//! (it would only pass the same flags). Whoever has cargo-fuzz can equally run
//! `cargo fuzz run <target> --sanitizer none` in the repository.
//!
//! Corpora: `target/fuzz/seeds/<target>` (each target writes its own at start-up from `examples/`, the
//! evaluator corpus and the flagd testbed), `fuzz/regressions/<target>` (every input that ever
//! crashed a target, committed), and `target/fuzz/corpus/<target>` (what the fuzzer found,
//! kept between runs). A crash, timeout or out-of-memory fails the run and leaves the input
//! in `target/fuzz/artifacts/<target>/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::util::{Result, output_of, project_root, run as sh};

pub const TARGETS: [&str; 7] = [
    "blob_gzip",
    "blob_json",
    "context_json",
    "native_yaml",
    "flagd_import",
    "ofrep_request",
    "identity_token",
];

/// The SanitizerCoverage instrumentation libFuzzer needs (what cargo-fuzz passes), plus the
/// checks a fuzz build wants on.
const RUSTFLAGS: &[&str] = &[
    "--cfg=fuzzing",
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

/// Totals of one run.
#[derive(Debug, Default)]
pub struct Stats {
    pub executions: u64,
}

pub fn run(args: &[String]) -> Result {
    let mut seconds = 10u64;
    let mut targets = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = iter
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--seconds takes a number")?;
            }
            name if TARGETS.contains(&name) => targets.push(name.to_owned()),
            other => return Err(format!("unknown fuzz target or option {other:?}")),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    run_targets(&targets, seconds).map(|_| ())
}

/// Builds, seeds and runs `targets` for `seconds` each; prints and returns the totals.
pub fn run_targets(targets: &[String], seconds: u64) -> Result<Stats> {
    let root = project_root();
    let bin = build(&root)?;
    let fuzz_dir = root.join("target/fuzz");
    let seeds = fuzz_dir.join("seeds");
    let mut total = Stats::default();
    let mut failed = Vec::new();
    for target in targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        let artifacts = fuzz_dir.join("artifacts").join(target);
        let regressions = root.join("fuzz/regressions").join(target);
        for dir in [&corpus, &artifacts, &regressions] {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let log = fuzz_dir.join(format!("{target}.log"));
        let started = Instant::now();
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new(bin.join(target));
        command
            .env("EDGEFLAGS_FUZZ_SEEDS", seeds.join(target))
            .arg(format!("-max_total_time={seconds}"))
            // A single input taking over 5 s, or 2 GB, is a bug the fuzzer reports as such.
            .arg("-timeout=5")
            .arg("-rss_limit_mb=2048")
            .arg("-max_len=65536")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg(&corpus)
            .arg(seeds.join(target))
            .arg(&regressions)
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file);
        let status = command
            .status()
            .map_err(|e| format!("cannot run {target}: {e}"))?;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let executions = final_stat(&text, "stat::number_of_executed_units");
        let coverage = text
            .lines()
            .rev()
            .find_map(|l| l.split_once(" cov: ").map(|(_, rest)| rest))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or("?")
            .to_owned();
        total.executions += executions;
        let verdict = if status.success() { "ok" } else { "FAILED" };
        eprintln!(
            "fuzz {target:<15} {verdict:<6} {executions:>10} executions in {:>5.1} s, coverage {coverage} edges",
            started.elapsed().as_secs_f64()
        );
        if !status.success() {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            failed.push(target.clone());
        }
    }
    eprintln!(
        "fuzz: {} executions in all; crashing inputs (if any) in {}",
        total.executions,
        fuzz_dir.join("artifacts").display()
    );
    // The plain closing line CI reads.
    println!(
        "fuzz: {} passed, {} failed",
        targets.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        Ok(total)
    } else {
        Err(format!("fuzz targets failed: {}", failed.join(", ")))
    }
}

fn final_stat(log: &str, name: &str) -> u64 {
    log.lines()
        .rev()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.trim_start_matches(':').trim().parse().ok())
        .unwrap_or(0)
}

/// Builds the targets (release profile of `fuzz/`, instrumented) into `target/fuzz`; returns
/// the directory holding the binaries.
fn build(root: &Path) -> Result<PathBuf> {
    // An explicit --target keeps the instrumentation off build scripts and proc macros.
    let host = output_of("rustc", &["-vV"])
        .and_then(|v| {
            v.lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        })
        .ok_or("cannot read the host triple from rustc -vV")?;
    let target_dir = root.join("target/fuzz");
    sh(Command::new("cargo")
        .args(["build", "--release", "--bins", "--target", &host])
        .arg("--manifest-path")
        .arg(root.join("fuzz/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", RUSTFLAGS.join(" "))
        .env_remove("CARGO_ENCODED_RUSTFLAGS"))?;
    Ok(target_dir.join(host).join("release"))
}
