//! One cached environment on disk: `entry-<key>/environment.tar.zst` and `metadata.json`,
//! which records the fingerprint it was built for and the archive's size and xxHash3-128
//! digest as they were written. An entry is input from an earlier push that may have been
//! cut short, edited or written by something else: it is trusted only once its metadata
//! checks out and its archive's bytes match what was recorded.

use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fingerprint::{Fingerprint, sha256_bytes};

/// Bumped whenever the entry layout or the meaning of a field changes: an entry of another
/// format is discarded, never interpreted.
pub(crate) const FORMAT: u32 = 3;

pub(crate) const METADATA: &str = "metadata.json";
pub(crate) const ARCHIVE: &str = "environment.tar.zst";

/// The archive as it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ArchiveRecord {
    pub(crate) size: u64,
    /// xxHash3-128 of the archive's bytes, hex.
    pub(crate) digest: String,
    /// Files and their bytes once unpacked, for the log.
    pub(crate) files: u64,
    pub(crate) unpacked_bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Metadata {
    pub(crate) format: u32,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) created_unix: u64,
    pub(crate) archive: ArchiveRecord,
    /// sha256 of the JSON of the fields above: an edited metadata file is caught too.
    pub(crate) checksum: String,
}

#[derive(Serialize)]
struct MetadataBody<'a> {
    format: u32,
    fingerprint: &'a Fingerprint,
    created_unix: u64,
    archive: &'a ArchiveRecord,
}

impl Metadata {
    pub(crate) fn new(fingerprint: &Fingerprint, archive: ArchiveRecord) -> Self {
        let mut metadata = Self {
            format: FORMAT,
            fingerprint: fingerprint.clone(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs()),
            archive,
            checksum: String::new(),
        };
        metadata.checksum = metadata.body_checksum();
        metadata
    }

    fn body_checksum(&self) -> String {
        let body = MetadataBody {
            format: self.format,
            fingerprint: &self.fingerprint,
            created_unix: self.created_unix,
            archive: &self.archive,
        };
        sha256_bytes(&serde_json::to_vec(&body).unwrap_or_default())
    }

    pub(crate) fn read(entry: &Path) -> Result<Self, String> {
        let bytes = fs::read(entry.join(METADATA))
            .map_err(|error| format!("its metadata is unreadable ({error})"))?;
        parse(&bytes)
    }

    /// Checks the archive's bytes against the record: a missing, truncated, edited or
    /// swapped archive is named as such.
    pub(crate) fn verify_archive(&self, entry: &Path) -> Result<(), String> {
        let path = entry.join(ARCHIVE);
        let file = fs::File::open(&path)
            .map_err(|error| format!("its archive is missing ({error}): a partial entry"))?;
        let size = file
            .metadata()
            .map_err(|error| format!("its archive is unreadable ({error})"))?
            .len();
        if size != self.archive.size {
            return Err(format!(
                "its archive is {size} bytes, but {} were written (truncated or replaced)",
                self.archive.size
            ));
        }
        let digest = crate::io::fsutil::digest_file(&file)
            .map_err(|error| format!("its archive is unreadable ({error})"))?;
        if digest != self.archive.digest {
            return Err("its archive's content is not what was written (edited)".into());
        }
        Ok(())
    }
}

/// xxHash3-128 of the file at `path`, hex (what [`ArchiveRecord::digest`] holds).
pub(crate) fn digest(path: &Path) -> io::Result<String> {
    crate::io::fsutil::digest_file(&fs::File::open(path)?)
}

/// Parses an entry's `metadata.json`, checking its format and its own checksum.
pub(crate) fn parse(bytes: &[u8]) -> Result<Metadata, String> {
    // The format comes first so that a future layout is named as such, not as garbage.
    // Only that field is kept: the rest is skipped, not built into a tree of values.
    #[derive(Deserialize)]
    struct FormatOnly {
        #[serde(default)]
        format: serde_json::Value,
    }
    let format = serde_json::from_slice::<FormatOnly>(bytes)
        .ok()
        .and_then(|only| only.format.as_u64());
    match format {
        Some(found) if found != u64::from(FORMAT) => {
            return Err(format!(
                "it was written in cache format {found}; this buildpack reads format {FORMAT}"
            ));
        }
        None => return Err("its metadata is not valid".into()),
        Some(_) => {}
    }
    let metadata: Metadata = serde_json::from_slice(bytes)
        .map_err(|error| format!("its metadata is not valid ({error})"))?;
    if metadata.body_checksum() != metadata.checksum {
        return Err("its metadata was modified".into());
    }
    Ok(metadata)
}
