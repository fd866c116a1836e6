//! The publisher: flag files -> compiled blob -> object store -> CDN purge.
//!
//! The `store` feature (default) brings the object stores, publishing, purging and the CLI;
//! without it the library is the compiler alone (`compile`, `blob_file`, `diff`, `token`).

pub mod blob_file;
pub mod compile;
pub mod diff;
pub mod layout;
// A module that needs the network side (tokio, the AWS SDK, reqwest, clap) is gated like the
// modules below: `cargo xtask fuzz` (run by the test command) builds this crate without `store`.
#[cfg(feature = "store")]
pub mod drift;
#[cfg(feature = "store")]
pub mod publish;
#[cfg(feature = "store")]
pub mod purge;
#[cfg(feature = "store")]
pub mod rollout;
#[cfg(feature = "store")]
pub mod serve;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "store")]
pub mod telemetry;
pub mod token;
