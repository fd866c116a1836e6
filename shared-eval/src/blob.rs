//! Loading a blob: check the header first, then the body, then prepare it for evaluation.
//!
//! A blob is untrusted at the edge (truncated download, wrong object, old or new schema), so
//! every check the compiler made is made again here, cheapest first: size, schema version,
//! content hash, then index bounds. Only a [`Snapshot`] that passed all of them is evaluated,
//! which is what lets the evaluator index without bounds panics.

use alloc::{format, string::String};
use core::fmt;
use sha2::{Digest, Sha256};

use crate::decode;
use crate::model::{Blob, Body, Header, SCHEMA_VERSION};

/// Schema 1 differs from 2 only in how regexes are stored, so a schema-1 blob without any is
/// read as it is: blobs published before the change keep loading unless they use `matches`.
const SCHEMA_WITHOUT_DFAS: u32 = 1;

fn check_schema(found: u32) -> Result<(), BlobError> {
    if found == SCHEMA_VERSION || found == SCHEMA_WITHOUT_DFAS {
        Ok(())
    } else {
        Err(BlobError::SchemaMismatch {
            expected: SCHEMA_VERSION,
            found,
        })
    }
}

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
    /// A schema-1 blob with regexes: it stores their sources only, and this build has no regex
    /// compiler at the edge. Publishing the flags again writes the current schema.
    UncompiledRegexes,
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
            BlobError::UncompiledRegexes => write!(
                f,
                "blob schema version 1 stores regexes uncompiled, which this build does not read: \
                 publish it again with a current publisher"
            ),
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
/// body always serializes to the same bytes on every platform. The publisher writes the blob
/// compactly, so these are exactly the bytes of the `body` value in the blob file, and
/// [`Snapshot::from_json`] hashes those bytes as received instead of serializing again.
pub fn content_hash(body: &Body) -> String {
    hash_hex(&serde_json::to_vec(body).unwrap_or_default())
}

fn hash_hex(bytes: &[u8]) -> String {
    sha256_text(&Sha256::digest(bytes).into())
}

/// `sha256:<hex>` of a digest.
fn sha256_text(digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 15)]));
    }
    out
}

/// Blob JSON split into its parts and its header read, the body not yet parsed: the first half
/// of [`Snapshot::from_json`], for callers that compute the body's SHA-256 themselves (the
/// worker hands it to the runtime's native SHA-256, which Wasm code cannot match).
#[derive(Debug)]
pub struct Sealed<'a> {
    schema: u32,
    header: Header,
    body_bytes: &'a [u8],
    /// Decoded in the same pass; used only once the hash of `body_bytes` matched.
    body: Result<Body, decode::JsonError>,
}

impl<'a> Sealed<'a> {
    /// Reads the parts in one pass (size, schema and header checked; the body decoded, its
    /// bytes kept for the hash).
    pub fn parse(bytes: &'a [u8]) -> Result<Sealed<'a>, BlobError> {
        if bytes.len() > MAX_BLOB_BYTES {
            return Err(BlobError::TooLarge { bytes: bytes.len() });
        }
        // The schema is checked first, since a blob of another schema may not parse as this
        // one's header or body at all and "wrong schema" is the more useful report.
        let parts = decode::parts(bytes).map_err(malformed)?;
        check_schema(parts.schema)?;
        let (Some(header), Some((body_bytes, body))) = (parts.header, parts.body) else {
            return Err(BlobError::Malformed(String::from(
                "the blob needs a `header` and a `body`",
            )));
        };
        Ok(Sealed {
            schema: parts.schema,
            header: header.map_err(malformed)?,
            body_bytes,
            body,
        })
    }

    /// The body's bytes as received: what the header's content hash covers (see
    /// [`content_hash`]).
    pub fn body_bytes(&self) -> &'a [u8] {
        self.body_bytes
    }

