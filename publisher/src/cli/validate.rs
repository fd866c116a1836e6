//! `publisher validate [DIR | --flags DIR]`: compile without writing anything; print every
//! diagnostic.
//! Every environment of every flag is checked whatever `--env` says; `--env` only picks the
//! environment whose compiled size is reported. A flagd flag that `build`/`push` would serve as
//! `PARSE_ERROR` is an error here, so CI catches it.

use std::process::ExitCode;

use flags_compile::{CompileOptions, Severity, compile_path};

use super::{DEFAULT_ENV, FlagsDir, plural, print_diagnostics};

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: FlagsDir,
    /// Environment to compile (all are checked).
    #[arg(long, default_value = DEFAULT_ENV)]
    pub env: String,
    /// Exit non-zero on warnings (lints) too, e.g. in CI.
    #[arg(long)]
    pub deny_warnings: bool,
}

/// Exit 0 when clean, 1 on errors (or on warnings with `--deny-warnings`).
pub fn run(args: Args) -> ExitCode {
    let dir = args.flags.path();
    match compile_path(dir, &CompileOptions::new(&args.env)) {
        Ok(compiled) => {
            let diags: Vec<_> = compiled
                .warnings
                .iter()
                .map(|d| {
                    let mut d = d.clone();
                    if compiled.broken.contains(&d) {
                        d.severity = Severity::Error;
                    }
                    d
                })
                .collect();
            let (errors, warnings) = print_diagnostics(&diags);
            if errors > 0 {
                println!(
                    "{}: {}, {}",
                    dir.display(),
                    plural(errors, "error"),
                    plural(warnings, "warning")
                );
                return ExitCode::FAILURE;
            }
            println!(
                "{}: {}, {}, {}",
                dir.display(),
                plural(compiled.body.flags.len(), "flag"),
                plural(compiled.body.segments.len(), "segment"),
                plural(warnings, "warning")
            );
            if args.deny_warnings && warnings > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(diags) => {
            let (errors, warnings) = print_diagnostics(&diags);
            println!(
                "{}: {}, {}",
                dir.display(),
                plural(errors, "error"),
                plural(warnings, "warning")
            );
            ExitCode::FAILURE
        }
    }
}
