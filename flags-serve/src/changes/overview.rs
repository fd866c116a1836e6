//! What one environment's state says about one commit's flags, for lists and flag pages: which
//! flags drifted (the deployed blob differs from the commit's compilation) and each flag's
//! lints. Both depend only on (commit, environment, deployed version), so they are computed
//! once per triple and shared: a list of 1,000 flags must not diff 1,000 flags per request.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::{CACHE_ENTRIES, Changes, Compilation};
use crate::deployed::Deployed;
use crate::error::diagnostic_json;

/// One environment's view of a commit.
#[derive(Debug, Default)]
pub struct Overview {
    /// Keys of the flags whose deployed definition differs from the commit's.
    pub drifted: HashSet<String>,
    /// The compilation's lints by flag key, as the API shows them.
    pub lints: HashMap<String, Vec<Value>>,
}

/// The memo: (commit, environment, deployed version) to its overview.
pub(super) type Overviews = std::sync::Mutex<HashMap<(String, String, Option<u64>), Arc<Overview>>>;

impl Changes {
    /// `env`'s view of `commit` (compiled as `compiled`) against what it serves (`deployed`).
    pub fn overview(
        &self,
        commit: &str,
        env: &str,
        compiled: &Compilation,
        deployed: Option<&Deployed>,
    ) -> Arc<Overview> {
        let key = (
            commit.to_owned(),
            env.to_owned(),
            deployed.map(|d| d.pointer.version),
        );
        if let Some(found) = self
            .overviews
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return found.clone();
        }
        let mut overview = Overview::default();
        if let Ok(compiled) = compiled {
            if let Some(deployed) = deployed {
                overview.drifted = flags_compile::diff::diff(&deployed.blob.body, &compiled.body)
                    .flags
                    .into_iter()
                    .map(|f| f.key)
                    .collect();
            }
            for d in &compiled.warnings {
                if let Some(flag) = &d.flag {
                    overview
                        .lints
                        .entry(flag.clone())
                        .or_default()
                        .push(diagnostic_json(d));
                }
            }
        }
        let overview = Arc::new(overview);
        let mut memo = self.overviews.lock().unwrap_or_else(|e| e.into_inner());
        if memo.len() >= CACHE_ENTRIES {
            memo.clear();
        }
        memo.insert(key, overview.clone());
        overview
    }
}
