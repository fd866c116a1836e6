//! One write to a flag or segment file: the wanted definition (a whole one for `PUT`, the
//! current one patched for `PATCH`, none for `DELETE`), written format-preserving into its
//! file, compiled for every environment, and committed as the caller on a change request's
//! branch (a new change unless one is named), which is pushed to the remote.
//!
//! Nothing is committed unless every environment compiles (422 with the compiler's
//! diagnostics), and nothing is overwritten that the caller did not see: `If-Match` must name
//! the file's blob id as the caller read it (412 when it moved, 428 without one).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::catalog::{Item, Kind, check_key};
use super::record::{Change, Stored};
use super::{Changes, Compilation, altered, effects, environments, errors, person, require_on};
use crate::AppState;
use crate::actions::now;
use crate::auth::Caller;
use crate::error::{ApiError, diagnostic_json};
use crate::tokens::Role;

/// What the caller wants done to the file.
#[derive(Debug)]
pub enum Edit {
    /// Replace (or, with `If-None-Match: *`, create) with this definition.
    Put(Value),
    /// Apply this RFC 6902 JSON Patch to the current definition.
    Patch(json_patch::Patch),
    /// Apply this RFC 7396 merge patch to the current definition.
    MergePatch(Value),
    /// Remove the file.
    Delete,
}

/// The request's precondition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `If-Match: <etag>` (quotes removed).
    Match(String),
    /// `If-None-Match: *`: create only.
    Absent,
    /// Neither.
    None,
}

/// One write.
#[derive(Debug)]
pub struct WriteRequest {
    /// Flag or segment.
    pub kind: Kind,
    /// Its key.
    pub key: String,
    /// What to do.
    pub edit: Edit,
    /// The precondition.
    pub precondition: Precondition,
    /// Add to this open change; `None`: open a new one.
    pub change: Option<u64>,
    /// Commit message (a default names the file and the verb).
    pub message: Option<String>,
}

/// What a write did.
#[derive(Debug, Serialize)]
pub struct Written {
    /// The change it went to.
    pub change: ChangeRef,
    /// The new commit.
    pub commit: String,
    /// Flag or segment key.
    pub key: String,
    /// The file, from the flags directory.
    pub file: String,
    /// The file's new blob id (the next `If-Match`); `None` once deleted.
    pub etag: Option<String>,
    /// The definition as written (`None` once deleted).
    pub definition: Option<Value>,
    /// The environments whose behaviour the change alters.
    pub alters: Vec<String>,
    /// Lints of the new files, per environment.
    pub warnings: Vec<Value>,
    /// Whether it created the file.
    #[serde(skip)]
    pub created: bool,
}

/// The change a write went to.
#[derive(Debug, Serialize)]
pub struct ChangeRef {
    /// Its number.
    pub id: u64,
    /// Its branch on the remote.
    pub branch: String,
    /// Its title.
    pub title: String,
    /// Whether this write opened it.
    pub opened: bool,
}

/// Largest JSON Patch accepted, in operations.
pub const MAX_PATCH_OPS: usize = 1000;

