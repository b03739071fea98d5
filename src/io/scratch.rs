//! The private HOME and TMPDIR of every program staging runs (the installer, conda, pip), so
//! that none of them writes outside the buildpack's cache dir.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A private HOME and TMPDIR inside the buildpack's cache dir for the installer, conda and
/// pip: they write `~/.conda`, `~/.cache/pip` and temporary files, and a supply buildpack
/// may write only inside DEPS/IDX and its cache dir. A private HOME also keeps a stray
/// `~/.condarc` from changing the build.
pub(crate) struct Scratch {
    pub(crate) home: PathBuf,
    pub(crate) tmp: PathBuf,
}

impl Scratch {
    pub(crate) fn create(root: &Path) -> std::io::Result<Self> {
        crate::io::fsutil::remove_if_exists(root)?;
        let home = root.join("home");
        let tmp = root.join("tmp");
        fs::create_dir_all(&home)?;
        fs::create_dir_all(&tmp)?;
        Ok(Self { home, tmp })
    }

    pub(crate) fn apply(&self, command: &mut Command) {
        command
            .env("HOME", &self.home)
            .env("TMPDIR", &self.tmp)
            .env("XDG_CACHE_HOME", self.home.join(".cache"))
            .env("XDG_CONFIG_HOME", self.home.join(".config"));
    }
}
