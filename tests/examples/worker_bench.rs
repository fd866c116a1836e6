//! Latency of the edge worker in bare workerd (no wrangler/Miniflare proxy in front), with wrk,
//! in one run: the trivial `/_flags/ping` route, an OFREP single-flag request and an OFREP bulk
//! request for 100 flags (both with a signed token), and each p50 as a ratio of the trivial one;
//! beside them a JavaScript worker in the same workerd process (`tests/worker/baseline.mjs`),
//! answering a GET and a POST whose body it reads: the runtime's own floor.
//!
//! Run: `cargo xtask worker-build && cargo run --release -p integration-tests --example worker_bench`
//! Needs `wrk` (Debian package) and `npm ci` (workerd ships in the `workerd` npm package).
//! Environment: `BENCH_SECONDS` per route and round (default 5), `BENCH_ROUNDS` (default 3;
//! figures are medians over rounds, ratios taken within each round), `BENCH_CONNECTIONS`
//! (default 4), `BENCH_EXTRA_PATHS` (more routes to time alongside, comma-separated).

use std::io::Write as _;
use std::process::Command;

use integration_tests::worker::random::{self, Rng};
use integration_tests::worker::{
    Origin, Store, Workerd, built_worker, env_number, now_s, scratch_dir, token,
};
use serde_json::json;

const SECRET: &str = "bench-secret";

