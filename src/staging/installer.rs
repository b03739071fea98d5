//! The Miniconda/Miniforge installer: chosen from the manifest for the app's Python and
//! settings, obtained (the cached zip's `file:` copy, the app cache, or a verified download),
//! and run in batch mode into a scratch prefix that never reaches the droplet.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::io::digest;
use crate::io::download::{self, DownloadError, Progress};
use crate::io::process::{self, Echo};
use crate::io::scratch::Scratch;
use crate::manifest::{self, Dependency, Manifest};
use crate::staging::app::{Distribution, Settings};
use crate::staging::log;
use crate::staging::python_version::PythonChoice;

#[derive(Debug, thiserror::Error)]
pub(crate) enum InstallerError {
    #[error("no installer in the manifest for {wanted} on {stack}")]
    NotInManifest {
        wanted: String,
        stack: String,
        offered: Vec<String>,
        /// The other stacks with an installer for what the app wants.
        elsewhere: Vec<&'static str>,
    },
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("the buildpack's copy of {dependency} is missing at {path}")]
    VendoredFileMissing { dependency: String, path: PathBuf },
    #[error(
        "the buildpack's copy of {dependency} is corrupt: expected sha256 {expected}, actual sha256 {actual}"
    )]
    VendoredFileCorrupt {
        dependency: String,
        expected: String,
        actual: String,
    },
    #[error("the {dependency} installer failed ({status})")]
    Failed {
        dependency: String,
        status: String,
        output: Vec<String>,
        /// Its output says the disk filled up.
        disk_full: bool,
    },
    #[error("the {dependency} installer finished but left no conda at {path}")]
    NoConda { dependency: String, path: PathBuf },
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The Python major an installer line is for.
pub(crate) fn python_major_of(name: &str) -> Option<u64> {
    if name.starts_with("miniconda2") {
        Some(2)
    } else if name.starts_with("miniconda3") || name.starts_with("miniforge3") {
        Some(3)
    } else {
        None
    }
}

fn distribution_of(name: &str) -> Option<Distribution> {
    if name.starts_with("miniconda") {
        Some(Distribution::Miniconda)
    } else if name.starts_with("miniforge") {
        Some(Distribution::Miniforge)
    } else {
        None
    }
}

/// What the app asked for, in words for the log and errors.
struct Wanted<'a> {
    python: &'a PythonChoice,
    settings: &'a Settings,
}

impl fmt::Display for Wanted<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.python)?;
        match (self.settings.distribution, &self.settings.conda_version) {
            (Some(distribution), Some(version)) => write!(
                formatter,
                " with {} {version} (BP_CONDA_VERSION)",
                distribution.name()
            ),
            (Some(distribution), None) => write!(formatter, " with {}", distribution.name()),
            (None, Some(version)) => {
                write!(
                    formatter,
                    " with installer version {version} (BP_CONDA_VERSION)"
                )
            }
            (None, None) => Ok(()),
        }
    }
}

/// The chosen installer and why it was chosen, for the decision line of the log.
#[derive(Debug)]
pub(crate) struct Choice<'m> {
    pub(crate) dependency: &'m Dependency,
    pub(crate) reason: String,
}

/// The distribution for the app's Python when `BP_CONDA_DISTRIBUTION` is unset: that of the
/// first `default_versions` entry serving this Python major. The manifest lists Miniforge first
/// (conda-forge, free of Anaconda's Terms of Service); an operator who wants Miniconda as the
/// default moves its entry above Miniforge's before packaging.
fn default_distribution(manifest: &Manifest, python_major: u64) -> Option<Distribution> {
    manifest
        .default_versions
        .iter()
        .find(|default| python_major_of(&default.name) == Some(python_major))
        .and_then(|default| distribution_of(&default.name))
}

