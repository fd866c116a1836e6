//! Environment against environment (`publisher drift --env prod --against staging`).
//!
//! # The rule
//!
//! The flag files are the reference for what may differ between two environments. For each
//! flag, compare two differences, both from the other environment (`--against`) to this one:
//! - **declared**: the checkout compiled for the other environment vs compiled for this one,
//!   each at the rollout stages its environment has reached (as a push there would serve it);
//! - **deployed**: the other environment's served blob vs this one's.
//!
//! Equal differences are fine: none (`same`), or exactly what the files say (`declared`, e.g.
//! a flag on in staging and off in prod, or prod with an extra rule). Anything else is
//! **drift**: the deployed pair differs where the files say the two should match (typically one
//! environment built from another commit), or differs otherwise than the files declare.
//! Kills are operational and per environment: a flag killed on one side only is listed as
//! `killed`, not drift.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;
use shared_eval::Body;

use super::{Layer, SCHEMA, Status, Unchecked};
use crate::publish::Environment;
use flags_compile::diff::{self, FlagChange, FlagDiff};

/// How one flag compares across the two environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagState {
    /// Identical in both, as the files say.
    Same,
    /// Differs exactly as the files declare.
    Declared,
    /// Differs otherwise than the files declare.
    Drift,
}

/// One flag that is not `same`.
#[derive(Debug, Clone, Serialize)]
pub struct FlagComparison {
    /// The flag.
    pub key: String,
    /// How it compares.
    pub state: FlagState,
    /// Killed in one environment only (`<env>`), not counted as drift.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub killed_in: Option<String>,
    /// The deployed difference (other -> this).
    pub deployed: Option<FlagDiff>,
    /// The declared difference (other -> this, from the files).
    pub declared: Option<FlagDiff>,
}

/// One environment's side.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// The environment.
    pub env: String,
    /// The version it serves.
    pub version: Option<u64>,
    /// The commit that version was built from.
    pub source_commit: Option<String>,
}

/// The comparison.
#[derive(Debug, Clone, Serialize)]
pub struct AgainstReport {
    /// [`SCHEMA`].
    pub schema: u32,
    /// When it ran.
    pub checked_at: String,
    /// The verdict.
    pub status: Status,
    /// This environment (`--env`).
    pub env: Side,
    /// The other (`--against`).
    pub against: Side,
    /// The checkout's commit, the reference for what is declared.
    pub git_commit: Option<String>,
    /// Flags compared.
    pub flags_compared: usize,
    /// Every flag that is not `same`, drift first, then by key.
    pub flags: Vec<FlagComparison>,
    /// What could not be checked.
    pub unchecked: Vec<Unchecked>,
}

impl AgainstReport {
    /// Flags in drift.
    pub fn drifted(&self) -> impl Iterator<Item = &FlagComparison> {
        self.flags.iter().filter(|f| f.state == FlagState::Drift)
    }
}

/// Without the kill bit: kills are per environment by design.
fn unkilled(body: &Body) -> (Body, BTreeSet<String>) {
    let mut body = body.clone();
    let mut killed = BTreeSet::new();
    for flag in &mut body.flags {
        if flag.killed {
            killed.insert(flag.key.clone());
            flag.killed = false;
        }
    }
    (body, killed)
}

fn by_key(difference: diff::BodyDiff) -> BTreeMap<String, FlagDiff> {
    difference
        .flags
        .into_iter()
        .map(|f| (f.key.clone(), f))
        .collect()
}

