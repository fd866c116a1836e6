//! `rollback`: a stored version's blob served again, as a new version through the one publish
//! step.

use shared_eval::Body;

use super::{Environment, Next, Outcome, PublishError, Side};
use crate::layout::Action;
use flags_compile::blob_file::Provenance;
use flags_compile::diff;

impl Environment {
    /// Serves version `to`'s blob again, as a new version (blobs are immutable, so nothing is
    /// compiled or uploaded). The emergency path: it serves that blob to everyone, so a running
    /// canary ends too. [`Outcome::Unchanged`] if it is already served, without a canary.
    pub async fn rollback(
        &self,
        to: u64,
        author: &str,
        created_at: &str,
        message: Option<String>,
    ) -> Result<Outcome, PublishError> {
        let Some(current) = self.settled_current(author).await? else {
            return Err(PublishError::NothingPublished {
                env: self.env.clone(),
            });
        };
        let target = self.require_record(to).await?;
        if target.sha256 == current.pointer.sha256 && current.pointer.canary.is_none() {
            return Ok(Outcome::Unchanged {
                version: current.pointer.version,
            });
        }
        // The target must still be intact before anything points at it. The current blob may
        // be broken (rolling back off it is how `drift --fix` repairs it): then the summary
        // lists every flag as added.
        let target_blob = self.blob(&target.blob, &target.sha256).await?;
        let current_body = match self
            .blob(&current.pointer.blob, &current.pointer.sha256)
            .await
        {
            Ok(blob) => blob.body,
            Err(PublishError::Corrupt { .. } | PublishError::ReadBackMismatch { .. }) => {
                Body::default()
            }
            Err(e) => return Err(e),
        };
        let next = Next {
            stable: Side::Stored(target.blob, target.sha256, target.content_hash),
            canary: None,
            action: Action::Rollback,
            summary: diff::diff(&current_body, &target_blob.body).summary(),
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
        self.publish_next(Some(&current), next)
            .await
            .map(Outcome::Published)
    }
}
