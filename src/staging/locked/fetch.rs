//! Getting every locked package, checked against the lock: downloaded (several at a time,
//! through the operator's mirror) or found in `vendor/`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use super::{LockedError, Mismatch};
use crate::io::download::{self, Checksum, DownloadError, Progress};
use crate::staging::app::lockfile::{CondaPackage, Hash, Lock};
use crate::staging::vendored;

/// Downloads at once: a channel serves many small packages, and one at a time would leave
/// the staging waiting on round trips.
const PARALLEL_DOWNLOADS: usize = 6;

/// A locked package's URL with the operator's mirror applied: `CONDA_CHANNEL_ALIAS` replaces
/// `https://conda.anaconda.org` (where `conda-forge`, `bioconda`... live), and
/// `CONDA_DEFAULT_CHANNELS` replaces `https://repo.anaconda.com/pkgs/<name>` by its entry of
/// the same name, as conda maps those channels.
pub(crate) fn mirrored(url: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    if !matches!(scheme, "http" | "https") {
        return url.to_string();
    }
    if let Some(path) = rest.strip_prefix("conda.anaconda.org/") {
        if let Some(alias) = lookup("CONDA_CHANNEL_ALIAS").filter(|alias| !alias.trim().is_empty())
        {
            return format!("{}/{path}", alias.trim().trim_end_matches('/'));
        }
    }
    if let Some(path) = rest.strip_prefix("repo.anaconda.com/pkgs/") {
        let (name, tail) = path.split_once('/').unwrap_or((path, ""));
        if let Some(defaults) = lookup("CONDA_DEFAULT_CHANNELS") {
            let replacement = defaults
                .split(',')
                .map(|entry| entry.trim().trim_end_matches('/'))
                .find(|entry| entry.rsplit('/').next() == Some(name));
            if let Some(replacement) = replacement {
                return format!("{replacement}/{tail}");
            }
        }
    }
    url.to_string()
}

fn checksum(package: &CondaPackage) -> Checksum<'_> {
    match &package.hash {
        Some(Hash::Sha256(sha256)) => Checksum::Sha256(sha256),
        Some(Hash::Md5(md5)) => Checksum::Md5(md5),
        None => Checksum::Unchecked,
    }
}

/// Where each locked package is, as the `file://` URL conda installs it from, by file name.
pub(crate) struct Fetched {
    pub(crate) files: BTreeMap<String, String>,
    /// How many came over the network (the rest were vendored).
    pub(crate) downloaded: usize,
    pub(crate) bytes: u64,
}

/// The locked packages from `vendor/`, each checked against the lock.
pub(crate) fn from_vendor(
    lock: &Lock,
    scan: &vendored::Scan,
    channel: &crate::staging::environment::LocalChannel,
) -> Result<Fetched, LockedError> {
    let mut files = BTreeMap::new();
    let mut bytes = 0;
    for package in &lock.conda {
        let (Some(archive), Some(url)) = (
            scan.archives
                .iter()
                .find(|archive| archive.file_name == package.file_name),
            channel.files.get(&package.file_name),
        ) else {
            return Err(LockedError::NotVendored {
                file: lock.file_name.clone(),
                package: package.file_name.clone(),
            });
        };
        let (algorithm, expected, actual) = match &package.hash {
            Some(Hash::Sha256(expected)) => ("sha256", expected, &archive.sha256),
            Some(Hash::Md5(expected)) => ("md5", expected, &archive.md5),
            None => ("sha256", &archive.sha256, &archive.sha256),
        };
        if !expected.eq_ignore_ascii_case(actual) {
            return Err(LockedError::Mismatch(Box::new(Mismatch {
                file: lock.file_name.clone(),
                package: package.file_name.clone(),
                url: format!("vendor/{}/{}", package.subdir, package.file_name),
                algorithm,
                expected: expected.clone(),
                actual: actual.clone(),
            })));
        }
        bytes += archive.size;
        files.insert(package.file_name.clone(), url.clone());
    }
    Ok(Fetched {
        files,
        downloaded: 0,
        bytes,
    })
}

