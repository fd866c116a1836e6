//! The status page's sections for one environment: versions with their age, rollouts with
//! their chart, lints (the checkout's, as `validate` reports them, and telemetry's), the last
//! audit entries and evaluations per variant. Each reads through the same library functions
//! as the API routes; everything user-controlled goes through [`escape`].

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};

use super::charts::{Chart, Point, Series, Shape};
use super::escape;
use crate::AppState;
use crate::error::ApiError;
use crate::routes::environments::{EnvStatus, compile_checkout};
use crate::telemetry::{self, EnvStats};
use flags_compile::Severity;
use flags_store::drift::edge::{EdgeReport, EdgeState, Fleet};
use flags_store::layout::{RolloutState, RolloutStatus, VersionRecord};

/// Audit entries shown per environment.
pub const AUDIT_ROWS: usize = 10;

/// `span` as people say it: "3 h 12 min", "2 d 4 h", "45 s".
pub fn human_duration(span: chrono::Duration) -> String {
    let s = span.num_seconds().unsigned_abs();
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// `<time>` with the age of an RFC 3339 instant relative to `now`, the instant as its title.
fn age(at: &str, now: DateTime<Utc>) -> String {
    match DateTime::parse_from_rfc3339(at) {
        Ok(t) => {
            let span = now - t.with_timezone(&Utc);
            let text = if span < chrono::Duration::zero() {
                format!("in {}", human_duration(span))
            } else {
                format!("{} ago", human_duration(span))
            };
            format!(
                "<time class=age datetime=\"{0}\" title=\"{0}\">{1}</time>",
                escape(at),
                text
            )
        }
        Err(_) => escape(at),
    }
}

/// Stable version (who, when, commit, age) and the canary beside it.
pub fn versions(
    out: &mut String,
    env: &EnvStatus,
    canary: Option<&VersionRecord>,
    now: DateTime<Utc>,
) {
    match (&env.version, &env.record) {
        (Some(version), Some(record)) => {
            let _ = write!(
                out,
                "<p class=stable>version <b class=version>{version}</b> ({} flags), {} by <b>{}</b> {}{}</p>",
                env.flags,
                escape(record.action.as_str()),
                escape(&record.author),
                age(&record.created_at, now),
                record
                    .source_commit
                    .as_deref()
                    .map_or(String::new(), |c| format!(
                        ", commit <code>{}</code>",
                        escape(c.get(..7).unwrap_or(c))
                    ))
            );
        }
        (Some(version), None) => {
            let _ = write!(
                out,
                "<p class=stable>version <b class=version>{version}</b></p>"
            );
        }
        _ => out.push_str("<p>nothing published yet</p>"),
    }
    if let Some(c) = &env.canary {
        let _ = write!(
            out,
            "<p class=canary>canary from version <b>{}</b> to {}% of users{}</p>",
            c.since,
            c.percent.percent(),
            canary.map_or(String::new(), |r| format!(
                ", started by <b>{}</b> {}",
                escape(&r.author),
                age(&r.created_at, now)
            ))
        );
    }
    if !env.killed.is_empty() {
        let _ = write!(
            out,
            "<p class=killed>killed: {}</p>",
            escape(&env.killed.join(", "))
        );
    }
}

/// The configured edges: a fleet summary, then one row per edge with the version and content
/// hash it serves and where it stands against the store (in sync, converging, drifted, or
/// unreachable with the reason).
pub fn edges(out: &mut String, edges: &[EdgeReport], fleet: &Fleet, now: DateTime<Utc>) {
    let _ = write!(
        out,
        "<h3>Edges</h3><p class=fleet>{} of {} in sync, {} converging, {} drifted, {} unreachable</p>\
         <table class=edges><tr><th>edge</th><th>state</th><th>version</th><th>content hash</th>\
         <th>canary</th><th>loaded</th></tr>",
        fleet.in_sync, fleet.endpoints, fleet.converging, fleet.drifted, fleet.unreachable
    );
    for edge in edges {
        let (class, words) = match edge.state {
            EdgeState::InSync => ("in-sync", "in sync".to_owned()),
            EdgeState::Converging => ("converging", "converging".to_owned()),
            EdgeState::Stale => ("drifted", "drifted: stale".to_owned()),
            EdgeState::NotLoaded => ("drifted", "drifted: nothing loaded".to_owned()),
            EdgeState::WrongEnvironment => (
                "drifted",
                format!(
                    "drifted: serves {}",
                    edge.environment.as_deref().unwrap_or("?")
                ),
            ),
            EdgeState::Unreachable => (
                "unreachable",
                format!(
                    "unreachable: {}",
                    edge.error.as_deref().unwrap_or("no answer")
                ),
            ),
            EdgeState::Unknown => ("unknown", "unknown: the store could not be read".to_owned()),
        };
        // `sha256:<hex>`: the first 12 hex digits, the whole hash on hover.
        let hash = edge.content_hash.as_deref().map_or(String::new(), |h| {
            let hex = h.strip_prefix("sha256:").unwrap_or(h);
            escape(hex.get(..12).unwrap_or(hex))
        });
        let canary = edge.canary.as_ref().map_or(String::new(), |c| {
            format!(
                "from {} to {}%",
                c.since.map_or("?".to_owned(), |v| v.to_string()),
                c.percent.unwrap_or_default()
            )
        });
        let error = edge.last_error.as_ref().map_or(String::new(), |e| {
            format!(
                " <i class=load-error>last load error: {}</i>",
                escape(&e.message)
            )
        });
        let _ = write!(
            out,
            "<tr class=\"edge {class}\" data-url=\"{url}\"><td>{url}</td><td class=state>{}</td>\
             <td class=edge-version>{}</td><td class=hash title=\"{}\"><code>{hash}</code></td><td>{}</td><td>{}{error}</td></tr>",
            escape(&words),
            edge.version.map_or("-".to_owned(), |v| v.to_string()),
            escape(edge.content_hash.as_deref().unwrap_or("")),
            escape(&canary),
            edge.loaded_at
                .as_deref()
                .map_or(String::new(), |t| age(t, now)),
            url = escape(&edge.url),
        );
    }
    out.push_str("</table>");
}

fn seconds(at: &str) -> Option<f64> {
    DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.timestamp() as f64)
}

