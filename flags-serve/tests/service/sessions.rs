//! The page's sign-in is a server-side session, never the bearer secret in a cookie; a session
//! reads as it is and changes things only with its CSRF token, from the service's own origin.

use axum::http::{Method, StatusCode};

use crate::harness::{HOST, ORIGIN, Service};

const ADMIN: &str = "admin-secret-0123";
const ONCALL: &str = "oncall-secret-0123";
const KILL: &str = "/api/v1/environments/prod/flags/beta-banner/kill";

/// Prod pushed (by the admin token), with an `oncall` token that may kill there.
async fn deployed(config: &str) -> Service {
    let service = Service::builder()
        .token("admin", ADMIN, "{\"*\": [admin]}")
        .token("oncall", ONCALL, "{prod: [kill]}")
        .config(config)
        .start()
        .await;
    let pushed = service
        .post("/api/v1/environments/prod/push")
        .bearer(ADMIN)
        .send()
        .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.body);
    service
}

fn assert_problem(reply: &crate::harness::Reply, status: StatusCode, detail: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains(detail)),
        "{body}"
    );
}

#[tokio::test]
async fn the_token_in_a_cookie_authorizes_nothing() {
    let service = deployed("").await;
    let cookie = format!("flags_token={ONCALL}");
    let kill = service
        .post(KILL)
        .header("cookie", &cookie)
        .header("origin", ORIGIN)
        .send()
        .await;
    assert_problem(&kill, StatusCode::UNAUTHORIZED, "bearer token");
    let read = service
        .get("/api/v1/environments/prod")
        .header("cookie", &cookie)
        .send()
        .await;
    assert_eq!(read.status, StatusCode::UNAUTHORIZED, "{}", read.body);
    // The page does not sign it in either, and tells the browser to drop it.
    let page = service.get("/").header("cookie", &cookie).send().await;
    assert!(page.body.contains("name=token"), "{}", page.body);
    assert!(!page.body.contains("whoami"), "{}", page.body);
    let dropped = page.set_cookie("flags_token").unwrap_or_default();
    assert!(dropped.contains("Max-Age=0"), "{:?}", page.set_cookies());
}

#[tokio::test]
async fn signing_in_sets_a_random_session_cookie_and_never_the_token() {
    let service = deployed("").await;
    let reply = service
        .post("/")
        .header("origin", ORIGIN)
        .form(&[("token", ONCALL)])
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.header("location"), Some("/"));
    let cookies = reply.set_cookies().join("\n");
    assert!(
        !cookies.contains(ONCALL),
        "the secret is in a cookie: {cookies}"
    );
    let line = reply.set_cookie("flags_session").expect("flags_session");
    let mut attributes: Vec<&str> = line.split("; ").skip(1).collect();
    attributes.sort_unstable();
    assert_eq!(
        attributes,
        ["HttpOnly", "Path=/", "SameSite=Strict"],
        "{line}"
    );
    let id = reply.cookie("flags_session").unwrap();
    assert!(id.len() >= 22, "at least 128 bits: {id}");
    // Another sign-in gets another id.
    let again = service.sign_in(ONCALL).await;
    assert_ne!(again.session, id);
    // A wrong token signs nothing in.
    let wrong = service.post("/").form(&[("token", "guess")]).send().await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    assert!(wrong.set_cookie("flags_session").is_none());
    assert!(wrong.body.contains("Unknown token"), "{}", wrong.body);
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_service_is_reached_over_https() {
    let https = deployed("public_url: https://flags.example.com").await;
    let reply = https
        .post("/")
        .header("origin", "https://flags.example.com")
        .form(&[("token", ONCALL)])
        .send()
        .await;
    let line = reply.set_cookie("flags_session").expect("flags_session");
    assert!(line.ends_with("; Secure"), "{line}");

    let proxied = deployed("").await;
    let reply = proxied
        .post("/")
        .header("x-forwarded-proto", "https")
        .form(&[("token", ONCALL)])
        .send()
        .await;
    let line = reply.set_cookie("flags_session").expect("flags_session");
    assert!(line.ends_with("; Secure"), "{line}");
}

