//! The Rust SDK (`sdk/rust`) against real parts: the worker in workerd serving its server-only
//! SDK routes over SeaweedFS, the `publisher` binary pushing and killing, the local directory
//! store. What a service relies on: it is READY with the pushed flags and answers as the edge
//! does; a push or kill reaches it through the event stream (p50/p99 over 30 samples to
//! `target/artifacts/sdk-propagation.json`); a refused key is FATAL with a reason; a cold start
//! with the origin down serves the flags persisted on disk; without the stream, polling
//! carries changes; a corrupt blob is refused and the last good flags kept.

use std::time::{Duration, Instant};

use flags_sdk::{Client, Context, Status, SyncConfig};
use integration_tests::deployment::{Deployment, Spec};
use integration_tests::propagation::percentile;
use integration_tests::worker::{now_s, scratch_dir, token};
use integration_tests::{publisher_bin, repo_root};
use serde_json::{Value, json};

const ENV: &str = "dev";
const IDENTITY_SECRET: &str = "sdk-identity-secret-not-used-elsewhere";
const PURGE_TOKEN: &str = "sdk-purge-token";
const DEV_KEY: &str = "sdk-key-dev-0123456789";
const PROD_KEY: &str = "sdk-key-prod-0123456789";
const KEYS: &str = "dev:sdk-key-dev-0123456789,prod:sdk-key-prod-0123456789";
const FLAG: &str = "beta-banner";
const SAMPLES: usize = 30;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn deployment(label: &str, bindings: &[(&str, &str)]) -> Deployment {
    let mut all = vec![("SDK_KEYS", KEYS)];
    all.extend_from_slice(bindings);
    let deployment = Deployment::start(&Spec {
        label,
        environment: ENV,
        identity_secret: IDENTITY_SECRET,
        purge_token: PURGE_TOKEN,
        bindings: &all,
        assets: None,
    });
    let examples = repo_root().join("examples/flags");
    deployment.publisher(&["push", examples.to_str().unwrap()]);
    deployment
}

/// The beta user's attributes, as SDK context and as signed token claims.
fn beta_user() -> Value {
    json!({"beta": true, "plan": "free", "country": "DE"})
}

/// Waits (up to `within`) until `done` holds; the time it took.
fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if done() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

#[test]
fn the_rust_sdk_follows_the_worker_and_survives_it() {
    let deployment = deployment("sdk", &[]);
    let url = deployment.worker.url.clone();
    let rt = runtime();
    let _entered = rt.enter();
    let cache = scratch_dir("sdk-cache");
    // A stream is up: the safety poll is a minute, so only the stream carries changes here.
    let client = Client::builder(ENV)
        .worker(&url, DEV_KEY)
        .cache_dir(&cache)
        .build();
    let report = rt.block_on(client.wait_ready(Duration::from_secs(10)));
    assert_eq!(
        (report.status, report.version),
        (Status::Ready, Some(1)),
        "{report:?}"
    );

    // Every flag answers as the worker's OFREP bulk route does for the same user.
    let Value::Object(attrs) = beta_user() else {
        unreachable!()
    };
    let user = client.prepare(&Context::from_json(
        attrs
            .clone()
            .into_iter()
            .chain([("targetingKey".into(), json!("sdk-user"))])
            .collect(),
    ));
    let mut claims = beta_user();
    claims["sub"] = json!("sdk-user");
    claims["exp"] = json!(now_s() + 3600);
    let bulk = ureq::post(&format!("{url}/ofrep/v1/evaluate/flags"))
        .set(
            "Authorization",
            &format!("Bearer {}", token(claims, IDENTITY_SECRET)),
        )
        .send_string(r#"{"context":{}}"#)
        .expect("bulk")
        .into_string()
        .expect("body");
    let bulk: Value = serde_json::from_str(&bulk).expect("json");
    let flags = bulk["flags"].as_array().expect("flags");
    assert!(flags.len() >= 10, "{bulk}");
    for flag in flags {
        let key = flag["key"].as_str().unwrap();
        let details = client.details(key, &user);
        assert_eq!(details.value.as_ref(), flag.get("value"), "{key}");
        assert_eq!(
            details.variant.as_deref(),
            flag["variant"].as_str(),
            "{key}"
        );
        assert_eq!(details.reason.as_str(), flag["reason"], "{key}");
    }
    assert!(client.bool_value(FLAG, &user, false));

    // Propagation: kill / unkill, from the command's return to the SDK's new answer.
    let mut delays = Vec::new();
    for i in 0..SAMPLES {
        let killing = i % 2 == 0;
        let args: &[&str] = if killing {
            &["kill", FLAG, "--reason", "sdk propagation"]
        } else {
            &["unkill", FLAG]
        };
        let returned = deployment.publisher(args);
        let wanted = !killing;
        let took = wait_until(Duration::from_secs(5), || {
            client.bool_value(FLAG, &user, !wanted) == wanted
        });
        let took = took.unwrap_or_else(|| panic!("sample {i}: {args:?} never reached the SDK"));
        delays.push(returned.elapsed().max(took));
    }
    assert_eq!(client.version(), Some(1 + SAMPLES as u64));
    assert_eq!(client.status().status, Status::Ready);
    delays.sort();
    let (p50, p99) = (percentile(&delays, 0.5), percentile(&delays, 0.99));
    let report = json!({
        "samples": SAMPLES,
        "p50_ms": ms(p50),
        "p99_ms": ms(p99),
        "max_ms": ms(*delays.last().unwrap()),
        "clients": 1,
        "steps": "kill / unkill alternating",
        "measured": "from the publisher command's return to the SDK's bool_value giving the new value (event stream up, safety poll 60 s)",
    });
    let dir = repo_root().join("target/artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sdk-propagation.json"), report.to_string()).unwrap();
    eprintln!("sdk-propagation: {report}");
    assert!(p99 < Duration::from_secs(1), "{report}");

    // Keys: an unknown key and another environment's key are FATAL, with the reason.
    for (key, status) in [("sdk-key-wrong-0123456789", "401"), (PROD_KEY, "403")] {
        let refused = Client::builder(ENV).worker(&url, key).events(false).build();
        let report = rt.block_on(refused.wait_ready(Duration::from_secs(10)));
        assert_eq!(report.status, Status::Fatal, "{report:?}");
        let message = report.message.unwrap_or_default();
        assert!(
            message.contains(status) && message.contains("SDK key"),
            "{message}"
        );
    }

    // Cold start with the origin down: the flags persisted on disk, STALE.
    let version = client.version();
    drop(client);
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let cold = Client::builder(ENV)
        .worker(&dead, DEV_KEY)
        .cache_dir(&cache)
        .timeout(Duration::from_millis(300))
        .build();
    let report = rt.block_on(cold.wait_ready(Duration::from_secs(5)));
    assert_eq!(
        (report.status, report.version),
        (Status::Stale, version),
        "{report:?}"
    );
    let user = cold.prepare(&Context::new("sdk-user").with("beta", true));
    assert!(cold.bool_value(FLAG, &user, false), "serves the last flags");
    // A persisted blob that does not hash to its pointer's SHA-256 is refused at start.
    for entry in std::fs::read_dir(cache.join(ENV)).unwrap().flatten() {
        if entry.file_name().to_string_lossy().ends_with(".blob") {
            let mut bytes = std::fs::read(entry.path()).unwrap();
            bytes.truncate(bytes.len() / 2);
            std::fs::write(entry.path(), bytes).unwrap();
        }
    }
    let tampered = Client::builder(ENV)
        .worker(&dead, DEV_KEY)
        .cache_dir(&cache)
        .timeout(Duration::from_millis(300))
        .build();
    assert!(
        tampered.restore_error().is_some(),
        "a truncated cached blob is refused"
    );
    assert_eq!(tampered.version(), None);
}

