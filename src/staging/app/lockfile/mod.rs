//! The lockfiles an app can bring instead of (or beside) environment.yml: pixi's `pixi.lock`,
//! the unified `conda-lock.yml` (CEP 37) and `@EXPLICIT` files (CEP 23: `spec-file.txt`,
//! `explicit.txt`, conda-lock's `conda-linux-64.lock`). Each is read into one [`Lock`]: the
//! exact linux-64 packages, conda and PyPI, with their hashes. Staging installs exactly those,
//! with no solve, whatever conda the installer brings.

mod conda_lock;
mod explicit;
mod pixi;

use std::fmt;

/// What staging installs from: the lockfiles, most specific first. The first one the app has
/// wins; a lockfile wins over environment.yml, since the lock is what the developer tested.
pub(crate) const LOCK_FILES: [(&str, Format); 6] = [
    ("pixi.lock", Format::Pixi),
    ("conda-lock.yml", Format::CondaLock),
    ("conda-lock.yaml", Format::CondaLock),
    ("conda-linux-64.lock", Format::Explicit),
    ("spec-file.txt", Format::Explicit),
    ("explicit.txt", Format::Explicit),
];

/// A lockfile bigger than this is not one: conda-forge's largest real-world locks (many
/// platforms, hundreds of packages each) stay under a few megabytes.
pub(crate) const MAX_LOCK_BYTES: u64 = 32 * 1024 * 1024;

/// The platform every Cloud Foundry stack is.
pub(crate) const PLATFORM: &str = "linux-64";

/// `BP_PIXI_ENVIRONMENT`: which of a pixi.lock's environments to install.
pub(crate) const PIXI_ENVIRONMENT_VARIABLE: &str = "BP_PIXI_ENVIRONMENT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Pixi,
    CondaLock,
    Explicit,
}

impl fmt::Display for Format {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Pixi => "pixi lockfile",
            Self::CondaLock => "conda-lock lockfile",
            Self::Explicit => "@EXPLICIT file",
        })
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum LockError {
    #[error("{file} is not valid YAML: {reason}")]
    InvalidYaml { file: String, reason: String },
    #[error("{file} is version {found} of its format; this buildpack reads version {supported}")]
    UnsupportedVersion {
        file: String,
        found: String,
        supported: &'static str,
    },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("{file} has no environment named `{wanted}`")]
    UnknownEnvironment {
        file: String,
        wanted: String,
        available: Vec<String>,
        from_setting: bool,
    },
    #[error("{file} locks no linux-64 packages")]
    NoLinux {
        file: String,
        environment: Option<String>,
        platforms: Vec<String>,
    },
    #[error("{file}: the package `{entry}` cannot be installed from a lock: {reason}")]
    BadPackage {
        file: String,
        entry: String,
        reason: String,
    },
}

/// A package checksum, as the lock records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256(String),
    Md5(String),
}

/// One locked conda package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CondaPackage {
    pub(crate) url: String,
    /// The archive's name, a plain file name (checked: no `/`, no `..`).
    pub(crate) file_name: String,
    /// `linux-64` or `noarch`.
    pub(crate) subdir: String,
    pub(crate) name: String,
    pub(crate) version: String,
    /// The strongest checksum the lock gives: sha256, else md5, else none (an explicit file
    /// written without `--md5`).
    pub(crate) hash: Option<Hash>,
}

impl CondaPackage {
    /// The `@EXPLICIT` line for this package, with its checksum as a fragment.
    pub(crate) fn explicit_line(&self) -> String {
        match &self.hash {
            Some(Hash::Sha256(sha256)) => format!("{}#sha256:{sha256}", self.url),
            Some(Hash::Md5(md5)) => format!("{}#{md5}", self.url),
            None => self.url.clone(),
        }
    }
}

/// One locked PyPI distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PypiPackage {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) url: String,
    pub(crate) sha256: Option<String>,
}

impl PypiPackage {
    /// The distribution file's name, the last segment of its URL.
    pub(crate) fn file_name(&self) -> &str {
        let path = self.url.split(['#', '?']).next().unwrap_or(&self.url);
        path.rsplit('/').next().unwrap_or(path)
    }
}

