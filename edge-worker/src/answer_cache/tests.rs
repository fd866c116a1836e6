//! The answer cache's guarantees, through the whole OFREP pipeline ([`crate::ofrep::handle`])
//! and on the cache alone (its bounds).

use super::*;
use crate::identity::sign_hs256;
use crate::loader::CanarySplit;
use crate::ofrep::{EvalRequest, handle};
use serde_json::{Value, json};
use shared_eval::logic::{Expr, LogicOp};
use shared_eval::{Blob, Body, Header};

const SECRET: &str = "answer-cache-secret";
const NOW_MS: i64 = 1_800_000_000_000;
const NOW_S: i64 = NOW_MS / 1000;

fn snapshot(flags: Value) -> Snapshot {
    let order: Vec<usize> = (0..flags.as_array().map_or(0, Vec::len)).collect();
    let body: Body = serde_json::from_value(
        json!({"attrs": [["targetingKey"]], "flags": flags, "eval_order": order}),
    )
    .expect("body");
    let header = Header {
        environment: "prod".into(),
        version: 1,
        previous: None,
        content_hash: String::new(),
        author: "t".into(),
        source_commit: None,
        created_at: "2026-12-04T00:00:00Z".into(),
    };
    Snapshot::from_json(&serde_json::to_vec(&Blob::new(header, body)).unwrap()).unwrap()
}

/// On for `alice`, off for everyone else; `killed` forces off.
fn alice_flag(key: &str, killed: bool) -> Value {
    json!({"key": key, "kind": "release", "value_type": "boolean",
        "variants": [{"name": "on", "value": true}, {"name": "off", "value": false}],
        "default_variant": 1, "off_variant": 1, "enabled": true, "killed": killed,
        "unsigned_attrs": [0],
        "targeting": {"rules": {"rules": [{"id": "alice",
            "condition": {"test": {"attr": 0, "op": {"equals": "alice"}}},
            "serve": {"variant": 0}}], "fallthrough": {"variant": 1}}}})
}

fn blob(killed: bool) -> Snapshot {
    snapshot(json!([alice_flag("a", killed), alice_flag("b", false)]))
}

fn served(snapshot: &Snapshot, version: u64) -> Served<'_> {
    Served {
        snapshot,
        version,
        canary: None,
        event_streams: false,
    }
}

fn token(sub: &str, exp_s: i64) -> String {
    let claims = json!({"sub": sub, "exp": exp_s});
    sign_hs256(claims.as_object().unwrap(), SECRET.as_bytes())
}

struct Ask<'a> {
    key: Option<&'a str>,
    body: &'a str,
    bearer: Option<String>,
    if_none_match: Option<&'a str>,
    secret: &'a str,
    now_ms: i64,
}

impl Default for Ask<'_> {
    fn default() -> Self {
        Ask {
            key: None,
            body: "",
            bearer: None,
            if_none_match: None,
            secret: SECRET,
            now_ms: NOW_MS,
        }
    }
}

fn ask(served: Served<'_>, ask: &Ask<'_>) -> crate::http::Reply {
    let authorization = ask.bearer.as_ref().map(|t| format!("Bearer {t}"));
    handle(
        &EvalRequest {
            key: ask.key,
            body: ask.body.as_bytes(),
            authorization: authorization.as_deref(),
            cookie: None,
            if_none_match: ask.if_none_match,
            environment: "prod",
        },
        Some(served),
        Some(ask.secret),
        ask.now_ms,
    )
}

fn value_of(reply: &crate::http::Reply, flag: &str) -> Value {
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    match body.get("flags") {
        Some(flags) => flags
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == flag)
            .map(|f| f["value"].clone())
            .unwrap(),
        None => body["value"].clone(),
    }
}

fn hits() -> u64 {
    stats().hits
}

#[test]
fn a_repeated_question_is_answered_from_the_cache_with_the_same_bytes() {
    let snap = blob(false);
    let alice = Ask {
        bearer: Some(token("alice", NOW_S + 60)),
        ..Ask::default()
    };
    let first = ask(served(&snap, 1), &alice);
    assert_eq!((first.status, hits()), (200, 0));
    let again = ask(served(&snap, 1), &alice);
    assert_eq!(hits(), 1, "the second request is a hit");
    assert_eq!(again, first, "status, headers and body identical");
    assert_eq!(value_of(&again, "a"), json!(true));

    let single = Ask {
        key: Some("a"),
        ..alice
    };
    let one = ask(served(&snap, 1), &single);
    assert_eq!(ask(served(&snap, 1), &single), one);
    assert_eq!(value_of(&one, "a"), json!(true));
    assert_eq!(one.header("Cache-Control"), Some("private, no-store"));
    assert_eq!(hits(), 2);
}

