//! The cache is what earlier pushes left, and earlier pushes die: a cell is evacuated, an
//! operator stops a push, the container runs out of memory mid-save. Whatever state a killed
//! staging leaves, the next push gives a working app built for exactly its own inputs, or a
//! clean failure: never a droplet built from a half-written cache. Damage to the cache is
//! caught and repaired by building again.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{
    PushWorld, StageOptions, assert_numpy_web_runs, droplet_entries, stage_killed_after,
};

/// A push world with an app cache, staging in its scratch dir.
struct World {
    base: PushWorld,
    cache: PathBuf,
}

support::extends_push_world!(World);

impl World {
    fn new() -> Self {
        let base = PushWorld::new("numpy-web");
        let cache = base.dir.path().join("app-cache");
        Self { base, cache }
    }

    fn options(&self) -> StageOptions {
        StageOptions::with_channels(&self.server)
            .cache(&self.cache)
            .tmpdir(self.dir.path())
    }

    fn push(&self, name: &str) -> support::Staging {
        self.base.push(name, &self.options())
    }

    fn push_killed_after(&self, name: &str, delay: Duration) -> support::Staging {
        stage_killed_after(
            &self.app,
            &self.zip,
            &self.options(),
            &self.dir.path().join(name),
            delay,
        )
    }

    /// Two versions of the app's environment: with scipy or without. Switching between them
    /// makes every push build and save, the work a kill can cut short.
    fn use_environment(&self, with_scipy: bool) {
        let text = "name: numpy-web\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - numpy=1.26\n  - pandas\n";
        let text = if with_scipy {
            format!("{text}  - scipy\n")
        } else {
            text.to_string()
        };
        fs::write(self.app.join("environment.yml"), text).unwrap();
    }

    /// The app runs, from an environment that has scipy exactly when the pushed
    /// environment.yml asks for it.
    fn assert_app_works(&self, staging: &support::Staging, with_scipy: bool) {
        assert_numpy_web_runs(staging);
        let has_scipy = droplet_entries(&staging.droplet())
            .iter()
            .any(|entry| entry.starts_with("deps/0/conda-env/conda-meta/scipy-"));
        assert_eq!(
            has_scipy, with_scipy,
            "the droplet's environment is not the one environment.yml asks for:\n{}",
            staging.log
        );
    }

    fn cache_dir(&self) -> PathBuf {
        self.cache.join("final")
    }

    fn entry(&self) -> PathBuf {
        support::cache_entry(&self.cache)
    }
}

/// xorshift64*: the same kill points on every run for a given seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[test]
fn stagings_killed_at_random_points_never_break_the_next_push() {
    let world = World::new();
    // HARDENING_KILLS and HARDENING_SEED repeat it longer, or elsewhere.
    let kills = setting("HARDENING_KILLS", 12);
    let seed = setting("HARDENING_SEED", 0x5eed_cafe);
    eprintln!("killing {kills} stagings, seed {seed:#x}");
    let mut random = Random(seed.max(1));
    let mut with_scipy = false;
    for round in 0..kills {
        with_scipy = random.below(2) == 1;
        world.use_environment(with_scipy);
        // From the zip's unpacking to the cache save and the droplet (a cold staging takes
        // about four seconds here).
        let delay = Duration::from_millis(100 + random.below(4_500));
        let killed = world.push_killed_after(&format!("killed-{round}"), delay);
        assert!(
            !killed.droplet().exists() || killed.code == 0,
            "round {round}: a killed staging left a droplet"
        );
        if round % 3 == 2 {
            let staging = world.push(&format!("after-{round}"));
            staging.assert_success();
            world.assert_app_works(&staging, with_scipy);
        }
    }
    let last = world.push("last");
    last.assert_success();
    world.assert_app_works(&last, with_scipy);
    // Nothing half-written stays behind in the cache for good.
    let leftovers: Vec<_> = fs::read_dir(world.cache_dir().join("environment"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("entry-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!world.cache_dir().join("work").exists());
}

#[test]
fn a_damaged_entry_is_rebuilt_from_scratch_with_the_reason() {
    type Damage = fn(&World);
    let damages: [(&str, Damage, &str); 5] = [
        (
            "metadata deleted",
            |world| fs::remove_file(world.entry().join("metadata.json")).unwrap(),
            "its metadata is unreadable",
        ),
        (
            "metadata garbage",
            |world| fs::write(world.entry().join("metadata.json"), b"\0\xff garbage").unwrap(),
            "its metadata is not valid",
        ),
        (
            "archive deleted",
            |world| fs::remove_file(world.entry().join("environment.tar.zst")).unwrap(),
            "its archive is missing",
        ),
        (
            "the archive replaced by a link out",
            |world| {
                let archive = world.entry().join("environment.tar.zst");
                fs::remove_file(&archive).unwrap();
                std::os::unix::fs::symlink("/usr/bin/env", &archive).unwrap();
            },
            "(truncated or replaced)",
        ),
        (
            "an entry left half-written by a killed save",
            |world| {
                let incoming = world.cache_dir().join("environment/.incoming-4242");
                fs::create_dir_all(&incoming).unwrap();
                fs::write(incoming.join("environment.tar.zst"), "half").unwrap();
                fs::remove_file(world.entry().join("metadata.json")).unwrap();
            },
            "its metadata is unreadable",
        ),
    ];
    let world = World::new();
    world.use_environment(false);
    world.push("first").assert_success();
    for (number, (name, damage, reason)) in damages.iter().enumerate() {
        damage(&world);
        let staging = world.push(&format!("after-{number}"));
        staging
            .assert_success()
            .assert_log_contains("Discarding the cached environment:")
            .assert_log_contains(reason)
            .assert_log_contains("Building it again from scratch");
        world.assert_app_works(&staging, false);
        assert!(
            !world
                .cache_dir()
                .join("environment/.incoming-4242")
                .exists(),
            "{name}: the half-written entry stays"
        );
    }
}

/// The cache is gzipped and shipped twice on every push: after one it holds the
/// environment's archive and its record, and nothing an older buildpack kept (installers,
/// conda's package cache) survives the next push.
#[test]
fn the_cache_holds_the_environments_archive_and_nothing_else() {
    let world = World::new();
    world.use_environment(false);
    world.push("first").assert_success();
    let entry = world.entry();
    let mut files = cache_files(&world.cache_dir());
    files.sort();
    let name = entry.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        files,
        [
            format!("environment/{name}/environment.tar.zst"),
            format!("environment/{name}/metadata.json"),
        ]
    );
    for old in [
        "installers/0123/Miniforge3.sh",
        "pkgs/numpy-1.26.4-0/info/index.json",
    ] {
        let path = world.cache_dir().join(old);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "left by an older buildpack").unwrap();
    }
    let second = world.push("second");
    second
        .assert_success()
        .assert_log_contains("-----> Restoring the conda environment from the cache");
    let mut after = cache_files(&world.cache_dir());
    after.sort();
    assert_eq!(after, files);
}

fn cache_files(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                found.push(
                    entry
                        .path()
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    found
}
