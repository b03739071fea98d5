//! The walk every archive from the app gets, entry by entry, before anything is unpacked:
//! tars (their GNU and PAX extension headers read here, bounded), the limits on size and
//! entries, and links followed through each other as the kernel would follow them.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use super::ArchiveError;

/// A package may unpack to at most this many times its compressed size (and at least
/// `MIN_UNPACKED_LIMIT`): real packages compress 2-20x, bombs by thousands.
const MAX_EXPANSION: u64 = 100;
const MIN_UNPACKED_LIMIT: u64 = 512 * 1024 * 1024;
pub(super) const MAX_ENTRIES: usize = 1_000_000;
const MAX_INDEX_JSON: u64 = 1024 * 1024;
/// GNU long names and PAX headers are a path or two; real ones are well under this.
const MAX_EXTENSION_HEADER: u64 = 64 * 1024;

pub(super) struct Walk {
    pub(super) file: PathBuf,
    pub(super) limit: u64,
    pub(super) unpacked: u64,
    entries: usize,
    pub(super) seen: HashSet<String>,
    /// Symlink entries: path to target, as written.
    links: HashMap<PathBuf, PathBuf>,
    pub(super) index_json: Option<Vec<u8>>,
    /// A wheel or an sdist rather than a conda package: said so in its errors.
    pub(super) python: bool,
}

impl Walk {
    pub(super) fn new(path: &Path, compressed: u64) -> Self {
        Self {
            file: path.to_path_buf(),
            limit: (compressed.saturating_mul(MAX_EXPANSION)).max(MIN_UNPACKED_LIMIT),
            unpacked: 0,
            entries: 0,
            seen: HashSet::new(),
            links: HashMap::new(),
            index_json: None,
            python: false,
        }
    }

    pub(super) fn io(&self, source: io::Error) -> ArchiveError {
        ArchiveError::Io {
            file: self.file.clone(),
            source,
        }
    }

    pub(super) fn format(&self, reason: impl Into<String>) -> ArchiveError {
        if self.python {
            return ArchiveError::Distribution {
                file: self.file.clone(),
                reason: reason.into(),
            };
        }
        ArchiveError::Format {
            file: self.file.clone(),
            reason: reason.into(),
        }
    }

    /// Walks a tar. Extension headers (GNU long names, PAX records) are read here rather than
    /// by the tar crate, which would read one of any size into memory: a long-name entry of a
    /// gigabyte of zeros is a bomb of a few kilobytes.
    pub(super) fn tar(&mut self, reader: impl Read) -> Result<(), ArchiveError> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(|error| self.io(error))?.raw(true);
        let mut pending = Extensions::default();
        for entry in entries {
            let mut entry =
                entry.map_err(|error| self.format(format!("a broken tar entry: {error}")))?;
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                return Err(self.format(format!("it has more than {MAX_ENTRIES} entries")));
            }
            let entry_type = entry.header().entry_type();
            let size = entry.header().size().map_err(|error| self.io(error))?;
            self.unpacked = self.unpacked.saturating_add(size);
            if self.unpacked > self.limit {
                return Err(ArchiveError::Bomb {
                    file: self.file.clone(),
                    limit: self.limit,
                });
            }
            let recognized =
                entry.header().as_gnu().is_some() || entry.header().as_ustar().is_some();
            let is_extension = recognized
                && (entry_type.is_gnu_longname()
                    || entry_type.is_gnu_longlink()
                    || entry_type.is_pax_local_extensions()
                    || entry_type.is_pax_global_extensions());
            if is_extension {
                if size > MAX_EXTENSION_HEADER {
                    return Err(self.format(format!(
                        "a tar extension header of {size} bytes (at most {MAX_EXTENSION_HEADER} \
                         make sense)"
                    )));
                }
                let mut data = Vec::new();
                (&mut entry)
                    .take(MAX_EXTENSION_HEADER)
                    .read_to_end(&mut data)
                    .map_err(|error| self.io(error))?;
                pending
                    .add(entry_type, data)
                    .map_err(|reason| self.format(reason))?;
                continue;
            }
            let (path_bytes, link_bytes) = pending.take(
                entry.path_bytes().into_owned(),
                entry.link_name_bytes().map(std::borrow::Cow::into_owned),
            );
            let raw = String::from_utf8_lossy(&path_bytes).into_owned();
            let path = entry_path(&raw).ok_or_else(|| ArchiveError::Escape {
                file: self.file.clone(),
                entry: raw.clone(),
            })?;
            let key = path.to_string_lossy().into_owned();
            if !entry_type.is_dir() && !self.seen.insert(key.clone()) {
                return Err(ArchiveError::Duplicate {
                    file: self.file.clone(),
                    entry: key,
                });
            }
            let target = link_bytes
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            let outside = || ArchiveError::LinkOutside {
                file: self.file.clone(),
                entry: key.clone(),
                target: target.clone(),
            };
            // Where the entry lands, through the links unpacked before it, as an extractor
            // would follow them.
            if let Some(parent) = path.parent() {
                if resolve(&self.links, parent).is_err() {
                    return Err(ArchiveError::Escape {
                        file: self.file.clone(),
                        entry: raw,
                    });
                }
            }
            match entry_type {
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::Directory => {}
                tar::EntryType::Symlink => {
                    if target.is_empty() || Path::new(&target).is_absolute() {
                        return Err(outside());
                    }
                    // Checked when the walk ends, against every link of the package: a link is
                    // followed when it is used, after all of them exist.
                    self.links.insert(path.clone(), PathBuf::from(&target));
                }
                tar::EntryType::Link => {
                    let inside = entry_path(&target)
                        .is_some_and(|target| resolve(&self.links, &target).is_ok());
                    if !inside {
                        return Err(outside());
                    }
                }
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
        if pending.is_pending() {
            return Err(self.format("a tar extension header describes no entry"));
        }
        Ok(())
    }

