//! The evaluator's workloads, built once for wasm32 (run in V8 by `run.mjs` through node) and
//! once natively (`src/main.rs`), so `cargo xtask bench-wasm` can report wasm as a ratio to
//! native for the same code, the same fixtures and the same run.
//!
//! Each workload method runs `iterations` times and returns a checksum of what it computed: the
//! work cannot be optimized away, and native and wasm must agree on it (the harness checks).

use std::io::Read as _;

use benches::fixtures::{NOW_MS, blob_json, gzip, realistic_blob, realistic_context};
use serde_json::{Map, Value};
use shared_eval::{Context, Snapshot, evaluate_all};
use wasm_bindgen::prelude::wasm_bindgen;

/// The fixtures, built once before anything is timed.
#[wasm_bindgen]
pub struct Workloads {
    /// 100 realistic flags, loaded (what evaluate-all runs on).
    snapshot: Snapshot,
    /// A signed-in dashboard user.
    context: Map<String, Value>,
    /// The 1,000-flag blob as JSON and gzipped (what a new version costs to load).
    json: Vec<u8>,
    gzipped: Vec<u8>,
}

#[wasm_bindgen]
impl Workloads {
    /// Builds the fixtures. `None` only if they no longer load (then nothing is timed).
    pub fn new() -> Option<Workloads> {
        let snapshot = Snapshot::from_blob(realistic_blob(100)).ok()?;
        let json = blob_json(&realistic_blob(1000));
        let gzipped = gzip(&json);
        Some(Workloads {
            snapshot,
            context: realistic_context(),
            json,
            gzipped,
        })
    }

    /// Evaluate-all of 100 flags for one user, as the OFREP bulk route does.
    pub fn evaluate_all(&self, iterations: u32) -> u32 {
        let mut checksum = 0u32;
        for _ in 0..iterations {
            let results = evaluate_all(
                &self.snapshot,
                &Context::new(std::hint::black_box(&self.context)),
                NOW_MS,
            );
            for (_, evaluation) in &results {
                let variant = evaluation.variant.map_or(0, str::len) as u32;
                checksum = checksum.wrapping_mul(31).wrapping_add(variant);
            }
        }
        checksum
    }

    /// Parse and index the 1,000-flag blob (JSON already gunzipped).
    pub fn decode(&self, iterations: u32) -> u32 {
        let mut checksum = 0u32;
        for _ in 0..iterations {
            let flags = Snapshot::from_json(std::hint::black_box(&self.json))
                .map_or(0, |s| s.flag_keys().count()) as u32;
            checksum = checksum.wrapping_add(flags);
        }
        checksum
    }

    /// Gunzip, parse and index the 1,000-flag blob: what an isolate does with a new version.
    pub fn gunzip_decode(&self, iterations: u32) -> u32 {
        let mut checksum = 0u32;
        for _ in 0..iterations {
            let mut json = Vec::with_capacity(self.json.len());
            let flags = flate2::read::GzDecoder::new(std::hint::black_box(&self.gzipped[..]))
                .read_to_end(&mut json)
                .ok()
                .and_then(|_| Snapshot::from_json(&json).ok())
                .map_or(0, |s| s.flag_keys().count()) as u32;
            checksum = checksum.wrapping_add(flags);
        }
        checksum
    }
}

/// The workloads by name, in report order (the harness on both sides walks this list).
pub const WORKLOADS: &[&str] = &["evaluate_all", "decode", "gunzip_decode"];

impl Workloads {
    /// Runs the named workload (native side; the wasm side calls the methods directly).
    pub fn run(&self, name: &str, iterations: u32) -> Option<u32> {
        match name {
            "evaluate_all" => Some(self.evaluate_all(iterations)),
            "decode" => Some(self.decode(iterations)),
            "gunzip_decode" => Some(self.gunzip_decode(iterations)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_computes_something() {
        let workloads = Workloads::new().expect("fixtures load");
        assert_eq!(workloads.snapshot.flag_keys().count(), 100);
        assert_eq!(workloads.decode(1), 1000);
        assert_eq!(workloads.gunzip_decode(2), 2000);
        assert_ne!(workloads.evaluate_all(1), 0);
        for name in WORKLOADS {
            assert!(workloads.run(name, 1).is_some(), "{name}");
        }
    }
}
