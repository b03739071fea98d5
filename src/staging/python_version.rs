//! Which Python the app gets, decided once and stated in the log. Authority, highest first:
//! the `python` spec of environment.yml (or the `python` package of an `@EXPLICIT` spec file),
//! then `runtime.txt`, then the default, Python 3.

use std::fmt;
use std::str::FromStr;

use rattler_conda_types::{MatchSpec, PackageNameMatcher, ParseStrictness, Version};

use crate::staging::app::{App, RuntimeTxt};

#[derive(Debug, thiserror::Error)]
pub(crate) enum PythonVersionError {
    #[error("{file} asks for `{spec}`, which is not a valid conda spec: {reason}")]
    InvalidSpec {
        file: String,
        spec: String,
        reason: String,
    },
    #[error("{file} asks for `{spec}`, which no Python version satisfies")]
    Unsatisfiable { file: String, spec: String },
}

/// Where the decision came from, for the log line and the cache fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    EnvironmentFile(String),
    Lockfile(String),
    RuntimeTxt,
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EnvironmentFile(file) | Self::Lockfile(file) => {
                write!(formatter, "from {file}")
            }
            Self::RuntimeTxt => write!(formatter, "from runtime.txt"),
            Self::Default => write!(formatter, "the default"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PythonChoice {
    pub(crate) major: u64,
    /// What the app wrote, for the log (`python=3.11`, `python-2.7.18`).
    pub(crate) requested: Option<String>,
    pub(crate) source: Source,
    /// A conda spec the buildpack adds to the environment when only runtime.txt named the
    /// version, so the solve gets that Python and not whatever the installer ships.
    pub(crate) pin: Option<String>,
}

impl fmt::Display for PythonChoice {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.requested, &self.source) {
            (_, Source::Default) => write!(formatter, "Python {} (the default)", self.major),
            (Some(requested), source) => {
                write!(formatter, "Python {} ({source}: {requested})", self.major)
            }
            (None, source) => write!(formatter, "Python {} ({source})", self.major),
        }
    }
}

/// The decision, plus a warning when runtime.txt and the environment disagree.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) choice: PythonChoice,
    pub(crate) conflict: Option<String>,
}

pub(crate) fn decide(app: &App) -> Result<Decision, PythonVersionError> {
    let from_environment = match &app.lock {
        Some(lock) => locked_python(lock).map(|(version, written)| {
            let major = major_of(&version).unwrap_or(3);
            // The lock's exact version: runtime.txt must allow it.
            let exact =
                MatchSpec::from_str(&format!("python =={version}"), ParseStrictness::Lenient).ok();
            (
                major,
                written,
                Source::Lockfile(lock.file_name.clone()),
                exact,
            )
        }),
        None => None,
    };
    let from_environment = match from_environment {
        Some(found) => Some(found),
        None => match &app.environment {
            Some(environment) => {
                environment_python(&environment.file_name, environment.spec.conda_specs())?.map(
                    |(major, written, spec)| {
                        (
                            major,
                            written,
                            Source::EnvironmentFile(environment.file_name.clone()),
                            Some(spec),
                        )
                    },
                )
            }
            None => None,
        },
    };
    let runtime = app.runtime_txt.as_ref();
    let decision = match (from_environment, runtime) {
        (Some((major, written, source, spec)), runtime) => {
            let conflict = runtime.and_then(|runtime| {
                let agrees = spec.as_ref().map_or_else(
                    || runtime.segments.first() == Some(&major),
                    |spec| runtime_satisfies(spec, runtime),
                );
                (!agrees).then(|| {
                    format!(
                        "runtime.txt asks for python-{} but {} asks for `{written}`; using {}. \
                         Remove runtime.txt or make the two agree.",
                        runtime.written,
                        match &source {
                            Source::EnvironmentFile(file) | Source::Lockfile(file) => file.as_str(),
                            _ => "the environment",
                        },
                        match &source {
                            Source::EnvironmentFile(file) | Source::Lockfile(file) => file.as_str(),
                            _ => "it",
                        }
                    )
                })
            });
            Decision {
                choice: PythonChoice {
                    major,
                    requested: Some(written),
                    source,
                    pin: None,
                },
                conflict,
            }
        }
        (None, Some(runtime)) => Decision {
            choice: PythonChoice {
                major: runtime.segments.first().copied().unwrap_or(3),
                requested: Some(format!("python-{}", runtime.written)),
                source: Source::RuntimeTxt,
                pin: Some(runtime_pin(runtime)),
            },
            conflict: None,
        },
        (None, None) => Decision {
            choice: PythonChoice {
                major: 3,
                requested: None,
                source: Source::Default,
                pin: None,
            },
            conflict: None,
        },
    };
    Ok(decision)
}

/// `python=2.7.18` for an exact runtime.txt, `python=3.9` for `3.9.x` (conda's `=` is a
/// prefix match), `python=3` for `python-3`.
fn runtime_pin(runtime: &RuntimeTxt) -> String {
    let version = runtime
        .segments
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".");
    if runtime.is_line {
        format!("python={version}")
    } else {
        format!("python=={version}")
    }
}

