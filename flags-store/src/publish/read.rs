//! Reading an environment back: the pointer, version records and blobs (each blob checked as
//! the edge checks it), and rolling forward a publish that stopped halfway.

use shared_eval::{Blob, Body};

use flags_compile::blob_file;

use super::{Current, Deployed, Environment, PublishError, sha256_hex};
use crate::layout::{Pointer, VersionRecord, pointer_key, version_key};

impl Environment {
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

    pub(super) async fn read_deployed(&self, current: Current) -> Result<Deployed, PublishError> {
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
    pub(super) async fn settled_current(
        &self,
        author: &str,
    ) -> Result<Option<Current>, PublishError> {
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
}
