//! The loader's I/O in the Workers runtime: isolate state, the colo Cache API, the origins.
//! Every decision it acts on (pointer and blob checks, the retry schedule, the cache entry's
//! canary header) is [`crate::loader`]'s, plain Rust tested natively.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{Either, select};
use shared_eval::{CanaryRef, Pointer};
use worker::{AbortController, Cache, Delay, Env, Fetch, Headers, Method, Response};

use crate::config::{Config, Origin, bindings};
use crate::loader::{
    CanarySplit, LoadError, Loaded, LoadedCanary, Schedule, Source, canary_header,
    decode_blob_with, parse_pointer,
};

/// Response headers on the colo cache entry describing the blob it holds.
const SHA_HEADER: &str = "X-Flags-Sha256";
const VERSION_HEADER: &str = "X-Flags-Version";
const CONTENT_HASH_HEADER: &str = "X-Flags-Content-Hash";
/// On the stable entry: the pointer's canary half as JSON, when a canary runs. The canary's
/// blob has its own entry, keyed by its SHA-256 (immutable, so it never needs purging).
const CANARY_HEADER: &str = "X-Flags-Canary";

/// What one isolate holds: the stable blob, the canary's, and the retry schedule.
#[derive(Default)]
struct Isolate {
    loaded: Option<Rc<Loaded>>,
    canary: Option<Rc<LoadedCanary>>,
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

/// SHA-256 by the runtime (`crypto.subtle.digest`, native code: Wasm has no SHA instructions,
/// and in Rust the hash of a blob's body is ~45% of decoding it), else in Rust.
async fn native_sha256(bytes: &[u8]) -> [u8; 32] {
    use worker::js_sys::{Function, Promise, Reflect, Uint8Array};
    use worker::wasm_bindgen::{JsCast as _, JsValue};
    let subtle = async {
        let crypto = Reflect::get(&worker::js_sys::global(), &JsValue::from_str("crypto")).ok()?;
        let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).ok()?;
        let digest: Function = Reflect::get(&subtle, &JsValue::from_str("digest"))
            .ok()?
            .dyn_into()
            .ok()?;
        let data = Uint8Array::from(bytes);
        let promise: Promise = digest
            .call2(&subtle, &JsValue::from_str("SHA-256"), &data)
            .ok()?
            .dyn_into()
            .ok()?;
        let buffer = worker::wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .ok()?;
        let digest = Uint8Array::new(&buffer);
        let mut out = [0u8; 32];
        (digest.length() == 32).then(|| digest.copy_to(&mut out))?;
        Some(out)
    };
    match subtle.await {
        Some(digest) => digest,
        None => crate::loader::sha256(bytes),
    }
}

/// Verifies an Ed25519 signature with the runtime's WebCrypto (`crypto.subtle.importKey` of
/// the raw public key, then `verify("Ed25519", ...)`): `None` when the runtime cannot.
async fn native_ed25519(
    public_key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Option<bool> {
    use worker::js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
    use worker::wasm_bindgen::{JsCast as _, JsValue};
    use worker::wasm_bindgen_futures::JsFuture;
    let crypto = Reflect::get(&worker::js_sys::global(), &JsValue::from_str("crypto")).ok()?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).ok()?;
    let method = |name: &str| -> Option<Function> {
        Reflect::get(&subtle, &JsValue::from_str(name))
            .ok()?
            .dyn_into()
            .ok()
    };
    let algorithm = Object::new();
    Reflect::set(
        &algorithm,
        &JsValue::from_str("name"),
        &JsValue::from_str("Ed25519"),
    )
    .ok()?;
    let import = Array::of5(
        &JsValue::from_str("raw"),
        &Uint8Array::from(&public_key[..]),
        &algorithm,
        &JsValue::FALSE,
        &Array::of1(&JsValue::from_str("verify")),
    );
    let promise: Promise = method("importKey")?
        .apply(&subtle, &import)
        .ok()?
        .dyn_into()
        .ok()?;
    let key = JsFuture::from(promise).await.ok()?;
    let verify = Array::of4(
        &algorithm,
        &key,
        &Uint8Array::from(&signature[..]),
        &Uint8Array::from(message),
    );
    let promise: Promise = method("verify")?
        .apply(&subtle, &verify)
        .ok()?
        .dyn_into()
        .ok()?;
    JsFuture::from(promise).await.ok()?.as_bool()
}

