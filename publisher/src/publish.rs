//! Publishing to one environment of a store: push, rollback, history and audit, safe against
//! racing publishers and against a publisher dying halfway. Kill, rollback, canary and history
//! live in `publish/`; every one of them (and rollout ticks and drift fixes) publishes through
//! [`Environment::publish_next`].
//!
//! # How a version is published
//!
//! 1. Read the pointer `current.json` (version `N-1` and its ETag); if `versions/<N>` already
//!    exists, an earlier publisher stopped halfway: finish its pointer move first (see 5).
//! 2. Upload the blob under its content address with `put_if_absent` (an existing object with
//!    that key is the same bytes), read it back and check its SHA-256 and every edge check.
//! 3. **Create `versions/<N>.json` with `put_if_absent`. This is the step that decides who gets
//!    number N**: of any number of racing publishers exactly one creates it; every other gets
//!    [`PublishError::Conflict`] ("someone else published version N; re-run") having written
//!    nothing but an unreferenced blob.
//! 4. Move the pointer from `N-1` to `N` with `put_if_match` on the ETag read in 1 (or
//!    `put_if_absent` for the first version).
//! 5. Write `audit/<N>.json` with `put_if_absent`.
//!
//! # Invariants
//!
//! - A version record only names a blob that was read back and verified (2 before 3).
//! - Records are never rewritten, and `versions/<N>` is only created by a publisher that saw the
//!   pointer at `N-1`, so the records are exactly `1..=M` with no gaps and no number reused.
//! - The pointer only ever moves from the version it was read at to the next one, with content
//!   derived from that version's record, so it names `M` or, for the moment between steps 3 and
//!   4 (or forever, if the publisher died there), `M-1`. Every push and rollback first rolls
//!   such a pointer forward (step 1), and any publisher doing so writes the same pointer, so it
//!   does not matter who does it. The edge reads only the pointer, so it never sees a version
//!   whose record does not exist.
//! - An audit entry exists for every version the pointer has reached, written by the publisher
//!   or by whoever rolled the pointer forward (then `completed_by` says so).
//!
//! Blobs are never overwritten; a blob that no record names (a lost race) is garbage that is
//! safe to delete.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use shared_eval::{Blob, Body};

use crate::blob_file::{self, BlobFileError, Provenance};
use crate::diff::{self, BodyDiff};
use crate::layout::{
    self, Action, AuditEntry, Canary, Pointer, VersionRecord, audit_key, blob_name, pointer_key,
    version_key,
};

mod canary;
mod history;
mod kill;
mod rollback;
use crate::store::{ObjectStore, PutOptions, StoreError};

/// Why a publishing operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The store failed (unreachable, denied, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another publisher got this version number first. Nothing of ours is referenced.
    #[error(
        "someone else published version {version} of {env} first; re-run to publish on top of it"
    )]
    Conflict {
        /// The environment.
        env: String,
        /// The version number we lost.
        version: u64,
    },
    /// The blob read back from the store is not the one uploaded. Nothing was published.
    #[error(
        "read-back check failed for {key}: the store returned bytes with SHA-256 {found}, expected {expected}; \
         nothing was published"
    )]
    ReadBackMismatch {
        /// The blob's key.
        key: String,
        /// Its content address.
        expected: String,
        /// What the bytes read back hash to.
        found: String,
    },
    /// An object in the store is missing or unreadable where the layout says it must exist.
    #[error("{key}: {detail}")]
    Corrupt {
        /// The object.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// `rollback --to N` or `diff --from N` named a version that does not exist.
    #[error("{env} has no version {version}{}", latest.map_or(String::from(" (nothing published yet)"), |l| format!(" (latest is {l})")))]
    NoSuchVersion {
        /// The environment.
        env: String,
        /// The version asked for.
        version: u64,
        /// The newest version, if any.
        latest: Option<u64>,
    },
    /// Nothing has been published to the environment.
    #[error("nothing has been published to {env} yet")]
    NothingPublished {
        /// The environment.
        env: String,
    },
    /// The blob could not be encoded.
    #[error(transparent)]
    Blob(#[from] BlobFileError),
    /// `promote` / `abort` with no canary running.
    #[error("{env} has no canary to {action}")]
    NoCanary {
        /// The environment.
        env: String,
        /// `promote` or `abort`.
        action: &'static str,
    },
    /// A promotion of a canary that is no longer the one meant (it was pushed to since).
    #[error(
        "the canary of {env} changed since this promotion was asked for (it serves {found}, not {expected}); nothing was published"
    )]
    CanaryChanged {
        /// The environment.
        env: String,
        /// The content hash meant.
        expected: String,
        /// The content hash the canary serves now.
        found: String,
    },
    /// A plain push while a canary runs: it would replace the stable version under the canary.
    #[error(
        "{env} has a canary running (since version {since}): `promote` or `abort` it first, or push to it with --canary"
    )]
    CanaryRunning {
        /// The environment.
        env: String,
        /// The version that started the canary.
        since: u64,
    },
    /// `kill`/`unkill` named flags the deployed version does not have.
    #[error("{env} has no flag {}", keys.join(", "))]
    UnknownFlags {
        /// The environment.
        env: String,
        /// The keys not found.
        keys: Vec<String>,
    },
}

