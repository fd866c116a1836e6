//! OFREP event streams (ADR-0008 of open-feature/protocol): a browser learns of a publish in
//! tens of milliseconds instead of at its next poll.
//!
//! - The bulk answer carries `eventStreams: [{type: "sse", endpoint: {requestUri}}]`
//!   ([`stream_entry`]) naming `GET /ofrep/v1/events/{env}?since={version}`.
//! - That stream is held by one Durable Object per environment (class `EventHub`):
//!   every isolate's connections end there, so one notification fans out to all of them.
//! - A publish notifies after its purge: the worker's `POST /_flags/purge` tells the object,
//!   and `POST /_flags/notify` (same bearer token) does it alone for deployments that purge
//!   through Cloudflare's API. The object first loads the new blob itself (so the origin
//!   really serves it), then sends `refetchEvaluation` with the version's [`config_etag`].
//! - The provider refetches with `?flagConfigEtag=...`; an isolate still serving an older
//!   version catches up before answering (`runtime::hub::catch_up`), so an announced version is
//!   never answered with the old flags.
//!
//! Messages carry no user data (only the environment's version), so the stream URL carries no
//! secret at all; CORS is the OFREP routes' allowlist. The pure parts (message format, ids,
//! parsing, decisions) are here and test natively; the runtime parts (the object, the routes'
//! calls to it, the catch-up) are in `runtime/hub.rs` (wasm32 only).

use serde_json::{Value, json};

use crate::http::Reply;

/// Path prefix of the event stream: `/ofrep/v1/events/{env}`.
pub const STREAM_PREFIX: &str = "/ofrep/v1/events/";
/// Path of the notify endpoint (bearer `PURGE_TOKEN`).
pub const NOTIFY_PATH: &str = "/_flags/notify";

/// Binding names (they must match the root `wrangler.toml`).
pub mod bindings {
    /// `[[durable_objects.bindings]]`: the `EventHub` namespace.
    pub const EVENTS: &str = "EVENTS";
    /// `[vars]`: most open streams one object holds; more are refused with 503 (clients poll).
    pub const EVENTS_MAX_CONNECTIONS: &str = "EVENTS_MAX_CONNECTIONS";
    /// `[vars]`: reconnect hint in ms; each stream gets a jittered value in `[R/2, R]`.
    pub const EVENTS_RETRY_MS: &str = "EVENTS_RETRY_MS";
    /// `[vars]`: seconds between heartbeat comments on idle streams.
    pub const EVENTS_HEARTBEAT_S: &str = "EVENTS_HEARTBEAT_S";
}

/// Default for `EVENTS_MAX_CONNECTIONS`: ~110 KB of workerd memory per idle stream was measured
/// locally (docs/benchmarks.md), and a Durable Object's isolate has 128 MB.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1_000;
/// Default for `EVENTS_RETRY_MS`: a cut stream is back (and caught up, see [`resume_from`])
/// within the dashboard's 250 ms poll interval; fleets of many thousand browsers per
/// environment should raise it to spread reconnects after an object restart.
pub const DEFAULT_RETRY_MS: u64 = 250;
/// Default for `EVENTS_HEARTBEAT_S`: well under the 100 s after which Cloudflare's proxies
/// close an idle connection.
pub const DEFAULT_HEARTBEAT_S: u64 = 20;
/// `inactivityDelaySec` announced: the provider closes a hidden tab's stream after this.
pub const INACTIVITY_DELAY_S: u64 = 120;
/// How long the object keeps retrying a notification whose version the origin does not serve
/// yet (a notify that overtook the pointer write, an origin replica lagging).
pub const PENDING_FOR_MS: u64 = 30_000;
/// Delay between those retries for the first second (a lagging origin is usually a matter of
/// milliseconds); after that once a second, so a notify with nothing new costs little.
pub const PENDING_RETRY_MS: u64 = 50;
/// Least time between two forced reloads of one isolate for a refetch that names a version
/// it does not have: bounds what forged `flagConfigEtag`s can cost the origin.
pub const CATCH_UP_SPACING_MS: u64 = 50;

/// Event-stream settings, read from the bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Connection cap per object.
    pub max_connections: usize,
    /// Reconnect hint base.
    pub retry_ms: u64,
    /// Heartbeat period.
    pub heartbeat_ms: u64,
}

impl Settings {
    /// Reads the settings; unset or unparsable values take their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Settings {
        let number = |name: &str| lookup(name).and_then(|v| v.trim().parse::<u64>().ok());
        Settings {
            max_connections: number(bindings::EVENTS_MAX_CONNECTIONS)
                .map_or(DEFAULT_MAX_CONNECTIONS, |n| n as usize),
            retry_ms: number(bindings::EVENTS_RETRY_MS)
                .unwrap_or(DEFAULT_RETRY_MS)
                .max(2),
            heartbeat_ms: number(bindings::EVENTS_HEARTBEAT_S)
                .unwrap_or(DEFAULT_HEARTBEAT_S)
                .clamp(1, 3_600)
                * 1_000,
        }
    }
}

