//! The pointer `<env>/current.json`: which blob an environment serves, and the canary beside it
//! while one runs. The one mutable object of the store (ARCHITECTURE.md, "Store layout"), so
//! the one definition of its format: the publisher writes it with serde ([`Pointer`]'s
//! `Serialize`), the edge reads it with [`Pointer::parse`] (over [`crate::parse_json`]: the
//! worker links no serde deserializer).
//!
//! ```text
//! {"version": N, "blob": "blobs/<hex>.json.gz", "sha256": "<hex>", "content_hash": "sha256:<hex>",
//!  "canary": {"blob", "sha256", "content_hash", "percent", "salt", "since"},   (canary optional)
//!  "signature": {"key_id", "ed25519"}}                                       (signature optional)
//! ```
//!
//! The signature and the exact bytes it covers are defined in [`signature`]'s module docs.
//!
//! The triple `(blob, sha256, content_hash)` naming one blob object is a [`BlobRef`]: flattened
//! into the pointer (the stable side) and into its [`CanaryRef`], in that field order.
//!
//! Two readers, one format. serde's `Deserialize` (the publisher's, over its own writes)
//! requires every field. [`Pointer::parse`] reads untrusted bytes at the edge: it refuses a
//! pointer that could send it to another key than the content address of its `sha256`, and,
//! as the edge always has, reads a missing or `null` `content_hash` as empty (none named) and
//! a canary `percent` above 0 but below one bucket as a share of nobody.
//!
//! # Example
//!
//! ```
//! use shared_eval::Pointer;
//!
//! let sha = "ab".repeat(32);
//! let text = format!(
//!     r#"{{"version":4,"blob":"blobs/{sha}.json.gz","sha256":"{sha}","content_hash":"sha256:x"}}"#
//! );
//! let pointer = Pointer::parse(text.as_bytes())?;
//! assert_eq!((pointer.version, pointer.stable.sha256.as_str()), (4, sha.as_str()));
//! assert!(pointer.canary.is_none());
//! assert_eq!(serde_json::to_string(&pointer)?, text);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::borrow::ToOwned as _;
use alloc::format;
use alloc::string::String;
use core::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::BUCKETS;

mod signature;
pub use signature::{MAX_KEY_ID_BYTES, SIGNATURE_DOMAIN, Signature};

/// Largest pointer read: a pointer is a few hundred bytes, and the edge reads it on every
/// origin revalidation.
pub const MAX_POINTER_BYTES: usize = 4096;

/// Longest canary salt read (the publisher writes `canary-<env>-<version>`, at most ~90 bytes):
/// the edge hashes it for every request while a canary runs.
pub const MAX_SALT_BYTES: usize = 128;

/// `<env>/current.json`: the version an environment serves, its blob, and the canary beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    /// The environment's current version. After a rollback this is the rollback's own version,
    /// while the blob's header keeps the version it was first published as.
    pub version: u64,
    /// The stable blob (its three fields sit at the pointer's top level).
    #[serde(flatten)]
    pub stable: BlobRef,
    /// A canary beside the stable blob, served to a share of users; absent (and so absent from
    /// pointers written before canaries existed) when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryRef>,
    /// The publisher's signature of [`Pointer::signed_message`]; absent when it signs nothing
    /// (and in every pointer written before signing existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// One blob object, as the pointer (and the publisher's version records) name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    /// The blob's key relative to the environment: `blobs/<sha256>.json.gz` ([`BlobRef::name_for`]).
    pub blob: String,
    /// Hex SHA-256 of the blob object's (gzipped) bytes, as in its key.
    pub sha256: String,
    /// The blob body's `sha256:<hex>` content hash, as in its header. Empty when a pointer read
    /// by [`Pointer::parse`] names none (see [`BlobRef::known_content_hash`]).
    pub content_hash: String,
}

impl BlobRef {
    /// The reference to the blob object whose gzipped bytes hash to `sha256` (hex): its key is
    /// the content address [`BlobRef::name_for`].
    pub fn content_addressed(sha256: String, content_hash: String) -> BlobRef {
        BlobRef {
            blob: BlobRef::name_for(&sha256),
            sha256,
            content_hash,
        }
    }

    /// `blobs/<sha256>.json.gz`: a blob's key relative to its environment.
    pub fn name_for(sha256: &str) -> String {
        format!("blobs/{sha256}.json.gz")
    }

    /// The content hash, or `None` when the pointer named none.
    pub fn known_content_hash(&self) -> Option<&str> {
        Some(self.content_hash.as_str()).filter(|hash| !hash.is_empty())
    }

    /// The fields of `json` (unknown ones ignored).
    fn read(json: &Value) -> Option<BlobRef> {
        Some(BlobRef {
            blob: string(json, "blob")?,
            sha256: string(json, "sha256")?,
            content_hash: optional(json, "content_hash", |v| Some(v.as_str()?.to_owned()))?
                .unwrap_or_default(),
        })
    }

