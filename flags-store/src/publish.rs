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

use crate::layout::{self, Action, Canary, Pointer, VersionRecord};
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
    /// How many deployed flags a push may remove.
    removals: RemovalPolicy,
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
