//! S3-compatible storage (AWS S3, Cloudflare R2, SeaweedFS, MinIO-likes) through `aws-sdk-s3`.
//!
//! Credentials and region come from the standard AWS chain (`AWS_ACCESS_KEY_ID`/`..._SECRET_...`,
//! `AWS_PROFILE` and the shared config files, web identity, ECS/EC2 metadata); the region
//! defaults to `us-east-1` when the chain has none (R2 and most self-hosted stores ignore it).
//! The endpoint is AWS's unless `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) names another.
//! Path-style addressing (`http://host/bucket/key`) is on by default for a custom endpoint,
//! since self-hosted stores rarely have per-bucket DNS names; `FLAGS_S3_PATH_STYLE=true|false`
//! overrides that.
//!
//! Conditional writes map to `If-None-Match: *` and `If-Match: <etag>`. A 412 (and AWS's 409
//! `ConditionalRequestConflict`, sent when two conditional writes overlap) becomes
//! [`StoreError::PreconditionFailed`].

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use super::{Object, ObjectMeta, ObjectStore, PutOptions, StoreError, check_key};

/// The environment variable that forces path-style addressing on (`true`) or off (`false`).
pub const PATH_STYLE_ENV_VAR: &str = "FLAGS_S3_PATH_STYLE";

/// Connection settings beyond what the AWS chain provides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Endpoint override; `None` lets the AWS chain decide (`AWS_ENDPOINT_URL`, else AWS).
    pub endpoint_url: Option<String>,
    /// Path-style addressing; `None`: on exactly when an endpoint override is in effect.
    pub path_style: Option<bool>,
    /// Static credentials `(access key, secret key)`; `None` uses the AWS chain.
    pub credentials: Option<(String, String)>,
    /// Region override; `None`: the AWS chain, else `us-east-1`.
    pub region: Option<String>,
}

impl S3Options {
    /// Reads [`PATH_STYLE_ENV_VAR`], and notes whether `AWS_ENDPOINT_URL(_S3)` is set so that
    /// path-style can default on for it. Everything else is left to the AWS chain.
    pub fn from_env() -> Result<S3Options, String> {
        let path_style = match std::env::var(PATH_STYLE_ENV_VAR) {
            Ok(value) => match value.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => {
                    return Err(format!(
                        "{PATH_STYLE_ENV_VAR}={value:?}: expected true or false"
                    ));
                }
            },
            Err(_) => None,
        };
        let endpoint_set = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|name| std::env::var(name).is_ok_and(|v| !v.is_empty()));
        Ok(S3Options {
            path_style: path_style.or(endpoint_set.then_some(true)),
            ..S3Options::default()
        })
    }
}

/// A bucket, or a prefix inside one.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Empty, or ends with `/`.
    prefix: String,
}

