//! Harness for the edge worker's runtime tests (`tests/tests/worker_*.rs`): builds the worker
//! once, runs it in workerd through Miniflare (`tests/worker/miniflare.mjs`), and serves a
//! store-layout directory from a small real HTTP origin that a test can take down or slow down.
//!
//! The built worker is `edge-worker/build/` (override with `EDGE_WORKER_BUILD`); it is built by
//! `cargo xtask worker-build --if-stale` on first use, which needs what `cargo xtask setup`
//! installs (wasm-bindgen-cli, worker-build, `npm ci`).

pub mod random;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use flate2::{Compression, write::GzEncoder};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use shared_eval::Blob;

pub use crate::process::Reply;
use crate::process::{send, wait_for_ready_line};

/// The repository root.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A fresh scratch directory under `target/`.
pub fn scratch_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = project_root()
        .join("target/test-scratch")
        .join(format!("{label}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Builds the worker once per test process; returns the build directory.
pub fn built_worker() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("EDGE_WORKER_BUILD") {
            return Ok(PathBuf::from(dir));
        }
        let root = project_root();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["xtask", "worker-build", "--if-stale"])
            .current_dir(&root)
            .status()
            .map_err(|e| format!("cannot run cargo xtask worker-build: {e}"))?;
        if !status.success() {
            return Err(format!("cargo xtask worker-build failed ({status})"));
        }
        Ok(root.join("edge-worker/build"))
    });
    match built {
        Ok(dir) => dir.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// Gzips bytes as the publisher does.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A store-layout directory (`<env>/current.json`, `<env>/blobs/<sha>.json.gz`), written the
/// way ARCHITECTURE.md's "Store layout" says the publisher writes it.
#[derive(Debug, Clone)]
pub struct Store {
    /// The directory.
    pub dir: PathBuf,
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store {
            dir: scratch_dir("store"),
        }
    }

    /// Writes `blob` gzipped and points `env` at it; returns the `.gz` SHA-256.
    pub fn publish(&self, env: &str, version: u64, blob: &Blob) -> String {
        let gz = gzip(&serde_json::to_vec(blob).expect("serialize blob"));
        let sha = sha256_hex(&gz);
        self.write_blob(env, &sha, &gz);
        self.write_pointer(env, version, &sha, &blob.header.content_hash);
        sha
    }

    /// Writes a blob object under the given name, whatever its bytes.
    pub fn write_blob(&self, env: &str, sha: &str, bytes: &[u8]) {
        let dir = self.dir.join(env).join("blobs");
        std::fs::create_dir_all(&dir).expect("blobs dir");
        std::fs::write(dir.join(format!("{sha}.json.gz")), bytes).expect("write blob");
    }

    /// Writes the pointer.
    pub fn write_pointer(&self, env: &str, version: u64, sha: &str, content_hash: &str) {
        let pointer = serde_json::json!({
            "version": version, "blob": format!("blobs/{sha}.json.gz"), "sha256": sha,
            "content_hash": content_hash,
        });
        std::fs::create_dir_all(self.dir.join(env)).expect("env dir");
        std::fs::write(self.dir.join(env).join("current.json"), pointer.to_string())
            .expect("write pointer");
    }

    /// Points `env` at arbitrary `.gz` bytes (hash made to match, so later checks are reached).
    pub fn publish_raw(&self, env: &str, version: u64, gz: &[u8]) -> String {
        let sha = sha256_hex(gz);
        self.write_blob(env, &sha, gz);
        self.write_pointer(env, version, &sha, "sha256:unused");
        sha
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

/// How the test origin behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OriginMode {
    /// Serve files.
    Serve = 0,
    /// Close every connection without answering (an origin that is down).
    Down = 1,
    /// Accept and say nothing for 10 s (an origin that times out).
    Hang = 2,
    /// Serve files after 300 ms (a slow but working origin).
    Slow = 3,
}

/// A real HTTP/1.1 origin serving a [`Store`] directory on 127.0.0.1.
#[derive(Debug)]
pub struct Origin {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    mode: Arc<AtomicU8>,
    requests: Arc<AtomicUsize>,
}

impl Origin {
    /// Starts serving `store`.
    pub fn start(store: &Store) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        let url = format!("http://{}", listener.local_addr().expect("origin addr"));
        let mode = Arc::new(AtomicU8::new(OriginMode::Serve as u8));
        let requests = Arc::new(AtomicUsize::new(0));
        let (root, thread_mode, thread_requests) =
            (store.dir.clone(), mode.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, mode, requests) =
                    (root.clone(), thread_mode.clone(), thread_requests.clone());
                std::thread::spawn(move || serve_one(stream, &root, &mode, &requests));
            }
        });
        Origin {
            url,
            mode,
            requests,
        }
    }

    /// Changes the behaviour for the next connections.
    pub fn set_mode(&self, mode: OriginMode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve_one(mut stream: TcpStream, root: &Path, mode: &AtomicU8, requests: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    match mode.load(Ordering::SeqCst) {
        1 => return,
        2 => {
            std::thread::sleep(Duration::from_secs(10));
            return;
        }
        3 => std::thread::sleep(Duration::from_millis(300)),
        _ => {}
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let file = (!path.contains("..")).then(|| root.join(path.trim_start_matches('/')));
    let response = match file.and_then(|f| std::fs::read(f).ok()) {
        Some(body) => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend(body);
            r
        }
        None => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
    };
    let _ = stream.write_all(&response);
}

/// A response from the worker.
/// The built worker running in workerd (through Miniflare), stopped on drop.
#[derive(Debug)]
pub struct Worker {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    stdin: Option<ChildStdin>,
    agent: ureq::Agent,
}

impl Worker {
    /// Starts the worker with these bindings (vars and secrets alike).
    pub fn start(bindings: &[(&str, &str)]) -> Worker {
        Worker::start_with(bindings, None)
    }

    /// Starts the worker with bindings and, optionally, a static assets directory.
    pub fn start_with(bindings: &[(&str, &str)], assets: Option<&Path>) -> Worker {
        Worker::start_with_options(bindings, assets, Value::Null)
    }

    /// Starts the worker with more runner options (`tests/worker/miniflare.mjs`): e.g.
    /// `{"port": P, "persist": DIR}` to restart it later on the same port with its storage.
    pub fn start_with_options(
        bindings: &[(&str, &str)],
        assets: Option<&Path>,
        options: Value,
    ) -> Worker {
        let build = built_worker();
        let bindings: Map<String, Value> = bindings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        let mut config = serde_json::json!({ "bindings": bindings, "assets": assets });
        if let (Value::Object(config), Value::Object(options)) = (&mut config, options) {
            config.extend(options);
        }
        let log = scratch_dir("miniflare").join("stderr.log");
        let mut child = Command::new("node")
            .arg(project_root().join("tests/worker/miniflare.mjs"))
            .env("WORKER_TEST_CONFIG", config.to_string())
            .env("EDGE_WORKER_BUILD", &build)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("run node tests/worker/miniflare.mjs (is Node installed and `npm ci` done?)");
        let stdout = child.stdout.take().expect("stdout");
        // The runner prints `READY <url>`; its console output keeps draining after that.
        let ready = |line: &str| {
            line.strip_prefix("READY ")
                .map(|url| url.trim_end_matches('/').to_owned())
        };
        let Some(url) = wait_for_ready_line(stdout, Duration::from_secs(120), ready, drop) else {
            let _ = child.kill();
            panic!(
                "miniflare did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let stdin = child.stdin.take();
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(20))
            .redirects(0)
            .build();
        Worker {
            url,
            child,
            stdin,
            agent,
        }
    }

    /// Process ids of the runner and everything it started (workerd), for memory figures.
    pub fn pids(&self) -> Vec<u32> {
        fn children(pid: u32, out: &mut Vec<u32>) {
            out.push(pid);
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
                .into_iter()
                .flatten();
            for task in tasks.flatten() {
                let text =
                    std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
                for child in text.split_whitespace().filter_map(|c| c.parse().ok()) {
                    children(child, out);
                }
            }
        }
        let mut out = Vec::new();
        children(self.child.id(), &mut out);
        out
    }

    /// Sends a request.
    #[track_caller]
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let mut request = self.agent.request(method, &format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.set(name, value);
        }
        send(request, body).unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    /// `POST path` with a JSON body.
    #[track_caller]
    pub fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.request("POST", path, &all, Some(body.to_string().as_bytes()))
    }

    /// `GET path`.
    #[track_caller]
    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    /// The health document.
    #[track_caller]
    pub fn health(&self) -> Value {
        let reply = self.get("/_flags/health");
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    /// Polls the health endpoint until `done` holds (or panics after `timeout`).
    pub fn wait_for_health(&self, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let health = self.health();
            if done(&health) {
                return health;
            }
            assert!(
                start.elapsed() < timeout,
                "health never reached the expected state: {health:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing stdin asks the runner to dispose of workerd cleanly; kill if it lingers.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signs identity claims for the worker's `IDENTITY_SECRET`.
pub fn token(claims: Value, secret: &str) -> String {
    edge_worker::identity::sign_hs256(
        claims.as_object().expect("claims object"),
        secret.as_bytes(),
    )
}

/// The number in environment variable `name`, else `default` (the benchmarks' settings).
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seconds since the epoch, for `exp`.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The built worker in bare workerd (no Miniflare in front), as benchmarks and load tests run
/// it: one `main` service on a free 127.0.0.1 port, allowed to reach loopback origins, and
/// beside it in the same process the JavaScript baseline worker (`tests/worker/baseline.mjs`,
/// the runtime's own floor for route timings) on a port of its own. Killed on drop.
#[derive(Debug)]
pub struct Workerd {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The baseline worker's `http://127.0.0.1:PORT`.
    pub baseline_url: String,
    child: Child,
}

impl Workerd {
    /// Starts workerd with these text bindings and waits until `/_flags/ping` answers.
    pub fn start(bindings: &[(&str, &str)]) -> Workerd {
        let build = built_worker();
        let free_port = || {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free port")
        };
        let (port, baseline_port) = (free_port(), free_port());
        let dir = scratch_dir("workerd");
        let bindings: Vec<String> = bindings
            .iter()
            .map(|(name, value)| format!("    (name = {name:?}, text = {value:?}),"))
            .collect();
        let config = format!(
            r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .flagsWorker),
    (name = "baseline", worker = .baselineWorker),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:{port}", http = (), service = "main"),
    (name = "baseline", address = "127.0.0.1:{baseline_port}", http = (), service = "baseline"),
  ],
);
const baselineWorker :Workerd.Worker = (
  modules = [ (name = "baseline.mjs", esModule = embed "baseline.mjs") ],
  compatibilityDate = "2026-04-26",
);
const flagsWorker :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed "index.js"),
    (name = "index_bg.wasm", wasm = embed "index_bg.wasm"),
  ],
  compatibilityDate = "2026-04-26",
  bindings = [
{}
    (name = "EVENTS", durableObjectNamespace = "EventHub"),
  ],
  # The event streams' Durable Object (wrangler.toml's [[durable_objects.bindings]]).
  durableObjectNamespaces = [ (className = "EventHub", uniqueKey = "edge-flags-events") ],
  durableObjectStorage = (inMemory = void),
  globalOutbound = "internet",
);
"#,
            bindings.join("\n")
        );
        // capnp embeds are read relative to the config file.
        for file in ["index.js", "index_bg.wasm"] {
            std::fs::copy(build.join(file), dir.join(file)).expect("copy the built worker");
        }
        std::fs::copy(
            project_root().join("tests/worker/baseline.mjs"),
            dir.join("baseline.mjs"),
        )
        .expect("copy the baseline worker");
        let config_path = dir.join("worker.capnp");
        std::fs::write(&config_path, config).expect("write capnp");
        let workerd = project_root().join("node_modules/@cloudflare/workerd-linux-64/bin/workerd");
        let log = std::fs::File::create(dir.join("workerd.log")).expect("log file");
        let child = Command::new(&workerd)
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start workerd (run `npm ci`)");
        let workerd = Workerd {
            url: format!("http://127.0.0.1:{port}"),
            baseline_url: format!("http://127.0.0.1:{baseline_port}"),
            child,
        };
        let start = Instant::now();
        while ureq::get(&format!("{}/_flags/ping", workerd.url))
            .call()
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "workerd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        workerd
    }

    /// The workerd process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the workerd process in KiB (`VmRSS` of /proc).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status.lines().find_map(|l| {
                    l.strip_prefix("VmRSS:")
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }

    /// Whether workerd is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
