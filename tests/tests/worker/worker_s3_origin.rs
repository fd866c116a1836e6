//! The worker's S3-compatible origin against a real S3 server (SeaweedFS from PyPI, as
//! `cargo xtask setup` installs it): SigV4-signed GETs under a key prefix, and a clear error
//! (with the previous blob kept) when the credentials are wrong.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edge_worker::sigv4::{Signing, authorization, hex, uri_encode_path};
use integration_tests::worker::random::{self, Rng};
use integration_tests::worker::{Worker, gzip, scratch_dir, sha256_hex};
use serde_json::json;
use sha2::{Digest, Sha256};

const KEY: &str = "edge-test-key";
const SECRET: &str = "edge-test-secret";
const BUCKET: &str = "flags";
const PREFIX: &str = "team-a/";
const ENV: &str = "s3env";

/// A SeaweedFS `weed mini` on 127.0.0.1 with every port chosen free, killed on drop.
struct SeaweedFs {
    child: Child,
    endpoint: String,
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn weed_binary() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    cache.join("flagship-test/seaweedfs-venv/bin/weed")
}

/// A free port whose +10000 neighbour (SeaweedFS's default gRPC offset) is free too.
fn free_port() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn start_seaweedfs() -> SeaweedFs {
    let dir = scratch_dir("seaweedfs");
    let config = dir.join("s3.json");
    let identities = json!({"identities": [{"name": "edge", "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
                                            "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]});
    std::fs::write(&config, identities.to_string()).expect("s3.json");
    let s3_port = free_port();
    let mut command = Command::new(weed_binary());
    command
        .arg("mini")
        .arg(format!("-dir={}", dir.display()))
        .args([
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-webdav=false",
            "-admin.ui=false",
        ])
        .args([
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
        ])
        .arg(format!("-s3.port={s3_port}"))
        .arg(format!("-s3.config={}", config.display()));
    for flag in ["master.port", "volume.port", "filer.port", "admin.port"] {
        command.arg(format!("-{flag}={}", free_port()));
    }
    let log = std::fs::File::create(dir.join("weed.log")).expect("log");
    let child = command
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start weed (run `cargo xtask setup`)");
    let endpoint = format!("http://127.0.0.1:{s3_port}");
    let weed = SeaweedFs { child, endpoint };
    let start = Instant::now();
    while ureq::get(&format!("{}/healthz", weed.endpoint))
        .call()
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "SeaweedFS did not start: {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    weed
}

/// A SigV4-signed path-style PUT (the bucket is created on first upload by an admin identity).
fn put(endpoint: &str, key: &str, body: &[u8]) {
    let host = endpoint.trim_start_matches("http://");
    let path = uri_encode_path(&format!("/{BUCKET}/{key}"));
    let payload = hex(&Sha256::digest(body));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let amz_date = edge_worker::clock::amz_date(now);
    let auth = authorization(&Signing {
        method: "PUT",
        canonical_uri: &path,
        canonical_query: "",
        headers: &[
            ("host", host),
            ("x-amz-content-sha256", &payload),
            ("x-amz-date", &amz_date),
        ],
        payload_sha256: &payload,
        region: "us-east-1",
        service: "s3",
        access_key_id: KEY,
        secret_access_key: SECRET,
        amz_date: &amz_date,
    });
    let response = ureq::put(&format!("{endpoint}{path}"))
        .set("x-amz-content-sha256", &payload)
        .set("x-amz-date", &amz_date)
        .set("Authorization", &auth)
        .send_bytes(body);
    assert!(response.is_ok(), "PUT {key}: {response:?}");
}

fn publish(endpoint: &str, version: u64, blob: &shared_eval::Blob) {
    let gz = gzip(&serde_json::to_vec(blob).unwrap());
    let sha = sha256_hex(&gz);
    put(endpoint, &format!("{PREFIX}{ENV}/blobs/{sha}.json.gz"), &gz);
    let pointer = json!({"version": version, "blob": format!("blobs/{sha}.json.gz"), "sha256": sha,
                         "content_hash": blob.header.content_hash});
    put(
        endpoint,
        &format!("{PREFIX}{ENV}/current.json"),
        pointer.to_string().as_bytes(),
    );
}

#[test]
fn the_worker_reads_a_private_bucket_with_sigv4_and_reports_bad_credentials() {
    let weed = start_seaweedfs();
    let blob = random::blob(&mut Rng::new(21), ENV, 1, 10);
    publish(&weed.endpoint, 1, &blob);
    // The objects are private: an unsigned GET is refused, so the worker's reads prove signing.
    let anonymous = ureq::get(&format!(
        "{}/{BUCKET}/{PREFIX}{ENV}/current.json",
        weed.endpoint
    ))
    .call();
    assert!(
        matches!(anonymous, Err(ureq::Error::Status(403, _))),
        "{anonymous:?}"
    );

    let bindings = |secret: &'static str| {
        vec![
            ("FLAGS_ENV", ENV),
            ("ORIGIN_KIND", "s3"),
            ("S3_BUCKET", BUCKET),
            ("S3_REGION", "us-east-1"),
            ("ORIGIN_PREFIX", PREFIX),
            ("S3_ACCESS_KEY_ID", KEY),
            ("S3_SECRET_ACCESS_KEY", secret),
            ("REVALIDATE_MS", "100"),
        ]
    };
    let mut good = bindings(SECRET);
    good.push(("S3_ENDPOINT", &weed.endpoint));
    let worker = Worker::start(&good);
    let health = worker.health();
    assert_eq!(health["loaded"], true, "{health:#}");
    assert_eq!(
        (health["version"].as_u64(), health["loaded_from"].as_str()),
        (Some(1), Some("origin"))
    );
    assert_eq!(health["content_hash"], blob.header.content_hash.as_str());
    let bulk = worker.post(
        "/ofrep/v1/evaluate/flags",
        &json!({"context": {"targetingKey": "u"}}),
        &[],
    );
    assert_eq!(bulk.json()["flags"].as_array().map(Vec::len), Some(10));

    let mut wrong = bindings("not-the-secret");
    wrong.push(("S3_ENDPOINT", &weed.endpoint));
    let refused = Worker::start(&wrong);
    let health = refused.health();
    assert_eq!(health["loaded"], false);
    assert_eq!(
        health["last_error"]["message"],
        "origin answered 403 for pointer"
    );
}