fn date_label(x: f64) -> String {
    DateTime::from_timestamp(x as i64, 0)
        .map_or_else(String::new, |t| t.format("%m-%d %H:%M").to_string())
}

fn percent_label(y: f64) -> String {
    format!("{y}%")
}

/// One rollout's transitions from the version history (oldest first): a point each time its
/// stage, status or `since` changed, with halts (held, reverting) marked.
pub fn rollout_points(history: &[VersionRecord], flag: &str, rule: &str) -> Vec<Point> {
    let mut points: Vec<Point> = Vec::new();
    let mut last: Option<(usize, RolloutStatus, String)> = None;
    for record in history {
        let Some(state) = record
            .rollouts
            .iter()
            .find(|r| r.schedule.flag == flag && r.schedule.rule == rule)
        else {
            last = None;
            continue;
        };
        let key = (state.stage, state.status, state.since.clone());
        if last.as_ref() == Some(&key) {
            continue;
        }
        last = Some(key);
        let Some(x) = seconds(&state.since) else {
            continue;
        };
        points.push(Point {
            x,
            y: flags_store::publish::rollout::live_percent(state),
            note: format!(
                "{}: stage {} ({}){}",
                state.since,
                state.stage,
                state.status.as_str(),
                state
                    .reason
                    .as_deref()
                    .map_or(String::new(), |r| format!(": {r}"))
            ),
            halt: matches!(state.status, RolloutStatus::Held | RolloutStatus::Reverting),
        });
    }
    points
}

