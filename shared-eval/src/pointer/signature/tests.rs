//! The signed bytes against the worked example in `testdata/pointer-signature.json` (written
//! and verified by `testdata/signing.py`, from the format's definition, with Python's
//! `cryptography`), and what cannot be signed.

use alloc::string::String;

use super::super::*;

const VECTORS: &str = include_str!("../../../testdata/pointer-signature.json");

#[test]
fn the_message_is_the_worked_examples() {
    let vectors: Value = serde_json::from_str(VECTORS).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let text = serde_json::to_vec(&case["pointer"]).unwrap();
        let pointer = Pointer::parse(&text).unwrap();
        let environment = case["environment"].as_str().unwrap();
        let message = pointer.signed_message(environment).unwrap();
        assert_eq!(
            String::from_utf8(message).unwrap(),
            case["message"].as_str().unwrap(),
            "{}",
            case["name"]
        );
        let signature = pointer.signature.as_ref().unwrap();
        assert_eq!(signature.key_id, vectors["key_id"].as_str().unwrap());
        assert_eq!(signature.bytes().map(|b| b.len()), Some(64));
        // Another environment is another message: a pointer cannot be replayed across them.
        assert_ne!(
            pointer.signed_message("staging").unwrap(),
            pointer.signed_message(environment).unwrap()
        );
    }
}

#[test]
fn signatures_round_trip_and_unsigned_pointers_stay_readable() {
    let vectors: Value = serde_json::from_str(VECTORS).unwrap();
    let signed = &vectors["cases"][0]["pointer"];
    let pointer = Pointer::parse(&serde_json::to_vec(signed).unwrap()).unwrap();
    assert_eq!(&serde_json::to_value(&pointer).unwrap(), signed);
    let mut unsigned = signed.clone();
    unsigned.as_object_mut().unwrap().remove("signature");
    let read = Pointer::parse(&serde_json::to_vec(&unsigned).unwrap()).unwrap();
    assert_eq!(read.signature, None);
    // The signature is not part of what it signs.
    assert_eq!(
        read.signed_message("prod").unwrap(),
        pointer.signed_message("prod").unwrap()
    );
}

#[test]
fn a_malformed_signature_field_is_refused() {
    let vectors: Value = serde_json::from_str(VECTORS).unwrap();
    let good = &vectors["cases"][0]["pointer"];
    let sig64 = vectors["cases"][0]["pointer"]["signature"]["ed25519"].clone();
    for bad in [
        serde_json::json!({"key_id": "k"}),
        serde_json::json!({"key_id": "", "ed25519": sig64}),
        serde_json::json!({"key_id": "has space", "ed25519": sig64}),
        serde_json::json!({"key_id": "k".repeat(65), "ed25519": sig64}),
        serde_json::json!({"key_id": "k", "ed25519": "not base64!"}),
        serde_json::json!({"key_id": "k", "ed25519": "AAAA"}),
        serde_json::json!("a string"),
    ] {
        let mut pointer = good.clone();
        pointer["signature"] = bad.clone();
        let error = Pointer::parse(&serde_json::to_vec(&pointer).unwrap()).unwrap_err();
        assert!(
            matches!(
                error,
                PointerError::BadSignatureField | PointerError::NotPointer
            ),
            "{bad}: {error:?}"
        );
    }
    let mut null = good.clone();
    null["signature"] = Value::Null;
    assert_eq!(
        Pointer::parse(&serde_json::to_vec(&null).unwrap())
            .unwrap()
            .signature,
        None
    );
}

#[test]
fn a_control_character_in_any_value_cannot_be_signed() {
    let vectors: Value = serde_json::from_str(VECTORS).unwrap();
    let canary = &vectors["cases"][1]["pointer"];
    let pointer = Pointer::parse(&serde_json::to_vec(canary).unwrap()).unwrap();
    assert!(pointer.signed_message("prod").is_ok());
    // A line break in a value could otherwise forge a line of its own.
    let mut salt = pointer.clone();
    if let Some(canary) = salt.canary.as_mut() {
        canary.salt = String::from("canary-prod-6\ncanary.since=1");
    }
    assert_eq!(salt.signed_message("prod"), Err(PointerError::Unsignable));
    let mut hash = pointer.clone();
    hash.stable.content_hash = String::from("sha256:30eb\u{7f}");
    assert_eq!(hash.signed_message("prod"), Err(PointerError::Unsignable));
    assert_eq!(
        pointer.signed_message("pr\tod"),
        Err(PointerError::Unsignable)
    );
}
