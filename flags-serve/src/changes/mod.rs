//! Flags as API resources whose every write is a reviewed Git commit: change requests.
//!
//! - `git.rs`: the service's clone, read and written with Git plumbing only.
//! - `catalog.rs`: the flags and segments of one commit (definition, file, blob id = ETag).
//! - `record.rs`: the change records, kept in the store with conditional writes, so any
//!   number of replicas act as one.
//! - `write.rs`: `PUT`/`PATCH`/`DELETE` of a flag or segment: a format-preserving edit of its
//!   file (`flags_compile::edit`), compiled for every environment, committed as the caller on
//!   the change's branch and pushed.
//! - `review.rs`: open, approve, merge (fast-forward or rebase onto the moved branch, then
//!   publish to the `auto_publish` environments through the one publish path), close.
//! - `overview.rs`: per (commit, environment, deployed version), the drifted flags and each
//!   flag's lints, computed once for every list and flag page.
//! - `view.rs`: a change as the API shows it (commits, YAML diff, semantic diff per
//!   environment, lints, approvals needed and given, whether it still applies).
//!
//! What an edit may do is decided per environment from what it changes there: the compiled
//! bodies before and after are diffed per environment, and a change that alters an
//! environment's behaviour needs `edit` (to write), `approve` (to approve) and `publish` (to
//! merge) there; one that alters none (a description) needs the role in any one environment.

pub mod catalog;
pub mod git;
pub mod impact;
pub mod overview;
pub mod record;
pub mod review;
pub mod view;
pub mod write;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flags_compile::diff::BodyDiff;
use flags_compile::native::{SourceFile, Sources};
use flags_compile::{CompileOptions, Compiled, Diagnostic, compile_sources};

use crate::AppState;
use crate::auth::Caller;
use crate::config::GitConfig;
use crate::error::{ApiError, relative_to};
use crate::tokens::Role;
use catalog::Catalog;
use git::{Person, Repo, Write};
use record::Records;

/// One environment's compilation of one tree.
pub type Compilation = Result<Compiled, Vec<Diagnostic>>;

/// The change-request engine: the clone, the records and what was read from them.
#[derive(Debug)]
pub struct Changes {
    /// The clone.
    pub repo: Repo,
    /// The change records.
    pub records: Records,
    poll: Duration,
    last_fetch: Mutex<Option<Instant>>,
    fetching: tokio::sync::Mutex<()>,
    catalogs: Mutex<HashMap<String, Arc<Catalog>>>,
    compiled: Mutex<HashMap<(String, String), Arc<Compilation>>>,
    overviews: overview::Overviews,
}

/// Entries kept per cache before it is emptied (each is one commit's worth).
const CACHE_ENTRIES: usize = 64;

/// Parses `Name <email>`.
pub fn parse_person(text: &str) -> Result<Person, String> {
    let (name, rest) = text
        .split_once('<')
        .ok_or_else(|| format!("{text:?}: expected `Name <email>`"))?;
    let email = rest
        .strip_suffix('>')
        .ok_or_else(|| format!("{text:?}: expected `Name <email>`"))?;
    Ok(Person {
        name: name.trim().to_owned(),
        email: email.trim().to_owned(),
    })
}

impl Changes {
    /// The engine for the clone holding `flags_dir`.
    pub async fn open(
        flags_dir: &Path,
        config: &GitConfig,
        records: Records,
    ) -> Result<Changes, String> {
        let committer =
            parse_person(&config.committer).map_err(|e| format!("git.committer: {e}"))?;
        let repo = Repo::discover(flags_dir, &config.remote, &config.branch, committer).await?;
        Ok(Changes {
            repo,
            records,
            poll: config.poll,
            last_fetch: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
            catalogs: Mutex::default(),
            compiled: Mutex::default(),
            overviews: Mutex::default(),
        })
        // No fetch here: the first read fetches (`refresh`, nothing fetched yet) and every
        // write fetches first, so start-up neither waits for the remote nor fails without it.
    }

    /// Fetches from the remote now.
    pub async fn fetch(&self) -> Result<(), ApiError> {
        let _one = self.fetching.lock().await;
        self.repo.fetch().await?;
        *self.last_fetch.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        Ok(())
    }

