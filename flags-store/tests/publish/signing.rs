//! Signed publishing on the embedded local store: with a signing key every verb (push, canary,
//! kill, promote, rollback) writes a pointer whose signature verifies for its environment and
//! version, kept in the version record too (the pointer is derived from the record alone);
//! without one, pointers stay unsigned as before.

use std::sync::Arc;

use crate::common::{environment, examples, provenance, published};
use flags_store::publish::{KillTarget, Outcome};
use flags_store::signing::{SigningKey, verify};
use shared_eval::{Pointer, Share};

const TIME: &str = "2026-11-21T09:00:00Z";

async fn stored_pointer(dir: &std::path::Path) -> Pointer {
    let bytes = std::fs::read(dir.join("dev/current.json")).unwrap();
    Pointer::parse(&bytes).expect("the edge reads the pointer")
}

#[tokio::test]
async fn every_publish_signs_the_pointer_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate().unwrap());
    let public = key.public_key();
    let env = environment(dir.path()).with_signing_key(Arc::clone(&key));
    let mut versions = Vec::new();
    let push = published(env.push(examples(), &provenance("t"), None).await.unwrap());
    versions.push(push.version);
    let canary = env
        .push_canary(
            examples(),
            Share::from_percent(5.0).unwrap(),
            &provenance("t"),
            None,
        )
        .await;
    // A canary of identical flags may be refused or published; either way the pointer is signed.
    if let Ok(Outcome::Published(record)) = canary {
        versions.push(record.version);
    }
    let target = KillTarget::Flags(vec!["beta-banner".into()]);
    let kill = env
        .set_killed(&target, true, "t", TIME, None)
        .await
        .unwrap();
    versions.push(published(kill).version);
    if let Ok(Outcome::Published(record)) = env.promote("t", TIME, None).await {
        versions.push(record.version);
    }
    let rollback = published(env.rollback(1, "t", TIME, None).await.unwrap());
    versions.push(rollback.version);
    assert!(versions.len() >= 3, "{versions:?}");
    for version in versions {
        let record = env.record(version).await.unwrap().unwrap();
        let signature = record.signature.as_ref().expect("the record is signed");
        assert_eq!(signature.key_id, key.key_id());
        assert!(
            verify(&record.pointer(), "dev", &public),
            "version {version}"
        );
    }
    let pointer = stored_pointer(dir.path()).await;
    assert_eq!(pointer, rollback.pointer());
    assert!(verify(&pointer, "dev", &public));
    assert!(
        !verify(&pointer, "prod", &public),
        "bound to its environment"
    );
    let other = SigningKey::generate().unwrap();
    assert!(!verify(&pointer, "dev", &other.public_key()));
}

#[tokio::test]
async fn without_a_key_pointers_stay_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path());
    let record = published(env.push(examples(), &provenance("t"), None).await.unwrap());
    assert_eq!(record.signature, None);
    let text = std::fs::read_to_string(dir.path().join("dev/current.json")).unwrap();
    assert!(!text.contains("signature"), "{text}");
    assert_eq!(stored_pointer(dir.path()).await.signature, None);
}
