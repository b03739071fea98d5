//! What the app asks for: its `environment.yml` or a lockfile (`lockfile/`), `runtime.txt`,
//! vendored packages, and the `BP_` settings set with `cf set-env`. Everything a user writes is
//! read here, once, with limits and with messages that point at the line to fix.

mod environment_file;
mod files;
pub(crate) mod lockfile;
mod runtime_txt;
mod settings;

use std::fs;
use std::path::{Path, PathBuf};

pub(crate) use environment_file::{
    Dependency, EnvironmentFile, EnvironmentSpec, parse_environment, read_environment_file,
    tolerant_spec,
};
pub(crate) use files::{into_text, normalize, read_bounded};
use files::{read_bounded_to, read_optional_text, resolve_inside_app};
pub(crate) use runtime_txt::{RuntimeTxt, parse_runtime_txt};
pub(crate) use settings::{Distribution, Settings};

/// The environment file names conda accepts, in the order we look for them.
pub(crate) const ENVIRONMENT_FILES: [&str; 2] = ["environment.yml", "environment.yaml"];
pub(crate) const RUNTIME_TXT: &str = "runtime.txt";
pub(crate) const VENDOR_DIR: &str = "vendor";

#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    #[error("cannot read {file}: {source}")]
    Unreadable {
        file: String,
        source: std::io::Error,
    },
    #[error("{file} is {size} bytes")]
    TooLarge { file: String, size: u64 },
    #[error("{file} is not UTF-8 text")]
    NotUtf8 { file: String },
    #[error("{file} is not a regular file")]
    NotAFile { file: String },
    #[error("{file} is a link to {target}, outside the app")]
    LinkOutsideApp { file: String, target: String },
    #[error("{file} is a link to {target}, which does not exist")]
    BrokenLink { file: String, target: String },
    #[error("the app has no environment.yml and no lockfile")]
    NothingToInstall,
    #[error("{0}")]
    Lock(#[from] lockfile::LockError),
    #[error("{file} is not valid YAML: {reason}")]
    InvalidYaml {
        file: String,
        reason: String,
        line: Option<usize>,
        column: Option<usize>,
    },
    #[error("{file}: {reason}")]
    InvalidEnvironment { file: String, reason: String },
    #[error("{file} line {line}: conda cannot read the spec {spec:?}: {reason}")]
    InvalidSpec {
        file: String,
        line: usize,
        spec: String,
        reason: String,
    },
    #[error("runtime.txt: {reason}")]
    InvalidRuntimeTxt { content: String, reason: String },
    #[error("CF_STACK={stack} is not a stack this buildpack supports")]
    UnsupportedStack { stack: String },
    #[error("{variable}={value}: {reason}")]
    InvalidSetting {
        variable: &'static str,
        value: String,
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) environment: Option<EnvironmentFile>,
    pub(crate) runtime_txt: Option<RuntimeTxt>,
    /// The lockfile staging installs from, when the app has one: it wins over environment.yml.
    pub(crate) lock: Option<lockfile::Lock>,
    /// The other files the app has that could have been installed from, for the log.
    pub(crate) passed_over: Vec<String>,
    /// `vendor/`, when it holds conda packages.
    pub(crate) vendor_dir: Option<PathBuf>,
}

impl App {
    /// What conda would warn about in the app's files and go on.
    pub(crate) fn warnings(&self) -> impl Iterator<Item = &str> {
        self.environment
            .iter()
            .flat_map(|environment| environment.spec.warnings.iter().map(String::as_str))
    }

    pub(crate) fn read(build_dir: &Path) -> Result<Self, AppError> {
        let environment_file = find_environment_file(build_dir);
        let mut candidates = lockfile::LOCK_FILES
            .iter()
            .filter(|(name, _)| present(&build_dir.join(name)))
            .map(|(name, format)| (*name, Some(*format)))
            .chain(
                environment_file
                    .iter()
                    .filter_map(|path| path.file_name()?.to_str())
                    .map(|name| (name, None)),
            );
        let chosen = candidates.next();
        let passed_over = candidates.map(|(name, _)| name.to_string()).collect();
        let (environment, lock) = match chosen {
            None => return Err(AppError::NothingToInstall),
            Some((name, None)) => (
                Some(read_environment_file(build_dir, &build_dir.join(name))?),
                None,
            ),
            Some((name, Some(format))) => {
                let path = build_dir.join(name);
                let bytes = read_bounded_to(build_dir, &path, lockfile::MAX_LOCK_BYTES)?;
                let text = into_text(&path, bytes)?;
                let wanted = std::env::var(lockfile::PIXI_ENVIRONMENT_VARIABLE).ok();
                (
                    None,
                    Some(lockfile::parse(name, format, &text, wanted.as_deref())?),
                )
            }
        };
        let runtime_txt = match read_optional_text(build_dir, &build_dir.join(RUNTIME_TXT))? {
            Some(text) => Some(parse_runtime_txt(&text)?),
            None => None,
        };
        let vendor = build_dir.join(VENDOR_DIR);
        let vendor_dir = if fs::symlink_metadata(&vendor).is_ok() {
            let resolved = resolve_inside_app(build_dir, &vendor)?;
            resolved.is_dir().then_some(resolved)
        } else {
            None
        };
        Ok(Self {
            environment,
            runtime_txt,
            lock,
            passed_over,
            vendor_dir,
        })
    }

    /// Whether this is an app for this buildpack at all (what `detect` answers).
    pub(crate) fn is_conda_app(build_dir: &Path) -> bool {
        find_environment_file(build_dir).is_some()
            || lockfile::LOCK_FILES
                .iter()
                .any(|(name, _)| present(&build_dir.join(name)))
    }

    /// The file staging installs from, and why, for the log.
    pub(crate) fn source_line(&self) -> Option<String> {
        let chosen = match (&self.lock, &self.environment) {
            (Some(lock), _) => &lock.file_name,
            (None, Some(environment)) => &environment.file_name,
            (None, None) => return None,
        };
        if self.passed_over.is_empty() {
            return None;
        }
        Some(format!(
            "Installing from {chosen}{}; not from {}",
            if self.lock.is_some() {
                " (a lockfile wins: it is what was tested)"
            } else {
                ""
            },
            self.passed_over.join(", ")
        ))
    }
}

/// Whether the app has an entry of that name that could be the file: a file or a link (a link
/// is then checked when it is read, so that a bad one is named rather than ignored).
fn present(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|metadata| !metadata.is_dir())
}

pub(crate) fn find_environment_file(build_dir: &Path) -> Option<PathBuf> {
    ENVIRONMENT_FILES
        .iter()
        .map(|name| build_dir.join(name))
        .find(|path| present(path))
}

#[cfg(test)]
mod tests;
