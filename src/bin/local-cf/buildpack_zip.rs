//! Buildpack zips, unpacked as Cloud Foundry unpacks admin buildpacks: the stored Unix modes
//! are applied (a zip made without them leaves `bin/*` non-executable, as on CF), symlinks
//! are kept, and `bin/` may sit at the root or under one top folder. Entries that would land
//! outside the buildpack's directory are refused instead of written.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::errors::LifecycleError;
use super::files::local_io;

const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
/// A buildpack zip is at most 1 GB (Cloud Foundry's upload limit) and holds compressed
/// installers: more than this unpacked is not a buildpack.
const MAX_UNPACKED: u64 = 2 * 1024 * 1024 * 1024;
/// Past this size, an entry that unpacks to more than `MAX_RATIO` times its stored size is a
/// bomb: real files compress far less, and installers hardly at all.
const BOMB_THRESHOLD: u64 = 64 * 1024 * 1024;
const MAX_RATIO: u64 = 200;
/// The staging container's umask: a zip storing 0777 yields 0755, as on CF.
const UMASK: u32 = 0o022;

/// One buildpack of a staging, unpacked.
#[derive(Debug)]
pub(crate) struct Buildpack {
    /// The name CF's builder knows the buildpack by: here the zip's file name.
    pub(crate) key: String,
    /// Where the zip was unpacked: `<root>/buildpacks/<md5 of key>`.
    pub(crate) dir: PathBuf,
}

impl Buildpack {
    /// The directory holding `bin/`: the unpacked directory itself or, for a zip of a folder,
    /// its single entry. `None` is CF's "malformed buildpack does not contain a /bin dir".
    pub(crate) fn root(&self) -> Option<PathBuf> {
        if self.dir.join("bin").exists() {
            return Some(self.dir.clone());
        }
        let mut entries = fs::read_dir(&self.dir).ok()?;
        let only = entries.next()?.ok()?.path();
        if entries.next().is_some() {
            return None;
        }
        only.join("bin").exists().then_some(only)
    }
}

