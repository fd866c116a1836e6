//! The background tasks: the sync loop (the core's [`Step`]s carried out over a [`Source`])
//! and the change stream (the worker's SSE `refetchEvaluation` messages, each a poll now;
//! while it is down the core polls on its own).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use flags_sdk_core::{Request, Step};

use crate::source::Source;
use crate::{Shared, note_announced, now_ms};

/// Carries out the core's steps until syncing stops (FATAL) or the client is dropped.
pub(crate) async fn run(shared: Arc<Shared>, source: Arc<dyn Source>) {
    loop {
        let now = now_ms();
        match shared.core.next(now) {
            Step::Fetch(Request::Pointer { etag }) => {
                let announced = Some(shared.announced.swap(0, Ordering::AcqRel)).filter(|v| *v > 0);
                let response = source.pointer(etag.as_deref(), announced).await;
                let update = shared.core.on_pointer(now_ms(), response);
                shared.announce(update);
            }
            Step::Fetch(Request::Blob { sha256 }) => {
                let response = source.blob(&sha256).await;
                let update = shared.core.on_blob(now_ms(), &sha256, response);
                shared.announce(update);
            }
            Step::Wait(at) => {
                let wait = Duration::from_millis(at.saturating_sub(now));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shared.wake.notified() => {}
                }
            }
            // Only this loop sends requests: a response is always fed back before `next`.
            Step::Busy => tokio::time::sleep(Duration::from_millis(10)).await,
            Step::Stopped => {
                shared.announce(None);
                eprintln!(
                    "flags-sdk: syncing stopped: {}",
                    shared.core.status().message.unwrap_or_default()
                );
                return;
            }
        }
    }
}

/// Follows the worker's event stream: connected, polling slows to the safety poll; each
/// message polls at once; cut, polling takes over and the stream is retried with backoff.
pub(crate) async fn follow_events(shared: Arc<Shared>, url: String, timeout: Duration) {
    let client = reqwest::Client::builder()
        .connect_timeout(timeout)
        // The worker sends a heartbeat every 20 s: a silent minute is a dead stream.
        .read_timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_default();
    let mut delay_ms: u64 = 250;
    loop {
        if shared.core.status().status == flags_sdk_core::Status::Fatal {
            return;
        }
        let response = client
            .get(&url)
            .header("Accept", "text/event-stream")
            .send()
            .await;
        if let Ok(mut response) = response
            && response.status().is_success()
        {
            shared.core.on_stream(now_ms(), true);
            delay_ms = 250;
            // Whatever was published while the stream was down.
            poll(&shared, None);
            let mut buffer: Vec<u8> = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.extend_from_slice(&chunk);
                while let Some(end) = find_event_end(&buffer) {
                    let event: Vec<u8> = buffer.drain(..end).collect();
                    if let Some(version) = refetch_version(&event) {
                        poll(&shared, version);
                    }
                }
            }
            shared.core.on_stream(now_ms(), false);
            shared.wake.notify_one();
        }
        let half = delay_ms / 2;
        let wait = half + fastrand::u64(0..=delay_ms - half);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        delay_ms = (delay_ms * 2).min(30_000);
    }
}

fn poll(shared: &Shared, version: Option<u64>) {
    note_announced(shared, version);
    shared.core.on_signal();
    shared.wake.notify_one();
}

/// The end (past the blank line) of the first complete event in `buffer`.
fn find_event_end(buffer: &[u8]) -> Option<usize> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// For a `refetchEvaluation` message: `Some(version announced)` (inner `None` if it names
/// none); `None` for anything else (comments, heartbeats, other types).
fn refetch_version(event: &[u8]) -> Option<Option<u64>> {
    let text = std::str::from_utf8(event).ok()?;
    let data: String = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim_start)
        .collect::<Vec<_>>()
        .join("\n");
    let value: serde_json::Value = serde_json::from_str(&data).ok()?;
    if value.get("type")?.as_str()? != "refetchEvaluation" {
        return None;
    }
    let version = value
        .get("etag")
        .and_then(serde_json::Value::as_str)
        .and_then(|tag| tag.trim_matches('"').strip_prefix('v')?.parse().ok());
    Some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_workers_refetch_messages() {
        let event = b"id: \"v7\"\nevent: message\ndata: {\"type\":\"refetchEvaluation\",\"etag\":\"\\\"v7\\\"\"}\n\n";
        assert_eq!(find_event_end(event), Some(event.len()));
        assert_eq!(refetch_version(event), Some(Some(7)));
        assert_eq!(refetch_version(b": heartbeat\n\n"), None);
        assert_eq!(find_event_end(b"data: {\"type\""), None);
    }
}
