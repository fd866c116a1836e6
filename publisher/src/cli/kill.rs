//! `publisher kill KEY... --env ENV --reason WHY` / `--all`, and `publisher unkill`: the
//! emergency path. Publishes the deployed version with the flags forced to their safe default
//! (or released again), records who and why, then purges the CDN. Works from the store alone,
//! without the flags' Git checkout.

use std::path::Path;
use std::process::ExitCode;

use flags_compile::blob_file::Provenance;
use flags_store::layout::VersionRecord;
use flags_store::publish::KillTarget;

use super::purge_args::PurgeArgs;
use super::store_args::{StoreArgs, block_on, fail, print_outcome, with_published_env};

/// Arguments of `kill` and `unkill`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flag keys.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub flags: Vec<String>,
    /// Every flag of the environment.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub purge: PurgeArgs,
    /// Why: recorded in the version and the audit trail.
    #[arg(long, short = 'r', alias = "message")]
    pub reason: Option<String>,
    /// Author recorded in the version (default: `git config user.name`).
    #[arg(long)]
    pub author: Option<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `kill = true` for `kill`, false for `unkill`. Exit 0 when done (or nothing to change), 3 on a
/// lost race, 4 when stored but the purge failed, 1 otherwise.
pub fn run(args: Args, kill: bool) -> ExitCode {
    let (verb, done) = if kill {
        ("kill", "killed")
    } else {
        ("unkill", "released")
    };
    let provenance = Provenance::detect(Path::new("."), args.author.as_deref());
    let target = if args.all {
        KillTarget::All
    } else {
        KillTarget::Flags(args.flags.clone())
    };
    with_published_env(args.store, |env| async move {
        let outcome = env
            .set_killed(
                &target,
                kill,
                &provenance.author,
                &provenance.created_at,
                args.reason.clone(),
            )
            .await;
        match outcome {
            Ok(outcome) => {
                let published = |record: &VersionRecord| {
                    format!(
                        "{done} {} in {} as version {} (was {})",
                        record.flags.join(", "),
                        env.name(),
                        record.version,
                        record.previous.unwrap_or_default()
                    )
                };
                let unchanged = |version| {
                    format!(
                        "nothing to {verb}: {} version {version} already has them {done}",
                        env.name()
                    )
                };
                let version = print_outcome(env.name(), &outcome, args.json, published, unchanged);
                // Purged even when nothing changed: the operator may be retrying a failed purge.
                args.purge.run(env.name(), Some(version)).await
            }
            Err(e) => fail(verb, &e),
        }
    })
}

/// Arguments of `purge`.
#[derive(Debug, clap::Args)]
pub struct PurgeOnlyArgs {
    /// The environment whose cached blob to drop.
    #[arg(long)]
    pub env: String,
    #[command(flatten)]
    pub purge: PurgeArgs,
}

/// `publisher purge --env ENV`: retry a purge on its own.
pub fn run_purge(args: PurgeOnlyArgs) -> ExitCode {
    if args.purge.target.is_none() {
        eprintln!("error: nothing to purge: give --purge or set FLAGS_PURGE");
        return ExitCode::FAILURE;
    }
    block_on(async move { args.purge.run(&args.env, None).await })
}
