//! The one publish step every verb ends in: seal and upload new sides (read back and checked),
//! claim the version number, move the pointer, write the audit entry (steps 2 to 5 of the
//! `publish` module docs), signing the pointer when the environment has a signing key.

use flags_compile::blob_file::{self, Provenance};

use super::{Base, Current, Environment, Next, PublishError, Side, sha256_hex, to_json};
use crate::layout::{
    AuditEntry, BlobRef, Canary, VersionRecord, audit_key, pointer_key, version_key,
};
use crate::store::{PutOptions, StoreError};

impl Environment {
    /// Builds version `current + 1` from `next`: seals and uploads each new side (read back and
    /// checked), then commits the record (module docs, steps 2 to 5). Every publishing
    /// operation ends here: push, canary, promote, abort, rollback, kill, rollout ticks.
    pub(crate) async fn publish_next(
        &self,
        current: Option<&Current>,
        next: Next,
    ) -> Result<VersionRecord, PublishError> {
        self.publish_over(&Base::of(current), next).await
    }

    /// [`Environment::publish_next`] over an explicit base: the newest record and a damaged
    /// pointer's ETag when a rollback repairs the pointer (module docs, "A damaged pointer").
    pub(crate) async fn publish_over(
        &self,
        base: &Base,
        next: Next,
    ) -> Result<VersionRecord, PublishError> {
        let previous = base.version;
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
        // A new side's body arrives with the live stages applied (by `as_pushed`, `republish`,
        // or because it is the deployed body): stages are applied in one place,
        // `rollout::stage`.
        let stable = self
            .stored_side(next.stable, version, previous, &next.provenance)
            .await?;
        let canary = match next.canary {
            Some(c) => {
                let blob_ref = self
                    .stored_side(c.side, version, previous, &next.provenance)
                    .await?;
                Some(Canary {
                    blob_ref,
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
            stable,
            author: next.provenance.author,
            source_commit: next.provenance.source_commit,
            source_dirty: next.provenance.source_dirty,
            created_at: next.provenance.created_at,
            summary: next.summary,
            rollback_to: next.rollback_to,
            flags: next.flags,
            message: next.message,
            canary,
            rollouts,
            signature: None,
        };
        self.commit(base, record).await
    }

    /// A side of the next version as the blob it is stored as, uploading it if new.
    pub(super) async fn stored_side(
        &self,
        side: Side,
        version: u64,
        previous: Option<u64>,
        provenance: &Provenance,
    ) -> Result<BlobRef, PublishError> {
        match side {
            Side::Stored(stored) => Ok(stored),
            Side::New(body) => {
                let blob = blob_file::seal(body, &self.env, version, previous, provenance);
                let gz = blob_file::encode_gzip(&blob)?;
                let sha256 = sha256_hex(&gz);
                let stored = BlobRef::content_addressed(sha256, blob.header.content_hash);
                self.upload_blob(&stored.blob, gz, &stored.sha256).await?;
                Ok(stored)
            }
        }
    }

    /// Uploads a blob under its content address and reads it back (module docs, step 2).
    pub(super) async fn upload_blob(
        &self,
        name: &str,
        gz: Vec<u8>,
        sha256: &str,
    ) -> Result<(), PublishError> {
        let key = format!("{}/{name}", self.env);
        match self.store.put_if_absent(&key, gz, PutOptions::BLOB).await {
            // Already there: same key, so the same bytes, which the read-back confirms.
            Ok(()) | Err(StoreError::PreconditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.blob(name, sha256).await.map(drop)
    }

    /// Steps 3 to 5: claims the version number, moves the pointer, writes the audit entry.
    pub(super) async fn commit(
        &self,
        base: &Base,
        mut record: VersionRecord,
    ) -> Result<VersionRecord, PublishError> {
        // Signed here, where every publish ends: the record and the pointer derived from it
        // carry the signature.
        record.signature = match &self.signer {
            Some(key) => Some(key.sign(&record.pointer(), &self.env).map_err(|e| {
                PublishError::Unsignable {
                    env: self.env.clone(),
                    reason: e.reason(),
                }
            })?),
            None => None,
        };
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
        self.move_pointer(base, &record).await?;
        self.write_audit(&record, None).await?;
        Ok(record)
    }

    /// Moves the pointer from `base` to `record`'s version (module docs, step 4). Succeeds
    /// too if someone else already moved it there (or beyond).
    pub(super) async fn move_pointer(
        &self,
        base: &Base,
        record: &VersionRecord,
    ) -> Result<(), PublishError> {
        let key = pointer_key(&self.env);
        let bytes = to_json(&record.pointer());
        let moved = match &base.etag {
            Some(etag) => {
                self.store
                    .put_if_match(&key, bytes, etag, PutOptions::POINTER)
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
    pub(super) async fn write_audit(
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
