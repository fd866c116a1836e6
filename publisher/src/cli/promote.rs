//! `publisher promote --env ENV` and `publisher abort --env ENV`: end the running canary,
//! making it the stable version or dropping it, as a new version; then purge the CDN.

use std::path::Path;
use std::process::ExitCode;

use flags_compile::blob_file::Provenance;
use flags_store::layout::VersionRecord;

use super::purge_args::PurgeArgs;
use super::store_args::{RecordArgs, StoreArgs, finish, with_published_env};

/// Arguments of `promote` and `abort`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub purge: PurgeArgs,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// `promote = true` for `promote`, false for `abort`. Exit 0 when done, 3 on a lost race, 4
/// when stored but the purge failed, 1 otherwise (including: no canary running).
pub fn run(args: Args, promote: bool) -> ExitCode {
    let verb = if promote { "promote" } else { "abort" };
    let provenance = Provenance::detect(Path::new("."), args.record.author.as_deref());
    with_published_env(args.store, |env| async move {
        let (author, at) = (&provenance.author, &provenance.created_at);
        let outcome = if promote {
            env.promote(author, at, args.record.message.clone()).await
        } else {
            env.abort(author, at, args.record.message.clone()).await
        };
        let published = |record: &VersionRecord| {
            let done = if promote {
                "promoted the canary to stable"
            } else {
                "aborted the canary; stable serves everyone"
            };
            format!(
                "{done} in {} as version {} (was {}): {}",
                env.name(),
                record.version,
                record.previous.unwrap_or_default(),
                record.summary.one_line()
            )
        };
        let unchanged = |version| format!("{} version {version}: nothing to {verb}", env.name());
        finish(
            env.name(),
            verb,
            outcome,
            args.record.json,
            &args.purge,
            published,
            unchanged,
        )
        .await
    })
}
