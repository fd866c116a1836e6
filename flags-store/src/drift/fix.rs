//! `--fix`: reconcile the layers, store first (nothing else can be right while the served blob
//! is broken), then Git -> store, then the edges; then check again.
//!
//! Every publish goes through [`Environment::rollback`] or [`Environment::push`], the same
//! publish step as the commands of those names (conditional writes, version record, audit
//! entry), with a message starting with [`FIX_MESSAGE_PREFIX`] saying what differed.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::edge::{self, EdgeState};
use super::{CheckOptions, DriftReport, FIX_MESSAGE_PREFIX, FindingKind, SCHEMA, Status, check};
use super::{git, store};
use crate::publish::{Environment, Outcome};
use crate::purge::{PurgeReport, Purger};
use flags_compile::blob_file::{Provenance, now_rfc3339};

/// How to fix.
#[derive(Debug, Clone)]
pub struct FixOptions {
    /// What to check (before, while converging, and after).
    pub check: CheckOptions,
    /// Publish from a Git checkout that is behind (or not ordered with) the store.
    pub allow_older: bool,
    /// Publishing to the environment needs someone's approval (`publisher serve`): the Git
    /// checkout is not published, and the step is reported as skipped (push to propose it).
    pub publish_needs_approval: bool,
    /// Recorded as the author of published versions and of the audit entry.
    pub author: String,
    /// The CDN purge (`--purge`): when set, one purge of the environment replaces purging
    /// each edge endpoint.
    pub purger: Purger,
    /// Bearer token for each edge's `/_flags/purge` (`FLAGS_PURGE_TOKEN`), used when `purger`
    /// is disabled.
    pub edge_purge_token: Option<String>,
    /// How long to wait for purged edges to converge.
    pub converge_timeout: Duration,
}

/// What a fix step was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FixKind {
    /// Republished the last good version (a rollback) over a broken pointer or blob.
    RepublishLastGood,
    /// Published the Git checkout (a push).
    PublishFromGit,
    /// Purged the CDN by cache tag.
    PurgeCdn,
    /// Purged one edge through its `/_flags/purge`.
    PurgeEdge,
    /// Waited for the edges to converge.
    Converge,
    /// A finding `--fix` does not act on.
    Skipped,
}

/// One step of a fix.
#[derive(Debug, Clone, Serialize)]
pub struct FixAction {
    /// What.
    pub kind: FixKind,
    /// The edge, for edge steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The version published, for publish steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Whether it worked.
    pub ok: bool,
    /// One line.
    pub detail: String,
}

impl FixAction {
    /// One line for people and the audit trail.
    pub fn describe(&self) -> String {
        let outcome = if self.ok { "" } else { " (FAILED)" };
        format!("{}{outcome}", self.detail)
    }
}

/// What `--fix` did.
#[derive(Debug, Clone, Serialize)]
pub struct FixReport {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The environment.
    pub env: String,
    /// The check before fixing.
    pub before: DriftReport,
    /// What was done, in order.
    pub actions: Vec<FixAction>,
    /// The check after fixing: its status is the fix's verdict.
    pub after: DriftReport,
}

impl FixReport {
    /// The process exit code: the after-check's.
    pub fn exit_code(&self) -> u8 {
        self.after.exit_code()
    }
}

fn message(what: &str) -> Option<String> {
    Some(format!("{FIX_MESSAGE_PREFIX}: {what}"))
}

/// Checks, reconciles what can be reconciled, and checks again.
pub async fn fix(env: &Environment, options: &FixOptions) -> FixReport {
    let before = check(env, &options.check).await;
    let mut actions = Vec::new();
    let store_readable = before.store.is_some();
    let mut published = false;

    if store_readable {
        published |= repair_store(env, options, &mut actions).await;
        if let Some(dir) = &options.check.flags_dir {
            published |= publish_from_git(env, options, dir, &mut actions).await;
        }
    }
    for finding in &before.findings {
        if finding.fix.is_none() && !(options.allow_older && is_older(finding.kind)) {
            actions.push(FixAction {
                kind: FixKind::Skipped,
                target: finding.target.clone(),
                version: None,
                ok: true,
                detail: format!("left as is: {}", finding.message),
            });
        }
    }

    let stale: Vec<String> = before
        .edges
        .iter()
        .filter(|e| matches!(e.state, EdgeState::Stale | EdgeState::NotLoaded))
        .map(|e| e.url.clone())
        .collect();
    let to_purge: Vec<String> = if published {
        options.check.edges.clone()
    } else {
        stale
    };
    if store_readable && (published || !to_purge.is_empty()) {
        let purged = purge(env, options, &to_purge, &mut actions).await;
        if purged && !options.check.edges.is_empty() {
            converge(env, options, &mut actions).await;
        }
    }

    let after = check(env, &options.check).await;
    FixReport {
        schema: SCHEMA,
        env: env.name().to_owned(),
        before,
        actions,
        after,
    }
}

fn is_older(kind: FindingKind) -> bool {
    matches!(
        kind,
        FindingKind::GitBehind | FindingKind::GitDiverged | FindingKind::GitUnordered
    )
}

