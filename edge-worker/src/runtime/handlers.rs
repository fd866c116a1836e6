//! One handler per route of [`crate::route`]: each reads what it needs from the `Request` and
//! the bindings, runs the plain code (the loader, [`crate::ofrep::handle`], [`crate::health`],
//! [`crate::events`]) and returns a [`Reply`] (the event stream, the object's own `Response`).
//! Methods are already checked where the route alone decides them.

use worker::{Env, Method, Request, Response};

use super::glue::{config, header, into_response};
use super::loader_io as io;
use crate::config::{Config, bindings};
use crate::error::ApiError;
use crate::events;
use crate::health;
use crate::http::{CorsDecision, Reply, cors_decision, origin_of, preflight, with_cors};
use crate::identity::bearer_matches;
use crate::limits::{BodyReader, MAX_BODY_BYTES, MAX_DRAIN_BYTES};
use crate::loader::{LoadError, Source, cache_key};
use crate::ofrep::{self, EvalRequest, Served};
use crate::sdk;

/// `GET /_flags/ping`: a trivial answer, the baseline for latency measurements.
pub(crate) fn ping() -> Reply {
    Reply::json(200, b"{\"ok\":true}".to_vec()).with_header("Cache-Control", "no-store")
}

/// `GET /_flags/health`: revalidates if due, then what this isolate serves.
pub(crate) async fn health(req: &Request, env: &Env) -> Reply {
    let own_origin = origin_of(&req.inner().url()).to_owned();
    health_reply(env, &own_origin).await
}

/// `/_flags/sdk/v1/{env}/...` ([`sdk`]): key, environment and method checked before anything
/// loads; then the blob revalidated if due and the pointer or a blob it names answered.
pub(crate) async fn sdk(req: &Request, env: &Env, method_is_get: bool) -> Reply {
    let url = req.inner().url();
    let own_origin = origin_of(&url).to_owned();
    let path = req.path();
    let Some(sdk_path) = sdk::SdkPath::parse(&path) else {
        return Reply::error(ApiError::NotFound, None);
    };
    let Ok(cfg) = config(env) else {
        return Reply::error(ApiError::Misconfigured, None);
    };
    let [origin, authorization, if_none_match] = {
        let headers = req.headers();
        ["Origin", "Authorization", "If-None-Match"].map(|name| headers.get(name).ok().flatten())
    };
    if let Err(reply) = sdk::authorize(
        method_is_get,
        origin.as_deref(),
        authorization.as_deref(),
        &sdk_path,
        &cfg.sdk_keys,
        &cfg.environment,
    ) {
        return reply;
    }
    let key = cache_key(&own_origin, &cfg.environment);
    io::ensure_fresh(env, &cfg, &key).await;
    // A version the event stream announced: catch up first, as the OFREP bulk route does.
    if let Some(wanted) =
        events::flag_config_etag(&url).and_then(|tag| events::parse_config_etag(&tag))
    {
        super::hub::catch_up(env, &cfg, &key, wanted).await;
    }
    let (loaded, canary) = (io::current(), io::current_canary());
    fn blob(l: &crate::loader::Loaded) -> sdk::ServedBlob<'_> {
        sdk::ServedBlob {
            sha256: &l.sha256,
            content_hash: &l.snapshot.header().content_hash,
            gz: &l.gz,
        }
    }
    let served = loaded.as_deref().map(|l| sdk::ServedPointer {
        version: l.version,
        stable: blob(l),
        canary: canary.as_deref().map(|c| {
            (
                blob(&c.loaded),
                c.split.buckets,
                c.split.salt.as_str(),
                c.split.since,
            )
        }),
    });
    match sdk_path {
        sdk::SdkPath::Pointer { .. } => {
            sdk::pointer_reply(served.as_ref(), if_none_match.as_deref())
        }
        sdk::SdkPath::Blob { sha256, .. } => {
            sdk::blob_reply(served.as_ref(), sha256, if_none_match.as_deref())
        }
    }
}

/// `POST /_flags/purge` (bearer `PURGE_TOKEN`): drops the colo cache entry, revalidates now,
/// answers the health document and notifies the event streams.
pub(crate) async fn purge(req: &Request, env: &Env) -> Reply {
    let own_origin = origin_of(&req.inner().url()).to_owned();
    let Ok(cfg) = config(env) else {
        return Reply::error(ApiError::Misconfigured, None);
    };
    let Some(expected) = cfg.purge_token.as_deref() else {
        return Reply::error(ApiError::PurgeDisabled, None);
    };
    if !bearer_matches(header(req, "Authorization").as_deref(), expected) {
        return Reply::error(ApiError::PurgeUnauthorized, None);
    }
    io::purge(&cache_key(&own_origin, &cfg.environment)).await;
    let reply = health_reply(env, &own_origin).await;
    notify_events(
        env,
        &cfg,
        &own_origin,
        io::current().map(|l| l.version),
        reply,
    )
    .await
}

