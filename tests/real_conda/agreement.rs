//! The conda double must not drift from real conda: the same environment files go through
//! the double (as conda 26.7.1, on the fixture channels) and through real conda 26.7.1 (on
//! its channel of real packages), and what a user would see must agree: whether the
//! environment is created, the name of conda's error, the warnings, the packages named.
//! And real conda's two solvers must agree with each other: the rattler solver the buildpack
//! picks when conda has it, and the classic one, on the same channel and the same files.
//! Without `../shared/real` this says so and skips.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Server, developer_conda_from, fixtures, real_conda, scratch};

/// One conda, installed, with the channel server it uses.
struct Conda {
    executable: PathBuf,
    server: Server,
    home: PathBuf,
}

/// What a user sees of one `conda env create`.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    created: bool,
    /// The first `SomethingError:` (or `...Exception`, `...Invalid...`) name conda printed.
    error: Option<String>,
    warned_about_unknown_section: bool,
    retried_with_full_repodata: bool,
    /// Every name of `missing` that conda's error text lists.
    named: Vec<String>,
}

impl Conda {
    fn install(installer: &Path, server_root: &Path, into: &Path) -> Self {
        fs::create_dir_all(into).unwrap();
        Self {
            executable: developer_conda_from(installer, into),
            server: Server::start(server_root),
            home: into.to_path_buf(),
        }
    }

    fn create(&self, environment: &str, missing: &[&str]) -> Outcome {
        let dir = tempfile::tempdir_in(&self.home).unwrap();
        let file = dir.path().join("environment.yml");
        fs::write(&file, environment).unwrap();
        let output = Command::new(&self.executable)
            .args(["env", "create", "--dry-run", "-y", "-p"])
            .arg(dir.path().join("env"))
            .arg("-f")
            .arg(&file)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &self.home)
            .env("CONDA_PKGS_DIRS", self.home.join("pkgs"))
            .env("CONDA_CHANNEL_ALIAS", self.server.url())
            .env(
                "CONDA_DEFAULT_CHANNELS",
                format!("{}/main", self.server.url()),
            )
            // The double models the classic solver's words; hold real conda to the same.
            .env("CONDA_SOLVER", "classic")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let error = text.lines().find_map(|line| {
            let name = line.split(':').next()?.trim();
            let is_name = !name.is_empty()
                && !name.contains(' ')
                && (name.ends_with("Error")
                    || name.ends_with("Exception")
                    || name.contains("Invalid"));
            is_name.then(|| name.to_string())
        });
        Outcome {
            // A dry run that got as far as the plan exits with DryRunExit's code 1 on some
            // versions: "created" is the plan being reached with no error.
            created: error.is_none() && (output.status.success() || text.contains("DryRunExit")),
            error,
            warned_about_unknown_section: text.contains("EnvironmentSectionNotValid"),
            retried_with_full_repodata: text.contains("retrying with next repodata source"),
            named: missing
                .iter()
                .filter(|name| text.contains(&format!("- {name}")))
                .map(ToString::to_string)
                .collect(),
        }
    }
}

