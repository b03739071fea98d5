//! A data scientist pushes, changes a line of code, pushes again: the second push restores the
//! environment without running the installer or conda. A changed environment is rebuilt with
//! the reason in the log and nothing downloaded twice; a damaged or half-written cache is
//! discarded with a warning and never trusted.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{
    Packaging, PushWorld, StageOptions, assert_numpy_web_runs, launch, package, stage, stdout,
};

/// A push world with an app cache, counting conda's invocations.
struct World {
    base: PushWorld,
    cache: PathBuf,
    invocations: PathBuf,
    _spies: tempfile::TempDir,
}

support::extends_push_world!(World);

impl World {
    fn new(fixture: &str) -> Self {
        let base = PushWorld::new(fixture);
        let cache = base.dir.path().join("app-cache");
        let spies = support::container_visible_dir();
        let invocations = spies.path().join("conda-invocations.log");
        Self {
            base,
            cache,
            invocations,
            _spies: spies,
        }
    }

    fn options(&self) -> StageOptions {
        StageOptions::with_channels(&self.server)
            .cache(&self.cache)
            .env(
                "CONDA_DOUBLE_INVOCATIONS",
                &self.invocations.display().to_string(),
            )
    }

    fn push(&self, name: &str) -> support::Staging {
        self.base.push(name, &self.options())
    }

    fn push_with(&self, name: &str, zip: &Path, options: StageOptions) -> support::Staging {
        stage(&self.app, &[zip], &options, &self.dir.path().join(name))
    }

    fn conda_invocations(&self) -> usize {
        fs::read_to_string(&self.invocations).map_or(0, |text| text.lines().count())
    }

    /// The cached environment's entry directory.
    fn entry(&self) -> PathBuf {
        support::cache_entry(&self.cache)
    }
}

#[test]
fn an_unchanged_push_restores_the_environment_without_conda() {
    let world = World::new("numpy-web");
    let first = world.push("first");
    first
        .assert_success()
        .assert_log_contains("Cache: miss (no cached environment)");
    let invocations = world.conda_invocations();
    assert!(invocations > 0, "the first push runs conda");
    let requests = world.server.total_requests();

    fs::write(
        world.app.join("app.py"),
        fs::read_to_string(world.app.join("app.py")).unwrap() + "\n# a code change\n",
    )
    .unwrap();
    let second = world.push("second");
    second
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("-----> Restoring the conda environment from the cache")
        .assert_log_contains("Cache: hit, the environment was restored without running conda")
        .assert_log_lacks("-----> Installing miniconda")
        .assert_log_lacks("Download [");
    assert_eq!(
        world.conda_invocations(),
        invocations,
        "conda ran on a cache hit"
    );
    assert_eq!(
        world.server.total_requests(),
        requests,
        "a cache hit fetched something"
    );
    assert_numpy_web_runs(&second);
}

