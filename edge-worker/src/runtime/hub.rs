//! The event streams in the Workers runtime: the `EventHub` Durable Object (one per
//! environment, `idFromName(env)`), the worker-side routes that reach it, and the catch-up of
//! an isolate asked for a version it does not serve yet.
//!
//! Each open stream is a channel whose receiving end is the response body; the object keeps
//! the sending ends. A stream whose client went away shows as a closed channel and is dropped
//! at the next broadcast or heartbeat. The last announced version is kept in the object's
//! storage, so a restarted object tells reconnecting clients (`Last-Event-ID`) what they
//! missed; on waking it also reloads once, in case a notification was lost while it was down.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use futures_channel::mpsc::{UnboundedSender, unbounded};
use futures_util::StreamExt as _;
use worker::{Delay, Env, Headers, Method, Request, Response, State, durable_object};

use super::glue::{config, into_response, outbound_request};
use super::loader_io as io;
use crate::config::Config;
use crate::events::{
    CATCH_UP_SPACING_MS, Decision, HEARTBEAT, NOTIFY_PATH, PENDING_FOR_MS, PENDING_RETRY_MS,
    STREAM_PREFIX, Settings, bindings, decide, full_reply, jittered_retry_ms, parse_config_etag,
    parse_notify_body, refetch_event, resume_from, since_param, stream_preamble,
};
use crate::http::{Reply, origin_of};
use crate::loader::{Schedule, cache_key};

/// Largest integer a JS number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
/// Storage keys of the object.
const ANNOUNCED_KEY: &str = "announced";
const ORIGIN_KEY: &str = "origin";

fn settings(env: &Env) -> Settings {
    Settings::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))
}

fn loaded_version() -> Option<u64> {
    io::current().map(|l| l.version)
}

/// Waits (bounded) for a revalidation already running in this isolate, then runs one:
/// through the colo cache, or straight to the origin when `bypass_cache`.
async fn reload(env: &Env, config: &Config, cache_key: &str, bypass_cache: bool) {
    let deadline = io::now_ms().saturating_add(config.origin_timeout_ms.saturating_mul(2));
    while io::with_schedule(|s| s.in_flight) && io::now_ms() < deadline {
        Delay::from(Duration::from_millis(5)).await;
    }
    if bypass_cache {
        io::purge(cache_key).await;
    } else {
        io::with_schedule(Schedule::force);
    }
    io::ensure_fresh(env, config, cache_key).await;
}

/// Loads until the isolate serves `wanted` (or, without one, whatever the origin serves now).
/// The colo cache is tried first; the origin when the cache is behind.
async fn load_at_least(env: &Env, config: &Config, cache_key: &str, wanted: Option<u64>) {
    let reached = || matches!((loaded_version(), wanted), (Some(l), Some(w)) if l >= w);
    if reached() {
        return;
    }
    if wanted.is_some() {
        reload(env, config, cache_key, false).await;
        if reached() {
            return;
        }
    }
    reload(env, config, cache_key, true).await;
}

thread_local! {
    static LAST_CATCH_UP_MS: Cell<u64> = const { Cell::new(0) };
}

/// Before answering a refetch that names version `wanted` (`flagConfigEtag`), make this
/// isolate serve it: the object announced it only after loading it, so the cache or the origin
/// has it. Forced reloads are spaced by [`CATCH_UP_SPACING_MS`] per isolate (concurrent
/// refetches share one), so a forged tag costs the origin little; if the version cannot be had
/// the request is answered with what is loaded, under that answer's own ETag.
pub(crate) async fn catch_up(env: &Env, config: &Config, cache_key: &str, wanted: u64) {
    if loaded_version().is_some_and(|v| v >= wanted) {
        return;
    }
    let now = io::now_ms();
    let last = LAST_CATCH_UP_MS.with(Cell::get);
    if now.saturating_sub(last) < CATCH_UP_SPACING_MS {
        // Another refetch just forced a reload: wait for it instead of starting one.
        let deadline = now.saturating_add(config.origin_timeout_ms);
        while io::with_schedule(|s| s.in_flight) && io::now_ms() < deadline {
            Delay::from(Duration::from_millis(2)).await;
        }
        return;
    }
    LAST_CATCH_UP_MS.with(|c| c.set(now));
    load_at_least(env, config, cache_key, Some(wanted)).await;
}

/// The environment's object.
fn stub(env: &Env, environment: &str) -> worker::Result<worker::Stub> {
    env.durable_object(bindings::EVENTS)?
        .id_from_name(environment)?
        .get_stub()
}

