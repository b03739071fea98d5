//! Staging from a lockfile: every locked conda package is fetched by the buildpack (or found
//! in `vendor/`) and checked against the lock's sha256 (md5 where that is all it has), then
//! handed to conda as `file://` URLs, so that conda solves nothing and asks no channel for
//! repodata, whatever conda the installer brings (4.7 to 26). PyPI entries go to pip with
//! `--no-deps` and their hashes. A changed lock updates the last environment by the
//! difference.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::app::lockfile::{CondaPackage, Hash, Lock};
use crate::conda::Conda;
use crate::download::{self, Checksum, DownloadError, Progress};
use crate::process::{self, Echo};
use crate::vendor;

/// Downloads at once: a channel serves many small packages, and one at a time would leave
/// the staging waiting on round trips.
const PARALLEL_DOWNLOADS: usize = 6;

#[derive(Debug, thiserror::Error)]
pub(crate) enum LockedError {
    #[error("{} does not match {}: {} {}, locked {}", .0.package, .0.file, .0.algorithm, .0.actual, .0.expected)]
    Mismatch(Box<Mismatch>),
    #[error("{package} could not be downloaded: {reason}")]
    Download {
        package: String,
        url: String,
        reason: String,
    },
    #[error("{package}, locked in {file}, is not in vendor/")]
    NotVendored { file: String, package: String },
    #[error("{file} gives hashes for some PyPI packages only")]
    MixedPipHashes { file: String },
    #[error("`{command}` failed ({status}) {activity}")]
    Command {
        activity: String,
        command: String,
        status: String,
        output: Vec<String>,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A package whose bytes are not what the lock says.
#[derive(Debug)]
pub(crate) struct Mismatch {
    pub(crate) file: String,
    pub(crate) package: String,
    pub(crate) url: String,
    pub(crate) algorithm: &'static str,
    pub(crate) expected: String,
    pub(crate) actual: String,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> LockedError + '_ {
    move |source| LockedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

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
    scan: &vendor::Scan,
    channel: &crate::environment::LocalChannel,
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
                url: crate::log::redact_url(&url),
                algorithm,
                expected,
                actual,
            }))),
            Err(error) => Err(LockedError::Download {
                package: package.file_name.clone(),
                url: crate::log::redact_url(&url),
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
    let actual = |sha: bool| {
        let file = fs::File::open(target).map_err(write)?;
        let mut reader = io::BufReader::new(file);
        let digest = if sha {
            use sha2::Digest;
            let mut hasher = sha2::Sha256::new();
            io::copy(&mut reader, &mut hasher).map_err(write)?;
            download::hex(&hasher.finalize())
        } else {
            use md5::Digest;
            let mut hasher = md5::Md5::new();
            io::copy(&mut reader, &mut hasher).map_err(write)?;
            download::hex(&hasher.finalize())
        };
        Ok::<_, DownloadError>(digest)
    };
    let (algorithm, expected, found) = match checksum {
        Checksum::Sha256(expected) => ("sha256", expected, actual(true)?),
        Checksum::Md5(expected) => ("md5", expected, actual(false)?),
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

/// What staging from a lock needs.
pub(crate) struct Staging<'a> {
    pub(crate) lock: &'a Lock,
    pub(crate) conda: &'a Conda<'a>,
    /// Where conda builds the environment (holding the last one when updating).
    pub(crate) prefix: &'a Path,
    pub(crate) vendored: Option<(&'a vendor::Scan, &'a crate::environment::LocalChannel)>,
    /// Where downloaded packages go.
    pub(crate) dir: &'a Path,
    /// The `@EXPLICIT` file conda is given.
    pub(crate) explicit_file: &'a Path,
    /// A locked URL as this staging fetches it (mirror and credentials applied).
    pub(crate) resolve: &'a (dyn Fn(&str) -> String + Sync),
}

pub(crate) struct Prepared {
    /// Whether conda updates the last environment (else it creates one).
    pub(crate) updating: bool,
    /// An update with nothing for conda to add or change.
    pub(crate) nothing_to_install: bool,
}

/// Fetches and checks the locked packages conda needs, removes from the last environment what
/// the lock dropped, and writes the `@EXPLICIT` file of the rest.
pub(crate) fn prepare(
    staging: &Staging<'_>,
    mut updating: bool,
    summary: &mut crate::summary::Summary,
) -> Result<Prepared, LockedError> {
    let lock = staging.lock;
    let mut difference_found = None;
    if updating {
        match difference(lock, staging.prefix) {
            Ok(Some(found)) => difference_found = Some(found),
            Ok(None) => {
                crate::log::detail(&format!(
                    "{} locks another Python than the last environment has: building it from                      nothing",
                    lock.file_name
                ));
                updating = false;
            }
            Err(error) => {
                crate::log::warning(&format!(
                    "The last environment cannot be compared with {} ({error}); building it                      from nothing.",
                    lock.file_name
                ));
                updating = false;
            }
        }
        if !updating {
            crate::fsutil::remove_if_exists(staging.prefix).map_err(at(staging.prefix))?;
        }
    }
    let install: Vec<&CondaPackage> = match &difference_found {
        Some(found) => found
            .install
            .iter()
            .map(|&index| &lock.conda[index])
            .collect(),
        None => lock.conda.iter().collect(),
    };
    let fetched = match staging.vendored {
        Some((scan, channel)) => from_vendor(lock, scan, channel)?,
        None => summary.time("downloading the locked packages", || {
            download(lock, &install, staging.dir, staging.resolve)
        })?,
    };
    let unchecked = install
        .iter()
        .filter(|package| package.hash.is_none())
        .count();
    if fetched.downloaded > 0 {
        crate::log::detail(&format!(
            "Downloaded {} locked package{} ({}){}",
            fetched.downloaded,
            if fetched.downloaded == 1 { "" } else { "s" },
            crate::log::format_size(fetched.bytes),
            if unchecked == 0 {
                ", each matching the lock's hash"
            } else {
                ""
            }
        ));
    }
    if unchecked > 0 {
        crate::log::warning(&format!(
            "{} gives no hash for {unchecked} package{}: {} installed unchecked. Write it with              `conda list --explicit --md5` (or lock with pixi or conda-lock) so that every              package is checked.",
            lock.file_name,
            if unchecked == 1 { "" } else { "s" },
            if unchecked == 1 { "it is" } else { "they are" }
        ));
    }
    if let Some(found) = &difference_found {
        crate::log::detail(&format!(
            "Updating by the difference: {} conda package{} added or changed, {} removed{}, {} \
             unchanged",
            found.install.len(),
            if found.install.len() == 1 { "" } else { "s" },
            found.remove.len(),
            if found.remove.is_empty() {
                String::new()
            } else {
                format!(" ({})", found.remove.join(", "))
            },
            found.unchanged
        ));
        if !found.remove.is_empty() {
            remove_conda(staging.conda, staging.prefix, &found.remove)?;
        }
    }
    let text = explicit_text(&install, &fetched.files);
    if let Some(parent) = staging.explicit_file.parent() {
        fs::create_dir_all(parent).map_err(at(parent))?;
    }
    fs::write(staging.explicit_file, text).map_err(at(staging.explicit_file))?;
    Ok(Prepared {
        updating,
        nothing_to_install: updating && install.is_empty(),
    })
}

/// How the last environment differs from the lock.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Difference {
    /// conda packages to install: new, or another build or version than installed.
    pub(crate) install: Vec<usize>,
    /// conda packages installed and no longer locked, by name.
    pub(crate) remove: Vec<String>,
    /// PyPI distributions pip installed that the lock no longer has, by name.
    pub(crate) pip_remove: Vec<String>,
    pub(crate) unchanged: usize,
}

/// The difference between `prefix` and `lock`; `None` when it cannot be updated in place
/// (another Python: every compiled module and noarch package would need relinking).
pub(crate) fn difference(lock: &Lock, prefix: &Path) -> io::Result<Option<Difference>> {
    let installed = installed_conda(prefix)?;
    let mut difference = Difference::default();
    for (index, package) in lock.conda.iter().enumerate() {
        match installed.get(&package.name) {
            Some(file) if *file == package.file_name => difference.unchanged += 1,
            Some(_) if package.name == "python" => return Ok(None),
            _ => difference.install.push(index),
        }
    }
    let locked: BTreeSet<&str> = lock
        .conda
        .iter()
        .map(|package| package.name.as_str())
        .collect();
    difference.remove = installed
        .keys()
        .filter(|name| !locked.contains(name.as_str()))
        .cloned()
        .collect();
    if difference.remove.iter().any(|name| name == "python") {
        return Ok(None);
    }
    let wanted: BTreeSet<String> = lock
        .pypi
        .iter()
        .map(|package| crate::pip::requirements::normalize(&package.name))
        .collect();
    difference.pip_remove = crate::pip::installed::by_pip(prefix, false)
        .into_iter()
        .filter(|name| !wanted.contains(&crate::pip::requirements::normalize(name)))
        .collect();
    Ok(Some(difference))
}

/// Name to archive file name of every conda package in `prefix`, from `conda-meta/`.
fn installed_conda(prefix: &Path) -> io::Result<BTreeMap<String, String>> {
    let mut installed = BTreeMap::new();
    for entry in fs::read_dir(prefix.join("conda-meta"))? {
        let path = entry?.path();
        if path.extension().and_then(|ext| ext.to_str()) != Some("json") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let field = |key: &str| record.get(key).and_then(|value| value.as_str());
        if let (Some(name), Some(file)) = (
            field("name"),
            field("fn").or_else(|| field("url").and_then(|url| url.rsplit('/').next())),
        ) {
            installed.insert(name.to_string(), file.to_string());
        }
    }
    Ok(installed)
}

/// The lock's PyPI part, after conda: what the lock no longer has is uninstalled (the last
/// environment's), then its distributions are installed.
pub(crate) fn pypi(
    conda: &Conda<'_>,
    lock: &Lock,
    prefix: &Path,
    scratch: &Path,
    resolve: &dyn Fn(&str) -> String,
    summary: &mut crate::summary::Summary,
) -> Result<(), LockedError> {
    let dropped = difference(lock, prefix)
        .ok()
        .flatten()
        .map(|difference| difference.pip_remove)
        .unwrap_or_default();
    if !dropped.is_empty() {
        crate::log::detail(&format!(
            "Uninstalling PyPI packages {} no longer locks: {}",
            lock.file_name,
            dropped.join(", ")
        ));
    }
    if dropped.is_empty() && lock.pypi.is_empty() {
        return Ok(());
    }
    summary.time("installing the locked PyPI packages", || {
        pip(conda, lock, prefix, &dropped, scratch, resolve)
    })
}

/// Removes `names` from `prefix` with conda, offline and without touching what depends on
/// them: the lock already says exactly what stays.
pub(crate) fn remove_conda(
    conda: &Conda<'_>,
    prefix: &Path,
    names: &[String],
) -> Result<(), LockedError> {
    let mut command = conda.command();
    command
        .args(["remove", "--force", "--offline", "-y", "-p"])
        .arg(prefix)
        .args(names);
    // The log already names what goes; conda's plan would list it again.
    run(&mut command, "removing packages the lock dropped", |_| {
        false
    })
}

/// pip's part: uninstalls what the lock dropped, then installs the locked distributions with
/// `--no-deps` (the lock lists every one) and their hashes, from their URLs or, offline, from
/// `vendor/pip/` alone.
fn pip(
    conda: &Conda<'_>,
    lock: &Lock,
    prefix: &Path,
    remove: &[String],
    scratch: &Path,
    resolve: &dyn Fn(&str) -> String,
) -> Result<(), LockedError> {
    let python = prefix.join("bin").join("python");
    if !remove.is_empty() {
        let mut command = conda.command_for(&python);
        command.args(["-m", "pip", "uninstall", "-y"]).args(remove);
        run(
            &mut command,
            "uninstalling PyPI packages the lock dropped",
            |line| line.trim_start().starts_with("Successfully uninstalled"),
        )?;
    }
    if lock.pypi.is_empty() {
        return Ok(());
    }
    let hashed = lock
        .pypi
        .iter()
        .filter(|package| package.sha256.is_some())
        .count();
    if hashed != 0 && hashed != lock.pypi.len() {
        return Err(LockedError::MixedPipHashes {
            file: lock.file_name.clone(),
        });
    }
    let offline = conda.pip_find_links.is_some();
    let lines: Vec<String> = lock
        .pypi
        .iter()
        .map(|package| {
            let source = if offline {
                format!("{}=={}", package.name, package.version)
            } else {
                format!("{} @ {}", package.name, resolve(&package.url))
            };
            match &package.sha256 {
                Some(sha256) => format!("{source} --hash=sha256:{sha256}"),
                None => source,
            }
        })
        .collect();
    fs::create_dir_all(scratch).map_err(at(scratch))?;
    let requirements = scratch.join("locked-pypi.txt");
    fs::write(&requirements, lines.join("\n") + "\n").map_err(at(&requirements))?;
    let mut command = conda.command_for(&python);
    command
        // `--force-reinstall`: a restored environment may hold the same version from another
        // file (the lock's hash changed); pip would call it satisfied and check nothing.
        .args([
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--force-reinstall",
            "--no-warn-script-location",
            "-r",
        ])
        .arg(&requirements);
    run(
        &mut command,
        "installing the locked PyPI packages",
        |line| line.starts_with("Successfully installed") || line.contains("WARNING"),
    )
}

fn run(
    command: &mut std::process::Command,
    activity: &str,
    keep: fn(&str) -> bool,
) -> Result<(), LockedError> {
    let described = process::describe(command);
    let finished = process::run(
        command,
        activity,
        Echo {
            keep,
            live_stderr: false,
        },
    )
    .map_err(|source| LockedError::Io {
        path: PathBuf::from(described.clone()),
        source,
    })?;
    if finished.status.success() {
        return Ok(());
    }
    Err(LockedError::Command {
        activity: activity.to_string(),
        command: described,
        status: process::describe_status(finished.status),
        output: finished
            .stderr
            .iter()
            .chain(finished.stdout.iter())
            .filter(|line| !line.trim().is_empty())
            .take(40)
            .cloned()
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
