//! `publisher rollback --env ENV --to N`: serve version N's blob again, recorded as a new
//! version. Instant: blobs are immutable, so nothing is compiled or uploaded.

use std::path::Path;
use std::process::ExitCode;

use flags_compile::blob_file::Provenance;
use flags_store::layout::VersionRecord;

use super::purge_args::PurgeArgs;
use super::store_args::{RecordArgs, StoreArgs, finish, with_published_env};

/// Arguments of `rollback`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub purge: PurgeArgs,
    /// The version whose flags to serve again.
    #[arg(long)]
    pub to: u64,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// Exit 0 when rolled back (or already serving that blob), 3 on a lost race, 1 otherwise.
pub fn run(args: Args) -> ExitCode {
    let provenance = Provenance::detect(Path::new("."), args.record.author.as_deref());
    with_published_env(args.store, |env| async move {
        let outcome = env
            .rollback(
                args.to,
                &provenance.author,
                &provenance.created_at,
                args.record.message,
            )
            .await;
        let published = |record: &VersionRecord| {
            format!(
                "rolled {} back to version {}'s flags as version {} (was {}): {}",
                env.name(),
                args.to,
                record.version,
                record.previous.unwrap_or_default(),
                record.summary.one_line()
            )
        };
        let unchanged = |version| {
            format!(
                "{} already serves version {}'s flags (as version {version}); nothing to do",
                env.name(),
                args.to
            )
        };
        finish(
            env.name(),
            "rollback",
            outcome,
            args.record.json,
            &args.purge,
            published,
            unchanged,
        )
        .await
    })
}