impl Changes {
    /// Applies `request` as `caller`.
    pub async fn write(
        &self,
        state: &AppState,
        caller: &Caller,
        request: WriteRequest,
    ) -> Result<Written, ApiError> {
        check_key(&request.key)?;
        if let Edit::Patch(patch) = &request.edit
            && patch.0.len() > MAX_PATCH_OPS
        {
            return Err(ApiError::BadRequest(format!(
                "the patch has {} operations, over the {MAX_PATCH_OPS} accepted",
                patch.0.len()
            )));
        }
        // Anyone writing needs `edit` somewhere before anything is read on their behalf.
        require_on(state, caller, &[], Role::Edit)?;
        self.fetch().await?;
        let existing = match request.change {
            Some(id) => {
                let change = self.records.get(id).await?;
                if change.state != Stored::Open || change.merging.is_some() {
                    return Err(ApiError::Conflict(format!(
                        "change {id} is {}: open a new change",
                        if change.merging.is_some() {
                            "being merged"
                        } else {
                            state_name(change.state)
                        }
                    )));
                }
                Some(change)
            }
            None => None,
        };
        let base = match &existing {
            Some(change) => change.head.clone(),
            None => self.main().await?,
        };
        let catalog = self.catalog(&base).await?;
        let current = catalog.items(request.kind).get(&request.key);
        check_precondition(&request, current)?;
        let (path, file) = match current {
            Some(item) => (item.path.clone(), item.file.clone()),
            None => {
                let file = format!("{}/{}.yaml", request.kind.folder(), request.key);
                (format!("{}{file}", self.repo.prefix), file)
            }
        };
        let wanted = wanted_definition(&request, current)?;
        let content = match &wanted {
            None => None,
            Some(definition) => Some(render(current, definition)?),
        };
        let writes = vec![(path.clone(), content.clone().map(String::into_bytes))];
        let envs = environments(state);
        let before = self.compile(&base, &[], &envs).await?;
        let after = self.compile(&base, &writes, &envs).await?;
        errors(&after)?;
        let effects = effects(&before, &after);
        let alters = altered(&effects);
        if effects
            .values()
            .all(|d| d.as_ref().is_some_and(|d| d.is_empty()))
            && content.as_deref() == current.map(|i| i.text.as_str())
        {
            return Err(ApiError::Conflict(format!(
                "{} {} already reads so: nothing to commit",
                request.kind.noun(),
                request.key
            )));
        }
        require_on(state, caller, &alters, Role::Edit)?;
        let verb = match (&wanted, current) {
            (None, _) => "Delete",
            (Some(_), None) => "Create",
            (Some(_), Some(_)) => "Update",
        };
        let message = request
            .message
            .clone()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| format!("{verb} {} {}", request.kind.noun(), request.key));
        let author = person(caller);
        let commit = self.repo.commit(&base, &writes, &author, &message).await?;
        self.remember(&commit, &after);
        let (change, opened) = match existing {
            Some(change) => (change, false),
            None => {
                let title = message.lines().next().unwrap_or_default().to_owned();
                let change = self
                    .records
                    .create(|id| Change::open(id, &title, "", &caller.token.name, &base))
                    .await?;
                (change, true)
            }
        };
        let lease = if opened { "" } else { change.head.as_str() };
        if !self.repo.push(&commit, &change.branch, Some(lease)).await? {
            return Err(ApiError::PreconditionFailed(format!(
                "change {} moved while this edit was made (someone else committed to it); read it again and retry",
                change.id
            )));
        }
        let expected = change.head.clone();
        let (change, ()) = self
            .records
            .update(change.id, |c| {
                if c.head != expected {
                    return Err(ApiError::PreconditionFailed(format!(
                        "change {} moved while this edit was made; read it again and retry",
                        c.id
                    )));
                }
                c.head = commit.clone();
                c.updated_at = now();
                c.events.push(super::record::Event::new(
                    &caller.token.name,
                    &format!("committed {} ({message})", short(&commit)),
                ));
                Ok(())
            })
            .await?;
        tracing::info!(change = change.id, token = %caller.token.name, commit = %commit, file = %file, "change committed");
        let etag = match &content {
            Some(_) => self.repo.blob_id(&commit, &path).await?,
            None => None,
        };
        Ok(Written {
            change: ChangeRef {
                id: change.id,
                branch: change.branch.clone(),
                title: change.title.clone(),
                opened,
            },
            commit,
            key: request.key,
            file,
            etag,
            definition: wanted,
            alters,
            warnings: warnings(&after),
            created: current.is_none(),
        })
    }
}

/// Every environment's lints, each once.
pub fn warnings(compiled: &BTreeMap<String, Arc<Compilation>>) -> Vec<Value> {
    let mut seen = Vec::new();
    for result in compiled.values() {
        if let Ok(c) = result.as_ref() {
            for d in &c.warnings {
                if !seen.contains(d) {
                    seen.push(d.clone());
                }
            }
        }
    }
    seen.iter().map(diagnostic_json).collect()
}

/// The first 12 characters of a commit id.
pub fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

