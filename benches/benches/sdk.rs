//! The Rust SDK's evaluation with a prepared context (`flags-sdk-core`'s `Core::evaluate`, which
//! `flags_sdk::Client::bool_value` and friends call with a conversion closure; the bench links
//! the core alone so the release build stays small), beside
//! the peers' in-process engines on the same flags in the same run: the rule flag (three
//! conditions + a 50/50 split, `benches::scenario`), and the 100 realistic flags evaluated one
//! by one with one prepared context (against `shared_eval::evaluate_all`).
//!
//! Run with `cargo bench -p benches --features peers --bench sdk`.

use std::hint::black_box;

use benches::fixtures::{NOW_MS, bench_header, gzip, realistic_blob, realistic_context};
use benches::scenario::{RULE_FLAG, TREATMENT, bench_attrs, context_map, scenario_body};
use criterion::{Criterion, criterion_group, criterion_main};
use flags_sdk_core::{Core, SyncConfig};
use serde_json::Value;
use shared_eval::{Blob, BlobRef, Pointer, Snapshot, evaluate_all};

/// A core serving `blob`, loaded through its own checks, as a client's is.
fn client_with(blob: &Blob) -> Core {
    let gz = gzip(&serde_json::to_vec(blob).expect("blob JSON"));
    let sha256 = flags_sdk_core::blob::sha256_hex(&gz);
    let pointer = serde_json::to_vec(&Pointer {
        version: 1,
        stable: BlobRef::content_addressed(sha256, blob.header.content_hash.clone()),
        canary: None,
    })
    .expect("pointer");
    let core = Core::new(&blob.header.environment, SyncConfig::default(), 1);
    core.restore(&pointer, |_| Some(gz.clone()))
        .expect("the blob loads");
    core
}

/// What `flags_sdk::Client::string_value` does.
fn string_value(
    core: &Core,
    key: &str,
    user: &flags_sdk_core::PreparedContext,
    default: &str,
) -> String {
    core.evaluate(
        user,
        key,
        || NOW_MS,
        |e| {
            e.and_then(|e| e.value)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_owned()
        },
    )
}

fn rule_flag(c: &mut Criterion) {
    let blob = Blob::new(bench_header(), scenario_body());
    let core = &client_with(&blob);
    let user = core.prepare(context_map(&bench_attrs()));
    assert_eq!(string_value(core, RULE_FLAG, &user, "off"), TREATMENT);
    let mut group = c.benchmark_group("sdk_rule_split");
    group.bench_function("flags-sdk/core.evaluate(prepared)", |b| {
        b.iter(|| {
            core.evaluate(
                black_box(&user),
                black_box(RULE_FLAG),
                || NOW_MS,
                |e| e.and_then(|e| e.variant).map(str::len),
            )
        })
    });
    group.bench_function("flags-sdk/string_value(prepared)", |b| {
        b.iter(|| string_value(core, black_box(RULE_FLAG), black_box(&user), "off"))
    });
    #[cfg(feature = "peers")]
    {
        use benches::peers::{LaunchDarkly, Unleash};
        use benches::scenario::verify;
        let attrs = bench_attrs();
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

fn all_flags(c: &mut Criterion) {
    let blob = realistic_blob(100);
    let core = &client_with(&blob);
    let map = realistic_context();
    let user = core.prepare(map.clone());
    let snapshot = Snapshot::from_blob(blob.clone()).expect("loads");
    let keys: Vec<String> = snapshot.flag_keys().map(str::to_owned).collect();
    assert_eq!(keys.len(), 100);
    let mut group = c.benchmark_group("sdk_all_100");
    group.bench_function("flags-sdk/100 x core.evaluate(prepared)", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for key in &keys {
                n += core.evaluate(
                    black_box(&user),
                    key,
                    || NOW_MS,
                    |e| e.map_or(0, |e| e.reason as usize),
                );
            }
            n
        })
    });
    group.bench_function("shared-eval/evaluate_all", |b| {
        b.iter(|| {
            evaluate_all(
                &snapshot,
                &shared_eval::Context::new(black_box(&map)),
                NOW_MS,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, rule_flag, all_flags);
criterion_main!(benches);
