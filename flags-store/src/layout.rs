//! What the publisher keeps in the store, per environment (the contract with the edge worker;
//! ARCHITECTURE.md "Store layout" is the reference):
//!
//! ```text
//! <env>/current.json                              Pointer: the one mutable object (stable
//!                                                 blob, plus the canary's while one runs)
//! <env>/blobs/<sha256 of the .gz bytes>.json.gz   immutable, content-addressed blobs
//! <env>/versions/<version, 20 digits>.json        VersionRecord: one per version, immutable
//! <env>/audit/<version, 20 digits>.json           AuditEntry: one per version, immutable
//! ```
//!
//! Version numbers are zero-padded so that a plain key listing is in version order.

use serde::{Deserialize, Serialize};

pub use flags_compile::diff::ChangeSummary;
pub use flags_compile::schedule::Share;

/// The pointer's key inside an environment.
pub const POINTER: &str = "current.json";

/// Checks an environment name: it becomes a key segment and a URL path segment at the edge.
pub fn check_env(env: &str) -> Result<(), String> {
    let ok = !env.is_empty()
        && env.len() <= 64
        && env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && env
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid environment name {env:?}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        ))
    }
}

/// `<env>/current.json`.
pub fn pointer_key(env: &str) -> String {
    format!("{env}/{POINTER}")
}

/// `blobs/<hex>.json.gz`: a blob's key relative to its environment (what the pointer names).
pub fn blob_name(sha256_hex: &str) -> String {
    BlobRef::name_for(sha256_hex)
}

/// `<env>/versions/<20 digits>.json`.
pub fn version_key(env: &str, version: u64) -> String {
    format!("{env}/versions/{version:020}.json")
}

/// `<env>/versions/`.
pub fn versions_prefix(env: &str) -> String {
    format!("{env}/versions/")
}

/// `<env>/audit/<20 digits>.json`.
pub fn audit_key(env: &str, version: u64) -> String {
    format!("{env}/audit/{version:020}.json")
}

/// `<env>/audit/`.
pub fn audit_prefix(env: &str) -> String {
    format!("{env}/audit/")
}

/// `<env>/audit/drift/`: drift checks and fixes, which make no version of their own.
pub fn drift_audit_prefix(env: &str) -> String {
    format!("{env}/audit/drift/")
}

/// The version number in a version or audit key (`prod/versions/00000000000000000007.json`).
pub fn version_of_key(key: &str) -> Option<u64> {
    let name = key.rsplit('/').next()?.strip_suffix(".json")?;
    if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// The pointer (`<env>/current.json`) and the blob references it and the version records hold:
/// one definition, in shared-eval, which the edge reads too. `Canary` is the pointer's canary
/// half ([`shared_eval::CanaryRef`]).
pub use shared_eval::{BlobRef, CanaryRef as Canary, Pointer, Signature};

/// What a version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Action {
    /// New flags compiled from files.
    Push,
    /// The pointer moved back to an earlier version's blob.
    Rollback,
    /// Flags forced to their safe default.
    Kill,
    /// A kill undone.
    Unkill,
    /// New flags compiled from files, published as a canary beside the stable version (or a
    /// running canary's flags or share replaced).
    Canary,
    /// The canary became the stable version.
    Promote,
    /// The canary was dropped; the stable version serves everyone again.
    Abort,
    /// Rollout schedules moved (a stage advanced, stepped back, or halted).
    Rollout,
}

impl Action {
    /// `push`, `rollback`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Push => "push",
            Action::Rollback => "rollback",
            Action::Kill => "kill",
            Action::Unkill => "unkill",
            Action::Canary => "canary",
            Action::Promote => "promote",
            Action::Abort => "abort",
            Action::Rollout => "rollout",
        }
    }
}

/// `<env>/versions/<N>.json`: one per version, created once with a conditional write that
/// decides which of racing publishers gets number N, never rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Strictly increasing per environment, from 1, without gaps.
    pub version: u64,
    /// The version this one replaced (`version - 1`), `None` for the first.
    pub previous: Option<u64>,
    /// What this version did.
    pub action: Action,
    /// The blob served (`blob`, `sha256`, `content_hash` at the record's top level).
    #[serde(flatten)]
    pub stable: BlobRef,
    /// Who published (Git identity or `--author`).
    pub author: String,
    /// Git commit of the flags directory, when it was in a repository. For a rollback: the
    /// commit of the version rolled back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_commit: Option<String>,
    /// The flags directory had uncommitted changes when this was pushed: `source_commit` does
    /// not hold what was published. Absent when clean (and in records written before).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub source_dirty: bool,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// Flag-level change against the previous version.
    pub summary: ChangeSummary,
    /// For a rollback: the version whose blob this one serves again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<u64>,
    /// For kill/unkill: the flags concerned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// `--message`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The canary this version serves beside `blob`, if any (the fields above are the stable
    /// side). The pointer is derived from the record, canary included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// The rollout schedules in force and where each stands. Carried from version to version
    /// (the record is the state's one home, so two racing ticks cannot both advance it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<RolloutState>,
    /// The publisher's signature of this version's pointer ([`Pointer::signed_message`]),
    /// when it signs: kept here too, so the pointer is still derived from the record alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// Where one rollout schedule stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutState {
    /// The schedule, as compiled from the flag file.
    pub schedule: flags_compile::schedule::Schedule,
    /// The live stage, 1-based (0: stepped back before the first stage, nobody treated).
    pub stage: usize,
    /// When this stage went live (RFC 3339 UTC).
    pub since: String,
    /// Running, held, reverting or done.
    pub status: RolloutStatus,
    /// Why it is held or reverting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A schedule's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RolloutStatus {
    /// Advances when due and healthy.
    Running,
    /// Halted by a failing health check (`hold`), until `rollout resume`.
    Held,
    /// Stepping back one stage per tick while the check fails (`revert`).
    Reverting,
    /// At its last stage.
    Done,
}

