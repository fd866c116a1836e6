//! `cargo xtask test`: the README's test command. Installs what is missing, then runs every
//! suite, then every fuzz target briefly (`FUZZ_SECONDS` each, default 10; 0 skips them).

use std::process::Command;

use crate::util::{Result, project_root, run as sh};

pub fn run(extra: &[String]) -> Result {
    crate::setup::run()?;
    let root = project_root();
    sh(Command::new("cargo")
        .args(["test", "--workspace", "--exclude", "benches"])
        .args(extra)
        .current_dir(&root))?;
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    if seconds > 0 {
        let targets: Vec<String> = crate::fuzz::TARGETS
            .iter()
            .map(|t| (*t).to_owned())
            .collect();
        crate::fuzz::run_targets(&targets, seconds)?;
    }
    Ok(())
}
