//! The decoder against serde's derived `Deserialize` (what read blobs before it, and what
//! tools still use): the same value for every blob serde writes, and the same verdict on every
//! corruption of one.

use alloc::string::String;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::reader::{Reader, Result as ReadResult};
use super::{body_of, header_of, parse_json, parts};
use crate::{Body, Header};

fn body(text: &[u8]) -> ReadResult<Body> {
    whole(text, body_of)
}

fn header(text: &[u8]) -> ReadResult<Header> {
    whole(text, header_of)
}

fn whole<T>(text: &[u8], read: fn(&mut Reader<'_>) -> ReadResult<T>) -> ReadResult<T> {
    let mut r = Reader::new(text)?;
    let value = read(&mut r)?;
    r.end()?;
    Ok(value)
}

/// serde's verdict and the decoder's on `bytes` agree: both refuse, or both give `expected`.
fn agree(bytes: &[u8]) -> Result<(), String> {
    let ours = body(bytes).ok();
    // The old path: the body borrowed as a `RawValue` (so UTF-8 as a whole), then parsed.
    let serde = core::str::from_utf8(bytes)
        .ok()
        .and_then(|text| serde_json::from_str::<Body>(text).ok());
    if ours == serde {
        Ok(())
    } else {
        Err(alloc::format!(
            "decoder {} but serde {} on {:?}",
            if ours.is_some() { "accepts" } else { "refuses" },
            if serde.is_some() {
                "accepts"
            } else {
                "refuses"
            },
            String::from_utf8_lossy(bytes)
        ))
    }
}

/// `parse_json` and serde_json agree on `bytes`: the same value (bit for bit: numbers keep
/// their kind, floats their bits), or both refuse.
fn same_value(bytes: &[u8]) -> Result<(), String> {
    let ours = parse_json(bytes).ok();
    let serde = serde_json::from_slice::<Value>(bytes).ok();
    // `Value`'s `==` compares floats by value (0.0 == -0.0): compare the texts too.
    let text = |v: &Option<Value>| v.as_ref().map(|v| serde_json::to_string(v).unwrap());
    if ours == serde && text(&ours) == text(&serde) {
        Ok(())
    } else {
        Err(alloc::format!(
            "parse_json gives {:?}, serde_json {:?}, for {:?}",
            ours,
            serde,
            String::from_utf8_lossy(bytes)
        ))
    }
}

#[test]
fn json_numbers_keep_serde_jsons_kinds_and_bits() {
    for text in [
        "0",
        "-0",
        "1",
        "-1",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "-18446744073709551616",
        "1.0",
        "-0.0",
        "1e2",
        "1E-2",
        "2.5e+3",
        "0.1",
        "56.471748161487724",
        "919830.3688624145",
        "1e308",
        "1e309",
        "-1e400",
        "123456789012345678901234567890",
        "4.9e-324",
        "1e-400",
        "00",
        "-",
        "1.",
        ".5",
        "1e",
        "+1",
        "1.5e",
        "0x10",
        "NaN",
        "Infinity",
    ] {
        same_value(text.as_bytes()).unwrap();
    }
}

#[test]
fn json_values_as_serde_json_reads_them() {
    for text in [
        r#"{"context": {"targetingKey": "u-1", "a": [1, 2.5, null, true, {"b": "\u00e9\n"}]}}"#,
        r#"{"a": 1, "a": 2}"#,
        r#" [ ] "#,
        r#"{}"#,
        r#""\ud83d\ude00""#,
        r#""\ud83d""#,
        r#"[1,]"#,
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{1: 2}"#,
        r#"[1] [2]"#,
        "",
        " ",
        "nul",
        "truex",
        "\"a\tb\"",
        "\"a\\u0000b\"",
    ] {
        same_value(text.as_bytes()).unwrap();
    }
    for depth in [126, 127, 128, 200] {
        same_value(alloc::format!("{}{}", "[".repeat(depth), "]".repeat(depth)).as_bytes())
            .unwrap();
        same_value(alloc::format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)).as_bytes())
            .unwrap();
    }
}

