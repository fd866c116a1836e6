//! The edge worker: serves OFREP flag evaluations from the compiled blob, beside the
//! dashboard's static assets, in the Cloudflare Workers runtime.
//!
//! Routes (everything else falls through to the `ASSETS` binding):
//! - `POST /ofrep/v1/evaluate/flags/{key}`, `POST /ofrep/v1/evaluate/flags` ([`ofrep`]),
//!   with CORS preflight (`OPTIONS`) for the configured dashboard origins ([`http`]);
//! - `GET /_flags/health` ([`health`]): what this isolate serves and its last load error;
//! - `POST /_flags/purge` (bearer `PURGE_TOKEN`): drop the colo cache entry and revalidate now,
//!   the local stand-in for a CDN purge;
//! - `GET /_flags/ping`: a trivial route, the baseline for latency measurements;
//! - `GET /ofrep/v1/events/{env}` and `POST /_flags/notify` ([`events`]): OFREP event streams,
//!   held by the `EventHub` Durable Object; a purge notifies it too.
//!
//! Modules other than the Workers glue at the bottom of this file are plain Rust and unit-test
//! natively: [`loader`] (cache/origin/last-known-good), [`identity`] (signed tokens),
//! [`limits`], [`error`] (fixed OFREP error bodies), [`sigv4`] (the S3 origin's signing).
//! Nothing here panics on request data: a panic would abort the isolate, so errors are values.

pub mod answer_cache;
pub mod clock;
pub mod config;
pub mod error;
pub mod events;
pub mod gunzip;
pub mod health;
pub mod http;
pub mod identity;
pub mod isolate;
pub mod limits;
pub mod loader;
pub mod ofrep;
pub mod served;
pub mod sigv4;
pub mod telemetry;

/// Path of the purge endpoint.
pub const PURGE_PATH: &str = "/_flags/purge";
/// Path of the trivial route.
pub const PING_PATH: &str = "/_flags/ping";
/// Path prefix of the colo cache entries (never routed to a browser: the worker 404s it).
pub const CACHE_KEY_PREFIX: &str = "/_flags/cache/";

/// The colo cache key of an environment's blob, under the worker's own origin.
pub fn cache_key(own_origin: &str, environment: &str) -> String {
    format!("{own_origin}{CACHE_KEY_PREFIX}{environment}")
}

/// Whether a presented bearer token equals the configured one, compared in constant time.
pub fn bearer_matches(authorization: Option<&str>, expected: &str) -> bool {
    use hmac::Mac;
    let Some(token) = identity::token_from_headers(authorization, None) else {
        return false;
    };
    // Comparing HMACs of both sides keeps the comparison constant-time whatever the lengths.
    let mac = |bytes: &[u8]| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"purge-token-compare").ok()?;
        mac.update(bytes);
        Some(mac)
    };
    match (mac(token.as_bytes()), mac(expected.as_bytes())) {
        (Some(presented), Some(expected)) => {
            presented.verify(&expected.finalize().into_bytes()).is_ok()
        }
        _ => false,
    }
}

#[cfg(target_arch = "wasm32")]
mod glue {
    //! The Workers runtime glue: turns a `Request` into the plain handlers' inputs and a
    //! [`Reply`] back into a `Response`.

    use std::cell::RefCell;
    use std::rc::Rc;

    use worker::{Context, Env, Headers, Method, Request, Response, event};

    use crate::config::{Config, bindings};
    use crate::error::ApiError;
    use crate::health;
    use crate::http::{CorsDecision, Reply, cors_decision, preflight, with_cors};
    use crate::limits::{BodyReader, MAX_BODY_BYTES, MAX_DRAIN_BYTES};
    use crate::loader::{LoadError, Source, io};
    use crate::ofrep::{self, BULK_PATH, EvalRequest, Served};

    thread_local! {
        // Bindings do not change during an isolate's life: read them once.
        // Shared, not cloned: every request reads it (route, telemetry flush).
        static CONFIG: RefCell<Option<Result<Rc<Config>, String>>> = const { RefCell::new(None) };
    }

