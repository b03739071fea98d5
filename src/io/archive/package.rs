//! Conda packages (`.tar.bz2`, and `.conda`: a zip of `metadata.json` and zstd tars): every
//! entry walked as untrusted input, and `info/index.json` read and checked against the file
//! name.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;

use rattler_conda_types::package::{CondaArchiveIdentifier, IndexJson, PackageFile};

use super::ArchiveError;
use super::walk::Walk;

/// A package's identity and metadata, read from inside it.
#[derive(Debug, Clone)]
pub(crate) struct PackageIndex {
    pub(crate) index: IndexJson,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    TarBz2,
    Conda,
}

fn kind_of(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".tar.bz2") {
        Some(Kind::TarBz2)
    } else if name.ends_with(".conda") {
        Some(Kind::Conda)
    } else {
        None
    }
}

pub(crate) fn is_package_file(path: &Path) -> bool {
    kind_of(path).is_some()
}

/// Walks every entry of the package at `path`, refusing anything unsafe, and returns its
/// `info/index.json`, checked against the file name.
pub(crate) fn inspect(path: &Path) -> Result<PackageIndex, ArchiveError> {
    let io_error = |source| ArchiveError::Io {
        file: path.to_path_buf(),
        source,
    };
    let Some(kind) = kind_of(path) else {
        return Err(ArchiveError::Format {
            file: path.to_path_buf(),
            reason: "the name ends in neither .tar.bz2 nor .conda".into(),
        });
    };
    let compressed = fs::metadata(path).map_err(io_error)?.len();
    let mut walk = Walk::new(path, compressed);
    let file = fs::File::open(path).map_err(io_error)?;
    match kind {
        Kind::TarBz2 => walk.tar(bzip2::read::BzDecoder::new(io::BufReader::new(file)))?,
        Kind::Conda => walk.conda(file)?,
    }
    walk.finish()
}

/// [`inspect`] for the uncompressed tar of a `.tar.bz2` named `path`, held in memory: what
/// the fuzz target drives, free of bzip2's cost per input.
pub(crate) fn inspect_tar(path: &Path, tar: &[u8]) -> Result<PackageIndex, ArchiveError> {
    let mut walk = Walk::new(path, tar.len() as u64);
    walk.tar(tar)?;
    walk.finish()
}

impl Walk {
    /// A `.conda` is a zip of `metadata.json`, `info-<dist>.tar.zst` and `pkg-<dist>.tar.zst`.
    fn conda(&mut self, file: fs::File) -> Result<(), ArchiveError> {
        let mut zip = zip::ZipArchive::new(io::BufReader::new(file))
            .map_err(|error| self.format(error.to_string()))?;
        if zip.len() > 16 {
            return Err(self.format(format!(
                "the zip has {} entries; a .conda has three",
                zip.len()
            )));
        }
        let mut names = HashSet::new();
        for position in 0..zip.len() {
            let entry = zip
                .by_index(position)
                .map_err(|error| self.format(error.to_string()))?;
            let name = entry.name().to_string();
            if name.contains('/') || name.contains('\\') || name.starts_with('.') {
                return Err(ArchiveError::Escape {
                    file: self.file.clone(),
                    entry: name,
                });
            }
            if !names.insert(name.clone()) {
                return Err(ArchiveError::Duplicate {
                    file: self.file.clone(),
                    entry: name,
                });
            }
            let is_tar = name.ends_with(".tar.zst")
                && (name.starts_with("info-") || name.starts_with("pkg-"));
            if is_tar {
                let decoder =
                    zstd::stream::read::Decoder::new(entry).map_err(|error| self.io(error))?;
                self.tar(decoder)?;
            } else if name != "metadata.json" {
                return Err(self.format(format!("unexpected entry {name}")));
            }
        }
        if !names.iter().any(|name| name.starts_with("info-")) {
            return Err(self.format("it has no info-*.tar.zst"));
        }
        Ok(())
    }

    /// The checks that need the whole walk: the links, and info/index.json against the name.
    fn finish(self) -> Result<PackageIndex, ArchiveError> {
        self.check_links()?;
        finish_index(&self.file, self.index_json)
    }
}

fn finish_index(path: &Path, index_json: Option<Vec<u8>>) -> Result<PackageIndex, ArchiveError> {
    let Some(bytes) = index_json else {
        return Err(ArchiveError::Format {
            file: path.to_path_buf(),
            reason: "it has no info/index.json".into(),
        });
    };
    let index = parse_index_json(path, bytes)?;
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    let named = CondaArchiveIdentifier::try_from_filename(file_name)
        .map(|archive| archive.identifier)
        .ok_or_else(|| ArchiveError::Format {
            file: path.to_path_buf(),
            reason: "the file name is not name-version-build".into(),
        })?;
    let indexed = format!(
        "{}-{}-{}",
        index.name.as_normalized(),
        index.version,
        index.build
    );
    let named_text = format!("{}-{}-{}", named.name, named.version, named.build_string);
    if named_text != indexed {
        return Err(ArchiveError::NameMismatch {
            file: path.to_path_buf(),
            named: named_text,
            indexed,
        });
    }
    Ok(PackageIndex { index })
}