/// Picks the installer: the line for the app's Python major and distribution, on this stack,
/// at `BP_CONDA_VERSION` if set (the highest match), else at the manifest's default version.
pub(crate) fn choose<'m>(
    manifest: &'m Manifest,
    python: &PythonChoice,
    settings: &Settings,
) -> Result<Choice<'m>, InstallerError> {
    let on_stack_for_python = || {
        manifest
            .dependencies_for_stack(settings.stack.name)
            .filter(|dependency| python_major_of(&dependency.name) == Some(python.major))
    };
    let default = default_distribution(manifest, python.major);
    let (distribution, reason) = match (settings.distribution, &settings.conda_version) {
        (Some(chosen), _) => (
            Some(chosen),
            format!("BP_CONDA_DISTRIBUTION={}", chosen.name()),
        ),
        // A version alone names its distribution when only one has it (4.12.x is Miniconda's).
        (None, Some(line)) => {
            let in_default = on_stack_for_python().any(|dependency| {
                distribution_of(&dependency.name) == default
                    && manifest::version_matches_line(&dependency.version, line)
            });
            (
                if in_default { default } else { None },
                format!("BP_CONDA_VERSION={line}"),
            )
        }
        (None, None) => {
            let why = match default {
                Some(Distribution::Miniforge) => format!(
                    "the default for Python {}: conda-forge, without Anaconda's Terms of Service",
                    python.major
                ),
                _ => format!("the default for Python {}", python.major),
            };
            (default, why)
        }
    };
    let candidates: Vec<&Dependency> = on_stack_for_python()
        .filter(|dependency| {
            distribution.is_none_or(|wanted| distribution_of(&dependency.name) == Some(wanted))
        })
        .collect();
    let matching: Vec<&Dependency> = match &settings.conda_version {
        Some(line) => candidates
            .iter()
            .copied()
            .filter(|dependency| manifest::version_matches_line(&dependency.version, line))
            .collect(),
        None => {
            let defaulted: Vec<&Dependency> = candidates
                .iter()
                .copied()
                .filter(|dependency| {
                    manifest
                        .default_version(&dependency.name)
                        .is_some_and(|line| {
                            manifest::version_matches_line(&dependency.version, line)
                        })
                })
                .collect();
            if defaulted.is_empty() {
                candidates.clone()
            } else {
                defaulted
            }
        }
    };
    matching
        .into_iter()
        .max_by(|a, b| manifest::compare_versions(&a.version, &b.version))
        .map(|dependency| Choice { dependency, reason })
        .ok_or_else(|| InstallerError::NotInManifest {
            elsewhere: crate::stack::STACKS
                .iter()
                .map(|stack| stack.name)
                .filter(|&stack| {
                    stack != settings.stack.name
                        && manifest.installers_on_any_stack().iter().any(
                            |(name, version, stacks)| {
                                stacks.contains(&stack)
                                    && python_major_of(name) == Some(python.major)
                                    && distribution
                                        .is_none_or(|wanted| distribution_of(name) == Some(wanted))
                                    && settings.conda_version.as_ref().is_none_or(|line| {
                                        manifest::version_matches_line(version, line)
                                    })
                            },
                        )
                })
                .collect(),
            wanted: Wanted { python, settings }.to_string(),
            stack: settings.stack.name.to_string(),
            offered: manifest
                .dependencies_for_stack(settings.stack.name)
                .map(|dependency| {
                    let python = python_major_of(&dependency.name)
                        .map(|major| format!(" (Python {major})"))
                        .unwrap_or_default();
                    format!("{} {}{python}", dependency.name, dependency.version)
                })
                .collect(),
        })
}

/// Where the installer comes from this time.
pub(crate) enum Origin {
    /// Already in the app cache from an earlier staging.
    AppCache,
    /// Shipped inside the cached buildpack.
    Buildpack,
    Downloaded,
}

