//! Progressive rollouts: `rollout status` and `rollout tick` over an environment's schedules.
//!
//! The schedules (compiled from the flag files by `flags_compile::schedule`) and where each stands
//! live in the version records (`VersionRecord::rollouts`), carried from version to version. A
//! tick starts from the deployed blob, as a kill does, so it needs no Git checkout; it
//! advances every due stage whose health check passes, and publishes once through the one
//! publish step. Two racing ticks both build version N+1 and only one can create it
//! (`versions/<N>` is created with `If-None-Match: *`), so a stage never advances twice.
//!
//! A tick has two times ([`TickTime`]): the instant that decides which stages are due, and the
//! real time, which is what every record it writes carries (the version's `created_at`, a
//! stage's `since`). They differ only when a caller simulates a later instant (`rollout tick
//! --now`, the API's admin `now`): the records still say when things really happened, so the
//! audit stays in order and the next real tick measures soak times from the real clock.

use chrono::{DateTime, Utc};
use shared_eval::Body;

use crate::layout::{Action, RolloutState, RolloutStatus};
use crate::publish::{Environment, Outcome, PublishError};
use flags_compile::blob_file::rfc3339;
use flags_compile::schedule::{self, HealthCheck, OnFailure, Schedule};

/// Applies each live stage to `body`: the one place rollout stages meet a body (a push through
/// `as_pushed`, a tick or resume through `republish`).
pub fn stage(body: &mut Body, rollouts: &[RolloutState]) {
    for state in rollouts {
        schedule::apply(body, &state.schedule, state.stage);
    }
}

/// Merges the schedules found in the files into the running states (see
/// [`Environment::push_scheduled`]).
pub fn merge(running: &[RolloutState], schedules: Vec<Schedule>, now: &str) -> Vec<RolloutState> {
    schedules
        .into_iter()
        .map(|schedule| {
            match running
                .iter()
                .find(|r| r.schedule.flag == schedule.flag && r.schedule.rule == schedule.rule)
            {
                Some(state) => RolloutState {
                    stage: state.stage.min(schedule.stages.len()),
                    schedule,
                    ..state.clone()
                },
                None => RolloutState {
                    status: if schedule.stages.len() == 1 {
                        RolloutStatus::Done
                    } else {
                        RolloutStatus::Running
                    },
                    schedule,
                    stage: 1,
                    since: now.to_owned(),
                    reason: None,
                },
            }
        })
        .collect()
}

/// When a tick acts: see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickTime {
    /// The instant at which stages are judged due (soak times measured up to it).
    pub due_at: DateTime<Utc>,
    /// The real time: what every record the tick writes carries.
    pub now: DateTime<Utc>,
}

impl TickTime {
    /// A real tick: due at the clock, recorded at the clock.
    pub fn clock() -> TickTime {
        TickTime::from(Utc::now())
    }

    /// What is due at `due_at` (a simulation or replay), recorded at the clock.
    pub fn simulated(due_at: DateTime<Utc>) -> TickTime {
        TickTime {
            due_at,
            now: Utc::now(),
        }
    }
}

/// A tick at `time` on a clock that reads `time`: both the same (tests with a fixed clock).
impl From<DateTime<Utc>> for TickTime {
    fn from(time: DateTime<Utc>) -> TickTime {
        TickTime {
            due_at: time,
            now: time,
        }
    }
}

/// When the state's next stage is due, if it can advance.
pub fn next_due(state: &RolloutState) -> Option<DateTime<Utc>> {
    if state.status != RolloutStatus::Running || state.stage >= state.schedule.stages.len() {
        return None;
    }
    let soak = state
        .stage
        .checked_sub(1)
        .and_then(|i| state.schedule.stages.get(i))
        .map_or(0, |s| s.soak_s);
    let since = DateTime::parse_from_rfc3339(&state.since).ok()?;
    Some(since.with_timezone(&Utc) + chrono::Duration::seconds(soak as i64))
}

/// Runs a health check: a URL must answer a GET with 2xx, a command must exit 0.
pub async fn check(health: &HealthCheck) -> Result<(), String> {
    match health {
        HealthCheck::Url(url) => {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())?;
            let response = client
                .get(url)
                .send()
                .await
                .map_err(|e| format!("health check {url} failed: {e}"))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!(
                    "health check {url} answered {}",
                    response.status().as_u16()
                ))
            }
        }
        HealthCheck::Command(command) => {
            let status = tokio::process::Command::new("sh")
                .args(["-c", command])
                .status()
                .await
                .map_err(|e| format!("health check `{command}` could not run: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("health check `{command}` exited with {status}"))
            }
        }
    }
}

/// What a tick did to one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The flag.
    pub flag: String,
    /// The rule.
    pub rule: String,
    /// Stage before.
    pub from: usize,
    /// Stage after.
    pub to: usize,
    /// Status after.
    pub status: RolloutStatus,
    /// Why (a failed check).
    pub reason: Option<String>,
    /// The health check failed on this tick (the schedule held or stepped back): what
    /// `rollout tick`'s exit code reports, for cron to alert on.
    pub check_failed: bool,
}

