//! `publisher explain --flags PATH [--env ENV] --context JSON KEY`: evaluate one flag and show
//! why: its state, each prerequisite, each rule in order with every condition marked as holding
//! or failing, then the result.
//!
//! The request is read as the edge reads it (see `eval`): `explain` says which identity it
//! assumed, and when the signed-identity rule (a permission flag is granted only to a verified
//! token) decided the answer. With `--deployed` it explains what the edge serves now (the
//! deployed blob with its kills and live rollout stages, the user's side of a running canary),
//! and says which version and side that is.
//!
//! Each condition's truth comes from the real evaluator (the flag is re-evaluated with that
//! condition as its only rule), so `explain` can never disagree with what the edge serves.

use std::process::ExitCode;

use serde_json::Value;
use shared_eval::{
    Blob, Body, Condition, Context, Flag, FlagKind, Op, Reason, Rule, SemVerCmp, Serve, Snapshot,
    Targeting, Test, evaluate,
};

use super::eval::{EdgeRequest, Input, Loaded, one_line};

/// Arguments of `explain`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: Input,
}

/// Runs `explain`.
pub fn run(args: Args) -> ExitCode {
    let key = args.input.key.as_str();
    let Loaded {
        snapshot,
        request,
        now_ms,
        served,
        source,
    } = match args.input.load() {
        Ok(loaded) => loaded,
        Err(failed) => return ExitCode::from(failed.code),
    };
    let body = &snapshot.blob().body;
    let Some(index) = body.flags.iter().position(|f| f.key == key) else {
        eprintln!("error: no flag `{key}` in {source}");
        return ExitCode::FAILURE;
    };
    let flag = &body.flags[index];
    let oracle = Oracle {
        blob: snapshot.blob(),
        flag: index,
        request: &request,
        now_ms,
    };
    let state = match (flag.enabled, flag.killed) {
        (_, true) => "killed",
        (true, false) => "enabled",
        (false, false) => "disabled",
    };
    println!("flag {key} in {}: {state}", args.input.env);
    if let Some(served) = &served {
        println!("deployed: {served}");
    }
    match (request.verified, request.signed.get("targetingKey")) {
        (true, Some(subject)) => println!("identity: signed, targeting key {subject}"),
        (true, None) => println!("identity: signed, no subject"),
        (false, _) => println!("identity: anonymous (no token): unsigned attributes only"),
    }
    let signed_rule =
        flag.kind == FlagKind::Permission && !request.verified && flag.enabled && !flag.killed;
    let mut prerequisites_hold = true;
    for prereq in &flag.prerequisites {
        let Some(other) = body.flags.get(prereq.flag as usize) else {
            continue;
        };
        let wanted: Vec<&str> = prereq
            .variants
            .iter()
            .filter_map(|&v| other.variants.get(usize::from(v)))
            .map(|v| v.name.as_str())
            .collect();
        let got = evaluate(&snapshot, &other.key, &request.context(), now_ms);
        let served = got.variant.unwrap_or("(none)");
        let holds = wanted.contains(&served) && got.error.is_none();
        prerequisites_hold &= holds;
        let mark = if holds { "holds" } else { "fails" };
        println!(
            "prerequisite {}: serves {served}, needs one of [{}]: {mark}",
            other.key,
            wanted.join(", ")
        );
    }
    let default_name = flag
        .default_variant
        .and_then(|v| flag.variants.get(usize::from(v)))
        .map_or("(caller's default)", |v| v.name.as_str());
    if !flag.enabled || flag.killed {
        println!("the flag is {state} here: serves {default_name} without trying its rules");
    } else if signed_rule {
        println!(
            "signed-identity rule: a permission flag is granted only to a verified token, and \
             this request has none: the edge serves {default_name} without trying its rules"
        );
    } else if !prerequisites_hold {
        println!("a prerequisite fails: serves {default_name} without trying its rules");
    }
    match &flag.targeting {
        Targeting::Rules { rules, fallthrough } => {
            let mut matched = !flag.enabled || flag.killed || signed_rule || !prerequisites_hold;
            for rule in rules {
                if matched {
                    println!("rule {}: not tried", rule.id);
                    continue;
                }
                let verdict = oracle.holds(&rule.condition);
                matched = verdict == Some(true);
                println!(
                    "rule {}: {} -> serves {}",
                    rule.id,
                    verdict_word(verdict),
                    serve_text(flag, &rule.serve, body)
                );
                print_condition(&oracle, body, &rule.condition, 1);
            }
            println!(
                "fallthrough: serves {}",
                serve_text(flag, fallthrough, body)
            );
        }
        Targeting::Logic(_) => println!("targeting: imported flagd JSONLogic (not broken down)"),
    }
    let eval = evaluate(&snapshot, key, &request.context(), now_ms);
    println!("result: {}", one_line(key, &eval));
    ExitCode::SUCCESS
}

