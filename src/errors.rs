//! Every failure a user can meet, turned into a message in one place: a title, what happened
//! and why, and what to do. Reviewing this file is reviewing what users read when staging
//! fails.

use std::path::{Path, PathBuf};

use crate::app::AppError;
use crate::buildpack::BuildpackError;
use crate::cache::CacheError;
use crate::conda_failure::FailureKind;
use crate::condarc::CondarcError;
use crate::download::DownloadError;
use crate::environment::EnvironmentError;
use crate::installer::InstallerError;
use crate::log;
use crate::manifest_update::{Failure, MinicondaError, MiniforgeError, UpdateError, VerifyError};
use crate::pip::PipError;
use crate::python_version::PythonVersionError;
use crate::relocate::RelocateError;
use crate::services::ServiceError;
use crate::stager::StagerError;
use crate::vendor::VendorError;

mod config;
mod lockfile;
use config::{condarc_message, services_message};
use lockfile::{lock_message, locked_message};

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
    Solver(#[from] crate::solver::SolverError),
    #[error(transparent)]
    Services(#[from] ServiceError),
    #[error(transparent)]
    Condarc(#[from] CondarcError),
    #[error(transparent)]
    Locked(#[from] crate::locked::LockedError),
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
        Error::Solver(crate::solver::SolverError::Unavailable {
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

fn pip_message(error: &PipError) -> Message {
    const REVENDOR: &str =
        "Run `conda-buildpack vendor APP_DIR` on a machine with internet access and push again.";
    match error {
        PipError::NotVendored {
            requirement,
            origin,
        } => Message::new(
            "A pip requirement is not in vendor/pip",
            vec![
                format!("{origin} requires `{requirement}`, and vendor/pip has no file for it."),
                "With vendored pip files, pip installs from vendor/pip alone: staging has no package index to fall back on.".into(),
            ],
            format!("{REVENDOR} It fetches `{requirement}` and everything it needs into vendor/pip."),
        ),
        PipError::DirectOffline { line, origin } => Message::new(
            "A pip requirement points at the network",
            vec![
                format!("{origin} has `{line}`."),
                "pip installs from vendor/pip alone at staging, and a URL or VCS requirement can only be fetched from where it points.".into(),
            ],
            "Require the project by name (`name==version`) from an index, or build its wheel into the app and name its path (`./wheels/name-1.0-py3-none-any.whl`); then run `conda-buildpack vendor APP_DIR` and push again.",
        ),
        PipError::Archive(archive) => Message::new(
            "A vendored pip file is unsafe or broken",
            vec![
                archive.to_string(),
                "Every wheel and sdist in vendor/pip is checked before pip may unpack it.".into(),
            ],
            format!("Delete the file from vendor/pip. {REVENDOR}"),
        ),
        PipError::Link { path } => Message::new(
            "vendor/pip holds a link",
            vec![format!("{} is a link or not a regular file.", path.display())],
            format!("Vendored pip files must be regular files pushed with the app. {REVENDOR}"),
        ),
        PipError::Io { path, source } => Message::new(
            "vendor/pip could not be read",
            vec![format!("{}: {source}", path.display())],
            disk_fix(source),
        ),
    }
}

fn app_message(error: &AppError) -> Message {
    match error {
        AppError::Unreadable { file, source } => Message::new(
            format!("{file} cannot be read"),
            vec![source.to_string()],
            format!(
                "Make sure {file} is a regular, readable file in the app directory (a link that points outside the app is not pushed)."
            ),
        ),
        AppError::TooLarge { file, size } => Message::new(
            format!("{file} is too large ({})", log::format_size(*size)),
            vec![format!(
                "{file} should be a small text file; this one is over 1 MiB."
            )],
            format!("Check that {file} is the file you meant to push."),
        ),
        AppError::NotUtf8 { file } => Message::new(
            format!("{file} is not text"),
            vec![format!("{file} is not valid UTF-8.")],
            format!("Save {file} as UTF-8 text."),
        ),
        AppError::NotAFile { file } => Message::new(
            format!("{file} is not a regular file"),
            vec![format!("The app's {file} is a directory, a pipe or a device, not a file.")],
            format!("Push {file} as an ordinary text file."),
        ),
        AppError::LinkOutsideApp { file, target } => Message::new(
            format!("{file} is a link that points outside the app"),
            vec![
                format!("{file} links to {target}."),
                "Staging reads only the app's own files: a link out of the app would read the staging container's files, not yours.".into(),
            ],
            "Replace the link with the file itself (or a link to a file inside the app) and push again.",
        ),
        AppError::BrokenLink { file, target } => Message::new(
            format!("{file} is a broken link"),
            vec![format!("{file} links to {target}, which is not in the pushed app.")],
            "Replace the link with the file itself and push again.",
        ),
        AppError::NothingToInstall => Message::new(
            "The app has no environment.yml",
            vec!["The conda buildpack installs what environment.yml or a lockfile (pixi.lock, conda-lock.yml, conda-linux-64.lock, an @EXPLICIT spec-file.txt or explicit.txt) names, and this app has none of them.".into()],
            "Add an environment.yml at the root of the app (`conda env export --from-history > environment.yml`) or a lockfile (`pixi lock`, `conda-lock -p linux-64`), or choose another buildpack with `cf push -b`.",
        ),
        AppError::InvalidYaml {
            file,
            reason,
            line,
            column,
        } => {
            let location = match (line, column) {
                (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
                _ => String::new(),
            };
            Message::new(
                format!("{file} is not valid YAML{location}"),
                vec![reason.clone()],
                format!(
                    "Fix {file}{location}; `conda env create -f {file}` on your machine shows the same error."
                ),
            )
        }
        AppError::InvalidEnvironment { file, reason } => Message::new(
            format!("{file} is not a valid conda environment file"),
            vec![reason.clone()],
            format!(
                "See https://docs.conda.io/projects/conda/en/latest/user-guide/tasks/manage-environments.html#create-env-file-manually for the format of {file}."
            ),
        ),
        AppError::InvalidSpec {
            file,
            line,
            spec,
            reason,
        } => Message::new(
            format!("{file} line {line}: conda cannot read `{spec}`"),
            vec![
                format!("`{spec}` is not a conda match spec: {reason}."),
                "conda would refuse the whole file (PluginError: Invalid spec), so nothing was downloaded.".into(),
            ],
            format!(
                "Fix line {line} of {file}: a spec is a name with an optional version, like `numpy`, `numpy=1.26`, `numpy>=1.26,<2` or `conda-forge::numpy`."
            ),
        ),
        AppError::InvalidRuntimeTxt { content, reason } => Message::new(
            "runtime.txt does not name a Python version",
            vec![format!("{reason} (found `{content}`)")],
            "Write one line such as `python-3.11.9`, `python-3.11.x` or `python-2.7.18`, or delete runtime.txt and name python in environment.yml.",
        ),
        AppError::Lock(lock) => lock_message(lock),
        AppError::UnsupportedStack { stack } => Message::new(
            format!("This buildpack does not support the stack {stack}"),
            vec![format!(
                "Cloud Foundry stages the app on {stack} (CF_STACK), and this buildpack's installers are made for {} only.",
                crate::stack::supported_names()
            )],
            format!(
                "Push the app to a supported stack with `cf push APP -s {}`, or ask your operator for a buildpack release that supports {stack}.",
                crate::stack::DEFAULT
            ),
        ),
        AppError::InvalidSetting {
            variable,
            value,
            reason,
        } => Message::new(
            format!("{variable}={value} is not a valid setting"),
            vec![reason.clone()],
            format!(
                "Fix it with `cf set-env APP {variable} VALUE` (or `cf unset-env APP {variable}`) and `cf restage APP`."
            ),
        ),
    }
}

fn installer_message(error: &InstallerError) -> Message {
    match error {
        InstallerError::NotInManifest {
            wanted,
            stack,
            offered,
            elsewhere,
        } => {
            let mut body = vec![
                "DEPENDENCY MISSING IN MANIFEST:".to_string(),
                format!("{wanted} is not supported by this buildpack on {stack}."),
            ];
            if offered.is_empty() {
                body.push(format!("This buildpack has no installers for {stack}."));
            } else {
                body.push(format!(
                    "The installers this buildpack offers on {stack} are:"
                ));
                body.extend(offered.iter().map(|offer| format!("  - {offer}")));
            }
            let fix = match elsewhere.as_slice() {
                [] => "Ask for a Python version and installer from the list: the python spec in environment.yml, runtime.txt, and BP_CONDA_DISTRIBUTION / BP_CONDA_VERSION (cf set-env).".to_string(),
                stacks => {
                    body.push(format!(
                        "This buildpack has one for {wanted} on {}.",
                        stacks.join(", ")
                    ));
                    format!(
                        "Push the app to {} with `cf push APP -s {}`, or ask for a Python version and installer from the list (environment.yml, runtime.txt, BP_CONDA_DISTRIBUTION / BP_CONDA_VERSION).",
                        stacks.join(" or "),
                        stacks[stacks.len() - 1]
                    )
                }
            };
            Message::new(format!("No conda installer for {wanted}"), body, fix)
        }
        InstallerError::Download(download) => download_message(download),
        InstallerError::VendoredFileMissing { dependency, path } => Message::new(
            format!("The cached buildpack is missing {dependency}"),
            vec![format!(
                "Its manifest lists {} but the file is not there.",
                path.display()
            )],
            "Ask the platform operator to re-upload the cached buildpack zip.",
        ),
        InstallerError::VendoredFileCorrupt {
            dependency,
            expected,
            actual,
        } => Message::new(
            format!("The cached buildpack's copy of {dependency} is corrupt"),
            vec![format!(
                "dependency sha256 mismatch: expected sha256 {expected}, actual sha256 {actual}"
            )],
            "Ask the platform operator to re-upload the cached buildpack zip.",
        ),
        InstallerError::Failed {
            dependency,
            status,
            output,
            disk_full,
        } => {
            let mut body = vec![format!("The installer failed ({status}). Its output:")];
            body.extend(
                output
                    .iter()
                    .rev()
                    .take(30)
                    .rev()
                    .map(|line| format!("  {line}")),
            );
            if *disk_full {
                Message::new(
                    format!("The {dependency} installer ran out of disk"),
                    body,
                    DISK_FULL,
                )
            } else {
                Message::new(
                    format!("The {dependency} installer failed"),
                    body,
                    "If the output says the disk is full, raise the app's disk quota (cf push -k 4G); otherwise report it with this log.",
                )
            }
        }
        InstallerError::NoConda { dependency, path } => Message::new(
            format!("The {dependency} installer did not install conda"),
            vec![format!(
                "{} does not exist after the installer finished.",
                path.display()
            )],
            REPORT,
        ),
        InstallerError::Io { path, source } => Message::new(
            "The installer could not be prepared",
            vec![format!("{}: {source}", path.display())],
            disk_fix(source),
        ),
    }
}

fn download_message(error: &DownloadError) -> Message {
    match error {
        DownloadError::ChecksumMismatch {
            url,
            algorithm,
            expected,
            actual,
        } => Message::new(
            "A download does not match its pinned checksum",
            vec![
                format!(
                    "dependency {algorithm} mismatch: expected {algorithm} {expected}, actual {algorithm} {actual}"
                ),
                format!("The file from {url} was deleted and nothing was installed from it."),
            ],
            "A proxy or mirror may be altering downloads. Check HTTPS_PROXY and the mirror, or use the cached buildpack, which carries verified installers.",
        ),
        DownloadError::HttpStatus { url, status: 407 } => Message::new(
            "The proxy asks for credentials",
            vec![format!(
                "{url} answered HTTP 407 (proxy authentication required)."
            )],
            "Put the credentials in the proxy URL (HTTPS_PROXY=http://user:password@proxy:port); they are redacted in this log.",
        ),
        DownloadError::HttpStatus { url, status } => Message::new(
            format!("A download failed with HTTP {status}"),
            vec![format!("{url} answered HTTP {status}.")],
            if *status >= 500 {
                "The server failed several times in a row. Push again later, or use the cached buildpack.".to_string()
            } else {
                "The file is not where the manifest says. Ask the platform operator for a current buildpack, or use the cached buildpack.".to_string()
            },
        ),
        DownloadError::Unreachable { url, reason } => Message::new(
            "The network is unreachable from staging",
            vec![format!("Could not reach {url}: {reason}")],
            "This foundation may have no internet access. Ask the operator to install the cached conda buildpack (conda_buildpack-cached-*.zip), vendor the app's packages with `conda-buildpack vendor`, or set HTTPS_PROXY.",
        ),
        DownloadError::Transfer { url, reason } => Message::new(
            "A download was interrupted",
            vec![format!("{url}: {reason}")],
            "The connection failed repeatedly. Push again, set BP_DOWNLOAD_TIMEOUT (seconds) for a slow link, or use the cached buildpack.",
        ),
        DownloadError::RedirectLoop { url } => Message::new(
            "A download redirects in a loop",
            vec![format!(
                "{url} kept redirecting (more than 10 times) and never answered with the file."
            )],
            "A server or proxy on the way is misconfigured. Ask the platform operator to check the proxy and mirror, or use the cached buildpack.",
        ),
        DownloadError::Write { path, source } => Message::new(
            "A download could not be saved",
            vec![format!("{}: {source}", path.display())],
            disk_fix(source),
        ),
    }
}

/// `conda-buildpack manifest update`: an operator's pipeline reads these, not a staging log.
pub(crate) fn manifest_update_message(error: &UpdateError) -> Message {
    const UNTOUCHED: &str = "The manifest was not changed.";
    let publisher = |what: &str, source: &DownloadError| {
        let (cause, fix) = match source {
            DownloadError::HttpStatus {
                status: 403 | 429, ..
            } => (
                format!("{source} (a rate limit, most likely)."),
                "Wait for the limit to reset and run again, or point the flag at a mirror.",
            ),
            _ => (
                format!("{source}."),
                "Check the network, HTTPS_PROXY and the URL (--miniforge-releases, --miniconda-index), then run again.",
            ),
        };
        Message::new(
            format!("{what} could not be read"),
            vec![cause, UNTOUCHED.into()],
            fix,
        )
    };
    match error {
        UpdateError::Manifest(manifest) => Message::new(
            "The manifest cannot be read",
            vec![manifest.to_string(), UNTOUCHED.into()],
            "Fix the file (or --manifest PATH) so that `conda-buildpack package` accepts it, then run again.",
        ),
        UpdateError::Miniforge(MiniforgeError::Fetch(source)) => {
            publisher("Miniforge's release list", source)
        }
        UpdateError::Miniconda(MinicondaError::Fetch(source)) => {
            publisher("Miniconda's index page", source)
        }
        UpdateError::Miniforge(format) => Message::new(
            "Miniforge's release list is not what GitHub answers",
            vec![format.to_string(), UNTOUCHED.into()],
            "Check --miniforge-releases: it must answer as https://api.github.com/repos/conda-forge/miniforge/releases does.",
        ),
        UpdateError::Miniconda(format) => Message::new(
            "Miniconda's index page is not what Anaconda serves",
            vec![format.to_string(), UNTOUCHED.into()],
            "Check --miniconda-index: it must answer as https://repo.anaconda.com/miniconda/ does.",
        ),
        UpdateError::Edit(edit) => Message::new(
            "The manifest's layout cannot be edited safely",
            vec![edit.to_string(), UNTOUCHED.into()],
            "Write the list as block entries (`  - name: ...` on their own lines), as the repository's manifest.yml does, or make the change by hand.",
        ),
        UpdateError::Default { given, reason } => Message::new(
            format!("--default {given} cannot be applied"),
            vec![reason.clone(), UNTOUCHED.into()],
            "Name a default_versions line and a version (or version line like 25.11.x) that the updated manifest holds.",
        ),
        UpdateError::Invalid { reason } => Message::new(
            "The updated manifest would not be valid",
            vec![reason.clone(), UNTOUCHED.into()],
            REPORT,
        ),
        UpdateError::Io { path, source } => Message::new(
            "The manifest could not be written",
            vec![format!("{}: {source}", path.display())],
            "Check that the directory is writable and has space, then run again.",
        ),
        UpdateError::Unverified { failures } => {
            let mut body = vec!["Nothing was written for these installers:".to_string()];
            for Failure { release, error } in failures {
                body.push(match error {
                    VerifyError::Download(DownloadError::ChecksumMismatch {
                        url,
                        expected,
                        actual,
                        ..
                    }) => format!(
                        "  {release}: the publisher states sha256 {expected}, but {url} downloaded with sha256 {actual}"
                    ),
                    other => format!("  {release}: {other}"),
                });
            }
            Message::new(
                format!(
                    "{} proposed installers could not be verified",
                    failures.len()
                ),
                body,
                "A checksum is pinned only when the downloaded bytes agree with the publisher's. Check the proxy or mirror and run again; if they still disagree, tell the publisher. Every other entry was handled as shown.",
            )
        }
    }
}

fn environment_message(error: &EnvironmentError) -> Message {
    match error {
        EnvironmentError::Io { path, source } => Message::new(
            "The conda environment could not be prepared",
            vec![format!("{}: {source}", path.display())],
            disk_fix(source),
        ),
        EnvironmentError::Conda {
            failure,
            command,
            status,
            memory_limit_mib,
            vendored,
            channels,
            solver,
            other_solvers,
            peak_memory_kib,
        } => {
            let (kind, output) = (&failure.kind, &failure.output);
            let mut body = vec![match solver {
                Some(solver) => format!("`{command}` failed ({status}) with the {solver} solver."),
                None => format!("`{command}` failed ({status})."),
            }];
            if !output.is_empty() {
                body.push("conda said:".into());
                body.extend(output.iter().map(|line| format!("  {line}")));
            }
            let vendored_gap = *vendored
                && matches!(
                    kind,
                    FailureKind::PackagesNotFound | FailureKind::Unsatisfiable
                );
            let (title, fix) = match kind {
                _ if vendored_gap => (
                    "A package the app needs is not in vendor/",
                    "The app installs offline from vendor/, and conda names above what vendor/ lacks. Run `conda-buildpack vendor APP_DIR` on your machine to fill vendor/ with every package the environment needs, and push again.".to_string(),
                ),
                FailureKind::PackagesNotFound => {
                    let missing = &failure.missing;
                    // conda 26 lists only its own channels, never the file's it searched
                    // first: the buildpack's list is the whole one.
                    let searched = if channels.is_empty() {
                        &failure.searched
                    } else {
                        channels
                    };
                    if !missing.is_empty() {
                        body.insert(1, format!("Not found: {}", missing.join(", ")));
                    }
                    if !searched.is_empty() {
                        body.insert(
                            if missing.is_empty() { 1 } else { 2 },
                            format!("Channels searched: {}", searched.join("; ")),
                        );
                    }
                    (
                        "conda cannot find some of the app's packages",
                        "Check the package names and the channels in environment.yml (conda search NAME -c CHANNEL on your machine), or vendor the packages.".to_string(),
                    )
                }
                FailureKind::InvalidSpec => (
                    "conda cannot read a spec in environment.yml",
                    "conda names the spec above. Write it as a name with an optional version, like `numpy`, `numpy=1.26` or `numpy>=1.26,<2`; `conda env create -f environment.yml` on your machine shows the same error.".to_string(),
                ),
                FailureKind::TermsOfService => {
                    let mut gated = failure.gated.clone();
                    if gated.is_empty() {
                        gated = channels
                            .iter()
                            .filter(|channel| channel.contains("repo.anaconda.com") || channel.starts_with("defaults "))
                            .cloned()
                            .collect();
                    }
                    body.insert(
                        1,
                        format!(
                            "Anaconda's Terms of Service have not been accepted for: {}. Miniconda 25.5 and later ship Anaconda's plugin, which stops any staging that uses these channels until they are.",
                            if gated.is_empty() { "Anaconda's channels".to_string() } else { gated.join(", ") }
                        ),
                    );
                    body.insert(
                        2,
                        "Accepting them is your organisation's decision (commercial use of Anaconda's repository above a size needs a paid licence): the buildpack never accepts them for you.".into(),
                    );
                    (
                        "Anaconda's Terms of Service stop conda at the defaults channel",
                        "Either read the terms (https://www.anaconda.com/legal/terms/terms-of-service) and, if your organisation accepts them, `cf set-env APP CONDA_PLUGINS_AUTO_ACCEPT_TOS yes` (or have the operator set it in the staging environment variable group) and `cf restage APP`; or leave Anaconda's channels: stage with Miniforge (the default for Python 3; `cf unset-env APP BP_CONDA_DISTRIBUTION`) and name conda-forge, not defaults, in the channels of environment.yml (adding `nodefaults` on conda 25 and older).".to_string(),
                    )
                }
                FailureKind::NodefaultsAsChannel => (
                    "conda reads `nodefaults` in environment.yml as a channel",
                    "Remove `nodefaults` from the channels of environment.yml: conda 26 looks for a channel of that name instead of leaving out `defaults`. With Miniforge (the default for Python 3) `defaults` is not searched anyway; with Miniconda, `cf set-env APP CONDA_CHANNELS conda-forge` replaces its `defaults`.".to_string(),
                ),
                FailureKind::NoChannels => (
                    "conda has no channels to install from",
                    "Name the channels in environment.yml (`channels: [conda-forge]`), or set CONDA_CHANNELS with cf set-env: conda 26 no longer adds `defaults` by itself.".to_string(),
                ),
                FailureKind::Unsatisfiable => (
                    "conda cannot satisfy the app's package versions",
                    "The versions in environment.yml cannot be installed together from its channels. Loosen the pins conda lists above, or install from an exact `conda list --explicit` spec-file.txt.".to_string(),
                ),
                FailureKind::CredentialsRefused => {
                    body.insert(1, format!("Channels searched: {}", channels.join("; ")));
                    let credentials_from: Vec<String> = crate::services::bound_names()
                        .iter()
                        .map(|name| format!("the service {name}"))
                        .collect();
                    let fix = if credentials_from.is_empty() {
                        "A channel answered 401 or 403: it wants credentials the staging did not give, or refused them. Bind a service tagged `conda` that holds them (cf create-user-provided-service conda-mirror -t conda -p '{\"channel_alias\":\"https://mirror/conda\",\"username\":\"USER\",\"password\":\"PASSWORD\"}', cf bind-service APP conda-mirror), or correct the user and password in the channel URL you set (CONDA_CHANNEL_ALIAS, CONDA_DEFAULT_CHANNELS, environment.yml, .condarc); then cf restage APP.".to_string()
                    } else {
                        body.insert(2, format!("The credentials come from {}.", credentials_from.join(" and ")));
                        format!(
                            "Update the credentials of {}: for a user-provided service, cf update-user-provided-service NAME -p '{{...}}' with the right `username` and `password` (or `token`); for a brokered one, cf unbind-service and cf bind-service again. Then cf restage APP.",
                            credentials_from.join(" and ")
                        )
                    };
                    ("A conda channel refused the staging's credentials", fix)
                }
                FailureKind::Certificate => {
                    body.insert(1, format!("Channels searched: {}", channels.join("; ")));
                    (
                        "conda does not trust a channel's certificate",
                        "The channel's HTTPS certificate is signed by a certificate authority that neither conda's bundled roots nor the platform's trusted certificates (CF_SYSTEM_CERT_PATH and the system store) contain. Ask the platform operator to add your company's CA to the trusted certificates, or push the CA with the app and name it in the app's .condarc (`ssl_verify: certs/company-ca.pem`). `ssl_verify: false` turns the check off, which lets anyone on the network serve you packages.".to_string(),
                    )
                }
                FailureKind::ChannelUnreachable => (
                    "conda cannot reach the app's channels",
                    "Staging has no route to the conda channels. Set HTTPS_PROXY, point CONDA_CHANNEL_ALIAS at a mirror, or vendor the app's packages with `conda-buildpack vendor`.".to_string(),
                ),
                FailureKind::Pip => (
                    "pip failed to install the app's pip requirements",
                    "See pip's error above; check the `pip:` section of environment.yml. If staging has no route to a package index, vendor the requirements with `conda-buildpack vendor APP_DIR` and push again.".to_string(),
                ),
                FailureKind::PipNotVendored => {
                    let missing = &failure.pip_missing;
                    body.insert(
                        1,
                        format!(
                            "pip installs only from vendor/pip at staging, and it has no file for {}: a dependency added or changed since the app was vendored.",
                            if missing.is_empty() { "a requirement".to_string() } else { missing.join(", ") }
                        ),
                    );
                    (
                        "A pip requirement is not in vendor/pip",
                        "Run `conda-buildpack vendor APP_DIR` on a machine with internet access, so vendor/pip holds every wheel the pip section needs, and push again.".to_string(),
                    )
                }
                FailureKind::OutOfMemory => {
                    let limit = memory_limit_mib
                        .map_or_else(|| "an unknown limit".to_string(), |mib| format!("MEMORY_LIMIT {mib} MB"));
                    let peak = peak_memory_kib
                        .map_or_else(|| "unknown".to_string(), |kib| log::format_size(kib * 1024));
                    body.insert(
                        1,
                        format!("Peak memory seen: {peak}, against the staging's {limit}."),
                    );
                    let rattler = match (solver.as_deref(), other_solvers.iter().any(|s| s == "rattler")) {
                        (Some("rattler"), _) => None,
                        (_, true) => Some("use the rattler solver, which needs a fraction of the memory: `cf set-env APP CONDA_SOLVER rattler` (or `cf unset-env APP CONDA_SOLVER`: the buildpack picks it when conda has it)".to_string()),
                        _ => Some("use an installer whose conda has the rattler solver, which needs a fraction of the memory: `cf set-env APP BP_CONDA_VERSION 26.5.x`".to_string()),
                    };
                    let mut fixes: Vec<String> = rattler.into_iter().collect();
                    fixes.push("give staging more memory: `cf push APP -m 2G`, or `cf scale APP -m 2G` then `cf restage APP`".into());
                    fixes.push("stage from a lockfile, which needs no solve: `conda list --explicit --md5 > spec-file.txt` in a working environment".into());
                    (
                        match solver {
                            Some(_) => "conda ran out of memory while solving",
                            None => "conda ran out of memory",
                        },
                        format!("Either {}.", fixes.join("; or ")),
                    )
                }
                FailureKind::DiskFull => (
                    "conda ran out of disk",
                    DISK_FULL.to_string(),
                ),
                FailureKind::Other => (
                    "conda failed to create the environment",
                    "See conda's error above. `conda env create -f environment.yml` on your machine usually shows the same problem.".to_string(),
                ),
            };
            let fix = match (kind, solver, other_solvers.first()) {
                (FailureKind::Unsatisfiable | FailureKind::Other, Some(solver), Some(other)) => {
                    format!(
                        "{fix} The {solver} solver ran; to try another this conda offers ({}): `cf set-env APP CONDA_SOLVER {other}` and `cf restage APP`.",
                        other_solvers.join(", ")
                    )
                }
                _ => fix,
            };
            Message::new(title, body, fix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_package_message_names_the_packages_and_the_channels() {
        let output: Vec<String> = [
            "PackagesNotFoundInChannelsError: The following packages are not available from current channels:",
            "",
            "  - foo",
            "  - numpy=99",
            "",
            "Current channels:",
            "",
            "  - http://127.0.0.1:1/conda-forge/linux-64",
            "  - http://127.0.0.1:1/conda-forge/noarch",
            "",
            "To search for alternate channels that may provide the conda package you're",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let error: Error = EnvironmentError::Conda {
            failure: crate::conda_failure::read(&output, &[], false, false),
            command: "conda env create".into(),
            status: "exit code 1".into(),
            memory_limit_mib: None,
            vendored: false,
            channels: vec![
                "conda-forge from environment.yml (http://127.0.0.1:1/conda-forge)".into(),
            ],
            solver: None,
            other_solvers: vec![],
            peak_memory_kib: None,
        }
        .into();
        let message = message(&error);
        assert!(
            message
                .body
                .contains(&"Not found: foo, numpy=99".to_string()),
            "{:?}",
            message.body
        );
        // The buildpack's list, not conda's, which leaves out the file's channels.
        assert!(
            message.body.contains(&"Channels searched: conda-forge from environment.yml (http://127.0.0.1:1/conda-forge)".to_string()),
            "{:?}",
            message.body
        );
    }

    #[test]
    fn every_message_has_a_title_a_cause_and_a_fix() {
        let samples: Vec<Error> = vec![
            AppError::InvalidYaml {
                file: "environment.yml".into(),
                reason: "bad".into(),
                line: Some(3),
                column: Some(2),
            }
            .into(),
            AppError::InvalidRuntimeTxt {
                content: "python-banana".into(),
                reason: "r".into(),
            }
            .into(),
            InstallerError::NotInManifest {
                wanted: "Python 4".into(),
                stack: "cflinuxfs4".into(),
                offered: vec!["miniconda2 4.7.12.1 (Python 2)".into()],
                elsewhere: vec!["cflinuxfs5"],
            }
            .into(),
            InstallerError::Download(DownloadError::ChecksumMismatch {
                url: "u".into(),
                algorithm: "sha256",
                expected: "a".into(),
                actual: "b".into(),
            })
            .into(),
            EnvironmentError::Conda {
                failure: crate::conda_failure::CondaFailure {
                    kind: FailureKind::OutOfMemory,
                    ..Default::default()
                },
                command: "conda".into(),
                status: "signal: 9".into(),
                memory_limit_mib: Some(256),
                vendored: false,
                channels: vec![],
                solver: Some("classic".into()),
                other_solvers: vec!["rattler".into()],
                peak_memory_kib: Some(250_000),
            }
            .into(),
        ];
        for error in &samples {
            let message = message(error);
            assert!(
                !message.title.is_empty() && !message.body.is_empty() && !message.fix.is_empty()
            );
        }
        let yaml = message(&samples[0]);
        assert_eq!(
            yaml.title,
            "environment.yml is not valid YAML at line 3, column 2"
        );
        let missing = message(&samples[2]);
        assert!(
            missing
                .body
                .contains(&"DEPENDENCY MISSING IN MANIFEST:".to_string())
        );
        let killed = message(&samples[4]);
        assert_eq!(killed.title, "conda ran out of memory while solving");
        assert!(
            killed.body[0].contains("with the classic solver"),
            "{:?}",
            killed.body
        );
        assert!(
            killed.body[1]
                .contains("Peak memory seen: 244.1 MiB, against the staging's MEMORY_LIMIT 256 MB"),
            "{:?}",
            killed.body
        );
        for fix in [
            "CONDA_SOLVER rattler",
            "cf push APP -m 2G",
            "cf scale APP -m 2G",
            "spec-file.txt",
        ] {
            assert!(killed.fix.contains(fix), "{fix} missing: {}", killed.fix);
        }
    }
}
