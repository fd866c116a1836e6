//! Pending changes of environments that require approval (`approval:` in the config): a push
//! (stable or canary), rollback or promote is held here, with its diff against what was deployed when it was proposed,
//! until a *different* token with `approve` approves it (then it publishes through the same
//! library call as an unapproved one), someone rejects it, or it expires.
//!
//! They live in the store, so that every replica of the service sees the same ones: one JSON
//! object per change, `_approvals/<id>.json` (no environment name starts with `_`), the
//! environment inside it. One object per change rather than per environment: replicas
//! approving or rejecting different changes never contend, and a change's id is claimed with
//! `put_if_absent` on its own key (the next after the highest listed; a replica that loses
//! the race takes the next), so ids are unique across replicas and never reused. Every other
//! step is a read-modify-write with `put_if_match`, retried from a fresh read when another
//! replica wrote in between. The store cannot delete, so a change that is no longer pending
//! stays as a record of how it ended (`approved`, `rejected`, `expired`, `failed`); each replica
//! remembers which ones ended (they never change again) and does not read them twice.
//!
//! Approving takes the change first: `pending` becomes `approving` (by whom, on which
//! replica) in one conditional write, and only the replica whose write won publishes; a
//! second approver, on any replica, is answered 409. The publish then marks it `approved`
//! (or `failed`), or puts it back to `pending` when the store could not be reached. A replica
//! that dies between the two leaves it `approving`: not listed, not approvable again; the
//! store's audit trail says whether it was published.
//!
//! Two replicas proposing the same change at the same instant may both hold it (the
//! "one pending change per identical change" check reads, then creates); approving one of
//! them publishes, after which the other publishes nothing new.
//!
//! The old `approvals_file` is imported once on startup ([`Approvals::import_file`]): its
//! unexpired changes are written to the store (keeping their ids when free) and the file is
//! renamed to `<file>.imported`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use shared_eval::Body;

use super::error::ApiError;
use flags_compile::blob_file::Provenance;
use flags_compile::schedule::Schedule;
use flags_store::layout::Share;
use flags_store::store::{ObjectStore, PutOptions, StoreError};

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
    /// Its id (unique in the store: across replicas and restarts).
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// Where a change stands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for an approver.
    #[default]
    Pending,
    /// Taken by an approver whose publish is running.
    Approving,
    /// Published.
    Approved,
    /// Rejected or withdrawn.
    Rejected,
    /// Not approved in time.
    Expired,
    /// Approved, but its publish failed for good (a canary that changed, a version gone).
    Failed,
}

impl State {
    /// No longer changes.
    fn ended(self) -> bool {
        !matches!(self, State::Pending | State::Approving)
    }
}

/// A change as its object in the store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    id: u64,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    #[serde(default)]
    state: State,
    /// Who took it out of `pending` (approver or rejecter), when, on which replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replica: Option<String>,
    #[serde(flatten)]
    draft: Draft,
}

impl Stored {
    fn expires(&self) -> SystemTime {
        SystemTime::from(self.expires_at)
    }
}

/// The old approvals file ([`Approvals::import_file`]).
#[derive(Debug, Default, Deserialize)]
struct LegacyFile {
    pending: Vec<Stored>,
}

const PREFIX: &str = "_approvals/";

const OPTIONS: PutOptions = PutOptions {
    content_type: "application/json",
    content_encoding: None,
    cache_control: "no-store",
};