    /// `sha256` is 64 lowercase hex digits and `blob` its content address, so a pointer cannot
    /// send the edge to an arbitrary key.
    pub fn check(&self) -> Result<(), PointerError> {
        let hex = self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex {
            return Err(PointerError::Sha256NotHex);
        }
        let name = self
            .blob
            .strip_prefix("blobs/")
            .and_then(|rest| rest.strip_suffix(".json.gz"));
        if name != Some(self.sha256.as_str()) {
            return Err(PointerError::BlobNotContentAddressed);
        }
        Ok(())
    }
}

/// The pointer's canary half (also the publisher's version records'): a second blob served to
/// [`CanaryRef::percent`] of users, those whose `bucket(salt, targeting key)` is below
/// [`Share::buckets`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryRef {
    /// The canary's blob (its three fields first in the canary object).
    #[serde(flatten)]
    pub blob_ref: BlobRef,
    /// Share of users served the canary.
    pub percent: Share,
    /// The bucketing salt, [`CanaryRef::salt_for`]: fixed for the canary's whole life (a later
    /// push to the canary or a kill keeps it), so a user never changes sides while it runs, and
    /// a new canary reshuffles who goes first.
    pub salt: String,
    /// The version that started this canary.
    pub since: u64,
}

impl CanaryRef {
    /// `canary-<env>-<since>`: the salt of a canary started by version `since` of `env`.
    pub fn salt_for(env: &str, since: u64) -> String {
        format!("canary-{env}-{since}")
    }

    /// Reads and checks a canary half: the pointer's `canary`, or the edge's colo cache entry
    /// header that repeats it.
    pub fn from_json(json: &Value) -> Result<CanaryRef, PointerError> {
        let canary = CanaryRef::read(json).ok_or(PointerError::NotPointer)?;
        canary.check()?;
        Ok(canary)
    }

    fn read(json: &Value) -> Option<CanaryRef> {
        Some(CanaryRef {
            blob_ref: BlobRef::read(json)?,
            percent: Share(buckets_of(json.get("percent")?.as_f64()?)),
            salt: string(json, "salt")?,
            since: json.get("since")?.as_u64()?,
        })
    }

    fn check(&self) -> Result<(), PointerError> {
        self.blob_ref.check()?;
        // Read as the edge always has: any percent in (0, 100], rounded to buckets.
        if self.percent == Share(OUT_OF_RANGE) {
            return Err(PointerError::CanaryPercent);
        }
        if self.salt.is_empty() || self.salt.len() > MAX_SALT_BYTES {
            return Err(PointerError::CanarySalt);
        }
        Ok(())
    }
}

impl Pointer {
    /// Reads and checks `current.json` as fetched: at most [`MAX_POINTER_BYTES`], the pointer
    /// JSON (unknown fields ignored), every blob named by its content address, a canary's
    /// share in (0, 100] and its salt of 1 to [`MAX_SALT_BYTES`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Pointer, PointerError> {
        if bytes.len() > MAX_POINTER_BYTES {
            return Err(PointerError::TooLarge);
        }
        let json = crate::parse_json(bytes).map_err(|_| PointerError::NotPointer)?;
        Pointer::from_json(&json)
    }

    /// [`Pointer::parse`] on JSON already read.
    pub fn from_json(json: &Value) -> Result<Pointer, PointerError> {
        let pointer = Pointer::read(json).ok_or(PointerError::NotPointer)?;
        pointer.stable.check()?;
        if let Some(canary) = &pointer.canary {
            canary.check()?;
        }
        if let Some(signature) = &pointer.signature {
            signature.check()?;
        }
        Ok(pointer)
    }

    /// The fields, or `None` when one is missing or of the wrong type (an absent or `null`
    /// `content_hash` is empty, an absent or `null` `canary` is none).
    fn read(json: &Value) -> Option<Pointer> {
        Some(Pointer {
            version: json.get("version")?.as_u64()?,
            stable: BlobRef::read(json)?,
            canary: optional(json, "canary", CanaryRef::read)?,
            signature: optional(json, "signature", Signature::read)?,
        })
    }
}

fn string(json: &Value, name: &str) -> Option<String> {
    Some(json.get(name)?.as_str()?.to_owned())
}

/// An optional field: `Some(None)` when absent or `null`, `None` when present but unreadable.
fn optional<T>(
    json: &Value,
    name: &str,
    read: impl FnOnce(&Value) -> Option<T>,
) -> Option<Option<T>> {
    match json.get(name) {
        None | Some(Value::Null) => Some(None),
        Some(value) => read(value).map(Some),
    }
}

