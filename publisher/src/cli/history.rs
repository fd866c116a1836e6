//! `publisher history --env ENV [--json]`: every version, newest first, the current one marked.

use std::process::ExitCode;

use serde_json::json;

use super::plural;
use super::store_args::{StoreArgs, commit_label, fail, print_json, with_published_env};

/// Arguments of `history`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print `{env, current, versions: [...], problems: [...]}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Exit 0, or 1 when the store cannot be read or the environment has nothing published.
pub fn run(args: Args) -> ExitCode {
    with_published_env(args.store, |env| async move {
        let history = match env.history().await {
            Ok(history) => history,
            Err(e) => return fail("history", &e),
        };
        if args.json {
            print_json(&json!({
                "env": env.name(),
                "current": history.current,
                "versions": history.records,
                "problems": history.problems,
            }));
        } else if history.records.is_empty() {
            println!("{}: nothing published yet", env.name());
        } else {
            println!(
                "{}: {}, serving {}",
                env.name(),
                plural(history.records.len(), "version"),
                history
                    .current
                    .map_or("none".into(), |v| format!("version {v}"))
            );
            for record in history.records.iter().rev() {
                let mark = if Some(record.version) == history.current {
                    '*'
                } else {
                    ' '
                };
                let what = match (record.rollback_to, &record.canary) {
                    (Some(to), _) => format!("back to {to}: {}", record.summary.one_line()),
                    (None, Some(canary)) => format!(
                        "canary {} since {}: {}",
                        canary.percent,
                        canary.since,
                        record.summary.one_line()
                    ),
                    (None, None) => record.summary.one_line(),
                };
                let message = record
                    .message
                    .as_deref()
                    .map(|m| format!("  \"{m}\""))
                    .unwrap_or_default();
                println!(
                    "{mark} {:>5}  {:<8}  {}  {:<16}  {:<7}  {what}{message}",
                    record.version,
                    record.action.as_str(),
                    record.created_at,
                    record.author,
                    commit_label(record.source_commit.as_deref(), record.source_dirty),
                );
            }
        }
        for problem in &history.problems {
            eprintln!("warning: {problem}");
        }
        ExitCode::SUCCESS
    })
}
