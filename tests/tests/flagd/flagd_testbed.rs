//! flagd-testbed conformance: every scenario of the testbed's evaluator features, run against
//! `testkit-flags.json` compiled by our flagd import and evaluated by `shared_eval::evaluate`.
//!
//! Run with `cargo test -p integration-tests --test flagd flagd_testbed::`; it prints the per-feature
//! counts and a total. `FLAGD_TESTBED_FILTER=semver` runs only the features whose file name
//! contains `semver`. The features are read in place from the testbed directory (see
//! [`integration_tests::FLAGD_TESTBED`]), never copied.
//!
//! The steps are answered the way an OpenFeature SDK would: a typed evaluation whose flag value
//! is not of the requested type is a TYPE_MISMATCH, and on any error, or when the evaluator
//! leaves the value to the caller, the step's fallback value is the result.

use std::fs;
use std::io::Write;
use std::path::Path;

use flags_compile::flagd::compile_flagd;
use integration_tests::gherkin::{self, Case, Step};
use integration_tests::{FLAGD_TESTBED, flagd_testbed_dir};
use serde_json::{Map, Value};
use shared_eval::{Blob, Context, Header, Snapshot, evaluate};

/// Examples with these tags are not our semantics: v1 is flagd's legacy `fractional` bucketing.
const SKIPPED_TAGS: &[&str] = &["@fractional-v1"];

/// Evaluation time handed to the evaluator (only `$flagd.timestamp` reads it).
const NOW_MS: i64 = 1_700_000_000_000;

/// The flag types the steps request, as OpenFeature names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagType {
    Boolean,
    String,
    Integer,
    Float,
    Object,
}

impl FlagType {
    fn parse(name: &str) -> Result<FlagType, String> {
        Ok(match name {
            "Boolean" => FlagType::Boolean,
            "String" => FlagType::String,
            "Integer" => FlagType::Integer,
            "Float" => FlagType::Float,
            "Object" => FlagType::Object,
            other => return Err(format!("unknown flag type {other:?}")),
        })
    }

    /// A step's text as a value of this type.
    fn value(self, text: &str) -> Result<Value, String> {
        let bad = || format!("{text:?} is not a {self:?}");
        Ok(match self {
            FlagType::Boolean => Value::Bool(text.parse().map_err(|_| bad())?),
            FlagType::String => Value::String(text.to_string()),
            FlagType::Integer => Value::from(text.parse::<i64>().map_err(|_| bad())?),
            FlagType::Float => Value::from(text.parse::<f64>().map_err(|_| bad())?),
            FlagType::Object => {
                serde_json::from_str(text).map_err(|e| format!("{text:?} is not JSON: {e}"))?
            }
        })
    }

    /// Whether an SDK would accept `value` for this type (an Integer must be integral; a Float
    /// may be any number).
    fn accepts(self, value: &Value) -> bool {
        match self {
            FlagType::Boolean => value.is_boolean(),
            FlagType::String => value.is_string(),
            FlagType::Integer => value.is_i64() || value.is_u64(),
            FlagType::Float => value.is_number(),
            FlagType::Object => value.is_object(),
        }
    }

    /// Value equality as the type sees it (`0.0` equals `0` for a Float).
    fn same(self, a: &Value, b: &Value) -> bool {
        match self {
            FlagType::Integer | FlagType::Float => {
                a.as_f64().is_some_and(|x| b.as_f64() == Some(x))
            }
            _ => a == b,
        }
    }
}

/// What an OpenFeature SDK's "evaluation details" would hold.
#[derive(Debug)]
struct Details {
    value: Value,
    reason: String,
    error_code: Option<String>,
    metadata: Map<String, Value>,
}

/// The requested flag and the context built up by the `Given` steps.
#[derive(Default)]
struct Request {
    flag: Option<(FlagType, String, Value)>,
    context: Map<String, Value>,
    details: Option<Details>,
}

fn load_snapshot(dir: &Path) -> Snapshot {
    let file = dir.join("evaluator/flags/testkit-flags.json");
    let source =
        fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    let body = compile_flagd(&source, &file, "testbed").unwrap_or_else(|diagnostics| {
        let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        panic!("testkit-flags.json does not compile:\n{}", shown.join("\n"))
    });
    let header = Header {
        environment: "testbed".to_string(),
        version: 0,
        previous: None,
        content_hash: String::new(),
        author: "flagd-testbed".to_string(),
        source_commit: None,
        created_at: "2026-01-01T00:00:00Z".to_string(),
    };
    Snapshot::from_blob(Blob::new(header, body))
        .unwrap_or_else(|e| panic!("compiled testkit blob refused: {e}"))
}

