//! Drift: where the Git checkout, the store and each edge disagree about an environment, and
//! how to reconcile them. The CLI (`publisher drift`) and the service call the same three
//! functions: [`check`], [`fix`] and [`against::compare`]; each returns a serializable report
//! whose JSON form is documented in `docs/drift.md` (schema [`SCHEMA`]).
//!
//! Three layers, compared pairwise:
//! - **git**: the flags directory compiled for the environment by the same entry point as
//!   `push` ([`git`]);
//! - **store**: the environment's pointer, its version record and the blob it names
//!   ([`store`]);
//! - **edge**: what each endpoint reports on `/_flags/health` ([`edge`]).
//!
//! Every check and fix is written to the audit trail ([`audit`]).

pub mod against;
pub mod audit;
pub mod edge;
mod fix;
pub mod git;
pub mod store;
mod text;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::publish::Environment;

pub use fix::{FixAction, FixOptions, FixReport, fix};

/// Version of the JSON reports' shape; bumped on any incompatible change.
pub const SCHEMA: u32 = 1;

/// Exit code when everything agrees (converging edges included).
pub const EXIT_IN_SYNC: u8 = 0;
/// Exit code when some layer differs from another.
pub const EXIT_DRIFT: u8 = 1;
/// Exit code when some layer could not be checked (store or edge unreachable, flags invalid).
pub const EXIT_UNCHECKED: u8 = 2;

/// The prefix of the message of every version a drift fix publishes, so that the audit trail
/// and later checks can tell a fix from a deliberate push or rollback.
pub const FIX_MESSAGE_PREFIX: &str = "drift fix";

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The flags directory (Git checkout); `None` skips the Git layer.
    pub flags_dir: Option<PathBuf>,
    /// Edge base URLs (`http://host:port`), each asked for `/_flags/health`.
    pub edges: Vec<String>,
    /// How long one health request may take before the edge counts as unreachable.
    pub edge_timeout: Duration,
}

impl CheckOptions {
    /// Checks the store only.
    pub fn new() -> CheckOptions {
        CheckOptions {
            flags_dir: None,
            edges: Vec::new(),
            edge_timeout: Duration::from_secs(5),
        }
    }
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions::new()
    }
}

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every checked layer agrees (edges may still be converging).
    InSync,
    /// At least one finding.
    Drift,
    /// Something could not be checked (see `unchecked`); findings may still be listed.
    Unchecked,
}

impl Status {
    /// The process exit code for this verdict.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::InSync => EXIT_IN_SYNC,
            Status::Drift => EXIT_DRIFT,
            Status::Unchecked => EXIT_UNCHECKED,
        }
    }

    fn of(findings: usize, unchecked: usize) -> Status {
        if unchecked > 0 {
            Status::Unchecked
        } else if findings > 0 {
            Status::Drift
        } else {
            Status::InSync
        }
    }
}

/// A layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The flags in the Git checkout.
    Git,
    /// The pointer and blob in the store.
    Store,
    /// An edge endpoint.
    Edge,
}

impl Layer {
    fn as_str(self) -> &'static str {
        match self {
            Layer::Git => "git",
            Layer::Store => "store",
            Layer::Edge => "edge",
        }
    }
}

/// What kind of difference a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Git has changes the store does not serve, and the store's commit is an ancestor of
    /// Git's (or the same commit with other content). `--fix` publishes from Git.
    GitAhead,
    /// The store serves a commit newer than the checkout's. Reported; `--fix` publishes the
    /// older files only with `--allow-older`.
    GitBehind,
    /// The two commits are on different branches. Like `git_behind`.
    GitDiverged,
    /// The order of the two commits is unknown (no commit recorded, or not in this clone).
    /// Like `git_behind`.
    GitUnordered,
    /// The store serves a deliberate rollback that Git does not reflect. Reported, never
    /// undone by `--fix`: revert in Git, or push.
    StoreRolledBack,
    /// Nothing has been published to the environment. `--fix` publishes from Git.
    StoreEmpty,
    /// The pointer does not match its version record (overwritten by hand?). `--fix`
    /// republishes the last good version.
    PointerMismatch,
    /// The pointer is not a readable pointer (`{}`, truncated, not JSON), or is missing while
    /// versions are recorded. `--fix` republishes the last good version (the version records
    /// are the truth; the damaged object is replaced with a conditional write on its ETag).
    PointerUnreadable,
    /// The blob the pointer names is missing. `--fix` republishes the last good version.
    BlobMissing,
    /// The blob's bytes do not hash to the pointer's SHA-256. As `blob_missing`.
    BlobHashMismatch,
    /// The blob does not load (not gzip, bad schema, bad content hash). As `blob_missing`.
    BlobCorrupt,
    /// The edge serves an older version than the store, for longer than its revalidation
    /// interval allows. `--fix` purges it and waits for it to converge.
    EdgeStale,
    /// The edge has nothing loaded. As `edge_stale`.
    EdgeNotLoaded,
    /// The edge serves another environment. Not fixable by purging.
    EdgeWrongEnvironment,
}

