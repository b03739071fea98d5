//! The buildpack's `manifest.yml`: pinned installers with their sha256, default versions,
//! deprecation dates and the packaging file list, in the format of Cloud Foundry's
//! buildpack-packager and libbuildpack.

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid buildpack manifest: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub(crate) language: String,
    /// Set in a zip built for one stack; then every dependency is for that stack.
    #[serde(default)]
    pub(crate) stack: Option<String>,
    #[serde(default)]
    pub(crate) default_versions: Vec<DefaultVersion>,
    #[serde(default)]
    pub(crate) dependency_deprecation_dates: Vec<DeprecationDate>,
    #[serde(default)]
    pub(crate) dependencies: Vec<Dependency>,
    #[serde(default)]
    pub(crate) include_files: Vec<String>,
    #[serde(default)]
    pub(crate) pre_package: Option<String>,
    /// In a zip built for one stack: the installers left out because they are for other
    /// stacks, so a staging that finds none here can say which stacks have one.
    #[serde(default)]
    pub(crate) other_stacks: Vec<Elsewhere>,
}

/// An installer of another stack's zip.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Elsewhere {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) cf_stacks: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultVersion {
    pub(crate) name: String,
    pub(crate) version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeprecationDate {
    pub(crate) name: String,
    pub(crate) version_line: String,
    pub(crate) date: String,
    #[serde(default)]
    pub(crate) link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dependency {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) uri: String,
    pub(crate) sha256: String,
    #[serde(default)]
    pub(crate) cf_stacks: Vec<String>,
    #[serde(default)]
    pub(crate) source: Option<String>,
    #[serde(default)]
    pub(crate) source_sha256: Option<String>,
    /// Present in a cached zip: the dependency's path inside the buildpack.
    #[serde(default)]
    pub(crate) file: Option<String>,
}

impl Dependency {
    /// The file name the URI ends with, as the packager and the app cache name it.
    pub(crate) fn file_name(&self) -> &str {
        let path = self.uri.split(['?', '#']).next().unwrap_or(&self.uri);
        path.rsplit('/')
            .find(|segment| !segment.is_empty())
            .unwrap_or("dependency")
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.name, self.version)
    }
}

impl Manifest {
    pub(crate) fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| ManifestError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses and validates: a manifest that would fail later (a bad checksum, a dependency
    /// with no stack) fails here, when the buildpack is packaged or first run.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        crate::io::yaml_depth::check_flow_nesting(text).map_err(|error| error.to_string())?;
        let manifest: Self = serde_yaml_ng::from_str(text).map_err(|error| error.to_string())?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), String> {
        if self.language.trim().is_empty() {
            return Err("`language` is empty".into());
        }
        for dependency in &self.dependencies {
            let is_hex = dependency.sha256.len() == 64
                && dependency.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !is_hex {
                return Err(format!(
                    "dependency {dependency} has sha256 `{}`, which is not 64 hex digits",
                    dependency.sha256
                ));
            }
            if dependency.uri.trim().is_empty() {
                return Err(format!("dependency {dependency} has no uri"));
            }
            if self.stack.is_none() && dependency.cf_stacks.is_empty() {
                return Err(format!("dependency {dependency} lists no cf_stacks"));
            }
            for stack in dependency.cf_stacks.iter().chain(&self.stack) {
                if crate::stack::find(stack).is_none() {
                    return Err(format!(
                        "dependency {dependency} lists stack `{stack}`, which this buildpack \
                         does not support (it supports {})",
                        crate::stack::supported_names()
                    ));
                }
            }
            if let Some(file) = &dependency.file {
                let path = Path::new(file);
                let escapes = path.is_absolute()
                    || path
                        .components()
                        .any(|c| matches!(c, std::path::Component::ParentDir));
                if escapes {
                    return Err(format!(
                        "dependency {dependency} has file `{file}` outside the buildpack"
                    ));
                }
            }
        }
        for default in &self.default_versions {
            let count = self
                .default_versions
                .iter()
                .filter(|other| other.name == default.name)
                .count();
            if count > 1 {
                return Err(format!(
                    "default_versions names `{}` {count} times; it must name it once",
                    default.name
                ));
            }
        }
        for deprecation in &self.dependency_deprecation_dates {
            jiff::civil::Date::strptime("%Y-%m-%d", &deprecation.date).map_err(|_| {
                format!(
                    "deprecation date `{}` of {} is not YYYY-MM-DD",
                    deprecation.date, deprecation.name
                )
            })?;
        }
        Ok(())
    }

