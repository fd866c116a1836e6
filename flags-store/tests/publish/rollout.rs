//! Progressive rollout schedules through the library on the embedded local store: a schedule
//! advances through its stages with an explicit `now`, never removes a user from the treatment
//! (checked over 20,000 keys with the real bucketing), halts on a failing health check (a real
//! local HTTP server, and a command), `revert` steps back one stage per tick, and two racing
//! ticks cannot both advance it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use chrono::{DateTime, Duration, Utc};
use flags_compile::blob_file::Provenance;
use flags_compile::{CompileOptions, compile_path};
use flags_store::layout::{Action, RolloutStatus};
use flags_store::publish::{Environment, Outcome, PublishError};
use flags_store::store::LocalStore;
use serde_json::{Map, Value, json};
use shared_eval::{Context, Snapshot, evaluate};

const T0: &str = "2026-12-01T00:00:00Z";

fn at(hours: i64) -> DateTime<Utc> {
    T0.parse::<DateTime<Utc>>().unwrap() + Duration::hours(hours)
}

fn write_flag(dir: &Path, health: &str, on_failure: &str) {
    std::fs::create_dir_all(dir.join("flags")).unwrap();
    std::fs::write(
        dir.join("flags/new-checkout.yaml"),
        format!(
            "key: new-checkout\ndescription: The new checkout.\nowner: team-test\ntype: release\ndefault: off\n\
             environments:\n  prod:\n    enabled: true\n    rules:\n      - id: rollout\n        serve:\n          rollout:\n            \
             variant: on\n            others: off\n            stages:\n              - {{ percent: 1, soak: 1h }}\n              \
             - {{ percent: 10, soak: 1h }}\n              - {{ percent: 50, soak: 2h }}\n              - {{ percent: 100 }}\n            \
             health: {health}\n            on-failure: {on_failure}\n"
        ),
    )
    .unwrap();
}

async fn start(health: &str, on_failure: &str) -> (tempfile::TempDir, Environment) {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags-dir");
    write_flag(&flags, health, on_failure);
    let compiled = compile_path(&flags, &CompileOptions::new("prod")).expect("compiles");
    let schedules = compiled
        .schedules
        .clone()
        .expect("a directory has schedules");
    assert_eq!(schedules.len(), 1, "{schedules:?}");
    let env =
        Environment::new(Arc::new(LocalStore::new(dir.path().join("store"))), "prod").unwrap();
    let provenance = Provenance {
        author: "dev".into(),
        source_commit: None,
        source_dirty: false,
        created_at: T0.into(),
    };
    env.push_scheduled(compiled.body, Some(schedules), &provenance, None)
        .await
        .unwrap();
    (dir, env)
}

async fn treated(env: &Environment, keys: &[String]) -> Vec<bool> {
    let (_, blob) = env.deployed().await.unwrap().unwrap();
    let snapshot = Snapshot::from_blob(blob).unwrap();
    keys.iter()
        .map(|k| {
            let ctx: Map<String, Value> = json!({"targetingKey": k}).as_object().cloned().unwrap();
            evaluate(&snapshot, "new-checkout", &Context::new(&ctx), 0).value == Some(&json!(true))
        })
        .collect()
}

async fn stage(env: &Environment) -> (usize, RolloutStatus) {
    let states = env.rollouts().await.unwrap();
    (states[0].stage, states[0].status)
}

/// A real HTTP server on 127.0.0.1 answering every request with the status in `status`.
fn health_server() -> (String, Arc<AtomicU16>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthy", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(200));
    let answer = Arc::clone(&status);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let code = answer.load(Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, status)
}

