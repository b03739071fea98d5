//! Vendored conda packages, for foundations with no route to a channel.
//!
//! At staging, an app's `vendor/` folder (any subfolder layout) is scanned on every push (its
//! digest is part of the cache fingerprint) and, when the environment must be built, every
//! archive is inspected as untrusted input and indexed into a local `file://` channel, with
//! `repodata.json` the buildpack writes itself: the user never runs `conda index`.
//!
//! On the developer's machine, `conda-buildpack vendor APP_DIR` (`tools::vendor`) fills `vendor/`
//! with exactly the packages the environment needs, from its lockfile or from a solve by the
//! developer's own conda.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use md5::Md5;
use rattler_conda_types::PackageRecord;
use sha2::{Digest, Sha256};

use crate::io::archive::{self, ArchiveError};
use crate::io::digest::hex;
use crate::staging::environment::LocalChannel;

/// The platform staging installs for; `noarch` packages fit any.
const SUBDIRS: [&str; 2] = ["linux-64", "noarch"];

#[derive(Debug, thiserror::Error)]
pub(crate) enum VendorError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{file} is built for {subdir}; Cloud Foundry stages for linux-64 (or noarch)")]
    WrongPlatform { file: String, subdir: String },
    #[error("vendor/ holds two different files named {file}: {first} and {second}")]
    Conflict {
        file: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("vendor/ has {path}, a link; vendored packages must be regular files")]
    Link { path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> VendorError + '_ {
    move |source| VendorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One archive found in `vendor/`.
#[derive(Debug, Clone)]
pub(crate) struct Archive {
    pub(crate) path: PathBuf,
    pub(crate) file_name: String,
    pub(crate) size: u64,
    pub(crate) sha256: String,
    pub(crate) md5: String,
}

/// What `vendor/` holds, and a digest of it for the cache fingerprint.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    pub(crate) archives: Vec<Archive>,
    pub(crate) digest: String,
}

/// Finds every conda archive under `vendor_dir` and hashes it (sha256 and md5 in one read).
/// `None` when it holds none: a `vendor/` of something else is not a vendored conda app.
pub(crate) fn scan(vendor_dir: &Path) -> Result<Option<Scan>, VendorError> {
    let mut archives = Vec::new();
    let mut pending = vec![vendor_dir.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in fs::read_dir(&directory).map_err(at(&directory))? {
            let entry = entry.map_err(at(&directory))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(at(&path))?;
            if file_type.is_dir() {
                // pip's wheels and sdists have their own folder (`pip::wheelhouse`).
                if directory == vendor_dir && entry.file_name() == "pip" {
                    continue;
                }
                pending.push(path);
            } else if archive::is_package_file(&path) {
                // A link could point anywhere on the staging machine; only regular files
                // pushed with the app are packages.
                if !file_type.is_file() {
                    return Err(VendorError::Link { path });
                }
                archives.push(hash_archive(&path)?);
            }
        }
    }
    if archives.is_empty() {
        return Ok(None);
    }
    archives.sort_by(|a, b| a.path.cmp(&b.path));
    let mut digest = Sha256::new();
    for archive in &archives {
        let relative = archive
            .path
            .strip_prefix(vendor_dir)
            .unwrap_or(&archive.path);
        digest.update(relative.to_string_lossy().as_bytes());
        digest.update([0]);
        digest.update(archive.size.to_le_bytes());
        digest.update(archive.sha256.as_bytes());
    }
    Ok(Some(Scan {
        archives,
        digest: hex(&digest.finalize()),
    }))
}

pub(crate) fn hash_archive(path: &Path) -> Result<Archive, VendorError> {
    let mut file = fs::File::open(path).map_err(at(path))?;
    let mut sha256 = Sha256::new();
    let mut md5 = Md5::new();
    let mut size = 0_u64;
    let mut buffer = vec![0_u8; 256 * 1024];
    loop {
        let read = file.read(&mut buffer).map_err(at(path))?;
        if read == 0 {
            break;
        }
        sha256.update(&buffer[..read]);
        md5.update(&buffer[..read]);
        size += read as u64;
    }
    Ok(Archive {
        path: path.to_path_buf(),
        file_name: path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size,
        sha256: hex(&sha256.finalize()),
        md5: hex(&md5.finalize()),
    })
}

/// repodata.json's `packages` (`.tar.bz2`) or `packages.conda` table.
type Records = serde_json::Map<String, serde_json::Value>;

