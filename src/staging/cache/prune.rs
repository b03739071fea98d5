//! What a staging leaves in the cache: its one environment entry. Everything else (this
//! staging's scratch, and whatever an earlier buildpack version kept: installers, package
//! caches, entries of another layout) goes, so none of it is gzipped and shipped again.

use std::fs;

use super::{AppCache, ENVIRONMENT_DIR};
use crate::io::fsutil;

impl AppCache {
    /// Removes all but the environment entries and returns the cache's size afterwards.
    pub(crate) fn prune(&self) -> u64 {
        if let Ok(children) = fs::read_dir(&self.root) {
            for child in children.flatten() {
                if child.file_name() != ENVIRONMENT_DIR {
                    let _ = fsutil::remove_if_exists(&child.path());
                }
            }
        }
        fsutil::tree_size(&self.root).unwrap_or(0)
    }
}
