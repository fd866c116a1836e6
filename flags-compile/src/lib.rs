//! The flag compiler: flag files (native YAML/JSON, or flagd JSON) -> [`shared_eval::Body`].
//!
//! [`compile_path`] is the one entry point (the CLI, `push`, the service and the tests call
//! it). A directory is compiled as the native format (`flags/`, `segments/`, `lists/`; see
//! `docs/flag-format.md`); a single file is flagd JSON when it has flagd's top-level `flags`
//! object, else one native flag. Every problem found is reported, each naming file, line and
//! rule (see [`Diagnostic`]). The `rollout:` schedules come back with the body
//! ([`Compiled::schedules`]), parsed once.
//!
//! Beside the compiler: [`diff`] (flag- and rule-level differences between two bodies),
//! [`blob_file`] (seal, gzip, bounded gunzip, provenance), [`token`] (identity tokens for demos
//! and tests), [`schedule`] (the rollout syntax and how a stage rewrites a rule).
//!
//! **Architecture Invariant:** this crate does no network I/O and knows nothing of stores: it
//! depends on no tokio, reqwest, aws-sdk or axum crate (the `tidy` test checks `Cargo.toml`).
//! What it reads is files; what it returns is data. `fuzz/` depends on it alone.

pub mod blob_file;
pub mod diagnostic;
pub mod diff;
pub mod flagd;
mod graph;
pub mod limits;
pub mod native;
pub mod schedule;
pub mod token;
pub mod yaml;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use shared_eval::Body;

pub use diagnostic::{Diagnostic, Severity};

/// What to compile for.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// The environment whose on/off state and rules are compiled (`dev`, `staging`, `prod`, ...).
    pub environment: String,
    /// "Today" for the date lints (expired flags, past review dates). `None` reads the clock;
    /// tests pass a fixed date so their results do not change with the calendar.
    pub today: Option<NaiveDate>,
}

impl CompileOptions {
    /// Options for `environment`, with today's date from the clock.
    pub fn new(environment: impl Into<String>) -> Self {
        CompileOptions {
            environment: environment.into(),
            today: None,
        }
    }
}

/// A successful compilation: the body plus the lints (warnings) found on the way.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The compiled flags, ready to be wrapped in a [`shared_eval::Blob`] with a header.
    pub body: Body,
    /// The `rollout:` schedules of a flags directory, parsed with the rules they belong to;
    /// `None` for a single file (flagd or one native flag), whose push keeps the running
    /// schedules as they are.
    pub schedules: Option<Vec<schedule::Schedule>>,
    /// Lints: expired flags, unused segments, unreachable rules, ...
    pub warnings: Vec<Diagnostic>,
    /// Flags of a flagd file that failed to compile and are served as `PARSE_ERROR` (one
    /// warning each, naming file:line; also in `warnings`). `validate` counts them as errors,
    /// `push --strict` refuses them.
    pub broken: Vec<Diagnostic>,
}

