//! OFREP event streams end to end (edge-worker/src/events.rs): the worker in workerd
//! (Miniflare) with its `EventHub` Durable Object, the `publisher` binary, and SSE clients
//! that behave as the OFREP web provider does: bulk fetch, connect to the announced
//! `eventStreams` endpoint, and on each `refetchEvaluation` refetch the bulk answer with
//! `?flagConfigEtag=`. Each client checks every refetch: an announced version must never be
//! answered with an older one.
//!
//! Locally workerd runs the worker and the object in one isolate, so the clients' streams all
//! go through one isolate (in production each browser's request lands on some isolate of its
//! colo and all of them end in the one object).
//!
//! Figures go to `target/artifacts/events-propagation.json`, `events-faults.json` and
//! `events-load.json`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use integration_tests::deployment::{Deployment, Spec};
use integration_tests::propagation::{banner_off_flags, percentile};
use integration_tests::sse::Stream;
use integration_tests::worker::{Origin, Store, Worker, now_s, scratch_dir, token};
use integration_tests::{publisher_bin, repo_root};
use serde_json::{Value, json};

const ENV: &str = "dev";
const IDENTITY_SECRET: &str = "events-identity-secret-not-used-elsewhere";
const PURGE_TOKEN: &str = "events-purge-token";
const FLAG: &str = "beta-banner";
/// The product's promise: a published change reaches every client within a second.
const BOUND: Duration = Duration::from_secs(1);
/// The dashboard's poll interval: how stale a client may be while its stream is down.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What one client saw: its stream opening, or a refetch after a `refetchEvaluation`.
#[derive(Debug, Clone)]
struct Report {
    client: usize,
    /// A stream opened (then `announced` is 0 and `value` null).
    connected: bool,
    /// The version the event announced.
    announced: u64,
    /// The version (metadata) of the refetched answer.
    answer_version: u64,
    value: Value,
    at: Instant,
}

/// The clients' shared switches.
#[derive(Default)]
struct Controls {
    stop: AtomicBool,
    /// Bumped to make every client drop its stream (a cut mid-way) and reconnect.
    cut: AtomicUsize,
    reconnects: AtomicUsize,
}

fn bearer(n: usize) -> String {
    let claims = json!({"sub": format!("sse-user-{n}"), "beta": true, "plan": "free", "exp": now_s() + 3600});
    format!("Bearer {}", token(claims, IDENTITY_SECRET))
}

/// A bulk evaluation by URL (the clients outlive a worker restart): status, ETag, body.
fn bulk(
    agent: &ureq::Agent,
    base: &str,
    bearer: &str,
    query: &str,
    if_none_match: Option<&str>,
) -> Option<(u16, String, Value)> {
    let mut request = agent
        .post(&format!("{base}/ofrep/v1/evaluate/flags{query}"))
        .set("Authorization", bearer)
        .set("Content-Type", "application/json");
    if let Some(tag) = if_none_match {
        request = request.set("If-None-Match", tag);
    }
    let response = match request.send_string(r#"{"context":{}}"#) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(_) => return None,
    };
    let status = response.status();
    let etag = response.header("etag").unwrap_or_default().to_owned();
    let body = response
        .into_string()
        .ok()
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or(Value::Null);
    Some((status, etag, body))
}

