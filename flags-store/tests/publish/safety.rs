//! Safe by default: a push that would remove most (or all) of the deployed flags is refused
//! unless allowed; a mistyped flag key or environment is answered with "did you mean"; records
//! carry the real time whatever instant a rollout tick simulates; a push from a dirty tree is
//! recorded as such; `drift --against` an environment with nothing published cannot compare.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use flags_compile::{CompileOptions, compile_path};
use flags_store::drift::Status;
use flags_store::layout::{AuditEntry, RolloutStatus};
use flags_store::publish::{self, Environment, KillTarget, PublishError, RemovalPolicy, TickTime};
use flags_store::store::LocalStore;
use shared_eval::Body;

use crate::common::{environment, examples, provenance, published};

/// `examples()` without the flags whose key is not in `keep`.
fn only(keep: &[&str]) -> Body {
    let mut body = examples();
    let removed: Vec<String> = body
        .flags
        .iter()
        .filter(|f| !keep.contains(&f.key.as_str()))
        .map(|f| f.key.clone())
        .collect();
    // Removing flags by hand would leave prerequisite indices dangling: compile the rest.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flags");
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&dir, tmp.path());
    for key in &removed {
        std::fs::remove_file(tmp.path().join(format!("flags/{key}.yaml"))).unwrap();
    }
    body = compile_path(tmp.path(), &CompileOptions::new("dev"))
        .unwrap_or_else(|d| panic!("{d:?}"))
        .body;
    body
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_push_removing_most_flags_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    published(env.push(examples(), &provenance("a"), None).await.unwrap());
    let deployed = examples().flags.len();
    assert_eq!(deployed, 11);

    // Every flag removed (a push from the wrong directory): refused, naming them.
    let refused = env.push(Body::default(), &provenance("a"), None).await;
    let Err(error @ PublishError::TooManyRemovals { .. }) = refused else {
        panic!("{refused:?}")
    };
    let text = error.to_string();
    assert!(
        text.contains(
            "removes every flag dev serves (11: api-page-size, beta-banner, checkout-v2,"
        ) && text.contains("+6 more")
            && text.contains("nothing was published")
            && text.contains("--allow-removals"),
        "{text}"
    );
    // More than half: refused too; half or less passes.
    let few = only(&[
        "beta-banner",
        "live-updates",
        "new-chart",
        "new-dashboard-layout",
    ]);
    let refused = env.push(few.clone(), &provenance("a"), None).await;
    assert!(
        matches!(&refused, Err(PublishError::TooManyRemovals { removed, .. }) if removed.len() == 7),
        "{refused:?}"
    );
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("removes 7 of the 11 flags dev serves"),
    );
    assert_eq!(
        env.history().await.unwrap().records.len(),
        1,
        "nothing published"
    );
    let most = only(&[
        "api-page-size",
        "beta-banner",
        "checkout-v2",
        "internal-debug-panel",
        "live-updates",
        "new-chart",
        "new-dashboard-layout",
    ]);
    published(env.push(most, &provenance("a"), None).await.unwrap());

    // A lower bar, or none at all.
    let strict = env.clone().with_removals(RemovalPolicy::AtMost(10));
    let refused = strict.push(examples(), &provenance("a"), None).await;
    assert!(refused.is_ok(), "adding is never refused: {refused:?}");
    assert!(matches!(
        strict.push(few.clone(), &provenance("a"), None).await,
        Err(PublishError::TooManyRemovals { .. })
    ));
    let allowed = env.clone().with_removals(RemovalPolicy::Any);
    published(
        allowed
            .push(Body::default(), &provenance("a"), None)
            .await
            .unwrap(),
    );
}

#[tokio::test]
async fn a_mistyped_flag_key_is_answered_with_the_closest() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    published(env.push(examples(), &provenance("a"), None).await.unwrap());
    let refused = env
        .set_killed(
            &KillTarget::Flags(vec!["beta-baner".into(), "zzz".into()]),
            true,
            "oncall",
            "2026-11-21T08:01:00Z",
            None,
        )
        .await;
    let text = refused.unwrap_err().to_string();
    assert_eq!(
        text,
        "dev has no flag beta-baner (did you mean `beta-banner`?), zzz"
    );
}

#[tokio::test]
async fn the_environments_of_a_store_are_those_with_a_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn flags_store::store::ObjectStore> = Arc::new(LocalStore::new(dir.path()));
    assert!(
        publish::environments(store.as_ref())
            .await
            .unwrap()
            .is_empty()
    );
    for name in ["prod", "dev"] {
        let env = Environment::new(store.clone(), name).unwrap();
        published(env.push(examples(), &provenance("a"), None).await.unwrap());
    }
    assert_eq!(
        publish::environments(store.as_ref()).await.unwrap(),
        ["dev", "prod"]
    );
}

