//! `pixi.lock`, rattler-lock format version 6 (pixi >= 0.40, and conda's own
//! `conda export --format rattler-lock-v6`): named environments, each listing per platform the
//! URLs of its packages; a top-level `packages` list holds each package's checksums.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::{CondaPackage, LockError, PLATFORM, PypiPackage, describe, invalid, scalar};

pub(super) fn parse(
    file: &str,
    text: &str,
    wanted: Option<&str>,
) -> Result<(String, Vec<CondaPackage>, Vec<PypiPackage>), LockError> {
    let invalid = invalid(file);
    let root = &super::versioned_root(file, text, &super::PIXI)?;
    let Some(Value::Mapping(environments)) = root.get("environments") else {
        return Err(invalid("it has no `environments` mapping".into()));
    };
    let names: Vec<String> = environments.keys().filter_map(scalar).collect();
    let from_setting = wanted.is_some_and(|wanted| !wanted.trim().is_empty());
    let name = wanted
        .map(str::trim)
        .filter(|wanted| !wanted.is_empty())
        .unwrap_or("default")
        .to_string();
    let Some(environment) = environments.get(name.as_str()) else {
        return Err(LockError::UnknownEnvironment {
            file: file.to_string(),
            wanted: name,
            available: names,
            from_setting,
        });
    };
    let platforms = match environment.get("packages") {
        Some(Value::Mapping(platforms)) => platforms,
        Some(Value::Null) | None => &serde_yaml_ng::Mapping::new(),
        Some(other) => {
            return Err(invalid(format!(
                "the packages of environment `{name}` are {}, not a mapping of platforms",
                describe(other)
            )));
        }
    };
    let Some(references) = platforms.get(PLATFORM) else {
        return Err(LockError::NoLinux {
            file: file.to_string(),
            environment: Some(name),
            platforms: platforms.keys().filter_map(scalar).collect(),
        });
    };
    let references = match references {
        Value::Sequence(references) => references.as_slice(),
        Value::Null => &[],
        other => {
            return Err(invalid(format!(
                "`environments.{name}.packages.linux-64` is {}, not a list",
                describe(other)
            )));
        }
    };
    if references.is_empty() {
        return Err(LockError::NoLinux {
            file: file.to_string(),
            environment: Some(name),
            platforms: Vec::new(),
        });
    }
    let details = details(file, root)?;
    let mut conda = Vec::new();
    let mut pypi = Vec::new();
    for reference in references {
        let (kind, url) = reference_of(reference).ok_or_else(|| {
            invalid(format!(
                "an entry of `environments.{name}.packages.linux-64` is not `- conda: URL` or \
                 `- pypi: URL`"
            ))
        })?;
        let entry = details.get(&(kind, url.clone())).ok_or_else(|| {
            invalid(format!(
                "the package {url} of environment `{name}` is not in `packages`; run `pixi \
                 lock` again"
            ))
        })?;
        let field = |key: &str| entry.get(key).and_then(scalar);
        match kind {
            Kind::Conda => {
                conda.push(super::conda_package(
                    file,
                    &url,
                    field("sha256").as_deref(),
                    field("md5").as_deref(),
                )?);
            }
            Kind::Pypi => {
                let package_name = field("name")
                    .ok_or_else(|| invalid(format!("the PyPI package {url} has no `name`")))?;
                let version = field("version")
                    .ok_or_else(|| invalid(format!("the PyPI package {url} has no `version`")))?;
                pypi.push(super::pypi_package(
                    file,
                    &package_name,
                    &version,
                    &url,
                    field("sha256").as_deref(),
                )?);
            }
        }
    }
    Ok((name, conda, pypi))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Conda,
    Pypi,
}

fn reference_of(value: &Value) -> Option<(Kind, String)> {
    match (value.get("conda"), value.get("pypi")) {
        (Some(url), None) => scalar(url).map(|url| (Kind::Conda, url)),
        (None, Some(url)) => scalar(url).map(|url| (Kind::Pypi, url)),
        _ => None,
    }
}

/// The top-level `packages` list by (kind, URL).
fn details<'a>(
    file: &str,
    root: &'a serde_yaml_ng::Mapping,
) -> Result<BTreeMap<(Kind, String), &'a Value>, LockError> {
    let packages = match root.get("packages") {
        Some(Value::Sequence(packages)) => packages.as_slice(),
        Some(Value::Null) | None => &[],
        Some(other) => {
            return Err(LockError::Invalid {
                file: file.to_string(),
                reason: format!("`packages` is {}, not a list", describe(other)),
            });
        }
    };
    Ok(packages
        .iter()
        .filter_map(|entry| reference_of(entry).map(|key| (key, entry)))
        .collect())
}
