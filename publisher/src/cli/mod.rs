//! The subcommands, one module each, and what they share: where the flags are ([`FlagsDir`]),
//! printing diagnostics, and writing to stdout ([`write_stdout`]).

pub mod audit;
pub mod build;
pub mod diff;
pub mod drift;
pub mod eval;
pub mod explain;
pub mod history;
pub mod impact;
pub mod keygen;
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

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use flags_compile::{CompileOptions, Compiled, Diagnostic, Severity, compile_path};

/// The environment `eval`/`explain`/`validate` use when none is given: what users see.
pub const DEFAULT_ENV: &str = "prod";

/// Exit code when stdout was closed under a command (`publisher history | head`): what a shell
/// reports for a process killed by SIGPIPE (128 + 13), as `cat` or `git log` would end.
pub const EXIT_CLOSED_STDOUT: u8 = 141;

/// Writes to stdout for `print!`/`println!` (main.rs): a closed stdout ends the process
/// quietly with [`EXIT_CLOSED_STDOUT`], any other failure (a full disk) with an error and 1.
/// Rust ignores SIGPIPE, so a write to a closed pipe fails with `BrokenPipe`, which std's
/// macros turn into a panic with a backtrace; restoring SIGPIPE would take `unsafe`, which the
/// workspace forbids.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(i32::from(EXIT_CLOSED_STDOUT));
        }
        drop(stdout);
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Where a command reads the flags: a directory (with flags/, segments/, lists/) or a flagd
/// JSON file, given as the positional `DIR` or as `--flags DIR` alike, on every command.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "flags_dir", multiple = false)]
pub struct FlagsDir {
    /// Flags directory (with flags/, segments/, lists/) or a flagd JSON file; the current
    /// directory when neither DIR nor --flags is given (`drift` then skips the Git layer)
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The same as DIR, as an option.
    #[arg(long = "flags", value_name = "DIR")]
    pub flags: Option<PathBuf>,
}

impl FlagsDir {
    /// The path given either way, if any.
    pub fn given(&self) -> Option<&Path> {
        self.dir.as_deref().or(self.flags.as_deref())
    }

    /// The path given, or the current directory.
    pub fn path(&self) -> &Path {
        self.given().unwrap_or(Path::new("."))
    }
}

/// A `FlagsDir` is used as the path it names ([`FlagsDir::path`]).
impl std::ops::Deref for FlagsDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.path()
    }
}

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

/// Compiles `dir` for a command that writes what it compiles (`build`, `push`): prints the
/// warnings, or every diagnostic and `{command} failed: N errors{consequence}`.
pub fn compile_or_report(
    dir: &Path,
    options: &CompileOptions,
    command: &str,
    consequence: &str,
) -> Option<Compiled> {
    match compile_path(dir, options) {
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
