//! The service in-process: [`Service`] is a scratch directory (`serve.yaml`, `tokens.yaml`, a
//! copy of `examples/flags` as the checkout, a local-directory store) and the [`AppState`]
//! opened from it, as `publisher serve --config serve.yaml` would; [`Call`] sends one request
//! through `app(state).oneshot(..)` and collects the [`Reply`]; [`Browser`] signs in through
//! the page's form and then sends what the page would (its cookie, its CSRF token, its origin).
//!
//! ```ignore
//! let service = Service::builder().token("admin", "s3cret", "{\"*\": [admin]}").start().await;
//! let reply = service.post("/api/v1/environments/prod/push").bearer("s3cret").send().await;
//! assert_eq!(reply.status, 200, "{}", reply.body);
//! ```

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt as _;

use flags_serve::AppState;
use flags_serve::config::{Overrides, ServeConfig};

/// The `Host` every [`Call`] names unless it sets its own (oneshot requests carry none).
pub const HOST: &str = "flags.test";

/// The origin a browser on [`HOST`] sends (without `public_url`).
pub const ORIGIN: &str = "http://flags.test";

/// What the scratch directory is made of.
#[derive(Debug, Default)]
pub struct Builder {
    tokens: Vec<(String, String, String)>,
    environments: Vec<String>,
    config: String,
    git: bool,
    poll: Option<String>,
}

impl Builder {
    /// A token: its name, secret and roles (a YAML flow mapping, e.g. `{prod: [kill]}`).
    pub fn token(mut self, name: &str, secret: &str, roles: &str) -> Builder {
        self.tokens
            .push((name.to_owned(), secret.to_owned(), roles.to_owned()));
        self
    }

    /// A served environment with settings (YAML flow entries, e.g. `approval: {ttl: 1h}`; may
    /// be empty). Without any, `prod` and `staging` are served.
    pub fn env(mut self, name: &str, settings: &str) -> Builder {
        let settings = if settings.is_empty() {
            String::new()
        } else {
            format!(", {settings}")
        };
        self.environments
            .push(format!("{{name: {name}{settings}}}"));
        self
    }

    /// More `serve.yaml` lines (e.g. `public_url: https://flags.example.com`).
    pub fn config(mut self, yaml: &str) -> Builder {
        self.config.push_str(yaml);
        self.config.push('\n');
        self
    }

    /// The checkout is a clone of a bare repository (`remote.git`) holding `examples/flags`
    /// under `config/`, and `serve.yaml` names it (`git: {remote: origin, branch: main}`):
    /// change requests are on.
    pub fn git(mut self) -> Builder {
        self.git = true;
        self
    }

    /// With [`Builder::git`]: fetch at most every `poll` for reads (default `0s`: every read
    /// fetches).
    pub fn poll(mut self, poll: &str) -> Builder {
        self.poll = Some(poll.to_owned());
        self
    }

    /// Writes the directory and opens the service over it.
    pub async fn start(self) -> Service {
        let dir = tempfile::tempdir().expect("scratch dir");
        let checkout = if self.git {
            dir.path().join("repo/config")
        } else {
            dir.path().join("checkout")
        };
        let service = Service {
            dir,
            state: None,
            checkout,
        };
        let mut extra = String::new();
        if self.git {
            let remote = service.remote();
            git(
                service.path(),
                &["init", "--quiet", "--bare", "-b", "main", "remote.git"],
            );
            let seed = service.clone_remote("seed");
            copy_dir(&repo_root().join("examples/flags"), &seed.join("config"));
            git(&seed, &["add", "."]);
            git(&seed, &["commit", "--quiet", "-m", "flags"]);
            git(&seed, &["push", "--quiet", "origin", "HEAD:main"]);
            git(
                service.path(),
                &["clone", "--quiet", &remote.display().to_string(), "repo"],
            );
            extra.push_str(&format!(
                "git: {{remote: origin, branch: main, poll: {}}}\n",
                self.poll.as_deref().unwrap_or("0s")
            ));
        } else {
            copy_dir(&repo_root().join("examples/flags"), &service.checkout());
        }
        service.write_tokens(
            &self
                .tokens
                .iter()
                .map(|(n, s, r)| (n.as_str(), s.as_str(), r.as_str()))
                .collect::<Vec<_>>(),
        );
        let environments = if self.environments.is_empty() {
            vec!["{name: prod}".to_owned(), "{name: staging}".to_owned()]
        } else {
            self.environments
        };
        let flags = if self.git { "repo/config" } else { "checkout" };
        let config = format!(
            "store: store\nflags: {flags}\ntokens: tokens.yaml\nenvironments: [{}]\n{extra}{}",
            environments.join(", "),
            self.config
        );
        let file = service.path().join("serve.yaml");
        std::fs::write(&file, config).expect("write serve.yaml");
        let config = ServeConfig::load(Some(&file), Overrides::default()).expect("serve.yaml");
        let state = AppState::open(config).await.expect("open the service");
        Service {
            state: Some(state),
            ..service
        }
    }
}