#[tokio::test]
async fn a_session_reads_the_page_and_the_api() {
    let service = deployed("").await;
    let browser = service.sign_in(ONCALL).await;
    let page = browser.call(Method::GET, "/").send().await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<b id=whoami>oncall</b>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("name=csrf value=\"{}\"", browser.csrf)),
        "the sign-out form carries the CSRF token: {}",
        page.body
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let shown = browser
        .call(Method::GET, "/api/v1/environments/prod")
        .send()
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.json()["version"], 1);
    // A bearer caller's page has no session, so no CSRF token and no sign-out form.
    let bearer = service.get("/").bearer(ONCALL).send().await;
    assert!(bearer.body.contains("whoami") && bearer.meta("csrf-token").is_none());
}

#[tokio::test]
async fn a_session_changes_nothing_without_its_csrf_token() {
    let service = deployed("").await;
    let browser = service.sign_in(ONCALL).await;
    let bare = browser
        .call(Method::POST, KILL)
        .header("origin", ORIGIN)
        .send()
        .await;
    assert_problem(&bare, StatusCode::FORBIDDEN, "X-CSRF-Token");
    let other = service.sign_in(ONCALL).await;
    let wrong = browser
        .call(Method::POST, KILL)
        .header("origin", ORIGIN)
        .header("x-csrf-token", &other.csrf)
        .send()
        .await;
    assert_problem(&wrong, StatusCode::FORBIDDEN, "X-CSRF-Token");
    // Any POST, even one a reader may make (a drift check writes the drift trail).
    let drift = browser
        .call(Method::POST, "/api/v1/environments/prod/drift")
        .send()
        .await;
    assert_problem(&drift, StatusCode::FORBIDDEN, "X-CSRF-Token");
    let history = service
        .get("/api/v1/environments/prod")
        .bearer(ADMIN)
        .send()
        .await;
    assert_eq!(history.json()["version"], 1, "nothing was killed");

    let killed = browser.page_request(Method::POST, KILL).send().await;
    assert_eq!(killed.status, StatusCode::OK, "{}", killed.body);
    assert_eq!(killed.json()["version"], 2);
    // Without Origin and Referer (some clients send neither), the CSRF token suffices.
    let unkill = browser
        .call(
            Method::POST,
            "/api/v1/environments/prod/flags/beta-banner/unkill",
        )
        .header("x-csrf-token", &browser.csrf)
        .send()
        .await;
    assert_eq!(unkill.status, StatusCode::OK, "{}", unkill.body);
    // The audit names the session's token.
    let audit = service
        .get("/api/v1/environments/prod/audit")
        .bearer(ADMIN)
        .send()
        .await
        .json();
    assert_eq!(audit["entries"][0]["who"], "oncall", "{audit}");
}

#[tokio::test]
async fn a_session_change_from_another_origin_is_refused() {
    let service = deployed("").await;
    let browser = service.sign_in(ONCALL).await;
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("origin", "https://flags.test.evil.example"),
        ("referer", "https://evil.example/flags.test"),
    ] {
        let refused = browser
            .call(Method::POST, KILL)
            .header("x-csrf-token", &browser.csrf)
            .header(header, value)
            .send()
            .await;
        assert_problem(&refused, StatusCode::FORBIDDEN, "not this service's");
    }
    let referer = browser
        .call(Method::POST, KILL)
        .header("x-csrf-token", &browser.csrf)
        .header("referer", &format!("{ORIGIN}/?now=2027-01-01T00:00:00Z"))
        .send()
        .await;
    assert_eq!(referer.status, StatusCode::OK, "{}", referer.body);
    assert_eq!(HOST, "flags.test");

    // With `public_url`, its origin is the only one, whatever the Host says.
    let public = deployed("public_url: https://flags.example.com/").await;
    let browser = public.sign_in(ONCALL).await;
    let host_only = browser
        .call(Method::POST, KILL)
        .header("x-csrf-token", &browser.csrf)
        .header("origin", ORIGIN)
        .send()
        .await;
    assert_problem(&host_only, StatusCode::FORBIDDEN, "not this service's");
    let own = browser
        .call(Method::POST, KILL)
        .header("x-csrf-token", &browser.csrf)
        .header("origin", "https://flags.example.com")
        .send()
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
}

