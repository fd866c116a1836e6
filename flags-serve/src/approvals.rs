//! Pending changes of environments that require approval (`approval:` in the config): a push
//! (stable or canary), rollback or promote is held here, with its diff against what was deployed when it was proposed,
//! until a *different* token with `approve` approves it (then it publishes through the same
//! library call as an unapproved one), someone rejects it, or it expires.
//!
//! With `approvals_file` configured, every change to the set is written to that JSON file
//! (a temporary file, synced, renamed over it), so a restart keeps pending changes with their
//! author, diff and expiry; those expired meanwhile are dropped on load. Without it they are
//! held in memory only. What was published is in the store's audit trail either way.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use shared_eval::Body;

use super::error::ApiError;
use flags_compile::blob_file::Provenance;
use flags_compile::schedule::Schedule;
use flags_store::layout::Share;

/// What a pending change will do once approved.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Proposal {
    /// Publish these compiled flags (with the files' rollout schedules).
    Push {
        /// The compiled body.
        body: Body,
        /// The files' rollout schedules (`None`: carry the running ones).
        schedules: Option<Vec<Schedule>>,
        /// Author, commit and time of the proposal.
        provenance: Provenance,
        /// Publish even if it removes most (or all) of the deployed flags.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_removals: bool,
    },
    /// Publish these compiled flags as the canary, served to `percent` of users.
    Canary {
        /// The compiled body.
        body: Body,
        /// The canary's share of users.
        percent: Share,
        /// Author, commit and time of the proposal.
        provenance: Provenance,
        /// Publish even if it removes most (or all) of the deployed flags.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_removals: bool,
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
    /// True when approving `other` would publish what approving `self` does: the same action
    /// over the same content (body and schedules, or body and share), version or canary.
    /// Who proposed it, when, from which commit and why do not count.
    pub fn same_change(&self, other: &Proposal) -> bool {
        match (self, other) {
            (
                Proposal::Push {
                    body, schedules, ..
                },
                Proposal::Push {
                    body: other_body,
                    schedules: other_schedules,
                    ..
                },
            ) => body == other_body && schedules == other_schedules,
            (
                Proposal::Canary { body, percent, .. },
                Proposal::Canary {
                    body: other_body,
                    percent: other_percent,
                    ..
                },
            ) => percent == other_percent && body == other_body,
            (Proposal::Rollback { to }, Proposal::Rollback { to: other }) => to == other,
            (Proposal::Promote { canary }, Proposal::Promote { canary: other }) => canary == other,
            _ => false,
        }
    }

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
    /// Its id (unique within the service's approvals file, or its run without one).
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
    /// For a promote: the content hash of the canary it promotes (and nothing else).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
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

/// What [`Approvals::propose`] did.
#[derive(Debug, Clone)]
pub struct Proposed {
    /// The pending change: the new one, or the one already waiting with the same change.
    pub pending: Pending,
    /// False when an unexpired pending change of the environment already proposed the same
    /// change ([`Proposal::same_change`]): nothing new is held, its id is answered again.
    pub new: bool,
}

/// Everything needed to propose a change (and, with its id and times, how one is stored).
#[derive(Debug, Serialize, Deserialize)]
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

/// A pending change as the approvals file keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    id: u64,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    #[serde(flatten)]
    draft: Draft,
}

/// The approvals file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredFile {
    /// The last id handed out (ids are not reused after a restart).
    next_id: u64,
    pending: Vec<Stored>,
}

/// Every pending change of every environment.
#[derive(Debug, Default)]
pub struct Approvals {
    inner: Mutex<Inner>,
    /// Where they are kept across restarts, if anywhere.
    file: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
}

