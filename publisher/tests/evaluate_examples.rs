//! End to end: `examples/flags` compiled and evaluated by the edge's evaluator, for contexts
//! whose answers were worked out by hand from the flag files (the comments say which rule).
//! Splits are checked two ways: the bucket of a known user against the rule's threshold, and
//! the share of 10,000 users that a percentage actually gets.

use std::path::Path;

use chrono::NaiveDate;
use flags_compile::blob_file::{Provenance, seal};
use flags_compile::{CompileOptions, compile_path};
use serde_json::{Map, Value, json};
use shared_eval::{Context, Reason, Snapshot, bucket, evaluate};

/// 2026-11-21T12:00:00Z: "now" for every evaluation here.
const NOW_MS: i64 = 1_795_262_400_000;

fn snapshot(env: &str) -> Snapshot {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flags");
    let options = CompileOptions {
        environment: env.into(),
        today: NaiveDate::from_ymd_opt(2026, 11, 21),
        new_environment: false,
    };
    let compiled = compile_path(&dir, &options).unwrap_or_else(|d| panic!("{d:#?}"));
    let provenance = Provenance {
        author: "test".into(),
        source_commit: None,
        source_dirty: false,
        created_at: "2026-11-21T12:00:00Z".into(),
    };
    Snapshot::from_blob(seal(compiled.body, env, 0, None, &provenance))
        .expect("the evaluator accepts the blob")
}

fn ctx(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("context must be an object"),
    }
}

/// `(value, variant, reason, rule)` of `key` for a fully trusted context.
fn eval(snapshot: &Snapshot, key: &str, context: Value) -> (Value, String, Reason, Option<String>) {
    let attrs = ctx(context);
    let e = evaluate(snapshot, key, &Context::new(&attrs), NOW_MS);
    assert_eq!(e.error, None, "{key}: {:?}", e.error_details);
    (
        e.value.cloned().unwrap_or(Value::Null),
        e.variant.unwrap_or_default().to_owned(),
        e.reason,
        e.rule.map(str::to_owned),
    )
}

fn alice() -> Value {
    json!({"targetingKey": "alice", "email": "alice@example.com", "plan": "premium", "internal": true})
}
fn bob() -> Value {
    json!({"targetingKey": "bob", "email": "bob@example.org", "plan": "free", "internal": false})
}
fn carol() -> Value {
    json!({"targetingKey": "carol", "email": "carol@example.net", "plan": "premium", "internal": false})
}

#[test]
fn demo_users_in_dev_see_what_the_dashboard_test_expects() {
    let s = snapshot("dev");
    // new-chart: alice is in internal-testers (internal: true); carol is on a paying plan; bob
    // is neither and falls through to the default.
    assert_eq!(
        eval(&s, "new-chart", alice()),
        (
            json!(true),
            "on".into(),
            Reason::TargetingMatch,
            Some("internal".into())
        )
    );
    assert_eq!(
        eval(&s, "new-chart", carol()),
        (
            json!(true),
            "on".into(),
            Reason::TargetingMatch,
            Some("paying-plans".into())
        )
    );
    assert_eq!(
        eval(&s, "new-chart", bob()),
        (json!(false), "off".into(), Reason::Default, None)
    );
    // beta-banner: beta-users includes internal-testers, so alice only.
    assert_eq!(eval(&s, "beta-banner", alice()).0, json!(true));
    assert_eq!(
        eval(&s, "beta-banner", bob()),
        (json!(false), "off".into(), Reason::Default, None)
    );
    assert_eq!(eval(&s, "beta-banner", carol()).0, json!(false));
    // widget-config: paying plans get the detailed widget.
    let detailed = json!({"title": "Top accounts by MRR", "limit": 10, "showTrend": true});
    assert_eq!(eval(&s, "widget-config", alice()).0, detailed);
    assert_eq!(
        eval(&s, "widget-config", bob()),
        (
            json!({"title": "Top accounts", "limit": 5}),
            "compact".into(),
            Reason::Default,
            None
        )
    );
}

