//! Binding names (they must match the root `wrangler.toml`) and the configuration read from them.
//!
//! Parsing takes a lookup function rather than the Workers `Env`, so it is tested natively.

/// Binding names, as declared in `wrangler.toml`.
pub mod bindings {
    /// `[vars]`: the environment whose blob this worker serves, e.g. `prod`.
    pub const FLAGS_ENV: &str = "FLAGS_ENV";
    /// `[vars]`: `http`, `s3` or `r2`; which origin holds the store.
    pub const ORIGIN_KIND: &str = "ORIGIN_KIND";
    /// `[vars]`: base URL of an HTTP origin serving the store layout (`<url>/<env>/current.json`).
    pub const ORIGIN_URL: &str = "ORIGIN_URL";
    /// `[vars]`: key prefix inside the bucket for the `s3` and `r2` origins (may be empty).
    pub const ORIGIN_PREFIX: &str = "ORIGIN_PREFIX";
    /// `[vars]`: S3-compatible endpoint, e.g. `https://<account>.r2.cloudflarestorage.com`.
    pub const S3_ENDPOINT: &str = "S3_ENDPOINT";
    /// `[vars]`: bucket name (path-style addressing).
    pub const S3_BUCKET: &str = "S3_BUCKET";
    /// `[vars]`: SigV4 region (`auto` for R2, `us-east-1` for most self-hosted stores).
    pub const S3_REGION: &str = "S3_REGION";
    /// Secret: S3 access key id.
    pub const S3_ACCESS_KEY_ID: &str = "S3_ACCESS_KEY_ID";
    /// Secret: S3 secret access key.
    pub const S3_SECRET_ACCESS_KEY: &str = "S3_SECRET_ACCESS_KEY";
    /// `[[r2_buckets]]` binding for the `r2` origin.
    pub const FLAGS_BUCKET: &str = "FLAGS_BUCKET";
    /// `[vars]`: milliseconds between revalidations against the colo cache.
    pub const REVALIDATE_MS: &str = "REVALIDATE_MS";
    /// `[vars]`: seconds a blob stays in the colo cache before the origin is asked again
    /// (a publish purges it sooner).
    pub const CACHE_TTL_S: &str = "CACHE_TTL_S";
    /// `[vars]`: milliseconds before an origin request counts as failed.
    pub const ORIGIN_TIMEOUT_MS: &str = "ORIGIN_TIMEOUT_MS";
    /// `[vars]`: comma-separated dashboard origins allowed to call OFREP cross-origin.
    pub const CORS_ORIGINS: &str = "CORS_ORIGINS";
    /// Secret: HMAC key for identity tokens.
    pub const IDENTITY_SECRET: &str = "IDENTITY_SECRET";
    /// Secret: bearer token for `POST /_flags/purge`.
    pub const PURGE_TOKEN: &str = "PURGE_TOKEN";
    /// `[vars]`: where evaluation counts go: `publisher serve`'s `.../api/v1/telemetry` URL.
    /// Unset: none are sent.
    pub const TELEMETRY_URL: &str = "TELEMETRY_URL";
    /// Secret: the bearer token (role `telemetry`) for `TELEMETRY_URL`.
    pub const TELEMETRY_TOKEN: &str = "TELEMETRY_TOKEN";
    /// `[vars]`: milliseconds between two batches of counts from one isolate.
    pub const TELEMETRY_FLUSH_MS: &str = "TELEMETRY_FLUSH_MS";
    /// `[vars]`: the public keys pointers must be signed with, `<key id>:<base64>` entries
    /// separated by commas or whitespace (`trust.rs`). Unset: pointers are not checked.
    pub const FLAGS_PUBLIC_KEYS: &str = "FLAGS_PUBLIC_KEYS";
    /// Secret: SDK keys for the server-only SDK routes, `env:key` entries, comma-separated
    /// (`crate::sdk`). Unset: the routes are off.
    pub const SDK_KEYS: &str = "SDK_KEYS";
    /// `[assets] binding`: the dashboard's static files.
    pub const ASSETS: &str = "ASSETS";
}

/// Default for `REVALIDATE_MS`: how stale an isolate may be after the colo cache changed.
pub const DEFAULT_REVALIDATE_MS: u64 = 250;
/// Default for `CACHE_TTL_S`.
pub const DEFAULT_CACHE_TTL_S: u64 = 60;
/// Default for `ORIGIN_TIMEOUT_MS`.
pub const DEFAULT_ORIGIN_TIMEOUT_MS: u64 = 2_000;

/// Default for `TELEMETRY_FLUSH_MS`.
pub const DEFAULT_TELEMETRY_FLUSH_MS: u64 = 60_000;

