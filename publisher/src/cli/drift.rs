//! `publisher drift --env ENV [DIR | --flags DIR] [--edge URL]... [--json] [--fix]
//! [--allow-older] [--against ENV2]`: where Git, the store and the edges disagree, and `--fix`
//! to reconcile them. A thin layer over `flags_store::drift` (docs/drift.md); every run is
//! audited.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use flags_compile::blob_file::Provenance;
use flags_store::drift::{self, CheckOptions, EXIT_UNCHECKED, FixOptions, audit};
use flags_store::publish::Environment;
use flags_store::purge::Purger;

use super::FlagsDir;
use super::store_args::{StoreArgs, block_on, print_json};

/// Arguments of `drift`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    // The flags directory in the Git checkout, compiled for --env (the Git layer is skipped
    // when neither DIR nor --flags is given).
    #[command(flatten)]
    pub flags: FlagsDir,
    /// An edge endpoint's base URL, asked for /_flags/health; repeat for a fleet.
    #[arg(long = "edge")]
    pub edges: Vec<String>,
    /// Reconcile: publish Git when ahead, republish the last good version over a broken
    /// pointer or blob, purge stale edges and wait for them; then check again.
    #[arg(long, conflicts_with = "against")]
    pub fix: bool,
    /// With --fix: also publish a Git checkout that is behind (or not ordered with) the store.
    #[arg(long, requires = "fix")]
    pub allow_older: bool,
    /// Compare --env with this environment (declared per-env differences are not drift).
    #[arg(long, requires = "flags_dir")]
    pub against: Option<String>,
    /// With --fix: purge the CDN by cache tag (`cloudflare://<zone id>`) instead of each
    /// --edge's /_flags/purge (bearer FLAGS_PURGE_TOKEN).
    #[arg(long = "purge", env = "FLAGS_PURGE")]
    pub purge: Option<String>,
    /// With --fix: how long to wait for purged edges to converge, in seconds.
    #[arg(long, default_value_t = 15)]
    pub converge_timeout: u64,
    /// How long one edge health request may take, in seconds.
    #[arg(long, default_value_t = 5)]
    pub edge_timeout: u64,
    /// Recorded in the audit trail and in versions a fix publishes (default: git user.name).
    #[arg(long)]
    pub author: Option<String>,
    /// Print the report as JSON (schema in docs/drift.md).
    #[arg(long)]
    pub json: bool,
}

/// Exit 0 in sync, 1 drift, 2 could not check (after the fix, with --fix).
pub fn run(args: Args) -> ExitCode {
    let who = Provenance::detect(args.flags.path(), args.author.as_deref()).author;
    block_on(async move {
        let env = match args.store.open().await {
            Ok(env) => env,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_UNCHECKED);
            }
        };
        if let Some(other) = &args.against {
            return against(&env, other, &args, &who).await;
        }
        let check = CheckOptions {
            flags_dir: args.flags.given().map(PathBuf::from),
            edges: args.edges.clone(),
            edge_timeout: Duration::from_secs(args.edge_timeout),
        };
        if !args.fix {
            let report = drift::check(&env, &check).await;
            output(&report, args.json);
            audited(audit::record_check(&env, &report, &who).await);
            return ExitCode::from(report.exit_code());
        }
        let purger = match Purger::from_target(args.purge.as_deref()) {
            Ok(purger) => purger,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_UNCHECKED);
            }
        };
        let options = FixOptions {
            check,
            allow_older: args.allow_older,
            // Whoever holds the store's credentials publishes without approval, as with push.
            publish_needs_approval: false,
            author: who.clone(),
            purger,
            edge_purge_token: std::env::var("FLAGS_PURGE_TOKEN").ok(),
            converge_timeout: Duration::from_secs(args.converge_timeout),
        };
        let report = drift::fix(&env, &options).await;
        output(&report, args.json);
        audited(audit::record_fix(&env, &report, &who).await);
        ExitCode::from(report.exit_code())
    })
}

async fn against(env: &Environment, other: &str, args: &Args, who: &str) -> ExitCode {
    let other = match Environment::new(env.store().clone(), other) {
        Ok(other) => other,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_UNCHECKED);
        }
    };
    let report = drift::against::compare(env, &other, args.flags.path()).await;
    output(&report, args.json);
    audited(audit::record_against(env, &report, who).await);
    ExitCode::from(report.status.exit_code())
}

fn output<T: serde::Serialize + std::fmt::Display>(report: &T, json: bool) {
    if json {
        print_json(report);
    } else {
        print!("{report}");
    }
}

/// A check that cannot be audited still reports; say so on stderr.
fn audited<T>(result: Result<T, flags_store::publish::PublishError>) {
    if let Err(e) = result {
        eprintln!("warning: the drift audit entry could not be written: {e}");
    }
}