fn verdict_word(verdict: Option<bool>) -> &'static str {
    match verdict {
        Some(true) => "matches",
        Some(false) => "does not match",
        None => "could not be evaluated",
    }
}

/// Asks the evaluator whether a condition holds for the context.
struct Oracle<'a> {
    blob: &'a Blob,
    flag: usize,
    request: &'a EdgeRequest,
    now_ms: i64,
}

impl Oracle<'_> {
    fn holds(&self, condition: &Condition) -> Option<bool> {
        let mut body: Body = self.blob.body.clone();
        let flag = body.flags.get_mut(self.flag)?;
        let default = flag.default_variant?;
        flag.enabled = true;
        flag.killed = false;
        flag.prerequisites.clear();
        // The condition itself, whatever the signed-identity rule decides for the flag.
        flag.kind = FlagKind::Release;
        flag.targeting = Targeting::Rules {
            rules: vec![Rule {
                id: "explain".into(),
                condition: condition.clone(),
                serve: Serve::Variant(default),
            }],
            fallthrough: Serve::Variant(default),
        };
        let key = flag.key.clone();
        let snapshot = Snapshot::from_blob(Blob::new(self.blob.header.clone(), body)).ok()?;
        let eval = evaluate(&snapshot, &key, &self.request.context(), self.now_ms);
        match eval.reason {
            Reason::TargetingMatch => Some(true),
            Reason::Default => Some(false),
            _ => None,
        }
    }
}

impl<'a> Oracle<'a> {
    /// The attribute's path and unsigned value when the request sent it unsigned only and
    /// this flag does not read it unsigned (the edge ignores it, as the evaluator does).
    fn ignored_unsigned(&self, attr: u32) -> Option<(String, &'a Value)> {
        let path = self.blob.body.attrs.get(attr as usize)?;
        let flag = self.blob.body.flags.get(self.flag)?;
        if flag.unsigned_attrs.contains(&attr)
            || Context::new(&self.request.signed)
                .lookup(path, false)
                .is_some()
        {
            return None;
        }
        let value = Context::new(&self.request.unsigned).lookup(path, false)?;
        Some((path.join("."), value))
    }
}

fn print_condition(oracle: &Oracle<'_>, body: &Body, condition: &Condition, depth: usize) {
    let indent = "  ".repeat(depth);
    let mark = match oracle.holds(condition) {
        Some(true) => "[holds]",
        Some(false) => "[fails]",
        None => "[?]",
    };
    match condition {
        Condition::All(items) if items.is_empty() => println!("{indent}{mark} (always)"),
        Condition::All(items) | Condition::Any(items) => {
            let word = if matches!(condition, Condition::All(_)) {
                "all of"
            } else {
                "any of"
            };
            println!("{indent}{mark} {word}:");
            for item in items {
                print_condition(oracle, body, item, depth + 1);
            }
        }
        Condition::Not(inner) => {
            println!("{indent}{mark} not:");
            print_condition(oracle, body, inner, depth + 1);
        }
        Condition::Segment(id) => {
            let name = body
                .segments
                .get(*id as usize)
                .map_or("?", |s| s.key.as_str());
            println!("{indent}{mark} in segment {name}");
        }
        Condition::Test(test) => match oracle.ignored_unsigned(test.attr) {
            Some((path, value)) => println!(
                "{indent}{mark} {} ({path} was sent unsigned ({value}) and is ignored: this \
                 flag reads it only from a signed token; see `unsigned-attributes`)",
                test_text(body, test)
            ),
            None => println!("{indent}{mark} {}", test_text(body, test)),
        },
    }
}

