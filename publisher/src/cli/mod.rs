//! The subcommands, one module each, and what they share: printing diagnostics.

pub mod audit;
pub mod build;
pub mod diff;
pub mod eval;
pub mod explain;
pub mod history;
pub mod kill;
pub mod purge_args;
pub mod push;
pub mod rollback;
pub mod store_args;
pub mod token;
pub mod validate;

use publisher::compile::{Diagnostic, Severity};

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

/// `1 error`, `2 warnings`.
pub fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
