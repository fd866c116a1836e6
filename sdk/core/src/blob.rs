//! A blob as fetched, checked before anything is served from it: its gzipped bytes must hash to
//! the SHA-256 the pointer names, gunzip within [`MAX_BLOB_BYTES`], load with
//! [`Snapshot::from_json`] (schema, content hash, every load-time bound), carry the content hash
//! the pointer names, and belong to the SDK's environment. The same checks as the worker's
//! loader (`edge-worker/src/loader.rs`, `decode_blob_with`), in the same order.

use std::fmt;
use std::io::Read as _;

use sha2::{Digest as _, Sha256};
use shared_eval::{BlobError, BlobRef, MAX_BLOB_BYTES, Snapshot};

/// Why a blob was refused. The last good snapshot stays served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobRefused {
    /// More bytes than [`MAX_BLOB_BYTES`], compressed or not.
    TooLarge,
    /// The bytes do not hash to the pointer's `sha256` (truncated, corrupted, replaced).
    HashMismatch {
        /// What the pointer names.
        expected: String,
        /// What the bytes hash to.
        found: String,
    },
    /// Not a gzip stream, or a corrupt one.
    Gzip,
    /// The blob did not load ([`BlobError`]'s reason).
    Invalid(String),
    /// The header's content hash is not the pointer's.
    ContentHash,
    /// The blob is another environment's.
    Environment {
        /// The SDK's environment.
        expected: String,
        /// The blob header's.
        found: String,
    },
}

impl fmt::Display for BlobRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobRefused::TooLarge => write!(f, "blob larger than {MAX_BLOB_BYTES} bytes"),
            BlobRefused::HashMismatch { expected, found } => {
                write!(f, "blob sha256 {found} is not the pointer's {expected}")
            }
            BlobRefused::Gzip => f.write_str("blob is not a valid gzip stream"),
            BlobRefused::Invalid(why) => write!(f, "blob refused: {why}"),
            BlobRefused::ContentHash => {
                f.write_str("blob content hash is not the one the pointer names")
            }
            BlobRefused::Environment { expected, found } => {
                write!(f, "blob is for environment {found:?}, not {expected:?}")
            }
        }
    }
}

impl std::error::Error for BlobRefused {}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    out
}

/// Checks the blob `gz` against the pointer's reference `named` and loads it: gzipped bytes
/// must hash to `named.sha256`; bytes that arrive already gunzipped must carry the content
/// hash `named` names (the worker's rule, `edge-worker/src/loader.rs`).
pub fn load_blob(gz: &[u8], named: &BlobRef, environment: &str) -> Result<Snapshot, BlobRefused> {
    if gz.len() > MAX_BLOB_BYTES {
        return Err(BlobRefused::TooLarge);
    }
    let is_gzip = gz.starts_with(&[0x1f, 0x8b]);
    let json = if is_gzip {
        let found = sha256_hex(gz);
        if found != named.sha256 {
            return Err(BlobRefused::HashMismatch {
                expected: named.sha256.clone(),
                found,
            });
        }
        gunzip(gz)?
    } else if named.known_content_hash().is_some() {
        // Already gunzipped on the way (an S3 origin storing the blob with `Content-Encoding:
        // gzip` is decoded by the worker's fetch): the body is checked against the content
        // hash the pointer names instead, as the edge does.
        gz.to_vec()
    } else {
        return Err(BlobRefused::Gzip);
    };
    let snapshot =
        Snapshot::from_json(&json).map_err(|e: BlobError| BlobRefused::Invalid(e.to_string()))?;
    if let Some(expected) = named.known_content_hash()
        && snapshot.header().content_hash != expected
    {
        return Err(BlobRefused::ContentHash);
    }
    if snapshot.header().environment != environment {
        return Err(BlobRefused::Environment {
            expected: environment.to_owned(),
            found: snapshot.header().environment.clone(),
        });
    }
    Ok(snapshot)
}

/// Gunzips at most [`MAX_BLOB_BYTES`].
fn gunzip(gz: &[u8]) -> Result<Vec<u8>, BlobRefused> {
    let mut out = Vec::new();
    let limit = MAX_BLOB_BYTES as u64 + 1;
    flate2::read::GzDecoder::new(gz)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|_| BlobRefused::Gzip)?;
    if out.len() > MAX_BLOB_BYTES {
        return Err(BlobRefused::TooLarge);
    }
    Ok(out)
}
