//! `cargo xtask test`: the README's test command. Installs what is missing, then runs every suite.

use std::process::Command;

use crate::util::{Result, project_root, run as sh};

pub fn run(extra: &[String]) -> Result {
    crate::setup::run()?;
    let root = project_root();
    sh(Command::new("cargo")
        .args(["test", "--workspace", "--exclude", "benches"])
        .args(extra)
        .current_dir(&root))?;
    Ok(())
}
