//! Sending this isolate's evaluation counts ([`crate::telemetry`]) to `TELEMETRY_URL`, in the
//! background after an answer.

use worker::{Context, Env, Headers, Method};

use super::glue::{config, outbound_request};
use super::loader_io::now_ms;

/// Sends the isolate's evaluation counts when a batch is due, after the answer (the
/// runtime keeps the isolate alive for it), within the origin timeout.
pub(crate) fn flush(env: &Env, ctx: &Context) {
    let Ok(cfg) = config(env) else { return };
    let Some(telemetry) = cfg.telemetry.as_ref() else {
        return;
    };
    let now = now_ms();
    let due = crate::telemetry::with_tally(|t| t.due(now, telemetry.flush_ms).then(|| t.take(now)));
    let Some(batch) = due else { return };
    let body = batch.to_json(&cfg.environment).to_string();
    let timeout_ms = cfg.origin_timeout_ms;
    let telemetry = telemetry.clone();
    ctx.wait_until(async move {
        let ok = send(&telemetry, body, timeout_ms).await;
        if !ok {
            worker::console_warn!("flags: telemetry batch not accepted; dropped");
        }
        crate::telemetry::with_tally(|t| t.sent(&batch, ok));
    });
}

async fn send(telemetry: &crate::config::Telemetry, body: String, timeout_ms: u64) -> bool {
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
