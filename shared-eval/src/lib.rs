//! The flag model, compiled blob format and evaluator shared by the publisher and the edge.
//!
//! Contents:
//! - [`Blob`], [`Header`], [`Body`], [`Flag`] ... (module `model`): the compiled blob, plain serde
//!   data, written by the publisher's compiler.
//! - [`Snapshot`] (module `blob`): a blob checked header-first (size cap, schema version, content
//!   hash, index bounds) and prepared for evaluation (regexes compiled). Loading is the only
//!   fallible step; see [`BlobError`].
//! - [`evaluate`] / [`evaluate_all`] (module `eval`): `(snapshot, flag key, context, now)` to an
//!   [`Evaluation`]. They return data, never a `Result`, and never panic.
//! - [`bucket`] (module `bucket`): SipHash bucketing into [`BUCKETS`] buckets, and flagd's murmur3
//!   `fractional` for imported flags.
//! - [`logic`]: compiled JSONLogic for flags imported from the flagd format.
//!
//! The crate is `no_std` so that the Wasm edge worker and the native publisher run the very
//! same code; it does no I/O and reads no clock (time is an argument).
#![no_std]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod blob;
mod bucket;
mod context;
mod eval;
pub mod logic;
mod model;

pub use blob::{BlobError, MAX_BLOB_BYTES, MAX_RULE_DEPTH, Snapshot, content_hash};
pub use bucket::{BUCKETS, bucket, flagd_fractional_bucket, murmur3_x86_32};
pub use context::Context;
pub use eval::{ErrorCode, Evaluation, Reason, evaluate, evaluate_all};
pub use model::*;