#[test]
fn a_changed_environment_is_updated_from_the_last_one_and_nothing_downloaded_twice() {
    let world = World::new("numpy-web");
    world.push("first").assert_success();
    let environment = world.app.join("environment.yml");
    fs::write(
        &environment,
        fs::read_to_string(&environment)
            .unwrap()
            .replace("  - pandas\n", "  - pandas\n  - scipy\n"),
    )
    .unwrap();
    let second = world.push("second");
    second
        .assert_success()
        .assert_log_contains("-----> Updating the cached environment: environment.yml changed")
        .assert_log_contains("Starting from the last environment (")
        .assert_log_lacks("Discarding");
    // Only the added package (and what it needs) is fetched: the rest is in the environment.
    for (path, count) in world.server.package_downloads() {
        assert_eq!(count, 1, "{path} was downloaded {count} times");
    }
    assert!(
        world
            .server
            .package_downloads()
            .keys()
            .any(|path| path.contains("scipy")),
        "scipy was fetched"
    );
    let run = launch(
        &second.droplet(),
        "python -c 'import scipy, pandas; print(scipy.__version__)'",
        &[],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_numpy_web_runs(&second);

    // Taking the package out again removes it (`--prune`), still from the last environment.
    fs::write(
        &environment,
        fs::read_to_string(&environment)
            .unwrap()
            .replace("  - scipy\n", ""),
    )
    .unwrap();
    let third = world.push("third");
    third
        .assert_success()
        .assert_log_contains("-----> Updating the cached environment: environment.yml changed");
    let run = launch(
        &third.droplet(),
        "python -c 'import scipy' 2>&1; python -c 'import pandas; print(\"pandas ok\")'",
        &[],
    );
    let output = stdout(&run);
    assert!(output.contains("No module named 'scipy'"), "{output}");
    assert!(output.contains("pandas ok"), "{output}");
}

#[test]
fn a_new_buildpack_version_or_stack_rebuilds() {
    let world = World::new("numpy-web");
    world.push("first").assert_success();
    let newer = package(
        &world.server,
        &world.dir.path().join("newer"),
        &Packaging {
            version: Some("9.9.9".into()),
            ..Packaging::default()
        },
    );
    world
        .push_with("second", &newer, world.options())
        .assert_success()
        .assert_log_contains(&format!(
            "Discarding cached environment: buildpack {} -> 9.9.9",
            env!("CARGO_PKG_VERSION")
        ));
    let mut cflinuxfs3 = world.options();
    cflinuxfs3.stack = Some("cflinuxfs3".into());
    world
        .push_with("third", &newer, cflinuxfs3)
        .assert_success()
        .assert_log_contains("Discarding cached environment: stack cflinuxfs4 -> cflinuxfs3");
}

#[test]
fn a_damaged_cache_is_discarded_with_a_warning_and_staging_succeeds() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 5] = [
        ("the archive truncated", |entry| {
            let file = entry.join("environment.tar.zst");
            let size = fs::metadata(&file).unwrap().len();
            fs::OpenOptions::new()
                .write(true)
                .open(&file)
                .unwrap()
                .set_len(size / 2)
                .unwrap();
        }),
        ("the archive deleted", |entry| {
            fs::remove_file(entry.join("environment.tar.zst")).unwrap()
        }),
        ("the archive edited", |entry| {
            let file = entry.join("environment.tar.zst");
            let mut bytes = fs::read(&file).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x5a;
            std::thread::sleep(Duration::from_millis(20));
            fs::write(&file, bytes).unwrap();
        }),
        ("the metadata edited", |entry| {
            let file = entry.join("metadata.json");
            fs::write(
                &file,
                fs::read_to_string(&file)
                    .unwrap()
                    .replacen("cflinuxfs4", "cflinuxfs9", 1),
            )
            .unwrap();
        }),
        ("a future format", |entry| {
            let file = entry.join("metadata.json");
            let mut metadata: serde_json::Value =
                serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
            metadata["format"] = 7.into();
            fs::write(&file, serde_json::to_vec(&metadata).unwrap()).unwrap();
        }),
    ];
    let world = World::new("numpy-web");
    world.push("first").assert_success();
    for (number, (name, damage)) in damages.iter().enumerate() {
        let entry = world.entry();
        damage(&entry);
        let staging = world.push(&format!("after-{number}"));
        staging
            .assert_success()
            .assert_log_contains("**WARNING**\u{1b}[0m Discarding the cached environment:")
            .assert_log_contains("Building it again from scratch");
        if *name == "a future format" {
            staging.assert_log_contains("cache format 7");
        }
        assert_numpy_web_runs(&staging);
    }
}

#[test]
fn a_staging_killed_midway_leaves_a_cache_the_next_push_can_use() {
    let world = World::new("numpy-web");
    for (attempt, delay) in [150_u64, 400, 900, 1_600, 2_500].into_iter().enumerate() {
        let killed = support::stage_killed_after(
            &world.app,
            &world.zip,
            &world.options(),
            &world.dir.path().join(format!("killed-{attempt}")),
            Duration::from_millis(delay),
        );
        assert!(!killed.droplet().exists() || killed.code == 0);
        let staging = world.push(&format!("after-kill-{attempt}"));
        staging.assert_success();
        assert_numpy_web_runs(&staging);
    }
}

#[test]
fn bp_conda_clear_cache_starts_from_nothing_once() {
    let world = World::new("numpy-web");
    world.push("first").assert_success();
    let cleared = world.push_with(
        "cleared",
        &world.zip,
        world.options().env("BP_CONDA_CLEAR_CACHE", "true"),
    );
    cleared
        .assert_success()
        .assert_log_contains("-----> Clearing the app cache (BP_CONDA_CLEAR_CACHE)")
        .assert_log_contains("Cache: miss (no cached environment)")
        .assert_log_contains("Download [");
    assert_eq!(
        world.server.requests_ending_with(".sh"),
        2,
        "the installer was fetched again"
    );
    assert_numpy_web_runs(&cleared);
    // Unset again: the entry the cleared push saved is used.
    world
        .push("after")
        .assert_success()
        .assert_log_contains("Cache: hit");
}
