//! The embedded local store: objects are files under a directory, keys are relative paths.
//!
//! Conditional writes are atomic across processes:
//! - `put_if_absent` writes a temp file beside the target and hard-links it into place.
//!   `link(2)` fails if the name exists, so exactly one of any number of racing creators wins,
//!   and readers only ever see a complete file.
//! - `put_if_match` takes an exclusive `flock` on `.<name>.lock` (released by the kernel if the
//!   process dies, so a crash never leaves the store locked), compares the current content's
//!   ETag, writes a temp file and renames it over the target (atomic for readers).
//!
//! The ETag is a hash of the content, so it changes exactly when the content does. Files whose
//! name starts with a dot (temp and lock files) are never objects.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::{Object, ObjectMeta, ObjectStore, PutOptions, StoreError, check_key};

/// A store in a directory (created on first write).
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    /// The directory holding the objects.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(self, key)?;
        Ok(key
            .split('/')
            .fold(self.root.clone(), |path, segment| path.join(segment)))
    }

    fn other(&self, operation: &'static str, key: &str, error: io::Error) -> StoreError {
        StoreError::Other {
            store: self.describe(),
            operation,
            key: key.to_owned(),
            detail: error.to_string(),
        }
    }

    fn precondition_failed(&self, key: &str) -> StoreError {
        StoreError::PreconditionFailed {
            store: self.describe(),
            key: key.to_owned(),
        }
    }
}

/// `"<hex>"`: the first 128 bits of the content's SHA-256, quoted like an HTTP ETag.
fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// A fresh, unique, hidden sibling of `path` for writing before the atomic link/rename.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let unique = format!(
        ".{name}.tmp-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    path.with_file_name(unique)
}

/// Writes `bytes` to a new temp file next to `path`, flushed to disk, and returns its path.
fn write_temp(path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let temp = temp_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(error) = written {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    Ok(temp)
}

/// Flushes the directory entry of `path` so a completed write survives a crash.
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        // Best effort: some filesystems refuse to fsync a directory, and the data itself is
        // already on disk.
        let _ = File::open(parent).and_then(|dir| dir.sync_all());
    }
}

fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn create(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let temp = write_temp(path, bytes)?;
    let linked = fs::hard_link(&temp, path);
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            sync_parent(path);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

fn replace_if_match(path: &Path, bytes: &[u8], etag: &str) -> io::Result<bool> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lock_path = path.with_file_name(format!(".{name}.lock"));
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    lock.lock()?;
    let result = (|| {
        match read(path)? {
            Some(current) if etag_of(&current) == etag => {}
            _ => return Ok(false),
        }
        let temp = write_temp(path, bytes)?;
        if let Err(e) = fs::rename(&temp, path) {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        sync_parent(path);
        Ok(true)
    })();
    let _ = lock.unlock();
    result
}

/// Runs blocking file I/O off the async executor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

#[async_trait::async_trait]
impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        let path = self.path(key)?;
        let bytes = blocking(move || read(&path))
            .await
            .map_err(|e| self.other("get", key, e))?;
        Ok(bytes.map(|bytes| Object {
            etag: etag_of(&bytes),
            bytes,
        }))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        Ok(self.get(key).await?.map(|object| ObjectMeta {
            etag: object.etag,
            size: object.bytes.len() as u64,
        }))
    }

    async fn put_if_absent(
        &self,
        key: &str,
        bytes: Vec<u8>,
        _options: PutOptions,
    ) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match blocking(move || create(&path, &bytes)).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.precondition_failed(key)),
            Err(e) => Err(self.other("put", key, e)),
        }
    }

    async fn put_if_match(
        &self,
        key: &str,
        bytes: Vec<u8>,
        etag: &str,
        _options: PutOptions,
    ) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let etag = etag.to_owned();
        match blocking(move || replace_if_match(&path, &bytes, &etag)).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.precondition_failed(key)),
            Err(e) => Err(self.other("put", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Walk only the deepest directory the prefix names completely.
        let dir_part = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path(dir_part)?
        };
        let base = dir_part.to_owned();
        let mut keys = blocking(move || {
            let mut keys = Vec::new();
            walk(&start, &base, &mut keys)?;
            Ok(keys)
        })
        .await
        .map_err(|e| self.other("list", prefix, e))?;
        keys.retain(|key| key.starts_with(prefix));
        keys.sort();
        Ok(keys)
    }
}

