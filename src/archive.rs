//! Reading conda packages (`.tar.bz2`, and `.conda`: a zip of zstd tars) as untrusted input.
//!
//! Vendored packages come from the app, so before conda sees one the buildpack walks every
//! entry: paths that escape or are absolute, links that point outside the package, hard links
//! to nowhere, device files, duplicates and decompression bombs are refused, naming the file
//! and the entry. The walk also yields `info/index.json`, which must agree with the file name.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use rattler_conda_types::package::{CondaArchiveIdentifier, IndexJson, PackageFile};

/// A package may unpack to at most this many times its compressed size (and at least
/// `MIN_UNPACKED_LIMIT`): real packages compress 2-20x, bombs by thousands.
const MAX_EXPANSION: u64 = 100;
const MIN_UNPACKED_LIMIT: u64 = 512 * 1024 * 1024;
const MAX_ENTRIES: usize = 1_000_000;
const MAX_INDEX_JSON: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ArchiveError {
    #[error("{file}: {source}")]
    Io { file: PathBuf, source: io::Error },
    #[error("{file} is not a conda package: {reason}")]
    Format { file: PathBuf, reason: String },
    #[error("{file} has an entry that escapes the package: {entry}")]
    Escape { file: PathBuf, entry: String },
    #[error("{file} has a link that points outside the package: {entry} -> {target}")]
    LinkOutside {
        file: PathBuf,
        entry: String,
        target: String,
    },
    #[error("{file} has a device or special file: {entry}")]
    SpecialFile { file: PathBuf, entry: String },
    #[error("{file} has the entry {entry} twice")]
    Duplicate { file: PathBuf, entry: String },
    #[error("{file} unpacks to more than {limit} bytes (a decompression bomb?)")]
    Bomb { file: PathBuf, limit: u64 },
    #[error("{file} is named {named}, but its info/index.json says {indexed}")]
    NameMismatch {
        file: PathBuf,
        named: String,
        indexed: String,
    },
}

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
    let mut walk = Walk {
        file: path.to_path_buf(),
        limit: (compressed.saturating_mul(MAX_EXPANSION)).max(MIN_UNPACKED_LIMIT),
        unpacked: 0,
        entries: 0,
        seen: HashSet::new(),
        index_json: None,
    };
    let file = fs::File::open(path).map_err(io_error)?;
    match kind {
        Kind::TarBz2 => walk.tar(bzip2::read::BzDecoder::new(io::BufReader::new(file)))?,
        Kind::Conda => walk.conda(file)?,
    }
    let Some(bytes) = walk.index_json else {
        return Err(ArchiveError::Format {
            file: path.to_path_buf(),
            reason: "it has no info/index.json".into(),
        });
    };
    let text = String::from_utf8(bytes).map_err(|_| ArchiveError::Format {
        file: path.to_path_buf(),
        reason: "info/index.json is not UTF-8".into(),
    })?;
    let index = IndexJson::from_str(&text).map_err(|error| ArchiveError::Format {
        file: path.to_path_buf(),
        reason: format!("info/index.json is invalid: {error}"),
    })?;
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

struct Walk {
    file: PathBuf,
    limit: u64,
    unpacked: u64,
    entries: usize,
    seen: HashSet<String>,
    index_json: Option<Vec<u8>>,
}

impl Walk {
    fn io(&self, source: io::Error) -> ArchiveError {
        ArchiveError::Io {
            file: self.file.clone(),
            source,
        }
    }

    fn format(&self, reason: impl Into<String>) -> ArchiveError {
        ArchiveError::Format {
            file: self.file.clone(),
            reason: reason.into(),
        }
    }

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

