//! The messages for what the app brings: its files and its pip requirements. Split from `errors/mod.rs` only to keep files short;
//! read them as part of it.

use super::lockfile::lock_message;
use super::{Message, disk_fix};
use crate::staging::app::AppError;
use crate::staging::log;
use crate::staging::pip::PipError;

pub(super) fn pip_message(error: &PipError) -> Message {
    const REVENDOR: &str =
        "Run `conda-buildpack vendor APP_DIR` on a machine with internet access and push again.";
    match error {
        PipError::NotVendored {
            requirement,
            origin,
        } => Message::new(
            "A pip requirement is not in vendor/pip",
            vec![
                format!("{origin} requires `{requirement}`, and vendor/pip has no file for it."),
                "With vendored pip files, pip installs from vendor/pip alone: staging has no package index to fall back on.".into(),
            ],
            format!("{REVENDOR} It fetches `{requirement}` and everything it needs into vendor/pip."),
        ),
        PipError::DirectOffline { line, origin } => Message::new(
            "A pip requirement points at the network",
            vec![
                format!("{origin} has `{line}`."),
                "pip installs from vendor/pip alone at staging, and a URL or VCS requirement can only be fetched from where it points.".into(),
            ],
            "Require the project by name (`name==version`) from an index, or build its wheel into the app and name its path (`./wheels/name-1.0-py3-none-any.whl`); then run `conda-buildpack vendor APP_DIR` and push again.",
        ),
        PipError::Archive(archive) => Message::new(
            "A vendored pip file is unsafe or broken",
            vec![
                archive.to_string(),
                "Every wheel and sdist in vendor/pip is checked before pip may unpack it.".into(),
            ],
            format!("Delete the file from vendor/pip. {REVENDOR}"),
        ),
        PipError::Link { path } => Message::new(
            "vendor/pip holds a link",
            vec![format!("{} is a link or not a regular file.", path.display())],
            format!("Vendored pip files must be regular files pushed with the app. {REVENDOR}"),
        ),
        PipError::Io { path, source } => Message::new(
            "vendor/pip could not be read",
            vec![format!("{}: {source}", path.display())],
            disk_fix(source),
        ),
    }
}

pub(super) fn app_message(error: &AppError) -> Message {
    match error {
        AppError::Unreadable { file, source } => Message::new(
            format!("{file} cannot be read"),
            vec![source.to_string()],
            format!(
                "Make sure {file} is a regular, readable file in the app directory (a link that points outside the app is not pushed)."
            ),
        ),
        AppError::TooLarge { file, size } => Message::new(
            format!("{file} is too large ({})", log::format_size(*size)),
            vec![format!(
                "{file} should be a small text file; this one is over 1 MiB."
            )],
            format!("Check that {file} is the file you meant to push."),
        ),
        AppError::NotUtf8 { file } => Message::new(
            format!("{file} is not text"),
            vec![format!("{file} is not valid UTF-8.")],
            format!("Save {file} as UTF-8 text."),
        ),
        AppError::NotAFile { file } => Message::new(
            format!("{file} is not a regular file"),
            vec![format!("The app's {file} is a directory, a pipe or a device, not a file.")],
            format!("Push {file} as an ordinary text file."),
        ),
        AppError::LinkOutsideApp { file, target } => Message::new(
            format!("{file} is a link that points outside the app"),
            vec![
                format!("{file} links to {target}."),
                "Staging reads only the app's own files: a link out of the app would read the staging container's files, not yours.".into(),
            ],
            "Replace the link with the file itself (or a link to a file inside the app) and push again.",
        ),
        AppError::BrokenLink { file, target } => Message::new(
            format!("{file} is a broken link"),
            vec![format!("{file} links to {target}, which is not in the pushed app.")],
            "Replace the link with the file itself and push again.",
        ),
        AppError::NothingToInstall => Message::new(
            "The app has no environment.yml",
            vec!["The conda buildpack installs what environment.yml or a lockfile (pixi.lock, conda-lock.yml, conda-linux-64.lock, an @EXPLICIT spec-file.txt or explicit.txt) names, and this app has none of them.".into()],
            "Add an environment.yml at the root of the app (`conda env export --from-history > environment.yml`) or a lockfile (`pixi lock`, `conda-lock -p linux-64`), or choose another buildpack with `cf push -b`.",
        ),
        AppError::InvalidYaml {
            file,
            reason,
            line,
            column,
        } => {
            let location = match (line, column) {
                (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
                _ => String::new(),
            };
            Message::new(
                format!("{file} is not valid YAML{location}"),
                vec![reason.clone()],
                format!(
                    "Fix {file}{location}; `conda env create -f {file}` on your machine shows the same error."
                ),
            )
        }
        AppError::InvalidEnvironment { file, reason } => Message::new(
            format!("{file} is not a valid conda environment file"),
            vec![reason.clone()],
            format!(
                "See https://docs.conda.io/projects/conda/en/latest/user-guide/tasks/manage-environments.html#create-env-file-manually for the format of {file}."
            ),
        ),
        AppError::InvalidSpec {
            file,
            line,
            spec,
            reason,
        } => Message::new(
            format!("{file} line {line}: conda cannot read `{spec}`"),
            vec![
                format!("`{spec}` is not a conda match spec: {reason}."),
                "conda would refuse the whole file (PluginError: Invalid spec), so nothing was downloaded.".into(),
            ],
            format!(
                "Fix line {line} of {file}: a spec is a name with an optional version, like `numpy`, `numpy=1.26`, `numpy>=1.26,<2` or `conda-forge::numpy`."
            ),
        ),
        AppError::InvalidRuntimeTxt { content, reason } => Message::new(
            "runtime.txt does not name a Python version",
            vec![format!("{reason} (found `{content}`)")],
            "Write one line such as `python-3.11.9`, `python-3.11.x` or `python-2.7.18`, or delete runtime.txt and name python in environment.yml.",
        ),
        AppError::Lock(lock) => lock_message(lock),
        AppError::UnsupportedStack { stack } => Message::new(
            format!("This buildpack does not support the stack {stack}"),
            vec![format!(
                "Cloud Foundry stages the app on {stack} (CF_STACK), and this buildpack's installers are made for {} only.",
                crate::stack::supported_names()
            )],
            format!(
                "Push the app to a supported stack with `cf push APP -s {}`, or ask your operator for a buildpack release that supports {stack}.",
                crate::stack::DEFAULT
            ),
        ),
        AppError::InvalidSetting {
            variable,
            value,
            reason,
        } => Message::new(
            format!("{variable}={value} is not a valid setting"),
            vec![reason.clone()],
            format!(
                "Fix it with `cf set-env APP {variable} VALUE` (or `cf unset-env APP {variable}`) and `cf restage APP`."
            ),
        ),
    }
}
