//! Pushing compiled flags: what a push would serve ([`as_pushed`], the one function previews,
//! drift and the push itself use), the dry-run plan, the push, and republishing the deployed
//! flags with new rollout stages.

use shared_eval::Body;

use flags_compile::blob_file::{self, Provenance};
use flags_compile::diff;

use super::{Deployed, Environment, Next, NextCanary, Outcome, Plan, PublishError, Side, rollout};
use crate::layout::{self, Action};

/// Keeps a kill in force across pushes: a flag killed in `deployed` stays killed in `next`
/// until someone runs `unkill`. An emergency stop must not be undone by an unrelated merge.
/// Returns the keys kept killed.
pub fn carry_kills(deployed: &Body, next: &mut Body) -> Vec<String> {
    let mut kept = Vec::new();
    for flag in &mut next.flags {
        let was_killed = deployed
            .flags
            .iter()
            .any(|old| old.key == flag.key && old.killed);
        if was_killed && !flag.killed {
            flag.killed = true;
            kept.push(flag.key.clone());
        }
    }
    kept
}

/// What a push of `body` publishes over `deployed` (running `running`): the deployed kills
/// kept ([`carry_kills`]) and every scheduled rule at its stage. A schedule already running
/// keeps its stage, status and since; a new one in `schedules` starts at stage 1; one no longer
/// there ends; `None` keeps the running ones as they are. Returns the body and the rollout
/// states; `drift` compares Git with the store through this same function.
pub fn as_pushed(
    deployed: &Body,
    running: &[layout::RolloutState],
    mut body: Body,
    schedules: Option<Vec<flags_compile::schedule::Schedule>>,
    now: &str,
) -> (Body, Vec<layout::RolloutState>) {
    carry_kills(deployed, &mut body);
    let rollouts = match schedules {
        None => running.to_vec(),
        Some(schedules) => rollout::merge(running, schedules, now),
    };
    rollout::stage(&mut body, &rollouts);
    (body, rollouts)
}

impl Environment {
    /// Compiled flags vs what is deployed: what `push --dry-run` and `diff` show. The new side
    /// is what the push would serve ([`as_pushed`]: kills kept, live rollout stages applied),
    /// so a preview never reports a change the push does not make.
    pub async fn plan(
        &self,
        body: Body,
        schedules: Option<Vec<flags_compile::schedule::Schedule>>,
    ) -> Result<Plan, PublishError> {
        let current = self.verified_current().await?;
        let (old, running) = match &current {
            Some(c) => (
                self.served_blob(&c.pointer.stable.blob, &c.pointer.stable.sha256)
                    .await?
                    .body,
                self.record(c.pointer.version)
                    .await?
                    .map(|r| r.rollouts)
                    .unwrap_or_default(),
            ),
            None => (Body::default(), Vec::new()),
        };
        let (served, _) = as_pushed(&old, &running, body, schedules, &blob_file::now_rfc3339());
        let refused = self
            .removals
            .check(&self.env, &old, &served)
            .err()
            .map(|e| e.to_string());
        Ok(Plan {
            current: current.map(|c| c.pointer.version),
            diff: diff::diff(&old, &served),
            deployed: old,
            served,
            refused,
        })
    }

    /// Publishes `body` as the next version (module docs). Returns [`Outcome::Unchanged`] without
    /// writing anything when the environment already serves exactly this body. Over a damaged
    /// pointer or blob it refuses ([`PublishError::CorruptPointer`], [`PublishError::CorruptBlob`]):
    /// a push carries the deployed kills and rollout stages, which only a sound deployment
    /// says; repair first (a rollback to the last good version, what `drift --fix` does).
    /// [`PublishError::TooManyRemovals`] when it would remove more deployed flags than the
    /// environment's [`super::RemovalPolicy`] allows.
    pub async fn push(
        &self,
        body: Body,
        provenance: &Provenance,
        message: Option<String>,
    ) -> Result<Outcome, PublishError> {
        self.push_scheduled(body, None, provenance, message).await
    }

    /// [`Environment::push`] with the flag files' rollout schedules (`compile::schedule::collect`):
    /// a schedule already running keeps its stage, status and since (as kills carry across
    /// pushes); a new one starts at stage 1; one no longer in the files ends. `None` carries the
    /// running schedules as they are.
    pub async fn push_scheduled(
        &self,
        body: Body,
        schedules: Option<Vec<flags_compile::schedule::Schedule>>,
        provenance: &Provenance,
        message: Option<String>,
    ) -> Result<Outcome, PublishError> {
        let current = self.settled_current(&provenance.author).await?;
        if let Some(canary) = current.as_ref().and_then(|c| c.pointer.canary.as_ref()) {
            return Err(PublishError::CanaryRunning {
                env: self.env.clone(),
                since: canary.since,
            });
        }
        let (previous, old_body) = match &current {
            Some(c) => (
                Some(c.pointer.version),
                self.served_blob(&c.pointer.stable.blob, &c.pointer.stable.sha256)
                    .await?
                    .body,
            ),
            None => (None, Body::default()),
        };
        let running = match previous {
            Some(v) => self
                .record(v)
                .await?
                .map(|r| r.rollouts)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let (body, rollouts) =
            as_pushed(&old_body, &running, body, schedules, &provenance.created_at);
        self.removals.check(&self.env, &old_body, &body)?;
        let summary = diff::diff(&old_body, &body).summary();
        let content_hash = shared_eval::content_hash(&body);
        if let (Some(c), Some(version)) = (&current, previous)
            && c.pointer.stable.content_hash == content_hash
            && rollouts == running
        {
            return Ok(Outcome::Unchanged { version });
        }
        self.publish_next(
            current.as_ref(),
            Next {
                stable: Side::New(body),
                canary: None,
                action: Action::Push,
                summary,
                flags: Vec::new(),
                provenance: provenance.clone(),
                message,
                rollback_to: None,
                rollouts: Some(rollouts),
            },
        )
        .await
        .map(Outcome::Published)
    }

    /// Publishes the deployed flags again with new rollout states (their stages applied by
    /// [`Environment::publish_next`]): what rollout ticks and resumes do. `source` is the
    /// deployed version's record, whose commit (and dirtiness) the new version keeps.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn republish(
        &self,
        deployed: &Deployed,
        source: &layout::VersionRecord,
        rollouts: Vec<layout::RolloutState>,
        action: Action,
        flags: Vec<String>,
        author: &str,
        created_at: &str,
        message: String,
    ) -> Result<Outcome, PublishError> {
        let mut body = deployed.stable.body.clone();
        rollout::stage(&mut body, &rollouts);
        let summary = diff::diff(&deployed.stable.body, &body).summary();
        let pointer = &deployed.current.pointer;
        let next = Next {
            stable: Side::New(body),
            canary: pointer.canary.as_ref().map(|c| NextCanary {
                side: Side::canary_of(c),
                percent: c.percent,
                salt: c.salt.clone(),
                since: c.since,
            }),
            action,
            summary,
            flags,
            provenance: Provenance {
                author: author.to_owned(),
                source_commit: source.source_commit.clone(),
                source_dirty: source.source_dirty,
                created_at: created_at.to_owned(),
            },
            message: Some(message),
            rollback_to: None,
            rollouts: Some(rollouts),
        };
        self.publish_next(Some(&deployed.current), next)
            .await
            .map(Outcome::Published)
    }
}
