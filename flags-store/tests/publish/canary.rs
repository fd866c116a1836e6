//! Canary versions through the publishing library on the embedded local store: the pointer's
//! canary half, what promote / abort / kill / rollback do to it, that pointers written before
//! canaries existed still load, and that racing canary pushes cannot both win. (The worker
//! serving a canary to its share of users is `tests/tests/e2e/e2e_canary.rs`.)

use crate::common::{environment, examples, provenance, published};
use flags_store::layout::{Action, Share};
use flags_store::publish::{KillTarget, Outcome, PublishError};
use flags_store::store::{LocalStore, ObjectStore, PutOptions};
use shared_eval::Body;

/// The examples with `onboarding-tour` switched off: the change a canary tries out.
fn changed() -> Body {
    let mut body = examples();
    let flag = body
        .flags
        .iter_mut()
        .find(|f| f.key == "onboarding-tour")
        .expect("examples have onboarding-tour");
    flag.enabled = false;
    body
}

fn share(percent: f64) -> Share {
    Share::from_percent(percent).unwrap()
}

#[tokio::test]
async fn a_canary_sits_beside_stable_until_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    let v1 = published(env.push(examples(), &provenance("a"), None).await.unwrap());

    let v2 = published(
        env.push_canary(
            changed(),
            share(5.0),
            &provenance("b"),
            Some("try it".into()),
        )
        .await
        .unwrap(),
    );
    assert_eq!(v2.action, Action::Canary);
    assert_eq!(
        v2.stable.sha256, v1.stable.sha256,
        "the stable side is untouched"
    );
    let canary = v2.canary.clone().expect("the record names the canary");
    assert_eq!(
        (canary.percent.buckets(), canary.since, canary.salt.as_str()),
        (5_000, 2, "canary-dev-2")
    );
    assert_eq!(v2.summary.changed, ["onboarding-tour"]);

    // The pointer is one document with both halves, as the edge reads it.
    let raw = dir.path().join("dev/current.json");
    let pointer: serde_json::Value = serde_json::from_slice(&std::fs::read(&raw).unwrap()).unwrap();
    assert_eq!(pointer["version"], 2);
    assert_eq!(pointer["sha256"], v1.stable.sha256.as_str());
    assert_eq!(pointer["canary"]["percent"], 5);
    assert_eq!(pointer["canary"]["salt"], "canary-dev-2");
    assert_eq!(
        pointer["canary"]["blob"],
        format!("blobs/{}.json.gz", canary.blob_ref.sha256)
    );
    let deployed = env.deployed_all().await.unwrap().unwrap();
    assert!(
        deployed
            .canary
            .as_ref()
            .unwrap()
            .body
            .flags
            .iter()
            .any(|f| f.key == "onboarding-tour" && !f.enabled)
    );

    // Same flags and share again: nothing to do. A larger share keeps the salt.
    assert!(matches!(
        env.push_canary(changed(), share(5.0), &provenance("b"), None)
            .await
            .unwrap(),
        Outcome::Unchanged { version: 2 }
    ));
    let v3 = published(
        env.push_canary(changed(), share(20.0), &provenance("b"), None)
            .await
            .unwrap(),
    );
    let grown = v3.canary.clone().unwrap();
    assert_eq!(
        (
            grown.percent.buckets(),
            grown.salt.as_str(),
            grown.blob_ref.sha256.as_str()
        ),
        (20_000, "canary-dev-2", canary.blob_ref.sha256.as_str()),
        "a share change keeps the canary's blob and salt"
    );

    // A plain push would pull the stable version out from under the canary: refused.
    let refused = env.push(examples(), &provenance("c"), None).await;
    assert!(
        matches!(refused, Err(PublishError::CanaryRunning { since: 2, .. })),
        "{refused:?}"
    );

    let v4 = published(
        env.promote("d", "t", Some("looks good".into()))
            .await
            .unwrap(),
    );
    assert_eq!(
        (v4.action, v4.stable.sha256.as_str(), v4.canary.is_none()),
        (Action::Promote, canary.blob_ref.sha256.as_str(), true)
    );
    assert_eq!(v4.summary.changed, ["onboarding-tour"]);
    let current = env.current().await.unwrap().unwrap().pointer;
    assert_eq!((current.version, current.canary), (4, None));
    assert!(matches!(
        env.promote("d", "t", None).await,
        Err(PublishError::NoCanary {
            action: "promote",
            ..
        })
    ));

    let history = env.history().await.unwrap();
    let actions: Vec<&str> = history.records.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["push", "canary", "canary", "promote"]);
    assert!(history.problems.is_empty(), "{:?}", history.problems);
    let audit = env.audit().await.unwrap();
    let what: Vec<&str> = audit.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(
        what[1],
        "canary to 5% of users (since version 2): 1 changed (onboarding-tour)"
    );
    assert_eq!(
        what[3],
        "promoted the canary to stable: 1 changed (onboarding-tour)"
    );
}