/// Why [`Pointer::parse`] refused a pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PointerError {
    /// Over [`MAX_POINTER_BYTES`].
    TooLarge,
    /// Not JSON, or a field missing or of the wrong type.
    NotPointer,
    /// A `sha256` that is not 64 lowercase hex digits.
    Sha256NotHex,
    /// A `blob` that is not `blobs/<sha256>.json.gz`.
    BlobNotContentAddressed,
    /// A canary `percent` outside (0, 100].
    CanaryPercent,
    /// A canary `salt` that is empty or over [`MAX_SALT_BYTES`].
    CanarySalt,
    /// A `signature` whose `key_id` is empty, too long or not printable ASCII, or whose
    /// `ed25519` is not base64 of 64 bytes.
    BadSignatureField,
    /// A field holds a control character, so [`Pointer::signed_message`] cannot be formed.
    Unsignable,
}

impl PointerError {
    /// The reason, as the edge's health endpoint shows it (`pointer is invalid: <reason>`).
    pub fn reason(self) -> &'static str {
        match self {
            PointerError::TooLarge => "larger than 4096 bytes",
            PointerError::NotPointer => "not the pointer JSON",
            PointerError::Sha256NotHex => "sha256 is not 64 lowercase hex digits",
            PointerError::BlobNotContentAddressed => "blob is not blobs/<sha256>.json.gz",
            PointerError::CanaryPercent => "canary percent is not in (0, 100]",
            PointerError::CanarySalt => "canary salt is empty or too long",
            PointerError::BadSignatureField => {
                "signature is not {key_id, ed25519: base64 of 64 bytes}"
            }
            PointerError::Unsignable => "a field holds a control character",
        }
    }
}

impl fmt::Display for PointerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl core::error::Error for PointerError {}

/// A share of users in steps of one bucket (0.001%, see [`BUCKETS`]), written in JSON as a
/// percentage (`5`, `0.5`). A user is in the share when its bucket is below
/// [`Share::buckets`], so a larger share only adds users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Share(u32);

/// What [`buckets_of`] gives a percent outside (0, 100] (more buckets than there are).
const OUT_OF_RANGE: u32 = u32::MAX;

/// A percent in (0, 100] as buckets, rounded half away from zero; [`OUT_OF_RANGE`] otherwise.
fn buckets_of(percent: f64) -> u32 {
    if !(percent > 0.0 && percent <= 100.0) {
        return OUT_OF_RANGE;
    }
    let scaled = percent * f64::from(BUCKETS) / 100.0;
    // `f64::round` is not in core. `scaled` is in (0, 100,000]: the cast truncates exactly and
    // the fraction is exact.
    let whole = scaled as u32;
    let fraction = scaled - f64::from(whole);
    whole + u32::from(fraction >= 0.5)
}

impl Share {
    /// The share in buckets of [`BUCKETS`].
    pub fn buckets(self) -> u32 {
        self.0
    }

    /// From a percentage; `None` unless `0 < percent <= 100` and at least one bucket (a 0%
    /// canary serves no one, which is what an abort is for).
    pub fn from_percent(percent: f64) -> Option<Share> {
        let buckets = buckets_of(percent);
        (1..=BUCKETS).contains(&buckets).then_some(Share(buckets))
    }

    /// From a number of buckets; `None` unless `1 <= buckets <= BUCKETS` (what
    /// [`Share::buckets`] gives back, for a caller that kept only the number).
    pub fn from_buckets(buckets: u32) -> Option<Share> {
        (1..=BUCKETS).contains(&buckets).then_some(Share(buckets))
    }

    /// The share as a percentage.
    pub fn percent(self) -> f64 {
        f64::from(self.0) * 100.0 / f64::from(BUCKETS)
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.percent())
    }
}

impl core::str::FromStr for Share {
    type Err = String;
    fn from_str(text: &str) -> Result<Share, String> {
        let number = text.trim().trim_end_matches('%');
        number
            .parse::<f64>()
            .ok()
            .and_then(Share::from_percent)
            .ok_or_else(|| {
                format!(
                    "invalid share {text:?}: expected a percentage above 0 and at most 100 \
                     (steps of 0.001)"
                )
            })
    }
}

impl Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Whole percentages as integers (`5`, not `5.0`), so pointers read naturally.
        if self.0.is_multiple_of(BUCKETS / 100) {
            serializer.serialize_u32(self.0 / (BUCKETS / 100))
        } else {
            serializer.serialize_f64(self.percent())
        }
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Share, D::Error> {
        let percent = f64::deserialize(deserializer)?;
        Share::from_percent(percent).ok_or_else(|| {
            serde::de::Error::custom(format_args!("canary percent {percent} is not in (0, 100]"))
        })
    }
}

#[cfg(test)]
mod tests;
