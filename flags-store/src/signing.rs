//! The publisher's signing key: ed25519 (`ed25519-dalek`), kept as a PKCS#8 PEM file (what
//! `openssl genpkey -algorithm ed25519` writes too) readable by its owner only. With a key,
//! every publish signs the pointer it writes ([`shared_eval::Pointer::signed_message`], the one
//! definition of the signed bytes), in the pointer and in the version record; edges configured
//! with the public key refuse pointers that are unsigned, signed by an unknown key, or forged.
//!
//! The key id is the first 16 hex digits of the SHA-256 of the raw 32-byte public key
//! ([`key_id_of`]); the worker is configured with `<key id>:<base64 public key>` lines
//! ([`SigningKey::public_line`]). Nothing here prints or logs the private key: `Debug` shows
//! the key id only.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey as _, EncodePrivateKey as _, spki::der::pem::LineEnding,
};
use sha2::{Digest as _, Sha256};
use shared_eval::{Pointer, PointerError, Signature};

/// The environment variable naming the signing key file (the CLI's `--signing-key`).
pub const SIGNING_KEY_ENV_VAR: &str = "FLAGS_SIGNING_KEY_FILE";

/// An ed25519 signing key and its id.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    key_id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// `<first 16 hex digits of SHA-256(public key)>`: the id a key's signatures carry.
pub fn key_id_of(public_key: &[u8; 32]) -> String {
    Sha256::digest(public_key)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl SigningKey {
    /// A new key from the operating system's random generator.
    pub fn generate() -> Result<SigningKey, String> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())
            .map_err(|e| format!("cannot read the system's random generator: {e}"))?;
        Ok(SigningKey::from_seed(&seed))
    }

    /// The key whose 32-byte secret is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> SigningKey {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let key_id = key_id_of(key.verifying_key().as_bytes());
        SigningKey { key, key_id }
    }

    /// Reads a PKCS#8 PEM key file. On Unix the file must not be readable or writable by
    /// group or others (as ssh requires of its keys): a key others can read is not secret.
    pub fn read(path: &Path) -> Result<SigningKey, String> {
        let shown = path.display();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path)
                .map_err(|e| format!("signing key {shown}: {e}"))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "signing key {shown} is accessible by others (mode {:o}): run `chmod 600 {shown}`",
                    mode & 0o777
                ));
            }
        }
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| format!("signing key {shown}: {e}"))?,
        );
        // The parser's error says nothing of the key's bytes; ours says what was expected.
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&text).map_err(|_| {
            format!(
                "signing key {shown} is not an ed25519 private key in PKCS#8 PEM \
                 (`publisher keygen` writes one)"
            )
        })?;
        let key_id = key_id_of(key.verifying_key().as_bytes());
        Ok(SigningKey { key, key_id })
    }

    /// The private key as PKCS#8 PEM (for `publisher keygen` to write, mode 0600): version 1,
    /// the seed only, as `openssl genpkey -algorithm ed25519` writes it (OpenSSL 3.0 cannot read
    /// the version 2 form with the public key that `SigningKey::to_pkcs8_pem` writes).
    pub fn to_pem(&self) -> Result<zeroize::Zeroizing<String>, String> {
        let seed_only = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        seed_only
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("cannot encode the key: {e}"))
    }

    /// The key id its signatures carry.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// `<key id>:<base64 public key>`: one entry of the worker's `FLAGS_PUBLIC_KEYS`.
    pub fn public_line(&self) -> String {
        format!("{}:{}", self.key_id, STANDARD.encode(self.public_key()))
    }

    /// Signs `pointer` as served to `environment`.
    pub fn sign(&self, pointer: &Pointer, environment: &str) -> Result<Signature, PointerError> {
        let message = pointer.signed_message(environment)?;
        let signature = self.key.sign(&message);
        Ok(Signature::new(self.key_id.clone(), &signature.to_bytes()))
    }
}

/// Checks `pointer`'s signature with `public_key` (tests and tools; the edge uses its runtime's
/// Ed25519).
pub fn verify(pointer: &Pointer, environment: &str, public_key: &[u8; 32]) -> bool {
    let (Some(signature), Ok(message)) = (
        pointer.signature.as_ref().and_then(Signature::bytes),
        pointer.signed_message(environment),
    ) else {
        return false;
    };
    ed25519_dalek::VerifyingKey::from_bytes(public_key).is_ok_and(|key| {
        key.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../../shared-eval/testdata/pointer-signature.json");

    /// The worked example (signed by Python's `cryptography`): ed25519 is deterministic, so the
    /// same key signs the same message to the same bytes, and the key id is derived the same way.
    #[test]
    fn signatures_are_the_worked_examples() {
        let vectors: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let seed: [u8; 32] = (0..32)
            .map(|i| u8::from_str_radix(&vectors["seed_hex"].as_str().unwrap()[i * 2..][..2], 16))
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .try_into()
            .unwrap();
        let key = SigningKey::from_seed(&seed);
        assert_eq!(key.key_id(), vectors["key_id"]);
        assert_eq!(
            key.public_line(),
            format!(
                "{}:{}",
                vectors["key_id"].as_str().unwrap(),
                vectors["public_key_base64"].as_str().unwrap()
            )
        );
        for case in vectors["cases"].as_array().unwrap() {
            let pointer = Pointer::parse(&serde_json::to_vec(&case["pointer"]).unwrap()).unwrap();
            let env = case["environment"].as_str().unwrap();
            let signed = key.sign(&pointer, env).unwrap();
            assert_eq!(
                Some(&signed),
                pointer.signature.as_ref(),
                "{}",
                case["name"]
            );
            assert!(verify(&pointer, env, &key.public_key()));
            assert!(!verify(&pointer, "staging", &key.public_key()));
            let mut later = pointer.clone();
            later.version += 1;
            assert!(
                !verify(&later, env, &key.public_key()),
                "a signature covers the version"
            );
        }
    }

    #[test]
    fn key_files_round_trip_and_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let path = dir.path().join("signing-key.pem");
        std::fs::write(&path, key.to_pem().unwrap().as_bytes()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = SigningKey::read(&path).unwrap_err();
            assert!(error.contains("chmod 600"), "{error}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let read = SigningKey::read(&path).unwrap();
        assert_eq!(
            (read.key_id(), read.public_key()),
            (key.key_id(), key.public_key())
        );
        assert!(!format!("{read:?}").contains("BEGIN"));
        std::fs::write(&path, "not a key").unwrap();
        assert!(SigningKey::read(&path).unwrap_err().contains("PKCS#8"));
    }
}
