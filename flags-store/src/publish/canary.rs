//! Canary versions: a second blob in the pointer, served by the edge to a share of users
//! (chosen by the targeting key's bucket under the canary's salt), then promoted to stable or
//! aborted. Each step is one version through [`Environment::publish_next`], like every other
//! publish, so the same conditional writes decide racing publishers and the same audit applies.

use shared_eval::Body;

use super::{Environment, Next, NextCanary, Outcome, PublishError, Side, as_pushed, carry_kills};
use crate::layout::{Action, Canary, Share};
use flags_compile::blob_file::Provenance;
use flags_compile::diff;

impl Environment {
    /// Publishes `body` as the environment's canary, served to `percent` of users beside the
    /// stable version. With a canary already running, replaces its flags and share but keeps
    /// its salt (so users already in it stay in it when the share grows). Kills in force on
    /// either side carry over, as for a push. [`Outcome::Unchanged`] when the canary already
    /// serves this body at this share, or when there is no canary and `body` is the stable one.
    pub async fn push_canary(
        &self,
        mut body: Body,
        percent: Share,
        provenance: &Provenance,
        message: Option<String>,
    ) -> Result<Outcome, PublishError> {
        let Some(deployed) = self.settled_deployed(&provenance.author).await? else {
            return Err(PublishError::NothingPublished {
                env: self.env.clone(),
            });
        };
        // What the canary serves is what a push would: kills kept, live stages applied
        // (`as_pushed`, the function previews and drift use too).
        if let Some(canary) = &deployed.canary {
            carry_kills(&canary.body, &mut body);
        }
        let running = self
            .record(deployed.current.pointer.version)
            .await?
            .map(|r| r.rollouts)
            .unwrap_or_default();
        let (body, _) = as_pushed(
            &deployed.stable.body,
            &running,
            body,
            None,
            &provenance.created_at,
        );
        self.removals
            .check(&self.env, &deployed.stable.body, &body)?;
        let content_hash = shared_eval::content_hash(&body);
        let pointer = &deployed.current.pointer;
        let version = pointer.version;
        let running = pointer.canary.as_ref();
        let same_content = running.is_some_and(|c| c.blob_ref.content_hash == content_hash);
        match running {
            Some(c) if same_content && c.percent == percent => {
                return Ok(Outcome::Unchanged { version });
            }
            None if pointer.stable.content_hash == content_hash => {
                return Ok(Outcome::Unchanged { version });
            }
            _ => {}
        }
        let summary = diff::diff(&deployed.stable.body, &body).summary();
        let since = running.map_or(version + 1, |c| c.since);
        let canary = NextCanary {
            side: match running {
                Some(c) if same_content => Side::canary_of(c),
                _ => Side::New(body),
            },
            percent,
            salt: running.map_or_else(|| Canary::salt_for(&self.env, since), |c| c.salt.clone()),
            since,
        };
        let next = Next {
            stable: Side::stable_of(pointer),
            canary: Some(canary),
            action: Action::Canary,
            summary,
            flags: Vec::new(),
            provenance: provenance.clone(),
            message,
            rollback_to: None,
            rollouts: None,
        };
        self.publish_next(Some(&deployed.current), next)
            .await
            .map(Outcome::Published)
    }

    /// Makes the running canary the stable version, served to everyone.
    pub async fn promote(
        &self,
        author: &str,
        created_at: &str,
        message: Option<String>,
    ) -> Result<Outcome, PublishError> {
        self.end_canary(true, None, author, created_at, message)
            .await
    }

    /// [`Environment::promote`], only if the running canary still serves the flags with
    /// `content_hash` (those someone approved): [`PublishError::CanaryChanged`] otherwise. The
    /// check and the promotion are one conditional write, so a push to the canary in between
    /// cannot slip through.
    pub async fn promote_exactly(
        &self,
        content_hash: &str,
        author: &str,
        created_at: &str,
        message: Option<String>,
    ) -> Result<Outcome, PublishError> {
        self.end_canary(true, Some(content_hash), author, created_at, message)
            .await
    }

    /// Drops the running canary: the stable version serves everyone again.
    pub async fn abort(
        &self,
        author: &str,
        created_at: &str,
        message: Option<String>,
    ) -> Result<Outcome, PublishError> {
        self.end_canary(false, None, author, created_at, message)
            .await
    }

    async fn end_canary(
        &self,
        promote: bool,
        expected: Option<&str>,
        author: &str,
        created_at: &str,
        message: Option<String>,
    ) -> Result<Outcome, PublishError> {
        let action = if promote { "promote" } else { "abort" };
        let no_canary = || PublishError::NoCanary {
            env: self.env.clone(),
            action,
        };
        let deployed = self.settled_deployed(author).await?.ok_or_else(no_canary)?;
        let (Some(canary), Some(canary_blob)) =
            (&deployed.current.pointer.canary, &deployed.canary)
        else {
            return Err(no_canary());
        };
        if let Some(expected) = expected.filter(|e| *e != canary.blob_ref.content_hash) {
            return Err(PublishError::CanaryChanged {
                env: self.env.clone(),
                expected: expected.to_owned(),
                found: canary.blob_ref.content_hash.clone(),
            });
        }
        let stable = &deployed.stable;
        // What changes for users: for a promote, the stable users move to the canary's flags;
        // for an abort, the canary users move back.
        let (from, to, kept) = if promote {
            (stable, canary_blob, Side::canary_of(canary))
        } else {
            (
                canary_blob,
                stable,
                Side::stable_of(&deployed.current.pointer),
            )
        };
        let next = Next {
            stable: kept,
            canary: None,
            action: if promote {
                Action::Promote
            } else {
                Action::Abort
            },
            summary: diff::diff(&from.body, &to.body).summary(),
            flags: Vec::new(),
            provenance: Provenance {
                author: author.to_owned(),
                source_commit: to.header.source_commit.clone(),
                source_dirty: false,
                created_at: created_at.to_owned(),
            },
            message,
            rollback_to: None,
            rollouts: None,
        };
        self.publish_next(Some(&deployed.current), next)
            .await
            .map(Outcome::Published)
    }
}
