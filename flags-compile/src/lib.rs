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
//! and tests), [`schedule`] (the rollout syntax and how a stage rewrites a rule), [`suggest`]
//! ("did you mean ...?" for names users type).
//!
//! **Architecture Invariant:** this crate does no network I/O and knows nothing of stores: it
//! depends on no tokio, reqwest, aws-sdk or axum crate (the `tidy` test checks `Cargo.toml`).
//! What it reads is files; what it returns is data. `fuzz/` depends on it alone.

pub mod blob_file;
pub mod diagnostic;
pub mod diff;
pub mod edit;
pub mod flagd;
mod graph;
pub mod impact;
pub mod limits;
pub mod native;
pub mod schedule;
pub mod schema;
pub mod suggest;
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
    /// Compile for an environment no flag file defines (every flag is then off there): `push
    /// --new-env`. Without it that is an error naming the environments the files define, as
    /// it is far more often a typo (`--env production` for `prod`) than a new environment.
    pub new_environment: bool,
}

impl CompileOptions {
    /// Options for `environment`, with today's date from the clock.
    pub fn new(environment: impl Into<String>) -> Self {
        CompileOptions {
            environment: environment.into(),
            today: None,
            new_environment: false,
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
    /// Every environment the native files define, sorted (empty for flagd, which has none).
    pub environments: Vec<String>,
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
    if path.is_dir() {
        return compile_sources(&read_dir_sources(path)?, path, options);
    }
    let today = options
        .today
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let mut broken = Vec::new();
    let mut environments = Vec::new();
    let (body, diags) = {
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
            environments = lowered.environments;
            (lowered.body, lowered.diagnostics)
        }
    };
    finish(path, options, body, diags, None, environments, broken)
}

/// Compiles a flags directory's files already read (the service compiles a Git commit's
/// files from memory): `sources.root` is where list files are read from, `dir` what
/// directory-level diagnostics name. The same checks and lints as [`compile_path`] on a
/// directory holding these files.
pub fn compile_sources(
    sources: &native::Sources,
    dir: &Path,
    options: &CompileOptions,
) -> Result<Compiled, Vec<Diagnostic>> {
    // An empty flags directory would compile to an empty body, which a push publishes as
    // "every flag removed": a mistake (the wrong folder), never a way to delete flags.
    if sources.flags.is_empty() {
        return Err(vec![no_flags_here(dir)]);
    }
    let today = options
        .today
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let lowered = native::compile(sources, &options.environment, today);
    finish(
        dir,
        options,
        lowered.body,
        lowered.diagnostics,
        Some(lowered.schedules),
        lowered.environments,
        Vec::new(),
    )
}

/// What every compilation ends with: the environment, size and evaluator checks, sorted
/// diagnostics, and the result.
fn finish(
    path: &Path,
    options: &CompileOptions,
    body: Body,
    mut diags: Vec<Diagnostic>,
    schedules: Option<Vec<schedule::Schedule>>,
    environments: Vec<String>,
    broken: Vec<Diagnostic>,
) -> Result<Compiled, Vec<Diagnostic>> {
    if let Some(d) = undefined_environment(path, &environments, options) {
        diags.push(d);
    }
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
        environments,
        warnings: diags,
        broken,
    })
}

/// `--env production` when the files say `prod`: every flag would silently be off there. An
/// error with the closest defined name, or with `new_environment` a warning saying so. Files
/// that define no environment at all (every flag off everywhere) say nothing either way.
fn undefined_environment(
    path: &Path,
    defined: &[String],
    options: &CompileOptions,
) -> Option<Diagnostic> {
    let env = options.environment.as_str();
    if defined.is_empty() || defined.iter().any(|d| d == env) {
        return None;
    }
    let names = defined.join(", ");
    Some(if options.new_environment {
        Diagnostic::warning(
            path,
            None,
            format!(
                "no flag defines environment `{env}`, so every flag is off there (environments in the files: {names})"
            ),
        )
    } else {
        let hint = suggest::did_you_mean(env, defined.iter().map(String::as_str));
        Diagnostic::error(
            path,
            None,
            format!(
                "no flag defines environment `{env}`{hint}; environments in the files: {names}. A new environment, with every flag off, is published on purpose with `push --new-env`"
            ),
        )
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

/// Whether `dir` holds at least one flag file.
fn has_flag_files(dir: &Path) -> bool {
    list_files(dir).is_ok_and(|files| !files.is_empty())
}

/// Folders under `dir`, down to two levels, that hold flags the way a flags directory does
/// (`<folder>/flags/*.yaml`), nearest first: what a user who ran `validate .` one folder too
/// high (a repository root, or above `flags/flags/`) meant. Hidden folders, `target` and
/// `node_modules` are skipped, and each level reads at most a few hundred entries.
fn flags_dirs_below(dir: &Path) -> Vec<PathBuf> {
    const SKIP: &[&str] = &["target", "node_modules"];
    const MAX_ENTRIES: usize = 256;
    let subdirs = |dir: &Path| -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries
            .take(MAX_ENTRIES)
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| !n.starts_with('.') && !SKIP.contains(&n))
            })
            .collect();
        dirs.sort();
        dirs
    };
    let children = subdirs(dir);
    let grandchildren = children.iter().flat_map(|c| subdirs(c));
    children
        .iter()
        .cloned()
        .chain(grandchildren)
        .filter(|d| has_flag_files(&d.join("flags")))
        .collect()
}

/// The error for a directory without flag files: what was looked for, and where flags are.
fn no_flags_here(dir: &Path) -> Diagnostic {
    let hint = flags_dirs_below(dir)
        .first()
        .map(|d| format!(" (did you mean `{}`?)", d.display()))
        .unwrap_or_default();
    Diagnostic::error(
        dir,
        None,
        format!(
            "no flags here: found no {}/flags/*.yaml (nor .yml, .json){hint}; a flags directory holds flags/<key>.yaml (and optionally segments/, lists/)",
            dir.display()
        ),
    )
}

fn read_dir_sources(dir: &Path) -> Result<native::Sources, Vec<Diagnostic>> {
    let flags_dir = dir.join("flags");
    // An empty flags directory would compile to an empty body, which a push publishes as
    // "every flag removed": a mistake (the wrong folder), never a way to delete flags.
    if !flags_dir.is_dir() || list_files(&flags_dir).is_ok_and(|files| files.is_empty()) {
        return Err(vec![no_flags_here(dir)]);
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
