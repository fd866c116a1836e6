//! `publisher serve` as a real process for tests: started on a free loopback port (it binds
//! `127.0.0.1:0` and logs the address it got), its JSON log lines captured, killed on drop; and
//! [`Setup`], the scratch directory every service test starts from (a copy of the example
//! flags as the service's checkout and a token file).
//!
//! ```no_run
//! let setup = integration_tests::serve::Setup::new(&[("admin", "secret", "{\"*\": [admin]}")]);
//! let service = setup.serve("s3://bucket", &["--env", "prod"], &[]);
//! let reply = service.request("GET", "/api/v1/environments", Some("secret"), None);
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::process::Reply;
use crate::process::{send, wait_for_ready_line};
use crate::{copy_dir, publisher_bin, repo_root};

/// A running `publisher serve`.
#[derive(Debug)]
pub struct Service {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

/// A service test's scratch directory: `tokens.yaml`, `checkout/` (the flags the service
/// publishes) and whatever else the test writes there; removed on drop.
#[derive(Debug)]
pub struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// `tokens.yaml` granting `tokens` (name, secret, roles as a YAML flow mapping) and
    /// `checkout/` holding a copy of `examples/flags`.
    pub fn new(tokens: &[(&str, &str, &str)]) -> Setup {
        let setup = Setup::without_checkout(tokens);
        copy_dir(&repo_root().join("examples/flags"), &setup.checkout());
        setup
    }

    /// Only the token file: the test makes `checkout/` itself (e.g. as a Git clone).
    pub fn without_checkout(tokens: &[(&str, &str, &str)]) -> Setup {
        let setup = Setup {
            dir: tempfile::tempdir().expect("scratch dir"),
        };
        write_tokens(&setup.tokens(), tokens);
        setup
    }

    /// The scratch directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The service's checkout of the flags repository.
    pub fn checkout(&self) -> PathBuf {
        self.path().join("checkout")
    }

    /// The token file.
    pub fn tokens(&self) -> PathBuf {
        self.path().join("tokens.yaml")
    }

    /// Writes `name` in the scratch directory (e.g. a `serve.yaml`) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write a scratch file");
        path.display().to_string()
    }

    /// Starts `publisher serve --store <store> --flags checkout/ --tokens tokens.yaml <args>`
    /// with `envs` (e.g. `SeaweedFs::aws_env()`).
    pub fn serve(&self, store: &str, args: &[&str], envs: &[(&str, String)]) -> Service {
        let checkout = self.checkout().display().to_string();
        let tokens = self.tokens().display().to_string();
        let mut all = vec!["--store", store, "--flags", &checkout, "--tokens", &tokens];
        all.extend_from_slice(args);
        Service::start(&all, envs)
    }
}

/// Writes a token file granting `tokens` (name, secret, roles as a YAML flow mapping).
pub fn write_tokens(path: &Path, tokens: &[(&str, &str, &str)]) {
    let mut text = String::from("tokens:\n");
    for (name, secret, roles) in tokens {
        text.push_str(&format!(
            "  - name: {name}\n    sha256: \"{}\"\n    roles: {roles}\n",
            flags_serve::tokens::secret_digest(secret)
        ));
    }
    std::fs::write(path, text).expect("write the token file");
}

impl Service {
    /// Starts `publisher serve --listen 127.0.0.1:0 <args>` with `envs` and waits until it
    /// answers `/healthz`.
    pub fn start(args: &[&str], envs: &[(&str, String)]) -> Service {
        let mut child = Command::new(publisher_bin())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start publisher serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        let listen = |line: &str| {
            let json = serde_json::from_str::<Value>(line).ok()?;
            json["fields"]["listen"].as_str().map(str::to_owned)
        };
        let started = wait_for_ready_line(stderr, Duration::from_secs(60), listen, move |line| {
            sink.lock().unwrap().push(line)
        });
        let Some(listen) = started else {
            let _ = child.kill();
            panic!("publisher serve did not start: {:?}", logs.lock().unwrap());
        };
        let service = Service {
            base: format!("http://{listen}"),
            child,
            logs,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while service.request("GET", "/healthz", None, None).status != 200 {
            assert!(Instant::now() < deadline, "serve never became healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
        service
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        self.send(
            method,
            path,
            token,
            &[],
            body.map(|b| ("application/json", b.to_string().into_bytes())),
        )
    }

    /// Sends a request with extra headers and an optional `(content type, bytes)` body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .redirects(0)
            .build();
        let mut request = agent.request(method, &format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.set(name, value);
        }
        if let Some((content_type, _)) = &body {
            request = request.set("Content-Type", content_type);
        }
        let reply = send(request, body.as_ref().map(|(_, bytes)| bytes.as_slice()));
        // Status 0 stands for "no answer" (refused, reset), which tests may expect.
        reply.unwrap_or_else(|e| Reply {
            status: 0,
            headers: Vec::new(),
            body: e.to_string(),
        })
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit (graceful shutdown); returns whether it exited 0.
    pub fn stop(mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