#[test]
fn another_identity_body_or_flag_is_never_given_a_cached_answer() {
    let snap = blob(false);
    let alice = Ask {
        bearer: Some(token("alice", NOW_S + 60)),
        ..Ask::default()
    };
    assert_eq!(value_of(&ask(served(&snap, 1), &alice), "a"), json!(true));
    let bob = Ask {
        bearer: Some(token("bob", NOW_S + 60)),
        ..Ask::default()
    };
    assert_eq!(value_of(&ask(served(&snap, 1), &bob), "a"), json!(false));
    // Anonymous callers differ only by their body's targeting key.
    let anonymous = |who: &'static str| Ask {
        body: match who {
            "alice" => r#"{"context":{"targetingKey":"alice"}}"#,
            _ => r#"{"context":{"targetingKey":"bob"}}"#,
        },
        ..Ask::default()
    };
    assert_eq!(
        value_of(&ask(served(&snap, 1), &anonymous("alice")), "a"),
        json!(true)
    );
    assert_eq!(
        value_of(&ask(served(&snap, 1), &anonymous("bob")), "a"),
        json!(false)
    );
    // Single-flag answers are per flag.
    let single = |key| Ask {
        key: Some(key),
        bearer: Some(token("alice", NOW_S + 60)),
        ..Ask::default()
    };
    let a = ask(served(&snap, 1), &single("a"));
    let missing = ask(served(&snap, 1), &single("missing"));
    assert_eq!(
        (a.status, missing.status),
        (200, 404),
        "{:?}",
        String::from_utf8_lossy(&missing.body)
    );
    assert_eq!(hits(), 0, "no question was asked twice");
}

#[test]
fn an_expired_or_no_longer_verifiable_token_is_refused_though_its_answer_is_cached() {
    let snap = blob(false);
    let alice = Ask {
        bearer: Some(token("alice", NOW_S + 60)),
        ..Ask::default()
    };
    assert_eq!(ask(served(&snap, 1), &alice).status, 200);
    assert_eq!(ask(served(&snap, 1), &alice).status, 200);
    assert_eq!(hits(), 1);
    // Its `exp` passes: refused, although the answer is still held.
    let later = Ask {
        now_ms: NOW_MS + 60_000,
        ..alice
    };
    let refused = ask(served(&snap, 1), &later);
    assert_eq!(refused.status, 401);
    let body: Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(body["errorDetails"], "identity token has expired");
    assert_eq!(stats().entries, 1, "refused in front of a held answer");
    // The secret rotated (the token is revoked): refused too.
    let rotated = Ask {
        secret: "rotated-secret",
        bearer: Some(token("alice", NOW_S + 60)),
        ..Ask::default()
    };
    assert_eq!(ask(served(&snap, 1), &rotated).status, 401);
    // A tampered token never matches the cached one's entry or verifies.
    let tampered = Ask {
        bearer: Some(format!("{}x", token("alice", NOW_S + 60))),
        ..Ask::default()
    };
    assert_eq!(ask(served(&snap, 1), &tampered).status, 401);
}

#[test]
fn a_new_blob_or_version_never_serves_an_old_answer() {
    let (live, killed) = (blob(false), blob(true));
    let alice = Ask {
        bearer: Some(token("alice", NOW_S + 60)),
        ..Ask::default()
    };
    assert_eq!(value_of(&ask(served(&live, 1), &alice), "a"), json!(true));
    assert_eq!(value_of(&ask(served(&live, 1), &alice), "a"), json!(true));
    // `publisher kill`: a new blob (and version), answered at once.
    let after_kill = ask(served(&killed, 2), &alice);
    assert_eq!(value_of(&after_kill, "a"), json!(false));
    assert_eq!(after_kill.header("X-Flags-Version"), Some("2"));
    // A rollback to the first blob under a new version: its answers say so.
    let rolled_back = ask(served(&live, 3), &alice);
    assert_eq!(value_of(&rolled_back, "a"), json!(true));
    assert_eq!(rolled_back.header("X-Flags-Version"), Some("3"));
    let metadata: Value = serde_json::from_slice(&rolled_back.body).unwrap();
    assert_eq!(metadata["metadata"]["version"], 3);
    assert_eq!(hits(), 1, "only the repeat under version 1 was a hit");
}

#[test]
fn a_canary_share_change_recomputes_who_gets_which_track() {
    let (stable, canary) = (blob(false), blob(true));
    let split = |buckets| CanarySplit {
        buckets,
        salt: "canary-prod-2".into(),
        since: 2,
    };
    let (none, all) = (split(0), split(shared_eval::BUCKETS));
    let with = |split| Served {
        snapshot: &stable,
        version: 2,
        canary: Some((&canary, split)),
        event_streams: false,
    };
    let alice = Ask {
        bearer: Some(token("alice", NOW_S + 60)),
        ..Ask::default()
    };
    let first = ask(with(&none), &alice);
    assert_eq!(first.header("X-Flags-Track"), Some("stable"));
    let widened = ask(with(&all), &alice);
    assert_eq!(widened.header("X-Flags-Track"), Some("canary"));
    assert_eq!(value_of(&widened, "a"), json!(false));
    // Cached on the canary track, counted and answered from it.
    assert_eq!(ask(with(&all), &alice), widened);
    assert_eq!(hits(), 1);
}