#[tokio::test]
async fn a_schedule_advances_when_due_and_only_ever_adds_users() {
    let (url, _status) = health_server();
    let (_dir, env) = start(&format!("{{ url: \"{url}\" }}"), "hold").await;
    let keys: Vec<String> = (0..20_000).map(|i| format!("user-{i}")).collect();
    assert_eq!(stage(&env).await, (1, RolloutStatus::Running));
    let mut previous = treated(&env, &keys).await;
    let share = |t: &[bool]| t.iter().filter(|x| **x).count();
    assert!(
        (120..=280).contains(&share(&previous)),
        "1%: {}",
        share(&previous)
    );

    // Not due yet: nothing happens.
    let (moved, outcome) = env
        .rollout_tick(at(0) + Duration::minutes(59), "cron")
        .await
        .unwrap();
    assert!(moved.is_empty() && matches!(outcome, Outcome::Unchanged { .. }));
    for (hours, expected_stage, low, high) in [
        (1, 2, 1_800, 2_200),
        (2, 3, 9_700, 10_300),
        (4, 4, 20_000, 20_000),
    ] {
        let (moved, outcome) = env.rollout_tick(at(hours), "cron").await.unwrap();
        assert_eq!(moved.len(), 1, "{moved:?}");
        let Outcome::Published(record) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(record.action, Action::Rollout);
        assert_eq!(stage(&env).await.0, expected_stage);
        let now = treated(&env, &keys).await;
        assert!(
            (low..=high).contains(&share(&now)),
            "stage {expected_stage}: {}",
            share(&now)
        );
        let removed = previous
            .iter()
            .zip(&now)
            .filter(|(was, is)| **was && !**is)
            .count();
        assert_eq!(
            removed, 0,
            "no user leaves the treatment at stage {expected_stage}"
        );
        previous = now;
    }
    assert_eq!(stage(&env).await, (4, RolloutStatus::Done));
    let history = env.history().await.unwrap();
    let actions: Vec<&str> = history.records.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["push", "rollout", "rollout", "rollout"]);
    assert!(
        history.records[1]
            .message
            .as_deref()
            .unwrap()
            .contains("new-checkout/rollout: stage 1 -> 2"),
        "{:?}",
        history.records[1].message
    );
}

#[tokio::test]
async fn a_failing_url_check_holds_until_resumed() {
    let (url, status) = health_server();
    let (_dir, env) = start(&format!("{{ url: \"{url}\" }}"), "hold").await;
    status.store(503, Ordering::SeqCst);
    let (moved, _) = env.rollout_tick(at(1), "cron").await.unwrap();
    assert_eq!(moved[0].to, 1);
    assert_eq!(stage(&env).await, (1, RolloutStatus::Held));
    let reason = env.rollouts().await.unwrap()[0].reason.clone().unwrap();
    assert!(reason.contains("answered 503"), "{reason}");
    // Held: later ticks do nothing, even once healthy, until resumed.
    status.store(200, Ordering::SeqCst);
    let (moved, _) = env.rollout_tick(at(5), "cron").await.unwrap();
    assert!(moved.is_empty());
    env.rollout_resume(None, "oncall", at(5)).await.unwrap();
    let (moved, _) = env.rollout_tick(at(6), "cron").await.unwrap();
    assert_eq!((moved[0].from, moved[0].to), (1, 2));
}

