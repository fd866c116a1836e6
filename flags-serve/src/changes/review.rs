//! A change's life after its edits: opened empty (`POST /api/v1/changes`), approved by
//! others, merged into the branch (fast-forward, or its commits replayed onto a branch that
//! moved; `conflicted` with the files named when they do not apply), published to the
//! `auto_publish` environments, or closed. Each step is a conditional write of the change's
//! record, so two replicas racing to merge one change merge (and publish) it once.

use serde::Serialize;
use serde_json::{Value, json};

use flags_compile::blob_file::Provenance;

use super::git::Rebased;
use super::record::{Approval, Change, Claim, Event, Merged, Stored};
use super::write::short;
use super::{Changes, altered, effects, environments, errors, person, require_on};
use crate::AppState;
use crate::actions::{Actor, now};
use crate::approvals::Proposal;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::notify::Event as Notice;
use crate::tokens::Role;

/// How long a merge claimed by a replica blocks others (a replica that died mid-merge).
const CLAIM_SECONDS: i64 = 600;

/// What a merge did.
#[derive(Debug, Serialize)]
pub struct MergeOutcome {
    /// The change, merged.
    pub change: Change,
    /// The branch's new commit.
    pub commit: String,
    /// Whether its commits were replayed onto a moved branch.
    pub rebased: bool,
    /// Per `auto_publish` environment: the publish answer, or why it failed.
    pub published: serde_json::Map<String, Value>,
}

/// Who reviews a change and what it needs.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// Environments whose behaviour the change alters.
    pub alters: Vec<String>,
    /// Its commits' author names (token names, or OIDC identities' `name` claims).
    pub authors: Vec<String>,
    /// Everyone its commits' authors may be acting as, who cannot approve it: each author's
    /// name, e-mail, and for the `<name>@flags.invalid` e-mail of a token without one, that
    /// name (an OIDC identity acts under its e-mail but authors under its `name` claim).
    #[serde(skip)]
    pub identities: Vec<String>,
    /// Approvals its environments' policies require (the largest).
    pub needed: usize,
    /// Approvals of its current head by non-authors.
    pub given: Vec<Approval>,
}

impl Review {
    /// Enough approvals to merge.
    pub fn approved(&self) -> bool {
        self.given.len() >= self.needed
    }
}

impl Changes {
    /// Opens an empty change on the branch's current commit.
    pub async fn open_change(
        &self,
        state: &AppState,
        caller: &Caller,
        title: String,
        description: String,
    ) -> Result<Change, ApiError> {
        require_on(state, caller, &[], Role::Edit)?;
        if title.trim().is_empty() {
            return Err(ApiError::BadRequest("a change needs a title".into()));
        }
        self.fetch().await?;
        let base = self.main().await?;
        let change = self
            .records
            .create(|id| Change::open(id, &title, &description, &caller.token.name, &base))
            .await?;
        if !self.repo.push(&base, &change.branch, Some("")).await? {
            return Err(ApiError::Conflict(format!(
                "the remote already has a branch {}",
                change.branch
            )));
        }
        Ok(change)
    }

    /// What `change` alters, who wrote it and the approvals it has and needs.
    pub async fn review(&self, state: &AppState, change: &Change) -> Result<Review, ApiError> {
        let envs = environments(state);
        let before = self.compile(&change.base, &[], &envs).await?;
        let after = self.compile(&change.head, &[], &envs).await?;
        let alters = altered(&effects(&before, &after));
        let commits = self.repo.commits(&change.base, &change.head).await?;
        let mut authors: Vec<String> = commits.iter().map(|c| c.author.clone()).collect();
        authors.sort();
        authors.dedup();
        let mut identities: Vec<String> = commits
            .into_iter()
            .flat_map(|c| {
                let token = c.email.strip_suffix("@flags.invalid").map(str::to_owned);
                [Some(c.author), token, Some(c.email)]
            })
            .flatten()
            .collect();
        identities.sort();
        identities.dedup();
        let needed = alters
            .iter()
            .filter_map(|env| state.config.environment(env)?.approval.as_ref())
            .map(|a| a.approvals)
            .max()
            .unwrap_or(0);
        let given = change
            .current_approvals()
            .filter(|a| !identities.contains(&a.by))
            .cloned()
            .collect();
        Ok(Review {
            alters,
            authors,
            identities,
            needed,
            given,
        })
    }

