//! The final buildpack's work: `finalize` writes the launch environment for every supplied
//! dependency, `release` names the start command, and the legacy `compile` does supply and
//! finalize in one go, with deps inside the app as old single-buildpack foundations expect.

use std::fs;
use std::path::{Path, PathBuf};

use crate::errors::Error;
use crate::staging::log;
use crate::staging::stager::{Stager, shell_quote};
use crate::staging::supply;

/// A Procfile's process types, in file order.
pub(crate) fn parse_procfile(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let (name, command) = line.split_once(':')?;
            let name = name.trim();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            (valid && !command.trim().is_empty())
                .then(|| (name.to_string(), command.trim().to_string()))
        })
        .collect()
}

fn web_command(build_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(build_dir.join("Procfile")).ok()?;
    parse_procfile(&text)
        .into_iter()
        .find(|(name, _)| name == "web")
        .map(|(_, command)| command)
}

pub(crate) fn finalize(stager: &Stager) -> Result<(), Error> {
    let Some(profile_dir) = &stager.profile_dir else {
        return Ok(());
    };
    log::step("Writing the launch environment");
    fs::create_dir_all(profile_dir).map_err(Error::io(profile_dir))?;
    let supplied = supplied_dependencies(&stager.deps_dir).map_err(Error::io(&stager.deps_dir))?;
    let mut paths = Vec::new();
    let mut libraries = Vec::new();
    for (index, directory) in &supplied {
        if directory.join("bin").is_dir() {
            paths.push(format!("$DEPS_DIR/{index}/bin"));
        }
        if directory.join("lib").is_dir() {
            libraries.push(format!("$DEPS_DIR/{index}/lib"));
        }
        let scripts = directory.join("profile.d");
        if let Ok(entries) = fs::read_dir(&scripts) {
            let mut entries: Vec<_> = entries.flatten().collect();
            entries.sort_by_key(fs::DirEntry::file_name);
            for entry in entries {
                let target =
                    profile_dir.join(format!("{index}_{}", entry.file_name().to_string_lossy()));
                fs::copy(entry.path(), &target).map_err(Error::io(&target))?;
            }
        }
    }
    // What libbuildpack-based final buildpacks write: every supplied bin/ and lib/ for the
    // app at run time.
    let mut script = String::from(
        "# Written by the conda buildpack: the supplied dependencies of every buildpack.\n",
    );
    if !paths.is_empty() {
        script.push_str(&format!("export PATH={}:$PATH\n", paths.join(":")));
    }
    if !libraries.is_empty() {
        let joined = libraries.join(":");
        script.push_str(&format!(
            "export LD_LIBRARY_PATH={joined}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}\n"
        ));
        script.push_str(&format!(
            "export LIBRARY_PATH={joined}${{LIBRARY_PATH:+:$LIBRARY_PATH}}\n"
        ));
    }
    let multi = profile_dir.join("000_multi-supply.sh");
    fs::write(&multi, script).map_err(Error::io(&multi))?;

    match web_command(&stager.build_dir) {
        Some(command) => log::detail(&format!("Start command (Procfile web): {command}")),
        None => log::warning(
            "The app has no Procfile with a `web:` line, so Cloud Foundry has no command to \
             start it with. Add a Procfile such as `web: python app.py` (or set `command:` in \
             the app's manifest.yml; a worker without a route also needs \
             `health-check-type: process`).",
        ),
    }
    Ok(())
}

/// `DEPS/*` directories in index order, with their index names.
fn supplied_dependencies(deps_dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut supplied: Vec<(String, PathBuf)> = fs::read_dir(deps_dir)?
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            )
        })
        .filter(|(name, _)| name.chars().all(|c| c.is_ascii_digit()))
        .collect();
    supplied.sort();
    Ok(supplied)
}

/// `release BUILD`: the YAML the builder reads. A Procfile's own web line wins on the platform
/// anyway; naming it here keeps `staging_info.yml` honest.
pub(crate) fn release(build_dir: &Path) -> String {
    match web_command(build_dir) {
        Some(command) => format!(
            "---\ndefault_process_types:\n  web: {}\n",
            serde_yaml_ng::to_string(&command)
                .unwrap_or_default()
                .trim_end()
        ),
        None => "---\ndefault_process_types: {}\n".to_string(),
    }
}

/// The legacy `compile BUILD CACHE`: supply and finalize with deps in `BUILD/.cloudfoundry`,
/// and `DEPS_DIR` pointed there at run time.
pub(crate) fn compile(build_dir: &Path, cache_dir: &Path) -> Result<(), Error> {
    let stager = Stager::for_compile(build_dir, cache_dir).map_err(Error::io(build_dir))?;
    fs::create_dir_all(stager.deps_idx()).map_err(Error::io(&stager.deps_idx()))?;
    supply::run(&stager)?;
    finalize(&stager)?;
    if let Some(profile_dir) = &stager.profile_dir {
        let script = profile_dir.join("0000_set-deps-dir.sh");
        fs::write(
            &script,
            format!("export DEPS_DIR={}\n", shell_quote_home(".cloudfoundry")),
        )
        .map_err(Error::io(&script))?;
    }
    Ok(())
}

/// `"$HOME/.cloudfoundry"`, quoted for sh with `$HOME` still expanded.
fn shell_quote_home(relative: &str) -> String {
    format!("\"$HOME\"/{}", shell_quote(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procfiles_are_read_as_heroku_and_cf_read_them() {
        let processes = parse_procfile(
            "# comment\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\nworker:python worker.py\n\nbad line\n: nothing\n",
        );
        assert_eq!(
            processes,
            vec![
                (
                    "web".to_string(),
                    "gunicorn app:app --bind 0.0.0.0:$PORT".to_string()
                ),
                ("worker".to_string(), "python worker.py".to_string()),
            ]
        );
    }

    #[test]
    fn release_is_valid_yaml_with_or_without_a_procfile() {
        let scratch = tempfile::tempdir().unwrap();
        let parsed: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&release(scratch.path())).unwrap();
        assert!(
            parsed["default_process_types"]
                .as_mapping()
                .unwrap()
                .is_empty()
        );
        fs::write(
            scratch.path().join("Procfile"),
            "web: python app.py --name 'x: y'\n",
        )
        .unwrap();
        let parsed: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&release(scratch.path())).unwrap();
        assert_eq!(
            parsed["default_process_types"]["web"],
            "python app.py --name 'x: y'"
        );
    }
}
