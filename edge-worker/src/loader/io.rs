//! The loader's I/O in the Workers runtime: isolate state, the colo Cache API, the origins.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{Either, select};
use worker::{
    AbortController, Cache, Delay, Env, Fetch, Headers, Method, Request, RequestInit, Response,
};

use super::{LoadError, Loaded, Schedule, Source, decode_blob, parse_pointer};
use crate::config::{Config, Origin, bindings};

/// Response headers on the colo cache entry describing the blob it holds.
const SHA_HEADER: &str = "X-Flags-Sha256";
const VERSION_HEADER: &str = "X-Flags-Version";
const CONTENT_HASH_HEADER: &str = "X-Flags-Content-Hash";

/// What one isolate holds: the blob and the retry schedule.
#[derive(Default)]
struct Isolate {
    loaded: Option<Rc<Loaded>>,
    schedule: Schedule,
}

thread_local! {
    // Workers isolates are single-threaded; a borrow is never held across an `.await`.
    static ISOLATE: RefCell<Isolate> = RefCell::new(Isolate::default());
}

/// Epoch milliseconds from the runtime's clock.
pub(crate) fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// The blob served right now, if any.
pub(crate) fn current() -> Option<Rc<Loaded>> {
    ISOLATE.with(|i| i.borrow().loaded.clone())
}

/// Runs `f` on the schedule (for the health endpoint and config errors).
pub(crate) fn with_schedule<T>(f: impl FnOnce(&mut Schedule) -> T) -> T {
    ISOLATE.with(|i| f(&mut i.borrow_mut().schedule))
}

/// Clears `in_flight` if a revalidation's future is dropped before it finishes (a cancelled
/// request), so the isolate never stops revalidating.
struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        ISOLATE.with(|i| {
            if let Ok(mut isolate) = i.try_borrow_mut() {
                isolate.schedule.in_flight = false;
            }
        });
    }
}

enum Outcome {
    /// Same blob; maybe a new version number (a rollback to identical content).
    Same {
        version: Option<u64>,
        source: Source,
    },
    /// A new blob.
    New(Box<Loaded>),
}

/// Revalidates if due; returns where this request's blob came from.
pub(crate) async fn ensure_fresh(env: &Env, config: &Config, cache_key: &str) -> Source {
    let start = now_ms();
    let (due, current) = ISOLATE.with(|i| {
        let mut isolate = i.borrow_mut();
        let due = isolate.schedule.due(start);
        if due {
            isolate.schedule.in_flight = true;
        }
        (due, isolate.loaded.clone())
    });
    if !due {
        // A cold isolate's other requests wait for the load already in flight rather than
        // answer ERROR while it lands (bounded by the origin timeout).
        let deadline = start.saturating_add(config.origin_timeout_ms.saturating_mul(2));
        while current.is_none()
            && ISOLATE.with(|i| i.borrow().schedule.in_flight)
            && ISOLATE.with(|i| i.borrow().loaded.is_none())
            && now_ms() < deadline
        {
            Delay::from(Duration::from_millis(5)).await;
        }
        return Source::Memory;
    }
    let guard = InFlight;
    let result = revalidate(env, config, cache_key, current.as_deref()).await;
    let done = now_ms();
    let source = ISOLATE.with(|i| {
        let mut isolate = i.borrow_mut();
        match result {
            Ok(Outcome::New(loaded)) => {
                let source = loaded.source;
                isolate.loaded = Some(Rc::from(loaded));
                isolate.schedule.succeeded(done, config.revalidate_ms);
                source
            }
            Ok(Outcome::Same { version, source }) => {
                if let (Some(version), Some(loaded)) = (version, isolate.loaded.as_mut())
                    && loaded.version != version
                    && let Some(loaded) = Rc::get_mut(loaded)
                {
                    loaded.version = version;
                }
                isolate.schedule.succeeded(done, config.revalidate_ms);
                source
            }
            Err(error) => {
                worker::console_warn!("flags: keeping last good blob: {error}");
                isolate.schedule.failed(&error, done, config.revalidate_ms);
                Source::Memory
            }
        }
    });
    drop(guard);
    source
}

/// Deletes the colo cache entry and makes the next request revalidate.
pub(crate) async fn purge(cache_key: &str) {
    if let Err(error) = Cache::default().delete(cache_key, true).await {
        worker::console_warn!("flags: cache delete failed: {error}");
    }
    with_schedule(Schedule::force);
}

