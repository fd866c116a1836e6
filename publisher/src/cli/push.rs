//! `publisher push [DIR] --env ENV`: compile, upload the blob, read it back, move the pointer,
//! append the audit entry; print the new version and a one-line summary of what changed.
//! With `--purge` (or `FLAGS_PURGE`) the CDN is purged after publishing.
//! `--dry-run` compiles and shows the change against what is deployed, writing nothing.
//! `--canary PERCENT` publishes the flags as the environment's canary instead, served to that
//! share of users beside the stable version until `promote` or `abort`.

use std::path::PathBuf;
use std::process::ExitCode;

use flags_compile::blob_file::Provenance;
use flags_store::layout::{Share, VersionRecord};
use serde_json::json;

use super::compile_or_report;
use super::purge_args::PurgeArgs;
use super::store_args::{RecordArgs, StoreArgs, fail, finish, print_json, with_env};

/// Arguments of `push`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flags directory (with flags/, segments/, lists/) or a flagd JSON file.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub purge: PurgeArgs,
    /// Publish as a canary served to this percentage of users (by targeting key), beside the
    /// stable version; `promote` or `abort` ends it. Again during a canary: replaces its flags
    /// and share.
    #[arg(long, value_name = "PERCENT")]
    pub canary: Option<Share>,
    /// Show what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub record: RecordArgs,
    /// Refuse to publish a flagd file with flags that would be served as PARSE_ERROR.
    #[arg(long)]
    pub strict: bool,
}

/// Exit 0 when published (or nothing changed), 3 when another push won the race (re-run), 4
/// when published but the CDN purge failed,
/// 1 on compile errors or store failures.
pub fn run(args: Args) -> ExitCode {
    let Some(compiled) = compile_or_report(
        &args.dir,
        &args.store.env,
        "push",
        "; nothing was published",
    ) else {
        return ExitCode::FAILURE;
    };
    if args.strict && !compiled.broken.is_empty() {
        eprintln!(
            "push failed: --strict and {} served as PARSE_ERROR; nothing was published",
            super::plural(compiled.broken.len(), "broken flag")
        );
        return ExitCode::FAILURE;
    }
    let provenance = Provenance::detect(&args.dir, args.record.author.as_deref());
    with_env(args.store, |env| async move {
        if args.dry_run {
            let plan = match env.plan(compiled.body, compiled.schedules).await {
                Ok(plan) => plan,
                Err(e) => return fail("push --dry-run", &e),
            };
            let summary = plan.diff.summary();
            if args.record.json {
                print_json(&json!({
                    "env": env.name(),
                    "dry_run": true,
                    "current": plan.current,
                    "summary": summary,
                    "flags": plan.diff.flags,
                }));
            } else {
                let next = plan.current.map_or(1, |v| v + 1);
                match plan.current {
                    _ if plan.diff.is_empty() && plan.current.is_some() => {
                        println!(
                            "dry run: {} already serves these flags; nothing to publish",
                            env.name()
                        )
                    }
                    Some(current) => {
                        println!(
                            "dry run: would publish {} version {next} (now {current}): {}",
                            env.name(),
                            summary.one_line()
                        )
                    }
                    None => println!(
                        "dry run: would publish {} version 1: {}",
                        env.name(),
                        summary.one_line()
                    ),
                }
                print!("{}", plan.diff);
            }
            return ExitCode::SUCCESS;
        }
        let pushed = match args.canary {
            Some(percent) => {
                env.push_canary(compiled.body, percent, &provenance, args.record.message)
                    .await
            }
            None => {
                env.push_scheduled(
                    compiled.body,
                    compiled.schedules,
                    &provenance,
                    args.record.message,
                )
                .await
            }
        };
        let published = |record: &VersionRecord| {
            let canary = record
                .canary
                .as_ref()
                .map(|c| format!(" as a canary to {} of users", c.percent))
                .unwrap_or_default();
            format!(
                "published {} version {}{canary} ({}): {}",
                env.name(),
                record.version,
                record
                    .previous
                    .map_or("first version".to_owned(), |p| format!("was {p}")),
                record.summary.one_line()
            )
        };
        let unchanged = |version| {
            format!(
                "{} already serves these flags as version {version}; nothing published",
                env.name()
            )
        };
        finish(
            env.name(),
            "push",
            pushed,
            args.record.json,
            &args.purge,
            published,
            unchanged,
        )
        .await
    })
}
