//! `kill` / `unkill`: the deployed body with flags' `killed` bit changed, as a new version
//! through the one publish step.

use shared_eval::Body;

use super::{Environment, KillTarget, Next, NextCanary, Outcome, PublishError, Side};
use crate::layout::Action;
use flags_compile::blob_file::Provenance;
use flags_compile::diff;
use flags_compile::suggest::closest;

impl Environment {
    /// Kills (`kill = true`) or revives the `target` flags: publishes the deployed body with
    /// their `killed` bit changed, as a new version. Starts from what is deployed, not from
    /// files, so it works without the Git checkout. During a canary both blobs change, so no
    /// user escapes a kill. [`Outcome::Unchanged`] if every targeted flag already is in that
    /// state.
    pub async fn set_killed(
        &self,
        target: &KillTarget,
        kill: bool,
        author: &str,
        created_at: &str,
        reason: Option<String>,
    ) -> Result<Outcome, PublishError> {
        let Some(deployed) = self.settled_deployed(author).await? else {
            return Err(PublishError::NothingPublished {
                env: self.env.clone(),
            });
        };
        if let KillTarget::Flags(keys) = target {
            let has = |body: &Body, key: &String| body.flags.iter().any(|f| &f.key == key);
            let unknown: Vec<String> = keys
                .iter()
                .filter(|k| {
                    !has(&deployed.stable.body, k)
                        && !deployed.canary.as_ref().is_some_and(|c| has(&c.body, k))
                })
                .cloned()
                .collect();
            if !unknown.is_empty() {
                let deployed_keys = || {
                    deployed
                        .stable
                        .body
                        .flags
                        .iter()
                        .chain(deployed.canary.iter().flat_map(|c| &c.body.flags))
                        .map(|f| f.key.as_str())
                };
                let did_you_mean = unknown
                    .iter()
                    .map(|k| closest(k, deployed_keys()).map(str::to_owned))
                    .collect();
                return Err(PublishError::UnknownFlags {
                    env: self.env.clone(),
                    keys: unknown,
                    did_you_mean,
                });
            }
        }
        let apply = |body: &Body| {
            let mut body = body.clone();
            let mut changed = Vec::new();
            for flag in &mut body.flags {
                let targeted = match target {
                    KillTarget::All => true,
                    KillTarget::Flags(keys) => keys.contains(&flag.key),
                };
                if targeted && flag.killed != kill {
                    flag.killed = kill;
                    changed.push(flag.key.clone());
                }
            }
            (body, changed)
        };
        let (stable_body, mut changed) = apply(&deployed.stable.body);
        let stable_changed = !changed.is_empty();
        let canary = deployed.canary.as_ref().map(|c| apply(&c.body));
        if let Some((_, canary_changed)) = &canary {
            for key in canary_changed {
                if !changed.contains(key) {
                    changed.push(key.clone());
                }
            }
        }
        if changed.is_empty() {
            return Ok(Outcome::Unchanged {
                version: deployed.current.pointer.version,
            });
        }
        let summary = diff::diff(&deployed.stable.body, &stable_body).summary();
        let pointer = &deployed.current.pointer;
        let record = self.record(pointer.version).await?;
        // The flags' source did not change: keep the deployed version's commit (and whether it
        // was pushed from uncommitted files).
        let provenance = Provenance {
            author: author.to_owned(),
            source_commit: deployed.stable.header.source_commit.clone(),
            source_dirty: record.as_ref().is_some_and(|r| r.source_dirty),
            created_at: created_at.to_owned(),
        };
        let next_canary = match (&pointer.canary, canary) {
            (Some(c), Some((body, canary_changed))) => Some(NextCanary {
                side: if canary_changed.is_empty() {
                    Side::canary_of(c)
                } else {
                    Side::New(body)
                },
                percent: c.percent,
                salt: c.salt.clone(),
                since: c.since,
            }),
            _ => None,
        };
        let action = if kill { Action::Kill } else { Action::Unkill };
        self.publish_next(
            Some(&deployed.current),
            Next {
                stable: if stable_changed {
                    Side::New(stable_body)
                } else {
                    Side::stable_of(pointer)
                },
                canary: next_canary,
                action,
                summary,
                flags: changed,
                provenance,
                message: reason,
                rollback_to: None,
                rollouts: record.map(|r| r.rollouts),
            },
        )
        .await
        .map(Outcome::Published)
    }
}
