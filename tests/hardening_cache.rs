//! The cache is what earlier pushes left, and earlier pushes die: a cell is evacuated, an
//! operator stops a push, the container runs out of memory mid-save. Whatever state a killed
//! staging leaves, the next push gives a working app built for exactly its own inputs, or a
//! clean failure: never a droplet built from a half-written cache. Damage to the cache is
//! caught and repaired by building again.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{
    Packaging, Server, StageOptions, app, droplet_entries, fixtures, launch, package, scratch,
    stage, stage_killed_after, stdout,
};

struct World {
    dir: tempfile::TempDir,
    server: Server,
    zip: PathBuf,
    app: PathBuf,
    cache: PathBuf,
}

impl World {
    fn new() -> Self {
        let dir = scratch();
        let server = Server::start(&fixtures().dir);
        let zip = package(&server, dir.path(), &Packaging::default());
        let app = app("numpy-web", dir.path());
        let cache = dir.path().join("app-cache");
        Self {
            dir,
            server,
            zip,
            app,
            cache,
        }
    }

    fn options(&self) -> StageOptions {
        StageOptions::with_channels(&self.server)
            .cache(&self.cache)
            .tmpdir(self.dir.path())
    }

    fn push(&self, name: &str) -> support::Staging {
        stage(
            &self.app,
            &[&self.zip],
            &self.options(),
            &self.dir.path().join(name),
        )
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
        let run = launch(&staging.droplet(), "python app.py --once", &[]);
        let output = stdout(&run);
        assert!(
            output.contains("numpy 1.26.4 mean 2.5"),
            "{output}{}",
            String::from_utf8_lossy(&run.stderr)
        );
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
        fs::read_dir(self.cache_dir().join("environment"))
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("entry-")
            })
            .expect("a cached environment entry")
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
fn a_damaged_entry_is_rebuilt_and_a_damaged_installer_downloaded_again() {
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
            "tree deleted",
            |world| fs::remove_dir_all(world.entry().join("tree")).unwrap(),
            "is missing",
        ),
        (
            "a directory replaced by a link out",
            |world| {
                let numpy = world
                    .entry()
                    .join("tree/lib/python3.11/site-packages/numpy");
                fs::remove_dir_all(&numpy).unwrap();
                std::os::unix::fs::symlink("/usr/lib", &numpy).unwrap();
            },
            "lib/python3.11/site-packages/numpy is missing",
        ),
        (
            "an entry left half-written by a killed save",
            |world| {
                let incoming = world
                    .cache_dir()
                    .join("environment/.incoming-4242/tree/bin");
                fs::create_dir_all(&incoming).unwrap();
                fs::write(incoming.join("python"), "half").unwrap();
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

    // The cached installer is checked before it is run: a truncated one is fetched again.
    let installer = fs::read_dir(world.cache_dir().join("installers"))
        .unwrap()
        .flatten()
        .flat_map(|dir| fs::read_dir(dir.path()).unwrap().flatten())
        .map(|file| file.path())
        .next()
        .expect("the installer is cached");
    let length = fs::metadata(&installer).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&installer)
        .unwrap()
        .set_len(length / 2)
        .unwrap();
    world.use_environment(true);
    let requests = world.server.requests_ending_with(".sh");
    let staging = world.push("installer-damaged");
    staging
        .assert_success()
        .assert_log_contains("does not match its sha256; downloading it again")
        .assert_log_contains("Download [");
    assert_eq!(world.server.requests_ending_with(".sh"), requests + 1);
    assert_eq!(fs::metadata(&installer).unwrap().len(), length);
    world.assert_app_works(&staging, true);
}

/// Damage to conda's package cache (CACHE/pkgs), which conda itself trusts: a package whose
/// extracted files were truncated or deleted is dropped before conda runs, so the
/// environment is built from sound files.
#[test]
fn damaged_packages_in_condas_cache_are_dropped_before_conda_sees_them() {
    let world = World::new();
    world.use_environment(false);
    world.push("first").assert_success();
    let pkgs = world.cache_dir().join("pkgs");
    let numpy = extracted(&pkgs, "numpy-");
    let init = numpy.join("lib/python3.11/site-packages/numpy/__init__.py");
    fs::write(&init, "raise ImportError('damaged cache')\n").unwrap();
    let pandas = extracted(&pkgs, "pandas-");
    remove_first_file(&pandas.join("lib"));
    // A different environment: conda runs, with numpy and pandas from its cache.
    world.use_environment(true);
    let staging = world.push("second");
    staging
        .assert_success()
        .assert_log_contains("Discarding 2 damaged packages from conda's package cache");
    world.assert_app_works(&staging, true);
}

fn extracted(pkgs: &Path, prefix: &str) -> PathBuf {
    fs::read_dir(pkgs)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.is_dir()
                && path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(prefix)
        })
        .unwrap_or_else(|| panic!("no extracted {prefix}* in {}", pkgs.display()))
}

fn remove_first_file(dir: &Path) {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                fs::remove_file(entry.path()).unwrap();
                return;
            }
        }
    }
    panic!("no file under {}", dir.display());
}
