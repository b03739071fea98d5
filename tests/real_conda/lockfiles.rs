//! Lockfiles on the real programs: real conda 26.7.1 (with conda's lockfile plugin, as
//! Miniforge 26.5 and later ship it) builds an environment from the real channel and writes it
//! as `pixi.lock`, `conda-lock.yml` and an `@EXPLICIT` file with `conda export`; the app is
//! pushed with each through Cloud Foundry's real builder and launcher. The installed
//! `conda-meta` set must be the lock's, no repodata may be asked for, the app must run, a
//! restage must restore, and a changed lock must update. The same lock installed by real conda
//! itself gives the same set. Without `../shared/real` every story says so and skips.

use crate::support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::real_conda::{self, LockingDeveloper, Miniconda};
use crate::support::{Server, StageOptions, Staging, package, scratch, stage};

const PUBLIC: &str = real_conda::PUBLIC_CHANNELS;

struct World {
    dir: tempfile::TempDir,
    server: Server,
    zip: PathBuf,
    cache: PathBuf,
    developer: LockingDeveloper,
}

impl World {
    fn new() -> Option<Self> {
        let world = real_conda::world()?;
        support::world::use_the_real_platform();
        let dir = scratch();
        let server = Server::start(world);
        let packaging = real_conda::packaging(&server, dir.path(), Miniconda::Plain);
        let zip = package(&server, dir.path(), &packaging);
        let developer = LockingDeveloper::install(
            &world.join("installers"),
            &dir.path().join("developer"),
            &server.url(),
        );
        Some(Self {
            cache: dir.path().join("app-cache"),
            dir,
            server,
            zip,
            developer,
        })
    }

    fn conda(&self) -> Command {
        self.developer.command()
    }

    /// A real environment of `specs`, built by the developer's real conda.
    fn environment(&self, name: &str, specs: &[&str]) -> PathBuf {
        let prefix = self.dir.path().join("envs").join(name);
        let mut args: Vec<&std::ffi::OsStr> = [
            "create",
            "-q",
            "-y",
            "--override-channels",
            "-c",
            "conda-forge",
            "-p",
        ]
        .iter()
        .map(|arg| arg.as_ref())
        .collect();
        args.push(prefix.as_os_str());
        args.extend(specs.iter().map(std::ffi::OsStr::new));
        self.developer.run(&args);
        prefix
    }

    fn export(&self, prefix: &Path, format: &str) -> String {
        self.developer.export(prefix, format)
    }

    fn app(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        support::write_app(self.dir.path(), name, files)
    }

    fn options(&self) -> StageOptions {
        StageOptions::with_channels(&self.server).cache(&self.cache)
    }

    /// Pushes `app`, returning the staging and how many repodata files it asked for.
    fn push(&self, app: &Path, name: &str, options: StageOptions) -> (Staging, usize) {
        let before = self.server.requests_ending_with("repodata.json");
        let staging = stage(app, &[&self.zip], &options, &self.dir.path().join(name));
        let repodata = self.server.requests_ending_with("repodata.json") - before;
        (staging, repodata)
    }
}

/// The `NAME-VERSION-BUILD` of every package in an environment's `conda-meta`.
fn conda_meta(prefix: &Path) -> BTreeSet<String> {
    fs::read_dir(prefix.join("conda-meta"))
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json").map(str::to_string)
        })
        .collect()
}

/// The same, from a droplet's `deps/0/conda-env`.
fn droplet_conda_meta(staging: &Staging) -> BTreeSet<String> {
    let listed = run(staging, "ls $DEPS_DIR/0/conda-env/conda-meta");
    listed
        .lines()
        .filter_map(|line| line.trim().strip_suffix(".json").map(str::to_string))
        .collect()
}

use crate::support::run_in_droplet as run;

const PROCFILE: (&str, &str) = ("Procfile", "web: python -c 'import flask'\n");

#[test]
fn a_pixi_lock_installs_exactly_its_packages_restores_and_updates_by_the_difference() {
    let Some(world) = World::new() else {
        return;
    };
    let first = world.environment("first", &["python=3.11", "flask"]);
    let lock = world.export(&first, "rattler-lock-v6");
    let app = world.app(
        "pixi-app",
        &[
            ("pixi.lock", &lock),
            ("pixi.toml", "[workspace]\nname = \"app\"\nchannels = [\"conda-forge\"]\nplatforms = [\"linux-64\"]\n"),
            // The lock wins over environment.yml: this one would fail to solve.
            ("environment.yml", "dependencies:\n  - not-a-package\n"),
            PROCFILE,
        ],
    );
    let (staging, repodata) = world.push(&app, "out1", world.options());
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("from pixi.lock (environment `default`) (no solve)")
        .assert_log_contains("Installing from pixi.lock (a lockfile wins: it is what was tested); not from environment.yml")
        .assert_log_contains("each matching the lock's hash")
        .assert_log_lacks("Solving environment");
    assert_eq!(repodata, 0, "no repodata is fetched for a lock");
    assert_eq!(droplet_conda_meta(&staging), conda_meta(&first));
    assert!(
        run(
            &staging,
            "python -c 'import flask; print(flask.__version__)'"
        )
        .contains("3.1.3")
    );

    let (again, repodata) = world.push(&app, "out2", world.options());
    again
        .assert_success()
        .assert_log_contains("Restoring the conda environment from the cache");
    assert_eq!(repodata, 0);

    // The developer drops flask and adds numpy, and locks again.
    let second = world.environment("second", &["python=3.11", "numpy", "click"]);
    fs::write(
        app.join("pixi.lock"),
        world.export(&second, "rattler-lock-v6"),
    )
    .unwrap();
    let (updated, repodata) = world.push(&app, "out3", world.options());
    updated
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("Updating the cached environment: pixi.lock changed")
        .assert_log_contains("Updating by the difference:")
        .assert_log_contains("flask");
    assert_eq!(repodata, 0);
    assert_eq!(droplet_conda_meta(&updated), conda_meta(&second));
    run(&updated, "python -c 'import numpy, click'");
}

