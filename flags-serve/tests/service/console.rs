//! The console (`/flags`, `/flags/{key}`, `/changes`, `/changes/{id}`, `/environments/{env}`) in-process, over a real
//! bare Git remote: each page renders for a signed-in browser with the buttons its roles
//! allow and none other; what a page shows is escaped; its script and stylesheet are served
//! under content-hashed names with a year's cache; a visitor without a session goes to the
//! sign-in form; the POSTs a page's buttons make are refused when forged (no role, no CSRF
//! token, another origin), whatever the page showed.

use axum::http::{Method, StatusCode};
use serde_json::json;
use sha2::Digest as _;

use crate::harness::{Reply, Service};

const ADMIN: &str = "console-admin-secret";
const EDITOR: &str = "console-editor-secret";
const APPROVER: &str = "console-approver-secret";
const READER: &str = "console-reader-secret";

async fn service() -> Service {
    let service = Service::builder()
        .git()
        .env("prod", "approval: {ttl: 1h}, auto_publish: true")
        .env("staging", "")
        .token("admin", ADMIN, "{\"*\": [admin]}")
        .token("editor", EDITOR, "{\"*\": [edit, publish]}")
        .token("approver", APPROVER, "{\"*\": [approve]}")
        .token("reader", READER, "{\"*\": [read]}")
        .start()
        .await;
    // The kill buttons show for deployed flags only.
    let pushed = service
        .post("/api/v1/environments/staging/push")
        .bearer(ADMIN)
        .send()
        .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.body);
    service
}