/// File extensions read as flag and segment files.
const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Compiles a flags directory (native format) or a single file at `path` (flagd JSON, or one
/// native flag). On failure returns every diagnostic found, errors and warnings, in file and
/// line order, each naming file, line and rule.
pub fn compile_path(path: &Path, options: &CompileOptions) -> Result<Compiled, Vec<Diagnostic>> {
    let today = options
        .today
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let mut broken = Vec::new();
    let mut schedules = None;
    let (body, mut diags) = if path.is_dir() {
        let sources = read_dir_sources(path)?;
        let lowered = native::compile(&sources, &options.environment, today);
        schedules = Some(lowered.schedules);
        (lowered.body, lowered.diagnostics)
    } else {
        let text = read_text(
            path,
            limits::MAX_FILE_BYTES.max(shared_eval::MAX_BLOB_BYTES),
        )?;
        if looks_like_flagd(&text) {
            let (body, broken_flags) =
                flagd::compile_flagd_file(&text, path, &options.environment)?;
            broken = broken_flags;
            (body, broken.clone())
        } else {
            let sources = native::Sources {
                flags: vec![native::SourceFile {
                    path: path.to_path_buf(),
                    text,
                }],
                segments: Vec::new(),
                root: None,
            };
            let lowered = native::compile(&sources, &options.environment, today);
            (lowered.body, lowered.diagnostics)
        }
    };
    let size = serde_json::to_vec(&body)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > limits::MAX_BODY_BYTES {
        diags.push(Diagnostic::error(
            path,
            None,
            format!(
                "compiled blob is {size} bytes, over the {}-byte limit the edge loads: split the flags or move long lists out",
                limits::MAX_BODY_BYTES
            ),
        ));
    }
    if !diags.iter().any(|d| d.severity == Severity::Error) {
        // The edge's own load-time checks, run here so `build` never writes a blob it refuses.
        let header = shared_eval::Header {
            environment: options.environment.clone(),
            version: 0,
            previous: None,
            content_hash: String::new(),
            author: String::new(),
            source_commit: None,
            created_at: String::new(),
        };
        if let Err(why) =
            shared_eval::Snapshot::from_blob(shared_eval::Blob::new(header, body.clone()))
        {
            diags.push(Diagnostic::error(
                path,
                None,
                format!("the evaluator refuses the compiled flags: {why}"),
            ));
        }
    }
    diags.sort_by(|a, b| (&a.file, a.line, b.severity).cmp(&(&b.file, b.line, a.severity)));
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(diags);
    }
    Ok(Compiled {
        body,
        schedules,
        warnings: diags,
        broken,
    })
}

/// flagd's shape: a JSON object whose `flags` is an object of flag objects.
fn looks_like_flagd(text: &str) -> bool {
    let Ok(serde_json::Value::Object(doc)) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    matches!(doc.get("flags"), Some(serde_json::Value::Object(flags))
        if flags.values().all(|f| f.is_object()))
}

fn read_text(path: &Path, max: usize) -> Result<String, Vec<Diagnostic>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| vec![Diagnostic::error(path, None, format!("cannot read: {e}"))])?;
    if meta.len() > max as u64 {
        return Err(vec![Diagnostic::error(
            path,
            None,
            format!("{} bytes, over the {max}-byte limit", meta.len()),
        )]);
    }
    std::fs::read_to_string(path)
        .map_err(|e| vec![Diagnostic::error(path, None, format!("cannot read: {e}"))])
}

/// Files with a flag extension directly in `dir`, sorted by name (so output is stable).
fn list_files(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Diagnostic::error(dir, None, format!("cannot read directory: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| EXTENSIONS.contains(&x))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn read_dir_sources(dir: &Path) -> Result<native::Sources, Vec<Diagnostic>> {
    let flags_dir = dir.join("flags");
    if !flags_dir.is_dir() {
        return Err(vec![Diagnostic::error(
            dir,
            None,
            "no `flags/` directory here: a flags directory holds flags/<key>.yaml (and optionally segments/, lists/)",
        )]);
    }
    let mut errors = Vec::new();
    let mut read_all = |sub: &Path| -> Vec<native::SourceFile> {
        let files = match list_files(sub) {
            Ok(files) => files,
            Err(d) => {
                errors.push(d);
                return Vec::new();
            }
        };
        files
            .into_iter()
            .filter_map(|path| match read_text(&path, limits::MAX_FILE_BYTES) {
                Ok(text) => Some(native::SourceFile { path, text }),
                Err(mut ds) => {
                    errors.append(&mut ds);
                    None
                }
            })
            .collect()
    };
    let flags = read_all(&flags_dir);
    let segments_dir = dir.join("segments");
    let segments = if segments_dir.is_dir() {
        read_all(&segments_dir)
    } else {
        Vec::new()
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(native::Sources {
        flags,
        segments,
        root: Some(dir.to_path_buf()),
    })
}
