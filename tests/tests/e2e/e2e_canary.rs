//! Canary versions end to end, every real part on 127.0.0.1: SeaweedFS is the origin, the
//! worker runs in workerd (Miniflare) reading it with SigV4, and the `publisher` binary pushes a
//! 10% canary, kills a flag during it, promotes, starts another and aborts it, purging the
//! worker after each. Checks: the canary's share over 10,000 distinct targeting keys is within
//! 3 sigma of 10%; no key ever gets both versions over repeated requests and across a
//! revalidation; what each answer says (header, metadata) matches the value it carries; promote
//! and abort reach every client within the bound (measured as `e2e_kill_switch` measures kills,
//! figures in `target/artifacts/canary-propagation.json`); racing canary pushes cannot both win.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use integration_tests::deployment::{Deployment, Spec};
use integration_tests::propagation::{banner_off_flags, delays_after, missed};
use integration_tests::repo_root;
use integration_tests::worker::{Reply, Worker, now_s, token};
use serde_json::{Value, json};

const ENV: &str = "dev";
const IDENTITY_SECRET: &str = "canary-identity-secret-not-used-elsewhere";
const PURGE_TOKEN: &str = "canary-purge-token";
const REVALIDATE_MS: u64 = 250;
/// The product's promise for a published change, as for kills.
const BOUND: Duration = Duration::from_secs(1);
const KEYS: usize = 10_000;
const CLIENTS: usize = 6;
const CLIENT_POLL: Duration = Duration::from_millis(20);
/// `beta-banner` is on for signed-in beta users in the examples and off in the canary's flags.
const FLAG: &str = "beta-banner";

type Setup = Deployment;

fn start() -> Setup {
    let revalidate = REVALIDATE_MS.to_string();
    Deployment::start(&Spec {
        label: "canary",
        environment: ENV,
        identity_secret: IDENTITY_SECRET,
        purge_token: PURGE_TOKEN,
        bindings: &[("REVALIDATE_MS", revalidate.as_str())],
        assets: None,
    })
}

/// A signed-in beta user's bearer token.
fn bearer(user: &str) -> String {
    let claims = json!({"sub": user, "beta": true, "plan": "free", "exp": now_s() + 3600});
    format!("Bearer {}", token(claims, IDENTITY_SECRET))
}

/// What one user is answered: the value of [`FLAG`] and which track answered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    value: Value,
    track: String,
    version: u64,
}