/// Where evaluation counts are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telemetry {
    /// The endpoint.
    pub url: String,
    /// Its bearer token.
    pub token: String,
    /// Least time between two batches.
    pub flush_ms: u64,
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Plain HTTP(S) GETs of `<base>/<key>`.
    Http {
        /// Base URL without trailing slash.
        base: String,
    },
    /// SigV4-signed GETs against an S3-compatible endpoint, path-style.
    S3 {
        /// Endpoint URL without trailing slash.
        endpoint: String,
        /// Bucket.
        bucket: String,
        /// Key prefix (empty or ending in `/`).
        prefix: String,
        /// SigV4 region.
        region: String,
        /// Access key id.
        access_key_id: String,
        /// Secret access key.
        secret_access_key: String,
    },
    /// The `FLAGS_BUCKET` R2 binding.
    R2 {
        /// Key prefix (empty or ending in `/`).
        prefix: String,
    },
}

/// Everything the worker reads from its bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Environment served.
    pub environment: String,
    /// The store.
    pub origin: Origin,
    /// Revalidation interval.
    pub revalidate_ms: u64,
    /// Colo cache lifetime of a blob.
    pub cache_ttl_s: u64,
    /// Origin request timeout.
    pub origin_timeout_ms: u64,
    /// Allowed cross-origin callers, exact `scheme://host[:port]` strings.
    pub cors_origins: Vec<String>,
    /// Token HMAC key, when identity tokens are accepted.
    pub identity_secret: Option<String>,
    /// Purge bearer token, when purge is enabled.
    pub purge_token: Option<String>,
    /// Evaluation telemetry, when enabled.
    pub telemetry: Option<Telemetry>,
    /// The keys a pointer must be signed with; empty: signatures are not checked.
    pub public_keys: Vec<crate::trust::PublicKey>,
    /// SDK keys, `(environment, key)`; empty when the SDK routes are off.
    pub sdk_keys: Vec<(String, String)>,
}

