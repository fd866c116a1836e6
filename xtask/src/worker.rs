//! `cargo xtask worker-build [--no-opt] [--if-stale]`: builds the edge worker to
//! `edge-worker/build/` (`index.js` + `index_bg.wasm`, entry `worker/shim.mjs`) with
//! worker-build, pointed at the locally installed wasm-bindgen, since its own download of it
//! from GitHub cannot work here. worker-build always runs with `--no-opt`: this task then runs
//! npm's wasm-opt (binaryen [`BINARYEN_VERSION`], `npm ci` first if it is missing) once, with
//! the names section and producers stripped in the same pass.
//!
//! `--if-stale` skips the build when the output is newer than every input (wrangler runs its
//! `[build]` command twice on start-up); wasm-opt is skipped with `--no-opt` or when wrangler
//! runs the build for `wrangler dev` (`WRANGLER_COMMAND=dev`).

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use crate::setup::{
    self, BINARYEN_VERSION, WASM_BINDGEN_VERSION, WORKER_BUILD_VERSION, has_version, wasm_opt_path,
    wasm_opt_ready,
};
use crate::util::cargo_bin;

/// The built module, relative to the repository root.
pub const WASM_PATH: &str = "edge-worker/build/index_bg.wasm";

pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let if_stale = args.iter().any(|a| a == "--if-stale");
    let no_opt = args.iter().any(|a| a == "--no-opt")
        || std::env::var("WRANGLER_COMMAND").is_ok_and(|c| c == "dev");
    if let Some(unknown) = args
        .iter()
        .find(|a| !matches!(a.as_str(), "--if-stale" | "--no-opt"))
    {
        return Err(format!("worker-build: unknown argument {unknown}"));
    }
    let output = root.join(WASM_PATH);
    if if_stale && is_fresh(root, &output) {
        eprintln!("worker-build: {WASM_PATH} is up to date");
        return Ok(());
    }
    let wasm_bindgen = cargo_bin("wasm-bindgen");
    check_version(&wasm_bindgen, WASM_BINDGEN_VERSION, "cargo xtask setup")?;
    let worker_build = cargo_bin("worker-build");
    check_version(&worker_build, WORKER_BUILD_VERSION, "cargo xtask setup")?;
    let wasm_opt = wasm_opt_path(root);
    if !no_opt {
        ensure_wasm_opt(root)?;
    }
    let mut command = Command::new(&worker_build);
    command
        // worker-build's own wasm-opt pass keeps the names section; ours (below) strips it in
        // the same pass instead of a second one.
        .args(["--release", "--no-opt"])
        // The rest goes to `cargo build`.
        .args(wasm_profile_args())
        .current_dir(root.join("edge-worker"))
        .env("WASM_BINDGEN_BIN", &wasm_bindgen)
        // Unused with `--no-opt`, but it keeps worker-build from ever downloading one.
        .env("WASM_OPT_BIN", &wasm_opt);
    let status = command
        .status()
        .map_err(|e| format!("worker-build: cannot run {}: {e}", worker_build.display()))?;
    if !status.success() {
        return Err(format!("worker-build failed ({status})"));
    }
    if !no_opt {
        optimize(&wasm_opt, &output)?;
    }
    report_size(&output);
    Ok(())
}

/// `cargo build` options for a Wasm module of this workspace (the worker, and `bench-wasm`'s
/// module so that it measures the worker's code generation). Passed as `--config` rather than
/// written in Cargo.toml's profiles, which native builds (publisher, native benches) share.
///
/// Size over speed for the module as a whole (`WORKER_OPT_LEVEL`, default `z`), and shared-eval
/// at `s`, the middle (measured 2026-12-07, best of 14 alternating V8 runs against 3): 12.9 KB
/// gzipped smaller, evaluate-all and blob decode ~1.17x slower in V8 (µs per request, and no
/// measurable change to a blob switch); at `z` it is another 10 KB smaller but ~3x slower
/// (`EVALUATOR_OPT_LEVEL` overrides it). Source
/// paths are written relative to the registry and the workspace, so the module (its panic
/// locations) carries no path of the machine or checkout that built it.
pub fn wasm_profile_args() -> Vec<String> {
    // Cargo's config reads numeric levels bare and `s`/`z` as strings.
    let toml = |level: String| {
        if level.parse::<u8>().is_ok() {
            level
        } else {
            format!("\"{level}\"")
        }
    };
    let opt_level = toml(worker_opt_level());
    let evaluator_opt_level = toml(evaluator_opt_level());
    let cargo_home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
    let workspace = crate::util::project_root();
    [
        format!("profile.release.opt-level={opt_level}"),
        format!("profile.release.package.shared-eval.opt-level={evaluator_opt_level}"),
        format!(
            "target.wasm32-unknown-unknown.rustflags=[\"--remap-path-prefix={cargo_home}/registry/src/=\", \"--remap-path-prefix={}/=\"]",
            workspace.display()
        ),
    ]
    .into_iter()
    .flat_map(|setting| ["--config".to_owned(), setting])
    .collect()
}

