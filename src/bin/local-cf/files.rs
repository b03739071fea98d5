//! File-system chores of the local lifecycle: copying the app as `cf push` uploads it
//! (symlinks stay symlinks, modes and hard links survive), removing trees a buildpack may have
//! made read-only, and the random names CF's builder uses.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::cfignore::CfIgnore;
use super::errors::LifecycleError;

/// Shorthand for the local I/O error of one path.
pub(crate) fn local_io(
    what: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> LifecycleError + use<> {
    let path = path.to_path_buf();
    move |source| LifecycleError::LocalIo { what, path, source }
}

/// Lower-case hex MD5, as CF's builder names buildpack and cache directories.
pub(crate) fn md5_hex(text: &str) -> String {
    use std::fmt::Write as _;
    Md5::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(32), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// A string of random decimal digits, like the suffix Go's `os.MkdirTemp` appends.
pub(crate) fn random_digits() -> String {
    let mut bytes = [0_u8; 8];
    let seeded = fs::File::open("/dev/urandom").and_then(|mut file| file.read_exact(&mut bytes));
    let number = if seeded.is_ok() {
        u64::from_ne_bytes(bytes)
    } else {
        // No /dev/urandom (a very bare chroot): time and pid still make collisions unlikely,
        // and callers retry on a name that exists.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        #[allow(clippy::cast_possible_truncation)] // only the low bits matter for a name
        let low = nanos as u64;
        low ^ u64::from(std::process::id()).rotate_left(32)
    };
    (number % 10_000_000_000).to_string()
}

/// Creates a new directory `parent/prefix<random digits>`, retrying on the rare collision.
pub(crate) fn create_unique_dir(parent: &Path, prefix: &str) -> io::Result<PathBuf> {
    let mut last_error = None;
    for _ in 0..16 {
        let candidate = parent.join(format!("{prefix}{}", random_digits()));
        match fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no unique directory name found")))
}

/// Copies the app directory the way the app package reaches CF: regular files with their
/// modes, symlinks as symlinks (never followed), hard links as hard links. `skip` lists paths
/// inside `source` that must not be copied (the output or cache directory of an earlier
/// staging, when the user keeps them inside the app). Sockets, fifos and devices cannot be
/// in an app package and are left out.
pub(crate) fn copy_tree(
    source: &Path,
    target: &Path,
    skip: &[PathBuf],
    ignore: &CfIgnore,
) -> io::Result<()> {
    let mut copied_inodes = HashMap::new();
    let walk = Walk {
        root: source,
        skip,
        ignore,
    };
    fs::create_dir_all(target)?;
    walk.copy_dir_contents(source, target, &mut copied_inodes)?;
    let mode = fs::metadata(source)?.permissions().mode();
    fs::set_permissions(target, fs::Permissions::from_mode(mode & 0o7777))
}

struct Walk<'a> {
    root: &'a Path,
    skip: &'a [PathBuf],
    ignore: &'a CfIgnore,
}

impl Walk<'_> {
    fn copy_dir_contents(
        &self,
        source: &Path,
        target: &Path,
        copied_inodes: &mut HashMap<(u64, u64), PathBuf>,
    ) -> io::Result<()> {
        let mut entries = fs::read_dir(source)?.collect::<io::Result<Vec<_>>>()?;
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let from = entry.path();
            if self.skip.iter().any(|skipped| skipped == &from) {
                continue;
            }
            let to = target.join(entry.file_name());
            let metadata = fs::symlink_metadata(&from)?;
            let file_type = metadata.file_type();
            let relative = from.strip_prefix(self.root).unwrap_or(&from);
            if self.ignore.is_ignored(relative, file_type.is_dir()) {
                continue;
            }
            if file_type.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
            } else if file_type.is_dir() {
                fs::create_dir(&to)?;
                self.copy_dir_contents(&from, &to, copied_inodes)?;
                fs::set_permissions(&to, fs::Permissions::from_mode(metadata.mode() & 0o7777))?;
            } else if file_type.is_file() {
                let inode = (metadata.dev(), metadata.ino());
                if metadata.nlink() > 1 {
                    if let Some(first) = copied_inodes.get(&inode) {
                        fs::hard_link(first, &to)?;
                        continue;
                    }
                    copied_inodes.insert(inode, to.clone());
                }
                fs::copy(&from, &to)?;
                fs::set_permissions(&to, fs::Permissions::from_mode(metadata.mode() & 0o7777))?;
            }
        }
        Ok(())
    }
}

/// Hands a tree to `uid` (and the group of the same number), links included, as Diego's
/// downloads are owned by vcap.
pub(crate) fn chown_tree(path: &Path, uid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid)?;
        }
    }
    Ok(())
}

/// Diego's round trip of the build artifacts cache: between stagings it is a tgz that is
/// uploaded, downloaded and unpacked again. What arrives is every file as a new copy with the
/// time of unpacking, hard links become separate files, modes pass a 022 umask and the owner
/// is vcap. Copying with those rules gives the buildpack exactly what it would find.
pub(crate) fn copy_through_tgz(source: &Path, target: &Path, uid: u32) -> io::Result<()> {
    let metadata = fs::symlink_metadata(source)?;
    let mode = metadata.mode() & 0o7777 & !0o022;
    let file_type = metadata.file_type();
    if file_type.is_dir() {
        fs::create_dir(target)?;
        for entry in fs::read_dir(source)? {
            let entry = entry?;
            copy_through_tgz(&entry.path(), &target.join(entry.file_name()), uid)?;
        }
        fs::set_permissions(target, fs::Permissions::from_mode(mode))?;
    } else if file_type.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(source)?, target)?;
    } else if file_type.is_file() {
        // A plain byte copy: `fs::copy` might reflink, which a download never is.
        io::copy(&mut fs::File::open(source)?, &mut fs::File::create(target)?)?;
        fs::set_permissions(target, fs::Permissions::from_mode(mode))?;
    } else {
        return Ok(());
    }
    std::os::unix::fs::lchown(target, Some(uid), Some(uid))
}

/// Replaces the contents of `dir` with the tgz the builder wrote, as Diego keeps it for the
/// next staging. Nothing of the old contents survives. `dir` itself stays (it may be a mount
/// point, as a test's small disk is).
pub(crate) fn replace_with_tgz(tgz: &Path, dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if fs::symlink_metadata(&path)?.is_dir() {
            remove_tree(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    let file = io::BufReader::new(fs::File::open(tgz)?);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_permissions(true);
    archive.unpack(dir)
}

/// Removes a tree even where a buildpack left directories without write permission, which
/// `remove_dir_all` alone cannot empty when not running as root.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_writable(path);
            fs::remove_dir_all(path)
        }
    }
}

fn make_writable(path: &Path) {
    let Ok(metadata) = fs::symlink_metadata(path) else {
        return;
    };
    if !metadata.is_dir() {
        return;
    }
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(metadata.mode() | 0o700));
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            make_writable(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_cf_directory_names() {
        // CF's builder tests expect `buildpacks/70d137ae...` for the key "nested-buildpack".
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            md5_hex("nested-buildpack"),
            "70d137ae4ee01fbe39058ccdebf48460"
        );
    }

    #[test]
    fn random_digits_are_digits() {
        let digits = random_digits();
        assert!(!digits.is_empty());
        assert!(digits.chars().all(|c| c.is_ascii_digit()));
    }
}
