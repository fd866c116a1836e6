//! The flags and segments of one commit, read from Git (not from the work tree): each file's
//! key, path, blob id (the resource's ETag) and definition as JSON, the same field names as the
//! YAML. A commit never changes, so a catalog is built once per commit and shared.

use std::collections::BTreeMap;

use serde_json::Value;

use flags_compile::yaml;

use super::git::Repo;
use crate::error::ApiError;

/// Flag or segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A file of `flags/`.
    Flag,
    /// A file of `segments/`.
    Segment,
}

impl Kind {
    /// The folder of the flags directory its files live in.
    pub fn folder(self) -> &'static str {
        match self {
            Kind::Flag => "flags",
            Kind::Segment => "segments",
        }
    }

    /// `flag` or `segment`, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Flag => "flag",
            Kind::Segment => "segment",
        }
    }
}

/// One flag or segment file.
#[derive(Debug, Clone)]
pub struct Item {
    /// Flag or segment.
    pub kind: Kind,
    /// Its key (the `key` field, else the file name).
    pub key: String,
    /// Path from the repository's top.
    pub path: String,
    /// Path from the flags directory (what diagnostics and the API show).
    pub file: String,
    /// The file's blob id: the resource's ETag.
    pub blob: String,
    /// The file's text.
    pub text: String,
    /// The parsed file as JSON; `None` when it does not parse (the compiler says why).
    pub definition: Option<Value>,
}

/// Every flag and segment of one commit.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The commit.
    pub commit: String,
    /// Flags by key.
    pub flags: BTreeMap<String, Item>,
    /// Segments by key.
    pub segments: BTreeMap<String, Item>,
}

impl Catalog {
    /// Reads `commit`'s flags directory.
    pub async fn read(repo: &Repo, commit: &str) -> Result<Catalog, ApiError> {
        let files = repo.files(commit).await?;
        let wanted: Vec<(Kind, &super::git::TreeFile, &str)> = files
            .iter()
            .filter_map(|f| {
                let file = f.path.strip_prefix(&repo.prefix)?;
                let (folder, name) = file.split_once('/')?;
                let kind = match folder {
                    "flags" => Kind::Flag,
                    "segments" => Kind::Segment,
                    _ => return None,
                };
                // Only files directly in the folder, as the compiler reads them.
                super::is_source(name).then_some((kind, f, file))
            })
            .collect();
        let ids: Vec<&str> = wanted.iter().map(|(_, f, _)| f.blob.as_str()).collect();
        let contents = repo.blobs(&ids).await?;
        let mut catalog = Catalog {
            commit: commit.to_owned(),
            ..Catalog::default()
        };
        for ((kind, tree_file, file), bytes) in wanted.into_iter().zip(contents) {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let definition = yaml::parse(&text).ok().map(|node| node.to_json());
            let stem = file
                .rsplit('/')
                .next()
                .and_then(|name| name.rsplit_once('.'))
                .map(|(stem, _)| stem)
                .unwrap_or(file);
            let key = definition
                .as_ref()
                .and_then(|d| d.get("key"))
                .and_then(Value::as_str)
                .unwrap_or(stem)
                .to_owned();
            let item = Item {
                kind,
                key: key.clone(),
                path: tree_file.path.clone(),
                file: file.to_owned(),
                blob: tree_file.blob.clone(),
                text,
                definition,
            };
            let map = match kind {
                Kind::Flag => &mut catalog.flags,
                Kind::Segment => &mut catalog.segments,
            };
            // Two files with one key do not compile; the first keeps the key here.
            map.entry(key).or_insert(item);
        }
        Ok(catalog)
    }

    /// The flags or the segments.
    pub fn items(&self, kind: Kind) -> &BTreeMap<String, Item> {
        match kind {
            Kind::Flag => &self.flags,
            Kind::Segment => &self.segments,
        }
    }
}

/// Whether `key` may name a flag or segment (and so a file): the compiler's key rule, and no
/// leading dot, so a key can never climb out of its folder (`..`) or hide a file.
pub fn check_key(key: &str) -> Result<(), ApiError> {
    // The compiler's key rule, and no leading dot on top: a file name, never `..` or hidden.
    if flags_compile::limits::is_valid_key(key) && !key.starts_with('.') {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "invalid key {key:?}: use 1 to 128 characters among a-z, A-Z, 0-9, `-`, `_`, `.`, not starting with `.`"
        )))
    }
}