fn ask(worker: &Worker, bearer: &str) -> Seen {
    let reply: Reply = worker.post(
        &format!("/ofrep/v1/evaluate/flags/{FLAG}"),
        &json!({"context": {}}),
        &[("Authorization", bearer)],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    let track = reply.header("x-flags-track").unwrap_or("none").to_owned();
    assert_eq!(
        body["metadata"]["flagsTrack"], track,
        "header and metadata agree: {body}"
    );
    let version = reply
        .header("x-flags-version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert_eq!(body["metadata"]["flagsVersion"], version);
    Seen {
        value: body["value"].clone(),
        track,
        version,
    }
}

/// Every user's answer, asked from a few threads at once.
fn ask_all(worker: &Worker, bearers: &[(String, String)]) -> BTreeMap<String, Seen> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = bearers
            .chunks(bearers.len().div_ceil(8))
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(user, bearer)| (user.clone(), ask(worker, bearer)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// Runs `step`, then has each client poll until it sees `expected`; returns each client's
/// delay from the step's return, asserting the bound.
fn measure(
    setup: &Setup,
    label: &str,
    clients: &[String],
    expected: &Seen,
    step: impl FnOnce() -> Instant,
) -> Vec<Duration> {
    let sees = |bearer: &String| &ask(&setup.worker, bearer) == expected;
    let delays = delays_after(clients, CLIENT_POLL, BOUND * 3, sees, step);
    assert!(
        missed(&delays, BOUND).is_empty(),
        "{label}: not every client saw {expected:?} within {BOUND:?}: {delays:?}\nhealth: {}",
        setup.worker.health()
    );
    let delays: Vec<Duration> = delays.into_iter().flatten().collect();
    eprintln!(
        "{label}: first client {:?}, all {} clients {:?}",
        delays.iter().min().unwrap(),
        delays.len(),
        delays.iter().max().unwrap()
    );
    delays
}

#[test]
fn a_ten_percent_canary_is_served_by_user_then_promoted_and_aborted_within_the_bound() {
    let setup = start();
    let examples = repo_root().join("examples/flags");
    let changed = banner_off_flags("canary-flags");
    setup.publisher(&["push", examples.to_str().unwrap()]);
    setup.publisher(&["push", changed.to_str().unwrap(), "--canary", "10"]);
    let health = setup
        .worker
        .wait_for_health(Duration::from_secs(5), |h| h["canary"].is_object());
    assert_eq!(health["version"], 2);
    assert_eq!(health["canary"]["percent"], 10.0);
    assert_eq!(health["canary"]["since"], 2);
    assert_eq!(health["canary"]["salt"], "canary-dev-2");
    assert_ne!(
        health["canary"]["sha256"], health["sha256"],
        "both versions: {health}"
    );

    let users: Vec<(String, String)> = (0..KEYS)
        .map(|i| {
            let user = format!("canary-user-{i}");
            let bearer = bearer(&user);
            (user, bearer)
        })
        .collect();
    let started = Instant::now();
    let first = ask_all(&setup.worker, &users);
    eprintln!("{KEYS} users asked in {:?}", started.elapsed());
    let canary: BTreeSet<&String> = first
        .iter()
        .filter(|(_, seen)| seen.track == "canary")
        .map(|(user, _)| user)
        .collect();
    // Binomial(10,000, 0.1): mean 1,000, sigma 30.
    let sigma = (KEYS as f64 * 0.1 * 0.9).sqrt();
    let off = (canary.len() as f64 - KEYS as f64 * 0.1).abs();
    eprintln!("canary share: {} of {KEYS} users", canary.len());
    assert!(
        off <= 3.0 * sigma,
        "{} of {KEYS} users got the canary: more than 3 sigma from 10%",
        canary.len()
    );
    for (user, seen) in &first {
        let expected = if seen.track == "canary" {
            json!(false)
        } else {
            json!(true)
        };
        assert_eq!(
            seen.value, expected,
            "{user}: the value matches the track that answered"
        );
        assert!(
            seen.track == "canary" || seen.track == "stable",
            "{user}: {seen:?}"
        );
        assert_eq!(seen.version, 2);
    }
    // The same users again after a revalidation (a purge makes the isolate revalidate now, and
    // the clock moves past REVALIDATE_MS): nobody changes side.
    let before = setup.worker.health()["last_check_at"].clone();
    std::thread::sleep(Duration::from_millis(REVALIDATE_MS + 50));
    setup.worker.request(
        "POST",
        "/_flags/purge",
        &[("Authorization", &format!("Bearer {PURGE_TOKEN}"))],
        None,
    );
    let second = ask_all(&setup.worker, &users);
    assert_ne!(
        setup.worker.health()["last_check_at"],
        before,
        "it revalidated"
    );
    let flipped: Vec<&String> = users
        .iter()
        .map(|(user, _)| user)
        .filter(|user| first[*user] != second[*user])
        .collect();
    assert!(
        flipped.is_empty(),
        "{} users changed version across requests, e.g. {:?}",
        flipped.len(),
        &flipped[..flipped.len().min(5)]
    );

    // A kill during the canary reaches both sides.
    setup.publisher(&["kill", FLAG, "--reason", "canary e2e"]);
    let killed = ask_all(&setup.worker, &users[..200]);
    assert!(
        killed.values().all(|s| s.value == json!(false)),
        "killed on both sides"
    );
    assert!(killed.values().any(|s| s.track == "canary"));
    assert!(
        killed
            .iter()
            .all(|(u, s)| (s.track == "canary") == canary.contains(u)),
        "a kill keeps the canary's salt: nobody changes side"
    );
    setup.publisher(&["unkill", FLAG]);

    // Promote: the stable side moves to the canary's flags.
    let stable_users: Vec<String> = users
        .iter()
        .filter(|(u, _)| !canary.contains(u))
        .take(CLIENTS)
        .map(|(_, b)| b.clone())
        .collect();
    let mut all = measure(
        &setup,
        "promote",
        &stable_users,
        &Seen {
            value: json!(false),
            track: "stable".into(),
            version: 5,
        },
        || setup.publisher(&["promote", "--message", "canary e2e"]),
    );
    assert_eq!(setup.worker.health()["canary"], Value::Null);

    // A new canary of the old flags, then abort: its users come back to stable.
    setup.publisher(&["push", examples.to_str().unwrap(), "--canary", "10"]);
    let health = setup
        .worker
        .wait_for_health(Duration::from_secs(5), |h| h["canary"]["since"] == 6);
    assert_eq!(
        health["canary"]["salt"], "canary-dev-6",
        "a new canary, a new salt"
    );
    let now = ask_all(&setup.worker, &users[..2_000]);
    let canary_users: Vec<String> = users[..2_000]
        .iter()
        .filter(|(u, _)| now[u].track == "canary")
        .take(CLIENTS)
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(canary_users.len(), CLIENTS);
    all.extend(measure(
        &setup,
        "abort",
        &canary_users,
        &Seen {
            value: json!(false),
            track: "stable".into(),
            version: 7,
        },
        || setup.publisher(&["abort", "--message", "canary e2e"]),
    ));

    let history = setup.json(&["history"]);
    let actions: Vec<&str> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "push", "canary", "kill", "unkill", "promote", "canary", "abort"
        ],
        "{history}"
    );
    let audit = setup.json(&["audit"]);
    assert!(
        audit[1]["what"]
            .as_str()
            .unwrap()
            .starts_with("canary to 10% of users (since version 2)"),
        "{audit}"
    );

    all.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    let report = json!({
        "clients": CLIENTS,
        "steps": ["promote", "abort"],
        "samples": all.len(),
        "revalidate_ms": REVALIDATE_MS,
        "p50_ms": ms(&all[all.len() / 2]),
        "max_ms": ms(all.last().unwrap()),
        "canary_share": canary.len() as f64 / KEYS as f64,
    });
    eprintln!("canary propagation: {report}");
    let artifacts = repo_root().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(
        artifacts.join("canary-propagation.json"),
        report.to_string(),
    )
    .unwrap();

    // The stable version now has the changed flags: race canaries of the original ones.
    racing_canary_pushes(&setup, &examples);
}

/// Six `publisher push --canary` processes at once against SeaweedFS, each a different share:
/// each wins a version of its own or exits 3 (lost the race), and the history stays gapless
/// with the pointer naming the last winner's canary.
fn racing_canary_pushes(setup: &Setup, flags: &Path) {
    let before = setup.json(&["history"])["current"].as_u64().unwrap();
    let children: Vec<_> = (1..=6)
        .map(|i| {
            setup
                .command(&["push", flags.to_str().unwrap(), "--canary", &format!("{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut wins = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(stdout.contains("as a canary to"), "{stdout}");
                wins += 1;
            }
            Some(3) => assert!(
                String::from_utf8_lossy(&out.stderr).contains("someone else published version")
            ),
            _ => panic!(
                "a racing canary push neither won nor lost cleanly: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    let history = setup.json(&["history"]);
    assert_eq!(history["problems"], json!([]), "{history}");
    let versions: Vec<u64> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=before + wins).collect::<Vec<_>>(), "gapless");
    assert!(wins >= 1);
    let last = history["versions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "canary");
    let health = setup
        .worker
        .wait_for_health(Duration::from_secs(5), |h| h["version"] == last["version"]);
    assert_eq!(
        health["canary"]["sha256"], last["canary"]["sha256"],
        "{health}"
    );
    assert_eq!(
        health["canary"]["percent"].as_f64(),
        last["canary"]["percent"].as_f64()
    );
}