/// A body with a little of everything the model has, flagd logic included.
fn sample_body() -> Body {
    let native = json!({
            "key": "a\"b\\c", "kind": "kill-switch", "value_type": "object",
            "variants": [{"name": "on", "value": {"x": [1, 2.5, -3e-7, null, "\u{1F600}"]}},
                         {"name": "off", "value": {}}],
            "default_variant": 1, "off_variant": null, "enabled": true, "killed": true,
            "prerequisites": [{"flag": 1, "variants": [0, 1]}],
            "salt": "s\u{0}alt", "unsigned_attrs": [2], "signed_bucketing_only": true, "metadata": {"team": "x", "n": 1},
            "targeting": {"rules": {"rules": [
                {"id": "r1", "condition": {"all": [
                    {"segment": 0},
                    {"test": {"attr": 2, "op": {"sem_ver": ["caret", {"major": 1, "minor": 2, "patch": 3, "pre": ["rc", "1"]}]}}},
                    {"test": {"attr": 3, "op": {"before": -1000}}},
                    {"test": {"attr": 3, "op": {"after": 9_007_199_254_740_993i64}}},
                    {"test": {"attr": 0, "op": {"lt": 1e300}}},
                    {"test": {"attr": 0, "op": {"ge": -0.0}}},
                    {"test": {"attr": 0, "op": {"equals": [1, {"a": "b"}]}}},
                    {"test": {"attr": 0, "op": {"starts_with": "\t\n"}}}]},
                 "serve": {"split": {"bucket_by": 0, "weights": [[0, 40000], [1, 60000]]}}}],
                "fallthrough": {"variant": 0}}}
    });
    let flagd = json!({
            "key": "flagd", "kind": "release", "value_type": "string",
            "variants": [{"name": "x", "value": "x"}], "enabled": true,
            "targeting": {"logic": {"op": ["if", [
                {"sem_ver": {"value": {"var": [2, null]}, "cmp": "ge", "target": {"version": {"major": 1, "minor": 0, "patch": 0}}}},
                {"fractional": {"targeting_key": 0, "buckets": [{"variant": {"lit": "x"}}, {"variant": {"lit": "y"}, "weight": {"lit": 3}}]}},
                {"iterate": {"kind": "reduce", "over": {"array": [{"lit": 1}]}, "body": {"scoped": [["current"], null]}, "initial": {"lit": 0}}},
                {"in_list": [{"var": [1, {"lit": "d"}]}, 0]},
                {"missing_some": [{"lit": 1}, [0, 1]]},
                {"missing": [3]}, "flag_key", "timestamp",
                {"invalid": "bad"}]]}}
    });
    let mut body: Body = serde_json::from_value(json!({
        "attrs": [["targetingKey"], ["user", "plan"], ["v"], ["when"]],
        "lists": [["DE", "FR", "caf\u{e9}"]],
        "segments": [{"key": "s", "condition": {"any": [
            {"test": {"attr": 1, "op": {"in": 0}}},
            {"not": {"test": {"attr": 1, "op": "exists"}}}]}}],
        "flags": [native, flagd],
        "eval_order": [1, 0]
    }))
    .unwrap();
    body.regexes = alloc::vec![crate::regex::compile_regex("^a+$").unwrap()];
    body
}

#[test]
fn reads_every_shape_serde_writes() {
    let body_ = sample_body();
    let bytes = serde_json::to_vec(&body_).unwrap();
    assert_eq!(body(&bytes), Ok(body_));
    let header_ = Header {
        environment: "prod".into(),
        version: u64::MAX,
        previous: Some(0),
        content_hash: "sha256:00".into(),
        author: "A. \u{e9}".into(),
        source_commit: None,
        created_at: "2026-12-07T00:00:00Z".into(),
    };
    assert_eq!(header(&serde_json::to_vec(&header_).unwrap()), Ok(header_));
}

