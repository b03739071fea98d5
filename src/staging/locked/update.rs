//! A changed lock applied to the last environment: what differs, and conda removing what the
//! lock dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;

use super::{LockedError, run};
use crate::staging::app::lockfile::Lock;
use crate::staging::conda::Conda;

/// How the last environment differs from the lock.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Difference {
    /// conda packages to install: new, or another build or version than installed.
    pub(crate) install: Vec<usize>,
    /// conda packages installed and no longer locked, by name.
    pub(crate) remove: Vec<String>,
    pub(crate) unchanged: usize,
}

/// The difference between `prefix` and `lock`; `None` when it cannot be updated in place
/// (another Python: every compiled module and noarch package would need relinking).
pub(crate) fn difference(lock: &Lock, prefix: &Path) -> io::Result<Option<Difference>> {
    let installed = installed_conda(prefix)?;
    let mut difference = Difference::default();
    for (index, package) in lock.conda.iter().enumerate() {
        match installed.get(&package.name) {
            Some(file) if *file == package.file_name => difference.unchanged += 1,
            Some(_) if package.name == "python" => return Ok(None),
            _ => difference.install.push(index),
        }
    }
    let locked: BTreeSet<&str> = lock
        .conda
        .iter()
        .map(|package| package.name.as_str())
        .collect();
    difference.remove = installed
        .keys()
        .filter(|name| !locked.contains(name.as_str()))
        .cloned()
        .collect();
    if difference.remove.iter().any(|name| name == "python") {
        return Ok(None);
    }
    Ok(Some(difference))
}

/// The distributions pip installed into `prefix` that the lock no longer has, by name.
pub(crate) fn pip_dropped(lock: &Lock, prefix: &Path) -> Vec<String> {
    let wanted: BTreeSet<String> = lock
        .pypi
        .iter()
        .map(|package| crate::staging::pip::requirements::normalize(&package.name))
        .collect();
    crate::staging::pip::installed::by_pip(prefix, false)
        .into_iter()
        .filter(|name| !wanted.contains(&crate::staging::pip::requirements::normalize(name)))
        .collect()
}

/// Name to archive file name of every conda package in `prefix`, from `conda-meta/`.
fn installed_conda(prefix: &Path) -> io::Result<BTreeMap<String, String>> {
    let mut installed = BTreeMap::new();
    for entry in fs::read_dir(prefix.join("conda-meta"))? {
        let path = entry?.path();
        if path.extension().and_then(|ext| ext.to_str()) != Some("json") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let field = |key: &str| record.get(key).and_then(|value| value.as_str());
        if let (Some(name), Some(file)) = (
            field("name"),
            field("fn").or_else(|| field("url").and_then(|url| url.rsplit('/').next())),
        ) {
            installed.insert(name.to_string(), file.to_string());
        }
    }
    Ok(installed)
}

/// Removes `names` from `prefix` with conda, offline and without touching what depends on
/// them: the lock already says exactly what stays.
pub(crate) fn remove_conda(
    conda: &Conda<'_>,
    prefix: &Path,
    names: &[String],
) -> Result<(), LockedError> {
    let mut command = conda.command();
    command
        .args(["remove", "--force", "--offline", "-y", "-p"])
        .arg(prefix)
        .args(names);
    // The log already names what goes; conda's plan would list it again.
    run(&mut command, "removing packages the lock dropped", |_| {
        false
    })
}