    /// The rest of the checks, given the SHA-256 of [`Sealed::body_bytes`]: the hash against the
    /// header's (before the body is parsed), then the body and its load-time checks.
    pub fn into_snapshot(self, body_sha256: &[u8; 32]) -> Result<Snapshot, BlobError> {
        let found = sha256_text(body_sha256);
        if found != self.header.content_hash {
            return Err(BlobError::HashMismatch {
                expected: self.header.content_hash,
                found,
            });
        }
        if self.schema == SCHEMA_WITHOUT_DFAS {
            // Its regexes are strings, which `Body` would refuse with a less useful message.
            if decode::has_regexes(self.body_bytes).map_err(malformed)? {
                return Err(BlobError::UncompiledRegexes);
            }
        }
        let body = self.body.map_err(malformed)?;
        let prepared = crate::eval::Prepared::new(&body).map_err(BlobError::Invalid)?;
        Ok(Snapshot {
            blob: Blob {
                schema: self.schema,
                header: self.header,
                body,
            },
            prepared,
        })
    }
}

fn malformed(e: decode::JsonError) -> BlobError {
    BlobError::Malformed(format!("{e}"))
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
        let sealed = Sealed::parse(bytes)?;
        let digest: [u8; 32] = Sha256::digest(sealed.body_bytes()).into();
        sealed.into_snapshot(&digest)
    }

    /// Checks an in-memory blob (the publisher's path, after compiling or downloading).
    pub fn from_blob(blob: Blob) -> Result<Snapshot, BlobError> {
        check_schema(blob.schema)?;
        if blob.schema == SCHEMA_WITHOUT_DFAS && !blob.body.regexes.is_empty() {
            return Err(BlobError::UncompiledRegexes);
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{string::ToString, vec::Vec};
    use serde_json::value::RawValue;

    fn sealed_json() -> Vec<u8> {
        let header = Header {
            environment: "prod".to_string(),
            version: 7,
            previous: None,
            content_hash: String::new(),
            author: "Ada".to_string(),
            source_commit: None,
            created_at: "2026-11-21T06:30:00Z".to_string(),
        };
        let body: Body = serde_json::from_str(
            r#"{"attrs":[["targetingKey"]],"flags":[{"key":"a","kind":"release","value_type":"boolean",
            "variants":[{"name":"on","value":true}],"default_variant":0,"enabled":true,
            "targeting":{"rules":{"rules":[],"fallthrough":{"variant":0}}}}],"eval_order":[0]}"#,
        )
        .unwrap();
        serde_json::to_vec(&Blob::new(header, body)).unwrap()
    }

    #[test]
    fn the_hash_of_the_received_body_bytes_is_the_sealed_hash() {
        let json = sealed_json();
        let snapshot = Snapshot::from_json(&json).unwrap();
        assert_eq!(
            snapshot.header().content_hash,
            content_hash(&snapshot.blob().body)
        );
        // Header fields in another order, or the parts reordered, change nothing hashed.
        #[derive(serde::Deserialize)]
        struct Raw<'a> {
            #[serde(borrow)]
            header: &'a RawValue,
            #[serde(borrow)]
            body: &'a RawValue,
        }
        let raw: Raw<'_> = serde_json::from_slice(&json).unwrap();
        let reordered = alloc::format!(
            r#"{{"body":{},"header":{},"schema":2}}"#,
            raw.body.get(),
            raw.header.get()
        );
        assert!(Snapshot::from_json(reordered.as_bytes()).is_ok());
    }

    #[test]
    fn any_change_to_the_body_bytes_is_refused() {
        let json = String::from_utf8(sealed_json()).unwrap();
        // Same meaning, other bytes: still not what was published.
        let spaced = json.replacen(r#""attrs":"#, r#""attrs": "#, 1);
        assert!(matches!(
            Snapshot::from_json(spaced.as_bytes()),
            Err(BlobError::HashMismatch { .. })
        ));
        let flipped = json.replacen(r#""value":true"#, r#""value":false"#, 1);
        assert!(matches!(
            Snapshot::from_json(flipped.as_bytes()),
            Err(BlobError::HashMismatch { .. })
        ));
        // Still JSON, no longer a body: the hash is what is reported, as for any edit.
        let reshaped = json.replacen(r#""flags":["#, r#""flags":[1,"#, 1);
        assert!(matches!(
            Snapshot::from_json(reshaped.as_bytes()),
            Err(BlobError::HashMismatch { .. })
        ));
        assert!(matches!(
            Snapshot::from_json(br#"{"schema":1,"header":{}}"#),
            Err(BlobError::Malformed(_))
        ));
        assert_eq!(
            Snapshot::from_json(br#"{"schema":3,"body":[]}"#).unwrap_err(),
            BlobError::SchemaMismatch {
                expected: SCHEMA_VERSION,
                found: 3
            }
        );
    }

    #[test]
    fn a_sealed_blob_loads_only_with_its_bodys_digest() {
        let json = sealed_json();
        let sealed = Sealed::parse(&json).unwrap();
        let digest: [u8; 32] = Sha256::digest(sealed.body_bytes()).into();
        let snapshot = sealed.into_snapshot(&digest).unwrap();
        assert_eq!(
            snapshot.header(),
            Snapshot::from_json(&json).unwrap().header()
        );
        let mut wrong = digest;
        wrong[0] ^= 1;
        assert!(matches!(
            Sealed::parse(&json).unwrap().into_snapshot(&wrong),
            Err(BlobError::HashMismatch { .. })
        ));
    }

    /// `sealed_json` with `body` replaced (and the hash sealed again) and the schema set.
    fn with_body(schema: u32, body: &str) -> Vec<u8> {
        let mut blob: serde_json::Value = serde_json::from_slice(&sealed_json()).unwrap();
        let hash = hash_hex(body.as_bytes());
        blob["header"]["content_hash"] = hash.into();
        let header = serde_json::to_string(&blob["header"]).unwrap();
        alloc::format!(r#"{{"schema":{schema},"header":{header},"body":{body}}}"#).into_bytes()
    }

    #[test]
    fn schema_1_blobs_load_unless_they_carry_uncompiled_regexes() {
        let json = sealed_json();
        let raw: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let body = serde_json::to_string(&raw["body"]).unwrap();
        let old = Snapshot::from_json(&with_body(1, &body)).unwrap();
        assert_eq!(old.blob().schema, 1);
        assert_eq!(old.flag_keys().collect::<Vec<_>>(), ["a"]);
        let with_regex = body.replacen(r#""flags":"#, r#""regexes":["^a"],"flags":"#, 1);
        assert_eq!(
            Snapshot::from_json(&with_body(1, &with_regex)).unwrap_err(),
            BlobError::UncompiledRegexes
        );
        // The same source in the current schema is no DFA either: refused, not compiled.
        assert!(matches!(
            Snapshot::from_json(&with_body(2, &with_regex)),
            Err(BlobError::Malformed(_))
        ));
        let compiled = crate::regex::compile_regex("^a").unwrap();
        let with_dfa = body.replacen(
            r#""flags":"#,
            &alloc::format!(
                r#""regexes":[{}],"flags":"#,
                serde_json::to_string(&compiled).unwrap()
            ),
            1,
        );
        assert_eq!(
            Snapshot::from_json(&with_body(2, &with_dfa))
                .unwrap()
                .blob()
                .body
                .regexes,
            core::slice::from_ref(&compiled)
        );
        let mut corrupt = compiled.clone();
        corrupt.dfa.replace_range(8..12, "AAAA");
        let with_corrupt = body.replacen(
            r#""flags":"#,
            &alloc::format!(
                r#""regexes":[{}],"flags":"#,
                serde_json::to_string(&corrupt).unwrap()
            ),
            1,
        );
        assert!(matches!(
            Snapshot::from_json(&with_body(2, &with_corrupt)),
            Err(BlobError::Invalid(why)) if why.starts_with("regex #0: its DFA")
        ));
    }
}
