//! `publisher serve` as a real process for tests: started on a free loopback port (it binds
//! `127.0.0.1:0` and logs the address it got), its JSON log lines captured, killed on drop.
//!
//! ```no_run
//! let service = integration_tests::serve::Service::start(&["--store", "s3://b", "--flags", "f", "--tokens", "t.yaml"], &[]);
//! let reply = service.request("GET", "/api/v1/environments", Some("secret"), None);
//! ```

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::publisher_bin;

/// A running `publisher serve`.
#[derive(Debug)]
pub struct Service {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Writes a token file granting `tokens` (name, secret, roles as a YAML flow mapping).
pub fn write_tokens(path: &Path, tokens: &[(&str, &str, &str)]) {
    let mut text = String::from("tokens:\n");
    for (name, secret, roles) in tokens {
        text.push_str(&format!(
            "  - name: {name}\n    sha256: \"{}\"\n    roles: {roles}\n",
            publisher::serve::tokens::secret_digest(secret)
        ));
    }
    std::fs::write(path, text).expect("write the token file");
}

/// Copies a directory tree (e.g. `examples/flags` into a scratch checkout).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
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
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(json) = serde_json::from_str::<Value>(&line)
                    && let Some(listen) = json["fields"]["listen"].as_str()
                {
                    let _ = addr_tx.send(listen.to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let Ok(listen) = addr_rx.recv_timeout(Duration::from_secs(60)) else {
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
        let result = match body {
            Some((content_type, bytes)) => {
                request.set("Content-Type", content_type).send_bytes(&bytes)
            }
            None => request.call(),
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(e) => {
                return Reply {
                    status: 0,
                    headers: Vec::new(),
                    body: e.to_string(),
                };
            }
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|n| {
                response
                    .header(&n)
                    .map(|v| (n.to_ascii_lowercase(), v.to_owned()))
            })
            .collect();
        let body = response.into_string().unwrap_or_default();
        Reply {
            status,
            headers,
            body,
        }
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