async fn revalidate(
    env: &Env,
    config: &Config,
    cache_key: &str,
    current: Option<&Loaded>,
) -> Result<Outcome, LoadError> {
    let cache = Cache::default();
    if let Ok(Some(mut hit)) = cache.get(cache_key, true).await {
        let sha = hit.headers().get(SHA_HEADER).ok().flatten();
        let version = hit
            .headers()
            .get(VERSION_HEADER)
            .ok()
            .flatten()
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(sha), Some(version)) = (sha, version) {
            if current.is_some_and(|c| c.sha256 == sha) {
                return Ok(Outcome::Same {
                    version: Some(version),
                    source: Source::Cache,
                });
            }
            if let Ok(gz) = hit.bytes().await {
                let content_hash = hit.headers().get(CONTENT_HASH_HEADER).ok().flatten();
                match decode_blob(&gz, &sha, content_hash.as_deref(), &config.environment) {
                    Ok(snapshot) => {
                        return Ok(Outcome::New(Box::new(Loaded {
                            snapshot,
                            gz,
                            sha256: sha,
                            version,
                            loaded_at_ms: now_ms(),
                            source: Source::Cache,
                        })));
                    }
                    // A bad cache entry is dropped and the origin asked instead.
                    Err(error) => worker::console_warn!("flags: bad cache entry: {error}"),
                }
            }
        }
        let _ = cache.delete(cache_key, true).await;
    }

    let env_name = &config.environment;
    let pointer = parse_pointer(
        &get_object(env, config, &format!("{env_name}/current.json"), "pointer").await?,
    )?;
    let (outcome, gz) = match current {
        Some(c) if c.sha256 == pointer.sha256 => (
            Outcome::Same {
                version: Some(pointer.version),
                source: Source::Origin,
            },
            c.gz.clone(),
        ),
        _ => {
            let gz =
                get_object(env, config, &format!("{env_name}/{}", pointer.blob), "blob").await?;
            let snapshot = decode_blob(
                &gz,
                &pointer.sha256,
                pointer.content_hash.as_deref(),
                env_name,
            )?;
            let loaded = Loaded {
                snapshot,
                gz: Vec::new(),
                // The version's identity, whether or not the runtime gunzipped it in transit.
                sha256: pointer.sha256.clone(),
                version: pointer.version,
                loaded_at_ms: now_ms(),
                source: Source::Origin,
            };
            (Outcome::New(Box::new(loaded)), gz)
        }
    };
    if let Err(error) = fill_cache(&cache, cache_key, config, &pointer, &gz).await {
        worker::console_warn!("flags: cache put failed: {error}");
    }
    Ok(match outcome {
        Outcome::New(loaded) => Outcome::New(Box::new(Loaded { gz, ..*loaded })),
        same => same,
    })
}

async fn fill_cache(
    cache: &Cache,
    key: &str,
    config: &Config,
    pointer: &super::Pointer,
    gz: &[u8],
) -> worker::Result<()> {
    let headers = Headers::new();
    headers.set("Content-Type", "application/octet-stream")?;
    headers.set(
        "Cache-Control",
        &format!("public, max-age={}", config.cache_ttl_s),
    )?;
    headers.set("Cache-Tag", &format!("flags-{}", config.environment))?;
    headers.set(SHA_HEADER, &pointer.sha256)?;
    headers.set(VERSION_HEADER, &pointer.version.to_string())?;
    if let Some(content_hash) = &pointer.content_hash {
        headers.set(CONTENT_HASH_HEADER, content_hash)?;
    }
    let response = Response::from_bytes(gz.to_vec())?.with_headers(headers);
    cache.put(key, response).await
}

/// Reads one object from the configured origin, within `ORIGIN_TIMEOUT_MS`.
async fn get_object(
    env: &Env,
    config: &Config,
    key: &str,
    what: &'static str,
) -> Result<Vec<u8>, LoadError> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = async {
        match &config.origin {
            Origin::Http { base } => http_get(&format!("{base}/{key}"), &[], &signal, what).await,
            Origin::S3 {
                endpoint,
                bucket,
                prefix,
                region,
                access_key_id,
                secret_access_key,
            } => {
                let (url, headers) = crate::sigv4::s3_get(
                    endpoint,
                    bucket,
                    &format!("{prefix}{key}"),
                    region,
                    access_key_id,
                    secret_access_key,
                    now_ms(),
                );
                http_get(&url, &headers, &signal, what).await
            }
            Origin::R2 { prefix } => r2_get(env, &format!("{prefix}{key}"), what).await,
        }
    };
    let timeout = Delay::from(Duration::from_millis(config.origin_timeout_ms));
    let fetch = std::pin::pin!(fetch);
    match select(fetch, timeout).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => {
            controller.abort();
            Err(LoadError::Timeout(what))
        }
    }
}

async fn http_get(
    url: &str,
    headers: &[(&'static str, String)],
    signal: &worker::AbortSignal,
    what: &'static str,
) -> Result<Vec<u8>, LoadError> {
    let request_headers = Headers::new();
    for (name, value) in headers {
        request_headers
            .set(name, value)
            .map_err(|_| LoadError::Config("origin header".into()))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(request_headers);
    let request = Request::new_with_init(url, &init)
        .map_err(|_| LoadError::Config("origin URL is invalid".into()))?;
    let mut response = Fetch::Request(request)
        .send_with_signal(signal)
        .await
        .map_err(|_| LoadError::Unreachable(what))?;
    match response.status_code() {
        200 => {}
        404 => return Err(LoadError::NotFound(what)),
        status => return Err(LoadError::Status(what, status)),
    }
    let too_large = response
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len > shared_eval::MAX_BLOB_BYTES);
    if too_large {
        return Err(LoadError::TooLarge(what));
    }
    response
        .bytes()
        .await
        .map_err(|_| LoadError::Unreachable(what))
}

async fn r2_get(env: &Env, key: &str, what: &'static str) -> Result<Vec<u8>, LoadError> {
    let bucket = env.bucket(bindings::FLAGS_BUCKET).map_err(|_| {
        LoadError::Config(format!("{} R2 binding is missing", bindings::FLAGS_BUCKET))
    })?;
    let object = bucket
        .get(key)
        .execute()
        .await
        .map_err(|_| LoadError::Unreachable(what))?;
    let object = object.ok_or(LoadError::NotFound(what))?;
    if object.size() > shared_eval::MAX_BLOB_BYTES as u64 {
        return Err(LoadError::TooLarge(what));
    }
    let body = object.body().ok_or(LoadError::NotFound(what))?;
    body.bytes().await.map_err(|_| LoadError::Unreachable(what))
}
