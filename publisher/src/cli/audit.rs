//! `publisher audit --env ENV [--json]`: who did what, when, from which commit, and why; every
//! push, rollback and kill, and every drift check and fix, oldest first.

use std::process::ExitCode;

use flags_store::drift::audit::{self as drift_audit, DriftAuditEntry};
use serde_json::Value;

use super::store_args::{StoreArgs, commit_label, fail, print_json, with_published_env};

/// Arguments of `audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print the entries as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Exit 0, or 1 when the store cannot be read or the environment has nothing published.
pub fn run(args: Args) -> ExitCode {
    with_published_env(args.store, |env| async move {
        let entries = match env.audit().await {
            Ok(entries) => entries,
            Err(e) => return fail("audit", &e),
        };
        let drift = match drift_audit::entries(&env).await {
            Ok(drift) => drift,
            Err(e) => return fail("audit", &e),
        };
        if args.json {
            // One array in time order: version entries as they are, drift entries with an
            // `action` of `drift_check`, `drift_fix` or `drift_against` (docs/drift.md).
            let mut all: Vec<(String, Value)> = entries
                .iter()
                .map(|e| (e.when.clone(), serde_json::to_value(e).unwrap_or_default()))
                .collect();
            all.extend(drift.iter().map(|d| (d.when.clone(), drift_json(d))));
            all.sort_by(|a, b| a.0.cmp(&b.0));
            print_json(&all.into_iter().map(|(_, v)| v).collect::<Vec<_>>());
            return ExitCode::SUCCESS;
        }
        if entries.is_empty() && drift.is_empty() {
            println!("{}: no audit entries", env.name());
        }
        let mut drift = drift.iter().peekable();
        for entry in &entries {
            while let Some(d) = drift.next_if(|d| d.when < entry.when) {
                println!("{}  {} {}", d.when, env.name(), d.one_line());
            }
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
                commit_label(entry.commit.as_deref(), entry.source_dirty),
                entry.what,
            );
        }
        for d in drift {
            println!("{}  {} {}", d.when, env.name(), d.one_line());
        }
        ExitCode::SUCCESS
    })
}

fn drift_json(entry: &DriftAuditEntry) -> Value {
    let mut value = serde_json::to_value(entry).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("action".into(), Value::from(entry.action()));
    }
    value
}
