//! `vendor/pip/`: the wheels (and, where a project has none, sdists) that `conda-buildpack
//! vendor` fetched for the pip section. At staging they are pip's only source: every file is
//! inspected as untrusted input first, and the pip section is checked against them, so a
//! requirement that was never vendored fails before conda runs, naming it.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::PipError;
use super::requirements::{Line, Located, normalize};
use crate::io::archive;
use crate::io::digest::hex;

/// The folder under `vendor/` that holds pip's files.
pub(crate) const PIP_DIR: &str = "pip";

#[derive(Debug, Clone)]
pub(crate) struct Distribution {
    pub(crate) path: PathBuf,
    pub(crate) file_name: String,
    /// The project's normalized name, from the file name.
    pub(crate) project: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Wheelhouse {
    pub(crate) dir: PathBuf,
    pub(crate) distributions: Vec<Distribution>,
    /// Every file's name, size and content: part of the cache fingerprint.
    pub(crate) digest: String,
}

/// The project a wheel or sdist file is of: a wheel's name is up to its first `-`; an sdist's
/// up to the `-` before its version (older sdists keep `-` in the name).
pub(crate) fn project_of(file_name: &str) -> Option<String> {
    let lower = file_name.to_ascii_lowercase();
    if lower.ends_with(".whl") {
        return file_name.split('-').next().map(normalize);
    }
    let stem = [".tar.gz", ".tgz", ".zip", ".tar.bz2"]
        .iter()
        .find_map(|suffix| lower.strip_suffix(suffix))?;
    let split = stem
        .char_indices()
        .filter(|(at, c)| {
            *c == '-'
                && stem[at + 1..]
                    .chars()
                    .next()
                    .is_some_and(|next| next.is_ascii_digit())
        })
        .map(|(at, _)| at)
        .next()?;
    Some(normalize(&stem[..split]))
}

/// Finds `vendor/pip/` and fingerprints it. `None` when there is none, or it holds no wheel
/// or sdist: then pip uses its index as on any online foundation.
pub(crate) fn scan(vendor_dir: &Path) -> Result<Option<Wheelhouse>, PipError> {
    let dir = vendor_dir.join(PIP_DIR);
    let metadata = match fs::symlink_metadata(&dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PipError::Io { path: dir, source }),
    };
    if !metadata.is_dir() {
        return Err(PipError::Link { path: dir });
    }
    let mut distributions = Vec::new();
    let entries = fs::read_dir(&dir).map_err(PipError::io(&dir))?;
    for entry in entries {
        let entry = entry.map_err(PipError::io(&dir))?;
        let path = entry.path();
        if !archive::is_python_distribution(&path) {
            continue;
        }
        // pip would follow a link anywhere on the staging machine.
        if !entry.file_type().map_err(PipError::io(&path))?.is_file() {
            return Err(PipError::Link { path });
        }
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(project) = project_of(&file_name) else {
            continue;
        };
        distributions.push(Distribution {
            path,
            file_name,
            project,
        });
    }
    if distributions.is_empty() {
        return Ok(None);
    }
    distributions.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    let mut digest = Sha256::new();
    for distribution in &distributions {
        let path = &distribution.path;
        let file = fs::File::open(path).map_err(PipError::io(path))?;
        let size = file.metadata().map_err(PipError::io(path))?.len();
        let content = crate::io::fsutil::digest_file(&file).map_err(PipError::io(path))?;
        digest.update(distribution.file_name.as_bytes());
        digest.update([0]);
        digest.update(size.to_le_bytes());
        digest.update(content.as_bytes());
    }
    Ok(Some(Wheelhouse {
        dir,
        distributions,
        digest: hex(&digest.finalize()),
    }))
}

impl Wheelhouse {
    /// Inspects every file as pip would unpack it; the first unsafe one fails staging.
    pub(crate) fn check(&self) -> Result<(), PipError> {
        for distribution in &self.distributions {
            archive::inspect_distribution(&distribution.path)?;
        }
        Ok(())
    }

    /// The pip section to install offline from this wheelhouse: where-to-look options go
    /// (`vendor` honoured them), paths are made absolute, and a line that needs the network
    /// or a project that was never vendored fails here, naming it.
    pub(crate) fn offline_lines(&self, lines: &[Located]) -> Result<Vec<String>, PipError> {
        let projects: BTreeSet<&str> = self
            .distributions
            .iter()
            .map(|distribution| distribution.project.as_str())
            .collect();
        let mut out = Vec::new();
        for located in lines {
            match &located.line {
                Line::Direct => {
                    return Err(PipError::DirectOffline {
                        line: located.text.trim().to_string(),
                        origin: located.origin.clone(),
                    });
                }
                Line::Requirement { name } if !projects.contains(name.as_str()) => {
                    return Err(PipError::NotVendored {
                        requirement: located.text.trim().to_string(),
                        origin: located.origin.clone(),
                    });
                }
                Line::Where { option, value } => {
                    // A folder of wheels inside the app works offline; an index does not.
                    let local = matches!(option.as_str(), "-f" | "--find-links")
                        && value.as_deref().is_some_and(|value| !value.contains("://"));
                    if local {
                        out.push(located.anchored());
                    }
                }
                _ => out.push(located.anchored()),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_say_their_project() {
        assert_eq!(
            project_of("Fast_Calc-1.0-cp311-cp311-manylinux2014_x86_64.whl").as_deref(),
            Some("fast-calc")
        );
        assert_eq!(
            project_of("python-dateutil-2.9.0.tar.gz").as_deref(),
            Some("python-dateutil")
        );
        assert_eq!(project_of("notes.txt"), None);
    }
}
