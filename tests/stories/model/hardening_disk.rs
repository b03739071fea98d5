//! The staging container's disk fills up: the app grew, the quota did not. A full disk while
//! installing fails the staging with the message that says to raise the disk quota; a full
//! disk while saving the cache costs only the cache save. Either way the previous cache entry
//! is intact and the next push restores from it.
//!
//! The full disks are small tmpfs mounts (the tests run as root), unmounted when the test
//! ends, even when it fails. The staging container's disk is the one `stage` makes its staging
//! root on (its TMPDIR): the app, the buildpacks, the cache brought back by Diego, the deps.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{PushWorld, StageOptions, assert_numpy_web_runs, stage};

/// A tmpfs mounted at a path for the life of the value.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, kib: u64) -> Self {
        fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("mount (the tests run as root)");
        assert!(status.success(), "mount a tmpfs at {}", at.display());
        Self(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `du -sk`: the KiB a tree takes.
fn disk_usage_kib(path: &Path) -> u64 {
    let output = Command::new("du").arg("-sk").arg(path).output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .and_then(|size| size.parse().ok())
        .unwrap()
}

/// Every path under `root` with its size and modification time: enough to see that an entry
/// was not touched.
fn listing(root: &Path) -> Vec<(PathBuf, u64, i128)> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let metadata = fs::symlink_metadata(entry.path()).unwrap();
            if metadata.is_dir() {
                pending.push(entry.path());
            }
            let modified = metadata
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as i128;
            found.push((
                entry.path().strip_prefix(root).unwrap().to_path_buf(),
                metadata.len(),
                modified,
            ));
        }
    }
    found.sort();
    found
}

/// A push world whose pushes name their cache and stage in its scratch dir.
struct World {
    base: PushWorld,
}

support::extends_push_world!(World);

impl World {
    fn new() -> Self {
        Self {
            base: PushWorld::new("numpy-web"),
        }
    }

    fn push(&self, name: &str, cache: &Path) -> support::Staging {
        self.base.push(
            name,
            &StageOptions::with_channels(&self.server)
                .cache(cache)
                .tmpdir(self.dir.path()),
        )
    }

    fn add_scipy(&self, add: bool) {
        let path = self.app.join("environment.yml");
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("  - scipy\n", "");
        let text = if add {
            text.replace("  - pandas\n", "  - pandas\n  - scipy\n")
        } else {
            text
        };
        fs::write(path, text).unwrap();
    }
}

/// A buildpack that runs before the conda buildpack and, when `FILL_LEAVE_KIB` is set, fills
/// the staging container's disk but for that much: an app whose other buildpack (or a big
/// app) used up the disk quota.
const FILL_DISK: &str = r#"[ -n "${FILL_LEAVE_KIB:-}" ] || exit 0
avail=$(df --output=avail -k "$3/$4" | tail -n 1)
size=$(( avail - FILL_LEAVE_KIB ))
[ "$size" -gt 0 ] && dd if=/dev/zero of="$3/$4/filler" bs=1k count="$size" status=none || true"#;

#[test]
fn a_full_disk_while_installing_fails_clearly_and_keeps_the_cache() {
    let world = World::new();
    let cache = world.dir.path().join("cache");
    let disk = Tmpfs::mount(&world.dir.path().join("container-disk"), 512 * 1024);
    let filler = support::scripted::Buildpack::new("filler.zip")
        .script("supply", FILL_DISK)
        .write(world.dir.path());
    let push = |name: &str, fill: bool| {
        let mut options = StageOptions::with_channels(&world.server)
            .cache(&cache)
            .tmpdir(&disk.0);
        if fill {
            options = options.env("FILL_LEAVE_KIB", "256");
        }
        stage(
            &world.app,
            &[&filler, &world.zip],
            &options,
            &world.dir.path().join(name),
        )
    };
    push("first", false).assert_success();
    let entry = support::cache_entry(&cache);
    let before = listing(&entry);

    // The app gains a package; the disk has room for almost nothing.
    world.add_scipy(true);
    let staging = push("full", true);
    staging
        .assert_supply_failed()
        .assert_clean_log()
        .assert_log_contains("ran out of disk")
        .assert_log_contains("Raise the app's disk quota (cf push -k 4G)")
        .assert_log_contains("the previous cache entry is intact")
        .assert_log_lacks("This looks like a bug");
    assert_eq!(listing(&entry), before, "the cache entry was touched");

    // Space again, and the environment the entry was built for: it is restored.
    world.add_scipy(false);
    let staging = push("after", false);
    staging
        .assert_success()
        .assert_log_contains("-----> Restoring the conda environment from the cache");
    assert_numpy_web_runs(&staging);
    drop(disk);
}