/// The rollouts of the deployed version: a table row and a chart each.
pub fn rollouts(
    out: &mut String,
    states: &[RolloutState],
    history: &[VersionRecord],
    now: DateTime<Utc>,
) {
    if states.is_empty() {
        return;
    }
    out.push_str(
        "<h3>Rollouts</h3><table class=rollouts><tr><th>flag / rule</th><th>stage</th><th>live</th>\
         <th>status</th><th>next stage due</th><th>over time</th></tr>",
    );
    for state in states {
        let schedule = &state.schedule;
        let rings = flags_store::publish::rollout::live_rings(state);
        let guides: Vec<(f64, String)> = (1..=schedule.stages.len())
            .map(|stage| {
                let percent = flags_compile::schedule::stage_percent(schedule, stage)
                    .map_or(0.0, |p| p.percent());
                (percent, format!("stage {stage}"))
            })
            .collect();
        let series = [Series {
            name: format!("{}/{}", schedule.flag, schedule.rule),
            points: rollout_points(history, &schedule.flag, &schedule.rule),
        }];
        let chart = Chart {
            class: "rollout-chart",
            title: &format!(
                "{}/{}: share of users over time",
                schedule.flag, schedule.rule
            ),
            series: &series,
            shape: Shape::Steps,
            y_max: 100.0,
            guides: &guides,
            x_end: Some(now.timestamp() as f64),
            x_label: date_label,
            y_label: percent_label,
        }
        .render();
        let _ = write!(
            out,
            "<tr class=rollout data-flag=\"{flag}\"><td>{flag} / {rule}</td><td class=stage>{} of {}</td>\
             <td class=live>{}%{}</td><td class=status>{}{}</td><td>{}</td><td>{chart}</td></tr>",
            state.stage,
            schedule.stages.len(),
            flags_store::publish::rollout::live_percent(state),
            if rings.is_empty() {
                String::new()
            } else {
                format!(" + {}", escape(&rings.join(", ")))
            },
            state.status.as_str(),
            state
                .reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {}", escape(r))),
            flags_store::publish::rollout::next_due(state)
                .map_or("-".to_owned(), |t| age(&t.to_rfc3339(), now)),
            flag = escape(&schedule.flag),
            rule = escape(&schedule.rule),
        );
    }
    out.push_str("</table>");
}

/// Lints: the checkout's diagnostics for the environment (what `validate` reports: expired,
/// past review, unused segments, and errors that block a push) and telemetry's.
pub async fn lints(
    out: &mut String,
    state: &AppState,
    env: &str,
    deployed: &[String],
    stats: &EnvStats,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let diagnostics = match compile_checkout(state, env).await? {
        Ok(compiled) => compiled.warnings,
        Err(diagnostics) => diagnostics,
    };
    let telemetry = telemetry::lints(
        stats,
        deployed.iter().map(String::as_str),
        now,
        telemetry::DEFAULT_STALE_DAYS,
    );
    if diagnostics.is_empty() && telemetry.is_empty() {
        out.push_str("<p class=no-lints>no lints</p>");
        return Ok(());
    }
    out.push_str(
        "<h3>Lints</h3><table class=lints><tr><th>flag</th><th>kind</th><th>what</th></tr>",
    );
    for d in &diagnostics {
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "checkout",
        };
        let _ = write!(
            out,
            "<tr class=\"lint {kind}\" data-flag=\"{0}\"><td>{0}</td><td>{kind}</td><td>{1}</td></tr>",
            escape(d.flag.as_deref().unwrap_or("")),
            escape(&d.to_string()),
        );
    }
    for lint in &telemetry {
        let _ = write!(
            out,
            "<tr class=\"lint {kind}\" data-flag=\"{0}\"><td>{0}</td><td>{kind}</td><td>{1}</td></tr>",
            escape(&lint.flag),
            escape(&lint.message),
            kind = lint.kind,
        );
    }
    out.push_str("</table>");
    Ok(())
}

