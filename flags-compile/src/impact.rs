//! The impact of a change before it is made: every flag that differs between the deployed and
//! the proposed body ([`crate::diff`]) is evaluated with both over a sample of contexts, and
//! each context whose variant changes is counted under its `from -> to` pair. The answer says,
//! per flag, how many contexts of the sample (and what share) move, and from which variant to
//! which.
//!
//! Both sides go through the edge's own evaluator ([`shared_eval::evaluate_resolved`]), so a
//! split moving from 50% to 60% moves exactly the contexts whose bucket lies in between.
//! The sample is a JSONL file ([`Sample::read`]): one context object per line, as `publisher
//! eval --context` takes it (`targetingKey` and the attributes).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};
use shared_eval::{Blob, Body, Context, Header, Snapshot, evaluate_resolved};

use crate::diff::{FlagChange, diff};

/// A sample of evaluation contexts.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Where it came from (a file path), for reports.
    pub source: String,
    /// The contexts, in file order.
    pub contexts: Vec<Map<String, Value>>,
    /// More contexts were there than `max`: only the first `max` were kept.
    pub truncated: bool,
}

/// A bad sample file: `file:line: message` (line 0: the file itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleError {
    /// The file.
    pub file: String,
    /// 1-based; 0 when the file could not be read.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for SampleError {}

impl Sample {
    /// Reads a JSONL file: one JSON object per line (blank lines skipped), at most `max`
    /// contexts (the first ones; `truncated` says whether there were more).
    pub fn read(path: &Path, max: usize) -> Result<Sample, SampleError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SampleError {
            file: file.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        Sample::parse(&file, &text, max)
    }

    /// [`Sample::read`] of text already read; `file` names it in errors.
    pub fn parse(file: &str, text: &str, max: usize) -> Result<Sample, SampleError> {
        let mut sample = Sample {
            source: file.to_owned(),
            ..Sample::default()
        };
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let error = |message: String| SampleError {
                file: file.to_owned(),
                line: index + 1,
                message,
            };
            match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(context)) => {
                    if sample.contexts.len() == max {
                        sample.truncated = true;
                        break;
                    }
                    sample.contexts.push(context);
                }
                Ok(other) => {
                    return Err(error(format!(
                        "a context must be a JSON object, not {}",
                        kind(&other)
                    )));
                }
                Err(e) => return Err(error(format!("not JSON: {e}"))),
            }
        }
        Ok(sample)
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How many contexts went from one variant to another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Move {
    /// The variant served before (`None`: none, e.g. the flag did not exist or evaluation
    /// failed and the caller's default applies).
    pub from: Option<String>,
    /// The variant served after.
    pub to: Option<String>,
    /// Contexts of the sample.
    pub count: usize,
    /// `count` / the sample's size.
    pub share: f64,
}

/// One changed flag's impact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagImpact {
    /// The flag.
    pub flag: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// Contexts whose variant changes.
    pub moved: usize,
    /// `moved` / the sample's size.
    pub share: f64,
    /// The moves, largest first.
    pub moves: Vec<Move>,
}

/// A change's impact on one environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Impact {
    /// The environment.
    pub env: String,
    /// Contexts evaluated.
    pub sample: usize,
    /// Where the sample came from.
    pub source: String,
    /// Whether the sample file held more contexts than were used.
    pub truncated: bool,
    /// Every flag that differs, in key order (one moving nobody is listed with `moved: 0`).
    pub flags: Vec<FlagImpact>,
}

/// Why an impact could not be worked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpactError(pub String);

impl fmt::Display for ImpactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImpactError {}

/// Loads `body` as the edge would, for evaluation.
fn snapshot(env: &str, body: &Body, side: &str) -> Result<Snapshot, ImpactError> {
    let header = Header {
        environment: env.to_owned(),
        version: 0,
        previous: None,
        content_hash: String::new(),
        author: String::new(),
        source_commit: None,
        created_at: String::new(),
    };
    Snapshot::from_blob(Blob::new(header, body.clone())).map_err(|e| {
        ImpactError(format!(
            "the {side} flags are refused by the evaluator: {e}"
        ))
    })
}

/// One flag's moves: `(from, to)` variant names, borrowed from the snapshots, to a count.
type Moves<'s> = BTreeMap<(Option<&'s str>, Option<&'s str>), usize>;

/// The impact on `env` of serving `proposed` instead of `deployed`, over `sample`, evaluated
/// at `now_ms` (milliseconds since the Unix epoch).
pub fn impact(
    env: &str,
    deployed: &Body,
    proposed: &Body,
    sample: &Sample,
    now_ms: i64,
) -> Result<Impact, ImpactError> {
    let changed = diff(deployed, proposed).flags;
    let before = snapshot(env, deployed, "deployed")?;
    let after = snapshot(env, proposed, "proposed")?;
    let keys: Vec<&str> = changed.iter().map(|f| f.key.as_str()).collect();
    // Per flag: (from, to) -> count, with the variant names borrowed from the snapshots.
    let mut counts: Vec<Moves<'_>> = vec![BTreeMap::new(); keys.len()];
    for attrs in &sample.contexts {
        let context = Context::new(attrs);
        let old = before.resolve(&context);
        let new = after.resolve(&context);
        for (i, key) in keys.iter().enumerate() {
            let from = evaluate_resolved(&old, key, now_ms).variant;
            let to = evaluate_resolved(&new, key, now_ms).variant;
            if from != to {
                *counts[i].entry((from, to)).or_default() += 1;
            }
        }
    }
    let total = sample.contexts.len();
    let share = |count: usize| {
        if total == 0 {
            0.0
        } else {
            count as f64 / total as f64
        }
    };
    let flags = changed
        .iter()
        .zip(counts)
        .map(|(flag, counts)| {
            let mut moves: Vec<Move> = counts
                .into_iter()
                .map(|((from, to), count)| Move {
                    from: from.map(str::to_owned),
                    to: to.map(str::to_owned),
                    count,
                    share: share(count),
                })
                .collect();
            moves.sort_by_key(|m| std::cmp::Reverse(m.count));
            let moved = moves.iter().map(|m| m.count).sum();
            FlagImpact {
                flag: flag.key.clone(),
                change: match flag.change {
                    FlagChange::Added => "added",
                    FlagChange::Removed => "removed",
                    FlagChange::Changed(_) => "changed",
                },
                moved,
                share: share(moved),
                moves,
            }
        })
        .collect();
    Ok(Impact {
        env: env.to_owned(),
        sample: total,
        source: sample.source.clone(),
        truncated: sample.truncated,
        flags,
    })
}

impl fmt::Display for Impact {
    /// One line per flag, then one per move:
    /// `new-chart (changed): 1,000 of 10,000 contexts (10.0%) move` / `  off -> on: 1,000 (10.0%)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_owned());
        writeln!(
            f,
            "{}: {} contexts from {}{}",
            self.env,
            self.sample,
            self.source,
            if self.truncated { " (truncated)" } else { "" }
        )?;
        if self.flags.is_empty() {
            writeln!(f, "no flag changes")?;
        }
        for flag in &self.flags {
            writeln!(
                f,
                "{} ({}): {} of {} contexts ({:.1}%) move",
                flag.flag,
                flag.change,
                flag.moved,
                self.sample,
                flag.share * 100.0
            )?;
            for m in &flag.moves {
                writeln!(
                    f,
                    "  {} -> {}: {} ({:.1}%)",
                    name(&m.from),
                    name(&m.to),
                    m.count,
                    m.share * 100.0
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
