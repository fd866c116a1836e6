//! OIDC sign-in against a real OpenID provider: the npm package `oidc-provider`, started once
//! for this binary by `tests/oidc/provider.mjs` on a free loopback port. The test walks the
//! authorization code flow as a browser would: the service's `/auth/oidc/login` redirect, the
//! provider's login form (real HTTP, its cookies kept), the redirect back to the service's
//! callback, then the page and the API with the session and its CSRF token.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Browser, Reply, Service, repo_root};

const CALLBACK: &str = "http://flags.test/auth/oidc/callback";

/// The provider process (ends when this binary does: its stdin closes) and its issuer.
struct Provider {
    _child: Child,
    issuer: String,
    secret_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn provider() -> &'static Provider {
    static PROVIDER: OnceLock<Provider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let mut child = Command::new("node")
            .arg(repo_root().join("tests/oidc/provider.mjs"))
            .env("REDIRECT_URI", CALLBACK)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node tests/oidc/provider.mjs (run `cargo xtask setup` for node_modules)");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        out.read_line(&mut line).expect("the provider's first line");
        // Whatever it prints later goes to the test's output (a closed pipe would stop it).
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                eprintln!("oidc-provider: {line}");
            }
        });
        let ready: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the provider did not start ({e}): {line:?}"));
        let dir = tempfile::tempdir().expect("scratch dir");
        let secret_file = dir.path().join("oidc-client.secret");
        std::fs::write(&secret_file, "flags-client-secret\n").expect("secret file");
        Provider {
            _child: child,
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            secret_file,
            _dir: dir,
        }
    })
}

/// A service with change requests on, signing in through the provider as `client_id`:
/// `editors` may edit everywhere, `viewers` only read.
async fn service(client_id: &str) -> Service {
    let provider = provider();
    Service::builder()
        .git()
        .env("prod", "")
        .env("staging", "")
        .token("reader", "reader-secret", "{\"*\": [read]}")
        .config(&format!(
            "oidc:\n  issuer: {}\n  name: Test IdP\n  client_id: {client_id}\n  client_secret_file: {}\n  \
             redirect_url: {CALLBACK}\n  scopes: [openid, email, profile, groups]\n  \
             roles:\n    groups:\n      editors: {{\"*\": [edit, approve]}}\n      viewers: {{\"*\": [read]}}\n",
            provider.issuer,
            provider.secret_file.display()
        ))
        .start()
        .await
}

/// The provider's side of a browser: its cookies (name -> value) and no redirect following.
struct ProviderBrowser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl ProviderBrowser {
    fn new() -> ProviderBrowser {
        ProviderBrowser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> (StatusCode, String, String) {
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let answer = request
            .header("cookie", jar.join("; "))
            .send()
            .await
            .expect("the provider answers");
        for set in answer.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.insert(name.to_owned(), value.to_owned());
        }
        let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
        let location = answer
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, location, answer.text().await.unwrap_or_default())
    }

    /// Follows the provider's redirects from `url`, filling its login form as `user`, until it
    /// sends the browser back to the service: that callback URL.
    async fn sign_in(&mut self, mut url: String, user: &str) -> String {
        for _ in 0..10 {
            if url.starts_with(CALLBACK) {
                return url;
            }
            let url_ = if url.starts_with('/') {
                format!("{}{url}", provider().issuer)
            } else {
                url.clone()
            };
            let (status, location, body) = self.send(self.http.get(&url_)).await;
            if url_.contains("/interaction/") && status == StatusCode::OK {
                assert!(body.contains("name=password"), "the login form: {body}");
                let form = format!("login={user}&password={user}-password");
                let post = self
                    .http
                    .post(&url_)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form);
                let (status, location, body) = self.send(post).await;
                assert_eq!(status, StatusCode::SEE_OTHER, "login: {body}");
                url = location;
                continue;
            }
            assert!(status.is_redirection(), "{url_}: {status} {body}");
            url = location;
        }
        panic!("the provider never sent the browser back to {CALLBACK}")
    }
}

/// The service's `/auth/oidc/login`: the redirect to the provider and the `flags_oidc` cookie.
async fn start(service: &Service) -> (String, String) {
    let reply = service.get("/auth/oidc/login").send().await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{reply:?}");
    let location = reply.header("location").expect("a Location").to_owned();
    assert!(location.starts_with(&provider().issuer), "{location}");
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
    ] {
        assert!(location.contains(part), "{part} in {location}");
    }
    let pending = reply.cookie("flags_oidc").expect("the flags_oidc cookie");
    (location, pending)
}

