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
//! `all100` (evaluate_all over 100 realistic flags).

use std::hint::black_box;

use benches::fixtures::{NOW_MS, realistic_blob, realistic_context};
use benches::scenario::{RULE_FLAG, SIMPLE_FLAG, bench_attrs, context_map, scenario_snapshot};
use shared_eval::{Context, Snapshot, evaluate, evaluate_all, evaluate_resolved};

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
    for _ in 0..runs {
        match scenario.as_str() {
            "rule" => {
                let e = evaluate(&native, black_box(RULE_FLAG), &Context::new(&map), NOW_MS);
                served += usize::from(black_box(e).variant.is_some());
            }
            "rule-resolve" => {
                let resolved = native.resolve(&Context::new(black_box(&map)));
                let e = evaluate_resolved(&resolved, black_box(RULE_FLAG), NOW_MS);
                served += usize::from(black_box(e).variant.is_some());
            }
            "rule-amortized" => {
                let e = evaluate_resolved(black_box(&reused), black_box(RULE_FLAG), NOW_MS);
                served += usize::from(black_box(e).variant.is_some());
            }
            "simple" => {
                let e = evaluate(&native, black_box(SIMPLE_FLAG), &Context::new(&map), NOW_MS);
                served += usize::from(black_box(e).variant.is_some());
            }
            "all100" => {
                let all =
                    evaluate_all(&realistic, &Context::new(black_box(&realistic_map)), NOW_MS);
                served += black_box(all).len();
            }
            other => {
                eprintln!("unknown scenario {other:?}: rule, simple or all100");
                std::process::exit(2);
            }
        }
    }
    println!("{scenario} x{runs}: {served}");
}
