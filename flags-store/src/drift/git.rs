//! The Git layer: the flags directory compiled for the environment (by `compile_path`, the
//! entry point `push` uses), and its comparison with what the store serves.
//!
//! # Ahead or behind
//!
//! Every version records the commit it was built from (`source_commit`). With the checkout's
//! `HEAD` as H and the served version's commit as S:
//! - S = H: a clean checkout compiling to other flags (or uncommitted edits) is **ahead**;
//! - S is an ancestor of H (`git merge-base --is-ancestor S H`): **ahead**;
//! - H is an ancestor of S: **behind** (someone published newer commits than this checkout);
//! - neither: **diverged**; S unknown to this clone, or no commit recorded: **unknown**.
//!
//! Only "ahead" is fixed by publishing from Git; the others would move the store back to an
//! older or unrelated state and need `--allow-older`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use shared_eval::Body;

use super::store::Inspection;
use super::{FIX_MESSAGE_PREFIX, Finding, FindingKind, Layer};
use crate::layout::{Action, ChangeSummary, RolloutState};
use crate::publish::as_pushed;
use flags_compile::diff::{self, FlagDiff};
use flags_compile::schedule::Schedule;
use flags_compile::{CompileOptions, compile_path};

/// The Git layer as reported.
#[derive(Debug, Clone, Serialize)]
pub struct GitLayer {
    /// The flags directory.
    pub dir: PathBuf,
    /// `HEAD` of the repository holding it, if it is in one.
    pub commit: Option<String>,
    /// Whether the directory has uncommitted changes.
    pub dirty: bool,
    /// The compiled body's content hash.
    pub content_hash: String,
    /// Flags compiled for the environment.
    pub flags: usize,
    /// The compiled body (not reported).
    #[serde(skip)]
    pub body: Body,
    /// The rollout schedules in the files, as `push` collects them (not reported).
    #[serde(skip)]
    pub schedules: Option<Vec<Schedule>>,
}

/// How the checkout's commit relates to the served version's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// Same commit (with other content, or uncommitted edits).
    Same,
    /// The store's commit is an ancestor of the checkout's.
    Ahead,
    /// The checkout's commit is an ancestor of the store's.
    Behind,
    /// Neither is an ancestor of the other.
    Diverged,
    /// No commit on one side, or the store's commit is not in this clone.
    Unknown,
}

/// A side of what the store serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The stable version.
    Stable,
    /// The canary beside it.
    Canary,
}

/// Git compared with the store.
#[derive(Debug, Clone, Serialize)]
pub struct GitVsStore {
    /// Whether the store serves exactly what Git compiles to (kills kept by the store aside).
    pub in_sync: bool,
    /// Which side Git matches, when in sync: `canary` while a canary runs Git's flags.
    pub matches: Option<Side>,
    /// How the commits relate, when the content differs.
    pub relation: Option<Relation>,
    /// The checkout's commit.
    pub git_commit: Option<String>,
    /// The served version's commit.
    pub store_commit: Option<String>,
    /// The served version.
    pub store_version: Option<u64>,
    /// Flags killed in the store that Git does not kill: kept across pushes, not drift.
    pub killed_in_store: Vec<String>,
    /// What publishing from Git would change (store -> Git), flag by flag.
    pub summary: ChangeSummary,
    /// Flag- and rule-level differences (store -> Git).
    pub flags: Vec<FlagDiff>,
}

impl GitVsStore {
    /// The finding, if Git and the store differ.
    pub fn finding(&self, store: &Inspection) -> Option<Finding> {
        // A broken store is the store's own finding (fixed by republishing the last good
        // version); Git is compared again once it is repaired.
        if self.in_sync || store.is_broken() {
            return None;
        }
        let short = |c: &Option<String>| {
            c.as_deref().map_or("no commit".to_owned(), |c| {
                c.get(..7).unwrap_or(c).to_owned()
            })
        };
        let what = self.summary.one_line();
        let (kind, message, fix) = if store.pointer.is_none() {
            (
                FindingKind::StoreEmpty,
                format!("nothing is published; Git has {what}"),
                Some("publish from Git".to_owned()),
            )
        } else if store.record.as_ref().is_some_and(|r| {
            r.action == Action::Rollback
                && !r
                    .message
                    .as_deref()
                    .is_some_and(|m| m.starts_with(FIX_MESSAGE_PREFIX))
        }) {
            (
                FindingKind::StoreRolledBack,
                format!(
                    "the store serves a rollback (version {}) that Git does not reflect: {what}",
                    self.store_version.unwrap_or_default()
                ),
                None,
            )
        } else {
            let relation = self.relation.unwrap_or(Relation::Unknown);
            let (git, store) = (short(&self.git_commit), short(&self.store_commit));
            match relation {
                Relation::Same | Relation::Ahead => (
                    FindingKind::GitAhead,
                    format!(
                        "Git ({git}) is ahead of the store (version {}, {store}): {what}",
                        self.store_version.unwrap_or_default()
                    ),
                    Some("publish from Git".to_owned()),
                ),
                Relation::Behind => (
                    FindingKind::GitBehind,
                    format!(
                        "Git ({git}) is behind the store (version {}, {store}): publishing it would undo {what}",
                        self.store_version.unwrap_or_default()
                    ),
                    None,
                ),
                Relation::Diverged => (
                    FindingKind::GitDiverged,
                    format!(
                        "Git ({git}) and the store (version {}, {store}) are on diverged commits: {what}",
                        self.store_version.unwrap_or_default()
                    ),
                    None,
                ),
                Relation::Unknown => (
                    FindingKind::GitUnordered,
                    format!(
                        "Git ({git}) and the store (version {}, {store}) differ and their order is unknown: {what}",
                        self.store_version.unwrap_or_default()
                    ),
                    None,
                ),
            }
        };
        // `push` refuses to replace a running canary: promoting or aborting it is a decision.
        let (message, fix) = match store.pointer.as_ref().and_then(|p| p.canary.as_ref()) {
            Some(c) if fix.is_some() => (
                format!(
                    "{message}; a canary (since version {}, {}% of users) is running: promote or abort it, then push",
                    c.since, c.percent
                ),
                None,
            ),
            _ => (message, fix),
        };
        // "Nothing published" is the store's shortfall; every other case is Git's difference.
        let (layer, against) = if kind == FindingKind::StoreEmpty {
            (Layer::Store, Layer::Git)
        } else {
            (Layer::Git, Layer::Store)
        };
        Some(Finding {
            layer,
            against,
            kind,
            target: None,
            message,
            fix,
        })
    }
}

