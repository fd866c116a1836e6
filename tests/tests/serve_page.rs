//! The status page in headless Chromium (`tests/browser_serve/status_page.test.mjs`, driven by
//! playwright-core as `tests/browser/` is): `publisher serve` on real SeaweedFS with the example
//! flags pushed; the page, signed in through its form, shows the deployed version, and after a
//! kill through the API, the new version and the killed flag.

use std::process::Command;

use integration_tests::serve::{Service, copy_dir, write_tokens};
use integration_tests::{SeaweedFs, repo_root};

const ADMIN: &str = "page-admin-secret-0123";
const READER: &str = "page-reader-secret-0123";
const ONCALL: &str = "page-oncall-secret-0123";

#[test]
fn the_status_page_shows_the_deployment_and_changes_after_a_kill() {
    let s3 = SeaweedFs::shared();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &repo_root().join("examples/flags"),
        &dir.path().join("checkout"),
    );
    write_tokens(
        &dir.path().join("tokens.yaml"),
        &[
            ("admin", ADMIN, "{\"*\": [admin]}"),
            ("reader", READER, "{prod: [read]}"),
            ("oncall", ONCALL, "{prod: [kill]}"),
        ],
    );
    let service = Service::start(
        &[
            "--store",
            &s3.bucket("serve-page"),
            "--flags",
            dir.path().join("checkout").to_str().unwrap(),
            "--tokens",
            dir.path().join("tokens.yaml").to_str().unwrap(),
            "--env",
            "prod",
        ],
        &s3.aws_env(),
    );
    let pushed = service.request("POST", "/api/v1/environments/prod/push", Some(ADMIN), None);
    assert_eq!(pushed.status, 200, "{}", pushed.body);
    let output = Command::new("node")
        .args(["--test", "tests/browser_serve/"])
        .env("SERVE_URL", &service.base)
        .env("READ_TOKEN", READER)
        .env("KILL_TOKEN", ONCALL)
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