/// The quoted arguments of a step (with `\"` unescaped) and its text with each replaced by `""`.
fn split_step(text: &str) -> (String, Vec<String>) {
    let mut shape = String::new();
    let mut args = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            shape.push(c);
            continue;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('"') => arg.push('"'),
                    Some(other) => {
                        arg.push('\\');
                        arg.push(other);
                    }
                    None => arg.push('\\'),
                },
                '"' => break,
                other => arg.push(other),
            }
        }
        shape.push_str("\"\"");
        args.push(arg);
    }
    (shape, args)
}

fn context_value(type_name: &str, text: &str) -> Result<Value, String> {
    FlagType::parse(type_name)?.value(text)
}

fn run_step(snapshot: &Snapshot, request: &mut Request, step: &Step) -> Result<(), String> {
    let (shape, args) = split_step(&step.text);
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("missing argument {i}"))
    };
    let details = |request: &Request| {
        request
            .details
            .as_ref()
            .map(|_| ())
            .ok_or("the flag was not evaluated")
    };
    match shape.as_str() {
        "an evaluator" => Ok(()),
        s if s.ends_with("-flag with key \"\" and a fallback value \"\"") => {
            let type_name = s.trim_start_matches("an ").trim_start_matches("a ");
            let flag_type = FlagType::parse(type_name.split('-').next().unwrap_or_default())?;
            request.flag = Some((flag_type, arg(0)?.to_string(), flag_type.value(arg(1)?)?));
            Ok(())
        }
        "a context containing a key \"\", with type \"\" and with value \"\"" => {
            request
                .context
                .insert(arg(0)?.to_string(), context_value(arg(1)?, arg(2)?)?);
            Ok(())
        }
        "a context containing a nested property with outer key \"\" and inner key \"\", with value \"\"" =>
        {
            let outer = request
                .context
                .entry(arg(0)?.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            let outer = outer
                .as_object_mut()
                .ok_or("outer key holds a non-object")?;
            outer.insert(arg(1)?.to_string(), Value::String(arg(2)?.to_string()));
            Ok(())
        }
        "a context containing a targeting key with value \"\"" => {
            request.context.insert(
                "targetingKey".to_string(),
                Value::String(arg(0)?.to_string()),
            );
            Ok(())
        }
        "the flag was evaluated with details" => {
            let (flag_type, key, fallback) = request.flag.clone().ok_or("no flag was requested")?;
            request.details = Some(resolve(
                snapshot,
                flag_type,
                &key,
                fallback,
                &request.context,
            ));
            Ok(())
        }
        "the resolved details value should be \"\"" => {
            details(request)?;
            let (flag_type, _, _) = request.flag.as_ref().ok_or("no flag")?;
            let got = &request.details.as_ref().ok_or("not evaluated")?.value;
            let expected = flag_type.value(arg(0)?)?;
            check(flag_type.same(got, &expected), "value", &expected, got)
        }
        "the reason should be \"\"" => {
            let got = &request.details.as_ref().ok_or("not evaluated")?.reason;
            check(got == arg(0)?, "reason", &arg(0)?, got)
        }
        "the error-code should be \"\"" => {
            let got = &request.details.as_ref().ok_or("not evaluated")?.error_code;
            check(got.as_deref() == Some(arg(0)?), "error code", &arg(0)?, got)
        }
        "the resolved metadata is empty" => {
            let got = &request.details.as_ref().ok_or("not evaluated")?.metadata;
            check(got.is_empty(), "metadata", &"{}", got)
        }
        "the resolved metadata should contain" => {
            let got = &request.details.as_ref().ok_or("not evaluated")?.metadata;
            let mut rows = step.table.iter();
            let header = rows.next().ok_or("metadata table has no header")?;
            if header != &["key", "metadata_type", "value"] {
                return Err(format!("unexpected metadata table header {header:?}"));
            }
            for row in rows {
                let [key, type_name, value] = row.as_slice() else {
                    return Err(format!("bad metadata row {row:?}"));
                };
                let flag_type = FlagType::parse(type_name)?;
                let expected = flag_type.value(value)?;
                let actual = got.get(key.as_str()).cloned().unwrap_or(Value::Null);
                check(
                    flag_type.same(&actual, &expected),
                    &format!("metadata {key:?}"),
                    &expected,
                    &actual,
                )?;
            }
            Ok(())
        }
        _ => Err(format!("unsupported step: {} {}", step.keyword, step.text)),
    }
}

