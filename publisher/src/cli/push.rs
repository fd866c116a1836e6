//! `publisher push [DIR | --flags DIR] --env ENV`: compile, upload the blob, read it back,
//! move the pointer, append the audit entry; print the new version and a one-line summary of
//! what changed. With `--purge` (or `FLAGS_PURGE`) the CDN is purged after publishing.
//! `--dry-run` compiles and shows the change against what is deployed, writing nothing.
//! `--canary PERCENT` publishes the flags as the environment's canary instead, served to that
//! share of users beside the stable version until `promote` or `abort`.
//!
//! Safe by default: an environment no flag file defines needs `--new-env`; a push removing
//! every deployed flag, or more than `--max-removals` percent of them, needs
//! `--allow-removals`; a push from uncommitted files warns and is recorded as such.

use std::process::ExitCode;

use flags_compile::CompileOptions;
use flags_compile::blob_file::Provenance;
use flags_store::layout::{Share, VersionRecord};
use flags_store::publish::{DEFAULT_MAX_REMOVALS_PERCENT, RemovalPolicy};
use serde_json::json;

use super::purge_args::PurgeArgs;
use super::store_args::{RecordArgs, StoreArgs, fail, finish, print_json, with_env};
use super::{FlagsDir, compile_or_report};

/// Arguments of `push`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: FlagsDir,
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
    /// Publish to an environment no flag file defines (every flag off there): without it that
    /// is an error, as it is usually a typo (`production` for `prod`).
    #[arg(long)]
    pub new_env: bool,
    /// Refuse a push that removes more than this percentage of the deployed flags (removing
    /// every one of them is always refused without --allow-removals).
    #[arg(long, value_name = "PERCENT", default_value_t = DEFAULT_MAX_REMOVALS_PERCENT,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_removals: u8,
    /// Publish whatever the push removes, every flag included.
    #[arg(long)]
    pub allow_removals: bool,
}

/// Exit 0 when published (or nothing changed), 3 when another push won the race (re-run), 4
/// when published but the CDN purge failed, 1 on compile errors, store failures or a refused
/// removal (also for `--dry-run`, when the push would be refused).
pub fn run(args: Args) -> ExitCode {
    let dir = args.flags.path();
    let mut options = CompileOptions::new(&args.store.env);
    options.new_environment = args.new_env;
    let Some(compiled) = compile_or_report(dir, &options, "push", "; nothing was published") else {
        return ExitCode::FAILURE;
    };
    if args.strict && !compiled.broken.is_empty() {
        eprintln!(
            "push failed: --strict and {} served as PARSE_ERROR; nothing was published",
            super::plural(compiled.broken.len(), "broken flag")
        );
        return ExitCode::FAILURE;
    }
    let provenance = Provenance::detect(dir, args.record.author.as_deref());
    if provenance.source_dirty {
        eprintln!(
            "warning: {} has uncommitted changes: what is published is not commit {}; the version is recorded as dirty",
            dir.display(),
            super::store_args::short_commit(provenance.source_commit.as_deref())
        );
    }
    let removals = if args.allow_removals {
        RemovalPolicy::Any
    } else {
        RemovalPolicy::AtMost(args.max_removals)
    };
    with_env(args.store, |env| async move {
        let env = env.with_removals(removals);
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
                    "refused": plan.refused,
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
            if let Some(why) = &plan.refused {
                eprintln!("error: push would be refused: {why}");
                return ExitCode::FAILURE;
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
