//! The flag compiler: flag files (native YAML/JSON, or flagd JSON) -> [`shared_eval::Body`].
//!
//! (Stub entry point: the compiler work fills in `compile_dir`; its signature is the interface
//! the CLI, `push` and the tests call.)

pub mod diagnostic;
pub mod flagd;

use std::path::Path;

use shared_eval::Body;

pub use diagnostic::{Diagnostic, Severity};

/// What to compile for.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// The environment whose on/off state and rules are compiled (`dev`, `staging`, `prod`, ...).
    pub environment: String,
}

/// A successful compilation: the body plus the lints (warnings) found on the way.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The compiled flags, ready to be wrapped in a [`shared_eval::Blob`] with a header.
    pub body: Body,
    /// Lints: expired flags, unused segments, unreachable rules, ...
    pub warnings: Vec<Diagnostic>,
}

/// Compiles a flags directory (native format) or a single flagd JSON file at `path`.
/// On failure returns every error found (not just the first), each naming file, line and rule.
pub fn compile_path(path: &Path, options: &CompileOptions) -> Result<Compiled, Vec<Diagnostic>> {
    let _ = options;
    Err(vec![Diagnostic::error(
        path,
        None,
        "compiler not implemented yet",
    )])
}