#[tokio::test]
async fn a_sign_in_form_posted_from_another_site_is_refused() {
    let service = deployed("").await;
    let reply = service
        .post("/")
        .header("origin", "https://evil.example")
        .form(&[("token", ONCALL)])
        .send()
        .await;
    assert_problem(&reply, StatusCode::FORBIDDEN, "not this service's");
    assert!(reply.set_cookie("flags_session").is_none());
}

#[tokio::test]
async fn a_bearer_header_decides_whatever_cookies_come_along() {
    let service = deployed("").await;
    let browser = service.sign_in(ONCALL).await;
    // A bad bearer secret is 401 even beside a live session.
    let bad = browser
        .page_request(Method::POST, KILL)
        .bearer("not-a-token")
        .send()
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED, "{}", bad.body);
    // A good one needs no CSRF token.
    let good = service.post(KILL).bearer(ONCALL).send().await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.body);
}

#[tokio::test]
async fn signing_out_ends_the_session_only_with_its_csrf_token() {
    let service = deployed("").await;
    let browser = service.sign_in(ONCALL).await;
    let forged = browser
        .call(Method::POST, "/logout")
        .header("origin", ORIGIN)
        .send()
        .await;
    assert_problem(&forged, StatusCode::FORBIDDEN, "X-CSRF-Token");
    let still = browser
        .call(Method::GET, "/api/v1/environments/prod")
        .send()
        .await;
    assert_eq!(still.status, StatusCode::OK, "{}", still.body);

    let out = browser
        .call(Method::POST, "/logout")
        .header("origin", ORIGIN)
        .form(&[("csrf", &browser.csrf)])
        .send()
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    let cleared = out.set_cookie("flags_session").expect("cleared");
    assert!(cleared.starts_with("flags_session=;") && cleared.contains("Max-Age=0"));
    let after = browser
        .call(Method::GET, "/api/v1/environments/prod")
        .send()
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
    let kill = browser.page_request(Method::POST, KILL).send().await;
    assert_eq!(kill.status, StatusCode::UNAUTHORIZED, "{}", kill.body);
    let page = browser.call(Method::GET, "/").send().await;
    assert!(
        page.body.contains("name=token"),
        "signed out: {}",
        page.body
    );
}

#[tokio::test]
async fn a_removed_or_rotated_token_ends_what_its_sessions_may_do() {
    let service = deployed("").await;
    let removed = service.sign_in(ONCALL).await;
    let rotated = service.sign_in(ADMIN).await;
    // File times are as coarse as the kernel's tick: let one pass so the change is seen.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    service.write_tokens(&[("admin", "admin-secret-0124", "{\"*\": [admin]}")]);
    for browser in [&removed, &rotated] {
        let read = browser
            .call(Method::GET, "/api/v1/environments/prod")
            .send()
            .await;
        assert_eq!(read.status, StatusCode::UNAUTHORIZED, "{}", read.body);
        let kill = browser.page_request(Method::POST, KILL).send().await;
        assert_eq!(kill.status, StatusCode::UNAUTHORIZED, "{}", kill.body);
    }
    // Roles are the file's as it is now: a token that lost a role loses it in its sessions.
    let fresh = service.sign_in("admin-secret-0124").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    service.write_tokens(&[("admin", "admin-secret-0124", "{prod: [read]}")]);
    let kill = fresh.page_request(Method::POST, KILL).send().await;
    assert_eq!(kill.status, StatusCode::FORBIDDEN, "{}", kill.body);
    let read = fresh
        .call(Method::GET, "/api/v1/environments/prod")
        .send()
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
}
