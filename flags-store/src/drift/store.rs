//! The store layer: is the pointer what its version record says, and does the blob it names
//! exist, hash to the pointer's SHA-256 and load with every check the edge makes?

use serde::Serialize;
use sha2::{Digest, Sha256};
use shared_eval::Body;

use super::{Finding, FindingKind, Layer};
use crate::layout::{Action, BlobRef, Pointer, VersionRecord, pointer_key};
use crate::publish::{Environment, PublishError};
use crate::store::StoreError;
use flags_compile::blob_file;

/// What state the environment's store objects are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreState {
    /// Pointer, record and blob agree and the blob loads.
    Ok,
    /// Nothing published yet.
    Empty,
    /// The pointer is not a readable pointer, or is missing while versions are recorded.
    PointerUnreadable,
    /// The pointer differs from its version record, or names a version with no record.
    PointerMismatch,
    /// The named blob is missing.
    BlobMissing,
    /// The named blob's bytes do not hash to the pointer's SHA-256.
    BlobHashMismatch,
    /// The named blob does not load.
    BlobCorrupt,
}

/// The store layer as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreLayer {
    /// The state.
    pub state: StoreState,
    /// The pointer's version.
    pub version: Option<u64>,
    /// The pointer's blob (`blobs/<hex>.json.gz`).
    pub blob: Option<String>,
    /// The pointer's SHA-256 of the `.gz` object.
    pub sha256: Option<String>,
    /// The pointer's content hash.
    pub content_hash: Option<String>,
    /// The commit the served version was built from (its record's, else the blob header's).
    pub source_commit: Option<String>,
    /// What the served version's record did (push, rollback, kill, ...).
    pub action: Option<Action>,
    /// When the served version was created.
    pub created_at: Option<String>,
    /// The served version's message (a drift fix's starts with "drift fix").
    pub message: Option<String>,
    /// Flags in the served blob.
    pub flags: Option<usize>,
    /// The canary served beside the stable version, when one runs (not drift).
    pub canary: Option<StoreCanary>,
    /// What is wrong, when the state is not `ok`.
    pub detail: Option<String>,
    /// When the state is broken: the newest version whose blob is intact (what `--fix`
    /// republishes).
    pub last_good_version: Option<u64>,
}

/// A running canary as the pointer names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreCanary {
    /// The version that started it.
    pub since: u64,
    /// The share of users it serves, in percent.
    pub percent: f64,
    /// Its blob (`blob`, `sha256`, `content_hash` at this object's top level).
    #[serde(flatten)]
    pub blob_ref: BlobRef,
    /// Flags in its blob, when it loads.
    pub flags: Option<usize>,
}

/// The store layer with what later comparisons need.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// What is reported.
    pub layer: StoreLayer,
    /// The pointer, when readable.
    pub pointer: Option<Pointer>,
    /// The served version's record, when it matches the pointer.
    pub record: Option<VersionRecord>,
    /// The served body, when the blob loads.
    pub body: Option<Body>,
    /// The canary's body, when a canary runs and its blob loads.
    pub canary_body: Option<Body>,
    /// The newest version number recorded.
    pub latest_record: Option<u64>,
}

impl Inspection {
    /// The store-layer findings.
    pub fn findings(&self) -> Vec<Finding> {
        let layer = &self.layer;
        let kind = match layer.state {
            StoreState::Ok | StoreState::Empty => return Vec::new(),
            StoreState::PointerUnreadable => FindingKind::PointerUnreadable,
            StoreState::PointerMismatch => FindingKind::PointerMismatch,
            StoreState::BlobMissing => FindingKind::BlobMissing,
            StoreState::BlobHashMismatch => FindingKind::BlobHashMismatch,
            StoreState::BlobCorrupt => FindingKind::BlobCorrupt,
        };
        let fix = self
            .repair_target()
            .map(|to| format!("republish version {to}, the last good one"));
        vec![Finding {
            layer: Layer::Store,
            against: Layer::Store,
            kind,
            target: None,
            message: layer.detail.clone().unwrap_or_default(),
            fix,
        }]
    }

    /// The version `--fix` republishes when the store is broken: the last good one. The
    /// rollback that does it numbers the new version after the newest record whatever the
    /// pointer says, so it leaves no gap (`publish` module docs, "A damaged pointer").
    pub fn repair_target(&self) -> Option<u64> {
        let broken = !matches!(self.layer.state, StoreState::Ok | StoreState::Empty);
        broken.then_some(self.layer.last_good_version).flatten()
    }