    pub(crate) fn config(env: &Env) -> Result<Rc<Config>, String> {
        CONFIG.with(|c| {
            c.borrow_mut()
                .get_or_insert_with(|| {
                    Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))
                        .map(Rc::new)
                })
                .clone()
        })
    }

    #[event(fetch)]
    async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
        crate::isolate::count_request(io::now_ms());
        if req.path().starts_with(crate::events::STREAM_PREFIX) {
            return event_stream(req, &env).await;
        }
        let reply = route(req, &env).await;
        flush_telemetry(&env, &ctx);
        into_response(reply)
    }

    /// Sends the isolate's evaluation counts when a batch is due, after the answer (the
    /// runtime keeps the isolate alive for it), within the origin timeout.
    fn flush_telemetry(env: &Env, ctx: &Context) {
        let Ok(cfg) = config(env) else { return };
        let Some(telemetry) = cfg.telemetry.as_ref() else {
            return;
        };
        let now = io::now_ms();
        let due =
            crate::telemetry::with_tally(|t| t.due(now, telemetry.flush_ms).then(|| t.take(now)));
        let Some(batch) = due else { return };
        let body = batch.to_json(&cfg.environment).to_string();
        let timeout_ms = cfg.origin_timeout_ms;
        let telemetry = telemetry.clone();
        ctx.wait_until(async move {
            let ok = send_telemetry(&telemetry, body, timeout_ms).await;
            if !ok {
                worker::console_warn!("flags: telemetry batch not accepted; dropped");
            }
            crate::telemetry::with_tally(|t| t.sent(&batch, ok));
        });
    }

    async fn send_telemetry(
        telemetry: &crate::config::Telemetry,
        body: String,
        timeout_ms: u64,
    ) -> bool {
        use futures_util::future::{Either, select};
        let headers = Headers::new();
        let auth = format!("Bearer {}", telemetry.token);
        if headers.set("Content-Type", "application/json").is_err()
            || headers.set("Authorization", &auth).is_err()
        {
            return false;
        }
        let Some(request) = outbound_request(&telemetry.url, Method::Post, &headers, Some(&body))
        else {
            return false;
        };
        let controller = worker::AbortController::default();
        let signal = controller.signal();
        let fetch = worker::Fetch::Request(request);
        let send = std::pin::pin!(fetch.send_with_signal(&signal));
        let timeout = worker::Delay::from(std::time::Duration::from_millis(timeout_ms));
        match select(send, timeout).await {
            Either::Left((Ok(response), _)) => (200..300).contains(&response.status_code()),
            Either::Left((Err(_), _)) => false,
            Either::Right(_) => {
                controller.abort();
                false
            }
        }
    }

    /// An outbound request, built with `web_sys` directly: `Request::new_with_init` also
    /// converts `cf` fetch options (image resizing and the like) that this worker never sets,
    /// ~8 KB of the gzipped module. `None` for a URL the runtime refuses.
    pub(crate) fn outbound_request(
        url: &str,
        method: Method,
        headers: &Headers,
        body: Option<&str>,
    ) -> Option<Request> {
        let init = worker::web_sys::RequestInit::new();
        init.set_method(method.as_ref());
        init.set_headers(&headers.0);
        if let Some(body) = body {
            init.set_body(&body.into());
        }
        worker::web_sys::Request::new_with_str_and_init(url, &init)
            .ok()
            .map(Request::from)
    }

    pub(crate) fn into_response(reply: Reply) -> worker::Result<Response> {
        let headers = Headers::new();
        for (name, value) in &reply.headers {
            headers.append(name, value)?;
        }
        let response = if reply.body.is_empty() {
            Response::empty()?
        } else {
            Response::from_bytes(reply.body)?
        };
        Ok(response.with_status(reply.status).with_headers(headers))
    }

    fn header(req: &Request, name: &str) -> Option<String> {
        req.headers().get(name).ok().flatten()
    }

    async fn route(mut req: Request, env: &Env) -> Reply {
        let path = req.path();
        let method = req.method();
        // Not `req.url()`: parsing with the `url` crate links its IDNA tables into the module.
        // Read once: every crossing into JavaScript costs on the hot path.
        let url = req.inner().url();
        let own_origin = crate::http::origin_of(&url).to_owned();
        let cache_key = |cfg: &Config| crate::cache_key(&own_origin, &cfg.environment);

        if path == crate::PING_PATH {
            return Reply::json(200, b"{\"ok\":true}".to_vec())
                .with_header("Cache-Control", "no-store");
        }
        if path == health::PATH {
            if method != Method::Get {
                return Reply::error(ApiError::MethodNotAllowed, None);
            }
            return health_reply(env, &cache_key).await;
        }
        if path == crate::PURGE_PATH {
            if method != Method::Post {
                return Reply::error(ApiError::MethodNotAllowed, None);
            }
            let Ok(cfg) = config(env) else {
                return Reply::error(ApiError::Misconfigured, None);
            };
            let Some(expected) = cfg.purge_token.as_deref() else {
                return Reply::error(ApiError::PurgeDisabled, None);
            };
            if !crate::bearer_matches(header(&req, "Authorization").as_deref(), expected) {
                return Reply::error(ApiError::PurgeUnauthorized, None);
            }
            io::purge(&cache_key(&cfg)).await;
            let reply = health_reply(env, &cache_key).await;
            return notify_events(
                env,
                &cfg,
                &own_origin,
                io::current().map(|l| l.version),
                reply,
            )
            .await;
        }
        if path == crate::events::NOTIFY_PATH {
            return notify_route(req, env, &own_origin).await;
        }
        let key = if path == BULK_PATH {
            None
        } else if let Some(key) = path
            .strip_prefix(BULK_PATH)
            .and_then(|rest| rest.strip_prefix('/'))
        {
            Some(key.to_owned())
        } else {
            return assets(req, env).await;
        };

        // One `headers` object for all five reads: each `req.headers()` is a crossing into
        // JavaScript that builds a new wrapper.
        let [origin, content_length, authorization, cookie, if_none_match] = {
            let headers = req.headers();
            [
                "Origin",
                "Content-Length",
                "Authorization",
                "Cookie",
                "If-None-Match",
            ]
            .map(|name| headers.get(name).ok().flatten())
        };
        let cfg = config(env);
        let allowlist = cfg
            .as_ref()
            .map(|c| c.cors_origins.as_slice())
            .unwrap_or_default();
        let cors = cors_decision(origin.as_deref(), &own_origin, allowlist);
        if method == Method::Options {
            return preflight(&cors);
        }
        // Read the body before any refusal (when it is of a sane size): closing a connection
        // with an unread body makes some HTTP stacks reset it before the client reads the answer.
        // Never more than MAX_BODY_BYTES kept, whatever is declared or sent.
        let declared_len = content_length.and_then(|v| v.parse::<usize>().ok());
        let body = if method != Method::Post {
            Some(Vec::new())
        } else if let Some(len) = declared_len.filter(|len| *len <= MAX_BODY_BYTES) {
            // A declared length within the limit: HTTP framing delivers exactly that many
            // bytes, so one `arrayBuffer()` is bounded (and costs one promise rather than a
            // stream reader's several per chunk). Checked again, in case a runtime does not.
            let bytes = req.bytes().await.unwrap_or_default();
            (bytes.len() <= len).then_some(bytes)
        } else if declared_len.is_none_or(|len| len <= MAX_DRAIN_BYTES) {
            read_body(&mut req).await
        } else {
            None
        };
        if cors == CorsDecision::Refused {
            return Reply::error(ApiError::OriginNotAllowed, None).with_header("Vary", "Origin");
        }
        if method != Method::Post {
            return with_cors(
                Reply::error(ApiError::MethodNotAllowed, None)
                    .with_header("Allow", "POST, OPTIONS"),
                &cors,
            );
        }
        let Some(body) = body.filter(|_| declared_len.is_none_or(|len| len <= MAX_BODY_BYTES))
        else {
            return with_cors(Reply::error(ApiError::BodyTooLarge, None), &cors);
        };

        let load_started = io::now_ms();
        let source = match &cfg {
            Ok(cfg) => {
                let source = io::ensure_fresh(env, cfg, &cache_key(cfg)).await;
                let wanted = crate::events::flag_config_etag(&url)
                    .and_then(|tag| crate::events::parse_config_etag(&tag));
                if let Some(wanted) = wanted {
                    crate::events::hub::catch_up(env, cfg, &cache_key(cfg), wanted).await;
                }
                source
            }
            Err(why) => {
                record_config_error(why, load_started);
                Source::Memory
            }
        };
        let loaded = io::current();
        let canary = io::current_canary();
        let eval_started = io::now_ms();
        let request = EvalRequest {
            key: key.as_deref(),
            body: &body,
            authorization: authorization.as_deref(),
            cookie: cookie.as_deref(),
            if_none_match: if_none_match.as_deref(),
            environment: cfg.as_ref().map_or("", |c| c.environment.as_str()),
        };
        let served = loaded.as_deref().map(|l| Served {
            snapshot: &l.snapshot,
            version: l.version,
            canary: canary.as_deref().map(|c| (&c.loaded.snapshot, &c.split)),
            event_streams: events_enabled(env),
        });
        let secret = cfg.as_ref().ok().and_then(|c| c.identity_secret.as_deref());
        let reply = ofrep::handle(&request, served, secret, eval_started as i64);
        let done = io::now_ms();
        let timing = format!(
            "load;dur={};desc=\"{}\", eval;dur={}",
            eval_started.saturating_sub(load_started),
            source.as_str(),
            done.saturating_sub(eval_started)
        );
        with_cors(reply.with_header("Server-Timing", timing), &cors)
    }

    /// The body, chunk by chunk, or `None` when it is over the limit (see [`BodyReader`]).
    async fn read_body(req: &mut Request) -> Option<Vec<u8>> {
        use futures_util::StreamExt as _;
        let mut reader = BodyReader::default();
        if let Ok(mut stream) = req.stream() {
            while let Some(Ok(chunk)) = stream.next().await {
                if !reader.push(&chunk) {
                    break;
                }
            }
        }
        reader.finish()
    }

    /// Whether the `EVENTS` Durable Object binding exists (then bulk answers offer streams).
    fn events_enabled(env: &Env) -> bool {
        thread_local! {
            static ENABLED: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
        }
        ENABLED.with(|e| {
            let enabled = e
                .get()
                .unwrap_or_else(|| env.durable_object(crate::events::bindings::EVENTS).is_ok());
            e.set(Some(enabled));
            enabled
        })
    }

    /// `GET /ofrep/v1/events/{env}`: the OFREP routes' CORS rules, then the environment's
    /// object holds the stream.
    async fn event_stream(req: Request, env: &Env) -> worker::Result<Response> {
        let own_origin = crate::http::origin_of(&req.inner().url()).to_owned();
        let Ok(cfg) = config(env) else {
            return into_response(Reply::error(ApiError::Misconfigured, None));
        };
        let cors = cors_decision(
            header(&req, "Origin").as_deref(),
            &own_origin,
            &cfg.cors_origins,
        );
        if cors == CorsDecision::Refused {
            return into_response(
                Reply::error(ApiError::OriginNotAllowed, None).with_header("Vary", "Origin"),
            );
        }
        let path = req.path();
        let environment = path
            .strip_prefix(crate::events::STREAM_PREFIX)
            .unwrap_or_default()
            .to_owned();
        if environment != cfg.environment || !events_enabled(env) {
            return into_response(with_cors(crate::events::wrong_environment_reply(), &cors));
        }
        if req.method() != Method::Get {
            return into_response(with_cors(
                Reply::error(ApiError::MethodNotAllowed, None).with_header("Allow", "GET"),
                &cors,
            ));
        }
        let cors_headers: Vec<_> = with_cors(Reply::json(200, Vec::new()), &cors)
            .headers
            .into_iter()
            .filter(|(name, _)| name.starts_with("Access-Control-"))
            .collect();
        match crate::events::hub::stream(req, env, &environment, &cors_headers).await {
            Ok(response) => Ok(response),
            Err(error) => {
                worker::console_warn!("flags events: stream failed: {error}");
                // Clients fall back to polling on a non-200 answer.
                into_response(with_cors(crate::events::full_reply(), &cors))
            }
        }
    }

    /// After a purge (or on `POST /_flags/notify`): tell the environment's object. A failure
    /// answers 502 so the publisher retries (its publish is stored regardless).
    async fn notify_events(
        env: &Env,
        cfg: &Config,
        own_origin: &str,
        version: Option<u64>,
        reply: Reply,
    ) -> Reply {
        if !events_enabled(env) {
            return reply;
        }
        match crate::events::hub::notify(env, &cfg.environment, own_origin, version).await {
            Ok(answer) if reply.body.is_empty() => Reply {
                body: answer,
                ..reply
            },
            Ok(_) => reply,
            Err(error) => {
                worker::console_warn!("flags events: notify failed: {error}");
                Reply::json(
                    502,
                    br#"{"errorCode":"GENERAL","errorDetails":"event streams were not notified"}"#
                        .to_vec(),
                )
                .with_header("Cache-Control", "no-store")
            }
        }
    }

    /// `POST /_flags/notify` (bearer `PURGE_TOKEN`, body `{"version": N}` optional): for
    /// deployments that purge through Cloudflare's API rather than `/_flags/purge`.
    async fn notify_route(mut req: Request, env: &Env, own_origin: &str) -> Reply {
        if req.method() != Method::Post {
            return Reply::error(ApiError::MethodNotAllowed, None);
        }
        let Ok(cfg) = config(env) else {
            return Reply::error(ApiError::Misconfigured, None);
        };
        let Some(expected) = cfg.purge_token.as_deref() else {
            return Reply::error(ApiError::PurgeDisabled, None);
        };
        if !crate::bearer_matches(header(&req, "Authorization").as_deref(), expected) {
            return Reply::error(ApiError::PurgeUnauthorized, None);
        }
        let body = req.bytes().await.unwrap_or_default();
        let version = crate::events::parse_notify_body(&body);
        // An empty body takes the object's answer, `{"announced": N, "pending": bool}`.
        let reply = Reply::json(200, Vec::new()).with_header("Cache-Control", "no-store");
        notify_events(env, &cfg, own_origin, version, reply).await
    }

    fn record_config_error(why: &str, now_ms: u64) {
        io::with_schedule(|s| {
            s.last_error = Some(crate::loader::Failure {
                message: LoadError::Config(why.to_owned()).to_string(),
                at_ms: now_ms,
                recovered_at_ms: None,
            });
        });
    }

    async fn health_reply(env: &Env, cache_key: &dyn Fn(&Config) -> String) -> Reply {
        let now = io::now_ms();
        match config(env) {
            Ok(cfg) => {
                let source = io::ensure_fresh(env, &cfg, &cache_key(&cfg)).await;
                let loaded = io::current();
                let canary = io::current_canary();
                let doc = io::with_schedule(|s| {
                    health::document(
                        &cfg.environment,
                        loaded.as_deref(),
                        canary.as_deref(),
                        s,
                        source,
                        cfg.revalidate_ms,
                        io::now_ms(),
                    )
                });
                health::reply(&with_isolate(doc))
            }
            Err(why) => {
                record_config_error(&why, now);
                let doc = io::with_schedule(|s| {
                    health::document("", None, None, s, Source::Memory, 0, now)
                });
                health::reply(&with_isolate(doc))
            }
        }
    }

    /// Adds `isolate` (start time, request count) to a health document.
    fn with_isolate(mut doc: serde_json::Value) -> serde_json::Value {
        if let Some(fields) = doc.as_object_mut() {
            fields.insert("isolate".into(), crate::isolate::document());
            let telemetry = crate::telemetry::with_tally(|t| t.document());
            fields.insert("telemetry".into(), telemetry);
            fields.insert(
                "answer_cache".into(),
                crate::answer_cache::stats().document(),
            );
        }
        doc
    }

    async fn assets(req: Request, env: &Env) -> Reply {
        let fallback = || Reply::error(ApiError::NotFound, None);
        let Ok(fetcher) = env.assets(bindings::ASSETS) else {
            return fallback();
        };
        if req.path().starts_with("/_flags/") {
            return fallback();
        }
        match fetcher.fetch_request(req).await {
            Ok(mut response) => {
                let status = response.status_code();
                let mut headers = Vec::new();
                for (name, value) in response.headers().entries() {
                    if let Some(name) = ASSET_HEADERS.iter().find(|h| h.eq_ignore_ascii_case(&name))
                    {
                        headers.push((*name, value));
                    }
                }
                let body = response.bytes().await.unwrap_or_default();
                Reply {
                    status,
                    headers,
                    body,
                }
            }
            Err(_) => fallback(),
        }
    }

    /// Asset response headers passed through.
    const ASSET_HEADERS: [&str; 6] = [
        "Content-Type",
        "Cache-Control",
        "ETag",
        "Last-Modified",
        "Location",
        "Content-Language",
    ];
}

#[cfg(test)]
mod tests {
    #[test]
    fn purge_token_must_match_exactly() {
        assert!(super::bearer_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(!super::bearer_matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!super::bearer_matches(Some("s3cret"), "s3cret"));
        assert!(!super::bearer_matches(None, "s3cret"));
    }
}
