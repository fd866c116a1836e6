//! Drift through `publisher serve`: a flag edited in the service's checkout after a push is
//! reported as Git-vs-store drift (and on `/metrics`), a read token cannot fix it, a publish
//! token's fix publishes the checkout audited under its name, and the next check is in sync;
//! where approval is required, a fix does not publish the checkout (a push proposes it).

use integration_tests::git;
use integration_tests::serve::{Service, Setup};
use serde_json::Value;

const PUBLISHER: &str = "publisher-secret-0123456789";
const READER: &str = "reader-secret-0123456789";
const LEAD: &str = "lead-secret-0123456789";

fn drift(service: &Service, token: &str) -> Value {
    let reply = service.request("POST", "/api/v1/environments/dev/drift", Some(token), None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

fn metric(service: &Service) -> Option<String> {
    let text = service.request("GET", "/metrics", None, None).body;
    text.lines()
        .find(|l| l.starts_with("flags_drift_status{env=\"dev\"}"))
        .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
}

#[test]
fn drift_is_checked_and_fixed_through_the_service_by_the_right_token() {
    let setup = Setup::new(&[
        ("ci", PUBLISHER, "{dev: [publish]}"),
        ("reader", READER, "{dev: [read]}"),
    ]);
    let checkout = setup.checkout();
    git(&checkout, &["init", "-q", "-b", "main"]);
    git(&checkout, &["config", "user.name", "Dev"]);
    git(&checkout, &["config", "user.email", "dev@example.com"]);
    git(&checkout, &["add", "-A"]);
    git(&checkout, &["commit", "-q", "-m", "flags"]);
    let store = setup.path().join("store").display().to_string();
    let service = setup.serve(&store, &[], &[]);
    let pushed = service.request(
        "POST",
        "/api/v1/environments/dev/push",
        Some(PUBLISHER),
        None,
    );
    assert_eq!(pushed.status, 200, "{}", pushed.body);
    let report = drift(&service, READER);
    assert_eq!(report["status"], "in_sync", "{report}");
    assert_eq!(metric(&service).as_deref(), Some("0"));

    // A commit lands in the checkout without being pushed: Git is ahead of the store.
    let file = checkout.join("flags/beta-banner.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replacen("  dev:\n    enabled: true", "  dev:\n    enabled: false", 1);
    assert_ne!(
        text, edited,
        "examples/flags/flags/beta-banner.yaml changed shape"
    );
    std::fs::write(&file, edited).unwrap();
    git(&checkout, &["commit", "-q", "-am", "banner off"]);

    let report = drift(&service, READER);
    assert_eq!(report["status"], "drift", "{report}");
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["layer"] == "git" && f["against"] == "store"),
        "{report}"
    );
    assert!(
        report.to_string().contains("beta-banner"),
        "names the flag: {report}"
    );
    assert_eq!(metric(&service).as_deref(), Some("1"));

    let refused = service.request(
        "POST",
        "/api/v1/environments/dev/drift/fix",
        Some(READER),
        None,
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    let anonymous = service.request("POST", "/api/v1/environments/dev/drift", None, None);
    assert_eq!(anonymous.status, 401);

    let fixed = service.request(
        "POST",
        "/api/v1/environments/dev/drift/fix",
        Some(PUBLISHER),
        None,
    );
    assert_eq!(fixed.status, 200, "{}", fixed.body);
    let fixed = fixed.json();
    assert_eq!(fixed["after"]["status"], "in_sync", "{fixed}");
    let audit = service
        .request("GET", "/api/v1/environments/dev/audit", Some(READER), None)
        .json();
    assert_eq!(
        audit["entries"][0]["who"], "ci",
        "the fix is audited as the token: {audit}"
    );
    assert_eq!(audit["entries"][0]["version"], 2, "{audit}");
    assert_eq!(drift(&service, READER)["status"], "in_sync");
    assert_eq!(metric(&service).as_deref(), Some("0"));
}

/// A drift fix is no way around an approval: in an approval environment it leaves Git's newer
/// flags unpublished (and says why); the push it points to becomes a pending change.
#[test]
fn a_drift_fix_does_not_bypass_approval() {
    let setup = Setup::new(&[
        ("ci", PUBLISHER, "{prod: [publish]}"),
        ("lead", LEAD, "{prod: [approve]}"),
    ]);
    let checkout = setup.checkout();
    git(&checkout, &["init", "-q", "-b", "main"]);
    git(&checkout, &["config", "user.name", "Dev"]);
    git(&checkout, &["config", "user.email", "dev@example.com"]);
    git(&checkout, &["add", "-A"]);
    git(&checkout, &["commit", "-q", "-m", "flags"]);
    let store = setup.path().join("store").display().to_string();
    let config = setup.write(
        "serve.yaml",
        "environments: [{name: prod, approval: {ttl: 1h}}]\n",
    );
    let service = setup.serve(&store, &["--config", &config], &[]);
    let post = |path: &str, token: &str| {
        service.request(
            "POST",
            &format!("/api/v1/environments/prod/{path}"),
            Some(token),
            None,
        )
    };
    let proposed = post("push", PUBLISHER);
    assert_eq!(proposed.status, 202, "{}", proposed.body);
    let id = proposed.json()["pending"]["id"].as_u64().unwrap();
    let approved = post(&format!("approvals/{id}/approve"), LEAD);
    assert_eq!(approved.status, 200, "{}", approved.body);

    let file = checkout.join("flags/beta-banner.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("default: off", "default: on")).unwrap();
    git(&checkout, &["commit", "-q", "-am", "banner on"]);

    let fixed = post("drift/fix", PUBLISHER);
    assert_eq!(fixed.status, 200, "{}", fixed.body);
    let fixed = fixed.json();
    assert_eq!(fixed["after"]["status"], "drift", "still drifting: {fixed}");
    let actions = fixed["actions"].as_array().unwrap();
    assert!(
        actions.iter().all(|a| a["kind"] != "publish_from_git"),
        "{fixed}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a["kind"] == "skipped"
                && a["detail"].as_str().unwrap().contains("needs approval")),
        "{fixed}"
    );
    let env = service
        .request("GET", "/api/v1/environments/prod", Some(PUBLISHER), None)
        .json();
    assert_eq!(env["version"], 1, "nothing published: {env}");
    assert_eq!(post("push", PUBLISHER).status, 202, "a push proposes it");
}
