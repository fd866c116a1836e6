//! Load with faults: wrk drives OFREP bulk requests at the worker in bare workerd (origin:
//! SeaweedFS over SigV4, as in production with R2/S3) through six back-to-back phases, each
//! opened by an event: none (baseline), the origin killed, the origin restarted, a corrupt blob
//! published, a truncated blob published, a real `publisher push` of a new version.
//!
//! The corrupt and truncated blobs are written straight into the bucket with a pointer naming
//! them, as a broken publisher or bit rot would; the good pointer is put back before the push,
//! which purges the worker as a production push purges the CDN.
//! The colo cache TTL is 1 s, so the worker really goes to the origin in every phase.
//!
//! [`run`] returns every phase's figures; [`Report::check`] holds the assertions (no non-2xx,
//! no socket error, last-known-good answers until the push, the pushed version after it).
//! `tests/tests/worker_load_faults.rs` runs it briefly in CI, `tests/examples/worker_load_faults.rs`
//! for 60 s (docs/benchmarks.md, "Load with faults").

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::worker::{Workerd, now_s, project_root, scratch_dir, token};
use crate::{SeaweedFs, publisher_bin};

const ENV: &str = "prod";
const BUCKET: &str = "load";
const PREFIX: &str = "flags";
const SECRET: &str = "load-identity-secret";
const PURGE_TOKEN: &str = "load-purge-token";

/// One phase's figures.
#[derive(Debug, Clone)]
pub struct Phase {
    /// What opened the phase.
    pub event: &'static str,
    /// Requests completed.
    pub requests: u64,
    /// Answers with a status outside 2xx/3xx.
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Answers by the `metadata.version` they carried.
    pub versions: BTreeMap<u64, u64>,
    /// The health endpoint's `last_error` at the end of the phase.
    pub last_error: Value,
    /// workerd's resident memory at the end of the phase, KiB.
    pub rss_kib: u64,
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Seconds per phase.
    pub phase_seconds: u64,
    /// wrk connections.
    pub connections: u32,
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// workerd's resident memory after warming up and at the end, KiB.
    pub rss_kib: (u64, u64),
    /// The version pushed in the last phase.
    pub pushed_version: u64,
    /// The health document at the end.
    pub health: Value,
}

/// Runs the six phases of `phase` each with `connections` wrk connections.
pub fn run(phase: Duration, connections: u32) -> Report {
    let mut s3 = SeaweedFs::start();
    let store = format!("{}/{PREFIX}", s3.bucket(BUCKET));
    let flags = scratch_dir("load-flags");
    crate::copy_dir(&project_root().join("examples/flags"), &flags);
    push(&s3, &store, &flags, 1, None);
    let good_pointer = s3.get_raw(BUCKET, &format!("{PREFIX}/{ENV}/current.json"));

    let bindings = [
        ("FLAGS_ENV", ENV),
        ("ORIGIN_KIND", "s3"),
        ("S3_ENDPOINT", s3.endpoint.as_str()),
        ("S3_BUCKET", BUCKET),
        ("S3_REGION", "us-east-1"),
        ("ORIGIN_PREFIX", "flags/"),
        ("S3_ACCESS_KEY_ID", s3.access_key.as_str()),
        ("S3_SECRET_ACCESS_KEY", s3.secret_key.as_str()),
        ("IDENTITY_SECRET", SECRET),
        ("PURGE_TOKEN", PURGE_TOKEN),
        ("REVALIDATE_MS", "250"),
        ("CACHE_TTL_S", "1"),
        ("ORIGIN_TIMEOUT_MS", "500"),
    ];
    let mut workerd = Workerd::start(&bindings);
    let script = wrk_script(&workerd);
    let rss_start = workerd.rss_kib();

    let mut phases = Vec::new();
    let seconds = phase.as_secs().max(1);
    let events: [&'static str; 6] = [
        "baseline",
        "origin stopped",
        "origin restarted",
        "corrupt blob published",
        "truncated blob published",
        "new version pushed",
    ];
    for event in events {
        let wrk = Command::new("wrk")
            .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s")])
            .arg("--timeout")
            .arg("5s")
            .arg("-s")
            .arg(&script)
            .arg(format!("{}/ofrep/v1/evaluate/flags", workerd.url))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run wrk (cargo xtask setup installs it)");
        // The event lands a moment into the phase, while the load runs.
        std::thread::sleep(Duration::from_millis(300));
        match event {
            "origin stopped" => s3.stop(),
            "origin restarted" => s3.restart(),
            "corrupt blob published" => {
                publish_raw(&s3, 2, b"{\"schema\": 1, this is not a blob".to_vec())
            }
            "truncated blob published" => {
                let blob = s3_blob(&s3, &good_pointer);
                publish_raw(&s3, 2, blob[..blob.len() / 2].to_vec());
            }
            "new version pushed" => {
                s3.put_raw(
                    BUCKET,
                    &format!("{PREFIX}/{ENV}/current.json"),
                    good_pointer.clone(),
                );
                std::fs::write(flags.join("flags/load-test-marker.yaml"), MARKER_FLAG)
                    .expect("write the new flag");
                // As in production, the push purges (here the worker's own purge endpoint).
                push(&s3, &store, &flags, 2, Some(&workerd.url));
            }
            _ => {}
        }
        let out = wrk.wait_with_output().expect("wrk");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let health = health(&workerd);
        let mut figures = parse_phase(event, &text, health["last_error"].clone());
        figures.rss_kib = workerd.rss_kib();
        phases.push(figures);
    }
    assert!(workerd.running(), "workerd died under load");
    let rss_end = workerd.rss_kib();
    Report {
        phase_seconds: seconds,
        connections,
        phases,
        rss_kib: (rss_start, rss_end),
        pushed_version: 2,
        health: health(&workerd),
    }
}

