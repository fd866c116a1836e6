//! The reports as text for people (the JSON form is the serde one, `docs/drift.md`).

use std::fmt::{self, Display, Formatter};

use super::against::{self, AgainstReport, FlagState};
use super::edge::EdgeState;
use super::git::{GitVsStore, Side};
use super::store::StoreState;
use super::{DriftReport, FixReport, Status};
use flags_compile::diff::BodyDiff;

fn short(commit: Option<&str>) -> &str {
    commit.map_or("no commit", |c| c.get(..7).unwrap_or(c))
}

fn status_line(status: Status) -> &'static str {
    match status {
        Status::InSync => "in sync",
        Status::Drift => "DRIFT",
        Status::Unchecked => "COULD NOT CHECK",
    }
}

fn indent(f: &mut Formatter<'_>, text: &str, by: &str) -> fmt::Result {
    for line in text.lines() {
        writeln!(f, "{by}{line}")?;
    }
    Ok(())
}

fn git_vs_store(f: &mut Formatter<'_>, cmp: &GitVsStore) -> fmt::Result {
    if cmp.matches == Some(Side::Canary) {
        writeln!(
            f,
            "  git vs store: same flags as the canary (a canary, not drift)"
        )?;
    } else if cmp.in_sync {
        writeln!(f, "  git vs store: same flags")?;
    } else {
        writeln!(
            f,
            "  git vs store: {} (store -> Git)",
            cmp.summary.one_line()
        )?;
        let diff = BodyDiff {
            flags: cmp.flags.clone(),
        };
        indent(f, &diff.to_string(), "    ")?;
    }
    if !cmp.killed_in_store.is_empty() {
        writeln!(
            f,
            "  killed in the store (kept across pushes, not drift): {}",
            cmp.killed_in_store.join(", ")
        )?;
    }
    Ok(())
}

