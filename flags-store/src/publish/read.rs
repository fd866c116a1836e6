//! Reading an environment back: the pointer, version records and blobs (each blob checked as
//! the edge checks it), rolling forward a publish that stopped halfway, and telling a damaged
//! pointer from a sound one (`publish` module docs, "A damaged pointer").

use shared_eval::{Blob, Body};

use flags_compile::blob_file;

use super::{Base, Current, Deployed, Environment, PublishError, sha256_hex};
use crate::layout::{
    Pointer, VersionRecord, pointer_key, version_key, version_of_key, versions_prefix,
};

/// The pointer object as stored.
enum Stored {
    /// No pointer object.
    Absent,
    /// It parses as a pointer (which says nothing yet of whether its record agrees). Boxed: a
    /// signed pointer is several times the size of the other variants.
    Parsed(Box<Current>),
    /// It does not: the ETag to replace it with, and why.
    Unreadable { etag: String, detail: String },
}

/// Where the next version starts from, once a half-finished publish is rolled forward.
pub(super) enum Settled {
    /// Nothing published.
    Empty,
    /// A sound pointer.
    Sound(Current),
    /// A damaged pointer: what a repair publishes over (the newest record and the damaged
    /// object's ETag), and why it is damaged.
    Damaged { base: Base, detail: String },
}

impl Environment {
    async fn stored_pointer(&self) -> Result<Stored, PublishError> {
        let key = pointer_key(&self.env);
        let Some(object) = self.store.get(&key).await? else {
            return Ok(Stored::Absent);
        };
        Ok(match serde_json::from_slice::<Pointer>(&object.bytes) {
            Ok(pointer) => Stored::Parsed(Box::new(Current {
                pointer,
                etag: object.etag,
            })),
            Err(e) => Stored::Unreadable {
                etag: object.etag,
                detail: format!("not a pointer ({e})"),
            },
        })
    }

    /// Reads the pointer; `None` before the first publish. An unreadable pointer is
    /// [`PublishError::CorruptPointer`]; whether a readable one agrees with its version record
    /// is not checked here (one read, for callers that only need what the edge reads): see
    /// [`Environment::verified_current`].
    pub async fn current(&self) -> Result<Option<Current>, PublishError> {
        match self.stored_pointer().await? {
            Stored::Absent => Ok(None),
            Stored::Parsed(current) => Ok(Some(*current)),
            Stored::Unreadable { detail, .. } => Err(self.corrupt_pointer(detail).await),
        }
    }

    /// Reads the pointer and checks it against the records: [`PublishError::CorruptPointer`]
    /// unless it is the pointer of its version's record (or absent with at most version 1
    /// recorded). A pointer one version behind the records (a publish that stopped halfway) is
    /// sound; nothing is rolled forward here.
    pub async fn verified_current(&self) -> Result<Option<Current>, PublishError> {
        match self.judge(self.stored_pointer().await?).await? {
            Ok(current) => Ok(current),
            Err((_, detail)) => Err(self.corrupt_pointer(detail).await),
        }
    }

    /// A stored pointer judged against the records: `Ok` when sound, else what a repair
    /// publishes over and why.
    async fn judge(
        &self,
        stored: Stored,
    ) -> Result<Result<Option<Current>, (Base, String)>, PublishError> {
        let (etag, detail) = match stored {
            Stored::Absent => match self.latest_version().await? {
                // Before the first publish, or while its publisher is between steps 3 and 4.
                None | Some(1) => return Ok(Ok(None)),
                // The pointer was read before the listing: meanwhile version 1's publisher may
                // have created it and others published on top. Read it again, after the
                // listing; absent now (pointers are never deleted) means deleted by hand.
                Some(latest) => match self.stored_pointer().await? {
                    Stored::Absent => (
                        None,
                        format!("it is missing, and versions 1 to {latest} are recorded"),
                    ),
                    present => return Box::pin(self.judge(present)).await,
                },
            },
            Stored::Unreadable { etag, detail } => (Some(etag), detail),
            Stored::Parsed(current) => {
                let version = current.pointer.version;
                let detail = match self.record(version).await? {
                    Some(record) if record.pointer() == current.pointer => {
                        return Ok(Ok(Some(*current)));
                    }
                    Some(record) => format!(
                        "it names {} for version {version}, but that version's record names {}",
                        current.pointer.stable.blob, record.stable.blob
                    ),
                    None => format!("it names version {version}, which has no record"),
                };
                (Some(current.etag), detail)
            }
        };
        let base = Base {
            version: self.latest_version().await?,
            etag,
        };
        Ok(Err((base, detail)))
    }

    /// [`PublishError::CorruptPointer`] with the last good version, or the store's error if
    /// the records cannot be read.
    async fn corrupt_pointer(&self, detail: String) -> PublishError {
        match self.last_good_version().await {
            Ok(last_good) => PublishError::CorruptPointer {
                env: self.env.clone(),
                key: format!("{}: {}", self.store.describe(), pointer_key(&self.env)),
                detail,
                last_good,
            },
            Err(e) => e,
        }
    }