    /// Whether the store is damaged (anything but `ok` or `empty`): then Git is not compared
    /// with it, and nothing is pushed over it before it is repaired.
    pub fn is_broken(&self) -> bool {
        !matches!(self.layer.state, StoreState::Ok | StoreState::Empty)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a blob is unusable, or its body.
async fn load_blob(
    env: &Environment,
    name: &str,
    sha256: &str,
) -> Result<Result<shared_eval::Blob, (StoreState, String)>, StoreError> {
    let key = format!("{}/{name}", env.name());
    let Some(object) = env.store().get(&key).await? else {
        return Ok(Err((
            StoreState::BlobMissing,
            format!("the blob {key} the pointer names is missing"),
        )));
    };
    let found = sha256_hex(&object.bytes);
    if found != sha256 {
        return Ok(Err((
            StoreState::BlobHashMismatch,
            format!("the blob {key} hashes to {found}, the pointer says {sha256}"),
        )));
    }
    Ok(blob_file::load_gzip(&object.bytes)
        .map(|s| s.into_blob())
        .map_err(|e| {
            (
                StoreState::BlobCorrupt,
                format!("the blob {key} does not load: {e}"),
            )
        }))
}

/// Reads the pointer, its record and its blob. `Err` only when the store cannot be read.
pub async fn inspect(env: &Environment) -> Result<Inspection, PublishError> {
    let mut layer = StoreLayer {
        state: StoreState::Ok,
        version: None,
        blob: None,
        sha256: None,
        content_hash: None,
        source_commit: None,
        action: None,
        created_at: None,
        message: None,
        flags: None,
        canary: None,
        detail: None,
        last_good_version: None,
    };
    let latest_record = env.latest_version().await?;
    let key = pointer_key(env.name());
    let Some(object) = env.store().get(&key).await? else {
        // Absent is sound before the first publish, and while version 1's publisher is between
        // creating its record and the pointer; with more versions recorded it was deleted.
        match latest_record {
            None | Some(1) => layer.state = StoreState::Empty,
            Some(latest) => {
                layer.state = StoreState::PointerUnreadable;
                layer.detail = Some(format!(
                    "the pointer {key} is missing, and versions 1 to {latest} are recorded"
                ));
                layer.last_good_version = env.last_good_version().await?;
            }
        }
        return Ok(Inspection {
            layer,
            pointer: None,
            record: None,
            body: None,
            canary_body: None,
            latest_record,
        });
    };
    let pointer: Pointer = match serde_json::from_slice(&object.bytes) {
        Ok(pointer) => pointer,
        Err(e) => {
            layer.state = StoreState::PointerUnreadable;
            layer.detail = Some(format!("the pointer {key} is not readable: {e}"));
            layer.last_good_version = env.last_good_version().await?;
            return Ok(Inspection {
                layer,
                pointer: None,
                record: None,
                body: None,
                canary_body: None,
                latest_record,
            });
        }
    };
    layer.version = Some(pointer.version);
    layer.blob = Some(pointer.stable.blob.clone());
    layer.sha256 = Some(pointer.stable.sha256.clone());
    layer.content_hash = Some(pointer.stable.content_hash.clone());

    let record = match env.record(pointer.version).await {
        Ok(record) => record,
        Err(PublishError::Store(e)) => return Err(PublishError::Store(e)),
        Err(_) => None,
    };
    let record = match record {
        Some(record) if record.pointer() == pointer => Some(record),
        Some(record) => {
            layer.state = StoreState::PointerMismatch;
            layer.detail = Some(format!(
                "the pointer names {} for version {}, but version {}'s record says {}: the pointer was \
                 overwritten outside the publisher",
                pointer.stable.blob, pointer.version, record.version, record.stable.blob
            ));
            None
        }
        None => {
            layer.state = StoreState::PointerMismatch;
            layer.detail = Some(format!(
                "the pointer names version {}, which has no readable record (records end at {})",
                pointer.version,
                latest_record.map_or("none".to_owned(), |v| v.to_string())
            ));
            None
        }
    };
    if let Some(record) = &record {
        layer.source_commit = record.source_commit.clone();
        layer.action = Some(record.action);
        layer.created_at = Some(record.created_at.clone());
        layer.message = record.message.clone();
    }

    let body = match load_blob(env, &pointer.stable.blob, &pointer.stable.sha256).await? {
        Ok(blob) => {
            if layer.source_commit.is_none() {
                layer.source_commit = blob.header.source_commit.clone();
            }
            if blob.header.content_hash != pointer.stable.content_hash
                && layer.state == StoreState::Ok
            {
                layer.state = StoreState::PointerMismatch;
                layer.detail = Some(format!(
                    "the pointer says content {}, its blob holds {}",
                    pointer.stable.content_hash, blob.header.content_hash
                ));
            }
            layer.flags = Some(blob.body.flags.len());
            Some(blob.body)
        }
        Err((state, detail)) => {
            // A bad blob outranks a mismatched pointer: it is what the edge would fail on.
            layer.state = state;
            layer.detail = Some(detail);
            None
        }
    };
    let mut canary_body = None;
    if let Some(canary) = &pointer.canary {
        let mut reported = StoreCanary {
            since: canary.since,
            percent: canary.percent.percent(),
            blob_ref: canary.blob_ref.clone(),
            flags: None,
        };
        match load_blob(env, &canary.blob_ref.blob, &canary.blob_ref.sha256).await? {
            Ok(blob) => {
                reported.flags = Some(blob.body.flags.len());
                canary_body = Some(blob.body);
            }
            // The stable blob's trouble is reported first: it is what everyone else gets.
            Err((state, detail)) if layer.state == StoreState::Ok => {
                layer.state = state;
                layer.detail = Some(format!("canary: {detail}"));
            }
            Err(_) => {}
        }
        layer.canary = Some(reported);
    }
    if layer.state != StoreState::Ok {
        layer.last_good_version = env.last_good_version().await?;
    }
    Ok(Inspection {
        layer,
        pointer: Some(pointer),
        record,
        body,
        canary_body,
        latest_record,
    })
}
