//! Bringing a cached environment back: the one this push needs, or (when the environment
//! changed) the last one, for conda to update rather than build from nothing.

use std::path::Path;
use std::time::Instant;

use super::entry::{ARCHIVE, Metadata};
use super::pack;
use super::{AppCache, Fingerprint, Restore, RestoreStats};
use crate::io::fsutil;

impl AppCache {
    /// Restores the environment for `fingerprint` into `target` (which must not exist), or
    /// says why it cannot. A corrupt entry is deleted; a half-restored target is removed.
    pub(crate) fn restore(&self, fingerprint: &Fingerprint, target: &Path) -> Restore {
        let entries = self.entries();
        if entries.is_empty() {
            return Restore::Empty;
        }
        let wanted = self.entry_for(fingerprint);
        if !entries.contains(&wanted) {
            // Explain against the newest entry, the one the previous push wrote.
            return match self.newest() {
                Some((_, metadata)) => {
                    let mut reasons = fingerprint.differences(&metadata.fingerprint);
                    if reasons.is_empty() {
                        reasons.push("the cached entry is for other inputs".into());
                    }
                    Restore::Stale {
                        reasons,
                        can_update: fingerprint.can_start_from(&metadata.fingerprint),
                    }
                }
                None => {
                    let reason = entries
                        .first()
                        .map(|entry| Metadata::read(entry).err().unwrap_or_default())
                        .unwrap_or_default();
                    for entry in &entries {
                        let _ = fsutil::remove_if_exists(entry);
                    }
                    Restore::Corrupt(reason)
                }
            };
        }
        match Self::unpack_entry(&wanted, Some(fingerprint), target) {
            Ok(stats) => Restore::Restored(stats),
            Err(reason) => {
                let _ = fsutil::remove_if_exists(&wanted);
                Restore::Corrupt(reason)
            }
        }
    }

    /// Restores into `target` the newest environment that `fingerprint` can be updated from
    /// (see [`Fingerprint::can_start_from`]): `Ok(None)` when there is none, `Err` with the
    /// reason when it cannot be trusted (it is then deleted). Used only after
    /// [`Self::restore`] said `can_update`, so a sound entry is left in place: the save that
    /// follows replaces it.
    pub(crate) fn restore_starting_point(
        &self,
        fingerprint: &Fingerprint,
        target: &Path,
    ) -> Result<Option<RestoreStats>, String> {
        let Some((entry, metadata)) = self.newest() else {
            return Ok(None);
        };
        if !fingerprint.can_start_from(&metadata.fingerprint) {
            return Ok(None);
        }
        Self::unpack_entry(&entry, None, target)
            .map(Some)
            .inspect_err(|_| {
                let _ = fsutil::remove_if_exists(target);
                let _ = fsutil::remove_if_exists(&entry);
            })
    }

    /// The newest entry whose metadata checks out.
    fn newest(&self) -> Option<(std::path::PathBuf, Metadata)> {
        self.entries()
            .into_iter()
            .filter_map(|entry| {
                Metadata::read(&entry)
                    .ok()
                    .map(|metadata| (entry, metadata))
            })
            .max_by_key(|(_, metadata)| metadata.created_unix)
    }

    fn unpack_entry(
        entry: &Path,
        expected: Option<&Fingerprint>,
        target: &Path,
    ) -> Result<RestoreStats, String> {
        let metadata = Metadata::read(entry)?;
        if expected.is_some_and(|expected| &metadata.fingerprint != expected) {
            return Err("its fingerprint does not match its name".into());
        }
        let started = Instant::now();
        metadata.verify_archive(entry)?;
        match pack::unpack(&entry.join(ARCHIVE), target) {
            Ok(unpacked) => Ok(RestoreStats {
                files: unpacked.files,
                bytes: unpacked.bytes,
                archive_bytes: metadata.archive.size,
                duration: started.elapsed(),
            }),
            Err(reason) => {
                let _ = fsutil::remove_if_exists(target);
                Err(reason)
            }
        }
    }
}
