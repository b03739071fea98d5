//! The buildpack's own files: the directory the platform unpacked it into, its `VERSION` and
//! its `manifest.yml`. The executable lives at `<buildpack>/bin/conda-buildpack`, so its own
//! path says where the rest is, whatever the current directory.

use std::path::{Path, PathBuf};

use crate::manifest::{Manifest, ManifestError};

pub(crate) const NAME: &str = "conda";

#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildpackError {
    #[error("cannot find the buildpack directory: {0}")]
    Locate(std::io::Error),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

pub(crate) struct Buildpack {
    pub(crate) dir: PathBuf,
    pub(crate) version: String,
    pub(crate) manifest: Manifest,
}

impl Buildpack {
    pub(crate) fn locate() -> Result<Self, BuildpackError> {
        let dir = own_dir().map_err(BuildpackError::Locate)?;
        let manifest = Manifest::load(&dir.join("manifest.yml"))?;
        Ok(Self {
            version: version_in(&dir),
            dir,
            manifest,
        })
    }
}

/// `<buildpack>` for an executable at `<buildpack>/bin/conda-buildpack`.
pub(crate) fn own_dir() -> std::io::Result<PathBuf> {
    let executable = std::env::current_exe()?;
    executable
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| std::io::Error::other("the executable has no parent directory"))
}

/// The buildpack's `VERSION` file, or the executable's own version when the file is absent
/// (a development build run from `target/`).
pub(crate) fn version_in(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("VERSION"))
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string())
}