/// Returns a verified installer file: from the cached buildpack (`file:`), the app cache, or
/// the network, in that order of preference. A file that fails its checksum is never run.
pub(crate) fn obtain(
    dependency: &Dependency,
    buildpack_dir: &Path,
    installers_cache: &Path,
) -> Result<(PathBuf, Origin), InstallerError> {
    if let Some(file) = &dependency.file {
        let path = buildpack_dir.join(file);
        log::detail(&format!("Copy [{}]", path.display()));
        if !path.is_file() {
            return Err(InstallerError::VendoredFileMissing {
                dependency: dependency.to_string(),
                path,
            });
        }
        let actual = digest::sha256_file(&path).map_err(|source| InstallerError::Io {
            path: path.clone(),
            source,
        })?;
        if !actual.eq_ignore_ascii_case(&dependency.sha256) {
            return Err(InstallerError::VendoredFileCorrupt {
                dependency: dependency.to_string(),
                expected: dependency.sha256.clone(),
                actual,
            });
        }
        return Ok((path, Origin::Buildpack));
    }
    let cached = installers_cache
        .join(dependency.sha256.to_ascii_lowercase())
        .join(dependency.file_name());
    if cached.is_file() {
        match digest::sha256_file(&cached) {
            Ok(actual) if actual.eq_ignore_ascii_case(&dependency.sha256) => {
                log::detail(&format!(
                    "Using {} from the app cache",
                    dependency.file_name()
                ));
                return Ok((cached, Origin::AppCache));
            }
            _ => {
                log::warning(&format!(
                    "The cached {} does not match its sha256; downloading it again.",
                    dependency.file_name()
                ));
                let _ = fs::remove_file(&cached);
            }
        }
    }
    log::detail(&format!("Download [{}]", log::redact_url(&dependency.uri)));
    let downloaded = download::fetch_verified(
        &dependency.uri,
        &dependency.sha256,
        &cached,
        Progress::Quiet,
    )?;
    log::detail(&format!(
        "Downloaded {} in {}",
        log::format_size(downloaded.bytes),
        log::format_duration(downloaded.duration)
    ));
    Ok((cached, Origin::Downloaded))
}

/// Lines of the installer's output worth a log line: its errors and warnings. The rest is
/// the payload unpacking and transaction chatter.
fn installer_line_matters(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.contains("error") || lower.contains("warning")
}

