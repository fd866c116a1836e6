//! Progressive rollout schedules: a rule whose split follows ordered stages (docs/flag-format.md,
//! "Rollout schedules").
//!
//! ```yaml
//! serve:
//!   rollout:
//!     variant: on            # the treatment
//!     others: off            # what the rule's other users get
//!     stages:
//!       - { percent: 1, soak: 1h }
//!       - { percent: 25, soak: 1d }
//!       - { percent: 100 }
//!     health: { url: "https://status.example.com/checkout" }   # or { command: "./check" }
//!     on-failure: revert     # or hold (the default)
//!   bucket-by: org.id        # optional, as for a split
//! ```
//!
//! The compiler serves the first stage (a split with the treatment's weight first, so a user is
//! treated exactly when `bucket < percent`); which stage is live is state in the store
//! (`rollout::`), applied to the compiled body by [`apply`]. Stage percentages never decrease,
//! so with the same salt and bucketing attribute a later stage only adds users.

use serde::{Deserialize, Serialize};
use shared_eval::{Body, Condition, Rule, SegmentId, Serve, Split, Targeting, VariantId};

use super::yaml::{Node, Value};

/// A rule's rollout schedule, as stored with the rollout's state (so a tick needs no checkout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The flag.
    pub flag: String,
    /// The rule's id.
    pub rule: String,
    /// The treatment variant.
    pub variant: String,
    /// The variant the rule's other users get.
    pub others: String,
    /// In order; percentages never decrease.
    pub stages: Vec<Stage>,
    /// What must pass before a stage advances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
    /// What a failing check does.
    pub on_failure: OnFailure,
}

/// One stage of a schedule: a share of the rule's users, or a ring (a segment, all of it).
/// Stages are cumulative, so a later stage only adds users: at stage N the treated are the
/// rule's users in any ring up to N, plus the share of the last percentage stage up to N.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Share of the rule's users treated; `None` on a ring, which keeps the share before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Share>,
    /// A ring: from this stage on, every user of this segment (within the rule) is treated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Least time at this stage before the next one is due, in seconds.
    pub soak_s: u64,
}

/// The id of the rule a schedule with rings adds right before its own (`<rule>~rings`): it
/// serves the treatment to the rule's users in the live rings.
pub fn ring_rule_id(rule: &str) -> String {
    format!("{rule}~rings")
}

/// The rings live at `stage` (1-based), in order.
pub fn rings(schedule: &Schedule, stage: usize) -> Vec<&str> {
    schedule
        .stages
        .iter()
        .take(stage)
        .filter_map(|s| s.segment.as_deref())
        .collect()
}

/// The ring rule for `base` (the scheduled rule) at `stage`, or `None` when the schedule has
/// no rings. `segment_id` resolves a segment key; `None` if a ring's segment is unknown.
pub fn ring_rule(
    base: &Rule,
    schedule: &Schedule,
    stage: usize,
    segment_id: impl Fn(&str) -> Option<SegmentId>,
    treatment: VariantId,
) -> Option<Option<Rule>> {
    if schedule.stages.iter().all(|s| s.segment.is_none()) {
        return None;
    }
    let live: Option<Vec<Condition>> = rings(schedule, stage)
        .into_iter()
        .map(|key| segment_id(key).map(Condition::Segment))
        .collect();
    Some(live.map(|live| Rule {
        id: ring_rule_id(&base.id),
        condition: Condition::All(vec![base.condition.clone(), Condition::Any(live)]),
        serve: Serve::Variant(treatment),
    }))
}

/// A health signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheck {
    /// Must answer a GET with 2xx.
    Url(String),
    /// Run with `sh -c`; must exit 0.
    Command(String),
}

/// What a failing health check does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stay at the current stage, halted, until `rollout resume`.
    #[default]
    Hold,
    /// Step back one stage per tick while the check fails (never all at once), then hold.
    Revert,
}

/// The fields of a `rollout:` mapping.
pub const ROLLOUT_FIELDS: &[&str] = &["variant", "others", "stages", "health", "on-failure"];
/// The fields of a rollout stage.
pub const STAGE_FIELDS: &[&str] = &["percent", "segment", "soak"];
/// Upper bound on stages: a schedule is a handful of steps, not a ramp function.
pub const MAX_STAGES: usize = 20;