#[test]
fn prod_rules_prerequisites_and_segments() {
    let s = snapshot("prod");
    assert_eq!(
        eval(&s, "new-chart", alice()).3.as_deref(),
        Some("internal")
    );
    // A contractor on the internal list file, without `internal: true`.
    let contractor = json!({"targetingKey": "sam", "email": "sam.qa@testing-partner.test"});
    assert_eq!(
        eval(&s, "new-chart", contractor.clone()).3.as_deref(),
        Some("internal")
    );
    assert_eq!(eval(&s, "internal-debug-panel", contractor).0, json!(true));
    // Staff address matched by the segment's regex.
    assert_eq!(
        eval(
            &s,
            "internal-debug-panel",
            json!({"targetingKey": "x", "email": "dana@example.com"})
        )
        .0,
        json!(true)
    );
    assert_eq!(
        eval(
            &s,
            "internal-debug-panel",
            json!({"targetingKey": "x", "email": "dana@example.com.evil"})
        )
        .0,
        json!(false)
    );
    // Prerequisite: Internet Explorer gets the classic layout, so never the new chart, even staff.
    let mut ie = alice();
    ie["browser"] = json!({"name": "Internet Explorer"});
    assert_eq!(
        eval(&s, "new-dashboard-layout", ie.clone()),
        (
            json!(false),
            "off".into(),
            Reason::TargetingMatch,
            Some("legacy-browsers".into())
        )
    );
    assert_eq!(
        eval(&s, "new-chart", ie),
        (json!(false), "off".into(), Reason::Default, None)
    );
    // No org id: the gradual rule does not apply, default.
    assert_eq!(
        eval(&s, "new-chart", bob()),
        (json!(false), "off".into(), Reason::Default, None)
    );
    // An org id: 25% of organisations by SipHash of ("new-chart", org id).
    for org in ["org-1", "org-2", "org-3", "org-4", "org-5", "org-6"] {
        let mut b = bob();
        b["org"] = json!({"id": org});
        let expected = bucket("new-chart", org) < 25_000;
        let (value, _, reason, rule) = eval(&s, "new-chart", b);
        assert_eq!(
            (value, reason, rule.as_deref()),
            (json!(expected), Reason::Split, Some("gradual")),
            "{org}"
        );
    }
    // widget-config: an organisation on the enterprise list file.
    let mut big = bob();
    big["org"] = json!({"id": "org-globex"});
    assert_eq!(
        eval(&s, "widget-config", big).3.as_deref(),
        Some("big-accounts")
    );
    // Kill switch on with no rules: STATIC.
    assert_eq!(
        eval(&s, "live-updates", bob()),
        (json!(true), "on".into(), Reason::Static, None)
    );
    // Number flag with a semver rule: 3.10.0 >= 3.2.0 as versions (not as strings).
    let desktop = |v: &str| json!({"targetingKey": "d", "app": {"name": "desktop", "version": v}});
    assert_eq!(eval(&s, "api-page-size", desktop("3.10.0")).0, json!(200));
    assert_eq!(eval(&s, "api-page-size", desktop("3.1.9")).0, json!(50));
    assert_eq!(
        eval(&s, "api-page-size", desktop("3.2.0-beta.1")).0,
        json!(50),
        "a pre-release is below its release"
    );
}

#[test]
fn premium_after_2024() {
    let s = snapshot("prod");
    let user = |plan: &str, signup: Value| json!({"targetingKey": "u", "plan": plan, "signupDate": signup});
    assert_eq!(
        eval(
            &s,
            "premium-export",
            user("premium", json!("2024-03-15T10:00:00Z"))
        )
        .0,
        json!(true)
    );
    assert_eq!(
        eval(&s, "premium-export", user("premium", json!(1_706_745_600))).0,
        json!(true),
        "epoch seconds, 2024-02-01"
    );
    assert_eq!(
        eval(
            &s,
            "premium-export",
            user("premium", json!("2023-12-31T23:59:59Z"))
        )
        .0,
        json!(false)
    );
    assert_eq!(
        eval(
            &s,
            "premium-export",
            user("free", json!("2025-01-01T00:00:00Z"))
        )
        .0,
        json!(false)
    );
    assert_eq!(
        eval(
            &s,
            "premium-export",
            json!({"targetingKey": "u", "plan": "premium"})
        )
        .0,
        json!(false),
        "no signup date"
    );
}

#[test]
fn ten_percent_of_ios_users_in_california() {
    let s = snapshot("prod");
    let user = |key: String, os: &str, region: &str| json!({"targetingKey": key, "device": {"os": os}, "geo": {"region": region}});
    assert_eq!(
        eval(&s, "ios-offline-mode", user("u".into(), "Android", "CA")),
        (json!(false), "off".into(), Reason::Default, None)
    );
    assert_eq!(
        eval(&s, "ios-offline-mode", user("u".into(), "iOS", "NY")).0,
        json!(false)
    );
    let mut on = 0;
    for i in 0..10_000 {
        let key = format!("user-{i}");
        let expected = bucket("ios-offline-mode", &key) < 10_000;
        let (value, _, reason, _) = eval(&s, "ios-offline-mode", user(key, "iOS", "CA"));
        assert_eq!((value.clone(), reason), (json!(expected), Reason::Split));
        on += usize::from(value == json!(true));
    }
    assert!(
        (900..=1_100).contains(&on),
        "{on} of 10,000 iOS users in California got it; expected about 1,000"
    );
}

