//! The pointer as the publisher writes it today (`publisher/src/layout.rs`'s `Pointer` and
//! `Canary`, through `publish.rs`'s `to_json`: pretty JSON and a newline), read back by both
//! readers, and the edge reader's checks.

use alloc::string::{String, ToString as _};
use alloc::vec::Vec;
use std::format;

use super::*;

const A: &str = "346b7447d1c0c2f6b9b0fbd7a8cbd5f3e07f7bba8a4f3c0cbf6f4b8f0e2d2a11";
const B: &str = "683c2e56a1f49d7ab2a0c8a2e8c35d1f3a1fc2c79a0e7e1b5d9f52c0d3b4e6f7";

/// `serde_json::to_vec_pretty` plus a newline: how the publisher writes `current.json`.
fn publisher_bytes(pointer: &Pointer) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(pointer).unwrap();
    bytes.push(b'\n');
    bytes
}

fn blob_ref(sha: &str, content: &str) -> BlobRef {
    BlobRef::content_addressed(sha.into(), format!("sha256:{content}"))
}

fn with_canary(percent: &str) -> Pointer {
    Pointer {
        version: 7,
        stable: blob_ref(A, "30eb"),
        canary: Some(CanaryRef {
            blob_ref: blob_ref(B, "0572"),
            percent: percent.parse().unwrap(),
            salt: CanaryRef::salt_for("prod", 6),
            since: 6,
        }),
        signature: None,
    }
}

/// Today's publisher output, written out by hand from layout.rs: `Pointer`'s fields in order
/// (`version`, `blob`, `sha256`, `content_hash`, then `canary` only when there is one), the
/// canary's (`blob`, `sha256`, `content_hash`, `percent`, `salt`, `since`), whole percentages
/// as integers.
const STABLE_ONLY: &str = "{
  \"version\": 7,
  \"blob\": \"blobs/346b7447d1c0c2f6b9b0fbd7a8cbd5f3e07f7bba8a4f3c0cbf6f4b8f0e2d2a11.json.gz\",
  \"sha256\": \"346b7447d1c0c2f6b9b0fbd7a8cbd5f3e07f7bba8a4f3c0cbf6f4b8f0e2d2a11\",
  \"content_hash\": \"sha256:30eb\"
}
";

const CANARY_AT_5: &str = "{
  \"version\": 7,
  \"blob\": \"blobs/346b7447d1c0c2f6b9b0fbd7a8cbd5f3e07f7bba8a4f3c0cbf6f4b8f0e2d2a11.json.gz\",
  \"sha256\": \"346b7447d1c0c2f6b9b0fbd7a8cbd5f3e07f7bba8a4f3c0cbf6f4b8f0e2d2a11\",
  \"content_hash\": \"sha256:30eb\",
  \"canary\": {
    \"blob\": \"blobs/683c2e56a1f49d7ab2a0c8a2e8c35d1f3a1fc2c79a0e7e1b5d9f52c0d3b4e6f7.json.gz\",
    \"sha256\": \"683c2e56a1f49d7ab2a0c8a2e8c35d1f3a1fc2c79a0e7e1b5d9f52c0d3b4e6f7\",
    \"content_hash\": \"sha256:0572\",
    \"percent\": 5,
    \"salt\": \"canary-prod-6\",
    \"since\": 6
  }
}
";

#[test]
fn the_publishers_pointer_round_trips_byte_for_byte() {
    let stable_only = Pointer {
        canary: None,
        ..with_canary("5")
    };
    let cases = [
        (stable_only, String::from(STABLE_ONLY)),
        (with_canary("5"), String::from(CANARY_AT_5)),
        (
            with_canary("12.5"),
            CANARY_AT_5.replace("\"percent\": 5,", "\"percent\": 12.5,"),
        ),
    ];
    for (pointer, text) in cases {
        assert_eq!(
            String::from_utf8(publisher_bytes(&pointer)).unwrap(),
            text,
            "written as the publisher writes it"
        );
        let read: Pointer = serde_json::from_str(&text).unwrap();
        assert_eq!(read, pointer, "serde reads it back");
        assert_eq!(
            Pointer::parse(text.as_bytes()),
            Ok(pointer.clone()),
            "so does the edge"
        );
        // Compact: the same fields in the same order.
        let compact = serde_json::to_string(&pointer).unwrap();
        let squeezed: String = text.lines().map(str::trim).collect();
        assert_eq!(compact, squeezed.replace("\": ", "\":"));
        assert_eq!(Pointer::parse(compact.as_bytes()), Ok(pointer));
    }
}