#[tokio::test]
async fn abort_drops_the_canary_and_rollback_ends_it_too() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    let v1 = published(env.push(examples(), &provenance("a"), None).await.unwrap());
    assert!(matches!(
        env.abort("a", "t", None).await,
        Err(PublishError::NoCanary {
            action: "abort",
            ..
        })
    ));
    published(
        env.push_canary(changed(), share(10.0), &provenance("b"), None)
            .await
            .unwrap(),
    );
    let v3 = published(
        env.abort("oncall", "t", Some("errors up".into()))
            .await
            .unwrap(),
    );
    assert_eq!(
        (v3.action, v3.stable.sha256.as_str(), v3.canary.is_none()),
        (Action::Abort, v1.stable.sha256.as_str(), true)
    );
    assert_eq!(
        v3.summary.changed,
        ["onboarding-tour"],
        "what the canary users see change"
    );
    assert_eq!(
        env.audit().await.unwrap()[2].message.as_deref(),
        Some("errors up")
    );

    // A new canary gets a new salt: another slice of users goes first.
    let v4 = published(
        env.push_canary(changed(), share(10.0), &provenance("b"), None)
            .await
            .unwrap(),
    );
    assert_eq!(v4.canary.unwrap().salt, "canary-dev-4");
    // Rolling back to version 1 (the stable one) still changes something: the canary ends.
    let v5 = published(env.rollback(1, "oncall", "t", None).await.unwrap());
    assert_eq!((v5.action, v5.canary.is_none()), (Action::Rollback, true));
    assert_eq!(env.current().await.unwrap().unwrap().pointer.canary, None);
}

#[tokio::test]
async fn a_kill_during_a_canary_reaches_both_sides_and_stays_on_promote() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    published(env.push(examples(), &provenance("a"), None).await.unwrap());
    let v2 = published(
        env.push_canary(changed(), share(5.0), &provenance("b"), None)
            .await
            .unwrap(),
    );
    let kill = published(
        env.set_killed(
            &KillTarget::Flags(vec!["beta-banner".into()]),
            true,
            "oncall",
            "t",
            Some("incident".into()),
        )
        .await
        .unwrap(),
    );
    let canary = kill.canary.clone().expect("the canary keeps running");
    assert_eq!(
        (canary.percent, canary.salt.as_str(), canary.since),
        (share(5.0), "canary-dev-2", 2)
    );
    assert_ne!(canary.blob_ref.sha256, v2.canary.unwrap().blob_ref.sha256);
    let deployed = env.deployed_all().await.unwrap().unwrap();
    for (side, body) in [
        ("stable", &deployed.stable.body),
        ("canary", &deployed.canary.as_ref().unwrap().body),
    ] {
        let banner = body.flags.iter().find(|f| f.key == "beta-banner").unwrap();
        assert!(banner.killed, "{side} side is killed");
    }
    let audit = env.audit().await.unwrap();
    assert_eq!(
        audit[2].what,
        "kill beta-banner (stable and canary): 1 changed (beta-banner)"
    );

    // A canary push on top carries the kill, and so does promoting.
    published(
        env.push_canary(changed(), share(50.0), &provenance("b"), None)
            .await
            .unwrap(),
    );
    published(env.promote("d", "t", None).await.unwrap());
    let (_, stable) = env.deployed().await.unwrap().unwrap();
    assert!(
        stable
            .body
            .flags
            .iter()
            .any(|f| f.key == "beta-banner" && f.killed)
    );
}

#[tokio::test]
async fn pointers_written_before_canaries_existed_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    let v1 = published(env.push(examples(), &provenance("a"), None).await.unwrap());
    // Exactly the shape of the pointer before this change (ARCHITECTURE.md, store layout).
    let legacy = format!(
        r#"{{"version": 1, "blob": "{}", "sha256": "{}", "content_hash": "{}"}}"#,
        v1.stable.blob, v1.stable.sha256, v1.stable.content_hash
    );
    let store = LocalStore::new(dir.path());
    let etag = store.get("dev/current.json").await.unwrap().unwrap().etag;
    store
        .put_if_match(
            "dev/current.json",
            legacy.into_bytes(),
            &etag,
            PutOptions::POINTER,
        )
        .await
        .unwrap();
    let current = env.current().await.unwrap().unwrap().pointer;
    assert_eq!((current.version, current.canary), (1, None));
    // And publishing on top of it works as before.
    let v2 = published(
        env.push_canary(changed(), share(1.0), &provenance("b"), None)
            .await
            .unwrap(),
    );
    assert_eq!(v2.previous, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_canary_pushes_cannot_both_win() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    published(env.push(examples(), &provenance("a"), None).await.unwrap());
    // Eight publishers change the canary at once, each to a different share: each either wins
    // a version of its own or is told it lost; no version is won twice and none goes missing.
    let racers: Vec<_> = (1..=8)
        .map(|i| {
            let env = env.clone();
            tokio::spawn(async move {
                let who = provenance(&format!("r{i}"));
                env.push_canary(changed(), share(f64::from(i)), &who, None)
                    .await
            })
        })
        .collect();
    let mut wins = Vec::new();
    let mut losses = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(Outcome::Published(record)) => wins.push(record),
            Err(PublishError::Conflict { .. }) => losses += 1,
            other => panic!("neither won nor lost cleanly: {other:?}"),
        }
    }
    wins.sort_by_key(|r| r.version);
    let versions: Vec<u64> = wins.iter().map(|r| r.version).collect();
    assert_eq!(
        versions,
        (2..2 + wins.len() as u64).collect::<Vec<_>>(),
        "distinct, gapless versions ({losses} lost)"
    );
    let pointer = env.current().await.unwrap().unwrap().pointer;
    let last = wins.last().unwrap();
    assert_eq!(pointer.version, last.version);
    assert_eq!(
        pointer.canary, last.canary,
        "the pointer names the last winner's canary"
    );
    for pair in wins.windows(2) {
        assert_eq!(pair[1].previous, Some(pair[0].version));
    }
    let history = env.history().await.unwrap();
    assert_eq!(history.records.len(), 1 + wins.len());
    assert!(history.problems.is_empty(), "{:?}", history.problems);
}
