//! `GET /_flags/health`: what this isolate serves, for operators and `publisher drift`.
//!
//! Fields: `environment`, `loaded`, `version` (the pointer's), `blob_version` (the blob
//! header's; differs after a rollback), `content_hash`, `sha256` (of the `.gz` object),
//! `loaded_at`, `age_ms`, `loaded_from` (`cache`/`origin`), `source` (what this request did:
//! `memory`, `cache` or `origin`), `telemetry` (`{pending, dropped, sending}` evaluation
//! counts, see `telemetry.rs`), `last_check_at`, `consecutive_failures`, `last_error`
//! (`{message, at, recovered_at}` or null; `recovered_at` is null while the error is current,
//! so a monitor alerts on `consecutive_failures > 0` or `recovered_at == null`, not on an old
//! error kept for the record), `revalidate_ms`, `flags` (count), `worker_version`, and `canary`:
//! null, or what the canary's share of users gets (`percent`, `salt`, `since`, and the same
//! blob fields as above). The top-level blob fields describe the stable version. A canary
//! that failed to load shows in `last_error` (prefixed `canary:`) while the last good one, if
//! any, keeps serving.
//! With `FLAGS_PUBLIC_KEYS` set, a refused pointer (unsigned, unknown key, bad signature,
//! older than the version served; `trust.rs`) shows in `last_error` the same way, while the
//! last good blob keeps serving.

use serde_json::{Value, json};

use crate::clock::rfc3339;
use crate::http::Reply;
use crate::loader::{Loaded, LoadedCanary, Schedule, Source};

/// Path of the health endpoint.
pub const PATH: &str = "/_flags/health";

/// The health document.
pub fn document(
    environment: &str,
    loaded: Option<&Loaded>,
    canary: Option<&LoadedCanary>,
    schedule: &Schedule,
    source: Source,
    revalidate_ms: u64,
    now_ms: u64,
) -> Value {
    let describe = |l: &Loaded| {
        let header = l.snapshot.header();
        json!({
            "version": l.version,
            "blob_version": header.version,
            "content_hash": header.content_hash,
            "sha256": l.sha256,
            "created_at": header.created_at,
            "loaded_at": rfc3339(l.loaded_at_ms),
            "age_ms": now_ms.saturating_sub(l.loaded_at_ms),
            "loaded_from": l.source.as_str(),
            "flags": l.snapshot.flag_keys().count(),
        })
    };
    let blob = loaded.map(describe);
    let canary = canary.map(|c| {
        let mut doc = describe(&c.loaded);
        if let Some(doc) = doc.as_object_mut() {
            // A canary's `version` is the one that started it (its blob may be newer: a kill).
            doc.remove("version");
            doc.insert("since".into(), json!(c.split.since));
            doc.insert("percent".into(), json!(c.split.percent()));
            doc.insert("salt".into(), json!(c.split.salt));
        }
        doc
    });
    let mut doc = json!({
        "environment": environment,
        "loaded": loaded.is_some(),
        "source": source.as_str(),
        "last_check_at": schedule.last_check_ms.map(rfc3339),
        "consecutive_failures": schedule.consecutive_failures,
        "last_error": schedule.last_error.as_ref().map(|f| json!({
            "message": f.message,
            "at": rfc3339(f.at_ms),
            "recovered_at": f.recovered_at_ms.map(rfc3339),
        })),
        "revalidate_ms": revalidate_ms,
        "worker_version": env!("CARGO_PKG_VERSION"),
        "canary": canary,
    });
    if let (Some(Value::Object(blob)), Some(doc)) = (blob, doc.as_object_mut()) {
        doc.extend(blob);
    }
    doc
}

/// Adds this isolate's own state to a health document: `isolate` (start time, request count),
/// `telemetry` (its evaluation counts) and `answer_cache` (hits, misses, size).
pub fn with_isolate(mut doc: Value) -> Value {
    if let Some(fields) = doc.as_object_mut() {
        fields.insert("isolate".into(), crate::isolate::document());
        let telemetry = crate::telemetry::with_tally(|t| t.document());
        fields.insert("telemetry".into(), telemetry);
        fields.insert(
            "answer_cache".into(),
            crate::answer_cache::stats().document(),
        );
    }
    doc
}

/// The health reply: never cached, since it describes one isolate at one instant.
pub fn reply(document: &Value) -> Reply {
    Reply::json(200, serde_json::to_vec(document).unwrap_or_default())
        .with_header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::LoadError;

    #[test]
    fn the_isolates_own_state_is_added() {
        let doc = with_isolate(json!({"environment": "prod"}));
        for field in ["environment", "isolate", "telemetry", "answer_cache"] {
            assert!(doc.get(field).is_some(), "{field} in {doc}");
        }
    }

    #[test]
    fn cold_isolate_reports_its_last_error() {
        let mut schedule = Schedule::default();
        schedule.failed(&LoadError::NotFound("pointer"), 1_000, 250);
        let doc = document("prod", None, None, &schedule, Source::Origin, 250, 1_100);
        assert_eq!(doc["loaded"], false);
        assert_eq!(doc["environment"], "prod");
        assert_eq!(doc["last_error"]["message"], "origin has no pointer (404)");
        assert_eq!(doc["last_error"]["recovered_at"], serde_json::Value::Null);
        assert_eq!(doc["consecutive_failures"], 1);
        assert!(doc.get("version").is_none());
        assert_eq!(doc["canary"], serde_json::Value::Null);
    }
}