fn rfc3339(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn pending_of(id: u64, draft: Draft, created: SystemTime, expires: SystemTime) -> Pending {
    Pending {
        id,
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
        canary: match &draft.proposal {
            Proposal::Promote { canary } => Some(canary.clone()),
            _ => None,
        },
        base_version: draft.base_version,
        created_at: rfc3339(created),
        expires_at: rfc3339(expires),
        diff: draft.diff,
        expires,
        proposal: draft.proposal,
    }
}

fn stored_of(pending: &Pending) -> Result<Stored, String> {
    let created_at = DateTime::parse_from_rfc3339(&pending.created_at)
        .map_err(|e| e.to_string())?
        .with_timezone(&Utc);
    Ok(Stored {
        id: pending.id,
        created_at,
        expires_at: DateTime::<Utc>::from(pending.expires),
        draft: Draft {
            env: pending.env.clone(),
            author: pending.author.clone(),
            client: pending.client.clone(),
            message: pending.message.clone(),
            proposal: pending.proposal.clone(),
            base_version: pending.base_version,
            diff: pending.diff.clone(),
        },
    })
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one, never half.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

impl Approvals {
    /// Pending changes kept in `file` across restarts: loads those it holds (dropping the ones
    /// expired at `now`). A missing file is an empty set; an unreadable one is an error (the
    /// service does not start rather than overwrite changes it cannot read).
    pub fn open(file: &Path, now: SystemTime) -> Result<Approvals, String> {
        let stored: StoredFile = match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{}: not an approvals file ({e}); move it away to start without its pending changes",
                    file.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StoredFile::default(),
            Err(e) => return Err(format!("{}: {e}", file.display())),
        };
        let mut inner = Inner {
            next_id: stored.next_id,
            pending: BTreeMap::new(),
        };
        for Stored {
            id,
            created_at,
            expires_at,
            draft,
        } in stored.pending
        {
            inner.next_id = inner.next_id.max(id);
            let expires = SystemTime::from(expires_at);
            if expires > now {
                let pending = pending_of(id, draft, created_at.into(), expires);
                inner.pending.insert(id, pending);
            }
        }
        let approvals = Approvals {
            inner: Mutex::new(inner),
            file: Some(file.to_owned()),
        };
        approvals.save(&approvals.lock())?;
        Ok(approvals)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the set to the approvals file, if there is one (under the lock: one writer).
    fn save(&self, inner: &Inner) -> Result<(), String> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let stored = StoredFile {
            next_id: inner.next_id,
            pending: inner
                .pending
                .values()
                .map(stored_of)
                .collect::<Result<_, _>>()?,
        };
        let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| e.to_string())?;
        write_atomically(file, &bytes).map_err(|e| format!("{}: {e}", file.display()))
    }

    /// [`Approvals::save`] after a removal: the change is gone from memory either way; a file
    /// that could not be rewritten may bring it back after a restart, so say so.
    fn save_after_removal(&self, inner: &Inner, id: u64) {
        if let Err(e) = self.save(inner) {
            tracing::error!(id, error = %e, "the approvals file could not be updated; a restart may list this change again");
        }
    }

    /// Holds `draft` for `ttl`; returns it as listed. When an unexpired pending change of the
    /// same environment already proposes the same change (a retried push, a redelivered
    /// webhook), holds nothing and returns that one: identical changes do not pile up for
    /// approvers. Fails (and holds nothing) when the approvals file cannot be written.
    pub fn propose(
        &self,
        draft: Draft,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Proposed, ApiError> {
        let mut inner = self.lock();
        if let Some(existing) = inner.pending.values().find(|p| {
            p.env == draft.env && p.expires > now && p.proposal.same_change(&draft.proposal)
        }) {
            return Ok(Proposed {
                pending: existing.clone(),
                new: false,
            });
        }
        inner.next_id += 1;
        let pending = pending_of(inner.next_id, draft, now, now + ttl);
        inner.pending.insert(pending.id, pending.clone());
        if let Err(e) = self.save(&inner) {
            inner.pending.remove(&pending.id);
            return Err(ApiError::Internal(format!(
                "the pending change could not be recorded: {e}"
            )));
        }
        Ok(Proposed { pending, new: true })
    }

    /// The unexpired pending changes of `env` (every environment for `None`), oldest first;
    /// expired ones are dropped.
    pub fn list(&self, env: Option<&str>, now: SystemTime) -> Vec<Pending> {
        let mut inner = self.lock();
        let before = inner.pending.len();
        inner.pending.retain(|_, p| p.expires > now);
        if inner.pending.len() != before {
            self.save_after_removal(&inner, 0);
        }
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
            self.save_after_removal(&inner, id);
            return Err(ApiError::Gone(format!(
                "pending change {id} expired at {expired_at}; propose it again"
            )));
        }
        if pending.author == approver {
            return Err(ApiError::Denied(format!(
                "{approver:?} proposed change {id} and cannot approve it; another token with the approve role must"
            )));
        }
        let taken = inner.pending.remove(&id).expect("present: checked above");
        self.save_after_removal(&inner, id);
        Ok(taken)
    }

    /// Puts back a change taken for approval whose publish failed for a reason that may pass
    /// (the store unreachable): it stays pending, with its id, author and expiry.
    pub fn restore(&self, pending: Pending) {
        let mut inner = self.lock();
        let id = pending.id;
        inner.pending.insert(id, pending);
        if let Err(e) = self.save(&inner) {
            tracing::error!(id, error = %e, "the approvals file could not be updated; a restart would drop this change");
        }
    }

    /// Removes pending change `id` of `env` (a rejection or a withdrawal).
    pub fn remove(&self, env: &str, id: u64) -> Result<Pending, ApiError> {
        let mut inner = self.lock();
        match inner.pending.get(&id) {
            Some(p) if p.env == env => {
                let removed = inner.pending.remove(&id).expect("present");
                self.save_after_removal(&inner, id);
                Ok(removed)
            }
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
        rollback(author, 1)
    }

    fn rollback(author: &str, to: u64) -> Draft {
        Draft {
            env: "prod".into(),
            author: author.into(),
            client: "127.0.0.1:1".into(),
            message: None,
            proposal: Proposal::Rollback { to },
            base_version: Some(2),
            diff: Value::Null,
        }
    }

    #[test]
    fn only_another_token_approves_and_only_before_expiry() {
        let approvals = Approvals::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ttl = Duration::from_secs(60);
        let a = approvals
            .propose(rollback("ci", 1), ttl, t0)
            .unwrap()
            .pending;
        let b = approvals
            .propose(rollback("ci", 2), ttl, t0)
            .unwrap()
            .pending;
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
        // A publish that failed on the way puts it back, as it was.
        approvals.restore(taken);
        let again = approvals
            .take_for_approval("prod", a.id, "lead", t0)
            .unwrap();
        assert_eq!((again.id, again.author.as_str()), (a.id, "ci"));
        let late = t0 + ttl;
        assert!(matches!(
            approvals.take_for_approval("prod", b.id, "lead", late),
            Err(ApiError::Gone(_))
        ));
        assert!(approvals.list(None, late).is_empty());
    }

    #[test]
    fn the_file_keeps_pending_changes_across_a_restart_without_the_expired() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("approvals.json");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let approvals = Approvals::open(&file, t0).unwrap();
        let short = approvals
            .propose(draft("ci"), Duration::from_secs(10), t0)
            .unwrap()
            .pending;
        let mut push = draft("ci");
        push.proposal = Proposal::Push {
            body: Body::default(),
            schedules: None,
            provenance: Provenance {
                author: "ci".into(),
                source_commit: Some("abc123".into()),
                source_dirty: false,
                created_at: "2026-12-03T18:00:00Z".into(),
            },
            allow_removals: false,
        };
        push.message = Some("launch".into());
        let long = approvals
            .propose(push, Duration::from_secs(3600), t0)
            .unwrap()
            .pending;
        drop(approvals);

        let later = t0 + Duration::from_secs(60);
        let reopened = Approvals::open(&file, later).unwrap();
        let listed = reopened.list(None, later);
        assert_eq!(listed.len(), 1, "the expired one is dropped: {listed:?}");
        let kept = &listed[0];
        assert_eq!(
            (
                kept.id,
                kept.author.as_str(),
                kept.action,
                kept.message.as_deref()
            ),
            (long.id, "ci", "push", Some("launch"))
        );
        assert_eq!(kept.expires_at, long.expires_at);
        assert_eq!(kept.created_at, long.created_at);
        assert_eq!(kept.commit.as_deref(), Some("abc123"));
        assert!(matches!(kept.proposal(), Proposal::Push { .. }));
        let next = reopened
            .propose(draft("ci"), Duration::from_secs(60), later)
            .unwrap()
            .pending;
        assert!(
            next.id > long.id && next.id > short.id,
            "ids are not reused"
        );
        // An approval removes it from the file too.
        reopened
            .take_for_approval("prod", long.id, "lead", later)
            .unwrap();
        let again = Approvals::open(&file, later).unwrap();
        let ids: Vec<u64> = again.list(None, later).iter().map(|p| p.id).collect();
        assert_eq!(ids, [next.id]);
    }

    #[test]
    fn an_unreadable_approvals_file_stops_the_start_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("approvals.json");
        std::fs::write(&file, "{not json").unwrap();
        let err = Approvals::open(&file, SystemTime::now()).unwrap_err();
        assert!(
            err.contains("approvals.json") && err.contains("move it away"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{not json");
    }
}