    /// The dependencies usable on `stack`: a single-stack manifest's own stack, or the
    /// entries whose `cf_stacks` list it.
    pub(crate) fn dependencies_for_stack<'m, 's>(
        &'m self,
        stack: &'s str,
    ) -> impl Iterator<Item = &'m Dependency> + use<'m, 's> {
        self.dependencies
            .iter()
            .filter(move |dependency| match &self.stack {
                Some(own) => own == stack,
                None => dependency.cf_stacks.iter().any(|s| s == stack),
            })
    }

    /// Every (name, version, stacks) the manifest knows of, this zip's stack or others.
    pub(crate) fn installers_on_any_stack(&self) -> Vec<(&str, &str, Vec<&str>)> {
        self.dependencies
            .iter()
            .map(|dependency| {
                let stacks = match &self.stack {
                    Some(own) => vec![own.as_str()],
                    None => dependency.cf_stacks.iter().map(String::as_str).collect(),
                };
                (
                    dependency.name.as_str(),
                    dependency.version.as_str(),
                    stacks,
                )
            })
            .chain(self.other_stacks.iter().map(|elsewhere| {
                (
                    elsewhere.name.as_str(),
                    elsewhere.version.as_str(),
                    elsewhere.cf_stacks.iter().map(String::as_str).collect(),
                )
            }))
            .collect()
    }

    pub(crate) fn default_version(&self, name: &str) -> Option<&str> {
        self.default_versions
            .iter()
            .find(|default| default.name == name)
            .map(|default| default.version.as_str())
    }

    /// Deprecation entries that apply to `dependency`.
    pub(crate) fn deprecations_for<'a>(
        &'a self,
        dependency: &'a Dependency,
    ) -> impl Iterator<Item = &'a DeprecationDate> + 'a {
        self.dependency_deprecation_dates
            .iter()
            .filter(move |entry| {
                entry.name == dependency.name
                    && version_matches_line(&dependency.version, &entry.version_line)
            })
    }
}

/// What the log says about a deprecation date, libbuildpack's rule: a warning when the date
/// is less than 30 days away or already past.
pub(crate) fn deprecation_warning(
    dependency: &Dependency,
    entry: &DeprecationDate,
    today: jiff::civil::Date,
) -> Option<String> {
    let date = jiff::civil::Date::strptime("%Y-%m-%d", &entry.date).ok()?;
    let link = entry
        .link
        .as_ref()
        .map(|link| format!("\nSee: {link}"))
        .unwrap_or_default();
    // `manifest update` writes `x` for a line whose every version shares one Python.
    let line = if entry.version_line.trim() == "x" {
        "(every version)"
    } else {
        entry.version_line.as_str()
    };
    if date <= today {
        Some(format!(
            "{} {line} reached its end of life on {} and will be removed from a future release of \
             this buildpack.{link}",
            dependency.name, entry.date
        ))
    } else if today.saturating_add(jiff::Span::new().days(30)) > date {
        Some(format!(
            "{} {line} will no longer be available in new buildpacks released after {}.{link}",
            dependency.name, entry.date
        ))
    } else {
        None
    }
}

/// `4.12.x`, `4.12.*` and `4.x` are version lines; anything else must match exactly.
pub(crate) fn version_matches_line(version: &str, line: &str) -> bool {
    let line = line.trim();
    let wildcard = |segment: &str| segment == "x" || segment == "*";
    let line_segments: Vec<&str> = line.split('.').collect();
    if !line_segments.iter().any(|segment| wildcard(segment)) {
        return version == line;
    }
    let version_segments: Vec<&str> = version.split('.').collect();
    for (index, segment) in line_segments.iter().enumerate() {
        if wildcard(segment) {
            // Everything from the first wildcard on matches.
            return version_segments.len() >= index;
        }
        if version_segments.get(index) != Some(segment) {
            return false;
        }
    }
    true
}

