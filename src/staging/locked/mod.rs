//! Staging from a lockfile: every locked conda package is fetched by the buildpack (or found
//! in `vendor/`) and checked against the lock's sha256 (md5 where that is all it has), then
//! handed to conda as `file://` URLs, so that conda solves nothing and asks no channel for
//! repodata, whatever conda the installer brings (4.7 to 26). PyPI entries go to pip with
//! `--no-deps` and their hashes. A changed lock updates the last environment by the
//! difference.

mod fetch;
mod pypi;
mod update;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::io::process::{self, Echo};
use crate::staging::app::lockfile::{CondaPackage, Lock};
use crate::staging::conda::Conda;
use crate::staging::vendored;

pub(crate) use fetch::mirrored;
use fetch::{download, explicit_text, from_vendor};
pub(crate) use pypi::pypi;
use update::{difference, pip_dropped, remove_conda};

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

/// What staging from a lock needs.
pub(crate) struct Staging<'a> {
    pub(crate) lock: &'a Lock,
    pub(crate) conda: &'a Conda<'a>,
    /// Where conda builds the environment (holding the last one when updating).
    pub(crate) prefix: &'a Path,
    pub(crate) vendored: Option<(
        &'a vendored::Scan,
        &'a crate::staging::environment::LocalChannel,
    )>,
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
    summary: &mut crate::staging::summary::Summary,
) -> Result<Prepared, LockedError> {
    let lock = staging.lock;
    let mut difference_found = None;
    if updating {
        match difference(lock, staging.prefix) {
            Ok(Some(found)) => difference_found = Some(found),
            Ok(None) => {
                crate::staging::log::detail(&format!(
                    "{} locks another Python than the last environment has: building it from \
                     nothing",
                    lock.file_name
                ));
                updating = false;
            }
            Err(error) => {
                crate::staging::log::warning(&format!(
                    "The last environment cannot be compared with {} ({error}); building it \
                     from nothing.",
                    lock.file_name
                ));
                updating = false;
            }
        }
        if !updating {
            crate::io::fsutil::remove_if_exists(staging.prefix).map_err(at(staging.prefix))?;
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
        crate::staging::log::detail(&format!(
            "Downloaded {} locked package{} ({}){}",
            fetched.downloaded,
            if fetched.downloaded == 1 { "" } else { "s" },
            crate::staging::log::format_size(fetched.bytes),
            if unchecked == 0 {
                ", each matching the lock's hash"
            } else {
                ""
            }
        ));
    }
    if unchecked > 0 {
        crate::staging::log::warning(&unchecked_warning(&lock.file_name, unchecked));
    }
    if let Some(found) = &difference_found {
        crate::staging::log::detail(&format!(
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

/// The warning for a lock (an explicit file written without `--md5`) that gives no hash.
fn unchecked_warning(file: &str, unchecked: usize) -> String {
    format!(
        "{file} gives no hash for {unchecked} package{}: {} installed unchecked. Write it with \
         `conda list --explicit --md5` (or lock with pixi or conda-lock) so that every package \
         is checked.",
        if unchecked == 1 { "" } else { "s" },
        if unchecked == 1 { "it is" } else { "they are" }
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
    #[test]
    fn the_unchecked_warning_reads_as_one_sentence() {
        assert_eq!(
            super::unchecked_warning("explicit.txt", 2),
            "explicit.txt gives no hash for 2 packages: they are installed unchecked. Write it \
             with `conda list --explicit --md5` (or lock with pixi or conda-lock) so that every \
             package is checked."
        );
    }
}