    /// Fetches unless the last fetch is younger than the poll interval.
    pub async fn refresh(&self) -> Result<(), ApiError> {
        let fresh = self
            .last_fetch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < self.poll);
        if fresh { Ok(()) } else { self.fetch().await }
    }

    /// The branch's commit as last fetched.
    pub async fn main(&self) -> Result<String, ApiError> {
        self.repo.main_commit().await
    }

    /// The flags and segments of `commit` (read once per commit).
    pub async fn catalog(&self, commit: &str) -> Result<Arc<Catalog>, ApiError> {
        if let Some(found) = self
            .catalogs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(commit)
        {
            return Ok(found.clone());
        }
        let catalog = Arc::new(Catalog::read(&self.repo, commit).await?);
        let mut catalogs = self.catalogs.lock().unwrap_or_else(|e| e.into_inner());
        if catalogs.len() >= CACHE_ENTRIES {
            catalogs.clear();
        }
        catalogs.insert(commit.to_owned(), catalog.clone());
        Ok(catalog)
    }

    /// `commit`'s flags with `writes` applied, compiled for each of `envs`.
    pub async fn compile(
        &self,
        commit: &str,
        writes: &[Write],
        envs: &[String],
    ) -> Result<BTreeMap<String, Arc<Compilation>>, ApiError> {
        let mut out = BTreeMap::new();
        let mut missing = Vec::new();
        if writes.is_empty() {
            let cache = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
            for env in envs {
                match cache.get(&(commit.to_owned(), env.clone())) {
                    Some(found) => {
                        out.insert(env.clone(), found.clone());
                    }
                    None => missing.push(env.clone()),
                }
            }
        } else {
            missing = envs.to_vec();
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let tree = self.repo.tree(commit, writes).await?;
        let compiled = tokio::task::spawn_blocking(move || compile_tree(tree, &missing))
            .await
            .map_err(|e| ApiError::Internal(format!("compile task failed: {e}")))??;
        let mut cache = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_ENTRIES * 4 {
            cache.clear();
        }
        for (env, result) in compiled {
            if writes.is_empty() {
                cache.insert((commit.to_owned(), env.clone()), result.clone());
            }
            out.insert(env, result);
        }
        Ok(out)
    }

    /// Remembers what a new commit compiles to (it was compiled before it was made).
    pub fn remember(&self, commit: &str, compiled: &BTreeMap<String, Arc<Compilation>>) {
        let mut cache = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        for (env, result) in compiled {
            cache.insert((commit.to_owned(), env.clone()), result.clone());
        }
    }
}

/// Compiles a flags directory's files, held in memory, for each of `envs`. Flag and segment
/// files go to the compiler as they are; only the other files (lists that `in: {file: ...}`
/// reads) are written out, to a scratch directory that stands for the flags directory, so
/// compiling a thousand flags writes no thousand files.
fn compile_tree(
    tree: Vec<(String, Vec<u8>)>,
    envs: &[String],
) -> Result<Vec<(String, Arc<Compilation>)>, ApiError> {
    let dir =
        tempfile::tempdir().map_err(|e| ApiError::Internal(format!("temporary directory: {e}")))?;
    let root = dir.path();
    let mut sources = Sources {
        flags: Vec::new(),
        segments: Vec::new(),
        root: Some(root.to_owned()),
    };
    let mut unreadable = Vec::new();
    for (path, bytes) in tree {
        let folder = match path.split_once('/') {
            Some(("flags", name)) if is_source(name) => Some(&mut sources.flags),
            Some(("segments", name)) if is_source(name) => Some(&mut sources.segments),
            _ => None,
        };
        let target = root.join(&path);
        match folder {
            Some(list) => match String::from_utf8(bytes) {
                Ok(text) => list.push(SourceFile { path: target, text }),
                Err(_) => unreadable.push(Diagnostic::error(
                    &target,
                    None,
                    "not UTF-8 text: flag files are UTF-8 YAML or JSON",
                )),
            },
            None => {
                let written = target
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(&target, bytes));
                written.map_err(|e| {
                    ApiError::Internal(format!("cannot write {path} to compile: {e}"))
                })?;
            }
        }
    }
    Ok(envs
        .iter()
        .map(|env| {
            let mut result = if unreadable.is_empty() {
                let mut options = CompileOptions::new(env.clone());
                // A served environment exists even where no file names it.
                options.new_environment = true;
                compile_sources(&sources, root, &options)
            } else {
                Err(unreadable.clone())
            };
            match &mut result {
                Ok(c) => {
                    relative_to(root, &mut c.warnings);
                    relative_to(root, &mut c.broken);
                }
                Err(d) => relative_to(root, d),
            }
            (env.clone(), Arc::new(result))
        })
        .collect())
}

