//! Previews report what a push does, no more: with a rollout schedule advanced past its first
//! stage by `rollout tick`, the dry run (`plan`, which `push --dry-run` and `diff` print) shows
//! no change for the unchanged files, a push of them publishes nothing, and a canary push's
//! recorded summary lists only the flag that really changed, not the one whose only difference
//! from the files is its live stage.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use flags_compile::blob_file::Provenance;
use flags_compile::{CompileOptions, Compiled, compile_path};
use flags_store::layout::{Action, Share};
use flags_store::publish::{Environment, Outcome};
use flags_store::store::LocalStore;

const T0: &str = "2026-12-01T00:00:00Z";

/// `csv-export` rolled out 10% -> 100% (no soak, no health check) and `report-beta`, whose
/// fallthrough is `report_beta`.
fn write_flags(dir: &Path, report_beta: &str) {
    std::fs::create_dir_all(dir.join("flags")).unwrap();
    std::fs::write(
        dir.join("flags/csv-export.yaml"),
        "key: csv-export\ndescription: CSV export.\nowner: team-reports\ntype: release\ndefault: off\n\
         environments:\n  prod:\n    enabled: true\n    rules:\n      - id: progressive\n        serve:\n          \
         rollout:\n            variant: on\n            others: off\n            stages:\n              \
         - { percent: 10 }\n              - { percent: 100 }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("flags/report-beta.yaml"),
        format!(
            "key: report-beta\ndescription: The new reports.\nowner: team-reports\ntype: release\ndefault: off\n\
             environments:\n  prod:\n    enabled: true\n    fallthrough: {report_beta}\n"
        ),
    )
    .unwrap();
}

fn compile(dir: &Path) -> Compiled {
    compile_path(dir, &CompileOptions::new("prod")).expect("compiles")
}

fn provenance(at: &str) -> Provenance {
    Provenance {
        author: "dev".into(),
        source_commit: None,
        source_dirty: false,
        created_at: at.into(),
    }
}

/// Pushed at stage 1, then ticked to stage 2 (100%).
async fn advanced() -> (tempfile::TempDir, Environment) {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags-dir");
    write_flags(&flags, "off");
    let compiled = compile(&flags);
    let env =
        Environment::new(Arc::new(LocalStore::new(dir.path().join("store"))), "prod").unwrap();
    env.push_scheduled(compiled.body, compiled.schedules, &provenance(T0), None)
        .await
        .unwrap();
    let now: DateTime<Utc> = T0.parse().unwrap();
    let (moved, outcome) = env.rollout_tick(now, "cron").await.unwrap();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert!(matches!(outcome, Outcome::Published(_)), "{outcome:?}");
    assert_eq!(env.rollouts().await.unwrap()[0].stage, 2);
    (dir, env)
}

#[tokio::test]
async fn a_dry_run_of_unchanged_files_shows_no_change_after_a_tick() {
    let (dir, env) = advanced().await;
    let compiled = compile(&dir.path().join("flags-dir"));
    let plan = env
        .plan(compiled.body.clone(), compiled.schedules.clone())
        .await
        .unwrap();
    assert!(
        plan.diff.is_empty(),
        "the live stage is not a change:\n{}",
        plan.diff
    );
    let (_, deployed) = env.deployed().await.unwrap().unwrap();
    assert_eq!(
        shared_eval::content_hash(&plan.served),
        shared_eval::content_hash(&deployed.body),
        "the preview serves what is deployed"
    );
    // And the push agrees with its preview.
    let pushed = env
        .push_scheduled(
            compiled.body,
            compiled.schedules,
            &provenance("2026-12-01T01:00:00Z"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(pushed, Outcome::Unchanged { version: 2 });
}

#[tokio::test]
async fn a_real_change_is_previewed_alone() {
    let (dir, env) = advanced().await;
    let flags = dir.path().join("flags-dir");
    write_flags(&flags, "on");
    let compiled = compile(&flags);
    let plan = env
        .plan(compiled.body.clone(), compiled.schedules.clone())
        .await
        .unwrap();
    assert_eq!(
        plan.diff.summary().changed,
        ["report-beta"],
        "{}",
        plan.diff
    );
    let pushed = env
        .push_scheduled(
            compiled.body,
            compiled.schedules,
            &provenance("2026-12-01T01:00:00Z"),
            None,
        )
        .await
        .unwrap();
    let Outcome::Published(record) = pushed else {
        panic!("{pushed:?}")
    };
    assert_eq!(record.summary.changed, ["report-beta"]);
    assert_eq!(
        env.rollouts().await.unwrap()[0].stage,
        2,
        "the stage is kept"
    );
}

#[tokio::test]
async fn a_canary_push_records_only_the_flags_it_changes() {
    let (dir, env) = advanced().await;
    let flags = dir.path().join("flags-dir");
    write_flags(&flags, "on");
    let compiled = compile(&flags);
    let pushed = env
        .push_canary(
            compiled.body,
            Share::from_percent(20.0).unwrap(),
            &provenance("2026-12-01T01:00:00Z"),
            None,
        )
        .await
        .unwrap();
    let Outcome::Published(record) = pushed else {
        panic!("{pushed:?}")
    };
    assert_eq!(record.action, Action::Canary);
    assert_eq!(
        (
            record.summary.added.clone(),
            record.summary.removed.clone(),
            record.summary.changed.clone()
        ),
        (Vec::new(), Vec::new(), vec!["report-beta".to_owned()]),
        "csv-export differs from the files only by its live stage"
    );
    // The canary serves csv-export at the live stage too: the two sides differ by report-beta.
    let deployed = env.deployed_all().await.unwrap().unwrap();
    let canary = deployed.canary.expect("a canary runs");
    let diff = flags_compile::diff::diff(&deployed.stable.body, &canary.body);
    assert_eq!(diff.summary().changed, ["report-beta"], "{diff}");
}
