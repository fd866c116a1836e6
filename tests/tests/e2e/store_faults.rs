//! Faults injected between the publisher and a real store (local and SeaweedFS S3): a blob that
//! reads back corrupted, and a publisher that stops between recording a version and moving the
//! pointer. Both go through the library, with a store wrapper doing the damage.

use std::path::Path;
use std::sync::Arc;

use flags_compile::blob_file::Provenance;
use flags_compile::{CompileOptions, compile_path};
use flags_store::publish::{Environment, Outcome, PublishError};
use flags_store::store::{LocalStore, Object, ObjectMeta, ObjectStore, PutOptions, StoreError};
use integration_tests::SeaweedFs;
use shared_eval::Body;

/// What the wrapper breaks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Blobs come back with one byte flipped.
    CorruptBlobReads,
    /// Every pointer write fails as if the process died right before it.
    DieBeforePointerMove,
}

#[derive(Debug)]
struct Faulty {
    inner: Arc<dyn ObjectStore>,
    fault: Fault,
}

#[async_trait::async_trait]
impl ObjectStore for Faulty {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        let mut object = self.inner.get(key).await?;
        if self.fault == Fault::CorruptBlobReads
            && key.contains("/blobs/")
            && let Some(object) = &mut object
        {
            let middle = object.bytes.len() / 2;
            object.bytes[middle] ^= 0x20;
        }
        Ok(object)
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        self.inner.head(key).await
    }
    async fn put_if_absent(
        &self,
        key: &str,
        bytes: Vec<u8>,
        options: PutOptions,
    ) -> Result<(), StoreError> {
        self.check_pointer(key)?;
        self.inner.put_if_absent(key, bytes, options).await
    }
    async fn put_if_match(
        &self,
        key: &str,
        bytes: Vec<u8>,
        etag: &str,
        options: PutOptions,
    ) -> Result<(), StoreError> {
        self.check_pointer(key)?;
        self.inner.put_if_match(key, bytes, etag, options).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }
}

impl Faulty {
    fn check_pointer(&self, key: &str) -> Result<(), StoreError> {
        if self.fault == Fault::DieBeforePointerMove && key.ends_with("/current.json") {
            return Err(StoreError::Unreachable {
                store: self.describe(),
                detail: "simulated crash".into(),
            });
        }
        Ok(())
    }
}

fn body(percent: u32, extra: Option<&str>) -> Body {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags");
    std::fs::create_dir_all(&flags).unwrap();
    let mut keys = vec!["alpha"];
    keys.extend(extra);
    for key in keys {
        let yaml = format!(
            "key: {key}\nowner: team-test\ntype: release\ndefault: off\nenvironments:\n  prod:\n    enabled: true\n    \
             rules:\n      - id: some\n        serve:\n          split: {{ on: {percent}, off: {} }}\n",
            100 - percent
        );
        std::fs::write(flags.join(format!("{key}.yaml")), yaml).unwrap();
    }
    match compile_path(dir.path(), &CompileOptions::new("prod")) {
        Ok(compiled) => compiled.body,
        Err(diags) => panic!("{diags:?}"),
    }
}

fn provenance(author: &str) -> Provenance {
    Provenance::detect(Path::new("/"), Some(author))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A store of each kind, with whatever keeps it alive.
async fn with_each_store(test: &str, scenario: impl AsyncFn(Arc<dyn ObjectStore>)) {
    let dir = tempfile::tempdir().unwrap();
    scenario(Arc::new(LocalStore::new(dir.path().join("store")))).await;
    let server = SeaweedFs::shared();
    let bucket = format!("{test}-{}", std::process::id());
    // `bucket` blocks on a runtime of its own; fine from here.
    server.bucket(&bucket);
    scenario(Arc::new(server.store(&bucket, "flags").await)).await;
}

#[test]
fn read_back_mismatch_publishes_nothing() {
    runtime().block_on(with_each_store(
        "read-back",
        async |store: Arc<dyn ObjectStore>| {
            let faulty = Arc::new(Faulty {
                inner: store.clone(),
                fault: Fault::CorruptBlobReads,
            });
            let env = Environment::new(faulty, "prod").unwrap();
            let err = env
                .push(body(10, None), &provenance("Ada"), None)
                .await
                .unwrap_err();
            assert!(
                matches!(err, PublishError::ReadBackMismatch { .. }),
                "{err}"
            );
            assert!(err.to_string().contains("nothing was published"), "{err}");
            // No record, no pointer, no audit entry: only the (unreferenced) blob.
            assert_eq!(store.get("prod/current.json").await.unwrap(), None);
            assert!(store.list("prod/versions/").await.unwrap().is_empty());
            assert!(store.list("prod/audit/").await.unwrap().is_empty());
            // The store itself is fine: the same push through it succeeds.
            let env = Environment::new(store, "prod").unwrap();
            let outcome = env
                .push(body(10, None), &provenance("Ada"), None)
                .await
                .unwrap();
            assert!(
                matches!(outcome, Outcome::Published(ref r) if r.version == 1),
                "{outcome:?}"
            );
        },
    ));
}

#[test]
fn a_push_that_died_halfway_is_completed_by_the_next() {
    runtime().block_on(with_each_store(
        "died-halfway",
        async |store: Arc<dyn ObjectStore>| {
            let env = Environment::new(store.clone(), "prod").unwrap();
            env.push(body(10, None), &provenance("Ada"), None)
                .await
                .unwrap();

            // Version 2 is recorded, then the publisher "dies" before moving the pointer.
            let dying = Environment::new(
                Arc::new(Faulty {
                    inner: store.clone(),
                    fault: Fault::DieBeforePointerMove,
                }),
                "prod",
            )
            .unwrap();
            let err = dying
                .push(body(20, None), &provenance("Grace"), None)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("simulated crash"), "{err}");
            let history = env.history().await.unwrap();
            assert_eq!(history.current, Some(1), "the edge still sees version 1");
            assert_eq!(history.records.len(), 2);
            assert_eq!(history.problems.len(), 1, "{:?}", history.problems);
            assert!(
                history.problems[0].contains("pointer is at version 1 but version 2 is recorded")
            );

            // The next push finishes version 2 (pointer and audit), then publishes version 3.
            let outcome = env
                .push(body(20, Some("beta")), &provenance("Linus"), None)
                .await
                .unwrap();
            let Outcome::Published(record) = outcome else {
                panic!("{outcome:?}")
            };
            assert_eq!(record.version, 3);
            assert_eq!(record.previous, Some(2));
            assert_eq!(
                record.summary.added,
                ["beta"],
                "diffed against version 2, which it completed"
            );
            assert!(record.summary.changed.is_empty());
            let history = env.history().await.unwrap();
            assert_eq!(history.current, Some(3));
            assert!(history.problems.is_empty(), "{:?}", history.problems);
            let audit = env.audit().await.unwrap();
            assert_eq!(
                audit.iter().map(|e| e.version).collect::<Vec<_>>(),
                [1, 2, 3]
            );
            assert_eq!(audit[1].who, "Grace");
            assert_eq!(audit[1].completed_by.as_deref(), Some("Linus"));
            assert_eq!(audit[2].completed_by, None);
        },
    ));
}