/// The buttons a page offers, as `data-action` values.
fn actions(page: &Reply) -> Vec<&str> {
    page.body
        .split("data-action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

/// Opens a change turning new-chart off in prod (one approval needed), as the flags page's
/// toggle does.
async fn open_toggle_change(service: &Service) -> u64 {
    let flag = service
        .get("/api/v1/flags/new-chart")
        .bearer(EDITOR)
        .send()
        .await;
    let etag = flag.header("etag").expect("an ETag").to_owned();
    let reply = service
        .call(Method::PATCH, "/api/v1/flags/new-chart")
        .bearer(EDITOR)
        .header("if-match", &etag)
        .body(
            json!([{"op": "add", "path": "/environments/prod/enabled", "value": false}])
                .to_string(),
            "application/json-patch+json",
        )
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()["change"]["id"].as_u64().unwrap()
}

#[tokio::test]
async fn each_page_renders_with_the_buttons_the_roles_allow() {
    let service = service().await;
    let admin = service.sign_in(ADMIN).await;
    let flags = admin.call(Method::GET, "/flags").send().await;
    assert_eq!(flags.status, StatusCode::OK, "{}", flags.body);
    assert_eq!(flags.header("cache-control"), Some("no-store"));
    assert!(
        flags.body.contains("data-flag=\"new-chart\""),
        "{}",
        flags.body
    );
    assert!(flags.body.contains(&format!(
        "<meta name=\"csrf-token\" content=\"{}\">",
        admin.csrf
    )));
    let offered = actions(&flags);
    for action in ["kill", "toggle"] {
        assert!(offered.contains(&action), "{action}: {offered:?}");
    }
    // Filters are the API's: one flag by key, none of an unknown type.
    let one = admin
        .call(Method::GET, "/flags?q=new-chart&type=&lint=")
        .send()
        .await;
    assert_eq!(
        one.body.matches("<tr class=\"flag\"").count(),
        1,
        "{}",
        one.body
    );
    let none = admin
        .call(Method::GET, "/flags?type=permission&owner=nobody")
        .send()
        .await;
    assert_eq!(
        none.body.matches("<tr class=\"flag\"").count(),
        0,
        "{}",
        none.body
    );
    assert!(none.body.contains("0 flags"), "{}", none.body);

    let flag = admin.call(Method::GET, "/flags/new-chart").send().await;
    assert_eq!(flag.status, StatusCode::OK, "{}", flag.body);
    assert!(flag.body.contains("<pre class=\"file\">"), "{}", flag.body);
    assert!(
        flag.body.contains("Open a change with these edits"),
        "{}",
        flag.body
    );
    // An environment: the status page's section, drift Check and Fix for the admin; for a
    // reader only the check (role read), and no rollback form.
    let staging = admin
        .call(Method::GET, "/environments/staging")
        .send()
        .await;
    assert_eq!(staging.status, StatusCode::OK, "{}", staging.body);
    assert!(
        staging.body.contains("id=\"env-staging\""),
        "{}",
        staging.body
    );
    assert!(staging.body.contains("Fix drift"), "{}", staging.body);
    let reader = service.sign_in(READER).await;
    let seen = reader
        .call(Method::GET, "/environments/staging")
        .send()
        .await;
    assert_eq!(actions(&seen), ["post"], "{}", seen.body);
    assert!(seen.body.contains("Check drift") && !seen.body.contains("Fix drift"));
    assert!(!seen.body.contains("data-form=\"rollback\""));
    let unknown = admin
        .call(Method::GET, "/environments/nowhere")
        .send()
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    let missing = admin.call(Method::GET, "/flags/no-such-flag").send().await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);

    // A change by the editor: the approver may approve it, its author may not.
    let id = open_toggle_change(&service).await;
    let listed = admin.call(Method::GET, "/changes").send().await;
    assert!(
        listed.body.contains(&format!("href=\"/changes/{id}\"")),
        "{}",
        listed.body
    );
    let approver = service.sign_in(APPROVER).await;
    let page = approver
        .call(Method::GET, &format!("/changes/{id}"))
        .send()
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(actions(&page), ["approve"], "{}", page.body);
    assert!(
        page.body.contains("<span class=\"add\">+"),
        "the diff: {}",
        page.body
    );
    let editor = service.sign_in(EDITOR).await;
    let own = editor
        .call(Method::GET, &format!("/changes/{id}"))
        .send()
        .await;
    assert_eq!(actions(&own), ["close"], "{}", own.body);
    // Approved through the API (as the button does): the editor may merge now.
    let approved = approver
        .page_request(Method::POST, &format!("/api/v1/changes/{id}/approve"))
        .send()
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    let own = editor
        .call(Method::GET, &format!("/changes/{id}"))
        .send()
        .await;
    assert_eq!(actions(&own), ["merge", "close"], "{}", own.body);
}

#[tokio::test]
async fn assets_are_content_hashed_cached_and_allowed_by_the_policy() {
    let service = service().await;
    let admin = service.sign_in(ADMIN).await;
    let page = admin.call(Method::GET, "/flags").send().await;
    let src = |attr: &str| {
        let rest = page.body.split(attr).nth(1).expect(attr);
        rest.split('"').next().unwrap().to_owned()
    };
    let script = src("<script type=\"module\" src=\"");
    let style = src("<link rel=\"stylesheet\" href=\"");
    for (url, kind, needle) in [
        (&script, "text/javascript", "X-CSRF-Token"),
        (&style, "text/css", "prefers-color-scheme"),
    ] {
        let name = url.strip_prefix("/console/assets/").expect(url);
        let parts: Vec<&str> = name.split('.').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert!(
            parts[1].len() == 12 && parts[1].chars().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
        // Served without a session (nothing secret), cached for a year.
        let asset = service.get(url).send().await;
        assert_eq!(asset.status, StatusCode::OK, "{url}");
        assert!(asset.header("content-type").unwrap().starts_with(kind));
        assert_eq!(
            asset.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert!(asset.body.contains(needle), "{url}");
        // Its name is its content's: sha256 prefix.
        let digest = sha2::Sha256::digest(asset.body.as_bytes());
        assert!(hex::encode(digest).starts_with(parts[1]), "{name}");
    }
    let stale = service
        .get("/console/assets/console.000000000000.js")
        .send()
        .await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
    // No inline script, no inline style attribute: the policy (`script-src 'self'`) holds.
    for path in ["/flags", "/flags/new-chart", "/changes"] {
        let page = admin.call(Method::GET, path).send().await;
        assert_eq!(page.body.matches("<script").count(), 1, "{path}");
        assert!(!page.body.contains(" style="), "{path}");
        assert!(!page.body.contains(" onclick="), "{path}");
    }
}

#[tokio::test]
async fn a_visitor_without_a_session_goes_to_the_sign_in_form() {
    let service = service().await;
    for path in ["/flags", "/flags/new-chart", "/changes", "/changes/1"] {
        let reply = service.get(path).send().await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(reply.header("location"), Some("/"), "{path}");
    }
}

#[tokio::test]
async fn a_reader_sees_no_mutating_controls_and_forged_posts_are_refused() {
    let service = service().await;
    let id = open_toggle_change(&service).await;
    let reader = service.sign_in(READER).await;
    for path in [
        "/flags".to_owned(),
        "/flags/new-chart".to_owned(),
        format!("/changes/{id}"),
    ] {
        let page = reader.call(Method::GET, &path).send().await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert_eq!(actions(&page), Vec::<&str>::new(), "{path}: {}", page.body);
        assert!(
            !page.body.contains("<button type=\"submit\">Open a change"),
            "{path}"
        );
    }
    let kill = "/api/v1/environments/staging/flags/new-chart/kill";
    let toggle = json!([{"op": "add", "path": "/environments/staging/enabled", "value": true}]);
    // The reader's own session, with its CSRF token and origin: no role.
    for (path, body) in [
        (kill.to_owned(), None),
        (format!("/api/v1/changes/{id}/approve"), None),
        (format!("/api/v1/changes/{id}/merge"), None),
        (format!("/api/v1/changes/{id}/close"), None),
        ("/api/v1/flags/new-chart".to_owned(), Some(&toggle)),
    ] {
        let mut call = reader.page_request(
            if body.is_some() {
                Method::PATCH
            } else {
                Method::POST
            },
            &path,
        );
        if let Some(body) = body {
            call = call
                .body(body.to_string(), "application/json-patch+json")
                .header("if-match", "\"0\"");
        }
        let reply = call.send().await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            reply.body
        );
    }
    // The admin's session: without the CSRF token, or from another origin.
    let admin = service.sign_in(ADMIN).await;
    let bare = admin
        .call(Method::POST, kill)
        .header("origin", &service.origin())
        .send()
        .await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN, "{}", bare.body);
    let foreign = admin
        .page_request(Method::POST, kill)
        .header("origin", "https://evil.example")
        .send()
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN, "{}", foreign.body);
    // And nothing was killed by any of them.
    let shown = service
        .get("/api/v1/environments/staging")
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(shown["killed"], json!([]), "{shown}");
}

#[tokio::test]
async fn what_users_wrote_is_escaped() {
    let service = service().await;
    let opened = service
        .post("/api/v1/changes")
        .bearer(EDITOR)
        .json(&json!({"title": "<script>alert(1)</script>", "description": "\"><img src=x onerror=alert(2)>"}))
        .send()
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let id = opened.json()["id"].as_u64().unwrap();
    let admin = service.sign_in(ADMIN).await;
    for path in ["/changes".to_owned(), format!("/changes/{id}")] {
        let page = admin.call(Method::GET, &path).send().await;
        assert!(
            page.body
                .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("<script>alert"), "{path}");
        assert!(!page.body.contains("<img src=x"), "{path}");
    }
}