#[test]
fn serdes_reader_requires_what_the_edges_tolerates() {
    let sha = "ab".repeat(32);
    let without_hash = format!(r#"{{"version":4,"blob":"blobs/{sha}.json.gz","sha256":"{sha}"}}"#);
    assert!(serde_json::from_str::<Pointer>(&without_hash).is_err());
    let read = Pointer::parse(without_hash.as_bytes()).unwrap();
    assert_eq!(read.stable.content_hash, "");
    assert_eq!(read.stable.known_content_hash(), None);
    let null_hash = without_hash.replace('}', r#","content_hash":null}"#);
    assert_eq!(Pointer::parse(null_hash.as_bytes()), Ok(read));

    // A percent above 0 that rounds to no bucket: serde refuses it, the edge serves it to nobody.
    let tiny = format!(
        r#"{{"version":4,"blob":"blobs/{sha}.json.gz","sha256":"{sha}","content_hash":"h",
            "canary":{{"blob":"blobs/{sha}.json.gz","sha256":"{sha}","content_hash":"h",
                       "percent":0.0001,"salt":"s","since":4}}}}"#
    );
    assert!(serde_json::from_str::<Pointer>(&tiny).is_err());
    let canary = Pointer::parse(tiny.as_bytes()).unwrap().canary.unwrap();
    assert_eq!(canary.percent.buckets(), 0);
}

