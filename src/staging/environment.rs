//! Building the app's conda environment: `conda env create -f` from environment.yml (with the
//! runtime.txt pin or the vendored channel written into a derived copy when needed), or
//! `conda create --file` from an `@EXPLICIT` spec with no solve. When conda fails, its own
//! words reach the log with what they most likely mean.

// conda's failure carries its whole story (its words, the channels, the solvers, the memory);
// it happens once per staging at most, so its size costs nothing.
#![allow(clippy::result_large_err)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use crate::io::process::{self, Echo};
use crate::staging::app::{App, Dependency, EnvironmentSpec};
use crate::staging::channels::Channel;
use crate::staging::conda::Conda;
use crate::staging::conda_failure::CondaFailure;
use crate::staging::log;
use crate::staging::python_version::PythonChoice;

// Conda's story is the large variant and the common one; `errors::Error` boxes the whole.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, thiserror::Error)]
pub(crate) enum EnvironmentError {
    #[error("conda failed to build the environment ({status})")]
    Conda {
        /// What conda's output says failed.
        failure: CondaFailure,
        command: String,
        status: String,
        memory_limit_mib: Option<u64>,
        /// Installing offline from vendor/: a missing package means a missing archive.
        vendored: bool,
        /// The channels conda searched, as the log names them.
        channels: Vec<String>,
        /// The solver that ran, and the others this conda offers.
        solver: Option<String>,
        other_solvers: Vec<String>,
        /// The most memory conda and its children held.
        peak_memory_kib: Option<u64>,
    },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How the environment is described to conda.
#[derive(Debug, Clone)]
pub(crate) enum Recipe {
    /// `conda env create -p PREFIX -f FILE`.
    EnvironmentFile { file: PathBuf },
    /// `conda create -p PREFIX --file FILE` with an `@EXPLICIT` spec: no solve.
    Explicit { file: PathBuf },
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) recipe: Recipe,
    /// One line for the log: what is being installed.
    pub(crate) summary: String,
    /// conda must search exactly the file's channels plus these (`CONDA_CHANNELS`), less
    /// `defaults`: what `nodefaults` and a vendored channel mean.
    pub(crate) without_defaults: bool,
}

/// A channel the buildpack built from vendored archives, used alone and offline.
#[derive(Debug, Clone)]
pub(crate) struct LocalChannel {
    pub(crate) url: String,
    /// Package file name to its `file://` URL, for rewriting an explicit spec.
    pub(crate) files: std::collections::BTreeMap<String, String>,
}

/// The pip section as staging hands it to conda: its lines with `-r` files read in place and
/// paths made absolute (a derived file is not in the app's folder), and, with vendored pip
/// files, without index options.
#[derive(Debug, Clone)]
pub(crate) struct PipSection {
    pub(crate) lines: Vec<String>,
    /// pip installs from `vendor/pip/` alone.
    pub(crate) offline: bool,
}