/// Runs the installer in batch mode into `prefix` (which must not exist: constructor's `-u`
/// is unreliable, an empty prefix is not) and returns the conda executable it installed.
pub(crate) fn install(
    dependency: &Dependency,
    installer: &Path,
    prefix: &Path,
    scratch: &Scratch,
) -> Result<PathBuf, InstallerError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InstallerError::Io { path, source }
    };
    crate::io::fsutil::remove_if_exists(prefix).map_err(io_error(prefix))?;
    if let Some(parent) = prefix.parent() {
        fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    let mut command = Command::new("bash");
    command.arg(installer).arg("-b").arg("-p").arg(prefix);
    scratch.apply(&mut command);
    // The installer warns about PYTHONPATH and its python would honour it; neither helps.
    command.env_remove("PYTHONPATH").env_remove("PYTHONHOME");
    let finished = process::run(
        &mut command,
        &format!("installing {dependency}"),
        Echo {
            keep: installer_line_matters,
            live_stderr: false,
        },
    )
    .map_err(io_error(installer))?;
    if !finished.status.success() {
        let output: Vec<String> = finished.stderr.into_iter().chain(finished.stdout).collect();
        return Err(InstallerError::Failed {
            dependency: dependency.to_string(),
            status: process::describe_status(finished.status),
            disk_full: crate::staging::conda_failure::mentions_full_disk(&output),
            output,
        });
    }
    let conda = prefix.join("bin").join("conda");
    if !conda.is_file() {
        return Err(InstallerError::NoConda {
            dependency: dependency.to_string(),
            path: conda,
        });
    }
    Ok(conda)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staging::python_version::Source;

    fn manifest() -> Manifest {
        Manifest::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("manifest.yml")).unwrap()
    }

    fn python(major: u64) -> PythonChoice {
        PythonChoice {
            major,
            requested: None,
            source: Source::Default,
            pin: None,
        }
    }

    fn settings(distribution: Option<&str>, version: Option<&str>, stack: &str) -> Settings {
        Settings::from_lookup(|name| match name {
            "BP_CONDA_DISTRIBUTION" => distribution.map(str::to_string),
            "BP_CONDA_VERSION" => version.map(str::to_string),
            "CF_STACK" => Some(stack.to_string()),
            _ => None,
        })
        .unwrap()
    }

    fn chosen(major: u64, distribution: Option<&str>, version: Option<&str>) -> String {
        let manifest = manifest();
        choose(
            &manifest,
            &python(major),
            &settings(distribution, version, "cflinuxfs4"),
        )
        .map(|choice| choice.dependency.to_string())
        .unwrap_or_else(|error| format!("error: {error}"))
    }

    #[test]
    fn the_python_major_picks_the_installer_line() {
        assert_eq!(chosen(3, None, None), "miniforge3 26.5.3");
        assert_eq!(chosen(2, None, None), "miniconda2 4.7.12.1");
        assert_eq!(
            chosen(3, Some("miniconda"), None),
            "miniconda3-py311 25.9.1"
        );
        assert_eq!(chosen(3, Some("miniforge"), None), "miniforge3 26.5.3");
    }

    #[test]
    fn the_order_of_default_versions_makes_the_default_distribution() {
        let mut manifest = manifest();
        let settings = settings(None, None, "cflinuxfs4");
        let choice = choose(&manifest, &python(3), &settings).unwrap();
        assert!(
            choice
                .reason
                .contains("without Anaconda's Terms of Service"),
            "{}",
            choice.reason
        );
        // An operator who moves Miniconda's entry first makes it the default.
        let position = manifest
            .default_versions
            .iter()
            .position(|default| default.name == "miniconda3-py311")
            .unwrap();
        let miniconda = manifest.default_versions.remove(position);
        manifest.default_versions.insert(0, miniconda);
        let choice = choose(&manifest, &python(3), &settings).unwrap();
        assert_eq!(choice.dependency.to_string(), "miniconda3-py311 25.9.1");
        assert_eq!(choice.reason, "the default for Python 3");
    }

    #[test]
    fn bp_conda_version_chooses_a_line_or_an_exact_version() {
        assert_eq!(chosen(3, None, Some("4.12.x")), "miniconda3-py39 4.12.0");
        // Both distributions have 24.7.1: the default one's wins, unless the app says.
        assert_eq!(chosen(3, None, Some("24.7.1")), "miniforge3 24.7.1");
        assert_eq!(
            chosen(3, Some("miniconda"), Some("24.7.1")),
            "miniconda3-py39 24.7.1"
        );
        assert_eq!(chosen(3, None, Some("4.7.12.1")), "miniconda3 4.7.12.1");
        assert_eq!(chosen(3, None, Some("4.x")), "miniconda3-py39 4.12.0");
        // Older Miniforge stays selectable.
        assert_eq!(chosen(3, None, Some("26.3.x")), "miniforge3 26.3.2");
    }

    #[test]
    fn an_installer_a_stack_cannot_run_falls_back_to_the_newest_it_can() {
        // Miniconda 25.9 needs glibc 2.28: on cflinuxfs3 the newest Miniconda it runs is chosen.
        let manifest = manifest();
        let choice = choose(
            &manifest,
            &python(3),
            &settings(Some("miniconda"), None, "cflinuxfs3"),
        )
        .unwrap();
        assert_eq!(choice.dependency.to_string(), "miniconda3-py39 25.7.0");
    }

    #[test]
    fn impossible_requests_list_what_the_manifest_offers() {
        let manifest = manifest();
        for (major, distribution, version) in [
            (4, None, None),
            (2, Some("miniforge"), None),
            (3, None, Some("9.9.x")),
        ] {
            let error = choose(
                &manifest,
                &python(major),
                &settings(distribution, version, "cflinuxfs4"),
            )
            .unwrap_err();
            let InstallerError::NotInManifest { offered, .. } = error else {
                panic!("unexpected error");
            };
            assert!(
                offered.contains(&"miniconda2 4.7.12.1 (Python 2)".to_string()),
                "{offered:?}"
            );
            assert_eq!(offered.len(), manifest.dependencies.len());
        }
    }

    #[test]
    fn a_line_missing_on_this_stack_names_the_stacks_that_have_it() {
        let mut manifest = manifest();
        for dependency in &mut manifest.dependencies {
            if dependency.name == "miniforge3" {
                dependency.cf_stacks = vec!["cflinuxfs5".into()];
            }
        }
        let error = choose(
            &manifest,
            &python(3),
            &settings(Some("miniforge"), None, "cflinuxfs4"),
        )
        .unwrap_err();
        assert!(
            matches!(error, InstallerError::NotInManifest { ref elsewhere, .. } if *elsewhere == ["cflinuxfs5"]),
            "{error:?}"
        );
    }
}