/// Compares `env` with `other` under the rule in the module docs, using the flags in `dir`.
pub async fn compare(env: &Environment, other: &Environment, dir: &Path) -> AgainstReport {
    let checked_at = flags_compile::blob_file::now_rfc3339();
    let mut unchecked = Vec::new();
    let side = |e: &Environment| Side {
        env: e.name().to_owned(),
        version: None,
        source_commit: None,
    };
    let (mut this_side, mut other_side) = (side(env), side(other));
    let mut declared_layers = Vec::new();
    let mut git_commit = None;
    for e in [other, env] {
        match super::git::read(dir, e.name()).await {
            Ok(layer) => {
                git_commit = layer.commit.clone();
                declared_layers.push(layer);
            }
            Err(error) => unchecked.push(Unchecked {
                layer: Layer::Git,
                target: dir.display().to_string(),
                error,
            }),
        }
    }
    let mut deployed_bodies = Vec::new();
    for (e, s) in [(other, &mut other_side), (env, &mut this_side)] {
        match e.deployed().await {
            Ok(Some((pointer, blob))) => {
                s.version = Some(pointer.version);
                s.source_commit = blob.header.source_commit.clone();
                deployed_bodies.push(blob.body);
            }
            // Every flag would be listed as drift: there is nothing to compare with.
            Ok(None) => unchecked.push(Unchecked {
                layer: Layer::Store,
                target: format!("{} ({})", e.store().describe(), e.name()),
                error: format!("cannot compare: {} has nothing published", e.name()),
            }),
            Err(error) => unchecked.push(Unchecked {
                layer: Layer::Store,
                target: format!("{} ({})", e.store().describe(), e.name()),
                error: error.to_string(),
            }),
        }
    }
    if !unchecked.is_empty() {
        return finish(
            checked_at,
            unchecked,
            this_side,
            other_side,
            git_commit,
            0,
            Vec::new(),
        );
    }
    // What each environment's files declare, as a push there would serve them: at the stages
    // its rollouts have reached (a schedule further along in one environment is not drift).
    let mut declared_bodies = Vec::new();
    for ((e, layer), deployed) in [other, env]
        .into_iter()
        .zip(&declared_layers)
        .zip(&deployed_bodies)
    {
        let running = e.rollouts().await.unwrap_or_default();
        let pushed = super::git::pushed_over(layer, deployed, &running);
        declared_bodies.push(unkilled(&pushed).0);
    }
    let ([declared_other, declared_this], [deployed_other, deployed_this]) =
        (&declared_bodies[..], &deployed_bodies[..])
    else {
        return finish(
            checked_at,
            unchecked,
            this_side,
            other_side,
            git_commit,
            0,
            Vec::new(),
        );
    };

    let declared = by_key(diff::diff(declared_other, declared_this));
    let (deployed_other, killed_other) = unkilled(deployed_other);
    let (deployed_this, killed_this) = unkilled(deployed_this);
    let mut deployed = by_key(diff::diff(&deployed_other, &deployed_this));
    let keys: BTreeSet<String> = [
        declared_other,
        declared_this,
        &deployed_other,
        &deployed_this,
    ]
    .iter()
    .flat_map(|b| b.flags.iter().map(|f| f.key.clone()))
    .collect();
    let mut flags = Vec::new();
    for key in &keys {
        let declared = declared.get(key).cloned();
        let deployed = deployed.remove(key);
        let change = |d: &Option<FlagDiff>| d.as_ref().map(|d| d.change.clone());
        let state = match (change(&declared), change(&deployed)) {
            (None, None) => FlagState::Same,
            (a, b) if a == b => FlagState::Declared,
            _ => FlagState::Drift,
        };
        let killed_in = match (killed_other.contains(key), killed_this.contains(key)) {
            (true, false) => Some(other.name().to_owned()),
            (false, true) => Some(env.name().to_owned()),
            _ => None,
        };
        if state != FlagState::Same || killed_in.is_some() {
            flags.push(FlagComparison {
                key: key.clone(),
                state,
                killed_in,
                deployed,
                declared,
            });
        }
    }
    flags.sort_by_key(|f| (f.state != FlagState::Drift, f.key.clone()));
    let compared = keys.len();
    finish(
        checked_at, unchecked, this_side, other_side, git_commit, compared, flags,
    )
}

fn finish(
    checked_at: String,
    unchecked: Vec<Unchecked>,
    env: Side,
    against: Side,
    git_commit: Option<String>,
    flags_compared: usize,
    flags: Vec<FlagComparison>,
) -> AgainstReport {
    let drifted = flags.iter().filter(|f| f.state == FlagState::Drift).count();
    AgainstReport {
        schema: SCHEMA,
        checked_at,
        status: Status::of(drifted, unchecked.len()),
        env,
        against,
        git_commit,
        flags_compared,
        flags,
        unchecked,
    }
}

/// One line per flag in drift, for people: why it is drift.
pub fn explain(report: &AgainstReport, flag: &FlagComparison) -> String {
    let commits = format!(
        "{} version {} from {}, {} version {} from {}",
        report.env.env,
        report.env.version.map_or("-".into(), |v| v.to_string()),
        short(report.env.source_commit.as_deref()),
        report.against.env,
        report.against.version.map_or("-".into(), |v| v.to_string()),
        short(report.against.source_commit.as_deref()),
    );
    match (&flag.declared, &flag.deployed) {
        (None, Some(_)) => format!(
            "the files say {} and {} should match, but they differ ({commits})",
            report.env.env, report.against.env
        ),
        (Some(_), None) => {
            format!("the files declare a difference that is not deployed ({commits})")
        }
        _ => format!("differs otherwise than the files declare ({commits})"),
    }
}

fn short(commit: Option<&str>) -> &str {
    commit.map_or("no commit", |c| c.get(..7).unwrap_or(c))
}

/// Lines for a flag difference, or a word for added/removed.
pub fn lines(flag: &Option<FlagDiff>) -> Vec<String> {
    match flag.as_ref().map(|f| &f.change) {
        None => vec!["(identical)".into()],
        Some(FlagChange::Added) => vec!["only in this environment".into()],
        Some(FlagChange::Removed) => vec!["only in the other environment".into()],
        Some(FlagChange::Changed(details)) => details.clone(),
    }
}