fn key(id: u64) -> String {
    // Zero-padded so the store's sorted listing is in id order.
    format!("{PREFIX}{id:010}.json")
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

fn not_found(env: &str, id: u64) -> ApiError {
    ApiError::NotFound(format!("no pending change {id} in {env:?}"))
}

/// Every pending change of every environment: the objects under `_approvals/` of the store.
#[derive(Debug)]
pub struct Approvals {
    store: Arc<dyn ObjectStore>,
    /// This replica, named in the changes it takes for approval.
    replica: String,
    /// Ids of changes that ended (their objects never change again).
    ended: Mutex<BTreeSet<u64>>,
}

fn rfc3339(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn pending_of(stored: &Stored) -> Pending {
    let draft = &stored.draft;
    let proposal = &draft.proposal;
    Pending {
        id: stored.id,
        env: draft.env.clone(),
        action: proposal.kind(),
        author: draft.author.clone(),
        client: draft.client.clone(),
        message: draft.message.clone(),
        commit: match proposal {
            Proposal::Push { provenance, .. } | Proposal::Canary { provenance, .. } => {
                provenance.source_commit.clone()
            }
            Proposal::Rollback { .. } | Proposal::Promote { .. } => None,
        },
        rollback_to: match proposal {
            Proposal::Rollback { to } => Some(*to),
            _ => None,
        },
        percent: match proposal {
            Proposal::Canary { percent, .. } => Some(*percent),
            _ => None,
        },
        canary: match proposal {
            Proposal::Promote { canary } => Some(canary.clone()),
            _ => None,
        },
        base_version: draft.base_version,
        created_at: rfc3339(stored.created_at.into()),
        expires_at: rfc3339(stored.expires()),
        diff: draft.diff.clone(),
        proposal: proposal.clone(),
    }
}

impl Approvals {
    /// The pending changes kept in `store`, handled by replica `replica`.
    pub fn new(store: Arc<dyn ObjectStore>, replica: &str) -> Approvals {
        Approvals {
            store,
            replica: replica.to_owned(),
            ended: Mutex::default(),
        }
    }

    fn ended(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn ids(&self) -> Result<Vec<u64>, ApiError> {
        let keys = self.store.list(PREFIX).await.map_err(store_error)?;
        Ok(keys
            .iter()
            .filter_map(|k| k.strip_prefix(PREFIX)?.strip_suffix(".json")?.parse().ok())
            .collect())
    }

    async fn read(&self, id: u64) -> Result<Option<(Stored, String)>, ApiError> {
        let Some(object) = self.store.get(&key(id)).await.map_err(store_error)? else {
            return Ok(None);
        };
        let stored = serde_json::from_slice(&object.bytes)
            .map_err(|e| ApiError::Internal(format!("pending change {id} is unreadable: {e}")))?;
        Ok(Some((stored, object.etag)))
    }

    /// Applies `change` to change `id` of `env` and writes it if it changed anything,
    /// retrying from a fresh read when another replica wrote in between; answers what
    /// `change` answered (it may change the record *and* refuse, e.g. mark it expired and
    /// answer 410).
    async fn update<T>(
        &self,
        env: &str,
        id: u64,
        mut change: impl FnMut(&mut Stored) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        for _ in 0..32 {
            let (mut stored, etag) = match self.read(id).await? {
                Some((stored, etag)) if stored.draft.env == env => (stored, etag),
                _ => return Err(not_found(env, id)),
            };
            let before = serde_json::to_vec_pretty(&stored)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let answer = change(&mut stored);
            let after = serde_json::to_vec_pretty(&stored)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            if after != before {
                match self
                    .store
                    .put_if_match(&key(id), after, &etag, OPTIONS)
                    .await
                {
                    Ok(()) => {}
                    Err(StoreError::PreconditionFailed { .. }) => continue,
                    Err(e) => return Err(store_error(e)),
                }
            }
            if stored.state.ended() {
                self.ended().insert(id);
            }
            return answer;
        }
        Err(ApiError::Conflict(format!(
            "pending change {id} is being changed by others; retry"
        )))
    }

    /// Stores `stored` under a new id (its own when `stored.id` is free, else the next after
    /// the highest); returns the id.
    async fn create(&self, mut stored: Stored) -> Result<Stored, ApiError> {
        for _ in 0..32 {
            let bytes = serde_json::to_vec_pretty(&stored)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            match self
                .store
                .put_if_absent(&key(stored.id), bytes, OPTIONS)
                .await
            {
                Ok(()) => return Ok(stored),
                // Another replica took this id first: take the next.
                Err(StoreError::PreconditionFailed { .. }) => {
                    stored.id = self.ids().await?.last().copied().unwrap_or(0) + 1;
                }
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(ApiError::Conflict(
            "could not number a new pending change: too many at once; retry".into(),
        ))
    }

    /// Holds `draft` for `ttl`; returns it as listed. When an unexpired pending change of the
    /// same environment already proposes the same change (a retried push, a redelivered
    /// webhook), holds nothing and returns that one: identical changes do not pile up for
    /// approvers. Fails (and holds nothing) when the store cannot be written.
    pub async fn propose(
        &self,
        draft: Draft,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Proposed, ApiError> {
        let waiting = self.list(Some(&draft.env), now).await?;
        if let Some(existing) = waiting
            .into_iter()
            .find(|p| p.proposal.same_change(&draft.proposal))
        {
            return Ok(Proposed {
                pending: existing,
                new: false,
            });
        }
        let stored = Stored {
            id: self.ids().await?.last().copied().unwrap_or(0) + 1,
            created_at: now.into(),
            expires_at: (now + ttl).into(),
            state: State::Pending,
            by: None,
            at: None,
            replica: None,
            draft,
        };
        let stored = self.create(stored).await.map_err(|e| match e {
            ApiError::Unavailable(e) => {
                ApiError::Unavailable(format!("the pending change could not be recorded: {e}"))
            }
            e => e,
        })?;
        Ok(Proposed {
            pending: pending_of(&stored),
            new: true,
        })
    }

    /// The unexpired pending changes of `env` (every environment for `None`), oldest first;
    /// those found expired are marked so.
    pub async fn list(&self, env: Option<&str>, now: SystemTime) -> Result<Vec<Pending>, ApiError> {
        let mut pending = Vec::new();
        for id in self.ids().await? {
            if self.ended().contains(&id) {
                continue;
            }
            let Some((stored, _)) = self.read(id).await? else {
                continue;
            };
            if stored.state.ended() {
                self.ended().insert(id);
                continue;
            }
            if stored.state != State::Pending || env.is_some_and(|e| stored.draft.env != e) {
                continue;
            }
            if stored.expires() <= now {
                let expired = self
                    .update(&stored.draft.env, id, |s| {
                        if s.state == State::Pending && s.expires() <= now {
                            s.state = State::Expired;
                            s.at = Some(now.into());
                        }
                        Ok(())
                    })
                    .await;
                if let Err(e) = expired {
                    tracing::warn!(id, error = %e, "could not mark an expired pending change");
                }
                continue;
            }
            pending.push(pending_of(&stored));
        }
        Ok(pending)
    }

    /// Takes pending change `id` of `env` for `approver` to publish (it becomes `approving`
    /// in the store, so no other replica publishes it): 404 when unknown, 410 when expired,
    /// 403 when `approver` proposed it (it stays pending then), 409 when someone else took
    /// or approved it first.
    pub async fn take_for_approval(
        &self,
        env: &str,
        id: u64,
        approver: &str,
        now: SystemTime,
    ) -> Result<Pending, ApiError> {
        self.update(env, id, |s| match s.state {
            State::Pending if s.expires() <= now => {
                s.state = State::Expired;
                s.at = Some(now.into());
                Err(ApiError::Gone(format!(
                    "pending change {id} expired at {}; propose it again",
                    rfc3339(s.expires())
                )))
            }
            State::Pending if s.draft.author == approver => Err(ApiError::Denied(format!(
                "{approver:?} proposed change {id} and cannot approve it; another token with the approve role must"
            ))),
            State::Pending => {
                s.state = State::Approving;
                s.by = Some(approver.to_owned());
                s.at = Some(now.into());
                s.replica = Some(self.replica.clone());
                Ok(pending_of(s))
            }
            State::Approving | State::Approved => Err(ApiError::Conflict(format!(
                "change {id} was {} by {:?}",
                if s.state == State::Approving {
                    "taken for approval"
                } else {
                    "already approved"
                },
                s.by.as_deref().unwrap_or("another token")
            ))),
            State::Expired => Err(ApiError::Gone(format!(
                "pending change {id} expired at {}; propose it again",
                rfc3339(s.expires())
            ))),
            State::Rejected | State::Failed => Err(not_found(env, id)),
        })
        .await
    }

    /// Puts back a change taken for approval whose publish failed for a reason that may pass
    /// (the store unreachable): it is pending again, with its id, author and expiry.
    pub async fn restore(&self, pending: &Pending) {
        self.settle(pending, State::Pending).await;
    }

    /// Records how the approval of a change taken for it ended: `Approved` (published) or
    /// `Failed` (will never publish).
    pub async fn settle(&self, pending: &Pending, state: State) {
        let settled = self
            .update(&pending.env, pending.id, |s| {
                if s.state == State::Approving {
                    s.state = state;
                    if state == State::Pending {
                        s.by = None;
                        s.at = None;
                        s.replica = None;
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = settled {
            tracing::error!(id = pending.id, ?state, error = %e, "could not record how the approval ended; the change stays taken");
        }
    }

    /// Rejects pending change `id` of `env` (an approver, or its author withdrawing it): 404
    /// when it is not pending, 409 while it is being approved.
    pub async fn remove(
        &self,
        env: &str,
        id: u64,
        by: &str,
        now: SystemTime,
    ) -> Result<Pending, ApiError> {
        self.update(env, id, |s| match s.state {
            State::Pending => {
                s.state = State::Rejected;
                s.by = Some(by.to_owned());
                s.at = Some(now.into());
                s.replica = Some(self.replica.clone());
                Ok(pending_of(s))
            }
            State::Approving => Err(ApiError::Conflict(format!(
                "change {id} is being approved by {:?}",
                s.by.as_deref().unwrap_or("another token")
            ))),
            _ => Err(not_found(env, id)),
        })
        .await
    }

    /// Unexpired pending changes per environment, for the metrics gauge.
    pub async fn counts(&self, now: SystemTime) -> Result<BTreeMap<String, i64>, ApiError> {
        let mut counts = BTreeMap::new();
        for p in self.list(None, now).await? {
            *counts.entry(p.env).or_insert(0) += 1;
        }
        Ok(counts)
    }

    /// Imports the pending changes of an old `approvals_file` (those unexpired at `now`),
    /// keeping their ids where free, then renames it to `<file>.imported` so that no replica
    /// imports it again. A missing file imports nothing; an unreadable one is an error (the
    /// service does not start rather than lose changes it cannot read).
    pub async fn import_file(&self, file: &Path, now: SystemTime) -> Result<usize, String> {
        let legacy: LegacyFile = match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{}: not an approvals file ({e}); move it away to start without its pending changes",
                    file.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(format!("{}: {e}", file.display())),
        };
        let mut imported = 0;
        for mut stored in legacy.pending {
            if stored.expires() <= now {
                continue;
            }
            let old = stored.id;
            stored.state = State::Pending;
            let stored = self
                .create(stored)
                .await
                .map_err(|e| format!("importing {}: {e}", file.display()))?;
            tracing::info!(id = stored.id, old_id = old, env = %stored.draft.env, "pending change imported from the approvals file");
            imported += 1;
        }
        let mut renamed = file.as_os_str().to_owned();
        renamed.push(".imported");
        std::fs::rename(file, &renamed).map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(imported)
    }
}

#[cfg(test)]
mod tests;