/// Unpacks `zip` into the empty directory `target`.
pub(crate) fn unpack(zip: &Path, target: &Path) -> Result<(), LifecycleError> {
    let file = File::open(zip).map_err(|source| LifecycleError::BuildpackZipUnreadable {
        zip: zip.to_path_buf(),
        source,
    })?;
    let corrupt = |source| LifecycleError::BuildpackZipCorrupt {
        zip: zip.to_path_buf(),
        source,
    };
    let mut archive = zip::ZipArchive::new(file).map_err(corrupt)?;
    check_sizes(zip, &mut archive)?;
    // The zip crate keeps one entry per name (the last), so a name stored twice is only seen
    // in the central directory itself.
    if let Some(entry) = duplicate_name(zip).map_err(local_io("read", zip))? {
        return Err(LifecycleError::ZipEntryDuplicate {
            zip: zip.to_path_buf(),
            entry,
        });
    }
    let mut names = std::collections::HashSet::new();
    let mut links = Vec::new();
    // Directory modes are applied last: a read-only directory stored early must not stop
    // the files below it from being written.
    let mut directory_modes = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(corrupt)?;
        let name = entry.name().to_owned();
        let relative =
            safe_relative_path(&name).ok_or_else(|| LifecycleError::ZipEntryOutsideTarget {
                zip: zip.to_path_buf(),
                entry: name.clone(),
            })?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        // Names that differ only in spelling (`bin/supply`, `./bin//supply`) land on the
        // same file: a duplicate too.
        if !names.insert(relative.clone()) && !entry.is_dir() {
            return Err(LifecycleError::ZipEntryDuplicate {
                zip: zip.to_path_buf(),
                entry: name,
            });
        }
        let destination = target.join(&relative);
        prepare_parents(target, &relative).map_err(|error| match error {
            ParentError::Symlink => LifecycleError::ZipEntryThroughSymlink {
                zip: zip.to_path_buf(),
                entry: name.clone(),
            },
            ParentError::Io(source) => LifecycleError::LocalIo {
                what: "create the directory for",
                path: destination.clone(),
                source,
            },
        })?;
        let stored_mode = entry.unix_mode().filter(|mode| *mode != 0);
        let file_type = stored_mode.map_or(0, |mode| mode & S_IFMT);
        let write_error = local_io("unpack the buildpack file", &destination);
        if !matches!(file_type, 0 | S_IFLNK | S_IFDIR | S_IFREG) {
            return Err(LifecycleError::ZipEntrySpecial {
                zip: zip.to_path_buf(),
                entry: name,
            });
        }
        if file_type == S_IFLNK {
            let mut link_target = String::new();
            io::Read::read_to_string(&mut io::Read::take(&mut entry, 4096), &mut link_target)
                .map_err(|source| LifecycleError::BuildpackZipCorrupt {
                    zip: zip.to_path_buf(),
                    source: source.into(),
                })?;
            // CF keeps symlinks; one that leaves the buildpack's directory would have a
            // buildpack script (or this unpacking) read or write the staging container's
            // files instead of the buildpack's.
            if !link_stays_inside(&relative, &link_target) {
                return Err(LifecycleError::ZipEntryLinkOutside {
                    zip: zip.to_path_buf(),
                    entry: name,
                    target: link_target,
                });
            }
            remove_existing_non_directory(&destination).map_err(write_error)?;
            std::os::unix::fs::symlink(&link_target, &destination)
                .map_err(local_io("create the symlink", &destination))?;
            links.push((name.clone(), destination.clone(), link_target));
        } else if entry.is_dir() || file_type == S_IFDIR {
            if !destination.is_dir() {
                fs::create_dir(&destination).map_err(write_error)?;
            }
            let mode = stored_mode.map_or(0o755, |mode| mode & 0o777 & !UMASK);
            directory_modes.push((destination, mode));
        } else {
            remove_existing_non_directory(&destination).map_err(write_error)?;
            // Without stored modes Go's zip reader reports 0666, which the umask makes 0644:
            // scripts are then not executable, exactly the failure CF shows.
            let mode = stored_mode.map_or(0o644, |mode| mode & 0o777 & !UMASK);
            let declared = entry.size();
            // Never more than the central directory announced, whatever the stream holds.
            let mut limited = io::Read::take(&mut entry, declared);
            write_file(&mut limited, &destination, mode).map_err(|source| {
                // A read error here means a damaged member; anything else is local.
                if source.kind() == io::ErrorKind::InvalidData {
                    LifecycleError::BuildpackZipCorrupt {
                        zip: zip.to_path_buf(),
                        source: source.into(),
                    }
                } else {
                    LifecycleError::LocalIo {
                        what: "unpack the buildpack file",
                        path: destination.clone(),
                        source,
                    }
                }
            })?;
        }
    }
    // Each link is inside on its own; followed through the others (`a -> ..` inside a
    // folder, then `b -> a/..`) one could still lead out. The file system knows.
    let root = fs::canonicalize(target).map_err(local_io("resolve", target))?;
    for (name, link, link_target) in links {
        if fs::canonicalize(&link).is_ok_and(|resolved| !resolved.starts_with(&root)) {
            return Err(LifecycleError::ZipEntryLinkOutside {
                zip: zip.to_path_buf(),
                entry: name,
                target: link_target,
            });
        }
    }
    for (directory, mode) in directory_modes.into_iter().rev() {
        fs::set_permissions(&directory, fs::Permissions::from_mode(mode))
            .map_err(local_io("set the mode of", &directory))?;
    }
    Ok(())
}

/// Refuses a zip whose entries announce more than a buildpack could hold, before anything
/// is written: a few kilobytes of zip must not fill the staging disk.
fn check_sizes(zip: &Path, archive: &mut zip::ZipArchive<File>) -> Result<(), LifecycleError> {
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry =
            archive
                .by_index_raw(index)
                .map_err(|source| LifecycleError::BuildpackZipCorrupt {
                    zip: zip.to_path_buf(),
                    source,
                })?;
        let size = entry.size();
        total = total.saturating_add(size);
        let bomb = size > BOMB_THRESHOLD && size / entry.compressed_size().max(1) > MAX_RATIO;
        if bomb || total > MAX_UNPACKED {
            return Err(LifecycleError::ZipBomb {
                zip: zip.to_path_buf(),
                entry: entry.name().to_owned(),
                size,
            });
        }
    }
    Ok(())
}