/// The flag-configuration ETag of an environment version, as sent in `refetchEvaluation`.
pub fn config_etag(version: u64) -> String {
    format!("\"v{version}\"")
}

/// The version named by a `flagConfigEtag` (or `Last-Event-ID`, which carries the same tag).
pub fn parse_config_etag(tag: &str) -> Option<u64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let tag = tag.trim_matches('"');
    tag.strip_prefix('v')?.parse().ok()
}

/// The `flagConfigEtag` query parameter of a request URL, percent-decoded.
pub fn flag_config_etag(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "flagConfigEtag").then(|| percent_decode(value))?
    })
}

/// The `since` query parameter of a stream URL: the version the client's bulk answer had.
pub fn since_param(url: &str) -> Option<u64> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("since="))
        .and_then(|v| v.parse().ok())
}

fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The `eventStreams` entry of a bulk answer. `endpoint.requestUri` (not `url`) so a proxy in
/// front of the worker keeps working: the provider resolves it against its OFREP base URL.
/// `since` lets the object tell a client that connects after a newer publish at once.
pub fn stream_entry(environment: &str, version: u64) -> Value {
    json!({
        "type": "sse",
        "endpoint": { "requestUri": format!("{STREAM_PREFIX}{environment}?since={version}") },
        "inactivityDelaySec": INACTIVITY_DELAY_S,
    })
}

/// The first bytes of a stream: the jittered reconnect hint, and a comment so proxies and
/// clients see the stream open at once.
pub fn stream_preamble(retry_ms: u64) -> Vec<u8> {
    format!("retry: {retry_ms}\n: connected\n\n").into_bytes()
}

/// A reconnect hint in `[base/2, base]`, from a uniform `random` in `[0, 1)`: streams cut
/// together (an object restart) come back spread over half the interval, not all at once.
pub fn jittered_retry_ms(base: u64, random: f64) -> u64 {
    let half = base / 2;
    let spread = (base - half) as f64 * random.clamp(0.0, 1.0);
    half + spread as u64
}

/// The `refetchEvaluation` event for a version. The id is the version's tag, so a client
/// reconnecting with `Last-Event-ID` says which version it last heard of.
pub fn refetch_event(version: u64) -> Vec<u8> {
    let etag = config_etag(version);
    let data = json!({ "type": "refetchEvaluation", "etag": etag });
    format!("id: {etag}\nevent: message\ndata: {data}\n\n").into_bytes()
}

/// The heartbeat: an SSE comment, ignored by clients, that keeps proxies from timing out.
pub const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// What a (re)connecting client must be told: the latest announced version, when the client
/// has heard of nothing as new. `heard` is the newer of its `Last-Event-ID` and `since`.
pub fn resume_from(announced: Option<u64>, heard: Option<u64>) -> Option<u64> {
    match (announced, heard) {
        (Some(latest), Some(heard)) if heard >= latest => None,
        (Some(latest), _) => Some(latest),
        (None, _) => None,
    }
}

/// What a notification leads to, once the object has (re)loaded what the origin serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Broadcast this version.
    Announce(u64),
    /// The origin does not serve the wanted version yet: retry later.
    Wait,
    /// Nothing newer than what was announced, and nothing asked for: done.
    Nothing,
}

/// Decides on a notification. `wanted` is the version the notifier published (if it said);
/// `loaded` what the object could load from the origin; `announced` the last broadcast.
/// A version is announced only once it is loaded, never before.
pub fn decide(wanted: Option<u64>, loaded: Option<u64>, announced: Option<u64>) -> Decision {
    let Some(loaded) = loaded else {
        return Decision::Wait;
    };
    if wanted.is_some_and(|w| loaded < w) {
        return Decision::Wait;
    }
    if announced.is_some_and(|a| loaded <= a) {
        // "Something changed" with no version while the origin shows nothing new yet: wait.
        return if wanted.is_some() {
            Decision::Nothing
        } else {
            Decision::Wait
        };
    }
    Decision::Announce(loaded)
}

/// The refusal when an object holds [`Settings::max_connections`] streams. EventSource gives
/// up on a non-200 answer and the OFREP provider falls back to polling.
pub fn full_reply() -> Reply {
    Reply::json(
        503,
        br#"{"errorCode":"GENERAL","errorDetails":"event stream is at capacity; poll instead"}"#
            .to_vec(),
    )
    .with_header("Retry-After", "30")
    .with_header("Cache-Control", "no-store")
}

/// The answer for a stream path naming another environment than the worker's.
pub fn wrong_environment_reply() -> Reply {
    Reply::error(crate::error::ApiError::NotFound, None)
}

