//! What the store commands (`push`, `history`, `rollback`, `diff`, `audit`) share: the store and
//! environment options, the async runtime, and how failures turn into messages and exit codes.

use std::process::ExitCode;

use flags_store::layout::VersionRecord;
use flags_store::publish::{Environment, Outcome, PublishError};
use flags_store::store::{self, DEFAULT_STORE, STORE_ENV_VAR};

/// Exit code of a push or rollback that lost a race: re-running it is the fix.
pub const EXIT_CONFLICT: u8 = 3;

/// `--store` and `--env`.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Where versions live: `s3://bucket/prefix` (AWS credential chain; AWS_ENDPOINT_URL for
    /// R2/self-hosted, path-style there by default, FLAGS_S3_PATH_STYLE to override) or a
    /// directory (the embedded local store).
    #[arg(long, env = STORE_ENV_VAR, default_value = DEFAULT_STORE)]
    pub store: String,
    /// The environment (`dev`, `staging`, `prod`, ...).
    #[arg(long)]
    pub env: String,
}

/// Who and why, recorded in the version and the audit trail, and how to print the result: the
/// options of every command that publishes a version (push, rollback, promote, abort).
#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// Author recorded in the version (default: `git config user.name`).
    #[arg(long)]
    pub author: Option<String>,
    /// Why: recorded in the version and the audit trail.
    #[arg(long, short)]
    pub message: Option<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

impl StoreArgs {
    /// Opens the store and the environment.
    pub async fn open(&self) -> Result<Environment, String> {
        let store = store::open(&self.store).await?;
        Environment::new(store, &self.env)
    }
}

/// Opens the store and runs `work` on the environment, on [`block_on`]'s runtime. A store that
/// cannot be opened is `error: ...` and exit 1, the same for every command.
pub fn with_env<F, Fut>(store: StoreArgs, work: F) -> ExitCode
where
    F: FnOnce(Environment) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    block_on(async move {
        match store.open().await {
            Ok(env) => work(env).await,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Runs a command's async body on a single-threaded runtime (a CLI makes one request at a time).
pub fn block_on<F: std::future::Future<Output = ExitCode>>(work: F) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(work),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `error: ...` and picks the exit code: [`EXIT_CONFLICT`] for a lost race, 1 otherwise.
pub fn fail(command: &str, error: &PublishError) -> ExitCode {
    eprintln!("error: {command} failed: {error}");
    match error {
        PublishError::Conflict { .. } => ExitCode::from(EXIT_CONFLICT),
        _ => ExitCode::FAILURE,
    }
}

/// Prints what a publishing command did: with `--json` one object of the same shape for every
/// command (`published`, plus the `record` or the unchanged `version`), otherwise the command's
/// own sentence. Returns the version now served, for the purge that follows.
pub fn print_outcome(
    env: &str,
    outcome: &Outcome,
    json: bool,
    published: impl FnOnce(&VersionRecord) -> String,
    unchanged: impl FnOnce(u64) -> String,
) -> u64 {
    match outcome {
        Outcome::Published(record) => {
            if json {
                print_json(&serde_json::json!({ "env": env, "published": true, "record": record }));
            } else {
                println!("{}", published(record));
            }
            record.version
        }
        Outcome::Unchanged { version } => {
            if json {
                print_json(
                    &serde_json::json!({ "env": env, "published": false, "version": version }),
                );
            } else {
                println!("{}", unchanged(*version));
            }
            *version
        }
    }
}

/// How every publishing command ends: print what it did ([`print_outcome`]) and purge when a
/// version was published, or report the failure ([`fail`]). Returns the exit code.
pub async fn finish(
    env: &str,
    verb: &str,
    outcome: Result<Outcome, PublishError>,
    json: bool,
    purge: &super::purge_args::PurgeArgs,
    published: impl FnOnce(&VersionRecord) -> String,
    unchanged: impl FnOnce(u64) -> String,
) -> ExitCode {
    match outcome {
        Ok(outcome) => {
            print_outcome(env, &outcome, json, published, unchanged);
            purge.after_outcome(env, &outcome).await
        }
        Err(e) => fail(verb, &e),
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

/// `abc1234` for a commit hash.
pub fn short_commit(commit: Option<&str>) -> &str {
    commit.map_or("-", |c| c.get(..7).unwrap_or(c))
}
