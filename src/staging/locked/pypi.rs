//! A lock's PyPI entries: pip installs exactly them, `--no-deps`, with their hashes.

use std::fs;
use std::path::Path;

use super::{LockedError, at, pip_dropped, run};
use crate::staging::app::lockfile::Lock;
use crate::staging::conda::Conda;

/// The lock's PyPI part, after conda: what the lock no longer has is uninstalled (the last
/// environment's), then its distributions are installed.
pub(crate) fn pypi(
    conda: &Conda<'_>,
    lock: &Lock,
    prefix: &Path,
    scratch: &Path,
    resolve: &dyn Fn(&str) -> String,
    summary: &mut crate::staging::summary::Summary,
) -> Result<(), LockedError> {
    let dropped = pip_dropped(lock, prefix);
    if !dropped.is_empty() {
        crate::staging::log::detail(&format!(
            "Uninstalling PyPI packages {} no longer locks: {}",
            lock.file_name,
            dropped.join(", ")
        ));
    }
    if dropped.is_empty() && lock.pypi.is_empty() {
        return Ok(());
    }
    summary.time("installing the locked PyPI packages", || {
        pip(conda, lock, prefix, &dropped, scratch, resolve)
    })
}

/// pip's part: uninstalls what the lock dropped, then installs the locked distributions with
/// `--no-deps` (the lock lists every one) and their hashes, from their URLs or, offline, from
/// `vendor/pip/` alone.
fn pip(
    conda: &Conda<'_>,
    lock: &Lock,
    prefix: &Path,
    remove: &[String],
    scratch: &Path,
    resolve: &dyn Fn(&str) -> String,
) -> Result<(), LockedError> {
    let python = prefix.join("bin").join("python");
    if !remove.is_empty() {
        let mut command = conda.command_for(&python);
        command.args(["-m", "pip", "uninstall", "-y"]).args(remove);
        run(
            &mut command,
            "uninstalling PyPI packages the lock dropped",
            |line| line.trim_start().starts_with("Successfully uninstalled"),
        )?;
    }
    if lock.pypi.is_empty() {
        return Ok(());
    }
    let offline = conda.pip_find_links.is_some();
    let lines: Vec<String> = lock
        .pypi
        .iter()
        .map(|package| {
            let source = if offline {
                format!("{}=={}", package.name, package.version)
            } else {
                format!("{} @ {}", package.name, resolve(&package.url))
            };
            match &package.sha256 {
                Some(sha256) => format!("{source} --hash=sha256:{sha256}"),
                None => source,
            }
        })
        .collect();
    fs::create_dir_all(scratch).map_err(at(scratch))?;
    let requirements = scratch.join("locked-pypi.txt");
    fs::write(&requirements, lines.join("\n") + "\n").map_err(at(&requirements))?;
    let mut command = conda.command_for(&python);
    command
        // `--force-reinstall`: a restored environment may hold the same version from another
        // file (the lock's hash changed); pip would call it satisfied and check nothing.
        .args([
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--force-reinstall",
            "--no-warn-script-location",
            "-r",
        ])
        .arg(&requirements);
    run(
        &mut command,
        "installing the locked PyPI packages",
        |line| line.starts_with("Successfully installed") || line.contains("WARNING"),
    )
}
