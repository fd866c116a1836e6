//! `--purge`, shared by every command that changes what an environment serves (push, rollback,
//! kill, unkill, purge), and how a purge failure is reported: loudly, but never as if the new
//! version had not been stored.

use std::process::ExitCode;

use publisher::publish::Outcome;
use publisher::purge::Purger;

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
            Outcome::Published(record) => self.after_publish(env, record.version).await,
            Outcome::Unchanged { .. } => ExitCode::SUCCESS,
        }
    }

    /// Purges `env` after a publish that stored `version`. Returns the exit code to use.
    pub async fn after_publish(&self, env: &str, version: u64) -> ExitCode {
        let purger = match Purger::from_target(self.target.as_deref()) {
            Ok(purger) => purger,
            Err(e) => return purge_failed(env, version, &e),
        };
        if matches!(purger, Purger::Disabled) {
            return ExitCode::SUCCESS;
        }
        match purger.purge(env).await {
            Ok(()) => {
                eprintln!("purged the CDN's copy of {env}");
                ExitCode::SUCCESS
            }
            Err(e) => purge_failed(env, version, &e),
        }
    }
}

fn purge_failed(env: &str, version: u64, error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!(
        "error: version {version} of {env} is stored and is what the store now serves, but the CDN \
         purge failed: {error}\n       edges pick it up when their cached copy expires; to purge now, \
         run `publisher purge --env {env}`"
    );
    ExitCode::from(EXIT_PURGE_FAILED)
}