impl Display for DriftReport {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "drift check of {}: {}",
            self.env,
            status_line(self.status)
        )?;
        if let Some(git) = &self.git {
            writeln!(
                f,
                "  git:   {} at {}{}: {} flags",
                git.dir.display(),
                short(git.commit.as_deref()),
                if git.dirty {
                    " (uncommitted changes)"
                } else {
                    ""
                },
                git.flags
            )?;
        }
        if let Some(store) = &self.store {
            match store.version {
                Some(version) => writeln!(
                    f,
                    "  store: version {version} ({}) from {}, {}",
                    store.action.map_or("?", |a| a.as_str()),
                    short(store.source_commit.as_deref()),
                    store
                        .flags
                        .map_or("blob unreadable".to_owned(), |n| format!("{n} flags")),
                )?,
                None if store.state == StoreState::Empty => {
                    writeln!(f, "  store: nothing published")?
                }
                None => writeln!(
                    f,
                    "  store: pointer CORRUPT, last good version {}",
                    store
                        .last_good_version
                        .map_or("none".to_owned(), |v| v.to_string())
                )?,
            }
            if let Some(canary) = &store.canary {
                writeln!(
                    f,
                    "         canary since version {} to {}% of users (a canary, not drift)",
                    canary.since, canary.percent
                )?;
            }
        }
        if let Some(cmp) = &self.git_vs_store {
            git_vs_store(f, cmp)?;
        }
        for edge in &self.edges {
            let version = edge.version.map_or("-".to_owned(), |v| v.to_string());
            let state = match edge.state {
                EdgeState::InSync => "in sync".to_owned(),
                EdgeState::Converging => format!(
                    "converging ({} ms behind, within its {} ms revalidation interval)",
                    edge.behind_ms.unwrap_or_default(),
                    edge.revalidate_ms.unwrap_or_default()
                ),
                EdgeState::Stale => "STALE".to_owned(),
                EdgeState::NotLoaded => "NOTHING LOADED".to_owned(),
                EdgeState::WrongEnvironment => "WRONG ENVIRONMENT".to_owned(),
                EdgeState::Unreachable => {
                    format!("UNREACHABLE: {}", edge.error.as_deref().unwrap_or_default())
                }
                EdgeState::Unknown => "not compared (store unreadable)".to_owned(),
            };
            let age = edge
                .age_ms
                .map(|ms| format!(", loaded {:.1} s ago", ms as f64 / 1e3))
                .unwrap_or_default();
            let canary = edge
                .canary
                .as_ref()
                .map(|c| {
                    format!(
                        " + canary since {} to {}%",
                        c.since.map_or("?".to_owned(), |v| v.to_string()),
                        c.percent.unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            writeln!(
                f,
                "  edge:  {} version {version}{canary}{age}: {state}",
                edge.url
            )?;
            if let Some(error) = &edge.last_error {
                writeln!(
                    f,
                    "         last load error at {}: {}",
                    error.at, error.message
                )?;
            }
            if matches!(edge.state, EdgeState::Stale | EdgeState::Converging)
                && !edge.flags.is_empty()
            {
                let diff = BodyDiff {
                    flags: edge.flags.clone(),
                };
                writeln!(f, "         it lacks (its version -> the store's):")?;
                indent(f, &diff.to_string(), "           ")?;
            }
        }
        if let Some(fleet) = &self.fleet {
            let versions: Vec<String> = fleet
                .versions
                .iter()
                .map(|v| {
                    format!(
                        "{} on version {}{}",
                        v.endpoints,
                        v.version.map_or("-".to_owned(), |v| v.to_string()),
                        if v.current { " (current)" } else { "" }
                    )
                })
                .collect();
            writeln!(
                f,
                "  fleet: {} endpoints: {} in sync, {} converging, {} drifted, {} unreachable; {}",
                fleet.endpoints,
                fleet.in_sync,
                fleet.converging,
                fleet.drifted,
                fleet.unreachable,
                versions.join(", ")
            )?;
        }
        for finding in &self.findings {
            writeln!(
                f,
                "DRIFT {} vs {}: {}",
                finding.layer.as_str(),
                finding.against.as_str(),
                finding.message
            )?;
            match &finding.fix {
                Some(fix) => writeln!(f, "      --fix: {fix}")?,
                None => writeln!(f, "      --fix leaves this alone")?,
            }
        }
        for u in &self.unchecked {
            writeln!(
                f,
                "NOT CHECKED {} {}: {}",
                u.layer.as_str(),
                u.target,
                u.error
            )?;
        }
        Ok(())
    }
}

impl Display for FixReport {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.before)?;
        if self.actions.is_empty() {
            writeln!(f, "fix: nothing to do")?;
        }
        for action in &self.actions {
            writeln!(f, "fix: {}", action.describe())?;
        }
        writeln!(f, "after the fix:")?;
        write!(f, "{}", self.after)
    }
}

impl Display for AgainstReport {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let side = |s: &against::Side| {
            format!(
                "{} version {} from {}",
                s.env,
                s.version.map_or("-".to_owned(), |v| v.to_string()),
                short(s.source_commit.as_deref())
            )
        };
        writeln!(
            f,
            "drift check of {} against {}: {} ({} flags, declared by the files at {})",
            side(&self.env),
            side(&self.against),
            status_line(self.status),
            self.flags_compared,
            short(self.git_commit.as_deref())
        )?;
        for flag in &self.flags {
            let killed = flag
                .killed_in
                .as_deref()
                .map(|e| format!(" (killed in {e})"))
                .unwrap_or_default();
            match flag.state {
                FlagState::Drift => {
                    writeln!(
                        f,
                        "DRIFT {}: {}{killed}",
                        flag.key,
                        against::explain(self, flag)
                    )?;
                    writeln!(
                        f,
                        "    deployed ({} -> {}):",
                        self.against.env, self.env.env
                    )?;
                    for line in against::lines(&flag.deployed) {
                        indent(f, &line, "      ")?;
                    }
                    writeln!(f, "    declared by the files:")?;
                    for line in against::lines(&flag.declared) {
                        indent(f, &line, "      ")?;
                    }
                }
                FlagState::Declared => writeln!(
                    f,
                    "  declared {}: differs as the files say{killed}",
                    flag.key
                )?,
                FlagState::Same => writeln!(f, "  same {}{killed}", flag.key)?,
            }
        }
        for u in &self.unchecked {
            writeln!(
                f,
                "NOT CHECKED {} {}: {}",
                u.layer.as_str(),
                u.target,
                u.error
            )?;
        }
        Ok(())
    }
}
