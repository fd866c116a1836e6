//! The Cloudflare purger against a local stand-in of Cloudflare's purge API.
//!
//! Cloudflare's API cannot be reached from the test machines, so the stand-in checks the exact
//! request shape Cloudflare documents for `POST /client/v4/zones/{zone_id}/purge_cache`:
//! bearer token, JSON content type, and a body with exactly one of `files` / `tags` / `hosts` /
//! `prefixes` (1 to 100 entries) or `purge_everything: true`. It answers with Cloudflare's
//! envelope (`success`, `errors`, `messages`, `result.id`), or with 429 + `Retry-After` / 5xx
//! when told to, to exercise the retry path.

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use flags_store::purge::{Notify, PurgeError, Purger};
use serde_json::{Value, json};

const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const TOKEN: &str = "test-api-token";

#[derive(Default)]
struct StandIn {
    /// Status codes to answer with before succeeding (e.g. [429, 429]).
    failures_left: Vec<u16>,
    /// Every accepted request body, in order.
    accepted: Vec<Value>,
    /// Requests that broke the documented shape, with why.
    rejected: Vec<String>,
    /// `POST /_flags/notify` calls (the worker's, served here too): their bearer tokens, in
    /// order after the purges they followed (`accepted.len()` at the time).
    notified: Vec<(String, usize)>,
}

type Shared = Arc<Mutex<StandIn>>;

fn shape_error(headers: &HeaderMap, zone: &str, body: &Value) -> Option<String> {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return Some("missing or wrong bearer token".into());
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Some(format!("content-type {content_type:?}"));
    }
    if zone.len() != 32 || !zone.chars().all(|c| c.is_ascii_hexdigit()) {
        return Some(format!("zone id {zone:?}"));
    }
    let Some(object) = body.as_object() else {
        return Some("body is not an object".into());
    };
    if object.len() != 1 {
        return Some(format!(
            "body must have exactly one purge option, has {:?}",
            object.keys()
        ));
    }
    let (key, value) = object.iter().next()?;
    match key.as_str() {
        "purge_everything" => {
            (value != &json!(true)).then(|| "purge_everything must be true".into())
        }
        "files" | "tags" | "hosts" | "prefixes" => match value.as_array() {
            Some(list) if (1..=100).contains(&list.len()) && list.iter().all(Value::is_string) => {
                None
            }
            _ => Some(format!("{key} must be 1..=100 strings")),
        },
        other => Some(format!("unknown purge option {other:?}")),
    }
}

async fn purge_cache(
    State(state): State<Shared>,
    Path(zone): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut state = state.lock().unwrap();
    if let Some(why) = shape_error(&headers, &zone, &body) {
        state.rejected.push(why.clone());
        let envelope = json!({"success": false, "errors": [{"code": 1012, "message": why}], "messages": [], "result": null});
        return (StatusCode::BAD_REQUEST, Json(envelope)).into_response();
    }
    if !state.failures_left.is_empty() {
        let status = state.failures_left.remove(0);
        let envelope = json!({"success": false, "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}], "messages": [], "result": null});
        let mut response = (StatusCode::from_u16(status).unwrap(), Json(envelope)).into_response();
        if status == 429 {
            response
                .headers_mut()
                .insert("retry-after", "1".parse().unwrap());
        }
        return response;
    }
    state.accepted.push(body);
    Json(json!({"success": true, "errors": [], "messages": [], "result": {"id": zone}}))
        .into_response()
}

/// The worker's notify route, as far as the purger sees it: bearer token in, 200 out.
async fn worker_notify(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let purges = state.accepted.len();
    state.notified.push((auth, purges));
    Json(json!({"announced": 7, "pending": false})).into_response()
}

async fn start(failures: Vec<u16>) -> (String, Shared) {
    let state: Shared = Arc::new(Mutex::new(StandIn {
        failures_left: failures,
        ..Default::default()
    }));
    let app = Router::new()
        .route("/client/v4/zones/{zone}/purge_cache", post(purge_cache))
        .route("/_flags/notify", post(worker_notify))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/client/v4"), state)
}

fn purger(api: &str) -> Purger {
    Purger::Cloudflare {
        api: api.to_owned(),
        zone: ZONE.to_owned(),
        token: TOKEN.to_owned(),
        notify: None,
    }
}

#[tokio::test]
async fn purges_the_environment_cache_tag_with_the_documented_request_shape() {
    let (api, state) = start(vec![]).await;
    purger(&api).purge("prod").await.expect("purge succeeds");
    let state = state.lock().unwrap();
    assert!(
        state.rejected.is_empty(),
        "stand-in rejected: {:?}",
        state.rejected
    );
    assert_eq!(state.accepted, vec![json!({"tags": ["flags-prod"]})]);
}

#[tokio::test]
async fn retries_after_rate_limit_then_succeeds() {
    let (api, state) = start(vec![429, 503]).await;
    purger(&api)
        .purge("staging")
        .await
        .expect("purge succeeds after retries");
    assert_eq!(state.lock().unwrap().accepted.len(), 1);
}

#[tokio::test]
async fn gives_up_with_a_clear_error_when_rate_limited_throughout() {
    let (api, state) = start(vec![429; 10]).await;
    let err = purger(&api)
        .purge("prod")
        .await
        .expect_err("stays rate-limited");
    assert!(
        matches!(err, PurgeError::RateLimited { attempts: 4 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("rate-limited"), "{err}");
    assert!(state.lock().unwrap().accepted.is_empty());
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_reported_without_the_token() {
    let (api, _state) = start(vec![]).await;
    let wrong = Purger::Cloudflare {
        api,
        zone: ZONE.to_owned(),
        token: "not-the-token".to_owned(),
        notify: None,
    };
    let err = wrong.purge("prod").await.expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("HTTP 400") && text.contains("bearer token"),
        "{text}"
    );
    assert!(
        !text.contains("not-the-token"),
        "error must not echo the token: {text}"
    );
}

#[test]
fn targets_parse_and_bad_ones_are_named() {
    assert!(matches!(Purger::from_target(None), Ok(Purger::Disabled)));
    let err = Purger::from_target(Some("ftp://x")).expect_err("bad scheme");
    assert!(err.to_string().contains("ftp://x"));
}

#[tokio::test]
async fn a_cloudflare_purge_then_notifies_the_workers_event_streams() {
    let (api, state) = start(vec![429]).await;
    let worker = api.trim_end_matches("/client/v4").to_owned();
    let purger = Purger::Cloudflare {
        api: api.clone(),
        zone: ZONE.to_owned(),
        token: TOKEN.to_owned(),
        notify: Some(Notify {
            base: worker,
            token: "worker-purge-token".to_owned(),
        }),
    };
    purger
        .purge("prod")
        .await
        .expect("purge and notify succeed");
    let state = state.lock().unwrap();
    assert_eq!(state.accepted.len(), 1, "one purge after the 429");
    // Exactly one notify, after the purge was accepted, with the worker's token (not the API's).
    assert_eq!(
        state.notified,
        [("Bearer worker-purge-token".to_owned(), 1)]
    );
}
