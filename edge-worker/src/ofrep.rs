//! OFREP (OpenFeature Remote Evaluation Protocol, `service/openapi.yaml` of open-feature/protocol):
//! `POST /ofrep/v1/evaluate/flags/{key}` and the bulk `POST /ofrep/v1/evaluate/flags`.
//!
//! [`handle`] is the whole request pipeline after routing: limits, body parsing, identity,
//! evaluation, response body, ETag. It takes plain data, so it runs under native tests.
//!
//! Status codes follow the spec: an unknown flag is 404 `FLAG_NOT_FOUND`; any other failed
//! single evaluation is 400 with the evaluation-failure body (carrying the safe default's
//! `value` and `variant` too, when the flag has one). A bulk answer is always 200 with per-flag
//! results. An isolate that has never loaded a blob answers 200 with reason `ERROR` and
//! `GENERAL` (single) or an empty flag list (bulk), so clients fall back to their code
//! defaults; an evaluation is never answered with a 5xx.
//!
//! While a canary runs, each request is answered from the stable or the canary blob by its
//! targeting key ([`Served::for_user`]); every answer says which: headers `X-Flags-Version`
//! and `X-Flags-Track` (`stable` / `canary`), the single-flag result's `metadata`
//! (`flagsVersion`, `flagsTrack`), the bulk answer's `metadata` (`version`, `track`).

use serde::Serialize;
use serde_json::{Map, Value};
use shared_eval::{Context, Evaluation};

use crate::answer_cache::{self, Answer, Variants};
use crate::error::ApiError;
use crate::http::Reply;
use crate::identity;
use crate::limits::{
    self, MAX_BODY_BYTES, MAX_CONTEXT_ATTRIBUTES, MAX_FLAG_KEY_BYTES, MAX_JSON_DEPTH,
};
use crate::served::Answering;
pub use crate::served::{Served, Track};

/// Path of the bulk endpoint; the single-flag endpoint is this plus `/{key}`.
pub const BULK_PATH: &str = "/ofrep/v1/evaluate/flags";

/// Answers vary per user: caches must revalidate (bulk, with its ETag) or never store (single).
const VARY: &str = "Origin, Authorization, Cookie";

/// One evaluation request, as plain data.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvalRequest<'a> {
    /// The raw (percent-encoded) `{key}` path segment; `None` for bulk.
    pub key: Option<&'a str>,
    /// The request body.
    pub body: &'a [u8],
    /// `Authorization` header.
    pub authorization: Option<&'a str>,
    /// `Cookie` header.
    pub cookie: Option<&'a str>,
    /// `If-None-Match` header (bulk only).
    pub if_none_match: Option<&'a str>,
    /// The environment this worker serves: a token whose `aud` names another is refused.
    pub environment: &'a str,
}

/// Marks a reply with the version and track that answered it.
fn answered_by(reply: Reply, answering: &Answering<'_>) -> Reply {
    reply
        .with_header("X-Flags-Version", answering.version.to_string())
        .with_header("X-Flags-Track", answering.track.as_str())
}

