//! Evaluation benchmarks, with the peer evaluators side by side in the same criterion groups.
//!
//! Run with `cargo bench -p benches --features peers --bench eval`; without `--features peers`
//! only shared-eval is measured. Every engine's state is loaded once, outside the timed loop,
//! and checked with `scenario::verify` first: a peer that did not really evaluate the three
//! conditions and the split would abort the run rather than look fast.

use std::hint::black_box;

use benches::fixtures::{NOW_MS, realistic_blob, realistic_context};
use benches::scenario::{
    Native, RULE_FLAG, SIMPLE_FLAG, bench_attrs, context_map, scenario_snapshot, verify,
};
use criterion::{Criterion, criterion_group, criterion_main};
use shared_eval::{Context, Reason, Snapshot, Targeting, evaluate, evaluate_all};

fn native() -> Native {
    let native = Native {
        snapshot: scenario_snapshot().expect("the scenario blob loads"),
    };
    verify(&native).expect("shared-eval evaluates the scenario as specified");
    native
}

/// (a) one flag: a rule of three conditions serving a 50/50 split; and (d) the floor, a boolean
/// flag without rules. Same context, same flags, three engines.
fn one_flag(c: &mut Criterion) {
    let native = native();
    let attrs = bench_attrs();
    let map = context_map(&attrs);

    #[cfg(feature = "peers")]
    let (unleash, unleash_context, launchdarkly, launchdarkly_context) = {
        use benches::peers::{LaunchDarkly, Unleash};
        let unleash = Unleash::load().expect("Unleash state loads");
        verify(&unleash).expect("Unleash evaluates the scenario as specified");
        let launchdarkly = LaunchDarkly::load().expect("LaunchDarkly flags load");
        verify(&launchdarkly).expect("LaunchDarkly evaluates the scenario as specified");
        let unleash_context = Unleash::context(&attrs);
        let launchdarkly_context = LaunchDarkly::context(&attrs).expect("LaunchDarkly context");
        (unleash, unleash_context, launchdarkly, launchdarkly_context)
    };
    #[cfg(not(feature = "peers"))]
    eprintln!("peers not compiled in: run with `--features peers` to measure them side by side");

    let mut group = c.benchmark_group("one_flag_rule_split");
    group.bench_function("shared-eval", |b| {
        b.iter(|| {
            evaluate(
                &native.snapshot,
                black_box(RULE_FLAG),
                &Context::new(black_box(&map)),
                NOW_MS,
            )
        })
    });
    #[cfg(feature = "peers")]
    {
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

    let mut group = c.benchmark_group("one_flag_no_rules");
    group.bench_function("shared-eval", |b| {
        b.iter(|| {
            evaluate(
                &native.snapshot,
                black_box(SIMPLE_FLAG),
                &Context::new(black_box(&map)),
                NOW_MS,
            )
        })
    });
    #[cfg(feature = "peers")]
    {
        group.bench_function("unleash-yggdrasil", |b| {
            b.iter(|| {
                unleash.engine.is_enabled(
                    black_box(SIMPLE_FLAG),
                    black_box(&unleash_context),
                    &None,
                )
            })
        });
        group.bench_function("launchdarkly", |b| {
            b.iter(|| {
                launchdarkly.evaluate(black_box(SIMPLE_FLAG), black_box(&launchdarkly_context))
            })
        });
    }
    group.finish();
}

/// (b) evaluate-all: 100 realistic flags for one signed-in user, as the OFREP bulk endpoint does.
fn all_flags(c: &mut Criterion) {
    let snapshot = Snapshot::from_blob(realistic_blob(100)).expect("the 100-flag blob loads");
    let map = realistic_context();
    let results = evaluate_all(&snapshot, &Context::new(&map), NOW_MS);
    assert_eq!(results.len(), 100);
    let errors: Vec<_> = results
        .iter()
        .filter(|(_, e)| e.reason == Reason::Error)
        .collect();
    assert!(
        errors.is_empty(),
        "realistic flags evaluated to errors: {errors:?}"
    );

    let mut group = c.benchmark_group("evaluate_all_100");
    group.bench_function("shared-eval", |b| {
        b.iter(|| evaluate_all(&snapshot, &Context::new(black_box(&map)), NOW_MS))
    });
    group.finish();
}

/// One flag again, but found among 1,000 realistic flags (key lookup in a full blob): a release
/// flag with three rules, for the realistic context.
fn one_flag_in_full_blob(c: &mut Criterion) {
    let snapshot = Snapshot::from_blob(realistic_blob(1000)).expect("the 1,000-flag blob loads");
    let key = snapshot
        .blob()
        .body
        .flags
        .iter()
        .find(|f| {
            matches!(&f.targeting, Targeting::Rules { rules, .. } if rules.len() == 3) && f.enabled
        })
        .map(|f| f.key.clone())
        .expect("the fixtures have a flag with three rules");
    let map = realistic_context();
    let evaluation = evaluate(&snapshot, &key, &Context::new(&map), NOW_MS);
    assert_eq!(evaluation.error, None, "{key}: {evaluation:?}");
    eprintln!(
        "one_flag_in_1000: {key} -> {:?} ({:?})",
        evaluation.variant, evaluation.reason
    );

    let mut group = c.benchmark_group("one_flag_in_1000");
    group.bench_function("shared-eval", |b| {
        b.iter(|| {
            evaluate(
                &snapshot,
                black_box(&key),
                &Context::new(black_box(&map)),
                NOW_MS,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, one_flag, all_flags, one_flag_in_full_blob);
criterion_main!(benches);
