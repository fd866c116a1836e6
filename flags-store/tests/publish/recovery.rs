//! A damaged pointer through the library on the embedded local store: `{}`, truncated JSON,
//! binary garbage, a pointer naming a missing blob and a deleted pointer. Every verb that builds
//! on the pointer refuses with `CorruptPointer` (naming the key and the last good version) and
//! writes nothing; `history` still lists the records; `drift` reports the pointer as a finding;
//! `rollback` and `drift --fix` republish the last good version as the next version after the
//! newest record, replacing the damaged object, after which everything works again.

use std::path::Path;
use std::time::Duration;

use crate::common::{environment, examples, provenance, published};
use flags_store::drift::{self, CheckOptions, FindingKind, FixOptions, Status};
use flags_store::layout::{Action, VersionRecord};
use flags_store::publish::{Environment, KillTarget, Outcome, PublishError};
use flags_store::purge::Purger;

const T: &str = "2026-11-21T09:00:00Z";

/// Four versions: push, kill, unkill, kill (each a blob of its own).
async fn four_versions(env: &Environment) -> Vec<VersionRecord> {
    let mut records = vec![published(
        env.push(examples(), &provenance("a"), None).await.unwrap(),
    )];
    for (kill, flag) in [
        (true, "beta-banner"),
        (false, "beta-banner"),
        (true, "new-chart"),
    ] {
        let target = KillTarget::Flags(vec![flag.to_owned()]);
        let outcome = env.set_killed(&target, kill, "b", T, None).await.unwrap();
        records.push(published(outcome));
    }
    assert_eq!(records.last().unwrap().version, 4);
    records
}

/// The examples with `onboarding-tour` switched off: a change to push after a repair.
fn changed() -> shared_eval::Body {
    let mut body = examples();
    for flag in &mut body.flags {
        if flag.key == "onboarding-tour" {
            flag.enabled = false;
        }
    }
    body
}

/// The ways a pointer gets damaged, by name, as bytes (`None`: deleted).
fn damages(good: &[u8]) -> Vec<(&'static str, Option<Vec<u8>>)> {
    let zeros = "0".repeat(64);
    let missing_blob = format!(
        "{{\"version\": 4, \"blob\": \"blobs/{zeros}.json.gz\", \"sha256\": \"{zeros}\", \"content_hash\": \"sha256:{zeros}\"}}\n"
    );
    vec![
        ("{}", Some(b"{}\n".to_vec())),
        ("truncated", Some(good[..good.len() / 2].to_vec())),
        (
            "binary",
            Some(vec![0x1f, 0x8b, 0x00, 0xff, 0xfe, 0x07, 0x00, 0x9c]),
        ),
        ("missing blob", Some(missing_blob.into_bytes())),
        ("deleted", None),
    ]
}

fn damage(dir: &Path, bytes: &Option<Vec<u8>>) {
    let pointer = dir.join("dev/current.json");
    match bytes {
        Some(bytes) => std::fs::write(&pointer, bytes).unwrap(),
        None => std::fs::remove_file(&pointer).unwrap(),
    }
}

fn versions(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("dev/versions")).unwrap().count()
}

fn assert_corrupt(what: &str, result: Result<impl std::fmt::Debug, PublishError>, last_good: u64) {
    match result {
        Err(PublishError::CorruptPointer {
            key,
            last_good: found,
            ..
        }) => {
            assert!(key.ends_with("dev/current.json"), "{what}: {key}");
            assert_eq!(found, Some(last_good), "{what}");
        }
        other => panic!("{what}: expected CorruptPointer, got {other:?}"),
    }
}