/// Parses a `rollout:` node for a flag with these variant names. Errors are `(line, message)`.
pub fn parse(
    node: &Node,
    flag: &str,
    rule: &str,
    variants: &[&str],
) -> Result<Schedule, Vec<(usize, String)>> {
    let mut errors = Vec::new();
    let Some(entries) = node.as_map() else {
        return Err(vec![(
            node.line,
            "`rollout` is a mapping with `variant`, `others` and `stages`".into(),
        )]);
    };
    for entry in entries {
        if !ROLLOUT_FIELDS.contains(&entry.key.as_str()) {
            errors.push((
                entry.line,
                format!(
                    "unknown field `{}` in a rollout; expected one of: {}",
                    entry.key,
                    ROLLOUT_FIELDS.join(", ")
                ),
            ));
        }
    }
    let variant_of = |field: &str, errors: &mut Vec<(usize, String)>| match node.get(field) {
        None => {
            errors.push((
                node.line,
                format!("a rollout needs `{field}`: a variant name"),
            ));
            None
        }
        Some(n) => match scalar(n) {
            Some(name) if variants.contains(&name.as_str()) => Some(name),
            _ => {
                errors.push((
                    n.line,
                    format!(
                        "`{field}` must name one of this flag's variants: {}",
                        variants.join(", ")
                    ),
                ));
                None
            }
        },
    };
    let variant = variant_of("variant", &mut errors);
    let others = variant_of("others", &mut errors);
    if variant.is_some() && variant == others {
        errors.push((node.line, "`variant` and `others` must differ".into()));
    }
    let mut stages = Vec::new();
    match node.get("stages").map(|n| (n.line, &n.value)) {
        Some((_, Value::Seq(items))) if !items.is_empty() && items.len() <= MAX_STAGES => {
            for item in items {
                if let Some(stage) = parse_stage(item, &mut errors) {
                    let last = stages.iter().rev().find_map(|s: &Stage| s.percent);
                    if let (Some(last), Some(percent)) = (last, stage.percent)
                        && percent < last
                    {
                        errors.push((
                            item.line,
                            format!("stage percentages never decrease ({percent} after {last}): a later stage only adds users"),
                        ));
                    }
                    stages.push(stage);
                }
            }
        }
        Some((line, _)) => errors.push((
            line,
            format!("`stages` is a list of 1 to {MAX_STAGES} `{{percent, soak}}` stages"),
        )),
        None => errors.push((node.line, "a rollout needs `stages`".into())),
    }
    let health = match node.get("health") {
        None => None,
        Some(n) => match (
            n.get("url").and_then(Node::as_str),
            n.get("command").and_then(Node::as_str),
        ) {
            (Some(url), None) if url.starts_with("http://") || url.starts_with("https://") => {
                Some(HealthCheck::Url(url.to_owned()))
            }
            (None, Some(command)) if !command.trim().is_empty() => {
                Some(HealthCheck::Command(command.to_owned()))
            }
            _ => {
                errors.push((
                    n.line,
                    "`health` is `{url: http(s)://...}` or `{command: ...}`, exactly one".into(),
                ));
                None
            }
        },
    };
    let on_failure = match node.get("on-failure") {
        None => OnFailure::Hold,
        Some(n) => match n.as_str() {
            Some("hold") => OnFailure::Hold,
            Some("revert") => OnFailure::Revert,
            _ => {
                errors.push((n.line, "`on-failure` is `hold` or `revert`".into()));
                OnFailure::Hold
            }
        },
    };
    match (variant, others, errors.is_empty()) {
        (Some(variant), Some(others), true) => Ok(Schedule {
            flag: flag.to_owned(),
            rule: rule.to_owned(),
            variant,
            others,
            stages,
            health,
            on_failure,
        }),
        _ => Err(errors),
    }
}

fn parse_stage(node: &Node, errors: &mut Vec<(usize, String)>) -> Option<Stage> {
    let Some(entries) = node.as_map() else {
        errors.push((
            node.line,
            "a stage is `{percent: N, soak: DURATION}` or `{segment: KEY, soak: DURATION}`".into(),
        ));
        return None;
    };
    for entry in entries {
        if !STAGE_FIELDS.contains(&entry.key.as_str()) {
            errors.push((
                entry.line,
                format!(
                    "unknown field `{}` in a stage; expected one of: percent, segment, soak",
                    entry.key
                ),
            ));
        }
    }
    let segment = match node.get("segment") {
        None => None,
        Some(n) => match n.as_str() {
            Some(key) if !key.is_empty() => Some(key.to_owned()),
            _ => {
                errors.push((n.line, "a ring's `segment` is a segment key".into()));
                return None;
            }
        },
    };
    let percent = match node.get("percent").map(|n| (n.line, &n.value)) {
        // A ring treats its whole segment: a share of it would need a second bucketing.
        Some((line, _)) if segment.is_some() => {
            errors.push((
                line,
                "a stage is a `percent` of the rule's users or a ring (`segment`, all of it), not both".into(),
            ));
            return None;
        }
        None if segment.is_some() => None,
        Some((_, Value::Int(i))) => Some(Share::from_percent(*i as f64)),
        Some((_, Value::Float(f))) => Some(Share::from_percent(*f)),
        _ => Some(None),
    };
    let Some(percent) = percent.map_or(Some(None), |p| p.map(Some)) else {
        errors.push((
            node.line,
            "a stage's `percent` is a number above 0 and at most 100".into(),
        ));
        return None;
    };
    let soak_s = match node.get("soak") {
        None => 0,
        Some(n) => match scalar(n).as_deref().and_then(parse_duration) {
            Some(s) => s,
            None => {
                errors.push((n.line, "`soak` is a duration like 30m, 2h or 1d".into()));
                return None;
            }
        },
    };
    Some(Stage {
        percent,
        segment,
        soak_s,
    })
}