/// Decides the recipe, writing a derived environment file into `scratch` when the app's own
/// file cannot be passed as is (a runtime.txt pin, a vendored channel, vendored pip files,
/// an explicit spec that must point at vendored files).
pub(crate) fn plan(
    app: &App,
    python: &PythonChoice,
    build_dir: &Path,
    scratch: &Path,
    local_channel: Option<&LocalChannel>,
    pip: Option<&PipSection>,
    add_pip: bool,
) -> Result<Plan, EnvironmentError> {
    // A lockfile: the buildpack fetches and checks its packages and writes this file of them
    // once it knows what the last environment already has (`locked::prepare`).
    if let Some(lock) = &app.lock {
        return Ok(Plan {
            recipe: Recipe::Explicit {
                file: scratch.join("locked-explicit.txt"),
            },
            summary: format!("{} (no solve)", lock.describe()),
            without_defaults: false,
        });
    }
    let Some(environment) = &app.environment else {
        // detect guarantees one of the two; an app without either was refused earlier.
        return Ok(Plan {
            recipe: Recipe::EnvironmentFile {
                file: build_dir.join("environment.yml"),
            },
            summary: "environment.yml".into(),
            without_defaults: false,
        });
    };
    let pip_offline = pip.is_some_and(|pip| pip.offline);
    // conda 26.7 reads `nodefaults` as a channel to download (its `env create` became
    // `create`, conda PR 16210); older conda leaves `defaults` out, as documented. The file
    // conda reads lacks it, and the channels conda adds are given without `defaults`.
    let nodefaults = environment
        .spec
        .channels
        .iter()
        .any(|channel| channel == "nodefaults");
    // The solver gives Python no pip of its own (rattler): ask for it, as conda's other solvers
    // add it, unless the file names pip or has no Python to go with it.
    let names = |wanted: &str| {
        environment.spec.conda_specs().any(|spec| {
            let name = spec
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
                .next()
                .unwrap_or("");
            name.eq_ignore_ascii_case(wanted) || spec.ends_with(&format!("::{wanted}"))
        })
    };
    // Offline, vendor/ holds exactly what the developer's solve chose: nothing is added.
    let add_pip = add_pip
        && local_channel.is_none()
        && !names("pip")
        && (names("python") || python.pin.is_some());
    let needs_derived =
        python.pin.is_some() || local_channel.is_some() || pip_offline || nodefaults || add_pip;
    let file = if needs_derived {
        let mut spec = environment.spec.clone();
        if let Some(pip) = pip {
            for dependency in &mut spec.dependencies {
                if let Dependency::Pip(lines) = dependency {
                    lines.clone_from(&pip.lines);
                }
            }
            // `-r` files were read into the first section; any other would repeat them.
            let mut seen = false;
            spec.dependencies.retain(|dependency| {
                let pip = matches!(dependency, Dependency::Pip(_));
                let keep = !(pip && seen);
                seen |= pip;
                keep
            });
        }
        if let Some(pin) = &python.pin {
            spec.dependencies.insert(0, Dependency::Conda(pin.clone()));
        }
        if add_pip {
            spec.dependencies.insert(0, Dependency::Conda("pip".into()));
        }
        spec.channels.retain(|channel| channel != "nodefaults");
        if let Some(channel) = local_channel {
            spec.channels = vec![channel.url.clone()];
        }
        write_scratch(scratch, "environment.yml", &render(&spec))?
    } else {
        build_dir.join(&environment.file_name)
    };
    let count = environment.spec.conda_specs().count() + usize::from(python.pin.is_some());
    let pip = environment.spec.pip_requirements().count();
    let mut summary = format!(
        "{count} conda spec{} from {}",
        if count == 1 { "" } else { "s" },
        environment.file_name
    );
    if pip > 0 {
        summary.push_str(&format!(
            " and {pip} pip requirement{}",
            if pip == 1 { "" } else { "s" }
        ));
    }
    if pip_offline {
        summary.push_str(", pip's from vendor/pip");
    }
    if let Some(pin) = &python.pin {
        summary.push_str(&format!(", with {pin} from runtime.txt"));
    }
    if add_pip {
        summary.push_str(", with pip (conda's other solvers add it to Python; rattler does not)");
    }
    Ok(Plan {
        recipe: Recipe::EnvironmentFile { file },
        summary,
        without_defaults: nodefaults || local_channel.is_some(),
    })
}