/// A service over a scratch directory, removed on drop.
#[derive(Debug)]
pub struct Service {
    dir: tempfile::TempDir,
    state: Option<AppState>,
    checkout: PathBuf,
}

impl Service {
    /// What to make it of.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Its state (the same `Arc`s every request sees).
    pub fn state(&self) -> &AppState {
        self.state.as_ref().expect("started")
    }

    /// The scratch directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The checkout the service compiles (`flags:`): a copy of `examples/flags`.
    pub fn checkout(&self) -> PathBuf {
        self.checkout.clone()
    }

    /// The bare repository the checkout was cloned from (with [`Builder::git`]).
    pub fn remote(&self) -> PathBuf {
        self.path().join("remote.git")
    }

    /// A new clone of [`Service::remote`] at `name` in the scratch directory: someone else's.
    pub fn clone_remote(&self, name: &str) -> PathBuf {
        let remote = self.remote().display().to_string();
        git(self.path(), &["clone", "--quiet", &remote, name]);
        self.path().join(name)
    }

    /// A second service over the same store, remote and tokens (its own clone and config):
    /// another replica.
    pub async fn replica(&self) -> AppState {
        let name = format!("replica-{}", rand_suffix());
        let clone = self.clone_remote(&name);
        let text = std::fs::read_to_string(self.path().join("serve.yaml")).expect("serve.yaml");
        let text = text.replace("flags: repo/config", &format!("flags: {name}/config"));
        let file = self.path().join(format!("{name}.yaml"));
        std::fs::write(&file, text).expect("write replica config");
        assert!(clone.join("config").is_dir());
        let config = ServeConfig::load(Some(&file), Overrides::default()).expect("replica config");
        AppState::open(config).await.expect("open the replica")
    }

    /// A second service over the same `serve.yaml` (the same store, checkout and tokens),
    /// opened again as `publisher serve` on another machine would: another replica, with
    /// no Git needed.
    pub async fn second_state(&self) -> AppState {
        let file = self.path().join("serve.yaml");
        let config = ServeConfig::load(Some(&file), Overrides::default()).expect("serve.yaml");
        AppState::open(config)
            .await
            .expect("open the second replica")
    }

    /// Rewrites the token file (the service re-reads it when its size or time changes).
    pub fn write_tokens(&self, tokens: &[(&str, &str, &str)]) {
        let mut text = String::from("tokens:\n");
        for (name, secret, roles) in tokens {
            text.push_str(&format!(
                "  - name: {name}\n    sha256: \"{}\"\n    roles: {roles}\n",
                flags_serve::tokens::secret_digest(secret)
            ));
        }
        std::fs::write(self.path().join("tokens.yaml"), text).expect("write tokens.yaml");
    }

    /// The origin its pages are served from: `public_url`'s when configured, else [`ORIGIN`].
    pub fn origin(&self) -> String {
        self.state()
            .config
            .public_url
            .as_deref()
            .and_then(flags_serve::auth::origin_of)
            .unwrap_or_else(|| ORIGIN.to_owned())
    }

