//! `kill` / `unkill` through the publishing library on the embedded local store: what gets
//! published, what the edge then serves, what the audit trail says, and that a kill survives
//! a later push until someone undoes it. (The S3 + worker + purge path is covered end to end in
//! `tests/tests/e2e/e2e_kill_switch.rs`.)

use crate::common::{environment, examples, provenance, published};
use flags_store::layout::Action;
use flags_store::publish::{Environment, KillTarget, Outcome, PublishError};
use serde_json::{Map, Value, json};
use shared_eval::{Context, Reason, Snapshot, evaluate};

async fn deployed(env: &Environment) -> Snapshot {
    let (_, blob) = env
        .deployed()
        .await
        .expect("read")
        .expect("something deployed");
    Snapshot::from_blob(blob).expect("deployed blob loads at the edge")
}

/// alice's context from the demo: premium, internal tester.
fn alice() -> Map<String, Value> {
    json!({"targetingKey": "alice", "email": "alice@example.com", "plan": "premium", "internal": true, "country": "US"})
        .as_object()
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn kill_serves_the_safe_default_records_why_and_unkill_restores() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    published(
        env.push(examples(), &provenance("tester"), None)
            .await
            .unwrap(),
    );
    let ctx = alice();
    let before = deployed(&env).await;
    let on = evaluate(&before, "beta-banner", &Context::new(&ctx), 0);
    assert_eq!(
        on.value,
        Some(&json!(true)),
        "alice sees the banner before the kill: {on:?}"
    );

    let record = published(
        env.set_killed(
            &KillTarget::Flags(vec!["beta-banner".into()]),
            true,
            "oncall",
            "2026-11-21T08:01:00Z",
            Some("banner breaks checkout".into()),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        (record.version, record.action, record.flags.clone()),
        (2, Action::Kill, vec!["beta-banner".to_owned()])
    );
    assert_eq!(
        record.source_commit.as_deref(),
        Some("abc1234"),
        "a kill keeps the deployed commit"
    );
    let killed = deployed(&env).await;
    let off = evaluate(&killed, "beta-banner", &Context::new(&ctx), 0);
    assert_eq!(
        (off.value, off.reason),
        (Some(&json!(false)), Reason::Disabled),
        "{off:?}"
    );
    let other = evaluate(&killed, "new-chart", &Context::new(&ctx), 0);
    assert_eq!(
        other.value,
        Some(&json!(true)),
        "other flags are untouched: {other:?}"
    );

    let audit = env.audit().await.unwrap();
    let entry = serde_json::to_value(
        audit
            .iter()
            .find(|e| e.version == 2)
            .expect("audit entry for the kill"),
    )
    .unwrap();
    assert_eq!(entry["action"], "kill");
    assert_eq!(entry["who"], "oncall");
    assert!(
        entry["what"].as_str().unwrap().contains("kill beta-banner"),
        "{entry}"
    );
    assert_eq!(entry["message"], "banner breaks checkout");

    // Killing again changes nothing and publishes nothing.
    let again = env
        .set_killed(
            &KillTarget::Flags(vec!["beta-banner".into()]),
            true,
            "oncall",
            "t",
            None,
        )
        .await
        .unwrap();
    assert!(
        matches!(again, Outcome::Unchanged { version: 2 }),
        "{again:?}"
    );

    let record = published(
        env.set_killed(
            &KillTarget::Flags(vec!["beta-banner".into()]),
            false,
            "oncall",
            "t",
            None,
        )
        .await
        .unwrap(),
    );
    assert_eq!((record.version, record.action), (3, Action::Unkill));
    let revived = deployed(&env).await;
    let back = evaluate(&revived, "beta-banner", &Context::new(&ctx), 0);
    assert_eq!(back.value, Some(&json!(true)), "{back:?}");
}

#[tokio::test]
async fn a_kill_survives_a_push_from_files_until_unkilled() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    published(
        env.push(examples(), &provenance("tester"), None)
            .await
            .unwrap(),
    );
    published(
        env.set_killed(
            &KillTarget::Flags(vec!["new-chart".into()]),
            true,
            "oncall",
            "t",
            None,
        )
        .await
        .unwrap(),
    );

    // An unrelated change merged meanwhile: the files know nothing of the kill.
    let mut changed = examples();
    for flag in changed
        .flags
        .iter_mut()
        .filter(|f| f.key == "onboarding-tour")
    {
        flag.enabled = false;
    }
    published(
        env.push(changed, &provenance("tester"), None)
            .await
            .unwrap(),
    );
    let snapshot = deployed(&env).await;
    let ctx = alice();
    let chart = evaluate(&snapshot, "new-chart", &Context::new(&ctx), 0);
    assert_eq!(
        chart.reason,
        Reason::Disabled,
        "the kill is still in force after the push: {chart:?}"
    );
    assert!(
        snapshot
            .blob()
            .body
            .flags
            .iter()
            .any(|f| f.key == "onboarding-tour" && !f.enabled),
        "the push itself landed"
    );
}

#[tokio::test]
async fn kill_all_and_unknown_flags() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    let none = env
        .set_killed(&KillTarget::All, true, "oncall", "t", None)
        .await;
    assert!(
        matches!(none, Err(PublishError::NothingPublished { .. })),
        "{none:?}"
    );

    published(
        env.push(examples(), &provenance("tester"), None)
            .await
            .unwrap(),
    );
    let unknown = env
        .set_killed(
            &KillTarget::Flags(vec!["beta-banner".into(), "no-such-flag".into()]),
            true,
            "oncall",
            "t",
            None,
        )
        .await;
    match unknown {
        Err(e @ PublishError::UnknownFlags { .. }) => {
            assert!(e.to_string().contains("no-such-flag"), "{e}")
        }
        other => panic!("expected UnknownFlags, got {other:?}"),
    }
    assert_eq!(
        env.history().await.unwrap().records.len(),
        1,
        "a refused kill publishes nothing"
    );

    let record = published(
        env.set_killed(
            &KillTarget::All,
            true,
            "oncall",
            "t",
            Some("incident".into()),
        )
        .await
        .unwrap(),
    );
    let snapshot = deployed(&env).await;
    assert_eq!(record.flags.len(), snapshot.blob().body.flags.len());
    let ctx = alice();
    for (key, evaluation) in shared_eval::evaluate_all(&snapshot, &Context::new(&ctx), 0) {
        assert_eq!(evaluation.reason, Reason::Disabled, "{key}: {evaluation:?}");
    }
}
