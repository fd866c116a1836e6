//! What the store commands (`push`, `history`, `rollback`, `diff`, `audit`) share: the store and
//! environment options, the async runtime, how failures turn into messages and exit codes, and
//! the check that a command reading what `--env` published names an environment that has some.

use std::process::ExitCode;
use std::sync::Arc;

use flags_compile::suggest::did_you_mean;
use flags_store::layout::VersionRecord;
use flags_store::publish::{self, Environment, Outcome, PublishError};
use flags_store::signing::{SIGNING_KEY_ENV_VAR, SigningKey};
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
    /// Sign every pointer published with this ed25519 key (PKCS#8 PEM, mode 0600, from
    /// `publisher keygen`); edges configured with its public key refuse unsigned pointers.
    #[arg(long, env = SIGNING_KEY_ENV_VAR, value_name = "FILE")]
    pub signing_key: Option<std::path::PathBuf>,
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
        let env = Environment::new(store, &self.env)?;
        Ok(match &self.signing_key {
            Some(path) => env.with_signing_key(Arc::new(SigningKey::read(path)?)),
            None => env,
        })
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

/// [`with_env`] for the commands that act on what `--env` has published (history, audit,
/// rollback, kill, promote, rollout, diff between stored versions): an environment with nothing
/// published is most likely a typo, so it is an error naming the store's environments and the
/// closest one (`prd: nothing published yet in ... (did you mean `prod`?)`), exit 1.
pub fn with_published_env<F, Fut>(store: StoreArgs, work: F) -> ExitCode
where
    F: FnOnce(Environment) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    with_env(store, |env| async move {
        match require_published(&env).await {
            Ok(()) => work(env).await,
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        }
    })
}

/// `Err(message)` when `env` has nothing published: no pointer and no first version record (a
/// first push that stopped halfway counts as published: the command completes it). A store
/// that cannot be read passes, so that the command reports its own, more precise, error.
pub async fn require_published(env: &Environment) -> Result<(), String> {
    match env.current().await {
        Ok(None) => {}
        Ok(Some(_)) | Err(_) => return Ok(()),
    }
    if !matches!(env.record(1).await, Ok(None)) {
        return Ok(());
    }
    let store = env.store();
    let known = publish::environments(store.as_ref())
        .await
        .unwrap_or_default();
    let hint = did_you_mean(env.name(), known.iter().map(String::as_str));
    let there = if known.is_empty() {
        "the store has no environments yet".to_owned()
    } else {
        format!("environments there: {}", known.join(", "))
    };
    Err(format!(
        "{}: nothing published yet in {}{hint}; {there}",
        env.name(),
        store.describe()
    ))
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

/// `abc1234`, or `abc1234-dirty` (as `git describe --dirty` says it) for a version pushed from
/// uncommitted files.
pub fn commit_label(commit: Option<&str>, dirty: bool) -> String {
    let short = short_commit(commit);
    if dirty {
        format!("{short}-dirty")
    } else {
        short.to_owned()
    }
}
