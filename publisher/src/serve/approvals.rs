//! Pending changes of environments that require approval (`approval:` in the config): a push
//! (stable or canary), rollback or promote is held here, with its diff against what was deployed when it was proposed,
//! until a *different* token with `approve` approves it (then it publishes through the same
//! library call as an unapproved one), someone rejects it, or it expires.
//!
//! Held in memory: a restart drops pending changes (their authors propose again); what was
//! published is in the store's audit trail either way.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use shared_eval::Body;

use super::error::ApiError;
use crate::blob_file::Provenance;
use crate::compile::schedule::Schedule;
use crate::layout::Share;

/// What a pending change will do once approved.
#[derive(Debug, Clone)]
pub enum Proposal {
    /// Publish these compiled flags (with the files' rollout schedules).
    Push {
        /// The compiled body.
        body: Body,
        /// The files' rollout schedules (`None`: carry the running ones).
        schedules: Option<Vec<Schedule>>,
        /// Author, commit and time of the proposal.
        provenance: Provenance,
    },
    /// Publish these compiled flags as the canary, served to `percent` of users.
    Canary {
        /// The compiled body.
        body: Body,
        /// The canary's share of users.
        percent: Share,
        /// Author, commit and time of the proposal.
        provenance: Provenance,
    },
    /// Serve version `to`'s flags again.
    Rollback {
        /// The version.
        to: u64,
    },
    /// Make the running canary stable: the one serving `canary` (a content hash) when it was
    /// proposed, not whatever was pushed to the canary after the approver looked.
    Promote {
        /// The canary's content hash.
        canary: String,
    },
}

impl Proposal {
    fn kind(&self) -> &'static str {
        match self {
            Proposal::Push { .. } => "push",
            Proposal::Canary { .. } => "canary",
            Proposal::Rollback { .. } => "rollback",
            Proposal::Promote { .. } => "promote",
        }
    }
}

/// A change waiting for approval, as the API and the page show it.
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    /// Its id (unique within this service's run).
    pub id: u64,
    /// The environment.
    pub env: String,
    /// `push`, `canary`, `rollback` or `promote`.
    pub action: &'static str,
    /// The proposing token's name (`webhook` for a Git push).
    pub author: String,
    /// The proposer's address.
    pub client: String,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The source commit, for a push from the checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// For a rollback: the version to serve again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<u64>,
    /// For a canary: its share of users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<Share>,
    /// The version deployed when it was proposed.
    pub base_version: Option<u64>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC; approving later answers 410.
    pub expires_at: String,
    /// The change against `base_version`: summary and flag-level diff.
    pub diff: Value,
    #[serde(skip)]
    expires: SystemTime,
    #[serde(skip)]
    proposal: Proposal,
}

impl Pending {
    /// What approving it does.
    pub fn proposal(&self) -> &Proposal {
        &self.proposal
    }
}

/// Everything needed to propose a change.
#[derive(Debug)]
pub struct Draft {
    /// The environment.
    pub env: String,
    /// The proposing token's name.
    pub author: String,
    /// The proposer's address.
    pub client: String,
    /// Why.
    pub message: Option<String>,
    /// What it will do.
    pub proposal: Proposal,
    /// The version deployed now.
    pub base_version: Option<u64>,
    /// The change against it.
    pub diff: Value,
}

/// Every pending change of every environment.
#[derive(Debug, Default)]
pub struct Approvals {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
}

fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Approvals {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `draft` for `ttl`; returns it as listed.
    pub fn propose(&self, draft: Draft, ttl: Duration, now: SystemTime) -> Pending {
        let mut inner = self.lock();
        inner.next_id += 1;
        let expires = now + ttl;
        let pending = Pending {
            id: inner.next_id,
            env: draft.env,
            action: draft.proposal.kind(),
            author: draft.author,
            client: draft.client,
            message: draft.message,
            commit: match &draft.proposal {
                Proposal::Push { provenance, .. } | Proposal::Canary { provenance, .. } => {
                    provenance.source_commit.clone()
                }
                Proposal::Rollback { .. } | Proposal::Promote { .. } => None,
            },
            rollback_to: match draft.proposal {
                Proposal::Rollback { to } => Some(to),
                _ => None,
            },
            percent: match draft.proposal {
                Proposal::Canary { percent, .. } => Some(percent),
                _ => None,
            },
            base_version: draft.base_version,
            created_at: rfc3339(now),
            expires_at: rfc3339(expires),
            diff: draft.diff,
            expires,
            proposal: draft.proposal,
        };
        inner.pending.insert(pending.id, pending.clone());
        pending
    }

    /// The unexpired pending changes of `env` (every environment for `None`), oldest first;
    /// expired ones are dropped.
    pub fn list(&self, env: Option<&str>, now: SystemTime) -> Vec<Pending> {
        let mut inner = self.lock();
        inner.pending.retain(|_, p| p.expires > now);
        inner
            .pending
            .values()
            .filter(|p| env.is_none_or(|e| p.env == e))
            .cloned()
            .collect()
    }

    /// Removes pending change `id` of `env` for `approver` to publish: 404 when unknown, 410
    /// when expired, 403 when `approver` proposed it (it stays pending then).
    pub fn take_for_approval(
        &self,
        env: &str,
        id: u64,
        approver: &str,
        now: SystemTime,
    ) -> Result<Pending, ApiError> {
        let mut inner = self.lock();
        let pending = inner
            .pending
            .get(&id)
            .filter(|p| p.env == env)
            .ok_or_else(|| ApiError::NotFound(format!("no pending change {id} in {env:?}")))?;
        if pending.expires <= now {
            let expired_at = pending.expires_at.clone();
            inner.pending.remove(&id);
            return Err(ApiError::Gone(format!(
                "pending change {id} expired at {expired_at}; propose it again"
            )));
        }
        if pending.author == approver {
            return Err(ApiError::Denied(format!(
                "{approver:?} proposed change {id} and cannot approve it; another token with the approve role must"
            )));
        }
        Ok(inner.pending.remove(&id).expect("present: checked above"))
    }

    /// Removes pending change `id` of `env` (a rejection or a withdrawal).
    pub fn remove(&self, env: &str, id: u64) -> Result<Pending, ApiError> {
        let mut inner = self.lock();
        match inner.pending.get(&id) {
            Some(p) if p.env == env => Ok(inner.pending.remove(&id).expect("present")),
            _ => Err(ApiError::NotFound(format!(
                "no pending change {id} in {env:?}"
            ))),
        }
    }

    /// Unexpired pending changes per environment, for the metrics gauge.
    pub fn counts(&self, now: SystemTime) -> BTreeMap<String, i64> {
        let mut counts = BTreeMap::new();
        for p in self.list(None, now) {
            *counts.entry(p.env).or_insert(0) += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(author: &str) -> Draft {
        Draft {
            env: "prod".into(),
            author: author.into(),
            client: "127.0.0.1:1".into(),
            message: None,
            proposal: Proposal::Rollback { to: 1 },
            base_version: Some(2),
            diff: Value::Null,
        }
    }

    #[test]
    fn only_another_token_approves_and_only_before_expiry() {
        let approvals = Approvals::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ttl = Duration::from_secs(60);
        let a = approvals.propose(draft("ci"), ttl, t0);
        let b = approvals.propose(draft("ci"), ttl, t0);
        assert_ne!(a.id, b.id);
        let own = approvals.take_for_approval("prod", a.id, "ci", t0);
        assert!(matches!(own, Err(ApiError::Denied(_))));
        assert_eq!(
            approvals.list(Some("prod"), t0).len(),
            2,
            "refusal keeps it"
        );
        assert!(matches!(
            approvals.take_for_approval("dev", a.id, "lead", t0),
            Err(ApiError::NotFound(_))
        ));
        let taken = approvals
            .take_for_approval("prod", a.id, "lead", t0)
            .unwrap();
        assert_eq!(taken.id, a.id);
        assert!(matches!(
            approvals.take_for_approval("prod", a.id, "lead", t0),
            Err(ApiError::NotFound(_))
        ));
        let late = t0 + ttl;
        assert!(matches!(
            approvals.take_for_approval("prod", b.id, "lead", late),
            Err(ApiError::Gone(_))
        ));
        assert!(approvals.list(None, late).is_empty());
    }
}
