//! The rule flag (three conditions + a 50/50 split) timed the three ways a caller can evaluate
//! it, next to the peers in the same run: `evaluate` (context lookups included), a resolved
//! context built per iteration (what one flag of a bulk request pays when it is the only flag),
//! and a resolved context reused (the per-flag cost once a bulk request has looked its
//! attributes up).
//!
//! Run with `cargo bench -p benches --features peers --bench eval_fast`.

use std::hint::black_box;

use benches::fixtures::NOW_MS;
use benches::scenario::{Native, RULE_FLAG, bench_attrs, context_map, scenario_snapshot, verify};
use criterion::{Criterion, criterion_group, criterion_main};
use shared_eval::{Context, evaluate, evaluate_resolved};

fn rule_flag(c: &mut Criterion) {
    let native = Native {
        snapshot: scenario_snapshot().expect("the scenario blob loads"),
    };
    verify(&native).expect("shared-eval evaluates the scenario as specified");
    let snapshot = &native.snapshot;
    let attrs = bench_attrs();
    let map = context_map(&attrs);
    let ctx = Context::new(&map);
    let reused = snapshot.resolve(&ctx);
    // The three ways agree before anything is timed.
    let one = evaluate(snapshot, RULE_FLAG, &ctx, NOW_MS);
    assert_eq!(one.variant, Some(benches::scenario::TREATMENT));
    assert_eq!(evaluate_resolved(&reused, RULE_FLAG, NOW_MS), one);

    let mut group = c.benchmark_group("rule_split_fast");
    group.bench_function("shared-eval/evaluate", |b| {
        b.iter(|| {
            evaluate(
                snapshot,
                black_box(RULE_FLAG),
                &Context::new(black_box(&map)),
                NOW_MS,
            )
        })
    });
    group.bench_function("shared-eval/resolve+evaluate_resolved", |b| {
        b.iter(|| {
            let resolved = snapshot.resolve(&Context::new(black_box(&map)));
            evaluate_resolved(&resolved, black_box(RULE_FLAG), NOW_MS).reason
        })
    });
    group.bench_function("shared-eval/evaluate_resolved(amortized)", |b| {
        b.iter(|| evaluate_resolved(black_box(&reused), black_box(RULE_FLAG), NOW_MS))
    });
    #[cfg(feature = "peers")]
    {
        use benches::peers::{LaunchDarkly, Unleash};
        let unleash = Unleash::load().expect("Unleash state loads");
        verify(&unleash).expect("Unleash evaluates the scenario as specified");
        let launchdarkly = LaunchDarkly::load().expect("LaunchDarkly flags load");
        verify(&launchdarkly).expect("LaunchDarkly evaluates the scenario as specified");
        let unleash_context = Unleash::context(&attrs);
        let launchdarkly_context = LaunchDarkly::context(&attrs).expect("LaunchDarkly context");
        group.bench_function("unleash-yggdrasil", |b| {
            b.iter(|| {
                unleash
                    .engine
                    .get_variant(black_box(RULE_FLAG), black_box(&unleash_context), &None)
            })
        });
        group.bench_function("launchdarkly", |b| {
            b.iter(|| launchdarkly.evaluate(black_box(RULE_FLAG), black_box(&launchdarkly_context)))
        });
    }
    group.finish();
}

criterion_group!(benches, rule_flag);
criterion_main!(benches);
