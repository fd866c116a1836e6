//! Drift checks and fixes in the audit trail: one immutable object per check or fix under
//! `<env>/audit/drift/<time>-<nonce>.json` (a plain listing is in time order). Versions a fix
//! publishes also get their ordinary version audit entry, with a message starting with
//! [`super::FIX_MESSAGE_PREFIX`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::against::AgainstReport;
use super::{DriftReport, FixReport, Status};
use crate::layout::drift_audit_prefix;
use crate::publish::{Environment, PublishError};
use crate::store::{PutOptions, StoreError};

/// What the entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// `drift` without `--fix`.
    Check,
    /// `drift --fix`.
    Fix,
    /// `drift --against`.
    Against,
}

/// One drift audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftAuditEntry {
    /// Check, fix or against.
    pub kind: EntryKind,
    /// Who ran it.
    pub who: String,
    /// When (RFC 3339 UTC).
    pub when: String,
    /// The environment.
    pub env: String,
    /// For `against`: the other environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<String>,
    /// The verdict (after the fix, for a fix).
    pub status: Status,
    /// What differed, one line each (before the fix, for a fix).
    pub differed: Vec<String>,
    /// What was done, one line each (fixes only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<String>,
    /// Versions published by the fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<u64>,
}

impl DriftAuditEntry {
    /// `drift_check`, `drift_fix` or `drift_against`: its `action` in `publisher audit --json`.
    pub fn action(&self) -> &'static str {
        match self.kind {
            EntryKind::Check => "drift_check",
            EntryKind::Fix => "drift_fix",
            EntryKind::Against => "drift_against",
        }
    }

    /// One line for `publisher audit`.
    pub fn one_line(&self) -> String {
        let kind = match self.kind {
            EntryKind::Check => "drift check".to_owned(),
            EntryKind::Fix => "drift fix".to_owned(),
            EntryKind::Against => {
                format!(
                    "drift check against {}",
                    self.against.as_deref().unwrap_or("?")
                )
            }
        };
        let status = match self.status {
            Status::InSync => "in sync",
            Status::Drift => "drift",
            Status::Unchecked => "could not check",
        };
        let mut line = format!("{kind} by {}: {status}", self.who);
        if !self.differed.is_empty() {
            line.push_str(&format!("; differed: {}", self.differed.join("; ")));
        }
        if !self.done.is_empty() {
            line.push_str(&format!("; done: {}", self.done.join("; ")));
        }
        line
    }
}

fn findings(report: &DriftReport) -> Vec<String> {
    let mut lines: Vec<String> = report
        .findings
        .iter()
        .map(|f| {
            format!(
                "{} vs {}: {}",
                f.layer.as_str(),
                f.against.as_str(),
                f.message
            )
        })
        .collect();
    lines.extend(report.unchecked.iter().map(|u| {
        format!(
            "{} {} not checked: {}",
            u.layer.as_str(),
            u.target,
            first_line(&u.error)
        )
    }));
    lines
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Records a check.
pub async fn record_check(
    env: &Environment,
    report: &DriftReport,
    who: &str,
) -> Result<DriftAuditEntry, PublishError> {
    let entry = DriftAuditEntry {
        kind: EntryKind::Check,
        who: who.to_owned(),
        when: report.checked_at.clone(),
        env: env.name().to_owned(),
        against: None,
        status: report.status,
        differed: findings(report),
        done: Vec::new(),
        versions: Vec::new(),
    };
    write(env, &entry).await.map(|()| entry)
}

/// Records a fix: what differed before, what was done, where it ended.
pub async fn record_fix(
    env: &Environment,
    report: &FixReport,
    who: &str,
) -> Result<DriftAuditEntry, PublishError> {
    let entry = DriftAuditEntry {
        kind: EntryKind::Fix,
        who: who.to_owned(),
        when: report.before.checked_at.clone(),
        env: env.name().to_owned(),
        against: None,
        status: report.after.status,
        differed: findings(&report.before),
        done: report.actions.iter().map(|a| a.describe()).collect(),
        versions: report.actions.iter().filter_map(|a| a.version).collect(),
    };
    write(env, &entry).await.map(|()| entry)
}

/// Records an environment-against-environment check in `env`'s trail.
pub async fn record_against(
    env: &Environment,
    report: &AgainstReport,
    who: &str,
) -> Result<DriftAuditEntry, PublishError> {
    let mut differed: Vec<String> = report
        .drifted()
        .map(|f| format!("{}: {}", f.key, super::against::explain(report, f)))
        .collect();
    differed.extend(
        report
            .unchecked
            .iter()
            .map(|u| format!("{} not checked: {}", u.target, first_line(&u.error))),
    );
    let entry = DriftAuditEntry {
        kind: EntryKind::Against,
        who: who.to_owned(),
        when: report.checked_at.clone(),
        env: env.name().to_owned(),
        against: Some(report.against.env.clone()),
        status: report.status,
        differed,
        done: Vec::new(),
        versions: Vec::new(),
    };
    write(env, &entry).await.map(|()| entry)
}

async fn write(env: &Environment, entry: &DriftAuditEntry) -> Result<(), PublishError> {
    let now = chrono::Utc::now();
    // Unique per writer and instant; the time first so that listing sorts by time.
    let nonce: String = Sha256::digest(format!(
        "{}-{}-{}",
        now.timestamp_nanos_opt().unwrap_or_default(),
        std::process::id(),
        entry.who
    ))
    .iter()
    .take(4)
    .map(|b| format!("{b:02x}"))
    .collect();
    let key = format!(
        "{}{}-{nonce}.json",
        drift_audit_prefix(env.name()),
        now.format("%Y%m%dT%H%M%S%.3fZ")
    );
    let mut bytes = serde_json::to_vec_pretty(entry).unwrap_or_default();
    bytes.push(b'\n');
    match env
        .store()
        .put_if_absent(&key, bytes, PutOptions::IMMUTABLE_JSON)
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::PreconditionFailed { .. }) => Err(PublishError::Conflict {
            env: env.name().to_owned(),
            version: 0,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Every drift entry of `env`, oldest first.
pub async fn entries(env: &Environment) -> Result<Vec<DriftAuditEntry>, PublishError> {
    let mut entries = Vec::new();
    for key in env.store().list(&drift_audit_prefix(env.name())).await? {
        if !key.ends_with(".json") {
            continue;
        }
        let Some(object) = env.store().get(&key).await? else {
            continue;
        };
        match serde_json::from_slice(&object.bytes) {
            Ok(entry) => entries.push(entry),
            Err(e) => {
                return Err(PublishError::Corrupt {
                    key,
                    detail: e.to_string(),
                });
            }
        }
    }
    Ok(entries)
}
