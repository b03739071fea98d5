//! `conda-lock.yml` version 1, the unified format (CEP 37) that conda-lock and conda's own
//! `conda export --format conda-lock-v1` write: one flat `package` list, each entry with its
//! platform, manager (`conda`, or `pip` for PyPI) and hashes.

use serde_yaml_ng::Value;

use super::{CondaPackage, LockError, PLATFORM, PypiPackage, describe, invalid, scalar};

pub(super) fn parse(
    file: &str,
    text: &str,
) -> Result<(Vec<CondaPackage>, Vec<PypiPackage>), LockError> {
    let invalid = invalid(file);
    let root = &super::versioned_root(file, text, &super::CONDA_LOCK)?;
    let packages = match root.get("package") {
        Some(Value::Sequence(packages)) => packages.as_slice(),
        Some(Value::Null) | None => &[],
        Some(other) => {
            return Err(invalid(format!(
                "`package` is {}, not a list",
                describe(other)
            )));
        }
    };
    let mut platforms: Vec<String> = root
        .get("metadata")
        .and_then(|metadata| metadata.get("platforms"))
        .and_then(Value::as_sequence)
        .map(|list| list.iter().filter_map(scalar).collect())
        .unwrap_or_default();
    let mut conda = Vec::new();
    let mut pypi = Vec::new();
    for (index, entry) in packages.iter().enumerate() {
        let field = |key: &str| entry.get(key).and_then(scalar);
        let required = |key: &str| {
            field(key).ok_or_else(|| {
                invalid(format!(
                    "`package` entry {} has no `{key}`; write the file with `conda-lock`",
                    index + 1
                ))
            })
        };
        let platform = required("platform")?;
        if !platforms.contains(&platform) {
            platforms.push(platform.clone());
        }
        // What `conda-lock install` installs by default, as conda's plugin does: the main
        // category, without optional (dev) packages.
        let category = field("category").unwrap_or_else(|| "main".into());
        let optional = entry.get("optional").and_then(Value::as_bool) == Some(true);
        if platform != PLATFORM || category != "main" || optional {
            continue;
        }
        let url = required("url")?;
        let hash = entry.get("hash");
        let hash_of = |key: &str| hash.and_then(|hash| hash.get(key)).and_then(scalar);
        match required("manager")?.as_str() {
            "conda" => conda.push(super::conda_package(
                file,
                &url,
                hash_of("sha256").as_deref(),
                hash_of("md5").as_deref(),
            )?),
            // conda-lock writes `pip`; conda's plugin reads `pypi`.
            "pip" | "pypi" => pypi.push(super::pypi_package(
                file,
                &required("name")?,
                &required("version")?,
                &url,
                hash_of("sha256").as_deref(),
            )?),
            other => {
                return Err(invalid(format!(
                    "`package` entry {} has manager `{other}`; conda-lock writes `conda` or `pip`",
                    index + 1
                )));
            }
        }
    }
    if conda.is_empty() {
        platforms.retain(|platform| platform != PLATFORM);
        return Err(LockError::NoLinux {
            file: file.to_string(),
            environment: None,
            platforms,
        });
    }
    Ok((conda, pypi))
}
