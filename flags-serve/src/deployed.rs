//! What each environment serves, decoded once per pointer change. The read routes and the
//! status page ask [`DeployedCache::read`]: one GET of the small pointer object per call, and
//! the blob (downloaded, hash-checked, gunzipped, parsed) and its version record only when the
//! pointer's ETag differs from the cached one.
//!
//! No TTL: the pointer is read on every call, so a publish by another process (the CLI, a
//! second service) or a pointer edited by hand shows on the next request. The pointer names the
//! blob by its SHA-256 and the record by its version, both written once, so an unchanged ETag
//! means unchanged content. A blob overwritten in place under an unchanged pointer is drift:
//! `drift::check` reads the store itself, never this cache, and finds it on its next check.
//! One entry per environment, replaced on change: memory is bounded by the environments served.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shared_eval::Blob;

use flags_store::layout::{Pointer, VersionRecord};
use flags_store::publish::{Environment, PublishError};

/// An environment's deployed state as of one pointer ETag.
#[derive(Debug)]
pub struct Deployed {
    /// The pointer.
    pub pointer: Pointer,
    /// The stable blob it names, decoded and checked.
    pub blob: Blob,
    /// The served version's record (`None` if it is missing: drift reports that).
    pub record: Option<VersionRecord>,
}

/// The last [`Deployed`] read per environment, keyed by the pointer's ETag.
#[derive(Debug, Default)]
pub struct DeployedCache {
    entries: Mutex<HashMap<String, (String, Arc<Deployed>)>>,
}

impl DeployedCache {
    /// What `env` serves now (`None` before its first publish).
    pub async fn read(&self, env: &Environment) -> Result<Option<Arc<Deployed>>, PublishError> {
        let Some(current) = env.current().await? else {
            return Ok(None);
        };
        if let Some(hit) = self.lookup(env.name(), &current.etag) {
            return Ok(Some(hit));
        }
        let blob = env
            .blob(&current.pointer.stable.blob, &current.pointer.stable.sha256)
            .await?;
        let record = env.record(current.pointer.version).await?;
        let deployed = Arc::new(Deployed {
            pointer: current.pointer,
            blob,
            record,
        });
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(env.name().to_owned(), (current.etag, deployed.clone()));
        Ok(Some(deployed))
    }

    fn lookup(&self, env: &str, etag: &str) -> Option<Arc<Deployed>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(env)
            .filter(|(cached, _)| cached == etag)
            .map(|(_, deployed)| deployed.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flags_compile::blob_file::Provenance;
    use flags_store::layout::pointer_key;
    use flags_store::store::PutOptions;

    fn by(author: &str) -> Provenance {
        Provenance {
            author: author.to_owned(),
            source_commit: None,
            source_dirty: false,
            created_at: flags_compile::blob_file::now_rfc3339(),
        }
    }

    fn block_on<F: Future>(work: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    }

    fn example_body(env: &str) -> shared_eval::Body {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flags");
        flags_compile::compile_path(&root, &flags_compile::CompileOptions::new(env))
            .expect("the example flags compile")
            .body
    }

    #[test]
    fn a_pointer_change_by_anyone_is_seen_on_the_next_read_and_nothing_else_is_reread() {
        block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = flags_store::store::open(dir.path().to_str().unwrap())
                .await
                .unwrap();
            let env = Environment::new(store.clone(), "prod").unwrap();
            let cache = DeployedCache::default();
            assert!(cache.read(&env).await.unwrap().is_none(), "nothing yet");

            let mut body = example_body("prod");
            env.push(body.clone(), &by("ci"), None).await.unwrap();
            let first = cache.read(&env).await.unwrap().unwrap();
            assert_eq!(first.pointer.version, 1);
            assert_eq!(first.record.as_ref().map(|r| r.version), Some(1));
            let again = cache.read(&env).await.unwrap().unwrap();
            assert!(
                Arc::ptr_eq(&first, &again),
                "same pointer: the decoded blob is reused"
            );

            // Another publisher (a second `Environment` on the same store, as the CLI would be).
            body.flags[0].killed = true;
            let other = Environment::new(store.clone(), "prod").unwrap();
            other.push(body.clone(), &by("cli"), None).await.unwrap();
            let second = cache.read(&env).await.unwrap().unwrap();
            assert_eq!(second.pointer.version, 2);
            assert!(second.blob.body.flags[0].killed && !first.blob.body.flags[0].killed);

            // The pointer put back by hand to version 1's bytes: seen at once.
            let hand = serde_json::to_value(&first.pointer).unwrap();
            let key = pointer_key("prod");
            let etag = env.current().await.unwrap().unwrap().etag;
            let bytes = serde_json::to_vec(&hand).unwrap();
            store
                .put_if_match(&key, bytes, &etag, PutOptions::POINTER)
                .await
                .unwrap();
            let edited = cache.read(&env).await.unwrap().unwrap();
            assert_eq!(edited.pointer.version, 1);
            assert!(!edited.blob.body.flags[0].killed, "version 1's blob again");
        });
    }
}
