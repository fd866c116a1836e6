//! Every refusal, with signatures made by `ed25519-dalek` (a dev-dependency: the module links
//! none of it) standing in for the runtime's WebCrypto, and the worked example of
//! `shared-eval/testdata/pointer-signature.json` (signed by Python's `cryptography`).

use super::*;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
use shared_eval::{BlobRef, Signature};

const VECTORS: &str = include_str!("../../../shared-eval/testdata/pointer-signature.json");

fn key(seed: u8, id: &str) -> (SigningKey, PublicKey) {
    let signing = SigningKey::from_bytes(&[seed; 32]);
    let public = PublicKey {
        key_id: id.into(),
        raw: signing.verifying_key().to_bytes(),
    };
    (signing, public)
}

fn pointer(version: u64) -> Pointer {
    Pointer {
        version,
        stable: BlobRef::content_addressed("ab".repeat(32), "sha256:cd".into()),
        canary: None,
        signature: None,
    }
}

fn signed(mut pointer: Pointer, env: &str, signing: &SigningKey, id: &str) -> Pointer {
    let message = pointer.signed_message(env).unwrap();
    let signature = signing.sign(&message).to_bytes();
    pointer.signature = Some(Signature::new(id.into(), &signature));
    pointer
}

/// Runs the check to its end, verifying with ed25519-dalek as the runtime would.
fn check(
    pointer: &Pointer,
    env: &str,
    keys: &[PublicKey],
    served: Option<u64>,
) -> Result<(), LoadError> {
    run(check_pointer(
        pointer,
        env,
        keys,
        served,
        async |raw, message, signature| {
            let key = ed25519_dalek::VerifyingKey::from_bytes(raw).ok()?;
            Some(
                key.verify(message, &ed25519_dalek::Signature::from_bytes(signature))
                    .is_ok(),
            )
        },
    ))
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    use std::task::{Context, Poll, Waker};
    match std::pin::pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("nothing here waits"),
    }
}

#[test]
fn a_pointer_signed_by_a_configured_key_is_trusted() {
    let (signing, public) = key(1, "k1");
    let good = signed(pointer(5), "prod", &signing, "k1");
    assert_eq!(
        check(&good, "prod", std::slice::from_ref(&public), None),
        Ok(())
    );
    assert_eq!(
        check(&good, "prod", &[public], Some(5)),
        Ok(()),
        "the same version again"
    );
}

#[test]
fn every_untrusted_pointer_is_refused_with_its_reason() {
    let (signing, public) = key(1, "k1");
    let keys = [public];
    assert_eq!(
        check(&pointer(5), "prod", &keys, None),
        Err(LoadError::Unsigned)
    );
    let (other, _) = key(2, "k2");
    assert_eq!(
        check(
            &signed(pointer(5), "prod", &other, "k2"),
            "prod",
            &keys,
            None
        ),
        Err(LoadError::UnknownKey("k2".into()))
    );
    // Another key's signature under our key's id: a forgery.
    let forged = signed(pointer(5), "prod", &other, "k1");
    assert_eq!(
        check(&forged, "prod", &keys, None),
        Err(LoadError::BadSignature("k1".into()))
    );
    // A signed pointer with any field changed.
    let mut tampered = signed(pointer(5), "prod", &signing, "k1");
    tampered.stable = BlobRef::content_addressed("ef".repeat(32), "sha256:cd".into());
    assert_eq!(
        check(&tampered, "prod", &keys, None),
        Err(LoadError::BadSignature("k1".into()))
    );
    let mut bumped = signed(pointer(5), "prod", &signing, "k1");
    bumped.version = 9;
    assert_eq!(
        check(&bumped, "prod", &keys, None),
        Err(LoadError::BadSignature("k1".into()))
    );
    // Staging's pointer copied into prod.
    let staging = signed(pointer(5), "staging", &signing, "k1");
    assert_eq!(
        check(&staging, "prod", &keys, None),
        Err(LoadError::BadSignature("k1".into()))
    );
    // A replayed older pointer, however well signed.
    let old = signed(pointer(4), "prod", &signing, "k1");
    assert_eq!(
        check(&old, "prod", &keys, Some(5)),
        Err(LoadError::OlderVersion {
            found: 4,
            served: 5
        })
    );
    assert_eq!(
        LoadError::OlderVersion {
            found: 4,
            served: 5
        }
        .to_string(),
        "pointer is version 4, older than version 5 already served: refused"
    );
    // A runtime without Ed25519 is a configuration problem, not a bad pointer.
    let good = signed(pointer(5), "prod", &signing, "k1");
    let refused = run(check_pointer(
        &good,
        "prod",
        &keys,
        None,
        async |_, _, _| None,
    ));
    assert!(matches!(refused, Err(LoadError::Config(_))), "{refused:?}");
}

#[test]
fn without_keys_every_pointer_is_served_as_before() {
    let (other, _) = key(2, "k2");
    for pointer in [pointer(5), signed(pointer(3), "prod", &other, "k2")] {
        assert_eq!(check(&pointer, "prod", &[], Some(9)), Ok(()));
    }
}

#[test]
fn rotation_accepts_either_key_until_the_old_one_is_removed() {
    let (old, old_public) = key(1, "old");
    let (new, new_public) = key(2, "new");
    let both = [old_public, new_public.clone()];
    let by_old = signed(pointer(5), "prod", &old, "old");
    let by_new = signed(pointer(6), "prod", &new, "new");
    assert_eq!(check(&by_old, "prod", &both, None), Ok(()));
    assert_eq!(check(&by_new, "prod", &both, Some(5)), Ok(()));
    let only_new = [new_public];
    assert_eq!(
        check(&by_old, "prod", &only_new, None),
        Err(LoadError::UnknownKey("old".into()))
    );
    assert_eq!(check(&by_new, "prod", &only_new, None), Ok(()));
}

#[test]
fn the_worked_example_verifies() {
    let vectors: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    let line = format!(
        "{}:{}",
        vectors["key_id"].as_str().unwrap(),
        vectors["public_key_base64"].as_str().unwrap()
    );
    let keys = parse_public_keys(&line).unwrap();
    for case in vectors["cases"].as_array().unwrap() {
        let pointer = Pointer::parse(&serde_json::to_vec(&case["pointer"]).unwrap()).unwrap();
        assert_eq!(
            check(&pointer, "prod", &keys, None),
            Ok(()),
            "{}",
            case["name"]
        );
    }
}

#[test]
fn public_keys_are_read_from_pasted_lines() {
    let (_, a) = key(1, "a");
    let (_, b) = key(2, "b");
    let line = |k: &PublicKey| format!("{}:{}", k.key_id, STANDARD.encode(k.raw));
    let text = format!("{},\n {}\n", line(&a), line(&b));
    assert_eq!(parse_public_keys(&text).unwrap(), [a.clone(), b]);
    assert_eq!(parse_public_keys("").unwrap(), []);
    for bad in [
        "no-colon".to_owned(),
        format!(":{}", STANDARD.encode(a.raw)),
        "a:not-base64!".to_owned(),
        format!("a:{}", STANDARD.encode([0u8; 31])),
        format!("{},{}", line(&a), line(&a)),
    ] {
        let error = parse_public_keys(&bad).unwrap_err();
        assert!(error.starts_with("FLAGS_PUBLIC_KEYS: "), "{bad}: {error}");
        assert!(
            !error.contains(&STANDARD.encode(a.raw)),
            "no key bytes in {error}"
        );
    }
}
