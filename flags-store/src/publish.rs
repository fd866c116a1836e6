//! Publishing to one environment of a store: push, rollback, history and audit, safe against
//! racing publishers and against a publisher dying halfway. Kill, rollback, canary and history
//! live in `publish/`, by verb (`read.rs`, `push.rs`, `commit.rs`, `kill.rs`, `rollback.rs`,
//! `canary.rs`, `rollout.rs`, `history.rs`); every one of them (and rollout ticks and drift
//! fixes) publishes through `Environment::publish_next` (`commit.rs`). `removals.rs` is the
//! guard every push (stable or canary) passes: it refuses to drop most of what is deployed
//! unless the caller allows it ([`RemovalPolicy`]).
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
//!   pointer at `N-1` (or, repairing a damaged pointer, the records ending at `N-1`: see "A
//!   damaged pointer"), so the records are exactly `1..=M` with no gaps and no number reused.
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
//!
//! # A damaged pointer
//!
//! The pointer is the one mutable object, so it is the one a hand edit, a bad copy or a
//! truncated upload can damage: not JSON, not a pointer (`{}`), naming a version with no
//! record, not what its version's record says (another blob, a missing one), or deleted while
//! versions are recorded. The version records stay the truth: immutable, exactly `1..=M`, each
//! naming a blob that was verified before the record was created. So (`read.rs`,
//! `Environment::settled`):
//!
//! - A pointer is sound only when it parses and equals `record(pointer.version).pointer()`, or
//!   is absent while at most version 1 is recorded (before the first publish, or while its
//!   publisher is between steps 3 and 4). A sound pointer one version behind the records is
//!   rolled forward as in step 1; a damaged one never is.
//! - Every verb that builds on the pointer (push, kill, canary push, promote, abort, rollout
//!   tick and resume, the dry run) refuses a damaged one with [`PublishError::CorruptPointer`],
//!   naming the key and the last good version (the newest record whose blob exists, hashes
//!   right and loads: [`Environment::last_good_version`]), and writes nothing. A push could not
//!   do better: it carries the deployed kills and rollout stages, which only a sound pointer
//!   says. `history` lists the records and reports the pointer as a problem; `drift` reports it
//!   as a finding. The edge keeps serving what it last loaded while it cannot read the pointer or
//!   the blob it names.
//! - The repair is a rollback ([`Environment::rollback`]; `drift --fix` calls it with the last
//!   good version). Over a damaged pointer it is built on the newest record `M`, whatever
//!   version the pointer claims: `versions/<M+1>` is created with `put_if_absent` as in step 3,
//!   and the pointer moves to it with `put_if_match` on the damaged object's own ETag (with
//!   `put_if_absent` if it was deleted), so someone who rewrote the pointer meanwhile makes the
//!   repair fail rather than be overwritten. Records stay exactly `1..=M+1`, none rewritten, and
//!   the pointer again names a recorded version, derived from its record.
//! - The one relaxation: a repair creates `M + 1` having seen the records end at `M` and a
//!   damaged pointer, not the pointer at `M`. Two racing repairs mostly compete for `M + 1` (one
//!   gets [`PublishError::Conflict`]); one that listed the other's record before that one moved
//!   the pointer builds `M + 2` over the same damaged ETag, and only one pointer move from it
//!   succeeds. Either way the records have no gap and the pointer ends sound, at the newest record
//!   or one behind it (which the next publish rolls forward), as above; at worst an audit entry
//!   exists for a version the pointer skipped.
//! - A damaged pointer hides whether version `M` was ever served (its publisher may have stopped
//!   between steps 3 and 4). The repair does not guess: it publishes a new version on top.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use shared_eval::{Blob, Body};

use crate::layout::{self, Action, BlobRef, Canary, Pointer, VersionRecord};
use flags_compile::blob_file::{BlobFileError, Provenance};
use flags_compile::diff::BodyDiff;

mod canary;
mod commit;
mod history;
mod kill;
mod push;
mod read;
mod removals;
mod rollback;
pub mod rollout;

pub use history::environments;
pub use push::{as_pushed, carry_kills};
pub use removals::{DEFAULT_MAX_REMOVALS_PERCENT, RemovalPolicy};
pub use rollout::TickTime;