#[test]
fn without_the_event_stream_polling_carries_changes() {
    // The event hub takes no streams at all: the SDK's stream is refused (503) every time.
    let deployment = deployment("sdk-poll", &[("EVENTS_MAX_CONNECTIONS", "0")]);
    let rt = runtime();
    let _entered = rt.enter();
    let client = Client::builder(ENV)
        .worker(&deployment.worker.url, DEV_KEY)
        .sync_config(SyncConfig {
            poll_ms: 200,
            ..SyncConfig::default()
        })
        .build();
    let report = rt.block_on(client.wait_ready(Duration::from_secs(10)));
    assert_eq!(report.status, Status::Ready, "{report:?}");
    let user = client.prepare(&Context::new("u").with("beta", true));
    assert!(client.bool_value(FLAG, &user, false));
    deployment.publisher(&["kill", FLAG, "--reason", "poll test"]);
    let took = wait_until(Duration::from_secs(3), || {
        !client.bool_value(FLAG, &user, true)
    });
    assert!(took.is_some(), "the kill never reached the polling SDK");
}

#[test]
fn a_corrupt_blob_in_the_store_is_refused_and_the_last_good_flags_kept() {
    let store = scratch_dir("sdk-dir-store");
    let push = |flags: &std::path::Path| {
        let output = std::process::Command::new(publisher_bin())
            .args(["push", flags.to_str().unwrap(), "--env", ENV, "--store"])
            .arg(&store)
            .current_dir(repo_root())
            .output()
            .expect("publisher");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    push(&repo_root().join("examples/flags"));
    let rt = runtime();
    let _entered = rt.enter();
    let client = Client::builder(ENV)
        .directory(&store)
        .sync_config(SyncConfig {
            poll_ms: 3_600_000,
            ..SyncConfig::default()
        })
        .build();
    assert_eq!(
        rt.block_on(client.wait_ready(Duration::from_secs(5)))
            .status,
        Status::Ready
    );
    let user = client.prepare(&Context::new("u").with("beta", true));
    assert!(client.bool_value(FLAG, &user, false));
    // Version 2 turns the banner off; its blob is truncated before the SDK reads it.
    push(&integration_tests::propagation::banner_off_flags(
        "sdk-banner-off",
    ));
    let pointer: Value =
        serde_json::from_slice(&std::fs::read(store.join(ENV).join("current.json")).unwrap())
            .unwrap();
    let blob = store.join(ENV).join(pointer["blob"].as_str().unwrap());
    let bytes = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, &bytes[..bytes.len() / 2]).unwrap();
    client.poll_now();
    let stale = wait_until(Duration::from_secs(3), || {
        client.status().status == Status::Stale
    });
    assert!(stale.is_some(), "{:?}", client.status());
    let report = client.status();
    assert!(report.message.unwrap_or_default().contains("sha256"));
    assert_eq!(report.version, Some(1));
    assert!(client.bool_value(FLAG, &user, false), "last good flags");
    // The publisher's read-back would have caught it; restored, the SDK takes version 2.
    std::fs::write(&blob, &bytes).unwrap();
    client.poll_now();
    let caught_up = wait_until(Duration::from_secs(3), || client.version() == Some(2));
    assert!(caught_up.is_some(), "{:?}", client.status());
    assert!(!client.bool_value(FLAG, &user, true));
}