#[test]
fn the_double_and_real_conda_agree_on_what_users_write() {
    let Some(world) = real_conda::world() else {
        return;
    };
    let dir = scratch();
    let fixtures = fixtures();
    let double = Conda::install(
        &fixtures.dir.join("installers").join(
            fixtures.installer("conda-double", "26.7.1")["file"]
                .as_str()
                .unwrap(),
        ),
        &fixtures.dir,
        &dir.path().join("double"),
    );
    let real = Conda::install(
        &world.join("installers").join(real_conda::MINIFORGE),
        world,
        &dir.path().join("real"),
    );
    let scenarios = scenarios();
    let mut disagreements = Vec::new();
    for (scenario, environment, missing) in scenarios {
        let from_double = double.create(environment, missing);
        let from_real = real.create(environment, missing);
        if from_double != from_real {
            disagreements.push(format!(
                "{scenario}:\n  double: {from_double:?}\n  real:   {from_real:?}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "the conda double no longer does what real conda 26.7.1 does:\n{}",
        disagreements.join("\n")
    );
}

/// The environment files the stories use, as a user writes them.
fn scenarios() -> [(&'static str, &'static str, &'static [&'static str]); 6] {
    [
        (
            "a plain environment",
            "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy\n",
            &[],
        ),
        (
            "missing packages",
            "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy=99\n  - not-a-package\n",
            &["numpy=99", "not-a-package"],
        ),
        (
            "a spec conda cannot parse",
            "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy>=<1\n",
            &[],
        ),
        (
            "an unknown top-level key",
            "channels: [conda-forge]\nplatforms: [linux-64]\ndependencies:\n  - python=3.11\n",
            &[],
        ),
        (
            "a sloppy operator",
            "channels: [conda-forge]\ndependencies:\n  - python=>3.11\n",
            &[],
        ),
        (
            "nodefaults",
            "channels: [conda-forge, nodefaults]\ndependencies:\n  - python=3.11\n",
            &[],
        ),
    ]
}

/// What one solver made of a file: the error conda named, or the packages it installed.
fn solved(conda: &Conda, solver: &str, environment: &str) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir_in(&conda.home).unwrap();
    let file = dir.path().join("environment.yml");
    fs::write(&file, environment).unwrap();
    let prefix = dir.path().join("env");
    let output = Command::new(&conda.executable)
        .args(["env", "create", "-y", "-p"])
        .arg(&prefix)
        .arg("-f")
        .arg(&file)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &conda.home)
        .env("CONDA_PKGS_DIRS", conda.home.join("pkgs"))
        .env("CONDA_CHANNEL_ALIAS", conda.server.url())
        .env("CONDA_SOLVER", solver)
        .output()
        .unwrap();
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        return Err(text
            .lines()
            .find_map(|line| {
                let name = line.split(':').next()?.trim();
                (!name.contains(' ') && (name.ends_with("Error") || name.ends_with("Exception")))
                    .then(|| name.to_string())
            })
            .unwrap_or(text));
    }
    let mut packages: Vec<String> = fs::read_dir(prefix.join("conda-meta"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    packages.sort();
    Ok(packages)
}

#[test]
fn the_rattler_and_classic_solvers_agree_on_every_environment_file() {
    let Some(world) = real_conda::world() else {
        return;
    };
    let dir = scratch();
    let real = Conda::install(
        &world.join("installers").join(real_conda::MINIFORGE),
        world,
        &dir.path().join("real"),
    );
    let pydata = real_conda::PYDATA_ENVIRONMENT;
    let sample =
        fs::read_to_string(support::repo().join("cf-apps/flask-numpy/environment.yml")).unwrap();
    let mut files: Vec<(&str, &str)> = scenarios()
        .iter()
        .map(|(scenario, environment, _)| (*scenario, *environment))
        .collect();
    files.push(("the pydata app", pydata));
    files.push(("the flask-numpy sample", &sample));
    let mut disagreements = Vec::new();
    for (scenario, environment) in files {
        // conda-rattler-solver 0.1 ignores `add_pip_as_python_dependency` (measured: it leaves
        // pip out where classic adds it), so the buildpack asks for pip with rattler; this is
        // the file as the buildpack hands it to rattler.
        let for_rattler = if environment.contains("python") && !environment.contains("- pip") {
            environment.replacen("dependencies:\n", "dependencies:\n  - pip\n", 1)
        } else {
            environment.to_string()
        };
        let rattler = solved(&real, "rattler", &for_rattler);
        let classic = solved(&real, "classic", environment);
        if rattler != classic {
            disagreements.push(format!(
                "{scenario}:\n  rattler: {rattler:?}\n  classic: {classic:?}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "the rattler and classic solvers disagree:\n{}",
        disagreements.join("\n")
    );
}
