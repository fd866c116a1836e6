//! The store floor: everything between a compiled body and the edge.
//!
//! - [`layout`]: keys and records of the store (pointer, version records, audit entries): the
//!   contract with the edge, whose pointer format is `shared_eval`'s.
//! - [`store`]: the [`store::ObjectStore`] trait (five operations, two of them conditional
//!   writes) with the local directory store and S3.
//! - [`publish`]: the one publish step and the verbs over it (push, kill, rollback, canary,
//!   rollout schedules).
//! - [`purge`]: the CDN purge after a publish, and its one report.
//! - [`drift`]: where Git, the store and the edges disagree, and the fix.
//!
//! **Architecture Invariant:** this crate serves no HTTP (that is `flags-serve`) and parses no
//! command line (that is the `publisher` binary); it reads flag files only through
//! `flags_compile`.

pub mod drift;
pub mod layout;
pub mod publish;
pub mod purge;
pub mod signing;
pub mod store;
