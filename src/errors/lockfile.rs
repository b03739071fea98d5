//! The messages for a lockfile the buildpack cannot read or install. Split from `errors.rs`
//! only to keep files short; read them as part of it.

use super::Message;
use crate::staging::app::lockfile::LockError;
use crate::staging::locked::{LockedError, Mismatch};

pub(super) fn lock_message(error: &LockError) -> Message {
    match error {
        LockError::InvalidYaml { file, reason } => Message::new(
            format!("{file} is not valid YAML"),
            vec![reason.clone()],
            format!(
                "Write {file} again with the tool that made it (`pixi lock`, `conda-lock`), rather than by hand."
            ),
        ),
        LockError::UnsupportedVersion {
            file,
            found,
            supported,
        } => Message::new(
            format!("{file} is in a format version this buildpack does not read"),
            vec![format!(
                "{file} says `version: {found}`; the buildpack, like conda's lockfile plugin, reads version {supported}."
            )],
            if file.starts_with("pixi") {
                "Update pixi (0.40 or later writes version 6) and run `pixi lock`, or write the lock with `conda export --format rattler-lock-v6 -f pixi.lock`.".to_string()
            } else {
                "Write it with a current conda-lock (`conda-lock -p linux-64`), or with `conda export --format conda-lock-v1 -f conda-lock.yml`.".to_string()
            },
        ),
        LockError::Invalid { file, reason } => Message::new(
            format!("{file} cannot be read as a lockfile"),
            vec![reason.clone()],
            format!(
                "Write {file} again with the tool that made it (`pixi lock`, `conda-lock`, `conda list --explicit --md5`)."
            ),
        ),
        LockError::UnknownEnvironment {
            file,
            wanted,
            available,
            from_setting,
        } => Message::new(
            format!("{file} has no environment `{wanted}`"),
            vec![
                if *from_setting {
                    format!("BP_PIXI_ENVIRONMENT asks for `{wanted}`.")
                } else {
                    "Without BP_PIXI_ENVIRONMENT the buildpack installs the environment `default`."
                        .into()
                },
                format!(
                    "The lock has: {}.",
                    if available.is_empty() {
                        "no environments".to_string()
                    } else {
                        available.join(", ")
                    }
                ),
            ],
            "Choose one with `cf set-env APP BP_PIXI_ENVIRONMENT NAME` and push again, or add the environment to pixi.toml and run `pixi lock`.",
        ),
        LockError::NoLinux {
            file,
            environment,
            platforms,
        } => Message::new(
            format!("{file} has no packages for linux-64"),
            vec![
                format!(
                    "Cloud Foundry runs apps on linux-64, and {}{} locks packages for {}.",
                    file,
                    environment
                        .as_ref()
                        .map(|name| format!("'s environment `{name}`"))
                        .unwrap_or_default(),
                    if platforms.is_empty() {
                        "no platform".to_string()
                    } else {
                        platforms.join(", ")
                    }
                ),
                "Nothing was downloaded.".into(),
            ],
            if file.starts_with("pixi") {
                "Add the platform and lock again: `pixi workspace platform add linux-64` (older pixi: `pixi project platform add linux-64`), then push the new pixi.lock.".to_string()
            } else if file.starts_with("conda-lock") {
                "Lock for linux-64 too: `conda-lock -f environment.yml -p linux-64` (add `-p` for each platform you use), then push the new conda-lock.yml.".to_string()
            } else {
                format!(
                    "Write {file} on linux-64 (`conda list --explicit --md5`), or lock with `conda-lock -p linux-64`."
                )
            },
        ),
        LockError::BadPackage {
            file,
            entry,
            reason,
        } => Message::new(
            format!("{file} locks a package the buildpack cannot install"),
            vec![format!("{entry}: {reason}.")],
            format!(
                "Lock it again from a channel or index (`pixi lock`, `conda-lock`), and check {file} was not edited by hand."
            ),
        ),
    }
}

pub(super) fn locked_message(error: &LockedError) -> Message {
    match error {
        LockedError::Mismatch(mismatch) => {
            let Mismatch {
                file,
                package,
                url,
                algorithm,
                expected,
                actual,
            } = mismatch.as_ref();
            Message::new(
                format!("{package} does not match {file}"),
                vec![
                    format!(
                        "{file} locks {package} with {algorithm} {expected}, but {url} has {algorithm} {actual}."
                    ),
                    "Staging stopped before installing anything.".into(),
                ],
                format!(
                    "If the channel really changed the package, lock again (`pixi lock`, `conda-lock`) and push the new {file}. Otherwise the download was tampered with or a mirror serves another file: check the mirror (CONDA_CHANNEL_ALIAS)."
                ),
            )
        }
        LockedError::Download {
            package, reason, ..
        } => Message::new(
            format!("{package} could not be downloaded"),
            vec![format!("{reason}.")],
            "Check that the channel (or the mirror named by CONDA_CHANNEL_ALIAS / CONDA_DEFAULT_CHANNELS) is reachable from the staging container and still serves the locked file; for an air-gapped foundation, run `conda-buildpack vendor APP_DIR` and push vendor/.",
        ),
        LockedError::NotVendored { file, package } => Message::new(
            format!("{package} is not in vendor/"),
            vec![format!(
                "{file} locks {package}, and the app's vendor/ does not have it; staging with vendor/ downloads nothing."
            )],
            "Run `conda-buildpack vendor APP_DIR` again after changing the lock, and push the app with its vendor/.",
        ),
        LockedError::Command {
            activity,
            command,
            status,
            output,
        } => Message::new(
            format!("Staging failed {activity}"),
            std::iter::once(format!("`{command}` failed ({status}):"))
                .chain(output.iter().cloned())
                .collect(),
            "Check that the locked URLs are reachable (or vendored in vendor/pip/) and that their hashes match; lock again if the index changed.",
        ),
        LockedError::Io { path, source } => Message::new(
            "Staging could not write the locked packages",
            vec![format!("{}: {source}", path.display())],
            super::disk_fix(source),
        ),
    }
}