fn flag_value(body: &Value) -> Value {
    body["flags"]
        .as_array()
        .and_then(|flags| flags.iter().find(|f| f["key"] == FLAG))
        .map(|f| f["value"].clone())
        .unwrap_or(Value::Null)
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One client, until `controls.stop`: what the OFREP web provider does with a stream, with
/// `Last-Event-ID` on reconnects (which the browser's EventSource sends by itself).
fn client(n: usize, base: &str, controls: &Controls, reports: Sender<Report>) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let bearer = bearer(n);
    let (status, mut etag, first) = bulk(&agent, base, &bearer, "", None).expect("first bulk");
    assert_eq!(status, 200, "client {n}: first bulk answer");
    let mut version = first["metadata"]["version"].as_u64().unwrap_or(0);
    let uri = first["eventStreams"][0]["endpoint"]["requestUri"]
        .as_str()
        .unwrap_or_else(|| panic!("client {n}: no eventStreams in {first}"))
        .to_owned();
    let mut last_id: Option<String> = None;
    let mut retry = Duration::from_millis(250);
    let mut seen_cut = controls.cut.load(Ordering::SeqCst);
    'connect: while !controls.stop.load(Ordering::SeqCst) {
        let mut stream = match Stream::open(base, &uri, last_id.as_deref(), None) {
            Ok(s) if s.status == 200 => s,
            _ => {
                std::thread::sleep(retry);
                continue;
            }
        };
        let _ = reports.send(Report {
            client: n,
            connected: true,
            announced: 0,
            answer_version: version,
            value: Value::Null,
            at: Instant::now(),
        });
        loop {
            if controls.stop.load(Ordering::SeqCst) {
                return;
            }
            let cut = controls.cut.load(Ordering::SeqCst);
            if cut != seen_cut {
                seen_cut = cut;
                drop(stream);
                controls.reconnects.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(retry);
                continue 'connect;
            }
            let event = match stream.next_event(Duration::from_millis(20)) {
                Ok(event) => event,
                Err(_) => {
                    // The server ended the stream (a restart): reconnect after the hint.
                    controls.reconnects.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(retry);
                    continue 'connect;
                }
            };
            if let Some(ms) = stream.retry_ms {
                retry = Duration::from_millis(ms);
            }
            let Some(event) = event else { continue };
            let data: Value = serde_json::from_str(&event.data).expect("event data is JSON");
            if data["type"] != "refetchEvaluation" {
                continue;
            }
            last_id = event.id.clone();
            let tag = data["etag"].as_str().expect("etag").to_owned();
            let announced: u64 = tag
                .trim_matches('"')
                .trim_start_matches('v')
                .parse()
                .unwrap();
            let query = format!("?flagConfigEtag={}", percent_encode(&tag));
            let Some((status, new_etag, answer)) = bulk(&agent, base, &bearer, &query, Some(&etag))
            else {
                continue;
            };
            let at = Instant::now();
            let value = if status == 200 {
                version = answer["metadata"]["version"].as_u64().unwrap_or(0);
                etag = new_etag;
                flag_value(&answer)
            } else {
                // 304: the answer is still the old version's.
                Value::Null
            };
            let _ = reports.send(Report {
                client: n,
                connected: false,
                announced,
                answer_version: version,
                value,
                at,
            });
        }
    }
}

/// Running clients and what they reported.
struct Clients<'a> {
    count: usize,
    reports: Receiver<Report>,
    seen: Vec<Report>,
    controls: &'a Controls,
}

