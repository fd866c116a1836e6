//! `cargo xtask demo`: the whole system on this machine, in one command.
//!
//! Starts SeaweedFS (the object store, S3 API on 127.0.0.1), pushes `examples/flags` to it with
//! the publisher, builds the dashboard and the worker, runs the worker in the real Workers
//! runtime (`wrangler dev --local`) reading the store through SigV4-signed GETs, and runs
//! `publisher serve` on the same store, purging the same worker (so a publish through the
//! service reaches the dashboard), with two tokens: `demo-admin` (everything) and
//! `demo-approver` (approves `prod`, where a push waits for approval). Credentials, tokens and
//! the identity secret are random per run and written to `.demo/env.sh` (mode 0600), never
//! printed. Ctrl-C stops everything it started.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::setup::SEAWEEDFS_VERSION;
use crate::util::{Result, cache_dir, project_root, run as sh};

const S3_PORT: u16 = 8333;
const WORKER_PORT: u16 = 8787;
const SERVICE_PORT: u16 = 8080;
const BUCKET: &str = "edgeflags";
const ENVIRONMENT: &str = "dev";

/// Children are killed when this is dropped (also on early error returns).
struct Services(Vec<(&'static str, Child)>);

impl Drop for Services {
    fn drop(&mut self) {
        for (name, child) in self.0.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("demo: stopped {name}");
        }
    }
}

pub fn run() -> Result {
    crate::setup::run()?;
    let root = project_root();
    let state = root.join(".demo");
    fs::create_dir_all(&state).map_err(|e| format!("cannot create .demo: {e}"))?;
    sh(Command::new("cargo")
        .args(["build", "--quiet", "-p", "publisher"])
        .current_dir(&root))?;
    let publisher = root.join("target/debug/publisher");

    let secrets = Secrets::random()?;
    let mut services = Services(Vec::new());
    services
        .0
        .push(("SeaweedFS", start_seaweedfs(&state, &secrets)?));
    wait_http_ok(
        &format!("http://127.0.0.1:{S3_PORT}/healthz"),
        Duration::from_secs(30),
    )?;
    let env_file = write_env_file(&state, &secrets)?;

    // Push first so the worker finds a blob at its first load. SeaweedFS creates the bucket
    // (`-bucket`) moments after /healthz answers: retried quietly until it exists.
    push_when_bucket_exists(&publisher, &root, &secrets)?;

    sh(Command::new("node")
        .arg("dashboard/build.mjs")
        .env("IDENTITY_SECRET", &secrets.identity)
        .env("PUBLISHER_BIN", &publisher)
        .current_dir(&root))?;
    sh(Command::new("cargo")
        .args(["xtask", "worker-build", "--if-stale"])
        .current_dir(&root))?;
    services
        .0
        .push(("the worker", start_worker(&root, &state, &secrets)?));
    let url = format!("http://127.0.0.1:{WORKER_PORT}");
    wait_http_ok(&format!("{url}/_flags/health"), Duration::from_secs(120))?;
    services.0.push((
        "the service",
        start_service(&root, &state, &publisher, &secrets)?,
    ));
    let service = format!("http://127.0.0.1:{SERVICE_PORT}");
    wait_http_ok(&format!("{service}/healthz"), Duration::from_secs(30))?;

    println!(
        "\n  Dashboard:  {url}/\n  Health:     {url}/_flags/health\n  Service:    {service}/  (sign in with $DEMO_ADMIN_TOKEN; $DEMO_APPROVER_TOKEN approves prod)\n\n  In another terminal:\n    source {env}\n    curl -X POST -H \"Authorization: Bearer $DEMO_ADMIN_TOKEN\" {service}/api/v1/environments/{ENVIRONMENT}/flags/beta-banner/kill\n    target/debug/publisher kill beta-banner --env {ENVIRONMENT} --reason \"demo\"\n    target/debug/publisher unkill beta-banner --env {ENVIRONMENT}\n    target/debug/publisher history --env {ENVIRONMENT}\n    target/debug/publisher rollback --env {ENVIRONMENT} --to 1\n\n  Ctrl-C stops the demo.\n",
        env = env_file.display()
    );
    // Run until the worker exits (Ctrl-C reaches the whole process group).
    let (_, worker) = services.0.last_mut().ok_or("no worker")?;
    let _ = worker.wait();
    Ok(())
}

struct Secrets {
    s3_key: String,
    s3_secret: String,
    identity: String,
    purge: String,
    admin_token: String,
    approver_token: String,
}

impl Secrets {
    fn random() -> Result<Secrets> {
        Ok(Secrets {
            s3_key: random_hex(10)?,
            s3_secret: random_hex(20)?,
            identity: random_hex(32)?,
            purge: random_hex(24)?,
            admin_token: random_hex(24)?,
            approver_token: random_hex(24)?,
        })
    }

    /// What the publisher needs to reach the store (and, with `purge`, the worker).
    fn publisher_env(&self, purge: bool) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("FLAGS_STORE", format!("s3://{BUCKET}")),
            ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{S3_PORT}")),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", self.s3_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.s3_secret.clone()),
        ];
        if purge {
            env.push(("FLAGS_PURGE", format!("http://127.0.0.1:{WORKER_PORT}")));
            env.push(("FLAGS_PURGE_TOKEN", self.purge.clone()));
        }
        env
    }
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn start_seaweedfs(state: &Path, secrets: &Secrets) -> Result<Child> {
    let data = state.join("seaweedfs");
    fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let config = data.join("s3.json");
    let identities = format!(
        r#"{{"identities":[{{"name":"demo","credentials":[{{"accessKey":"{}","secretKey":"{}"}}],"actions":["Admin","Read","List","Tagging","Write"]}}]}}"#,
        secrets.s3_key, secrets.s3_secret
    );
    write_private(&config, &identities)?;
    let weed = cache_dir().join("seaweedfs-venv/bin/weed");
    let log = fs::File::create(state.join("seaweedfs.log"))
        .map_err(|e| format!("cannot create log: {e}"))?;
    eprintln!(
        "demo: starting SeaweedFS {SEAWEEDFS_VERSION} (S3 on 127.0.0.1:{S3_PORT}, log .demo/seaweedfs.log)"
    );
    Command::new(&weed)
        .arg("mini")
        .arg(format!("-dir={}", data.display()))
        .args([
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            &format!("-s3.port={S3_PORT}"),
        ])
        .arg(format!("-s3.config={}", config.display()))
        .args([
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ])
        .arg(format!("-bucket={BUCKET}"))
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", weed.display()))
}