/// Inspects every archive and writes a `file://` channel of them under `work`.
pub(crate) fn index(scan: &Scan, work: &Path) -> Result<LocalChannel, VendorError> {
    let channel = work.join("vendor-channel");
    crate::io::fsutil::remove_if_exists(&channel).map_err(at(&channel))?;
    let mut repodata: BTreeMap<&str, (Records, Records)> = SUBDIRS
        .iter()
        .map(|subdir| (*subdir, Default::default()))
        .collect();
    let mut placed: BTreeMap<String, &Archive> = BTreeMap::new();
    let mut files = BTreeMap::new();
    for archive in &scan.archives {
        if let Some(first) = placed.get(&archive.file_name) {
            if first.sha256 == archive.sha256 {
                continue;
            }
            return Err(VendorError::Conflict {
                file: archive.file_name.clone(),
                first: first.path.clone(),
                second: archive.path.clone(),
            });
        }
        let package = archive::inspect(&archive.path)?;
        let subdir = package.index.subdir.clone().unwrap_or_else(|| {
            if package.index.noarch.is_none() {
                "linux-64".into()
            } else {
                "noarch".into()
            }
        });
        let Some((tar_bz2, conda)) = repodata.get_mut(subdir.as_str()) else {
            return Err(VendorError::WrongPlatform {
                file: archive.file_name.clone(),
                subdir,
            });
        };
        let sha256 =
            rattler_digest::parse_digest_from_hex::<rattler_digest::Sha256>(&archive.sha256);
        let md5 = rattler_digest::parse_digest_from_hex::<rattler_digest::Md5>(&archive.md5);
        let record = PackageRecord::from_index_json(package.index, Some(archive.size), sha256, md5)
            .map_err(|error| {
                VendorError::Archive(ArchiveError::Format {
                    file: archive.path.clone(),
                    reason: error.to_string(),
                })
            })?;
        let value = serde_json::to_value(&record).map_err(|error| VendorError::Io {
            path: archive.path.clone(),
            source: io::Error::other(error),
        })?;
        let target_dir = channel.join(&subdir);
        fs::create_dir_all(&target_dir).map_err(at(&target_dir))?;
        let target = target_dir.join(&archive.file_name);
        if fs::hard_link(&archive.path, &target).is_err() {
            fs::copy(&archive.path, &target).map_err(at(&target))?;
        }
        let table = if archive.file_name.ends_with(".conda") {
            conda
        } else {
            tar_bz2
        };
        table.insert(archive.file_name.clone(), value);
        files.insert(
            archive.file_name.clone(),
            format!("file://{}", target.display()),
        );
        placed.insert(archive.file_name.clone(), archive);
    }
    for (subdir, (tar_bz2, conda)) in repodata {
        let directory = channel.join(subdir);
        fs::create_dir_all(&directory).map_err(at(&directory))?;
        let document = serde_json::json!({
            "info": {"subdir": subdir},
            "packages": tar_bz2,
            "packages.conda": conda,
            "repodata_version": 1,
        });
        let path = directory.join("repodata.json");
        fs::write(
            &path,
            serde_json::to_vec_pretty(&document).unwrap_or_default(),
        )
        .map_err(at(&path))?;
    }
    Ok(LocalChannel {
        url: format!("file://{}", channel.display()),
        files,
    })
}

/// Where `vendor` records the stacks it chose packages for, so that a staging on another
/// stack can say so. Not a package: the staging-side scan passes it by.
pub(crate) const STACKS_FILE: &str = "stacks.txt";

/// The stacks `vendor` chose the app's packages for, from vendor/stacks.txt; `None` for a
/// vendor/ filled by hand or by an older buildpack.
pub(crate) fn vendored_for(vendor_dir: &Path) -> Option<Vec<String>> {
    let text = fs::read_to_string(vendor_dir.join(STACKS_FILE)).ok()?;
    Some(
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_string)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::archive::tests::{index_json, tar_bz2};

    #[test]
    fn vendor_is_indexed_into_a_channel_with_checksummed_records() {
        let dir = tempfile::tempdir().unwrap();
        let vendor = dir.path().join("vendor/deep/er");
        fs::create_dir_all(&vendor).unwrap();
        let bytes = tar_bz2(&[(
            "info/index.json",
            &format!("file:{}", index_json("six", "1.16.0", "py_0")),
        )]);
        fs::write(vendor.join("six-1.16.0-py_0.tar.bz2"), &bytes).unwrap();
        fs::write(vendor.join("README"), "not a package").unwrap();
        let scan = scan(&dir.path().join("vendor")).unwrap().unwrap();
        assert_eq!(scan.archives.len(), 1);
        let channel = index(&scan, &dir.path().join("work")).unwrap();
        let repodata: serde_json::Value = serde_json::from_slice(
            &fs::read(
                dir.path()
                    .join("work/vendor-channel/linux-64/repodata.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let record = &repodata["packages"]["six-1.16.0-py_0.tar.bz2"];
        assert_eq!(record["name"], "six");
        assert_eq!(record["sha256"], scan.archives[0].sha256.as_str());
        assert_eq!(record["md5"], scan.archives[0].md5.as_str());
        assert_eq!(record["size"], bytes.len());
        assert!(
            dir.path()
                .join("work/vendor-channel/noarch/repodata.json")
                .is_file()
        );
        assert!(channel.url.starts_with("file:///"));
        assert!(
            channel.files["six-1.16.0-py_0.tar.bz2"].ends_with("linux-64/six-1.16.0-py_0.tar.bz2")
        );
    }

    #[test]
    fn a_vendor_dir_without_packages_is_not_vendoring() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "x").unwrap();
        assert!(scan(dir.path()).unwrap().is_none());
    }

    #[test]
    fn links_and_foreign_platforms_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("evil-1-0.tar.bz2")).unwrap();
        assert!(matches!(scan(dir.path()), Err(VendorError::Link { .. })));
        let dir = tempfile::tempdir().unwrap();
        let mac = index_json("mac", "1", "0").replace("linux-64", "osx-64");
        fs::write(
            dir.path().join("mac-1-0.tar.bz2"),
            tar_bz2(&[("info/index.json", &format!("file:{mac}"))]),
        )
        .unwrap();
        let scan = scan(dir.path()).unwrap().unwrap();
        let error = index(&scan, &dir.path().join("work"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("mac-1-0.tar.bz2 is built for osx-64"),
            "{error}"
        );
    }
}
