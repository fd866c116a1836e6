//! Publishing against the local directory store, in one test binary: canaries, kills,
//! rollouts, the safety checks (removals, typos, times), and the Cloudflare purge request
//! against a stand-in that checks its shape.

mod canary;
mod common;
mod kill;
mod purge_cloudflare;
mod rollout;
mod safety;
