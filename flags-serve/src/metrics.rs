//! `GET /metrics`: Prometheus text from the `prometheus` crate's registry, and the middleware
//! counting every request by route template, method and status. Metrics stay out of handlers:
//! they call one method here per event.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::AppState;

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    publishes: IntCounterVec,
    purges: IntCounterVec,
    /// Pending approvals per environment.
    pub approvals_pending: IntGaugeVec,
    canary_share: prometheus::GaugeVec,
    drift: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        // Names and label sets are constants: registration cannot fail.
        let requests = IntCounterVec::new(
            Opts::new(
                "flags_http_requests_total",
                "HTTP requests answered, by route template, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "flags_http_request_duration_seconds",
                "HTTP request latency, by route template and method",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route", "method"],
        )
        .expect("valid metric");
        let publishes = IntCounterVec::new(
            Opts::new(
                "flags_publishes_total",
                "Versions published, by environment and action (push, rollback, kill, unkill, ...)",
            ),
            &["env", "action"],
        )
        .expect("valid metric");
        let purges = IntCounterVec::new(
            Opts::new(
                "flags_purges_total",
                "CDN purges after a publish, by environment and result (ok, failed)",
            ),
            &["env", "result"],
        )
        .expect("valid metric");
        let approvals_pending = IntGaugeVec::new(
            Opts::new(
                "flags_approvals_pending",
                "Changes waiting for approval, by environment",
            ),
            &["env"],
        )
        .expect("valid metric");
        let canary_share = prometheus::GaugeVec::new(
            Opts::new(
                "flags_canary_share",
                "Share of users (0-1) served the canary version, by environment (0: no canary); as of the last read of the environment",
            ),
            &["env"],
        )
        .expect("valid metric");
        let drift = IntGaugeVec::new(
            Opts::new(
                "flags_drift_status",
                "Result of the environment's last drift check: 0 in sync, 1 drift, 2 could not check (the exit codes of `publisher drift`)",
            ),
            &["env"],
        )
        .expect("valid metric");
        for metric in [
            Box::new(canary_share.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(drift.clone()),
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(publishes.clone()),
            Box::new(purges.clone()),
            Box::new(approvals_pending.clone()),
        ] {
            registry.register(metric).expect("unique metric names");
        }
        Metrics {
            registry,
            requests,
            latency,
            publishes,
            purges,
            approvals_pending,
            canary_share,
            drift,
        }
    }

    /// The verdict of `env`'s last drift check.
    pub fn set_drift(&self, env: &str, status: flags_store::drift::Status) {
        self.drift
            .with_label_values(&[env])
            .set(i64::from(status.exit_code()));
    }

    /// What share of `env`'s users the canary serves (0 without one).
    pub fn set_canary_share(&self, env: &str, percent: f64) {
        self.canary_share
            .with_label_values(&[env])
            .set(percent / 100.0);
    }

    /// A version was published.
    pub fn published(&self, env: &str, action: &str) {
        self.publishes.with_label_values(&[env, action]).inc();
    }

    /// A purge ran.
    pub fn purge(&self, env: &str, ok: bool) {
        self.purges
            .with_label_values(&[env, if ok { "ok" } else { "failed" }])
            .inc();
    }

    /// Sets the pending-approvals gauge to `counts` (unexpired pending changes per environment).
    pub fn set_approvals_pending(&self, counts: &std::collections::BTreeMap<String, i64>) {
        self.approvals_pending.reset();
        for (env, count) in counts {
            self.approvals_pending.with_label_values(&[env]).set(*count);
        }
    }

    /// Adds a metric kept elsewhere (the notifier's counters) to `/metrics`; a second metric
    /// of the same name is refused and logged.
    pub fn register(&self, metric: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(metric) {
            tracing::error!(error = %e, "metric not registered");
        }
    }

    /// The registry as Prometheus text.
    pub fn text(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Response {
    state.update_approvals_gauge().await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.text(),
    )
        .into_response()
}

/// Middleware: counts and times every request under its route template (`/api/v1/environments/{env}/push`,
/// never the raw path, so label values stay bounded).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    state
        .metrics
        .requests
        .with_label_values(&[&route, &method, &status])
        .inc();
    state
        .metrics
        .latency
        .with_label_values(&[&route, &method])
        .observe(start.elapsed().as_secs_f64());
    response
}
