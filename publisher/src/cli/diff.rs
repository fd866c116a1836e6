//! `publisher diff`: flag-level and rule-level differences, three ways:
//!
//! - `publisher diff [DIR] --env E`: what pushing DIR would change in E (deployed -> files);
//! - `publisher diff --env E --to-env F`: deployed E -> deployed F (e.g. what promoting
//!   staging to prod would change: `--env prod --to-env staging`);
//! - `publisher diff --env E --from N [--to M]`: version N -> version M (default: current).

use std::path::PathBuf;
use std::process::ExitCode;

use flags_compile::diff::diff;
use flags_compile::{CompileOptions, compile_path};
use flags_store::publish::{Environment, PublishError};
use serde_json::json;
use shared_eval::Body;

use super::store_args::{StoreArgs, fail, print_json, with_env};
use super::{plural, print_diagnostics};

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flags directory to compare with what is deployed (when neither --to-env nor --from is given).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
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

/// Exit 0 (whether or not anything differs), 1 on errors.
pub fn run(args: Args) -> ExitCode {
    // Compile first (when comparing files), so flag errors show before any store traffic.
    let files = if args.to_env.is_none() && args.from.is_none() {
        match compile_path(&args.dir, &CompileOptions::new(args.store.env.clone())) {
            Ok(compiled) => Some((compiled.body, compiled.schedules)),
            Err(diags) => {
                let (errors, _) = print_diagnostics(&diags);
                eprintln!("diff failed: {}", plural(errors, "error"));
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    with_env(args.store.clone(), |env| async move {
        let sides = match files {
            // What the push would serve (kills and live stages kept), as `push --dry-run`.
            Some((body, schedules)) => {
                match (deployed(&env).await, env.plan(body, schedules).await) {
                    (Ok((label, old)), Ok(plan)) => Ok((
                        label,
                        old,
                        format!("files in {} (for {})", args.dir.display(), env.name()),
                        plan.served,
                    )),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            }
            None => compare_stored(&env, &args).await,
        };
        let (old_label, old, new_label, new) = match sides {
            Ok(sides) => sides,
            Err(e) => return fail("diff", &e),
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
        ExitCode::SUCCESS
    })
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
) -> Result<(String, Body, String, Body), PublishError> {
    if let Some(other) = &args.to_env {
        let other = Environment::new(env.store().clone(), other).map_err(|detail| {
            PublishError::Corrupt {
                key: other.clone(),
                detail,
            }
        })?;
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