impl Clients<'_> {
    fn record(&mut self, report: Report, label: &str) {
        assert!(
            report.connected || report.answer_version >= report.announced,
            "{label}: client {} was told of version {} and refetched version {}",
            report.client,
            report.announced,
            report.answer_version
        );
        self.seen.push(report);
    }

    /// Waits until every client has refetched `version` (or later), returning each one's
    /// delay from `from` (zero when it had it before `from`). Panics on a client that got an
    /// older answer for an announced version, or that missed `BOUND * 3`.
    fn wait_for(
        &mut self,
        label: &str,
        version: u64,
        value: &Value,
        from: Instant,
    ) -> Vec<Duration> {
        let deadline = Instant::now() + BOUND * 3;
        let mut delays: Vec<Option<Duration>> = vec![None; self.count];
        let check = |delays: &mut Vec<Option<Duration>>, report: &Report| {
            if !report.connected && report.answer_version >= version {
                if report.answer_version == version {
                    assert_eq!(&report.value, value, "{label}: client {}", report.client);
                }
                delays[report.client].get_or_insert(report.at.saturating_duration_since(from));
            }
        };
        for report in &self.seen {
            check(&mut delays, report);
        }
        while delays.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(report) = self.reports.recv_timeout(left) else {
                let missing: Vec<usize> =
                    (0..self.count).filter(|&i| delays[i].is_none()).collect();
                panic!("{label}: clients {missing:?} never refetched version {version}");
            };
            check(&mut delays, &report);
            self.record(report, label);
        }
        let delays: Vec<Duration> = delays.into_iter().flatten().collect();
        eprintln!(
            "{label}: {} clients, fastest {:?}, slowest {:?}",
            delays.len(),
            delays.iter().min().unwrap(),
            delays.iter().max().unwrap()
        );
        delays
    }

    fn drain(&mut self) {
        while let Ok(report) = self.reports.try_recv() {
            self.record(report, "drain");
        }
    }

    /// Refetch reports so far that announced a version newer than `version`.
    fn announced_beyond(&mut self, version: u64) -> usize {
        self.drain();
        self.seen
            .iter()
            .filter(|r| !r.connected && r.announced > version)
            .count()
    }

    /// Waits until every client has opened a stream (at least once more than `before`).
    fn wait_connected(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            self.drain();
            let mut open = vec![false; self.count];
            for r in self.seen.iter().filter(|r| r.connected) {
                open[r.client] = true;
            }
            if open.iter().all(|o| *o) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not every client connected: {open:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `count` clients against the worker at `base` while `body` runs.
fn with_clients<T>(base: &str, count: usize, body: impl FnOnce(&mut Clients<'_>) -> T) -> T {
    let controls = Controls::default();
    let (tx, rx) = channel();
    std::thread::scope(|scope| {
        for n in 0..count {
            let (tx, controls) = (tx.clone(), &controls);
            scope.spawn(move || client(n, base, controls, tx));
        }
        drop(tx);
        let mut clients = Clients {
            count,
            reports: rx,
            seen: Vec::new(),
            controls: &controls,
        };
        // Stops the clients however `body` ends, so a failed assertion does not hang the scope.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let _stop = StopOnDrop(&controls.stop);
        clients.wait_connected();
        body(&mut clients)
    })
}

fn publisher(store: &str, env: &[(&str, String)], args: &[&str]) -> Instant {
    let output = Command::new(publisher_bin())
        .args(args)
        .args(["--env", ENV, "--store", store])
        .envs(env.iter().map(|(k, v)| (*k, v.clone())))
        .current_dir(repo_root())
        .output()
        .expect("run publisher");
    assert!(
        output.status.success(),
        "publisher {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Instant::now()
}

fn write_artifact(name: &str, report: &Value) {
    let dir = repo_root().join("target/artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(name),
        serde_json::to_string_pretty(report).unwrap(),
    )
    .unwrap();
    eprintln!("{name}: {report}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(mut delays: Vec<Duration>) -> Value {
    delays.sort();
    json!({
        "samples": delays.len(),
        "p50_ms": ms(percentile(&delays, 0.5)),
        "p99_ms": ms(percentile(&delays, 0.99)),
        "max_ms": delays.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    })
}

const SSE_CLIENTS: usize = 50;

#[test]
fn fifty_streams_see_push_rollback_kill_and_unkill_and_refetch_the_new_answer() {
    let deployment = Deployment::start(&Spec {
        label: "events",
        environment: ENV,
        identity_secret: IDENTITY_SECRET,
        purge_token: PURGE_TOKEN,
        bindings: &[],
        assets: None,
    });
    let (worker, store, env) = (&deployment.worker, &deployment.store, &deployment.env);
    let examples = repo_root().join("examples/flags");
    let off = banner_off_flags("flags-banner-off");
    publisher(store, env, &["push", examples.to_str().unwrap()]);

    let all = with_clients(&worker.url, SSE_CLIENTS, |clients| {
        let mut all = Vec::new();
        let steps: [(&str, Vec<&str>, u64, Value); 4] = [
            (
                "push (banner off)",
                vec!["push", off.to_str().unwrap()],
                2,
                json!(false),
            ),
            (
                "rollback to 1",
                vec!["rollback", "--to", "1"],
                3,
                json!(true),
            ),
            (
                "kill",
                vec!["kill", FLAG, "--reason", "events test"],
                4,
                json!(false),
            ),
            ("unkill", vec!["unkill", FLAG], 5, json!(true)),
        ];
        for (label, args, version, value) in steps {
            let returned = publisher(store, env, &args);
            let delays = clients.wait_for(label, version, &value, returned);
            assert!(delays.iter().all(|d| *d < BOUND), "{label}: {delays:?}");
            all.extend(delays);
        }
        all
    });
    let mut report = summary(all);
    report["clients"] = json!(SSE_CLIENTS);
    report["steps"] = json!(["push", "rollback", "kill", "unkill"]);
    report["isolates"] = json!("1 (workerd runs the worker and its Durable Object in one isolate)");
    report["measured"] = json!(
        "from the publisher command's return to each client's refetched answer with the new value"
    );
    write_artifact("events-propagation.json", &report);
}

/// A worker on a local HTTP origin over the publisher's local store, restartable on the same
/// port with its Durable Object storage.
struct Local {
    store: Store,
    _origin: Origin,
    bindings: Vec<(&'static str, String)>,
    port: u16,
    persist: PathBuf,
}

impl Local {
    fn new(extra: &[(&'static str, &str)]) -> Local {
        let store = Store::new();
        let origin = Origin::start(&store);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut bindings = vec![
            ("FLAGS_ENV", ENV.to_owned()),
            ("ORIGIN_URL", origin.url.clone()),
            ("IDENTITY_SECRET", IDENTITY_SECRET.to_owned()),
            ("PURGE_TOKEN", PURGE_TOKEN.to_owned()),
        ];
        bindings.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Local {
            store,
            _origin: origin,
            bindings,
            port,
            persist: scratch_dir("events-persist"),
        }
    }

    fn start(&self) -> Worker {
        let bindings: Vec<(&str, &str)> = self
            .bindings
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        Worker::start_with_options(
            &bindings,
            None,
            json!({"port": self.port, "persist": self.persist}),
        )
    }

    fn store_arg(&self) -> String {
        self.store.dir.display().to_string()
    }

    fn purge_env(&self, base: &str) -> Vec<(&'static str, String)> {
        vec![
            ("FLAGS_PURGE", base.to_owned()),
            ("FLAGS_PURGE_TOKEN", PURGE_TOKEN.to_owned()),
        ]
    }
}

#[test]
fn early_notifications_cut_streams_and_object_restarts_leave_no_client_stale() {
    const CLIENTS: usize = 10;
    let local = Local::new(&[]);
    let store = local.store_arg();
    let examples = repo_root().join("examples/flags");
    let off = banner_off_flags("flags-banner-off");
    let mut worker = Some(local.start());
    let base = worker.as_ref().unwrap().url.clone();
    let purge_env = local.purge_env(&base);
    publisher(&store, &purge_env, &["push", examples.to_str().unwrap()]);
    let mut faults =
        json!({"clients": CLIENTS, "poll_interval_ms": POLL_INTERVAL.as_millis() as u64});

    with_clients(&base, CLIENTS, |clients| {
        // 1. A notification for version 2 before the origin serves it: nothing is announced
        // (not version 1 again, not 2) until the pointer moves; then 2 goes out by itself.
        let early = worker.as_ref().unwrap().post(
            "/_flags/notify",
            &json!({"version": 2}),
            &[("Authorization", &format!("Bearer {PURGE_TOKEN}"))],
        );
        assert_eq!(early.status, 200, "{}", early.body);
        assert_eq!(early.json()["pending"], true, "{}", early.body);
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(
            clients.announced_beyond(1),
            0,
            "announced before the origin served it"
        );
        // Pushed without any purge or notify: the object's pending retry finds it.
        let pushed = publisher(&store, &[], &["push", off.to_str().unwrap()]);
        let delays = clients.wait_for("early notification", 2, &json!(false), pushed);
        assert!(delays.iter().all(|d| *d < BOUND), "{delays:?}");
        faults["early_notification"] = summary(delays);

        // 2. Every stream cut mid-way; a push lands while they are down. Reconnecting with
        // Last-Event-ID, each hears of it at once.
        let before = clients.controls.reconnects.load(Ordering::SeqCst);
        clients.controls.cut.fetch_add(1, Ordering::SeqCst);
        let pushed = publisher(&store, &purge_env, &["push", examples.to_str().unwrap()]);
        let delays = clients.wait_for("stream cut", 3, &json!(true), pushed);
        assert!(clients.controls.reconnects.load(Ordering::SeqCst) >= before + CLIENTS);
        assert!(delays.iter().all(|d| *d < BOUND), "{delays:?}");
        faults["stream_cut"] = summary(delays);

        // 3. The runtime (and so the object) restarts, its storage kept, while a kill is
        // published that nobody could notify: the restarted object finds it on waking and
        // tells the reconnecting clients.
        drop(worker.take());
        publisher(
            &store,
            &[],
            &["kill", FLAG, "--reason", "while the edge restarted"],
        );
        worker = Some(local.start());
        let ready = Instant::now();
        let delays = clients.wait_for("object restarted", 4, &json!(false), ready);
        assert!(delays.iter().all(|d| *d < BOUND), "{delays:?}");
        faults["object_restarted"] = summary(delays);
    });
    faults["measured"] = json!(
        "early notification: from the push's return (no purge, no notify); stream cut: from the push's return; object restarted: from the restarted runtime being ready"
    );
    write_artifact("events-faults.json", &faults);
}

/// Resident memory (kB) of the runtime's processes, by process name.
fn rss_kb(worker: &Worker) -> Vec<(String, u64)> {
    worker
        .pids()
        .into_iter()
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let kb = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some((name.trim().to_owned(), kb))
        })
        .collect()
}

const IDLE_STREAMS: usize = 1_000;

#[test]
fn a_thousand_idle_streams_all_hear_a_publish_then_the_cap_refuses_and_cors_and_heartbeats_hold() {
    let max = IDLE_STREAMS.to_string();
    let local = Local::new(&[
        ("EVENTS_MAX_CONNECTIONS", max.as_str()),
        ("EVENTS_HEARTBEAT_S", "1"),
        ("CORS_ORIGINS", "https://dash.example"),
    ]);
    let store = local.store_arg();
    let worker = local.start();
    let purge_env = local.purge_env(&worker.url);
    let examples = repo_root().join("examples/flags");
    publisher(&store, &purge_env, &["push", examples.to_str().unwrap()]);
    let path = format!("/ofrep/v1/events/{ENV}?since=1");

    // CORS: the OFREP routes' allowlist.
    let refused = Stream::open(&worker.url, &path, None, Some("https://evil.example")).unwrap();
    assert_eq!(refused.status, 403);
    let mut allowed = Stream::open(&worker.url, &path, None, Some("https://dash.example")).unwrap();
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://dash.example")
    );
    assert_eq!(allowed.header("content-type"), Some("text/event-stream"));
    // Heartbeats keep an idle stream talking (1 s here).
    assert!(
        allowed
            .next_event(Duration::from_millis(300))
            .unwrap()
            .is_none()
    );
    assert!(
        allowed.saw_bytes(Duration::from_millis(2_500)),
        "no heartbeat within 2.5 s"
    );
    let hint = allowed.retry_ms.expect("a retry hint");
    assert!(
        (125..=250).contains(&hint),
        "retry hint {hint} outside [125, 250]"
    );
    drop(allowed);
    // Its place is freed once the runtime notices (a heartbeat write fails): two beats.
    std::thread::sleep(Duration::from_millis(2_500));

    let before = rss_kb(&worker);
    let opening = Instant::now();
    let mut streams: Vec<Stream> = (0..IDLE_STREAMS)
        .map(|i| {
            let s = Stream::open(&worker.url, &path, None, None).unwrap();
            assert_eq!(s.status, 200, "stream {i}");
            s
        })
        .collect();
    eprintln!("opened {IDLE_STREAMS} streams in {:?}", opening.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kb(&worker);

    // One over the cap: refused with a clear answer, so the provider polls instead.
    let mut over = Stream::open(&worker.url, &path, None, None).unwrap();
    assert_eq!(over.status, 503);
    assert_eq!(over.header("retry-after"), Some("30"));
    assert!(over.read_to_end().contains("poll instead"));

    // A publish reaches every idle stream.
    let pushed = publisher(&store, &purge_env, &["kill", FLAG, "--reason", "load"]);
    let mut last = Duration::ZERO;
    for (i, stream) in streams.iter_mut().enumerate() {
        let event = loop {
            let event = stream
                .next_event(Duration::from_secs(5))
                .unwrap()
                .unwrap_or_else(|| panic!("stream {i} heard nothing"));
            if event.data.contains("refetchEvaluation") {
                break event;
            }
        };
        assert_eq!(event.id.as_deref(), Some("\"v2\""), "stream {i}");
        last = pushed.elapsed().max(last);
    }
    eprintln!("all heard the kill after {last:?}");
    // A closed stream frees its place once the runtime notices (at the latest when the next
    // heartbeat cannot be written).
    streams.truncate(IDLE_STREAMS - 1);
    std::thread::sleep(Duration::from_millis(2_500));
    let again = Stream::open(&worker.url, &path, None, None).unwrap();
    assert_eq!(again.status, 200, "a freed place is reusable");

    let per_process: Vec<Value> = before
        .iter()
        .zip(&after)
        .map(|((name, b), (_, a))| {
            json!({"process": name, "before_kb": b, "after_kb": a,
                   "per_stream_bytes": (a.saturating_sub(*b) * 1024) / IDLE_STREAMS as u64})
        })
        .collect();
    write_artifact(
        "events-load.json",
        &json!({
            "idle_streams": IDLE_STREAMS,
            "memory": per_process,
            "all_heard_the_kill_within_ms": last.as_secs_f64() * 1e3,
            "note": "node is Miniflare's loopback proxy in front of workerd; in production only the Durable Object's share applies",
        }),
    );
}
