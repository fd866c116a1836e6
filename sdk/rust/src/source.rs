//! Where the pointer and blobs come from, behind one trait ([`Source`]): the worker's
//! server-only SDK routes ([`WorkerSource`]) or a directory in the store's layout
//! ([`DirectorySource`]: the publisher's local store, or a copy of one for offline runs).
//! Every request has a timeout; what came back is told to the core as a
//! [`Response`], which decides what it means.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use flags_sdk_core::Response;

/// A place the SDK syncs from.
#[async_trait]
pub trait Source: Send + Sync + 'static {
    /// The environment's pointer; `etag` is the last accepted one's, for a 304.
    async fn pointer(&self, etag: Option<&str>, announced: Option<u64>) -> Response;
    /// The gzipped blob with this content address.
    async fn blob(&self, sha256: &str) -> Response;
    /// The change stream's URL (the worker's SSE stream), if the source has one.
    fn events_url(&self) -> Option<String> {
        None
    }
    /// A short description for logs and errors (no secrets).
    fn describe(&self) -> String;
}

/// The worker's routes `GET /_flags/sdk/v1/{env}/pointer` and `.../blobs/{sha256}.json.gz`,
/// with the environment's SDK key.
#[derive(Debug, Clone)]
pub struct WorkerSource {
    base: String,
    env: String,
    key: String,
    client: reqwest::Client,
}

impl WorkerSource {
    /// A source for the worker at `base` (`https://flags.example.com`), environment `env`.
    pub fn new(base: &str, env: &str, key: &str, timeout: Duration) -> WorkerSource {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .unwrap_or_default();
        WorkerSource {
            base: base.trim_end_matches('/').to_owned(),
            env: env.to_owned(),
            key: key.to_owned(),
            client,
        }
    }

    async fn get(&self, url: &str, etag: Option<&str>) -> Response {
        let mut request = self.client.get(url).bearer_auth(&self.key);
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Response::Failed(transport_error(&error)),
        };
        match response.status().as_u16() {
            200 => {
                let etag = response
                    .headers()
                    .get("ETag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                match response.bytes().await {
                    Ok(body) => Response::Ok {
                        body: body.to_vec(),
                        etag,
                    },
                    Err(error) => Response::Failed(transport_error(&error)),
                }
            }
            304 => Response::NotModified,
            status => Response::Status(status),
        }
    }
}

fn transport_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

#[async_trait]
impl Source for WorkerSource {
    async fn pointer(&self, etag: Option<&str>, announced: Option<u64>) -> Response {
        // An announced version makes the worker catch up before answering, as OFREP's
        // `flagConfigEtag` does.
        let query = announced.map_or_else(String::new, |v| format!("?flagConfigEtag=%22v{v}%22"));
        let url = format!("{}/_flags/sdk/v1/{}/pointer{query}", self.base, self.env);
        self.get(&url, etag).await
    }

    async fn blob(&self, sha256: &str) -> Response {
        let url = format!(
            "{}/_flags/sdk/v1/{}/blobs/{sha256}.json.gz",
            self.base, self.env
        );
        self.get(&url, None).await
    }

    fn events_url(&self) -> Option<String> {
        Some(format!("{}/ofrep/v1/events/{}", self.base, self.env))
    }

    fn describe(&self) -> String {
        format!("worker {} ({})", self.base, self.env)
    }
}

/// A directory in the store's layout: `<root>/<env>/current.json` and
/// `<root>/<env>/blobs/<sha256>.json.gz` (the publisher's local store, or a copy of one).
#[derive(Debug, Clone)]
pub struct DirectorySource {
    env_dir: PathBuf,
}

impl DirectorySource {
    /// The store directory `root`, environment `env`.
    pub fn new(root: impl Into<PathBuf>, env: &str) -> DirectorySource {
        DirectorySource {
            env_dir: root.into().join(env),
        }
    }

    async fn read(&self, relative: &str) -> Response {
        match tokio::fs::read(self.env_dir.join(relative)).await {
            Ok(body) => Response::Ok { body, etag: None },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Response::Status(404),
            Err(error) => Response::Failed(format!("reading {relative}: {}", error.kind())),
        }
    }
}

#[async_trait]
impl Source for DirectorySource {
    async fn pointer(&self, etag: Option<&str>, _announced: Option<u64>) -> Response {
        match self.read("current.json").await {
            Response::Ok { body, .. } => {
                // The file's hash plays the ETag, so an unchanged pointer is not parsed again.
                let tag = format!("\"{}\"", flags_sdk_core::blob::sha256_hex(&body));
                if etag == Some(tag.as_str()) {
                    Response::NotModified
                } else {
                    Response::Ok {
                        body,
                        etag: Some(tag),
                    }
                }
            }
            other => other,
        }
    }

    async fn blob(&self, sha256: &str) -> Response {
        self.read(&shared_eval::BlobRef::name_for(sha256)).await
    }

    fn describe(&self) -> String {
        format!("directory {}", self.env_dir.display())
    }
}
