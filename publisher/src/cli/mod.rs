//! The subcommands, one module each, and what they share: printing diagnostics.

pub mod audit;
pub mod build;
pub mod diff;
pub mod drift;
pub mod eval;
pub mod explain;
pub mod history;
pub mod kill;
pub mod promote;
pub mod purge_args;
pub mod push;
pub mod rollback;
pub mod rollout;
pub mod serve;
pub mod store_args;
pub mod token;
pub mod validate;

use std::path::Path;

use flags_compile::{CompileOptions, Compiled, Diagnostic, Severity, compile_path};

/// The environment `eval`/`explain`/`validate` use when none is given: what users see.
pub const DEFAULT_ENV: &str = "prod";

/// Prints each diagnostic on stderr and returns `(errors, warnings)`.
pub fn print_diagnostics(diags: &[Diagnostic]) -> (usize, usize) {
    for d in diags {
        eprintln!("{d}");
    }
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    (errors, diags.len() - errors)
}

/// Compiles `dir` for `env` for a command that writes what it compiles (`build`, `push`):
/// prints the warnings, or every diagnostic and `{command} failed: N errors{consequence}`.
pub fn compile_or_report(
    dir: &Path,
    env: &str,
    command: &str,
    consequence: &str,
) -> Option<Compiled> {
    match compile_path(dir, &CompileOptions::new(env)) {
        Ok(compiled) => {
            print_diagnostics(&compiled.warnings);
            Some(compiled)
        }
        Err(diags) => {
            let (errors, _) = print_diagnostics(&diags);
            eprintln!("{command} failed: {}{consequence}", plural(errors, "error"));
            None
        }
    }
}

/// `1 error`, `2 warnings`.
pub fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
