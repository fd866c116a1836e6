//! Setup shared by the library tests on the embedded local store (kill, canary).

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::sync::Arc;

use flags_compile::blob_file::Provenance;
use flags_compile::{CompileOptions, compile_path};
use flags_store::layout::VersionRecord;
use flags_store::publish::{Environment, Outcome};
use flags_store::store::LocalStore;
use shared_eval::Body;

/// `examples/flags` compiled for `dev`.
pub fn examples() -> Body {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flags");
    compile_path(&dir, &CompileOptions::new("dev".to_owned()))
        .expect("examples compile")
        .body
}

/// A fixed provenance by `author`, so records compare across runs.
pub fn provenance(author: &str) -> Provenance {
    Provenance {
        author: author.into(),
        source_commit: Some("abc1234".into()),
        source_dirty: false,
        created_at: "2026-11-21T08:00:00Z".into(),
    }
}

/// The `dev` environment of a local store in `dir`.
pub fn environment(dir: &Path) -> Environment {
    Environment::new(Arc::new(LocalStore::new(dir)), "dev").expect("environment")
}

/// The record of a publish that must have produced a new version.
pub fn published(outcome: Outcome) -> VersionRecord {
    match outcome {
        Outcome::Published(record) => record,
        other => panic!("expected a new version, got {other:?}"),
    }
}
