//! `cargo xtask worker-build [--no-opt] [--if-stale]`: builds the edge worker to
//! `edge-worker/build/` (`index.js` + `index_bg.wasm`, entry `worker/shim.mjs`) with
//! worker-build, pointed at the locally installed wasm-bindgen and npm's wasm-opt, since its own
//! download of both from GitHub cannot work here.
//!
//! `--if-stale` skips the build when the output is newer than every input (wrangler runs its
//! `[build]` command twice on start-up); wasm-opt is skipped with `--no-opt` or when wrangler
//! runs the build for `wrangler dev` (`WRANGLER_COMMAND=dev`).

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use crate::setup::{WASM_BINDGEN_VERSION, WORKER_BUILD_VERSION};
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
    let wasm_opt = root.join("node_modules/.bin/wasm-opt");
    if !no_opt && !wasm_opt.exists() {
        return Err(
            "worker-build: node_modules/.bin/wasm-opt is missing; run `cargo xtask setup`".into(),
        );
    }
    let mut command = Command::new(&worker_build);
    command
        .arg("--release")
        .current_dir(root.join("edge-worker"))
        .env("WASM_BINDGEN_BIN", &wasm_bindgen)
        .env("WASM_OPT_BIN", &wasm_opt)
        // Size over speed for the Wasm module only (its own target dir; native builds keep
        // opt-level 3): ~13% smaller gzipped, and the evaluator stays far under a millisecond.
        .env(
            "CARGO_PROFILE_RELEASE_OPT_LEVEL",
            std::env::var("WORKER_OPT_LEVEL").unwrap_or_else(|_| "z".into()),
        );
    if no_opt {
        command.arg("--no-opt");
    }
    let status = command
        .status()
        .map_err(|e| format!("worker-build: cannot run {}: {e}", worker_build.display()))?;
    if !status.success() {
        return Err(format!("worker-build failed ({status})"));
    }
    if !no_opt {
        strip_names(&wasm_opt, &output)?;
    }
    report_size(&output);
    Ok(())
}

/// Whether `binary --version` prints `version`.
pub fn has_version(binary: &Path, version: &str) -> bool {
    Command::new(binary)
        .arg("--version")
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .any(|w| w == version)
        })
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

/// worker-build keeps the names section (`--debuginfo`); it is ~30 KB gzipped of function names
/// that only help read a panic's stack trace, and the worker does not panic by design.
fn strip_names(wasm_opt: &Path, wasm: &Path) -> Result<(), String> {
    // The feature set worker-build itself enables, so binaryen parses the module the same way.
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
        .arg("--strip-debug")
        .args(features.iter().map(|f| format!("--enable-{f}")))
        .status()
        .map_err(|e| format!("worker-build: cannot run wasm-opt: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "worker-build: wasm-opt --strip-debug failed ({status})"
        ))
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