#[test]
fn answers_that_read_the_clock_are_never_cached() {
    // flagd's `$flagd.timestamp > NOW_S`: off now, on a second later.
    let later = Expr::Op(LogicOp::Gt, vec![Expr::Timestamp, Expr::Lit(json!(NOW_S))]);
    let on_later = Expr::Op(
        LogicOp::If,
        vec![later, Expr::Lit(json!("on")), Expr::Lit(json!("off"))],
    );
    let flag = json!({"key": "timed", "kind": "release", "value_type": "boolean",
        "variants": [{"name": "on", "value": true}, {"name": "off", "value": false}],
        "default_variant": 1, "enabled": true,
        "targeting": {"logic": serde_json::to_value(&on_later).unwrap()}});
    let snap = snapshot(json!([flag]));
    assert!(snap.reads_time());
    let now = Ask::default();
    assert_eq!(
        value_of(&ask(served(&snap, 1), &now), "timed"),
        json!(false)
    );
    let second_later = Ask {
        now_ms: NOW_MS + 1_000,
        ..Ask::default()
    };
    assert_eq!(
        value_of(&ask(served(&snap, 1), &second_later), "timed"),
        json!(true)
    );
    assert_eq!((stats().entries, stats().cacheable), (0, false));
}

#[test]
fn a_cached_bulk_answer_revalidates_to_304_and_telemetry_counts_every_answer() {
    let snap = blob(false);
    let alice = Ask {
        bearer: Some(token("alice", NOW_S + 60)),
        ..Ask::default()
    };
    let first = ask(served(&snap, 1), &alice);
    let etag = first.header("ETag").unwrap().to_owned();
    let revalidated = ask(
        served(&snap, 1),
        &Ask {
            if_none_match: Some(&etag),
            ..alice
        },
    );
    assert_eq!(revalidated.status, 304);
    assert!(revalidated.body.is_empty());
    assert_eq!(revalidated.header("ETag"), Some(etag.as_str()));
    let single = Ask {
        key: Some("b"),
        bearer: Some(token("alice", NOW_S + 60)),
        ..Ask::default()
    };
    ask(served(&snap, 1), &single);
    ask(served(&snap, 1), &single);
    assert_eq!(hits(), 2);
    let batch = crate::telemetry::with_tally(|t| t.take(1));
    assert_eq!(
        batch.counts,
        vec![
            ("a".into(), Some("on".into()), 2),
            ("b".into(), Some("on".into()), 4),
        ],
        "two bulk answers (one cached) and two single ones (one cached)"
    );
}

fn answer(bytes: usize) -> Answer {
    Answer {
        status: 200,
        body: vec![b'x'; bytes],
        etag: None,
        track: Track::Stable,
        served: Variants::All(Vec::new()),
    }
}

#[test]
fn the_cache_stays_within_its_entries_and_bytes_oldest_out_first() {
    let snap = blob(false);
    let scope = served(&snap, 1);
    let bodies: Vec<String> = (0..6).map(|i| format!("{{\"n\":{i}}}")).collect();
    let key = |i: usize| Key {
        identity: None,
        body: bodies[i].as_bytes(),
        flag: None,
    };
    let held = |cache: &mut AnswerCache| -> Vec<usize> {
        (0..6)
            .filter(|&i| cache.lookup(&scope, &key(i), |_| ()).is_some())
            .collect()
    };
    let mut by_count = AnswerCache::with_limits(3, MAX_BYTES);
    for i in 0..5 {
        by_count.store(&scope, &key(i), answer(10));
    }
    assert_eq!(held(&mut by_count), vec![2, 3, 4]);
    assert_eq!(by_count.stats().entries, 3);

    let entry = ENTRY_OVERHEAD + 7 + 1_000;
    let mut by_bytes = AnswerCache::with_limits(100, entry * 2 + 10);
    for i in 0..4 {
        by_bytes.store(&scope, &key(i), answer(1_000));
    }
    assert_eq!(held(&mut by_bytes), vec![2, 3]);
    assert!(by_bytes.stats().bytes <= entry * 2 + 10);
    // Too large for any cache of this size: not kept, nothing evicted for it.
    by_bytes.store(&scope, &key(5), answer(MAX_ENTRY_BYTES));
    assert_eq!(held(&mut by_bytes), vec![2, 3]);
    // Storing the same question again replaces it rather than holding it twice.
    by_bytes.store(&scope, &key(3), answer(1_000));
    assert_eq!(by_bytes.stats().entries, 2);
}