impl Report {
    /// What must hold for any run: every answer 2xx, no socket error, the last good version
    /// served through the outage and both bad blobs, the pushed one after the push.
    pub fn check(&self) {
        for phase in &self.phases {
            assert_eq!(
                phase.non_2xx, 0,
                "{}: non-2xx answers: {phase:?}",
                phase.event
            );
            assert_eq!(
                phase.socket_errors, 0,
                "{}: socket errors: {phase:?}",
                phase.event
            );
            assert!(phase.requests > 0, "{}: no requests completed", phase.event);
            let served: u64 = phase.versions.values().sum();
            assert_eq!(
                served, phase.requests,
                "{}: an answer without a version",
                phase.event
            );
        }
        let (last, before) = self.phases.split_last().expect("phases");
        for phase in before {
            assert_eq!(
                phase.versions.keys().copied().collect::<Vec<_>>(),
                [1],
                "{}: only the last good version may answer",
                phase.event
            );
        }
        // The faults were real: the worker saw each one.
        let error_of = |event: &str| {
            self.phases
                .iter()
                .find(|p| p.event == event)
                .map(|p| {
                    p.last_error["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .unwrap_or_default()
        };
        let outage = error_of("origin stopped");
        assert!(outage.contains("origin"), "{self:#?}");
        for event in ["corrupt blob published", "truncated blob published"] {
            let error = error_of(event);
            assert!(!error.is_empty() && error != outage, "{event}: {self:#?}");
        }
        assert!(
            last.versions
                .get(&self.pushed_version)
                .is_some_and(|&n| n > 0),
            "the pushed version never answered: {last:?}"
        );
        assert!(
            last.versions
                .keys()
                .all(|&v| v == 1 || v == self.pushed_version),
            "{last:?}"
        );
        assert_eq!(
            self.health["version"], self.pushed_version,
            "{}",
            self.health
        );
    }

    /// The figures as JSON (written to `target/artifacts/load-faults.json`).
    pub fn to_json(&self) -> Value {
        json!({
            "phase_seconds": self.phase_seconds,
            "connections": self.connections,
            "requests": self.phases.iter().map(|p| p.requests).sum::<u64>(),
            "non_2xx": self.phases.iter().map(|p| p.non_2xx).sum::<u64>(),
            "socket_errors": self.phases.iter().map(|p| p.socket_errors).sum::<u64>(),
            "workerd_rss_kib": {"after_warm_up": self.rss_kib.0, "end": self.rss_kib.1},
            "phases": self.phases.iter().map(|p| json!({
                "event": p.event, "requests": p.requests, "non_2xx": p.non_2xx,
                "p50_ms": p.p50_ms, "p99_ms": p.p99_ms, "workerd_rss_kib": p.rss_kib,
                "versions": p.versions.iter().map(|(v, n)| (v.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "last_error": p.last_error,
            })).collect::<Vec<_>>(),
        })
    }

    /// A table for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<26} {:>9} {:>7} {:>8} {:>8} {:>9}  answers by version\n",
            "phase (event at its start)", "requests", "non2xx", "p50 ms", "p99 ms", "RSS MiB"
        );
        for p in &self.phases {
            let versions: Vec<String> = p
                .versions
                .iter()
                .map(|(v, n)| format!("v{v}: {n}"))
                .collect();
            out.push_str(&format!(
                "{:<26} {:>9} {:>7} {:>8.2} {:>8.2} {:>9.1}  {}\n",
                p.event,
                p.requests,
                p.non_2xx,
                p.p50_ms,
                p.p99_ms,
                p.rss_kib as f64 / 1024.0,
                versions.join(", ")
            ));
        }
        out.push_str(&format!(
            "workerd RSS: {} KiB after warm-up, {} KiB at the end\n",
            self.rss_kib.0, self.rss_kib.1
        ));
        out
    }
}

const MARKER_FLAG: &str = "key: load-test-marker
description: Added by the load test's push, so the new version differs.
owner: team-platform
type: release
default: off
environments:
  dev:
    enabled: true
    fallthrough: on
  staging:
    enabled: true
    fallthrough: on
  prod:
    enabled: true
    fallthrough: on
";

fn push(s3: &SeaweedFs, store: &str, flags: &Path, expected: u64, purge: Option<&str>) {
    let mut command = Command::new(publisher_bin());
    command
        .arg("push")
        .arg(flags)
        .args(["--env", ENV, "--store", store, "--author", "load-test"])
        .envs(s3.aws_env());
    if let Some(worker) = purge {
        command
            .env("FLAGS_PURGE", worker)
            .env("FLAGS_PURGE_TOKEN", PURGE_TOKEN);
    }
    let out = command.output().expect("run publisher");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("version {expected}")),
        "push: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Points the environment at `bytes` (named by their own hash, so only their content is wrong).
fn publish_raw(s3: &SeaweedFs, version: u64, bytes: Vec<u8>) {
    let sha = crate::worker::sha256_hex(&bytes);
    s3.put_raw(
        BUCKET,
        &format!("{PREFIX}/{ENV}/blobs/{sha}.json.gz"),
        bytes,
    );
    let pointer = json!({"version": version, "blob": format!("blobs/{sha}.json.gz"), "sha256": sha,
                         "content_hash": "sha256:0000000000000000000000000000000000000000000000000000000000000000"});
    s3.put_raw(
        BUCKET,
        &format!("{PREFIX}/{ENV}/current.json"),
        pointer.to_string().into_bytes(),
    );
}

/// The `.gz` bytes the good pointer names.
fn s3_blob(s3: &SeaweedFs, pointer: &[u8]) -> Vec<u8> {
    let pointer: Value = serde_json::from_slice(pointer).expect("pointer JSON");
    let name = pointer["blob"].as_str().expect("pointer names a blob");
    s3.get_raw(BUCKET, &format!("{PREFIX}/{ENV}/{name}"))
}

fn health(workerd: &Workerd) -> Value {
    let reply = ureq::get(&format!("{}/_flags/health", workerd.url))
        .call()
        .expect("health");
    serde_json::from_str(&reply.into_string().unwrap_or_default()).expect("health JSON")
}

/// The wrk script: a signed bulk request; every answer counted by the `metadata.version` in
/// its body; totals printed by `done` as `VERSION v n`, `LATENCY p50 p99` (µs), `TOTAL ...`.
fn wrk_script(workerd: &Workerd) -> std::path::PathBuf {
    let bearer = token(
        json!({"sub": "user-42", "exp": now_s() + 3600, "plan": "premium", "country": "US"}),
        SECRET,
    );
    let body = json!({"context": {"appVersion": "2.4.0", "beta": true}}).to_string();
    // Warm the isolate, and check the answer carries the version wrk will count.
    let warm = ureq::post(&format!("{}/ofrep/v1/evaluate/flags", workerd.url))
        .set("Authorization", &format!("Bearer {bearer}"))
        .send_string(&body)
        .expect("bulk request");
    let answer: Value =
        serde_json::from_str(&warm.into_string().unwrap_or_default()).expect("JSON");
    assert_eq!(answer["metadata"]["version"], 1, "{answer}");
    let path = scratch_dir("wrk").join("load.lua");
    let mut lua = std::fs::File::create(&path).expect("lua script");
    let escaped = body.replace('\\', "\\\\").replace('"', "\\\"");
    write!(
        lua,
        r#"wrk.method = "POST"
wrk.body = "{escaped}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {bearer}"
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) versions = {{}} end
function response(status, headers, body)
  local v = string.match(body, '"metadata":{{[^}}]*"version":(%d+)') or ("status" .. status)
  versions[v] = (versions[v] or 0) + 1
end
function done(summary, latency, requests)
  local total = {{}}
  for _, t in ipairs(threads) do
    for v, n in pairs(t:get("versions")) do total[v] = (total[v] or 0) + n end
  end
  for v, n in pairs(total) do io.write(string.format("VERSION %s %d\n", v, n)) end
  io.write(string.format("LATENCY %d %d\n", latency:percentile(50), latency:percentile(99)))
  local e = summary.errors
  io.write(string.format("TOTAL %d %d %d\n", summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout))
end
"#
    )
    .expect("write lua");
    path
}

fn parse_phase(event: &'static str, text: &str, last_error: Value) -> Phase {
    let mut phase = Phase {
        event,
        requests: 0,
        non_2xx: 0,
        socket_errors: 0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        versions: BTreeMap::new(),
        last_error,
        rss_kib: 0,
    };
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match fields.first() {
            // Answers without a version ("statusNNN") show as a shortfall in `check`.
            Some(&"VERSION") => {
                if let Some(version) = fields.get(1).and_then(|v| v.parse::<u64>().ok()) {
                    phase.versions.insert(version, number(2));
                }
            }
            Some(&"LATENCY") => {
                phase.p50_ms = number(1) as f64 / 1000.0;
                phase.p99_ms = number(2) as f64 / 1000.0;
            }
            Some(&"TOTAL") => {
                phase.requests = number(1);
                phase.non_2xx += number(2);
                phase.socket_errors = number(3);
            }
            _ => {}
        }
    }
    assert!(
        phase.requests > 0 || text.contains("TOTAL"),
        "no wrk summary:\n{text}"
    );
    phase
}
