//! Object storage behind one small trait: an embedded local store (a directory) and S3.
//!
//! The publisher needs exactly five operations, and two of them are conditional writes: that is
//! what makes publishing safe without a lock server. [`ObjectStore::put_if_absent`] creates an
//! object only if no object has the key (S3 `If-None-Match: *`); [`ObjectStore::put_if_match`]
//! replaces an object only if it still has the ETag the caller read (S3 `If-Match`). Both fail
//! with [`StoreError::PreconditionFailed`] otherwise, and never partly succeed.
//!
//! Keys are `/`-separated and relative to the store's root (a directory, or a bucket prefix).
//! What lives under which key is [`crate::layout`]'s business.

pub mod local;
pub mod s3;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

pub use local::LocalStore;
pub use s3::{S3Options, S3Store};

/// Where a store is chosen when neither `--store` nor `FLAGS_STORE` says: a directory in the
/// current working directory, so the demo needs no cloud account.
pub const DEFAULT_STORE: &str = ".flags-store";

/// The environment variable naming the store (same syntax as `--store`).
pub const STORE_ENV_VAR: &str = "FLAGS_STORE";

/// An object as read: its bytes and the ETag to pass to [`ObjectStore::put_if_match`].
#[derive(Clone, PartialEq, Eq)]
pub struct Object {
    /// The object's content, exactly as stored (a gzipped blob stays gzipped).
    pub bytes: Vec<u8>,
    /// Opaque version tag of this content.
    pub etag: String,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("bytes", &self.bytes.len())
            .field("etag", &self.etag)
            .finish()
    }
}

/// What `head` reports about an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Opaque version tag of the content.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
}

/// HTTP metadata stored with an object, which the CDN and the edge see. The local store
/// ignores it (a directory has nowhere to keep it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOptions {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `Content-Encoding`, e.g. `gzip` for blobs.
    pub content_encoding: Option<&'static str>,
    /// `Cache-Control`.
    pub cache_control: &'static str,
}

impl PutOptions {
    /// Immutable JSON records (versions, audit entries): cacheable forever.
    pub const IMMUTABLE_JSON: PutOptions = PutOptions {
        content_type: "application/json",
        content_encoding: None,
        cache_control: "public, max-age=31536000, immutable",
    };
    /// Content-addressed gzipped blobs: cacheable forever, since a key never changes content.
    pub const BLOB: PutOptions = PutOptions {
        content_type: "application/json",
        content_encoding: Some("gzip"),
        cache_control: "public, max-age=31536000, immutable",
    };
    /// The pointer: the one mutable object, so caches must revalidate it every time (an ETag
    /// revalidation is cheap) and a purge is never needed for it to move.
    pub const POINTER: PutOptions = PutOptions {
        content_type: "application/json",
        content_encoding: None,
        cache_control: "no-cache",
    };
}

/// Why a store operation failed. Every variant names the store, so a message alone says where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The conditional write lost: the object exists (`put_if_absent`) or changed
    /// (`put_if_match`). Nothing was written.
    #[error("{store}: {key} was written by someone else in the meantime")]
    PreconditionFailed {
        /// The store's description.
        store: String,
        /// The contested key.
        key: String,
    },
    /// The store refused our credentials or permissions.
    #[error(
        "{store}: access denied ({detail}); check the credentials (AWS_ACCESS_KEY_ID / \
         AWS_SECRET_ACCESS_KEY / AWS_PROFILE) and the bucket policy"
    )]
    Denied {
        /// The store's description.
        store: String,
        /// The server's error code and message.
        detail: String,
    },
    /// The store did not answer (connection refused, DNS, timeout).
    #[error("{store}: cannot reach the store ({detail})")]
    Unreachable {
        /// The store's description.
        store: String,
        /// What the transport said.
        detail: String,
    },
    /// The bucket or directory named by the store location does not exist.
    #[error("{store}: {detail}")]
    Missing {
        /// The store's description.
        store: String,
        /// Which part is missing.
        detail: String,
    },
    /// A key the store cannot hold (empty segment, `..`, leading dot). A bug or a bad
    /// environment name, never silently mapped elsewhere.
    #[error("{store}: invalid object key {key:?}")]
    InvalidKey {
        /// The store's description.
        store: String,
        /// The key.
        key: String,
    },
    /// Anything else, with the operation and key that failed.
    #[error("{store}: {operation} {key}: {detail}")]
    Other {
        /// The store's description.
        store: String,
        /// `get`, `put`, `list`, ...
        operation: &'static str,
        /// The key or prefix.
        key: String,
        /// What went wrong.
        detail: String,
    },
}

