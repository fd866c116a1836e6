//! Change requests as the service keeps them: one JSON object per change in the store, under
//! `_changes/` (no environment name starts with `_`), written only with conditional puts. Every
//! replica of the service reads and writes the same objects, so two replicas act as one: a
//! change's id is claimed with `put_if_absent`, and every update is a read-modify-write that
//! retries when another replica wrote in between (`put_if_match`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use flags_store::store::{ObjectStore, PutOptions, StoreError};

use crate::error::ApiError;

const PREFIX: &str = "_changes/";

/// Where a change stands, as stored. `approved` and `conflicted` are worked out when it is
/// shown (from its approvals and from the branch it merges into).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stored {
    /// Open for edits, approvals and merge.
    Open,
    /// Merged into the branch.
    Merged,
    /// Closed without merging.
    Closed,
}

/// One approval: who approved which head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Token name.
    pub by: String,
    /// RFC 3339.
    pub at: String,
    /// The change's head commit when approved: a later commit needs new approvals.
    pub head: String,
}

/// A merge in progress (or done): who claimed it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Token name.
    pub by: String,
    /// RFC 3339.
    pub at: String,
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merged {
    /// The commit the branch holds now.
    pub commit: String,
    /// Token name.
    pub by: String,
    /// RFC 3339.
    pub at: String,
    /// Whether the change's commits were replayed onto a branch that had moved.
    pub rebased: bool,
}

/// One step of a change's life, for its audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339.
    pub at: String,
    /// Token name.
    pub by: String,
    /// What happened: `opened`, `committed <id> (<message>)`, `approved`, `merged <id>`, ...
    pub what: String,
}

impl Event {
    /// `by` did `what`, now.
    pub fn new(by: &str, what: &str) -> Event {
        Event {
            at: crate::actions::now(),
            by: by.to_owned(),
            what: what.to_owned(),
        }
    }
}

/// A change request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Its number.
    pub id: u64,
    /// Title.
    pub title: String,
    /// Longer description.
    #[serde(default)]
    pub description: String,
    /// The token that opened it.
    pub author: String,
    /// Open, merged or closed.
    pub state: Stored,
    /// Its branch on the remote (`changes/<id>`).
    pub branch: String,
    /// The branch's commit it was opened on.
    pub base: String,
    /// Its last commit (`base` while it has none).
    pub head: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Approvals given.
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// A merge claimed by one replica (cleared if it fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merging: Option<Claim>,
    /// How it was merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
    /// Who closed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Claim>,
    /// Its audit trail: every step, who took it and when.
    #[serde(default)]
    pub events: Vec<Event>,
}

impl Change {
    /// A new open change numbered `id`, by `author`, on the branch's commit `base`.
    pub fn open(id: u64, title: &str, description: &str, author: &str, base: &str) -> Change {
        let at = crate::actions::now();
        Change {
            id,
            title: title.to_owned(),
            description: description.to_owned(),
            author: author.to_owned(),
            state: Stored::Open,
            branch: format!("changes/{id}"),
            base: base.to_owned(),
            head: base.to_owned(),
            created_at: at.clone(),
            updated_at: at,
            approvals: Vec::new(),
            merging: None,
            merged: None,
            closed: None,
            events: vec![Event::new(author, "opened")],
        }
    }

    /// Approvals of its current head.
    pub fn current_approvals(&self) -> impl Iterator<Item = &Approval> {
        self.approvals.iter().filter(|a| a.head == self.head)
    }
}

/// The change records of one store.
#[derive(Debug, Clone)]
pub struct Records {
    store: Arc<dyn ObjectStore>,
}

fn key(id: u64) -> String {
    // Zero-padded so the store's sorted listing is in id order.
    format!("{PREFIX}{id:010}.json")
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

const OPTIONS: PutOptions = PutOptions {
    content_type: "application/json",
    content_encoding: None,
    cache_control: "no-store",
};

impl Records {
    /// The records of `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Records {
        Records { store }
    }

    /// Every change's id, in order.
    pub async fn ids(&self) -> Result<Vec<u64>, ApiError> {
        let keys = self.store.list(PREFIX).await.map_err(store_error)?;
        Ok(keys
            .iter()
            .filter_map(|k| k.strip_prefix(PREFIX)?.strip_suffix(".json")?.parse().ok())
            .collect())
    }

    /// Every change, in id order.
    pub async fn all(&self) -> Result<Vec<Change>, ApiError> {
        let mut changes = Vec::new();
        for id in self.ids().await? {
            if let Some((change, _)) = self.read(id).await? {
                changes.push(change);
            }
        }
        Ok(changes)
    }

    async fn read(&self, id: u64) -> Result<Option<(Change, String)>, ApiError> {
        let Some(object) = self.store.get(&key(id)).await.map_err(store_error)? else {
            return Ok(None);
        };
        let change = serde_json::from_slice(&object.bytes)
            .map_err(|e| ApiError::Internal(format!("change {id} is unreadable: {e}")))?;
        Ok(Some((change, object.etag)))
    }

    /// Change `id`, or 404.
    pub async fn get(&self, id: u64) -> Result<Change, ApiError> {
        self.read(id)
            .await?
            .map(|(change, _)| change)
            .ok_or_else(|| ApiError::NotFound(format!("no change {id}")))
    }

    /// Stores a new change, numbered after the highest one (`make` gets the number).
    pub async fn create(&self, make: impl Fn(u64) -> Change) -> Result<Change, ApiError> {
        for _ in 0..32 {
            let id = self.ids().await?.last().copied().unwrap_or(0) + 1;
            let change = make(id);
            let bytes = serde_json::to_vec_pretty(&change)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            match self.store.put_if_absent(&key(id), bytes, OPTIONS).await {
                Ok(()) => return Ok(change),
                // Another replica took this number first: take the next one.
                Err(StoreError::PreconditionFailed { .. }) => continue,
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(ApiError::Conflict(
            "could not number a new change: too many at once; retry".into(),
        ))
    }

    /// Applies `update` to change `id` and stores it, retrying from a fresh read when another
    /// writer got there first. `update` may refuse (its error is answered, nothing written).
    pub async fn update<T>(
        &self,
        id: u64,
        mut update: impl FnMut(&mut Change) -> Result<T, ApiError>,
    ) -> Result<(Change, T), ApiError> {
        for _ in 0..32 {
            let (mut change, etag) = self
                .read(id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no change {id}")))?;
            let extra = update(&mut change)?;
            let bytes = serde_json::to_vec_pretty(&change)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            match self
                .store
                .put_if_match(&key(id), bytes, &etag, OPTIONS)
                .await
            {
                Ok(()) => return Ok((change, extra)),
                Err(StoreError::PreconditionFailed { .. }) => continue,
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(ApiError::Conflict(format!(
            "change {id} is being changed by others; retry"
        )))
    }
}