/// A package's `info/index.json`, as read from inside the archive at `path`.
pub(crate) fn parse_index_json(path: &Path, bytes: Vec<u8>) -> Result<IndexJson, ArchiveError> {
    let text = String::from_utf8(bytes).map_err(|_| ArchiveError::Format {
        file: path.to_path_buf(),
        reason: "info/index.json is not UTF-8".into(),
    })?;
    IndexJson::from_str(&text).map_err(|error| ArchiveError::Format {
        file: path.to_path_buf(),
        reason: format!("info/index.json is invalid: {error}"),
    })
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::io::archive::tests::{index_json, tar_bz2, tar_bz2_with_index, write};

    #[test]
    fn a_sound_package_yields_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let index = index_json("six", "1.16.0", "pyhd3eb1b0_1");
        let bytes = tar_bz2(&[
            ("info/index.json", &format!("file:{index}")),
            ("lib/python3.11/site-packages/six.py", "file:x = 1\n"),
            ("bin", "dir"),
            (
                "bin/alias",
                "symlink:../lib/python3.11/site-packages/six.py",
            ),
            ("bin/hard", "hardlink:lib/python3.11/site-packages/six.py"),
        ]);
        let path = write(dir.path(), "six-1.16.0-pyhd3eb1b0_1.tar.bz2", &bytes);
        let package = inspect(&path).unwrap();
        assert_eq!(package.index.name.as_normalized(), "six");
    }

    #[test]
    fn hostile_entries_are_refused_naming_the_file_and_entry() {
        let dir = tempfile::tempdir().unwrap();
        let index = format!("file:{}", index_json("evil", "1.0", "0"));
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (
                vec![
                    ("info/index.json", &index),
                    ("../../etc/cron.d/x", "file:boom"),
                ],
                "escapes",
            ),
            (
                vec![("info/index.json", &index), ("/etc/passwd", "file:root")],
                "escapes",
            ),
            (
                vec![
                    ("info/index.json", &index),
                    ("lib/link", "symlink:../../../etc/shadow"),
                ],
                "points outside",
            ),
            (
                vec![
                    ("info/index.json", &index),
                    ("lib/link", "symlink:/etc/shadow"),
                ],
                "points outside",
            ),
            (
                vec![
                    ("info/index.json", &index),
                    ("lib/hard", "hardlink:../../etc/shadow"),
                ],
                "points outside",
            ),
            (
                vec![("info/index.json", &index), ("dev/null", "chardev")],
                "device or special",
            ),
            (
                vec![("info/index.json", &index), ("pipe", "fifo")],
                "device or special",
            ),
            (
                vec![
                    ("info/index.json", &index),
                    ("a.py", "file:1"),
                    ("a.py", "file:2"),
                ],
                "twice",
            ),
            (vec![("lib/a.py", "file:1")], "no info/index.json"),
        ];
        for (entries, expected) in cases {
            let path = write(dir.path(), "evil-1.0-0.tar.bz2", &tar_bz2(&entries));
            let error = inspect(&path).unwrap_err().to_string();
            assert!(error.contains(expected), "{entries:?}: {error}");
            assert!(
                error.contains("evil-1.0-0.tar.bz2"),
                "names the file: {error}"
            );
        }
    }

    #[test]
    fn an_index_that_disagrees_with_the_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = tar_bz2(&[(
            "info/index.json",
            &format!("file:{}", index_json("numpy", "1.26.4", "py311_0")),
        )]);
        let path = write(dir.path(), "scipy-1.11.0-py311_0.tar.bz2", &bytes);
        let error = inspect(&path).unwrap_err().to_string();
        assert!(
            error.contains(
                "is named scipy-1.11.0-py311_0, but its info/index.json says numpy-1.26.4-py311_0"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_it_is_unpacked() {
        let dir = tempfile::tempdir().unwrap();
        // A tar whose header claims far more than the limit: refused from the header alone.
        let mut builder = tar_bz2_with_index(&index_json("bomb", "1", "0"));
        let mut big = tar::Header::new_gnu();
        big.set_path("zeros").unwrap();
        big.set_size(600 * 1024 * 1024);
        big.set_cksum();
        // The data never follows: the walker must refuse on the header's word alone.
        builder.append(&big, io::empty()).unwrap();
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        let path = write(dir.path(), "bomb-1-0.tar.bz2", &bytes);
        let started = std::time::Instant::now();
        let error = inspect(&path).unwrap_err().to_string();
        assert!(error.contains("decompression bomb"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
