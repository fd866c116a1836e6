//! The pending changes of two replicas over one local-directory store: ids, races to take a
//! change, expiry, and the import of an old approvals file.

use super::*;
use flags_store::store::LocalStore;

fn rollback(author: &str, to: u64) -> Draft {
    Draft {
        env: "prod".into(),
        author: author.into(),
        client: "127.0.0.1:1".into(),
        message: None,
        proposal: Proposal::Rollback { to },
        base_version: Some(2),
        diff: Value::Null,
    }
}

fn replicas(dir: &Path) -> (Approvals, Approvals) {
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.join("store")));
    (
        Approvals::new(store.clone(), "a"),
        Approvals::new(store, "b"),
    )
}

#[tokio::test]
async fn only_another_token_approves_and_only_before_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let (approvals, _) = replicas(dir.path());
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let ttl = Duration::from_secs(60);
    let a = approvals
        .propose(rollback("ci", 1), ttl, t0)
        .await
        .unwrap()
        .pending;
    let b = approvals
        .propose(rollback("ci", 2), ttl, t0)
        .await
        .unwrap()
        .pending;
    assert_ne!(a.id, b.id);
    let own = approvals.take_for_approval("prod", a.id, "ci", t0).await;
    assert!(matches!(own, Err(ApiError::Denied(_))), "{own:?}");
    let listed = approvals.list(Some("prod"), t0).await.unwrap();
    assert_eq!(listed.len(), 2, "refusal keeps it");
    assert!(matches!(
        approvals.take_for_approval("dev", a.id, "lead", t0).await,
        Err(ApiError::NotFound(_))
    ));
    let taken = approvals
        .take_for_approval("prod", a.id, "lead", t0)
        .await
        .unwrap();
    assert_eq!(taken.id, a.id);
    assert!(matches!(
        approvals.take_for_approval("prod", a.id, "lead", t0).await,
        Err(ApiError::Conflict(_))
    ));
    assert_eq!(
        approvals.list(None, t0).await.unwrap().len(),
        1,
        "taken: not listed"
    );
    // A publish that failed on the way puts it back, as it was.
    approvals.restore(&taken).await;
    let again = approvals
        .take_for_approval("prod", a.id, "lead", t0)
        .await
        .unwrap();
    assert_eq!((again.id, again.author.as_str()), (a.id, "ci"));
    approvals.settle(&again, State::Approved).await;
    assert!(matches!(
        approvals.take_for_approval("prod", a.id, "lead", t0).await,
        Err(ApiError::Conflict(_))
    ));
    let late = t0 + ttl;
    assert!(matches!(
        approvals
            .take_for_approval("prod", b.id, "lead", late)
            .await,
        Err(ApiError::Gone(_))
    ));
    assert!(approvals.list(None, late).await.unwrap().is_empty());
    assert!(matches!(
        approvals.remove("prod", b.id, "lead", late).await,
        Err(ApiError::NotFound(_))
    ));
}

#[tokio::test]
async fn replicas_share_pending_changes_and_only_one_takes_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = replicas(dir.path());
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let ttl = Duration::from_secs(60);
    let first = a.propose(rollback("ci", 1), ttl, t0).await.unwrap().pending;
    let second = b.propose(rollback("ci", 2), ttl, t0).await.unwrap().pending;
    assert_ne!(first.id, second.id, "ids are unique across replicas");
    let again = b.propose(rollback("dev", 1), ttl, t0).await.unwrap();
    assert!(!again.new, "the same change, proposed on the other replica");
    assert_eq!(again.pending.id, first.id);
    let ids: Vec<u64> = b
        .list(Some("prod"), t0)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, [first.id, second.id]);
    // Both replicas race to take the first one: exactly one wins.
    let (x, y) = tokio::join!(
        a.take_for_approval("prod", first.id, "lead", t0),
        b.take_for_approval("prod", first.id, "other-lead", t0),
    );
    assert!(x.is_ok() != y.is_ok(), "{x:?} {y:?}");
    assert!(matches!(x.err().or(y.err()), Some(ApiError::Conflict(_))));
    let rejected = a.remove("prod", second.id, "lead", t0).await.unwrap();
    assert_eq!(rejected.id, second.id);
    assert!(b.list(None, t0).await.unwrap().is_empty());
    assert!(matches!(
        b.take_for_approval("prod", second.id, "lead", t0).await,
        Err(ApiError::NotFound(_))
    ));
}

#[tokio::test]
async fn the_old_approvals_file_is_imported_once_without_the_expired() {
    let dir = tempfile::tempdir().unwrap();
    let (approvals, _) = replicas(dir.path());
    let file = dir.path().join("approvals.json");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let old = serde_json::json!({
        "next_id": 7,
        "pending": [
            { "id": 6, "created_at": "1970-01-12T13:46:40Z", "expires_at": "1970-01-12T13:46:50Z",
              "env": "prod", "author": "ci", "client": "x", "message": null,
              "proposal": { "kind": "rollback", "to": 1 }, "base_version": 2, "diff": null },
            { "id": 7, "created_at": "1970-01-12T13:46:40Z", "expires_at": "1970-01-12T14:46:40Z",
              "env": "prod", "author": "ci", "client": "x", "message": "launch",
              "proposal": { "kind": "rollback", "to": 2 }, "base_version": 2, "diff": null }
        ]
    });
    std::fs::write(&file, old.to_string()).unwrap();
    let later = t0 + Duration::from_secs(60);
    assert_eq!(approvals.import_file(&file, later).await, Ok(1));
    assert!(!file.exists() && dir.path().join("approvals.json.imported").exists());
    assert_eq!(approvals.import_file(&file, later).await, Ok(0));
    let listed = approvals.list(None, later).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].id, listed[0].message.as_deref()),
        (7, Some("launch"))
    );
    let next = approvals
        .propose(rollback("ci", 3), Duration::from_secs(60), later)
        .await;
    assert_eq!(next.unwrap().pending.id, 8, "ids are not reused");

    std::fs::write(&file, "{not json").unwrap();
    let err = approvals.import_file(&file, later).await.unwrap_err();
    assert!(
        err.contains("approvals.json") && err.contains("move it away"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{not json");
}