/// Which flags `kill` / `unkill` act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillTarget {
    /// These keys (each must exist in the deployed version).
    Flags(Vec<String>),
    /// Every flag of the environment.
    All,
}

/// Keeps a kill in force across pushes: a flag killed in `deployed` stays killed in `next`
/// until someone runs `unkill`. An emergency stop must not be undone by an unrelated merge.
/// Returns the keys kept killed.
pub fn carry_kills(deployed: &Body, next: &mut Body) -> Vec<String> {
    let mut kept = Vec::new();
    for flag in &mut next.flags {
        let was_killed = deployed
            .flags
            .iter()
            .any(|old| old.key == flag.key && old.killed);
        if was_killed && !flag.killed {
            flag.killed = true;
            kept.push(flag.key.clone());
        }
    }
    kept
}

/// What a push of `body` publishes over `deployed` (running `running`): the deployed kills
/// kept ([`carry_kills`]) and every scheduled rule at its stage. A schedule already running
/// keeps its stage, status and since; a new one in `schedules` starts at stage 1; one no longer
/// there ends; `None` keeps the running ones as they are. Returns the body and the rollout
/// states; `drift` compares Git with the store through this same function.
pub fn as_pushed(
    deployed: &Body,
    running: &[layout::RolloutState],
    mut body: Body,
    schedules: Option<Vec<crate::compile::schedule::Schedule>>,
    now: &str,
) -> (Body, Vec<layout::RolloutState>) {
    carry_kills(deployed, &mut body);
    let rollouts = match schedules {
        None => running.to_vec(),
        Some(schedules) => crate::rollout::merge(running, schedules, now),
    };
    for state in &rollouts {
        crate::compile::schedule::apply(&mut body, &state.schedule, state.stage);
    }
    (body, rollouts)
}

/// The pointer as read, with the ETag a conditional move needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// What the environment serves.
    pub pointer: Pointer,
    /// The pointer object's ETag.
    pub etag: String,
}

/// What a push or rollback did.
// Not boxed: one is returned per publish, and callers match on the record directly.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new version, now served.
    Published(VersionRecord),
    /// Nothing to do: the environment already serves this content.
    Unchanged {
        /// The version already serving it.
        version: u64,
    },
}

/// What `push --dry-run` reports.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The version the environment serves now, if any.
    pub current: Option<u64>,
    /// Flag-level differences from it.
    pub diff: BodyDiff,
}

/// The version records of an environment and what is wrong with them, if anything.
#[derive(Debug, Clone)]
pub struct History {
    /// The version the pointer names, if any.
    pub current: Option<u64>,
    /// Every record, oldest first.
    pub records: Vec<VersionRecord>,
    /// Inconsistencies found (gaps, pointer behind); empty in a healthy store.
    pub problems: Vec<String>,
}

/// What an environment serves now: the pointer and the blobs it names, read back and checked.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The pointer as read.
    pub current: Current,
    /// The stable blob.
    pub stable: Blob,
    /// The canary blob, when a canary runs (its share and salt are in `current.pointer.canary`).
    pub canary: Option<Blob>,
}

/// One side (stable or canary) of the version being published: a body to seal and upload as
/// that version, or a blob already in the store served again as it is.
#[derive(Debug, Clone)]
pub(crate) enum Side {
    /// Sealed with the new version's header, uploaded and read back.
    New(Body),
    /// `(blob, sha256, content_hash)` of a stored blob (rollback, promote, the untouched side).
    Stored(String, String, String),
}

