//! Flags as resources and change requests, against a real bare Git remote on disk: every
//! write is a commit on a change's branch there, merges land on its `main`, and other clones
//! push in between to provoke rebases and conflicts.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Reply, Service, git};

const EDITOR: &str = "editor-secret";
const APPROVER: &str = "approver-secret";
const READER: &str = "reader-secret";
const STAGING_EDITOR: &str = "staging-editor-secret";

async fn service() -> Service {
    Service::builder()
        .git()
        .env("prod", "approval: {ttl: 1h}, auto_publish: true")
        .env("staging", "auto_publish: true")
        .env("dev", "")
        .token("editor", EDITOR, "{\"*\": [edit, publish]}")
        .token("approver", APPROVER, "{\"*\": [approve, publish]}")
        .token("reader", READER, "{\"*\": [read]}")
        .token(
            "staging-editor",
            STAGING_EDITOR,
            "{staging: [edit], dev: [edit]}",
        )
        .start()
        .await
}

async fn get_flag(service: &Service, key: &str) -> (Value, String) {
    let reply = service
        .get(&format!("/api/v1/flags/{key}"))
        .bearer(READER)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let etag = reply.header("etag").expect("an ETag").to_owned();
    (reply.json(), etag)
}

async fn patch(service: &Service, key: &str, etag: Option<&str>, ops: Value) -> Reply {
    patch_as(service, EDITOR, key, etag, ops).await
}

async fn patch_as(
    service: &Service,
    token: &str,
    key: &str,
    etag: Option<&str>,
    ops: Value,
) -> Reply {
    let mut call = service
        .call(Method::PATCH, &format!("/api/v1/flags/{key}"))
        .bearer(token)
        .body(ops.to_string(), "application/json-patch+json");
    if let Some(etag) = etag {
        call = call.header("if-match", etag);
    }
    call.send().await
}

/// `git diff` lines that change something (`-`/`+`, without the file headers).
fn changed_lines(diff: &str) -> Vec<&str> {
    diff.lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .collect()
}

fn remote_branches(service: &Service) -> String {
    git(&service.remote(), &["branch", "--list"])
}

const SPLIT: &str = "/environments/prod/rules/2/serve/split";