/// `GET /ofrep/v1/events/{env}`: hands the request to the environment's object, which holds
/// the stream. CORS headers are the caller's (the OFREP routes' rules).
pub(crate) async fn stream(
    req: Request,
    env: &Env,
    environment: &str,
    cors_headers: &[(&'static str, String)],
) -> worker::Result<Response> {
    let mut response = stub(env, environment)?.fetch_with_request(req).await?;
    let headers = response.headers().clone();
    for (name, value) in cors_headers {
        headers.set(name, value)?;
    }
    response = response.with_headers(headers);
    Ok(response)
}

/// Tells the environment's object that `version` (or, with `None`, something) was published;
/// returns its answer, `{"announced": N, "pending": bool}`. `own_origin` names the colo cache
/// entry the object loads through.
pub(crate) async fn notify(
    env: &Env,
    environment: &str,
    own_origin: &str,
    version: Option<u64>,
) -> Result<Vec<u8>, String> {
    let body = match version {
        Some(v) => format!("{{\"version\":{v}}}"),
        None => "{}".to_owned(),
    };
    let headers = Headers::new();
    headers
        .set("Content-Type", "application/json")
        .map_err(|e| e.to_string())?;
    let url = format!("{own_origin}{NOTIFY_PATH}");
    let request = outbound_request(&url, Method::Post, &headers, Some(&body))
        .ok_or_else(|| format!("invalid notify URL {url}"))?;
    let mut response = stub(env, environment)
        .map_err(|e| e.to_string())?
        .fetch_with_request(request)
        .await
        .map_err(|e| e.to_string())?;
    if response.status_code() == 200 {
        response.bytes().await.map_err(|e| e.to_string())
    } else {
        Err(format!("event hub answered {}", response.status_code()))
    }
}

/// A notification the object could not announce yet.
#[derive(Debug, Clone, Copy)]
struct Pending {
    wanted: Option<u64>,
    until_ms: u64,
    /// Retries so far: every [`PENDING_RETRY_MS`] for the first second, then every second.
    attempts: u32,
}

impl Pending {
    fn retry_in_ms(&self) -> u64 {
        if u64::from(self.attempts) * PENDING_RETRY_MS < 1_000 {
            PENDING_RETRY_MS
        } else {
            1_000
        }
    }
}

#[derive(Default)]
struct Hub {
    streams: Vec<UnboundedSender<Vec<u8>>>,
    announced: Option<u64>,
    /// The worker's own origin (`scheme://host`), naming the colo cache entry.
    origin: Option<String>,
    restored: bool,
    pending: Option<Pending>,
    next_heartbeat_ms: u64,
}

impl Hub {
    /// Sends to every open stream, dropping those whose client has gone.
    fn broadcast(&mut self, bytes: &[u8]) {
        self.streams
            .retain(|tx| tx.unbounded_send(bytes.to_vec()).is_ok());
    }

    fn open_streams(&mut self) -> usize {
        self.streams.retain(|tx| !tx.is_closed());
        self.streams.len()
    }
}

/// One per environment: holds every open event stream of that environment.
#[durable_object]
pub struct EventHub {
    state: State,
    env: Env,
    hub: RefCell<Hub>,
}

impl worker::DurableObject for EventHub {
    fn new(state: State, env: Env) -> Self {
        EventHub {
            state,
            env,
            hub: RefCell::new(Hub::default()),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let origin = origin_of(&req.inner().url()).to_owned();
        self.restore(Some(origin)).await;
        let path = req.path();
        if path == NOTIFY_PATH && req.method() == Method::Post {
            let body = req.bytes().await.unwrap_or_default();
            let wanted = parse_notify_body(&body);
            let decision = self.settle(wanted).await;
            let announced = self.hub.borrow().announced;
            let body = serde_json::json!({
                "announced": announced,
                "pending": decision == Decision::Wait,
            });
            return into_response(Reply::json(200, body.to_string().into_bytes()));
        }
        if path.starts_with(STREAM_PREFIX) && req.method() == Method::Get {
            return self.open_stream(&req).await;
        }
        into_response(Reply::error(crate::error::ApiError::NotFound, None))
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.restore(None).await;
        let now = io::now_ms();
        let pending = {
            let mut hub = self.hub.borrow_mut();
            if now >= hub.next_heartbeat_ms {
                hub.broadcast(HEARTBEAT);
                hub.next_heartbeat_ms = now.saturating_add(settings(&self.env).heartbeat_ms);
            }
            hub.pending
        };
        if let Some(pending) = pending {
            if now >= pending.until_ms {
                worker::console_warn!(
                    "flags events: gave up waiting for version {:?} at the origin",
                    pending.wanted
                );
                self.hub.borrow_mut().pending = None;
            } else {
                self.settle(pending.wanted).await;
            }
        }
        self.schedule_alarm().await;
        Response::empty()
    }
}

impl EventHub {
    /// First event after (re)start: the last announced version from storage, then one reload
    /// in case a publish happened while the object was gone.
    async fn restore(&self, origin: Option<String>) {
        let first = {
            let mut hub = self.hub.borrow_mut();
            let first = !hub.restored;
            hub.restored = true;
            if let Some(origin) = &origin {
                hub.origin = Some(origin.clone());
            }
            first
        };
        let storage = self.state.storage();
        if !first {
            return;
        }
        // Read and written as plain JS values (`get_multiple`, `put_raw`): the typed `get`/`put`
        // go through serde-wasm-bindgen, ~1.5 KB of the gzipped module for two scalars.
        let stored = storage
            .get_multiple(vec![ANNOUNCED_KEY, ORIGIN_KEY])
            .await
            .ok();
        let stored = |key: &str| stored.as_ref().map(|map| map.get(&key.into()));
        let announced = stored(ANNOUNCED_KEY)
            .and_then(|v| v.as_f64())
            .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= MAX_SAFE_INTEGER)
            .map(|v| v as u64);
        let stored_origin = stored(ORIGIN_KEY).and_then(|v| v.as_string());
        {
            let mut hub = self.hub.borrow_mut();
            hub.announced = hub.announced.max(announced);
            if hub.origin.is_none() {
                hub.origin = stored_origin.clone();
            }
        }
        if let Some(origin) = origin.filter(|o| Some(o) != stored_origin.as_ref()) {
            let _ = storage.put_raw(ORIGIN_KEY, origin).await;
        }
        if announced.is_some() {
            // Only news is announced; no news on waking is not worth waiting for.
            if self.settle(None).await == Decision::Wait {
                self.hub.borrow_mut().pending = None;
            }
        }
    }

    /// Loads what the origin serves and announces it if it is new; otherwise leaves the
    /// notification pending, retried by the alarm.
    async fn settle(&self, wanted: Option<u64>) -> Decision {
        let origin = self.hub.borrow().origin.clone();
        let (Some(origin), Ok(config)) = (origin, config(&self.env)) else {
            return Decision::Nothing;
        };
        let cache_key = cache_key(&origin, &config.environment);
        load_at_least(&self.env, &config, &cache_key, wanted).await;
        let now = io::now_ms();
        let announced = self.hub.borrow().announced;
        let decision = decide(wanted, loaded_version(), announced);
        match decision {
            Decision::Announce(version) => {
                {
                    let mut hub = self.hub.borrow_mut();
                    hub.announced = Some(version);
                    hub.pending = None;
                    hub.broadcast(&refetch_event(version));
                }
                // A JS number, as serde-wasm-bindgen stored it before: exact up to 2^53.
                let stored = self
                    .state
                    .storage()
                    .put_raw(ANNOUNCED_KEY, version as f64)
                    .await;
                if let Err(error) = stored {
                    worker::console_warn!("flags events: cannot store announced version: {error}");
                }
            }
            Decision::Wait => {
                let mut hub = self.hub.borrow_mut();
                let wanted = wanted.max(hub.pending.and_then(|p| p.wanted));
                let (until_ms, attempts) = hub
                    .pending
                    .map_or((now.saturating_add(PENDING_FOR_MS), 0), |p| {
                        (p.until_ms, p.attempts.saturating_add(1))
                    });
                hub.pending = Some(Pending {
                    wanted,
                    until_ms,
                    attempts,
                });
            }
            Decision::Nothing => self.hub.borrow_mut().pending = None,
        }
        self.schedule_alarm().await;
        decision
    }

    async fn open_stream(&self, req: &Request) -> worker::Result<Response> {
        let settings = settings(&self.env);
        let heard = req
            .headers()
            .get("Last-Event-ID")
            .ok()
            .flatten()
            .and_then(|id| parse_config_etag(&id))
            .max(since_param(&req.inner().url()));
        let (tx, rx) = unbounded::<Vec<u8>>();
        {
            let mut hub = self.hub.borrow_mut();
            if hub.open_streams() >= settings.max_connections {
                return into_response(full_reply());
            }
            let retry = jittered_retry_ms(settings.retry_ms, worker::js_sys::Math::random());
            let _ = tx.unbounded_send(stream_preamble(retry));
            if let Some(version) = resume_from(hub.announced, heard) {
                let _ = tx.unbounded_send(refetch_event(version));
            }
            hub.streams.push(tx);
            if hub.next_heartbeat_ms == 0 {
                hub.next_heartbeat_ms = io::now_ms().saturating_add(settings.heartbeat_ms);
            }
        }
        self.schedule_alarm().await;
        let headers = Headers::new();
        headers.set("Content-Type", "text/event-stream")?;
        headers.set("Cache-Control", "no-store")?;
        // Keeps nginx-style proxies in front of a self-hosted origin from buffering events.
        headers.set("X-Accel-Buffering", "no")?;
        Ok(Response::from_stream(rx.map(Ok::<Vec<u8>, worker::Error>))?.with_headers(headers))
    }

    /// The next alarm: the earlier of the next heartbeat (while streams are open) and the next
    /// retry of a pending notification.
    async fn schedule_alarm(&self) {
        let now = io::now_ms();
        let at = {
            let mut hub = self.hub.borrow_mut();
            let heartbeat = (hub.open_streams() > 0).then_some(hub.next_heartbeat_ms);
            let retry = hub.pending.map(|p| now.saturating_add(p.retry_in_ms()));
            match (heartbeat, retry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        let Some(at) = at else {
            return;
        };
        let storage = self.state.storage();
        let current = storage.get_alarm().await.ok().flatten();
        if current.is_some_and(|c| c >= 0 && (c as u64) <= at) {
            return;
        }
        let offset = at.saturating_sub(now).max(1) as i64;
        if let Err(error) = storage.set_alarm(offset).await {
            worker::console_warn!("flags events: cannot set alarm: {error}");
        }
    }
}
