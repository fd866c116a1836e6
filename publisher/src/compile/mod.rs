//! The flag compiler: flag files (native YAML/JSON, or flagd JSON) -> [`shared_eval::Body`].

pub mod diagnostic;
pub mod flagd;

pub use diagnostic::{Diagnostic, Severity};