/// The notify request body: `{"version": N}` (optional; an empty body is "something changed").
pub fn parse_notify_body(body: &[u8]) -> Option<u64> {
    shared_eval::parse_json(body).ok()?.get("version")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_etags_round_trip_and_reject_others() {
        assert_eq!(config_etag(12), "\"v12\"");
        assert_eq!(parse_config_etag(&config_etag(12)), Some(12));
        assert_eq!(parse_config_etag("W/\"v3\""), Some(3));
        assert_eq!(parse_config_etag("v7"), Some(7));
        for bad in ["", "\"\"", "\"12\"", "\"vx\"", "\"v-1\"", "\"v1.5\""] {
            assert_eq!(parse_config_etag(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_refetch_parameter_is_found_and_decoded() {
        let url = "https://f.example/ofrep/v1/evaluate/flags?flagConfigEtag=%22v9%22&flagConfigLastModified=1";
        assert_eq!(flag_config_etag(url).as_deref(), Some("\"v9\""));
        assert_eq!(flag_config_etag("https://f.example/x?a=1"), None);
        assert_eq!(flag_config_etag("https://f.example/x"), None);
        assert_eq!(
            flag_config_etag("https://f.example/x?flagConfigEtag=%zz"),
            None
        );
        assert_eq!(since_param("/ofrep/v1/events/prod?since=41"), Some(41));
        assert_eq!(since_param("/ofrep/v1/events/prod?since=x"), None);
    }

    #[test]
    fn events_are_ofrep_refetch_messages_with_the_tag_as_id() {
        let text = String::from_utf8(refetch_event(5)).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("id: \"v5\""));
        assert_eq!(lines.next(), Some("event: message"));
        let data: Value =
            serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(data, json!({"type": "refetchEvaluation", "etag": "\"v5\""}));
        assert!(text.ends_with("\n\n"));
        assert_eq!(
            stream_entry("prod", 5),
            json!({"type": "sse", "endpoint": {"requestUri": "/ofrep/v1/events/prod?since=5"},
                   "inactivityDelaySec": 120})
        );
    }

    #[test]
    fn retry_hints_spread_over_the_upper_half() {
        assert_eq!(jittered_retry_ms(250, 0.0), 125);
        assert_eq!(jittered_retry_ms(250, 0.999_999), 249);
        assert_eq!(jittered_retry_ms(250, 7.0), 250);
        let hints: Vec<u64> = (0..10)
            .map(|i| jittered_retry_ms(1000, i as f64 / 10.0))
            .collect();
        assert_eq!(hints.first(), Some(&500));
        assert!(hints.windows(2).all(|w| w[0] < w[1]));
        assert!(
            String::from_utf8(stream_preamble(180))
                .unwrap()
                .starts_with("retry: 180\n")
        );
    }

    #[test]
    fn reconnects_hear_the_latest_version_only_when_they_missed_it() {
        assert_eq!(resume_from(Some(7), None), Some(7));
        assert_eq!(resume_from(Some(7), Some(6)), Some(7));
        assert_eq!(resume_from(Some(7), Some(7)), None);
        assert_eq!(resume_from(Some(7), Some(9)), None);
        assert_eq!(resume_from(None, Some(3)), None);
    }

    #[test]
    fn a_version_is_announced_only_once_loaded() {
        use Decision::*;
        // The publisher said v5: announce once v5 (or later) is what the origin serves.
        assert_eq!(decide(Some(5), Some(4), Some(4)), Wait);
        assert_eq!(decide(Some(5), None, Some(4)), Wait);
        assert_eq!(decide(Some(5), Some(5), Some(4)), Announce(5));
        assert_eq!(decide(Some(5), Some(6), Some(4)), Announce(6));
        assert_eq!(decide(Some(5), Some(5), Some(5)), Nothing);
        // No version given: announce anything newer; wait a little when nothing is.
        assert_eq!(decide(None, Some(5), Some(4)), Announce(5));
        assert_eq!(decide(None, Some(4), Some(4)), Wait);
        assert_eq!(decide(None, Some(4), None), Announce(4));
    }

    #[test]
    fn settings_default_and_bound() {
        let s = Settings::from_lookup(|_| None);
        assert_eq!(
            (s.max_connections, s.retry_ms, s.heartbeat_ms),
            (
                DEFAULT_MAX_CONNECTIONS,
                DEFAULT_RETRY_MS,
                DEFAULT_HEARTBEAT_S * 1000
            )
        );
        let s = Settings::from_lookup(|name| match name {
            bindings::EVENTS_MAX_CONNECTIONS => Some("3".into()),
            bindings::EVENTS_HEARTBEAT_S => Some("0".into()),
            _ => Some("soon".into()),
        });
        assert_eq!(
            (s.max_connections, s.retry_ms, s.heartbeat_ms),
            (3, 250, 1000)
        );
        assert_eq!(parse_notify_body(br#"{"version": 8}"#), Some(8));
        assert_eq!(parse_notify_body(b""), None);
        assert_eq!(full_reply().status, 503);
    }
}