/// Runs one OFREP request: limits, identity, evaluation, response.
///
/// An answer already computed for the same question under the same blobs comes from the
/// [`answer_cache`]; the token is checked in front of it, on every request, exactly as it is
/// when the answer is computed.
pub fn handle(
    request: &EvalRequest<'_>,
    served: Option<Served<'_>>,
    identity_secret: Option<&str>,
    now_ms: i64,
) -> Reply {
    let key = match request.key.map(decode_key).transpose() {
        Ok(key) => key,
        Err(error) => return Reply::error(error, None),
    };
    let key_ref = key.as_deref();
    let presented = identity::Presented::new(identity::token_from_headers(
        request.authorization,
        request.cookie,
    ));
    let now_s = now_ms.div_euclid(1000);
    let question = answer_cache::Key {
        identity: presented.as_ref().map(|p| &p.digest),
        body: request.body,
        flag: key_ref,
    };
    if let Some(served) = served.as_ref() {
        let cached = answer_cache::lookup(served, &question, |answer| {
            // This body parsed before (the entry holds its exact bytes), so the token is the
            // first thing that can refuse the request, as on the computing path below.
            if let Err(error) = identity::check_presented(
                presented.as_ref(),
                identity_secret,
                request.environment,
                now_s,
            ) {
                return Reply::error(error, key_ref);
            }
            let answering = served.answering(answer.track);
            answer.served.record(answering.snapshot);
            finish(answer, &answering, request.if_none_match)
        });
        if let Some(reply) = cached {
            return reply;
        }
    }
    let unsigned = match parse_context(request.body) {
        Ok(context) => context,
        Err(error) => return Reply::error(error, key_ref),
    };
    let identity = match identity::resolve_presented(
        presented.as_ref(),
        identity_secret,
        request.environment,
        now_s,
    ) {
        Ok(identity) => identity,
        Err(error) => return Reply::error(error, key_ref),
    };
    let mut unsigned = unsigned;
    if identity.verified {
        // The token's subject is the targeting key; the body may not restate it.
        shared_eval::claims::drop_restated_targeting_key(&mut unsigned);
    }
    let context = Context::with_unsigned(&identity.signed, &unsigned, identity.verified);
    // The same targeting key a split buckets by: the token's subject, else the body's.
    let targeting_key = if identity.verified {
        identity.signed.get("targetingKey")
    } else {
        unsigned.get("targetingKey")
    }
    .and_then(Value::as_str);
    let Some(served) = served else {
        return match key_ref {
            Some(key) => not_loaded_single(key),
            None => not_loaded_bulk(),
        };
    };
    let answering = served.for_user(targeting_key);
    let answer = match key_ref {
        Some(key) => single(key, &answering, &context, now_ms),
        None => bulk(&answering, &context, now_ms),
    };
    let reply = finish(&answer, &answering, request.if_none_match);
    answer_cache::store(&served, &question, answer);
    reply
}

/// The reply for an answer, computed now or cached: the same bytes and headers either way.
fn finish(answer: &Answer, answering: &Answering<'_>, if_none_match: Option<&str>) -> Reply {
    let reply = match &answer.etag {
        // Bulk: revalidated with its ETag.
        Some(etag) => {
            let reply = if if_none_match.is_some_and(|header| etag_matches(header, etag)) {
                Reply {
                    status: 304,
                    headers: Vec::new(),
                    body: Vec::new(),
                }
            } else {
                Reply::json(answer.status, answer.body.clone())
            };
            reply
                .with_header("ETag", etag.clone())
                .with_header("Cache-Control", "private, no-cache")
        }
        None => Reply::json(answer.status, answer.body.clone())
            .with_header("Cache-Control", "private, no-store"),
    };
    answered_by(reply.with_header("Vary", VARY), answering)
}

/// Percent-decodes and checks a flag key from the URL path.
pub fn decode_key(raw: &str) -> Result<String, ApiError> {
    // Encoded keys are at most three bytes per decoded byte.
    if raw.len() > MAX_FLAG_KEY_BYTES * 3 {
        return Err(ApiError::KeyTooLong);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(ApiError::KeyInvalid)?;
            let text = std::str::from_utf8(hex).map_err(|_| ApiError::KeyInvalid)?;
            out.push(u8::from_str_radix(text, 16).map_err(|_| ApiError::KeyInvalid)?);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    let key = String::from_utf8(out).map_err(|_| ApiError::KeyInvalid)?;
    if key.is_empty() {
        return Err(ApiError::KeyInvalid);
    }
    if key.len() > MAX_FLAG_KEY_BYTES {
        return Err(ApiError::KeyTooLong);
    }
    Ok(key)
}

/// Checks the body against the limits and returns its `context` (the unsigned attributes).
/// An empty body is an empty context: a caller with a token needs to send nothing else.
pub fn parse_context(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::BodyTooLarge);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if limits::json_too_deep(body, MAX_JSON_DEPTH) {
        return Err(ApiError::BodyTooDeep);
    }
    let parsed = shared_eval::parse_json(body).map_err(|_| ApiError::BodyNotJson)?;
    let Value::Object(mut request) = parsed else {
        return Err(ApiError::ContextNotObject);
    };
    let context = match request.remove("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(context)) => context,
        Some(_) => return Err(ApiError::ContextNotObject),
    };
    if limits::attribute_count(&context) > MAX_CONTEXT_ATTRIBUTES {
        return Err(ApiError::TooManyAttributes);
    }
    Ok(context)
}