#[test]
fn a_conda_lock_yml_and_an_explicit_file_install_the_same_set_as_real_conda() {
    let Some(world) = World::new() else {
        return;
    };
    let prefix = world.environment("env", &["python=3.11", "flask", "numpy"]);
    let expected = conda_meta(&prefix);
    for (file, format) in [
        ("conda-lock.yml", "conda-lock-v1"),
        ("explicit.txt", "explicit"),
        ("pixi.lock", "rattler-lock-v6"),
    ] {
        let lock = world.export(&prefix, format);
        let app = world.app(&format!("app-{format}"), &[(file, &lock), PROCFILE]);
        let (staging, repodata) = world.push(
            &app,
            &format!("out-{format}"),
            world.options().cache(&world.dir.path().join(format)),
        );
        staging
            .assert_success()
            .assert_clean_log()
            .assert_log_contains(&format!("from {file}"))
            .assert_log_contains("(no solve)");
        assert_eq!(repodata, 0, "{file}: no repodata");
        let ours = droplet_conda_meta(&staging);
        assert_eq!(ours, expected, "{file}: the lock's set");
        run(&staging, "python -c 'import flask, numpy'");

        // Conformance: real conda with its lockfile plugin installs the same lock.
        let theirs = world.dir.path().join(format!("conda-installed-{format}"));
        let lock_path = world.dir.path().join(format!("for-conda-{file}"));
        fs::write(&lock_path, lock.replace(PUBLIC, &world.server.url())).unwrap();
        let mut command = world.conda();
        if format == "explicit" {
            command
                .args(["create", "-y", "-p"])
                .arg(&theirs)
                .arg("--file")
                .arg(&lock_path);
        } else {
            // conda picks the lockfile plugin by the file's name.
            let named = world.dir.path().join(format!("named-{format}"));
            fs::create_dir_all(&named).unwrap();
            fs::copy(&lock_path, named.join(file)).unwrap();
            command
                .args(["env", "create", "-y", "-p"])
                .arg(&theirs)
                .arg("--file")
                .arg(named.join(file));
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            conda_meta(&theirs),
            ours,
            "{file}: real conda installs the same set"
        );
    }

    // The world's Miniconda has no lockfile plugin: the buildpack needs none.
    let app = world.app(
        "app-miniconda",
        &[
            ("pixi.lock", &world.export(&prefix, "rattler-lock-v6")),
            PROCFILE,
        ],
    );
    let options = world
        .options()
        .cache(&world.dir.path().join("miniconda-cache"))
        .env("BP_CONDA_DISTRIBUTION", "miniconda");
    let (staging, repodata) = world.push(&app, "out-miniconda", options);
    staging
        .assert_success()
        .assert_log_contains("with miniconda3")
        .assert_log_contains("(no solve)");
    assert_eq!(repodata, 0);
    assert_eq!(droplet_conda_meta(&staging), expected);
}

#[test]
fn a_tampered_package_fails_naming_it_and_installs_nothing() {
    let Some(world) = World::new() else {
        return;
    };
    let prefix = world.environment("env", &["python=3.11", "flask"]);
    let lock = world.export(&prefix, "rattler-lock-v6");
    // The lock says flask has another sha256 than the channel's file.
    let flask_sha = lock
        .split("flask-3.1.3")
        .nth(2)
        .and_then(|rest| rest.split("sha256: ").nth(1))
        .map(|rest| rest[..64].to_string())
        .expect("flask's sha256 in the lock");
    let tampered = lock.replace(&flask_sha, &"0".repeat(64));
    let app = world.app("tampered", &[("pixi.lock", &tampered), PROCFILE]);
    let (staging, _) = world.push(&app, "out", world.options());
    staging
        .assert_supply_failed()
        .assert_clean_log()
        .assert_log_contains("flask-3.1.3-py311_0.tar.bz2 does not match pixi.lock")
        .assert_log_contains(&format!(
            "locks flask-3.1.3-py311_0.tar.bz2 with sha256 {}",
            "0".repeat(64)
        ))
        .assert_log_contains(&flask_sha);
}