impl RolloutStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutStatus::Running => "running",
            RolloutStatus::Held => "held",
            RolloutStatus::Reverting => "reverting",
            RolloutStatus::Done => "done",
        }
    }
}

impl VersionRecord {
    /// The pointer that serves this version.
    pub fn pointer(&self) -> Pointer {
        Pointer {
            version: self.version,
            stable: self.stable.clone(),
            canary: self.canary.clone(),
            signature: self.signature.clone(),
        }
    }
}

/// `<env>/audit/<N>.json`: who did what, when, from which commit, and why; written once the
/// pointer serves version N. Immutable, one object per entry, so the trail is append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The version the action produced.
    pub version: u64,
    /// push / rollback / kill / unkill.
    pub action: Action,
    /// Who (the version's author).
    pub who: String,
    /// When the version was created (RFC 3339 UTC).
    pub when: String,
    /// What changed, as one line.
    pub what: String,
    /// Source commit, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The source had uncommitted changes (see [`VersionRecord::source_dirty`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub source_dirty: bool,
    /// The operator's message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The version replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<u64>,
    /// For a rollback: the version rolled back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<u64>,
    /// The full change summary.
    pub summary: ChangeSummary,
    /// Set when this entry was completed by a later publisher after the original one stopped
    /// between moving the pointer and writing the entry: who completed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_by: Option<String>,
    /// The client address of the `publisher serve` call that did it (absent from the CLI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl AuditEntry {
    /// The audit entry for a version record.
    pub fn of(record: &VersionRecord, completed_by: Option<String>) -> AuditEntry {
        AuditEntry {
            version: record.version,
            action: record.action,
            who: record.author.clone(),
            when: record.created_at.clone(),
            what: match (record.action, record.rollback_to) {
                (Action::Rollback, Some(to)) => {
                    format!("rolled back to version {to}: {}", record.summary.one_line())
                }
                (Action::Kill | Action::Unkill, _) if !record.flags.is_empty() => {
                    format!(
                        "{} {}{}: {}",
                        record.action.as_str(),
                        record.flags.join(", "),
                        if record.canary.is_some() {
                            " (stable and canary)"
                        } else {
                            ""
                        },
                        record.summary.one_line()
                    )
                }
                (Action::Canary, _) => match &record.canary {
                    Some(canary) => format!(
                        "canary to {} of users (since version {}): {}",
                        canary.percent,
                        canary.since,
                        record.summary.one_line()
                    ),
                    None => record.summary.one_line(),
                },
                (Action::Promote, _) => {
                    format!(
                        "promoted the canary to stable: {}",
                        record.summary.one_line()
                    )
                }
                (Action::Abort, _) => {
                    format!("aborted the canary: {}", record.summary.one_line())
                }
                (Action::Rollout, _) => format!(
                    "rollout {}: {}",
                    record.message.as_deref().unwrap_or(""),
                    record.summary.one_line()
                ),
                _ => record.summary.one_line(),
            },
            commit: record.source_commit.clone(),
            source_dirty: record.source_dirty,
            message: record.message.clone(),
            previous: record.previous,
            rollback_to: record.rollback_to,
            summary: record.summary.clone(),
            completed_by,
            client: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_version_order_and_parse_back() {
        assert_eq!(
            version_key("prod", 7),
            "prod/versions/00000000000000000007.json"
        );
        assert!(version_key("prod", 9) < version_key("prod", 10));
        assert_eq!(version_of_key(&version_key("prod", 12345)), Some(12345));
        assert_eq!(version_of_key(&audit_key("prod", u64::MAX)), Some(u64::MAX));
        assert_eq!(version_of_key("prod/versions/7.json"), None);
        assert_eq!(
            version_of_key("prod/versions/0000000000000000000x.json"),
            None
        );
    }

    #[test]
    fn environment_names() {
        for ok in ["prod", "staging-eu", "dev_2", "P"] {
            assert!(check_env(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a/b", "..", "a b", ".hidden", &"x".repeat(65)] {
            assert!(check_env(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shares_are_percentages_in_bucket_steps() {
        assert_eq!("5".parse::<Share>().unwrap().buckets(), 5_000);
        assert_eq!("0.001%".parse::<Share>().unwrap().buckets(), 1);
        assert_eq!("100".parse::<Share>().unwrap().buckets(), 100_000);
        for bad in ["0", "-1", "100.5", "abc", "NaN", "0.0001"] {
            assert!(bad.parse::<Share>().is_err(), "{bad}");
        }
        let json = |s: &str| serde_json::to_string(&s.parse::<Share>().unwrap()).unwrap();
        assert_eq!((json("5"), json("12.5")), ("5".into(), "12.5".into()));
        assert_eq!(
            serde_json::from_str::<Share>("12.5").unwrap().buckets(),
            12_500
        );
        assert!(serde_json::from_str::<Share>("0").is_err());
        assert_eq!("2.5".parse::<Share>().unwrap().to_string(), "2.5%");
    }

    #[test]
    fn one_line_summary() {
        let summary = ChangeSummary {
            added: vec!["a".into()],
            removed: vec![],
            changed: (1..=7).map(|i| format!("f{i}")).collect(),
        };
        assert_eq!(
            summary.one_line(),
            "1 added (a), 7 changed (f1, f2, f3, f4, f5, +2 more)"
        );
        assert_eq!(ChangeSummary::default().one_line(), "no flag changes");
    }
}
