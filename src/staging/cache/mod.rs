//! The app cache: what survives between pushes in the buildpack's CACHE dir, and so what the
//! builder gzips and Diego ships twice on every push. It holds what pays for that and no
//! more (the trade-offs are measured in docs/benchmarks.md):
//!
//! ```text
//! CACHE/environment/entry-<key>/environment.tar.zst   the last built environment
//! CACHE/environment/entry-<key>/metadata.json         its fingerprint, the archive's size and digest
//! CACHE/work/                                         one staging's scratch: the installer's
//!                                                     base, conda's and pip's package caches;
//!                                                     wiped at the start and end of a staging
//! ```
//!
//! No installer, no package archives, no extracted packages: a restore needs none of them,
//! and a changed environment starts from the last one (`conda env update`), so it downloads
//! only what it adds.
//!
//! `fingerprint` decides whether an entry is this environment; `entry` is its format and
//! integrity; `pack` the archive; `restore`, `save` and `prune` what their names say.

mod entry;
mod fingerprint;
mod pack;
mod prune;
mod restore;
mod save;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use entry::parse as parse_metadata;
pub(crate) use fingerprint::{Fingerprint, relevant_settings, sha256_bytes};

use crate::io::fsutil;

const ENVIRONMENT_DIR: &str = "environment";
const ENTRY_PREFIX: &str = "entry-";
const INCOMING_PREFIX: &str = ".incoming-";
const WORK_DIR: &str = "work";

/// What a restore attempt found.
pub(crate) enum Restore {
    Restored(RestoreStats),
    /// No entry at all (a first push, or a cleared cache).
    Empty,
    /// An entry for other inputs: rebuild, with the reasons; `can_update` when only what
    /// the user's files say differs, so conda may update that environment instead
    /// ([`Fingerprint::can_start_from`]).
    Stale {
        reasons: Vec<String>,
        can_update: bool,
    },
    /// An entry that cannot be trusted: rebuild, with a warning.
    Corrupt(String),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RestoreStats {
    pub(crate) files: u64,
    pub(crate) bytes: u64,
    /// The archive's bytes: what came through Diego.
    pub(crate) archive_bytes: u64,
    pub(crate) duration: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub(crate) struct CacheError {
    pub(crate) context: String,
    pub(crate) source: io::Error,
}

fn context(what: impl Into<String>) -> impl FnOnce(io::Error) -> CacheError {
    let context = what.into();
    move |source| CacheError { context, source }
}

pub(crate) struct AppCache {
    root: PathBuf,
}

impl AppCache {
    /// Opens the cache dir, removing what an interrupted staging left half-written.
    pub(crate) fn open(root: &Path) -> Result<Self, CacheError> {
        fs::create_dir_all(root).map_err(context(format!("cannot create {}", root.display())))?;
        let cache = Self {
            root: root.to_path_buf(),
        };
        fsutil::remove_if_exists(&cache.work_dir())
            .map_err(context("cannot clear the cache's work dir"))?;
        if let Ok(entries) = fs::read_dir(cache.environments()) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(INCOMING_PREFIX)
                {
                    let _ = fsutil::remove_if_exists(&entry.path());
                }
            }
        }
        Ok(cache)
    }

    /// Empties the cache. For a user who asks (`BP_CONDA_CLEAR_CACHE`), since Cloud Foundry
    /// has no per-app command for it.
    pub(crate) fn clear(&self) -> Result<(), CacheError> {
        let entries = fs::read_dir(&self.root).map_err(context("cannot read the cache dir"))?;
        for entry in entries {
            let entry = entry.map_err(context("cannot read the cache dir"))?;
            fsutil::remove_if_exists(&entry.path())
                .map_err(context(format!("cannot remove {}", entry.path().display())))?;
        }
        Ok(())
    }

    /// Where a downloaded installer is kept for the rest of this staging.
    pub(crate) fn installers_dir(&self) -> PathBuf {
        self.work_dir().join("installers")
    }

    /// conda's package cache (`CONDA_PKGS_DIRS`): this staging's only.
    pub(crate) fn pkgs_dir(&self) -> PathBuf {
        self.work_dir().join("pkgs")
    }

    /// pip's cache (`PIP_CACHE_DIR`): this staging's only.
    pub(crate) fn pip_dir(&self) -> PathBuf {
        self.work_dir().join("pip")
    }

    pub(crate) fn work_dir(&self) -> PathBuf {
        self.root.join(WORK_DIR)
    }

    fn environments(&self) -> PathBuf {
        self.root.join(ENVIRONMENT_DIR)
    }

    fn entry_for(&self, fingerprint: &Fingerprint) -> PathBuf {
        self.environments()
            .join(format!("{ENTRY_PREFIX}{}", fingerprint.key()))
    }

    fn entries(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(self.environments()) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(ENTRY_PREFIX)
            })
            .map(|entry| entry.path())
            .collect();
        paths.sort();
        paths
    }
}

#[cfg(test)]
mod tests;