/// The first push, retried while the bucket does not exist yet; its output is shown once,
/// from the attempt that counts.
fn push_when_bucket_exists(publisher: &Path, root: &Path, secrets: &Secrets) -> Result {
    let started = Instant::now();
    loop {
        let out = Command::new(publisher)
            .args(["push", "examples/flags", "--env", ENVIRONMENT])
            .args(["--message", "demo start"])
            .envs(secrets.publisher_env(false))
            .current_dir(root)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", publisher.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let bucket_missing = text.contains("NoSuchBucket")
            || (text.contains("bucket") && text.contains("does not exist"));
        if out.status.success() || !bucket_missing || started.elapsed() > Duration::from_secs(30) {
            eprint!("{text}");
            return if out.status.success() {
                Ok(())
            } else {
                Err("the first push failed (see above)".into())
            };
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The flags repository the service's change requests go to: a bare repository
/// `.demo/flags.git` holding `examples/flags` as of this start (made anew each time, like the
/// store), and the service's clone of it, `.demo/flags`.
fn flags_repository(root: &Path, state: &Path) -> Result<std::path::PathBuf> {
    let remote = state.join("flags.git");
    let checkout = state.join("flags");
    for dir in [&remote, &checkout, &state.join("flags-seed")] {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
        }
    }
    let git = |dir: &Path, args: &[&str]| -> Result {
        sh(Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=demo", "-c", "user.email=demo@localhost"])
            .args(["-c", "commit.gpgsign=false"])
            .args(args))
    };
    git(
        state,
        &["init", "--quiet", "--bare", "-b", "main", "flags.git"],
    )?;
    git(state, &["clone", "--quiet", "flags.git", "flags-seed"])?;
    let seed = state.join("flags-seed");
    git(&seed, &["checkout", "--quiet", "-B", "main"])?;
    copy_tree(&root.join("examples/flags"), &seed)?;
    git(&seed, &["add", "."])?;
    git(&seed, &["commit", "--quiet", "-m", "examples/flags"])?;
    git(&seed, &["push", "--quiet", "origin", "main"])?;
    fs::remove_dir_all(&seed).map_err(|e| format!("cannot remove {}: {e}", seed.display()))?;
    git(state, &["clone", "--quiet", "flags.git", "flags"])?;
    Ok(checkout)
}

fn copy_tree(from: &Path, to: &Path) -> Result {
    fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    for entry in fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target).map_err(|e| format!("{}: {e}", target.display()))?;
        }
    }
    Ok(())
}