/// The service's answer to the provider's redirect back (through a proxy that says HTTPS).
async fn callback(service: &Service, url: &str, pending: &str) -> Reply {
    let path = url.strip_prefix("http://flags.test").expect("the callback");
    service
        .get(path)
        .header("cookie", &format!("flags_oidc={pending}"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
}

/// Signs `user` in through the provider: the callback's answer.
async fn sign_in(service: &Service, user: &str) -> Reply {
    let (location, pending) = start(service).await;
    let url = ProviderBrowser::new().sign_in(location, user).await;
    callback(service, &url, &pending).await
}

/// The browser `reply` (a successful callback) signed in.
async fn signed_in<'a>(service: &'a Service, reply: &Reply) -> Browser<'a> {
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.header("location"), Some("/"));
    let line = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("flags_session=") && !c.starts_with("flags_session=;"))
        .unwrap_or_else(|| panic!("a session cookie: {reply:?}"))
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(line.contains(attribute), "{attribute} in {line}");
    }
    service
        .browser(reply.cookie("flags_session").unwrap())
        .await
}

fn no_session(reply: &Reply) {
    assert!(
        reply.cookie("flags_session").is_none(),
        "no session cookie: {reply:?}"
    );
}

/// A change of `new-chart`'s description, from the page with `browser`'s session.
async fn edit(browser: &Browser<'_>) -> Reply {
    let flag = browser
        .call(Method::GET, "/api/v1/flags/new-chart")
        .send()
        .await;
    assert_eq!(flag.status, StatusCode::OK, "{}", flag.body);
    let etag = flag.header("etag").expect("an ETag").to_owned();
    browser
        .page_request(Method::PATCH, "/api/v1/flags/new-chart")
        .header("if-match", &etag)
        .body(
            json!([{"op": "replace", "path": "/description", "value": "Edited through SSO"}])
                .to_string(),
            "application/json-patch+json",
        )
        .send()
        .await
}

#[tokio::test]
async fn an_editor_signs_in_through_the_provider_and_authors_a_change_that_only_another_identity_may_approve()
 {
    let service = service("flags").await;
    let page = service.get("/").send().await;
    assert!(
        page.body
            .contains("href=/auth/oidc/login>Sign in with Test IdP</a>"),
        "{}",
        page.body
    );

    let alice = signed_in(&service, &sign_in(&service, "alice").await).await;
    let home = alice.call(Method::GET, "/").send().await;
    assert!(
        home.body.contains("<b id=whoami>alice@example.com</b>"),
        "{}",
        home.body
    );
    let reply = edit(&alice).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let branch = reply.json()["change"]["branch"]
        .as_str()
        .expect("a branch")
        .to_owned();
    let author = crate::harness::git(
        &service.remote(),
        &["log", "-1", "--format=%an <%ae>", &branch],
    );
    assert_eq!(author.trim(), "Alice Editor <alice@example.com>");
    // The change's record (its audit trail) names her by her e-mail, and she may not approve
    // what she wrote (editors hold `approve` too).
    let id = reply.json()["change"]["id"].as_u64().expect("an id");
    let change = alice
        .call(Method::GET, &format!("/api/v1/changes/{id}"))
        .send()
        .await
        .json();
    assert_eq!(change["author"], "alice@example.com", "{change}");
    assert_eq!(change["events"][0]["by"], "alice@example.com", "{change}");
    let own = alice
        .page_request(Method::POST, &format!("/api/v1/changes/{id}/approve"))
        .send()
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.body);
    assert!(own.body.contains("wrote a commit"), "{}", own.body);
    // Without the CSRF token the same session changes nothing.
    let forged = alice
        .call(Method::PATCH, "/api/v1/flags/new-chart")
        .body("[]", "application/json-patch+json")
        .send()
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);

    let bob = signed_in(&service, &sign_in(&service, "bob").await).await;
    assert_eq!(
        bob.call(Method::GET, "/api/v1/flags").send().await.status,
        StatusCode::OK
    );
    let refused = edit(&bob).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let approve = bob
        .page_request(Method::POST, &format!("/api/v1/changes/{id}/approve"))
        .send()
        .await;
    assert_eq!(approve.status, StatusCode::FORBIDDEN, "{}", approve.body);
    // The mapping is read at every request: `viewers` given `edit` in serve.yaml, bob's same
    // session may edit at once.
    let file = service.path().join("serve.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap();
    // File times are as coarse as the kernel's tick: let one pass so the change is seen.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(
        &file,
        yaml.replace(
            "viewers: {\"*\": [read]}",
            "viewers: {\"*\": [edit, approve]}",
        ),
    )
    .unwrap();
    let allowed = edit(&bob).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.body);
    // Another identity's approval of alice's change counts.
    let approved = bob
        .page_request(Method::POST, &format!("/api/v1/changes/{id}/approve"))
        .send()
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    let given = &approved.json()["approvals"]["given"];
    assert_eq!(given[0]["by"], "bob@example.org", "{}", approved.body);

    // Sign-out ends the session.
    let out = alice
        .page_request(Method::POST, "/logout")
        .form(&[("csrf", &alice.csrf)])
        .send()
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    let after = alice.call(Method::GET, "/api/v1/flags").send().await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
}