/// The last drift check or fix of the environment, as `publisher audit` words it (who, verdict,
/// what differed), with its age; the page runs no check itself (that is `POST .../drift`).
pub fn drift(
    out: &mut String,
    entries: &[flags_store::drift::audit::DriftAuditEntry],
    now: DateTime<Utc>,
) {
    match entries.last() {
        Some(last) => {
            let _ = write!(
                out,
                "<p class=drift>last {} {}</p>",
                escape(&last.one_line()),
                age(&last.when, now)
            );
        }
        None => out.push_str("<p class=drift>drift: never checked</p>"),
    }
}

/// The last [`AUDIT_ROWS`] audit entries, newest first: who, what, when.
pub fn audit(out: &mut String, entries: &[flags_store::layout::AuditEntry], now: DateTime<Utc>) {
    if entries.is_empty() {
        return;
    }
    out.push_str(
        "<h3>Recent changes</h3><table class=audit><tr><th>version</th><th>who</th><th>action</th><th>what</th><th>when</th></tr>",
    );
    for entry in entries.iter().rev().take(AUDIT_ROWS) {
        let _ = write!(
            out,
            "<tr class=audit-entry><td>{}</td><td class=who>{}</td><td class=action>{}</td><td>{}{}</td><td>{}</td></tr>",
            entry.version,
            escape(&entry.who),
            escape(entry.action.as_str()),
            escape(&entry.what),
            entry
                .message
                .as_deref()
                .map_or(String::new(), |m| format!(" <i>{}</i>", escape(m))),
            age(&entry.when, now),
        );
    }
    out.push_str("</table>");
}

fn day_seconds(day: &NaiveDate) -> f64 {
    day.and_hms_opt(0, 0, 0)
        .map_or(0.0, |t| t.and_utc().timestamp() as f64)
}

fn day_label(x: f64) -> String {
    DateTime::from_timestamp(x as i64, 0)
        .map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string())
}

fn count_label(y: f64) -> String {
    format!("{y}")
}