/// A broken pointer or blob: republish the last good version. Returns whether it published.
async fn repair_store(
    env: &Environment,
    options: &FixOptions,
    actions: &mut Vec<FixAction>,
) -> bool {
    let inspection = match store::inspect(env).await {
        Ok(inspection) => inspection,
        Err(_) => return false,
    };
    let Some(to) = inspection.repair_target() else {
        return false;
    };
    let what = inspection.layer.detail.clone().unwrap_or_default();
    let result = env
        .rollback(to, &options.author, &now_rfc3339(), message(&what))
        .await;
    let (ok, version, detail) = match result {
        Ok(Outcome::Published(record)) => (
            true,
            Some(record.version),
            format!(
                "republished version {to}, the last good one, as version {} ({what})",
                record.version
            ),
        ),
        Ok(Outcome::Unchanged { version }) => (
            true,
            None,
            format!("version {version} already serves version {to}'s blob"),
        ),
        Err(e) => (
            false,
            None,
            format!("could not republish version {to}: {e}"),
        ),
    };
    let published = ok && version.is_some();
    actions.push(FixAction {
        kind: FixKind::RepublishLastGood,
        target: None,
        version,
        ok,
        detail,
    });
    published
}

/// Git ahead (or, with `--allow-older`, behind): publish it. Returns whether it published.
async fn publish_from_git(
    env: &Environment,
    options: &FixOptions,
    dir: &std::path::Path,
    actions: &mut Vec<FixAction>,
) -> bool {
    let (Ok(inspection), Ok(layer)) = (store::inspect(env).await, git::read(dir, env.name()).await)
    else {
        return false;
    };
    if inspection.is_broken() {
        // Still broken (the repair failed): pushing needs the served blob to carry its kills.
        return false;
    }
    let compared = git::compare(&layer, &inspection).await;
    let Some(finding) = compared.finding(&inspection) else {
        return false;
    };
    let allowed = finding.fix.is_some() || (options.allow_older && is_older(finding.kind));
    if !allowed {
        return false;
    }
    if options.publish_needs_approval {
        actions.push(FixAction {
            kind: FixKind::Skipped,
            target: None,
            version: None,
            ok: true,
            detail: format!(
                "left as is: {}; publishing to {} needs approval: push to propose it",
                finding.message,
                env.name()
            ),
        });
        return false;
    }
    let mut provenance = Provenance::detect(dir, Some(&options.author));
    provenance.source_commit = layer.commit.clone();
    let result = env
        .push_scheduled(
            layer.body,
            layer.schedules,
            &provenance,
            message(&finding.message),
        )
        .await;
    let (ok, version, detail) = match result {
        Ok(Outcome::Published(record)) => (
            true,
            Some(record.version),
            format!(
                "published Git ({}) as version {}: {}",
                layer
                    .commit
                    .as_deref()
                    .map_or("no commit", |c| c.get(..7).unwrap_or(c)),
                record.version,
                record.summary.one_line()
            ),
        ),
        Ok(Outcome::Unchanged { version }) => (
            true,
            None,
            format!("version {version} already serves Git's flags"),
        ),
        Err(e) => (false, None, format!("could not publish from Git: {e}")),
    };
    let published = ok && version.is_some();
    actions.push(FixAction {
        kind: FixKind::PublishFromGit,
        target: None,
        version,
        ok,
        detail,
    });
    published
}

/// Purges the CDN once, or each listed edge. Returns whether anything was purged.
async fn purge(
    env: &Environment,
    options: &FixOptions,
    edges: &[String],
    actions: &mut Vec<FixAction>,
) -> bool {
    if !matches!(options.purger, Purger::Disabled) {
        let report = options.purger.report(env.name()).await;
        actions.push(FixAction {
            kind: FixKind::PurgeCdn,
            target: None,
            version: None,
            ok: !report.failed(),
            detail: report.sentence(env.name(), None),
        });
        return true;
    }
    let mut any = false;
    for url in edges {
        let report = match &options.edge_purge_token {
            Some(token) => {
                Purger::Worker {
                    base: url.trim_end_matches('/').to_owned(),
                    token: token.clone(),
                }
                .report(env.name())
                .await
            }
            None => PurgeReport::not_started(&crate::purge::PurgeError::MissingCredential(
                "FLAGS_PURGE_TOKEN",
            )),
        };
        any |= !report.failed();
        actions.push(FixAction {
            kind: FixKind::PurgeEdge,
            target: Some(url.clone()),
            version: None,
            ok: !report.failed(),
            detail: report.sentence(env.name(), None),
        });
    }
    any
}

/// Re-checks the edges until every one serves the store's version, or the timeout.
async fn converge(env: &Environment, options: &FixOptions, actions: &mut Vec<FixAction>) {
    let started = Instant::now();
    let edges = &options.check.edges;
    loop {
        let inspection = store::inspect(env).await.ok();
        let reports =
            edge::check_all(env, inspection.as_ref(), edges, options.check.edge_timeout).await;
        let behind: Vec<&str> = reports
            .iter()
            .filter(|r| r.state != EdgeState::InSync)
            .map(|r| r.url.as_str())
            .collect();
        if behind.is_empty() {
            actions.push(FixAction {
                kind: FixKind::Converge,
                target: None,
                version: None,
                ok: true,
                detail: format!(
                    "{} edge(s) converged in {} ms",
                    reports.len(),
                    started.elapsed().as_millis()
                ),
            });
            return;
        }
        if started.elapsed() >= options.converge_timeout {
            actions.push(FixAction {
                kind: FixKind::Converge,
                target: None,
                version: None,
                ok: false,
                detail: format!(
                    "not converged after {} ms: {}",
                    started.elapsed().as_millis(),
                    behind.join(", ")
                ),
            });
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Status {
    /// Whether this is [`Status::InSync`].
    pub fn is_in_sync(self) -> bool {
        self == Status::InSync
    }
}
