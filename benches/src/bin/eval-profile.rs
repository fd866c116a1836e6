//! Runs one evaluation scenario N times, for instruction counting under callgrind.
//!
//! `cargo build -p benches --release --bin eval-profile`, then e.g.
//! `valgrind --tool=callgrind target/release/eval-profile rule 1000` and the same with `0`:
//! the difference divided by 1,000 is the instruction count of one evaluation, independent of
//! the machine's load (wall-clock numbers come from the criterion benches).
//!
//! Scenarios: `rule` (the 3-condition + split flag through `evaluate`, lookups included),
//! `rule-resolve` (a resolved context built per evaluation), `rule-amortized` (one resolved
//! context reused: the per-flag cost inside a bulk request), `simple` (the flag without rules),
//! `in1000` (a 3-rule flag looked up among 1,000 realistic flags),
//! `all100` (evaluate_all over 100 realistic flags), `decode1000` (`Snapshot::from_json` of
//! the 1,000 realistic flags' blob JSON: parse, hash, check and prepare).

use std::hint::black_box;

use benches::fixtures::{NOW_MS, realistic_blob, realistic_context};
use benches::scenario::{RULE_FLAG, SIMPLE_FLAG, bench_attrs, context_map, scenario_snapshot};
use shared_eval::{Context, Snapshot, Targeting, evaluate, evaluate_all, evaluate_resolved};

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_else(|| "rule".into());
    let runs: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let Ok(native) = scenario_snapshot() else {
        eprintln!("the scenario blob does not load");
        std::process::exit(1);
    };
    let map = context_map(&bench_attrs());
    let Ok(realistic) = Snapshot::from_blob(realistic_blob(100)) else {
        eprintln!("the realistic blob does not load");
        std::process::exit(1);
    };
    let realistic_map = realistic_context();
    let ctx = Context::new(&map);
    let reused = native.resolve(&ctx);
    let mut served = 0usize;
    // The scenario is picked once, outside the loop, so the loop costs the same for each.
    let in1000 = match Snapshot::from_blob(realistic_blob(1000)) {
        Ok(snapshot) => snapshot,
        Err(_) => {
            eprintln!("the 1,000-flag blob does not load");
            std::process::exit(1);
        }
    };
    let in1000_key = in1000
        .blob()
        .body
        .flags
        .iter()
        .find(|f| {
            matches!(&f.targeting, Targeting::Rules { rules, .. } if rules.len() == 3) && f.enabled
        })
        .map(|f| f.key.clone())
        .unwrap_or_default();
    let blob_json = serde_json::to_vec(in1000.blob()).unwrap_or_default();
    let run: Box<dyn Fn() -> usize> = match scenario.as_str() {
        "rule" => Box::new(|| {
            let e = evaluate(&native, black_box(RULE_FLAG), &Context::new(&map), NOW_MS);
            usize::from(black_box(e).variant.is_some())
        }),
        "rule-resolve" => Box::new(|| {
            let resolved = native.resolve(&Context::new(black_box(&map)));
            let e = evaluate_resolved(&resolved, black_box(RULE_FLAG), NOW_MS);
            usize::from(black_box(e).variant.is_some())
        }),
        "rule-amortized" => Box::new(|| {
            let e = evaluate_resolved(black_box(&reused), black_box(RULE_FLAG), NOW_MS);
            usize::from(black_box(e).variant.is_some())
        }),
        "simple" => Box::new(|| {
            let e = evaluate(&native, black_box(SIMPLE_FLAG), &Context::new(&map), NOW_MS);
            usize::from(black_box(e).variant.is_some())
        }),
        "in1000" => Box::new(|| {
            let e = evaluate(
                &in1000,
                black_box(&in1000_key),
                &Context::new(&realistic_map),
                NOW_MS,
            );
            usize::from(black_box(e).variant.is_some())
        }),
        "all100" => Box::new(|| {
            let all = evaluate_all(&realistic, &Context::new(black_box(&realistic_map)), NOW_MS);
            black_box(all).len()
        }),
        "decode1000" => Box::new(|| {
            let snapshot = Snapshot::from_json(black_box(&blob_json));
            black_box(snapshot).map_or(0, |s| s.flag_keys().count())
        }),
        other => {
            eprintln!(
                "unknown scenario {other:?}: rule, rule-resolve, rule-amortized, simple, in1000, all100 or decode1000"
            );
            std::process::exit(2);
        }
    };
    for _ in 0..runs {
        served += run();
    }
    println!("{scenario} x{runs}: {served}");
}
