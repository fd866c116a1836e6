//! A change as the API shows it: its record, plus what is worked out from Git and the
//! compiler each time it is read: its commits, the unified YAML diff, per environment the
//! semantic diff and lints, the approvals needed and given, and its state (`approved` once it
//! has enough approvals, `conflicted` when its commits no longer apply to the branch).

use serde_json::{Value, json};

use super::git::Rebased;
use super::record::{Change, Stored};
use super::review::Review;
use super::write::warnings;
use super::{Changes, effects, environments};
use crate::AppState;
use crate::error::{ApiError, diagnostic_json};

/// How much of a change to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// The list's: record, state and review.
    Summary,
    /// Also commits, diffs and lints.
    Full,
}

impl Changes {
    /// `change` as JSON.
    pub async fn view(
        &self,
        state: &AppState,
        change: &Change,
        detail: Detail,
    ) -> Result<Value, ApiError> {
        let mut body =
            serde_json::to_value(change).map_err(|e| ApiError::Internal(e.to_string()))?;
        let review = if change.head == change.base {
            Review {
                alters: Vec::new(),
                authors: Vec::new(),
                identities: Vec::new(),
                needed: 0,
                given: Vec::new(),
            }
        } else {
            self.review(state, change).await?
        };
        let mut conflicts = Vec::new();
        let state_name = match change.state {
            Stored::Merged => "merged",
            Stored::Closed => "closed",
            Stored::Open => {
                let main = self.main().await?;
                if !self.repo.is_ancestor(&main, &change.head).await?
                    && let Rebased::Conflicted(files) =
                        self.repo.rebase(&change.base, &change.head, &main).await?
                {
                    conflicts = files;
                }
                if !conflicts.is_empty() {
                    "conflicted"
                } else if change.head != change.base && review.approved() {
                    "approved"
                } else {
                    "open"
                }
            }
        };
        body["state"] = json!(state_name);
        body["conflicts"] = json!(conflicts);
        body["approvals"] = json!({
            "needed": review.needed,
            "given": review.given,
            "authors": review.authors,
            "history": change.approvals,
        });
        body["alters"] = json!(review.alters);
        if detail == Detail::Full {
            let commits = self.repo.commits(&change.base, &change.head).await?;
            body["commits"] = json!(commits);
            body["diff"] = json!(self.repo.diff(&change.base, &change.head).await?);
            let envs = environments(state);
            let before = self.compile(&change.base, &[], &envs).await?;
            let after = self.compile(&change.head, &[], &envs).await?;
            let effects = effects(&before, &after);
            let mut per_env = serde_json::Map::new();
            for (env, result) in &after {
                let diff = effects.get(env).cloned().flatten();
                per_env.insert(
                    env.clone(),
                    json!({
                        "alters": diff.as_ref().is_none_or(|d| !d.is_empty()),
                        "summary": diff.as_ref().map(|d| d.summary()),
                        "flags": diff.as_ref().map(|d| d.flags.clone()).unwrap_or_default(),
                        "valid": result.is_ok(),
                        "errors": result.as_ref().as_ref().err().map(|ds| ds.iter().map(diagnostic_json).collect::<Vec<_>>()).unwrap_or_default(),
                    }),
                );
            }
            body["environments"] = Value::Object(per_env);
            body["impact"] = self.impact(state, &after, &review.alters).await;
            body["lints"] = json!(warnings(&after));
        }
        Ok(body)
    }
}