/// One flag's result in OFREP's shape (success and failure share it; absent fields are omitted).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FlagResult<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_details: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Map<String, Value>>,
}

impl<'a> FlagResult<'a> {
    fn new(key: &'a str, evaluation: &Evaluation<'a>) -> FlagResult<'a> {
        FlagResult {
            key,
            value: evaluation.value,
            variant: evaluation.variant,
            reason: evaluation.reason.as_str(),
            error_code: evaluation.error.map(|e| e.as_str()),
            error_details: evaluation.error.and(evaluation.error_details),
            metadata: evaluation.metadata.filter(|m| !m.is_empty()),
        }
    }
}

const NOT_LOADED: &str = "flag configuration is not loaded yet";

/// A single-flag request before any blob loaded: the caller falls back to its default.
fn not_loaded_single(key: &str) -> Reply {
    let result = FlagResult {
        key,
        value: None,
        variant: None,
        reason: "ERROR",
        error_code: Some("GENERAL"),
        error_details: Some(NOT_LOADED),
        metadata: None,
    };
    Reply::json(200, serde_json::to_vec(&result).unwrap_or_default())
        .with_header("Cache-Control", "private, no-store")
        .with_header("Vary", VARY)
}

fn single(key: &str, served: &Answering<'_>, context: &Context<'_>, now_ms: i64) -> Answer {
    let evaluation = shared_eval::evaluate(served.snapshot, key, context, now_ms);
    let variants = Variants::one(served.snapshot, key, &evaluation);
    variants.record(served.snapshot);
    let status = match evaluation.error {
        None => 200,
        Some(shared_eval::ErrorCode::FlagNotFound) => 404,
        Some(_) => 400,
    };
    let mut metadata = evaluation.metadata.cloned().unwrap_or_default();
    metadata.insert("flagsVersion".into(), Value::from(served.version));
    metadata.insert("flagsTrack".into(), Value::from(served.track.as_str()));
    // Attributes this flag reads that were sent unsigned and so ignored: say so.
    let ignored = shared_eval::unsigned_ignored(served.snapshot, key, context);
    if !ignored.is_empty() {
        metadata.insert("unsignedIgnored".into(), Value::from(ignored));
    }
    let result = FlagResult {
        metadata: Some(&metadata),
        ..FlagResult::new(key, &evaluation)
    };
    Answer {
        status,
        body: serde_json::to_vec(&result).unwrap_or_default(),
        etag: None,
        track: served.track,
        served: variants,
    }
}

#[derive(Serialize)]
struct BulkBody<'a> {
    flags: Vec<FlagResult<'a>>,
    #[serde(rename = "eventStreams", skip_serializing_if = "Option::is_none")]
    event_streams: Option<[Value; 1]>,
    metadata: BulkMetadata<'a>,
}

/// The bulk answer's `metadata` (fields in key order, as the map it replaced wrote them).
#[derive(Serialize)]
struct BulkMetadata<'a> {
    environment: &'a str,
    track: &'static str,
    version: u64,
}

