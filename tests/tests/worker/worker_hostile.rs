//! Hostile input at the edge, against the built worker in workerd: oversized and endless
//! bodies, deep nesting, 10,000 attributes, huge strings, invalid UTF-8, forged, expired and
//! replayed tokens, disallowed CORS preflights, odd and 10 KB flag keys. Each must get its
//! status and an OFREP error body, and none may kill the isolate: every test ends by checking,
//! on the health endpoint, that the isolate that served it is the one that started.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use integration_tests::worker::random::{self, Rng};
use integration_tests::worker::{Origin, Store, Worker, now_s, token};
use serde_json::{Map, Value, json};

const SECRET: &str = "hostile-secret";
const ENV: &str = "prod";
const DASHBOARD: &str = "https://dash.example";
const BULK: &str = "/ofrep/v1/evaluate/flags";

struct Shared {
    _store: Store,
    _origin: Origin,
    worker: Worker,
    /// One flag key of the served blob.
    key: String,
}

/// One worker for the whole file (tests run in parallel against it).
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let store = Store::new();
        let blob = random::blob(&mut Rng::new(11), ENV, 1, 20);
        let key = blob.body.flags[0].key.clone();
        store.publish(ENV, 1, &blob);
        let origin = Origin::start(&store);
        let worker = Worker::start(&[
            ("FLAGS_ENV", ENV),
            ("ORIGIN_URL", &origin.url),
            ("IDENTITY_SECRET", SECRET),
            ("CORS_ORIGINS", DASHBOARD),
            ("REVALIDATE_MS", "250"),
        ]);
        worker.wait_for_health(Duration::from_secs(20), |h| h["loaded"] == true);
        Shared {
            _store: store,
            _origin: origin,
            worker,
            key,
        }
    })
}

/// The isolate's start time and request count, from the health endpoint.
fn isolate(worker: &Worker) -> (u64, u64) {
    let health = worker.health();
    let started = health["isolate"]["started_at_ms"].as_u64();
    let requests = health["isolate"]["requests"].as_u64();
    (
        started.expect("health has isolate.started_at_ms"),
        requests.expect("health has isolate.requests"),
    )
}

/// Asserts the isolate seen in `before` is still the one serving, having counted at least
/// `sent` more requests (a panic would have replaced it and reset both).
#[track_caller]
fn assert_same_isolate(worker: &Worker, before: (u64, u64), sent: u64) {
    let after = isolate(worker);
    assert_eq!(after.0, before.0, "the isolate restarted");
    assert!(
        after.1 > before.1 + sent,
        "request count went from {} to {} over {sent} requests: the isolate restarted",
        before.1,
        after.1
    );
}