impl Config {
    /// Reads the configuration; `lookup` returns a var's or secret's value.
    /// The error is a fixed sentence naming the binding, for the health endpoint.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        use bindings::*;
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let environment = get(FLAGS_ENV).ok_or_else(|| format!("{FLAGS_ENV} is not set"))?;
        if !environment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!("{FLAGS_ENV} must be letters, digits, '-' or '_'"));
        }
        let number = |name: &str, default: u64| -> Result<u64, String> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("{name} is not a whole number")),
            }
        };
        let prefix = || {
            let mut p = get(ORIGIN_PREFIX).unwrap_or_default();
            let trimmed = p.trim_matches('/').to_owned();
            p = if trimmed.is_empty() {
                String::new()
            } else {
                format!("{trimmed}/")
            };
            p
        };
        let kind = get(ORIGIN_KIND).unwrap_or_else(|| "http".into());
        let origin = match kind.as_str() {
            "http" => Origin::Http {
                base: get(ORIGIN_URL)
                    .ok_or_else(|| format!("{ORIGIN_URL} is not set"))?
                    .trim_end_matches('/')
                    .to_owned(),
            },
            "s3" => Origin::S3 {
                endpoint: get(S3_ENDPOINT)
                    .ok_or_else(|| format!("{S3_ENDPOINT} is not set"))?
                    .trim_end_matches('/')
                    .to_owned(),
                bucket: get(S3_BUCKET).ok_or_else(|| format!("{S3_BUCKET} is not set"))?,
                prefix: prefix(),
                region: get(S3_REGION).unwrap_or_else(|| "us-east-1".into()),
                access_key_id: get(S3_ACCESS_KEY_ID)
                    .ok_or_else(|| format!("{S3_ACCESS_KEY_ID} is not set"))?,
                secret_access_key: get(S3_SECRET_ACCESS_KEY)
                    .ok_or_else(|| format!("{S3_SECRET_ACCESS_KEY} is not set"))?,
            },
            "r2" => Origin::R2 { prefix: prefix() },
            _ => return Err(format!("{ORIGIN_KIND} must be http, s3 or r2")),
        };
        let telemetry = match (get(TELEMETRY_URL), get(TELEMETRY_TOKEN)) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(format!(
                    "{TELEMETRY_URL} is set but {TELEMETRY_TOKEN} is not"
                ));
            }
            (Some(url), Some(token)) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(format!("{TELEMETRY_URL} must be an http(s) URL"));
                }
                Some(Telemetry {
                    url,
                    token,
                    flush_ms: number(TELEMETRY_FLUSH_MS, DEFAULT_TELEMETRY_FLUSH_MS)?.max(1),
                })
            }
        };
        Ok(Config {
            environment,
            origin,
            revalidate_ms: number(REVALIDATE_MS, DEFAULT_REVALIDATE_MS)?,
            cache_ttl_s: number(CACHE_TTL_S, DEFAULT_CACHE_TTL_S)?.max(1),
            origin_timeout_ms: number(ORIGIN_TIMEOUT_MS, DEFAULT_ORIGIN_TIMEOUT_MS)?.max(1),
            cors_origins: get(CORS_ORIGINS)
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().trim_end_matches('/').to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            identity_secret: get(IDENTITY_SECRET),
            purge_token: get(PURGE_TOKEN),
            telemetry,
            public_keys: crate::trust::parse_public_keys(
                &get(FLAGS_PUBLIC_KEYS).unwrap_or_default(),
            )?,
            sdk_keys: match get(SDK_KEYS) {
                Some(text) => crate::sdk::parse_keys(&text)?,
                None => Vec::new(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn http_origin_with_defaults() {
        let cfg = parse(&[
            ("FLAGS_ENV", "prod"),
            ("ORIGIN_URL", "http://127.0.0.1:9000/"),
        ])
        .unwrap();
        assert_eq!(
            cfg.origin,
            Origin::Http {
                base: "http://127.0.0.1:9000".into()
            }
        );
        assert_eq!(cfg.revalidate_ms, DEFAULT_REVALIDATE_MS);
        assert!(cfg.cors_origins.is_empty() && cfg.identity_secret.is_none());
    }

    #[test]
    fn telemetry_needs_its_token_and_an_http_url() {
        let base = [("FLAGS_ENV", "prod"), ("ORIGIN_URL", "http://o")];
        assert_eq!(parse(&base).unwrap().telemetry, None);
        let mut with_url = base.to_vec();
        with_url.push(("TELEMETRY_URL", "https://cp.example/api/v1/telemetry"));
        assert_eq!(
            parse(&with_url).unwrap_err(),
            "TELEMETRY_URL is set but TELEMETRY_TOKEN is not"
        );
        with_url.push(("TELEMETRY_TOKEN", "t0k"));
        let telemetry = parse(&with_url).unwrap().telemetry.unwrap();
        assert_eq!(telemetry.flush_ms, DEFAULT_TELEMETRY_FLUSH_MS);
        let mut bad = base.to_vec();
        bad.extend([("TELEMETRY_URL", "cp.example"), ("TELEMETRY_TOKEN", "t")]);
        assert_eq!(
            parse(&bad).unwrap_err(),
            "TELEMETRY_URL must be an http(s) URL"
        );
    }

    #[test]
    fn s3_origin_needs_its_credentials() {
        let base = [
            ("FLAGS_ENV", "prod"),
            ("ORIGIN_KIND", "s3"),
            ("S3_ENDPOINT", "http://s3"),
            ("S3_BUCKET", "flags"),
            ("ORIGIN_PREFIX", "/team/"),
        ];
        assert_eq!(parse(&base).unwrap_err(), "S3_ACCESS_KEY_ID is not set");
        let mut full = base.to_vec();
        full.extend([("S3_ACCESS_KEY_ID", "K"), ("S3_SECRET_ACCESS_KEY", "S")]);
        match parse(&full).unwrap().origin {
            Origin::S3 { prefix, region, .. } => {
                assert_eq!((prefix.as_str(), region.as_str()), ("team/", "us-east-1"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_values_name_the_binding() {
        assert_eq!(parse(&[]).unwrap_err(), "FLAGS_ENV is not set");
        assert!(
            parse(&[("FLAGS_ENV", "../x"), ("ORIGIN_URL", "u")])
                .unwrap_err()
                .contains("FLAGS_ENV")
        );
        assert_eq!(
            parse(&[
                ("FLAGS_ENV", "p"),
                ("ORIGIN_URL", "u"),
                ("REVALIDATE_MS", "soon")
            ])
            .unwrap_err(),
            "REVALIDATE_MS is not a whole number"
        );
        assert!(parse(&[("FLAGS_ENV", "p"), ("ORIGIN_KIND", "ftp")]).is_err());
    }

    #[test]
    fn cors_list_is_split_and_normalised() {
        let cfg = parse(&[
            ("FLAGS_ENV", "p"),
            ("ORIGIN_URL", "u"),
            ("CORS_ORIGINS", "https://a.example, https://b.example/ ,"),
        ])
        .unwrap();
        assert_eq!(cfg.cors_origins, ["https://a.example", "https://b.example"]);
    }
}