fn main() {
    let seconds: u64 = env_number("BENCH_SECONDS", 5);
    let connections: u64 = env_number("BENCH_CONNECTIONS", 4);
    let build = built_worker();
    let wasm = build.join("index_bg.wasm");
    let raw = std::fs::read(&wasm).expect("built wasm");
    let gz = integration_tests::worker::gzip(&raw);
    println!(
        "worker wasm: {} bytes raw, {} bytes gzipped (flate2 default level)",
        raw.len(),
        gz.len()
    );

    let store = Store::new();
    let blob = random::blob(&mut Rng::new(0xbe7c), "bench", 1, 100);
    store.publish("bench", 1, &blob);
    let origin = Origin::start(&store);

    // Bare workerd, killed on every exit path, panics included.
    let workerd = Workerd::start(&[
        ("FLAGS_ENV", "bench"),
        ("ORIGIN_URL", &origin.url),
        ("IDENTITY_SECRET", SECRET),
        ("REVALIDATE_MS", "250"),
    ]);
    let base = workerd.url.clone();

    let bearer = token(
        json!({"sub": "user-42", "exp": now_s() + 3600, "plan": "pro", "country": "US"}),
        SECRET,
    );
    let body = json!({"context": {"appVersion": "2.1.0", "beta": true}}).to_string();
    // Warm the isolate (first load) and check the answer before timing it.
    let check = ureq::post(&format!("{base}/ofrep/v1/evaluate/flags"))
        .set("Authorization", &format!("Bearer {bearer}"))
        .send_string(&body)
        .expect("bulk request");
    let answer: serde_json::Value = serde_json::from_str(&check.into_string().unwrap()).unwrap();
    assert_eq!(
        answer["flags"].as_array().map(Vec::len),
        Some(100),
        "bulk answers 100 flags"
    );

    let single_path = format!("{base}/ofrep/v1/evaluate/flags/{SINGLE_FLAG}");
    let check = ureq::post(&single_path)
        .set("Authorization", &format!("Bearer {bearer}"))
        .send_string(&body)
        .expect("single-flag request");
    let answer: serde_json::Value = serde_json::from_str(&check.into_string().unwrap()).unwrap();
    assert_eq!(answer["key"], SINGLE_FLAG, "single answers its flag");

    let script = scratch_dir("workerd-bench").join("post.lua");
    let mut lua = std::fs::File::create(&script).unwrap();
    writeln!(lua, "wrk.method = \"POST\"").unwrap();
    writeln!(lua, "wrk.body = {}", lua_string(&body)).unwrap();
    writeln!(lua, "wrk.headers[\"Content-Type\"] = \"application/json\"").unwrap();
    writeln!(lua, "wrk.headers[\"Authorization\"] = \"Bearer {bearer}\"").unwrap();
    drop(lua);

    // Every route once per round, rounds back to back: each round's ratios compare routes timed
    // seconds apart, and the median over rounds drops the rounds a noisy neighbour spoiled.
    let ping = format!("{base}/_flags/ping");
    let bulk_path = format!("{base}/ofrep/v1/evaluate/flags");
    let post = Some(script.as_path());
    let mut routes: Vec<(String, String, Option<&std::path::Path>, &str)> = vec![
        ("trivial  GET  /_flags/ping".into(), ping.clone(), None, ""),
        // The trivial route sent as the OFREP requests are (POST, body, token; the body unread).
        (
            "trivial  POST /_flags/ping, body, token".into(),
            ping,
            post,
            "",
        ),
        // The runtime's floor: a JavaScript worker in the same process.
        (
            "JS baseline GET".into(),
            workerd.baseline_url.clone(),
            None,
            "",
        ),
        (
            "JS baseline POST, body read".into(),
            workerd.baseline_url.clone(),
            post,
            "",
        ),
        (
            "single   POST .../flags/{key}, token".into(),
            single_path,
            post,
            " (target <= 1.15x)",
        ),
        (
            "bulk     POST .../flags, 100, token".into(),
            bulk_path,
            post,
            " (target <= 1.25x)",
        ),
    ];
    // Other routes to time in the same run, sent as the OFREP requests are (comma-separated
    // paths): for probes added to a local build while profiling.
    for p in std::env::var("BENCH_EXTRA_PATHS")
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
    {
        routes.push((p.to_owned(), format!("{base}{p}"), post, ""));
    }
    let rounds: usize = env_number("BENCH_ROUNDS", 3);
    let mut timings: Vec<Vec<Latency>> = (0..routes.len()).map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for ((_, url, script, _), samples) in routes.iter().zip(&mut timings) {
            samples.push(wrk(url, *script, seconds, connections));
        }
    }
    drop(workerd);
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    // Per round, each route's p50 over a baseline route's; the median over rounds.
    let ratio = |route: usize, baseline: usize| {
        median(
            (0..rounds)
                .map(|r| timings[route][r].p50_ms / timings[baseline][r].p50_ms)
                .collect(),
        )
    };
    println!(
        "bare workerd, wrk -t2 -c{connections} -d{seconds}s per route, {rounds} rounds, medians over rounds:"
    );
    for (i, (name, _, _, target)) in routes.iter().enumerate() {
        println!(
            "  {name:<40} p50 {:>7.3} ms  p99 {:>7.3} ms  {:>8.0} req/s  p50 {:.2}x trivial{target}",
            median(timings[i].iter().map(|l| l.p50_ms).collect()),
            median(timings[i].iter().map(|l| l.p99_ms).collect()),
            median(timings[i].iter().map(|l| l.rps).collect()),
            ratio(i, 0)
        );
    }
    println!(
        "  JS baseline: reading the body costs {:.2}x its GET; single is {:.2}x and bulk {:.2}x the JS POST",
        ratio(3, 2),
        ratio(4, 3),
        ratio(5, 3),
    );
}

/// A flag of the random bench blob (`flag-000` .. `flag-099`).
const SINGLE_FLAG: &str = "flag-042";

struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    rps: f64,
}

fn wrk(url: &str, script: Option<&std::path::Path>, seconds: u64, connections: u64) -> Latency {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let out = command
        .arg(url)
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(prefix)
                    .map(|rest| parse_duration_ms(rest.trim()))
            })
            .unwrap_or_else(|| panic!("no {prefix} in wrk output:\n{text}"))
    };
    let rps = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Requests/sec:")
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0);
    assert!(!text.contains("Non-2xx"), "wrk saw errors:\n{text}");
    Latency {
        p50_ms: field("50%"),
        p99_ms: field("99%"),
        rps,
    }
}

fn parse_duration_ms(text: &str) -> f64 {
    let number: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let value: f64 = number.parse().unwrap_or(f64::NAN);
    match &text[number.len()..] {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        unit => panic!("unknown wrk unit {unit:?}"),
    }
}

fn lua_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}
