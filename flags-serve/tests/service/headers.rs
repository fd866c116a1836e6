//! Every answer of the service, page or API, success or refusal, carries the headers that keep
//! a browser from running, framing or sniffing it; the page still renders under its own
//! policy (no script of its own; its one stylesheet allowed by hash; only the console's own
//! files load as scripts).

use axum::http::StatusCode;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::harness::{Reply, Service};

const ADMIN: &str = "admin-secret-0123";

fn assert_security_headers(what: &str, reply: &Reply) {
    let csp = reply
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy: {:?}", reply.headers));
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    assert!(
        directives.contains(&"frame-ancestors 'none'"),
        "{what}: {csp}"
    );
    assert!(directives.contains(&"default-src 'none'"), "{what}: {csp}");
    // Scripts only from the service's own files (the console's module), never inline.
    let scripts: Vec<&&str> = directives
        .iter()
        .filter(|d| d.starts_with("script-src"))
        .collect();
    assert_eq!(scripts, [&"script-src 'self'"], "{what}: {csp}");
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        reply.header("referrer-policy"),
        Some("same-origin"),
        "{what}"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let service = Service::builder()
        .token("admin", ADMIN, "{\"*\": [admin]}")
        .start()
        .await;
    let answers = [
        ("sign-in form", service.get("/").send().await),
        ("page", service.get("/").bearer(ADMIN).send().await),
        ("healthz", service.get("/healthz").send().await),
        ("metrics", service.get("/metrics").send().await),
        (
            "API",
            service
                .get("/api/v1/environments")
                .bearer(ADMIN)
                .send()
                .await,
        ),
        ("401", service.get("/api/v1/environments").send().await),
        ("404", service.get("/no/such/route").send().await),
        (
            "413",
            service
                .post("/")
                .form(&[("token", &"x".repeat(2 << 20))])
                .send()
                .await,
        ),
    ];
    let statuses: Vec<u16> = answers.iter().map(|(_, r)| r.status.as_u16()).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 401, 404, 413]);
    for (what, reply) in &answers {
        assert_security_headers(what, reply);
    }
}

/// The page needs nothing its policy forbids: no script, no `style=` attribute, and its one
/// `<style>` is the one whose hash the policy names.
#[tokio::test]
async fn the_page_renders_under_its_policy() {
    let service = Service::builder()
        .token("admin", ADMIN, "{\"*\": [admin]}")
        .start()
        .await;
    let pushed = service
        .post("/api/v1/environments/prod/push")
        .bearer(ADMIN)
        .send()
        .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.body);
    let browser = service.sign_in(ADMIN).await;
    for page in [
        service.get("/").send().await,
        browser.call(axum::http::Method::GET, "/").send().await,
    ] {
        let csp = page.header("content-security-policy").unwrap().to_owned();
        let html = &page.body;
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains(" style="), "{html}");
        assert_eq!(html.matches("<style>").count(), 1, "{html}");
        let style = html
            .split("<style>")
            .nth(1)
            .and_then(|rest| rest.split("</style>").next())
            .unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style));
        assert!(
            csp.contains(&format!("style-src 'self' 'sha256-{hash}'")),
            "{csp} does not allow the page's style"
        );
        // Forms post to the service itself.
        assert!(csp.contains("form-action 'self'"), "{csp}");
        assert!(html.contains("method=post action=/"), "{html}");
    }
}