#[tokio::test]
async fn an_identity_mapped_to_no_role_gets_a_page_saying_so_and_no_session() {
    let service = service("flags").await;
    let reply = sign_in(&service, "mallory").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(
        reply.body.contains("mallory@elsewhere.test"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("no role is mapped"), "{}", reply.body);
    no_session(&reply);
}

#[tokio::test]
async fn a_tampered_state_a_replayed_callback_or_a_foreign_browser_is_refused() {
    let service = service("flags").await;
    let (location, pending) = start(&service).await;
    let url = ProviderBrowser::new().sign_in(location, "alice").await;
    let tampered = url.replace("state=", "state=x");
    let reply = callback(&service, &tampered, &pending).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.body.contains("state"), "{}", reply.body);
    no_session(&reply);
    // The sign-in is spent: the genuine answer after a tampered one starts nothing either.
    let replay = callback(&service, &url, &pending).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);
    no_session(&replay);

    // The provider's own refusal is shown, escaped.
    let (_, pending) = start(&service).await;
    let refusal = "http://flags.test/auth/oidc/callback?error=access_denied&error_description=%3Cscript%3Ex%3C/script%3E";
    let denied = callback(&service, refusal, &pending).await;
    assert_eq!(denied.status, StatusCode::BAD_REQUEST, "{}", denied.body);
    assert!(
        denied
            .body
            .contains("access_denied (&lt;script&gt;x&lt;/script&gt;)"),
        "{}",
        denied.body
    );
    no_session(&denied);

    // A callback in a browser that did not start the sign-in (login CSRF).
    let (location, _) = start(&service).await;
    let url = ProviderBrowser::new().sign_in(location, "alice").await;
    let foreign = callback(&service, &url, "someone-elses").await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST, "{}", foreign.body);
    assert!(foreign.body.contains("start again"), "{}", foreign.body);
    no_session(&foreign);
}

#[tokio::test]
async fn id_tokens_with_a_wrong_nonce_audience_signature_or_expiry_are_refused() {
    let mut wrong = Vec::new();
    for (client, why) in [
        ("flags-wrong-nonce", "nonce"),
        ("flags-wrong-aud", "audience"),
        ("flags-bad-sig", "Signature verification failed"),
        ("flags-expired", "Expired"),
    ] {
        let service = service(client).await;
        let reply = sign_in(&service, "alice").await;
        let refused = reply.status == StatusCode::UNAUTHORIZED
            && reply.body.contains("ID token is not valid")
            && reply.body.contains(why)
            && reply.cookie("flags_session").is_none();
        if !refused {
            wrong.push(format!("{client}: {} {}", reply.status, reply.body));
        }
    }
    assert!(
        wrong.is_empty(),
        "accepted or refused for another reason:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn an_unreachable_provider_gets_a_page_naming_its_discovery_document() {
    let dir = tempfile::tempdir().expect("scratch dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s").unwrap();
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let service = Service::builder()
        .token("reader", "reader-secret", "{\"*\": [read]}")
        .config(&format!(
            "oidc:\n  issuer: http://127.0.0.1:{port}\n  client_id: flags\n  client_secret_file: {}\n  \
             redirect_url: {CALLBACK}\n",
            secret.display()
        ))
        .start()
        .await;
    let reply = service.get("/auth/oidc/login").send().await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert!(
        reply.body.contains(&format!(
            "http://127.0.0.1:{port}/.well-known/openid-configuration) cannot be read"
        )),
        "{}",
        reply.body
    );
    assert!(reply.cookie("flags_oidc").is_none(), "{reply:?}");
}