/// Compiles `dir` for `env` and reads its commit. `Err` when it does not compile.
pub async fn read(dir: &Path, env: &str) -> Result<GitLayer, String> {
    let compiled = compile_path(dir, &CompileOptions::new(env)).map_err(|diags| {
        let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
        format!("the flags do not compile:\n{}", lines.join("\n"))
    })?;
    let repo = if dir.is_dir() {
        dir
    } else {
        dir.parent().unwrap_or(Path::new("."))
    };
    let commit = git(repo, &["rev-parse", "HEAD"]).await.ok();
    let dirty = commit.is_some()
        && git(repo, &["status", "--porcelain", "--", "."])
            .await
            .is_ok_and(|out| !out.is_empty());
    Ok(GitLayer {
        dir: dir.to_path_buf(),
        commit,
        dirty,
        content_hash: shared_eval::content_hash(&compiled.body),
        flags: compiled.body.flags.len(),
        body: compiled.body,
        schedules: compiled.schedules,
    })
}

/// What publishing Git would serve over `served`: the same [`as_pushed`] as `push`, so the
/// store's kills and rollout stages (operational state, not in the files) are not drift.
pub fn pushed_over(git: &GitLayer, served: &Body, running: &[RolloutState]) -> Body {
    as_pushed(
        served,
        running,
        git.body.clone(),
        git.schedules.clone(),
        &flags_compile::blob_file::now_rfc3339(),
    )
    .0
}

/// Compares the compiled checkout with the served blob. During a canary Git is in sync when
/// it is what either side serves: usually the canary is Git's newest flags on trial.
pub async fn compare(git: &GitLayer, store: &Inspection) -> GitVsStore {
    let empty = Body::default();
    let served = store.body.as_ref().unwrap_or(&empty);
    let running = store
        .record
        .as_ref()
        .map_or(&[][..], |r| r.rollouts.as_slice());
    let pushed = pushed_over(git, served, running);
    let killed_in_store = killed_only_in(served, &git.body);
    let pushed_hash = shared_eval::content_hash(&pushed);
    let matches_stable = store.body.is_some()
        && store
            .pointer
            .as_ref()
            .is_some_and(|p| p.stable.content_hash == pushed_hash);
    let canary = store.pointer.as_ref().and_then(|p| p.canary.as_ref());
    let over_canary = store
        .canary_body
        .as_ref()
        .map(|body| pushed_over(git, body, running));
    let matches_canary = match (canary, &over_canary) {
        (Some(c), Some(body)) => c.blob_ref.content_hash == shared_eval::content_hash(body),
        _ => false,
    };
    let matches = if matches_canary {
        Some(Side::Canary)
    } else if matches_stable {
        Some(Side::Stable)
    } else {
        None
    };
    let in_sync = matches.is_some();
    let difference = match (&store.canary_body, &over_canary) {
        (Some(canary), Some(pushed)) if !matches_stable => diff::diff(canary, pushed),
        _ => diff::diff(served, &pushed),
    };
    let relation = if in_sync {
        None
    } else {
        Some(relation(git, store.layer.source_commit.as_deref()).await)
    };
    GitVsStore {
        in_sync,
        matches,
        relation,
        git_commit: git.commit.clone(),
        store_commit: store.layer.source_commit.clone(),
        store_version: store.layer.version,
        killed_in_store,
        summary: difference.summary(),
        flags: difference.flags,
    }
}

/// Flags killed in `served` that `files` does not kill: kept across pushes, not drift.
fn killed_only_in(served: &Body, files: &Body) -> Vec<String> {
    files
        .flags
        .iter()
        .filter(|f| !f.killed && served.flags.iter().any(|s| s.key == f.key && s.killed))
        .map(|f| f.key.clone())
        .collect()
}

async fn relation(git: &GitLayer, store_commit: Option<&str>) -> Relation {
    let (Some(head), Some(stored)) = (git.commit.as_deref(), store_commit) else {
        return Relation::Unknown;
    };
    if head == stored {
        return Relation::Same;
    }
    let repo = if git.dir.is_dir() {
        git.dir.as_path()
    } else {
        git.dir.parent().unwrap_or(Path::new("."))
    };
    // Exit 0: ancestor; 1: not; anything else (unknown commit): cannot tell.
    let is_ancestor = |a: &str, b: &str| {
        let (a, b) = (a.to_owned(), b.to_owned());
        async move {
            tokio::process::Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(["merge-base", "--is-ancestor", &a, &b])
                .output()
                .await
                .ok()
                .and_then(|o| o.status.code())
        }
    };
    match is_ancestor(stored, head).await {
        Some(0) => Relation::Ahead,
        Some(1) => match is_ancestor(head, stored).await {
            Some(0) => Relation::Behind,
            Some(1) => Relation::Diverged,
            _ => Relation::Unknown,
        },
        _ => Relation::Unknown,
    }
}

async fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
