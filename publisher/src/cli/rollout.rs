//! `publisher rollout status|tick|resume --env ENV`: progressive rollout schedules. `tick` (for
//! cron or CI) advances every due, healthy stage and republishes once from the deployed blob,
//! then purges; a failing health check holds or steps back, recorded, and exits
//! [`EXIT_CHECK_FAILED`] so cron can alert.
//!
//! `tick --now T` judges what is due at T instead of the clock, but records always carry the
//! real time (library: `TickTime`). T may be at most [`MAX_NOW_SKEW`] from the clock (a late or
//! early cron); any other instant only with `--dry-run`, which shows what a tick would do then
//! and writes nothing.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use flags_compile::blob_file::{Provenance, rfc3339};
use flags_store::layout::VersionRecord;
use flags_store::publish::TickTime;
use flags_store::publish::rollout::{Transition, live_percent, live_rings, next_due};
use serde_json::json;

use super::purge_args::PurgeArgs;
use super::store_args::{StoreArgs, fail, finish, print_json, with_published_env};

/// Exit code of a `tick` whose health check failed: a schedule held or stepped back.
pub const EXIT_CHECK_FAILED: u8 = 5;

/// How far `tick --now` may be from the clock without `--dry-run`, in minutes.
pub const MAX_NOW_SKEW: i64 = 5;

/// `rollout` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Each scheduled flag's stage, since when, and when the next stage is due.
    Status(Common),
    /// Advance every due stage whose health check passes; republish once.
    Tick(Tick),
    /// Let held schedules (all, or `--flag`'s) run again.
    Resume(Common),
}

/// What every `rollout` subcommand takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub purge: PurgeArgs,
    /// Only this flag (`resume`).
    #[arg(long)]
    pub flag: Option<String>,
    /// Author recorded in the version (default: `git config user.name`).
    #[arg(long)]
    pub author: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tick`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Tick {
    #[command(flatten)]
    pub common: Common,
    /// Judge what is due at this time (RFC 3339) instead of the clock; records still carry the
    /// real time. At most 5 minutes from the clock, unless --dry-run.
    #[arg(long)]
    pub now: Option<DateTime<Utc>>,
    /// Show what a tick would do (health checks run), writing nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Exit 0 when done, 3 on a lost race (another tick won: nothing to redo), 4 when stored but
/// the purge failed, 5 when a tick's health check failed (whatever the purge did), 2 for a
/// `--now` too far from the clock without `--dry-run`, 1 otherwise.
pub fn run(args: Args) -> ExitCode {
    match args {
        Args::Status(common) => status(common),
        Args::Tick(tick) => run_tick(tick),
        Args::Resume(common) => resume(common),
    }
}

fn status(common: Common) -> ExitCode {
    let json_out = common.json;
    with_published_env(common.store, |env| async move {
        let states = match env.rollouts().await {
            Ok(states) => states,
            Err(e) => return fail("rollout status", &e),
        };
        if json_out {
            let rows: Vec<_> = states
                .iter()
                .map(|s| {
                    json!({
                        "state": s,
                        "percent": live_percent(s),
                        "rings": live_rings(s),
                        "next_due": next_due(s).map(rfc3339),
                    })
                })
                .collect();
            print_json(&json!({"env": env.name(), "rollouts": rows}));
            return ExitCode::SUCCESS;
        }
        if states.is_empty() {
            println!("{}: no rollout schedules", env.name());
        }
        for s in &states {
            println!(
                "{}/{}: stage {}/{} ({}%{}) since {}, {}{}, next due {}",
                s.schedule.flag,
                s.schedule.rule,
                s.stage,
                s.schedule.stages.len(),
                live_percent(s),
                match live_rings(s) {
                    rings if rings.is_empty() => String::new(),
                    rings => format!(" and rings {}", rings.join(", ")),
                },
                s.since,
                s.status.as_str(),
                s.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
                next_due(s).map_or("-".to_owned(), rfc3339),
            );
        }
        ExitCode::SUCCESS
    })
}

fn run_tick(tick: Tick) -> ExitCode {
    let Tick {
        common,
        now,
        dry_run,
    } = tick;
    let at = match now {
        None => TickTime::clock(),
        Some(due_at) => {
            let at = TickTime::simulated(due_at);
            if !dry_run && (at.due_at - at.now).abs() > Duration::minutes(MAX_NOW_SKEW) {
                eprintln!(
                    "error: --now {} is more than {MAX_NOW_SKEW} minutes from the clock ({}): a tick records the real time, so \
                     acting at another instant would skip (or wait out) soak times; add --dry-run to see what a tick would do then",
                    rfc3339(at.due_at),
                    rfc3339(at.now)
                );
                return ExitCode::from(2);
            }
            at
        }
    };
    let author = Provenance::detect(Path::new("."), common.author.as_deref()).author;
    let (json_out, purge) = (common.json, common.purge);
    with_published_env(common.store, |env| async move {
        if dry_run {
            return match env.rollout_preview(at).await {
                Ok(transitions) => {
                    report(env.name(), &transitions, json_out, true);
                    ExitCode::SUCCESS
                }
                Err(e) => fail("rollout tick --dry-run", &e),
            };
        }
        match env.rollout_tick(at, &author).await {
            Ok((transitions, outcome)) => {
                report(env.name(), &transitions, json_out, false);
                let purged = purge.after_outcome(env.name(), &outcome).await;
                if transitions.iter().any(|t| t.check_failed) {
                    eprintln!(
                        "error: a health check failed in {}: see `publisher rollout status --env {}`",
                        env.name(),
                        env.name()
                    );
                    ExitCode::from(EXIT_CHECK_FAILED)
                } else {
                    purged
                }
            }
            Err(e) => fail("rollout tick", &e),
        }
    })
}

/// Prints what a tick did (or, `dry_run`, would do).
fn report(env: &str, transitions: &[Transition], json_out: bool, dry_run: bool) {
    if json_out {
        let t: Vec<_> = transitions.iter().map(Transition::to_json).collect();
        print_json(&json!({"env": env, "dry_run": dry_run, "transitions": t}));
        return;
    }
    let prefix = if dry_run { "dry run: would move " } else { "" };
    if transitions.is_empty() {
        println!("{env}: no stage due");
    }
    for t in transitions {
        println!("{prefix}{t}");
    }
}

fn resume(common: Common) -> ExitCode {
    let author = Provenance::detect(Path::new("."), common.author.as_deref()).author;
    let (json_out, purge, flag) = (common.json, common.purge, common.flag);
    with_published_env(common.store, |env| async move {
        let outcome = env
            .rollout_resume(flag.as_deref(), &author, Utc::now())
            .await;
        let published = |record: &VersionRecord| {
            format!(
                "{}: resumed {} as version {}",
                env.name(),
                record.flags.join(", "),
                record.version
            )
        };
        let unchanged = |version| {
            format!(
                "{} version {version}: no held schedule to resume",
                env.name()
            )
        };
        finish(
            env.name(),
            "rollout resume",
            outcome,
            json_out,
            &purge,
            published,
            unchanged,
        )
        .await
    })
}