#[tokio::test]
async fn a_dirty_source_is_recorded_in_the_version_and_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    let mut dirty = provenance("a");
    dirty.source_dirty = true;
    let record = published(env.push(examples(), &dirty, None).await.unwrap());
    assert!(record.source_dirty);
    let audit: Vec<AuditEntry> = env.audit().await.unwrap();
    assert!(audit[0].source_dirty);
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["source_dirty"], true);
    // A kill serves the same source again: still dirty.
    let killed = published(
        env.set_killed(
            &KillTarget::Flags(vec!["beta-banner".into()]),
            true,
            "oncall",
            "2026-11-21T08:30:00Z",
            None,
        )
        .await
        .unwrap(),
    );
    assert!(killed.source_dirty);
    // Clean records do not carry the field, and records written before it existed still read.
    let mut clean = provenance("a");
    clean.created_at = "2026-11-21T09:00:00Z".into();
    let record = published(
        env.push(
            only(&[
                "api-page-size",
                "beta-banner",
                "checkout-v2",
                "internal-debug-panel",
                "live-updates",
                "new-chart",
                "new-dashboard-layout",
            ]),
            &clean,
            None,
        )
        .await
        .unwrap(),
    );
    assert!(!record.source_dirty);
    assert!(
        serde_json::to_value(&record)
            .unwrap()
            .get("source_dirty")
            .is_none()
    );
}

const FLAG: &str = "key: new-checkout\nowner: t\ntype: release\ndefault: off\nenvironments:\n  prod:\n    enabled: true\n    rules:\n      - id: rollout\n        serve:\n          rollout:\n            variant: on\n            others: off\n            stages:\n              - { percent: 1, soak: 1h }\n              - { percent: 10, soak: 1h }\n              - { percent: 100 }\n";

/// A tick that simulates a later instant advances what is due then, but writes the real time:
/// the version's `created_at` and the stage's `since`, so the next real tick measures the
/// soak from when the stage really went live.
#[tokio::test]
async fn a_simulated_tick_records_the_real_time() {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags-dir");
    std::fs::create_dir_all(flags.join("flags")).unwrap();
    std::fs::write(flags.join("flags/new-checkout.yaml"), FLAG).unwrap();
    let compiled = compile_path(&flags, &CompileOptions::new("prod")).unwrap();
    let env =
        Environment::new(Arc::new(LocalStore::new(dir.path().join("store"))), "prod").unwrap();
    let mut by = provenance("dev");
    by.created_at = flags_compile::blob_file::now_rfc3339();
    env.push_scheduled(compiled.body, compiled.schedules, &by, None)
        .await
        .unwrap();

    let before = Utc::now();
    let future = before + Duration::days(30);
    let (moved, outcome) = env
        .rollout_tick(TickTime::simulated(future), "cron")
        .await
        .unwrap();
    assert_eq!((moved[0].from, moved[0].to), (1, 2));
    let record = published(outcome);
    let written: DateTime<Utc> = record.created_at.parse().unwrap();
    assert!(
        written >= before - Duration::seconds(1) && written <= Utc::now() + Duration::seconds(1),
        "the real time, not {future}: {}",
        record.created_at
    );
    assert!(record.created_at.ends_with('Z'), "{}", record.created_at);
    let state = &env.rollouts().await.unwrap()[0];
    assert_eq!(state.since, record.created_at);
    assert_eq!(state.status, RolloutStatus::Running);

    // A real tick now: stage 2 went live just now, so nothing is due for an hour.
    let (moved, _) = env.rollout_tick(TickTime::clock(), "cron").await.unwrap();
    assert!(moved.is_empty(), "{moved:?}");
    // And a tick an hour and a minute on (simulated) advances it again.
    let (moved, _) = env
        .rollout_tick(
            TickTime::simulated(Utc::now() + Duration::minutes(61)),
            "cron",
        )
        .await
        .unwrap();
    assert_eq!((moved[0].from, moved[0].to), (2, 3));
}

/// A health check that fails is reported as such on the transition (the CLI exits non-zero).
#[tokio::test]
async fn a_failed_health_check_marks_the_transition() {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags-dir");
    std::fs::create_dir_all(flags.join("flags")).unwrap();
    std::fs::write(
        flags.join("flags/new-checkout.yaml"),
        format!("{FLAG}            health: {{ command: \"exit 3\" }}\n"),
    )
    .unwrap();
    let compiled = compile_path(&flags, &CompileOptions::new("prod")).unwrap();
    let env =
        Environment::new(Arc::new(LocalStore::new(dir.path().join("store"))), "prod").unwrap();
    let mut by = provenance("dev");
    by.created_at = flags_compile::blob_file::now_rfc3339();
    env.push_scheduled(compiled.body, compiled.schedules, &by, None)
        .await
        .unwrap();
    let (moved, _) = env
        .rollout_tick(TickTime::simulated(Utc::now() + Duration::hours(2)), "cron")
        .await
        .unwrap();
    assert_eq!(moved.len(), 1);
    assert!(moved[0].check_failed, "{moved:?}");
    assert_eq!(moved[0].status, RolloutStatus::Held);
}

#[tokio::test]
async fn drift_against_an_environment_with_nothing_published_cannot_compare() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn flags_store::store::ObjectStore> =
        Arc::new(LocalStore::new(dir.path().join("store")));
    let staging = Environment::new(store.clone(), "staging").unwrap();
    let prod = Environment::new(store, "prod").unwrap();
    let flags = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flags");
    let compiled = compile_path(&flags, &CompileOptions::new("staging")).unwrap();
    staging
        .push_scheduled(compiled.body, compiled.schedules, &provenance("a"), None)
        .await
        .unwrap();
    let report = flags_store::drift::against::compare(&staging, &prod, &flags).await;
    assert_eq!(report.status, Status::Unchecked, "{report:#?}");
    assert!(report.flags.is_empty(), "{report:#?}");
    assert_eq!(
        report.unchecked[0].error,
        "cannot compare: prod has nothing published"
    );
}