/// The conda buildpack's `bin/supply`, run as the builder runs it, on a cache dir the test
/// controls: the way to give only the cache's environment entries a disk of their own.
fn supply_directly(world: &World, cache: &Path, name: &str) -> (bool, String) {
    let buildpack = world.dir.path().join("unpacked-buildpack");
    if !buildpack.exists() {
        zip::ZipArchive::new(fs::File::open(&world.zip).unwrap())
            .unwrap()
            .extract(&buildpack)
            .unwrap();
    }
    let root = world.dir.path().join(name);
    let (build, deps, home) = (root.join("app"), root.join("deps"), root.join("home"));
    support::copy_dir(&world.app, &build);
    for dir in [deps.join("0"), home.clone()] {
        fs::create_dir_all(dir).unwrap();
    }
    let output = Command::new(buildpack.join("bin/supply"))
        .arg(&build)
        .arg(cache)
        .arg(&deps)
        .arg("0")
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &home)
        .env("TMPDIR", &home)
        .env("CF_STACK", "cflinuxfs4")
        .env("MEMORY_LIMIT", "1024m")
        .env("CONDA_CHANNEL_ALIAS", world.server.url())
        .env(
            "CONDA_DEFAULT_CHANNELS",
            format!("{}/main", world.server.url()),
        )
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn a_full_disk_while_saving_the_cache_costs_only_the_save() {
    let world = World::new();
    let cache = world.dir.path().join("cache");
    world.push("first", &cache).assert_success();
    let environments = cache.join("final/environment");
    let entry_name = support::cache_entry(&cache).file_name().unwrap().to_owned();

    // The saved entries move to a file system with room for them and almost nothing more
    // (`cp -a` keeps the modes and times).
    let saved = world.dir.path().join("saved-environments");
    fs::rename(&environments, &saved).unwrap();
    // Room for the saved entries, which take less on tmpfs than `du` counts on disk (no
    // blocks for directories), and not for a second entry.
    let disk = Tmpfs::mount(&environments, disk_usage_kib(&saved));
    let copied = Command::new("cp")
        .arg("-a")
        .arg(saved.join("."))
        .arg(&environments)
        .status()
        .unwrap();
    assert!(copied.success());
    let entry = environments.join(&entry_name);
    let before = listing(&entry);

    world.add_scipy(true);
    let (succeeded, log) = supply_directly(&world, &cache.join("final"), "save-fails");
    assert!(succeeded, "supply failed:\n{log}");
    for text in [
        "Could not save the environment to the cache",
        "No space left on device",
        "the cache keeps what it had",
        "A bigger disk quota (cf push -k 4G)",
    ] {
        assert!(log.contains(text), "the log lacks {text:?}:\n{log}");
    }
    assert_eq!(listing(&entry), before, "the previous entry was touched");
    let names: Vec<_> = fs::read_dir(&environments)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(names, [entry_name], "a half-written entry was left");

    // The cache as it is kept goes back to an ordinary disk, and the next push, of the
    // environment the entry was built for, restores it.
    let kept = world.dir.path().join("kept-environments");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&environments)
        .arg(&kept)
        .status()
        .unwrap();
    assert!(copied.success());
    drop(disk);
    fs::remove_dir(&environments).unwrap();
    fs::rename(&kept, &environments).unwrap();
    world.add_scipy(false);
    let staging = world.push("restored", &cache);
    staging
        .assert_success()
        .assert_log_contains("-----> Restoring the conda environment from the cache");
    assert_numpy_web_runs(&staging);
}
