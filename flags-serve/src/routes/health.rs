//! `GET /healthz` (the process answers) and `GET /readyz` (the store answers too).

use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;

/// Liveness: always 200 while the process serves.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: 200 when the store answers a read, 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    // A HEAD of a key that need not exist: any answer but an error means the store is reachable.
    match state.store.head("readyz-probe").await {
        Ok(_) => (StatusCode::OK, "ready\n".into()),
        Err(e) => {
            tracing::warn!(error = %e, "store not reachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "store unreachable\n".into(),
            )
        }
    }
}