#[test]
fn reads_what_serde_reads_written_otherwise() {
    // Whitespace, escapes, reordered and unknown fields, `null` options, unit variants as
    // objects: JSON serde accepts that the publisher never writes.
    let text = r#" { "eval_order" : [ ] , "unknown": {"a": [1, {"b": null}]},
        "flags" : [ { "\u006bey": "k\u00e9\ud83d\ude00", "kind": {"release": null},
        "value_type": "boolean", "variants": [{"name": "on", "value": null}], "enabled": false,
        "default_variant": null, "targeting": {"rules": {"fallthrough": {"variant": 0},
        "rules": [{"id": "1", "serve": {"variant": 0}, "condition": {"test": {"attr": 0,
        "op": {"exists": null}}}}]}} } ], "attrs": [["a"]] } "#;
    agree(text.as_bytes()).unwrap();
    let decoded = body(text.as_bytes()).unwrap();
    assert_eq!(decoded.flags[0].key, "k\u{e9}\u{1F600}");
    assert_eq!(decoded.flags[0].variants[0].value, Value::Null);
}

#[test]
fn refuses_what_serde_refuses() {
    for text in [
        r#"{"attrs":[],"flags":[],"eval_order":[],"attrs":[]}"#,
        r#"{"attrs":[],"flags":[]}"#,
        r#"{"attrs":[],"flags":[],"eval_order":[1,]}"#,
        r#"{"attrs":[],"flags":[],"eval_order":[01]}"#,
        r#"{"attrs":[],"flags":[],"eval_order":[1.0]}"#,
        r#"{"attrs":[],"flags":[],"eval_order":[-1]}"#,
        r#"{"attrs":[],"flags":[],"eval_order":[4294967296]}"#,
        r#"{"attrs":[],"flags":[],"eval_order":[]} x"#,
        r#"{"attrs":[["\ud800"]],"flags":[],"eval_order":[]}"#,
        r#"{"attrs":[["\x"]],"flags":[],"eval_order":[]}"#,
        "{\"attrs\":[[\"\t\"]],\"flags\":[],\"eval_order\":[]}",
        r#"{"attrs":[],"segments":[{"key":"s","condition":"all"}],"flags":[],"eval_order":[]}"#,
        r#"{"attrs":[],"segments":[{"key":"s","condition":{"nope":1}}],"flags":[],"eval_order":[]}"#,
        r#"{"attrs":[],"segments":[{"key":"s","condition":{"segment":0,"all":[]}}],"flags":[],"eval_order":[]}"#,
        r#"{"attrs":[],"segments":[{"key":"s","condition":{"test":{"attr":0,"op":{"exists":1}}}}],"flags":[],"eval_order":[]}"#,
        r#"{"attrs":[],"segments":[{"key":"s","condition":{"test":{"attr":0,"op":{"sem_ver":["eq"]}}}}],"flags":[],"eval_order":[]}"#,
    ] {
        assert!(body(text.as_bytes()).is_err(), "{text}");
        agree(text.as_bytes()).unwrap();
    }
    let mut invalid_utf8 = br#"{"attrs":[["a"]],"flags":[],"eval_order":[]}"#.to_vec();
    invalid_utf8[12] = 0xff;
    agree(&invalid_utf8).unwrap();
    assert!(body(&invalid_utf8).is_err());
}

#[test]
fn nesting_is_bounded_as_serde_bounds_it() {
    for depth in [100, 126, 127, 128, 129, 2000] {
        let condition = alloc::format!(
            "{}{{\"all\":[]}}{}",
            "{\"not\":".repeat(depth),
            "}".repeat(depth)
        );
        let text = alloc::format!(
            r#"{{"attrs":[],"segments":[{{"key":"s","condition":{condition}}}],"flags":[],"eval_order":[]}}"#
        );
        agree(text.as_bytes()).unwrap();
    }
}