/// Finds the `python` spec among the environment's conda specs and the major version it
/// leads to: the highest major any version it admits has, as a solve would pick.
fn environment_python<'a>(
    file: &str,
    specs: impl Iterator<Item = &'a str>,
) -> Result<Option<(u64, String, MatchSpec)>, PythonVersionError> {
    for written in specs {
        if spec_name(written) != Some("python") {
            // Only the python spec matters here; conda itself judges the others.
            continue;
        }
        // Finding the major probes each version the spec names against the whole spec: the
        // time grows with the square of its length (5,000 alternatives took 14 s). No real
        // python spec is anywhere near this long.
        if written.len() > MAX_PYTHON_SPEC {
            return Err(PythonVersionError::InvalidSpec {
                file: file.to_string(),
                spec: format!("{}...", written.chars().take(40).collect::<String>()),
                reason: format!(
                    "it is {} characters long; a python spec has a few versions, at most \
                     {MAX_PYTHON_SPEC} characters",
                    written.len()
                ),
            });
        }
        let spec = MatchSpec::from_str(
            &crate::staging::app::tolerant_spec(written),
            ParseStrictness::Lenient,
        )
        .map_err(|error| PythonVersionError::InvalidSpec {
            file: file.to_string(),
            spec: written.to_string(),
            reason: error.to_string(),
        })?;
        let is_python = matches!(&spec.name, PackageNameMatcher::Exact(name) if name.as_normalized() == "python");
        if !is_python {
            continue;
        }
        let major = match &spec.version {
            None => 3,
            Some(version_spec) => highest_admitted_major(&version_spec.to_string(), |version| {
                version_spec.matches(version)
            })
            .ok_or_else(|| PythonVersionError::Unsatisfiable {
                file: file.to_string(),
                spec: written.to_string(),
            })?,
        };
        return Ok(Some((major, written.to_string(), spec)));
    }
    Ok(None)
}

/// The longest python spec the buildpack reads (`python>=3.9,<3.12` is 17).
const MAX_PYTHON_SPEC: usize = 256;

/// The package name a spec starts with (`python` in `conda-forge::python>=3.9`).
fn spec_name(written: &str) -> Option<&str> {
    let written = written.rsplit("::").next()?.trim();
    let end = written
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(written.len());
    let name = &written[..end];
    // `python-3` style is not a spec name, and version digits are not part of the name.
    Some(name.trim_end_matches(|c: char| c == '.' || c.is_ascii_digit()))
}

/// Probes the versions a spec mentions, and the ends of each major line, for the majors the
/// spec admits. A spec's admitted set is a union of ranges bounded by the versions it
/// mentions, so those probes (and each line's extremes) find every major it reaches.
fn highest_admitted_major(spec_text: &str, admits: impl Fn(&Version) -> bool) -> Option<u64> {
    let mut probes: Vec<String> = Vec::new();
    for major in 1..=9 {
        probes.push(format!("{major}.0.0"));
        probes.push(format!("{major}.999.999"));
    }
    let mut seen = std::collections::HashSet::new();
    for token in spec_text.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
        let token = token.trim_matches('.');
        if token.is_empty() || !seen.insert(token) {
            continue;
        }
        probes.push(token.to_string());
        probes.push(format!("{token}.0"));
        probes.push(format!("{token}.999"));
    }
    let admitted: Vec<u64> = probes
        .iter()
        .filter_map(|probe| Version::from_str(probe).ok())
        .filter(|version| admits(version))
        .filter_map(|version| major_of(&version))
        .collect();
    // A solve picks the newest Python that exists: 3 over 2. A spec that admits neither
    // (`python>=4`) names the lowest major it asks for, which the installer choice refuses.
    [3, 2]
        .into_iter()
        .find(|major| admitted.contains(major))
        .or_else(|| admitted.iter().copied().min())
}

fn major_of(version: &Version) -> Option<u64> {
    version.segments().next()?.components().next()?.as_number()
}

fn runtime_satisfies(spec: &MatchSpec, runtime: &RuntimeTxt) -> bool {
    let Some(version_spec) = &spec.version else {
        return true;
    };
    let base = runtime
        .segments
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".");
    let candidates = if runtime.is_line {
        vec![format!("{base}.0"), format!("{base}.999"), base.clone()]
    } else {
        vec![base]
    };
    candidates
        .iter()
        .filter_map(|candidate| Version::from_str(candidate).ok())
        .any(|version| version_spec.matches(&version))
}

