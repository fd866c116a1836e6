//! Shared helpers for the integration tests.

pub mod gherkin;
pub mod worker;

use std::path::{Path, PathBuf};

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
