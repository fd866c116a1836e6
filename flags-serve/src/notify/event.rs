//! What happened, as a notification carries it: an [`EventKind`] (the name a webhook's
//! `events:` list selects), the environment and who did it, one line for people and the
//! kind's details. Each constructor takes the value the action already produced (the version
//! record, the drift report, the change), so a call site is one line.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use flags_store::drift::{DriftReport, FixReport, Status};
use flags_store::layout::{Action, VersionRecord};

/// The events a webhook may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A version was published: push, canary, rollback, promote, abort, or a rollout tick or
    /// resume (`details.action` says which).
    Publish,
    /// Flags were killed.
    Kill,
    /// A kill was undone.
    Unkill,
    /// A rollout guard halted a schedule (reserved for guarded rollouts).
    GuardHalt,
    /// A drift check found a difference.
    DriftFound,
    /// A drift fix left the environment in sync.
    DriftFixed,
    /// A pending change waits for approval.
    ApprovalRequested,
    /// A change request (or a pending change) was approved.
    ChangeApproved,
    /// A change request was merged.
    ChangeMerged,
}

impl EventKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [EventKind; 9] = [
        EventKind::Publish,
        EventKind::Kill,
        EventKind::Unkill,
        EventKind::GuardHalt,
        EventKind::DriftFound,
        EventKind::DriftFixed,
        EventKind::ApprovalRequested,
        EventKind::ChangeApproved,
        EventKind::ChangeMerged,
    ];

    /// Its name, as in `events:` and the `event` field.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Publish => "publish",
            EventKind::Kill => "kill",
            EventKind::Unkill => "unkill",
            EventKind::GuardHalt => "guard_halt",
            EventKind::DriftFound => "drift_found",
            EventKind::DriftFixed => "drift_fixed",
            EventKind::ApprovalRequested => "approval_requested",
            EventKind::ChangeApproved => "change_approved",
            EventKind::ChangeMerged => "change_merged",
        }
    }
}

/// One event, before it is addressed to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// What kind.
    pub event: EventKind,
    /// When it happened (RFC 3339 UTC).
    pub occurred_at: String,
    /// The environment, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Who did it (a token name, `webhook`, ...).
    pub actor: String,
    /// One line for people.
    pub summary: String,
    /// The kind's details (`docs/notifications.md`).
    pub details: Value,
}

fn now() -> String {
    crate::actions::now()
}

impl Event {
    /// A version was published (kills and unkills are their own kinds).
    pub fn published(env: &str, actor: &str, record: &VersionRecord) -> Event {
        let (event, verb) = match record.action {
            Action::Kill => (EventKind::Kill, "killed"),
            Action::Unkill => (EventKind::Unkill, "unkilled"),
            _ => (EventKind::Publish, record.action.as_str()),
        };
        let what = if record.flags.is_empty() {
            record.summary.one_line()
        } else {
            record.flags.join(", ")
        };
        let rollouts: Vec<Value> = record
            .rollouts
            .iter()
            .map(|r| {
                json!({
                    "flag": r.schedule.flag,
                    "rule": r.schedule.rule,
                    "stage": r.stage,
                    "status": r.status,
                    "reason": r.reason,
                })
            })
            .collect();
        Event {
            event,
            occurred_at: now(),
            env: Some(env.to_owned()),
            actor: actor.to_owned(),
            summary: format!("{env}: {verb} v{} by {actor}: {what}", record.version),
            details: json!({
                "action": record.action,
                "version": record.version,
                "previous": record.previous,
                "changes": record.summary,
                "flags": record.flags,
                "message": record.message,
                "rollback_to": record.rollback_to,
                "source_commit": record.source_commit,
                "canary": record.canary.as_ref().map(|c| c.percent),
                "rollouts": rollouts,
            }),
        }
    }

