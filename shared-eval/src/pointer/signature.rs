//! The pointer's signature: what the publisher signs with its ed25519 key and the edge checks
//! against its configured public keys, so that write access to the bucket is not enough to
//! serve flags.
//!
//! The signature covers the pointer's content through [`Pointer::signed_message`]: the
//! environment (which the pointer itself does not name, so a pointer cannot be replayed into
//! another environment), the version, the stable blob's `sha256` and `content_hash` and, while a
//! canary runs, the canary's. The blob key is not in the message: the edge refuses any key
//! other than `blobs/<sha256>.json.gz` ([`BlobRef::check`]), and the blob's bytes are checked
//! against `sha256`, so signing the pointer covers the blobs it names.
//!
//! # The signed bytes
//!
//! UTF-8 text, one `name=value` line per field, each ending in `\n`, in this order:
//!
//! ```text
//! flags-pointer-signature-v1
//! environment=<environment>
//! version=<version, decimal>
//! sha256=<stable blob's sha256>
//! content_hash=<stable blob's content_hash, empty when none>
//! ```
//!
//! then, only when the pointer names a canary, five more:
//!
//! ```text
//! canary.sha256=<canary blob's sha256>
//! canary.content_hash=<canary blob's content_hash>
//! canary.buckets=<share in buckets of 100,000, decimal>
//! canary.salt=<salt>
//! canary.since=<since, decimal>
//! ```
//!
//! Values are written as they are, so a value may not hold a control character (below 0x20,
//! or 0x7f): such a pointer cannot be signed or verified ([`PointerError::Unsignable`]). Every
//! line has a fixed name in a fixed order and no value holds a line break, so two different
//! pointers never give the same bytes. `testdata/pointer-signature.json` holds a worked example,
//! made and checked by `testdata/signing.py` with Python's `cryptography`.
//!
//! # Where it is written
//!
//! `"signature": {"key_id": "<id>", "ed25519": "<base64, 64 bytes>"}` in `current.json` and in
//! the version record (the pointer is derived from the record alone). `key_id` names the
//! public key to check it with (the publisher derives it from the public key; the edge only
//! matches it). Pointers without it (all of them before signing existed) are unsigned: an edge
//! with public keys configured refuses them, one without serves them as before.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Pointer, PointerError};

/// The first line of every signed message: names the format, so a signature over anything
/// else (or a later version of this format) never verifies here.
pub const SIGNATURE_DOMAIN: &str = "flags-pointer-signature-v1";

/// Longest `key_id` read.
pub const MAX_KEY_ID_BYTES: usize = 64;

/// The pointer's `signature` object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature {
    /// Which public key verifies it.
    pub key_id: String,
    /// The ed25519 signature of [`Pointer::signed_message`], standard base64 (with padding).
    pub ed25519: String,
}

impl Signature {
    /// A signature by `key_id` from its 64 bytes.
    pub fn new(key_id: String, signature: &[u8; 64]) -> Signature {
        Signature {
            key_id,
            ed25519: STANDARD.encode(signature),
        }
    }

    /// The signature's 64 bytes, or `None` when `ed25519` is not base64 of 64 bytes.
    pub fn bytes(&self) -> Option<[u8; 64]> {
        STANDARD.decode(&self.ed25519).ok()?.try_into().ok()
    }

    pub(super) fn read(json: &Value) -> Option<Signature> {
        Some(Signature {
            key_id: super::string(json, "key_id")?,
            ed25519: super::string(json, "ed25519")?,
        })
    }

    pub(super) fn check(&self) -> Result<(), PointerError> {
        let id_ok = !self.key_id.is_empty()
            && self.key_id.len() <= MAX_KEY_ID_BYTES
            && self.key_id.bytes().all(|b| b.is_ascii_graphic());
        if !id_ok || self.bytes().is_none() {
            return Err(PointerError::BadSignatureField);
        }
        Ok(())
    }
}

impl Pointer {
    /// The exact bytes a signature covers for this pointer served to `environment` (module
    /// docs, "The signed bytes"). The [`Pointer::signature`] itself is not part of it.
    pub fn signed_message(&self, environment: &str) -> Result<Vec<u8>, PointerError> {
        let mut text = String::with_capacity(256);
        let mut unsignable = false;
        let mut line = |name: &str, value: &dyn core::fmt::Display| {
            let start = text.len() + name.len() + 1;
            let _ = writeln!(text, "{name}={value}");
            let written = &text.as_bytes()[start..text.len() - 1];
            unsignable |= written.iter().any(|&b| b < 0x20 || b == 0x7f);
        };
        line("environment", &environment);
        line("version", &self.version);
        line("sha256", &self.stable.sha256);
        line("content_hash", &self.stable.content_hash);
        if let Some(canary) = &self.canary {
            line("canary.sha256", &canary.blob_ref.sha256);
            line("canary.content_hash", &canary.blob_ref.content_hash);
            line("canary.buckets", &canary.percent.buckets());
            line("canary.salt", &canary.salt);
            line("canary.since", &canary.since);
        }
        if unsignable {
            return Err(PointerError::Unsignable);
        }
        let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 1 + text.len());
        message.extend_from_slice(SIGNATURE_DOMAIN.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(text.as_bytes());
        Ok(message)
    }
}

#[cfg(test)]
mod tests;
