//! `rollback`: a stored version's blob served again, as a new version through the one publish
//! step. Also the repair of a damaged pointer (`publish` module docs, "A damaged pointer").

use shared_eval::Body;

use super::read::Settled;
use super::{Base, Environment, Next, Outcome, PublishError, Side};
use crate::layout::Action;
use flags_compile::blob_file::Provenance;
use flags_compile::diff;

impl Environment {
    /// Serves version `to`'s blob again, as a new version (blobs are immutable, so nothing is
    /// compiled or uploaded). The emergency path: it serves that blob to everyone, so a running
    /// canary ends too. [`Outcome::Unchanged`] if it is already served, without a canary.
    ///
    /// It is also how a damaged pointer is repaired: then the new version follows the newest
    /// record (whatever the pointer claims) and replaces the damaged object with a conditional
    /// write on its own ETag, and the summary is against the newest record's flags.
    pub async fn rollback(
        &self,
        to: u64,
        author: &str,
        created_at: &str,
        message: Option<String>,
    ) -> Result<Outcome, PublishError> {
        let (base, current) = match self.settled(author).await? {
            Settled::Empty => {
                return Err(PublishError::NothingPublished {
                    env: self.env.clone(),
                });
            }
            Settled::Sound(current) => (Base::of(Some(&current)), Some(current)),
            Settled::Damaged { base, .. } => (base, None),
        };
        let target = self.require_record(to).await?;
        if let Some(current) = &current
            && target.stable.sha256 == current.pointer.stable.sha256
            && current.pointer.canary.is_none()
        {
            return Ok(Outcome::Unchanged {
                version: current.pointer.version,
            });
        }
        // The target must still be intact before anything points at it. What it replaces may
        // be broken (rolling back off it is how `drift --fix` repairs it): then the summary
        // lists every flag as added.
        let target_blob = self
            .blob(&target.stable.blob, &target.stable.sha256)
            .await?;
        let replaced = match (&current, base.version) {
            (Some(current), _) => Some((
                current.pointer.stable.blob.clone(),
                current.pointer.stable.sha256.clone(),
            )),
            (None, Some(latest)) => self
                .record(latest)
                .await?
                .map(|r| (r.stable.blob, r.stable.sha256)),
            (None, None) => None,
        };
        let replaced_body = match replaced {
            Some((blob, sha256)) => match self.blob(&blob, &sha256).await {
                Ok(blob) => blob.body,
                Err(PublishError::Corrupt { .. } | PublishError::ReadBackMismatch { .. }) => {
                    Body::default()
                }
                Err(e) => return Err(e),
            },
            None => Body::default(),
        };
        let next = Next {
            stable: Side::Stored(target.stable),
            canary: None,
            action: Action::Rollback,
            summary: diff::diff(&replaced_body, &target_blob.body).summary(),
            flags: Vec::new(),
            provenance: Provenance {
                author: author.to_owned(),
                source_commit: target.source_commit,
                source_dirty: target.source_dirty,
                created_at: created_at.to_owned(),
            },
            message,
            rollback_to: Some(to),
            rollouts: None,
        };
        self.publish_over(&base, next).await.map(Outcome::Published)
    }
}
