//! The status page in headless Chromium (`tests/browser_serve/status_page.test.mjs`, driven by
//! playwright-core as `tests/browser/` is): `publisher serve` on real SeaweedFS with the example
//! flags pushed to prod and staging, prod's checkout-v2 rollout ticked forward once and (its
//! health check failing) back once by the real CLI, a flag expired in the checkout, and a
//! telemetry batch for beta-banner. Signed in through its form with a token that reads prod
//! only, the page shows prod (not staging): the version's age, the rollout's stage and its SVG
//! chart, the expired lint, the audit rows naming the tokens, the evaluations chart; after a
//! kill through the API the new version; `?now=` 60 days ahead the telemetry lint.

use std::process::Command;

use integration_tests::serve::{Service, copy_dir, write_tokens};
use integration_tests::{SeaweedFs, publisher_bin, repo_root};

const ADMIN: &str = "page-admin-secret-0123";
const READER: &str = "page-reader-secret-0123";
const ONCALL: &str = "page-oncall-secret-0123";
const EDGE: &str = "page-edge-secret-0123";

#[test]
fn the_status_page_shows_the_deployment_and_changes_after_a_kill() {
    let s3 = SeaweedFs::shared();
    let dir = tempfile::tempdir().unwrap();
    let checkout = dir.path().join("checkout");
    copy_dir(&repo_root().join("examples/flags"), &checkout);
    // The rollout: no soak, and a health check this test turns on and off.
    let healthy = dir.path().join("healthy");
    let rollout = checkout.join("flags/checkout-v2.yaml");
    let text = std::fs::read_to_string(&rollout)
        .unwrap()
        .replace("soak: 1h", "soak: 0s")
        .replace("soak: 4h", "soak: 0s")
        .replace(
            "health: { url: \"https://status.example.com/checkout/healthy\" }",
            &format!("health: {{ command: \"test -e {}\" }}", healthy.display()),
        );
    assert!(text.contains("test -e"), "the example's health check moved");
    std::fs::write(&rollout, text).unwrap();
    // A flag past its expiry date: a lint, not an error (the push goes through).
    let expired = std::fs::read_to_string(checkout.join("flags/beta-banner.yaml"))
        .unwrap()
        .replace("key: beta-banner", "key: old-promo")
        .replace("expires: 2027-02-28", "expires: 2020-01-01")
        .replace("review-by: 2027-01-15\n", "");
    std::fs::write(checkout.join("flags/old-promo.yaml"), expired).unwrap();
    write_tokens(
        &dir.path().join("tokens.yaml"),
        &[
            ("admin", ADMIN, "{\"*\": [admin]}"),
            ("reader", READER, "{prod: [read]}"),
            ("oncall", ONCALL, "{prod: [kill]}"),
            ("edge", EDGE, "{prod: [telemetry]}"),
        ],
    );
    let store = s3.bucket("serve-page");
    let service = Service::start(
        &[
            "--store",
            &store,
            "--flags",
            checkout.to_str().unwrap(),
            "--tokens",
            dir.path().join("tokens.yaml").to_str().unwrap(),
            "--env",
            "prod",
            "--env",
            "staging",
        ],
        &s3.aws_env(),
    );
    for env in ["prod", "staging"] {
        let pushed = service.request(
            "POST",
            &format!("/api/v1/environments/{env}/push"),
            Some(ADMIN),
            None,
        );
        assert_eq!(pushed.status, 200, "{}", pushed.body);
    }
    let tick = |expect: &str| {
        let output = Command::new(publisher_bin())
            .args(["rollout", "tick", "--env", "prod", "--store", &store])
            .args(["--author", "cron"])
            .envs(s3.aws_env())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(expect),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    std::fs::write(&healthy, "").unwrap();
    tick("stage 1 -> 2");
    std::fs::remove_file(&healthy).unwrap();
    tick("stage 2 -> 1");

    let batch = serde_json::json!({"environment": "prod", "counts": [
        {"flag": "beta-banner", "variant": "on", "count": 5},
        {"flag": "beta-banner", "variant": "off", "count": 3},
    ]});
    let sent = service.request("POST", "/api/v1/telemetry", Some(EDGE), Some(&batch));
    assert_eq!(sent.status, 202, "{}", sent.body);
    let checked = service.request(
        "POST",
        "/api/v1/environments/prod/drift",
        Some(READER),
        None,
    );
    assert_eq!(checked.status, 200, "{}", checked.body);
    let later = (chrono::Utc::now() + chrono::Duration::days(60)).to_rfc3339();

    let output = Command::new("node")
        .args(["--test", "tests/browser_serve/"])
        .env("SERVE_URL", &service.base)
        .env("READ_TOKEN", READER)
        .env("KILL_TOKEN", ONCALL)
        .env("LATER", later)
        .current_dir(repo_root())
        .output()
        .expect("run node --test tests/browser_serve/");
    assert!(
        output.status.success(),
        "browser test failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
