//! `cargo xtask bench-wasm`: the evaluator's workloads (`benches/wasm`) timed natively and in
//! V8 (node, the wasm-bindgen `nodejs` build), printed as a table with wasm's ratio to native.
//! The two harnesses run in turn over `BENCH_ROUNDS` rounds (default 5) and the table gives
//! medians, with each ratio taken within its round, so that a machine whose speed drifts
//! (these are shared) moves both sides of a ratio together. The wasm module is built with the
//! worker's profile settings ([`wasm_profile_args`]: `WORKER_OPT_LEVEL`, default `z`, and
//! `EVALUATOR_OPT_LEVEL` for shared-eval, default `s`), so the figure is the one the edge gets;
//! the native side keeps the release profile (opt-level 3).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::setup::{WASM_BINDGEN_VERSION, has_version};
use crate::util::{Result, cargo_bin, run};
use crate::worker::{evaluator_opt_level, wasm_profile_args, worker_opt_level};

const WORKLOADS: &[(&str, &str)] = &[
    ("evaluate_all", "evaluate-all, 100 flags, one user"),
    ("decode", "decode 1,000-flag blob (parse + index)"),
    ("gunzip_decode", "gunzip + decode 1,000-flag blob"),
];

pub fn run_bench(root: &Path) -> Result {
    let opt_level = worker_opt_level();
    let wasm_bindgen = cargo_bin("wasm-bindgen");
    if !has_version(&wasm_bindgen, WASM_BINDGEN_VERSION) {
        return Err("wasm-bindgen is missing or another version: run `cargo xtask setup`".into());
    }
    let target_dir = root.join("target/wasm-bench");
    run(Command::new("cargo")
        .args(["build", "--release", "-p", "wasm-bench", "--lib"])
        .args(["--target", "wasm32-unknown-unknown"])
        .arg("--target-dir")
        .arg(&target_dir)
        .args(wasm_profile_args())
        .current_dir(root))?;
    let module = target_dir.join("wasm32-unknown-unknown/release/wasm_bench.wasm");
    let bindings = target_dir.join("node");
    run(Command::new(&wasm_bindgen)
        .args(["--target", "nodejs", "--out-dir"])
        .arg(&bindings)
        .arg(&module))?;
    run(Command::new("cargo")
        .args([
            "build",
            "--release",
            "-p",
            "wasm-bench",
            "--bin",
            "wasm-bench-native",
        ])
        .current_dir(root))?;

    let rounds = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5);
    // Per workload: (native ns, wasm ns, wasm / native) of each round.
    let mut samples: BTreeMap<&str, Vec<(f64, f64, f64)>> = BTreeMap::new();
    for _ in 0..rounds {
        let native = figures(Command::new(root.join("target/release/wasm-bench-native")))?;
        let mut node = Command::new("node");
        node.arg(root.join("benches/wasm/run.mjs")).arg(&bindings);
        let wasm = figures(node)?;
        for (name, _) in WORKLOADS {
            let (Some(n), Some(w)) = (native.get(*name), wasm.get(*name)) else {
                return Err(format!("bench-wasm: no figure for {name}"));
            };
            if n.checksum != w.checksum {
                return Err(format!(
                    "bench-wasm: {name} computed {} natively but {} in wasm: the builds disagree",
                    n.checksum, w.checksum
                ));
            }
            samples.entry(name).or_default().push((
                n.ns_per_iter,
                w.ns_per_iter,
                w.ns_per_iter / n.ns_per_iter,
            ));
        }
    }

    println!(
        "wasm module at opt-level {opt_level} (shared-eval at {}), run in node {}; medians of \
         {rounds} rounds, ratios taken within each round",
        evaluator_opt_level(),
        node_version()
    );
    println!("| workload | native | wasm (V8) | wasm / native (min-max) |");
    println!("|---|---|---|---|");
    for (name, label) in WORKLOADS {
        let rows = samples.get(name).map(Vec::as_slice).unwrap_or_default();
        let column = |pick: fn(&(f64, f64, f64)) -> f64| {
            let mut values: Vec<f64> = rows.iter().map(pick).collect();
            values.sort_by(f64::total_cmp);
            let median = values.get(values.len() / 2).copied().unwrap_or(f64::NAN);
            let min = values.first().copied().unwrap_or(f64::NAN);
            let max = values.last().copied().unwrap_or(f64::NAN);
            (median, min, max)
        };
        let (native, ..) = column(|r| r.0);
        let (wasm, ..) = column(|r| r.1);
        let (ratio, low, high) = column(|r| r.2);
        println!(
            "| {label} | {} | {} | {ratio:.2}x ({low:.2}x-{high:.2}x) |",
            human(native),
            human(wasm),
        );
    }
    Ok(())
}

struct Figure {
    ns_per_iter: f64,
    checksum: u64,
}

/// Runs one harness and reads its JSON lines.
fn figures(mut command: Command) -> Result<BTreeMap<String, Figure>> {
    eprintln!("$ {command:?}");
    let output = command
        .output()
        .map_err(|e| format!("bench-wasm: cannot run {command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "bench-wasm: {command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut figures = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let field = |key: &str| {
            let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
            let rest = line.get(start..)?;
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            Some(rest[..end].trim_matches('"').to_owned())
        };
        let (Some(name), Some(ns), Some(checksum)) =
            (field("name"), field("ns_per_iter"), field("checksum"))
        else {
            return Err(format!("bench-wasm: cannot read {line:?}"));
        };
        let figure = Figure {
            ns_per_iter: ns.parse().map_err(|_| format!("bad figure in {line:?}"))?,
            checksum: checksum
                .parse()
                .map_err(|_| format!("bad checksum in {line:?}"))?,
        };
        figures.insert(name, figure);
    }
    Ok(figures)
}

fn node_version() -> String {
    crate::util::output_of("node", &["--version"]).unwrap_or_else(|| "?".into())
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