use crate::signing::SigningKey;
use crate::store::{ObjectStore, StoreError};

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
    /// The pointer is unreadable, missing while versions are recorded, or not what its version
    /// record says (module docs, "A damaged pointer"). Nothing was published.
    #[error("the pointer {key} is corrupt: {detail}; {}; nothing was published", repair_hint(env, *last_good))]
    CorruptPointer {
        /// The environment.
        env: String,
        /// The pointer's key, with the store.
        key: String,
        /// What is wrong with it.
        detail: String,
        /// The newest version whose blob exists and verifies: what a repair serves again.
        last_good: Option<u64>,
    },
    /// The blob the (sound) pointer names is missing or broken. Nothing was published.
    #[error("{env} serves a broken blob: {key}: {detail}; {}; nothing was published", repair_hint(env, *last_good))]
    CorruptBlob {
        /// The environment.
        env: String,
        /// The blob's key, with the store.
        key: String,
        /// What is wrong with it.
        detail: String,
        /// The newest version whose blob exists and verifies.
        last_good: Option<u64>,
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
    /// A signing key is configured but the pointer cannot be signed (a field holds a control
    /// character). Nothing was published.
    #[error("cannot sign the pointer of {env}: {reason}; nothing was published")]
    Unsignable {
        /// The environment.
        env: String,
        /// Why.
        reason: &'static str,
    },
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
    #[error("{env} has no flag {}", keys.iter().zip(did_you_mean).map(|(k, m)| match m {
        Some(m) => format!("{k} (did you mean `{m}`?)"),
        None => k.clone(),
    }).collect::<Vec<_>>().join(", "))]
    UnknownFlags {
        /// The environment.
        env: String,
        /// The keys not found.
        keys: Vec<String>,
        /// For each key, the deployed flag it most likely meant (a typo), if any.
        did_you_mean: Vec<Option<String>>,
    },
    /// A push that would remove every deployed flag, or more than the [`RemovalPolicy`]
    /// allows: most likely the wrong directory. Nothing was published.
    #[error("{}", removals::refusal(env, removed, *deployed, *max_percent))]
    TooManyRemovals {
        /// The environment.
        env: String,
        /// The deployed flags the push would remove, sorted.
        removed: Vec<String>,
        /// How many flags the environment serves now.
        deployed: usize,
        /// The share of them a push may remove (percent).
        max_percent: u8,
    },
}

/// How to get out of a damaged store, for the messages of [`PublishError::CorruptPointer`] and
/// [`PublishError::CorruptBlob`] and `history`'s problem.
pub(crate) fn repair_hint(env: &str, last_good: Option<u64>) -> String {
    match last_good {
        Some(version) => format!(
            "the last good version is {version}: `publisher drift --fix --env {env}` (or \
             `publisher rollback --env {env} --to {version}`) serves it again as a new version"
        ),
        None => "no recorded version has an intact blob to serve again".to_owned(),
    }
}

/// Which flags `kill` / `unkill` act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillTarget {
    /// These keys (each must exist in the deployed version).
    Flags(Vec<String>),
    /// Every flag of the environment.
    All,
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
    /// What the environment serves now (empty before the first push): the old side of `diff`.
    pub deployed: Body,
    /// What the push would serve (the compiled body through [`as_pushed`]).
    pub served: Body,
    /// Why the push would be refused by the environment's [`RemovalPolicy`], if it would.
    pub refused: Option<String>,
}

/// The version records of an environment and what is wrong with them, if anything.
#[derive(Debug, Clone)]
pub struct History {
    /// The version the pointer names, if any.
    pub current: Option<u64>,
    /// Every record, oldest first.
    pub records: Vec<VersionRecord>,
    /// Inconsistencies found (gaps, pointer behind, pointer corrupt); empty in a healthy store.
    pub problems: Vec<String>,
    /// Why the pointer is corrupt, when it is (then `current` is `None`): the records are
    /// listed all the same.
    pub corrupt_pointer: Option<String>,
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
    /// A blob already stored (rollback, promote, the untouched side).
    Stored(BlobRef),
}

impl Side {
    fn stable_of(pointer: &Pointer) -> Side {
        Side::Stored(pointer.stable.clone())
    }

    fn canary_of(canary: &Canary) -> Side {
        Side::Stored(canary.blob_ref.clone())
    }
}

/// What the next version is published over: the version it follows (`None` for the first) and
/// the pointer object's ETag to move it from (`None`: create it). Normally both come from the
/// pointer; over a damaged pointer the version is the newest record's and the ETag the damaged
/// object's (module docs, "A damaged pointer").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Base {
    pub(crate) version: Option<u64>,
    pub(crate) etag: Option<String>,
}

impl Base {
    pub(crate) fn of(current: Option<&Current>) -> Base {
        Base {
            version: current.map(|c| c.pointer.version),
            etag: current.map(|c| c.etag.clone()),
        }
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
    /// How many deployed flags a push may remove.
    removals: RemovalPolicy,
    /// Signs every pointer published, when set (`crate::signing`).
    signer: Option<Arc<SigningKey>>,
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
            removals: RemovalPolicy::default(),
            signer: None,
        })
    }

    /// The same environment, with pushes (stable or canary) allowed to remove deployed flags
    /// as `policy` says; by default a push removing every flag, or more than
    /// [`DEFAULT_MAX_REMOVALS_PERCENT`]% of them, is refused ([`PublishError::TooManyRemovals`]).
    pub fn with_removals(mut self, policy: RemovalPolicy) -> Environment {
        self.removals = policy;
        self
    }

    /// The same environment, recording `client` (the caller's address) in the audit entries
    /// of what it publishes.
    pub fn with_client(mut self, client: impl Into<String>) -> Environment {
        self.client = Some(client.into());
        self
    }

    /// The same environment, signing the pointer of every version it publishes with `key`
    /// (in the pointer and in the version record).
    pub fn with_signing_key(mut self, key: Arc<SigningKey>) -> Environment {
        self.signer = Some(key);
        self
    }

    /// The key that signs what this environment publishes, if any.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.signer.as_deref()
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
}
