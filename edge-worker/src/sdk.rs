//! Server-only routes for the in-process SDKs (`sdk/`): the environment's pointer and the blobs
//! it names, so a service evaluates flags itself instead of calling OFREP per check.
//!
//! - `GET /_flags/sdk/v1/{env}/pointer`: the pointer this isolate serves (the same JSON as the
//!   store's `<env>/current.json`, read back by `shared_eval::Pointer::parse`), with an `ETag`;
//!   `If-None-Match` with it answers 304.
//! - `GET /_flags/sdk/v1/{env}/blobs/{sha256}.json.gz`: the gzipped blob with that content
//!   address, if the pointer served names it (stable or canary), `ETag: "<sha256>"`, immutable.
//!
//! Both need `Authorization: Bearer <SDK key>`, one key per environment in the `SDK_KEYS`
//! secret (`env:key` entries, comma-separated), compared in constant time against every
//! configured key: no key or an unknown one is 401, a key of another environment 403. They
//! are never for browsers: no CORS headers, no preflight, and a request carrying an `Origin`
//! header is refused (403), so neither an OFREP identity token nor a page can read the blob.
//! The decisions are here, plain and tested natively; `runtime/handlers.rs` does the I/O.

use crate::error::ApiError;
use crate::http::Reply;
use crate::identity::bearer_matches;

/// Path prefix of the SDK routes.
pub const PREFIX: &str = "/_flags/sdk/v1/";

/// An SDK route, from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkPath<'a> {
    /// `{env}/pointer`.
    Pointer {
        /// The environment named.
        env: &'a str,
    },
    /// `{env}/blobs/{sha256}.json.gz`.
    Blob {
        /// The environment named.
        env: &'a str,
        /// The blob's content address (64 lowercase hex digits).
        sha256: &'a str,
    },
}

impl<'a> SdkPath<'a> {
    /// Parses a path under [`PREFIX`]; `None` for anything else.
    pub fn parse(path: &'a str) -> Option<SdkPath<'a>> {
        let rest = path.strip_prefix(PREFIX)?;
        let (env, rest) = rest.split_once('/')?;
        if env.is_empty() {
            return None;
        }
        if rest == "pointer" {
            return Some(SdkPath::Pointer { env });
        }
        let sha256 = rest.strip_prefix("blobs/")?.strip_suffix(".json.gz")?;
        let is_hex = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        is_hex.then_some(SdkPath::Blob { env, sha256 })
    }

    /// The environment the path names.
    pub fn env(&self) -> &'a str {
        match self {
            SdkPath::Pointer { env } | SdkPath::Blob { env, .. } => env,
        }
    }
}

/// Parses `SDK_KEYS`: `env:key` entries separated by commas or whitespace.
pub fn parse_keys(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.split_once(':') {
            Some((env, key)) if !env.is_empty() && key.len() >= 16 => {
                Ok((env.to_owned(), key.to_owned()))
            }
            _ => Err("SDK_KEYS entries must be env:key with keys of at least 16 characters".into()),
        })
        .collect()
}

/// Checks a request before anything is loaded: method, browser origin, key, environment.
/// `keys` are the configured `(env, key)` pairs; `served` the worker's environment.
pub fn authorize(
    method_is_get: bool,
    origin: Option<&str>,
    authorization: Option<&str>,
    path: &SdkPath<'_>,
    keys: &[(String, String)],
    served: &str,
) -> Result<(), Reply> {
    if origin.is_some() {
        return Err(Reply::error(ApiError::SdkFromBrowser, None));
    }
    if keys.is_empty() {
        return Err(Reply::error(ApiError::SdkDisabled, None));
    }
    // Every key is compared (no early exit), so the time says nothing about which matched.
    let mut matched: Option<&str> = None;
    for (env, key) in keys {
        if bearer_matches(authorization, key) && matched.is_none() {
            matched = Some(env);
        }
    }
    let Some(env) = matched else {
        return Err(
            Reply::error(ApiError::SdkUnauthorized, None).with_header("WWW-Authenticate", "Bearer")
        );
    };
    if env != path.env() {
        return Err(Reply::error(ApiError::SdkWrongEnvironment, None));
    }
    if path.env() != served {
        return Err(Reply::error(ApiError::NotFound, None));
    }
    if !method_is_get {
        return Err(Reply::error(ApiError::MethodNotAllowed, None).with_header("Allow", "GET"));
    }
    Ok(())
}

