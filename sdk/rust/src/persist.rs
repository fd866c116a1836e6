//! The last good pointer and its blobs on disk, so a cold start with the origin down serves the
//! last known flags: `<dir>/pointer.json` and `<dir>/<sha256>.blob` (as fetched: gzipped, or
//! gunzipped by the worker on the way), each written to a
//! temporary file in the same directory (mode 0600) and renamed over the old one, blobs before
//! the pointer that names them. Loading goes through the core's checks
//! ([`flags_sdk_core::Core::restore`]): a blob whose bytes do not hash to the pointer's SHA-256
//! is refused, and nothing is served from it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use flags_sdk_core::{Core, Update};

/// The cache directory of one environment.
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
}

const POINTER: &str = "pointer.json";

impl DiskCache {
    /// The cache under `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> DiskCache {
        DiskCache { dir: dir.into() }
    }

    /// Where it lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes what an update brought, then drops blobs the new pointer no longer names.
    pub fn save(&self, update: &Update) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        for (sha256, gz) in &update.new_blobs {
            self.write(&format!("{sha256}.blob"), gz)?;
        }
        self.write(POINTER, &update.pointer)?;
        for entry in std::fs::read_dir(&self.dir)?.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(sha256) = name.strip_suffix(".blob")
                && !update.named.iter().any(|n| n == sha256)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        // `tempfile` creates the file with mode 0600 on Unix.
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(bytes)?;
        file.as_file().sync_all()?;
        file.persist(self.dir.join(name)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Serves the persisted pointer and blobs through `core` (checked as fetched ones are).
    /// `Ok(None)` when nothing was persisted.
    pub fn load_into(&self, core: &Core) -> Result<Option<Update>, String> {
        let pointer = match std::fs::read(self.dir.join(POINTER)) {
            Ok(pointer) => pointer,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("reading the cached pointer: {error}")),
        };
        core.restore(&pointer, |sha256| {
            std::fs::read(self.dir.join(format!("{sha256}.blob"))).ok()
        })
        .map(Some)
    }
}
