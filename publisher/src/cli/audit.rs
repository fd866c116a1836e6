//! `publisher audit --env ENV [--json]`: who did what, when, from which commit, and why; every
//! push, rollback and kill, oldest first.

use std::process::ExitCode;

use super::store_args::{StoreArgs, fail, print_json, short_commit, with_env};

/// Arguments of `audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print the entries as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Exit 0, or 1 when the store cannot be read.
pub fn run(args: Args) -> ExitCode {
    with_env(args.store, |env| async move {
        let entries = match env.audit().await {
            Ok(entries) => entries,
            Err(e) => return fail("audit", &e),
        };
        if args.json {
            print_json(&entries);
            return ExitCode::SUCCESS;
        }
        if entries.is_empty() {
            println!("{}: no audit entries", env.name());
        }
        for entry in &entries {
            let message = entry
                .message
                .as_deref()
                .map(|m| format!(" \"{m}\""))
                .unwrap_or_default();
            let completed = entry
                .completed_by
                .as_deref()
                .map(|c| format!(" (completed by {c})"))
                .unwrap_or_default();
            println!(
                "{}  {} version {} {} by {} from {}: {}{message}{completed}",
                entry.when,
                env.name(),
                entry.version,
                entry.action.as_str(),
                entry.who,
                short_commit(entry.commit.as_deref()),
                entry.what,
            );
        }
        ExitCode::SUCCESS
    })
}
