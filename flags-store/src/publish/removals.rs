//! The removal guard: a push from the wrong directory (or a bad merge) compiles to few or no
//! flags, and publishing it would turn every missing flag off at the edge, with a summary of
//! "11 removed" as the only trace. Every push, stable or canary, from the CLI or the service,
//! passes [`RemovalPolicy::check`] before anything is written.

use shared_eval::Body;

use super::PublishError;

/// The share of deployed flags a push may remove by default, in percent.
pub const DEFAULT_MAX_REMOVALS_PERCENT: u8 = 50;

/// How many of the deployed flags one push may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalPolicy {
    /// Refuse a push that removes every deployed flag, or more than this percentage of them
    /// (`publisher push --max-removals`; the default is [`DEFAULT_MAX_REMOVALS_PERCENT`]).
    AtMost(u8),
    /// Any removal, all flags included (`--allow-removals`, the API's `"allow_removals": true`).
    Any,
}

impl Default for RemovalPolicy {
    fn default() -> Self {
        RemovalPolicy::AtMost(DEFAULT_MAX_REMOVALS_PERCENT)
    }
}

impl RemovalPolicy {
    /// Whether `env` may go from serving `deployed` to serving `next`: an error naming the
    /// flags that would go when the push removes all of them (none left, or none kept) or more
    /// than the allowed share. Adding and changing flags is never refused, nor is anything on
    /// an environment that serves no flags yet.
    pub fn check(self, env: &str, deployed: &Body, next: &Body) -> Result<(), PublishError> {
        let RemovalPolicy::AtMost(max_percent) = self else {
            return Ok(());
        };
        let mut removed: Vec<String> = deployed
            .flags
            .iter()
            .filter(|old| !next.flags.iter().any(|new| new.key == old.key))
            .map(|old| old.key.clone())
            .collect();
        let count = deployed.flags.len();
        let all = !removed.is_empty() && removed.len() == count;
        if all || removed.len() * 100 > usize::from(max_percent) * count {
            removed.sort();
            return Err(PublishError::TooManyRemovals {
                env: env.to_owned(),
                removed,
                deployed: count,
                max_percent,
            });
        }
        Ok(())
    }
}

/// The message of [`PublishError::TooManyRemovals`]: how many, which (the first few), why
/// refused, and the two ways on.
pub(super) fn refusal(env: &str, removed: &[String], deployed: usize, max_percent: u8) -> String {
    const SHOWN: usize = 5;
    let mut names = removed
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if removed.len() > SHOWN {
        names.push_str(&format!(", +{} more", removed.len() - SHOWN));
    }
    let what = if removed.len() == deployed {
        format!("this push removes every flag {env} serves ({deployed}: {names})")
    } else {
        format!(
            "this push removes {} of the {deployed} flags {env} serves ({names}), more than the {max_percent}% allowed",
            removed.len()
        )
    };
    format!(
        "{what}; nothing was published. Is this the right flags directory? If the removal is \
         meant, push again with --allow-removals (API: \"allow_removals\": true)"
    )
}
