//! A damaged pointer through the CLI: `{}`, truncated JSON, binary garbage, a pointer naming a
//! missing blob, a deleted pointer. `history` lists the versions and says the pointer is
//! corrupt; `push` and `kill` refuse, naming the key and the last good version and `drift
//! --fix`; `drift` reports the pointer as a finding (not "nothing published"); `drift --fix`
//! and `rollback --to N` republish a good version as the next one, after which every command
//! works again.

use serde_json::Value;

use crate::common::{Store, text};

/// Four versions of prod from `examples/flags`: push, kill, unkill, kill.
fn four_versions() -> Store {
    let store = Store::new();
    store.ok(&["push", "examples/flags"], &["--author", "a"]);
    store.ok(&["kill", "beta-banner"], &["--author", "b"]);
    store.ok(&["unkill", "beta-banner"], &["--author", "b"]);
    store.ok(&["kill", "new-chart"], &["--author", "b"]);
    store
}

/// Damages the pointer of `store` the `index`th way; returns the way's name.
fn damage(store: &Store, index: usize) -> &'static str {
    let good = std::fs::read(store.pointer()).unwrap();
    let zeros = "0".repeat(64);
    let (name, bytes): (&str, Option<Vec<u8>>) = match index {
        0 => ("{}", Some(b"{}\n".to_vec())),
        1 => ("truncated", Some(good[..good.len() / 2].to_vec())),
        2 => ("binary", Some(vec![0x1f, 0x8b, 0x00, 0xff, 0xfe, 0x07, 0x00])),
        3 => (
            "missing blob",
            Some(
                format!(
                    "{{\"version\": 4, \"blob\": \"blobs/{zeros}.json.gz\", \"sha256\": \"{zeros}\", \"content_hash\": \"sha256:{zeros}\"}}\n"
                )
                .into_bytes(),
            ),
        ),
        _ => ("deleted", None),
    };
    match bytes {
        Some(bytes) => std::fs::write(store.pointer(), bytes).unwrap(),
        None => std::fs::remove_file(store.pointer()).unwrap(),
    }
    name
}

const WAYS: usize = 5;

#[test]
fn commands_name_a_corrupt_pointer_and_the_last_good_version() {
    for way in 0..WAYS {
        let store = four_versions();
        let name = damage(&store, way);

        let history = store.run(&["history"], &[]);
        let out = text(&history);
        assert!(history.status.success(), "{name}: {out}");
        assert!(
            out.contains("4 versions")
                && out.contains("is corrupt")
                && out.contains("the last good version is 4"),
            "{name}: {out}"
        );

        for command in [
            &["push", "examples/flags"][..],
            &["push", "examples/flags", "--dry-run"],
            &["kill", "beta-banner"],
            &["rollout", "tick"],
        ] {
            let out = store.run(command, &["--author", "c"]);
            let said = text(&out);
            assert_eq!(out.status.code(), Some(1), "{name}: {command:?}: {said}");
            assert!(
                said.contains("prod/current.json is corrupt")
                    && said.contains("the last good version is 4")
                    && said.contains("publisher drift --fix --env prod"),
                "{name}: {command:?}: {said}"
            );
        }
        assert_eq!(
            std::fs::read_dir(store.path().join("store/prod/versions"))
                .unwrap()
                .count(),
            4,
            "{name}: nothing was published"
        );

        let drift = store.run(&["drift"], &[]);
        let out = text(&drift);
        assert_eq!(drift.status.code(), Some(1), "{name}: {out}");
        assert!(!out.contains("nothing published"), "{name}: {out}");
        assert!(
            out.contains("DRIFT store vs store")
                && out.contains("--fix: republish version 4, the last good one"),
            "{name}: {out}"
        );
        let json = store.run(&["drift"], &["--json"]);
        let report: Value = serde_json::from_slice(&json.stdout).unwrap();
        let state = report["store"]["state"].as_str().unwrap_or_default();
        assert!(
            ["pointer_unreadable", "blob_missing"].contains(&state),
            "{name}: {report}"
        );
        assert_eq!(report["store"]["last_good_version"], 4, "{name}");
    }
}

#[test]
fn drift_fix_and_rollback_republish_a_good_version_and_everything_works_again() {
    for way in 0..WAYS {
        let store = four_versions();
        let name = damage(&store, way);
        if way % 2 == 0 {
            let out = store.ok(&["drift"], &["--fix", "--author", "oncall"]);
            assert!(
                out.contains("republished version 4, the last good one, as version 5"),
                "{name}: {out}"
            );
        } else {
            let out = store.ok(&["rollback"], &["--to", "3", "--author", "oncall"]);
            assert!(
                out.contains("rolled prod back to version 3's flags as version 5"),
                "{name}: {out}"
            );
        }
        let pointer: Value = serde_json::from_slice(&std::fs::read(store.pointer()).unwrap())
            .expect("the pointer is a pointer again");
        assert_eq!(pointer["version"], 5, "{name}");

        let out = store.ok(&["history"], &[]);
        assert!(
            out.contains("5 versions, serving version 5") && !out.contains("warning"),
            "{name}: {out}"
        );
        let out = store.ok(&["drift"], &[]);
        assert!(out.contains("in sync"), "{name}: {out}");
        store.ok(&["push", "examples/flags"], &["--author", "c"]);
        let out = store.ok(&["kill", "onboarding-tour"], &["--author", "c"]);
        assert!(out.contains("version 6"), "{name}: {out}");
    }
}
