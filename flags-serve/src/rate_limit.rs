//! Per-token rate limits: a keyed GCRA limiter from `governor` (sustained rate plus a burst,
//! from `limits:`), keyed by the token's name (a browser session counts as its token), or by
//! the client's IP address for requests without a valid token (so spraying made-up tokens
//! shares one budget). Over the limit the answer is 429 with `Retry-After` (whole seconds
//! until the next request would pass).

use std::num::NonZeroU32;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::AppState;
use super::config::Limits;
use super::error::ApiError;

/// Keys kept before idle ones are dropped (memory stays bounded under address sprays).
const MAX_KEYS: usize = 10_000;

/// The limiter.
#[derive(Debug)]
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl RateLimits {
    /// A limiter allowing `limits.per_token_per_second` sustained and `per_token_burst` at once.
    pub fn new(limits: &Limits) -> RateLimits {
        let rate = NonZeroU32::new(u32::try_from(limits.per_token_per_second).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.per_token_burst).unwrap_or(rate);
        RateLimits {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        }
    }

    /// `Ok` when `key` may make a request now, else the seconds to wait (at least 1).
    pub fn check(&self, key: String) -> Result<(), u64> {
        if self.limiter.len() > MAX_KEYS {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

/// Middleware: counts the request against its caller's budget.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let key = match super::auth::token_name(&parts, &state) {
        Some(name) => format!("token:{name}"),
        None => {
            let client = super::auth::client_addr(&parts);
            // The IP without the port: one client opening many connections is one client.
            let ip = client
                .rsplit_once(':')
                .map_or(client.as_str(), |(ip, _)| ip);
            format!("addr:{ip}")
        }
    };
    if let Err(retry_after) = state.rate_limits.check(key) {
        return ApiError::RateLimited { retry_after }.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_each_key_waits_alone() {
        let limits = RateLimits::new(&Limits {
            per_token_per_second: 1,
            per_token_burst: 3,
            ..Limits::default()
        });
        for _ in 0..3 {
            assert!(limits.check("token:ci".into()).is_ok());
        }
        assert_eq!(limits.check("token:ci".into()), Err(1));
        assert!(
            limits.check("token:oncall".into()).is_ok(),
            "another token has its own budget"
        );
    }
}