/// Evaluations per variant per day, one chart for each deployed flag with telemetry.
pub fn evaluations(out: &mut String, deployed: &[String], stats: &EnvStats) {
    let flags: Vec<_> = deployed
        .iter()
        .filter_map(|key| stats.flags.get(key).map(|f| (key, f)))
        .filter(|(_, f)| !f.days.is_empty())
        .collect();
    if flags.is_empty() {
        return;
    }
    out.push_str("<h3>Evaluations per variant</h3><div class=evaluations>");
    for (key, flag) in flags {
        let variants: std::collections::BTreeSet<&String> =
            flag.days.values().flat_map(|v| v.keys()).collect();
        let series: Vec<Series> = variants
            .into_iter()
            .map(|variant| Series {
                name: variant.clone(),
                points: flag
                    .days
                    .iter()
                    .map(|(day, counts)| {
                        let n = counts.get(variant).copied().unwrap_or(0);
                        Point {
                            x: day_seconds(day),
                            y: n as f64,
                            note: format!("{day}: {variant} {n}"),
                            halt: false,
                        }
                    })
                    .collect(),
            })
            .collect();
        let y_max = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.y))
            .fold(0.0, f64::max);
        let chart = Chart {
            class: "evaluations-chart",
            title: &format!("{key}: evaluations per variant per day"),
            series: &series,
            shape: Shape::Line,
            y_max,
            guides: &[],
            x_end: None,
            x_label: day_label,
            y_label: count_label,
        }
        .render();
        let legend: Vec<String> = series.iter().map(|s| escape(&s.name)).collect();
        let _ = write!(
            out,
            "<figure class=evaluations-flag data-flag=\"{0}\"><figcaption>{0}: {1} evaluations ({2})</figcaption>{chart}</figure>",
            escape(key),
            flag.total,
            legend.join(", "),
        );
    }
    out.push_str("</div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every halt is a tick that publishes a version (the rollout's states live only in the
    /// version records, `rollout/mod.rs`), so the chart, drawn from those records, shows each
    /// one; a tick while held changes nothing and draws nothing.
    #[test]
    fn a_rollout_held_by_a_failing_check_is_drawn_as_a_halt() {
        use flags_compile::schedule::{HealthCheck, OnFailure};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flags");
        let dir = tempfile::tempdir().unwrap();
        let healthy = dir.path().join("healthy");
        let compiled =
            flags_compile::compile_path(&root, &flags_compile::CompileOptions::new("prod"))
                .unwrap();
        let mut schedules = compiled.schedules.unwrap();
        for s in &mut schedules {
            s.health = Some(HealthCheck::Command(format!(
                "test -e {}",
                healthy.display()
            )));
            s.on_failure = OnFailure::Hold;
            s.stages.iter_mut().for_each(|stage| stage.soak_s = 0);
        }
        let body = compiled.body;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let points = runtime.block_on(async {
            let store = flags_store::store::open(dir.path().join("store").to_str().unwrap())
                .await
                .unwrap();
            let env = flags_store::publish::Environment::new(store, "prod").unwrap();
            let by = flags_compile::blob_file::Provenance {
                author: "ci".into(),
                source_commit: None,
                source_dirty: false,
                created_at: flags_compile::blob_file::now_rfc3339(),
            };
            env.push_scheduled(body, Some(schedules), &by, None)
                .await
                .unwrap();
            let tick = |seconds: i64| {
                let env = env.clone();
                async move {
                    let at = Utc::now() + chrono::Duration::seconds(seconds);
                    env.rollout_tick(at, "cron").await.unwrap().0.len()
                }
            };
            std::fs::write(&healthy, "").unwrap();
            assert_eq!(tick(1).await, 1, "healthy: 1% -> 5%");
            std::fs::remove_file(&healthy).unwrap();
            assert_eq!(tick(2).await, 1, "failing: held at 5%");
            assert_eq!(tick(3).await, 0, "held: nothing due");
            let history = env.history().await.unwrap().records;
            rollout_points(&history, "checkout-v2", "progressive")
        });
        let shape: Vec<(f64, bool)> = points.iter().map(|p| (p.y, p.halt)).collect();
        assert_eq!(
            shape,
            [(1.0, false), (5.0, false), (5.0, true)],
            "{points:?}"
        );
        assert!(
            points[2].note.contains("stage 2 (held)"),
            "{}",
            points[2].note
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(45)), "45 s");
        assert_eq!(human_duration(d(3 * 3600 + 12 * 60 + 5)), "3 h 12 min");
        assert_eq!(human_duration(d(2 * 3600)), "2 h");
        assert_eq!(human_duration(d(2 * 86_400 + 4 * 3600 + 59)), "2 d 4 h");
        assert_eq!(human_duration(d(-90)), "1 min");
    }

    #[test]
    fn audit_rows_escape_what_users_wrote_and_show_the_newest_first() {
        let entry = |version: u64, who: &str, message: &str| -> flags_store::layout::AuditEntry {
            serde_json::from_value(serde_json::json!({
                "version": version, "action": "push", "who": who,
                "when": "2026-12-03T12:00:00Z", "what": "added <b>",
                "message": message,
                "summary": {"added": [], "removed": [], "changed": []},
            }))
            .unwrap()
        };
        let mut out = String::new();
        let now = DateTime::parse_from_rfc3339("2026-12-03T15:12:00Z")
            .unwrap()
            .with_timezone(&Utc);
        audit(
            &mut out,
            &[
                entry(1, "ci", "first"),
                entry(2, "<script>x</script>", "a \"quote\" & more"),
            ],
            now,
        );
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("&lt;script&gt;x&lt;/script&gt;"), "{out}");
        assert!(out.contains("a &quot;quote&quot; &amp; more"), "{out}");
        assert!(out.contains("added &lt;b&gt;"), "{out}");
        assert!(
            out.find("<td>2</td>") < out.find("<td>1</td>"),
            "newest first: {out}"
        );
        assert!(out.contains(">3 h 12 min ago</time>"), "{out}");
    }
}