fn serve_text(flag: &Flag, serve: &Serve, body: &Body) -> String {
    let name = |v: u16| {
        flag.variants
            .get(usize::from(v))
            .map_or("?", |v| v.name.as_str())
            .to_owned()
    };
    match serve {
        Serve::Variant(v) => name(*v),
        Serve::Split(split) => {
            let parts: Vec<String> = split
                .weights
                .iter()
                .map(|(v, w)| format!("{} {}%", name(*v), f64::from(*w) / 1000.0))
                .collect();
            let by = body
                .attrs
                .get(split.bucket_by as usize)
                .map(|p| p.join("."))
                .unwrap_or_default();
            format!("split [{}] by {by}", parts.join(", "))
        }
    }
}

/// `user.plan equals "premium"`.
pub fn test_text(body: &Body, test: &Test) -> String {
    let attr = body
        .attrs
        .get(test.attr as usize)
        .map(|p| p.join("."))
        .unwrap_or_else(|| "?".into());
    let list = |id: u32| {
        body.lists.get(id as usize).map_or_else(
            || "?".to_owned(),
            |l| {
                let shown: Vec<&str> = l.iter().take(5).map(String::as_str).collect();
                let more = if l.len() > 5 {
                    format!(", ... {} in all", l.len())
                } else {
                    String::new()
                };
                format!("[{}{more}]", shown.join(", "))
            },
        )
    };
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms).map_or_else(
            || ms.to_string(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    };
    let op = match &test.op {
        Op::Equals(v) => format!("equals {v}"),
        Op::NotEquals(v) => format!("not-equals {v}"),
        Op::In(id) => format!("in {}", list(*id)),
        Op::NotIn(id) => format!("not-in {}", list(*id)),
        Op::Contains(v) => format!("contains {v}"),
        Op::StartsWith(s) => format!("starts-with {s:?}"),
        Op::EndsWith(s) => format!("ends-with {s:?}"),
        Op::Matches(id) => format!(
            "matches /{}/",
            body.regexes
                .get(*id as usize)
                .map_or("?", |regex| regex.source.as_str())
        ),
        Op::Lt(n) => format!("lt {n}"),
        Op::Le(n) => format!("le {n}"),
        Op::Gt(n) => format!("gt {n}"),
        Op::Ge(n) => format!("ge {n}"),
        Op::SemVer(cmp, v) => {
            let name = match cmp {
                SemVerCmp::Eq => "eq",
                SemVerCmp::Ne => "ne",
                SemVerCmp::Lt => "lt",
                SemVerCmp::Le => "le",
                SemVerCmp::Gt => "gt",
                SemVerCmp::Ge => "ge",
                SemVerCmp::Caret => "caret",
                SemVerCmp::Tilde => "tilde",
            };
            let pre = if v.pre.is_empty() {
                String::new()
            } else {
                format!("-{}", v.pre.join("."))
            };
            format!("semver-{name} {}.{}.{}{pre}", v.major, v.minor, v.patch)
        }
        Op::Before(ms) => format!("before {}", time(*ms)),
        Op::After(ms) => format!("after {}", time(*ms)),
        Op::Exists => "exists".to_owned(),
    };
    format!("{attr} {op}")
}