/// The first name the zip's central directory lists twice. Zip64 archives (over 4 GiB,
/// which no buildpack is) are not read.
fn duplicate_name(zip: &Path) -> io::Result<Option<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(zip)?;
    let length = file.metadata()?.len();
    // The end record is 22 bytes plus a comment of at most 64 KiB.
    let tail_length = length.min(22 + 65_535);
    file.seek(SeekFrom::Start(length - tail_length))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let Some(end) = tail.windows(4).rposition(|window| window == b"PK\x05\x06") else {
        return Ok(None);
    };
    let field = |bytes: &[u8], at: usize, width: usize| -> Option<u64> {
        let slice = bytes.get(at..at + width)?;
        Some(
            slice
                .iter()
                .rev()
                .fold(0, |value, byte| value << 8 | u64::from(*byte)),
        )
    };
    let (Some(size), Some(offset)) = (field(&tail, end + 12, 4), field(&tail, end + 16, 4)) else {
        return Ok(None);
    };
    if offset == 0xFFFF_FFFF || size == 0xFFFF_FFFF || offset + size > length {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut directory = vec![0; usize::try_from(size).unwrap_or(0)];
    file.read_exact(&mut directory)?;
    let mut names = std::collections::HashSet::new();
    let mut at = 0;
    while directory.get(at..at + 4) == Some(b"PK\x01\x02") {
        let (Some(name_length), Some(extra), Some(comment)) = (
            field(&directory, at + 28, 2),
            field(&directory, at + 30, 2),
            field(&directory, at + 32, 2),
        ) else {
            break;
        };
        let name_length = usize::try_from(name_length).unwrap_or(0);
        let Some(name) = directory.get(at + 46..at + 46 + name_length) else {
            break;
        };
        let name = String::from_utf8_lossy(name).into_owned();
        if !name.ends_with('/') && !names.insert(name.clone()) {
            return Ok(Some(name));
        }
        at += 46 + name_length + usize::try_from(extra + comment).unwrap_or(0);
    }
    Ok(None)
}

/// Whether a symlink stored at `relative` with `target` resolves inside the buildpack's
/// directory, judged lexically (a later link is refused by `prepare_parents` anyway).
fn link_stays_inside(relative: &Path, target: &str) -> bool {
    if target.starts_with('/') || target.contains('\0') {
        return false;
    }
    let mut depth: usize = relative.components().count().saturating_sub(1);
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    true
}

/// The entry's path below the target, or `None` when it would escape (absolute or `..`).
/// An empty path means the entry names the target itself (`./`).
pub(crate) fn safe_relative_path(name: &str) -> Option<PathBuf> {
    if name.starts_with('/') || name.contains('\0') {
        return None;
    }
    let mut path = PathBuf::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            normal => path.push(normal),
        }
    }
    Some(path)
}

enum ParentError {
    Symlink,
    Io(io::Error),
}

/// Creates the missing parents of `relative` below `target`, refusing to go through a
/// symlink an earlier entry created (a zip could otherwise write anywhere through one).
fn prepare_parents(target: &Path, relative: &Path) -> Result<(), ParentError> {
    let mut current = target.to_path_buf();
    let Some(parent) = relative.parent() else {
        return Ok(());
    };
    for component in parent.components() {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_symlink() => return Err(ParentError::Symlink),
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(ParentError::Io(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file of the zip has the name of a directory of the zip",
                )));
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&current).map_err(ParentError::Io)?;
            }
            Err(error) => return Err(ParentError::Io(error)),
        }
    }
    Ok(())
}

/// A later entry with the same name replaces the earlier one, never writes through it.
fn remove_existing_non_directory(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if !metadata.is_dir() => fs::remove_file(path),
        _ => Ok(()),
    }
}

fn write_file(reader: &mut impl io::Read, destination: &Path, mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(mode)
        .open(destination)?;
    io::copy(reader, &mut file)?;
    // `mode()` on open is filtered by the process umask, which may be stricter than CF's.
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_below_the_target_are_accepted() {
        assert_eq!(
            safe_relative_path("bin/supply"),
            Some(PathBuf::from("bin/supply"))
        );
        assert_eq!(safe_relative_path("./bin/"), Some(PathBuf::from("bin")));
        assert_eq!(
            safe_relative_path("top/./bin//x"),
            Some(PathBuf::from("top/bin/x"))
        );
        assert_eq!(safe_relative_path("./"), Some(PathBuf::new()));
        // A backslash is an ordinary character on Linux, as for CF's extractor.
        assert_eq!(safe_relative_path("..\\x"), Some(PathBuf::from("..\\x")));
    }

    #[test]
    fn links_must_stay_in_the_buildpack() {
        assert!(link_stays_inside(Path::new("bin/run"), "../lib/run.sh"));
        assert!(link_stays_inside(Path::new("top/bin/run"), "../../top/x"));
        assert!(!link_stays_inside(Path::new("bin/run"), "../../etc/passwd"));
        assert!(!link_stays_inside(Path::new("lib"), "/etc"));
        assert!(!link_stays_inside(Path::new("lib"), ".."));
    }

    #[test]
    fn entries_escaping_the_target_are_refused() {
        assert_eq!(safe_relative_path("../evil"), None);
        assert_eq!(safe_relative_path("bin/../../evil"), None);
        assert_eq!(safe_relative_path("/etc/passwd"), None);
    }
}
