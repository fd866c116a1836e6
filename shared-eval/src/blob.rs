//! Loading a blob: check the header first, then the body, then prepare it for evaluation.
//!
//! A blob is untrusted at the edge (truncated download, wrong object, old or new schema), so
//! every check the compiler made is made again here, cheapest first: size, schema version,
//! content hash, then index bounds. Only a [`Snapshot`] that passed all of them is evaluated,
//! which is what lets the evaluator index without bounds panics.

use alloc::{format, string::String};
use core::fmt;
use sha2::{Digest, Sha256};

use crate::model::{Blob, Body, Header, SCHEMA_VERSION};

/// Largest uncompressed blob accepted. Bounds the memory a gunzip may take at the edge; the
/// compiler refuses to write anything bigger.
pub const MAX_BLOB_BYTES: usize = 8 * 1024 * 1024;

/// Deepest nesting of all/any/not/segment (and of JSONLogic) accepted. Bounds the evaluator's
/// recursion, so a hostile blob cannot overflow the Wasm stack.
pub const MAX_RULE_DEPTH: usize = 32;

/// Why a blob was refused. The edge keeps serving its last good snapshot and reports this.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobError {
    /// Larger than [`MAX_BLOB_BYTES`].
    TooLarge {
        /// Size seen.
        bytes: usize,
    },
    /// Not JSON, or not shaped like a blob (truncated downloads end up here).
    Malformed(String),
    /// Written by an incompatible publisher.
    SchemaMismatch {
        /// What this build reads.
        expected: u32,
        /// What the blob says.
        found: u32,
    },
    /// The body does not hash to the header's `content_hash`.
    HashMismatch {
        /// From the header.
        expected: String,
        /// Computed over the body.
        found: String,
    },
    /// Well-formed JSON breaking an invariant (index out of range, unsorted list, bad regex...).
    Invalid(String),
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobError::TooLarge { bytes } => {
                write!(
                    f,
                    "blob is {bytes} bytes, over the {MAX_BLOB_BYTES}-byte limit"
                )
            }
            BlobError::Malformed(why) => write!(f, "blob is not valid JSON: {why}"),
            BlobError::SchemaMismatch { expected, found } => {
                write!(
                    f,
                    "blob schema version {found}, this build reads {expected}"
                )
            }
            BlobError::HashMismatch { expected, found } => {
                write!(f, "blob content hash is {found}, header says {expected}")
            }
            BlobError::Invalid(why) => write!(f, "blob is inconsistent: {why}"),
        }
    }
}

impl core::error::Error for BlobError {}

/// `sha256:<hex>` of the compact JSON of `body`: what [`Header::content_hash`] holds.
///
/// serde_json writes struct fields in declaration order and maps in key order, so the same
/// body always serializes to the same bytes on every platform.
pub fn content_hash(body: &Body) -> String {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// A blob that passed every check, ready to evaluate. Cheap to share behind an `Rc`/`Arc`.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) blob: Blob,
    pub(crate) prepared: crate::eval::Prepared,
}

impl Snapshot {
    /// Parses uncompressed blob JSON (gunzipping is the caller's job) and checks it.
    pub fn from_json(bytes: &[u8]) -> Result<Snapshot, BlobError> {
        if bytes.len() > MAX_BLOB_BYTES {
            return Err(BlobError::TooLarge { bytes: bytes.len() });
        }
        // Header first: a blob of another schema may not parse as this one's body at all,
        // and "wrong schema" is the more useful report.
        #[derive(serde::Deserialize)]
        struct SchemaOnly {
            schema: u32,
        }
        let schema: SchemaOnly =
            serde_json::from_slice(bytes).map_err(|e| BlobError::Malformed(format!("{e}")))?;
        if schema.schema != SCHEMA_VERSION {
            return Err(BlobError::SchemaMismatch {
                expected: SCHEMA_VERSION,
                found: schema.schema,
            });
        }
        let blob: Blob =
            serde_json::from_slice(bytes).map_err(|e| BlobError::Malformed(format!("{e}")))?;
        Snapshot::from_blob(blob)
    }

    /// Checks an in-memory blob (the publisher's path, after compiling or downloading).
    pub fn from_blob(blob: Blob) -> Result<Snapshot, BlobError> {
        if blob.schema != SCHEMA_VERSION {
            return Err(BlobError::SchemaMismatch {
                expected: SCHEMA_VERSION,
                found: blob.schema,
            });
        }
        let found = content_hash(&blob.body);
        if found != blob.header.content_hash {
            return Err(BlobError::HashMismatch {
                expected: blob.header.content_hash.clone(),
                found,
            });
        }
        let prepared = crate::eval::Prepared::new(&blob.body).map_err(BlobError::Invalid)?;
        Ok(Snapshot { blob, prepared })
    }

    /// The blob's provenance.
    pub fn header(&self) -> &Header {
        &self.blob.header
    }

    /// The whole blob, as loaded.
    pub fn blob(&self) -> &Blob {
        &self.blob
    }

    /// Gives the blob back (e.g. to re-publish it with a flag killed).
    pub fn into_blob(self) -> Blob {
        self.blob
    }

    /// Flag keys in key order.
    pub fn flag_keys(&self) -> impl Iterator<Item = &str> {
        self.blob.body.flags.iter().map(|f| f.key.as_str())
    }
}