impl Side {
    fn stable_of(pointer: &Pointer) -> Side {
        Side::Stored(
            pointer.blob.clone(),
            pointer.sha256.clone(),
            pointer.content_hash.clone(),
        )
    }

    fn canary_of(canary: &Canary) -> Side {
        Side::Stored(
            canary.blob.clone(),
            canary.sha256.clone(),
            canary.content_hash.clone(),
        )
    }
}

/// The canary side of the version being published.
#[derive(Debug, Clone)]
pub(crate) struct NextCanary {
    pub(crate) side: Side,
    pub(crate) percent: layout::Share,
    pub(crate) salt: String,
    pub(crate) since: u64,
}

/// Everything a new version is made of; [`Environment::publish_next`] turns it into the record.
#[derive(Debug, Clone)]
pub(crate) struct Next {
    pub(crate) stable: Side,
    pub(crate) canary: Option<NextCanary>,
    pub(crate) action: Action,
    pub(crate) summary: layout::ChangeSummary,
    pub(crate) flags: Vec<String>,
    pub(crate) provenance: Provenance,
    pub(crate) message: Option<String>,
    pub(crate) rollback_to: Option<u64>,
    /// The rollout states of the new version; `None` carries the previous version's.
    pub(crate) rollouts: Option<Vec<layout::RolloutState>>,
}