/// shared-eval's opt-level in a Wasm module (`EVALUATOR_OPT_LEVEL`, default `s`; see
/// [`wasm_profile_args`]). `EVALUATOR_OPT_LEVEL=3 cargo xtask bench-wasm` measures the other side
/// of the trade.
pub fn evaluator_opt_level() -> String {
    std::env::var("EVALUATOR_OPT_LEVEL").unwrap_or_else(|_| "s".into())
}

/// The module's opt-level (`WORKER_OPT_LEVEL`, default `z`).
pub fn worker_opt_level() -> String {
    std::env::var("WORKER_OPT_LEVEL").unwrap_or_else(|_| "z".into())
}

/// Runs `npm ci` when wasm-opt is missing or another version (a fresh checkout, or
/// node_modules installed without dev dependencies), so a build never needs a manual step.
fn ensure_wasm_opt(root: &Path) -> Result<(), String> {
    if wasm_opt_ready(root) {
        return Ok(());
    }
    eprintln!("worker-build: wasm-opt (binaryen {BINARYEN_VERSION}) is missing: running npm ci");
    setup::npm_ci(root)?;
    if wasm_opt_ready(root) {
        Ok(())
    } else {
        Err(format!(
            "worker-build: node_modules/.bin/wasm-opt is not binaryen {BINARYEN_VERSION} after \
             `npm ci`: check package.json"
        ))
    }
}

fn check_version(binary: &Path, version: &str, install: &str) -> Result<(), String> {
    if has_version(binary, version) {
        Ok(())
    } else {
        Err(format!(
            "worker-build: {} {version} is required; install it with `{install}`",
            binary.display()
        ))
    }
}

/// The output exists and is newer than every source the worker is built from.
fn is_fresh(root: &Path, output: &Path) -> bool {
    let Ok(built) = output.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let mut newest = SystemTime::UNIX_EPOCH;
    for input in [
        "edge-worker/src",
        "edge-worker/Cargo.toml",
        "shared-eval/src",
        "shared-eval/Cargo.toml",
        "Cargo.lock",
        // The profiles, and this task's build options and wasm-opt flags.
        "Cargo.toml",
        "xtask/src",
    ] {
        newest_mtime(&root.join(input), &mut newest);
    }
    newest <= built
}

fn newest_mtime(path: &Path, newest: &mut SystemTime) {
    if let Ok(meta) = path.metadata() {
        if let Ok(modified) = meta.modified() {
            *newest = (*newest).max(modified);
        }
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(path)
        {
            for entry in entries.flatten() {
                newest_mtime(&entry.path(), newest);
            }
        }
    }
}

/// One wasm-opt pass: `-O` (worker-build's own default; `-Os`/`-Oz` measured no smaller
/// gzipped, see docs/benchmarks.md) and, in the same pass, the names section (~30 KB gzipped of function
/// names that only help read a panic's stack trace: the worker does not panic by design) and the
/// producers section stripped.
fn optimize(wasm_opt: &Path, wasm: &Path) -> Result<(), String> {
    // The feature set worker-build itself enables, so binaryen parses the module the same way
    // and never emits an encoding workerd does not read.
    let features = [
        "mutable-globals",
        "sign-ext",
        "nontrapping-float-to-int",
        "bulk-memory",
        "multivalue",
        "reference-types",
        "exception-handling",
    ];
    let status = Command::new(wasm_opt)
        .arg(wasm)
        .arg("-o")
        .arg(wasm)
        .args(["-O", "--strip-debug", "--strip-producers"])
        .args(features.iter().map(|f| format!("--enable-{f}")))
        .status()
        .map_err(|e| format!("worker-build: cannot run wasm-opt: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("worker-build: wasm-opt failed ({status})"))
    }
}

fn report_size(wasm: &Path) {
    let Ok(raw) = std::fs::metadata(wasm).map(|m| m.len()) else {
        return;
    };
    let gzipped = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(wasm)
        .output()
        .map(|out| out.stdout.len())
        .unwrap_or_default();
    eprintln!(
        "worker-build: {} is {raw} bytes raw, {gzipped} bytes gzip -9",
        wasm.display()
    );
}
