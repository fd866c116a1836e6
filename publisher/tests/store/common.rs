//! Running the binary on a store in a temporary directory, and a small flags directory with a
//! rollout schedule.

#![allow(dead_code)] // each module uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root, where the binary runs (`examples/flags` is relative to it).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `publisher args...` with no store, purge or author taken from the environment.
pub fn publisher(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_publisher"))
        .args(args)
        .current_dir(repo())
        .env_remove("FLAGS_STORE")
        .env_remove("FLAGS_PURGE")
        .env_remove("FLAGS_PURGE_TOKEN")
        .output()
        .expect("run publisher")
}

/// stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A store directory, its `prod` environment, and commands run against it.
pub struct Store {
    pub dir: tempfile::TempDir,
}

impl Store {
    pub fn new() -> Store {
        Store {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `publisher <command> <args...> --env prod --store <dir>`.
    pub fn run(&self, command: &[&str], args: &[&str]) -> Output {
        let store = self.path().join("store");
        let mut all: Vec<&str> = command.to_vec();
        all.extend_from_slice(args);
        all.extend_from_slice(&["--env", "prod", "--store", store.to_str().unwrap()]);
        publisher(&all)
    }

    /// As [`Store::run`], which must exit 0; returns its output as text.
    pub fn ok(&self, command: &[&str], args: &[&str]) -> String {
        let out = self.run(command, args);
        assert!(out.status.success(), "{command:?} {args:?}: {}", text(&out));
        text(&out)
    }

    /// As [`Store::ok`], its stdout read as JSON.
    pub fn json(&self, command: &[&str], args: &[&str]) -> serde_json::Value {
        let out = self.run(command, args);
        assert!(out.status.success(), "{command:?} {args:?}: {}", text(&out));
        serde_json::from_slice(&out.stdout).expect("stdout is JSON")
    }

    /// `<store>/prod/current.json`.
    pub fn pointer(&self) -> PathBuf {
        self.path().join("store/prod/current.json")
    }

    /// A flags directory beside the store (see [`write_flags`]).
    pub fn flags(&self) -> PathBuf {
        self.path().join("flags-dir")
    }
}

/// `csv-export` rolled out 10% -> 100% (no soak, no health check: `rollout tick` advances it at
/// once) and `report-beta`, whose fallthrough is `report_beta`.
pub fn write_flags(dir: &Path, report_beta: &str) {
    std::fs::create_dir_all(dir.join("flags")).unwrap();
    std::fs::write(
        dir.join("flags/csv-export.yaml"),
        "key: csv-export\ndescription: CSV export.\nowner: team-reports\ntype: release\ndefault: off\n\
         environments:\n  prod:\n    enabled: true\n    rules:\n      - id: progressive\n        serve:\n          \
         rollout:\n            variant: on\n            others: off\n            stages:\n              \
         - { percent: 10 }\n              - { percent: 100 }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("flags/report-beta.yaml"),
        format!(
            "key: report-beta\ndescription: The new reports.\nowner: team-reports\ntype: release\ndefault: off\n\
             environments:\n  prod:\n    enabled: true\n    fallthrough: {report_beta}\n"
        ),
    )
    .unwrap();
}
