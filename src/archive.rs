//! Reading conda packages (`.tar.bz2`, and `.conda`: a zip of zstd tars) as untrusted input.
//!
//! Vendored packages come from the app, so before conda sees one the buildpack walks every
//! entry: paths that escape or are absolute, links that point outside the package, hard links
//! to nowhere, device files, duplicates and decompression bombs are refused, naming the file
//! and the entry. The walk also yields `info/index.json`, which must agree with the file name.

use std::collections::{HashMap, HashSet};
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
/// GNU long names and PAX headers are a path or two; real ones are well under this.
const MAX_EXTENSION_HEADER: u64 = 64 * 1024;

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
    #[error("{file} is not a usable wheel or sdist: {reason}")]
    Distribution { file: PathBuf, reason: String },
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

/// Whether `path` is named like a wheel or an sdist pip can install.
pub(crate) fn is_python_distribution(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    [".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// Walks every entry of a wheel or an sdist, refusing what pip must never be handed: entries
/// that escape, links (a wheel has none; an sdist's stay inside it), special files, bombs,
/// and a wheel without its `.dist-info/WHEEL`.
pub(crate) fn inspect_distribution(path: &Path) -> Result<(), ArchiveError> {
    let io_error = |source| ArchiveError::Io {
        file: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let compressed = fs::metadata(path).map_err(io_error)?.len();
    let mut walk = Walk::new(path, compressed);
    walk.python = true;
    let file = fs::File::open(path).map_err(io_error)?;
    let reader = io::BufReader::new(file);
    if name.ends_with(".whl") || name.ends_with(".zip") {
        walk.zip(reader, name.ends_with(".whl"))
    } else if name.ends_with(".tar.bz2") {
        walk.tar(bzip2::read::BzDecoder::new(reader))?;
        walk.check_links()
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        walk.tar(flate2::read::GzDecoder::new(reader))?;
        walk.check_links()
    } else {
        Err(walk.format("pip installs .whl, .tar.gz and .zip files"))
    }
}

impl Walk {
    /// A wheel, or an sdist zipped: pip unpacks every entry where its name says.
    fn zip(&mut self, reader: impl Read + io::Seek, wheel: bool) -> Result<(), ArchiveError> {
        const S_IFMT: u32 = 0o170_000;
        const S_IFREG: u32 = 0o100_000;
        const S_IFDIR: u32 = 0o040_000;
        const S_IFLNK: u32 = 0o120_000;
        let mut zip =
            zip::ZipArchive::new(reader).map_err(|error| self.format(error.to_string()))?;
        if zip.len() > MAX_ENTRIES {
            return Err(self.format(format!("it has more than {MAX_ENTRIES} entries")));
        }
        let mut has_wheel_file = false;
        for position in 0..zip.len() {
            let mut entry = zip
                .by_index(position)
                .map_err(|error| self.format(error.to_string()))?;
            let name = entry.name().to_string();
            if name.contains('\\') || entry.enclosed_name().is_none() || entry_path(&name).is_none()
            {
                return Err(ArchiveError::Escape {
                    file: self.file.clone(),
                    entry: name,
                });
            }
            if !name.ends_with('/') && !self.seen.insert(name.clone()) {
                return Err(ArchiveError::Duplicate {
                    file: self.file.clone(),
                    entry: name,
                });
            }
            self.unpacked = self.unpacked.saturating_add(entry.size());
            if self.unpacked > self.limit {
                return Err(ArchiveError::Bomb {
                    file: self.file.clone(),
                    limit: self.limit,
                });
            }
            match entry.unix_mode().map(|mode| mode & S_IFMT) {
                None | Some(0 | S_IFREG | S_IFDIR) => {}
                Some(S_IFLNK) => {
                    let mut target = String::new();
                    let _ = (&mut entry).take(4096).read_to_string(&mut target);
                    return Err(ArchiveError::LinkOutside {
                        file: self.file.clone(),
                        entry: name,
                        target,
                    });
                }
                Some(_) => {
                    return Err(ArchiveError::SpecialFile {
                        file: self.file.clone(),
                        entry: name,
                    });
                }
            }
            let mut parts = name.split('/');
            if let (Some(top), Some("WHEEL"), None) = (parts.next(), parts.next(), parts.next()) {
                has_wheel_file |= top.ends_with(".dist-info");
            }
        }
        if wheel && !has_wheel_file {
            return Err(self.format("it has no .dist-info/WHEEL, so it is not a wheel"));
        }
        Ok(())
    }
}

impl Walk {
    fn new(path: &Path, compressed: u64) -> Self {
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

struct Walk {
    file: PathBuf,
    limit: u64,
    unpacked: u64,
    entries: usize,
    seen: HashSet<String>,
    /// Symlink entries: path to target, as written.
    links: HashMap<PathBuf, PathBuf>,
    index_json: Option<Vec<u8>>,
    /// A wheel or an sdist rather than a conda package: said so in its errors.
    python: bool,
}

impl Walk {
    fn io(&self, source: io::Error) -> ArchiveError {
        ArchiveError::Io {
            file: self.file.clone(),
            source,
        }
    }

    fn format(&self, reason: impl Into<String>) -> ArchiveError {
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

    /// Walks a tar. Extension headers (GNU long names, PAX records) are read here rather than
    /// by the tar crate, which would read one of any size into memory: a long-name entry of a
    /// gigabyte of zeros is a bomb of a few kilobytes.
    fn tar(&mut self, reader: impl Read) -> Result<(), ArchiveError> {
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
    fn check_links(&self) -> Result<(), ArchiveError> {
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
fn entry_path(raw: &str) -> Option<PathBuf> {
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
        let mut builder = tar::Builder::new(bzip2::write::BzEncoder::new(
            Vec::new(),
            bzip2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_path("info/index.json").unwrap();
        header.set_size(index.len() as u64);
        header.set_cksum();
        builder.append(&header, index.as_bytes()).unwrap();
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
            let mut builder = tar::Builder::new(bzip2::write::BzEncoder::new(
                Vec::new(),
                bzip2::Compression::fast(),
            ));
            let mut header = tar::Header::new_gnu();
            header.set_path("info/index.json").unwrap();
            header.set_size(index.len() as u64);
            header.set_cksum();
            builder.append(&header, index.as_bytes()).unwrap();
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

    fn wheel_with(
        dir: &Path,
        name: &str,
        build: impl FnOnce(&mut zip::ZipWriter<fs::File>),
    ) -> PathBuf {
        use std::io::Write as _;
        let path = dir.join(name);
        let mut writer = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        writer.start_file("ok/__init__.py", options).unwrap();
        writer.write_all(b"X = 1\n").unwrap();
        writer
            .start_file("ok-1.0.dist-info/WHEEL", options)
            .unwrap();
        writer.write_all(b"Wheel-Version: 1.0\n").unwrap();
        build(&mut writer);
        writer.finish().unwrap();
        path
    }

    #[test]
    fn a_vendored_wheel_is_untrusted_input() {
        let dir = tempfile::tempdir().unwrap();
        let options = zip::write::SimpleFileOptions::default();
        let good = wheel_with(dir.path(), "ok-1.0-py3-none-any.whl", |_| {});
        inspect_distribution(&good).unwrap();

        for (name, entry) in [
            ("escape", "../../home/vcap/.profile"),
            ("absolute", "/etc/profile.d/x.sh"),
        ] {
            let path = wheel_with(
                dir.path(),
                &format!("{name}-1.0-py3-none-any.whl"),
                |writer| {
                    writer.start_file(entry, options).unwrap();
                },
            );
            let error = inspect_distribution(&path).unwrap_err();
            assert!(
                matches!(error, ArchiveError::Escape { .. }),
                "{entry}: {error}"
            );
        }
        let link = wheel_with(dir.path(), "link-1.0-py3-none-any.whl", |writer| {
            writer
                .add_symlink("ok/data", "/etc/passwd", options)
                .unwrap();
        });
        let error = inspect_distribution(&link).unwrap_err().to_string();
        assert!(
            error.contains("a link that points outside the package: ok/data -> /etc/passwd"),
            "{error}"
        );

        let bare = dir.path().join("bare-1.0-py3-none-any.whl");
        let mut writer = zip::ZipWriter::new(fs::File::create(&bare).unwrap());
        writer.start_file("bare.py", options).unwrap();
        writer.finish().unwrap();
        let error = inspect_distribution(&bare).unwrap_err().to_string();
        assert!(
            error.contains("is not a usable wheel or sdist: it has no .dist-info/WHEEL"),
            "{error}"
        );

        fs::write(dir.path().join("junk-1.0-py3-none-any.whl"), b"not a zip").unwrap();
        let error = inspect_distribution(&dir.path().join("junk-1.0-py3-none-any.whl"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("is not a usable wheel or sdist"), "{error}");
    }

    #[test]
    fn a_vendored_sdist_is_walked_like_a_package() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evil-1.0.tar.gz");
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder
            .append_link(&mut header, "evil-1.0/setup.py", "../../../../etc/passwd")
            .unwrap();
        builder.into_inner().unwrap().finish().unwrap();
        let error = inspect_distribution(&path).unwrap_err().to_string();
        assert!(
            error.contains("a link that points outside the package"),
            "{error}"
        );
    }
}