/// A bulk request before any blob loaded: nothing to revalidate against, so not cacheable.
fn not_loaded_bulk() -> Reply {
    Reply::json(200, br#"{"flags":[],"metadata":{"loaded":false}}"#.to_vec())
        .with_header("Cache-Control", "no-store")
        .with_header("Vary", VARY)
}

fn bulk(served: &Answering<'_>, context: &Context<'_>, now_ms: i64) -> Answer {
    let evaluations = shared_eval::evaluate_all(served.snapshot, context, now_ms);
    let variants = Variants::all(served.snapshot, &evaluations);
    crate::telemetry::with_tally(|t| t.record_all(served.snapshot, &evaluations));
    let header = served.snapshot.header();
    // Attributes each flag reads that were sent unsigned and so ignored, as single answers
    // say; next to the flag's own metadata. Nothing sent unsigned: nothing computed or copied.
    let ignored: Vec<(usize, Map<String, Value>)> =
        shared_eval::unsigned_ignored_all(served.snapshot, context)
            .into_iter()
            .map(|(index, ignored)| {
                let mut metadata = evaluations
                    .get(index)
                    .and_then(|(_, evaluation)| evaluation.metadata.cloned())
                    .unwrap_or_default();
                metadata.insert("unsignedIgnored".into(), Value::from(ignored));
                (index, metadata)
            })
            .collect();
    let mut ignored_iter = ignored.iter().peekable();
    let body = BulkBody {
        flags: evaluations
            .iter()
            .enumerate()
            .map(|(index, (key, evaluation))| {
                let mut result = FlagResult::new(key, evaluation);
                if let Some((_, metadata)) = ignored_iter.next_if(|(i, _)| *i == index) {
                    result.metadata = Some(metadata);
                }
                result
            })
            .collect(),
        event_streams: served.event_streams.then(|| {
            [crate::events::stream_entry(
                &header.environment,
                served.version,
            )]
        }),
        metadata: BulkMetadata {
            environment: &header.environment,
            track: served.track.as_str(),
            version: served.version,
        },
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    // The ETag covers the answer itself, not just the blob: the same blob gives different
    // answers to different users.
    let etag = etag_of(&body);
    Answer {
        status: 200,
        body,
        etag: Some(etag),
        track: served.track,
        served: variants,
    }
}

/// A strong ETag: SipHash-1-3 (128-bit) of the body, quoted. Not a security boundary (a tag
/// only ever matches the same user's own earlier answer), so a fast hash rather than SHA-256,
/// which costs a noticeable share of a bulk request in Wasm.
pub fn etag_of(body: &[u8]) -> String {
    use core::hash::Hasher as _;
    let mut hasher = siphasher::sip128::SipHasher13::new();
    hasher.write(body);
    format!(
        "\"{:032x}\"",
        siphasher::sip128::Hasher128::finish128(&hasher).as_u128()
    )
}

/// `If-None-Match` semantics: a list of (possibly weak) tags, or `*`.
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply_json(reply: &Reply) -> Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    #[test]
    fn keys_are_percent_decoded_and_bounded() {
        assert_eq!(decode_key("new-checkout").unwrap(), "new-checkout");
        assert_eq!(decode_key("a%2Fb%20c").unwrap(), "a/b c");
        assert_eq!(decode_key("caf%C3%A9").unwrap(), "café");
        for bad in ["", "%", "%4", "%zz", "%ff", "%C3"] {
            assert_eq!(decode_key(bad), Err(ApiError::KeyInvalid), "{bad:?}");
        }
        assert_eq!(
            decode_key(&"k".repeat(MAX_FLAG_KEY_BYTES)).unwrap().len(),
            MAX_FLAG_KEY_BYTES
        );
        assert_eq!(
            decode_key(&"k".repeat(MAX_FLAG_KEY_BYTES + 1)),
            Err(ApiError::KeyTooLong)
        );
        assert_eq!(
            decode_key(&"%41".repeat(MAX_FLAG_KEY_BYTES + 1)),
            Err(ApiError::KeyTooLong)
        );
    }

    #[test]
    fn bodies_are_checked_against_every_limit() {
        assert_eq!(parse_context(b"").unwrap(), Map::new());
        assert_eq!(
            parse_context(br#"{"context":{"targetingKey":"u"}}"#).unwrap()["targetingKey"],
            "u"
        );
        assert_eq!(parse_context(b"{}").unwrap(), Map::new());
        assert_eq!(parse_context(b"{nope"), Err(ApiError::BodyNotJson));
        assert_eq!(
            parse_context(br#"{"context":[1]}"#),
            Err(ApiError::ContextNotObject)
        );
        assert_eq!(parse_context(b"[]"), Err(ApiError::ContextNotObject));
        let deep = format!(
            r#"{{"context":{}1{}}}"#,
            r#"{"a":"#.repeat(8),
            "}".repeat(8)
        );
        assert_eq!(parse_context(deep.as_bytes()), Err(ApiError::BodyTooDeep));
        let wide: Map<String, Value> = (0..=MAX_CONTEXT_ATTRIBUTES)
            .map(|i| (format!("a{i}"), json!(i)))
            .collect();
        let body = serde_json::to_vec(&json!({ "context": wide })).unwrap();
        assert_eq!(parse_context(&body), Err(ApiError::TooManyAttributes));
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_context(&big), Err(ApiError::BodyTooLarge));
    }

    #[test]
    fn cold_isolate_answers_error_without_a_5xx() {
        let single = handle(
            &EvalRequest {
                key: Some("any"),
                ..Default::default()
            },
            None,
            None,
            0,
        );
        assert_eq!(single.status, 200);
        assert_eq!(
            reply_json(&single),
            json!({"key": "any", "reason": "ERROR", "errorCode": "GENERAL", "errorDetails": NOT_LOADED})
        );
        let bulk = handle(&EvalRequest::default(), None, None, 0);
        assert_eq!(bulk.status, 200);
        assert_eq!(
            reply_json(&bulk),
            json!({"flags": [], "metadata": {"loaded": false}})
        );
        assert_eq!(bulk.header("ETag"), None);
    }

    #[test]
    fn request_errors_come_before_evaluation() {
        let bad_token = handle(
            &EvalRequest {
                key: Some("f"),
                authorization: Some("Bearer x.y.z"),
                ..Default::default()
            },
            None,
            Some("secret"),
            0,
        );
        assert_eq!(bad_token.status, 401);
        assert_eq!(
            reply_json(&bad_token)["errorDetails"],
            "identity token is invalid"
        );
        let bad_body = handle(
            &EvalRequest {
                key: Some("f"),
                body: b"{",
                ..Default::default()
            },
            None,
            None,
            0,
        );
        assert_eq!(
            (bad_body.status, reply_json(&bad_body)["errorCode"].clone()),
            (400, json!("PARSE_ERROR"))
        );
    }

    #[test]
    fn a_canary_answers_its_share_of_users_and_says_so() {
        use shared_eval::{Blob, Body, Header, Snapshot};
        let snapshot = |version: u64| {
            let header = Header {
                environment: "prod".into(),
                version,
                previous: None,
                content_hash: String::new(),
                author: "t".into(),
                source_commit: None,
                created_at: "2026-11-21T00:00:00Z".into(),
            };
            let blob = Blob::new(header, Body::default());
            Snapshot::from_json(&serde_json::to_vec(&blob).unwrap()).unwrap()
        };
        let (stable, canary) = (snapshot(4), snapshot(5));
        let split = crate::loader::CanarySplit {
            buckets: 50_000,
            salt: "canary-prod-5".into(),
            since: 5,
        };
        let served = Served {
            snapshot: &stable,
            version: 5,
            canary: Some((&canary, &split)),
            event_streams: true,
        };
        let ask = |key: Option<&str>| {
            let body = match key {
                Some(k) => json!({"context": {"targetingKey": k}}).to_string(),
                None => "{}".to_owned(),
            };
            let reply = handle(
                &EvalRequest {
                    body: body.as_bytes(),
                    ..Default::default()
                },
                Some(served),
                None,
                0,
            );
            let track = reply.header("X-Flags-Track").map(str::to_owned);
            assert_eq!(reply_json(&reply)["metadata"]["track"], json!(track));
            (track, reply.header("ETag").map(str::to_owned))
        };
        let (in_canary, in_stable) = (0..100)
            .map(|i| format!("user-{i}"))
            .partition::<Vec<_>, _>(|k| split.serves(Some(k)));
        let (track, canary_etag) = ask(Some(&in_canary[0]));
        assert_eq!(track.as_deref(), Some("canary"));
        let (track, stable_etag) = ask(Some(&in_stable[0]));
        assert_eq!(track.as_deref(), Some("stable"));
        assert_ne!(
            canary_etag, stable_etag,
            "the ETag says which version answered"
        );
        assert_eq!(ask(None).0.as_deref(), Some("stable"));

        let single = handle(
            &EvalRequest {
                key: Some("missing"),
                body: json!({"context": {"targetingKey": in_canary[0]}})
                    .to_string()
                    .as_bytes(),
                ..Default::default()
            },
            Some(served),
            None,
            0,
        );
        assert_eq!(single.header("X-Flags-Version"), Some("5"));
        assert_eq!(
            reply_json(&single)["metadata"],
            json!({"flagsVersion": 5, "flagsTrack": "canary"})
        );
    }

    /// A blob of release flags: `beta-alice` (a rule comparing the targeting key),
    /// `csv-export` (a split by it), `pricing` (a split by it, opted out of unsigned bucketing,
    /// with metadata of its own).
    fn targeting_key_snapshot() -> shared_eval::Snapshot {
        use shared_eval::{Blob, Body, Header, Snapshot};
        let header = Header {
            environment: "prod".into(),
            version: 1,
            previous: None,
            content_hash: String::new(),
            author: "t".into(),
            source_commit: None,
            created_at: "2026-11-21T00:00:00Z".into(),
        };
        let mut blob = serde_json::to_value(Blob::new(header, Body::default())).unwrap();
        let onoff = json!([{"name": "on", "value": true}, {"name": "off", "value": false}]);
        let flag = |key: &str, kind: &str, targeting: Value| {
            json!({"key": key, "kind": kind, "value_type": "boolean", "variants": onoff,
                "default_variant": 1, "off_variant": 1, "enabled": true, "salt": key,
                "targeting": {"rules": targeting}})
        };
        let everyone = json!({"rules": [], "fallthrough":
            {"split": {"bucket_by": 0, "weights": [[0, 100000], [1, 0]]}}});
        let alice = json!({"rules": [{"id": "alice", "condition":
            {"test": {"attr": 0, "op": {"equals": "alice"}}}, "serve": {"variant": 0}}],
            "fallthrough": {"variant": 1}});
        let mut pricing = flag("pricing", "experiment", everyone.clone());
        pricing["signed_bucketing_only"] = json!(true);
        pricing["metadata"] = json!({"team": "growth"});
        blob["body"]["attrs"] = json!([["targetingKey"]]);
        blob["body"]["flags"] = json!([
            flag("beta-alice", "release", alice),
            flag("csv-export", "release", everyone),
            pricing,
        ]);
        blob["body"]["eval_order"] = json!([0, 1, 2]);
        // The header names the body's hash: the loader's own verdict on it fills it in.
        if let Err(shared_eval::BlobError::HashMismatch { found, .. }) =
            Snapshot::from_json(&serde_json::to_vec(&blob).unwrap())
        {
            blob["header"]["content_hash"] = json!(found);
        }
        Snapshot::from_json(&serde_json::to_vec(&blob).unwrap()).unwrap()
    }

    #[test]
    fn an_anonymous_targeting_key_buckets_splits_but_is_not_compared() {
        let snapshot = targeting_key_snapshot();
        let served = Served {
            snapshot: &snapshot,
            version: 1,
            canary: None,
            event_streams: true,
        };
        let ask = |key: &str| {
            let reply = handle(
                &EvalRequest {
                    key: Some(key),
                    body: br#"{"context":{"targetingKey":"alice"}}"#,
                    ..Default::default()
                },
                Some(served),
                None,
                0,
            );
            (reply.status, reply_json(&reply))
        };
        let (status, answer) = ask("csv-export");
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            (&answer["value"], &answer["reason"]),
            (&json!(true), &json!("SPLIT"))
        );
        // Comparing the key's value needs a signed one: alice is not matched.
        let (status, answer) = ask("beta-alice");
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            (&answer["value"], &answer["reason"]),
            (&json!(false), &json!("DEFAULT"))
        );
        // ... and the answer says why.
        assert_eq!(
            answer["metadata"]["unsignedIgnored"],
            json!(["targetingKey"]),
            "{answer}"
        );
        let (_, answer) = ask("csv-export");
        assert_eq!(answer["metadata"].get("unsignedIgnored"), None, "{answer}");
    }

    #[test]
    fn bulk_answers_name_the_unsigned_attributes_each_flag_ignored() {
        let snapshot = targeting_key_snapshot();
        let served = Served {
            snapshot: &snapshot,
            version: 1,
            canary: None,
            event_streams: false,
        };
        let bulk = |body: &[u8]| {
            let reply = handle(
                &EvalRequest {
                    body,
                    ..Default::default()
                },
                Some(served),
                None,
                0,
            );
            assert_eq!(reply.status, 200);
            let answer = reply_json(&reply);
            let flags = answer["flags"].as_array().unwrap().clone();
            let by_key = |key: &str| flags.iter().find(|f| f["key"] == key).unwrap().clone();
            (
                by_key("beta-alice"),
                by_key("csv-export"),
                by_key("pricing"),
            )
        };
        let anonymous = br#"{"context":{"targetingKey":"alice"}}"#;
        // Twice: computed, then from the answer cache, the same.
        for _ in 0..2 {
            let (alice, csv, pricing) = bulk(anonymous);
            assert_eq!(
                alice["metadata"],
                json!({"unsignedIgnored": ["targetingKey"]})
            );
            assert_eq!(csv.get("metadata"), None, "{csv}");
            assert_eq!(csv["reason"], "SPLIT");
            // Opted out of unsigned bucketing: the key was not bucketed by, and it says so,
            // next to the flag's own metadata.
            assert_eq!(
                (&pricing["reason"], &pricing["errorCode"]),
                (&json!("ERROR"), &json!("TARGETING_KEY_MISSING"))
            );
            assert_eq!(
                pricing["metadata"],
                json!({"team": "growth", "unsignedIgnored": ["targetingKey"]})
            );
        }
        // Another body (the cache keys on it): nothing sent unsigned, nothing ignored.
        for body in [&b""[..], br#"{"context":{}}"#] {
            let (alice, csv, pricing) = bulk(body);
            assert_eq!(alice.get("metadata"), None, "{alice}");
            assert_eq!(csv.get("metadata"), None, "{csv}");
            assert_eq!(pricing["metadata"], json!({"team": "growth"}));
        }
    }

    #[test]
    fn etags_match_lists_weak_tags_and_star() {
        let tag = etag_of(b"body");
        assert_eq!(tag.len(), 34);
        assert!(etag_matches(&tag, &tag));
        assert!(etag_matches(&format!("\"x\", W/{tag}"), &tag));
        assert!(etag_matches("*", &tag));
        assert!(!etag_matches("\"x\"", &tag));
        assert_ne!(etag_of(b"body"), etag_of(b"bodz"));
    }
}
