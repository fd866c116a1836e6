//! Compile diagnostics the service answers name files as the repository does
//! (`flags/beta-banner.yaml:16: ...`), relative to the configured checkout, not to the
//! service's working directory.

use axum::http::StatusCode;

use crate::harness::Service;

const ADMIN: &str = "admin-secret-0123";

#[tokio::test]
async fn diagnostics_name_files_relative_to_the_checkout() {
    let service = Service::builder()
        .token("admin", ADMIN, "{\"*\": [admin]}")
        .start()
        .await;
    let flag = service.checkout().join("flags/beta-banner.yaml");
    let text = std::fs::read_to_string(&flag).unwrap();
    std::fs::write(&flag, text.replacen("serve: on", "serve: onn", 1)).unwrap();

    let pushed = service
        .post("/api/v1/environments/prod/push")
        .bearer(ADMIN)
        .send()
        .await;
    assert_eq!(
        pushed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        pushed.body
    );
    let validated = service
        .get("/api/v1/environments/prod/validate")
        .bearer(ADMIN)
        .send()
        .await;
    assert_eq!(validated.status, StatusCode::OK, "{}", validated.body);
    for answer in [pushed.json(), validated.json()] {
        let errors: Vec<_> = answer["diagnostics"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .iter()
            .filter(|d| d["severity"] == "error")
            .collect();
        assert_eq!(errors.len(), 1, "{answer}");
        assert_eq!(errors[0]["file"], "flags/beta-banner.yaml", "{answer}");
        let line = errors[0]["text"].as_str().unwrap();
        assert!(
            line.starts_with("flags/beta-banner.yaml:16: error:"),
            "{line}"
        );
    }
    // The page's lints too.
    let page = service.get("/").bearer(ADMIN).send().await;
    let checkout = service.checkout().display().to_string();
    assert!(
        page.body.contains("flags/beta-banner.yaml:16: error:"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&checkout), "{}", page.body);
}
