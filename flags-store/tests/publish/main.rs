//! Publishing against the local directory store, in one test binary: canaries, kills,
//! rollouts, recovery from a damaged pointer, previews that match what a push publishes, the
//! safety checks (removals, typos, times), and the Cloudflare purge request against a stand-in
//! that checks its shape.

mod canary;
mod common;
mod kill;
mod previews;
mod purge_cloudflare;
mod recovery;
mod rollout;
mod safety;
mod signing;
