//! File-system moves the buildpack makes many times: atomic writes, and trees restored or
//! saved by hard links where the source and target share a file system (a copy where not).

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` so that a reader sees the old file or the new one, never half:
/// a temporary sibling, flushed to disk, renamed over.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let parent = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(parent)?;
    let temporary = parent.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// Removes a file or a tree if it exists; a missing path is not an error.
pub(crate) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// How a tree was reproduced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TreeCopy {
    pub(crate) files: u64,
    pub(crate) bytes: u64,
    pub(crate) linked: u64,
    pub(crate) copied: u64,
}

/// Reproduces `source` at `target` (which must not exist): directories with their modes,
/// symlinks as symlinks, regular files hard-linked when `prefer_links` and the file system
/// allows it, copied otherwise (different file system, link limit, or links refused).
pub(crate) fn reproduce_tree(
    source: &Path,
    target: &Path,
    prefer_links: bool,
) -> io::Result<TreeCopy> {
    let mut stats = TreeCopy::default();
    let mut links_work = prefer_links;
    let root_metadata = fs::symlink_metadata(source)?;
    fs::create_dir(target)?;
    let mut pending: Vec<(PathBuf, PathBuf, u32)> = vec![(
        source.to_path_buf(),
        target.to_path_buf(),
        root_metadata.mode(),
    )];
    let mut directories = Vec::new();
    while let Some((from_dir, to_dir, mode)) = pending.pop() {
        directories.push((to_dir.clone(), mode));
        for entry in fs::read_dir(&from_dir)? {
            let entry = entry?;
            let from = entry.path();
            let to = to_dir.join(entry.file_name());
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                let metadata = entry.metadata()?;
                fs::create_dir(&to)?;
                pending.push((from, to, metadata.mode()));
            } else if file_type.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
            } else if file_type.is_file() {
                stats.files += 1;
                let metadata = entry.metadata()?;
                stats.bytes += metadata.len();
                if links_work {
                    match fs::hard_link(&from, &to) {
                        Ok(()) => {
                            stats.linked += 1;
                            continue;
                        }
                        // Across file systems, past the link limit, or where links are
                        // refused: fall back to copying for the rest of the tree.
                        Err(error) if is_link_refusal(&error) => links_work = false,
                        Err(error) => return Err(error),
                    }
                }
                copy_file_preserving(&from, &to, &metadata)?;
                stats.copied += 1;
            }
            // Sockets, fifos and devices have no place in an environment: skipped.
        }
    }
    // Modes last, so a read-only directory does not stop its own filling.
    for (directory, mode) in directories.into_iter().rev() {
        fs::set_permissions(&directory, fs::Permissions::from_mode(mode & 0o7777))?;
    }
    Ok(stats)
}

fn is_link_refusal(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EXDEV | libc::EMLINK | libc::EPERM | libc::EACCES | libc::ENOTSUP)
    )
}

/// Copies a file keeping its mode and modification time (the cache's integrity record
/// compares both).
pub(crate) fn copy_file_preserving(
    from: &Path,
    to: &Path,
    metadata: &fs::Metadata,
) -> io::Result<()> {
    fs::copy(from, to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(metadata.mode() & 0o7777))?;
    let modified = metadata.modified()?;
    let file = fs::File::options().write(true).open(to)?;
    file.set_modified(modified)?;
    Ok(())
}

/// Bytes of the regular files in a tree, each inode counted once: what the tree costs on
/// disk and in a droplet.
pub(crate) fn tree_size(root: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let entries = match fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                pending.push(entry.path());
            } else if file_type.is_file() {
                let metadata = entry.metadata()?;
                if seen.insert((metadata.dev(), metadata.ino())) {
                    total += metadata.len();
                }
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn sample_tree(root: &Path) {
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::create_dir_all(root.join("lib/python3.11")).unwrap();
        fs::write(root.join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("lib/python3.11/os.py"), vec![b'x'; 1000]).unwrap();
        symlink("tool", root.join("bin/alias")).unwrap();
    }

    #[test]
    fn trees_are_reproduced_with_links_modes_and_symlinks() {
        let scratch = tempfile::tempdir().unwrap();
        let source = scratch.path().join("source");
        sample_tree(&source);
        let target = scratch.path().join("target");
        let stats = reproduce_tree(&source, &target, true).unwrap();
        assert_eq!(stats.files, 2);
        assert_eq!(stats.linked, 2);
        assert_eq!(
            fs::read_link(target.join("bin/alias")).unwrap(),
            Path::new("tool")
        );
        let mode = fs::metadata(target.join("bin/tool")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs::metadata(target.join("bin/tool")).unwrap().ino(),
            fs::metadata(source.join("bin/tool")).unwrap().ino()
        );
        // Shared inodes count once.
        assert_eq!(tree_size(scratch.path()).unwrap(), 1000 + 18);
    }

    #[test]
    fn copies_keep_mode_and_mtime() {
        let scratch = tempfile::tempdir().unwrap();
        let source = scratch.path().join("source");
        sample_tree(&source);
        let target = scratch.path().join("target");
        let stats = reproduce_tree(&source, &target, false).unwrap();
        assert_eq!(stats.copied, 2);
        let before = fs::metadata(source.join("bin/tool")).unwrap();
        let after = fs::metadata(target.join("bin/tool")).unwrap();
        assert_ne!(before.ino(), after.ino());
        assert_eq!(before.modified().unwrap(), after.modified().unwrap());
        assert_eq!(after.mode() & 0o777, 0o755);
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("deep/file.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }
}
