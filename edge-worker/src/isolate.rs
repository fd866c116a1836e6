//! This isolate's life, for the health endpoint: when it started and how many requests it has
//! handled. A panic kills an isolate (its Wasm instance is thrown away), so a `started_at_ms` that
//! changes, or a `requests` count that goes back, between two health checks shows a restart.

use core::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

static STARTED_AT_MS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Counts one request; the first one records the isolate's start time.
pub fn count_request(now_ms: u64) {
    let _ = STARTED_AT_MS.compare_exchange(0, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed);
    REQUESTS.fetch_add(1, Ordering::Relaxed);
}

/// `{"started_at_ms": <ms since the epoch>, "requests": N}`.
pub fn document() -> Value {
    json!({
        "started_at_ms": STARTED_AT_MS.load(Ordering::Relaxed),
        "requests": REQUESTS.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_request_sets_the_start_and_every_request_counts() {
        super::count_request(1_000);
        super::count_request(2_000);
        let doc = super::document();
        assert_eq!(doc["started_at_ms"], 1_000);
        assert!(doc["requests"].as_u64() >= Some(2));
    }
}