    fn tar(&mut self, reader: impl Read) -> Result<(), ArchiveError> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(|error| self.io(error))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|error| self.format(format!("a broken tar entry: {error}")))?;
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                return Err(self.format(format!("it has more than {MAX_ENTRIES} entries")));
            }
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = safe_relative(&raw).ok_or_else(|| ArchiveError::Escape {
                file: self.file.clone(),
                entry: raw.clone(),
            })?;
            let entry_type = entry.header().entry_type();
            let size = entry.header().size().map_err(|error| self.io(error))?;
            self.unpacked = self.unpacked.saturating_add(size);
            if self.unpacked > self.limit {
                return Err(ArchiveError::Bomb {
                    file: self.file.clone(),
                    limit: self.limit,
                });
            }
            let key = path.to_string_lossy().into_owned();
            if !entry_type.is_dir() && !self.seen.insert(key.clone()) {
                return Err(ArchiveError::Duplicate {
                    file: self.file.clone(),
                    entry: key,
                });
            }
            match entry_type {
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::Directory => {}
                tar::EntryType::Symlink => {
                    let target = link_target(&entry);
                    let parent = path.parent().unwrap_or_else(|| Path::new(""));
                    if Path::new(&target).is_absolute()
                        || safe_relative(&parent.join(&target).to_string_lossy()).is_none()
                    {
                        return Err(ArchiveError::LinkOutside {
                            file: self.file.clone(),
                            entry: key,
                            target,
                        });
                    }
                }
                tar::EntryType::Link => {
                    let target = link_target(&entry);
                    if Path::new(&target).is_absolute() || safe_relative(&target).is_none() {
                        return Err(ArchiveError::LinkOutside {
                            file: self.file.clone(),
                            entry: key,
                            target,
                        });
                    }
                }
                // PAX and GNU extension headers are consumed by the tar crate itself.
                tar::EntryType::XHeader
                | tar::EntryType::XGlobalHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink => {}
                _ => {
                    return Err(ArchiveError::SpecialFile {
                        file: self.file.clone(),
                        entry: key,
                    });
                }
            }
            if key == "info/index.json" {
                if size > MAX_INDEX_JSON {
                    return Err(self.format("info/index.json is implausibly large"));
                }
                let mut bytes = Vec::new();
                (&mut entry)
                    .take(MAX_INDEX_JSON)
                    .read_to_end(&mut bytes)
                    .map_err(|error| self.io(error))?;
                self.index_json = Some(bytes);
            }
        }
        Ok(())
    }
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>) -> String {
    entry
        .link_name_bytes()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// The path if it stays inside the package: relative, no `..` that climbs out, not empty.
pub(crate) fn safe_relative(raw: &str) -> Option<PathBuf> {
    let path = Path::new(raw);
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => normalized.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !normalized.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!normalized.as_os_str().is_empty()).then_some(normalized)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Builds a `.tar.bz2` from (path, kind) entries; kind: `file:<content>`, `dir`,
    /// `symlink:<target>`, `hardlink:<target>`, `fifo`.
    pub(crate) fn tar_bz2(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(bzip2::write::BzEncoder::new(
            Vec::new(),
            bzip2::Compression::fast(),
        ));
        for (path, kind) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_mtime(0);
            // set_path refuses `..` and absolute paths; hostile archives need raw names.
            let name = header.as_old_mut().name.as_mut();
            name.fill(0);
            name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(content) = kind.strip_prefix("file:") {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(content.len() as u64);
                header.set_cksum();
                builder.append(&header, content.as_bytes()).unwrap();
                continue;
            }
            header.set_size(0);
            if *kind == "dir" {
                header.set_entry_type(tar::EntryType::Directory);
            } else if let Some(target) = kind.strip_prefix("symlink:") {
                header.set_entry_type(tar::EntryType::Symlink);
                header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
            } else if let Some(target) = kind.strip_prefix("hardlink:") {
                header.set_entry_type(tar::EntryType::Link);
                header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
            } else if *kind == "fifo" {
                header.set_entry_type(tar::EntryType::Fifo);
            } else if *kind == "chardev" {
                header.set_entry_type(tar::EntryType::Char);
            }
            header.set_cksum();
            builder.append(&header, io::empty()).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    pub(crate) fn index_json(name: &str, version: &str, build: &str) -> String {
        format!(
            r#"{{"name": "{name}", "version": "{version}", "build": "{build}", "build_number": 0, "depends": [], "subdir": "linux-64", "license": "MIT"}}"#
        )
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        fs::File::create(&path).unwrap().write_all(bytes).unwrap();
        path
    }

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
        let mut builder = tar::Builder::new(bzip2::write::BzEncoder::new(
            Vec::new(),
            bzip2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_path("info/index.json").unwrap();
        let index = index_json("bomb", "1", "0");
        header.set_size(index.len() as u64);
        header.set_cksum();
        builder.append(&header, index.as_bytes()).unwrap();
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

    #[test]
    fn safe_paths_stay_inside() {
        assert_eq!(safe_relative("a/./b/../c"), Some(PathBuf::from("a/c")));
        assert_eq!(safe_relative("a/../../b"), None);
        assert_eq!(safe_relative("/a"), None);
        assert_eq!(safe_relative(""), None);
    }
}