/// One environment of a store.
#[derive(Debug, Clone)]
pub struct Environment {
    store: Arc<dyn ObjectStore>,
    env: String,
    /// Who is acting, network-wise (`publisher serve`'s caller address), for the audit trail.
    client: Option<String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn to_json(value: &impl serde::Serialize) -> Vec<u8> {
    // Plain data with string keys: serialization cannot fail.
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

impl Environment {
    /// The environment `env` (checked: it becomes part of every key) of `store`.
    pub fn new(store: Arc<dyn ObjectStore>, env: &str) -> Result<Environment, String> {
        layout::check_env(env)?;
        Ok(Environment {
            store,
            env: env.to_owned(),
            client: None,
        })
    }

    /// The same environment, recording `client` (the caller's address) in the audit entries
    /// of what it publishes.
    pub fn with_client(mut self, client: impl Into<String>) -> Environment {
        self.client = Some(client.into());
        self
    }

    /// The environment's name.
    pub fn name(&self) -> &str {
        &self.env
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn corrupt(&self, key: String, detail: impl std::fmt::Display) -> PublishError {
        PublishError::Corrupt {
            key: format!("{}: {key}", self.store.describe()),
            detail: detail.to_string(),
        }
    }

    /// Reads the pointer; `None` before the first publish.
    pub async fn current(&self) -> Result<Option<Current>, PublishError> {
        let key = pointer_key(&self.env);
        let Some(object) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let pointer: Pointer =
            serde_json::from_slice(&object.bytes).map_err(|e| self.corrupt(key, e))?;
        Ok(Some(Current {
            pointer,
            etag: object.etag,
        }))
    }

    /// Reads one version record.
    pub async fn record(&self, version: u64) -> Result<Option<VersionRecord>, PublishError> {
        let key = version_key(&self.env, version);
        let Some(object) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let record: VersionRecord =
            serde_json::from_slice(&object.bytes).map_err(|e| self.corrupt(key.clone(), e))?;
        if record.version != version {
            return Err(self.corrupt(key, format!("holds version {}", record.version)));
        }
        Ok(Some(record))
    }

    /// Reads a version record that must exist.
    pub async fn require_record(&self, version: u64) -> Result<VersionRecord, PublishError> {
        match self.record(version).await? {
            Some(record) => Ok(record),
            None => {
                let latest = self.current().await?.map(|c| c.pointer.version);
                Err(PublishError::NoSuchVersion {
                    env: self.env.clone(),
                    version,
                    latest,
                })
            }
        }
    }

    /// Downloads a blob named by a pointer or record (`blobs/<hex>.json.gz`), checks its bytes
    /// against `sha256` and runs every check the edge runs.
    pub async fn blob(&self, name: &str, sha256: &str) -> Result<Blob, PublishError> {
        let key = format!("{}/{name}", self.env);
        let Some(object) = self.store.get(&key).await? else {
            return Err(self.corrupt(key, "blob is missing"));
        };
        let found = sha256_hex(&object.bytes);
        if found != sha256 {
            return Err(PublishError::ReadBackMismatch {
                key,
                expected: sha256.to_owned(),
                found,
            });
        }
        let snapshot = blob_file::load_gzip(&object.bytes).map_err(|e| self.corrupt(key, e))?;
        Ok(snapshot.into_blob())
    }

    /// The blob the environment serves now, with its pointer.
    pub async fn deployed(&self) -> Result<Option<(Pointer, Blob)>, PublishError> {
        let Some(current) = self.current().await? else {
            return Ok(None);
        };
        let blob = self
            .blob(&current.pointer.blob, &current.pointer.sha256)
            .await?;
        Ok(Some((current.pointer, blob)))
    }

    /// Everything the environment serves now (stable and canary), read back and checked.
    pub async fn deployed_all(&self) -> Result<Option<Deployed>, PublishError> {
        let Some(current) = self.current().await? else {
            return Ok(None);
        };
        self.read_deployed(current).await.map(Some)
    }

    async fn read_deployed(&self, current: Current) -> Result<Deployed, PublishError> {
        let stable = self
            .blob(&current.pointer.blob, &current.pointer.sha256)
            .await?;
        let canary = match &current.pointer.canary {
            Some(c) => Some(self.blob(&c.blob, &c.sha256).await?),
            None => None,
        };
        Ok(Deployed {
            current,
            stable,
            canary,
        })
    }

    /// Like [`Environment::deployed_all`], after rolling a half-finished publish forward.
    pub(crate) async fn settled_deployed(
        &self,
        author: &str,
    ) -> Result<Option<Deployed>, PublishError> {
        match self.settled_current(author).await? {
            Some(current) => self.read_deployed(current).await.map(Some),
            None => Ok(None),
        }
    }

    /// The body a version served.
    pub async fn version_body(&self, version: u64) -> Result<Body, PublishError> {
        let record = self.require_record(version).await?;
        Ok(self.blob(&record.blob, &record.sha256).await?.body)
    }

    /// Reads the pointer after rolling forward a pointer left behind by a publisher that stopped
    /// between creating a version record and moving the pointer (module docs, step 1).
    async fn settled_current(&self, author: &str) -> Result<Option<Current>, PublishError> {
        // Each round moves the pointer one version; a healthy store needs none. Bounded so that
        // a store that keeps changing under us reports a conflict instead of looping.
        for _ in 0..16 {
            let current = self.current().await?;
            let next = current.as_ref().map_or(1, |c| c.pointer.version + 1);
            let Some(record) = self.record(next).await? else {
                return Ok(current);
            };
            self.move_pointer(current.as_ref(), &record).await?;
            self.write_audit(&record, Some(author.to_owned())).await?;
        }
        let version = self.current().await?.map_or(0, |c| c.pointer.version);
        Err(PublishError::Conflict {
            env: self.env.clone(),
            version,
        })
    }

    /// Compiled flags vs what is deployed: what `push --dry-run` shows.
    pub async fn plan(&self, body: &Body) -> Result<Plan, PublishError> {
        let deployed = self.deployed().await?;
        let empty = Body::default();
        let old = deployed.as_ref().map_or(&empty, |(_, blob)| &blob.body);
        Ok(Plan {
            current: deployed.as_ref().map(|(p, _)| p.version),
            diff: diff::diff(old, body),
        })
    }

    /// Publishes `body` as the next version (module docs). Returns [`Outcome::Unchanged`] without
    /// writing anything when the environment already serves exactly this body.
    pub async fn push(
        &self,
        body: Body,
        provenance: &Provenance,
        message: Option<String>,
    ) -> Result<Outcome, PublishError> {
        self.push_scheduled(body, None, provenance, message).await
    }

    /// [`Environment::push`] with the flag files' rollout schedules (`compile::schedule::collect`):
    /// a schedule already running keeps its stage, status and since (as kills carry across
    /// pushes); a new one starts at stage 1; one no longer in the files ends. `None` carries the
    /// running schedules as they are.
    pub async fn push_scheduled(
        &self,
        body: Body,
        schedules: Option<Vec<crate::compile::schedule::Schedule>>,
        provenance: &Provenance,
        message: Option<String>,
    ) -> Result<Outcome, PublishError> {
        let current = self.settled_current(&provenance.author).await?;
        if let Some(canary) = current.as_ref().and_then(|c| c.pointer.canary.as_ref()) {
            return Err(PublishError::CanaryRunning {
                env: self.env.clone(),
                since: canary.since,
            });
        }
        let (previous, old_body) = match &current {
            Some(c) => (
                Some(c.pointer.version),
                self.blob(&c.pointer.blob, &c.pointer.sha256).await?.body,
            ),
            None => (None, Body::default()),
        };
        let running = match previous {
            Some(v) => self
                .record(v)
                .await?
                .map(|r| r.rollouts)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let (body, rollouts) =
            as_pushed(&old_body, &running, body, schedules, &provenance.created_at);
        let summary = diff::diff(&old_body, &body).summary();
        let content_hash = shared_eval::content_hash(&body);
        if let (Some(c), Some(version)) = (&current, previous)
            && c.pointer.content_hash == content_hash
            && rollouts == running
        {
            return Ok(Outcome::Unchanged { version });
        }
        self.publish_next(
            current.as_ref(),
            Next {
                stable: Side::New(body),
                canary: None,
                action: Action::Push,
                summary,
                flags: Vec::new(),
                provenance: provenance.clone(),
                message,
                rollback_to: None,
                rollouts: Some(rollouts),
            },
        )
        .await
        .map(Outcome::Published)
    }

    /// Publishes the deployed flags again with new rollout states (their stages applied by
    /// [`Environment::publish_next`]): what rollout ticks and resumes do.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn republish(
        &self,
        deployed: &Deployed,
        rollouts: Vec<layout::RolloutState>,
        action: Action,
        flags: Vec<String>,
        author: &str,
        created_at: &str,
        message: String,
    ) -> Result<Outcome, PublishError> {
        let mut body = deployed.stable.body.clone();
        for state in &rollouts {
            crate::compile::schedule::apply(&mut body, &state.schedule, state.stage);
        }
        let summary = diff::diff(&deployed.stable.body, &body).summary();
        let pointer = &deployed.current.pointer;
        let next = Next {
            stable: Side::New(body),
            canary: pointer.canary.as_ref().map(|c| NextCanary {
                side: Side::canary_of(c),
                percent: c.percent,
                salt: c.salt.clone(),
                since: c.since,
            }),
            action,
            summary,
            flags,
            provenance: Provenance {
                author: author.to_owned(),
                source_commit: deployed.stable.header.source_commit.clone(),
                created_at: created_at.to_owned(),
            },
            message: Some(message),
            rollback_to: None,
            rollouts: Some(rollouts),
        };
        self.publish_next(Some(&deployed.current), next)
            .await
            .map(Outcome::Published)
    }

    /// Builds version `current + 1` from `next`: seals and uploads each new side (read back and
    /// checked), then commits the record (module docs, steps 2 to 5). Every publishing
    /// operation ends here: push, canary, promote, abort, rollback, kill, rollout ticks.
    pub(crate) async fn publish_next(
        &self,
        current: Option<&Current>,
        next: Next,
    ) -> Result<VersionRecord, PublishError> {
        let previous = current.map(|c| c.pointer.version);
        let version = previous.map_or(1, |p| p + 1);
        let rollouts = match (next.rollouts, previous) {
            (Some(rollouts), _) => rollouts,
            (None, Some(previous)) => self
                .record(previous)
                .await?
                .map(|r| r.rollouts)
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        };
        // Whatever a new body was built from (files, the deployed blob), the live stage of each
        // schedule is the store's.
        let staged = |side: Side| match side {
            Side::New(mut body) => {
                for state in &rollouts {
                    crate::compile::schedule::apply(&mut body, &state.schedule, state.stage);
                }
                Side::New(body)
            }
            stored => stored,
        };
        let (blob, sha256, content_hash) = self
            .stored_side(staged(next.stable), version, previous, &next.provenance)
            .await?;
        let canary = match next.canary {
            Some(c) => {
                let c = NextCanary {
                    side: staged(c.side),
                    ..c
                };
                let (blob, sha256, content_hash) = self
                    .stored_side(c.side, version, previous, &next.provenance)
                    .await?;
                Some(Canary {
                    blob,
                    sha256,
                    content_hash,
                    percent: c.percent,
                    salt: c.salt,
                    since: c.since,
                })
            }
            None => None,
        };
        let record = VersionRecord {
            version,
            previous,
            action: next.action,
            blob,
            sha256,
            content_hash,
            author: next.provenance.author,
            source_commit: next.provenance.source_commit,
            created_at: next.provenance.created_at,
            summary: next.summary,
            rollback_to: next.rollback_to,
            flags: next.flags,
            message: next.message,
            canary,
            rollouts,
        };
        self.commit(current, record).await
    }

    /// A side of the next version as `(blob, sha256, content_hash)`, uploading it if new.
    async fn stored_side(
        &self,
        side: Side,
        version: u64,
        previous: Option<u64>,
        provenance: &Provenance,
    ) -> Result<(String, String, String), PublishError> {
        match side {
            Side::Stored(blob, sha256, content_hash) => Ok((blob, sha256, content_hash)),
            Side::New(body) => {
                let blob = blob_file::seal(body, &self.env, version, previous, provenance);
                let gz = blob_file::encode_gzip(&blob)?;
                let sha256 = sha256_hex(&gz);
                let name = blob_name(&sha256);
                self.upload_blob(&name, gz, &sha256).await?;
                Ok((name, sha256, blob.header.content_hash))
            }
        }
    }

    /// Uploads a blob under its content address and reads it back (module docs, step 2).
    async fn upload_blob(&self, name: &str, gz: Vec<u8>, sha256: &str) -> Result<(), PublishError> {
        let key = format!("{}/{name}", self.env);
        match self.store.put_if_absent(&key, gz, PutOptions::BLOB).await {
            // Already there: same key, so the same bytes, which the read-back confirms.
            Ok(()) | Err(StoreError::PreconditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.blob(name, sha256).await.map(drop)
    }

    /// Steps 3 to 5: claims the version number, moves the pointer, writes the audit entry.
    async fn commit(
        &self,
        current: Option<&Current>,
        record: VersionRecord,
    ) -> Result<VersionRecord, PublishError> {
        let key = version_key(&self.env, record.version);
        let bytes = to_json(&record);
        match self
            .store
            .put_if_absent(&key, bytes.clone(), PutOptions::IMMUTABLE_JSON)
            .await
        {
            Ok(()) => {}
            Err(StoreError::PreconditionFailed { .. }) => {
                // Ours, if an earlier attempt of this very request landed before its answer was
                // lost (the S3 client retries); anyone else's record differs (time, blob, author).
                let ours = self
                    .store
                    .get(&key)
                    .await?
                    .is_some_and(|o| o.bytes == bytes);
                if !ours {
                    return Err(PublishError::Conflict {
                        env: self.env.clone(),
                        version: record.version,
                    });
                }
            }
            Err(e) => return Err(e.into()),
        }
        self.move_pointer(current, &record).await?;
        self.write_audit(&record, None).await?;
        Ok(record)
    }

    /// Moves the pointer from `current` to `record`'s version (module docs, step 4). Succeeds
    /// too if someone else already moved it there (or beyond).
    async fn move_pointer(
        &self,
        current: Option<&Current>,
        record: &VersionRecord,
    ) -> Result<(), PublishError> {
        let key = pointer_key(&self.env);
        let bytes = to_json(&record.pointer());
        let moved = match current {
            Some(current) => {
                self.store
                    .put_if_match(&key, bytes, &current.etag, PutOptions::POINTER)
                    .await
            }
            None => {
                self.store
                    .put_if_absent(&key, bytes, PutOptions::POINTER)
                    .await
            }
        };
        match moved {
            Ok(()) => Ok(()),
            Err(StoreError::PreconditionFailed { .. }) => {
                let now = self.current().await?.map(|c| c.pointer.version);
                if now.is_some_and(|v| v >= record.version) {
                    Ok(())
                } else {
                    Err(self.corrupt(
                        key,
                        format!(
                            "pointer changed to {now:?} while version {} was being published; this breaks the \
                             store's invariant (was it edited by hand?)",
                            record.version
                        ),
                    ))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the audit entry of a version whose pointer move is done (module docs, step 5).
    async fn write_audit(
        &self,
        record: &VersionRecord,
        completed_by: Option<String>,
    ) -> Result<(), PublishError> {
        let mut entry = AuditEntry::of(record, completed_by);
        if entry.completed_by.is_none() {
            entry.client = self.client.clone();
        }
        let key = audit_key(&self.env, record.version);
        match self
            .store
            .put_if_absent(&key, to_json(&entry), PutOptions::IMMUTABLE_JSON)
            .await
        {
            // Already written by the publisher itself or by someone who completed its push.
            Ok(()) | Err(StoreError::PreconditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
