//! `publisher rollout status|tick|resume --env ENV`: progressive rollout schedules. `tick` (for
//! cron or CI; `--now` for tests) advances every due, healthy stage and republishes once from
//! the deployed blob, then purges; a failing health check holds or steps back, recorded.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use flags_compile::blob_file::Provenance;
use flags_store::layout::VersionRecord;
use flags_store::publish::rollout::{live_percent, live_rings, next_due};
use serde_json::json;

use super::purge_args::PurgeArgs;
use super::store_args::{StoreArgs, fail, finish, print_json, with_env};

/// `rollout` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Each scheduled flag's stage, since when, and when the next stage is due.
    Status(Common),
    /// Advance every due stage whose health check passes; republish once.
    Tick(Common),
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
    /// The time to act at (RFC 3339), instead of the clock: for tests and replays.
    #[arg(long)]
    pub now: Option<DateTime<Utc>>,
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

/// Exit 0 when done, 3 on a lost race (another tick won: nothing to redo), 4 when stored but
/// the purge failed, 1 otherwise.
pub fn run(args: Args) -> ExitCode {
    let (which, common) = match args {
        Args::Status(c) => ("status", c),
        Args::Tick(c) => ("tick", c),
        Args::Resume(c) => ("resume", c),
    };
    let provenance = Provenance::detect(Path::new("."), common.author.as_deref());
    let now = common.now.unwrap_or_else(Utc::now);
    let (json_out, purge, flag) = (common.json, common.purge, common.flag);
    with_env(common.store, |env| async move {
        match which {
            "status" => match env.rollouts().await {
                Ok(states) => {
                    if json_out {
                        let rows: Vec<_> = states
                            .iter()
                            .map(|s| json!({"state": s, "percent": live_percent(s), "rings": live_rings(s), "next_due": next_due(s).map(|d| d.to_rfc3339())}))
                            .collect();
                        print_json(&json!({"env": env.name(), "rollouts": rows}));
                    } else if states.is_empty() {
                        println!("{}: no rollout schedules", env.name());
                    }
                    if !json_out {
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
                                next_due(s).map_or("-".to_owned(), |d| d.to_rfc3339()),
                            );
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail("rollout status", &e),
            },
            "tick" => match env.rollout_tick(now, &provenance.author).await {
                Ok((transitions, outcome)) => {
                    if json_out {
                        let t: Vec<_> = transitions.iter().map(|t| t.to_json()).collect();
                        print_json(&json!({"env": env.name(), "transitions": t}));
                    } else if transitions.is_empty() {
                        println!("{}: no stage due", env.name());
                    }
                    if !json_out {
                        for t in &transitions {
                            println!("{t}");
                        }
                    }
                    purge.after_outcome(env.name(), &outcome).await
                }
                Err(e) => fail("rollout tick", &e),
            },
            _ => {
                let outcome = env
                    .rollout_resume(flag.as_deref(), &provenance.author, now)
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
            }
        }
    })
}
