//! Runs one engine's timed evaluation N times, for counting instructions under callgrind:
//! a measure that other processes on a shared machine cannot disturb.
//!
//! `cargo build -p benches --release --features peers --bin instructions`, then for each
//! ENGINE (`shared-eval`, `shared-eval-resolved`, `unleash-yggdrasil`, `launchdarkly`) and CASE (`rule-split`,
//! `no-rules`; or `shared-eval decode` for loading the 1,000-flag blob): `valgrind --tool=callgrind target/release/instructions ENGINE CASE N` with N = 0
//! and N = 100000; instructions per evaluation = (I(N) - I(0)) / N.
//!
//! `shared-eval` evaluates against the JSON context map (every attribute looked up per call);
//! `shared-eval-resolved` resolves the context once outside the loop and evaluates against
//! its slots, the counterpart of the peers, whose contexts are also built once outside theirs.

use std::hint::black_box;

use benches::fixtures::NOW_MS;
use benches::peers::{LaunchDarkly, Unleash};
use benches::scenario::{
    Native, RULE_FLAG, SIMPLE_FLAG, bench_attrs, context_map, scenario_snapshot, verify,
};
use shared_eval::{Context, evaluate, evaluate_resolved};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(engine), Some(case), Some(n)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: instructions ENGINE CASE N".into());
    };
    let n: u64 = n.parse().map_err(|e| format!("N: {e}"))?;
    if case == "decode" {
        // Blob loading at the edge: the 1,000 realistic flags from uncompressed JSON.
        let json = benches::fixtures::blob_json(&benches::fixtures::realistic_blob(1000));
        for _ in 0..n {
            black_box(
                shared_eval::Snapshot::from_json(black_box(&json)).map_err(|e| e.to_string())?,
            );
        }
        return Ok(());
    }
    let key = match case.as_str() {
        "rule-split" => RULE_FLAG,
        "no-rules" => SIMPLE_FLAG,
        other => return Err(format!("unknown case {other}")),
    };
    let attrs = bench_attrs();
    match engine.as_str() {
        "shared-eval" => {
            let native = Native {
                snapshot: scenario_snapshot().map_err(|e| e.to_string())?,
            };
            verify(&native)?;
            let map = context_map(&attrs);
            for _ in 0..n {
                black_box(evaluate(
                    &native.snapshot,
                    black_box(key),
                    &Context::new(black_box(&map)),
                    NOW_MS,
                ));
            }
        }
        "shared-eval-resolved" => {
            let native = Native {
                snapshot: scenario_snapshot().map_err(|e| e.to_string())?,
            };
            verify(&native)?;
            let map = context_map(&attrs);
            let resolved = native.snapshot.resolve(&Context::new(&map));
            for _ in 0..n {
                black_box(evaluate_resolved(
                    black_box(&resolved),
                    black_box(key),
                    NOW_MS,
                ));
            }
        }
        "unleash-yggdrasil" => {
            let unleash = Unleash::load()?;
            verify(&unleash)?;
            let context = Unleash::context(&attrs);
            for _ in 0..n {
                if key == RULE_FLAG {
                    black_box(unleash.engine.get_variant(
                        black_box(key),
                        black_box(&context),
                        &None,
                    ));
                } else {
                    black_box(unleash.engine.is_enabled(
                        black_box(key),
                        black_box(&context),
                        &None,
                    ));
                }
            }
        }
        "launchdarkly" => {
            let launchdarkly = LaunchDarkly::load()?;
            verify(&launchdarkly)?;
            let context = LaunchDarkly::context(&attrs)?;
            for _ in 0..n {
                black_box(launchdarkly.evaluate(black_box(key), black_box(&context)));
            }
        }
        other => return Err(format!("unknown engine {other}")),
    }
    Ok(())
}
