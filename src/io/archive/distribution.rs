//! The wheels and sdists of `vendor/pip`, walked as untrusted input before pip is handed
//! one: tarred sdists through the same walk as conda packages, zips (wheels, zipped sdists)
//! entry by entry.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use super::ArchiveError;
use super::walk::{MAX_ENTRIES, Walk, entry_path};

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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

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