impl Transition {
    /// `advanced`, `stepped back` or `held` (a check failed, or recovered while reverting).
    pub fn change(&self) -> &'static str {
        match self.to.cmp(&self.from) {
            std::cmp::Ordering::Greater => "advanced",
            std::cmp::Ordering::Less => "stepped back",
            std::cmp::Ordering::Equal => "held",
        }
    }

    /// As `rollout tick --json` and `POST .../rollouts/tick` answer it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "flag": self.flag,
            "rule": self.rule,
            "change": self.change(),
            "from": self.from,
            "to": self.to,
            "status": self.status,
            "reason": self.reason,
            "text": self.to_string(),
        })
    }
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}: stage {} -> {} ({})",
            self.flag,
            self.rule,
            self.from,
            self.to,
            self.status.as_str()
        )?;
        if let Some(reason) = &self.reason {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

/// Moves every schedule of `states` that is due at `at.due_at`: runs its health check, then
/// advances it, holds it or steps it back (its `since` set to `at.now`). Returns what moved.
async fn advance(states: &mut [RolloutState], at: TickTime) -> Vec<Transition> {
    let now_text = rfc3339(at.now);
    let mut transitions = Vec::new();
    for state in states {
        let due = match state.status {
            RolloutStatus::Running => next_due(state).is_some_and(|due| due <= at.due_at),
            RolloutStatus::Reverting => true,
            RolloutStatus::Held | RolloutStatus::Done => false,
        };
        if !due {
            continue;
        }
        let from = state.stage;
        let verdict = match &state.schedule.health {
            Some(health) => check(health).await,
            None => Ok(()),
        };
        let check_failed = verdict.is_err();
        match (verdict, state.status) {
            (Ok(()), RolloutStatus::Reverting) => {
                state.status = RolloutStatus::Held;
                state.reason = Some("health recovered while reverting".into());
            }
            (Ok(()), _) => {
                state.stage += 1;
                state.reason = None;
                if state.stage >= state.schedule.stages.len() {
                    state.status = RolloutStatus::Done;
                }
            }
            (Err(why), _) => {
                state.reason = Some(why);
                match state.schedule.on_failure {
                    OnFailure::Hold => state.status = RolloutStatus::Held,
                    OnFailure::Revert if state.stage > 0 => {
                        state.stage -= 1;
                        state.status = RolloutStatus::Reverting;
                    }
                    OnFailure::Revert => state.status = RolloutStatus::Held,
                }
            }
        }
        state.since = now_text.clone();
        transitions.push(Transition {
            flag: state.schedule.flag.clone(),
            rule: state.schedule.rule.clone(),
            from,
            to: state.stage,
            status: state.status,
            reason: state.reason.clone(),
            check_failed,
        });
    }
    transitions
}

impl Environment {
    /// Every schedule of the deployed version and where it stands.
    pub async fn rollouts(&self) -> Result<Vec<RolloutState>, PublishError> {
        let Some(current) = self.current().await? else {
            return Ok(Vec::new());
        };
        Ok(self
            .record(current.pointer.version)
            .await?
            .map(|r| r.rollouts)
            .unwrap_or_default())
    }

    /// Advances every schedule that is due at `at.due_at` and healthy; a failing check holds
    /// the schedule or (`revert`) steps it back one stage, with the reason recorded. Publishes
    /// once if anything moved, recorded at `at.now`. Returns the transitions and the outcome.
    pub async fn rollout_tick(
        &self,
        at: impl Into<TickTime>,
        author: &str,
    ) -> Result<(Vec<Transition>, Outcome), PublishError> {
        let at = at.into();
        let Some(deployed) = self.settled_deployed(author).await? else {
            return Err(PublishError::NothingPublished {
                env: self.name().to_owned(),
            });
        };
        let version = deployed.current.pointer.version;
        let record = self.require_record(version).await?;
        let mut states = record.rollouts.clone();
        let transitions = advance(&mut states, at).await;
        if transitions.is_empty() {
            return Ok((transitions, Outcome::Unchanged { version }));
        }
        let message = transitions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let flags = transitions.iter().map(|t| t.flag.clone()).collect();
        let outcome = self
            .republish(
                &deployed,
                &record,
                states,
                Action::Rollout,
                flags,
                author,
                &rfc3339(at.now),
                message,
            )
            .await?;
        Ok((transitions, outcome))
    }

    /// What [`Environment::rollout_tick`] would do at `at` (health checks included), writing
    /// nothing: `rollout tick --dry-run`.
    pub async fn rollout_preview(
        &self,
        at: impl Into<TickTime>,
    ) -> Result<Vec<Transition>, PublishError> {
        let mut states = self.rollouts().await?;
        Ok(advance(&mut states, at.into()).await)
    }

    /// Lets held schedules (all, or those of `flag`) run again from their current stage.
    pub async fn rollout_resume(
        &self,
        flag: Option<&str>,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, PublishError> {
        let Some(deployed) = self.settled_deployed(author).await? else {
            return Err(PublishError::NothingPublished {
                env: self.name().to_owned(),
            });
        };
        let version = deployed.current.pointer.version;
        let record = self.require_record(version).await?;
        let mut states = record.rollouts.clone();
        let mut resumed = Vec::new();
        for state in &mut states {
            if state.status == RolloutStatus::Held && flag.is_none_or(|f| f == state.schedule.flag)
            {
                state.status = RolloutStatus::Running;
                state.reason = None;
                resumed.push(state.schedule.flag.clone());
            }
        }
        if resumed.is_empty() {
            return Ok(Outcome::Unchanged { version });
        }
        let now_text = rfc3339(now);
        let message = format!("resumed {}", resumed.join(", "));
        self.republish(
            &deployed,
            &record,
            states,
            Action::Rollout,
            resumed,
            author,
            &now_text,
            message,
        )
        .await
    }
}

/// The live percentage of a state, for display.
pub fn live_percent(state: &RolloutState) -> f64 {
    schedule::stage_percent(&state.schedule, state.stage).map_or(0.0, |p| p.percent())
}

/// The rings (segments treated whole) live at a state's stage, for display.
pub fn live_rings(state: &RolloutState) -> Vec<String> {
    schedule::rings(&state.schedule, state.stage)
        .into_iter()
        .map(str::to_owned)
        .collect()
}