#[test]
fn the_edge_reader_refuses_with_its_reason() {
    let (sha, other) = ("ab".repeat(32), "cd".repeat(32));
    let stable = |blob: &str, sha256: &str| {
        format!(r#"{{"version":4,"blob":"{blob}","sha256":"{sha256}","content_hash":"sha256:x""#)
    };
    let good = stable(&format!("blobs/{sha}.json.gz"), &sha);
    let canary = |fields: &str| format!(r#"{good},"canary":{{{fields}}}}}"#);
    let canary_blob = format!(r#""blob":"blobs/{other}.json.gz","sha256":"{other}""#);
    let cases = [
        (format!("{good}}}"), Ok(())),
        (format!("{good},\"canary\":null}}"), Ok(())),
        (format!("{good},\"unknown\":[1]}}"), Ok(())),
        ("nope".into(), Err(PointerError::NotPointer)),
        ("[]".into(), Err(PointerError::NotPointer)),
        (
            r#"{"version":-1,"blob":"b","sha256":"s"}"#.into(),
            Err(PointerError::NotPointer),
        ),
        (
            format!("{good},\"content_hash\":5}}"),
            Err(PointerError::NotPointer),
        ),
        (
            format!("{}}}", stable("../../etc/passwd", &sha)),
            Err(PointerError::BlobNotContentAddressed),
        ),
        (
            format!("{}}}", stable(&format!("blobs/{other}.json.gz"), &sha)),
            Err(PointerError::BlobNotContentAddressed),
        ),
        (
            format!(
                "{}}}",
                stable(&format!("blobs/{sha}.json.gz"), &"AB".repeat(32))
            ),
            Err(PointerError::Sha256NotHex),
        ),
        (
            canary(&format!(
                r#"{canary_blob},"percent":12.5,"salt":"canary-prod-5","since":5"#
            )),
            Ok(()),
        ),
        (
            canary(&format!(
                r#"{canary_blob},"percent":0,"salt":"s","since":5"#
            )),
            Err(PointerError::CanaryPercent),
        ),
        (
            canary(&format!(
                r#"{canary_blob},"percent":101,"salt":"s","since":5"#
            )),
            Err(PointerError::CanaryPercent),
        ),
        (
            canary(&format!(r#"{canary_blob},"percent":5,"salt":"","since":5"#)),
            Err(PointerError::CanarySalt),
        ),
        (
            canary(&format!(
                r#"{canary_blob},"percent":5,"salt":"{}","since":5"#,
                "s".repeat(MAX_SALT_BYTES + 1)
            )),
            Err(PointerError::CanarySalt),
        ),
        (
            canary(r#""blob":"../x","sha256":"cd","percent":5,"salt":"s","since":5"#),
            Err(PointerError::Sha256NotHex),
        ),
        (canary(r#""percent":5"#), Err(PointerError::NotPointer)),
        (
            format!(" {}", " ".repeat(MAX_POINTER_BYTES)),
            Err(PointerError::TooLarge),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            Pointer::parse(text.as_bytes()).map(drop),
            expected,
            "{text}"
        );
    }
    assert_eq!(
        PointerError::CanaryPercent.to_string(),
        "canary percent is not in (0, 100]"
    );
}

#[test]
fn a_canary_half_reads_alone_as_the_edges_cache_header_carries_it() {
    let canary = with_canary("12.5").canary.unwrap();
    let json = serde_json::to_value(&canary).unwrap();
    assert_eq!(CanaryRef::from_json(&json), Ok(canary));
    assert_eq!(
        CanaryRef::from_json(&serde_json::json!({"percent": 5})),
        Err(PointerError::NotPointer)
    );
}

#[test]
fn shares_are_percentages_in_bucket_steps() {
    assert_eq!("5".parse::<Share>().unwrap().buckets(), 5_000);
    assert_eq!("0.001%".parse::<Share>().unwrap().buckets(), 1);
    assert_eq!("100".parse::<Share>().unwrap().buckets(), 100_000);
    for bad in ["0", "-1", "100.5", "abc", "NaN", "0.0001", "inf"] {
        assert!(bad.parse::<Share>().is_err(), "{bad}");
    }
    assert_eq!(
        "0".parse::<Share>().unwrap_err(),
        "invalid share \"0\": expected a percentage above 0 and at most 100 (steps of 0.001)"
    );
    let json = |s: &str| serde_json::to_string(&s.parse::<Share>().unwrap()).unwrap();
    assert_eq!((json("5"), json("12.5")), ("5".into(), "12.5".into()));
    assert_eq!(
        serde_json::from_str::<Share>("12.5").unwrap().buckets(),
        12_500
    );
    let refused = serde_json::from_str::<Share>("0").unwrap_err().to_string();
    assert!(
        refused.starts_with("canary percent 0 is not in (0, 100]"),
        "{refused}"
    );
    assert_eq!("2.5".parse::<Share>().unwrap().to_string(), "2.5%");
}

#[test]
fn buckets_round_as_std_rounds() {
    let mut percents: Vec<f64> = (0..=200_000).map(|i| f64::from(i) / 2_000.0).collect();
    percents.extend([
        1e-9,
        0.0004999,
        0.0005,
        0.00049999999999999,
        99.9995,
        99.99949,
        100.0,
    ]);
    percents.extend((1..10_000).map(|i| f64::from(i) * 0.012_345_678_9));
    for percent in percents {
        let expected = if percent > 0.0 && percent <= 100.0 {
            (percent * f64::from(BUCKETS) / 100.0).round() as u32
        } else {
            OUT_OF_RANGE
        };
        assert_eq!(buckets_of(percent), expected, "{percent}");
    }
    for outside in [0.0, -0.0, -5.0, 100.000_001, f64::NAN, f64::INFINITY] {
        assert_eq!(buckets_of(outside), OUT_OF_RANGE, "{outside}");
    }
}