#[tokio::test]
async fn every_verb_refuses_a_damaged_pointer_and_names_the_last_good_version() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    let records = four_versions(&env).await;
    let good = std::fs::read(dir.path().join("dev/current.json")).unwrap();
    for (name, bytes) in damages(&good) {
        damage(dir.path(), &bytes);
        let before = std::fs::read(dir.path().join("dev/current.json")).ok();

        let pushed = env.push(examples(), &provenance("c"), None).await;
        let message = format!("{:?}", pushed.as_ref().err().map(ToString::to_string));
        assert_corrupt(&format!("{name}: push"), pushed, 4);
        assert!(
            message.contains("last good version is 4") && message.contains("drift --fix"),
            "{name}: {message}"
        );
        let killed = env.set_killed(&KillTarget::All, true, "c", T, None).await;
        assert_corrupt(&format!("{name}: kill"), killed, 4);
        let canary = env
            .push_canary(
                examples(),
                flags_store::layout::Share::from_percent(5.0).unwrap(),
                &provenance("c"),
                None,
            )
            .await;
        assert_corrupt(&format!("{name}: canary"), canary, 4);
        assert_corrupt(
            &format!("{name}: tick"),
            env.rollout_tick(chrono::Utc::now(), "c").await,
            4,
        );
        assert_corrupt(
            &format!("{name}: dry run"),
            env.plan(examples(), None).await,
            4,
        );
        assert_corrupt(
            &format!("{name}: verified"),
            env.verified_current().await,
            4,
        );

        // Nothing was written: the same records, the same damaged pointer.
        assert_eq!(versions(dir.path()), 4, "{name}");
        assert_eq!(
            std::fs::read(dir.path().join("dev/current.json")).ok(),
            before,
            "{name}"
        );

        // History lists every record and says the pointer is corrupt.
        let history = env.history().await.unwrap();
        assert_eq!(history.records, records, "{name}");
        assert_eq!(history.current, None, "{name}");
        assert!(history.corrupt_pointer.is_some(), "{name}");
        assert_eq!(history.problems.len(), 1, "{name}: {:?}", history.problems);
        assert!(
            history.problems[0].contains("corrupt")
                && history.problems[0].contains("last good version is 4"),
            "{name}: {:?}",
            history.problems
        );
    }
}

/// A store with four versions and the pointer damaged in each way in turn.
async fn damaged() -> Vec<(
    &'static str,
    tempfile::TempDir,
    Environment,
    Vec<VersionRecord>,
)> {
    let mut stores = Vec::new();
    for index in 0..damages(b"").len() {
        let dir = tempfile::tempdir().unwrap();
        let env = environment(dir.path());
        let records = four_versions(&env).await;
        let good = std::fs::read(dir.path().join("dev/current.json")).unwrap();
        let (name, bytes) = damages(&good).swap_remove(index);
        damage(dir.path(), &bytes);
        stores.push((name, dir, env, records));
    }
    stores
}

#[tokio::test]
async fn drift_reports_a_damaged_pointer_and_fix_republishes_the_last_good_version() {
    for (name, dir, env, records) in damaged().await {
        let report = drift::check(&env, &CheckOptions::new()).await;
        assert_eq!(report.status, Status::Drift, "{name}: {report}");
        let finding = &report.findings[0];
        assert_eq!(report.findings.len(), 1, "{name}: {report}");
        assert!(
            matches!(
                finding.kind,
                FindingKind::PointerUnreadable | FindingKind::BlobMissing
            ),
            "{name}: {report}"
        );
        assert_eq!(
            finding.fix.as_deref(),
            Some("republish version 4, the last good one"),
            "{name}"
        );
        let text = report.to_string();
        assert!(!text.contains("nothing published"), "{name}: {text}");

        let fixed = drift::fix(&env, &fix_options()).await;
        assert_eq!(fixed.after.status, Status::InSync, "{name}: {fixed}");
        let repaired = env.require_record(5).await.unwrap();
        assert_eq!(
            (
                repaired.action,
                repaired.rollback_to,
                repaired.previous,
                &repaired.stable.sha256
            ),
            (
                Action::Rollback,
                Some(4),
                Some(4),
                &records[3].stable.sha256
            ),
            "{name}"
        );
        assert!(
            repaired
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with(drift::FIX_MESSAGE_PREFIX)),
            "{name}: {repaired:?}"
        );
        assert_repaired(&env, dir.path(), &repaired, name).await;
    }
}