#[tokio::test]
async fn a_failing_command_with_revert_steps_down_one_stage_per_tick() {
    let flag = tempfile::tempdir().unwrap();
    let marker = flag.path().join("healthy");
    std::fs::write(&marker, "").unwrap();
    let command = format!("{{ command: \"test -e {}\" }}", marker.display());
    let (_dir, env) = start(&command, "revert").await;
    env.rollout_tick(at(1), "cron").await.unwrap();
    env.rollout_tick(at(2), "cron").await.unwrap();
    assert_eq!(stage(&env).await, (3, RolloutStatus::Running));
    std::fs::remove_file(&marker).unwrap();
    let (moved, _) = env.rollout_tick(at(10), "cron").await.unwrap();
    assert_eq!(
        (moved[0].from, moved[0].to, moved[0].status),
        (3, 2, RolloutStatus::Reverting)
    );
    assert!(
        moved[0].reason.as_deref().unwrap().contains("exited with"),
        "{moved:?}"
    );
    let (moved, _) = env.rollout_tick(at(11), "cron").await.unwrap();
    assert_eq!((moved[0].from, moved[0].to), (2, 1), "one stage at a time");
    std::fs::write(&marker, "").unwrap();
    let (moved, _) = env.rollout_tick(at(12), "cron").await.unwrap();
    assert_eq!((moved[0].to, moved[0].status), (1, RolloutStatus::Held));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_ticks_cannot_both_advance() {
    let (_dir, env) = start("{ command: \"true\" }", "hold").await;
    let ticks: Vec<_> = (0..6)
        .map(|_| {
            let env = env.clone();
            tokio::spawn(async move { env.rollout_tick(at(1), "cron").await })
        })
        .collect();
    let mut versions = std::collections::BTreeSet::new();
    for tick in ticks {
        match tick.await.unwrap() {
            Ok((_, Outcome::Published(record))) => {
                versions.insert(record.version);
            }
            Ok((_, Outcome::Unchanged { .. })) | Err(PublishError::Conflict { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    // Ticks at the same instant by the same author build byte-identical records, which the store
    // treats as one write: whoever "wins", there is one new version.
    assert_eq!(
        versions.into_iter().collect::<Vec<_>>(),
        [2],
        "one new version"
    );
    assert_eq!(stage(&env).await.0, 2, "advanced once, not twice");
    assert_eq!(env.history().await.unwrap().records.len(), 2);

    // Different authors: distinct records, so exactly one can win version 3.
    let ticks: Vec<_> = (0..6)
        .map(|i| {
            let env = env.clone();
            tokio::spawn(async move { env.rollout_tick(at(2), &format!("cron-{i}")).await })
        })
        .collect();
    let mut wins = 0;
    for tick in ticks {
        match tick.await.unwrap() {
            Ok((_, Outcome::Published(_))) => wins += 1,
            Ok((_, Outcome::Unchanged { .. })) | Err(PublishError::Conflict { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(wins, 1, "exactly one tick advanced the stage");
    assert_eq!(stage(&env).await.0, 3, "advanced once, not twice");
}

/// Rings: internal users, then early adopters, then 10% of everyone, then everyone. Context i
/// is internal when i % 10 == 0 and an early adopter when i % 10 == 1 or i % 7 == 0 (the two
/// rings overlap, as real ones do).
#[tokio::test]
async fn rings_go_internal_then_early_adopters_then_everyone_and_only_add_users() {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags-dir");
    std::fs::create_dir_all(flags.join("flags")).unwrap();
    std::fs::create_dir_all(flags.join("segments")).unwrap();
    for (key, condition) in [
        ("internal", "{ attr: team, equals: staff }"),
        ("early-adopters", "{ attr: early, equals: true }"),
    ] {
        std::fs::write(
            flags.join(format!("segments/{key}.yaml")),
            format!("key: {key}\ndescription: A ring.\nowner: team-test\nif: {condition}\n"),
        )
        .unwrap();
    }
    std::fs::write(
        flags.join("flags/new-checkout.yaml"),
        "key: new-checkout\ndescription: The new checkout.\nowner: team-test\ntype: release\ndefault: off\n\
         environments:\n  prod:\n    enabled: true\n    rules:\n      - id: rollout\n        if: { attr: country, not-equals: XX }\n        serve:\n          rollout:\n            \
         variant: on\n            others: off\n            stages:\n              - { segment: internal, soak: 1h }\n              \
         - { segment: early-adopters, soak: 1h }\n              - { percent: 10, soak: 1h }\n              - { percent: 100 }\n            \
         health: { command: \"true\" }\n",
    )
    .unwrap();
    let compiled = compile_path(&flags, &CompileOptions::new("prod")).unwrap_or_else(|d| {
        panic!(
            "{}",
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let env =
        Environment::new(Arc::new(LocalStore::new(dir.path().join("store"))), "prod").unwrap();
    let provenance = Provenance {
        author: "dev".into(),
        source_commit: None,
        source_dirty: false,
        created_at: T0.into(),
    };
    env.push_scheduled(
        compiled.body,
        compile_path(&flags, &CompileOptions::new("prod"))
            .unwrap()
            .schedules,
        &provenance,
        None,
    )
    .await
    .unwrap();

    let contexts: Vec<Map<String, Value>> = (0..20_000)
        .map(|i| {
            let mut ctx = json!({"targetingKey": format!("user-{i}"), "country": "NL"});
            if i % 10 == 0 {
                ctx["team"] = json!("staff");
            }
            if i % 10 == 1 || i % 7 == 0 {
                ctx["early"] = json!(true);
            }
            if i % 13 == 0 {
                // Outside the rule: no stage treats them, not even their ring.
                ctx["country"] = json!("XX");
            }
            ctx.as_object().cloned().unwrap()
        })
        .collect();
    let internal = |i: usize| i.is_multiple_of(10) && !i.is_multiple_of(13);
    let early = |i: usize| (i % 10 == 1 || i.is_multiple_of(7)) && !i.is_multiple_of(13);
    let treated = |env: Environment| {
        let contexts = contexts.clone();
        async move {
            let (_, blob) = env.deployed().await.unwrap().unwrap();
            let snapshot = Snapshot::from_blob(blob).unwrap();
            contexts
                .iter()
                .map(|ctx| {
                    evaluate(&snapshot, "new-checkout", &Context::new(ctx), 0).value
                        == Some(&json!(true))
                })
                .collect::<Vec<bool>>()
        }
    };

    // Stage 1 (as compiled and pushed): exactly the internal ring.
    let mut previous = treated(env.clone()).await;
    for (i, t) in previous.iter().enumerate() {
        assert_eq!(*t, internal(i), "stage 1, context {i}");
    }
    for hours in 1..=3 {
        let (moved, _) = env.rollout_tick(at(hours), "cron").await.unwrap();
        assert_eq!(moved.len(), 1, "{moved:?}");
        let stage = stage(&env).await.0;
        let now = treated(env.clone()).await;
        let removed: Vec<usize> = (0..now.len()).filter(|&i| previous[i] && !now[i]).collect();
        assert!(
            removed.is_empty(),
            "stage {stage} removed {} users, first {:?}",
            removed.len(),
            removed.first()
        );
        for (i, t) in now.iter().enumerate() {
            let in_rule = i % 13 != 0;
            match stage {
                // Both rings, nobody else.
                2 => assert_eq!(*t, internal(i) || early(i), "stage 2, context {i}"),
                // Rings kept, plus ~10% of the rule's other users.
                3 => assert!(!*t || in_rule, "stage 3, context {i}"),
                _ => assert_eq!(*t, in_rule, "stage 4, context {i}"),
            }
        }
        if stage == 3 {
            let extra = (0..now.len())
                .filter(|&i| now[i] && !internal(i) && !early(i))
                .count();
            let others = (0..now.len())
                .filter(|&i| i % 13 != 0 && !internal(i) && !early(i))
                .count();
            let share = extra as f64 / others as f64;
            assert!((0.085..0.115).contains(&share), "stage 3 share {share}");
        }
        previous = now;
    }
    assert_eq!(stage(&env).await, (4, RolloutStatus::Done));
}

#[test]
fn a_ring_names_a_known_segment_and_is_not_also_a_percentage() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flags")).unwrap();
    std::fs::write(
        dir.path().join("flags/f.yaml"),
        "key: f\ndescription: F.\nowner: team-test\ntype: release\ndefault: off\n\
         environments:\n  prod:\n    enabled: true\n    rules:\n      - id: r\n        serve:\n          rollout:\n            \
         variant: on\n            others: off\n            stages:\n              - { segment: nobody-defined-this }\n              \
         - { segment: nobody-defined-this, percent: 5 }\n              - { percent: 100 }\n",
    )
    .unwrap();
    let errors = compile_path(dir.path(), &CompileOptions::new("prod")).unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let all = text.join("\n");
    assert!(
        all.contains("f.yaml:17") && all.contains("not both"),
        "{all}"
    );
    assert!(
        all.contains("f.yaml:16") && all.contains("unknown segment `nobody-defined-this`"),
        "{all}"
    );
}