/// `90s`, `30m`, `2h`, `1d`, or plain seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

fn scalar(node: &Node) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// The split weights of stage `stage` (1-based; 0 = before the first stage: nobody treated),
/// treatment first, so a user is treated exactly when its bucket is below the percentage.
pub fn weights(
    stage_percent: Option<Share>,
    variant: VariantId,
    others: VariantId,
) -> Vec<(VariantId, u32)> {
    let treated = stage_percent.map_or(0, Share::buckets);
    vec![(variant, treated), (others, shared_eval::BUCKETS - treated)]
}

/// The percentage live at `stage` (1-based; 0: none): the last percentage stage's up to it.
pub fn stage_percent(schedule: &Schedule, stage: usize) -> Option<Share> {
    schedule
        .stages
        .iter()
        .take(stage)
        .rev()
        .find_map(|s| s.percent)
}

/// Sets the schedule's rule in `body` to stage `stage`, and its ring rule (added before it if
/// missing) to the rings live at that stage. Returns false when the body has no such flag,
/// rule, variants or ring segment, or the rule is not a split.
pub fn apply(body: &mut Body, schedule: &Schedule, stage: usize) -> bool {
    let Some(flag) = body.flags.iter_mut().find(|f| f.key == schedule.flag) else {
        return false;
    };
    let index = |name: &str| flag.variants.iter().position(|v| v.name == name);
    let (Some(variant), Some(others)) = (index(&schedule.variant), index(&schedule.others)) else {
        return false;
    };
    let Targeting::Rules { rules, .. } = &mut flag.targeting else {
        return false;
    };
    let Some(rule) = rules.iter_mut().find(|r| r.id == schedule.rule) else {
        return false;
    };
    let Serve::Split(Split { weights: w, .. }) = &mut rule.serve else {
        return false;
    };
    *w = weights(
        stage_percent(schedule, stage),
        variant as VariantId,
        others as VariantId,
    );
    let Some(position) = rules.iter().position(|r| r.id == schedule.rule) else {
        return false;
    };
    let segment_id = |key: &str| {
        body.segments
            .iter()
            .position(|s| s.key == key)
            .map(|i| i as SegmentId)
    };
    let Some(base) = rules.get(position).cloned() else {
        return false;
    };
    match ring_rule(&base, schedule, stage, segment_id, variant as VariantId) {
        None => true,
        Some(None) => false,
        Some(Some(ring)) => {
            let id = ring.id.clone();
            match position.checked_sub(1).and_then(|i| rules.get_mut(i)) {
                Some(before) if before.id == id => *before = ring,
                _ => rules.insert(position, ring),
            }
            true
        }
    }
}

/// A share of users, in buckets: the canary's and a rollout stage's unit (one definition, in
/// shared-eval, which the pointer uses too).
pub use shared_eval::Share;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_yaml(text: &str) -> Result<Schedule, Vec<(usize, String)>> {
        parse(
            &super::super::yaml::parse(text).unwrap(),
            "f",
            "r",
            &["on", "off"],
        )
    }

    #[test]
    fn a_schedule_parses_with_its_defaults() {
        let s = parse_yaml("variant: on\nothers: off\nstages:\n  - { percent: 1, soak: 1h }\n  - { percent: 100 }\n").unwrap();
        assert_eq!(s.stages.len(), 2);
        assert_eq!(
            (s.stages[0].percent.map(Share::buckets), s.stages[0].soak_s),
            (Some(1_000), 3_600)
        );
        assert_eq!((s.on_failure, s.health), (OnFailure::Hold, None));
    }

    #[test]
    fn bad_schedules_say_what_and_where() {
        let errors = parse_yaml(
            "variant: on\nothers: on\nstages:\n  - { percent: 50, soak: 1h }\n  - { percent: 10, soak: soon }\nhealth: { url: ftp://x }\non-failure: panic\n",
        )
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(|(l, m)| format!("{l}: {m}")).collect();
        let all = text.join("\n");
        for expected in [
            "1: `variant` and `others` must differ",
            "5: `soak` is a duration",
            "6: `health` is",
            "7: `on-failure` is",
        ] {
            assert!(all.contains(expected), "{expected:?} in:\n{all}");
        }
        let decreasing = parse_yaml(
            "variant: on\nothers: off\nstages:\n  - { percent: 50 }\n  - { percent: 10 }\n",
        )
        .unwrap_err();
        assert!(decreasing[0].1.contains("never decrease"), "{decreasing:?}");
        assert_eq!(decreasing[0].0, 5);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("2h"), Some(7_200));
        assert_eq!(parse_duration("1d"), Some(86_400));
        assert_eq!(parse_duration("15"), Some(15));
        assert_eq!(parse_duration("1w"), None);
    }
}
