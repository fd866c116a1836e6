//! Sealing a compiled body into a blob and its gzipped file form (what `build` writes and
//! `push` uploads), and reading it back.
//!
//! The file is gzip over the blob's compact JSON, so an operator can `gunzip | jq` it.
//! Reading is bounded: gunzip stops past [`shared_eval::MAX_BLOB_BYTES`], so a gzip bomb
//! cannot exhaust memory.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use shared_eval::{Blob, Body, Header, MAX_BLOB_BYTES, Snapshot};

/// Why a blob file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobFileError {
    /// Not gzip, or truncated.
    #[error("not a gzipped blob: {0}")]
    Gzip(#[source] std::io::Error),
    /// Uncompressed, it would exceed the edge's limit.
    #[error("blob is over the {MAX_BLOB_BYTES}-byte limit uncompressed")]
    TooLarge,
    /// The blob could not be serialized (should not happen for a compiled body).
    #[error("cannot serialize blob: {0}")]
    Json(#[from] serde_json::Error),
    /// The blob failed the edge's own checks (schema, hash, invariants).
    #[error(transparent)]
    Invalid(#[from] shared_eval::BlobError),
}

/// Who made a blob and from what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    /// Git identity or an explicit override.
    pub author: String,
    /// `git rev-parse HEAD` of the flags directory, when it is in a Git repository.
    pub source_commit: Option<String>,
    /// The flags had uncommitted changes (`git status` under the flags directory): what was
    /// built is not what `source_commit` holds. Absent (false) in what was written before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub source_dirty: bool,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl Provenance {
    /// Reads provenance from the environment: `author` if given, else `git config user.name`,
    /// else `$USER`, else `unknown`; the commit of `flags_dir` if it is in a Git repository, and
    /// whether `flags_dir` (the directory or file itself, not the rest of the repository) has
    /// uncommitted changes or untracked files; the clock for `created_at`.
    pub fn detect(flags_dir: &Path, author: Option<&str>) -> Provenance {
        let dir = if flags_dir.is_dir() {
            flags_dir
        } else {
            flags_dir.parent().unwrap_or(Path::new("."))
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let author = author
            .map(str::to_owned)
            .or_else(|| git(dir, &["config", "user.name"]))
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".to_owned());
        let source_commit = git(dir, &["rev-parse", "HEAD"]);
        // `git status` of the flags themselves: `.` in their directory, or the one file.
        let spec = if flags_dir.is_dir() {
            OsStr::new(".")
        } else {
            flags_dir.file_name().unwrap_or(OsStr::new("."))
        };
        let source_dirty = source_commit.is_some()
            && git(
                dir,
                &[
                    OsStr::new("status"),
                    OsStr::new("--porcelain"),
                    OsStr::new("--"),
                    spec,
                ],
            )
            .is_some();
        Provenance {
            author,
            source_commit,
            source_dirty,
            created_at: now_rfc3339(),
        }
    }
}

/// The current time as RFC 3339 UTC with second precision (`2026-11-21T06:30:00Z`).
pub fn now_rfc3339() -> String {
    rfc3339(chrono::Utc::now())
}

/// `time` as every record and every line of output writes it: RFC 3339 UTC, second precision,
/// `Z` (never `+00:00`), so times sort and compare as text.
pub fn rfc3339(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn git<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

/// Wraps `body` in a header (`version` 0 and no `previous` for a local build) and fills the
/// content hash.
pub fn seal(
    body: Body,
    environment: &str,
    version: u64,
    previous: Option<u64>,
    provenance: &Provenance,
) -> Blob {
    let header = Header {
        environment: environment.to_owned(),
        version,
        previous,
        content_hash: String::new(),
        author: provenance.author.clone(),
        source_commit: provenance.source_commit.clone(),
        created_at: provenance.created_at.clone(),
    };
    Blob::new(header, body)
}

/// Compact JSON, gzipped at the best compression (blobs are written once, read by every edge).
pub fn encode_gzip(blob: &Blob) -> Result<Vec<u8>, BlobFileError> {
    let json = serde_json::to_vec(blob)?;
    if json.len() > MAX_BLOB_BYTES {
        return Err(BlobFileError::TooLarge);
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::best());
    encoder.write_all(&json).map_err(BlobFileError::Gzip)?;
    encoder.finish().map_err(BlobFileError::Gzip)
}

/// Gunzips, refusing more than [`MAX_BLOB_BYTES`] of output. Returns the blob's JSON bytes.
pub fn decode_gzip(bytes: &[u8]) -> Result<Vec<u8>, BlobFileError> {
    let mut json = Vec::new();
    GzDecoder::new(bytes)
        .take(MAX_BLOB_BYTES as u64 + 1)
        .read_to_end(&mut json)
        .map_err(BlobFileError::Gzip)?;
    if json.len() > MAX_BLOB_BYTES {
        return Err(BlobFileError::TooLarge);
    }
    Ok(json)
}

/// Gunzips and loads a blob with every check the edge makes.
pub fn load_gzip(bytes: &[u8]) -> Result<Snapshot, BlobFileError> {
    Ok(Snapshot::from_json(&decode_gzip(bytes)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            author: "Ada".into(),
            source_commit: Some("abc123".into()),
            source_dirty: false,
            created_at: "2026-11-21T06:30:00Z".into(),
        }
    }

    #[test]
    fn round_trips_and_checks_the_hash() {
        let blob = seal(Body::default(), "prod", 0, None, &provenance());
        assert!(blob.header.content_hash.starts_with("sha256:"));
        let gz = encode_gzip(&blob).unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
        let back: Blob = serde_json::from_slice(&decode_gzip(&gz).unwrap()).unwrap();
        assert_eq!(back, blob);
        assert_eq!(back.header.author, "Ada");
        assert_eq!(back.header.environment, "prod");
    }

    #[test]
    fn refuses_garbage_and_bombs() {
        assert!(matches!(
            decode_gzip(b"not gzip"),
            Err(BlobFileError::Gzip(_))
        ));
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![b' '; MAX_BLOB_BYTES + 10]).unwrap();
        let bomb = encoder.finish().unwrap();
        assert!(matches!(decode_gzip(&bomb), Err(BlobFileError::TooLarge)));
    }
}
