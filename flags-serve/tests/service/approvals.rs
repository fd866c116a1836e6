//! Where an environment requires approval, proposing what a pending change already proposes
//! answers that change again instead of piling up another for the approvers.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::Service;

const CI: &str = "ci-secret-0123";
const DEV: &str = "dev-secret-0123";

#[tokio::test]
async fn the_same_change_proposed_twice_is_one_pending_change() {
    let service = Service::builder()
        .token("ci", CI, "{prod: [publish]}")
        .token("dev", DEV, "{prod: [publish]}")
        .env("prod", "approval: {ttl: 1h}")
        .start()
        .await;
    let push = |secret: &'static str, message: &'static str| {
        let service = &service;
        async move {
            let reply = service
                .post("/api/v1/environments/prod/push")
                .bearer(secret)
                .json(&json!({ "message": message }))
                .send()
                .await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
            reply.json()
        }
    };
    let first = push(CI, "launch").await;
    let id = first["pending"]["id"].as_u64().unwrap();
    assert_eq!(first.get("already_pending"), None, "{first}");
    // A retry, and the same content proposed by another token: the same pending change.
    for (secret, message) in [(CI, "launch"), (DEV, "launch, again")] {
        let again = push(secret, message).await;
        assert_eq!(again["pending"]["id"], id, "{again}");
        assert_eq!(again["already_pending"], true, "{again}");
        assert_eq!(again["pending"]["author"], "ci", "{again}");
    }
    let listed = service
        .get("/api/v1/environments/prod/approvals")
        .bearer(CI)
        .send()
        .await
        .json();
    let ids: Vec<_> = listed["pending"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(ids, [json!(id)], "{listed}");

    // Other content, or another action over the same content, is another change.
    let canary = service
        .post("/api/v1/environments/prod/push")
        .bearer(CI)
        .json(&json!({ "canary": 5 }))
        .send()
        .await;
    assert_eq!(canary.status, StatusCode::ACCEPTED, "{}", canary.body);
    assert_ne!(canary.json()["pending"]["id"], id);
    let flag = service.checkout().join("flags/beta-banner.yaml");
    let text = std::fs::read_to_string(&flag).unwrap();
    std::fs::write(&flag, text.replace("enabled: true", "enabled: false")).unwrap();
    let changed = push(CI, "launch").await;
    assert_ne!(changed["pending"]["id"], id, "{changed}");
    assert_eq!(changed.get("already_pending"), None, "{changed}");
}