    /// A request: `GET path`.
    pub fn get(&self, path: &str) -> Call<'_> {
        self.call(Method::GET, path)
    }

    /// A request: `POST path`.
    pub fn post(&self, path: &str) -> Call<'_> {
        self.call(Method::POST, path)
    }

    /// A request with any method.
    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HOST.parse().expect("host"));
        Call {
            service: self,
            method,
            path: path.to_owned(),
            headers,
            body: Vec::new(),
            via: None,
        }
    }

    /// Signs in through the page's form with `secret`: the session cookie the answer sets,
    /// and the CSRF token the page then embeds. Panics when either is missing.
    pub async fn sign_in(&self, secret: &str) -> Browser<'_> {
        let reply = self
            .post("/")
            .header("origin", &self.origin())
            .form(&[("token", secret)])
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{reply:?}");
        let cookie = reply
            .cookie("flags_session")
            .unwrap_or_else(|| panic!("no flags_session cookie: {reply:?}"));
        self.browser(cookie).await
    }

    /// The browser holding session cookie `cookie` (however it signed in), with the CSRF token
    /// the page embeds for it. Panics when the page embeds none.
    pub async fn browser(&self, cookie: String) -> Browser<'_> {
        let page = self
            .get("/")
            .header("cookie", &format!("flags_session={cookie}"))
            .send()
            .await;
        let csrf = page
            .meta("csrf-token")
            .unwrap_or_else(|| panic!("the page embeds no CSRF token: {}", page.body));
        Browser {
            service: self,
            session: cookie,
            csrf,
        }
    }
}

/// A browser signed in through the page: its session cookie and the page's CSRF token.
#[derive(Debug)]
pub struct Browser<'a> {
    service: &'a Service,
    /// The `flags_session` cookie's value.
    pub session: String,
    /// The CSRF token the page embeds.
    pub csrf: String,
}

impl Browser<'_> {
    /// A request carrying the session cookie only.
    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        self.service
            .call(method, path)
            .header("cookie", &format!("flags_session={}", self.session))
    }

    /// A request as the page's own script would send it: the cookie, `X-CSRF-Token` and the
    /// service's origin.
    pub fn page_request(&self, method: Method, path: &str) -> Call<'_> {
        self.call(method, path)
            .header("x-csrf-token", &self.csrf)
            .header("origin", &self.service.origin())
    }
}

/// One request being built.
#[derive(Debug)]
pub struct Call<'a> {
    service: &'a Service,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    via: Option<AppState>,
}

impl Call<'_> {
    /// Adds a header (replacing one of the same name).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name: header::HeaderName = name.parse().expect("header name");
        self.headers
            .insert(name, value.parse().expect("header value"));
        self
    }

    /// `Authorization: Bearer <secret>`.
    pub fn bearer(self, secret: &str) -> Self {
        self.header("authorization", &format!("Bearer {secret}"))
    }

    /// A JSON body.
    pub fn json(mut self, body: &Value) -> Self {
        self.body = body.to_string().into_bytes();
        self.header("content-type", "application/json")
    }

    /// A body of any type.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>, content_type: &str) -> Self {
        self.body = bytes.into();
        self.header("content-type", content_type)
    }

    /// Sends it to another replica's state instead of this service's.
    pub fn via(mut self, state: &AppState) -> Self {
        self.via = Some(state.clone());
        self
    }

    /// A form body (`application/x-www-form-urlencoded`), as a browser posts it.
    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        let encode = |text: &str| -> String {
            text.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    b' ' => "+".to_owned(),
                    b => format!("%{b:02X}"),
                })
                .collect()
        };
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        self.body = body.join("&").into_bytes();
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// Sends it through the whole router (every layer) and reads the answer.
    pub async fn send(self) -> Reply {
        let mut request = Request::builder()
            .method(self.method)
            .uri(&self.path)
            .body(Body::from(self.body))
            .expect("request");
        *request.headers_mut() = self.headers;
        let state = self.via.unwrap_or_else(|| self.service.state().clone());
        let app = flags_serve::app(state);
        let response = app.oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the body");
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

/// An answer.
#[derive(Debug)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body as text.
    pub body: String,
}

impl Reply {
    /// The body as JSON (panics, showing it, when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every `Set-Cookie` line.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// The `Set-Cookie` line setting cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The value `Set-Cookie` gives cookie `name`, when not empty.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let line = self.set_cookie(name)?;
        let value = line[name.len() + 1..].split(';').next()?.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// The `content` of `<meta name=NAME content="...">` in an HTML body.
    pub fn meta(&self, name: &str) -> Option<String> {
        let start = self.body.find(&format!("<meta name={name} content=\""))?;
        let rest = &self.body[start..];
        let value = rest.split('"').nth(1)?;
        Some(value.to_owned())
    }
}

/// Runs git in `dir` (as a test user) and returns its output; panics, showing why, on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Someone Else",
            "-c",
            "user.email=else@example.com",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Copies directory `from` to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}