/// `publisher serve` on the demo's store, purging the demo worker, with the two demo tokens;
/// its flags are a clone of `.demo/flags.git`, so flags can be changed through change requests.
fn start_service(root: &Path, state: &Path, publisher: &Path, secrets: &Secrets) -> Result<Child> {
    let flags = flags_repository(root, state)?;
    let tokens = state.join("serve-tokens.yaml");
    write_private(
        &tokens,
        &format!(
            "tokens:\n  - name: demo-admin\n    sha256: \"{}\"\n    roles: {{\"*\": [admin]}}\n  \
             - name: demo-approver\n    sha256: \"{}\"\n    roles: {{dev: [read], prod: [read, approve]}}\n",
            sha256_hex(&secrets.admin_token)?,
            sha256_hex(&secrets.approver_token)?,
        ),
    )?;
    let config = state.join("serve.yaml");
    write_private(
        &config,
        &format!(
            "# Written by `cargo xtask demo`: the service on the demo's store and worker.\n\
             listen: 127.0.0.1:{SERVICE_PORT}\nstore: s3://{BUCKET}\nflags: {flags}\n\
             tokens: serve-tokens.yaml\npurge: http://127.0.0.1:{WORKER_PORT}\n\
             git: {{ remote: origin, branch: main, poll: 5s }}\n\
             environments:\n  - name: {ENVIRONMENT}\n    auto_publish: true\n    edges: [http://127.0.0.1:{WORKER_PORT}]\n\
             \x20 - name: prod\n    approval: {{ ttl: 24h }}\n",
            flags = flags.display(),
        ),
    )?;
    let log =
        fs::File::create(state.join("serve.log")).map_err(|e| format!("cannot create log: {e}"))?;
    eprintln!(
        "demo: starting the service (publisher serve on 127.0.0.1:{SERVICE_PORT}, log .demo/serve.log)"
    );
    Command::new(publisher)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .envs(secrets.publisher_env(true))
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start the service: {e}"))
}

/// SHA-256 of `text` in hex (coreutils' sha256sum: xtask keeps no crypto dependency).
fn sha256_hex(text: &str) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run sha256sum: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| "sha256sum printed nothing".to_owned())
}

fn start_worker(root: &Path, state: &Path, secrets: &Secrets) -> Result<Child> {
    let vars = [
        ("FLAGS_ENV", ENVIRONMENT.to_owned()),
        ("ORIGIN_KIND", "s3".to_owned()),
        ("S3_ENDPOINT", format!("http://127.0.0.1:{S3_PORT}")),
        ("S3_BUCKET", BUCKET.to_owned()),
        ("S3_REGION", "us-east-1".to_owned()),
        ("S3_ACCESS_KEY_ID", secrets.s3_key.clone()),
        ("S3_SECRET_ACCESS_KEY", secrets.s3_secret.clone()),
        ("IDENTITY_SECRET", secrets.identity.clone()),
        ("PURGE_TOKEN", secrets.purge.clone()),
    ];
    // Secrets go through a .dev.vars-style file rather than the command line (visible in `ps`).
    let dev_vars = state.join("worker.vars");
    let body: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    write_private(&dev_vars, &body)?;
    eprintln!("demo: starting the worker (wrangler dev --local on 127.0.0.1:{WORKER_PORT})");
    Command::new("npx")
        .args([
            "wrangler",
            "dev",
            "--local",
            "--ip",
            "127.0.0.1",
            "--port",
            &WORKER_PORT.to_string(),
        ])
        .arg("--env-file")
        .arg(&dev_vars)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("CI", "true")
        .current_dir(root)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start wrangler: {e}"))
}

fn write_env_file(state: &Path, secrets: &Secrets) -> Result<PathBuf> {
    let path = state.join("env.sh");
    let mut vars = secrets.publisher_env(true);
    vars.extend([
        ("IDENTITY_SECRET", secrets.identity.clone()),
        ("DEMO_ADMIN_TOKEN", secrets.admin_token.clone()),
        ("DEMO_APPROVER_TOKEN", secrets.approver_token.clone()),
        (
            "FLAGS_SERVE_URL",
            format!("http://127.0.0.1:{SERVICE_PORT}"),
        ),
    ]);
    let body: String = vars
        .iter()
        .map(|(k, v)| format!("export {k}={v}\n"))
        .collect();
    write_private(&path, &body)?;
    Ok(path)
}

fn write_private(path: &Path, body: &str) -> Result {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(body.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Polls `url` with a plain HTTP/1.0 GET until it answers 200.
fn wait_http_ok(url: &str, timeout: Duration) -> Result {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if http_status(url) == Some(200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("{url} did not answer 200 within {timeout:?}"))
}

fn http_status(url: &str) -> Option<u16> {
    use std::io::Write;
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