    /// Approves change `id`'s current head as `caller`.
    pub async fn approve(
        &self,
        state: &AppState,
        caller: &Caller,
        id: u64,
    ) -> Result<(Change, Review), ApiError> {
        let change = open(self.records.get(id).await?)?;
        if change.head == change.base {
            return Err(ApiError::Conflict(format!(
                "change {id} has no commits: nothing to approve"
            )));
        }
        let review = self.review(state, &change).await?;
        let name = &caller.token.name;
        if review.identities.contains(name) || review.identities.contains(&person(caller).email) {
            return Err(ApiError::Denied(format!(
                "{name} wrote a commit of change {id} and cannot approve it: another token with `approve` must"
            )));
        }
        require_on(state, caller, &review.alters, Role::Approve)?;
        let head = change.head.clone();
        let (change, ()) = self
            .records
            .update(id, |c| {
                if c.head != head {
                    return Err(ApiError::Conflict(format!(
                        "change {id} got a new commit while you approved: review it again"
                    )));
                }
                if !c.current_approvals().any(|a| &a.by == name) {
                    c.approvals.push(Approval {
                        by: name.clone(),
                        at: now(),
                        head: head.clone(),
                    });
                    c.events
                        .push(Event::new(name, &format!("approved {}", short(&head))));
                    c.updated_at = now();
                }
                Ok(())
            })
            .await?;
        let review = self.review(state, &change).await?;
        tracing::info!(change = id, token = %name, "change approved");
        state.notify.emit(Notice::change_approved(
            id,
            &change.title,
            name,
            review.given.len(),
            review.needed,
        ));
        Ok((change, review))
    }

    /// Closes change `id` without merging.
    pub async fn close(
        &self,
        state: &AppState,
        caller: &Caller,
        id: u64,
    ) -> Result<Change, ApiError> {
        require_on(state, caller, &[], Role::Edit)?;
        let name = caller.token.name.clone();
        let (change, ()) = self
            .records
            .update(id, |c| {
                open_ref(c)?;
                c.state = Stored::Closed;
                c.closed = Some(Claim {
                    by: name.clone(),
                    at: now(),
                });
                c.events.push(Event::new(&name, "closed"));
                c.updated_at = now();
                Ok(())
            })
            .await?;
        if let Err(e) = self.repo.delete_branch(&change.branch).await {
            tracing::warn!(change = id, error = %e, "closed, but its branch could not be deleted");
        }
        Ok(change)
    }