/// Orders installer versions (`4.7.12.1` < `4.12.0` < `25.7.0`) segment by segment,
/// numerically where both segments are numbers.
pub(crate) fn compare_versions(left: &str, right: &str) -> Ordering {
    let mut lefts = left.split(['.', '-']);
    let mut rights = right.split(['.', '-']);
    loop {
        match (lefts.next(), rights.next()) {
            (None, None) => return Ordering::Equal,
            (Some(_), None) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            (Some(l), Some(r)) => {
                let order = match (l.parse::<u64>(), r.parse::<u64>()) {
                    (Ok(l), Ok(r)) => l.cmp(&r),
                    _ => l.cmp(r),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository_manifest() -> Manifest {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifest.yml");
        Manifest::load(&path).expect("the repository's manifest.yml is valid")
    }

    #[test]
    fn the_shipped_manifest_pins_real_installers_for_both_stacks() {
        let manifest = repository_manifest();
        assert_eq!(manifest.language, "conda");
        for stack in ["cflinuxfs4", "cflinuxfs3"] {
            let names: Vec<_> = manifest
                .dependencies_for_stack(stack)
                .map(|d| d.name.as_str())
                .collect();
            for wanted in ["miniconda3-py39", "miniconda3", "miniconda2", "miniforge3"] {
                assert!(names.contains(&wanted), "{wanted} missing on {stack}");
            }
        }
        for dependency in &manifest.dependencies {
            assert!(dependency.uri.starts_with("https://"), "{dependency}");
            assert!(
                dependency.file.is_none(),
                "the source manifest vendors nothing"
            );
        }
        for default in &manifest.default_versions {
            assert!(
                manifest.dependencies.iter().any(|d| d.name == default.name
                    && version_matches_line(&d.version, &default.version)),
                "default_versions names {} {}, which no entry has",
                default.name,
                default.version
            );
        }
    }

    #[test]
    fn a_manifest_with_a_bad_checksum_is_refused() {
        let text = "language: conda\ndependencies:\n- name: x\n  version: '1'\n  uri: https://h/x.sh\n  sha256: abc\n  cf_stacks: [cflinuxfs4]\n";
        let error = Manifest::parse(text).unwrap_err();
        assert!(error.contains("not 64 hex digits"), "{error}");
    }

    #[test]
    fn a_file_outside_the_buildpack_is_refused() {
        let text = format!(
            "language: conda\ndependencies:\n- name: x\n  version: '1'\n  uri: https://h/x.sh\n  sha256: {}\n  cf_stacks: [cflinuxfs4]\n  file: ../../etc/passwd\n",
            "a".repeat(64)
        );
        assert!(Manifest::parse(&text).unwrap_err().contains("outside"));
    }

    #[test]
    fn a_stack_outside_the_stack_table_is_refused() {
        let text = format!(
            "language: conda\ndependencies:\n- name: x\n  version: '1'\n  uri: https://h/x.sh\n  sha256: {}\n  cf_stacks: [cflinuxfs4, cflinuxfs9]\n",
            "a".repeat(64)
        );
        let error = Manifest::parse(&text).unwrap_err();
        assert!(
            error.contains("lists stack `cflinuxfs9`, which this buildpack does not support"),
            "{error}"
        );
    }

    #[test]
    fn version_lines_match_by_leading_segments() {
        assert!(version_matches_line("4.12.0", "4.12.x"));
        assert!(version_matches_line("4.12.0", "4.x"));
        assert!(!version_matches_line("4.7.12.1", "4.12.x"));
        assert!(version_matches_line("4.7.12.1", "4.7.12.1"));
        assert!(!version_matches_line("4.7.12.1", "4.7.12"));
        assert!(version_matches_line("25.7.0", "25.7.*"));
    }

    #[test]
    fn installer_versions_order_numerically() {
        let mut versions = vec!["25.7.0", "4.12.0", "4.7.12.1", "24.7.1"];
        versions.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(versions, ["4.7.12.1", "4.12.0", "24.7.1", "25.7.0"]);
    }

    #[test]
    fn deprecation_warns_within_thirty_days_and_after() {
        let manifest = repository_manifest();
        let miniconda2 = manifest
            .dependencies
            .iter()
            .find(|d| d.name == "miniconda2")
            .unwrap();
        let entry = manifest.deprecations_for(miniconda2).next().unwrap();
        let after = jiff::civil::date(2026, 11, 22);
        let warning = deprecation_warning(miniconda2, entry, after).unwrap();
        assert!(
            warning.contains("reached its end of life on 2020-01-01"),
            "{warning}"
        );
        let soon = jiff::civil::date(2019, 12, 10);
        assert!(
            deprecation_warning(miniconda2, entry, soon)
                .unwrap()
                .contains("no longer be available")
        );
        assert!(deprecation_warning(miniconda2, entry, jiff::civil::date(2019, 1, 1)).is_none());
        let every = DeprecationDate {
            version_line: "x".into(),
            ..entry.clone()
        };
        assert!(
            deprecation_warning(miniconda2, &every, after)
                .unwrap()
                .starts_with("miniconda2 (every version) reached its end of life"),
        );
    }
}