fn write_scratch(scratch: &Path, name: &str, text: &str) -> Result<PathBuf, EnvironmentError> {
    let path = scratch.join(name);
    fs::create_dir_all(scratch)
        .and_then(|()| fs::write(&path, text))
        .map_err(|source| EnvironmentError::Io {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

/// Writes an environment spec back as YAML, in conda's key order.
pub(crate) fn render(spec: &EnvironmentSpec) -> String {
    let mut mapping = Mapping::new();
    if let Some(name) = &spec.name {
        mapping.insert("name".into(), Value::String(name.clone()));
    }
    if !spec.channels.is_empty() {
        mapping.insert(
            "channels".into(),
            Value::Sequence(spec.channels.iter().cloned().map(Value::String).collect()),
        );
    }
    let dependencies = spec
        .dependencies
        .iter()
        .map(|dependency| match dependency {
            Dependency::Conda(text) => Value::String(text.clone()),
            Dependency::Pip(requirements) => {
                let mut pip = Mapping::new();
                pip.insert(
                    "pip".into(),
                    Value::Sequence(requirements.iter().cloned().map(Value::String).collect()),
                );
                Value::Mapping(pip)
            }
        })
        .collect();
    mapping.insert("dependencies".into(), Value::Sequence(dependencies));
    if !spec.variables.is_empty() {
        let variables = spec
            .variables
            .iter()
            .map(|(name, value)| (Value::String(name.clone()), Value::String(value.clone())))
            .collect();
        mapping.insert("variables".into(), Value::Mapping(variables));
    }
    serde_yaml_ng::to_string(&Value::Mapping(mapping)).unwrap_or_default()
}

/// Below this, a conda solve against a large channel is likely to be killed.
pub(crate) const SOLVE_MEMORY_WARNING_MIB: u64 = 1024;

pub(crate) struct Built {
    pub(crate) duration: Duration,
    pub(crate) peak_memory_kib: Option<u64>,
}

/// conda's lines worth showing as it works: its step lines and anything that warns.
fn conda_line_matters(line: &str) -> bool {
    let trimmed = line.trim_start();
    !(trimmed.starts_with('#') || trimmed.starts_with("Retrieving notices") || trimmed == "done")
}

pub(crate) fn build(
    conda: &Conda<'_>,
    plan: &Plan,
    prefix: &Path,
    memory_limit_mib: Option<u64>,
    channels: &[Channel],
    solver: Option<&crate::staging::solver::Solver>,
    update: bool,
) -> Result<Built, EnvironmentError> {
    let mut command = conda.command();
    let solves = matches!(plan.recipe, Recipe::EnvironmentFile { .. });
    match &plan.recipe {
        // The prefix holds the last environment: `--prune` removes what the file dropped.
        Recipe::EnvironmentFile { file } if update => {
            command
                .args(["env", "update", "--prune", "-p"])
                .arg(prefix)
                .arg("-f")
                .arg(file);
        }
        Recipe::EnvironmentFile { file } => {
            command
                .args(["env", "create", "-p"])
                .arg(prefix)
                .arg("-f")
                .arg(file);
        }
        // The prefix holds the last environment, less what the lock dropped: conda replaces
        // what changed and adds what is new.
        Recipe::Explicit { file } if update => {
            command
                .args(["install", "-p"])
                .arg(prefix)
                .arg("--file")
                .arg(file);
        }
        Recipe::Explicit { file } => {
            command
                .args(["create", "-p"])
                .arg(prefix)
                .arg("--file")
                .arg(file);
        }
    }
    if solves {
        if let Some(limit) = memory_limit_mib.filter(|&limit| limit < SOLVE_MEMORY_WARNING_MIB) {
            log::warning(&format!(
                "This app stages with {limit} MB of memory (MEMORY_LIMIT). Solving a conda \
                 environment often needs 1 GB or more, and the solver is killed when it runs \
                 out. If staging fails, raise the app's memory (cf push -m 2G) or install from \
                 an @EXPLICIT spec-file.txt, which needs no solve."
            ));
        }
    }
    let described = process::describe(&command);
    let finished = process::run(
        &mut command,
        if solves {
            "solving and installing the environment"
        } else {
            "installing the environment"
        },
        Echo {
            keep: conda_line_matters,
            live_stderr: false,
        },
    )
    .map_err(|source| EnvironmentError::Io {
        path: conda.executable.clone(),
        source,
    })?;
    if finished.status.success() {
        return Ok(Built {
            duration: finished.duration,
            peak_memory_kib: finished.peak_memory_kib,
        });
    }
    // The out-of-memory killer's SIGKILL reaches conda itself, or a shell's `exit 137` for it.
    let killed =
        finished.signal() == Some(libc::SIGKILL) || finished.status.code() == Some(128 + 9);
    let failure = crate::staging::conda_failure::read(
        &finished.stderr,
        &finished.stdout,
        killed,
        conda.pip_find_links.is_some(),
    );
    Err(EnvironmentError::Conda {
        failure,
        command: described,
        status: process::describe_status(finished.status),
        memory_limit_mib,
        vendored: conda.offline,
        channels: channels.iter().map(ToString::to_string).collect(),
        solver: solver.map(|solver| solver.name.clone()),
        other_solvers: solver
            .map(crate::staging::solver::Solver::others)
            .unwrap_or_default(),
        peak_memory_kib: finished.peak_memory_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staging::app::parse_environment;

    #[test]
    fn a_derived_file_keeps_everything_and_parses_back() {
        let text = "name: app\nchannels: [conda-forge]\ndependencies:\n- numpy\n- pip:\n  - flask==3.0\nvariables:\n  A: '1'\n";
        let spec = parse_environment("environment.yml", text).unwrap();
        let again = parse_environment("environment.yml", &render(&spec)).unwrap();
        assert_eq!(spec, again);
    }
}
