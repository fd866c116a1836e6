//! Signed pointers against real parts: SeaweedFS as the store, the worker in workerd reading it
//! with SigV4 and configured with public keys, the `publisher` binary signing with keys from
//! `publisher keygen`. An attacker holding the bucket's credentials writes blobs and pointers
//! straight to SeaweedFS (a forged signature, none, a replayed older signed pointer): the edge
//! refuses each, names the reason on `/_flags/health`, and keeps serving the last good flags.
//! Then key rotation: with both keys configured a pointer signed by either is served; a worker
//! configured with the new key alone refuses the old key's.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use integration_tests::deployment::{Deployment, Spec};
use integration_tests::worker::{Worker, scratch_dir, sha256_hex};
use integration_tests::{SeaweedFs, publisher_bin, repo_root};
use serde_json::{Value, json};

const ENV: &str = "dev";
const LABEL: &str = "signing";
const PURGE_TOKEN: &str = "signing-purge-token";
const WAIT: Duration = Duration::from_secs(15);

/// `publisher keygen --out DIR`: the public key line it prints.
fn keygen(dir: &Path) -> String {
    let output = std::process::Command::new(publisher_bin())
        .args(["keygen", "--out"])
        .arg(dir)
        .output()
        .expect("run publisher keygen");
    assert!(output.status.success(), "{output:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("signing-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is the owner's alone");
    }
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn bucket() -> String {
    format!("{LABEL}-{}", std::process::id())
}

fn pointer_key() -> String {
    format!("{LABEL}/{ENV}/current.json")
}

/// Attacker's write: straight to the bucket, no publisher, no purge.
fn put(s3: &SeaweedFs, key: &str, bytes: Vec<u8>) {
    s3.put_raw(&bucket(), key, bytes);
}

fn purge(worker: &Worker) {
    let bearer = format!("Bearer {PURGE_TOKEN}");
    let reply = worker.request("POST", "/_flags/purge", &[("Authorization", &bearer)], None);
    assert!(reply.status < 300, "purge: {} {}", reply.status, reply.body);
}

/// The worker serves `version` and its last revalidation succeeded.
fn serves(worker: &Worker, version: u64) -> Value {
    worker.wait_for_health(WAIT, |h| {
        h["version"] == version && h["consecutive_failures"] == 0
    })
}

/// After a purge the worker re-reads the pointer, refuses it with `reason` and keeps `version`.
fn refuses(worker: &Worker, version: u64, sha256: &Value, reason: &str) {
    purge(worker);
    let health = worker.wait_for_health(WAIT, |h| {
        h["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(reason))
            && h["last_error"]["recovered_at"].is_null()
    });
    assert_eq!(health["version"], version, "{health}");
    assert_eq!(
        &health["sha256"], sha256,
        "the last good blob is kept: {health}"
    );
    // And it answers from it.
    let reply = worker.post("/ofrep/v1/evaluate/flags", &json!({"context": {}}), &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("x-flags-version"),
        Some(version.to_string().as_str())
    );
}

/// A blob of other flags, built by the publisher but never published: the attacker's.
fn attacker_blob(s3: &SeaweedFs, dir: &Path) -> (String, String) {
    let file = dir.join("evil.json.gz");
    let output = std::process::Command::new(publisher_bin())
        .args(["build", "--env", ENV, "--author", "mallory", "-o"])
        .arg(&file)
        .arg(repo_root().join("examples/flags"))
        .output()
        .expect("run publisher build");
    assert!(output.status.success(), "{output:?}");
    let gz = std::fs::read(&file).unwrap();
    let sha = sha256_hex(&gz);
    let mut json = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut json)
        .unwrap();
    let blob: Value = serde_json::from_str(&json).unwrap();
    let content_hash = blob["header"]["content_hash"].as_str().unwrap().to_owned();
    put(s3, &format!("{LABEL}/{ENV}/blobs/{sha}.json.gz"), gz);
    (sha, content_hash)
}

#[test]
fn forged_unsigned_and_replayed_pointers_are_refused_and_keys_rotate() {
    let keys = scratch_dir("signing-keys");
    let old_line = keygen(&keys.join("old"));
    let new_line = keygen(&keys.join("new"));
    let old_key = keys.join("old/signing-key.pem");
    let new_key = keys.join("new/signing-key.pem");
    let both = format!("{old_line},{new_line}");
    let setup = Deployment::start(&Spec {
        label: LABEL,
        environment: ENV,
        identity_secret: "signing-identity-secret",
        purge_token: PURGE_TOKEN,
        bindings: &[("FLAGS_PUBLIC_KEYS", &both), ("REVALIDATE_MS", "100")],
        assets: None,
    });
    let s3 = SeaweedFs::shared();
    let worker = &setup.worker;
    let flags = repo_root().join("examples/flags");
    let flags = flags.to_str().unwrap();
    let signed_by = |key: &Path| ["--signing-key".to_owned(), key.display().to_string()];

    // A signed push is served.
    let old = signed_by(&old_key);
    setup.publisher(&["push", flags, "--author", "alice", &old[0], &old[1]]);
    let v1 = serves(worker, 1);
    let v1_pointer = s3.get_raw(&bucket(), &pointer_key());
    assert!(String::from_utf8_lossy(&v1_pointer).contains("\"signature\""));
    // The new key (both configured) signs a kill: served too.
    let new = signed_by(&new_key);
    setup.publisher(&["kill", "beta-banner", &new[0], &new[1]]);
    let v2 = serves(worker, 2);
    assert_ne!(v1["sha256"], v2["sha256"]);
    let v2_pointer: Value = serde_json::from_slice(&s3.get_raw(&bucket(), &pointer_key())).unwrap();

    // The attacker's blob and a well-formed pointer to it, with v2's signature: forged.
    let (sha, content_hash) = attacker_blob(&s3, &keys);
    let mut forged = v2_pointer.clone();
    forged["version"] = 3.into();
    forged["blob"] = format!("blobs/{sha}.json.gz").into();
    forged["sha256"] = sha.clone().into();
    forged["content_hash"] = content_hash.into();
    put(&s3, &pointer_key(), serde_json::to_vec(&forged).unwrap());
    refuses(worker, 2, &v2["sha256"], "does not verify");

    // The same pointer with no signature at all.
    forged.as_object_mut().unwrap().remove("signature");
    put(&s3, &pointer_key(), serde_json::to_vec(&forged).unwrap());
    refuses(worker, 2, &v2["sha256"], "not signed");

    // Version 1's pointer, genuinely signed, replayed: older than what is served.
    put(&s3, &pointer_key(), v1_pointer);
    refuses(worker, 2, &v2["sha256"], "older than version 2");

    // The real pointer back (as `drift --fix` or a rollback would), then rotation: version 3
    // signed by the old key, served while both keys are configured.
    put(
        &s3,
        &pointer_key(),
        serde_json::to_vec(&v2_pointer).unwrap(),
    );
    purge(worker);
    serves(worker, 2);
    setup.publisher(&["unkill", "beta-banner", &old[0], &old[1]]);
    serves(worker, 3);

    // A worker that trusts the new key alone refuses the old key's pointer...
    let mut bindings = vec![
        ("FLAGS_ENV", ENV.to_owned()),
        ("ORIGIN_KIND", "s3".to_owned()),
        ("S3_ENDPOINT", s3.endpoint.clone()),
        ("S3_BUCKET", bucket()),
        ("S3_REGION", "us-east-1".to_owned()),
        ("ORIGIN_PREFIX", format!("{LABEL}/")),
        ("S3_ACCESS_KEY_ID", s3.access_key.clone()),
        ("S3_SECRET_ACCESS_KEY", s3.secret_key.clone()),
        ("PURGE_TOKEN", PURGE_TOKEN.to_owned()),
        ("REVALIDATE_MS", "100".to_owned()),
    ];
    bindings.push(("FLAGS_PUBLIC_KEYS", new_line.clone()));
    let pairs: Vec<(&str, &str)> = bindings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rotated = Worker::start(&pairs);
    let health = rotated.wait_for_health(WAIT, |h| {
        h["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not configured"))
    });
    assert_eq!(
        health["loaded"], false,
        "nothing trusted to serve: {health}"
    );
    // ...and serves the next version, signed by the new key.
    setup.publisher(&["rollback", "--to", "1", &new[0], &new[1]]);
    purge(&rotated);
    serves(&rotated, 4);
    serves(worker, 4);
}
