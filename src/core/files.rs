//! Writing files so that a crash never leaves one half-written, and reading them with errors
//! that name the file: the few file operations every checkpoint and run folder is made of.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

/// Writes `bytes` to `path` through a temporary file, flushed to disk, and a rename, so that
/// a crash never leaves a half-written file behind; an error names the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary(path);
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// `path` with `.tmp` added to its name.
pub fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Moves the finished folder `new` to `dir`, replacing what was there; the old folder is
/// removed only once the new one is in place (a crash in between leaves `dir.old`, which
/// the run folder and readers fall back to).
pub fn swap_in(new: &Path, dir: &Path) -> Result<()> {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".old");
    let old = dir.with_file_name(name);
    remove(&old)?;
    if dir.exists() {
        std::fs::rename(dir, &old).with_context(|| format!("moving {} aside", dir.display()))?;
    }
    std::fs::rename(new, dir).with_context(|| format!("moving {} into place", dir.display()))?;
    remove(&old)
}

/// Removes a file or a folder, if it exists.
pub fn remove(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    result.with_context(|| format!("removing {}", path.display()))
}

/// A file's text; an error names the file.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A JSON file; an error names the file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid", path.display()))
}

/// Writes a value as JSON, atomically.
pub fn write_json<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(value)?)
}
