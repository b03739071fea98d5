//! A directory of this fuzzing process for the archive under test (the readers take a path).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("conda-buildpack-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory for the fuzzed archives");
        dir
    })
}