/// A file the compiler reads as a flag or segment (directly in its folder).
pub(crate) fn is_source(name: &str) -> bool {
    !name.contains('/') && [".yaml", ".yml", ".json"].iter().any(|x| name.ends_with(x))
}

/// The errors of a compilation per environment, each diagnostic once (the same file error
/// shows in every environment), or `Ok` when every environment compiles.
pub fn errors(compiled: &BTreeMap<String, Arc<Compilation>>) -> Result<(), ApiError> {
    let mut all: Vec<Diagnostic> = Vec::new();
    for result in compiled.values() {
        if let Err(diagnostics) = result.as_ref() {
            for d in diagnostics {
                if !all.contains(d) {
                    all.push(d.clone());
                }
            }
        }
    }
    if all
        .iter()
        .any(|d| d.severity == flags_compile::Severity::Error)
    {
        Err(ApiError::Uncompiled(all))
    } else {
        Ok(())
    }
}

/// Per environment, what the second compilation changes against the first (an environment
/// whose old side did not compile counts as altered, with an empty diff).
pub fn effects(
    old: &BTreeMap<String, Arc<Compilation>>,
    new: &BTreeMap<String, Arc<Compilation>>,
) -> BTreeMap<String, Option<BodyDiff>> {
    new.iter()
        .map(|(env, new)| {
            let diff = match (old.get(env).map(|o| o.as_ref()), new.as_ref()) {
                (Some(Ok(old)), Ok(new)) => Some(flags_compile::diff::diff(&old.body, &new.body)),
                _ => None,
            };
            (env.clone(), diff)
        })
        .collect()
}

/// The environments an effect alters.
pub fn altered(effects: &BTreeMap<String, Option<BodyDiff>>) -> Vec<String> {
    effects
        .iter()
        .filter(|(_, diff)| diff.as_ref().is_none_or(|d| !d.is_empty()))
        .map(|(env, _)| env.clone())
        .collect()
}

/// `Ok` when `caller` holds `role` in every environment of `altered`, or, when it is empty,
/// in at least one served environment.
pub fn require_on(
    state: &AppState,
    caller: &Caller,
    altered: &[String],
    role: Role,
) -> Result<(), ApiError> {
    if altered.is_empty() {
        let served = state.environments();
        if served.iter().any(|env| caller.token.allows(env, role)) {
            return Ok(());
        }
        return caller.require(served.first().map_or("*", String::as_str), role);
    }
    altered.iter().try_for_each(|env| caller.require(env, role))
}

/// The Git identity of a caller: its token's name (an OIDC identity's `name` claim) and email.
pub fn person(caller: &Caller) -> Person {
    Person {
        name: caller
            .display_name
            .clone()
            .unwrap_or_else(|| caller.token.name.clone()),
        email: caller
            .token
            .email
            .clone()
            .unwrap_or_else(|| format!("{}@flags.invalid", caller.token.name)),
    }
}

/// The environments compiled for a change: the served ones.
pub fn environments(state: &AppState) -> Vec<String> {
    state.environments()
}

/// The engine, or 404 saying how to configure it.
pub fn engine(state: &AppState) -> Result<&Arc<Changes>, ApiError> {
    state.changes.as_ref().ok_or_else(|| {
        ApiError::NotFound(
            "change requests need `git: {remote, branch}` in the service's configuration (the flags directory must be a clone of that remote)".into(),
        )
    })
}