/// Object storage as the publisher uses it. Implementations must make both conditional writes
/// atomic against every other writer, including other processes and other machines.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// Where this store is, for messages: `s3://bucket/prefix` or a directory path.
    fn describe(&self) -> String;

    /// Reads an object; `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError>;

    /// Reads an object's ETag and size; `None` if there is none.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError>;

    /// Creates `key` only if no object has it; otherwise [`StoreError::PreconditionFailed`].
    async fn put_if_absent(
        &self,
        key: &str,
        bytes: Vec<u8>,
        options: PutOptions,
    ) -> Result<(), StoreError>;

    /// Replaces `key` only if its current ETag is `etag`; otherwise (changed, or missing)
    /// [`StoreError::PreconditionFailed`].
    async fn put_if_match(
        &self,
        key: &str,
        bytes: Vec<u8>,
        etag: &str,
        options: PutOptions,
    ) -> Result<(), StoreError>;

    /// Every key starting with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// Where the store is, parsed from `--store` / `FLAGS_STORE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A directory (created on first write).
    Local(PathBuf),
    /// `s3://bucket/prefix`.
    S3 {
        /// The bucket.
        bucket: String,
        /// Key prefix inside the bucket, without leading or trailing `/`; may be empty.
        prefix: String,
    },
}

impl StoreLocation {
    /// Parses `s3://bucket[/prefix]` or a directory path (anything else).
    pub fn parse(spec: &str) -> Result<StoreLocation, String> {
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("store {spec:?}: no bucket name after s3://"));
            }
            return Ok(StoreLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if spec.contains("://") {
            return Err(format!(
                "store {spec:?}: only s3:// URLs and directory paths are supported"
            ));
        }
        if spec.is_empty() {
            return Err("store location is empty".to_owned());
        }
        Ok(StoreLocation::Local(PathBuf::from(spec)))
    }
}

/// Opens the store at `spec` (see [`StoreLocation::parse`]). S3 settings come from the
/// standard AWS chain (environment, profile, instance metadata) plus [`S3Options::from_env`].
pub async fn open(spec: &str) -> Result<Arc<dyn ObjectStore>, String> {
    match StoreLocation::parse(spec)? {
        StoreLocation::Local(dir) => Ok(Arc::new(LocalStore::new(dir))),
        StoreLocation::S3 { bucket, prefix } => {
            let options = S3Options::from_env()?;
            Ok(Arc::new(S3Store::connect(bucket, prefix, options).await))
        }
    }
}

/// Checks a key the way every store does: non-empty `/`-separated segments, none of them `.`
/// or `..` or starting with a dot (the local store keeps its temp and lock files there).
pub(crate) fn check_key(store: &dyn ObjectStore, key: &str) -> Result<(), StoreError> {
    let bad = key.is_empty()
        || key.split('/').any(|segment| {
            segment.is_empty() || segment.starts_with('.') || segment.contains('\\')
        });
    if bad {
        Err(StoreError::InvalidKey {
            store: store.describe(),
            key: key.to_owned(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_locations() {
        assert_eq!(
            StoreLocation::parse("s3://flags/prod-cdn/").unwrap(),
            StoreLocation::S3 {
                bucket: "flags".into(),
                prefix: "prod-cdn".into()
            }
        );
        assert_eq!(
            StoreLocation::parse("s3://flags").unwrap(),
            StoreLocation::S3 {
                bucket: "flags".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StoreLocation::parse("./.flags-store").unwrap(),
            StoreLocation::Local("./.flags-store".into())
        );
        assert!(StoreLocation::parse("s3:///x").is_err());
        assert!(StoreLocation::parse("gs://bucket").is_err());
        assert!(StoreLocation::parse("").is_err());
    }
}
