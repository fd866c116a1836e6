//! The tower layers around every route: a request id (`x-request-id`, generated when absent,
//! echoed back, on every log line of the request), a trace span per request, request metrics,
//! a body size limit (axum's, which every body extractor obeys: 413 beyond it), a timeout, a
//! concurrency limit (503 beyond it) and per-token rate limits (`rate_limit.rs`: 429); and,
//! outermost, the security headers every answer carries, the page's and the API's alike
//! ([`security_headers`]).

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::AppState;
use super::metrics;

fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    // The path without the query string: queries are not secrets today, but keep logs lean.
    tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
}

async fn overloaded(error: tower::BoxError) -> impl IntoResponse {
    if error.is::<tower::load_shed::error::Overloaded>() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "1")],
            "overloaded; retry shortly\n",
        )
            .into_response()
    } else {
        tracing::error!(%error, "request failed in a layer");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
    }
}

/// Adds what browsers need to keep the service's answers to itself, unless the handler set its
/// own: `Content-Security-Policy` (the page's, [`crate::page::CONTENT_SECURITY_POLICY`]: no
/// script at all, its one stylesheet by hash, no framing), `X-Content-Type-Options: nosniff`,
/// `X-Frame-Options: DENY` (for browsers without `frame-ancestors`) and `Referrer-Policy:
/// same-origin` (not `no-referrer`, under which browsers send `Origin: null` on the page's own
/// form posts, which the session check refuses).
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &str); 4] = [
        (
            header::CONTENT_SECURITY_POLICY,
            crate::page::CONTENT_SECURITY_POLICY.as_str(),
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        if !headers.contains_key(&name)
            && let Ok(value) = HeaderValue::from_str(value)
        {
            headers.insert(name, value);
        }
    }
    response
}

/// `routes` with state and every layer.
pub fn apply(routes: Router<AppState>, state: AppState) -> Router {
    let limits = state.config.limits.clone();
    routes
        // Inside `track`, so refused requests are counted with their 429.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::rate_limit::limit,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(limits.concurrency.max(1))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    limits.timeout().max(Duration::from_secs(1)),
                ))
                .layer(DefaultBodyLimit::max(limits.body_bytes)),
        )
        // Outermost: also on the answers the layers above make (408, 413, 503).
        .layer(axum::middleware::map_response(security_headers))
}
