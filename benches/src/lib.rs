//! Fixtures shared by the benchmarks.
//!
//! - [`fixtures`]: a realistic dashboard company's flag set (release flags, config flags,
//!   experiments, kill switches, permissions, a few prerequisites), generated deterministically
//!   as a compiled [`shared_eval::Body`], plus its blob, JSON and gzipped forms.
//! - [`scenario`]: the single flags the one-flag benches time (a 3-condition rule serving a
//!   50/50 split; a boolean without rules) and the contexts they are evaluated for.
//! - `peers` (feature `peers`): the same logical flags for Unleash's `unleash-yggdrasil` and
//!   LaunchDarkly's `launchdarkly-server-sdk-evaluation`, with checks that each peer really
//!   evaluates them the same way before anything is timed.
//!
//! Fixtures are built as `Body` values directly (not through the publisher's compiler) so the
//! benchmarks depend on the blob contract only.

pub mod fixtures;
#[cfg(feature = "peers")]
pub mod peers;
pub mod scenario;