#[track_caller]
fn assert_ofrep_error(reply: &integration_tests::worker::Reply, status: u16, details: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["errorDetails"], details, "{body}");
    assert!(body["errorCode"].is_string(), "{body}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

/// Sends raw bytes on a fresh connection and returns (status, body) of the answer, reading
/// for at most `timeout`. Write errors are ignored: a worker may answer (and stop reading)
/// before the client is done sending.
fn raw_exchange(
    worker: &Worker,
    head: &[u8],
    body_chunks: &[&[u8]],
    timeout: Duration,
) -> (u16, String) {
    let address = worker.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect to the worker");
    stream
        .set_read_timeout(Some(timeout))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(timeout))
        .expect("write timeout");
    let _ = stream.write_all(head);
    for chunk in body_chunks {
        if stream.write_all(chunk).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
        if let Some(end) = find(&answer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|len| answer.len() >= end + 4 + len) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer within {timeout:?}: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn bodies_over_the_limit_are_refused_while_streaming() {
    let s = shared();
    let before = isolate(&s.worker);
    let head = format!(
        "POST {BULK} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    // 2 MB of chunked body that never ends: a worker that buffers the whole body before
    // answering would wait forever; this one stops after the drain limit and answers 413.
    let piece = chunk(&[b' '; 64 * 1024]);
    let pieces: Vec<&[u8]> = std::iter::repeat_n(piece.as_slice(), 32).collect();
    let started = Instant::now();
    let (status, body) = raw_exchange(&s.worker, head.as_bytes(), &pieces, Duration::from_secs(10));
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(&body).expect("OFREP error body");
    assert_eq!(body["errorCode"], "INVALID_CONTEXT");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A finished chunked body just over the limit: read, then refused.
    let mut over = chunk(&vec![b' '; 16 * 1024 + 1]);
    over.extend_from_slice(b"0\r\n\r\n");
    let (status, _) = raw_exchange(
        &s.worker,
        head.as_bytes(),
        &[&over],
        Duration::from_secs(10),
    );
    assert_eq!(status, 413);

    // A declared 100 MB body, of which only 1 KB ever comes: refused without reading it.
    let declared = format!(
        "POST {BULK} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
    );
    let (status, _) = raw_exchange(
        &s.worker,
        declared.as_bytes(),
        &[&[b' '; 1024]],
        Duration::from_secs(10),
    );
    assert_eq!(status, 413);

    // Exactly at the limit is still served.
    let mut exact = br#"{"context":{}}"#.to_vec();
    exact.resize(16 * 1024, b' ');
    let reply = s.worker.request("POST", BULK, &[], Some(&exact));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_same_isolate(&s.worker, before, 4);
}

#[test]
fn hostile_bodies_get_ofrep_errors() {
    let s = shared();
    let before = isolate(&s.worker);
    let post = |body: &[u8]| {
        s.worker.request(
            "POST",
            BULK,
            &[("Content-Type", "application/json")],
            Some(body),
        )
    };

    let deep = format!(
        r#"{{"context":{{"a":{}1{}}}}}"#,
        "[".repeat(7_000),
        "]".repeat(7_000)
    );
    assert_ofrep_error(
        &post(deep.as_bytes()),
        400,
        "request body nests deeper than 8 levels",
    );

    // 10,000 attributes do not fit in the body limit, however compactly written.
    let wide: Map<String, Value> = (0..10_000).map(|i| (format!("{i}"), json!(0))).collect();
    let body = json!({ "context": wide }).to_string();
    assert_ofrep_error(
        &post(body.as_bytes()),
        413,
        "request body is larger than 16384 bytes",
    );
    let list = format!(r#"{{"context":{{"a":[{}0]}}}}"#, "0,".repeat(7_000));
    assert_ofrep_error(
        &post(list.as_bytes()),
        400,
        "context has more than 128 attributes",
    );

    // A 15 KB string is within the limits and evaluates; a 20 KB one is refused.
    let long = json!({"context": {"targetingKey": "x".repeat(15_000)}}).to_string();
    let reply = post(long.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["flags"].as_array().map(Vec::len), Some(20));
    let huge = json!({"context": {"targetingKey": "x".repeat(20_000)}}).to_string();
    assert_eq!(post(huge.as_bytes()).status, 413);

    for bad in [
        &b"{\"context\":{\"name\":\"\xff\xfe\"}}"[..],
        b"{\"context\":{\"\xc3\":1}}",
        br#"{"context":{"name":"\ud800"}}"#,
        b"{\"context\":{\"a\":1}}\x00",
        b"\xef\xbb\xbf{\"context\":{}}",
    ] {
        assert_ofrep_error(&post(bad), 400, "request body is not valid JSON");
    }
    // NUL inside a string is JSON and harmless.
    assert_eq!(
        post(br#"{"context":{"targetingKey":"a\u0000b"}}"#).status,
        200
    );
    assert_same_isolate(&s.worker, before, 12);
}

fn forged(header: &str, claims: &Value, key: &[u8]) -> String {
    use hmac::Mac as _;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("hmac key");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn forged_expired_and_replayed_tokens_are_refused() {
    let s = shared();
    let before = isolate(&s.worker);
    let now = now_s();
    let good = json!({"sub": "user-1", "exp": now + 600});
    let single = format!("{BULK}/{}", s.key);
    let with_token = |token: &str| {
        s.worker.post(
            &single,
            &json!({"context": {}}),
            &[("Authorization", &format!("Bearer {token}"))],
        )
    };
    let unsigned = |header: &str| {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(good.to_string())
        )
    };
    let invalid = "identity token is invalid";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            unsigned(r#"{"alg":"none","typ":"JWT"}"#),
            invalid,
        ),
        ("alg None", unsigned(r#"{"alg":"None"}"#), invalid),
        ("no alg", unsigned(r#"{"typ":"JWT"}"#), invalid),
        (
            "HS512 header",
            forged(r#"{"alg":"HS512"}"#, &good, SECRET.as_bytes()),
            invalid,
        ),
        (
            "RS256 header",
            forged(r#"{"alg":"RS256"}"#, &good, SECRET.as_bytes()),
            invalid,
        ),
        ("wrong key", token(good.clone(), "another-secret"), invalid),
        ("empty key", token(good.clone(), ""), invalid),
        (
            "expired",
            token(json!({"sub": "u", "exp": now - 1}), SECRET),
            "identity token has expired",
        ),
        (
            "not yet valid",
            token(
                json!({"sub": "u", "exp": now + 600, "nbf": now + 300}),
                SECRET,
            ),
            "identity token has expired",
        ),
        (
            "for another environment",
            token(json!({"sub": "u", "exp": now + 600, "aud": "dev"}), SECRET),
            "identity token is for another environment",
        ),
        (
            "8 KB token",
            token(
                json!({"sub": "u", "exp": now + 600, "pad": "x".repeat(8_000)}),
                SECRET,
            ),
            invalid,
        ),
        ("garbage", "a.b.c".into(), invalid),
        (
            "four parts",
            format!("{}.x", token(good.clone(), SECRET)),
            invalid,
        ),
    ];
    for (what, token, details) in &cases {
        let reply = with_token(token);
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        assert_eq!(reply.json()["errorDetails"], *details, "{what}");
        assert_eq!(reply.json()["key"], s.key.as_str(), "{what}");
    }
    // The same tokens in the cookie are refused alike.
    let reply = s.worker.post(
        BULK,
        &json!({}),
        &[("Cookie", &format!("ff_token={}", cases[0].1))],
    );
    assert_ofrep_error(&reply, 401, invalid);
    // The right token for this environment works, with or without `aud`.
    for claims in [
        good.clone(),
        json!({"sub": "user-1", "exp": now + 600, "aud": ["dev", ENV]}),
    ] {
        assert_eq!(with_token(&token(claims, SECRET)).status, 200);
    }
    assert_same_isolate(&s.worker, before, cases.len() as u64 + 3);
}

#[test]
fn preflights_and_calls_from_disallowed_origins_are_refused() {
    let s = shared();
    let before = isolate(&s.worker);
    for origin in [
        "https://evil.example",
        "null",
        "https://dash.example.evil",
        "http://dash.example",
    ] {
        let preflight = s.worker.request(
            "OPTIONS",
            BULK,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "authorization, content-type",
                ),
            ],
            None,
        );
        assert_ofrep_error(&preflight, 403, "origin is not allowed");
        assert_eq!(
            preflight.header("access-control-allow-origin"),
            None,
            "{origin}"
        );
        let call = s.worker.post(BULK, &json!({}), &[("Origin", origin)]);
        assert_ofrep_error(&call, 403, "origin is not allowed");
        assert_eq!(call.header("access-control-allow-origin"), None);
    }
    let allowed = s.worker.request(
        "OPTIONS",
        BULK,
        &[
            ("Origin", DASHBOARD),
            ("Access-Control-Request-Method", "POST"),
        ],
        None,
    );
    assert_eq!(allowed.status, 204);
    assert_same_isolate(&s.worker, before, 9);
}

#[test]
fn odd_and_huge_flag_keys_are_answered_safely() {
    let s = shared();
    let before = isolate(&s.worker);
    let eval = |key: &str| s.worker.post(&format!("{BULK}/{key}"), &json!({}), &[]);
    // Unknown but well-formed keys: 404 FLAG_NOT_FOUND, the decoded key echoed as JSON.
    for (raw, decoded) in [
        (
            "%22%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "\"<script>alert(1)</script>",
        ),
        ("%00", "\0"),
        ("..%2F..%2Fetc%2Fpasswd", "../../etc/passwd"),
        ("%F0%9F%9A%80", "\u{1F680}"),
        ("a%20b", "a b"),
    ] {
        let reply = eval(raw);
        assert_eq!(reply.status, 404, "{raw}: {}", reply.body);
        assert_eq!(reply.json()["key"], decoded, "{raw}");
        assert_eq!(reply.json()["errorCode"], "FLAG_NOT_FOUND");
    }
    // Not UTF-8 after decoding, or a lone '%': 400 and the key is not echoed.
    for raw in ["%ff", "%C3", "%", "%zz"] {
        let reply = eval(raw);
        assert_ofrep_error(&reply, 400, "flag key is empty or not valid UTF-8");
        assert!(reply.json().get("key").is_none());
    }
    let reply = eval(&"k".repeat(10 * 1024));
    assert_ofrep_error(&reply, 400, "flag key is longer than 256 bytes");
    assert!(reply.json().get("key").is_none());
    // A raw non-UTF-8 byte in the request line: refused with a 4xx, never a 5xx.
    let mut bytes = format!("POST {BULK}/").into_bytes();
    bytes.push(0xff);
    bytes.extend_from_slice(
        b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    let (status, _) = raw_exchange(&s.worker, &bytes, &[], Duration::from_secs(10));
    assert!(
        (400..500).contains(&status),
        "raw 0xFF in the path answered {status}"
    );
    // The served flag still answers.
    assert_eq!(eval(&s.key).status, 200);
    assert_same_isolate(&s.worker, before, 12);
}