/// The locked python package: `.../python-2.7.18-h15b4118_1.tar.bz2`.
fn locked_python(lock: &crate::staging::app::lockfile::Lock) -> Option<(Version, String)> {
    let python = lock.python()?;
    Version::from_str(&python.version)
        .ok()
        .map(|parsed| (parsed, format!("python {}", python.version)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staging::app::{EnvironmentFile, parse_environment, parse_runtime_txt};

    fn app(environment: Option<&str>, runtime: Option<&str>) -> App {
        App {
            environment: environment.map(|text| EnvironmentFile {
                file_name: "environment.yml".into(),
                bytes: text.as_bytes().to_vec(),
                spec: parse_environment("environment.yml", text).unwrap(),
            }),
            runtime_txt: runtime.map(|text| parse_runtime_txt(text).unwrap()),
            lock: None,
            passed_over: Vec::new(),
            vendor_dir: None,
        }
    }

    fn major_of(spec: &str) -> u64 {
        decide(&app(Some(&format!("dependencies: ['{spec}']")), None))
            .unwrap()
            .choice
            .major
    }

    #[test]
    fn every_spec_form_gives_the_major_a_solve_would_pick() {
        assert_eq!(major_of("python=2.7"), 2);
        assert_eq!(major_of("python=2.7.*"), 2);
        assert_eq!(major_of("python==2.7.18"), 2);
        assert_eq!(major_of("python 3.9"), 3);
        assert_eq!(major_of("python>=3.9"), 3);
        assert_eq!(major_of("python>=2.7"), 3);
        assert_eq!(major_of("python<3"), 2);
        assert_eq!(major_of("python>=2.7,<3.0"), 2);
        assert_eq!(major_of("python"), 3);
        assert_eq!(major_of("conda-forge::python=3.11"), 3);
        assert_eq!(major_of("python>=4"), 4);
        assert_eq!(major_of("python=3.11=*_cpython"), 3);
    }

    #[test]
    fn the_environment_file_outranks_runtime_txt_and_says_so() {
        let decision = decide(&app(
            Some("dependencies: [python=3.11]"),
            Some("python-2.7.18"),
        ))
        .unwrap();
        assert_eq!(decision.choice.major, 3);
        let warning = decision.conflict.unwrap();
        assert!(
            warning.contains("runtime.txt asks for python-2.7.18"),
            "{warning}"
        );
        assert!(
            warning.contains("environment.yml asks for `python=3.11`"),
            "{warning}"
        );
        let agreeing = decide(&app(
            Some("dependencies: [python=3.11]"),
            Some("python-3.11.x"),
        ))
        .unwrap();
        assert!(agreeing.conflict.is_none());
        let agreeing = decide(&app(
            Some("dependencies: [python=3.11]"),
            Some("python-3.11.9"),
        ))
        .unwrap();
        assert!(agreeing.conflict.is_none());
    }

    #[test]
    fn runtime_txt_alone_pins_the_environment() {
        let decision = decide(&app(Some("dependencies: [numpy]"), Some("python-2.7.18"))).unwrap();
        assert_eq!(decision.choice.major, 2);
        assert_eq!(decision.choice.source, Source::RuntimeTxt);
        assert_eq!(decision.choice.pin.as_deref(), Some("python==2.7.18"));
        let line = decide(&app(Some("dependencies: [numpy]"), Some("python-3.9.x"))).unwrap();
        assert_eq!(line.choice.pin.as_deref(), Some("python=3.9"));
        assert_eq!(
            line.choice.to_string(),
            "Python 3 (from runtime.txt: python-python-3.9.x)".replace("python-python-", "python-")
        );
    }

    #[test]
    fn nothing_anywhere_means_python_3() {
        let decision = decide(&app(Some("dependencies: [numpy]"), None)).unwrap();
        assert_eq!(decision.choice.major, 3);
        assert_eq!(decision.choice.to_string(), "Python 3 (the default)");
    }

    #[test]
    fn an_absurdly_long_python_spec_is_refused_at_once() {
        let spec = format!(
            "python {}",
            (0..50_000)
                .map(|i| format!("{}.{i}", i % 9 + 1))
                .collect::<Vec<_>>()
                .join("|")
        );
        let started = std::time::Instant::now();
        let error = environment_python("environment.yml", std::iter::once(spec.as_str()))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        assert!(error.contains("python 1.0|2.1|3.2"), "{error}");
        // Long but sane specs still work.
        let spec = format!("python {}", vec!["3.11"; 40].join("|"));
        let found = environment_python("environment.yml", std::iter::once(spec.as_str()));
        assert_eq!(found.unwrap().map(|found| found.0), Some(3));
    }

    #[test]
    fn an_unsatisfiable_python_spec_is_an_error() {
        assert!(decide(&app(Some("dependencies: ['python>3,<3']"), None)).is_err());
    }

    #[test]
    fn the_explicit_spec_names_python_by_its_package() {
        let mut with_spec = app(None, Some("python-3.11.9"));
        with_spec.lock = Some(
            crate::staging::app::lockfile::parse(
                "spec-file.txt",
                crate::staging::app::lockfile::Format::Explicit,
                "@EXPLICIT\nhttps://repo/main/linux-64/python-2.7.18-h15b4118_1.tar.bz2\n",
                None,
            )
            .unwrap(),
        );
        let decision = decide(&with_spec).unwrap();
        assert_eq!(decision.choice.major, 2);
        assert!(decision.conflict.is_some());
    }
}