#[tokio::test]
async fn rollback_over_a_damaged_pointer_publishes_after_the_newest_record() {
    for (name, dir, env, records) in damaged().await {
        // Even to the newest version's own blob: the pointer does not serve it, so it is no
        // "nothing to do".
        let to = if name == "{}" { 4 } else { 3 };
        let repaired = published(env.rollback(to, "oncall", T, None).await.unwrap());
        assert_eq!(
            (repaired.version, repaired.previous, repaired.rollback_to),
            (5, Some(4), Some(to)),
            "{name}"
        );
        assert_eq!(
            repaired.stable.sha256,
            records[to as usize - 1].stable.sha256,
            "{name}"
        );
        // The summary is against the newest record's flags (version 4 killed new-chart).
        let expected: Vec<String> = if to == 4 {
            Vec::new()
        } else {
            vec!["new-chart".to_owned()]
        };
        assert_eq!(repaired.summary.changed, expected, "{name}");
        assert_repaired(&env, dir.path(), &repaired, name).await;
    }
}

#[tokio::test]
async fn the_last_good_version_skips_records_whose_blob_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    let records = four_versions(&env).await;
    std::fs::remove_file(dir.path().join("dev").join(&records[3].stable.blob)).unwrap();
    std::fs::write(dir.path().join("dev/current.json"), b"{}").unwrap();
    assert_eq!(env.last_good_version().await.unwrap(), Some(3));
    assert_corrupt(
        "push",
        env.push(examples(), &provenance("c"), None).await,
        3,
    );

    let fixed = drift::fix(&env, &fix_options()).await;
    assert_eq!(fixed.after.status, Status::InSync, "{fixed}");
    let repaired = env.require_record(5).await.unwrap();
    assert_eq!(
        (repaired.rollback_to, &repaired.stable.sha256),
        (Some(3), &records[2].stable.sha256)
    );
}

#[tokio::test]
async fn racing_repairs_keep_the_records_whole_and_the_pointer_sound() {
    for round in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let env = environment(dir.path());
        four_versions(&env).await;
        std::fs::write(dir.path().join("dev/current.json"), b"{}").unwrap();
        let (a, b) = tokio::join!(env.rollback(4, "a", T, None), env.rollback(4, "b", T, None));
        // Usually one repair wins version 5 and the other loses it (or finds it done); a repair
        // that listed the other's record before its pointer move builds version 6 over the
        // same damaged ETag, and only one pointer move can win. Either way: no gap, no record
        // rewritten, a sound pointer at the newest record or one behind it.
        assert!(
            [&a, &b]
                .iter()
                .any(|r| matches!(r, Ok(Outcome::Published(_)))),
            "round {round}: {a:?} {b:?}"
        );
        for result in [&a, &b] {
            assert!(
                matches!(
                    result,
                    Ok(_) | Err(PublishError::Conflict { .. } | PublishError::Corrupt { .. })
                ),
                "round {round}: {result:?}"
            );
        }
        let latest = env.latest_version().await.unwrap().unwrap();
        assert_eq!(versions(dir.path()) as u64, latest, "round {round}");
        let pointer = env.verified_current().await.unwrap().unwrap().pointer;
        assert!(latest - pointer.version <= 1, "round {round}: {pointer:?}");
        let next = published(env.push(changed(), &provenance("c"), None).await.unwrap());
        assert_eq!(next.version, latest + 1, "round {round}");
    }
}

#[tokio::test]
async fn a_pointer_behind_the_records_is_rolled_forward_not_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    let records = four_versions(&env).await;
    // What a publisher that stopped between creating version 4 and moving the pointer leaves.
    let behind = serde_json::to_vec_pretty(&records[2].pointer()).unwrap();
    std::fs::write(dir.path().join("dev/current.json"), behind).unwrap();
    assert_eq!(
        env.verified_current()
            .await
            .unwrap()
            .unwrap()
            .pointer
            .version,
        3
    );
    assert!(env.history().await.unwrap().corrupt_pointer.is_none());
    let pushed = published(env.push(changed(), &provenance("c"), None).await.unwrap());
    assert_eq!((pushed.version, pushed.previous), (5, Some(4)));
}

fn fix_options() -> FixOptions {
    FixOptions {
        check: CheckOptions::new(),
        allow_older: false,
        publish_needs_approval: false,
        author: "drift".into(),
        purger: Purger::Disabled,
        edge_purge_token: None,
        converge_timeout: Duration::from_secs(1),
    }
}