impl S3Store {
    /// Builds the client. Nothing is sent until the first operation, so a wrong endpoint or
    /// credentials show up as the first operation's error.
    pub async fn connect(bucket: String, prefix: String, options: S3Options) -> S3Store {
        // rustls with ring: the SDK's default TLS stack (aws-lc) is a long C build.
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(30))
            .operation_timeout(Duration::from_secs(90))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .timeout_config(timeouts);
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &options.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some((access_key, secret_key)) = &options.credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                access_key,
                secret_key,
                None,
                None,
                "flags-static",
            ));
        }
        let sdk_config = loader.load().await;
        let path_style = options.path_style.unwrap_or(options.endpoint_url.is_some());
        let mut config =
            aws_sdk_s3::config::Builder::from(&sdk_config).force_path_style(path_style);
        if sdk_config.region().is_none() {
            // R2 and most self-hosted stores ignore the region, but signing needs one.
            config = config.region(Region::new("us-east-1"));
        }
        let config = config.build();
        let prefix = prefix.trim_matches('/');
        S3Store {
            client: Client::from_conf(config),
            bucket,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    /// The underlying client (tests use it to create buckets and inspect object versions).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The full object key of a store key.
    pub fn object_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Maps an SDK error onto the store's error kinds (see the module docs).
    fn classify<E>(
        &self,
        operation: &'static str,
        key: &str,
        error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let store = self.describe();
        if matches!(
            error,
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
        ) {
            return StoreError::Unreachable {
                store,
                detail: DisplayErrorContext(&error).to_string(),
            };
        }
        let status = error
            .raw_response()
            .map(|response| response.status().as_u16());
        let code = error.code().unwrap_or_default().to_owned();
        let message = error.message().unwrap_or_default().to_owned();
        match (status, code.as_str()) {
            (Some(412), _) | (Some(409), "ConditionalRequestConflict") => {
                StoreError::PreconditionFailed {
                    store,
                    key: key.to_owned(),
                }
            }
            (Some(401 | 403), _)
            | (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied") => {
                let detail = match (code.is_empty(), message.is_empty()) {
                    (false, false) => format!("{code}: {message}"),
                    (false, true) => code,
                    _ => format!("HTTP {}", status.unwrap_or(403)),
                };
                StoreError::Denied { store, detail }
            }
            (_, "NoSuchBucket") => StoreError::Missing {
                store,
                detail: format!("bucket {:?} does not exist", self.bucket),
            },
            _ => StoreError::Other {
                store,
                operation,
                key: key.to_owned(),
                detail: DisplayErrorContext(&error).to_string(),
            },
        }
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        options: PutOptions,
        condition: Condition<'_>,
    ) -> Result<(), StoreError> {
        check_key(self, key)?;
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .content_type(options.content_type)
            .cache_control(options.cache_control)
            .body(ByteStream::from(bytes));
        if let Some(encoding) = options.content_encoding {
            request = request.content_encoding(encoding);
        }
        request = match condition {
            Condition::Absent => request.if_none_match("*"),
            Condition::Match(etag) => request.if_match(etag),
        };
        request
            .send()
            .await
            .map(drop)
            .map_err(|e| self.classify("put", key, e))
    }
}

enum Condition<'a> {
    Absent,
    Match(&'a str),
}

fn is_not_found(status: Option<u16>, code: Option<&str>) -> bool {
    status == Some(404) && !matches!(code, Some("NoSuchBucket"))
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix.trim_end_matches('/'))
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        check_key(self, key)?;
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await;
        let output = match response {
            Ok(output) => output,
            Err(e) if is_not_found(e.raw_response().map(|r| r.status().as_u16()), e.code()) => {
                return Ok(None);
            }
            Err(e) => return Err(self.classify("get", key, e)),
        };
        let etag = output.e_tag().unwrap_or_default().to_owned();
        let bytes = output.body.collect().await.map_err(|e| StoreError::Other {
            store: self.describe(),
            operation: "get",
            key: key.to_owned(),
            detail: DisplayErrorContext(&e).to_string(),
        })?;
        Ok(Some(Object {
            bytes: bytes.into_bytes().to_vec(),
            etag,
        }))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        check_key(self, key)?;
        let response = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await;
        match response {
            Ok(output) => Ok(Some(ObjectMeta {
                etag: output.e_tag().unwrap_or_default().to_owned(),
                size: output.content_length().unwrap_or_default().max(0) as u64,
            })),
            Err(e) if is_not_found(e.raw_response().map(|r| r.status().as_u16()), e.code()) => {
                Ok(None)
            }
            Err(e) => Err(self.classify("head", key, e)),
        }
    }

    async fn put_if_absent(
        &self,
        key: &str,
        bytes: Vec<u8>,
        options: PutOptions,
    ) -> Result<(), StoreError> {
        self.put(key, bytes, options, Condition::Absent).await
    }

    async fn put_if_match(
        &self,
        key: &str,
        bytes: Vec<u8>,
        etag: &str,
        options: PutOptions,
    ) -> Result<(), StoreError> {
        self.put(key, bytes, options, Condition::Match(etag)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.object_key(prefix))
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.classify("list", prefix, e))?;
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push(key.to_owned());
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}
