//! Writing the built environment as the cache's one entry: packed under a temporary name and
//! renamed into place complete, so an interruption leaves the old entry or the new one.

use std::fs;
use std::io;
use std::path::Path;

use super::entry::{ARCHIVE, METADATA, Metadata};
use super::{AppCache, CacheError, Fingerprint, INCOMING_PREFIX, context, pack};
use crate::io::fsutil;

impl AppCache {
    /// Saves the environment at `source` as the entry for `fingerprint`, then removes every
    /// other entry. On failure (a full disk) the previous entries are left as they were.
    pub(crate) fn save(&self, fingerprint: &Fingerprint, source: &Path) -> Result<(), CacheError> {
        let environments = self.environments();
        fs::create_dir_all(&environments)
            .map_err(context("cannot create the cache's environment dir"))?;
        let incoming = environments.join(format!("{INCOMING_PREFIX}{}", std::process::id()));
        let result = (|| {
            fsutil::remove_if_exists(&incoming)
                .map_err(context("cannot clear an old incoming entry"))?;
            fs::create_dir(&incoming).map_err(context("cannot create the incoming entry"))?;
            let archive = pack::pack(source, &incoming.join(ARCHIVE))
                .map_err(context("cannot store the environment in the cache"))?;
            let metadata = Metadata::new(fingerprint, archive);
            let json = serde_json::to_vec(&metadata).map_err(|error| CacheError {
                context: "cannot encode the cache metadata".into(),
                source: io::Error::other(error),
            })?;
            fsutil::write_atomically(&incoming.join(METADATA), &json)
                .map_err(context("cannot write the cache metadata"))?;
            let entry = self.entry_for(fingerprint);
            fsutil::remove_if_exists(&entry).map_err(context("cannot replace the old entry"))?;
            fs::rename(&incoming, &entry)
                .map_err(context("cannot move the new entry into place"))?;
            if let Ok(handle) = fs::File::open(&environments) {
                let _ = handle.sync_all();
            }
            Ok(entry)
        })();
        match result {
            Ok(entry) => {
                for other in self.entries().into_iter().filter(|other| *other != entry) {
                    let _ = fsutil::remove_if_exists(&other);
                }
                Ok(())
            }
            Err(error) => {
                let _ = fsutil::remove_if_exists(&incoming);
                Err(error)
            }
        }
    }
}
