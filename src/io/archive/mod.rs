//! Reading archives that come from the app, as untrusted input: conda packages
//! (`.tar.bz2`, and `.conda`: a zip of zstd tars) in `package.rs`, and the wheels and sdists
//! of `vendor/pip` in `distribution.rs`.
//!
//! Before conda or pip sees one, the buildpack walks every entry (`walk.rs`, shared by both):
//! paths that escape or are absolute, links that point outside the archive, hard links to
//! nowhere, device files, duplicates and decompression bombs are refused, naming the file and
//! the entry. The walk of a conda package also yields `info/index.json`, which must agree
//! with the file name.

use std::io;
use std::path::PathBuf;

mod distribution;
mod package;
mod walk;

pub(crate) use distribution::{inspect_distribution, is_python_distribution};
pub(crate) use package::{inspect, inspect_tar, is_package_file, parse_index_json};

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

/// Archives written entry by entry for the tests, hostile ones included.
#[cfg(test)]
pub(crate) mod tests {
    use std::fs;
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};

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

    /// A `.tar.bz2` being built whose first entry is `info/index.json` holding `index`: the
    /// start of a package a test goes on to make hostile entry by entry.
    pub(crate) fn tar_bz2_with_index(
        index: &str,
    ) -> tar::Builder<bzip2::write::BzEncoder<Vec<u8>>> {
        let mut builder = tar::Builder::new(bzip2::write::BzEncoder::new(
            Vec::new(),
            bzip2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_path("info/index.json").unwrap();
        header.set_size(index.len() as u64);
        header.set_cksum();
        builder.append(&header, index.as_bytes()).unwrap();
        builder
    }

    pub(crate) fn index_json(name: &str, version: &str, build: &str) -> String {
        format!(
            r#"{{"name": "{name}", "version": "{version}", "build": "{build}", "build_number": 0, "depends": [], "subdir": "linux-64", "license": "MIT"}}"#
        )
    }

    pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        fs::File::create(&path).unwrap().write_all(bytes).unwrap();
        path
    }
}
