//! `publisher impact --flags DIR --env ENV --sample FILE.jsonl [--store STORE] [--json]`:
//! what pushing DIR would change for real users. The deployed side and the proposed side are
//! what `publisher diff` compares (the proposed one as the push would serve it: kills kept,
//! live rollout stages applied, through `Environment::plan`); every flag that differs is
//! evaluated on both over the sample's contexts ([`flags_compile::impact`]).
//!
//! Exit codes as `diff`'s: 0 when no context moves, 1 when some do, 2 when the sides or the
//! sample could not be read.

use std::path::PathBuf;
use std::process::ExitCode;

use flags_compile::impact::{Sample, impact};
use flags_compile::{CompileOptions, compile_path};

use super::diff::{EXIT_DIFFERENT, EXIT_TROUBLE};
use super::store_args::{StoreArgs, block_on, print_json};
use super::{FlagsDir, plural, print_diagnostics};

/// Contexts read from the sample at most (the first ones).
pub const DEFAULT_MAX: usize = 1_000_000;

/// Arguments of `impact`.
#[derive(Debug, clap::Args)]
pub struct Args {
    // The proposed flags.
    #[command(flatten)]
    pub flags: FlagsDir,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Contexts to evaluate: a JSONL file, one context object per line (`targetingKey` and
    /// attributes, as `eval --context` takes).
    #[arg(long, value_name = "FILE.jsonl")]
    pub sample: PathBuf,
    /// Use at most this many contexts (the first ones).
    #[arg(long, default_value_t = DEFAULT_MAX)]
    pub max: usize,
    /// Print the report as JSON (`docs/publishing.md`).
    #[arg(long)]
    pub json: bool,
}

/// Exit 0 when nobody moves, 1 when someone does, 2 on errors.
pub fn run(args: Args) -> ExitCode {
    let trouble = ExitCode::from(EXIT_TROUBLE);
    let env_name = args.store.env.clone();
    let compiled = match compile_path(args.flags.path(), &CompileOptions::new(env_name.clone())) {
        Ok(compiled) => compiled,
        Err(diags) => {
            let (errors, _) = print_diagnostics(&diags);
            eprintln!("impact failed: {}", plural(errors, "error"));
            return trouble;
        }
    };
    let sample = match Sample::read(&args.sample, args.max) {
        Ok(sample) => sample,
        Err(e) => {
            eprintln!("error: {e}");
            return trouble;
        }
    };
    block_on(async move {
        let env = match args.store.open().await {
            Ok(env) => env,
            Err(e) => {
                eprintln!("error: {e}");
                return trouble;
            }
        };
        let plan = match env.plan(compiled.body, compiled.schedules).await {
            Ok(plan) => plan,
            Err(e) => {
                eprintln!("error: impact failed: {e}");
                return trouble;
            }
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let report = match impact(&env_name, &plan.deployed, &plan.served, &sample, now_ms) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("error: {e}");
                return trouble;
            }
        };
        if args.json {
            print_json(&report);
        } else {
            print!("{report}");
        }
        if report.flags.iter().any(|f| f.moved > 0) {
            ExitCode::from(EXIT_DIFFERENT)
        } else {
            ExitCode::SUCCESS
        }
    })
}
