//! The fixtures: the offline conda world built once per run by `fixtures/conda/build.py`
//! (under a file lock, keyed by the digest of its sources), scratch directories, and the
//! fixture apps copied out to stage.

use super::*;

/// The interpreter the fixture conda runs on. Buildpacks stage as vcap (uid 2000), so it must
/// be one every user can run: the system's, not a per-user install under /root.
pub(crate) const FIXTURE_PYTHON: &str = "/usr/bin/python3";

/// The built fixtures: channels, installers and their summary.
pub(crate) struct Fixtures {
    pub(crate) dir: PathBuf,
    pub(crate) info: Value,
}

impl Fixtures {
    pub(crate) fn installer(&self, name: &str, version: &str) -> &Value {
        self.info["installers"]
            .as_array()
            .and_then(|installers| {
                installers
                    .iter()
                    .find(|i| i["name"] == name && i["version"] == version)
            })
            .unwrap_or_else(|| panic!("no fixture installer {name} {version}"))
    }
}

/// Builds the fixtures once per test process; the build is cached across runs under
/// `target/conda-fixtures`, keyed by a digest of `fixtures/conda`, and guarded by a file lock
/// because test binaries may run in parallel.
pub(crate) fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let sources = repo().join("fixtures/conda");
        let digest = digest_tree(&sources);
        let root = repo().join("target/conda-fixtures");
        fs::create_dir_all(&root).unwrap();
        let _lock = FileLock::acquire(&root.join(".lock"));
        let dir = root.join(&digest[..16]);
        if !dir.join("fixtures.json").is_file() {
            let status = Command::new(FIXTURE_PYTHON)
                .arg(sources.join("build.py"))
                .arg(&dir)
                .status()
                .expect("python3 runs the fixture builder");
            assert!(status.success(), "fixtures/conda/build.py failed");
            // Older builds are of no use to anyone.
            for entry in fs::read_dir(&root).unwrap().flatten() {
                let name = entry.file_name();
                if entry.path() != dir && name != ".lock" {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        let info = serde_json::from_slice(&fs::read(dir.join("fixtures.json")).unwrap()).unwrap();
        Fixtures { dir, info }
    })
}

pub(crate) fn digest_tree(root: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "__pycache__" || name == "out" || name.ends_with(".pyc") {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(
            file.strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.update(fs::read(&file).unwrap());
    }
    // The host interpreter is baked into the fixtures.
    hasher.update(host_python().as_bytes());
    format!("{:x}", hasher.finalize())
}

fn host_python() -> String {
    let output = Command::new(FIXTURE_PYTHON)
        .args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable))",
        ])
        .output()
        .expect("python3 exists");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

pub(crate) struct FileLock(fs::File);

impl FileLock {
    pub(crate) fn acquire(path: &Path) -> Self {
        use std::os::fd::AsRawFd;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap();
        // SAFETY: a valid descriptor owned by `file`, which outlives the lock.
        let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(result, 0, "flock");
        Self(file)
    }
}

/// A scratch directory for one test, kept when `KEEP_TEST_DIRS` is set.
/// An app at `into/name` written from `(file, content)` pairs.
pub(crate) fn write_app(into: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let app = into.join(name);
    fs::create_dir_all(&app).unwrap();
    for (file, content) in files {
        fs::write(app.join(file), content).unwrap();
    }
    app
}

pub(crate) fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("conda-bp-test-")
        .tempdir()
        .unwrap();
    if std::env::var_os("KEEP_TEST_DIRS").is_some() {
        eprintln!("scratch: {}", dir.path().display());
    }
    dir
}

/// A directory the staging container can write to at the same path: stagings run as vcap
/// with their own `/tmp`, so a spy file in the test's scratch dir would be out of their
/// reach. Lives under `target/`, removed with the returned guard.
pub(crate) fn container_visible_dir() -> tempfile::TempDir {
    let parent = repo().join("target/container-visible");
    fs::create_dir_all(&parent).unwrap();
    let dir = tempfile::Builder::new().tempdir_in(&parent).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// Copies a fixture app (`fixtures/apps/<name>`) to a place the test may change.
pub(crate) fn app(name: &str, into: &Path) -> PathBuf {
    let source = repo().join("fixtures/apps").join(name);
    assert!(source.is_dir(), "no fixture app {name}");
    let target = into.join(name);
    copy_dir(&source, &target);
    target
}

/// Copies a sample app from `cf-apps/<name>`.
pub(crate) fn sample_app(name: &str, into: &Path) -> PathBuf {
    let source = repo().join("cf-apps").join(name);
    let target = into.join(name);
    copy_dir(&source, &target);
    target
}

pub(crate) fn copy_dir(source: &Path, target: &Path) {
    fs::create_dir_all(target).unwrap();
    for entry in fs::read_dir(source).unwrap().flatten() {
        let to = target.join(entry.file_name());
        let file_type = entry.file_type().unwrap();
        if file_type.is_dir() {
            copy_dir(&entry.path(), &to);
        } else if file_type.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &to).unwrap();
        } else {
            fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// The names in a directory, sorted: what a test compares to say what was written where.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Writes an executable script.
pub(crate) fn write_script(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    let mut file = fs::File::create(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}