fn check(
    ok: bool,
    what: &str,
    expected: &dyn std::fmt::Debug,
    got: &dyn std::fmt::Debug,
) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected:?}, got {got:?}"))
    }
}

/// Evaluates like an OpenFeature SDK over our evaluator: errors and absent values give the
/// caller's fallback; a value of the wrong type is a TYPE_MISMATCH.
fn resolve(
    snapshot: &Snapshot,
    flag_type: FlagType,
    key: &str,
    fallback: Value,
    context: &Map<String, Value>,
) -> Details {
    let evaluation = evaluate(snapshot, key, &Context::new(context), NOW_MS);
    let metadata = evaluation.metadata.cloned().unwrap_or_default();
    let error = |code: &str| Details {
        value: fallback.clone(),
        reason: "ERROR".to_string(),
        error_code: Some(code.to_string()),
        metadata: metadata.clone(),
    };
    if let Some(code) = evaluation.error {
        return error(code.as_str());
    }
    match evaluation.value {
        Some(value) if !flag_type.accepts(value) => error("TYPE_MISMATCH"),
        value => Details {
            value: value.cloned().unwrap_or_else(|| fallback.clone()),
            reason: evaluation.reason.as_str().to_string(),
            error_code: None,
            metadata,
        },
    }
}

fn run_case(snapshot: &Snapshot, case: &Case) -> Result<(), String> {
    let mut request = Request::default();
    for step in &case.steps {
        run_step(snapshot, &mut request, step)
            .map_err(|e| format!("`{} {}`: {e}", step.keyword, step.text))?;
    }
    if request.details.is_none() {
        return Err("the scenario never evaluated a flag".to_string());
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

#[test]
fn flagd_testbed_conformance() {
    let dir = flagd_testbed_dir().unwrap_or_else(|e| panic!("{e}"));
    let source_md = fs::read_to_string(dir.join("SOURCE.md")).unwrap_or_default();
    assert!(
        source_md.contains(&format!("release {}", FLAGD_TESTBED.version)),
        "{} is not flagd-testbed release {}: update FLAGD_TESTBED",
        dir.display(),
        FLAGD_TESTBED.version
    );
    let snapshot = load_snapshot(&dir);
    let filter = std::env::var("FLAGD_TESTBED_FILTER").unwrap_or_default();

    let gherkin_dir = dir.join("evaluator/gherkin");
    let mut files: Vec<_> = fs::read_dir(&gherkin_dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", gherkin_dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "feature"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no .feature files in {}",
        gherkin_dir.display()
    );

    let mut total = Tally::default();
    let mut failures = Vec::new();
    let mut summary = format!(
        "flagd-testbed {} from {}\n",
        FLAGD_TESTBED.version,
        dir.display()
    );
    for path in &files {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !file_name.contains(&filter) {
            continue;
        }
        let text =
            fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let feature = gherkin::parse(&text).unwrap_or_else(|e| panic!("{file_name}: {e}"));
        let mut tally = Tally::default();
        for case in &feature.cases {
            if case.tags.iter().any(|t| SKIPPED_TAGS.contains(&t.as_str())) {
                tally.skipped += 1;
                continue;
            }
            match run_case(&snapshot, case) {
                Ok(()) => tally.passed += 1,
                Err(why) => {
                    tally.failed += 1;
                    failures.push(format!("{file_name}:{}: {}: {why}", case.line, case.name));
                }
            }
        }
        summary += &format!(
            "{file_name}: {} passed, {} failed ({} skipped: {})\n",
            tally.passed,
            tally.failed,
            tally.skipped,
            SKIPPED_TAGS.join(" ")
        );
        total.passed += tally.passed;
        total.failed += tally.failed;
        total.skipped += tally.skipped;
    }
    summary += &format!(
        "total: {} passed, {} failed, {} skipped, {} run\n",
        total.passed,
        total.failed,
        total.skipped,
        total.passed + total.failed
    );
    // Straight to the process's stderr: the test harness captures `println!`/`eprintln!`, and
    // the counts should show in the test command's output even when everything passes.
    let _ = std::io::stderr().write_all(summary.as_bytes());
    assert!(
        failures.is_empty(),
        "{} flagd-testbed case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        total.passed > 0,
        "no flagd-testbed case ran (filter {filter:?})"
    );
}

#[test]
fn step_arguments_unescape_quotes() {
    let (shape, args) = split_step(r#"the resolved details value should be "{\"a\": 1}""#);
    assert_eq!(shape, "the resolved details value should be \"\"");
    assert_eq!(args, [r#"{"a": 1}"#]);
}