    /// The newest recorded version (records are exactly `1..=M`: this is `M`), from a listing.
    pub async fn latest_version(&self) -> Result<Option<u64>, PublishError> {
        let keys = self.store.list(&versions_prefix(&self.env)).await?;
        Ok(keys.iter().filter_map(|k| version_of_key(k)).max())
    }

    /// The newest version whose record reads and whose blob exists, hashes to the record's
    /// SHA-256 and loads with every edge check: what repairing a damaged pointer or blob serves
    /// again. `None` when no version is intact (or none is recorded).
    pub async fn last_good_version(&self) -> Result<Option<u64>, PublishError> {
        let Some(latest) = self.latest_version().await? else {
            return Ok(None);
        };
        for version in (1..=latest).rev() {
            let record = match self.record(version).await {
                Ok(Some(record)) => record,
                Ok(None) | Err(PublishError::Corrupt { .. }) => continue,
                Err(e) => return Err(e),
            };
            match self.blob(&record.stable.blob, &record.stable.sha256).await {
                Ok(_) => return Ok(Some(version)),
                Err(PublishError::Corrupt { .. } | PublishError::ReadBackMismatch { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
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
            None => Err(PublishError::NoSuchVersion {
                env: self.env.clone(),
                version,
                latest: self.latest_version().await?,
            }),
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

    /// A blob the pointer names, as [`Environment::blob`] reads it, with a missing or broken
    /// one reported as [`PublishError::CorruptBlob`] (with the last good version).
    pub(super) async fn served_blob(&self, name: &str, sha256: &str) -> Result<Blob, PublishError> {
        let (key, detail) = match self.blob(name, sha256).await {
            Err(PublishError::Corrupt { key, detail }) => (key, detail),
            Err(PublishError::ReadBackMismatch {
                key,
                expected,
                found,
            }) => (
                format!("{}: {key}", self.store.describe()),
                format!("its bytes hash to {found}, the pointer says {expected}"),
            ),
            other => return other,
        };
        Err(match self.last_good_version().await {
            Ok(last_good) => PublishError::CorruptBlob {
                env: self.env.clone(),
                key,
                detail,
                last_good,
            },
            Err(e) => e,
        })
    }

    /// The blob the environment serves now, with its pointer (as the edge reads them: the
    /// pointer is not checked against its record).
    pub async fn deployed(&self) -> Result<Option<(Pointer, Blob)>, PublishError> {
        let Some(current) = self.current().await? else {
            return Ok(None);
        };
        let blob = self
            .served_blob(&current.pointer.stable.blob, &current.pointer.stable.sha256)
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

    pub(super) async fn read_deployed(&self, current: Current) -> Result<Deployed, PublishError> {
        let stable = self
            .served_blob(&current.pointer.stable.blob, &current.pointer.stable.sha256)
            .await?;
        let canary = match &current.pointer.canary {
            Some(c) => Some(
                self.served_blob(&c.blob_ref.blob, &c.blob_ref.sha256)
                    .await?,
            ),
            None => None,
        };
        Ok(Deployed {
            current,
            stable,
            canary,
        })
    }

    /// Like [`Environment::deployed_all`], after rolling a half-finished publish forward; a
    /// damaged pointer is [`PublishError::CorruptPointer`].
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
        Ok(self
            .blob(&record.stable.blob, &record.stable.sha256)
            .await?
            .body)
    }

    /// [`Environment::settled`] for the verbs that build on the pointer: a damaged one is
    /// [`PublishError::CorruptPointer`], naming the last good version.
    pub(super) async fn settled_current(
        &self,
        author: &str,
    ) -> Result<Option<Current>, PublishError> {
        match self.settled(author).await? {
            Settled::Empty => Ok(None),
            Settled::Sound(current) => Ok(Some(current)),
            Settled::Damaged { detail, .. } => Err(self.corrupt_pointer(detail).await),
        }
    }

    /// Reads and judges the pointer, after rolling forward a sound pointer left behind by a
    /// publisher that stopped between creating a version record and moving the pointer (module
    /// docs, step 1). A damaged pointer is not rolled forward: it is returned with what a
    /// repair publishes over.
    pub(super) async fn settled(&self, author: &str) -> Result<Settled, PublishError> {
        // Each round moves the pointer one version; a healthy store needs none. Bounded so that
        // a store that keeps changing under us reports a conflict instead of looping.
        for _ in 0..16 {
            let current = match self.judge(self.stored_pointer().await?).await? {
                Ok(current) => current,
                Err((base, detail)) => return Ok(Settled::Damaged { base, detail }),
            };
            let next = current.as_ref().map_or(1, |c| c.pointer.version + 1);
            let Some(record) = self.record(next).await? else {
                return Ok(match current {
                    Some(current) => Settled::Sound(current),
                    None => Settled::Empty,
                });
            };
            self.move_pointer(&Base::of(current.as_ref()), &record)
                .await?;
            self.write_audit(&record, Some(author.to_owned())).await?;
        }
        let version = self.current().await?.map_or(0, |c| c.pointer.version);
        Err(PublishError::Conflict {
            env: self.env.clone(),
            version,
        })
    }
}