/// The linux-64 content of a lockfile: everything staging installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lock {
    pub(crate) file_name: String,
    pub(crate) format: Format,
    /// The pixi environment taken, and whether `BP_PIXI_ENVIRONMENT` chose it.
    pub(crate) environment: Option<(String, bool)>,
    pub(crate) conda: Vec<CondaPackage>,
    pub(crate) pypi: Vec<PypiPackage>,
}

impl Lock {
    /// The conda packages as `@EXPLICIT` lines.
    pub(crate) fn explicit_lines(&self) -> Vec<String> {
        self.conda.iter().map(CondaPackage::explicit_line).collect()
    }

    /// What decides the installed environment, in a stable order: the cache fingerprint.
    /// Another platform's packages, comments or a reordering change nothing.
    pub(crate) fn content(&self) -> String {
        let mut lines: Vec<String> = self
            .conda
            .iter()
            .map(|package| format!("conda {}", package.explicit_line()))
            .chain(self.pypi.iter().map(|package| {
                format!(
                    "pypi {} {} {} {}",
                    package.name,
                    package.version,
                    package.url,
                    package.sha256.as_deref().unwrap_or("")
                )
            }))
            .collect();
        lines.sort();
        lines.join("\n")
    }

    /// The locked Python package, if any.
    pub(crate) fn python(&self) -> Option<&CondaPackage> {
        self.conda.iter().find(|package| package.name == "python")
    }

    /// For the log: `12 conda packages and 2 PyPI packages from pixi.lock (environment
    /// `default`)`.
    pub(crate) fn describe(&self) -> String {
        let mut text = format!(
            "{} conda package{}",
            self.conda.len(),
            if self.conda.len() == 1 { "" } else { "s" }
        );
        if !self.pypi.is_empty() {
            text.push_str(&format!(
                " and {} PyPI package{}",
                self.pypi.len(),
                if self.pypi.len() == 1 { "" } else { "s" }
            ));
        }
        text.push_str(&format!(" from {}", self.file_name));
        if let Some((name, chosen)) = &self.environment {
            text.push_str(&format!(
                " (environment `{name}`{})",
                if *chosen {
                    ", from BP_PIXI_ENVIRONMENT"
                } else {
                    ""
                }
            ));
        }
        text
    }
}

/// Reads a lockfile's text. `environment` is `BP_PIXI_ENVIRONMENT` (pixi.lock only).
pub(crate) fn parse(
    file_name: &str,
    format: Format,
    text: &str,
    environment: Option<&str>,
) -> Result<Lock, LockError> {
    let (lock_environment, conda, pypi) = match format {
        Format::Pixi => {
            let (name, conda, pypi) = pixi::parse(file_name, text, environment)?;
            (Some(name), conda, pypi)
        }
        Format::CondaLock => {
            let (conda, pypi) = conda_lock::parse(file_name, text)?;
            (None, conda, pypi)
        }
        Format::Explicit => (None, explicit::parse(file_name, text)?, Vec::new()),
    };
    let mut seen = std::collections::BTreeMap::new();
    for package in &conda {
        if let Some(first) = seen.insert(package.name.clone(), &package.file_name) {
            return Err(LockError::Invalid {
                file: file_name.to_string(),
                reason: format!(
                    "it locks `{}` twice ({first} and {}); one environment has one version of \
                     each package",
                    package.name, package.file_name
                ),
            });
        }
    }
    // pip checks either every hash of a requirements file or none: a lock that gives some
    // is refused now, not after conda has installed the rest.
    let hashed = pypi
        .iter()
        .filter(|package| package.sha256.is_some())
        .count();
    if hashed != 0 && hashed != pypi.len() {
        return Err(LockError::Invalid {
            file: file_name.to_string(),
            reason: format!(
                "it gives the sha256 of {hashed} of its {} PyPI packages; pip checks every \
                 package's hash or none, so lock again with every sha256",
                pypi.len()
            ),
        });
    }
    Ok(Lock {
        file_name: file_name.to_string(),
        format,
        environment: lock_environment
            .map(|name| (name, environment.is_some_and(|wanted| !wanted.is_empty()))),
        conda,
        pypi,
    })
}

