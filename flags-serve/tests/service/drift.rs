//! `docs/api.md` shows the drift report as the service answers it.

use axum::http::StatusCode;

use crate::harness::{Service, repo_root};

const READER: &str = "reader-secret-0123";

#[tokio::test]
async fn the_drift_finding_s_fix_reads_as_the_api_doc_shows_it() {
    let service = Service::builder()
        .token("reader", READER, "{prod: [read]}")
        .start()
        .await;
    // Nothing published: Git has flags the store does not, which a fix publishes.
    let checked = service
        .post("/api/v1/environments/prod/drift")
        .bearer(READER)
        .send()
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    let report = checked.json();
    let fix = report["findings"][0]["fix"]
        .as_str()
        .unwrap_or_else(|| panic!("{report:#}"));
    let doc = std::fs::read_to_string(repo_root().join("docs/api.md")).unwrap();
    let section = doc
        .split("### `POST /api/v1/environments/{env}/drift` (role `read`)")
        .nth(1)
        .and_then(|s| s.split("###").next())
        .expect("the drift section of docs/api.md");
    assert!(
        section.contains(&format!("\"fix\": \"{fix}\"")),
        "docs/api.md shows another `fix` than the service's {fix:?}:\n{section}"
    );
}