    /// A rollout guard halted `flag`'s schedule in `env` (for guarded rollouts to emit where
    /// the guard decides; `figures` are what decided it).
    pub fn guard_halt(env: &str, actor: &str, flag: &str, why: &str, figures: Value) -> Event {
        Event {
            event: EventKind::GuardHalt,
            occurred_at: now(),
            env: Some(env.to_owned()),
            actor: actor.to_owned(),
            summary: format!("{env}: rollout of {flag} halted by a guard: {why}"),
            details: json!({ "flag": flag, "reason": why, "figures": figures }),
        }
    }

    /// A drift check (or the check before a fix) found differences; `None` when it did not.
    pub fn drift_found(actor: &str, report: &DriftReport) -> Option<Event> {
        if report.status != Status::Drift {
            return None;
        }
        let findings: Vec<&str> = report.findings.iter().map(|f| f.message.as_str()).collect();
        Some(Event {
            event: EventKind::DriftFound,
            occurred_at: now(),
            env: Some(report.env.clone()),
            actor: actor.to_owned(),
            summary: format!(
                "{}: drift found ({} finding{}): {}",
                report.env,
                findings.len(),
                if findings.len() == 1 { "" } else { "s" },
                findings.first().copied().unwrap_or_default()
            ),
            details: json!({ "findings": report.findings }),
        })
    }

    /// A fix that found drift and left the environment in sync; `None` otherwise (a fix that
    /// failed is a second `drift_found`).
    pub fn drift_fixed(actor: &str, report: &FixReport) -> Option<Event> {
        if report.before.status != Status::Drift {
            return None;
        }
        if report.after.status != Status::InSync {
            return Event::drift_found(actor, &report.after);
        }
        Some(Event {
            event: EventKind::DriftFixed,
            occurred_at: now(),
            env: Some(report.env.clone()),
            actor: actor.to_owned(),
            summary: format!(
                "{}: drift fixed by {actor} ({} finding{})",
                report.env,
                report.before.findings.len(),
                if report.before.findings.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ),
            details: json!({ "findings": report.before.findings, "actions": report.actions }),
        })
    }

    /// A change waits for approval in `env` (`pending` is the approvals API's view of it).
    pub fn approval_requested(env: &str, actor: &str, id: u64, pending: Value) -> Event {
        let action = pending["action"].as_str().unwrap_or("change").to_owned();
        Event {
            event: EventKind::ApprovalRequested,
            occurred_at: now(),
            env: Some(env.to_owned()),
            actor: actor.to_owned(),
            summary: format!("{env}: {action} by {actor} waits for approval (pending {id})"),
            details: json!({ "pending": pending }),
        }
    }

    /// A pending change in `env` was approved by `actor` (and is being published).
    pub fn pending_approved(env: &str, actor: &str, id: u64, author: &str) -> Event {
        Event {
            event: EventKind::ChangeApproved,
            occurred_at: now(),
            env: Some(env.to_owned()),
            actor: actor.to_owned(),
            summary: format!("{env}: pending change {id} by {author} approved by {actor}"),
            details: json!({ "pending": id, "author": author }),
        }
    }

    /// Change request `id` was approved by `actor`; `approvals` given of `needed`.
    pub fn change_approved(
        id: u64,
        title: &str,
        actor: &str,
        approvals: usize,
        needed: usize,
    ) -> Event {
        Event {
            event: EventKind::ChangeApproved,
            occurred_at: now(),
            env: None,
            actor: actor.to_owned(),
            summary: format!(
                "change {id} \"{title}\" approved by {actor} ({approvals} of {needed})"
            ),
            details: json!({ "change": id, "title": title, "approvals": approvals, "needed": needed }),
        }
    }

    /// Change request `id` was merged as `commit` by `actor`.
    pub fn change_merged(id: u64, title: &str, actor: &str, commit: &str) -> Event {
        Event {
            event: EventKind::ChangeMerged,
            occurred_at: now(),
            env: None,
            actor: actor.to_owned(),
            summary: format!(
                "change {id} \"{title}\" merged by {actor} as {}",
                &commit[..commit.len().min(12)]
            ),
            details: json!({ "change": id, "title": title, "commit": commit }),
        }
    }
}
