//! Import of the OpenFeature flagd flag-definition format. (Stub: the flagd work fills this in.)

use std::path::Path;

use shared_eval::Body;

use super::Diagnostic;

/// Compiles one flagd flag-definition JSON document (`source`, read from `file`) into a body.
/// `environment` is recorded for symmetry with native flags; flagd files have one environment.
pub fn compile_flagd(
    source: &str,
    file: &Path,
    environment: &str,
) -> Result<Body, Vec<Diagnostic>> {
    let _ = (source, environment);
    Err(vec![Diagnostic::error(
        file,
        None,
        "flagd import not implemented yet",
    )])
}