fn walk(dir: &Path, key_prefix: &str, keys: &mut Vec<String>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let key = if key_prefix.is_empty() {
            name
        } else {
            format!("{key_prefix}/{name}")
        };
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &key, keys)?;
        } else {
            keys.push(key);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn conditional_writes_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("store"));
        runtime().block_on(async {
            assert_eq!(store.get("prod/current.json").await.unwrap(), None);
            store
                .put_if_absent("prod/current.json", b"one".to_vec(), PutOptions::POINTER)
                .await
                .unwrap();
            let err = store
                .put_if_absent("prod/current.json", b"two".to_vec(), PutOptions::POINTER)
                .await;
            assert!(
                matches!(err, Err(StoreError::PreconditionFailed { .. })),
                "{err:?}"
            );

            let first = store.get("prod/current.json").await.unwrap().unwrap();
            assert_eq!(first.bytes, b"one");
            let stale = first.etag.clone();
            store
                .put_if_match(
                    "prod/current.json",
                    b"three".to_vec(),
                    &first.etag,
                    PutOptions::POINTER,
                )
                .await
                .unwrap();
            let err = store
                .put_if_match(
                    "prod/current.json",
                    b"four".to_vec(),
                    &stale,
                    PutOptions::POINTER,
                )
                .await;
            assert!(
                matches!(err, Err(StoreError::PreconditionFailed { .. })),
                "{err:?}"
            );
            assert_eq!(
                store.get("prod/current.json").await.unwrap().unwrap().bytes,
                b"three"
            );

            let err = store
                .put_if_match(
                    "prod/nothing.json",
                    b"x".to_vec(),
                    &stale,
                    PutOptions::POINTER,
                )
                .await;
            assert!(
                matches!(err, Err(StoreError::PreconditionFailed { .. })),
                "{err:?}"
            );

            store
                .put_if_absent(
                    "prod/versions/1.json",
                    b"{}".to_vec(),
                    PutOptions::IMMUTABLE_JSON,
                )
                .await
                .unwrap();
            store
                .put_if_absent(
                    "prod/versions/2.json",
                    b"{}".to_vec(),
                    PutOptions::IMMUTABLE_JSON,
                )
                .await
                .unwrap();
            store
                .put_if_absent(
                    "production/current.json",
                    b"{}".to_vec(),
                    PutOptions::POINTER,
                )
                .await
                .unwrap();
            assert_eq!(
                store.list("prod/versions/").await.unwrap(),
                ["prod/versions/1.json", "prod/versions/2.json"]
            );
            assert_eq!(
                store.list("prod/").await.unwrap(),
                [
                    "prod/current.json",
                    "prod/versions/1.json",
                    "prod/versions/2.json"
                ],
                "temp and lock files are not objects; `production/` is not under `prod/`"
            );
            assert_eq!(store.list("staging/").await.unwrap(), Vec::<String>::new());
        });
    }

    #[test]
    fn refuses_keys_that_escape_or_hide() {
        let store = LocalStore::new("/nonexistent");
        for key in [
            "",
            "../x",
            "prod/../../x",
            "prod//x",
            ".hidden",
            "prod/.lock",
            "/abs",
        ] {
            let err = runtime().block_on(store.get(key));
            assert!(
                matches!(err, Err(StoreError::InvalidKey { .. })),
                "{key:?}: {err:?}"
            );
        }
    }
}