#[test]
fn experiment_splits_new_users_50_50() {
    let s = snapshot("prod");
    let mut guided = 0;
    for i in 0..4_000 {
        let user = json!({"targetingKey": format!("n{i}"), "signupDate": "2026-11-02T09:00:00Z"});
        guided += usize::from(eval(&s, "onboarding-tour", user).1 == "guided-tour");
    }
    assert!(
        (1_800..=2_200).contains(&guided),
        "{guided} of 4,000 in guided-tour"
    );
    let old = json!({"targetingKey": "o", "signupDate": "2025-01-01T00:00:00Z"});
    assert_eq!(
        eval(&s, "onboarding-tour", old),
        (
            json!("checklist"),
            "checklist".into(),
            Reason::Default,
            None
        )
    );
}

#[test]
fn permission_flags_need_a_signed_identity_and_unsigned_attributes_are_opt_in() {
    let s = snapshot("prod");
    let empty = Map::new();
    let claims = ctx(json!({"internal": true, "targetingKey": "mallory"}));
    let unsigned = Context::with_unsigned(&empty, &claims, false);
    let e = evaluate(&s, "internal-debug-panel", &unsigned, NOW_MS);
    assert_eq!(
        (e.value, e.reason),
        (Some(&json!(false)), Reason::Default),
        "a browser cannot claim to be staff"
    );

    // ios-offline-mode lists device.os and geo.region as unsigned; premium-export lists nothing.
    let signed = ctx(json!({"targetingKey": "user-3"}));
    let body = ctx(
        json!({"device": {"os": "iOS"}, "geo": {"region": "CA"}, "plan": "premium", "signupDate": "2025-01-01T00:00:00Z"}),
    );
    let context = Context::with_unsigned(&signed, &body, true);
    let e = evaluate(&s, "ios-offline-mode", &context, NOW_MS);
    assert_eq!(
        e.reason,
        Reason::Split,
        "unsigned device and region are read"
    );
    let e = evaluate(&s, "premium-export", &context, NOW_MS);
    assert_eq!(
        (e.value, e.reason),
        (Some(&json!(false)), Reason::Default),
        "unsigned plan is ignored"
    );
}

#[test]
fn off_and_killed_serve_the_safe_default() {
    let mut blob = snapshot("prod").into_blob();
    let i = blob
        .body
        .flags
        .iter()
        .position(|f| f.key == "live-updates")
        .unwrap();
    blob.body.flags[i].killed = true;
    let j = blob
        .body
        .flags
        .iter()
        .position(|f| f.key == "widget-config")
        .unwrap();
    blob.body.flags[j].enabled = false;
    let s = Snapshot::from_blob(shared_eval::Blob::new(blob.header.clone(), blob.body)).unwrap();
    assert_eq!(
        eval(&s, "live-updates", bob()),
        (json!(false), "off".into(), Reason::Disabled, None)
    );
    assert_eq!(eval(&s, "widget-config", alice()).2, Reason::Disabled);
    assert_eq!(eval(&s, "widget-config", alice()).1, "compact");
    // A flag with no prod section is off in prod.
    let dev_only = snapshot("staging");
    assert_eq!(
        eval(&dev_only, "beta-banner", alice()),
        (json!(false), "off".into(), Reason::Disabled, None)
    );
}

#[test]
fn cli_eval_and_explain_on_the_examples() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_publisher"))
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap()
    };
    let alice = alice().to_string();
    let out = run(&[
        "eval",
        "--flags",
        "examples/flags",
        "--env",
        "dev",
        "--context",
        &alice,
        "new-chart",
        "--json",
    ]);
    assert!(out.status.success());
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        body,
        json!({"key": "new-chart", "value": true, "variant": "on", "reason": "TARGETING_MATCH", "metadata": {}})
    );

    let out = run(&[
        "eval",
        "--flags",
        "examples/flags",
        "--context",
        &bob().to_string(),
        "widget-config",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"widget-config = {"limit":5,"title":"Top accounts"} (variant compact, reason DEFAULT)"#
    );

    let out = run(&[
        "explain",
        "--flags",
        "examples/flags",
        "--context",
        &bob().to_string(),
        "new-chart",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for line in [
        "flag new-chart in prod: enabled",
        "prerequisite new-dashboard-layout: serves on, needs one of [on]: holds",
        "rule internal: does not match -> serves on",
        "  [fails] in segment internal-testers",
        "rule paying-plans: does not match -> serves on",
        "  [fails] plan in [enterprise, premium]",
        "rule gradual: does not match -> serves split [on 25%, off 75%] by org.id",
        "  [fails] org.id exists",
        "fallthrough: serves off",
        "result: new-chart = false (variant off, reason DEFAULT)",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line:?} in\n{text}"
        );
    }

    // A failing prerequisite: the rules are not tried at all.
    let ie =
        json!({"targetingKey": "bob", "plan": "premium", "browser": {"name": "Internet Explorer"}})
            .to_string();
    let out = run(&[
        "explain",
        "--flags",
        "examples/flags",
        "--context",
        &ie,
        "new-chart",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "prerequisite new-dashboard-layout: serves off, needs one of [on]: fails",
        "a prerequisite fails: serves off without trying its rules",
        "rule paying-plans: not tried",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line:?} in\n{text}"
        );
    }
}