/// One difference between two layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The layer that is off.
    pub layer: Layer,
    /// The layer it was compared with.
    pub against: Layer,
    /// What kind of difference.
    pub kind: FindingKind,
    /// For edges: which endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// One line for people.
    pub message: String,
    /// What `--fix` would do, or `None` when it would not act.
    pub fix: Option<String>,
}

/// Something that could not be checked (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unchecked {
    /// The layer.
    pub layer: Layer,
    /// The store, edge URL or flags directory concerned.
    pub target: String,
    /// Why.
    pub error: String,
}

/// Everything `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The environment.
    pub env: String,
    /// When the check ran (RFC 3339 UTC).
    pub checked_at: String,
    /// The verdict.
    pub status: Status,
    /// The Git layer, when a flags directory was given and compiled.
    pub git: Option<git::GitLayer>,
    /// The store layer, when the store could be read.
    pub store: Option<store::StoreLayer>,
    /// Git compared with the store, when both were read.
    pub git_vs_store: Option<git::GitVsStore>,
    /// Each edge, in the order given.
    pub edges: Vec<edge::EdgeReport>,
    /// The edges as a fleet, when any was given.
    pub fleet: Option<edge::Fleet>,
    /// Every difference found.
    pub findings: Vec<Finding>,
    /// What could not be checked.
    pub unchecked: Vec<Unchecked>,
}

impl DriftReport {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.status.exit_code()
    }

    /// Whether any finding is of one of these kinds.
    pub fn has(&self, kinds: &[FindingKind]) -> bool {
        self.findings.iter().any(|f| kinds.contains(&f.kind))
    }
}

/// Checks the three layers of `env` and says which differs from which, and how. Reads only;
/// [`audit::record_check`] writes the check to the audit trail.
pub async fn check(env: &Environment, options: &CheckOptions) -> DriftReport {
    let checked_at = flags_compile::blob_file::now_rfc3339();
    let mut findings = Vec::new();
    let mut unchecked = Vec::new();

    let git = match &options.flags_dir {
        Some(dir) => match git::read(dir, env.name()).await {
            Ok(layer) => Some(layer),
            Err(error) => {
                unchecked.push(Unchecked {
                    layer: Layer::Git,
                    target: dir.display().to_string(),
                    error,
                });
                None
            }
        },
        None => None,
    };

    let store = match store::inspect(env).await {
        Ok(inspection) => Some(inspection),
        Err(error) => {
            unchecked.push(Unchecked {
                layer: Layer::Store,
                target: env.store().describe(),
                error: error.to_string(),
            });
            None
        }
    };
    if let Some(store) = &store {
        findings.extend(store.findings());
    }

    let git_vs_store = match (&git, &store) {
        (Some(git), Some(store)) => {
            let compared = git::compare(git, store).await;
            findings.extend(compared.finding(store));
            Some(compared)
        }
        _ => None,
    };

    let (edges, fleet) = if options.edges.is_empty() {
        (Vec::new(), None)
    } else {
        let edges =
            edge::check_all(env, store.as_ref(), &options.edges, options.edge_timeout).await;
        for report in &edges {
            if let Some(error) = &report.error {
                unchecked.push(Unchecked {
                    layer: Layer::Edge,
                    target: report.url.clone(),
                    error: error.clone(),
                });
            }
            findings.extend(report.finding());
        }
        let fleet = edge::Fleet::of(&edges);
        (edges, Some(fleet))
    };

    DriftReport {
        schema: SCHEMA,
        env: env.name().to_owned(),
        checked_at,
        status: Status::of(findings.len(), unchecked.len()),
        git,
        store: store.map(|s| s.layer),
        git_vs_store,
        edges,
        fleet,
        findings,
        unchecked,
    }
}