/// Parses YAML with the limits every app file gets (nesting depth), naming the file.
fn yaml(file: &str, text: &str) -> Result<serde_yaml_ng::Value, LockError> {
    if let Err(too_deep) = crate::io::yaml_depth::check_flow_nesting(text) {
        return Err(LockError::InvalidYaml {
            file: file.to_string(),
            reason: too_deep.to_string(),
        });
    }
    serde_yaml_ng::from_str(text).map_err(|error| LockError::InvalidYaml {
        file: file.to_string(),
        reason: error.to_string(),
    })
}

/// `LockError::Invalid` for `file`, from a reason.
fn invalid(file: &str) -> impl Fn(String) -> LockError + '_ {
    move |reason| LockError::Invalid {
        file: file.to_string(),
        reason,
    }
}

/// The top-level mapping of a versioned YAML lockfile, once its `version` is `supported`.
/// `what` says what the file should be, `tool` what writes it.
/// What a lock format's readers check first: the top-level shape and the one version read.
struct LockFormat {
    /// The format as a user would know it, with its top-level keys.
    what: &'static str,
    /// The one `version` read.
    supported: &'static str,
    /// The command that writes it.
    tool: &'static str,
}

/// The formats read, each at the one version conda's lockfile plugin (conda-lockfiles 0.2) reads
/// too: pixi.lock as pixi >= 0.40 and `conda export --format rattler-lock-v6` write it, and
/// conda-lock.yml as conda-lock writes it.
const PIXI: LockFormat = LockFormat {
    what: "a pixi lockfile (a mapping with `version`, `environments` and `packages`)",
    supported: "6",
    tool: "`pixi lock`",
};
const CONDA_LOCK: LockFormat = LockFormat {
    what: "a conda-lock lockfile (a mapping with `version`, `metadata` and `package`)",
    supported: "1",
    tool: "`conda-lock`",
};

fn versioned_root(
    file: &str,
    text: &str,
    format: &LockFormat,
) -> Result<serde_yaml_ng::Mapping, LockError> {
    let LockFormat {
        what,
        supported,
        tool,
    } = *format;
    let invalid = invalid(file);
    let document = yaml(file, text)?;
    let serde_yaml_ng::Value::Mapping(root) = document else {
        return Err(invalid(format!(
            "the file is {}, not {what}",
            describe(&document)
        )));
    };
    let version = root
        .get("version")
        .and_then(scalar)
        .ok_or_else(|| invalid(format!("it has no `version`; write it with {tool}")))?;
    if version.trim() != supported {
        return Err(LockError::UnsupportedVersion {
            file: file.to_string(),
            found: version,
            supported,
        });
    }
    Ok(root)
}

/// A conda package from its URL and checksums, refusing what cannot be a package URL: another
/// scheme, a file name that is not a package archive or would leave the package cache.
fn conda_package(
    file: &str,
    url: &str,
    sha256: Option<&str>,
    md5: Option<&str>,
) -> Result<CondaPackage, LockError> {
    let bad = |reason: String| LockError::BadPackage {
        file: file.to_string(),
        entry: url.to_string(),
        reason,
    };
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(
            "it is not a URL: the buildpack installs built packages from a channel, not a \
             package built from source; publish it to a channel and lock that"
                .into(),
        ));
    };
    if !matches!(scheme, "http" | "https" | "file") {
        return Err(bad(format!(
            "the scheme `{scheme}` is not one conda downloads from (http, https, file)"
        )));
    }
    if url.contains(['?', '#', '\\', '\n', '\r', '\t', ' ']) {
        return Err(bad(
            "a package URL has no query, fragment, backslash or whitespace".into(),
        ));
    }
    let mut segments = rest.rsplit('/');
    let file_name = segments.next().unwrap_or("");
    let subdir = segments.next().unwrap_or("");
    let decoded = crate::staging::secrets::percent_decode(file_name);
    let stem = file_name
        .strip_suffix(".conda")
        .or_else(|| file_name.strip_suffix(".tar.bz2"));
    let plain = |name: &str| {
        !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '!'))
    };
    let Some(stem) = stem.filter(|_| plain(file_name) && decoded == file_name) else {
        return Err(bad(format!(
            "`{file_name}` is not a conda package file name (NAME-VERSION-BUILD.conda or \
             .tar.bz2, letters, digits and `._-+!` only)"
        )));
    };
    let mut parts = stem.rsplitn(3, '-');
    let (Some(_build), Some(version), Some(name)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!(
            "`{file_name}` is not NAME-VERSION-BUILD, as conda names packages"
        )));
    };
    if name.is_empty() || version.is_empty() {
        return Err(bad(format!(
            "`{file_name}` is not NAME-VERSION-BUILD, as conda names packages"
        )));
    }
    if subdir != PLATFORM && subdir != "noarch" {
        return Err(bad(format!(
            "it is a package for `{subdir}`, not linux-64 or noarch: Cloud Foundry runs \
             linux-64"
        )));
    }
    let hex = |value: &str, length: usize| {
        let value = value.trim().to_ascii_lowercase();
        (value.len() == length && value.chars().all(|c| c.is_ascii_hexdigit())).then_some(value)
    };
    let hash = match (sha256, md5) {
        (Some(sha256), _) => Some(Hash::Sha256(hex(sha256, 64).ok_or_else(|| {
            bad(format!(
                "its sha256 `{sha256}` is not 64 hexadecimal digits"
            ))
        })?)),
        (None, Some(md5)) => {
            Some(Hash::Md5(hex(md5, 32).ok_or_else(|| {
                bad(format!("its md5 `{md5}` is not 32 hexadecimal digits"))
            })?))
        }
        (None, None) => None,
    };
    Ok(CondaPackage {
        url: url.to_string(),
        file_name: file_name.to_string(),
        subdir: subdir.to_string(),
        name: name.to_string(),
        version: version.to_string(),
        hash,
    })
}