/// `POST /_flags/notify` (bearer `PURGE_TOKEN`, body `{"version": N}` optional): for
/// deployments that purge through Cloudflare's API rather than `/_flags/purge`.
pub(crate) async fn notify(mut req: Request, env: &Env) -> Reply {
    let own_origin = origin_of(&req.inner().url()).to_owned();
    let Ok(cfg) = config(env) else {
        return Reply::error(ApiError::Misconfigured, None);
    };
    let Some(expected) = cfg.purge_token.as_deref() else {
        return Reply::error(ApiError::PurgeDisabled, None);
    };
    if !bearer_matches(header(&req, "Authorization").as_deref(), expected) {
        return Reply::error(ApiError::PurgeUnauthorized, None);
    }
    let body = req.bytes().await.unwrap_or_default();
    let version = events::parse_notify_body(&body);
    // An empty body takes the object's answer, `{"announced": N, "pending": bool}`.
    let reply = Reply::json(200, Vec::new()).with_header("Cache-Control", "no-store");
    notify_events(env, &cfg, &own_origin, version, reply).await
}

/// `POST /ofrep/v1/evaluate/flags[/{key}]` (`key` still percent-encoded) and its preflight:
/// CORS, the body within its limits, the blob revalidated if due (caught up to a
/// `flagConfigEtag` the event stream announced), then [`ofrep::handle`].
pub(crate) async fn evaluate(
    mut req: Request,
    env: &Env,
    method: Method,
    key: Option<String>,
) -> Reply {
    // Not `req.url()`: parsing with the `url` crate links its IDNA tables into the module.
    // Read once: every crossing into JavaScript costs on the hot path.
    let url = req.inner().url();
    let own_origin = origin_of(&url).to_owned();

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
            Reply::error(ApiError::MethodNotAllowed, None).with_header("Allow", "POST, OPTIONS"),
            &cors,
        );
    }
    let Some(body) = body.filter(|_| declared_len.is_none_or(|len| len <= MAX_BODY_BYTES)) else {
        return with_cors(Reply::error(ApiError::BodyTooLarge, None), &cors);
    };

    let load_started = io::now_ms();
    let source = match &cfg {
        Ok(cfg) => {
            let cache_key = cache_key(&own_origin, &cfg.environment);
            let source = io::ensure_fresh(env, cfg, &cache_key).await;
            let wanted =
                events::flag_config_etag(&url).and_then(|tag| events::parse_config_etag(&tag));
            if let Some(wanted) = wanted {
                super::hub::catch_up(env, cfg, &cache_key, wanted).await;
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
            .unwrap_or_else(|| env.durable_object(events::bindings::EVENTS).is_ok());
        e.set(Some(enabled));
        enabled
    })
}

/// `GET /ofrep/v1/events/{env}`: the OFREP routes' CORS rules, then the environment's
/// object holds the stream.
pub(crate) async fn event_stream(req: Request, env: &Env) -> worker::Result<Response> {
    let own_origin = origin_of(&req.inner().url()).to_owned();
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
        .strip_prefix(events::STREAM_PREFIX)
        .unwrap_or_default()
        .to_owned();
    if environment != cfg.environment || !events_enabled(env) {
        return into_response(with_cors(events::wrong_environment_reply(), &cors));
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
    match super::hub::stream(req, env, &environment, &cors_headers).await {
        Ok(response) => Ok(response),
        Err(error) => {
            worker::console_warn!("flags events: stream failed: {error}");
            // Clients fall back to polling on a non-200 answer.
            into_response(with_cors(events::full_reply(), &cors))
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
    match super::hub::notify(env, &cfg.environment, own_origin, version).await {
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

fn record_config_error(why: &str, now_ms: u64) {
    io::with_schedule(|s| {
        s.last_error = Some(crate::loader::Failure {
            message: LoadError::Config(why.to_owned()).to_string(),
            at_ms: now_ms,
            recovered_at_ms: None,
        });
    });
}

async fn health_reply(env: &Env, own_origin: &str) -> Reply {
    let now = io::now_ms();
    match config(env) {
        Ok(cfg) => {
            let source =
                io::ensure_fresh(env, &cfg, &cache_key(own_origin, &cfg.environment)).await;
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
            health::reply(&health::with_isolate(doc))
        }
        Err(why) => {
            record_config_error(&why, now);
            let doc =
                io::with_schedule(|s| health::document("", None, None, s, Source::Memory, 0, now));
            health::reply(&health::with_isolate(doc))
        }
    }
}

/// Anything else: the `ASSETS` binding (the dashboard), never for a `/_flags/` path.
pub(crate) async fn assets(req: Request, env: &Env) -> Reply {
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
                if let Some(name) = ASSET_HEADERS.iter().find(|h| h.eq_ignore_ascii_case(&name)) {
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
