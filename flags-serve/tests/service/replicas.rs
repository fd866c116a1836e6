//! Two replicas of the service over one store act as one: a change proposed on one is listed,
//! approved or rejected on the other; two approvers racing on two replicas publish it once;
//! telemetry ingested on each shows up summed on both.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::Service;

const CI: &str = "ci-secret-0123";
const LEAD: &str = "lead-secret-0123";
const OTHER: &str = "other-lead-secret-0123";
const EDGE: &str = "edge-secret-0123";

async fn approval_service() -> Service {
    Service::builder()
        .token("ci", CI, "{prod: [publish]}")
        .token("lead", LEAD, "{prod: [approve, publish]}")
        .token("other", OTHER, "{prod: [approve, publish]}")
        .env("prod", "approval: {ttl: 1h}")
        .start()
        .await
}

async fn latest_version(service: &Service) -> Option<u64> {
    let env = service.state().environment("prod", "-").unwrap();
    env.latest_version().await.unwrap()
}

async fn propose(service: &Service) -> u64 {
    let reply = service
        .post("/api/v1/environments/prod/push")
        .bearer(CI)
        .json(&json!({ "message": "launch" }))
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    reply.json()["pending"]["id"].as_u64().unwrap()
}

#[tokio::test]
async fn a_change_proposed_on_one_replica_is_listed_and_approved_on_the_other() {
    let service = approval_service().await;
    let b = service.second_state().await;
    let id = propose(&service).await;
    let listed = service
        .get("/api/v1/environments/prod/approvals")
        .bearer(LEAD)
        .via(&b)
        .send()
        .await
        .json();
    assert_eq!(listed["pending"][0]["id"], id, "{listed}");
    assert_eq!(listed["pending"][0]["author"], "ci", "{listed}");
    let metrics = service.get("/metrics").via(&b).send().await;
    assert!(
        metrics.body.contains("env=\"prod\"} 1"),
        "the gauge counts it on the other replica: {}",
        metrics.body
    );
    // The same change proposed again on the other replica: the same pending change.
    let again = service
        .post("/api/v1/environments/prod/push")
        .bearer(CI)
        .json(&json!({ "message": "launch" }))
        .via(&b)
        .send()
        .await;
    assert_eq!(again.json()["already_pending"], true, "{}", again.body);
    let before = latest_version(&service).await;
    let approved = service
        .post(&format!("/api/v1/environments/prod/approvals/{id}/approve"))
        .bearer(LEAD)
        .via(&b)
        .send()
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.json()["approved"]["id"], id);
    assert_eq!(
        latest_version(&service).await,
        Some(before.unwrap_or(0) + 1)
    );
    let listed = service
        .get("/api/v1/environments/prod/approvals")
        .bearer(LEAD)
        .send()
        .await
        .json();
    assert_eq!(listed["pending"], json!([]), "{listed}");

    // Rejected on one replica: gone on both.
    let flag = service.checkout().join("flags/beta-banner.yaml");
    let text = std::fs::read_to_string(&flag).unwrap();
    std::fs::write(&flag, text.replace("enabled: true", "enabled: false")).unwrap();
    let second = propose(&service).await;
    assert_ne!(second, id, "ids are not reused");
    let rejected = service
        .post(&format!(
            "/api/v1/environments/prod/approvals/{second}/reject"
        ))
        .bearer(LEAD)
        .via(&b)
        .send()
        .await;
    assert_eq!(rejected.status, StatusCode::OK, "{}", rejected.body);
    let late = service
        .post(&format!(
            "/api/v1/environments/prod/approvals/{second}/approve"
        ))
        .bearer(OTHER)
        .send()
        .await;
    assert_eq!(late.status, StatusCode::NOT_FOUND, "{}", late.body);
}

#[tokio::test]
async fn two_replicas_racing_to_approve_publish_once() {
    let service = approval_service().await;
    let b = service.second_state().await;
    let id = propose(&service).await;
    let before = latest_version(&service).await;
    let path = format!("/api/v1/environments/prod/approvals/{id}/approve");
    let (x, y) = tokio::join!(
        service.post(&path).bearer(LEAD).send(),
        service.post(&path).bearer(OTHER).via(&b).send(),
    );
    let mut statuses = [x.status, y.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        x.body,
        y.body
    );
    assert_eq!(
        latest_version(&service).await,
        Some(before.unwrap_or(0) + 1),
        "published once"
    );
    // And later: still answered 409, still one version.
    let again = service.post(&path).bearer(LEAD).via(&b).send().await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(
        latest_version(&service).await,
        Some(before.unwrap_or(0) + 1)
    );
}

#[tokio::test]
async fn telemetry_ingested_on_each_replica_is_summed_on_both() {
    let service = Service::builder()
        .token("admin", LEAD, "{\"*\": [admin]}")
        .token("edge", EDGE, "{prod: [telemetry]}")
        .start()
        .await;
    let b = service.second_state().await;
    let pushed = service
        .post("/api/v1/environments/prod/push")
        .bearer(LEAD)
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.body);
    for (state, on) in [(service.state(), 3), (&b, 4)] {
        let batch = json!({
            "environment": "prod",
            "counts": [
                { "flag": "beta-banner", "variant": "on", "count": on },
                { "flag": "beta-banner", "variant": null, "count": 1 },
            ],
        });
        let reply = service
            .post("/api/v1/telemetry")
            .bearer(EDGE)
            .json(&batch)
            .via(state)
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    }
    // Each replica writes its aggregate to the store when it stops (and every few seconds).
    service.state().drain().await;
    b.drain().await;
    for state in [service.state(), &b] {
        let shown = service
            .get("/api/v1/environments/prod/telemetry")
            .bearer(LEAD)
            .via(state)
            .send()
            .await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
        let shown = shown.json();
        assert_eq!(shown["batches"], 2, "{shown}");
        let flags = shown["flags"].as_array().unwrap();
        let flag: &Value = flags
            .iter()
            .find(|f| f["flag"] == "beta-banner")
            .unwrap_or_else(|| panic!("{shown}"));
        assert_eq!(flag["total"], 9, "{shown}");
        assert_eq!(flag["variants"]["on"], 7, "{shown}");
        assert_eq!(flag["variants"]["(default)"], 2, "{shown}");
    }
}
