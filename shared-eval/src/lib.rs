//! The flag model, compiled blob format and evaluator shared by the publisher and the edge.
//!
//! Contents:
//! - [`Blob`], [`Header`], [`Body`], [`Flag`] ... (module `model`): the compiled blob, plain serde
//!   data, written by the publisher's compiler.
//! - [`Snapshot`] (module `blob`, its JSON read by module `decode`): a blob checked header-first (size cap, schema version, content
//!   hash, index bounds) and prepared for evaluation (regex DFAs checked). Loading is the only
//!   fallible step; see [`BlobError`].
//! - [`evaluate`] / [`evaluate_all`] (module `eval`): `(snapshot, flag key, context, now)` to an
//!   [`Evaluation`]. They return data, never a `Result`, and never panic. For many flags and
//!   one context, [`Snapshot::resolve`] + [`evaluate_resolved`] share the attribute lookups.
//! - [`bucket`] (module `bucket`): SipHash bucketing into [`BUCKETS`] buckets, [`in_canary`]
//!   (which side of a running canary a user gets), and flagd's murmur3 `fractional` for
//!   imported flags.
//! - [`logic`]: compiled JSONLogic for flags imported from the flagd format.
//! - [`claims`]: a verified identity token's claims as signed attributes (registered claims
//!   dropped, `sub` as `targetingKey`), one rule for the edge and the publisher's `eval`.
//! - [`Pointer`], [`BlobRef`], [`CanaryRef`], [`Share`], [`Signature`] (module `pointer`): the pointer
//!   `<env>/current.json`, serde for the publisher's writes, [`Pointer::parse`] for the edge.
//! - [`parse_json`] (module `decode`): JSON to serde_json's `Value` as serde_json reads it, for
//!   the edge, which links no serde deserializer.
//! - Helpers shared with the compiler, so both sides parse alike: `compile_regex` (feature
//!   `compile`, the publisher's: regex source to the DFA the blob carries), [`parse_semver`], [`parse_rfc3339`], [`list_key`].
//!
//! Operator semantics are documented on [`Op`] and in more detail in the `ops` module's source:
//! a missing or `null` attribute fails every operator but `not_equals`/`not_in`; there is no
//! type coercion; numbers compare by value.
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
mod check;
pub mod claims;
mod context;
mod datetime;
mod decode;
mod eval;
mod index;
mod intern;
pub mod logic;
mod model;
mod ops;
mod pointer;
mod program;
mod reads_time;
mod regex;
mod semver;

pub use blob::{BlobError, MAX_BLOB_BYTES, MAX_RULE_DEPTH, Sealed, Snapshot, content_hash};
pub use bucket::{BUCKETS, bucket, flagd_fractional_bucket, in_canary, murmur3_x86_32};
pub use check::{MAX_EVAL_COST, MAX_PREREQUISITE_DEPTH};
pub use context::Context;
pub use datetime::{EPOCH_MILLIS_THRESHOLD, parse_rfc3339};
pub use decode::{JsonError, parse_json};
pub use eval::{
    ErrorCode, Evaluation, Reason, Resolved, evaluate, evaluate_all, evaluate_resolved,
    evaluate_resolved_at, unsigned_ignored, unsigned_ignored_all,
};
pub use model::*;
pub use ops::list_key;
pub use pointer::{
    BlobRef, CanaryRef, MAX_KEY_ID_BYTES, MAX_POINTER_BYTES, MAX_SALT_BYTES, Pointer, PointerError,
    SIGNATURE_DOMAIN, Share, Signature,
};
#[cfg(feature = "compile")]
pub use regex::compile_regex;
pub use regex::{MAX_DFA_BYTES, MAX_REGEX_LEN};
pub use semver::parse_semver;