/// Downloads every package of `packages` into `dir`, checking each against the lock, several
/// at a time. A mismatch deletes the file and names the package.
pub(crate) fn download(
    lock: &Lock,
    packages: &[&CondaPackage],
    dir: &Path,
    resolve: &(dyn Fn(&str) -> String + Sync),
) -> Result<Fetched, LockedError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let fetch_one = |package: &CondaPackage| -> Result<(String, u64), LockedError> {
        let target = dir.join(&package.subdir).join(&package.file_name);
        let url = resolve(&package.url);
        let result = match url.strip_prefix("file://") {
            Some(local) => copy_checked(Path::new(local), &target, checksum(package), &url),
            None => download::fetch_checked(&url, checksum(package), &target, Progress::Quiet)
                .map(|downloaded| downloaded.bytes),
        };
        match result {
            Ok(bytes) => Ok((format!("file://{}", target.display()), bytes)),
            Err(DownloadError::ChecksumMismatch {
                algorithm,
                expected,
                actual,
                ..
            }) => Err(LockedError::Mismatch(Box::new(Mismatch {
                file: lock.file_name.clone(),
                package: package.file_name.clone(),
                url: crate::staging::log::redact_url(&url),
                algorithm,
                expected,
                actual,
            }))),
            Err(error) => Err(LockedError::Download {
                package: package.file_name.clone(),
                url: crate::staging::log::redact_url(&url),
                reason: error.to_string(),
            }),
        }
    };
    let results = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PARALLEL_DOWNLOADS.min(packages.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    while !failed.load(std::sync::atomic::Ordering::Relaxed) {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(package) = packages.get(index) else {
                            break;
                        };
                        let result = fetch_one(package);
                        failed.fetch_or(result.is_err(), std::sync::atomic::Ordering::Relaxed);
                        done.push((index, result));
                    }
                    done
                })
            })
            .collect();
        let mut results: Vec<_> = workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        results.sort_by_key(|(index, _)| *index);
        results
    });
    let mut fetched = Fetched {
        files: BTreeMap::new(),
        downloaded: 0,
        bytes: 0,
    };
    for (index, result) in results {
        let (url, bytes) = result?;
        fetched.files.insert(packages[index].file_name.clone(), url);
        fetched.downloaded += 1;
        fetched.bytes += bytes;
    }
    Ok(fetched)
}

/// A `file://` package (a lock written on a machine with a local channel): copied, checked.
fn copy_checked(
    source: &Path,
    target: &Path,
    checksum: Checksum<'_>,
    url: &str,
) -> Result<u64, DownloadError> {
    let write = |source| DownloadError::Write {
        path: target.to_path_buf(),
        source,
    };
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(write)?;
    }
    let bytes = fs::copy(source, target).map_err(|error| DownloadError::Unreachable {
        url: url.to_string(),
        reason: error.to_string(),
    })?;
    // One read for both digests, as vendor/ is scanned.
    let archive = vendored::hash_archive(target)
        .map_err(|error| write(io::Error::other(error.to_string())))?;
    let (algorithm, expected, found) = match checksum {
        Checksum::Sha256(expected) => ("sha256", expected, archive.sha256),
        Checksum::Md5(expected) => ("md5", expected, archive.md5),
        Checksum::Unchecked => return Ok(bytes),
    };
    if found.eq_ignore_ascii_case(expected) {
        Ok(bytes)
    } else {
        let _ = fs::remove_file(target);
        Err(DownloadError::ChecksumMismatch {
            url: url.to_string(),
            algorithm,
            expected: expected.to_ascii_lowercase(),
            actual: found,
        })
    }
}

/// The `@EXPLICIT` file conda installs `packages` from, each at its checked local copy.
pub(crate) fn explicit_text(
    packages: &[&CondaPackage],
    files: &BTreeMap<String, String>,
) -> String {
    let mut text = String::from("# platform: linux-64\n@EXPLICIT\n");
    for package in packages {
        if let Some(url) = files.get(&package.file_name) {
            text.push_str(url);
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_url_package_is_copied_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("a-1-0.conda");
        fs::write(&source, b"package bytes").unwrap();
        let sha256 = crate::io::digest::sha256_file(&source).unwrap();
        let target = dir.path().join("out/noarch/a-1-0.conda");
        let copied = copy_checked(&source, &target, Checksum::Sha256(&sha256), "file://x");
        assert_eq!(copied.unwrap(), 13);
        let wrong = "0".repeat(64);
        let refused = copy_checked(&source, &target, Checksum::Sha256(&wrong), "file://x");
        assert!(matches!(
            refused,
            Err(DownloadError::ChecksumMismatch {
                algorithm: "sha256",
                ..
            })
        ));
        assert!(!target.exists(), "a mismatching copy is deleted");
    }

    #[test]
    fn mirrors_apply_to_locked_urls() {
        let lookup = |name: &str| match name {
            "CONDA_CHANNEL_ALIAS" => Some("https://mirror.example/conda/".to_string()),
            "CONDA_DEFAULT_CHANNELS" => Some(
                "https://mirror.example/anaconda/main, https://mirror.example/anaconda/r".into(),
            ),
            _ => None,
        };
        assert_eq!(
            mirrored(
                "https://conda.anaconda.org/conda-forge/linux-64/numpy-2.2.6-py311_0.conda",
                lookup
            ),
            "https://mirror.example/conda/conda-forge/linux-64/numpy-2.2.6-py311_0.conda"
        );
        assert_eq!(
            mirrored(
                "https://repo.anaconda.com/pkgs/main/noarch/tzdata-2025a-h0_0.conda",
                lookup
            ),
            "https://mirror.example/anaconda/main/noarch/tzdata-2025a-h0_0.conda"
        );
        // A channel the operator did not mirror keeps its URL.
        assert_eq!(
            mirrored("https://other.example/c/linux-64/x-1-0.conda", lookup),
            "https://other.example/c/linux-64/x-1-0.conda"
        );
        assert_eq!(
            mirrored(
                "https://conda.anaconda.org/conda-forge/linux-64/x-1-0.conda",
                |_| None
            ),
            "https://conda.anaconda.org/conda-forge/linux-64/x-1-0.conda"
        );
    }
}