fn state_name(state: Stored) -> &'static str {
    match state {
        Stored::Open => "open",
        Stored::Merged => "merged",
        Stored::Closed => "closed",
    }
}

fn check_precondition(request: &WriteRequest, current: Option<&Item>) -> Result<(), ApiError> {
    let noun = request.kind.noun();
    let key = &request.key;
    match (&request.precondition, current) {
        (Precondition::Absent, None) => {
            if matches!(request.edit, Edit::Put(_)) {
                Ok(())
            } else {
                Err(ApiError::NotFound(format!("no {noun} {key}")))
            }
        }
        (Precondition::Absent, Some(item)) => Err(ApiError::PreconditionFailed(format!(
            "{noun} {key} already exists ({}): send If-Match with its ETag to replace it",
            item.file
        ))),
        (Precondition::Match(_), None) => Err(ApiError::PreconditionFailed(format!(
            "{noun} {key} does not exist (any more): create it with If-None-Match: *"
        ))),
        (Precondition::Match(etag), Some(item)) => {
            if *etag == item.blob || etag == "*" {
                Ok(())
            } else {
                Err(ApiError::PreconditionFailed(format!(
                    "{noun} {key} changed since you read it (ETag {etag}, now {}): read it again and reapply your edit",
                    item.blob
                )))
            }
        }
        (Precondition::None, None) if !matches!(request.edit, Edit::Put(_)) => {
            Err(ApiError::NotFound(format!("no {noun} {key}")))
        }
        (Precondition::None, _) => Err(ApiError::PreconditionRequired(format!(
            "send If-Match with the ETag of {noun} {key} as you read it (or If-None-Match: * to create it), so no one's change is overwritten"
        ))),
    }
}

/// The definition after the edit (`None`: deleted).
fn wanted_definition(
    request: &WriteRequest,
    current: Option<&Item>,
) -> Result<Option<Value>, ApiError> {
    let noun = request.kind.noun();
    let key = &request.key;
    let current_definition = || -> Result<Value, ApiError> {
        let item = current.ok_or_else(|| ApiError::NotFound(format!("no {noun} {key}")))?;
        item.definition.clone().ok_or_else(|| {
            ApiError::Conflict(format!(
                "{} does not parse as YAML: fix it with PUT (the whole definition)",
                item.file
            ))
        })
    };
    let wanted = match &request.edit {
        Edit::Delete => return Ok(None),
        Edit::Put(definition) => {
            let mut definition = definition.clone();
            if current.is_none()
                && let Value::Object(map) = &mut definition
                && !map.contains_key("key")
            {
                // A new file names its key, first (the canonical layout).
                let mut with_key = serde_json::Map::new();
                with_key.insert("key".into(), Value::String(key.clone()));
                with_key.extend(std::mem::take(map));
                *map = with_key;
            }
            definition
        }
        Edit::Patch(patch) => {
            let mut definition = current_definition()?;
            json_patch::patch(&mut definition, patch)
                .map_err(|e| ApiError::Unprocessable(format!("the patch does not apply: {e}")))?;
            definition
        }
        Edit::MergePatch(patch) => {
            let mut definition = current_definition()?;
            json_patch::merge(&mut definition, patch);
            definition
        }
    };
    if !wanted.is_object() {
        return Err(ApiError::BadRequest(format!(
            "a {noun} definition is a JSON object (the file's fields)"
        )));
    }
    if let Some(named) = wanted.get("key")
        && named.as_str() != Some(key.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "the definition's key {named} is not {key:?}, the key in the URL (to rename, create the new key and delete the old one)"
        )));
    }
    Ok(Some(wanted))
}

/// The file's new text: the old one edited in place, or a new file in the canonical layout.
fn render(current: Option<&Item>, wanted: &Value) -> Result<String, ApiError> {
    match current {
        Some(item) => flags_compile::edit::rewrite(&item.text, wanted).map_err(|e| {
            ApiError::Unprocessable(format!("{} cannot be edited in place: {e}", item.file))
        }),
        None => Ok(flags_compile::edit::canonical(wanted)),
    }
}
