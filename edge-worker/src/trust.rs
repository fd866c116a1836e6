//! Which pointers this worker trusts: with public keys configured (`FLAGS_PUBLIC_KEYS`), only a
//! pointer signed by one of them for this environment, and never one older than the version
//! this isolate already serves. Without keys every well-formed pointer is served, as before
//! signing existed.
//!
//! The signed bytes are shared-eval's ([`shared_eval::Pointer::signed_message`], the one
//! definition the publisher signs); the Ed25519 check itself is the runtime's (WebCrypto's
//! `crypto.subtle.verify("Ed25519", ...)` in `runtime/loader_io.rs`), passed in as a function
//! so that every decision here runs under native tests.
//!
//! Only pointers read from the origin are checked: the colo cache entries are written by this
//! worker after the check, and the bucket's credentials do not reach them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use shared_eval::{MAX_KEY_ID_BYTES, Pointer};

use crate::loader::LoadError;

/// Most keys configured at once (a rotation needs two).
pub const MAX_PUBLIC_KEYS: usize = 8;

/// One configured public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The id signatures name it by (`publisher keygen` prints it).
    pub key_id: String,
    /// The raw 32-byte Ed25519 public key.
    pub raw: [u8; 32],
}

/// Reads `FLAGS_PUBLIC_KEYS`: `<key id>:<base64 public key>` entries separated by commas or
/// whitespace (so `publisher keygen`'s lines can be pasted as they are). The error names what
/// is wrong, never a key's bytes.
pub fn parse_public_keys(text: &str) -> Result<Vec<PublicKey>, String> {
    let name = crate::config::bindings::FLAGS_PUBLIC_KEYS;
    let mut keys = Vec::new();
    for entry in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
    {
        let (key_id, base64) = entry
            .split_once(':')
            .ok_or_else(|| format!("{name}: each entry is <key id>:<base64 public key>"))?;
        let id_ok = !key_id.is_empty()
            && key_id.len() <= MAX_KEY_ID_BYTES
            && key_id.bytes().all(|b| b.is_ascii_graphic());
        if !id_ok {
            return Err(format!(
                "{name}: a key id is empty, too long or not printable"
            ));
        }
        let raw = STANDARD
            .decode(base64)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| format!("{name}: key {key_id} is not base64 of 32 bytes"))?;
        if keys.iter().any(|k: &PublicKey| k.key_id == key_id) {
            return Err(format!("{name}: key id {key_id} is listed twice"));
        }
        keys.push(PublicKey {
            key_id: key_id.to_owned(),
            raw,
        });
    }
    if keys.len() > MAX_PUBLIC_KEYS {
        return Err(format!("{name}: at most {MAX_PUBLIC_KEYS} keys"));
    }
    Ok(keys)
}

/// Checks a pointer read from the origin before anything it names is fetched. With `keys`
/// empty: always `Ok` (signing off). Otherwise the pointer's version must not be below
/// `served` (the version this isolate serves), and its signature must be by a configured key
/// and verify over [`Pointer::signed_message`] for `environment`. `ed25519` verifies
/// `(public key, message, signature)`: `None` when the runtime cannot.
pub async fn check_pointer(
    pointer: &Pointer,
    environment: &str,
    keys: &[PublicKey],
    served: Option<u64>,
    ed25519: impl AsyncFnOnce(&[u8; 32], &[u8], &[u8; 64]) -> Option<bool>,
) -> Result<(), LoadError> {
    if keys.is_empty() {
        return Ok(());
    }
    if let Some(served) = served
        && pointer.version < served
    {
        return Err(LoadError::OlderVersion {
            found: pointer.version,
            served,
        });
    }
    let signature = pointer.signature.as_ref().ok_or(LoadError::Unsigned)?;
    let key = keys
        .iter()
        .find(|k| k.key_id == signature.key_id)
        .ok_or_else(|| LoadError::UnknownKey(signature.key_id.clone()))?;
    let message = pointer
        .signed_message(environment)
        .map_err(|e| LoadError::BadPointer(e.reason()))?;
    // `Pointer::parse` checked the field is base64 of 64 bytes.
    let bytes = signature
        .bytes()
        .ok_or(LoadError::BadPointer("signature is not base64 of 64 bytes"))?;
    match ed25519(&key.raw, &message, &bytes).await {
        Some(true) => Ok(()),
        Some(false) => Err(LoadError::BadSignature(key.key_id.clone())),
        None => Err(LoadError::Config(
            "the runtime cannot verify Ed25519 signatures (crypto.subtle)".into(),
        )),
    }
}

#[cfg(test)]
mod tests;