/// One blob the isolate serves, as the pointer names it.
#[derive(Debug, Clone, Copy)]
pub struct ServedBlob<'a> {
    /// Hex SHA-256 of the gzipped bytes.
    pub sha256: &'a str,
    /// The header's `sha256:<hex>` content hash.
    pub content_hash: &'a str,
    /// The gzipped bytes.
    pub gz: &'a [u8],
}

/// What the isolate serves: the pointer's version, its stable blob and the canary beside it
/// as `(blob, share in buckets, salt, since)`.
#[derive(Debug, Clone, Copy)]
pub struct ServedPointer<'a> {
    /// The pointer's version.
    pub version: u64,
    /// The stable blob.
    pub stable: ServedBlob<'a>,
    /// The canary, if one runs and has loaded.
    pub canary: Option<(ServedBlob<'a>, u32, &'a str, u64)>,
}

/// The pointer's JSON: the store's `current.json` format (`shared_eval::Pointer`), written by
/// hand (every value is a hex digest, a `sha256:` hash, a number or a salt `Pointer::parse`
/// checked, so nothing needs escaping; a `serde_json::Value` tree cost the module 1.7 KB).
pub fn pointer_json(served: &ServedPointer<'_>) -> Vec<u8> {
    use core::fmt::Write as _;
    fn side(text: &mut String, blob: &ServedBlob<'_>) {
        let _ = write!(
            text,
            "\"blob\":\"{}\",\"sha256\":\"{}\",\"content_hash\":\"{}\"",
            shared_eval::BlobRef::name_for(blob.sha256),
            blob.sha256,
            blob.content_hash
        );
    }
    let mut text = String::with_capacity(512);
    let _ = write!(text, "{{\"version\":{},", served.version);
    side(&mut text, &served.stable);
    if let Some((canary, buckets, salt, since)) = &served.canary {
        // A percentage in steps of 0.001 (`shared_eval::BUCKETS` is 100,000): `5`, `0.5`.
        let per_percent = shared_eval::BUCKETS / 100;
        let (whole, part) = (buckets / per_percent, buckets % per_percent);
        text.push_str(",\"canary\":{");
        side(&mut text, canary);
        let _ = write!(text, ",\"percent\":{whole}");
        if part != 0 {
            let digits = format!("{part:03}");
            let _ = write!(text, ".{}", digits.trim_end_matches('0'));
        }
        let _ = write!(text, ",\"salt\":\"{salt}\",\"since\":{since}}}");
    }
    text.push('}');
    text.into_bytes()
}

/// `GET .../pointer`: the pointer served (503 while nothing has loaded), 304 when unchanged.
pub fn pointer_reply(served: Option<&ServedPointer<'_>>, if_none_match: Option<&str>) -> Reply {
    let Some(served) = served else {
        return Reply::error(ApiError::NothingLoaded, None);
    };
    let body = pointer_json(served);
    let etag = format!("\"{}\"", &crate::loader::sha256_hex(&body)[..32]);
    conditional(body, etag, if_none_match, "application/json", "no-store")
}

/// `GET .../blobs/{sha256}.json.gz`: a blob the served pointer names; 404 for any other.
pub fn blob_reply(
    served: Option<&ServedPointer<'_>>,
    sha256: &str,
    if_none_match: Option<&str>,
) -> Reply {
    let named = served.and_then(|s| {
        std::iter::once(&s.stable)
            .chain(s.canary.as_ref().map(|c| &c.0))
            .find(|b| b.sha256 == sha256)
    });
    let Some(blob) = named else {
        return Reply::error(ApiError::NotFound, None);
    };
    let etag = format!("\"{sha256}\"");
    conditional(
        blob.gz.to_vec(),
        etag,
        if_none_match,
        "application/gzip",
        "private, max-age=31536000, immutable",
    )
}

