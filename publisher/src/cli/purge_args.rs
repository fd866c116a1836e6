//! `--purge`, shared by every command that changes what an environment serves (push, rollback,
//! kill, unkill, purge), and how a purge failure is reported: loudly, but never as if the new
//! version had not been stored.

use std::process::ExitCode;

use flags_store::publish::Outcome;
use flags_store::purge::{PurgeReport, PurgeStatus, Purger};

/// Exit code when the version was stored but the CDN purge failed: the edge will pick the new
/// version up at its next cache expiry; `publisher purge --env ENV` retries the purge alone.
pub const EXIT_PURGE_FAILED: u8 = 4;

/// Where to purge after publishing.
#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// CDN to purge after publishing: `cloudflare://<zone id>` (token from CLOUDFLARE_API_TOKEN)
    /// or a worker's base URL `http(s)://host:port` (token from FLAGS_PURGE_TOKEN). Unset: no purge.
    #[arg(long = "purge", env = "FLAGS_PURGE")]
    pub target: Option<String>,
}

impl PurgeArgs {
    /// Purges `env` when `outcome` published a new version; nothing changed needs no purge.
    pub async fn after_outcome(&self, env: &str, outcome: &Outcome) -> ExitCode {
        match outcome {
            Outcome::Published(record) => self.run(env, Some(record.version)).await,
            Outcome::Unchanged { .. } => ExitCode::SUCCESS,
        }
    }

    /// Purges `env`: after a publish that stored `version`, or on its own (`None`, `publisher
    /// purge`). Prints the [`PurgeReport`] and returns the exit code.
    pub async fn run(&self, env: &str, version: Option<u64>) -> ExitCode {
        let report = match Purger::from_target(self.target.as_deref()) {
            Ok(purger) => purger.report(env).await,
            Err(e) => PurgeReport::not_started(&e),
        };
        match report.status {
            PurgeStatus::Disabled => ExitCode::SUCCESS,
            PurgeStatus::Done => {
                eprintln!("{}", report.sentence(env, version));
                ExitCode::SUCCESS
            }
            PurgeStatus::Failed => {
                eprintln!("error: {}", report.sentence(env, version));
                ExitCode::from(EXIT_PURGE_FAILED)
            }
        }
    }
}