/// A PyPI distribution from its lock entry, refusing a path (an editable or local project) or
/// a file name that could leave the download folder.
fn pypi_package(
    file: &str,
    name: &str,
    version: &str,
    url: &str,
    sha256: Option<&str>,
) -> Result<PypiPackage, LockError> {
    let bad = |reason: String| LockError::BadPackage {
        file: file.to_string(),
        entry: format!("{name} {version}"),
        reason,
    };
    let url = url.trim();
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(bad(format!(
            "it comes from `{url}`, a path on the machine that wrote the lock: the buildpack \
             installs PyPI packages from an index; publish it, or build a wheel into \
             vendor/pip/"
        )));
    };
    if !matches!(scheme, "http" | "https") {
        return Err(bad(format!(
            "`{url}` is not an http(s) URL (a git or file source cannot be checked against a hash)"
        )));
    }
    let package = PypiPackage {
        name: name.trim().to_string(),
        version: version.trim().to_string(),
        url: url.to_string(),
        sha256: None,
    };
    let file_name = package.file_name();
    let valid_name = !package.name.is_empty()
        && package
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let valid_file = (file_name.ends_with(".whl")
        || file_name.ends_with(".tar.gz")
        || file_name.ends_with(".zip"))
        && !file_name.starts_with('.')
        && crate::staging::secrets::percent_decode(file_name) == file_name
        && file_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '!'));
    if !valid_name || !valid_file || package.version.is_empty() {
        return Err(bad(format!(
            "`{url}` is not a wheel or source distribution of a package with a plain name"
        )));
    }
    let sha256 = match sha256 {
        Some(value) => {
            let value = value.trim().to_ascii_lowercase();
            if value.len() != 64 || !value.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad(format!(
                    "its sha256 `{value}` is not 64 hexadecimal digits"
                )));
            }
            Some(value)
        }
        None => None,
    };
    Ok(PypiPackage { sha256, ..package })
}

/// A YAML scalar as text: conda-lock writes versions like `1.26` that YAML reads as numbers.
fn scalar(value: &serde_yaml_ng::Value) -> Option<String> {
    match value {
        serde_yaml_ng::Value::String(text) => Some(text.clone()),
        serde_yaml_ng::Value::Number(number) => Some(number.to_string()),
        serde_yaml_ng::Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn describe(value: &serde_yaml_ng::Value) -> &'static str {
    match value {
        serde_yaml_ng::Value::Null => "empty",
        serde_yaml_ng::Value::Bool(_) => "a boolean",
        serde_yaml_ng::Value::Number(_) => "a number",
        serde_yaml_ng::Value::String(_) => "text",
        serde_yaml_ng::Value::Sequence(_) => "a list",
        serde_yaml_ng::Value::Mapping(_) => "a mapping",
        serde_yaml_ng::Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests;
