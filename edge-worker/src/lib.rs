//! The edge worker: serves OFREP flag evaluations from the compiled blob, beside the
//! dashboard's static assets, in the Cloudflare Workers runtime.
//!
//! Routes (everything else falls through to the `ASSETS` binding):
//! - `POST /ofrep/v1/evaluate/flags/{key}`, `POST /ofrep/v1/evaluate/flags` ([`ofrep`]),
//!   with CORS preflight (`OPTIONS`) for the configured dashboard origins ([`http`]);
//! - `GET /_flags/health` ([`health`]): what this isolate serves and its last load error;
//! - `POST /_flags/purge` (bearer `PURGE_TOKEN`): drop the colo cache entry and revalidate now,
//!   the local stand-in for a CDN purge;
//! - `GET /_flags/sdk/v1/{env}/pointer`, `GET /_flags/sdk/v1/{env}/blobs/{sha256}.json.gz`
//!   ([`sdk`]): the pointer and blobs for the in-process SDKs, behind per-environment SDK keys,
//!   server-only;
//! - `GET /_flags/ping`: a trivial route, the baseline for latency measurements;
//! - `GET /ofrep/v1/events/{env}` and `POST /_flags/notify` ([`events`]): OFREP event streams,
//!   held by the `EventHub` Durable Object; a purge notifies it too.
//!
//! This file only routes: [`route`] maps a method and path to a [`Route`], and the
//! `#[event(fetch)]` entry (wasm32 only) hands the request to that route's handler in
//! `runtime/`, the Workers glue and the only code that touches the `worker` crate. Every
//! other module is plain Rust and unit-tests natively: [`ofrep`] (the whole OFREP pipeline),
//! [`loader`] (cache/origin/last-known-good decisions), [`identity`] (signed tokens),
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
pub mod sdk;
pub mod served;
pub mod sigv4;
pub mod telemetry;
pub mod trust;

/// Path of the purge endpoint.
pub const PURGE_PATH: &str = "/_flags/purge";
/// Path of the trivial route.
pub const PING_PATH: &str = "/_flags/ping";

/// Where a request goes, decided by its method and path alone (the handlers check the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/ofrep/v1/events/{env}`, any method: CORS and the environment are answered first.
    EventStream,
    /// `/_flags/sdk/v1/...`, any method: the server-only SDK routes ([`sdk`]).
    Sdk,
    /// `/_flags/ping`, any method.
    Ping,
    /// `GET /_flags/health`.
    Health,
    /// `POST /_flags/purge`.
    Purge,
    /// `POST /_flags/notify`.
    Notify,
    /// `/ofrep/v1/evaluate/flags` (`None`) or `.../{key}` (the raw, percent-encoded key), any
    /// method: CORS, the preflight and the 405 are the handler's.
    Evaluate(Option<&'a str>),
    /// A route above with a method it does not take (405).
    MethodNotAllowed,
    /// Anything else: the static assets.
    Assets,
}

/// The route of a request. `method` is the runtime's name for it (`GET`, `POST`, ...).
#[inline]
pub fn route<'a>(method: &str, path: &'a str) -> Route<'a> {
    let only = |wanted: &str, route: Route<'a>| {
        if method == wanted {
            route
        } else {
            Route::MethodNotAllowed
        }
    };
    if path.starts_with(events::STREAM_PREFIX) {
        return Route::EventStream;
    }
    if path.starts_with(sdk::PREFIX) {
        return Route::Sdk;
    }
    match path {
        PING_PATH => Route::Ping,
        health::PATH => only("GET", Route::Health),
        PURGE_PATH => only("POST", Route::Purge),
        events::NOTIFY_PATH => only("POST", Route::Notify),
        ofrep::BULK_PATH => Route::Evaluate(None),
        _ => match path
            .strip_prefix(ofrep::BULK_PATH)
            .and_then(|rest| rest.strip_prefix('/'))
        {
            Some(key) => Route::Evaluate(Some(key)),
            None => Route::Assets,
        },
    }
}

/// The worker's entry: counts the request, routes it, answers, then sends telemetry when due.
#[cfg(target_arch = "wasm32")]
#[worker::event(fetch)]
async fn fetch(
    req: worker::Request,
    env: worker::Env,
    ctx: worker::Context,
) -> worker::Result<worker::Response> {
    use runtime::handlers;
    isolate::count_request(runtime::now_ms());
    let path = req.path();
    let method = req.method();
    let reply = match route(method.as_ref(), &path) {
        Route::EventStream => return handlers::event_stream(req, &env).await,
        Route::Sdk => handlers::sdk(&req, &env, method == worker::Method::Get).await,
        Route::Ping => handlers::ping(),
        Route::Health => handlers::health(&req, &env).await,
        Route::Purge => handlers::purge(&req, &env).await,
        Route::Notify => handlers::notify(req, &env).await,
        Route::Evaluate(key) => {
            let key = key.map(str::to_owned);
            handlers::evaluate(req, &env, method, key).await
        }
        Route::MethodNotAllowed => http::Reply::error(error::ApiError::MethodNotAllowed, None),
        Route::Assets => handlers::assets(req, &env).await,
    };
    runtime::telemetry::flush(&env, &ctx);
    runtime::glue::into_response(reply)
}

#[cfg(target_arch = "wasm32")]
mod runtime;

#[cfg(test)]
mod tests {
    use super::{Route, route};

    #[test]
    fn routes_by_method_and_path() {
        let cases = [
            ("GET", "/ofrep/v1/events/prod", Route::EventStream),
            ("POST", "/ofrep/v1/events/prod", Route::EventStream),
            ("GET", "/_flags/sdk/v1/prod/pointer", Route::Sdk),
            ("POST", "/_flags/sdk/v1/prod/pointer", Route::Sdk),
            ("GET", "/_flags/ping", Route::Ping),
            ("POST", "/_flags/ping", Route::Ping),
            ("GET", "/_flags/health", Route::Health),
            ("POST", "/_flags/health", Route::MethodNotAllowed),
            ("POST", "/_flags/purge", Route::Purge),
            ("GET", "/_flags/purge", Route::MethodNotAllowed),
            ("POST", "/_flags/notify", Route::Notify),
            ("PUT", "/_flags/notify", Route::MethodNotAllowed),
            ("POST", "/ofrep/v1/evaluate/flags", Route::Evaluate(None)),
            ("OPTIONS", "/ofrep/v1/evaluate/flags", Route::Evaluate(None)),
            (
                "GET",
                "/ofrep/v1/evaluate/flags/a%2Fb",
                Route::Evaluate(Some("a%2Fb")),
            ),
            (
                "POST",
                "/ofrep/v1/evaluate/flags/",
                Route::Evaluate(Some("")),
            ),
            ("POST", "/ofrep/v1/evaluate/flagsx", Route::Assets),
            ("GET", "/_flags/cache/prod", Route::Assets),
            ("GET", "/", Route::Assets),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(method, path), expected, "{method} {path}");
        }
    }
}