    /// Every symlink, followed through all the others, must land inside the package.
    pub(super) fn check_links(&self) -> Result<(), ArchiveError> {
        let mut links: Vec<_> = self.links.iter().collect();
        links.sort();
        for (path, target) in links {
            match resolve(&self.links, path) {
                Ok(_) => {}
                Err(Unresolved::Loop) => {
                    return Err(self.format(format!("its links form a loop at {}", path.display())));
                }
                Err(Unresolved::Outside) => {
                    return Err(ArchiveError::LinkOutside {
                        file: self.file.clone(),
                        entry: path.to_string_lossy().into_owned(),
                        target: target.to_string_lossy().into_owned(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// GNU long names and PAX records read for the entry that follows them.
#[derive(Default)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_link: Option<Vec<u8>>,
    pax_seen: bool,
}

impl Extensions {
    fn add(&mut self, kind: tar::EntryType, mut data: Vec<u8>) -> Result<(), String> {
        if kind.is_gnu_longname() || kind.is_gnu_longlink() {
            if data.last() == Some(&0) {
                data.pop();
            }
            let slot = if kind.is_gnu_longname() {
                &mut self.long_name
            } else {
                &mut self.long_link
            };
            if slot.replace(data).is_some() {
                return Err("two long names describe one entry".into());
            }
            return Ok(());
        }
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        if std::mem::replace(&mut self.pax_seen, true) {
            return Err("two PAX headers describe one entry".into());
        }
        for extension in tar::PaxExtensions::new(&data) {
            let extension = extension.map_err(|error| format!("a broken PAX record: {error}"))?;
            match extension.key_bytes() {
                b"path" => self.pax_path = Some(extension.value_bytes().to_vec()),
                b"linkpath" => self.pax_link = Some(extension.value_bytes().to_vec()),
                // The tar crate would size the entry from it; no conda package needs it (it is
                // for files over 8 GiB), and honouring it here is not worth the risk.
                b"size" | b"GNU.sparse.size" | b"GNU.sparse.realsize" => {
                    return Err("a PAX size record (files over 8 GiB have no place here)".into());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The entry's path and link target, as the tar crate would give them: a GNU long name
    /// first, then a PAX record, then the header's own.
    fn take(
        &mut self,
        header_path: Vec<u8>,
        header_link: Option<Vec<u8>>,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let path = self
            .long_name
            .take()
            .or_else(|| self.pax_path.take())
            .unwrap_or(header_path);
        let link = self
            .long_link
            .take()
            .or_else(|| self.pax_link.take())
            .or(header_link);
        self.pax_seen = false;
        (path, link)
    }

    fn is_pending(&self) -> bool {
        self.long_name.is_some() || self.long_link.is_some() || self.pax_seen
    }
}

/// An entry's path: relative, with no `..` at all (no conda package has one, and tar
/// extractors skip them), not empty.
pub(super) fn entry_path(raw: &str) -> Option<PathBuf> {
    let mut normalized = PathBuf::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => normalized.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!normalized.as_os_str().is_empty()).then_some(normalized)
}

enum Unresolved {
    Outside,
    Loop,
}

/// Follows `path` through the package's `links` as the kernel would once they are unpacked,
/// and returns where it lands, or why it does not land inside the package.
fn resolve(links: &HashMap<PathBuf, PathBuf>, path: &Path) -> Result<PathBuf, Unresolved> {
    // As the kernel's limit on links followed in one lookup.
    let mut budget = 40_u32;
    resolve_within(links, path, &mut budget)
}

fn resolve_within(
    links: &HashMap<PathBuf, PathBuf>,
    path: &Path,
    budget: &mut u32,
) -> Result<PathBuf, Unresolved> {
    let mut current = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !current.pop() {
                    return Err(Unresolved::Outside);
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(Unresolved::Outside),
            Component::Normal(part) => {
                current.push(part);
                if let Some(target) = links.get(&current) {
                    if *budget == 0 {
                        return Err(Unresolved::Loop);
                    }
                    *budget -= 1;
                    let base = current.parent().map(Path::to_path_buf).unwrap_or_default();
                    current = resolve_within(links, &base.join(target), budget)?;
                }
            }
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::io::archive::inspect;
    use crate::io::archive::tests::{index_json, tar_bz2, tar_bz2_with_index, write};

    #[test]
    fn entry_paths_never_climb() {
        assert_eq!(entry_path("a/./b//c"), Some(PathBuf::from("a/b/c")));
        // Lexically inside, but `..` is never needed and is unsafe through a link.
        assert_eq!(entry_path("a/b/../c"), None);
        assert_eq!(entry_path("/a"), None);
        assert_eq!(entry_path(""), None);
        assert_eq!(entry_path("./"), None);
    }

    #[test]
    fn links_are_followed_through_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let index = format!("file:{}", index_json("evil", "1.0", "0"));
        let refused: Vec<(Vec<(&str, &str)>, &str)> = vec![
            // lib/s is the package root; lib/s/.. is outside, though `lib/s/..` reads as `lib`.
            (
                vec![
                    ("info/index.json", &index),
                    ("lib/s", "symlink:.."),
                    ("lib/t", "symlink:s/.."),
                ],
                "lib/t -> s/..",
            ),
            // The same, with the links in the other order: followed once both exist.
            (
                vec![
                    ("info/index.json", &index),
                    ("lib/t", "symlink:s/.."),
                    ("lib/s", "symlink:.."),
                ],
                "lib/t -> s/..",
            ),
            // A file written through a link that leads out.
            (
                vec![
                    ("info/index.json", &index),
                    ("lib/s", "symlink:.."),
                    ("lib/t", "symlink:s/.."),
                    ("lib/t/escaped", "file:x"),
                ],
                "lib/t/escaped",
            ),
            // A hard link to a file reached through a link that leads out.
            (
                vec![
                    ("info/index.json", &index),
                    ("lib/s", "symlink:.."),
                    ("lib/t", "symlink:s/.."),
                    ("lib/hard", "hardlink:lib/t/etc/passwd"),
                ],
                "lib/hard",
            ),
            (
                vec![
                    ("info/index.json", &index),
                    ("a", "symlink:b"),
                    ("b", "symlink:a"),
                ],
                "loop",
            ),
        ];
        for (entries, expected) in refused {
            let path = write(dir.path(), "evil-1.0-0.tar.bz2", &tar_bz2(&entries));
            let error = inspect(&path).unwrap_err().to_string();
            assert!(error.contains(expected), "{entries:?}: {error}");
        }
        // Links that stay inside, even through other links, are what real packages have.
        let index = format!("file:{}", index_json("fine", "1.0", "0"));
        let fine = tar_bz2(&[
            ("info/index.json", &index),
            ("lib/libz.so.1.3", "file:elf"),
            ("lib/libz.so.1", "symlink:libz.so.1.3"),
            ("lib/libz.so", "symlink:libz.so.1"),
            ("lib64", "symlink:lib"),
            ("bin/z", "symlink:../lib64/libz.so"),
        ]);
        let path = write(dir.path(), "fine-1.0-0.tar.bz2", &fine);
        inspect(&path).unwrap();
    }

    #[test]
    fn a_long_name_bomb_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let index = index_json("bomb", "1", "0");
        let mut builder = tar_bz2_with_index(&index);
        // A GNU long-name header that claims 100 MiB: the tar crate alone would read it all
        // into memory before giving back the entry it names.
        let mut long = tar::Header::new_gnu();
        long.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        long.set_entry_type(tar::EntryType::GNULongName);
        long.set_size(100 * 1024 * 1024);
        long.set_cksum();
        builder.append(&long, io::empty()).unwrap();
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        let path = write(dir.path(), "bomb-1-0.tar.bz2", &bytes);
        let error = inspect(&path).unwrap_err().to_string();
        assert!(
            error.contains("a tar extension header of 104857600 bytes"),
            "{error}"
        );
    }

    #[test]
    fn long_names_and_pax_paths_are_checked_like_short_ones() {
        let dir = tempfile::tempdir().unwrap();
        let index = index_json("long", "1", "0");
        for escape in ["gnu", "pax"] {
            let mut builder = tar_bz2_with_index(&index);
            let hostile = format!("{}/../../../../etc/cron.d/x", "d".repeat(150));
            if escape == "gnu" {
                let mut long = tar::Header::new_gnu();
                long.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
                long.set_entry_type(tar::EntryType::GNULongName);
                long.set_size(hostile.len() as u64 + 1);
                long.set_cksum();
                builder
                    .append(&long, format!("{hostile}\0").as_bytes())
                    .unwrap();
            } else {
                builder
                    .append_pax_extensions([("path", hostile.as_bytes())])
                    .unwrap();
            }
            let mut file = tar::Header::new_gnu();
            file.as_gnu_mut().unwrap().name[..5].copy_from_slice(b"short");
            file.set_size(1);
            file.set_cksum();
            builder.append(&file, &b"x"[..]).unwrap();
            let bytes = builder.into_inner().unwrap().finish().unwrap();
            let path = write(dir.path(), "long-1-0.tar.bz2", &bytes);
            let error = inspect(&path).unwrap_err().to_string();
            assert!(
                error.contains("escapes the package") && error.contains("etc/cron.d/x"),
                "{escape}: {error}"
            );
        }
    }
}