/// The blob served right now, if any.
pub(crate) fn current() -> Option<Rc<Loaded>> {
    ISOLATE.with(|i| i.borrow().loaded.clone())
}

/// The canary served right now beside [`current`], if any.
pub(crate) fn current_canary() -> Option<Rc<LoadedCanary>> {
    ISOLATE.with(|i| i.borrow().canary.clone())
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

/// What a revalidation found for the canary.
enum CanaryOutcome {
    /// The pointer names no canary: stop serving one.
    None,
    /// The same canary blob; its share may have changed.
    Same(CanarySplit),
    /// A new canary blob.
    New(Box<LoadedCanary>),
    /// The pointer names a canary that did not load: keep the last good one, if any.
    Failed(LoadError),
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
    let current_canary = current_canary();
    let result = revalidate(
        env,
        config,
        cache_key,
        current.as_deref(),
        current_canary.as_deref(),
    )
    .await;
    // Let go of our references first, so that `Rc::get_mut` below can update the version of a
    // blob that stayed the same (no other request holds one across an `.await`).
    drop((current, current_canary));
    let done = now_ms();
    let source = ISOLATE.with(|i| {
        let mut isolate = i.borrow_mut();
        let result = match result {
            Ok((outcome, canary)) => {
                let canary_error = match canary {
                    CanaryOutcome::None => {
                        isolate.canary = None;
                        None
                    }
                    CanaryOutcome::Same(split) => {
                        if let Some(loaded) = isolate.canary.as_mut()
                            && loaded.split != split
                        {
                            // Rebuilt rather than mutated: a request may still hold the old one.
                            *loaded = Rc::new(LoadedCanary {
                                loaded: Rc::clone(&loaded.loaded),
                                split,
                            });
                        }
                        None
                    }
                    CanaryOutcome::New(loaded) => {
                        isolate.canary = Some(Rc::from(loaded));
                        None
                    }
                    CanaryOutcome::Failed(error) => Some(error),
                };
                match canary_error {
                    Some(error) => Err((Some(outcome), error)),
                    None => Ok(outcome),
                }
            }
            Err(error) => Err((None, error)),
        };
        // A canary that failed to load still lets a new stable blob through, then backs off.
        let (result, failure) = match result {
            Ok(outcome) => (Some(outcome), None),
            Err((outcome, error)) => (outcome, Some(error)),
        };
        let source = match result {
            None => Source::Memory,
            Some(Outcome::New(loaded)) => {
                let source = loaded.source;
                isolate.loaded = Some(Rc::from(loaded));
                source
            }
            Some(Outcome::Same { version, source }) => {
                if let (Some(version), Some(loaded)) = (version, isolate.loaded.as_mut())
                    && loaded.version != version
                    && let Some(loaded) = Rc::get_mut(loaded)
                {
                    loaded.version = version;
                }
                source
            }
        };
        match failure {
            None => isolate.schedule.succeeded(done, config.revalidate_ms),
            Some(error) => {
                worker::console_warn!("flags: keeping last good blob: {error}");
                isolate.schedule.failed(&error, done, config.revalidate_ms);
            }
        }
        source
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
    current_canary: Option<&LoadedCanary>,
) -> Result<(Outcome, CanaryOutcome), LoadError> {
    let cache = Cache::default();
    if let Ok(Some(mut hit)) = cache.get(cache_key, true).await {
        let sha = hit.headers().get(SHA_HEADER).ok().flatten();
        let version = hit
            .headers()
            .get(VERSION_HEADER)
            .ok()
            .flatten()
            .and_then(|v| v.parse::<u64>().ok());
        // An entry whose canary header does not parse is treated as a bad entry.
        let canary = match hit.headers().get(CANARY_HEADER).ok().flatten() {
            None => Some(None),
            Some(json) => shared_eval::parse_json(json.as_bytes())
                .ok()
                .and_then(|json| CanaryRef::from_json(&json).ok())
                .map(Some),
        };
        // With signatures required, an entry older than what this isolate serves (another
        // isolate's late fill) is dropped like a bad one, and the origin asked.
        let older = |version: u64| {
            !config.public_keys.is_empty() && current.is_some_and(|c| version < c.version)
        };
        if let (Some(sha), Some(version), Some(canary)) = (sha, version, canary)
            && !older(version)
        {
            if current.is_some_and(|c| c.sha256 == sha) {
                let canary =
                    load_canary(env, config, cache_key, canary.as_ref(), current_canary).await;
                return Ok((
                    Outcome::Same {
                        version: Some(version),
                        source: Source::Cache,
                    },
                    canary,
                ));
            }
            if let Ok(gz) = hit.bytes().await {
                let content_hash = hit.headers().get(CONTENT_HASH_HEADER).ok().flatten();
                match decode_blob_with(
                    &gz,
                    &sha,
                    content_hash.as_deref(),
                    &config.environment,
                    native_sha256,
                )
                .await
                {
                    Ok(snapshot) => {
                        let canary =
                            load_canary(env, config, cache_key, canary.as_ref(), current_canary)
                                .await;
                        let loaded = Loaded {
                            snapshot,
                            gz,
                            sha256: sha,
                            version,
                            loaded_at_ms: now_ms(),
                            source: Source::Cache,
                        };
                        return Ok((Outcome::New(Box::new(loaded)), canary));
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
    crate::trust::check_pointer(
        &pointer,
        env_name,
        &config.public_keys,
        current.map(|c| c.version),
        native_ed25519,
    )
    .await?;
    let (outcome, gz) = match current {
        Some(c) if c.sha256 == pointer.stable.sha256 => (
            Outcome::Same {
                version: Some(pointer.version),
                source: Source::Origin,
            },
            c.gz.clone(),
        ),
        _ => {
            let stable = &pointer.stable;
            let gz =
                get_object(env, config, &format!("{env_name}/{}", stable.blob), "blob").await?;
            let snapshot = decode_blob_with(
                &gz,
                &stable.sha256,
                stable.known_content_hash(),
                env_name,
                native_sha256,
            )
            .await?;
            let loaded = Loaded {
                snapshot,
                gz: Vec::new(),
                // The version's identity, whether or not the runtime gunzipped it in transit.
                sha256: stable.sha256.clone(),
                version: pointer.version,
                loaded_at_ms: now_ms(),
                source: Source::Origin,
            };
            (Outcome::New(Box::new(loaded)), gz)
        }
    };
    let canary = load_canary(
        env,
        config,
        cache_key,
        pointer.canary.as_ref(),
        current_canary,
    )
    .await;
    // The stable entry (which names the canary) is only cached once the canary has loaded, so
    // other isolates of the colo do not take the cache's word for a canary the origin refused.
    if !matches!(canary, CanaryOutcome::Failed(_))
        && let Err(error) = fill_cache(&cache, cache_key, config, &pointer, &gz).await
    {
        worker::console_warn!("flags: cache put failed: {error}");
    }
    let outcome = match outcome {
        Outcome::New(loaded) => Outcome::New(Box::new(Loaded { gz, ..*loaded })),
        same => same,
    };
    Ok((outcome, canary))
}

/// The canary named by the pointer (or the stable cache entry): the one in memory if it is the
/// same blob, else from its own colo cache entry (keyed by SHA-256), else from the origin.
async fn load_canary(
    env: &Env,
    config: &Config,
    cache_key: &str,
    wanted: Option<&CanaryRef>,
    current: Option<&LoadedCanary>,
) -> CanaryOutcome {
    let Some(wanted) = wanted else {
        return CanaryOutcome::None;
    };
    let split = CanarySplit::of(wanted);
    let wanted_blob = &wanted.blob_ref;
    if current.is_some_and(|c| c.loaded.sha256 == wanted_blob.sha256) {
        return CanaryOutcome::Same(split);
    }
    let cache = Cache::default();
    let blob_key = format!("{cache_key}/blob/{}", wanted_blob.sha256);
    if let Ok(Some(mut hit)) = cache.get(&blob_key, true).await
        && let Ok(gz) = hit.bytes().await
    {
        match decode_blob_with(
            &gz,
            &wanted_blob.sha256,
            wanted_blob.known_content_hash(),
            &config.environment,
            native_sha256,
        )
        .await
        {
            Ok(snapshot) => return canary_loaded(snapshot, wanted, split, Source::Cache),
            Err(error) => {
                worker::console_warn!("flags: bad canary cache entry: {error}");
                let _ = cache.delete(&blob_key, true).await;
            }
        }
    }
    let key = format!("{}/{}", config.environment, wanted_blob.blob);
    let fetched = match get_object(env, config, &key, "canary blob").await {
        Ok(gz) => decode_blob_with(
            &gz,
            &wanted_blob.sha256,
            wanted_blob.known_content_hash(),
            &config.environment,
            native_sha256,
        )
        .await
        .map(|snapshot| (snapshot, gz)),
        Err(error) => Err(error),
    };
    match fetched {
        Ok((snapshot, gz)) => {
            if let Err(error) = fill_blob_cache(&cache, &blob_key, config, &gz).await {
                worker::console_warn!("flags: canary cache put failed: {error}");
            }
            canary_loaded(snapshot, wanted, split, Source::Origin)
        }
        Err(error) => CanaryOutcome::Failed(LoadError::Canary(Box::new(error))),
    }
}

fn canary_loaded(
    snapshot: shared_eval::Snapshot,
    wanted: &CanaryRef,
    split: CanarySplit,
    source: Source,
) -> CanaryOutcome {
    let loaded = Loaded {
        snapshot,
        gz: Vec::new(),
        sha256: wanted.blob_ref.sha256.clone(),
        version: wanted.since,
        loaded_at_ms: now_ms(),
        source,
    };
    CanaryOutcome::New(Box::new(LoadedCanary {
        loaded: Rc::new(loaded),
        split,
    }))
}

async fn fill_cache(
    cache: &Cache,
    key: &str,
    config: &Config,
    pointer: &Pointer,
    gz: &[u8],
) -> worker::Result<()> {
    let headers = blob_entry_headers(config)?;
    headers.set(SHA_HEADER, &pointer.stable.sha256)?;
    headers.set(VERSION_HEADER, &pointer.version.to_string())?;
    if let Some(content_hash) = pointer.stable.known_content_hash() {
        headers.set(CONTENT_HASH_HEADER, content_hash)?;
    }
    if let Some(canary) = &pointer.canary {
        headers.set(CANARY_HEADER, &canary_header(canary))?;
    }
    let response = Response::from_bytes(gz.to_vec())?.with_headers(headers);
    cache.put(key, response).await
}

/// What every colo cache entry of a blob carries: its lifetime and the environment's purge tag.
fn blob_entry_headers(config: &Config) -> worker::Result<Headers> {
    let headers = Headers::new();
    headers.set("Content-Type", "application/octet-stream")?;
    headers.set(
        "Cache-Control",
        &format!("public, max-age={}", config.cache_ttl_s),
    )?;
    headers.set("Cache-Tag", &format!("flags-{}", config.environment))?;
    Ok(headers)
}

/// Caches a canary blob under its content address: immutable, so it never needs purging (a
/// purge by tag drops it too, harmlessly).
async fn fill_blob_cache(
    cache: &Cache,
    key: &str,
    config: &Config,
    gz: &[u8],
) -> worker::Result<()> {
    let response = Response::from_bytes(gz.to_vec())?.with_headers(blob_entry_headers(config)?);
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
    let request = super::glue::outbound_request(url, Method::Get, &request_headers, None)
        .ok_or_else(|| LoadError::Config("origin URL is invalid".into()))?;
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
