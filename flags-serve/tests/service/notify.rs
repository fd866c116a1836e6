//! Outbound webhooks (`notify:`), received by a small axum server on loopback inside the test:
//! each event type arrives once, signed as `docs/notifications.md` says (the receiver checks
//! the HMAC itself, from the raw bytes); a Slack-format hook gets Slack's incoming-webhook
//! shape; a receiver that fails twice gets the same delivery three times and it counts once;
//! one that never answers does not slow a publish down, and a full queue drops, counted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::Service;

const EDITOR: &str = "editor-secret";
const APPROVER: &str = "approver-secret";
const READER: &str = "reader-secret";
const SECRET: &str = "hook-secret-0123";
const SPLIT: &str = "/environments/prod/rules/2/serve/split";

/// What the receiver does with a request.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// 200.
    Accept,
    /// 500 for the first `n` requests, then 200.
    FailFirst(usize),
    /// Accepts the connection, never answers.
    Hang,
}

/// One request as received: headers and raw body.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Checks `X-Hub-Signature-256` as a receiver would: HMAC-SHA256 of the raw body under
    /// the shared secret, compared in constant time.
    fn signed(&self) -> bool {
        let Some(hex) = self.header("x-hub-signature-256").strip_prefix("sha256=") else {
            return false;
        };
        let Ok(tag) = hex::decode(hex) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&self.body);
        mac.verify_slice(&tag).is_ok()
    }
}