/// The store is whole again: the pointer is the repair's record, the records are `1..=5`,
/// history has no problem, the audit has the repair, and the next push builds on it.
async fn assert_repaired(env: &Environment, dir: &Path, repaired: &VersionRecord, name: &str) {
    let current = env.verified_current().await.unwrap().unwrap();
    assert_eq!(current.pointer, repaired.pointer(), "{name}");
    assert_eq!(versions(dir), 5, "{name}");
    let history = env.history().await.unwrap();
    assert_eq!(
        (
            history.current,
            history.problems.len(),
            history.records.len()
        ),
        (Some(5), 0, 5),
        "{name}: {:?}",
        history.problems
    );
    let audit = env.audit().await.unwrap();
    assert_eq!(audit.last().map(|e| e.version), Some(5), "{name}");
    let next = published(env.push(changed(), &provenance("c"), None).await.unwrap());
    assert_eq!((next.version, next.previous), (6, Some(5)), "{name}");
    assert_eq!(
        next.summary.changed,
        ["onboarding-tour"],
        "{name}: {next:?}"
    );
}

/// Objects to write, by path under the store's directory.
type Writes = Vec<(&'static str, Vec<u8>)>;

/// A local store that, on its first listing of the version records, lets "other publishers"
/// finish first: it writes what they wrote (version 1's pointer already moved on to version 2),
/// exactly between a reader's pointer read and its listing.
#[derive(Debug)]
struct RacedStore {
    inner: flags_store::store::LocalStore,
    dir: std::path::PathBuf,
    finish: std::sync::Mutex<Option<Writes>>,
}

#[async_trait::async_trait]
impl flags_store::store::ObjectStore for RacedStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn get(
        &self,
        key: &str,
    ) -> Result<Option<flags_store::store::Object>, flags_store::store::StoreError> {
        self.inner.get(key).await
    }
    async fn head(
        &self,
        key: &str,
    ) -> Result<Option<flags_store::store::ObjectMeta>, flags_store::store::StoreError> {
        self.inner.head(key).await
    }
    async fn put_if_absent(
        &self,
        key: &str,
        bytes: Vec<u8>,
        options: flags_store::store::PutOptions,
    ) -> Result<(), flags_store::store::StoreError> {
        self.inner.put_if_absent(key, bytes, options).await
    }
    async fn put_if_match(
        &self,
        key: &str,
        bytes: Vec<u8>,
        etag: &str,
        options: flags_store::store::PutOptions,
    ) -> Result<(), flags_store::store::StoreError> {
        self.inner.put_if_match(key, bytes, etag, options).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, flags_store::store::StoreError> {
        let finish = self.finish.lock().unwrap().take();
        for (path, bytes) in finish.into_iter().flatten() {
            std::fs::write(self.dir.join(path), bytes).unwrap();
        }
        self.inner.list(prefix).await
    }
}

/// The race CI once caught between twenty concurrent first pushes: a reader finds no pointer
/// (version 1's publisher has its record but has not moved the pointer yet), then, before it
/// lists the records, version 1's pointer lands and a second publisher adds version 2. Absent
/// pointer plus two records looked like a deleted pointer; it is a stale read, and the reader
/// must see version 2.
#[tokio::test]
async fn a_pointer_created_while_it_was_read_is_not_taken_for_a_deleted_one() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    published(env.push(examples(), &provenance("a"), None).await.unwrap());
    published(env.push(changed(), &provenance("b"), None).await.unwrap());
    let record_2 = "dev/versions/00000000000000000002.json";
    let finish = vec![
        (record_2, std::fs::read(dir.path().join(record_2)).unwrap()),
        (
            "dev/current.json",
            std::fs::read(dir.path().join("dev/current.json")).unwrap(),
        ),
    ];
    // Back to "version 1 recorded, no pointer yet".
    std::fs::remove_file(dir.path().join(record_2)).unwrap();
    std::fs::remove_file(dir.path().join("dev/current.json")).unwrap();
    let raced = RacedStore {
        inner: flags_store::store::LocalStore::new(dir.path()),
        dir: dir.path().to_owned(),
        finish: std::sync::Mutex::new(Some(finish)),
    };
    let env = Environment::new(std::sync::Arc::new(raced), "dev").unwrap();
    let current = env
        .verified_current()
        .await
        .expect("a stale read, not a damaged pointer");
    assert_eq!(current.map(|c| c.pointer.version), Some(2));
}
