//! A change request's `impact`: the prod split `new-chart/gradual` edited from 25% to 30% moves
//! exactly the organisations whose bucket (shared-eval's bucketing, computed here directly)
//! lies between, off -> on, and nobody else in the sample (paying plans are `on` either way); a
//! bad sample line is reported as `file:line`.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use shared_eval::{BUCKETS, bucket};

use crate::harness::Service;

const EDITOR: &str = "editor-secret";
const READER: &str = "reader-secret";
const SPLIT: &str = "/environments/prod/rules/2/serve/split";

#[tokio::test]
async fn a_change_shows_who_it_moves_in_each_environment() {
    let service = Service::builder()
        .git()
        .env("prod", "")
        .token("editor", EDITOR, "{\"*\": [edit, publish]}")
        .token("reader", READER, "{\"*\": [read]}")
        .config("impact: {sample: sample.jsonl, max: 1000}")
        .start()
        .await;
    let pushed = service
        .post("/api/v1/environments/prod/push")
        .bearer(EDITOR)
        .send()
        .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.body);
    let mut lines = Vec::new();
    for i in 0..1000 {
        let plan = if i % 10 == 0 { "premium" } else { "free" };
        lines.push(json!({ "targetingKey": format!("u{i}"), "plan": plan, "org": { "id": format!("org-{i}") } }));
    }
    let orgs = |line: &Value| line["org"]["id"].as_str().unwrap().to_owned();
    let expected = lines
        .iter()
        .filter(|l| l["plan"] == "free")
        .filter(|l| (BUCKETS / 4..BUCKETS * 3 / 10).contains(&bucket("new-chart", &orgs(l))))
        .count();
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(service.path().join("sample.jsonl"), text.join("\n")).unwrap();

    let flag = service
        .get("/api/v1/flags/new-chart")
        .bearer(READER)
        .send()
        .await;
    let etag = flag.header("etag").unwrap().to_owned();
    let patched = service
        .call(Method::PATCH, "/api/v1/flags/new-chart")
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
    let id = patched.json()["change"]["id"].as_u64().unwrap();
    let change = service
        .get(&format!("/api/v1/changes/{id}"))
        .bearer(READER)
        .send()
        .await;
    assert_eq!(change.status, StatusCode::OK, "{}", change.body);
    let impact = &change.json()["impact"];
    assert_eq!(impact["sample"]["contexts"], 1000, "{impact:#}");
    let share = expected as f64 / 1000.0;
    assert_eq!(
        impact["environments"]["prod"]["flags"],
        json!([{
            "flag": "new-chart", "change": "changed", "moved": expected, "share": share,
            "moves": [{"from": "off", "to": "on", "count": expected, "share": share}],
        }]),
        "{impact:#}"
    );
    assert!((20..80).contains(&expected), "{expected}");

    // A broken sample is named, line and all, and the change still shows.
    std::fs::write(service.path().join("sample.jsonl"), "{}\n{\"plan\": \n").unwrap();
    let change = service
        .get(&format!("/api/v1/changes/{id}"))
        .bearer(READER)
        .send()
        .await;
    assert_eq!(change.status, StatusCode::OK, "{}", change.body);
    let error = change.json()["impact"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let file = service.path().join("sample.jsonl");
    assert!(
        error.starts_with(&format!("{}:2: not JSON", file.display())),
        "{error}"
    );
}