#[tokio::test]
async fn a_patch_is_a_commit_on_a_change_branch_that_changes_exactly_one_line() {
    let service = service().await;
    let (flag, etag) = get_flag(&service, "new-chart").await;
    assert_eq!(flag["file"], "flags/new-chart.yaml");
    assert_eq!(
        flag["definition"]["environments"]["prod"]["rules"][2]["serve"]["split"],
        json!({"on": 25, "off": 75})
    );
    let reply = patch(
        &service,
        "new-chart",
        Some(&etag),
        json!([
            {"op": "replace", "path": format!("{SPLIT}/on"), "value": 30},
            {"op": "replace", "path": format!("{SPLIT}/off"), "value": 70},
        ]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let body = reply.json();
    let branch = body["change"]["branch"]
        .as_str()
        .expect("a branch")
        .to_owned();
    assert_eq!(branch, format!("changes/{}", body["change"]["id"]));
    assert_eq!(body["alters"], json!(["prod"]));
    // The remote holds the branch; its diff against main is the one line of the split.
    let diff = git(&service.remote(), &["diff", "main", &branch]);
    assert_eq!(
        changed_lines(&diff),
        [
            "-          split: { on: 25, off: 75 }",
            "+          split: { on: 30, off: 70 }"
        ],
        "{diff}"
    );
    let log = git(
        &service.remote(),
        &["log", "-1", "--format=%an <%ae>|%s", &branch],
    );
    assert_eq!(
        log.trim(),
        "editor <editor@flags.invalid>|Update flag new-chart"
    );
    // The file as committed still has every comment.
    let text = git(
        &service.remote(),
        &["show", &format!("{branch}:config/flags/new-chart.yaml")],
    );
    assert!(text.starts_with("# The redesigned revenue chart"), "{text}");
    assert!(text.contains("# A quarter of organisations"), "{text}");
    // The new ETag is the file's blob on the branch; reading the change shows the new split.
    let new_etag = reply.header("etag").expect("etag").to_owned();
    let blob = git(
        &service.remote(),
        &[
            "rev-parse",
            &format!("{branch}:config/flags/new-chart.yaml"),
        ],
    );
    assert_eq!(new_etag, format!("\"{}\"", blob.trim()));
    let id = body["change"]["id"].as_u64().unwrap();
    let read = service
        .get(&format!("/api/v1/flags/new-chart?change={id}"))
        .bearer(READER)
        .send()
        .await;
    assert_eq!(
        read.json()["definition"]["environments"]["prod"]["rules"][2]["serve"]["split"]["on"],
        30
    );
    // Main is untouched until the change merges.
    let (flag, _) = get_flag(&service, "new-chart").await;
    assert_eq!(
        flag["definition"]["environments"]["prod"]["rules"][2]["serve"]["split"]["on"],
        25
    );
}

#[tokio::test]
async fn stale_or_missing_preconditions_and_invalid_edits_commit_nothing() {
    let service = service().await;
    let (_, etag) = get_flag(&service, "new-chart").await;
    let ops = json!([{"op": "replace", "path": format!("{SPLIT}/on"), "value": 30}, {"op": "replace", "path": format!("{SPLIT}/off"), "value": 70}]);
    let reply = patch(&service, "new-chart", None, ops.clone()).await;
    assert_eq!(
        reply.status,
        StatusCode::PRECONDITION_REQUIRED,
        "{}",
        reply.body
    );
    let stale = "\"0123456789012345678901234567890123456789\"";
    let reply = patch(&service, "new-chart", Some(stale), ops.clone()).await;
    assert_eq!(
        reply.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        reply.body
    );
    // Percentages that do not add up: the compiler's diagnostic, with file and line.
    let reply = patch(
        &service,
        "new-chart",
        Some(&etag),
        json!([{"op": "replace", "path": format!("{SPLIT}/on"), "value": 50}]),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let problem = reply.json();
    let diagnostic = &problem["diagnostics"][0];
    assert_eq!(diagnostic["file"], "flags/new-chart.yaml", "{problem}");
    assert!(diagnostic["line"].as_u64().is_some(), "{problem}");
    assert!(
        diagnostic["text"]
            .as_str()
            .unwrap()
            .starts_with("flags/new-chart.yaml:"),
        "{problem}"
    );
    // A patch op on a path that is not there.
    let reply = patch(
        &service,
        "new-chart",
        Some(&etag),
        json!([{"op": "replace", "path": "/environments/nowhere/enabled", "value": true}]),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert!(
        !remote_branches(&service).contains("changes/"),
        "{}",
        remote_branches(&service)
    );
}

#[tokio::test]
async fn create_replace_and_delete_through_change_requests() {
    let service = service().await;
    let definition = json!({
        "description": "A flag made through the API: \"on\", ': ' and # are just text",
        "owner": "team-api",
        "type": "release",
        "tags": ["on", "null", ":", "#x", "multi\nline"],
        "default": "off",
        "environments": {"dev": {"enabled": true, "fallthrough": "on"}},
    });
    let create = || {
        service
            .call(Method::PUT, "/api/v1/flags/api-made")
            .bearer(EDITOR)
            .header("if-none-match", "*")
            .json(&json!({"definition": definition}))
    };
    let reply = create().send().await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["file"], "flags/api-made.yaml");
    let branch = body["change"]["branch"].as_str().unwrap().to_owned();
    let text = git(
        &service.remote(),
        &["show", &format!("{branch}:config/flags/api-made.yaml")],
    );
    // What was written means exactly what was asked.
    let read = flags_compile::yaml::parse(&text).expect("parses").to_json();
    let mut wanted = definition.clone();
    wanted["key"] = json!("api-made");
    assert_eq!(read, wanted, "{text}");
    assert!(text.starts_with("key: api-made\n"), "{text}");
    // Creating it again (in a change where it exists) is a lost update: 412.
    let id = body["change"]["id"].as_u64().unwrap();
    let again = service
        .call(Method::PUT, &format!("/api/v1/flags/api-made?change={id}"))
        .bearer(EDITOR)
        .header("if-none-match", "*")
        .json(&json!({"definition": definition}))
        .send()
        .await;
    assert_eq!(
        again.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        again.body
    );
    // Deleting a flag another one needs is refused, naming the one that needs it.
    let (_, etag) = get_flag(&service, "new-dashboard-layout").await;
    let reply = service
        .call(Method::DELETE, "/api/v1/flags/new-dashboard-layout")
        .bearer(EDITOR)
        .header("if-match", &etag)
        .send()
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert!(reply.body.contains("new-chart"), "{}", reply.body);
    // So is deleting a segment flags use.
    let segment = service
        .get("/api/v1/segments/internal-testers")
        .bearer(READER)
        .send()
        .await;
    let etag = segment.header("etag").expect("etag").to_owned();
    let reply = service
        .call(Method::DELETE, "/api/v1/segments/internal-testers")
        .bearer(EDITOR)
        .header("if-match", &etag)
        .send()
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("flags/new-chart.yaml:"),
        "{}",
        reply.body
    );
    // A flag nothing needs goes, in the same change.
    let (_, etag) = get_flag(&service, "beta-banner").await;
    let reply = service
        .call(
            Method::DELETE,
            &format!("/api/v1/flags/beta-banner?change={id}"),
        )
        .bearer(EDITOR)
        .header("if-match", &etag)
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let change = service
        .get(&format!("/api/v1/changes/{id}"))
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(change["commits"].as_array().unwrap().len(), 2, "{change}");
    let files = git(
        &service.remote(),
        &["diff", "--name-status", "main", &branch],
    );
    assert_eq!(
        files.trim(),
        "A\tconfig/flags/api-made.yaml\nD\tconfig/flags/beta-banner.yaml"
    );
}

#[tokio::test]
async fn hostile_keys_and_bodies_get_clear_refusals() {
    let service = service().await;
    for key in [
        "..",
        ".hidden",
        "a%2Fb",
        "%2e%2e%2fsegments%2fbeta-users",
        "a%20b",
        "x%00",
    ] {
        let reply = service
            .call(Method::PUT, &format!("/api/v1/flags/{key}"))
            .bearer(EDITOR)
            .header("if-none-match", "*")
            .json(&json!({"definition": {"default": "off"}}))
            .send()
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{key}: {}",
            reply.body
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    let (_, etag) = get_flag(&service, "new-chart").await;
    let huge: Vec<Value> = (0..1001)
        .map(|_| json!({"op": "test", "path": "/key", "value": "new-chart"}))
        .collect();
    let reply = patch(&service, "new-chart", Some(&etag), Value::Array(huge)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let reply = service
        .call(Method::PATCH, "/api/v1/flags/new-chart")
        .bearer(EDITOR)
        .header("if-match", &etag)
        .body(vec![0xff, 0xfe, b'['], "application/json-patch+json")
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.body.contains("UTF-8"), "{}", reply.body);
    let reply = service
        .call(Method::PATCH, "/api/v1/flags/new-chart")
        .bearer(EDITOR)
        .header("if-match", &etag)
        .json(&json!([]))
        .send()
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        reply.body
    );
    let reply = patch(
        &service,
        "new-chart",
        Some(&etag),
        json!([{"op": "replace", "path": "/key", "value": "renamed"}]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(!remote_branches(&service).contains("changes/"));
}

#[tokio::test]
async fn roles_decide_per_environment_what_an_edit_may_alter() {
    let service = service().await;
    let (_, etag) = get_flag(&service, "new-chart").await;
    let ops = json!([{"op": "replace", "path": "/environments/prod/enabled", "value": false}]);
    let as_reader = patch_as(&service, READER, "new-chart", Some(&etag), ops.clone()).await;
    assert_eq!(
        as_reader.status,
        StatusCode::FORBIDDEN,
        "{}",
        as_reader.body
    );
    // `edit` on staging and dev does not reach prod's behaviour...
    let staging_only = patch_as(&service, STAGING_EDITOR, "new-chart", Some(&etag), ops).await;
    assert_eq!(
        staging_only.status,
        StatusCode::FORBIDDEN,
        "{}",
        staging_only.body
    );
    assert!(staging_only.body.contains("prod"), "{}", staging_only.body);
    // ...but prose alters no environment, so `edit` anywhere may change it.
    let prose = json!([{"op": "replace", "path": "/description", "value": "Clearer words."}]);
    let prose = patch_as(&service, STAGING_EDITOR, "new-chart", Some(&etag), prose).await;
    assert_eq!(prose.status, StatusCode::OK, "{}", prose.body);
    assert_eq!(prose.json()["alters"], json!([]));
}

async fn open_split_change(service: &Service) -> u64 {
    let (_, etag) = get_flag(service, "new-chart").await;
    let reply = patch(
        service,
        "new-chart",
        Some(&etag),
        json!([
            {"op": "replace", "path": format!("{SPLIT}/on"), "value": 30},
            {"op": "replace", "path": format!("{SPLIT}/off"), "value": 70},
        ]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()["change"]["id"].as_u64().unwrap()
}

#[tokio::test]
async fn approved_by_another_token_merged_and_published_to_auto_publish_environments() {
    let service = service().await;
    let id = open_split_change(&service).await;
    let merge_early = service
        .post(&format!("/api/v1/changes/{id}/merge"))
        .bearer(EDITOR)
        .send()
        .await;
    assert_eq!(
        merge_early.status,
        StatusCode::CONFLICT,
        "{}",
        merge_early.body
    );
    assert!(
        merge_early.body.contains("needs 1 approval"),
        "{}",
        merge_early.body
    );
    let own = service
        .post(&format!("/api/v1/changes/{id}/approve"))
        .bearer(EDITOR)
        .send()
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.body);
    let approved = service
        .post(&format!("/api/v1/changes/{id}/approve"))
        .bearer(APPROVER)
        .send()
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.json()["state"], "approved");
    let merged = service
        .post(&format!("/api/v1/changes/{id}/merge"))
        .bearer(EDITOR)
        .send()
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    let body = merged.json();
    let commit = body["commit"].as_str().unwrap();
    assert_eq!(
        git(&service.remote(), &["rev-parse", "main"]).trim(),
        commit
    );
    assert_eq!(body["rebased"], false);
    assert_eq!(body["published"]["prod"]["published"], true, "{body}");
    assert_eq!(
        body["published"]["prod"]["record"]["source_commit"], commit,
        "{body}"
    );
    // prod's deployed flags now split 30/70: its diff from the merged files is empty, and the
    // change's branch is gone.
    let diff = service
        .get("/api/v1/environments/prod/diff")
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(diff["flags"], json!([]), "{diff}");
    assert!(!remote_branches(&service).contains("changes/"));
    let change = service
        .get(&format!("/api/v1/changes/{id}"))
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(change["state"], "merged");
    let again = service
        .post(&format!("/api/v1/changes/{id}/merge"))
        .bearer(EDITOR)
        .send()
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_merge_rebases_over_others_pushes_and_names_conflicting_files() {
    let service = service().await;
    let id = open_split_change(&service).await;
    // Someone else changes another file on main.
    let other = service.clone_remote("other");
    let path = other.join("config/flags/beta-banner.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("team-growth", "team-growth-2");
    std::fs::write(&path, text).unwrap();
    git(&other, &["commit", "--quiet", "-am", "owner moved"]);
    git(&other, &["push", "--quiet", "origin", "HEAD:main"]);
    let approve = service
        .post(&format!("/api/v1/changes/{id}/approve"))
        .bearer(APPROVER)
        .send()
        .await;
    assert_eq!(approve.status, StatusCode::OK, "{}", approve.body);
    let merged = service
        .post(&format!("/api/v1/changes/{id}/merge"))
        .bearer(EDITOR)
        .send()
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    assert_eq!(merged.json()["rebased"], true);
    let log = git(&service.remote(), &["log", "--format=%an|%s", "-3", "main"]);
    assert_eq!(
        log.trim(),
        "editor|Update flag new-chart\nSomeone Else|owner moved\nSomeone Else|flags"
    );

    // A second change to the same line, and someone else changes that line first.
    let id = open_split_change_to(&service, 40).await;
    git(&other, &["pull", "--quiet", "--rebase", "origin", "main"]);
    let path = other.join("config/flags/new-chart.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("{ on: 30, off: 70 }", "{ on: 35, off: 65 }");
    std::fs::write(&path, text).unwrap();
    git(&other, &["commit", "--quiet", "-am", "my split"]);
    git(&other, &["push", "--quiet", "origin", "HEAD:main"]);
    service
        .post(&format!("/api/v1/changes/{id}/approve"))
        .bearer(APPROVER)
        .send()
        .await;
    let change = service
        .get(&format!("/api/v1/changes/{id}"))
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(change["state"], "conflicted", "{change}");
    assert_eq!(change["conflicts"], json!(["config/flags/new-chart.yaml"]));
    let merge = service
        .post(&format!("/api/v1/changes/{id}/merge"))
        .bearer(EDITOR)
        .send()
        .await;
    assert_eq!(merge.status, StatusCode::CONFLICT, "{}", merge.body);
    assert!(
        merge.body.contains("config/flags/new-chart.yaml"),
        "{}",
        merge.body
    );
    let main = git(&service.remote(), &["log", "-1", "--format=%s", "main"]);
    assert_eq!(main.trim(), "my split");
}

async fn open_split_change_to(service: &Service, on: u64) -> u64 {
    let (_, etag) = get_flag(service, "new-chart").await;
    let reply = patch(
        service,
        "new-chart",
        Some(&etag),
        json!([
            {"op": "replace", "path": format!("{SPLIT}/on"), "value": on},
            {"op": "replace", "path": format!("{SPLIT}/off"), "value": 100 - on},
        ]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()["change"]["id"].as_u64().unwrap()
}

#[tokio::test]
async fn two_replicas_racing_to_merge_merge_and_publish_once() {
    let service = service().await;
    let replica = service.replica().await;
    let id = open_split_change(&service).await;
    // The replica sees the change the first one opened (records live in the store).
    let seen = service
        .get(&format!("/api/v1/changes/{id}"))
        .via(&replica)
        .bearer(READER)
        .send()
        .await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    let approve = service
        .post(&format!("/api/v1/changes/{id}/approve"))
        .via(&replica)
        .bearer(APPROVER)
        .send()
        .await;
    assert_eq!(approve.status, StatusCode::OK, "{}", approve.body);
    let path = format!("/api/v1/changes/{id}/merge");
    let (a, b) = tokio::join!(
        service.post(&path).bearer(EDITOR).send(),
        service.post(&path).via(&replica).bearer(APPROVER).send(),
    );
    let statuses = [a.status, b.status];
    assert!(
        statuses.contains(&StatusCode::OK) && statuses.contains(&StatusCode::CONFLICT),
        "{a:?}\n{b:?}"
    );
    let history = service
        .get("/api/v1/environments/prod/history")
        .bearer(READER)
        .send()
        .await
        .json();
    let versions = history["versions"]
        .as_array()
        .or_else(|| history.as_array())
        .expect("versions");
    assert_eq!(versions.len(), 1, "{history}");
    let main = git(&service.remote(), &["log", "--format=%s", "main"]);
    assert_eq!(
        main.lines()
            .filter(|l| *l == "Update flag new-chart")
            .count(),
        1,
        "{main}"
    );
}

#[tokio::test]
async fn an_empty_change_collects_edits_and_can_be_closed() {
    let service = service().await;
    let opened = service
        .post("/api/v1/changes")
        .bearer(EDITOR)
        .json(&json!({"title": "Spring clean", "description": "Owners and tags"}))
        .send()
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let id = opened.json()["id"].as_u64().unwrap();
    assert!(remote_branches(&service).contains(&format!("changes/{id}")));
    let list = service
        .get("/api/v1/changes")
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(list["changes"][0]["title"], "Spring clean");
    let closed = service
        .post(&format!("/api/v1/changes/{id}/close"))
        .bearer(EDITOR)
        .send()
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    assert!(!remote_branches(&service).contains("changes/"));
    let list = service
        .get("/api/v1/changes")
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(list["changes"], json!([]));
    let all = service
        .get("/api/v1/changes?state=closed")
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(all["changes"][0]["state"], "closed");
}

#[tokio::test]
async fn the_list_shows_files_deployed_state_and_filters() {
    let service = service().await;
    let list = service.get("/api/v1/flags").bearer(READER).send().await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let list = list.json();
    let keys: Vec<&str> = list["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 11, "{keys:?}");
    let chart = list["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "new-chart")
        .unwrap();
    assert_eq!(chart["owner"], "team-dashboards");
    assert_eq!(chart["prerequisites"], json!(["new-dashboard-layout"]));
    assert_eq!(chart["environments"]["prod"]["files"]["rules"], 3);
    assert_eq!(chart["environments"]["prod"]["deployed"], Value::Null);
    let filtered = service
        .get("/api/v1/flags?tag=charts&owner=team-dashboards")
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(filtered["total"], 1, "{filtered}");
    let paged = service
        .get("/api/v1/flags?limit=4&offset=8")
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(paged["flags"].as_array().unwrap().len(), 3);
    assert_eq!(paged["next_offset"], Value::Null);
    let segments = service
        .get("/api/v1/segments")
        .bearer(READER)
        .send()
        .await
        .json();
    let internal = segments["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "internal-testers")
        .unwrap();
    assert!(
        internal["used_by"]
            .as_array()
            .unwrap()
            .contains(&json!("new-chart")),
        "{internal}"
    );
    // The files' JSON Schema, public, for editors.
    let schema = service.get("/api/v1/schema/flag.json").send().await;
    assert_eq!(schema.status, StatusCode::OK);
    assert_eq!(
        schema.header("content-type"),
        Some("application/schema+json")
    );
    assert_eq!(
        schema.json()["properties"]["environments"]["type"],
        "object",
        "{}",
        schema.body
    );
    let missing = service
        .get("/api/v1/flags/new-chrat")
        .bearer(READER)
        .send()
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("new-chart"), "{}", missing.body);
}

/// The list's deployed state follows every publish: a kill makes the flag killed and drifted
/// (the edge no longer serves what the files say) at once, although the branch's commit, and
/// so everything else the list shows, is unchanged and comes from the caches.
#[tokio::test]
async fn the_list_follows_each_publish_of_an_unchanged_branch() {
    let service = Service::builder()
        .git()
        .poll("1h")
        .token("admin", "admin-secret", "{\"*\": [admin]}")
        .start()
        .await;
    let chart = |list: &Value| -> Value {
        list["flags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == "new-chart")
            .unwrap()["environments"]["prod"]["deployed"]
            .clone()
    };
    let list = || async {
        let reply = service
            .get("/api/v1/flags")
            .bearer("admin-secret")
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json()
    };
    assert_eq!(chart(&list().await), Value::Null, "nothing published yet");
    let pushed = service
        .post("/api/v1/environments/prod/push")
        .bearer("admin-secret")
        .send()
        .await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.body);
    let deployed = chart(&list().await);
    assert_eq!(
        (
            &deployed["version"],
            &deployed["killed"],
            &deployed["drift"]
        ),
        (&json!(1), &json!(false), &json!(false)),
        "{deployed}"
    );
    let killed = service
        .post("/api/v1/environments/prod/flags/new-chart/kill")
        .bearer("admin-secret")
        .json(&json!({"reason": "incident"}))
        .send()
        .await;
    assert_eq!(killed.status, StatusCode::OK, "{}", killed.body);
    let deployed = chart(&list().await);
    assert_eq!(
        (
            &deployed["version"],
            &deployed["killed"],
            &deployed["drift"]
        ),
        (&json!(2), &json!(true), &json!(true)),
        "{deployed}"
    );
}

/// With reads fetching at most hourly, a commit another clone pushes reaches the flags API when
/// the push webhook arrives (its fetch moves the branch the API reads), not an hour later.
#[tokio::test]
async fn the_push_webhook_moves_the_branch_the_api_reads() {
    use hmac::{Hmac, Mac};
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "hook-secret\n").unwrap();
    let service = Service::builder()
        .git()
        .poll("1h")
        .token("reader", READER, "{\"*\": [read]}")
        .config(&format!(
            "webhook: {{branch: main, remote: origin, secret_file: {:?}}}",
            secret.path()
        ))
        .start()
        .await;
    let before = service
        .get("/api/v1/flags")
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(before["total"], 11, "{before}");
    let other = service.clone_remote("other");
    let flag = std::fs::read_to_string(other.join("config/flags/new-chart.yaml"))
        .unwrap()
        .replace("key: new-chart", "key: newer-chart");
    std::fs::write(other.join("config/flags/newer-chart.yaml"), flag).unwrap();
    git(&other, &["add", "."]);
    git(&other, &["commit", "--quiet", "-m", "newer chart"]);
    git(&other, &["push", "--quiet", "origin", "HEAD:main"]);
    let after = git(&other, &["rev-parse", "HEAD"]);
    let stale = service
        .get("/api/v1/flags")
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(stale["total"], 11, "no fetch yet: {stale}");
    let body =
        json!({"ref": "refs/heads/main", "after": after.trim(), "pusher": {"name": "other"}})
            .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let delivered = service
        .post("/api/v1/webhooks/git")
        .header("x-hub-signature-256", &signature)
        .header("x-github-delivery", "delivery-1")
        .header("x-github-event", "push")
        .body(body, "application/json")
        .send()
        .await;
    assert!(delivered.status.is_success(), "{}", delivered.body);
    let fresh = service
        .get("/api/v1/flags")
        .bearer(READER)
        .send()
        .await
        .json();
    assert_eq!(fresh["total"], 12, "{fresh}");
    assert_eq!(fresh["commit"], after.trim());
}