#[test]
fn every_single_byte_corruption_gets_serdes_verdict() {
    let bytes = serde_json::to_vec(&sample_body()).unwrap();
    let replacements = b"\"{}[],:0-9.enut\\ \x7f\xc3";
    for at in 0..bytes.len() {
        let mut cut = bytes[..at].to_vec();
        agree(&cut).unwrap();
        cut.extend_from_slice(&bytes[at + 1..]);
        agree(&cut).unwrap();
        for &byte in replacements {
            let mut changed = bytes.clone();
            changed[at] = byte;
            agree(&changed).unwrap();
        }
    }
}

#[test]
fn parts_delimit_the_header_and_body_as_written() {
    let text = br#" {"header": {"a": 1} , "schema": 2, "x": [], "body":[1, 2] } "#;
    let parts = parts(text).unwrap();
    assert_eq!(parts.schema, 2);
    // Neither is of the model's shape: kept as errors, the body's bytes delimited all the same.
    assert!(matches!(parts.header, Some(Err(_))));
    assert!(matches!(parts.body, Some((b"[1, 2]", Err(_)))));
    assert!(super::parts(br#"{"schema":2,"body":[1,}"#).is_err());
    assert!(super::parts(br#"{"schema":2,"schema":2}"#).is_err());
    assert!(super::parts(br#"{"body":{}}"#).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Generated native bodies (the evaluator's property-test bodies) read as serde reads
    /// them. (Not always bit for bit as written: serde_json's default float parsing may miss
    /// the last bit of a long fraction, and the decoder parses numbers with it.)
    #[test]
    fn native_bodies_read_as_serde_reads_them(body_ in crate::program::tests::body()) {
        let bytes = serde_json::to_vec(&body_).unwrap();
        prop_assert_eq!(body(&bytes).ok(), serde_json::from_slice::<Body>(&bytes).ok());
        prop_assert!(body(&bytes).is_ok());
    }

    /// Compiled flagd targeting of any shape reads as serde reads it.
    #[test]
    fn flagd_logic_reads_as_serde_reads_it(rule in crate::logic::properties::rule(), ev in crate::logic::properties::rule()) {
        let mut body_ = Body::default();
        let evaluators = json!({"ev": ev});
        let Ok(expr) = crate::logic::compile_targeting(&rule, evaluators.as_object().unwrap(), &mut body_) else {
            return Ok(());
        };
        let mut flag = sample_body().flags.remove(1);
        flag.targeting = crate::Targeting::Logic(expr);
        body_.flags.push(flag);
        let bytes = serde_json::to_vec(&body_).unwrap();
        prop_assert_eq!(body(&bytes).ok(), serde_json::from_slice::<Body>(&bytes).ok());
        prop_assert!(body(&bytes).is_ok());
    }

    /// Any JSON serde_json writes reads back as serde_json reads it.
    #[test]
    fn json_round_trips_as_serde_jsons(value in arbitrary_json()) {
        let text = serde_json::to_vec(&value).unwrap();
        prop_assert!(same_value(&text).is_ok(), "{}", same_value(&text).unwrap_err());
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        prop_assert!(same_value(&pretty).is_ok(), "{}", same_value(&pretty).unwrap_err());
    }

    /// Bytes of JSON with a few bytes changed: the same verdict and value as serde_json.
    #[test]
    fn corrupted_json_gets_serde_jsons_verdict(
        value in arbitrary_json(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(&b"\"{}[],:0123456789.-+eE ntfu\\\x00\x7f\xc3\xa9"[..])), 1..4),
    ) {
        let mut bytes = serde_json::to_vec(&value).unwrap();
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        prop_assert!(same_value(&bytes).is_ok(), "{}", same_value(&bytes).unwrap_err());
    }

    /// Several bytes changed at once: still serde's verdict.
    #[test]
    fn corruptions_get_serdes_verdict(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = serde_json::to_vec(&sample_body()).unwrap();
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        prop_assert!(agree(&bytes).is_ok(), "{}", agree(&bytes).unwrap_err());
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (-1e6f64..1e6).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        "[\\\\\"\\t\\n\u{0}-\u{1f}a-z\u{e9}\u{1F600}]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
