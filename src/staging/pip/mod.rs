//! pip requirements in environment.yml, for foundations with no route to a package index:
//! reading the pip section's lines (`requirements`), the developer fetching wheels for the
//! platform the app runs on into `vendor/pip/` (`tools::pip_fetch`), and staging checking and
//! installing them with no network (`wheelhouse`).

pub(crate) mod installed;
pub(crate) mod requirements;
pub(crate) mod wheelhouse;

use std::io;
use std::path::{Path, PathBuf};

use crate::io::archive::ArchiveError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PipError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path} is a link or not a regular file; vendored pip files must be pushed with the app"
    )]
    Link { path: PathBuf },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{origin} requires `{requirement}`, which is not in vendor/pip")]
    NotVendored { requirement: String, origin: String },
    #[error("{origin} has `{line}`, which pip can only fetch from the network")]
    DirectOffline { line: String, origin: String },
}

/// The requirements pip could not satisfy, from its `No matching distribution found for X`
/// lines: what `vendor` must fetch as an sdist, and what staging names as not vendored.
pub(crate) fn missing_distributions<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    lines
        .into_iter()
        .filter_map(|line| line.split_once("No matching distribution found for "))
        .map(|(_, requirement)| requirement.trim().to_string())
        .filter(|requirement| !requirement.is_empty())
        .collect()
}

impl PipError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
