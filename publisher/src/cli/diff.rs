//! `publisher diff`: flag-level and rule-level differences, three ways:
//!
//! - `publisher diff [DIR | --flags DIR] --env E`: what pushing DIR would change in E
//!   (deployed -> files);
//! - `publisher diff --env E --to-env F`: deployed E -> deployed F (e.g. what promoting
//!   staging to prod would change: `--env prod --to-env staging`);
//! - `publisher diff --env E --from N [--to M]`: version N -> version M (default: current).
//!
//! Exit codes as diff(1)'s: 0 when nothing differs, [`EXIT_DIFFERENT`] when something does,
//! [`EXIT_TROUBLE`] when the sides could not be read (flags that do not compile, a store
//! error, a version or environment with nothing published).

use std::process::ExitCode;

use flags_compile::diff::diff;
use flags_compile::{CompileOptions, compile_path};
use flags_store::publish::{Environment, PublishError};
use serde_json::json;
use shared_eval::Body;

use super::store_args::{StoreArgs, block_on, print_json, require_published};
use super::{FlagsDir, plural, print_diagnostics};

/// Exit code when the two sides differ.
pub const EXIT_DIFFERENT: u8 = 1;

/// Exit code when the sides could not be compared.
pub const EXIT_TROUBLE: u8 = 2;

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    // The flags to compare with what is deployed (when neither --to-env nor --from is given).
    #[command(flatten)]
    pub flags: FlagsDir,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Compare the deployed --env with this environment's deployed flags.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub to_env: Option<String>,
    /// Compare this version of --env ...
    #[arg(long)]
    pub from: Option<u64>,
    /// ... with this one (default: the current version).
    #[arg(long, requires = "from")]
    pub to: Option<u64>,
    /// Print `{from, to, summary, flags}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Exit 0 when nothing differs, 1 when something does, 2 on errors.
pub fn run(args: Args) -> ExitCode {
    let trouble = ExitCode::from(EXIT_TROUBLE);
    // Compile first (when comparing files), so flag errors show before any store traffic.
    let files = if args.to_env.is_none() && args.from.is_none() {
        let dir = args.flags.path();
        match compile_path(dir, &CompileOptions::new(args.store.env.clone())) {
            Ok(compiled) => Some((compiled.body, compiled.schedules)),
            Err(diags) => {
                let (errors, _) = print_diagnostics(&diags);
                eprintln!("diff failed: {}", plural(errors, "error"));
                return trouble;
            }
        }
    } else {
        None
    };
    block_on(async move {
        let env = match args.store.open().await {
            Ok(env) => env,
            Err(e) => {
                eprintln!("error: {e}");
                return trouble;
            }
        };
        let sides = match files {
            // What the push would serve (kills and live stages kept), as `push --dry-run`.
            Some((body, schedules)) => {
                // One read of the deployed side: the plan's.
                match env.plan(body, schedules).await {
                    Ok(plan) => Ok((
                        match plan.current {
                            Some(version) => format!("{} version {version}", env.name()),
                            None => format!("{} (nothing published)", env.name()),
                        },
                        plan.deployed,
                        format!(
                            "files in {} (for {})",
                            args.flags.path().display(),
                            env.name()
                        ),
                        plan.served,
                    )),
                    Err(e) => Err(Trouble::Store(e)),
                }
            }
            None => compare_stored(&env, &args).await,
        };
        let (old_label, old, new_label, new) = match sides {
            Ok(sides) => sides,
            Err(Trouble::Store(e)) => {
                eprintln!("error: diff failed: {e}");
                return trouble;
            }
            Err(Trouble::NothingPublished(message)) => {
                eprintln!("error: {message}");
                return trouble;
            }
        };
        let difference = diff(&old, &new);
        let summary = difference.summary();
        if args.json {
            print_json(
                &json!({ "from": old_label, "to": new_label, "summary": summary, "flags": difference.flags }),
            );
        } else {
            println!("{old_label} -> {new_label}: {}", summary.one_line());
            print!("{difference}");
        }
        if difference.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_DIFFERENT)
        }
    })
}

/// Why the two sides could not be read.
enum Trouble {
    Store(PublishError),
    /// `--to-env` or `--from` on an environment with nothing published (likely a typo).
    NothingPublished(String),
}

impl From<PublishError> for Trouble {
    fn from(error: PublishError) -> Trouble {
        Trouble::Store(error)
    }
}

/// What `env` serves, labelled; an empty body before the first push.
async fn deployed(env: &Environment) -> Result<(String, Body), PublishError> {
    Ok(match env.deployed().await? {
        Some((pointer, blob)) => (
            format!("{} version {}", env.name(), pointer.version),
            blob.body,
        ),
        None => (
            format!("{} (nothing published)", env.name()),
            Body::default(),
        ),
    })
}

async fn compare_stored(
    env: &Environment,
    args: &Args,
) -> Result<(String, Body, String, Body), Trouble> {
    require_published(env)
        .await
        .map_err(Trouble::NothingPublished)?;
    if let Some(other) = &args.to_env {
        let other = Environment::new(env.store().clone(), other).map_err(|detail| {
            PublishError::Corrupt {
                key: other.clone(),
                detail,
            }
        })?;
        require_published(&other)
            .await
            .map_err(Trouble::NothingPublished)?;
        let (old_label, old) = deployed(env).await?;
        let (new_label, new) = deployed(&other).await?;
        return Ok((old_label, old, new_label, new));
    }
    let from = args.from.unwrap_or_default();
    let old = env.version_body(from).await?;
    let (new_label, new) = match args.to {
        Some(to) => (
            format!("{} version {to}", env.name()),
            env.version_body(to).await?,
        ),
        None => deployed(env).await?,
    };
    Ok((
        format!("{} version {from}", env.name()),
        old,
        new_label,
        new,
    ))
}
