//! Every failure a user can meet, turned into a message in one place: a title, what happened
//! and why, and what to do. Reviewing this file is reviewing what users read when staging
//! fails.

use std::path::{Path, PathBuf};

use crate::staging::app::AppError;
use crate::staging::buildpack::BuildpackError;
use crate::staging::cache::CacheError;
use crate::staging::condarc::CondarcError;
use crate::staging::environment::EnvironmentError;
use crate::staging::installer::InstallerError;
use crate::staging::log;
use crate::staging::pip::PipError;
use crate::staging::python_version::PythonVersionError;
use crate::staging::relocate::RelocateError;
use crate::staging::services::ServiceError;
use crate::staging::stager::StagerError;
use crate::staging::vendored::VendorError;

mod app;
mod config;
mod environment;
mod installer;
mod lockfile;
mod manifest_update;
use app::{app_message, pip_message};
use config::{condarc_message, services_message};
use environment::environment_message;
use installer::installer_message;
use lockfile::locked_message;
pub(crate) use manifest_update::manifest_update_message;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Buildpack(#[from] BuildpackError),
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    PythonVersion(#[from] PythonVersionError),
    #[error(transparent)]
    Installer(#[from] InstallerError),
    /// Boxed: conda's failure carries its whole story (output, channels, solvers, memory).
    #[error(transparent)]
    Environment(Box<EnvironmentError>),
    #[error(transparent)]
    Relocate(#[from] RelocateError),
    #[error(transparent)]
    Stager(#[from] StagerError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Vendor(#[from] VendorError),
    #[error(transparent)]
    Pip(#[from] PipError),
    #[error(transparent)]
    Solver(#[from] crate::staging::solver::SolverError),
    #[error(transparent)]
    Services(#[from] ServiceError),
    #[error(transparent)]
    Condarc(#[from] CondarcError),
    #[error(transparent)]
    Locked(#[from] crate::staging::locked::LockedError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<EnvironmentError> for Error {
    fn from(error: EnvironmentError) -> Self {
        Self::Environment(Box::new(error))
    }
}

impl Error {
    /// For `map_err`: an I/O failure on `path`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What a user reads.
pub(crate) struct Message {
    pub(crate) title: String,
    pub(crate) body: Vec<String>,
    pub(crate) fix: String,
}

impl Message {
    fn new(title: impl Into<String>, body: Vec<String>, fix: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            body,
            fix: fix.into(),
        }
    }
}

const REPORT: &str =
    "This looks like a bug in the conda buildpack: please report it with this log.";

/// Logs `error` the CF way and returns nothing: the caller exits non-zero.
pub(crate) fn report(error: &Error) {
    let message = message(error);
    let mut text = message.title;
    for line in message.body {
        text.push('\n');
        text.push_str(&line);
    }
    text.push('\n');
    text.push_str(&message.fix);
    log::error(&text);
}

#[allow(clippy::too_many_lines)]
pub(crate) fn message(error: &Error) -> Message {
    match error {
        Error::Buildpack(BuildpackError::Locate(source)) => Message::new(
            "The buildpack cannot find its own files",
            vec![format!("{source}")],
            REPORT,
        ),
        Error::Buildpack(BuildpackError::Manifest(manifest)) => Message::new(
            "The buildpack's manifest.yml is broken",
            vec![manifest.to_string()],
            "Ask the platform operator to re-upload a released buildpack zip (cf create-buildpack / cf update-buildpack).",
        ),
        Error::App(app) => app_message(app),
        Error::Services(services) => services_message(services),
        Error::Condarc(condarc) => condarc_message(condarc),
        Error::Locked(locked) => locked_message(locked),
        Error::PythonVersion(PythonVersionError::InvalidSpec { file, spec, reason }) => {
            Message::new(
                format!("{file}: `{spec}` is not a valid Python spec"),
                vec![reason.clone()],
                "Write the Python dependency as conda does, e.g. `python=3.11`, `python>=3.9` or `python 3.9`.",
            )
        }
        Error::PythonVersion(PythonVersionError::Unsatisfiable { file, spec }) => Message::new(
            format!("{file}: no Python version satisfies `{spec}`"),
            vec!["The version constraints exclude each other.".into()],
            "Loosen the constraint, e.g. `python=3.11`.",
        ),
        Error::Installer(installer) => installer_message(installer),
        Error::Solver(crate::staging::solver::SolverError::Unavailable {
            wanted,
            source_name,
            offered,
            installer,
        }) => Message::new(
            format!("The conda of {installer} has no {wanted} solver"),
            vec![
                format!(
                    "{source_name} asks for the {wanted} solver; the installed conda offers {}.",
                    offered.join(", ")
                ),
                "Asked before solving: conda would refuse the setting itself.".into(),
            ],
            format!(
                "Unset it (`cf unset-env APP CONDA_SOLVER`, or drop `solver:` from the app's .condarc) and the buildpack runs the fastest this conda offers, or choose one of: {}. The rattler solver comes with Miniforge 26.5 and later (BP_CONDA_VERSION=26.5.x).",
                offered.join(", ")
            ),
        ),
        Error::Environment(environment) => environment_message(environment),
        Error::Relocate(RelocateError::PrefixTooLong { file, from, to }) => Message::new(
            "The environment cannot be moved to its run-time path",
            vec![
                format!(
                    "{} embeds {from} in binary data, and {to} is longer.",
                    file.display()
                ),
                "Binary prefixes can only be rewritten to a path that is not longer.".into(),
            ],
            REPORT,
        ),
        Error::Relocate(RelocateError::Io { path, source }) => Message::new(
            "The environment could not be moved to its run-time path",
            vec![format!("{}: {source}", path.display())],
            disk_fix(source),
        ),
        Error::Stager(StagerError { path, source }) => Message::new(
            "The buildpack could not write its files for the buildpacks after it",
            vec![format!("{}: {source}", path.display())],
            disk_fix(source),
        ),
        Error::Cache(CacheError { context, source }) => Message::new(
            "The buildpack cannot use its cache directory",
            vec![format!("{context}: {source}")],
            disk_fix(source),
        ),
        Error::Vendor(vendor) => Message::new(
            "The vendored packages cannot be used",
            vec![vendor.to_string()],
            "Refill vendor/ with `conda-buildpack vendor APP_DIR` on your machine and push again.",
        ),
        Error::Pip(pip) => pip_message(pip),
        Error::Io { path, source } => Message::new(
            "A file the buildpack needs could not be read or written",
            vec![format!("{}: {source}", path.display())],
            disk_fix(source),
        ),
    }
}

const DISK_FULL: &str = "The staging container ran out of disk. Raise the app's disk quota (cf push -k 4G) and push again; the previous cache entry is intact.";

fn disk_fix(source: &std::io::Error) -> String {
    if matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) {
        DISK_FULL.into()
    } else {
        REPORT.into()
    }
}

#[cfg(test)]
mod tests;