/// A webhook receiver on loopback.
#[derive(Debug, Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(behaviour: Behaviour) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let seen = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(Received {
                            headers,
                            body: body.to_vec(),
                            at: Instant::now(),
                        });
                        seen.len()
                    };
                    match behaviour {
                        Behaviour::Accept => StatusCode::OK,
                        Behaviour::FailFirst(fails) if n <= fails => {
                            StatusCode::INTERNAL_SERVER_ERROR
                        }
                        Behaviour::FailFirst(_) => StatusCode::NO_CONTENT,
                        Behaviour::Hang => {
                            std::future::pending::<()>().await;
                            StatusCode::OK
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (at most 10 s) until `done` holds for what arrived.
    async fn until(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "waited 10 s for {what}; got {:#?}",
                got.iter().map(Received::json).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A secret file outside the service's directory (paths in `notify:` may be absolute).
fn secret_file() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{SECRET}\n")).unwrap();
    file
}

async fn metrics(service: &Service) -> String {
    service.get("/metrics").send().await.body
}

async fn ok(service: &Service, path: &str, token: &str, body: Value) -> Value {
    let reply = service.post(path).bearer(token).json(&body).send().await;
    assert!(
        reply.status.is_success(),
        "{path}: {} {}",
        reply.status,
        reply.body
    );
    reply.json()
}

#[tokio::test]
async fn every_event_arrives_once_signed_and_slack_gets_its_shape() {
    let json_hook = Receiver::start(Behaviour::Accept).await;
    let slack_hook = Receiver::start(Behaviour::Accept).await;
    let secret = secret_file();
    let service = Service::builder()
        .git()
        .env("prod", "approval: {ttl: 1h}, auto_publish: true")
        .env("staging", "auto_publish: true")
        .token("editor", EDITOR, "{\"*\": [edit, publish, kill]}")
        .token("approver", APPROVER, "{\"*\": [approve, publish]}")
        .token("reader", READER, "{\"*\": [read]}")
        .config(&format!(
            "notify:\n  webhooks:\n    - {{name: ops, url: \"{}\", secret_file: \"{}\"}}\n    - {{name: chat, url: \"{}\", format: slack, events: [kill, change_merged]}}",
            json_hook.url,
            secret.path().display(),
            slack_hook.url
        ))
        .start()
        .await;

    // Drift found (nothing published yet), then fixed.
    ok(
        &service,
        "/api/v1/environments/staging/drift",
        READER,
        json!({}),
    )
    .await;
    ok(
        &service,
        "/api/v1/environments/staging/drift/fix",
        EDITOR,
        json!({}),
    )
    .await;
    let killed = ok(
        &service,
        "/api/v1/environments/staging/flags/new-chart/kill",
        EDITOR,
        json!({ "reason": "500s" }),
    )
    .await;
    ok(
        &service,
        "/api/v1/environments/staging/flags/new-chart/unkill",
        EDITOR,
        json!({}),
    )
    .await;
    let rolled = ok(
        &service,
        "/api/v1/environments/staging/rollback",
        EDITOR,
        json!({ "to": 1 }),
    )
    .await;
    // prod requires approval: a push is a pending change, then approved and published.
    let pending = ok(
        &service,
        "/api/v1/environments/prod/push",
        EDITOR,
        json!({}),
    )
    .await;
    let pending_id = pending["pending"]["id"].as_u64().unwrap();
    ok(
        &service,
        &format!("/api/v1/environments/prod/approvals/{pending_id}/approve"),
        APPROVER,
        json!({}),
    )
    .await;
    // A change request: edited, approved, merged (and published to both environments).
    let flag = service
        .get("/api/v1/flags/new-chart")
        .bearer(READER)
        .send()
        .await;
    let etag = flag.header("etag").unwrap().to_owned();
    let patched = service
        .call(axum::http::Method::PATCH, "/api/v1/flags/new-chart")
        .bearer(EDITOR)
        .header("if-match", &etag)
        .body(
            json!([
                {"op": "replace", "path": format!("{SPLIT}/on"), "value": 30},
                {"op": "replace", "path": format!("{SPLIT}/off"), "value": 70},
            ])
            .to_string(),
            "application/json-patch+json",
        )
        .send()
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let change = patched.json()["change"]["id"].as_u64().unwrap();
    ok(
        &service,
        &format!("/api/v1/changes/{change}/approve"),
        APPROVER,
        json!({}),
    )
    .await;
    let merged = ok(
        &service,
        &format!("/api/v1/changes/{change}/merge"),
        EDITOR,
        json!({}),
    )
    .await;

    let expected = [
        "drift_found",
        "drift_fixed",
        "kill",
        "unkill",
        "publish",
        "approval_requested",
        "change_approved",
        "publish",
        "change_approved",
        "change_merged",
        // prod only: the change alters nothing staging serves, so its publish is a no-op.
        "publish",
    ];
    let got = json_hook
        .until("every event", |got| got.len() >= expected.len())
        .await;
    // Nothing more arrives (each event once).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = {
        let all = json_hook.received();
        assert_eq!(all.len(), got.len(), "more deliveries than events");
        all
    };
    let bodies: Vec<Value> = got.iter().map(Received::json).collect();
    let mut kinds: Vec<&str> = bodies
        .iter()
        .map(|b| b["event"].as_str().unwrap())
        .collect();
    let mut wanted = expected.to_vec();
    kinds.sort_unstable();
    wanted.sort_unstable();
    assert_eq!(kinds, wanted, "{bodies:#?}");
    for (received, body) in got.iter().zip(&bodies) {
        assert!(received.signed(), "bad signature: {body}");
        assert_eq!(received.header("x-flags-event"), body["event"], "{body}");
        assert_eq!(
            received.header("x-flags-delivery"),
            body["delivery"],
            "{body}"
        );
        assert_eq!(
            received.header("x-flags-timestamp"),
            body["sent_at"].to_string()
        );
        let age = chrono::Utc::now().timestamp() - body["sent_at"].as_i64().unwrap();
        assert!((0..60).contains(&age), "{body}");
        assert_eq!(body["schema"], 1, "{body}");
    }
    let ids: std::collections::BTreeSet<_> = bodies
        .iter()
        .map(|b| b["delivery"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), bodies.len(), "delivery ids repeat");
    let find =
        |kind: &str| -> Vec<&Value> { bodies.iter().filter(|b| b["event"] == kind).collect() };
    let kill = find("kill")[0];
    assert_eq!(
        (
            &kill["env"],
            &kill["actor"],
            &kill["details"]["flags"],
            &kill["details"]["message"]
        ),
        (
            &json!("staging"),
            &json!("editor"),
            &json!(["new-chart"]),
            &json!("500s")
        ),
        "{kill}"
    );
    assert_eq!(kill["details"]["version"], killed["version"], "{kill}");
    let rollback = find("publish")
        .into_iter()
        .find(|b| b["details"]["action"] == "rollback")
        .unwrap_or_else(|| panic!("no rollback among {bodies:#?}"));
    assert_eq!(rollback["details"]["rollback_to"], 1);
    assert_eq!(rollback["details"]["version"], rolled["version"]);
    let requested = find("approval_requested")[0];
    assert_eq!(
        requested["details"]["pending"]["id"], pending_id,
        "{requested}"
    );
    assert_eq!(
        (&requested["env"], &requested["actor"]),
        (&json!("prod"), &json!("editor"))
    );
    let approvals: Vec<_> = find("change_approved")
        .iter()
        .map(|b| (b["actor"].clone(), b["details"].clone()))
        .collect();
    assert!(
        approvals.contains(&(
            json!("approver"),
            json!({"pending": pending_id, "author": "editor"})
        )),
        "{approvals:?}"
    );
    assert!(
        approvals
            .iter()
            .any(|(by, d)| by == "approver" && d["change"] == change),
        "{approvals:?}"
    );
    let merge = find("change_merged")[0];
    assert_eq!(merge["details"]["commit"], merged["commit"], "{merge}");
    let found = find("drift_found")[0];
    assert!(
        found["details"]["findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{found}"
    );
    assert_eq!(find("drift_fixed")[0]["env"], "staging");

    // The Slack hook wanted two kinds only, in Slack's incoming-webhook shape.
    let slack = slack_hook
        .until("the kill and the merge", |got| got.len() >= 2)
        .await;
    assert_eq!(slack.len(), 2);
    for message in slack.iter().map(Received::json) {
        let text = message["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{message}"));
        assert!(
            text.contains("killed") || text.contains("merged"),
            "{message}"
        );
        let blocks = message["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "section", "{message}");
        assert_eq!(blocks[0]["text"]["type"], "mrkdwn", "{message}");
        let section = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(!section.is_empty() && section.len() <= 3000, "{message}");
        assert_eq!(blocks[1]["type"], "context", "{message}");
        assert_eq!(blocks[1]["elements"][0]["type"], "mrkdwn", "{message}");
    }
    let text = metrics(&service).await;
    assert!(
        text.contains(
            "flags_notifications_total{event=\"kill\",result=\"delivered\",webhook=\"chat\"} 1"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_one_delivery_retried_and_one_that_always_fails_is_recorded()
 {
    let flaky = Receiver::start(Behaviour::FailFirst(2)).await;
    let down = Receiver::start(Behaviour::FailFirst(usize::MAX)).await;
    let secret = secret_file();
    let service = Service::builder()
        .token("editor", EDITOR, "{\"*\": [publish, kill]}")
        .config(&format!(
            "notify:\n  webhooks:\n    - {{name: flaky, url: \"{}\", secret_file: \"{}\", backoff: 100ms, events: [kill]}}\n    - {{name: down, url: \"{}\", attempts: 2, backoff: 10ms, events: [kill]}}",
            flaky.url,
            secret.path().display(),
            down.url
        ))
        .start()
        .await;
    ok(
        &service,
        "/api/v1/environments/prod/push",
        EDITOR,
        json!({}),
    )
    .await;
    ok(
        &service,
        "/api/v1/environments/prod/flags/new-chart/kill",
        EDITOR,
        json!({}),
    )
    .await;
    let got = flaky.until("three attempts", |got| got.len() >= 3).await;
    let deliveries: Vec<&str> = got.iter().map(|r| r.header("x-flags-delivery")).collect();
    assert!(
        deliveries.iter().all(|d| *d == deliveries[0]),
        "{deliveries:?}"
    );
    assert!(got.iter().all(Received::signed));
    // Jittered exponential backoff: >= 50 ms, then >= 100 ms.
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps[0] >= Duration::from_millis(50) && gaps[1] >= Duration::from_millis(100),
        "{gaps:?}"
    );
    down.until("two attempts", |got| got.len() >= 2).await;
    // The one that gave up is in the store's trail of failed deliveries.
    let store = &service.state().store;
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let keys = store
            .list(flags_serve::notify::FAILED_PREFIX)
            .await
            .unwrap();
        if !keys.is_empty() || Instant::now() > deadline {
            break keys;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(failed.len(), 1, "{failed:?}");
    let entry: Value =
        serde_json::from_slice(&store.get(&failed[0]).await.unwrap().unwrap().bytes).unwrap();
    assert_eq!(
        (
            &entry["webhook"],
            &entry["attempts"],
            &entry["error"],
            &entry["event"]["event"]
        ),
        (
            &json!("down"),
            &json!(2),
            &json!("answered 500 Internal Server Error"),
            &json!("kill")
        ),
        "{entry}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(flaky.received().len(), 3);
    assert_eq!(down.received().len(), 2);
    let text = metrics(&service).await;
    for line in [
        "flags_notifications_total{event=\"kill\",result=\"delivered\",webhook=\"flaky\"} 1",
        "flags_notifications_total{event=\"kill\",result=\"failed\",webhook=\"down\"} 1",
        "flags_notification_retries_total{webhook=\"flaky\"} 2",
        "flags_notification_retries_total{webhook=\"down\"} 1",
    ] {
        assert!(text.contains(line), "no {line} in\n{text}");
    }
}

#[tokio::test]
async fn a_receiver_that_never_answers_does_not_hold_up_publishing() {
    let hung = Receiver::start(Behaviour::Hang).await;
    let service = Service::builder()
        .token("editor", EDITOR, "{\"*\": [publish, kill]}")
        .config(&format!(
            "notify:\n  queue: 1\n  concurrency: 1\n  webhooks:\n    - {{url: \"{}\", timeout: 60s}}",
            hung.url
        ))
        .start()
        .await;
    let started = Instant::now();
    ok(
        &service,
        "/api/v1/environments/prod/push",
        EDITOR,
        json!({}),
    )
    .await;
    for _ in 0..3 {
        ok(
            &service,
            "/api/v1/environments/prod/flags/new-chart/kill",
            EDITOR,
            json!({}),
        )
        .await;
        ok(
            &service,
            "/api/v1/environments/prod/flags/new-chart/unkill",
            EDITOR,
            json!({}),
        )
        .await;
    }
    // Seven publishes while the receiver holds the first delivery for up to a minute.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    hung.until("the first delivery", |got| !got.is_empty())
        .await;
    // One in flight, one waiting for a slot, one queued: the rest were dropped, counted.
    let text = metrics(&service).await;
    let dropped: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("flags_notifications_dropped_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!((4..=6).contains(&dropped), "dropped {dropped}\n{text}");
}