    /// Merges change `id` as `caller`, then publishes the result to the `auto_publish`
    /// environments.
    pub async fn merge(
        &self,
        state: &AppState,
        caller: &Caller,
        id: u64,
    ) -> Result<MergeOutcome, ApiError> {
        let change = open(self.records.get(id).await?)?;
        if change.head == change.base {
            return Err(ApiError::Conflict(format!(
                "change {id} has no commits: nothing to merge"
            )));
        }
        let review = self.review(state, &change).await?;
        require_on(state, caller, &review.alters, Role::Publish)?;
        if !review.approved() {
            return Err(ApiError::Conflict(format!(
                "change {id} needs {} approval(s) of its current commit and has {} (it alters {})",
                review.needed,
                review.given.len(),
                review.alters.join(", ")
            )));
        }
        let name = caller.token.name.clone();
        let head = change.head.clone();
        // Claim the merge: of two replicas (or two clicks) only one goes on.
        self.records
            .update(id, |c| {
                open_ref(c)?;
                if c.head != head {
                    return Err(ApiError::Conflict(format!(
                        "change {id} got a new commit meanwhile: review it again"
                    )));
                }
                if let Some(claim) = &c.merging
                    && !claim_expired(claim)
                {
                    return Err(ApiError::Conflict(format!(
                        "change {id} is being merged by {} (since {})",
                        claim.by, claim.at
                    )));
                }
                c.merging = Some(Claim {
                    by: name.clone(),
                    at: now(),
                });
                Ok(())
            })
            .await?;
        let merged = self.merge_claimed(state, caller, &change).await;
        match merged {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                let release = self
                    .records
                    .update(id, |c| {
                        c.merging = None;
                        Ok(())
                    })
                    .await;
                if let Err(release) = release {
                    tracing::error!(change = id, error = %release, "could not release the merge claim");
                }
                Err(e)
            }
        }
    }

    async fn merge_claimed(
        &self,
        state: &AppState,
        caller: &Caller,
        change: &Change,
    ) -> Result<MergeOutcome, ApiError> {
        let id = change.id;
        let mut attempts = 0;
        let (commit, rebased) = loop {
            attempts += 1;
            self.fetch().await?;
            let main = self.main().await?;
            let (commit, rebased) = if self.repo.is_ancestor(&main, &change.head).await? {
                (change.head.clone(), false)
            } else {
                match self.repo.rebase(&change.base, &change.head, &main).await? {
                    Rebased::Applied(commit) => (commit, true),
                    Rebased::Conflicted(files) => {
                        return Err(ApiError::Conflict(format!(
                            "change {id} is conflicted: {} changed on {} since the change began; update the change (or close it and start again)",
                            files.join(", "),
                            self.repo.branch
                        )));
                    }
                }
            };
            if rebased {
                let compiled = self.compile(&commit, &[], &environments(state)).await?;
                errors(&compiled)?;
            }
            if self
                .repo
                .push(&commit, &self.repo.branch.clone(), None)
                .await?
            {
                break (commit, rebased);
            }
            if attempts >= 3 {
                return Err(ApiError::Conflict(format!(
                    "{} keeps moving under the merge; retry",
                    self.repo.branch
                )));
            }
        };
        let name = caller.token.name.clone();
        let (change, ()) = self
            .records
            .update(id, |c| {
                c.state = Stored::Merged;
                c.merging = None;
                c.merged = Some(Merged {
                    commit: commit.clone(),
                    by: name.clone(),
                    at: now(),
                    rebased,
                });
                c.events.push(Event::new(
                    &name,
                    &format!(
                        "merged as {}{}",
                        short(&commit),
                        if rebased { " (rebased)" } else { "" }
                    ),
                ));
                c.updated_at = now();
                Ok(())
            })
            .await?;
        tracing::info!(change = id, token = %name, commit = %commit, rebased, "change merged");
        state
            .notify
            .emit(Notice::change_merged(id, &change.title, &name, &commit));
        if let Err(e) = self.fetch().await {
            tracing::warn!(error = %e, "fetch after merge failed");
        }
        if let Err(e) = self.repo.delete_branch(&change.branch).await {
            tracing::warn!(change = id, error = %e, "merged, but its branch could not be deleted");
        }
        {
            let _exclusive = state.checkout.write().await;
            if let Err(e) = self.repo.checkout(&commit).await {
                tracing::warn!(error = %e, "merged, but the service's checkout could not follow");
            }
        }
        let published = self.publish_merged(state, caller, &change, &commit).await;
        Ok(MergeOutcome {
            change,
            commit,
            rebased,
            published,
        })
    }

    /// Publishes the merged commit to every `auto_publish` environment, through the one
    /// publish path; the change's approvals stand for the environments' approval.
    async fn publish_merged(
        &self,
        state: &AppState,
        caller: &Caller,
        change: &Change,
        commit: &str,
    ) -> serde_json::Map<String, Value> {
        let mut published = serde_json::Map::new();
        let envs = state.config.auto_publish();
        if envs.is_empty() {
            return published;
        }
        let compiled = match self.compile(commit, &[], &envs).await {
            Ok(compiled) => compiled,
            Err(e) => {
                for env in envs {
                    published.insert(env, json!({ "error": e.to_string() }));
                }
                return published;
            }
        };
        let actor = Actor {
            name: caller.token.name.clone(),
            client: caller.client.clone(),
        };
        for (env, result) in compiled {
            let answer = match result.as_ref() {
                Err(_) => json!({ "error": "does not compile" }),
                Ok(compiled) => {
                    let proposal = Proposal::Push {
                        body: compiled.body.clone(),
                        schedules: compiled.schedules.clone(),
                        provenance: Provenance {
                            author: caller.token.name.clone(),
                            source_commit: Some(commit.to_owned()),
                            source_dirty: false,
                            created_at: now(),
                        },
                        allow_removals: false,
                    };
                    let message = format!("change {}: {}", change.id, change.title);
                    match crate::routes::publishing::publish(
                        state,
                        &env,
                        &actor,
                        proposal,
                        Some(message),
                    )
                    .await
                    {
                        Ok(answer) => answer,
                        Err(e) => json!({ "error": e.to_string() }),
                    }
                }
            };
            published.insert(env, answer);
        }
        published
    }
}

fn open(change: Change) -> Result<Change, ApiError> {
    open_ref(&change)?;
    Ok(change)
}

fn open_ref(change: &Change) -> Result<(), ApiError> {
    match change.state {
        Stored::Open => Ok(()),
        Stored::Merged => Err(ApiError::Conflict(format!(
            "change {} is already merged",
            change.id
        ))),
        Stored::Closed => Err(ApiError::Conflict(format!(
            "change {} is closed",
            change.id
        ))),
    }
}

fn claim_expired(claim: &Claim) -> bool {
    chrono::DateTime::parse_from_rfc3339(&claim.at)
        .map(|at| {
            (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_seconds() > CLAIM_SECONDS
        })
        .unwrap_or(true)
}
