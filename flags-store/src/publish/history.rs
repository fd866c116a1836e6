//! `history` and `audit`: the version records and audit entries of an environment, read back;
//! and which environments a store has at all.

use super::{Environment, History, PublishError};
use crate::layout::{
    AuditEntry, POINTER, audit_prefix, check_env, version_of_key, versions_prefix,
};
use crate::store::{ObjectStore, StoreError};

/// The environments of `store` that have something published (a pointer, `<env>/current.json`),
/// sorted: what a mistyped `--env` is compared with. Lists every key, so it is for error paths
/// and tools, not for every request.
pub async fn environments(store: &dyn ObjectStore) -> Result<Vec<String>, StoreError> {
    let mut envs: Vec<String> = store
        .list("")
        .await?
        .into_iter()
        .filter_map(|key| {
            let (env, rest) = key.split_once('/')?;
            (rest == POINTER && check_env(env).is_ok()).then(|| env.to_owned())
        })
        .collect();
    envs.dedup();
    Ok(envs)
}

impl Environment {
    /// Every version record, oldest first, with any inconsistency found. A damaged pointer is
    /// one of them (`corrupt_pointer`, and a problem naming the last good version): the records
    /// are listed all the same.
    pub async fn history(&self) -> Result<History, PublishError> {
        let mut problems = Vec::new();
        let (current, corrupt_pointer) = match self.verified_current().await {
            Ok(current) => (current.map(|c| c.pointer.version), None),
            Err(PublishError::CorruptPointer {
                env,
                key,
                detail,
                last_good,
            }) => {
                problems.push(format!(
                    "the pointer {key} is corrupt: {detail}; {}",
                    super::repair_hint(&env, last_good)
                ));
                (None, Some(detail))
            }
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        for key in self.store.list(&versions_prefix(&self.env)).await? {
            let Some(version) = version_of_key(&key) else {
                continue;
            };
            match self.record(version).await? {
                Some(record) => records.push(record),
                None => problems.push(format!(
                    "version {version} was listed but could not be read"
                )),
            }
        }
        for (expected, record) in (1..).zip(&records) {
            if record.version != expected {
                problems.push(format!(
                    "version {expected} is missing (next is {})",
                    record.version
                ));
                break;
            }
        }
        let latest = records.last().map(|r| r.version);
        if latest != current && corrupt_pointer.is_none() {
            problems.push(match (current, latest) {
                (Some(c), Some(l)) if l == c + 1 => format!(
                    "the pointer is at version {c} but version {l} is recorded: its publisher is still running or \
                     stopped halfway; the next push or rollback completes it"
                ),
                _ => format!("the pointer is at version {current:?} but the newest record is {latest:?}"),
            });
        }
        Ok(History {
            current,
            records,
            problems,
            corrupt_pointer,
        })
    }

    /// Every audit entry, oldest first.
    pub async fn audit(&self) -> Result<Vec<AuditEntry>, PublishError> {
        let mut entries = Vec::new();
        for key in self.store.list(&audit_prefix(&self.env)).await? {
            if version_of_key(&key).is_none() {
                continue;
            }
            let Some(object) = self.store.get(&key).await? else {
                continue;
            };
            entries.push(serde_json::from_slice(&object.bytes).map_err(|e| self.corrupt(key, e))?);
        }
        Ok(entries)
    }
}