fn conditional(
    body: Vec<u8>,
    etag: String,
    if_none_match: Option<&str>,
    content_type: &str,
    cache_control: &'static str,
) -> Reply {
    let unchanged = if_none_match
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let reply = if unchanged {
        Reply {
            status: 304,
            headers: Vec::new(),
            body: Vec::new(),
        }
    } else {
        Reply {
            status: 200,
            headers: vec![("Content-Type", content_type.to_owned())],
            body,
        }
    };
    reply
        .with_header("ETag", etag)
        .with_header("Cache-Control", cache_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn keys() -> Vec<(String, String)> {
        parse_keys("prod:prod-key-0123456789, dev:dev-key-0123456789abc").unwrap()
    }

    #[test]
    fn paths() {
        assert_eq!(
            SdkPath::parse("/_flags/sdk/v1/prod/pointer"),
            Some(SdkPath::Pointer { env: "prod" })
        );
        assert_eq!(
            SdkPath::parse(&format!("/_flags/sdk/v1/prod/blobs/{SHA}.json.gz")),
            Some(SdkPath::Blob {
                env: "prod",
                sha256: SHA
            })
        );
        for bad in [
            "/_flags/sdk/v1/prod",
            "/_flags/sdk/v1//pointer",
            "/_flags/sdk/v1/prod/blobs/../current.json",
            "/_flags/sdk/v1/prod/blobs/ABC.json.gz",
            "/_flags/sdk/v1/prod/pointers",
        ] {
            assert_eq!(SdkPath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_are_per_environment_and_browsers_are_refused() {
        let path = SdkPath::Pointer { env: "prod" };
        let check = |origin, auth: Option<&str>| {
            authorize(true, origin, auth, &path, &keys(), "prod").map_err(|r| r.status)
        };
        assert_eq!(check(None, Some("Bearer prod-key-0123456789")), Ok(()));
        assert_eq!(check(None, None), Err(401));
        assert_eq!(check(None, Some("Bearer prod-key-012345678")), Err(401));
        assert_eq!(check(None, Some("Bearer dev-key-0123456789abc")), Err(403));
        assert_eq!(
            check(
                Some("https://app.example"),
                Some("Bearer prod-key-0123456789")
            ),
            Err(403)
        );
        let reply = authorize(
            false,
            None,
            Some("Bearer prod-key-0123456789"),
            &path,
            &keys(),
            "prod",
        );
        assert_eq!(reply.map_err(|r| r.status), Err(405));
        // A dev key for the dev path of a prod worker: not here.
        let dev = SdkPath::Pointer { env: "dev" };
        let reply = authorize(
            true,
            None,
            Some("Bearer dev-key-0123456789abc"),
            &dev,
            &keys(),
            "prod",
        );
        assert_eq!(reply.map_err(|r| r.status), Err(404));
        // No keys configured: the routes are off.
        let reply = authorize(true, None, Some("Bearer x"), &path, &[], "prod");
        assert_eq!(reply.map_err(|r| r.status), Err(403));
        assert!(parse_keys("prod:short").is_err());
        assert!(parse_keys("nokey").is_err());
    }

    #[test]
    fn the_pointer_reads_back_as_the_stores_format_and_answers_304() {
        let stable = ServedBlob {
            sha256: SHA,
            content_hash: "sha256:aa",
            gz: b"stable",
        };
        let canary_sha = "f".repeat(64);
        let canary = ServedBlob {
            sha256: &canary_sha,
            content_hash: "sha256:bb",
            gz: b"canary",
        };
        let served = ServedPointer {
            version: 7,
            stable,
            canary: Some((canary, 5_000, "canary-prod-6", 6)),
        };
        let pointer = shared_eval::Pointer::parse(&pointer_json(&served)).unwrap();
        assert_eq!(pointer.version, 7);
        assert_eq!(pointer.stable.sha256, SHA);
        let c = pointer.canary.unwrap();
        assert_eq!(
            (c.percent.buckets(), c.salt.as_str(), c.since),
            (5_000, "canary-prod-6", 6)
        );
        // Fractional shares read back to the same buckets (1, 500, 12,345, all of them).
        for buckets in [1, 500, 12_345, 100_000] {
            let served = ServedPointer {
                canary: served
                    .canary
                    .clone()
                    .map(|(b, _, salt, since)| (b, buckets, salt, since)),
                ..served.clone()
            };
            let pointer = shared_eval::Pointer::parse(&pointer_json(&served)).unwrap();
            assert_eq!(pointer.canary.unwrap().percent.buckets(), buckets);
        }
        let reply = pointer_reply(Some(&served), None);
        assert_eq!(reply.status, 200);
        assert!(reply.header("Access-Control-Allow-Origin").is_none());
        let etag = reply.header("ETag").unwrap().to_owned();
        assert_eq!(pointer_reply(Some(&served), Some(&etag)).status, 304);
        assert_eq!(pointer_reply(None, None).status, 503);
        // Blobs: the ones named, by content address, 304 on the same tag.
        let reply = blob_reply(Some(&served), &canary_sha, None);
        assert_eq!((reply.status, reply.body.as_slice()), (200, &b"canary"[..]));
        let tag = format!("\"{canary_sha}\"");
        assert_eq!(
            blob_reply(Some(&served), &canary_sha, Some(&tag)).status,
            304
        );
        assert_eq!(blob_reply(Some(&served), &"e".repeat(64), None).status, 404);
    }
}
