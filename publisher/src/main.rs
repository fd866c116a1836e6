//! `publisher`: the command-line entry point.
//!
//! Each subcommand is one variant of [`Command`] wrapping the `Args` of its own module under
//! `cli/`, whose `run` returns the exit code: adding a subcommand is one variant, one match arm
//! and one module.

/// `print!` for every module below (a `macro_rules!` defined before them shadows std's): see
/// [`cli::write_stdout`], which ends the process quietly when stdout is closed (`| head`).
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` for every module below: [`print!`]'s, with the newline.
macro_rules! println {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Feature flags compiled for the edge: validate, build, evaluate and publish flag files.
#[derive(Debug, Parser)]
#[command(name = "publisher", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a flags directory: errors and lints, each with file:line.
    Validate(cli::validate::Args),
    /// Compile a flags directory for one environment into a gzipped blob file.
    Build(cli::build::Args),
    /// Evaluate one flag for a context, locally, with the same evaluator as the edge.
    #[command(allow_missing_positional = true)]
    Eval(cli::eval::Args),
    /// Evaluate one flag and show why: which rule matched, which conditions held or failed.
    #[command(allow_missing_positional = true)]
    Explain(cli::explain::Args),
    /// Mint a signed identity token (HS256 JWT) for demos and tests; the secret comes from env.
    Token(cli::token::Args),
    /// Write an ed25519 key pair for signed pointers (private key 0600, public key line).
    Keygen(cli::keygen::Args),
    /// Compile, upload and publish a flags directory as the environment's next version.
    Push(cli::push::Args),
    /// List an environment's versions, newest first.
    History(cli::history::Args),
    /// Serve an earlier version's flags again, as a new version.
    Rollback(cli::rollback::Args),
    /// Show flag- and rule-level differences: files vs deployed, env vs env, version vs version.
    Diff(cli::diff::Args),
    /// How many contexts of a sample (JSONL) would change variant if DIR were pushed, per flag.
    Impact(cli::impact::Args),
    /// Where Git, the store and the edges disagree about an environment; --fix reconciles.
    Drift(cli::drift::Args),
    /// Show the audit trail: who published what, when, from which commit, and why.
    Audit(cli::audit::Args),
    /// Emergency: force flags to their safe default in the deployed version, then purge the CDN.
    Kill(cli::kill::Args),
    /// Undo a kill: serve the flags' normal targeting again, then purge the CDN.
    Unkill(cli::kill::Args),
    /// Make the running canary the stable version, served to everyone; then purge the CDN.
    Promote(cli::promote::Args),
    /// Drop the running canary: the stable version serves everyone again; then purge the CDN.
    Abort(cli::promote::Args),
    /// Progressive rollout schedules: status, tick (advance due stages), resume.
    #[command(subcommand)]
    Rollout(cli::rollout::Args),
    /// Purge the CDN's copy of an environment (e.g. to retry after a failed purge).
    Purge(cli::kill::PurgeOnlyArgs),
    /// Run the control-plane service: HTTP API with roles, status page, metrics.
    Serve(cli::serve::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Validate(args) => cli::validate::run(args),
        Command::Build(args) => cli::build::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Explain(args) => cli::explain::run(args),
        Command::Token(args) => cli::token::run(args),
        Command::Keygen(args) => cli::keygen::run(args),
        Command::Push(args) => cli::push::run(args),
        Command::History(args) => cli::history::run(args),
        Command::Rollback(args) => cli::rollback::run(args),
        Command::Diff(args) => cli::diff::run(args),
        Command::Impact(args) => cli::impact::run(args),
        Command::Drift(args) => cli::drift::run(args),
        Command::Audit(args) => cli::audit::run(args),
        Command::Kill(args) => cli::kill::run(args, true),
        Command::Unkill(args) => cli::kill::run(args, false),
        Command::Promote(args) => cli::promote::run(args, true),
        Command::Abort(args) => cli::promote::run(args, false),
        Command::Rollout(args) => cli::rollout::run(args),
        Command::Purge(args) => cli::kill::run_purge(args),
        Command::Serve(args) => cli::serve::run(args),
    }
}
